//! Unit tests of the search: the NASP architecture gradient against its reference, DARTS's
//! second order against a finite difference, each speed switch against plain steps, evaluation.
//! Every test that builds a search or draws from libtorch's generator holds
//! [`crate::engine::test_rng_lock`].

use std::collections::HashMap;

use super::graph::GRAPH_WARMUP;
use super::*;
use crate::arch::ArchMatrix;
use crate::config::Switch;
use crate::engine::ops::{BnMode, is_channels_last};
use crate::engine::test_rng_lock;
use crate::space::Space;

/// A tiny NASP search (C = 4, 3 cells, 4 × 8 px batches unless `extra` says otherwise).
fn tiny(space: &str, extra: &[&str]) -> Config {
    let mut sets = vec![
        format!("model.space=\"{space}\""),
        "model.channels=4".into(),
        "model.cells=3".into(),
        "train.batch_size=4".into(),
        "data.image_size=8".into(),
    ];
    sets.extend(extra.iter().map(|s| s.to_string()));
    Config::load(None, &sets).unwrap()
}

/// For the GPU tests: a CUDA device, and convolutions at fp32 precision (cuDNN's default
/// TF32 rounds differently per algorithm, which would blur the comparisons).
fn gpu_test_setup() {
    assert!(tch::Cuda::is_available(), "no CUDA device");
    crate::engine::native::set_tf32(false).unwrap();
}

/// Sets A to uniform random values (seeded) and re-selects Ā.
fn random_arch(s: &mut Search, seed: i64) {
    tch::manual_seed(seed);
    for a in &s.arch {
        let r = Tensor::rand(a.size(), (Kind::Float, a.device()));
        tch::no_grad(|| a.shallow_clone().copy_(&r));
    }
    s.refresh_host_arch();
}

/// On a GPU: the NASP architecture gradient and the batch-norm statistics with the captured,
/// replayed architecture pass equal those of eager passes, over steps whose Ā changes.
#[test]
#[ignore = "needs a CUDA device; scripts/gpu-check.sh runs it"]
fn cuda_graph_arch_pass_matches_eager() {
    let _rng = test_rng_lock();
    gpu_test_setup();
    let mut cfg = tiny("nasp", &["train.batch_size=8", "data.image_size=16"]);
    let dev = Device::Cuda(0);
    cfg.cuda_graphs = true;
    let mut graphed = Search::new(&cfg, dev, None).unwrap();
    cfg.cuda_graphs = false;
    let mut eager = Search::new(&cfg, dev, None).unwrap();
    tch::manual_seed(7);
    for step in 0..6 {
        for i in 0..2 {
            let a = Tensor::rand(graphed.arch[i].size(), (Kind::Float, dev));
            tch::no_grad(|| {
                graphed.arch[i].shallow_clone().copy_(&a);
                eager.arch[i].shallow_clone().copy_(&a);
            });
        }
        graphed.refresh_host_arch();
        eager.refresh_host_arch();
        let x = Tensor::randn([8, 3, 16, 16], (Kind::Float, dev));
        let y = Tensor::randint(10, [8], (Kind::Int64, dev));
        let (gg, lg) = graphed.nasp_arch_grad(&x, &y, false);
        let (ge, le) = eager.nasp_arch_grad(&x, &y, false);
        assert!((lg.double_value(&[]) - le.double_value(&[])).abs() < 1e-4);
        for i in 0..2 {
            let d = (&gg[i] - &ge[i]).norm().double_value(&[]);
            let n = ge[i].norm().double_value(&[]);
            assert!(d <= 1e-4 * n.max(1e-12), "step {step} cell {i}: {d} vs {n}");
        }
        let (vg, ve) = (graphed.vs.variables(), eager.vs.variables());
        for (k, v) in &vg {
            let d = (v - &ve[k]).abs().max().double_value(&[]);
            assert!(d < 1e-4, "step {step} {k}: {d}");
        }
    }
    assert!(!graphed.graph.off, "the graph path was turned off");
    assert!(graphed.graph.is_captured(), "nothing was captured");
    assert_eq!(graphed.graph_replays(), 6 - GRAPH_WARMUP as u64);
    assert_eq!(graphed.take_notices(), Vec::<String>::new());
}

