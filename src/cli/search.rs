//! `nasp-tui search` (and `nasp-tui` with no subcommand): resolve the config and run directory,
//! start the worker, and hand its channels to the TUI or the headless printer.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;

use super::{CliError, ConfigArgs};
use crate::config::{Config, OnHangup};
use crate::engine::resume;
use crate::engine::worker::{self, WorkerHandle, WorkerOptions};
use crate::rundir::listing::find_runs;
use crate::rundir::status::{Shown, Status, unix_now};
use crate::tui::detach::{self, Ending};
use crate::{headless, rundir, signals, tui};

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
    /// Take the run directory over although its status names a live owner on another host (or a
    /// process of this host that is gone): for a run whose node went down or whose clock is
    /// ahead. Never taken from a process of this host that runs it.
    #[arg(long)]
    take_over: bool,
    /// A sweep's run started again from its `config.toml` after an attempt that saved no
    /// checkpoint: its run directory may hold that attempt's files.
    #[arg(skip)]
    restart_unsaved: bool,
}

impl SearchArgs {
    /// `search --headless --run-dir RUN_DIR` with `--config CONFIG` (a fresh run) or
    /// `--resume RUN_DIR` (config `None`: the run's own), as a sweep's run starts it.
    pub(super) fn headless_run(
        run_dir: PathBuf,
        config: Option<PathBuf>,
        max_steps: Option<u64>,
        device: Option<String>,
    ) -> SearchArgs {
        SearchArgs {
            resume: config.is_none().then(|| run_dir.clone()),
            restart_unsaved: config.is_some(),
            config: ConfigArgs {
                config,
                sets: Vec::new(),
                device,
            },
            headless: true,
            run_dir: Some(run_dir),
            max_steps,
            ..SearchArgs::default()
        }
    }
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
    if !a.restart_unsaved {
        refuse_a_run_there(&run_dir, a.resume.as_deref(), "search")?;
    }
    let fresh = a.run_dir.is_none() && a.resume.is_none();
    let (tui_opts, hangup) =
        monitor_options(a.headless, a.theme.as_deref(), &cfg, &run_dir, fresh)?;
    let opts = WorkerOptions {
        config: cfg,
        run_dir,
        data_dir: a.data_dir.clone(),
        max_steps: a.max_steps,
        resume: a.resume.clone(),
        event_interval: Duration::from_millis(100),
        take_over: a.take_over,
    };
    let signals = register_signals(tui_opts.is_some());
    let handle = worker::spawn(opts)
        .map_err(|e| CliError::Failed(format!("cannot start the search thread: {e}")))?;
    monitor(handle, signals, tui_opts, &hangup)
}

/// Refuses to start a new run (`resume` `None`) in a `run_dir` that holds one already, or to
/// continue another run's checkpoint there: its config, logs and checkpoints would be mixed with
/// the new run's. Says how to continue it and how to start fresh. `command`: `search` or
/// `train`.
pub(super) fn refuse_a_run_there(
    run_dir: &Path,
    resume: Option<&Path>,
    command: &str,
) -> Result<(), CliError> {
    let traces = rundir::run_traces(run_dir);
    // A run with a live owner is refused by the worker, naming the owner and how to watch it.
    let owned = Status::read(run_dir)
        .ok()
        .flatten()
        .is_some_and(|s| s.owner_alive(unix_now()));
    if traces.is_empty() || owned {
        return Ok(());
    }
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    };
    let resumed = resume.and_then(resume::run_dir_of);
    if resumed.is_some_and(|r| same(&r, run_dir)) {
        return Ok(());
    }
    let dir = run_dir.display();
    let what = if resume.is_some() {
        "another run's checkpoint cannot be continued there"
    } else {
        "a new run cannot start there"
    };
    let how = if traces.contains(&"checkpoints/") {
        format!(
            "Continue that run with `nasp-tui {command} --resume {dir}`; to start fresh, give a --run-dir that does not exist yet (or remove {dir} first)"
        )
    } else {
        format!(
            "That run saved no checkpoint, so it cannot be continued: to start fresh, give a --run-dir that does not exist yet, or remove {dir} first"
        )
    };
    Err(CliError::Usage(format!(
        "--run-dir {dir} holds a run already ({}): {what}. {how}",
        traces.join(", ")
    )))
}

/// The monitor's options for a run into `run_dir` (`None`: headless, asked for or because
/// stdout is not a terminal) and what SIGHUP does to it. The TUI's theme and key files are
/// checked here, before the run starts (a bad file: exit 2). A `fresh` run (a new one under the
/// runs root) names the live ones, on stderr and in the monitor.
pub(super) fn monitor_options(
    headless: bool,
    theme: Option<&str>,
    cfg: &Config,
    run_dir: &Path,
    fresh: bool,
) -> Result<(Option<tui::TuiOptions>, Hangup), CliError> {
    let tui_opts = if headless || !std::io::stdout().is_terminal() {
        None
    } else {
        let mut t = tui::TuiOptions::resolve(theme, &cfg.ui.theme, cfg.ui.fps, run_dir)
            .map_err(|e| CliError::Usage(e.to_string()))?;
        t.on_hangup = cfg.ui.on_hangup;
        if fresh {
            t.notes = live_runs(&rundir::runs_root(), unix_now());
            for line in &t.notes {
                eprintln!("{line}");
            }
        }
        Some(t)
    };
    let hangup = Hangup {
        on_hangup: cfg.ui.on_hangup,
        log: run_dir.join("log.txt"),
    };
    Ok((tui_opts, hangup))
}

