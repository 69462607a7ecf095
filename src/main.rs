//! nasp-tui: run NASP (or DARTS) architecture search on libtorch and watch it from a terminal.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use nasp_tui::config::{Algorithm, Config};
use nasp_tui::engine::bench::{self, BenchResult};
use nasp_tui::engine::checkpoint;
use nasp_tui::engine::worker::{self, WorkerOptions};
use nasp_tui::genotype::Genotype;

#[derive(Parser)]
#[command(
    name = "nasp-tui",
    version,
    about = "NASP / DARTS architecture search on libtorch, with a terminal monitor"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a search (the TUI on a terminal, progress lines otherwise).
    Search(SearchArgs),
    /// Print the genotype of a run or checkpoint.
    Export {
        /// A run directory or a checkpoint directory.
        path: PathBuf,
        /// darts (the Genotype(...) text) or json.
        #[arg(long, default_value = "darts")]
        format: String,
    },
    /// Time search steps of each algorithm on one supernet and batch.
    Bench(BenchArgs),
    /// Print what this machine offers: libtorch, CUDA, cuDNN, GPUs (via NVML).
    Info,
}

#[derive(Args, Default)]
struct ConfigArgs {
    /// Search config (TOML); default configs/default.toml.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Override a config key, e.g. --set model.channels=8 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// auto | cpu | cuda:N (overrides the config).
    #[arg(long)]
    device: Option<String>,
}

#[derive(Args, Default)]
struct SearchArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Print progress lines instead of opening the terminal UI.
    #[arg(long)]
    headless: bool,
    /// Where the run writes its files (default: under the user data dir).
    #[arg(long)]
    run_dir: Option<PathBuf>,
    /// Folder with the CIFAR-10 binary files.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Continue a run (its directory) or a checkpoint.
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Stop (with a checkpoint) after this many steps in total.
    #[arg(long)]
    max_steps: Option<u64>,
    /// Colour theme: default, light, high-contrast, mono, or a theme file.
    #[arg(long)]
    theme: Option<String>,
}

#[derive(Args)]
struct BenchArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Algorithms to compare, comma-separated.
    #[arg(long, default_value = "nasp,darts1")]
    algo: String,
    /// Timed steps per algorithm (after the warm-up).
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// Untimed warm-up steps.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Also run this PyTorch peer script (../shared/bench/peer_step.py) at the same sizes.
    #[arg(long)]
    peer: Option<PathBuf>,
    /// Profile the timed steps (libtorch profiler) and print where the device time goes.
    #[arg(long)]
    profile: bool,
    /// Print one JSON line per algorithm (used for the per-algorithm child processes).
    #[arg(long, hide = true)]
    child: bool,
}

/// A config or usage error: exit code 2.
struct Usage(String);

fn default_config_path() -> Option<PathBuf> {
    let local = PathBuf::from("configs/default.toml");
    if local.is_file() {
        return Some(local);
    }
    let beside = std::env::current_exe()
        .ok()?
        .parent()?
        .join("../../configs/default.toml");
    beside.is_file().then_some(beside)
}

/// `configs/default.toml` as built into the binary: the default when that file is not found
/// (an installed binary run elsewhere), so the search starts the same either way.
const BUILT_IN_DEFAULT: &str = include_str!("../configs/default.toml");

