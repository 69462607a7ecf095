//! The shipped CIFAR-10 configs against the spec's hyper-parameters (§2.2, §3.6): a changed
//! value in `configs/cifar10-*.toml` (or a default it leaves out) fails here, naming the file.

mod common;

use std::path::Path;

use nasp_tui::config::{Algorithm, Config};
use nasp_tui::space::Space;

fn load(name: &str) -> Config {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("configs")
        .join(name);
    Config::load(Some(&p), &[]).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// What both papers' search runs share: 50 epochs, batch 64, C = 16, 8 cells, 4 nodes, SGD lr
/// 0.025 → 0.001 cosine, momentum 0.9, wd 3e-4, clip 5; Adam 3e-4, betas (0.5, 0.999), wd 1e-3;
/// a 50/50 split of the training set; seed 2.
fn check_common(name: &str, c: &Config) {
    let t = &c.train;
    let shared = [
        ("epochs", t.epochs as f64, 50.0),
        ("batch_size", t.batch_size as f64, 64.0),
        ("lr", t.lr, 0.025),
        ("lr_min", t.lr_min, 0.001),
        ("momentum", t.momentum, 0.9),
        ("weight_decay", t.weight_decay, 3e-4),
        ("grad_clip", t.grad_clip, 5.0),
        ("arch.lr", c.arch.lr, 3e-4),
        ("arch.betas[0]", c.arch.betas[0], 0.5),
        ("arch.betas[1]", c.arch.betas[1], 0.999),
        ("arch.weight_decay", c.arch.weight_decay, 1e-3),
        ("channels", c.model.channels as f64, 16.0),
        ("cells", c.model.cells as f64, 8.0),
        ("nodes", c.model.nodes as f64, 4.0),
        ("train_portion", c.data.train_portion, 0.5),
        ("seed", c.seed as f64, 2.0),
    ];
    for (key, got, want) in shared {
        assert!(
            (got - want).abs() <= 1e-12 * want.abs().max(1.0),
            "{name}: {key} = {got}, spec {want}"
        );
    }
}

#[test]
fn cifar10_nasp_matches_the_nasp_reference() {
    let c = load("cifar10-nasp.toml");
    check_common("cifar10-nasp.toml", &c);
    assert_eq!(c.algorithm, Algorithm::Nasp);
    assert_eq!(c.model.space, Space::Nasp);
    assert_eq!(c.arch.init, 0.5);
    assert_eq!(c.arch.l2, 0.0);
    assert_eq!(c.arch.greedy, 0.0);
}

#[test]
fn cifar10_darts_matches_the_darts_reference() {
    let c = load("cifar10-darts.toml");
    check_common("cifar10-darts.toml", &c);
    assert_eq!(c.algorithm, Algorithm::Darts1);
    assert_eq!(c.model.space, Space::Darts);
    assert_eq!(c.arch.init_std, 1e-3);
}

#[test]
fn cifar10_nasp_darts_is_nasp_on_the_seven_darts_ops() {
    let c = load("cifar10-nasp-darts.toml");
    check_common("cifar10-nasp-darts.toml", &c);
    assert_eq!(c.algorithm, Algorithm::Nasp);
    let seven = [
        "max_pool_3x3",
        "avg_pool_3x3",
        "skip_connect",
        "sep_conv_3x3",
        "sep_conv_5x5",
        "dil_conv_3x3",
        "dil_conv_5x5",
    ];
    let lists = c.model.op_lists();
    assert_eq!(lists.normal, seven);
    assert_eq!(lists.reduce, seven);
    assert_eq!(c.arch.init, 0.5);
}

/// The evaluation stage's config against the papers' training settings (DARTS §3.3, NASP §4):
/// 20 cells, C = 36, 600 epochs, batch 96, SGD 0.025 cosine to 0, momentum 0.9, wd 3e-4,
/// clip 5; auxiliary head 0.4, drop path 0.2, cutout 16; all training and test images, 32 px.
#[test]
fn cifar10_train_has_the_papers_training_settings() {
    let c = load("cifar10-train.toml");
    let (t, e) = (&c.train, &c.evaluation);
    let want = [
        ("model.cells", c.model.cells as f64, 20.0),
        ("model.channels", c.model.channels as f64, 36.0),
        ("train.epochs", t.epochs as f64, 600.0),
        ("train.batch_size", t.batch_size as f64, 96.0),
        ("train.lr", t.lr, 0.025),
        ("train.lr_min", t.lr_min, 0.0),
        ("train.momentum", t.momentum, 0.9),
        ("train.weight_decay", t.weight_decay, 3e-4),
        ("train.grad_clip", t.grad_clip, 5.0),
        ("evaluation.auxiliary_weight", e.auxiliary_weight, 0.4),
        ("evaluation.drop_path", e.drop_path, 0.2),
        ("evaluation.cutout", e.cutout as f64, 16.0),
        ("evaluation.test_limit", e.test_limit as f64, 0.0),
        ("data.limit", c.data.limit as f64, 0.0),
        ("data.image_size", c.data.image_size as f64, 32.0),
    ];
    for (key, got, want) in want {
        assert!(
            (got - want).abs() < 1e-12,
            "cifar10-train.toml: {key} = {got}, the papers use {want}"
        );
    }
    assert!(e.auxiliary);
    assert_eq!(c.model.space, Space::Darts);
    c.validate_for_training().unwrap();
}

/// The NAS-Bench-201 search setting (the benchmark's search scripts): C = 16, N = 5, batch 64,
/// 50 epochs, SGD 0.025 → 0.001 cosine with Nesterov momentum 0.9, weight decay 5e-4, clip 5;
/// Adam 3e-4, betas (0.5, 0.999), weight decay 1e-3; a 25,000 / 25,000 split.
#[test]
fn nb201_configs_match_the_benchmark_search_setting() {
    for (name, alg) in [
        ("nb201-nasp.toml", Algorithm::Nasp),
        ("nb201-darts.toml", Algorithm::Darts1),
    ] {
        let c = load(name);
        assert_eq!(c.algorithm, alg, "{name}");
        assert_eq!(c.model.space, Space::Nb201, "{name}");
        let t = &c.train;
        for (key, got, want) in [
            ("epochs", t.epochs as f64, 50.0),
            ("batch_size", t.batch_size as f64, 64.0),
            ("lr", t.lr, 0.025),
            ("lr_min", t.lr_min, 0.001),
            ("momentum", t.momentum, 0.9),
            ("weight_decay", t.weight_decay, 5e-4),
            ("grad_clip", t.grad_clip, 5.0),
            ("arch.lr", c.arch.lr, 3e-4),
            ("arch.betas[0]", c.arch.betas[0], 0.5),
            ("arch.betas[1]", c.arch.betas[1], 0.999),
            ("arch.weight_decay", c.arch.weight_decay, 1e-3),
            ("arch.init_std", c.arch.init_std, 1e-3),
            ("channels", c.model.channels as f64, 16.0),
            ("cells", c.model.cells as f64, 5.0),
            ("nodes", c.model.nodes as f64, 3.0),
            ("train_portion", c.data.train_portion, 0.5),
        ] {
            assert!(
                (got - want).abs() <= 1e-12 * want.abs().max(1.0),
                "{name}: {key} = {got}, benchmark {want}"
            );
        }
        assert!(t.nesterov, "{name}: Nesterov momentum");
    }
}

/// The benchmark's config measures a search's step: after NASP steps from its start, the edges
/// Ā keeps hold real ops, not `none` (with `none` in the space, the all-equal start selects it
/// on every edge and it stays: the weight step then trains nothing, issue 28).
#[test]
fn the_bench_config_selects_real_ops() {
    use nasp_tui::engine::search::Search;
    use tch::{Device, Kind, Tensor};
    common::one_libtorch_thread();
    let mut c = load("bench.toml");
    // A smaller image keeps the test quick; the selection does not depend on it.
    c.data.image_size = 8;
    let mut s = Search::new(&c, Device::Cpu, None).unwrap();
    tch::manual_seed(1);
    for _ in 0..3 {
        let x = Tensor::randn([8, 3, 8, 8], (Kind::Float, Device::Cpu));
        let y = Tensor::randint(10, [8], (Kind::Int64, Device::Cpu));
        s.step_on(&x, &y, &x, &y);
    }
    let lists = s.op_lists().clone();
    for (i, sel) in s.selection().iter().enumerate() {
        let ops = if i == 0 { &lists.normal } else { &lists.reduce };
        let kept: Vec<&str> = sel.ops.iter().flatten().map(|&k| ops[k].as_str()).collect();
        let none = kept.iter().filter(|o| **o == "none").count();
        assert!(
            2 * none < kept.len(),
            "bench.toml: `none` on {none} of {} kept edges ({kept:?})",
            kept.len()
        );
    }
}
