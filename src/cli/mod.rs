//! The command line: one file per subcommand. `main.rs` parses and calls [`run`]; each
//! subcommand returns an exit code or a [`CliError`], and [`CliError::exit_code`] is the one
//! place that turns errors into exit codes (`crate::exit`).

mod bench;
mod check;
mod ctl;
mod export;
mod info;
mod ls;
mod nb201;
mod plot;
mod search;
mod sweep;
mod train;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, ConfigError};
use crate::engine::checkpoint::CheckpointError;
use crate::exit;

pub use bench::BenchArgs;
pub use search::SearchArgs;

#[derive(Parser)]
#[command(
    name = "nasp-tui",
    version,
    about = "NASP / DARTS architecture search on libtorch, with a terminal monitor"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a search (the TUI on a terminal, progress lines otherwise).
    Search(SearchArgs),
    /// Print the genotype of a run or checkpoint.
    Export(export::ExportArgs),
    /// Time search steps of each algorithm on one supernet and batch.
    Bench(BenchArgs),
    /// Print what this machine offers: libtorch, CUDA, cuDNN, GPUs (via NVML).
    Info,
    /// Send pause, resume, checkpoint, export or stop to a running search.
    Ctl(ctl::CtlArgs),
    /// List the runs under a folder (default: the user's runs root), newest first.
    Ls(ls::LsArgs),
    /// Watch a run (live, or a replay once ended) or a table of runs, through their directories.
    Watch(watch::WatchArgs),
    /// Planted-architecture self-check: can the architecture step find a known architecture?
    Check(check::CheckArgs),
    /// Several searches at once: seeds × a grid of config values, here or on Slurm.
    Sweep(sweep::SweepArgs),
    /// Summarise runs or sweeps: accuracies, genotypes, their consensus, the best run.
    Report(sweep::ReportArgs),
    /// Draw a run's, a training run's or a sweep's figures as SVG files.
    Plot(plot::PlotArgs),
    /// One run of a sweep (what the launchers start).
    #[command(hide = true)]
    SweepRun(sweep::SweepRunArgs),
    /// The local launcher's queue (started by `sweep`).
    #[command(hide = true)]
    SweepDrain(sweep::SweepDrainArgs),
    /// Train a found cell from scratch (the evaluation stage), in the same monitor.
    Train(train::TrainArgs),
    /// What NAS-Bench-201 says of a cell: test accuracies and ranks among its 15,625 cells.
    Nb201(nb201::Nb201Args),
}

/// The config flags the search and bench share.
#[derive(Args, Default, Clone)]
pub struct ConfigArgs {
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

/// Why a subcommand could not do its work.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad flags or values.
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The work itself failed (already explained on stderr or in the message).
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    /// The exit code of each kind of error: usage, config and unusable inputs are 2, a
    /// failure while working is 1.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) | CliError::Config(_) | CliError::Checkpoint(_) => exit::USAGE,
            CliError::Failed(_) => exit::FAILED,
        }
    }
}

