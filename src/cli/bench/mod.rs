//! `nasp-tui bench`: time search steps of each algorithm, each in a child process of its own (so
//! that its peak memory is its own), and optionally the PyTorch peer at the same sizes.
//!
//! `child` starts and reads those processes, `peer` runs the PyTorch peer, `sizes` is
//! `--sizes` (a table of sizes beside the peer), `train` is `--train` (the training step).

mod child;
mod peer;
mod sizes;
mod train;

use std::path::PathBuf;

use clap::Args;

use super::{CliError, ConfigArgs};
use crate::config::{Algorithm, Config};
use crate::engine::bench::{self, BenchResult};
use crate::engine::worker;
use crate::exit;
use child::{print_result, run_child};

#[derive(Args, Clone)]
pub struct BenchArgs {
    #[command(flatten)]
    pub(super) config: ConfigArgs,
    /// Algorithms to compare, comma-separated.
    #[arg(long, default_value = "nasp,darts1")]
    pub(super) algo: String,
    /// Timed steps per algorithm (after the warm-up).
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    /// Untimed warm-up steps.
    #[arg(long, default_value_t = 2)]
    pub(super) warmup: usize,
    /// Also run this PyTorch peer script (../shared/bench/peer_step.py) at the same sizes.
    #[arg(long)]
    pub(super) peer: Option<PathBuf>,
    /// Profile the timed steps (libtorch profiler) and print where the device time goes.
    #[arg(long)]
    pub(super) profile: bool,
    /// Time each phase of the step (all-ops pass, sparse pass, products, Adam, host work, weight
    /// step...) and print where a step's time goes.
    #[arg(long)]
    pub(super) phases: bool,
    /// Also time the run directory's event log: appending one step's events (Step + Arch, at
    /// this config's model size) and replacing status.json, against NASP's step time.
    #[arg(long)]
    pub(super) events: bool,
    /// Time the training step of the evaluation network (`nasp-tui train`) instead of search
    /// steps; `--peer ../shared/bench/peer_train.py` runs the PyTorch peer beside it. Default
    /// config: configs/bench-train.toml.
    #[arg(long)]
    pub(super) train: bool,
    /// With --train: the genotype to build (DARTS text; default DARTS_V2).
    #[arg(long, requires = "train")]
    pub(super) genotype: Option<String>,
    /// A table of sizes instead of one: CHANNELS/CELLS/BATCHES, comma-separated lists whose
    /// combinations are measured (default 8,10,12,16,36/5,8/16,32,64); ours (nasp, darts1)
    /// beside the peer's (`--peer` is required), in rounds, with medians and the targets' ratios.
    #[arg(long, num_args = 0..=1, default_missing_value = sizes::DEFAULT_SIZES, value_name = "C/CELLS/BATCH")]
    pub(super) sizes: Option<String>,
    /// Rounds over the size table (medians over rounds).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Print one JSON line per algorithm (used for the per-algorithm child processes).
    #[arg(long, hide = true)]
    pub(super) child: bool,
}

pub fn run(a: &BenchArgs) -> Result<i32, CliError> {
    if a.steps == 0 {
        return Err(CliError::Usage(
            "--steps: give at least 1 timed step".into(),
        ));
    }
    if a.train {
        return train::run(a);
    }
    let cfg = a.config.load()?;
    if let Some(spec) = &a.sizes {
        let Some(peer) = &a.peer else {
            return Err(CliError::Usage(
                "--sizes compares with the peer: give --peer ../shared/bench/peer_step.py".into(),
            ));
        };
        return sizes::run(a, &cfg, spec, peer);
    }
    let algos: Vec<Algorithm> = a
        .algo
        .split(',')
        .map(|s| {
            Algorithm::parse(s.trim()).ok_or_else(|| {
                CliError::Usage(format!(
                    "--algo: unknown algorithm {s:?}; use nasp, darts1, darts2"
                ))
            })
        })
        .collect::<Result<_, _>>()?;
    let (device, note) = worker::resolve_device(&cfg.device).map_err(CliError::Usage)?;
    if device.is_cuda() {
        tch::Cuda::cudnn_set_benchmark(true);
    }
    if a.child {
        for alg in algos {
            let insight = bench::Insight {
                profile: a.profile,
                phases: a.phases,
            };
            let r = bench::run(&cfg, alg, device, a.steps, a.warmup, insight)
                .map_err(|e| CliError::Failed(e.to_string()))?;
            println!("{}", serde_json::to_string(&r).unwrap_or_default());
        }
        return Ok(exit::OK);
    }
    let m = &cfg.model;
    println!(
        "bench: C={} cells={} space={:?} batch={} hw={} device={note} activations={} threads={} steps={} (+{} warm-up)",
        m.channels,
        m.cells,
        m.space,
        cfg.train.batch_size,
        cfg.data.image_size,
        cfg.layout_name(device.is_cuda()),
        tch::get_num_threads(),
        a.steps,
        a.warmup
    );
    let mut results: Vec<BenchResult> = Vec::new();
    for alg in &algos {
        let r = run_child(a, *alg, &[])?.map_err(CliError::Failed)?;
        print_result(&r);
        results.push(r);
    }
    for (i, x) in results.iter().enumerate() {
        for y in results.iter().skip(i + 1) {
            println!(
                "ratio {}/{}: {:.3} (ms/step)",
                x.algorithm,
                y.algorithm,
                x.ms_median / y.ms_median
            );
        }
    }
    if a.events {
        let nasp = results.iter().find(|r| r.algorithm == "nasp");
        event_log_cost(&cfg, nasp.map(|r| r.ms_median))?;
    }
    if let Some(peer) = &a.peer {
        for r in results
            .iter()
            .filter(|r| r.algorithm == "nasp" || r.algorithm == "darts1")
        {
            peer::run(peer, &cfg, a.steps, r)?;
        }
    }
    Ok(exit::OK)
}

