//! `nasp-tui bench`: time search steps of each algorithm, each in a child process of its own (so
//! that its peak memory is its own), and optionally the PyTorch peer at the same sizes.

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Args;

use super::{CliError, ConfigArgs};
use crate::config::{Algorithm, Config};
use crate::engine::bench::{self, BenchResult};
use crate::engine::worker;
use crate::exit;
use crate::space::CellType;

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
    /// combinations are measured (default 8,12,16/5,8/16,32,64); ours (nasp, darts1) beside the
    /// peer's (`--peer` is required), in rounds, with medians and the targets' ratios.
    #[arg(long, num_args = 0..=1, default_missing_value = super::bench_sizes::DEFAULT_SIZES, value_name = "C/CELLS/BATCH")]
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
        return super::bench_train::run(a);
    }
    let cfg = a.config.load()?;
    if let Some(spec) = &a.sizes {
        let Some(peer) = &a.peer else {
            return Err(CliError::Usage(
                "--sizes compares with the peer: give --peer ../shared/bench/peer_step.py".into(),
            ));
        };
        return super::bench_sizes::run(a, &cfg, spec, peer);
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
            match bench::run(&cfg, alg, device, a.steps, a.warmup, insight) {
                Ok(r) => println!("{}", serde_json::to_string(&r).unwrap_or_default()),
                Err(e) => {
                    eprintln!("error: {e}");
                    return Ok(exit::FAILED);
                }
            }
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
        match run_child(a, *alg, &[])? {
            Some(r) => {
                print_result(&r);
                results.push(r);
            }
            None => return Ok(exit::FAILED),
        }
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
            run_peer(peer, &cfg, a.steps, r)?;
        }
    }
    Ok(exit::OK)
}

/// Runs one algorithm's timing in a child process, with `sets` after the command line's own
/// `--set`s; `None` (after saying why) when it failed.
pub fn run_child(
    a: &BenchArgs,
    alg: Algorithm,
    sets: &[String],
) -> Result<Option<BenchResult>, CliError> {
    run_child_with(a, &["--algo", alg.name()], sets)
}

