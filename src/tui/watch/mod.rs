//! `nasp-tui watch`: the monitor attached to runs through their directories only.
//!
//! ```text
//! one live run:   link thread ── tails events.jsonl (0.5 s) ──Event──▶ the same UI loop + App
//!                             ◀─ writes <run>/commands/ ◀──Command──   (quit, Esc, signals leave)
//!                 its process's RSS and GPU memory sampled when it runs on this host; when the
//!                 run ends (not by this watcher's stop), the screen goes on as its replay
//! one ended run:  events.jsonl read once ─▶ App::replay (time cursor), no link
//! several runs:   status.json of each, polled every second ─▶ RunsTable; Enter opens one of the
//!                 above on the same terminal, Esc comes back
//! ```
//!
//! The watcher never owns a run: it sends commands the run acknowledges in its log, and a
//! signal or a lost terminal only ends the watcher.

mod link;
pub mod load;
mod table;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use crossbeam_channel::{Receiver, never, unbounded};
use ratatui::Terminal;
use ratatui::backend::Backend;

use super::sampler::Sampler;
use super::{Channels, View, event_loop, input, terminal};
use crate::app::{App, KeyMap};
use crate::protocol::Level;
use crate::rundir::status::{Status, host_name};
use crate::theme::Theme;
use crate::ui::Glyphs;

pub use link::{Link, POLL, verb};
pub use table::{REFRESH, refresh_rows};

/// What to watch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One run directory: live, or a replay when it has ended.
    Run(PathBuf),
    /// The runs table over these run directories and folders of runs.
    Table(Vec<PathBuf>),
}

/// How the watcher draws and reads keys.
pub struct WatchOptions {
    pub theme: Theme,
    pub keymap: KeyMap,
    pub fps: u32,
    pub ascii: bool,
}

/// What every screen of the watcher shares.
struct Ui<'a> {
    view: View<'a>,
    keymap: &'a KeyMap,
    input: Receiver<crossterm::event::Event>,
    signals: Receiver<i32>,
    started: Instant,
}

/// Runs the watcher until the user leaves; returns the exit code (0, or 130 after a signal).
pub fn run(target: &Target, opts: &WatchOptions) -> anyhow::Result<i32> {
    let signals = crate::signals::register().context("cannot register signal handlers")?;
    let input = input::Input::spawn().context("cannot start the input thread")?;
    let mut guard = terminal::Guard::enter().context("cannot set up the terminal")?;
    let ui = Ui {
        view: View {
            theme: &opts.theme,
            glyphs: Glyphs { ascii: opts.ascii },
            fps: opts.fps,
        },
        keymap: &opts.keymap,
        input: input.events.clone(),
        signals,
        started: Instant::now(),
    };
    let code = match target {
        Target::Run(dir) => open_run(&mut guard.terminal, &ui, dir),
        Target::Table(paths) => table::run(&mut guard.terminal, &ui, paths),
    };
    drop(ui);
    drop(guard);
    let _ = input.stop();
    Ok(code)
}

/// The monitor on one run (live or replay) until the user leaves it; returns the exit code. A
/// live run that ends while watched (not stopped by this watcher) goes on as its replay.
fn open_run<B: Backend>(terminal: &mut Terminal<B>, ui: &Ui, dir: &Path) -> i32 {
    let keymap = ui.keymap.clone();
    let (mut app, link) = match load::opening(dir) {
        load::Opening::Live => (App::attached(keymap.clone()), Link::spawn(dir)),
        load::Opening::Replay(why) => (load::replay(dir, keymap.clone(), why), Err(no_link())),
    };
    if app.replay.is_none() {
        app.note(
            Level::Info,
            format!(
                "watching {} (its event log, every {:.1} s); q leaves, the search goes on",
                dir.display(),
                POLL.as_secs_f64()
            ),
        );
    }
    let sampler = if app.replay.is_none() {
        owner_sampler(dir, &mut app)
    } else {
        None
    };
    let code = show(terminal, ui, &mut app, link, sampler.as_ref());
    if let Some(s) = sampler {
        s.stop();
    }
    if !app.replay_next() {
        return code;
    }
    let why = match load::opening(dir) {
        load::Opening::Replay(why) => why,
        load::Opening::Live => "ended",
    };
    let mut replay = load::replay(dir, keymap, why);
    replay.note(
        Level::Info,
        "the run ended while watched: this is its replay (q leaves)".to_string(),
    );
    show(terminal, ui, &mut replay, Err(no_link()), None)
}

/// A resource sampler on the run's process when it runs on this host (its RSS and GPU memory
/// are readable here); otherwise a note says why the resources pane stays empty.
fn owner_sampler(dir: &Path, app: &mut App) -> Option<Sampler> {
    let status = Status::read(dir).ok()??;
    if status.host != host_name() {
        app.note(
            Level::Info,
            format!(
                "the run's process is on {}: its memory cannot be read from here",
                status.host
            ),
        );
        return None;
    }
    Sampler::spawn_for(status.pid).ok()
}

/// Runs the UI loop on `app`, following the run through `link` when there is one.
fn show<B: Backend>(
    terminal: &mut Terminal<B>,
    ui: &Ui,
    app: &mut App,
    link: std::io::Result<Link>,
    sampler: Option<&Sampler>,
) -> i32 {
    let (events, commands, _keep) = match link {
        Ok(l) => (l.events, l.commands, None),
        Err(e) => {
            if app.replay.is_none() {
                app.note(Level::Error, format!("cannot follow the run: {e}"));
            }
            let (tx, rx) = unbounded();
            (never(), tx, Some(rx))
        }
    };
    let channels = Channels {
        input: ui.input.clone(),
        events,
        signals: ui.signals.clone(),
        resources: sampler.map_or_else(never, |s| s.samples.clone()),
        device: sampler.map(|s| s.device.clone()),
    };
    let started = ui.started;
    let clock = move || -> Duration { started.elapsed() };
    event_loop(terminal, app, &channels, &commands, ui.view, &clock)
}

fn no_link() -> std::io::Error {
    std::io::Error::other("a replay has no link")
}

#[cfg(test)]
mod tests;