/// `steps` NASP steps of two copies of one tiny search, the second changed by `switch` (a
/// speed switch): same losses and architecture gradients, and every weight and batch-norm
/// statistic moved by the same amount (within `tol` of its own change). A stays put
/// (architecture learning rate 0): Adam's first steps turn a rounding-level difference of a
/// near-zero gradient into a full step either way, which would compare the selections rather
/// than the switch. Returns the switched search.
fn switch_changes_nothing(
    dev: Device,
    steps: usize,
    tol: f64,
    switch: impl Fn(&mut Search),
) -> Search {
    let mut cfg = tiny(
        "nasp",
        &[
            "train.batch_size=8",
            "channels_last=false",
            "cuda_graphs=false",
        ],
    );
    cfg.arch.lr = 0.0;
    let mut plain = Search::new(&cfg, dev, None).unwrap();
    let mut other = Search::new(&cfg, dev, None).unwrap();
    switch(&mut other);
    random_arch(&mut plain, 3);
    // The same start for both, whatever other tests drew from the global RNG meanwhile.
    tch::no_grad(|| {
        let from = plain.vs.variables();
        for (k, v) in other.vs.variables() {
            v.shallow_clone().copy_(&from[&k]);
        }
        for i in 0..2 {
            other.arch[i].shallow_clone().copy_(&plain.arch[i]);
        }
    });
    other.refresh_host_arch();
    let before: HashMap<String, Tensor> = plain
        .vs
        .variables()
        .into_iter()
        .map(|(k, v)| (k, v.copy()))
        .collect();
    let max = |t: &Tensor| t.abs().max().double_value(&[]);
    // Within `tol` of `b`, plus rounding of values of size `scale` (a running mean near 0
    // moves by rounding noise only).
    let near = |a: &Tensor, b: &Tensor, scale: f64| {
        max(&(a - b)) <= tol * max(b) + tol * 1e-3 * scale.max(1.0)
    };
    let close = |a: &Tensor, b: &Tensor| near(a, b, max(b));
    for step in 0..steps {
        let x = Tensor::randn([8, 3, 8, 8], (Kind::Float, dev));
        let y = Tensor::randint(10, [8], (Kind::Int64, dev));
        let p = plain.step_on(&x, &y, &x, &y);
        let u = other.step_on(&x, &y, &x, &y);
        let v = |t: &Tensor| t.double_value(&[]);
        assert!(
            close(&u.loss, &p.loss),
            "step {step}: loss {} vs {}",
            v(&u.loss),
            v(&p.loss)
        );
        let (ua, pa) = (u.arch_loss.unwrap(), p.arch_loss.unwrap());
        assert!(
            close(&ua, &pa),
            "step {step}: arch loss {} vs {}",
            v(&ua),
            v(&pa)
        );
    }
    let (vp, vu) = (plain.vs.variables(), other.vs.variables());
    let mut moved = 0;
    for (k, v) in &vp {
        let (dp, du) = (v - &before[k], &vu[k] - &before[k]);
        let scale = max(&before[k]);
        assert!(
            near(&du, &dp, scale),
            "{k}: changed {} vs {}",
            max(&du),
            max(&dp)
        );
        moved += usize::from(max(&dp) > 0.0);
    }
    assert!(moved > 100, "only {moved} variables changed");
    for i in 0..2 {
        // Adam's first moment: a running mean of the architecture gradients.
        let (g, h) = (&plain.adam.m[i], &other.adam.m[i]);
        assert!(max(g) > 0.0);
        assert!(close(h, g), "architecture gradient {i}");
    }
    // Evaluation mode (running statistics) too.
    let x = Tensor::randn([8, 3, 8, 8], (Kind::Float, dev));
    let eval = |s: &Search| tch::no_grad(|| s.forward(&x, CellMix::sparse(&s.selection), false));
    assert!(close(&eval(&other), &eval(&plain)), "evaluation logits");
    other
}

fn unit_affine(s: &mut Search) {
    s.supernet().set_unit_affine_bn();
}

#[test]
fn unit_affine_batch_norm_changes_nothing_on_cpu() {
    let _rng = test_rng_lock();
    switch_changes_nothing(Device::Cpu, 2, 1e-5, unit_affine);
}

#[test]
fn channels_last_changes_nothing_on_cpu() {
    let _rng = test_rng_lock();
    switch_changes_nothing(Device::Cpu, 2, 1e-3, |s| s.supernet().channels_last = true);
}