/// Runs the parsed command line and returns the process's exit code.
pub fn run(cli: Cli) -> ExitCode {
    if matches!(
        cli.command,
        Some(
            Cmd::Info
                | Cmd::Export(_)
                | Cmd::Bench(_)
                | Cmd::Ls(_)
                | Cmd::Ctl(_)
                | Cmd::Check(_)
                | Cmd::Report(_)
                | Cmd::Plot(_)
                | Cmd::Nb201(_)
        )
    ) {
        // Output piped into a program that stops reading (`nasp-tui info | head`) ends these
        // commands quietly instead of a panic on the failed write. A search keeps Rust's
        // default (a write error, handled) so that it still checkpoints.
        die_on_sigpipe();
    }
    let result = match cli.command {
        None => search::run(SearchArgs::default()),
        Some(Cmd::Search(a)) => search::run(a),
        Some(Cmd::Export(a)) => export::run(&a),
        Some(Cmd::Bench(a)) => bench::run(&a),
        Some(Cmd::Info) => Ok(info::run()),
        Some(Cmd::Nb201(a)) => nb201::run(&a),
        Some(Cmd::Ls(a)) => ls::run(&a),
        Some(Cmd::Ctl(a)) => ctl::run(&a),
        Some(Cmd::Watch(a)) => watch::run(&a),
        Some(Cmd::Check(a)) => check::run(&a),
        Some(Cmd::Sweep(a)) => sweep::run(&a),
        Some(Cmd::Report(a)) => sweep::report(&a),
        Some(Cmd::Plot(a)) => plot::run(&a),
        Some(Cmd::SweepRun(a)) => sweep::run_one(&a),
        Some(Cmd::SweepDrain(a)) => sweep::drain(&a),
        Some(Cmd::Train(a)) => train::run(a),
    };
    let code = result.unwrap_or_else(|e| {
        // Errors quote paths and file contents: nothing of them reaches the terminal raw.
        eprintln!("error: {}", crate::rundir::printable_lines(&e.to_string()));
        e.exit_code()
    });
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// Gives SIGPIPE its default action back (Rust ignores it): a write to a closed pipe ends the
/// process quietly. Call it at start-up, before any thread exists.
#[allow(unsafe_code)]
fn die_on_sigpipe() {
    // SAFETY: setting a signal disposition at start-up, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// A config file nasp-tui ships in `configs/`, and its copy built into the binary.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shipped {
    /// The file's name in `configs/`.
    pub(crate) name: &'static str,
    /// Its text as built into the binary.
    pub(crate) text: &'static str,
}

/// `configs/default.toml`: a search's default config.
pub(crate) const DEFAULT_CONFIG: Shipped = Shipped {
    name: "default.toml",
    text: include_str!("../../configs/default.toml"),
};

/// `configs/cifar10-train.toml`: `nasp-tui train`'s default config.
pub(crate) const TRAIN_CONFIG: Shipped = Shipped {
    name: "cifar10-train.toml",
    text: include_str!("../../configs/cifar10-train.toml"),
};

/// `configs/nb201-train.toml`: `nasp-tui train`'s default config for a NAS-Bench-201 cell.
pub(crate) const NB201_TRAIN_CONFIG: Shipped = Shipped {
    name: "nb201-train.toml",
    text: include_str!("../../configs/nb201-train.toml"),
};

/// `configs/bench-train.toml`: `nasp-tui bench --train`'s default config.
pub(crate) const BENCH_TRAIN_CONFIG: Shipped = Shipped {
    name: "bench-train.toml",
    text: include_str!("../../configs/bench-train.toml"),
};

impl Shipped {
    /// The file on disk: `configs/NAME` in the working directory, else in the checkout the
    /// binary was built in (`target/<profile>/` two levels below it); `None` when neither
    /// exists (an installed binary run elsewhere), and then [`Shipped::text`] stands in.
    pub(crate) fn path(self) -> Option<PathBuf> {
        let local = PathBuf::from("configs").join(self.name);
        if local.is_file() {
            return Some(local);
        }
        let beside = std::env::current_exe()
            .ok()?
            .parent()?
            .join("../../configs")
            .join(self.name);
        beside.is_file().then_some(beside)
    }

    /// The name said when the built-in copy is used.
    pub(crate) fn origin(self) -> String {
        format!("built-in configs/{}", self.name)
    }
}

impl ConfigArgs {
    /// The `--set` overrides, with `--device` as one more.
    fn overrides(&self) -> Vec<String> {
        let mut sets = self.sets.clone();
        if let Some(d) = &self.device {
            sets.push(format!("device=\"{d}\""));
        }
        sets
    }

    /// The config these flags name (`--config`, else `default`'s file, else its built-in
    /// copy), with the overrides applied: the one resolver of every subcommand's config.
    fn load_or(&self, default: Shipped) -> Result<Config, CliError> {
        let sets = self.overrides();
        Ok(match self.config.clone().or_else(|| default.path()) {
            Some(path) => Config::load(Some(&path), &sets),
            None => Config::load_text(default.text, &default.origin(), &sets),
        }?)
    }

    /// [`ConfigArgs::load_or`] with a search's default, `configs/default.toml`.
    fn load(&self) -> Result<Config, CliError> {
        self.load_or(DEFAULT_CONFIG)
    }
}