/// What SIGHUP does to a headless run (`ui.on_hangup`), and the run's log it may move to.
pub(super) struct Hangup {
    pub on_hangup: OnHangup,
    pub log: PathBuf,
}

/// SIGTERM, SIGHUP, SIGINT and SIGCONT as messages: one registration for both monitors
/// (SIGCONT included: the TUI redraws after a resume). With the TUI (`tui`), first forks off
/// the foreground stand-in (`tui::foreground`), while no thread exists yet.
pub(super) fn register_signals(tui: bool) -> crossbeam_channel::Receiver<i32> {
    if tui && let Err(e) = tui::foreground::fork_stand_in() {
        eprintln!(
            "warning: cannot fork ({e}); after a detach the prompt returns when the run ends"
        );
    }
    signals::register().unwrap_or_else(|e| {
        eprintln!(
            "warning: cannot watch SIGTERM/SIGHUP ({e}); a dropped connection will not checkpoint"
        );
        crossbeam_channel::never()
    })
}

/// Hands a running worker's channels to the TUI (`tui_opts`) or the headless printer, follows
/// it through a detach, and waits for it; returns the exit code (an error of the terminal once
/// the worker has ended). `nasp-tui train` runs its worker under the same monitors.
pub(super) fn monitor(
    handle: WorkerHandle,
    signals: crossbeam_channel::Receiver<i32>,
    tui_opts: Option<tui::TuiOptions>,
    hangup: &Hangup,
) -> Result<i32, CliError> {
    let code = match tui_opts {
        None => Ok(headless::run(
            &handle.commands,
            &handle.events,
            &signals,
            &mut std::io::stdout(),
            Duration::from_secs(2),
            match hangup.on_hangup {
                OnHangup::Detach => headless::Hangup::Detach {
                    log: &hangup.log,
                    leave: headless::output_dies_with_the_terminal(),
                },
                OnHangup::Stop => headless::Hangup::Stop,
            },
        )),
        Some(mut t) => {
            t.signals = Some(signals.clone());
            match tui::run_detachable(t, handle.commands.clone(), handle.events.clone()) {
                Ok(Ending::Exit(code)) => Ok(code),
                // The run goes on without the terminal; `handle.commands` stays open (a closed
                // channel would stop the worker) until it ends.
                Ok(Ending::Detached) => Ok(detach::wait(
                    &handle.commands,
                    &handle.events,
                    &signals,
                    &mut detach::log_file(&hangup.log),
                )),
                Err(e) => Err(CliError::Failed(format!("{e:#}"))),
            }
        }
    };
    finish(handle);
    code
}

/// One line per live run under `root` (STALE ones are left out): its state, step and owner,
/// and how to watch it.
pub(super) fn live_runs(root: &Path, now: f64) -> Vec<String> {
    find_runs(root)
        .iter()
        .filter_map(|l| {
            let s = l.status.as_ref()?;
            let shown = s.shown(now);
            let live = matches!(shown, Shown::Said(state) if state.live());
            live.then(|| {
                let path = rundir::printable_path(&l.path);
                format!(
                    "live run: {path} ({} at step {}, pid {} on {}); watch it: nasp-tui watch {path}",
                    shown.label(),
                    s.step,
                    s.pid,
                    rundir::printable(&s.host),
                )
            })
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rundir::status::{RunState, Status, host_name};

    fn status(state: RunState, heartbeat: f64, pid: u32) -> Status {
        Status {
            state,
            pid,
            host: host_name(),
            heartbeat,
            started: heartbeat - 100.0,
            algorithm: "nasp".into(),
            device: "cpu".into(),
            epoch: 1,
            epochs: 50,
            step: 123,
            steps_per_epoch: 390,
            ..Status::starting(heartbeat)
        }
    }

    #[test]
    fn live_runs_are_named_with_how_to_watch_them() {
        let root = tempfile::tempdir().unwrap();
        let now = unix_now();
        let me = std::process::id();
        // A pid that no process has (above the kernel's pid_max limit).
        let gone = 4_194_305;
        for (name, st) in [
            ("live", status(RunState::Running, now - 1.0, me)),
            ("paused", status(RunState::Paused, now - 2.0, me)),
            ("done", status(RunState::Finished, now - 1.0, me)),
            ("stale", status(RunState::Running, now - 3600.0, gone)),
        ] {
            let dir = root.path().join("sweep").join(name);
            std::fs::create_dir_all(&dir).unwrap();
            st.write(&dir).unwrap();
        }
        let lines = live_runs(root.path(), now);
        assert_eq!(lines.len(), 2, "{lines:?}");
        let live = root.path().join("sweep/live");
        let want = format!(
            "live run: {} (RUNNING at step 123, pid {me} on {}); watch it: nasp-tui watch {}",
            live.display(),
            host_name(),
            live.display()
        );
        assert!(lines.contains(&want), "{lines:?}");
        assert!(lines.iter().any(|l| l.contains("PAUSED")), "{lines:?}");
        assert!(live_runs(&root.path().join("nothing-here"), now).is_empty());
    }
}