/// With `channels_last`, the node outputs of a pass and everything the architecture pass
/// traces (selected and Ā-weighted mixtures) are channels-last: a pass that fell back to
/// N, C, H, W would pay a layout copy per op.
fn check_channels_last_layout(dev: Device) {
    for space in ["nasp", "darts"] {
        let mut s = Search::new(&tiny(space, &[]), dev, None).unwrap();
        s.supernet().channels_last = true;
        random_arch(&mut s, 4);
        let x = Tensor::randn([4, 3, 8, 8], (Kind::Float, dev));
        let mix = CellMix::sparse(&s.selection);
        let (_, nodes) = tch::no_grad(|| s.net.forward_nodes(&x, mix, BnMode::Train, false));
        let abar = s.selection_tensors();
        let w = s.softmax_weights(true);
        let (_, dense) = tch::no_grad(|| {
            s.net
                .forward_nodes(&x, CellMix::dense(&w), BnMode::Train, false)
        });
        for (what, all) in [("sparse", &nodes), ("dense", &dense)] {
            for (c, cell) in all.iter().enumerate() {
                for (n, t) in cell.iter().enumerate() {
                    let st = t.stride();
                    assert!(
                        is_channels_last(t),
                        "{space} {what} cell {c} node {n}: {st:?}"
                    );
                }
            }
        }
        for select in [true, false] {
            let trace = s.arch_pass_eager(&x, &abar, select);
            // The activations (not the per-channel batch-norm statistics beside them).
            let traced: Vec<&Tensor> = trace
                .tensors()
                .into_iter()
                .filter(|t| t.dim() == 4)
                .collect();
            assert!(traced.len() > 10);
            for t in traced {
                let st = t.stride();
                assert!(
                    is_channels_last(t),
                    "{space} select={select}: traced {st:?}"
                );
            }
        }
    }
}

#[test]
fn channels_last_keeps_the_layout() {
    let _rng = test_rng_lock();
    check_channels_last_layout(Device::Cpu);
}

/// On a GPU the unit-affine batch norms run through cuDNN instead of libtorch's kernels:
/// the same search within rounding, and no libtorch kernel left of the batch norms that
/// normalise (forward transform, backward) in a profiled step, while a step without the
/// switch has them. (cuDNN batch-norm kernels appear in both: the stem's affine batch norm
/// takes cuDNN's path anyway.) The all-ops pass only collects statistics
/// (`batch_norm_update_stats`, libtorch's kernel either way), so that kernel stays in both.
#[test]
#[ignore = "needs a CUDA device; scripts/gpu-check.sh runs it"]
fn cudnn_batch_norm_matches_native() {
    let _rng = test_rng_lock();
    gpu_test_setup();
    let mut cudnn = switch_changes_nothing(Device::Cuda(0), 2, 1e-3, unit_affine);
    let mut native = Search::new(&cudnn.cfg.clone(), Device::Cuda(0), None).unwrap();
    for (s, want_native) in [(&mut cudnn, false), (&mut native, true)] {
        let x = Tensor::randn([8, 3, 8, 8], (Kind::Float, Device::Cuda(0)));
        let y = Tensor::randint(10, [8], (Kind::Int64, Device::Cuda(0)));
        s.step_on(&x, &y, &x, &y);
        crate::engine::native::profile_begin(true).unwrap();
        s.step_on(&x, &y, &x, &y);
        tch::Cuda::synchronize(0);
        let kernels = crate::engine::native::profile_end(None, 100_000).unwrap();
        let has_native = kernels.contains("batch_norm_transform_input")
            || kernels.contains("batch_norm_backward");
        assert_eq!(has_native, want_native, "kernels:\n{kernels}");
    }
}

/// After `GRAPH_WARMUP + 4` steps with `cuda_graphs`: the graph path stayed on, captured once
/// and replayed at every step after warm-up, with nothing to report.
fn assert_graph_replayed(s: &mut Search) {
    assert!(!s.graph.off, "the graph path was turned off");
    assert!(s.graph.is_captured(), "nothing was captured");
    assert_eq!(
        s.graph_replays(),
        4,
        "every step after warm-up replays the graph"
    );
    assert_eq!(s.take_notices(), Vec::<String>::new());
}

