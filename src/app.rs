//! The Model and Update of the monitor: all state lives in [`App`], every change goes through
//! [`App::update`], which returns the commands for the worker instead of sending them (no I/O
//! here, no clocks: time arrives in `Msg::Tick`). The view (`crate::ui`) only reads an `&App`.

pub mod history;
pub mod keymap;
pub mod msg;

use std::collections::VecDeque;
use std::time::Duration;

use crate::arch::{ArchMatrix, edge_endpoints};
use crate::exit;
pub use crate::protocol::LogLine;
use crate::protocol::{ArchSnapshot, Command, EpochStats, Event, Level, RunInfo, StepStats};
use crate::space::CellType;

pub use history::History;
pub use keymap::{Action, Context, KeyMap};
pub use msg::{GpuSample, Msg, ResourceSample};

/// Lines kept in the log pane.
pub const LOG_CAPACITY: usize = 500;
/// How long a signal-initiated stop waits for the worker's `Finished`.
pub const SIGNAL_STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Where the run is.
#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    /// Before `Started`: the worker builds the model and loads the data.
    WarmingUp,
    /// `Started` arrived, before the first `Step` (still warming up: the first step can be slow).
    Started,
    Running,
    Paused,
    Finished {
        summary: String,
        stopped: bool,
    },
    Failed {
        message: String,
    },
}

/// The state shown as text in the status pane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateLabel {
    WarmingUp,
    Running,
    Paused,
    Saving,
    Stopping,
    Finished,
    Failed,
}

impl StateLabel {
    pub fn text(self) -> &'static str {
        match self {
            StateLabel::WarmingUp => "WARMING UP",
            StateLabel::Running => "RUNNING",
            StateLabel::Paused => "PAUSED",
            StateLabel::Saving => "SAVING",
            StateLabel::Stopping => "STOPPING",
            StateLabel::Finished => "FINISHED",
            StateLabel::Failed => "FAILED",
        }
    }
}

/// A stop the UI asked for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stopping {
    pub save: bool,
    /// Set when a signal asked for the stop: exit 130, give up at `deadline`.
    pub signal: Option<i32>,
    pub deadline: Option<Duration>,
}

/// The choices of the quit dialog, left to right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuitChoice {
    SaveQuit,
    Quit,
    Cancel,
}

impl QuitChoice {
    pub const ALL: [QuitChoice; 3] = [QuitChoice::SaveQuit, QuitChoice::Quit, QuitChoice::Cancel];

    pub fn label(self) -> &'static str {
        match self {
            QuitChoice::SaveQuit => "save & quit",
            QuitChoice::Quit => "quit",
            QuitChoice::Cancel => "cancel",
        }
    }

    fn action(self) -> Action {
        match self {
            QuitChoice::SaveQuit => Action::SaveQuit,
            QuitChoice::Quit => Action::QuitNoSave,
            QuitChoice::Cancel => Action::Cancel,
        }
    }
}

/// A popup over the panes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlay {
    None,
    Help,
    Quit(QuitChoice),
}

/// Per-cell view state: the focused edge and op, and the history of every weight.
#[derive(Debug, Clone, PartialEq)]
pub struct CellView {
    pub edge: usize,
    pub op: usize,
    /// One history per (edge, op), row-major, of the value the heat map shows.
    pub history: Vec<History>,
}

impl CellView {
    fn new() -> CellView {
        CellView {
            edge: 0,
            op: 0,
            history: Vec::new(),
        }
    }
}

