//! The planted-architecture check (`nasp-tui check`): can the architecture step find an
//! architecture that is known to be right?
//!
//! A teacher supernet gets a random A; its proximal selection S* = prox(A) is the planted
//! architecture (the kept edges of each cell type and their ops). The teacher labels N(0, 1)
//! images with the argmax of its sparse network (S*'s ops only). A student with the teacher's
//! weights starts from the algorithm's own start (NASP: A = 0.5 everywhere; DARTS: α ~ N(0,
//! init_std²)) and runs only the architecture step, the same code as a search's
//! ([`Search::arch_step_on`]), on those images; its weights stay frozen, because what is
//! checked is the architecture machinery (the gradient at Ā, Adam, the clip, the proximal
//! re-selection), not weight training. At the end it counts how many of S*'s (edge, op) pairs
//! the student has:
//!
//! - NASP: the pairs of S* that the student's Ā keeps (same edge kept, same op);
//! - DARTS: the planted kept edges whose α row has its largest value at the planted op (DARTS
//!   has no edge selection of its own; the top-2 edge choice of its genotype rule is a
//!   different question, left out). `nasp-tui check` refuses a DARTS student (its relaxation
//!   cannot reproduce a sparse plant, and its recovery depends on the teacher seed; see the
//!   README's Self-check); the count is kept here for experiments.
//!
//! Only the cell types the network has count (with 1 or 2 cells every cell is a reduction
//! cell). The labels do not depend on A's values beyond S*, so S* is the only architecture
//! whose sparse network reproduces them exactly: a student that ends elsewhere has not learned
//! them through its architecture.
//!
//! # Batch norm
//!
//! The teacher's labels and the student's passes must see the same function of an image. A
//! search's passes all normalise by the batch's own statistics (the NASP all-ops pass records
//! running statistics, the sparse pass only uses the batch's; DARTS's passes are in train
//! mode); the running statistics are only read by evaluation, which the check never runs. So
//! the teacher labels with batch statistics too, and the images are cut once into fixed
//! batches: the teacher labels batch b as a whole and the student's step t sees exactly batch
//! t mod (number of batches), never a reshuffled one. Then, at Ā = S*, the student's sparse
//! network is the teacher's, batch for batch, bit for bit. Running statistics (eval mode)
//! would instead be those of the freshly initialised network (mean 0, variance 1), which do not
//! fit its activations, and would make the check depend on how they were warmed up.
//!
//! With `shuffle_labels` the labels are permuted across the images (the control: no
//! architecture explains them, so recovery collapses to chance).

use tch::{Device, Kind, Tensor};

use crate::arch::{ArchMatrix, num_edges};
use crate::config::{Algorithm, Config};
use crate::engine::EngineError;
use crate::engine::search::Search;
use crate::engine::supernet::is_reduction;
use crate::rng::Rng;

/// What to check: the model, the student's algorithm and the teacher's seed come from `cfg`
/// (`model`, `data.image_size`, `train.batch_size`, `arch`, `algorithm`, `seed`).
pub struct CheckSpec {
    pub cfg: Config,
    /// Labelled images (rounded down to whole batches; at least one batch).
    pub images: usize,
    /// Architecture steps of the student.
    pub steps: usize,
    /// The control: permute the labels across the images.
    pub shuffle_labels: bool,
}

/// How many of the planted (edge, op) pairs the student has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recovery {
    pub recovered: usize,
    pub total: usize,
}

impl Recovery {
    /// recovered / total (1 for an empty plant, which cannot happen with 1 node or more).
    pub fn fraction(&self) -> f64 {
        if self.total == 0 {
            1.0
        } else {
            self.recovered as f64 / self.total as f64
        }
    }
}

/// Where the student stands after a step: the step (1-based), its architecture loss, and the
/// recovery so far.
pub struct CheckStep {
    pub step: usize,
    pub loss: f64,
    pub recovery: Recovery,
}

/// The planted architecture and the labels, known before the student starts.
pub struct Planted {
    /// The planted (edge, op name) pairs of each cell type present: ("normal" | "reduce", pairs).
    pub cells: Vec<(&'static str, Vec<(usize, String)>)>,
    /// Labelled images (whole batches) and batches.
    pub images: usize,
    pub batches: usize,
    /// The share of the commonest label (a teacher that answers one class for everything would
    /// make a weak check).
    pub majority_share: f64,
}

/// A deliberate fault in the student's gradient, for the check's own tests only (to show that
/// the check fails when the architecture gradient is wrong). Users cannot reach it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    #[cfg(test)]
    FlipSign,
    #[cfg(test)]
    ShiftOps,
}

