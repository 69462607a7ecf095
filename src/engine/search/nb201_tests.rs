//! Unit tests of the NAS-Bench-201 space in a search: the network's shapes and parameter counts
//! against a count made here from the benchmark's layer list, NASP's product-form gradient
//! against a backward through every op, the tie rule of the start, the genotype string, the
//! weight step's selected ops, and DARTS on the same network.

use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use super::*;
use crate::engine::nb201::Nb201Net;
use crate::engine::supernet::Mix;
use crate::engine::test_rng_lock;
use crate::nb201::{Cell, EDGES, OPS};

fn nb201(alg: &str, extra: &[&str]) -> Config {
    let mut sets: Vec<String> = [
        "model.space=\"nb201\"",
        "model.nodes=3",
        "model.channels=4",
        "model.cells=1",
        "train.batch_size=8",
        "data.image_size=8",
        "seed=5",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    sets.push(format!("algorithm=\"{alg}\""));
    sets.extend(extra.iter().map(|s| s.to_string()));
    Config::load(None, &sets).unwrap()
}

fn count(vs: &VarStore) -> i64 {
    vs.trainable_variables()
        .iter()
        .map(|t| t.numel() as i64)
        .sum()
}

/// The benchmark's network, counted layer by layer: stem conv 3×3 (no bias) + affine BN; per
/// stage N cells of width W; residual blocks W → 2W (two 3×3 convs with affine BNs and a 1×1
/// shortcut conv); a last affine BN and a linear classifier. `per_edge(W)`: an edge's weights.
fn independent_count(c: i64, n: i64, per_edge: &dyn Fn(i64, usize) -> i64) -> i64 {
    let mut total = 27 * c + 2 * c;
    let mut w = c;
    for stage in 0..3 {
        if stage > 0 {
            let o = 2 * w;
            total += 9 * w * o + 2 * o + 9 * o * o + 2 * o + w * o;
            w = o;
        }
        total += n * (0..6).map(|e| per_edge(w, e)).sum::<i64>();
    }
    total + 2 * w + w * 10 + 10
}

/// Weights of op `k` on an edge of width `w`: in the search the convolutions have a bias and a
/// non-affine batch norm, in a trained network no bias and an affine one.
fn op_params(w: i64, k: usize, trained: bool) -> i64 {
    let extra = if trained { 2 * w } else { w };
    match OPS[k] {
        "nor_conv_1x1" => w * w + extra,
        "nor_conv_3x3" => 9 * w * w + extra,
        _ => 0,
    }
}

#[test]
fn nb201_parameter_counts_match_the_layer_list() {
    let _rng = test_rng_lock();
    // The search supernet at the benchmark's size (C = 16, N = 5) and a small one.
    for (c, n) in [(16, 5), (4, 2)] {
        let vs = VarStore::new(Device::Cpu);
        let _net = Nb201Net::search(&vs.root(), c, n as usize, 10, true).unwrap();
        let want = independent_count(c, n, &|w, _| (0..5).map(|k| op_params(w, k, false)).sum());
        assert_eq!(count(&vs), want, "C = {c}, N = {n}");
    }
    // The benchmark's largest cell, all nor_conv_3x3: 1.53 M parameters.
    let vs = VarStore::new(Device::Cpu);
    let _net = Nb201Net::trained(&vs.root(), 16, 5, 10, &[3; 6], true).unwrap();
    assert_eq!(count(&vs), 1_531_546);
    // Any cell: only its ops' weights.
    for code in [0, 1234, 9999] {
        let cell = Cell::from_code(code).unwrap();
        let vs = VarStore::new(Device::Cpu);
        let _net = Nb201Net::trained(&vs.root(), 8, 2, 10, &cell.ops, true).unwrap();
        let want = independent_count(8, 2, &|w, e| op_params(w, cell.ops[e], true));
        assert_eq!(count(&vs), want, "{cell}");
    }
}

#[test]
fn nb201_forward_shapes() {
    let _rng = test_rng_lock();
    let vs = VarStore::new(Device::Cpu);
    let net = Nb201Net::search(&vs.root(), 4, 2, 10, true).unwrap();
    let x = Tensor::randn([3, 3, 16, 16], (Kind::Float, Device::Cpu));
    let sel = select_every_edge(&ArchMatrix::filled(6, 5, 0.0), Some(&[3, 1, 2, 4, 3, 1]));
    let (logits, nodes) = net.forward_nodes(&x, Mix::Sparse(&sel), BnMode::Train, false);
    assert_eq!(logits.size(), [3, 10]);
    assert_eq!(nodes.len(), 6);
    for (i, cell) in nodes.iter().enumerate() {
        let (ch, hw) = [(4, 16), (8, 8), (16, 4)][i / 2];
        assert_eq!(cell.len(), 3);
        for n in cell {
            assert_eq!(n.size(), [3, ch, hw, hw], "cell {i}");
        }
    }
    // A cell of `none` only: no path from input to output, every node zero.
    let none = select_every_edge(&ArchMatrix::filled(6, 5, 0.0), None);
    assert!(none.ops.iter().all(|o| *o == Some(0)));
    let (_, nodes) = net.forward_nodes(&x, Mix::Sparse(&none), BnMode::Train, false);
    for n in nodes.iter().flatten() {
        assert_eq!(n.abs().max().double_value(&[]), 0.0);
    }
}

/// Sets A to uniform draws (seeded) and re-selects.
fn random_a(s: &mut Search, seed: i64) {
    tch::manual_seed(seed);
    let a = Tensor::rand([6, 5], (Kind::Float, Device::Cpu));
    tch::no_grad(|| s.arch[0].shallow_clone().copy_(&a));
    s.refresh_host_arch();
}

/// The product form (a pass through Ā's ops, then the all-ops pass without autograd) against
/// the reference (every op mixed by Ā with autograd through all): the same ∂L/∂Ā, loss and
/// batch-norm statistics, for selections with `none`, the skip and both convolutions.
#[test]
fn nb201_nasp_arch_gradient_equals_full_backward() {
    let _rng = test_rng_lock();
    let mut s = Search::new(&nb201("nasp", &["model.cells=2"]), Device::Cpu, None).unwrap();
    for seed in [3, 8] {
        random_a(&mut s, seed);
        let x = Tensor::randn([8, 3, 8, 8], (Kind::Float, Device::Cpu));
        let y = Tensor::randint(10, [8], (Kind::Int64, Device::Cpu));
        let before = super::tests::snapshot(&s);
        let (fast, fast_loss) = s.nasp_arch_grad(&x, &y, false);
        let after_fast = super::tests::snapshot(&s);
        tch::no_grad(|| {
            let live = s.vs.variables();
            for (k, v) in &before {
                live[k].shallow_clone().copy_(v);
            }
        });
        let (full, full_loss) = s.nasp_arch_grad(&x, &y, true);
        let dl = (fast_loss.double_value(&[]) - full_loss.double_value(&[])).abs();
        assert!(dl < 1e-5, "seed {seed}: loss off by {dl}");
        let after_full = super::tests::snapshot(&s);
        let mut moved = 0;
        for (((k, f), (_, r)), (_, b)) in after_fast.iter().zip(&after_full).zip(&before) {
            let d = (f - r).abs().max().double_value(&[]);
            assert!(d < 1e-5, "seed {seed} {k}: statistics off by {d}");
            moved += usize::from((r - b).abs().max().double_value(&[]) > 0.0);
        }
        assert!(moved > 20, "only {moved} buffers moved");
        let d = (&fast[0] - &full[0]).abs().max().double_value(&[]);
        let scale = full[0].abs().max().double_value(&[]);
        assert!(scale > 0.0);
        assert!(
            d <= 1e-4 * scale,
            "seed {seed}: gradient off by {d} of {scale}"
        );
        assert_eq!(fast[1].size(), [0, 0]);
        // `none`'s column: its output is zero, so is its gradient.
        assert_eq!(full[0].select(1, 0).abs().max().double_value(&[]), 0.0);
    }
}

/// The tie rule: the all-equal start plus a seeded N(0, init_std²) draw. No seed starts with
/// `none` everywhere (what tie order would give), the same seed starts the same, and seeds
/// differ.
#[test]
fn nb201_start_does_not_select_none_by_tie_order() {
    let _rng = test_rng_lock();
    let start = |seed: u64| {
        let mut c = nb201("nasp", &[]);
        c.seed = seed;
        let s = Search::new(&c, Device::Cpu, None).unwrap();
        (s.selection[0].ops.clone(), s.host_arch[0].clone())
    };
    let mut seen = std::collections::HashSet::new();
    for seed in 1..=8 {
        let (ops, a) = start(seed);
        assert_eq!(ops.len(), 6);
        assert!(
            ops.iter().any(|o| *o != Some(0)),
            "seed {seed}: none everywhere"
        );
        assert!(
            a.data.iter().all(|v| (0.49..=0.51).contains(v)),
            "seed {seed}: {a:?}"
        );
        assert_eq!(start(seed).0, ops, "seed {seed} is not reproducible");
        seen.insert(ops);
    }
    assert!(seen.len() > 4, "seeds start alike: {seen:?}");
    // Without the draw (init_std = 0) the tie order would pick `none` on every edge.
    let mut c = nb201("nasp", &["arch.init_std=0.0"]);
    c.seed = 1;
    let s = Search::new(&c, Device::Cpu, None).unwrap();
    assert!(s.selection[0].ops.iter().all(|o| *o == Some(0)));
}

/// The genotype of an NB201 search is the benchmark's string of Ā's cell, and parses back.
#[test]
fn nb201_genotype_is_the_benchmark_string() {
    let _rng = test_rng_lock();
    let mut s = Search::new(&nb201("nasp", &[]), Device::Cpu, None).unwrap();
    random_a(&mut s, 4);
    let g = s.genotype();
    let cell = g.nb201_cell().unwrap();
    let ops: Vec<usize> = s.selection[0].ops.iter().map(|o| o.unwrap()).collect();
    assert_eq!(cell.ops.to_vec(), ops);
    let text = g.to_string();
    assert!(
        text.starts_with('|') && text.matches('+').count() == 2,
        "{text}"
    );
    assert_eq!(crate::genotype::Genotype::parse(&text).unwrap(), g);
    assert_eq!(
        crate::genotype::Genotype::from_json(&g.to_json()).unwrap(),
        g
    );
    let snap = s.arch_snapshot();
    assert_eq!(snap.normal.rows, EDGES.len());
    assert_eq!(snap.reduce.rows, 0);
}

/// A NASP step trains only the selected ops' weights (and those outside the cells); DARTS
/// trains every op, and its α gradient covers every column.
#[test]
fn nb201_steps_train_what_each_method_says() {
    let _rng = test_rng_lock();
    let x = Tensor::randn([8, 3, 8, 8], (Kind::Float, Device::Cpu));
    let y = Tensor::randint(10, [8], (Kind::Int64, Device::Cpu));
    let mut s = Search::new(&nb201("nasp", &[]), Device::Cpu, None).unwrap();
    random_a(&mut s, 6);
    let sel = s.selection[0].ops.clone();
    let before = super::tests::snapshot(&s);
    let _ = s.weight_step(&x, &y);
    let after = super::tests::snapshot(&s);
    let (mut selected, mut other) = (0, 0);
    for ((k, b), (_, a)) in before.iter().zip(&after) {
        let moved = (a - b).abs().max().double_value(&[]) > 0.0;
        if k.ends_with("running_mean") || k.ends_with("running_var") {
            continue;
        }
        match nasp::op_of_param(k, |_| false) {
            Some((_, e, op)) if sel[e] == Some(op) => {
                assert!(moved, "{k}: a selected op did not train");
                selected += 1;
            }
            Some(_) => {
                assert!(!moved, "{k}: an unselected op trained");
                other += 1;
            }
            None => assert!(moved, "{k}: outside the cells, not trained"),
        }
    }
    assert!(
        selected > 0 && other > 0,
        "{selected} selected, {other} other"
    );
    let mut d = Search::new(&nb201("darts1", &[]), Device::Cpu, None).unwrap();
    let (g, _) = d.darts1_arch_grad(&x, &y);
    assert_eq!(g[0].size(), [6, 5]);
    for k in 0..5 {
        assert!(
            g[0].select(1, k).abs().max().double_value(&[]) > 0.0,
            "column {k}"
        );
    }
    let out = d.step_on(&x, &y, &x, &y);
    assert!(out.loss.double_value(&[]).is_finite());
}

/// A config error names the key: nodes other than 3, op lists in the nb201 space.
#[test]
fn nb201_config_checks_name_the_key() {
    let bad = |extra: &[&str]| {
        let mut sets = vec!["model.space=\"nb201\"".to_string()];
        sets.extend(extra.iter().map(|s| s.to_string()));
        Config::load(None, &sets).unwrap_err().to_string()
    };
    assert!(bad(&["model.nodes=4"]).contains("model.nodes"));
    let e = bad(&[
        "model.nodes=3",
        "model.normal_ops=[\"none\", \"skip_connect\"]",
    ]);
    assert!(e.contains("model.normal_ops") && e.contains("nb201"), "{e}");
}
