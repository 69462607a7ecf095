//! The Model and Update of the monitor: all state lives in [`App`], every change goes through
//! [`App::update`], which returns the commands for the worker instead of sending them (no I/O
//! here, no clocks: time arrives in `Msg::Tick`). The view (`crate::ui`) only reads an `&App`.
//!
//! [`App`] holds its state in groups, one concern each: the run as its worker reports it
//! ([`RunState`]), its checkpoints and exports ([`Saves`]), the newest figures ([`Latest`]), the
//! chart histories ([`Charts`]), the cells' views ([`Cells`]), the log pane ([`LogPane`]), the
//! screen ([`Screen`]) and how this monitor ends ([`Leaving`]).
//!
//! This file holds the state and the dispatch of [`Msg`]; the handlers live beside it: keys and
//! the quit dialog in `actions`, worker events, signals and ticks in `events`, the architecture
//! pane in `cells`, the run's phase in `phase`.

mod actions;
mod cells;
mod events;
pub mod history;
pub mod keymap;
pub mod msg;
mod phase;
mod replay;
pub mod runs;
mod stability;

use std::collections::VecDeque;
use std::time::Duration;

use crate::config::OnHangup;
pub use crate::protocol::LogLine;
use crate::protocol::{ArchSnapshot, Command, EpochStats, Level, RunInfo, StepStats};

pub use actions::{Overlay, QuitChoice};
pub use cells::{CellView, CellWeights, Cells, cell_weights};
pub use history::History;
pub use keymap::{Action, Context, KeyMap};
pub use msg::{GpuSample, Msg, ResourceSample};
pub use phase::{Phase, StateLabel, Stopping};
pub use replay::{Replay, ReplayCursor};
pub use stability::Stability;

/// The chart smoothing weights `s` steps through (exponential moving average; 0 = raw points).
pub const SMOOTHING: [f64; 6] = [0.0, 0.6, 0.8, 0.9, 0.95, 0.99];

/// Lines kept in the log pane.
pub const LOG_CAPACITY: usize = 500;
/// How long a signal-initiated stop waits for the worker's `Finished`.
pub const SIGNAL_STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// The whole UI state, in groups that each hold one concern. [`App::update`] changes them; the
/// view reads them. Two fields stand alone: the key table, and the replay (a mode of the whole
/// monitor: the other groups then hold the state at its cursor).
#[derive(Debug, Clone)]
pub struct App {
    keymap: KeyMap,
    pub run: RunState,
    pub saves: Saves,
    pub latest: Latest,
    pub charts: Charts,
    pub cells: Cells,
    pub log: LogPane,
    pub screen: Screen,
    pub leaving: Leaving,
    /// A replay of an ended run: the recorded events and the time cursor.
    pub replay: Option<Replay>,
}

/// The run as its worker reports it: what it is, and where it stands.
#[derive(Debug, Clone)]
pub struct RunState {
    /// What the run is (from `Started`; `None` before it).
    pub info: Option<RunInfo>,
    pub phase: Phase,
    /// What the user last asked for (the phase flips only when the worker answers).
    want_paused: bool,
    /// The event channel closed (the worker, or a watched run's process, is gone).
    worker_gone: bool,
}

impl Default for RunState {
    fn default() -> RunState {
        RunState {
            info: None,
            phase: Phase::WarmingUp,
            want_paused: false,
            worker_gone: false,
        }
    }
}

/// The run's checkpoints and exports: one being written, the last written, those that failed.
#[derive(Debug, Clone, Default)]
pub struct Saves {
    /// A checkpoint is being written (between `Saving` and its answer).
    pub saving: bool,
    pub last_checkpoint: Option<String>,
    pub last_export: Vec<String>,
    /// Checkpoints that could not be written (shown in the status line).
    pub failed: usize,
    /// The run ended without its final checkpoint (exit code `exit::UNSAVED`).
    pub unsaved: bool,
}

/// The newest figures: the last step, architecture snapshot and epoch the worker sent, the last
/// resource sample, and the clock (time arrives in `Msg::Tick`).
#[derive(Debug, Clone, Default)]
pub struct Latest {
    pub step: Option<StepStats>,
    pub arch: Option<ArchSnapshot>,
    pub epoch: Option<EpochStats>,
    pub resources: Option<ResourceSample>,
    /// Time since the monitor started.
    pub elapsed: Duration,
}

