//! Engine tests on the CPU: parameter counts, shapes, the NASP gradient identity, steps.

use nasp_tui::config::{Algorithm, Config};
use nasp_tui::data::synthetic;
use nasp_tui::engine::data::DeviceData;
use nasp_tui::engine::search::{Search, build_supernet};
use nasp_tui::genotype::ArchMatrix;
use tch::{Device, Kind, Tensor};

fn cfg(sets: &[&str]) -> Config {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    Config::load(None, &sets).unwrap()
}

fn count(c: &Config) -> i64 {
    let (vs, _) = build_supernet(c, Device::Cpu).unwrap();
    vs.trainable_variables()
        .iter()
        .map(|t| t.numel() as i64)
        .sum()
}

#[test]
fn darts_supernet_parameter_count() {
    assert_eq!(count(&cfg(&[])), 1_930_618);
}

#[test]
fn nasp_supernet_parameter_count() {
    assert_eq!(count(&cfg(&["model.space=\"nasp\""])), 4_151_354);
}

#[test]
fn cell_shapes_per_cell() {
    let c = cfg(&[]);
    let (_vs, net) = build_supernet(&c, Device::Cpu).unwrap();
    let shapes = net.cell_shapes(32, Device::Cpu);
    let want: Vec<(i64, i64)> = vec![
        (64, 32),
        (64, 32),
        (128, 16),
        (128, 16),
        (128, 16),
        (256, 8),
        (256, 8),
        (256, 8),
    ];
    assert_eq!(shapes.len(), 8);
    for (s, (ch, hw)) in shapes.iter().zip(want) {
        assert_eq!(s, &vec![2, ch, hw, hw]);
    }
}

fn tiny(alg: &str) -> Config {
    cfg(&[
        &format!("algorithm=\"{alg}\""),
        "model.channels=4",
        "model.cells=3",
        "train.batch_size=8",
        "data.image_size=8",
        "seed=5",
    ])
}

#[test]
fn nasp_arch_gradient_equals_full_backward() {
    let mut c = tiny("nasp");
    c.model.space = nasp_tui::config::Space::Nasp;
    let mut s = Search::new(&c, Device::Cpu, None).unwrap();
    // A non-trivial A so the selection differs from the all-0.5 start.
    tch::manual_seed(11);
    for a in &s.arch {
        tch::no_grad(|| {
            let mut a = a.shallow_clone();
            a.copy_(&Tensor::rand(a.size(), (Kind::Float, Device::Cpu)));
        });
    }
    s.refresh_host_arch();
    let x = Tensor::randn([8, 3, 8, 8], (Kind::Float, Device::Cpu));
    let y = Tensor::randint(10, [8], (Kind::Int64, Device::Cpu));
    // Same BN state for both passes: snapshot and restore variables between them.
    let vars: Vec<(String, Tensor)> =
        s.vs.variables()
            .into_iter()
            .map(|(k, v)| (k, v.copy()))
            .collect();
    let (fast, _) = s.nasp_arch_grad(&x, &y, false);
    tch::no_grad(|| {
        let live = s.vs.variables();
        for (k, v) in &vars {
            live[k].shallow_clone().copy_(v);
        }
    });
    let (full, _) = s.nasp_arch_grad(&x, &y, true);
    for i in 0..2 {
        let diff = (&fast[i] - &full[i]).norm().double_value(&[]);
        let scale = full[i].norm().double_value(&[]);
        assert!(scale > 0.0);
        assert!(
            diff / scale < 1e-4,
            "cell {i}: relative error {}",
            diff / scale
        );
        // Pruned edges still get gradient (they can re-enter the top two).
        let g = ArchMatrix {
            rows: 14,
            cols: full[i].size()[1] as usize,
            data: Vec::<f32>::try_from(full[i].reshape([-1])).unwrap(),
        };
        let dropped: Vec<usize> = (0..14)
            .filter(|e| s.selection[i].ops[*e].is_none())
            .collect();
        assert!(dropped.iter().any(|e| g.row(*e).iter().any(|v| *v != 0.0)));
    }
}

#[test]
fn all_algorithms_step_with_finite_losses() {
    let imgs = synthetic(64, 1);
    for alg in ["nasp", "darts1", "darts2"] {
        let c = tiny(alg);
        let data = DeviceData::new(&imgs, 0.5, 8, Device::Cpu);
        let mut s = Search::new(&c, Device::Cpu, Some(data)).unwrap();
        s.begin_epoch();
        for _ in 0..3 {
            let out = s.step().unwrap();
            let l = out.loss.double_value(&[]);
            assert!(l.is_finite() && l > 0.0, "{alg}: loss {l}");
            assert!(out.arch_loss.double_value(&[]).is_finite());
        }
        s.refresh_host_arch();
        let g = s.genotype();
        assert_eq!(g.normal.len(), 8);
        assert_eq!(g.reduce.len(), 8);
        assert!(
            g.normal
                .iter()
                .all(|(op, i)| *i < 5 && s.net.lists.normal.contains(op))
        );
        let e = s.evaluate(2);
        assert!(
            e.loss.is_finite() && (0.0..=1.0).contains(&e.acc),
            "{alg}: {e:?}"
        );
        let _ = Algorithm::parse(alg).unwrap();
    }
}
