//! `nasp-tui check`: the planted-architecture self-check (see `engine::check`). Its last line
//! is `recovered X of Y`; it exits 0 when X/Y reaches `--min`, 1 otherwise, 2 on a bad option.

use std::time::Instant;

use clap::Args;

use super::{CliError, DEFAULT_CONFIG};
use crate::config::{Algorithm, Config};
use crate::engine::check::{self, CheckSpec, CheckStep, Planted, Verdict};
use crate::engine::device::resolve_device;
use crate::exit;

/// Images per batch: the teacher labels and the student steps on the same fixed batches.
const BATCH: usize = 64;
/// Image side in pixels.
const IMAGE_SIZE: i64 = 16;
/// A margin under this between the planted op and its rival is called a near tie.
const NEAR_TIE: f64 = 0.01;
/// Why a DARTS student is refused (the README's Self-check has the measurements).
const DARTS_UNSUPPORTED: &str = "DARTS mixes every op of every edge by softmax(α), so no α \
    reproduces the planted sparse network (the default ops have no `none`: dropped edges still \
    add their mixture), and with frozen weights its recovery depends on the teacher seed, so a \
    failure would not tell a broken step from an unlucky plant (README, Self-check)";

#[derive(Args, Clone)]
pub struct CheckArgs {
    /// The teacher's seed (its weights, its random A, the images).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Cells of the supernet (with 3 or more there are normal and reduction cells).
    #[arg(long, default_value_t = 3)]
    cells: usize,
    /// Initial channels C.
    #[arg(long, default_value_t = 8)]
    channels: i64,
    /// Architecture steps of each start of the student.
    #[arg(long, default_value_t = 240)]
    steps: usize,
    /// Starts of the student: the search's own settings, then two that move A faster; from
    /// the fourth on the three again from a jittered A. The first start that reproduces every
    /// label ends the check.
    #[arg(long, default_value_t = 3)]
    starts: usize,
    /// The student's algorithm: nasp (darts1 and darts2 are refused: see the README's
    /// Self-check).
    #[arg(long, default_value = "nasp")]
    algo: String,
    /// Labelled N(0, 1) images (whole batches of 64).
    #[arg(long, default_value_t = 2048)]
    images: usize,
    /// The control: permute the labels across the images (recovery should collapse).
    #[arg(long)]
    shuffle_labels: bool,
    /// The share of planted (edge, op) pairs to recover for exit code 0, in [0, 1].
    #[arg(long, default_value_t = 0.85)]
    min: f64,
    /// auto | cpu | cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Progress line every this many steps (0: only the last).
    #[arg(long, default_value_t = 40)]
    report_every: usize,
}

/// The option's name and why it is wrong, for the first bad one.
fn validate(a: &CheckArgs) -> Result<Algorithm, CliError> {
    let bad = |m: String| Err(CliError::Usage(m));
    if a.cells == 0 {
        return bad(format!("--cells {}: must be at least 1", a.cells));
    }
    if a.channels < 1 {
        return bad(format!("--channels {}: must be at least 1", a.channels));
    }
    if a.steps == 0 {
        return bad(format!("--steps {}: must be at least 1", a.steps));
    }
    if a.starts == 0 {
        return bad(format!("--starts {}: must be at least 1", a.starts));
    }

    if a.images < BATCH {
        return bad(format!(
            "--images {}: must be at least one batch ({BATCH})",
            a.images
        ));
    }
    if !(0.0..=1.0).contains(&a.min) {
        return bad(format!("--min {}: must be between 0 and 1", a.min));
    }
    match Algorithm::parse(&a.algo) {
        Some(Algorithm::Nasp) => Ok(Algorithm::Nasp),
        Some(alg @ (Algorithm::Darts1 | Algorithm::Darts2)) => bad(format!(
            "--algo {}: not supported by check: {}; use --algo nasp",
            alg.name(),
            DARTS_UNSUPPORTED
        )),
        None => bad(format!("--algo {:?}: use nasp", a.algo)),
    }
}

/// The config of the check: the built-in default's space, ops and architecture optimiser, with
/// the check's sizes.
fn config(a: &CheckArgs, alg: Algorithm) -> Result<Config, CliError> {
    let sets = [
        format!("seed={}", a.seed),
        format!("algorithm=\"{}\"", alg.name()),
        format!("model.cells={}", a.cells),
        format!("model.channels={}", a.channels),
        format!("data.image_size={IMAGE_SIZE}"),
        format!("train.batch_size={BATCH}"),
        "cuda_graphs=false".to_string(),
    ];
    Ok(Config::load_text(
        DEFAULT_CONFIG.text,
        &DEFAULT_CONFIG.origin(),
        &sets,
    )?)
}

