//! The Model and Update of the monitor: all state lives in [`App`], every change goes through
//! [`App::update`], which returns the commands for the worker instead of sending them (no I/O
//! here, no clocks: time arrives in `Msg::Tick`). The view (`crate::ui`) only reads an `&App`.
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
use crate::space::CellType;

pub use actions::{Overlay, QuitChoice};
pub use cells::{CellView, CellWeights, cell_weights};
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

/// The whole UI state.
#[derive(Debug, Clone)]
pub struct App {
    keymap: KeyMap,
    pub info: Option<RunInfo>,
    pub phase: Phase,
    pub saving: bool,
    pub stopping: Option<Stopping>,
    /// What the user last asked for (the state flips only when the worker answers).
    want_paused: bool,
    pub step: Option<StepStats>,
    pub arch: Option<ArchSnapshot>,
    pub last_epoch: Option<EpochStats>,
    pub cell: CellType,
    pub normal: CellView,
    pub reduce: CellView,
    pub train_loss: History,
    pub train_acc: History,
    pub arch_loss: History,
    pub valid_acc: History,
    pub valid_loss: History,
    /// NB201 runs: the benchmark's test accuracy (a fraction) of the cell derived at each
    /// architecture snapshot.
    pub bench_acc: History,
    pub log: VecDeque<LogLine>,
    /// Lines scrolled back from the newest (0 = follow).
    pub log_scroll: usize,
    pub resources: Option<ResourceSample>,
    pub elapsed: Duration,
    pub overlay: Overlay,
    pub last_checkpoint: Option<String>,
    pub last_export: Vec<String>,
    /// Checkpoints that could not be written (shown in the status line).
    pub saves_failed: usize,
    /// The run ended without its final checkpoint (exit code `exit::UNSAVED`).
    pub unsaved: bool,
    worker_gone: bool,
    /// What SIGHUP (or the terminal's input ending) does: detach (the default) or stop.
    pub on_hangup: OnHangup,
    /// The UI leaves (with `exit`) but the search goes on without it.
    detach: bool,
    exit: Option<i32>,
    dirty: bool,
    clear: bool,
    /// A watcher attached to a live run through its directory (`nasp-tui watch`).
    attached: bool,
    /// The watched run ended (finished, failed or gone) without this watcher stopping it: the
    /// live view leaves for a replay of the whole run.
    to_replay: bool,
    /// A replay of an ended run: the recorded events and the time cursor.
    pub replay: Option<Replay>,
    /// The charts' smoothing weight (one of [`SMOOTHING`]).
    pub smoothing: f64,
    /// Per cell: how stable the selection is (steps since each edge's op changed, changes in the
    /// last epoch).
    pub normal_stability: Stability,
    pub reduce_stability: Stability,
}

impl App {
    pub fn new(keymap: KeyMap) -> App {
        App {
            keymap,
            info: None,
            phase: Phase::WarmingUp,
            saving: false,
            stopping: None,
            want_paused: false,
            step: None,
            arch: None,
            last_epoch: None,
            cell: CellType::Normal,
            normal: CellView::new(),
            reduce: CellView::new(),
            train_loss: History::new(1000, 250),
            train_acc: History::new(1000, 250),
            arch_loss: History::new(1000, 250),
            valid_acc: History::new(1000, 250),
            valid_loss: History::new(1000, 250),
            bench_acc: History::new(1000, 250),
            log: VecDeque::with_capacity(LOG_CAPACITY),
            log_scroll: 0,
            resources: None,
            elapsed: Duration::ZERO,
            overlay: Overlay::None,
            last_checkpoint: None,
            last_export: Vec::new(),
            saves_failed: 0,
            unsaved: false,
            worker_gone: false,
            on_hangup: OnHangup::Detach,
            detach: false,
            exit: None,
            dirty: true,
            clear: false,
            attached: false,
            to_replay: false,
            replay: None,
            smoothing: SMOOTHING[1],
            normal_stability: Stability::default(),
            reduce_stability: Stability::default(),
        }
    }

