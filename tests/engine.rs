//! Engine tests on the CPU: parameter counts, shapes, steps. (The NASP gradient identity and
//! the DARTS second-order check need the search's internals: unit tests in `engine::search`.)

mod common;

use nasp_tui::config::{Algorithm, Config};
use nasp_tui::dataset::synthetic;
use nasp_tui::engine::device_data::DeviceData;
use nasp_tui::engine::search::{Search, build_supernet};
use tch::Device;

/// libtorch's random generator is global and the tests of this file run on parallel threads:
/// each test that seeds it and draws from it holds this lock, so that its draws are its own and
/// its numbers are the same every run. Every test here runs libtorch and takes it first, so it
/// also pins the test's thread to one libtorch thread ([`common::one_libtorch_thread`]).
static RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn rng_lock() -> std::sync::MutexGuard<'static, ()> {
    common::one_libtorch_thread();
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
            assert!(
                out.arch_loss
                    .as_ref()
                    .expect("a search step has an architecture loss")
                    .double_value(&[])
                    .is_finite()
            );
        }
        let g = s.current_genotype();
        assert_eq!(g.normal.len(), 8);
        assert_eq!(g.reduce.len(), 8);
        assert!(
            g.normal
                .iter()
                .all(|(op, i)| *i < 5 && s.op_lists().normal.contains(op))
        );
        let e = s.evaluate(2);
        assert!(
            e.loss.is_finite() && (0.0..=1.0).contains(&e.acc),
            "{alg}: {e:?}"
        );
        let _ = Algorithm::parse(alg).unwrap();
    }
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
    let snap = s.arch_snapshot();
    let all: Vec<f32> = [snap.normal, snap.reduce]
        .iter()
        .flat_map(|m| m.data.clone())
        .collect();
    assert!(all.iter().all(|v| (0.0..=1.0).contains(v)), "{all:?}");
    assert!(
        all.iter().any(|v| *v == 0.0 || *v == 1.0),
        "no entry reached a bound: {all:?}"
    );
    assert!(all.iter().any(|v| *v != 0.5));
}