fn print_planted(p: &Planted) {
    for (cell, pairs) in &p.cells {
        let list: Vec<String> = pairs.iter().map(|(e, op)| format!("{e}:{op}")).collect();
        println!("planted {cell}: {}", list.join(" "));
    }
    println!(
        "labels: {} images in {} batches, commonest class {:.0}%",
        p.images,
        p.batches,
        100.0 * p.majority_share
    );
}

/// Which selection was judged, the pairs it missed, and how sure it was of the rest.
fn print_verdict(v: &Verdict, starts: usize) {
    let how = if v.accuracy >= 1.0 {
        "reproduces every label"
    } else {
        "reproduces no start's labels fully; the most accurate selection seen"
    };
    println!(
        "verdict: start {} step {} ({} of {} starts run): its selection {how} ({:.1}% of the labels)",
        v.start + 1,
        v.step,
        v.starts_run,
        starts,
        100.0 * v.accuracy
    );
    for p in v.pairs.iter().filter(|p| !p.hit()) {
        let tie = if p.margin().abs() < NEAR_TIE {
            "a near tie"
        } else {
            "a clear miss"
        };
        match &p.student {
            Some(op) => println!(
                "missed {} edge {}: planted {}, the student keeps {op} (A {:.3} against {:.3}: {tie})",
                p.cell, p.edge, p.planted, p.a_planted, p.a_rival
            ),
            None => println!(
                "missed {} edge {}: planted {}, the student drops the edge (its A {:.3} against the node's weaker kept edge {:.3}: {tie})",
                p.cell, p.edge, p.planted, p.a_planted, p.a_rival
            ),
        }
    }
    if let Some(p) = v
        .pairs
        .iter()
        .filter(|p| p.hit())
        .min_by(|a, b| a.margin().total_cmp(&b.margin()))
    {
        println!(
            "closest recovered pair: {} edge {} ({}) leads by {:.3}",
            p.cell,
            p.edge,
            p.planted,
            p.margin()
        );
    }
}

pub fn run(a: &CheckArgs) -> Result<i32, CliError> {
    let alg = validate(a)?;
    let cfg = config(a, alg)?;
    let (device, _) = resolve_device(&a.device).map_err(CliError::Usage)?;
    let start = Instant::now();
    println!(
        "check: teacher seed {}, {} cells, C = {}, {IMAGE_SIZE} px, up to {} starts of {} steps \
         of {}{}",
        a.seed,
        a.cells,
        a.channels,
        a.starts,
        a.steps,
        alg.name(),
        if a.shuffle_labels {
            ", labels shuffled"
        } else {
            ""
        }
    );
    println!("{}", crate::engine::set_threads(&cfg));
    let arch_lr = cfg.arch.lr;
    let spec = CheckSpec {
        cfg,
        images: a.images,
        steps: a.steps,
        starts: check::starts(a.starts, arch_lr),
        shuffle_labels: a.shuffle_labels,
    };
    let plan: Vec<String> = spec
        .starts
        .iter()
        .enumerate()
        .map(|(i, st)| {
            let jitter = if st.jitter > 0.0 {
                format!(", A ± {}", st.jitter)
            } else {
                String::new()
            };
            format!(
                "{} (arch lr {}, sharpness {}{jitter})",
                i + 1,
                st.arch_lr,
                st.sharpness
            )
        })
        .collect();
    println!("starts: {}", plan.join("; "));
    let mut on_step = |s: &CheckStep| {
        println!(
            "start {} step {}: arch loss {:.4}, {} of {} ({:.1} s)",
            s.start + 1,
            s.step,
            s.loss,
            s.recovery.recovered,
            s.recovery.total,
            start.elapsed().as_secs_f64()
        );
    };
    let verdict = check::run(
        &spec,
        device,
        a.report_every,
        &mut print_planted,
        &mut on_step,
    )
    .map_err(|e| CliError::Failed(e.to_string()))?;
    print_verdict(&verdict, a.starts);
    let rec = verdict.recovery;
    println!("recovered {} of {}", rec.recovered, rec.total);
    Ok(if rec.fraction() >= a.min {
        exit::OK
    } else {
        exit::FAILED
    })
}