    /// A watcher of a live run: the same monitor, whose commands go to the run's inbox and whose
    /// quit, signals and Esc leave it (the search goes on).
    pub fn attached(keymap: KeyMap) -> App {
        App {
            attached: true,
            ..App::new(keymap)
        }
    }

    /// Whether this monitor watches a run another process owns (attached or replaying).
    pub fn is_watcher(&self) -> bool {
        self.attached || self.replay.is_some()
    }

    fn next_smoothing(&mut self) {
        let i = SMOOTHING
            .iter()
            .position(|s| (*s - self.smoothing).abs() < 1e-9)
            .map_or(0, |i| (i + 1) % SMOOTHING.len());
        self.smoothing = SMOOTHING[i];
        self.note(
            Level::Info,
            format!("chart smoothing {:.2} (s: next)", self.smoothing),
        );
    }

    pub fn keymap(&self) -> &KeyMap {
        &self.keymap
    }

    /// The exit code once the UI should leave.
    pub fn exit_code(&self) -> Option<i32> {
        self.exit
    }

    /// Whether the live view left because the watched run ended: open its replay next.
    pub fn replay_next(&self) -> bool {
        self.to_replay
    }

    /// Whether the UI leaves to let the search go on detached (with `d`, or on a hangup under
    /// `ui.on_hangup = "detach"`), rather than because the run is over.
    pub fn detaching(&self) -> bool {
        self.detach
    }

    /// Whether something visible changed since the last call (and resets it).
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    /// Whether a full redraw (clear first) was asked for since the last call (and resets it).
    pub fn take_clear(&mut self) -> bool {
        std::mem::take(&mut self.clear)
    }

    /// Whether the run is over (finished, failed or the worker is gone).
    pub fn ended(&self) -> bool {
        self.worker_gone || matches!(self.phase, Phase::Finished { .. } | Phase::Failed { .. })
    }

    /// Which key table applies now.
    pub fn key_context(&self) -> Context {
        match self.overlay {
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
        match &self.phase {
            Phase::Failed { .. } => StateLabel::Failed,
            Phase::Finished { .. } => StateLabel::Finished,
            _ if self.saving => StateLabel::Saving,
            _ if self.stopping.is_some() => StateLabel::Stopping,
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
                self.dirty = true;
                Vec::new()
            }
            Msg::InputClosed => self.on_signal(libc::SIGHUP, "the terminal went away"),
            Msg::Signal(sig) => self.on_signal(sig, events::signal_name(sig)),
            Msg::Worker(ev) => {
                self.dirty = true;
                self.on_event(ev);
                Vec::new()
            }
            Msg::WorkerGone => {
                self.dirty = true;
                self.on_worker_gone();
                Vec::new()
            }
            Msg::Tick(elapsed) => {
                self.on_tick(elapsed);
                Vec::new()
            }
            Msg::Resources(sample) => {
                if self.resources.as_ref() != Some(&sample) {
                    self.resources = Some(sample);
                    self.dirty = true;
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
        if self.log.len() == LOG_CAPACITY {
            self.log.pop_front();
        }
        self.log.push_back(line);
        if self.log_scroll > 0 {
            self.log_scroll = (self.log_scroll + 1).min(self.log.len().saturating_sub(1));
        }
        self.dirty = true;
    }

    /// Overall progress in [0, 1] and the estimated time left, from the latest step.
    pub fn progress(&self) -> Option<(f64, Option<Duration>)> {
        let info = self.info.as_ref()?;
        let total = (info.epochs * info.steps_per_epoch) as u64;
        if total == 0 {
            return None;
        }
        let done = self
            .step
            .as_ref()
            .map_or(info.start_step, |s| s.global_step)
            .min(total);
        let frac = done as f64 / total as f64;
        let eta = self.step.as_ref().and_then(|s| {
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
