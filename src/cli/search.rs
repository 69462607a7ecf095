//! `nasp-tui search` (and `nasp-tui` with no subcommand): resolve the config and run directory,
//! start the worker, and hand its channels to the TUI or the headless printer.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;

use super::{CliError, ConfigArgs};
use crate::config::Config;
use crate::engine::resume;
use crate::engine::worker::{self, WorkerHandle, WorkerOptions};
use crate::{exit, headless, rundir, signals, tui};

#[derive(Args, Default)]
pub struct SearchArgs {
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

/// The config of the search: the flags' config, or, when resuming without `--config`, the
/// run's own resolved config with the same overrides.
fn config(a: &SearchArgs) -> Result<Config, CliError> {
    let run_cfg = match (&a.resume, &a.config.config) {
        (Some(r), None) => resume::run_config_of(r),
        _ => None,
    };
    let mut cfg = match run_cfg {
        Some(p) => Config::load(Some(&p), &a.config.overrides())?,
        None => a.config.load()?,
    };
    if let Some(t) = &a.theme {
        cfg.ui.theme = t.clone();
    }
    Ok(cfg)
}

pub fn run(a: SearchArgs) -> Result<i32, CliError> {
    let cfg = config(&a)?;
    let run_dir = a
        .run_dir
        .clone()
        .or_else(|| a.resume.as_deref().and_then(resume::run_dir_of))
        .unwrap_or_else(|| rundir::default_run_dir(cfg.algorithm.name()));
    let headless = a.headless || !std::io::stdout().is_terminal();
    // The TUI's theme and key files are checked before the search starts (bad file: exit 2).
    let tui_opts = if headless {
        None
    } else {
        let t = tui::TuiOptions::resolve(a.theme.as_deref(), &cfg.ui.theme, cfg.ui.fps, &run_dir)
            .map_err(|e| CliError::Usage(e.to_string()))?;
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
    // One registration for both monitors (SIGCONT included: the TUI redraws after a resume).
    let signals = signals::register().unwrap_or_else(|e| {
        eprintln!(
            "warning: cannot watch SIGTERM/SIGHUP ({e}); a dropped connection will not checkpoint"
        );
        crossbeam_channel::never()
    });
    let handle = worker::spawn(opts)
        .map_err(|e| CliError::Failed(format!("cannot start the search thread: {e}")))?;
    let code = match tui_opts {
        None => headless::run(
            &handle.commands,
            &handle.events,
            &signals,
            &mut std::io::stdout(),
            Duration::from_secs(2),
        ),
        Some(mut t) => {
            t.signals = Some(signals);
            tui::run(t, handle.commands.clone(), handle.events.clone()).unwrap_or_else(|e| {
                eprintln!("error: {e:#}");
                exit::FAILED
            })
        }
    };
    finish(handle);
    Ok(code)
}

/// After a forced quit (or the UI giving up on a stuck stop) do not hang on the worker: give it
/// a bounded time to finish its step and checkpoint, then exit anyway.
fn finish(handle: WorkerHandle) {
    drop(handle.commands);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !handle.join.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if handle.join.is_finished() {
        let _ = handle.join.join();
    }
}
