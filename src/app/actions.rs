//! What the keys do: [`App::on_action`] turns an [`Action`] from the key table into state changes
//! and worker commands, and runs the quit dialog ([`Overlay::Quit`], [`QuitChoice`]). No I/O:
//! the commands are returned.

use super::{Action, App, Phase, Stopping};
use crate::exit::{self, RunEnd};
use crate::protocol::{Command, Level};
use crate::space::CellType;

/// The choices of the quit dialog, left to right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuitChoice {
    SaveQuit,
    Quit,
    Cancel,
    /// A watcher's: leave, the search goes on.
    Leave,
    /// A watcher's: stop the search with a checkpoint (through the run's inbox).
    StopSearch,
}

impl QuitChoice {
    pub const ALL: [QuitChoice; 3] = [QuitChoice::SaveQuit, QuitChoice::Quit, QuitChoice::Cancel];
    /// The choices of a watcher attached to a live run.
    pub const WATCHER: [QuitChoice; 3] = [
        QuitChoice::Leave,
        QuitChoice::StopSearch,
        QuitChoice::Cancel,
    ];

    pub fn label(self) -> &'static str {
        match self {
            QuitChoice::SaveQuit => "save & quit",
            QuitChoice::Quit => "quit",
            QuitChoice::Cancel => "cancel",
            QuitChoice::Leave => "leave",
            QuitChoice::StopSearch => "stop search & save",
        }
    }

    fn action(self) -> Action {
        match self {
            QuitChoice::SaveQuit | QuitChoice::StopSearch => Action::SaveQuit,
            QuitChoice::Quit => Action::QuitNoSave,
            QuitChoice::Cancel => Action::Cancel,
            QuitChoice::Leave => Action::Leave,
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

impl App {
    /// Runs an action as if its key had been pressed.
    pub fn on_action(&mut self, action: Action) -> Vec<Command> {
        self.screen.dirty = true;
        match self.screen.overlay {
            Overlay::Quit(choice) => return self.on_dialog(choice, action),
            Overlay::Help if matches!(action, Action::Help | Action::Close) => {
                self.screen.overlay = Overlay::None;
                return Vec::new();
            }
            _ => {}
        }
        if self.replay.is_some()
            && matches!(action, Action::Pause | Action::Checkpoint | Action::Export)
        {
            self.note(Level::Warn, "a replay of an ended run: nothing to steer");
            return Vec::new();
        }
        match action {
            Action::Pause => self.toggle_pause(),
            Action::Checkpoint => self.if_running("checkpoint", Command::Checkpoint),
            Action::Export => self.if_running("export", Command::Export),
            Action::Quit | Action::Interrupt => self.quit_pressed(action == Action::Interrupt),
            Action::Detach => self.detach_pressed(),
            Action::Redraw => {
                self.screen.clear = true;
                Vec::new()
            }
            Action::Help => {
                self.screen.overlay = if self.screen.overlay == Overlay::Help {
                    Overlay::None
                } else {
                    Overlay::Help
                };
                Vec::new()
            }
            Action::Close => {
                if self.screen.overlay == Overlay::None && self.is_watcher() {
                    // A watcher leaves on Esc (back to the runs table, if it came from there).
                    self.leaving.exit = Some(exit::OK);
                }
                self.screen.overlay = Overlay::None;
                Vec::new()
            }
            Action::Smoothing => {
                self.next_smoothing();
                Vec::new()
            }
            Action::ReplayBack
            | Action::ReplayForward
            | Action::ReplayPageBack
            | Action::ReplayPageForward
            | Action::ReplayStart
            | Action::ReplayEnd => {
                self.move_cursor(action);
                Vec::new()
            }
            Action::NextCell
            | Action::PrevCell
            | Action::NormalCell
            | Action::ReduceCell
            | Action::EdgeUp
            | Action::EdgeDown
            | Action::OpLeft
            | Action::OpRight
            | Action::LogUp
            | Action::LogDown => {
                self.on_view_action(action);
                Vec::new()
            }
            // Dialog actions outside the dialog do nothing.
            Action::SaveQuit
            | Action::QuitNoSave
            | Action::Cancel
            | Action::DialogNext
            | Action::DialogPrev
            | Action::Confirm
            | Action::Leave
            | Action::RunsUp
            | Action::RunsDown
            | Action::RunsOpen
            | Action::RunsSort
            | Action::RunsReverse
            | Action::RunsQuit => Vec::new(),
        }
    }

    /// The keys that only change what is shown: cell, focus, log scroll.
    fn on_view_action(&mut self, action: Action) {
        match action {
            Action::NextCell | Action::PrevCell => {
                self.cells.focused = match self.cells.focused {
                    CellType::Normal => CellType::Reduce,
                    CellType::Reduce => CellType::Normal,
                };
            }
            Action::NormalCell => {
                self.cells.focused = CellType::Normal;
            }
            Action::ReduceCell => {
                self.cells.focused = CellType::Reduce;
            }
            Action::EdgeUp | Action::EdgeDown | Action::OpLeft | Action::OpRight => {
                self.move_focus(action);
            }
            Action::LogUp => self.log.scroll_back(5),
            Action::LogDown => self.log.scroll_forward(5),
            _ => {}
        }
    }

    fn toggle_pause(&mut self) -> Vec<Command> {
        if self.ended() || self.leaving.stopping.is_some() {
            self.note(Level::Warn, "the run is not stepping; nothing to pause");
            return Vec::new();
        }
        self.run.want_paused = !self.run.want_paused;
        if self.run.want_paused {
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

    /// The quit dialog's choices: a watcher's, or those of the process that owns the search.
    pub fn quit_choices(&self) -> &'static [QuitChoice] {
        if self.is_watcher() {
            &QuitChoice::WATCHER
        } else {
            &QuitChoice::ALL
        }
    }

    fn quit_pressed(&mut self, interrupt: bool) -> Vec<Command> {
        if self.replay.is_some() || (self.is_watcher() && self.ended()) {
            self.leaving.exit = Some(exit::OK);
            return Vec::new();
        }
        if self.ended() {
            self.leaving.exit = Some(
                match self.run.phase {
                    Phase::Failed { .. } => RunEnd::Failed,
                    _ => RunEnd::Finished {
                        unsaved: self.saves.unsaved,
                        interrupted: false,
                    },
                }
                .code(),
            );
            return Vec::new();
        }
        if self.leaving.stopping.is_some() {
            if interrupt {
                self.note(Level::Warn, "forced quit: not waiting for the worker");
                self.leaving.exit = Some(exit::INTERRUPTED);
            } else {
                self.note(
                    Level::Info,
                    "already stopping; Ctrl-C again forces the quit",
                );
            }
            return Vec::new();
        }
        self.screen.overlay = Overlay::Quit(self.quit_choices()[0]);
        Vec::new()
    }

    /// `d`: leave the UI and let the search go on without the terminal (unless it is over or
    /// already stopping).
    fn detach_pressed(&mut self) -> Vec<Command> {
        if self.ended() || self.leaving.stopping.is_some() {
            self.note(
                Level::Warn,
                "the run is not stepping; nothing to detach from",
            );
            return Vec::new();
        }
        self.note(
            Level::Info,
            "detaching: the search goes on without this terminal",
        );
        self.leaving.detach = true;
        self.leaving.exit = Some(exit::OK);
        Vec::new()
    }

    fn on_dialog(&mut self, choice: QuitChoice, action: Action) -> Vec<Command> {
        let choices = self.quit_choices();
        let idx = choices.iter().position(|c| *c == choice).unwrap_or(0);
        let n = choices.len();
        let chosen = match action {
            Action::DialogNext => {
                self.screen.overlay = Overlay::Quit(choices[(idx + 1) % n]);
                return Vec::new();
            }
            Action::DialogPrev => {
                self.screen.overlay = Overlay::Quit(choices[(idx + n - 1) % n]);
                return Vec::new();
            }
            Action::Confirm => choice.action(),
            // A watcher cannot stop a run without saving: its "quit" is leaving.
            Action::QuitNoSave if self.is_watcher() => Action::Leave,
            other => other,
        };
        match chosen {
            Action::Leave if self.is_watcher() => {
                self.screen.overlay = Overlay::None;
                self.note(Level::Info, "leaving the watcher; the search goes on");
                self.leaving.exit = Some(exit::OK);
                Vec::new()
            }
            Action::SaveQuit | Action::QuitNoSave => {
                self.screen.overlay = Overlay::None;
                let save = chosen == Action::SaveQuit;
                if self.ended() {
                    self.leaving.exit = Some(exit::OK);
                    return Vec::new();
                }
                self.leaving.stopping = Some(Stopping {
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
                self.screen.overlay = Overlay::None;
                Vec::new()
            }
            _ => Vec::new(),
        }
    }
}