/// On a GPU, full steps with the architecture pass replayed as a CUDA graph (the GPU default)
/// match plain eager steps.
#[test]
#[ignore = "needs a CUDA device; scripts/gpu-check.sh runs it"]
fn cuda_graph_steps_match_plain_steps() {
    let _rng = test_rng_lock();
    gpu_test_setup();
    let mut s = switch_changes_nothing(Device::Cuda(0), GRAPH_WARMUP + 4, 1e-3, |s| {
        s.cfg.cuda_graphs = true;
    });
    assert_graph_replayed(&mut s);
}

/// On a GPU, full steps with both GPU speed switches on (the CUDA graph replayed beside the
/// sparse pass, reading weights each weight step changed; cuDNN batch norms) match plain
/// eager steps.
#[test]
#[ignore = "needs a CUDA device; scripts/gpu-check.sh runs it"]
fn all_gpu_switches_match_plain_steps() {
    let _rng = test_rng_lock();
    gpu_test_setup();
    let mut s = switch_changes_nothing(Device::Cuda(0), GRAPH_WARMUP + 4, 1e-3, |s| {
        s.cfg.cuda_graphs = true;
        s.supernet().set_unit_affine_bn();
    });
    assert_graph_replayed(&mut s);
}

/// The architecture pass mixing by the host's selection (eager) and by Ā as data (what a
/// CUDA graph records) give the same logits and the same traces.
#[test]
fn selected_and_weighted_mixtures_agree() {
    let _rng = test_rng_lock();
    for layout in ["false", "true"] {
        for space in ["nasp", "darts"] {
            let cfg = tiny(space, &[&format!("channels_last={layout}")]);
            let mut s = Search::new(&cfg, Device::Cpu, None).unwrap();
            random_arch(&mut s, 9);
            let abar = s.selection_tensors();
            let x = Tensor::randn([4, 3, 8, 8], (Kind::Float, Device::Cpu));
            let a = s.arch_pass_eager(&x, &abar, true);
            let b = s.arch_pass_eager(&x, &abar, false);
            let d = (&a.logits - &b.logits).abs().max().double_value(&[]);
            assert!(d < 1e-5, "{space} {layout}: logits differ by {d}");
            assert!(a.logits.abs().max().double_value(&[]) > 0.0);
            let (ta, tb) = (a.tensors(), b.tensors());
            assert_eq!(ta.len(), tb.len());
            for (u, v) in ta.iter().zip(&tb) {
                let d = (*u - *v).abs().max().double_value(&[]);
                assert!(d < 1e-4, "{space} {layout}: traces differ by {d}");
            }
        }
    }
}

/// An evaluation asks its cancel callback before each chunk and stops when told.
#[test]
fn evaluation_stops_when_cancelled() {
    let _rng = test_rng_lock();
    let imgs = crate::dataset::synthetic(1200, 1);
    let data = DeviceData::new(&imgs, 0.5, 8, Device::Cpu);
    let mut s = Search::new(&tiny("nasp", &[]), Device::Cpu, Some(data)).unwrap();
    let mut asked = 0;
    let full = s.evaluate_until(0, &mut || {
        asked += 1;
        false
    });
    assert!(full.is_some_and(|e| e.loss.is_finite() && e.acc >= 0.0));
    assert_eq!(asked, 2, "600 validation images in chunks of 512");
    let mut asked = 0;
    let cut = s.evaluate_until(0, &mut || {
        asked += 1;
        asked == 2
    });
    assert!(cut.is_none());
}

/// The NASP weight step asks autograd only for the parameters of Ā's ops; the gradients
/// must be exactly those of asking for every parameter.
#[test]
fn nasp_weight_grads_cover_every_parameter_the_step_uses() {
    let _rng = test_rng_lock();
    let mut s = Search::new(&tiny("nasp", &[]), Device::Cpu, None).unwrap();
    random_arch(&mut s, 4);
    let x = Tensor::randn([4, 3, 8, 8], (Kind::Float, Device::Cpu));
    let y = Tensor::randint(10, [4], (Kind::Int64, Device::Cpu));
    let loss = || cross_entropy(&s.forward(&x, CellMix::sparse(&s.selection), true), &y);
    let all = Tensor::run_backward(&[&loss()], &s.params, false, false);
    let ours = s.weight_grads(&loss());
    let mut used = 0;
    for (i, (a, b)) in all.iter().zip(&ours).enumerate() {
        assert_eq!(a.defined(), b.defined(), "{}", s.param_names[i]);
        if a.defined() {
            used += 1;
            assert!((a - b).abs().max().double_value(&[]) < 1e-6);
        }
    }
    assert!(
        used > 10 && used < s.params.len() / 2,
        "{used} of {}",
        s.params.len()
    );
}