/// Runs a timing in a child process with `what` (the algorithm, or the training step) among
/// `a`'s flags and `sets` after its `--set`s; `None` (after saying why) when it failed.
pub(super) fn run_child_with(
    a: &BenchArgs,
    what: &[&str],
    sets: &[String],
) -> Result<Option<BenchResult>, CliError> {
    let exe = std::env::current_exe().map_err(|e| CliError::Failed(e.to_string()))?;
    let mut cmd = Command::new(&exe);
    cmd.arg("bench")
        .arg("--child")
        .args(what)
        .arg("--steps")
        .arg(a.steps.to_string())
        .arg("--warmup")
        .arg(a.warmup.to_string());
    if a.profile {
        cmd.arg("--profile");
    }
    if a.phases {
        cmd.arg("--phases");
    }
    if let Some(c) = &a.config.config {
        cmd.arg("--config").arg(c);
    }
    for s in a.config.sets.iter().chain(sets) {
        cmd.arg("--set").arg(s);
    }
    if let Some(d) = &a.config.device {
        cmd.arg("--device").arg(d);
    }
    let out = cmd
        .output()
        .map_err(|e| CliError::Failed(format!("cannot run {}: {e}", exe.display())))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let found = text
        .lines()
        .find_map(|l| serde_json::from_str::<BenchResult>(l).ok());
    if found.is_none() {
        eprintln!(
            "error: bench of {} failed: {}",
            what.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(found)
}

pub(super) fn print_result(r: &BenchResult) {
    println!(
        "{:<7} {:>9.1} ms/step (median; min {:.1}) {:>8.1} img/s  peak RSS {:>7.0} MB{}",
        r.algorithm,
        r.ms_median,
        r.ms_min,
        r.images_per_s,
        r.peak_rss_mb,
        r.peak_gpu_mb
            .map(|g| format!("  peak GPU {g:.0} MB"))
            .unwrap_or_default()
    );
    for n in &r.notes {
        println!("        note: {n}");
    }
    let timed: f64 = r.phases.iter().map(|(_, ms)| ms).sum();
    for (phase, ms) in &r.phases {
        println!(
            "        {ms:>9.1} ms/step {:>5.1} %  {phase}",
            100.0 * ms / timed
        );
    }
    if let Some(p) = &r.profile {
        print!("{p}");
        println!();
    }
}

/// Runs the PyTorch peer at the sizes of `cfg` for `ours`' algorithm and prints the ratios.
fn run_peer(peer: &Path, cfg: &Config, steps: usize, ours: &BenchResult) -> Result<(), CliError> {
    peer_line(
        &mut peer_step(peer, cfg, steps, &ours.algorithm),
        ours,
        None,
    )
}

/// The peer's search step command for `algorithm` at the sizes of `cfg`.
fn peer_step(peer: &Path, cfg: &Config, steps: usize, algorithm: &str) -> Command {
    let (m, c) = (&cfg.model, cfg.model.channels.to_string());
    let mut cmd = Command::new(peer_python());
    cmd.arg(peer)
        .args(["--mode", algorithm, "--C", &c])
        .args(["--layers", &m.cells.to_string()])
        .args(["--batch", &cfg.train.batch_size.to_string()])
        .args(["--hw", &cfg.data.image_size.to_string()])
        .args(["--steps", &steps.to_string()]);
    // The peer's supernet is DARTS's 8 ops; a space without `none` is its 7-op form.
    let ops = m.op_lists();
    let has_none = |c| ops.get(c).iter().any(|o| o == "none");
    if !has_none(CellType::Normal) && !has_none(CellType::Reduce) {
        cmd.arg("--no-none");
    }
    cmd
}

/// The peer's median ms/step and peak RSS (MB) for `algorithm` at the sizes of `cfg`; the inner
/// error says why it printed no result (out of memory, say).
pub fn peer_figures(
    peer: &Path,
    cfg: &Config,
    steps: usize,
    algorithm: &str,
) -> Result<Result<(f64, f64), String>, CliError> {
    Ok(peer_run(&mut peer_step(peer, cfg, steps, algorithm))?.map(|f| (f.ms, f.rss_mb)))
}

/// What a peer run printed.
struct PeerFigures {
    ms: f64,
    rss_mb: f64,
    params: Option<f64>,
}

/// Runs a peer command and reads its figures; the inner error says why there are none.
fn peer_run(cmd: &mut Command) -> Result<Result<PeerFigures, String>, CliError> {
    let out = cmd
        .output()
        .map_err(|e| CliError::Failed(format!("cannot run the peer: {e}")))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |k: &str| {
        text.split_whitespace()
            .find_map(|w| w.strip_prefix(k))
            .and_then(|v| v.parse::<f64>().ok())
    };
    Ok(match (field("ms_per_step="), field("peak_rss_mb=")) {
        (Some(ms), Some(rss_mb)) => Ok(PeerFigures {
            ms,
            rss_mb,
            params: field("params="),
        }),
        _ => Err(format!(
            "the peer printed no result: {} {}",
            text.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    })
}

/// Runs a peer command and prints its figures beside `ours` (and checks its parameter count
/// against `params` when given).
pub(super) fn peer_line(
    cmd: &mut Command,
    ours: &BenchResult,
    params: Option<usize>,
) -> Result<(), CliError> {
    let f = match peer_run(cmd)? {
        Ok(f) => f,
        Err(why) => {
            eprintln!("warning: {why}");
            return Ok(());
        }
    };
    println!(
        "peer {:<7} {:>9.1} ms/step  peak RSS {:>7.0} MB | ours/peer: time {:.3}, RSS {:.3}",
        ours.algorithm,
        f.ms,
        f.rss_mb,
        ours.ms_median / f.ms,
        ours.peak_rss_mb / f.rss_mb
    );
    if let (Some(want), Some(theirs)) = (params, f.params)
        && (theirs as usize) != want
    {
        eprintln!("warning: the peer counts {theirs} parameters, we count {want}");
    }
    Ok(())
}

/// The Python with the same torch the build links against: `NASP_TUI_PYTHON`, else the first
/// environment `scripts/setup.sh` made under the cache directory, else `python3`.
pub(super) fn peer_python() -> PathBuf {
    if let Some(p) = std::env::var_os("NASP_TUI_PYTHON") {
        return PathBuf::from(p);
    }
    let cache = std::env::var_os("NASP_TUI_CACHE")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("XDG_CACHE_HOME")
                .map(|c| PathBuf::from(c).join("nasp-tui"))
                .or_else(|| {
                    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/nasp-tui"))
                })
        });
    cache
        .and_then(|c| std::fs::read_dir(c).ok())
        .and_then(|it| {
            it.filter_map(Result::ok)
                .map(|e| e.path().join("bin/python"))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| PathBuf::from("python3"))
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