/// Derived, display-ready facts about one cell of the current architecture snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct CellWeights {
    /// The values shown: A (NASP) or softmax(A) (DARTS).
    pub values: ArchMatrix,
    /// The marked op per edge: Ā's choice (NASP) or the argmax (DARTS).
    pub marked: Vec<usize>,
    /// Whether the edge is kept by the derived cell (dropped edges are dimmed).
    pub kept: Vec<bool>,
}

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
    pub log: VecDeque<LogLine>,
    /// Lines scrolled back from the newest (0 = follow).
    pub log_scroll: usize,
    pub resources: Option<ResourceSample>,
    pub elapsed: Duration,
    pub overlay: Overlay,
    pub last_checkpoint: Option<String>,
    pub last_export: Vec<String>,
    worker_gone: bool,
    exit: Option<i32>,
    dirty: bool,
    clear: bool,
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
            log: VecDeque::with_capacity(LOG_CAPACITY),
            log_scroll: 0,
            resources: None,
            elapsed: Duration::ZERO,
            overlay: Overlay::None,
            last_checkpoint: None,
            last_export: Vec::new(),
            worker_gone: false,
            exit: None,
            dirty: true,
            clear: false,
        }
    }

    pub fn keymap(&self) -> &KeyMap {
        &self.keymap
    }

    /// The exit code once the UI should leave.
    pub fn exit_code(&self) -> Option<i32> {
        self.exit
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
            _ => Context::Main,
        }
    }

    /// The state to show as text.
    pub fn state_label(&self) -> StateLabel {
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

    pub fn cell_view(&self, cell: CellType) -> &CellView {
        match cell {
            CellType::Normal => &self.normal,
            CellType::Reduce => &self.reduce,
        }
    }

    fn cell_view_mut(&mut self, cell: CellType) -> &mut CellView {
        match cell {
            CellType::Normal => &mut self.normal,
            CellType::Reduce => &mut self.reduce,
        }
    }

    /// Whether the heat map shows Ā-selection (NASP) rather than softmax/argmax (DARTS).
    pub fn proximal(&self) -> bool {
        self.info.as_ref().is_none_or(|i| i.proximal)
    }

    /// The op names of a cell (empty before `Started`).
    pub fn ops(&self, cell: CellType) -> &[String] {
        match (&self.info, cell) {
            (Some(i), CellType::Normal) => &i.normal_ops,
            (Some(i), CellType::Reduce) => &i.reduce_ops,
            (None, _) => &[],
        }
    }

    /// Display-ready weights of a cell, from the latest snapshot.
    pub fn weights(&self, cell: CellType) -> Option<CellWeights> {
        let snap = self.arch.as_ref()?;
        Some(cell_weights(snap, cell, self.proximal(), self.nodes()))
    }

    /// Intermediate nodes per cell.
    pub fn nodes(&self) -> usize {
        self.info.as_ref().map_or(4, |i| i.nodes)
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
            Msg::Signal(sig) => self.on_signal(sig, signal_name(sig)),
            Msg::Worker(ev) => {
                self.dirty = true;
                self.on_event(ev)
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

    /// Runs an action as if its key had been pressed.
    pub fn on_action(&mut self, action: Action) -> Vec<Command> {
        self.dirty = true;
        match self.overlay {
            Overlay::Quit(choice) => return self.on_dialog(choice, action),
            Overlay::Help if matches!(action, Action::Help | Action::Close) => {
                self.overlay = Overlay::None;
                return Vec::new();
            }
            _ => {}
        }
        match action {
            Action::Pause => self.toggle_pause(),
            Action::Checkpoint => self.if_running("checkpoint", Command::Checkpoint),
            Action::Export => self.if_running("export", Command::Export),
            Action::Quit | Action::Interrupt => self.quit_pressed(action == Action::Interrupt),
            Action::Redraw => {
                self.clear = true;
                Vec::new()
            }
            Action::Help => {
                self.overlay = if self.overlay == Overlay::Help {
                    Overlay::None
                } else {
                    Overlay::Help
                };
                Vec::new()
            }
            Action::Close => {
                self.overlay = Overlay::None;
                Vec::new()
            }
            Action::NextCell | Action::PrevCell => {
                self.cell = match self.cell {
                    CellType::Normal => CellType::Reduce,
                    CellType::Reduce => CellType::Normal,
                };
                Vec::new()
            }
            Action::NormalCell => {
                self.cell = CellType::Normal;
                Vec::new()
            }
            Action::ReduceCell => {
                self.cell = CellType::Reduce;
                Vec::new()
            }
            Action::EdgeUp | Action::EdgeDown | Action::OpLeft | Action::OpRight => {
                self.move_focus(action);
                Vec::new()
            }
            Action::LogUp => {
                self.log_scroll = (self.log_scroll + 5).min(self.log.len().saturating_sub(1));
                Vec::new()
            }
            Action::LogDown => {
                self.log_scroll = self.log_scroll.saturating_sub(5);
                Vec::new()
            }
            // Dialog actions outside the dialog do nothing.
            Action::SaveQuit
            | Action::QuitNoSave
            | Action::Cancel
            | Action::DialogNext
            | Action::DialogPrev
            | Action::Confirm => Vec::new(),
        }
    }

    fn toggle_pause(&mut self) -> Vec<Command> {
        if self.ended() || self.stopping.is_some() {
            self.note(Level::Warn, "the run is not stepping; nothing to pause");
            return Vec::new();
        }
        self.want_paused = !self.want_paused;
        if self.want_paused {
            vec![Command::Pause]
        } else {
            vec![Command::Resume]
        }
    }

    fn if_running(&mut self, what: &str, cmd: Command) -> Vec<Command> {
        if self.ended() {
            self.note(Level::Warn, format!("the run has ended; cannot {what}"));
            return Vec::new();
        }
        self.note(Level::Info, format!("{what} requested"));
        vec![cmd]
    }

    fn quit_pressed(&mut self, interrupt: bool) -> Vec<Command> {
        if self.ended() {
            self.exit = Some(match self.phase {
                Phase::Failed { .. } => exit::FAILED,
                _ => exit::OK,
            });
            return Vec::new();
        }
        if self.stopping.is_some() {
            if interrupt {
                self.note(Level::Warn, "forced quit: not waiting for the worker");
                self.exit = Some(exit::INTERRUPTED);
            } else {
                self.note(
                    Level::Info,
                    "already stopping; Ctrl-C again forces the quit",
                );
            }
            return Vec::new();
        }
        self.overlay = Overlay::Quit(QuitChoice::SaveQuit);
        Vec::new()
    }

    fn on_dialog(&mut self, choice: QuitChoice, action: Action) -> Vec<Command> {
        let idx = QuitChoice::ALL
            .iter()
            .position(|c| *c == choice)
            .unwrap_or(0);
        let n = QuitChoice::ALL.len();
        let chosen = match action {
            Action::DialogNext => {
                self.overlay = Overlay::Quit(QuitChoice::ALL[(idx + 1) % n]);
                return Vec::new();
            }
            Action::DialogPrev => {
                self.overlay = Overlay::Quit(QuitChoice::ALL[(idx + n - 1) % n]);
                return Vec::new();
            }
            Action::Confirm => choice.action(),
            other => other,
        };
        match chosen {
            Action::SaveQuit | Action::QuitNoSave => {
                self.overlay = Overlay::None;
                let save = chosen == Action::SaveQuit;
                if self.ended() {
                    self.exit = Some(exit::OK);
                    return Vec::new();
                }
                self.stopping = Some(Stopping {
                    save,
                    signal: None,
                    deadline: None,
                });
                self.note(
                    Level::Info,
                    if save {
                        "stopping: saving a checkpoint, then quitting"
                    } else {
                        "stopping without saving"
                    },
                );
                vec![Command::Stop { save }]
            }
            Action::Cancel => {
                self.overlay = Overlay::None;
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    fn move_focus(&mut self, action: Action) {
        let edges = self.arch.as_ref().map_or(0, |a| match self.cell {
            CellType::Normal => a.normal.rows,
            CellType::Reduce => a.reduce.rows,
        });
        let ops = self.ops(self.cell).len();
        let view = self.cell_view_mut(self.cell);
        match action {
            Action::EdgeUp => view.edge = view.edge.saturating_sub(1),
            Action::EdgeDown if edges > 0 => view.edge = (view.edge + 1).min(edges - 1),
            Action::OpLeft => view.op = view.op.saturating_sub(1),
            Action::OpRight if ops > 0 => view.op = (view.op + 1).min(ops - 1),
            _ => {}
        }
    }

    fn on_signal(&mut self, sig: i32, what: &str) -> Vec<Command> {
        self.dirty = true;
        if sig == libc::SIGCONT {
            // Back from a suspend (or a tmux re-attach): the screen may be stale.
            self.clear = true;
            return Vec::new();
        }
        if self.ended() {
            self.exit = Some(exit::INTERRUPTED);
            return Vec::new();
        }
        if let Some(s) = self.stopping.as_mut() {
            if s.signal.is_none() {
                s.signal = Some(sig);
                s.deadline = Some(self.elapsed + SIGNAL_STOP_TIMEOUT);
            }
            return Vec::new();
        }
        self.overlay = Overlay::None;
        self.note(
            Level::Warn,
            format!("{what}: saving a checkpoint and stopping"),
        );
        self.stopping = Some(Stopping {
            save: true,
            signal: Some(sig),
            deadline: Some(self.elapsed + SIGNAL_STOP_TIMEOUT),
        });
        vec![Command::Stop { save: true }]
    }

    fn on_tick(&mut self, elapsed: Duration) {
        // Redraw when the shown clock (seconds) or the warm-up spinner moves.
        let shown = |d: Duration| (d.as_secs(), d.as_millis() / 250);
        let warming = self.state_label() == StateLabel::WarmingUp;
        if shown(elapsed).0 != shown(self.elapsed).0
            || (warming && shown(elapsed).1 != shown(self.elapsed).1)
        {
            self.dirty = true;
        }
        self.elapsed = elapsed;
        if let Some(Stopping {
            deadline: Some(d), ..
        }) = self.stopping
            && elapsed >= d
        {
            self.note(
                Level::Error,
                "the worker did not finish in time; quitting anyway",
            );
            self.exit = Some(exit::INTERRUPTED);
        }
    }

    fn on_worker_gone(&mut self) {
        if self.worker_gone {
            return;
        }
        let was_ended = self.ended();
        self.worker_gone = true;
        if let Some(s) = self.stopping {
            self.exit = Some(if s.signal.is_some() {
                exit::INTERRUPTED
            } else {
                exit::OK
            });
            return;
        }
        if !was_ended {
            let message = "the search worker stopped without reporting (event channel closed)";
            self.note(Level::Error, message);
            self.phase = Phase::Failed {
                message: message.to_string(),
            };
        }
    }

    fn on_event(&mut self, ev: Event) -> Vec<Command> {
        if let Some(line) = ev.describe() {
            self.push_log(line);
        }
        match ev {
            Event::Started(info) => {
                self.info = Some(info);
                if self.phase == Phase::WarmingUp {
                    self.phase = Phase::Started;
                }
            }
            Event::Step(s) => {
                let x = s.global_step as f64;
                self.train_loss.push(x, s.train_loss);
                self.train_acc.push(x, s.train_acc);
                self.arch_loss.push(x, s.arch_loss);
                if matches!(self.phase, Phase::WarmingUp | Phase::Started) {
                    self.phase = if self.want_paused {
                        Phase::Paused
                    } else {
                        Phase::Running
                    };
                }
                self.step = Some(s);
            }
            Event::Arch(snap) => {
                self.record_arch(&snap);
                self.arch = Some(snap);
                self.clamp_focus();
            }
            Event::Epoch(e) => {
                let x = self.step.as_ref().map_or(0.0, |s| s.global_step as f64);
                self.valid_acc.push(x, e.valid_acc);
                self.valid_loss.push(x, e.valid_loss);
                self.last_epoch = Some(e);
            }
            Event::Paused { .. } => {
                self.want_paused = true;
                if !self.ended() {
                    self.phase = Phase::Paused;
                }
            }
            Event::Resumed => {
                self.want_paused = false;
                if self.phase == Phase::Paused {
                    self.phase = Phase::Running;
                }
            }
            Event::Saving => self.saving = true,
            Event::CheckpointSaved { path, .. } => {
                self.saving = false;
                self.last_checkpoint = Some(path);
            }
            Event::Exported { paths } => self.last_export = paths,
            Event::Log { level, .. } => {
                if level == Level::Error {
                    // An error answer to a checkpoint request ends the saving state.
                    self.saving = false;
                }
            }
            Event::Finished { summary, stopped } => {
                self.saving = false;
                self.phase = Phase::Finished { summary, stopped };
                if let Some(s) = self.stopping {
                    self.exit = Some(if s.signal.is_some() {
                        exit::INTERRUPTED
                    } else {
                        exit::OK
                    });
                }
            }
            Event::Failed { message } => {
                self.saving = false;
                self.phase = Phase::Failed { message };
                // Nobody may be watching after a signal (ssh dropped): leave at once.
                if matches!(
                    self.stopping,
                    Some(Stopping {
                        signal: Some(_),
                        ..
                    })
                ) {
                    self.exit = Some(exit::FAILED);
                }
                self.stopping = None;
            }
        }
        Vec::new()
    }

    fn record_arch(&mut self, snap: &ArchSnapshot) {
        let proximal = self.proximal();
        let nodes = self.nodes();
        for cell in [CellType::Normal, CellType::Reduce] {
            let w = cell_weights(snap, cell, proximal, nodes);
            let view = self.cell_view_mut(cell);
            let n = w.values.data.len();
            if view.history.len() != n {
                view.history = (0..n).map(|_| History::new(240, 120)).collect();
            }
            let x = snap.global_step as f64;
            for (h, v) in view.history.iter_mut().zip(&w.values.data) {
                h.push(x, f64::from(*v));
            }
        }
    }

    fn clamp_focus(&mut self) {
        for cell in [CellType::Normal, CellType::Reduce] {
            let (rows, cols) = match (&self.arch, cell) {
                (Some(a), CellType::Normal) => (a.normal.rows, a.normal.cols),
                (Some(a), CellType::Reduce) => (a.reduce.rows, a.reduce.cols),
                (None, _) => continue,
            };
            let view = self.cell_view_mut(cell);
            view.edge = view.edge.min(rows.saturating_sub(1));
            view.op = view.op.min(cols.saturating_sub(1));
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

/// The display values of one cell: A with Ā's choice (NASP), or softmax(A) with its argmax
/// (DARTS). Kept edges come from Ā (NASP) or from the genotype (DARTS: top-2 inputs per node).
pub fn cell_weights(
    snap: &ArchSnapshot,
    cell: CellType,
    proximal: bool,
    nodes: usize,
) -> CellWeights {
    let (a, selected, genes) = match cell {
        CellType::Normal => (&snap.normal, &snap.normal_selected, &snap.genotype.normal),
        CellType::Reduce => (&snap.reduce, &snap.reduce_selected, &snap.genotype.reduce),
    };
    let argmax = |m: &ArchMatrix, r: usize| {
        let row = m.row(r);
        (0..row.len()).fold(0, |best, k| if row[k] > row[best] { k } else { best })
    };
    if proximal {
        let marked = (0..a.rows)
            .map(|r| {
                selected
                    .get(r)
                    .copied()
                    .flatten()
                    .unwrap_or_else(|| argmax(a, r))
            })
            .collect();
        let kept = (0..a.rows)
            .map(|r| selected.get(r).copied().flatten().is_some())
            .collect();
        CellWeights {
            values: a.clone(),
            marked,
            kept,
        }
    } else {
        let p = a.softmax();
        let marked = (0..p.rows).map(|r| argmax(&p, r)).collect();
        let kept = (0..a.rows)
            .map(|e| {
                let (node, input) = edge_endpoints(e, nodes);
                let n = node - 2;
                // The genotype lists two (op, input) pairs per node, in node order.
                genes.iter().skip(2 * n).take(2).any(|(_, i)| *i == input) && n < nodes
            })
            .collect();
        CellWeights {
            values: p,
            marked,
            kept,
        }
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGTERM => "SIGTERM",
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        _ => "signal",
    }
}

#[cfg(test)]
pub mod fixtures;
#[cfg(test)]
mod tests;