/// The charts' histories (x = the global step) and how they are smoothed.
#[derive(Debug, Clone)]
pub struct Charts {
    pub train_loss: History,
    pub train_acc: History,
    pub arch_loss: History,
    pub valid_acc: History,
    pub valid_loss: History,
    /// NB201 runs: the benchmark's test accuracy (a fraction) of the cell derived at each
    /// architecture snapshot.
    pub bench_acc: History,
    /// The smoothing weight (one of [`SMOOTHING`]).
    pub smoothing: f64,
}

impl Default for Charts {
    fn default() -> Charts {
        let history = || History::new(1000, 250);
        Charts {
            train_loss: history(),
            train_acc: history(),
            arch_loss: history(),
            valid_acc: history(),
            valid_loss: history(),
            bench_acc: history(),
            smoothing: SMOOTHING[1],
        }
    }
}

impl Charts {
    /// Steps to the next weight of [`SMOOTHING`] (after the last, back to the first) and returns
    /// it.
    fn next_smoothing(&mut self) -> f64 {
        let i = SMOOTHING
            .iter()
            .position(|s| (*s - self.smoothing).abs() < 1e-9)
            .map_or(0, |i| (i + 1) % SMOOTHING.len());
        self.smoothing = SMOOTHING[i];
        self.smoothing
    }
}

/// The log pane: the newest [`LOG_CAPACITY`] lines and how far it is scrolled back.
#[derive(Debug, Clone)]
pub struct LogPane {
    pub lines: VecDeque<LogLine>,
    /// Lines scrolled back from the newest (0 = follow).
    pub scroll: usize,
}

impl Default for LogPane {
    fn default() -> LogPane {
        LogPane {
            lines: VecDeque::with_capacity(LOG_CAPACITY),
            scroll: 0,
        }
    }
}

impl LogPane {
    /// Adds a line (dropping the oldest when full); a pane scrolled back stays on its lines.
    fn push(&mut self, line: LogLine) {
        if self.lines.len() == LOG_CAPACITY {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
        if self.scroll > 0 {
            self.scroll = (self.scroll + 1).min(self.lines.len().saturating_sub(1));
        }
    }

    /// Scrolls `n` lines back, towards the oldest (which stays in view).
    fn scroll_back(&mut self, n: usize) {
        self.scroll = (self.scroll + n).min(self.lines.len().saturating_sub(1));
    }

    /// Scrolls `n` lines forward, towards the newest (0: following again).
    fn scroll_forward(&mut self, n: usize) {
        self.scroll = self.scroll.saturating_sub(n);
    }
}

/// The screen: the popup over the panes, and whether to redraw (and clear first) — both read
/// and reset by the terminal loop through [`App::take_dirty`] and [`App::take_clear`].
#[derive(Debug, Clone)]
pub struct Screen {
    pub overlay: Overlay,
    dirty: bool,
    clear: bool,
}

impl Default for Screen {
    fn default() -> Screen {
        Screen {
            overlay: Overlay::None,
            dirty: true,
            clear: false,
        }
    }
}

/// How this monitor ends: whose run it watches, the stop it asked for, what a hangup does, and
/// once chosen its exit code and way out — read by the terminal loop through
/// [`App::exit_code`], [`App::detaching`] and [`App::replay_next`].
#[derive(Debug, Clone, Default)]
pub struct Leaving {
    /// A watcher attached to a live run through its directory (`nasp-tui watch`).
    attached: bool,
    /// A stop this monitor asked for (quit dialog or signal), until the worker answers.
    pub stopping: Option<Stopping>,
    /// What SIGHUP (or the terminal's input ending) does: detach (the default) or stop.
    pub on_hangup: OnHangup,
    /// The UI leaves (with `exit`) but the search goes on without it.
    detach: bool,
    /// The watched run ended (finished, failed or gone) without this watcher stopping it: the
    /// live view leaves for a replay of the whole run.
    to_replay: bool,
    exit: Option<i32>,
}

impl App {
    pub fn new(keymap: KeyMap) -> App {
        App {
            keymap,
            run: RunState::default(),
            saves: Saves::default(),
            latest: Latest::default(),
            charts: Charts::default(),
            cells: Cells::default(),
            log: LogPane::default(),
            screen: Screen::default(),
            leaving: Leaving::default(),
            replay: None,
        }
    }

    /// A watcher of a live run: the same monitor, whose commands go to the run's inbox and whose
    /// quit, signals and Esc leave it (the search goes on).
    pub fn attached(keymap: KeyMap) -> App {
        let mut app = App::new(keymap);
        app.leaving.attached = true;
        app
    }

    /// Whether this monitor watches a run another process owns (attached or replaying).
    pub fn is_watcher(&self) -> bool {
        self.leaving.attached || self.replay.is_some()
    }