/// A tiny search of algorithm `alg` (C = 4, 3 cells, 8 × 8 px batches of 8, seed 5).
fn tiny_alg(alg: &str) -> Config {
    let sets: Vec<String> = [
        &format!("algorithm=\"{alg}\""),
        "model.channels=4",
        "model.cells=3",
        "train.batch_size=8",
        "data.image_size=8",
        "seed=5",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    Config::load(None, &sets).unwrap()
}

/// A copy of every variable of `s`, by name order.
pub(super) fn snapshot(s: &Search) -> Vec<(String, Tensor)> {
    let mut v: Vec<(String, Tensor)> =
        s.vs.variables()
            .into_iter()
            .map(|(k, v)| (k, v.copy()))
            .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// The NASP architecture pass (fused ops, autograd only through Ā's ops) against the reference
/// pass (every op on its own edge, autograd through everything): same ∂L/∂Ā, and the same batch
/// norm statistics recorded, in both search spaces.
#[test]
fn nasp_arch_gradient_equals_full_backward() {
    let _rng = test_rng_lock();
    // Both spaces, in both activation layouts.
    for (space, layout) in [
        (Space::Nasp, Switch::Off),
        (Space::Darts, Switch::Off),
        (Space::Nasp, Switch::On),
        (Space::Darts, Switch::On),
    ] {
        let mut c = tiny_alg("nasp");
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

/// The unrolled objective F(α) = L_val(w − η(μ·m + ∇_w L_train(w, α) + λw), α) with the SGD
/// momentum buffers m as they are (zeros before the first weight step), evaluated in double
/// precision; the weights are restored afterwards.
fn unrolled_objective(s: &Search, xt: &Tensor, yt: &Tensor, xv: &Tensor, yv: &Tensor) -> f64 {
    let eta = s.lr();
    let lambda = s.cfg.train.weight_decay;
    let mu = s.cfg.train.momentum;
    let saved: Vec<Tensor> = s.params.iter().map(|p| p.detach().copy()).collect();
    let loss_t = s.dense_loss(&s.softmax_weights(true), xt, yt);
    let g = Tensor::run_backward(&[&loss_t], &s.params, false, false);
    tch::no_grad(|| {
        for (i, (p, g)) in s.params.iter().zip(&g).enumerate() {
            if g.defined() {
                let m = s.sgd.buffer_or_zeros(i, p);
                let upd = (m * mu + g + p * lambda) * eta;
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

/// DARTS second order's ∇_α against central differences of the unrolled objective on a few
/// entries: relative error below 1e-4, and first order clearly further off.
fn check_darts2_against_fd(s: &mut Search, b: [&Tensor; 4], when: &str) {
    let [xt, yt, xv, yv] = b;
    let (ours, _) = s.darts2_arch_grad(xt, yt, xv, yv);
    let (first, _) = s.darts1_arch_grad(xv, yv);
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
                let a = s.arch[cell].shallow_clone();
                let mut entry = a.get(e).get(k);
                let _ = entry.g_add_scalar_(delta);
            })
        };
        shift(h);
        let fp = unrolled_objective(s, xt, yt, xv, yv);
        shift(-2.0 * h);
        let fm = unrolled_objective(s, xt, yt, xv, yv);
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
        "{when}: darts2 vs finite difference: relative error {rel}\nfd   {num:?}\nours {got:?}"
    );
    // The second-order term is not negligible here, so the check can tell first from second order.
    let diff1: Vec<f64> = num.iter().zip(&fo).map(|(a, b)| a - b).collect();
    assert!(
        norm(&diff1) / norm(&num) > 20.0 * rel,
        "{when}: first order is as close: {fo:?}"
    );
}

/// At the first step (no momentum yet) and again after a weight step (momentum buffers non-zero:
/// the virtual step's μ·m term is then part of the objective; leaving it out, or using the
/// buffer with the wrong sign, fails the second check).
#[test]
fn darts2_arch_gradient_matches_a_double_precision_finite_difference() {
    let _rng = test_rng_lock();
    let c = tiny_alg("darts2");
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
    check_darts2_against_fd(&mut s, [&xt, &yt, &xv, &yv], "first step");
    let _ = s.weight_step(&xt, &yt);
    let m: f64 = (0..s.params.len())
        .map(|i| {
            let b = s.sgd.buffer_or_zeros(i, &s.params[i]);
            b.abs().sum(Kind::Double).double_value(&[])
        })
        .sum();
    assert!(m > 0.0, "the momentum buffers are still zero");
    check_darts2_against_fd(&mut s, [&xt, &yt, &xv, &yv], "second step");
}

/// `init = "reference"`: every weight inside the reference's bounds, spread like the uniform
/// draw, per layer type, in both spaces; `kaiming` keeps libtorch's (larger) draws.
#[test]
fn reference_init_bounds_per_layer_type() {
    let _rng = test_rng_lock();
    let c = 16i64;
    let size = format!("model.channels={c}");
    for space in ["darts", "nasp"] {
        let s = Search::new(&tiny(space, &[&size]), Device::Cpu, None).unwrap();
        let mut seen = HashMap::<&str, usize>::new();
        for (name, t) in s.vs.variables() {
            let shape = t.size();
            let max = t.abs().max().double_value(&[]);
            let (kind, lo, hi) = match (name.rsplit('.').next().unwrap(), shape.len()) {
                ("running_mean" | "running_var", _) => continue,
                ("weight", 1) => ("bn scale", 0.0, 1.0),
                ("bias", 1) if name.contains("classifier") => {
                    let b =
                        1.0 / (s.vs.variables()["net.classifier.weight"].size()[1] as f64).sqrt();
                    ("linear bias", -b, b)
                }
                ("bias", 1) => ("bn shift", 0.0, 0.0),
                ("weight", 2) => {
                    let b = 1.0 / (shape[1] as f64).sqrt();
                    ("linear", -b, b)
                }
                ("weight", 4) if name.contains(".dw.") => {
                    // Depthwise: the full C_in (= C_out), not C_in / groups = 1.
                    let b = 1.0 / ((shape[0] * shape[2] * shape[3]) as f64).sqrt();
                    ("depthwise conv", -b, b)
                }
                ("weight", 4) => {
                    let b = 1.0 / ((shape[1] * shape[2] * shape[3]) as f64).sqrt();
                    ("conv", -b, b)
                }
                other => panic!("{name}: an unexpected parameter {other:?}"),
            };
            *seen.entry(kind).or_default() += 1;
            let min = t.min().double_value(&[]);
            let top = t.max().double_value(&[]);
            assert!(
                min >= lo - 1e-7 && top <= hi + 1e-7,
                "{space} {name} ({kind}): [{min}, {top}] outside [{lo}, {hi}]"
            );
            if t.numel() >= 200 && hi > lo {
                // The standard deviation of U(lo, hi) is (hi - lo)/√12.
                let std = f64::try_from(t.std(true)).unwrap();
                let want = (hi - lo) / 12f64.sqrt();
                assert!(
                    (std / want - 1.0).abs() < 0.15,
                    "{space} {name}: std {std} vs {want}"
                );
            }
            assert!(max.is_finite());
        }
        for kind in [
            "conv",
            "depthwise conv",
            "linear",
            "linear bias",
            "bn scale",
            "bn shift",
        ] {
            assert!(
                seen.get(kind).copied().unwrap_or(0) > 0,
                "{space}: no {kind} seen: {seen:?}"
            );
        }
        // A depthwise 3 × 3 at C = 16 draws within ±1/√144 = ±0.083; libtorch's Kaiming-uniform
        // (fan-in 9) within ±0.82: the kaiming setting keeps those larger draws.
        let k = Search::new(
            &tiny(space, &[&size, "init=\"kaiming\""]),
            Device::Cpu,
            None,
        )
        .unwrap();
        let dw_max = |s: &Search| {
            s.vs.variables()
                .iter()
                .filter(|(n, t)| n.contains(".dw.") && t.size()[2] == 3)
                .map(|(_, t)| t.abs().max().double_value(&[]))
                .fold(0.0, f64::max)
        };
        assert!(dw_max(&s) <= 1.0 / 12.0 + 1e-7);
        assert!(dw_max(&k) > 0.3, "kaiming: {}", dw_max(&k));
    }
}

/// The `l2` regulariser's burden: each normal op's share of the parameters at C = 12, in the
/// normal list's order (spec §3.8's table); none without `l2` or under DARTS. A changed
/// formula, C or order fails.
#[test]
fn burden_values_match_the_spec_table() {
    let want = [
        0.0, 0.15965, 0.04656, 0.02661, 0.23947, 0.09313, 0.16408, 0.27051,
    ];
    let c = tiny("nasp", &["arch.l2=0.5"]);
    let lists = c.model.op_lists();
    let b = method::burden(&c, &lists, Device::Cpu).unwrap();
    let got = Vec::<f32>::try_from(b.reshape([-1])).unwrap();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert!((f64::from(*g) - w).abs() < 1e-5, "{got:?} vs {want:?}");
    }
    assert!(method::burden(&tiny("nasp", &[]), &lists, Device::Cpu).is_none());
    let d = tiny("nasp", &["arch.l2=0.5", "algorithm=\"darts1\""]);
    assert!(method::burden(&d, &lists, Device::Cpu).is_none());
}

/// NASP architecture steps as spec §3.3 orders them, computed by hand on the host from a
/// search's weights and A: Ā = prox(A); ∂L/∂Ā by autograd through every op mixed by Ā (the
/// reference pass, with the burden term at Ā); Adam (its moments kept here, in f64) with its
/// coupled decay on the continuous A; the clip to [0, 1]. The next step's Ā is prox of that A.
struct HandStep {
    m: Vec<Vec<f64>>,
    v: Vec<Vec<f64>>,
    t: i32,
}

/// Where the hand-made step differs from the order of spec §3.3 (the wrong orders the test
/// must tell apart from the right one).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Order {
    /// prox → gradient at Ā → Adam (decay on A) → clip → re-select.
    Spec,
    /// The gradient of the loss mixed by the continuous A instead of Ā.
    GradientAtA,
    /// The clip before Adam (A leaves the box).
    ClipBeforeAdam,
    /// Adam's decay on Ā instead of A.
    DecayOnAbar,
}

impl HandStep {
    fn new(arch: &[ArchMatrix; 2]) -> Self {
        let zeros = |m: &ArchMatrix| vec![0.0; m.data.len()];
        HandStep {
            m: arch.iter().map(zeros).collect(),
            v: arch.iter().map(zeros).collect(),
            t: 0,
        }
    }

    /// One architecture step on (x, y) from `a` with `s`'s weights and hyper-parameters, in
    /// `order`; returns A after it.
    fn step(
        &mut self,
        s: &Search,
        a: &[ArchMatrix; 2],
        x: &Tensor,
        y: &Tensor,
        order: Order,
    ) -> [ArchMatrix; 2] {
        let nodes = s.cfg.model.nodes;
        let abar: Vec<ArchMatrix> = a
            .iter()
            .map(|m| proximal(m, nodes, None).to_matrix(m.cols))
            .collect();
        let point = |m: &ArchMatrix| {
            Tensor::from_slice(&m.data)
                .view([m.rows as i64, m.cols as i64])
                .set_requires_grad(true)
        };
        let at = if order == Order::GradientAtA {
            [point(&a[0]), point(&a[1])]
        } else {
            [point(&abar[0]), point(&abar[1])]
        };
        let loss = s.nasp_arch_loss(&at, x, y);
        let g = Tensor::run_backward(&[&loss], &[&at[0], &at[1]], false, false);
        self.t += 1;
        let c = &s.cfg.arch;
        let (b1, b2, wd, lr) = (c.betas[0], c.betas[1], c.weight_decay, c.lr);
        let (bc1, bc2) = (1.0 - b1.powi(self.t), 1.0 - b2.powi(self.t));
        let mut out = [a[0].clone(), a[1].clone()];
        for i in 0..2 {
            let g = Vec::<f32>::try_from(g[i].reshape([-1])).unwrap();
            for (j, gj) in g.iter().enumerate() {
                let mut p = f64::from(a[i].data[j]);
                if order == Order::ClipBeforeAdam {
                    p = p.clamp(0.0, 1.0);
                }
                let decay_at = if order == Order::DecayOnAbar {
                    f64::from(abar[i].data[j])
                } else {
                    p
                };
                let gj = f64::from(*gj) + wd * decay_at;
                self.m[i][j] = b1 * self.m[i][j] + (1.0 - b1) * gj;
                self.v[i][j] = b2 * self.v[i][j] + (1.0 - b2) * gj * gj;
                p -= lr * (self.m[i][j] / bc1) / ((self.v[i][j] / bc2).sqrt() + 1e-8);
                if order != Order::ClipBeforeAdam {
                    p = p.clamp(0.0, 1.0);
                }
                out[i].data[j] = p as f32;
            }
        }
        out
    }
}

/// A of `s` as host matrices (normal, reduce).
fn arch_of(s: &Search) -> [ArchMatrix; 2] {
    [0, 1].map(|i| ArchMatrix {
        rows: s.arch[i].size()[0] as usize,
        cols: s.arch[i].size()[1] as usize,
        data: Vec::<f32>::try_from(s.arch[i].detach().reshape([-1])).unwrap(),
    })
}

fn max_diff(a: &[ArchMatrix; 2], b: &[ArchMatrix; 2]) -> f64 {
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| x.data.iter().zip(&y.data))
        .map(|(p, q)| f64::from((p - q).abs()))
        .fold(0.0, f64::max)
}

/// The NASP step's order (spec §3.3: prox → gradient at Ā → Adam → clip → re-select) over three
/// architecture steps: the search's A and Ā after each step equal a step computed by hand, in
/// that order, from the same state (a second search with the same seed, which never steps).
/// Each wrong order — the gradient at A instead of Ā, the clip before Adam, Adam's decay on Ā
/// instead of A, or Ā re-selected from the A before the step — ends measurably away from what
/// the search does, so the comparison would catch it. A large architecture lr and decay, a
/// burden term and an A near the box's edges make every term visible.
#[test]
fn nasp_step_order_is_prox_gradient_adam_clip_reselect() {
    let _rng = test_rng_lock();
    let mut c = tiny_alg("nasp");
    c.arch.lr = 0.05;
    c.arch.weight_decay = 0.2;
    c.arch.l2 = 0.3;
    let mut search = Search::new(&c, Device::Cpu, None).unwrap();
    let hand = Search::new(&c, Device::Cpu, None).unwrap();
    // A uniform in [0, 1], with a tenth of its entries on the box's edges.
    let mut rng = crate::rng::Rng::new(17);
    let mut start = arch_of(&search);
    for m in &mut start {
        for v in &mut m.data {
            let u = rng.unit();
            *v = if u < 0.05 {
                0.0
            } else if u < 0.1 {
                1.0
            } else {
                rng.unit() as f32
            };
        }
    }
    search.set_arch(&start[0], &start[1]);
    let mut want = start.clone();
    let mut by_hand = HandStep::new(&start);
    let mut wrong: Vec<(Order, [ArchMatrix; 2], HandStep)> = [
        Order::GradientAtA,
        Order::ClipBeforeAdam,
        Order::DecayOnAbar,
    ]
    .into_iter()
    .map(|o| (o, start.clone(), HandStep::new(&start)))
    .collect();
    tch::manual_seed(23);
    let nodes = c.model.nodes;
    for step in 1..=3 {
        let x = Tensor::randn([8, 3, 8, 8], (Kind::Float, Device::Cpu));
        let y = Tensor::randint(10, [8], (Kind::Int64, Device::Cpu));
        let before = want.clone();
        want = by_hand.step(&hand, &want, &x, &y, Order::Spec);
        for (o, a, h) in &mut wrong {
            *a = h.step(&hand, a, &x, &y, *o);
        }
        let _ = search.arch_step_on(&x, &y, &x, &y);
        let got = arch_of(&search);
        let d = max_diff(&got, &want);
        assert!(d < 1e-4, "step {step}: A is {d} off the spec's order");
        // Ā re-selected from the A after Adam and the clip.
        let want_sel = got.clone().map(|m| proximal(&m, nodes, None));
        assert_eq!(search.selection, want_sel, "step {step}: Ā");
        // The wrong orders are far off (the tolerance above would catch each).
        for (o, a, _) in &wrong {
            let d = max_diff(&got, a);
            assert!(d > 5e-3, "step {step}: {o:?} is only {d} off");
        }
        // Ā re-selected before Adam and the clip (from the A the step started with) differs.
        let stale = before.map(|m| proximal(&m, nodes, None));
        assert_ne!(search.selection, stale, "step {step}: Ā did not change");
        // The clip held: every entry in the box, some on its edges.
        let flat: Vec<f32> = got.iter().flat_map(|m| m.data.clone()).collect();
        assert!(flat.iter().all(|v| (0.0..=1.0).contains(v)));
        assert!(flat.iter().any(|v| *v == 0.0 || *v == 1.0), "step {step}");
    }
}
