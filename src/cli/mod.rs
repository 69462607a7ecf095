//! The command line: one file per subcommand. `main.rs` parses and calls [`run`]; each
//! subcommand returns an exit code or a [`CliError`], and [`CliError::exit_code`] is the one
//! place that turns errors into exit codes (`crate::exit`).

mod bench;
mod bench_sizes;
mod bench_train;
mod check;
mod ctl;
mod export;
mod info;
mod ls;
mod nb201;
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
                | Cmd::Nb201(_)
        )
    ) {
        // Output piped into a program that stops reading (`nasp-tui info | head`) ends these
        // commands quietly instead of a panic on the failed write. A search keeps Rust's
        // default (a write error, handled) so that it still checkpoints.
        // SAFETY: setting a signal disposition at start-up, before any thread exists.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
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
        Some(Cmd::SweepRun(a)) => sweep::run_one(&a),
        Some(Cmd::SweepDrain(a)) => sweep::drain(&a),
        Some(Cmd::Train(a)) => train::run(a),
    };
    let code = result.unwrap_or_else(|e| {
        eprintln!("error: {e}");
        e.exit_code()
    });
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

pub(crate) fn default_config_path() -> Option<PathBuf> {
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
pub(crate) const BUILT_IN_DEFAULT: &str = include_str!("../../configs/default.toml");

impl ConfigArgs {
    /// The `--set` overrides, with `--device` as one more.
    fn overrides(&self) -> Vec<String> {
        let mut sets = self.sets.clone();
        if let Some(d) = &self.device {
            sets.push(format!("device=\"{d}\""));
        }
        sets
    }

    /// The config these flags name (`--config`, else configs/default.toml, else the built-in
    /// copy), with the overrides applied.
    fn load(&self) -> Result<Config, CliError> {
        let sets = self.overrides();
        Ok(match self.config.clone().or_else(default_config_path) {
            Some(path) => Config::load(Some(&path), &sets),
            None => Config::load_text(BUILT_IN_DEFAULT, "built-in configs/default.toml", &sets),
        }?)
    }
}