impl Fault {
    fn apply(self, _g: &mut [Tensor; 2]) {
        match self {
            Fault::None => {}
            #[cfg(test)]
            Fault::FlipSign => {
                for t in _g.iter_mut() {
                    *t = -&*t;
                }
            }
            #[cfg(test)]
            Fault::ShiftOps => {
                for t in _g.iter_mut() {
                    *t = t.roll([1], [1]);
                }
            }
        }
    }
}

/// Runs the check on `device`: `on_planted` once the labels are made, `on_step` after every
/// `report_every`-th step and the last. Returns the final recovery.
pub fn run(
    spec: &CheckSpec,
    device: Device,
    report_every: usize,
    on_planted: &mut dyn FnMut(&Planted),
    on_step: &mut dyn FnMut(&CheckStep),
) -> Result<Recovery, EngineError> {
    run_with(spec, device, report_every, Fault::None, on_planted, on_step)
}

fn run_with(
    spec: &CheckSpec,
    device: Device,
    report_every: usize,
    fault: Fault,
    on_planted: &mut dyn FnMut(&Planted),
    on_step: &mut dyn FnMut(&CheckStep),
) -> Result<Recovery, EngineError> {
    let mut teacher_cfg = spec.cfg.clone();
    teacher_cfg.algorithm = Algorithm::Nasp;
    teacher_cfg.arch.greedy = 0.0;
    let mut teacher = Search::new(&teacher_cfg, device, None)?;
    let mut rng = Rng::new(spec.cfg.seed ^ 0x7EAC_4E12);
    let a = [
        random_matrix(&teacher, 0, &mut rng),
        random_matrix(&teacher, 1, &mut rng),
    ];
    teacher.set_arch(&a[0], &a[1]);
    let planted = [
        teacher.selection()[0].pairs(),
        teacher.selection()[1].pairs(),
    ];
    let present = cell_types(spec.cfg.model.cells);

    let (xs, ys, majority_share) = labelled_batches(spec, &teacher, &mut rng, device);
    on_planted(&Planted {
        cells: describe(&teacher, &planted, present),
        images: xs.len() * spec.cfg.train.batch_size,
        batches: xs.len(),
        majority_share,
    });

    let mut student = Search::new(&spec.cfg, device, None)?;
    student.copy_weights(&teacher)?;
    drop(teacher);
    let mut rec = recovery(&mut student, &planted, present);
    for t in 0..spec.steps {
        let (x, y) = (&xs[t % xs.len()], &ys[t % ys.len()]);
        let loss = student.arch_step_edited(x, y, x, y, |g| fault.apply(g));
        let last = t + 1 == spec.steps;
        if last || (report_every > 0 && (t + 1) % report_every == 0) {
            rec = recovery(&mut student, &planted, present);
            on_step(&CheckStep {
                step: t + 1,
                loss: loss.double_value(&[]),
                recovery: rec,
            });
        }
    }
    Ok(rec)
}

/// Which cell types the network has (normal, reduce).
fn cell_types(cells: usize) -> [bool; 2] {
    let red = (0..cells).filter(|&i| is_reduction(i, cells)).count();
    [red < cells, red > 0]
}

/// A uniform random A for matrix `i` (0 normal, 1 reduce) of `s`'s shape.
fn random_matrix(s: &Search, i: usize, rng: &mut Rng) -> ArchMatrix {
    let rows = num_edges(s.config().model.nodes);
    let cols = if i == 0 {
        s.op_lists().normal.len()
    } else {
        s.op_lists().reduce.len()
    };
    ArchMatrix {
        rows,
        cols,
        data: (0..rows * cols).map(|_| rng.unit() as f32).collect(),
    }
}