fn load_config(a: &ConfigArgs) -> Result<Config, Usage> {
    let mut sets = a.sets.clone();
    if let Some(d) = &a.device {
        sets.push(format!("device=\"{d}\""));
    }
    match a.config.clone().or_else(default_config_path) {
        Some(path) => Config::load(Some(&path), &sets),
        None => Config::load_text(BUILT_IN_DEFAULT, "built-in configs/default.toml", &sets),
    }
    .map_err(|e| Usage(e.to_string()))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(
        cli.command,
        Some(Cmd::Info | Cmd::Export { .. } | Cmd::Bench(_))
    ) {
        // Output piped into a program that stops reading (`nasp-tui info | head`) ends these
        // commands quietly instead of a panic on the failed write. A search keeps Rust's
        // default (a write error, handled) so that it still checkpoints.
        // SAFETY: setting a signal disposition at start-up, before any thread exists.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let code = match cli.command {
        None => search(SearchArgs::default()),
        Some(Cmd::Search(a)) => search(a),
        Some(Cmd::Export { path, format }) => export(&path, &format),
        Some(Cmd::Bench(a)) => bench_cmd(&a),
        Some(Cmd::Info) => Ok(info()),
    };
    let code = code.unwrap_or_else(|Usage(m)| {
        eprintln!("error: {m}");
        2
    });
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

fn signal_channel() -> crossbeam_channel::Receiver<i32> {
    let (tx, rx) = crossbeam_channel::unbounded();
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    match signal_hook::iterator::Signals::new([SIGTERM, SIGHUP, SIGINT]) {
        Ok(mut signals) => {
            let _ = std::thread::Builder::new()
                .name("signals".into())
                .spawn(move || {
                    for s in signals.forever() {
                        if tx.send(s).is_err() {
                            break;
                        }
                    }
                });
        }
        Err(e) => eprintln!(
            "warning: cannot watch SIGTERM/SIGHUP ({e}); a dropped connection will not checkpoint"
        ),
    }
    rx
}

fn search(a: SearchArgs) -> Result<i32, Usage> {
    let mut cfg = load_config(&a.config)?;
    if let Some(t) = &a.theme {
        cfg.ui.theme = t.clone();
    }
    if let Some(r) = &a.resume
        && a.config.config.is_none()
    {
        // Resuming a run without --config: take the run's own resolved config.
        let run_cfg = [r.join("config.toml"), r.join("../../config.toml")]
            .into_iter()
            .find(|p| p.is_file());
        if let Some(p) = run_cfg {
            let mut sets = a.config.sets.clone();
            if let Some(d) = &a.config.device {
                sets.push(format!("device=\"{d}\""));
            }
            cfg = Config::load(Some(&p), &sets).map_err(|e| Usage(e.to_string()))?;
        }
    }
    let run_dir = match (&a.run_dir, &a.resume) {
        (Some(d), _) => d.clone(),
        (None, Some(r)) if r.join("checkpoints").is_dir() => r.clone(),
        (None, Some(r)) if r.join("meta.json").is_file() => r
            .join("../..")
            .canonicalize()
            .unwrap_or_else(|_| r.join("../..")),
        _ => nasp_tui::rundir::default_run_dir(cfg.algorithm.name()),
    };
    let headless = a.headless || !std::io::stdout().is_terminal();
    // The TUI's theme and key files are checked before the search starts (bad file: exit 2).
    let tui_opts = if headless {
        None
    } else {
        let t = nasp_tui::tui::TuiOptions::resolve(
            a.theme.as_deref(),
            &cfg.ui.theme,
            cfg.ui.fps,
            &run_dir,
        )
        .map_err(|e| Usage(e.to_string()))?;
        Some(t)
    };
    let opts = WorkerOptions {
        config: cfg,
        run_dir,
        data_dir: a.data_dir.clone(),
        max_steps: a.max_steps,
        resume: a.resume.clone(),
        event_interval: Duration::from_millis(100),
    };
    let signals = signal_channel();
    let handle =
        worker::spawn(opts).map_err(|e| Usage(format!("cannot start the search thread: {e}")))?;
    let code = match tui_opts {
        None => {
            let mut out = std::io::stdout();
            nasp_tui::headless::run(
                &handle.commands,
                &handle.events,
                &signals,
                &mut out,
                Duration::from_secs(2),
            )
        }
        Some(mut t) => {
            t.signals = Some(signals.clone());
            nasp_tui::tui::run(t, handle.commands.clone(), handle.events.clone()).unwrap_or_else(
                |e| {
                    eprintln!("error: {e:#}");
                    1
                },
            )
        }
    };
    drop(handle.commands);
    // After a forced quit (or the UI giving up on a stuck stop) do not hang on the worker: give it
    // a bounded time to finish its step and checkpoint, then exit anyway.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !handle.join.is_finished() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if handle.join.is_finished() {
        let _ = handle.join.join();
    }
    Ok(code)
}

fn export(path: &Path, format: &str) -> Result<i32, Usage> {
    if format != "darts" && format != "json" {
        return Err(Usage(format!("--format {format}: use darts or json")));
    }
    let (dir, meta, note) = checkpoint::locate(path).map_err(|e| Usage(e.to_string()))?;
    if let Some(n) = note {
        eprintln!("warning: {n}");
    }
    let _ = dir;
    let g: &Genotype = &meta.genotype;
    if format == "json" {
        println!("{}", g.to_json());
    } else {
        println!("{g}");
    }
    Ok(0)
}

fn info() -> i32 {
    println!("nasp-tui {}", env!("CARGO_PKG_VERSION"));
    println!("libtorch threads: {}", tch::get_num_threads());
    let cuda = tch::Cuda::is_available();
    println!(
        "CUDA available: {cuda} ({} device(s)), cuDNN: {}",
        tch::Cuda::device_count(),
        tch::Cuda::cudnn_is_available()
    );
    match nasp_tui::gpu::Gpu::open() {
        Ok(g) => {
            for i in 0..tch::Cuda::device_count().max(1) as u32 {
                if let Some(s) = g.stats(i, std::process::id()) {
                    println!(
                        "GPU {i}: {} | memory used {:.0} / {:.0} MiB | utilisation {}",
                        s.name,
                        s.used_bytes as f64 / 1048576.0,
                        s.total_bytes as f64 / 1048576.0,
                        s.utilization_pct.map_or("n/a".into(), |u| format!("{u}%"))
                    );
                }
            }
        }
        Err(e) => println!("NVML: not available ({e}): no GPU figures"),
    }
    0
}