    fn next_smoothing(&mut self) {
        let smoothing = self.charts.next_smoothing();
        self.note(
            Level::Info,
            format!("chart smoothing {smoothing:.2} (s: next)"),
        );
    }

    pub fn keymap(&self) -> &KeyMap {
        &self.keymap
    }

    /// The exit code once the UI should leave.
    pub fn exit_code(&self) -> Option<i32> {
        self.leaving.exit
    }

    /// Whether the live view left because the watched run ended: open its replay next.
    pub fn replay_next(&self) -> bool {
        self.leaving.to_replay
    }

    /// Whether the UI leaves to let the search go on detached (with `d`, or on a hangup under
    /// `ui.on_hangup = "detach"`), rather than because the run is over.
    pub fn detaching(&self) -> bool {
        self.leaving.detach
    }

    /// Whether something visible changed since the last call (and resets it).
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.screen.dirty)
    }

    /// Whether a full redraw (clear first) was asked for since the last call (and resets it).
    pub fn take_clear(&mut self) -> bool {
        std::mem::take(&mut self.screen.clear)
    }

    /// Whether the run is over (finished, failed or the worker is gone).
    pub fn ended(&self) -> bool {
        self.run.worker_gone
            || matches!(
                self.run.phase,
                Phase::Finished { .. } | Phase::Failed { .. }
            )
    }

    /// Which key table applies now.
    pub fn key_context(&self) -> Context {
        match self.screen.overlay {
            Overlay::Quit(_) => Context::Dialog,
            _ if self.replay.is_some() => Context::Replay,
            _ => Context::Main,
        }
    }

    /// The state to show as text.
    pub fn state_label(&self) -> StateLabel {
        if self.replay.is_some() {
            return StateLabel::Replay;
        }
        match &self.run.phase {
            Phase::Failed { .. } => StateLabel::Failed,
            Phase::Finished { .. } => StateLabel::Finished,
            _ if self.saves.saving => StateLabel::Saving,
            _ if self.leaving.stopping.is_some() => StateLabel::Stopping,
            Phase::Paused => StateLabel::Paused,
            Phase::Running => StateLabel::Running,
            Phase::WarmingUp | Phase::Started => StateLabel::WarmingUp,
        }
    }

    /// Applies one message; returns the commands for the worker.
    pub fn update(&mut self, msg: Msg) -> Vec<Command> {
        match msg {
            Msg::Key(ev) => match self.keymap.action(self.key_context(), &ev) {
                Some(action) => self.on_action(action),
                None => Vec::new(),
            },
            Msg::Resize => {
                self.screen.dirty = true;
                Vec::new()
            }
            Msg::InputClosed => self.on_signal(libc::SIGHUP, "the terminal went away"),
            Msg::Signal(sig) => self.on_signal(sig, events::signal_name(sig)),
            Msg::Worker(ev) => {
                self.screen.dirty = true;
                self.on_event(ev);
                Vec::new()
            }
            Msg::WorkerGone => {
                self.screen.dirty = true;
                self.on_worker_gone();
                Vec::new()
            }
            Msg::Tick(elapsed) => {
                self.on_tick(elapsed);
                Vec::new()
            }
            Msg::Resources(sample) => {
                if self.latest.resources.as_ref() != Some(&sample) {
                    self.latest.resources = Some(sample);
                    self.screen.dirty = true;
                }
                Vec::new()
            }
        }
    }

    /// Adds a line to the log pane.
    pub fn note(&mut self, level: Level, text: impl Into<String>) {
        self.push_log(LogLine::new(level, text));
    }

    fn push_log(&mut self, line: LogLine) {
        self.log.push(line);
        self.screen.dirty = true;
    }

    /// Overall progress in [0, 1] and the estimated time left, from the latest step.
    pub fn progress(&self) -> Option<(f64, Option<Duration>)> {
        let info = self.run.info.as_ref()?;
        let total = (info.epochs * info.steps_per_epoch) as u64;
        if total == 0 {
            return None;
        }
        let done = self
            .latest
            .step
            .as_ref()
            .map_or(info.start_step, |s| s.global_step)
            .min(total);
        let frac = done as f64 / total as f64;
        let eta = self.latest.step.as_ref().and_then(|s| {
            (s.ms_per_step > 0.0 && s.ms_per_step.is_finite())
                .then(|| Duration::from_secs_f64((total - done) as f64 * s.ms_per_step / 1000.0))
        });
        Some((frac, eta))
    }
}

#[cfg(test)]
pub mod fixtures;
#[cfg(test)]
mod tests;
