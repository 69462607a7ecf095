//! The evaluation network and its training step: parameter counts, genotype errors, drop path
//! and cutout statistics, and that a step learns.

use tch::{Device, Kind, Tensor};

use super::data::cutout_keep;
use super::net::drop_path;
use super::{Trainer, count_params};
use crate::config::Config;
use crate::genotype::Genotype;

pub use crate::genotype::DARTS_V2;

fn cfg(sets: &[&str]) -> Config {
    let sets: Vec<String> = sets.iter().map(|s| (*s).to_string()).collect();
    Config::load(None, &sets).unwrap()
}

/// DARTS's published count for its V2 cell at C = 36, 20 cells: 3.3 M (3,349,342 exactly, the
/// auxiliary head adding 476,426).
#[test]
fn darts_v2_at_paper_size_has_the_published_parameter_count() {
    let _g = crate::engine::test_rng_lock();
    let c = cfg(&["model.channels=36", "model.cells=20"]);
    let n = count_params(&c, &Genotype::parse(DARTS_V2).unwrap()).unwrap();
    assert_eq!(n.without_aux, 3_349_342);
    assert_eq!(n.with_aux, 3_825_768);
    assert_eq!(
        n.to_string(),
        "parameters: 3349342 (with auxiliary head: 3825768)"
    );
    let no_aux = cfg(&[
        "model.channels=36",
        "model.cells=20",
        "evaluation.auxiliary=false",
    ]);
    let m = count_params(&no_aux, &Genotype::parse(DARTS_V2).unwrap()).unwrap();
    assert_eq!((m.without_aux, m.with_aux), (3_349_342, 3_349_342));
}

/// The fraction of images whose op output drop path zeroes is p, and the kept ones are scaled
/// by 1 / (1 − p) (so the expectation is unchanged).
#[test]
fn drop_path_drops_the_stated_fraction_of_paths() {
    let _g = crate::engine::test_rng_lock();
    tch::manual_seed(5);
    let x = Tensor::ones([20_000, 2, 3, 3], (Kind::Float, Device::Cpu));
    for p in [0.1, 0.2, 0.5] {
        let y = drop_path(&x, p);
        let per_image = y.sum_dim_intlist([1i64, 2, 3].as_slice(), false, Kind::Float);
        let dropped = per_image.eq(0.0).to_kind(Kind::Float).mean(Kind::Float);
        let frac = dropped.double_value(&[]);
        // 20,000 draws: the standard error is below 0.0036.
        assert!((frac - p).abs() < 0.015, "p = {p}: dropped {frac}");
        let kept_value = y.max().double_value(&[]);
        assert!((kept_value - 1.0 / (1.0 - p)).abs() < 1e-5, "{kept_value}");
        let mean = y.mean(Kind::Float).double_value(&[]);
        assert!((mean - 1.0).abs() < 0.03, "p = {p}: mean {mean}");
        // Whole images: an image is all kept or all zero.
        let zeros = y
            .eq(0.0)
            .sum_dim_intlist([1i64, 2, 3].as_slice(), false, Kind::Int64);
        let partial = zeros
            .gt(0)
            .logical_and(&zeros.lt(18))
            .any()
            .int64_value(&[]);
        assert_eq!(partial, 0);
    }
}

/// Cutout zeroes one 16 × 16 square per image clipped at the border: 256 pixels when the
/// centre lies 8 or more pixels from every edge, and on average over uniform centres
/// (Σ_c clipped side / 32)² = 14² = 196 pixels of 1,024.
#[test]
fn cutout_zeroes_a_clipped_square_of_the_stated_side() {
    crate::engine::one_libtorch_thread();
    let cy = Tensor::from_slice(&[16i64, 0, 31, 8, 23]);
    let cx = Tensor::from_slice(&[16i64, 0, 31, 8, 24]);
    let keep = cutout_keep(&cy, &cx, 32, 16);
    let zeroed: Vec<i64> = Vec::try_from(keep.eq(0.0).sum_dim_intlist(
        [1i64, 2].as_slice(),
        false,
        Kind::Int64,
    ))
    .unwrap();
    // Centre (16, 16): rows and columns 8..24; (0, 0): 0..8 each; (31, 31): 23..32 each.
    assert_eq!(zeroed, vec![256, 64, 81, 256, 256]);
    assert_eq!(keep.double_value(&[0, 8, 8]), 0.0);
    assert_eq!(keep.double_value(&[0, 7, 8]), 1.0);
    assert_eq!(keep.double_value(&[0, 23, 23]), 0.0);
    assert_eq!(keep.double_value(&[0, 24, 23]), 1.0);
    // Uniform centres, as the epoch plan draws them.
    let mut rng = crate::rng::Rng::new(3);
    let n = 4000;
    let draw: Vec<i64> = (0..2 * n).map(|_| rng.below(32) as i64).collect();
    let all = Tensor::from_slice(&draw).view([2, n as i64]);
    let keep = cutout_keep(&all.get(0), &all.get(1), 32, 16);
    let mean_zeroed = keep
        .eq(0.0)
        .to_kind(Kind::Float)
        .sum(Kind::Float)
        .double_value(&[])
        / n as f64;
    let side: f64 = (0..32)
        .map(|c: i64| ((c + 8).min(32) - (c - 8).max(0)) as f64)
        .sum::<f64>()
        / 32.0;
    assert!((side - 14.0).abs() < 1e-9);
    assert!((mean_zeroed - side * side).abs() < 4.0, "{mean_zeroed}");
}