/// Times what the worker's sink adds per step on a run directory in the temp folder: the `Step`
/// and `Arch` records (the most a step can emit) and a `status.json` replacement (at most once
/// a second), and prints them beside NASP's step time.
fn event_log_cost(cfg: &Config, nasp_ms: Option<f64>) -> Result<(), CliError> {
    use crate::arch::{ArchMatrix, GenotypeRule, derive_genotype, num_edges, proximal};
    use crate::protocol::{ArchSnapshot, Event, StepStats};
    use crate::rundir::events::EventWriter;
    use crate::rundir::status::{RunState, Status};
    let fail = |e: std::io::Error| CliError::Failed(format!("event-log bench: {e}"));
    let dir = std::env::temp_dir().join(format!("nasp-tui-events-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(fail)?;
    let lists = cfg.model.op_lists();
    let nodes = cfg.model.nodes;
    let edges = num_edges(nodes);
    // Values with many digits, as a trained A has.
    let m = |cols: usize, k: f32| {
        let data = (0..edges * cols)
            .map(|i| (0.5 + 0.37 * ((i as f32 + k) * 0.618).sin()).clamp(0.0, 1.0))
            .collect();
        ArchMatrix {
            rows: edges,
            cols,
            data,
        }
    };
    let mut w = EventWriter::open(&dir).map_err(fail)?;
    let n = 2000;
    let t0 = std::time::Instant::now();
    for i in 0..n {
        let (normal, reduce) = (m(lists.normal.len(), i as f32), m(lists.reduce.len(), 1.0));
        let snap = ArchSnapshot {
            global_step: i,
            epoch: 0,
            normal_selected: proximal(&normal, nodes, None).ops,
            reduce_selected: proximal(&reduce, nodes, None).ops,
            genotype: derive_genotype(&normal, &reduce, &lists, nodes, GenotypeRule::Proximal),
            normal,
            reduce,
            benchmark: None,
        };
        let step = StepStats {
            epoch: 0,
            step: i as usize,
            global_step: i,
            train_loss: 2.0 + 1e-4 * i as f64,
            train_acc: 0.3123456,
            arch_loss: 2.1234567,
            lr: 0.0251234,
            ms_per_step: 123.456789,
            images_per_s: 456.789123,
            drop_path: None,
        };
        w.append(&Event::Step(step), 1.8e9).map_err(fail)?;
        w.append(&Event::Arch(snap), 1.8e9).map_err(fail)?;
    }
    let per_step_us = t0.elapsed().as_secs_f64() * 1e6 / n as f64;
    let bytes_per_step = w.len() as f64 / n as f64;
    let status = Status {
        state: RunState::Running,
        train_acc: Some(0.3),
        valid_acc: Some(0.3),
        ms_per_step: Some(100.0),
        ..Status::starting(0.0)
    };
    let t1 = std::time::Instant::now();
    for _ in 0..200 {
        status.write(&dir).map_err(fail)?;
    }
    let status_us = t1.elapsed().as_secs_f64() * 1e6 / 200.0;
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "event log: {per_step_us:.1} us and {bytes_per_step:.0} bytes per step (Step + Arch); status.json {status_us:.1} us (at most 1/s){}",
        nasp_ms
            .map(|ms| format!(
                "; {:.3} % of nasp's {ms:.1} ms/step",
                100.0 * per_step_us / (ms * 1000.0)
            ))
            .unwrap_or_default()
    );
    Ok(())
}