/// N(0, 1) images in fixed batches and the teacher's labels for each (batch statistics, batch
/// by batch), permuted across all images for the control; and the commonest label's share.
fn labelled_batches(
    spec: &CheckSpec,
    teacher: &Search,
    rng: &mut Rng,
    device: Device,
) -> (Vec<Tensor>, Vec<Tensor>, f64) {
    let b = spec.cfg.train.batch_size.max(1);
    let batches = (spec.images / b).max(1);
    let hw = spec.cfg.data.image_size;
    tch::manual_seed(spec.cfg.seed as i64 ^ 0x1A6E);
    let xs: Vec<Tensor> = (0..batches)
        .map(|_| Tensor::randn([b as i64, 3, hw, hw], (Kind::Float, device)))
        .collect();
    let mut labels: Vec<i64> = Vec::with_capacity(batches * b);
    for x in &xs {
        let l = teacher
            .selected_logits(x)
            .argmax(-1, false)
            .to_device(Device::Cpu);
        labels.extend(Vec::<i64>::try_from(l).unwrap_or_default());
    }
    labels.resize(batches * b, 0);
    if spec.shuffle_labels {
        let perm = rng.permutation(labels.len());
        labels = perm.into_iter().map(|i| labels[i]).collect();
    }
    let mut counts = [0usize; 10];
    for &l in &labels {
        counts[(l as usize).min(9)] += 1;
    }
    let share = counts.iter().copied().max().unwrap_or(0) as f64 / labels.len() as f64;
    let ys = labels
        .chunks(b)
        .map(|c| Tensor::from_slice(c).to_device(device))
        .collect();
    (xs, ys, share)
}

/// The planted pairs with op names, for the cell types present.
fn describe(
    s: &Search,
    planted: &[Vec<(usize, usize)>; 2],
    present: [bool; 2],
) -> Vec<(&'static str, Vec<(usize, String)>)> {
    let lists = [&s.op_lists().normal, &s.op_lists().reduce];
    (0..2)
        .filter(|&i| present[i])
        .map(|i| {
            let name = if i == 0 { "normal" } else { "reduce" };
            let pairs = planted[i]
                .iter()
                .map(|&(e, k)| (e, lists[i].get(k).cloned().unwrap_or_default()))
                .collect();
            (name, pairs)
        })
        .collect()
}

/// How many planted pairs the student has (see the module doc for what counts).
fn recovery(s: &mut Search, planted: &[Vec<(usize, usize)>; 2], present: [bool; 2]) -> Recovery {
    let proximal = s.proximal();
    let snap = s.arch_snapshot();
    let alphas = [&snap.normal, &snap.reduce];
    let mut rec = Recovery {
        recovered: 0,
        total: 0,
    };
    for i in (0..2).filter(|&i| present[i]) {
        for &(e, k) in &planted[i] {
            rec.total += 1;
            let hit = if proximal {
                s.selection()[i].ops.get(e) == Some(&Some(k))
            } else {
                crate::arch::argmax(alphas[i].row(e)) == k
            };
            rec.recovered += usize::from(hit);
        }
    }
    rec
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::test_rng_lock;

    /// The check's spec at test size (the built-in default config, as `nasp-tui check` uses).
    fn spec(seed: u64, cells: usize, steps: usize) -> CheckSpec {
        let sets = [
            format!("seed={seed}"),
            format!("model.cells={cells}"),
            "model.channels=8".to_string(),
            "data.image_size=16".to_string(),
            "train.batch_size=64".to_string(),
        ];
        let text = include_str!("../../configs/default.toml");
        CheckSpec {
            cfg: Config::load_text(text, "default.toml", &sets).unwrap(),
            images: 1024,
            steps,
            shuffle_labels: false,
        }
    }

    fn check(spec: &CheckSpec, fault: Fault) -> Recovery {
        let _rng = test_rng_lock();
        run_with(spec, Device::Cpu, 0, fault, &mut |_| {}, &mut |_| {}).unwrap()
    }

    /// The same spec recovers the plant with the real gradient (tests/check.rs runs it through
    /// the command line) and not with the gradient's sign flipped: the check sees a wrong sign.
    #[test]
    fn a_flipped_gradient_fails_the_check() {
        let s = spec(1, 2, 80);
        let good = check(&s, Fault::None);
        assert!(good.fraction() >= 0.85, "{good:?}");
        let bad = check(&s, Fault::FlipSign);
        assert!(bad.fraction() < 0.5, "{bad:?}");
    }

    /// Gradient columns shifted by one op (the gradient of op k lands on op k + 1): the check
    /// sees a gradient paired with the wrong ops.
    #[test]
    fn op_columns_shifted_by_one_fail_the_check() {
        let bad = check(&spec(1, 2, 80), Fault::ShiftOps);
        assert!(bad.fraction() < 0.5, "{bad:?}");
    }

    #[test]
    fn cell_types_present() {
        assert_eq!(cell_types(1), [false, true]);
        assert_eq!(cell_types(2), [false, true]);
        assert_eq!(cell_types(3), [true, true]);
        assert_eq!(cell_types(8), [true, true]);
    }
}