/// A few steps on one fixed batch lower its training loss (with drop path, cutout-free inputs, the
/// auxiliary head and both spaces' ops).
#[test]
fn steps_lower_the_loss_of_a_batch_in_both_spaces() {
    let _g = crate::engine::test_rng_lock();
    let nasp = "Genotype(normal=[('conv_3x1_1x3', 0), ('conv 3x3', 1), ('sep_7x7', 0), ('conv 1x1', 2), ('sep_5x5', 1), ('dil_conv_3x3', 3), ('skip_connect', 0), ('sep_3x3', 4)], normal_concat=range(2, 6), reduce=[('max_pool_5x5', 0), ('avg_pool_3x3', 1), ('max_pool_7x7', 0), ('skip_connect', 2), ('max_pool_3x3', 1), ('skip_connect', 3), ('skip_connect', 0), ('avg_pool_3x3', 4)], reduce_concat=range(2, 6))";
    for (space, text) in [("darts", DARTS_V2), ("nasp", nasp)] {
        let c = cfg(&[
            &format!("model.space=\"{space}\""),
            "model.channels=4",
            "model.cells=3",
            "train.epochs=4",
            "train.lr=0.05",
        ]);
        let g = Genotype::parse(text).unwrap();
        let mut t = Trainer::new(&c, &g, Device::Cpu, None).unwrap();
        t.progress.epoch = 2; // drop path on: 0.2 · 2 / 4
        assert!((t.drop_prob() - 0.1).abs() < 1e-12);
        tch::manual_seed(1);
        let x = Tensor::randn([16, 3, 32, 32], (Kind::Float, Device::Cpu));
        let y = Tensor::randint(10, [16], (Kind::Int64, Device::Cpu));
        let losses: Vec<f64> = (0..15)
            .map(|_| t.step_on(&x, &y).loss.double_value(&[]))
            .collect();
        let (loss0, loss1) = (losses[0], losses[12..].iter().sum::<f64>() / 3.0);
        assert!(loss1 < loss0 - 0.5, "{space}: {losses:?}");
        assert_eq!(t.progress().global_step, 15);
    }
}

/// Each bad genotype names what is wrong and where.
#[test]
fn bad_genotypes_are_named() {
    let lists = cfg(&[]).model.op_lists();
    let with = |from: &str, to: &str| {
        let text = DARTS_V2.replacen(from, to, 1);
        Genotype::parse(&text)
            .unwrap()
            .check_trainable(&lists)
            .unwrap_err()
            .to_string()
    };
    let e = with("('sep_conv_3x3', 0)", "('conv 3x3', 0)");
    assert!(
        e.contains("`normal` position 0") && e.contains("'conv 3x3'") && e.contains("model.space"),
        "{e}"
    );
    let e = with("('dil_conv_3x3', 2)", "('dil_conv_3x3', 5)");
    assert!(
        e.contains("`normal` position 7") && e.contains("input 5"),
        "{e}"
    );
    let e = with("('max_pool_3x3', 0)", "('none', 0)");
    assert!(
        e.contains("`reduce` position 0") && e.contains("none"),
        "{e}"
    );
    let e = with("reduce_concat=[2, 3, 4, 5]", "reduce_concat=[2, 3, 4, 9]");
    assert!(e.contains("reduce_concat") && e.contains("state 9"), "{e}");
    assert!(DARTS_V2.contains("('sep_conv_3x3', 0)"));
    Genotype::parse(DARTS_V2)
        .unwrap()
        .check_trainable(&lists)
        .unwrap();
}

