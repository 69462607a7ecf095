//! Engine tests on the CPU: parameter counts, shapes, the NASP gradient identity, steps.

use nasp_tui::arch::ArchMatrix;
use nasp_tui::config::{Algorithm, Config};
use nasp_tui::dataset::synthetic;
use nasp_tui::engine::device_data::DeviceData;
use nasp_tui::engine::search::{Search, build_supernet};
use tch::{Device, Kind, Tensor};

/// libtorch's random generator is global and the tests of this file run on parallel threads:
/// each test that seeds it and draws from it holds this lock, so that its draws are its own and
/// its numbers are the same every run.
static RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn rng_lock() -> std::sync::MutexGuard<'static, ()> {
    RNG.lock().unwrap_or_else(|e| e.into_inner())
}

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
    let _rng = rng_lock();
    assert_eq!(count(&cfg(&[])), 1_930_618);
}

#[test]
fn nasp_supernet_parameter_count() {
    let _rng = rng_lock();
    assert_eq!(count(&cfg(&["model.space=\"nasp\""])), 4_151_354);
}

#[test]
fn cell_shapes_per_cell() {
    let _rng = rng_lock();
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

/// The NASP architecture pass (fused ops, autograd only through Ā's ops) against the reference
/// pass (every op on its own edge, autograd through everything): same ∂L/∂Ā, and the same batch
/// norm statistics recorded, in both search spaces.
#[test]
fn nasp_arch_gradient_equals_full_backward() {
    let _rng = rng_lock();
    use nasp_tui::config::Switch;
    use nasp_tui::space::Space;
    // Both spaces, in both activation layouts.
    for (space, layout) in [
        (Space::Nasp, Switch::Off),
        (Space::Darts, Switch::Off),
        (Space::Nasp, Switch::On),
        (Space::Darts, Switch::On),
    ] {
        let mut c = tiny("nasp");
        c.model.space = space;
        c.channels_last = layout;
        // With the parameter-burden term, which the fast path adds by hand.
        c.arch.l2 = 0.3;
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
        let snapshot = |s: &Search| -> Vec<(String, Tensor)> {
            let mut v: Vec<(String, Tensor)> =
                s.vs.variables()
                    .into_iter()
                    .map(|(k, v)| (k, v.copy()))
                    .collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v
        };
        let before = snapshot(&s);
        let (fast, fast_loss) = s.nasp_arch_grad(&x, &y, false);
        let after_fast = snapshot(&s);
        tch::no_grad(|| {
            let live = s.vs.variables();
            for (k, v) in &before {
                live[k].shallow_clone().copy_(v);
            }
        });
        let (full, full_loss) = s.nasp_arch_grad(&x, &y, true);
        let dl = (fast_loss.double_value(&[]) - full_loss.double_value(&[])).abs();
        assert!(
            dl < 1e-4,
            "{space:?} {layout:?}: architecture loss off by {dl}"
        );
        let after_full = snapshot(&s);
        let mut stats_moved = 0;
        for (((k, f), (_, r)), (_, b)) in after_fast.iter().zip(&after_full).zip(&before) {
            let diff = (f - r).abs().max().double_value(&[]);
            assert!(
                diff < 1e-4,
                "{space:?} {layout:?} {k}: fused pass left {diff} off the reference"
            );
            if (r - b).abs().max().double_value(&[]) > 0.0 {
                stats_moved += 1;
            }
        }
        assert!(
            stats_moved > 100,
            "{space:?} {layout:?}: only {stats_moved} buffers updated"
        );
        for i in 0..2 {
            let diff = (&fast[i] - &full[i]).norm().double_value(&[]);
            let scale = full[i].norm().double_value(&[]);
            assert!(scale > 0.0);
            assert!(
                diff / scale < 1e-4,
                "{space:?} {layout:?} cell {i}: relative error {}",
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
}

#[test]
fn all_algorithms_step_with_finite_losses() {
    let _rng = rng_lock();
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

/// The unrolled objective F(α) = L_val(w − η(∇_w L_train(w, α) + λw), α) (first step: no momentum
/// yet), evaluated in double precision; the weights are restored afterwards.
fn unrolled_objective(s: &Search, xt: &Tensor, yt: &Tensor, xv: &Tensor, yv: &Tensor) -> f64 {
    let eta = s.lr();
    let lambda = s.cfg.train.weight_decay;
    let saved: Vec<Tensor> = s.params.iter().map(|p| p.detach().copy()).collect();
    let loss_t = s.dense_loss(&s.softmax_weights(true), xt, yt);
    let g = Tensor::run_backward(&[&loss_t], &s.params, false, false);
    tch::no_grad(|| {
        for (p, g) in s.params.iter().zip(&g) {
            if g.defined() {
                let upd = (g + p * lambda) * eta;
                let _ = p.shallow_clone().g_sub_(&upd);
            }
        }
    });
    let f = tch::no_grad(|| {
        s.dense_loss(&s.softmax_weights(true), xv, yv)
            .double_value(&[])
    });
    tch::no_grad(|| {
        for (p, w) in s.params.iter().zip(&saved) {
            p.shallow_clone().copy_(w);
        }
    });
    f
}

#[test]
fn darts2_arch_gradient_matches_a_double_precision_finite_difference() {
    let _rng = rng_lock();
    let c = tiny("darts2");
    let mut s = Search::new(&c, Device::Cpu, None).unwrap();
    s.vs.double();
    tch::manual_seed(3);
    s.arch = [0, 1].map(|i| {
        (Tensor::randn(s.arch[i].size(), (Kind::Double, Device::Cpu)) * 0.5).set_requires_grad(true)
    });
    let d = (Kind::Double, Device::Cpu);
    let xt = Tensor::randn([8, 3, 8, 8], d);
    let xv = Tensor::randn([8, 3, 8, 8], d);
    let yt = Tensor::randint(10, [8], (Kind::Int64, Device::Cpu));
    let yv = Tensor::randint(10, [8], (Kind::Int64, Device::Cpu));
    // BN running statistics do not enter train-mode losses, so F is a pure function of α. In
    // double precision a small finite-difference radius makes the Hessian-vector product close to
    // exact (the reference's r = 0.01/‖v‖ is a float32 compromise, and crosses ReLU kinks here).
    s.hvp_scale = 1e-6;
    let (ours, _) = s.darts2_arch_grad(&xt, &yt, &xv, &yv);
    let (first, _) = s.darts1_arch_grad(&xv, &yv);
    let h = 1e-5;
    let mut num = Vec::new();
    let mut got = Vec::new();
    let mut fo = Vec::new();
    for (cell, e, k) in [
        (0, 0, 1),
        (0, 3, 4),
        (0, 9, 7),
        (0, 13, 2),
        (1, 1, 3),
        (1, 6, 5),
        (1, 11, 0),
    ] {
        let shift = |delta: f64| {
            tch::no_grad(|| {
                let mut a = s.arch[cell].shallow_clone();
                let mut entry = a.get(e).get(k);
                let _ = entry.g_add_scalar_(delta);
                let _ = &mut a;
            })
        };
        shift(h);
        let fp = unrolled_objective(&s, &xt, &yt, &xv, &yv);
        shift(-2.0 * h);
        let fm = unrolled_objective(&s, &xt, &yt, &xv, &yv);
        shift(h);
        num.push((fp - fm) / (2.0 * h));
        got.push(ours[cell].double_value(&[e, k]));
        fo.push(first[cell].double_value(&[e, k]));
    }
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    let diff: Vec<f64> = num.iter().zip(&got).map(|(a, b)| a - b).collect();
    let rel = norm(&diff) / norm(&num);
    assert!(
        rel < 1e-4,
        "darts2 vs finite difference: relative error {rel}\nfd   {num:?}\nours {got:?}"
    );
    // The second-order term is not negligible here, so the check can tell first from second order.
    let diff1: Vec<f64> = num.iter().zip(&fo).map(|(a, b)| a - b).collect();
    assert!(
        norm(&diff1) / norm(&num) > 20.0 * rel,
        "first order is as close: {fo:?}"
    );
}

#[test]
fn nasp_keeps_a_inside_the_box() {
    let _rng = rng_lock();
    let mut c = tiny("nasp");
    c.arch.lr = 0.5; // large steps push entries against both bounds
    let imgs = synthetic(64, 2);
    let data = DeviceData::new(&imgs, 0.5, 8, Device::Cpu);
    let mut s = Search::new(&c, Device::Cpu, Some(data)).unwrap();
    s.begin_epoch();
    for _ in 0..4 {
        s.step().unwrap();
    }
    let all: Vec<f32> = s.host_arch.iter().flat_map(|m| m.data.clone()).collect();
    assert!(all.iter().all(|v| (0.0..=1.0).contains(v)), "{all:?}");
    assert!(
        all.iter().any(|v| *v == 0.0 || *v == 1.0),
        "no entry reached a bound: {all:?}"
    );
    assert!(all.iter().any(|v| *v != 0.5));
}