fn python() -> PathBuf {
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

fn bench_cmd(a: &BenchArgs) -> Result<i32, Usage> {
    if a.steps == 0 {
        return Err(Usage("--steps: give at least 1 timed step".into()));
    }
    let cfg = load_config(&a.config)?;
    let algos: Vec<Algorithm> = a
        .algo
        .split(',')
        .map(|s| {
            Algorithm::parse(s.trim()).ok_or_else(|| {
                Usage(format!(
                    "--algo: unknown algorithm {s:?}; use nasp, darts1, darts2"
                ))
            })
        })
        .collect::<Result<_, _>>()?;
    let (device, note) = worker::resolve_device(&cfg.device).map_err(Usage)?;
    if device.is_cuda() {
        tch::Cuda::cudnn_set_benchmark(true);
    }
    if a.child {
        for alg in algos {
            match bench::run(&cfg, alg, device, a.steps, a.warmup, a.profile) {
                Ok(r) => println!("{}", serde_json::to_string(&r).unwrap_or_default()),
                Err(e) => {
                    eprintln!("error: {e}");
                    return Ok(1);
                }
            }
        }
        return Ok(0);
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
    // Each algorithm runs in its own process so that its peak memory is its own.
    let exe = std::env::current_exe().map_err(|e| Usage(e.to_string()))?;
    let mut results: Vec<BenchResult> = Vec::new();
    for alg in &algos {
        let mut cmd = std::process::Command::new(&exe);
        cmd.arg("bench")
            .arg("--child")
            .arg("--algo")
            .arg(alg.name())
            .arg("--steps")
            .arg(a.steps.to_string())
            .arg("--warmup")
            .arg(a.warmup.to_string());
        if a.profile {
            cmd.arg("--profile");
        }
        if let Some(c) = &a.config.config {
            cmd.arg("--config").arg(c);
        }
        for s in &a.config.sets {
            cmd.arg("--set").arg(s);
        }
        if let Some(d) = &a.config.device {
            cmd.arg("--device").arg(d);
        }
        let out = cmd
            .output()
            .map_err(|e| Usage(format!("cannot run {}: {e}", exe.display())))?;
        let text = String::from_utf8_lossy(&out.stdout);
        match text
            .lines()
            .find_map(|l| serde_json::from_str::<BenchResult>(l).ok())
        {
            Some(r) => {
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
                if let Some(p) = &r.profile {
                    print!("{p}");
                    println!();
                }
                results.push(r);
            }
            None => {
                eprintln!(
                    "error: bench of {} failed: {}",
                    alg.name(),
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                return Ok(1);
            }
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
    if let Some(peer) = &a.peer {
        let py = python();
        for alg in results
            .iter()
            .filter(|r| r.algorithm == "nasp" || r.algorithm == "darts1")
        {
            let out = std::process::Command::new(&py)
                .arg(peer)
                .args([
                    "--mode",
                    &alg.algorithm,
                    "--C",
                    &m.channels.to_string(),
                    "--layers",
                    &m.cells.to_string(),
                ])
                .args([
                    "--batch",
                    &cfg.train.batch_size.to_string(),
                    "--hw",
                    &cfg.data.image_size.to_string(),
                    "--steps",
                    &a.steps.to_string(),
                ])
                .output()
                .map_err(|e| Usage(format!("cannot run the peer with {}: {e}", py.display())))?;
            let text = String::from_utf8_lossy(&out.stdout);
            let field = |k: &str| {
                text.split_whitespace()
                    .find_map(|w| w.strip_prefix(k))
                    .and_then(|v| v.parse::<f64>().ok())
            };
            match (field("ms_per_step="), field("peak_rss_mb=")) {
                (Some(ms), Some(rss)) => println!(
                    "peer {:<7} {:>9.1} ms/step  peak RSS {:>7.0} MB | ours/peer: time {:.3}, RSS {:.3}",
                    alg.algorithm,
                    ms,
                    rss,
                    alg.ms_median / ms,
                    alg.peak_rss_mb / rss
                ),
                _ => eprintln!(
                    "warning: the peer printed no result: {} {}",
                    text.trim(),
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            }
        }
    }
    Ok(0)
}