/// `init` applies to the trained network as to the search: the reference draws a depthwise
/// convolution's weights from U(±1/√(C·k·k)) with the full C, libtorch's default (kaiming) from
/// a √(6·C) times wider range.
#[test]
fn init_follows_the_config() {
    let _g = crate::engine::test_rng_lock();
    let g = Genotype::parse(DARTS_V2).unwrap();
    let bound = |init: &str| {
        let c = cfg(&[
            &format!("init=\"{init}\""),
            "model.channels=8",
            "model.cells=3",
        ]);
        let t = Trainer::new(&c, &g, Device::Cpu, None).unwrap();
        let vars = t.variables();
        let dw = vars
            .iter()
            .find(|(k, _)| k == "net.cells.0.ops.0.a.dw.weight")
            .map(|(_, v)| v.shallow_clone())
            .unwrap();
        // Cell 0 is normal: C = 8 channels, 3 x 3 depthwise.
        assert_eq!(dw.size(), vec![8, 1, 3, 3]);
        dw.abs().max().double_value(&[])
    };
    let reference = bound("reference");
    let kaiming = bound("kaiming");
    let limit = 1.0 / (8.0f64 * 9.0).sqrt();
    assert!(reference <= limit && reference > 0.5 * limit, "{reference}");
    assert!(kaiming > 1.5 * limit, "{kaiming}");
}

/// The training batches carry the cutout: over an epoch of synthetic images, each image has
/// on average 3 × 196 exact zeros (the square on every channel; a normalised pixel is almost
/// never exactly 0 otherwise), and none without cutout. Test images are not cut.
#[test]
fn training_batches_are_cut_out_and_test_images_are_not() {
    crate::engine::one_libtorch_thread();
    use super::data::TrainData;
    use crate::dataset::synthetic;
    let (train, test) = (synthetic(600, 1), synthetic(50, 2));
    let zeros = |cut: i64| {
        let d = TrainData::new(&train, &test, 32, cut, Device::Cpu);
        let mut rng = crate::rng::Rng::new(4);
        let plan = d.plan(&mut rng);
        let (x, _) = d.batch(&plan, 0, 600);
        let per_image = x
            .eq(0.0)
            .sum_dim_intlist([1i64, 2, 3].as_slice(), false, Kind::Float);
        let rows = d.test_chunks(64);
        let (t, _) = d.gather(&rows[0]);
        let test_zeros = t.eq(0.0).sum(Kind::Float).double_value(&[]);
        (per_image.mean(Kind::Float).double_value(&[]), test_zeros)
    };
    let (with, test_with) = zeros(16);
    let (without, _) = zeros(0);
    assert!((with - 3.0 * 196.0).abs() < 3.0 * 12.0, "{with}");
    assert!(without < 1.0, "{without}");
    assert!(test_with < 1.0, "{test_with}");
}

/// The NASP-only ops (which the PyTorch peer does not build) cost what the op table says plus
/// their affine batch norms: swapping one into a normal cell of C = 8 adds exactly that.
#[test]
fn nasp_ops_add_their_table_parameters_and_affine_batch_norms() {
    let _g = crate::engine::test_rng_lock();
    let base = "Genotype(normal=[('skip_connect', 0), ('skip_connect', 1), ('skip_connect', 0), ('skip_connect', 1), ('skip_connect', 2), ('skip_connect', 3), ('skip_connect', 4), ('skip_connect', 0)], normal_concat=range(2, 6), reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=range(2, 6))";
    // One normal cell (cell 0, C = 8 channels), then the two reduction cells.
    let c = cfg(&["model.space=\"nasp\"", "model.channels=8", "model.cells=3"]);
    let count = |text: &str| count_params(&c, &Genotype::parse(text).unwrap()).unwrap();
    let n0 = count(base);
    let ch = 8usize;
    for (op, bns) in [
        ("conv_3x1_1x3", 1),
        ("conv 1x1", 1),
        ("conv 3x3", 1),
        ("sep_3x3", 2),
        ("sep_5x5", 2),
        ("sep_7x7", 2),
        ("dil_conv_3x3", 1),
    ] {
        let with = base.replacen("('skip_connect', 0)", &format!("('{op}', 0)"), 1);
        let table = crate::space::lookup(op).unwrap().kind.params(ch as i64) as usize;
        let n = count(&with);
        assert_eq!(n.without_aux - n0.without_aux, table + bns * 2 * ch, "{op}");
        assert_eq!(n.with_aux - n.without_aux, n0.with_aux - n0.without_aux);
    }
    // Larger max pools have no parameters either.
    for op in ["max_pool_5x5", "max_pool_7x7", "avg_pool_3x3"] {
        let with = base.replacen("('max_pool_3x3', 0)", &format!("('{op}', 0)"), 1);
        assert_eq!(count(&with), n0, "{op}");
    }
}
