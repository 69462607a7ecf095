//! What comes from outside the keyboard: the worker's events ([`Event`], logged in the words of
//! [`Event::describe`]), the worker going away, signals, and the clock. Each handler changes the
//! state and returns commands; none does I/O.

use std::time::Duration;

use super::{App, Overlay, Phase, SIGNAL_STOP_TIMEOUT, StateLabel, Stopping};
use crate::config::OnHangup;
use crate::exit::{self, RunEnd};
use crate::protocol::{Command, Event, Level, StepStats};

impl App {
    pub(super) fn on_signal(&mut self, sig: i32, what: &str) -> Vec<Command> {
        self.screen.dirty = true;
        if sig == libc::SIGCONT {
            // Back from a suspend (or a tmux re-attach): the screen may be stale.
            self.screen.clear = true;
            return Vec::new();
        }
        if self.is_watcher() {
            // A watcher owns nothing: it leaves, the search goes on.
            self.leaving.exit = Some(exit::INTERRUPTED);
            return Vec::new();
        }
        if self.ended() {
            self.leaving.exit = Some(exit::INTERRUPTED);
            return Vec::new();
        }
        if let Some(s) = self.leaving.stopping.as_mut() {
            if s.signal.is_none() {
                s.signal = Some(sig);
                s.deadline = Some(self.latest.elapsed + SIGNAL_STOP_TIMEOUT);
            }
            return Vec::new();
        }
        self.screen.overlay = Overlay::None;
        if sig == libc::SIGHUP && self.leaving.on_hangup == OnHangup::Detach {
            self.note(
                Level::Warn,
                format!("{what}: saving a checkpoint; the search goes on detached"),
            );
            self.leaving.detach = true;
            self.leaving.exit = Some(exit::OK);
            return vec![Command::Checkpoint];
        }
        self.note(
            Level::Warn,
            format!("{what}: saving a checkpoint and stopping"),
        );
        self.leaving.stopping = Some(Stopping {
            save: true,
            signal: Some(sig),
            deadline: Some(self.latest.elapsed + SIGNAL_STOP_TIMEOUT),
        });
        vec![Command::Stop { save: true }]
    }

    pub(super) fn on_tick(&mut self, elapsed: Duration) {
        // Redraw when the shown clock (seconds) or the warm-up spinner moves.
        let shown = |d: Duration| (d.as_secs(), d.as_millis() / 250);
        let warming = self.state_label() == StateLabel::WarmingUp;
        if shown(elapsed).0 != shown(self.latest.elapsed).0
            || (warming && shown(elapsed).1 != shown(self.latest.elapsed).1)
        {
            self.screen.dirty = true;
        }
        self.latest.elapsed = elapsed;
        if let Some(Stopping {
            deadline: Some(d), ..
        }) = self.leaving.stopping
            && elapsed >= d
        {
            self.note(
                Level::Error,
                "the worker did not finish in time; quitting anyway",
            );
            self.leaving.exit = Some(exit::INTERRUPTED);
        }
    }

    pub(super) fn on_worker_gone(&mut self) {
        if self.run.worker_gone {
            return;
        }
        let was_ended = self.ended();
        self.run.worker_gone = true;
        if let Some(s) = self.leaving.stopping {
            self.leaving.exit = Some(s.exit_code());
            return;
        }
        if !was_ended {
            let message = if self.leaving.attached {
                "the run's process is gone without a last word (STALE): no more events will come"
            } else {
                "the search worker stopped without reporting (event channel closed)"
            };
            self.note(Level::Error, message);
            self.run.phase = Phase::Failed {
                message: message.to_string(),
            };
            self.leave_for_replay();
        }
    }

    /// Logs the event in its described words, then applies it.
    pub(super) fn on_event(&mut self, ev: Event) {
        if let Some(line) = ev.describe() {
            self.push_log(line);
        }
        match ev {
            Event::Started(info) => {
                self.run.info = Some(info);
                if self.run.phase == Phase::WarmingUp {
                    self.run.phase = Phase::Started;
                }
            }
            Event::Step(s) => self.on_step(s),
            Event::Arch(snap) => {
                self.record_arch(&snap);
                if let Some(b) = &snap.benchmark {
                    self.charts
                        .bench_acc
                        .push(snap.global_step as f64, b.accuracy / 100.0);
                }
                self.latest.arch = Some(snap);
                self.clamp_focus();
            }
            Event::Epoch(e) => {
                let x = self
                    .latest
                    .step
                    .as_ref()
                    .map_or(0.0, |s| s.global_step as f64);
                self.charts.valid_acc.push(x, e.valid_acc);
                self.charts.valid_loss.push(x, e.valid_loss);
                self.latest.epoch = Some(e);
            }
            Event::Paused { .. } => {
                self.run.want_paused = true;
                if !self.ended() {
                    self.run.phase = Phase::Paused;
                }
            }
            Event::Resumed => {
                self.run.want_paused = false;
                if self.run.phase == Phase::Paused {
                    self.run.phase = Phase::Running;
                }
            }
            Event::Saving => self.saves.saving = true,
            Event::CheckpointSaved { path, .. } => {
                self.saves.saving = false;
                self.saves.last_checkpoint = Some(path);
            }
            Event::Exported { paths } => self.saves.last_export = paths,
            Event::Log { level, .. } => {
                if level == Level::Error {
                    // An error answer to a checkpoint request ends the saving state.
                    self.saves.saving = false;
                }
            }
            Event::Finished {
                summary,
                stopped,
                unsaved,
            } => {
                self.saves.saving = false;
                self.saves.unsaved = unsaved;
                self.run.phase = Phase::Finished { summary, stopped };
                self.leave_for_replay();
                if let Some(s) = self.leaving.stopping {
                    self.leaving.exit = Some(
                        RunEnd::Finished {
                            unsaved,
                            interrupted: s.signal.is_some(),
                        }
                        .code(),
                    );
                }
            }
            Event::CheckpointFailed { .. } => {
                self.saves.saving = false;
                self.saves.failed += 1;
            }
            Event::Failed { message } => self.on_failed(message),
            Event::Acknowledged { .. } => {}
        }
    }

    fn on_step(&mut self, s: StepStats) {
        let x = s.global_step as f64;
        self.charts.train_loss.push(x, s.train_loss);
        self.charts.train_acc.push(x, s.train_acc);
        // A training run has no architecture loss (NaN): nothing to chart.
        if s.arch_loss.is_finite() {
            self.charts.arch_loss.push(x, s.arch_loss);
        }
        if matches!(self.run.phase, Phase::WarmingUp | Phase::Started) {
            self.run.phase = if self.run.want_paused {
                Phase::Paused
            } else {
                Phase::Running
            };
        }
        self.latest.step = Some(s);
    }

    /// A watcher whose run ended by itself (not by this watcher's stop) leaves the live view for
    /// the run's replay.
    fn leave_for_replay(&mut self) {
        if self.leaving.attached && self.leaving.stopping.is_none() {
            self.leaving.to_replay = true;
            self.leaving.exit = Some(exit::OK);
        }
    }

    fn on_failed(&mut self, message: String) {
        self.saves.saving = false;
        self.run.phase = Phase::Failed { message };
        self.leave_for_replay();
        // Nobody may be watching after a signal (ssh dropped): leave at once.
        if matches!(
            self.leaving.stopping,
            Some(Stopping {
                signal: Some(_),
                ..
            })
        ) {
            self.leaving.exit = Some(RunEnd::Failed.code());
        }
        self.leaving.stopping = None;
    }
}

pub(super) fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGTERM => "SIGTERM",
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        _ => "signal",
    }
}
