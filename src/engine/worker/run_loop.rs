//! The search loop on the worker thread: steps, the commands between them (pause, resume,
//! checkpoint, export, stop: from this process's monitor, or from other processes through the
//! run's inbox `<run>/commands/`), the end of each epoch (validation, genotype, checkpoint) and
//! the end of the run. Every event goes out through the `Sink`.

use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use serde_json::json;

use super::meter::Meter;
use super::sink::Sink;
use super::steer::{Next, Steering};
use crate::engine::checkpoint::{self, Meters};
use crate::engine::search::{Search, StepOut};
use crate::protocol::{Command, Event, Level};
use crate::rundir::RunDir;

/// A run in progress.
pub(super) struct Loop<'a, 's> {
    s: Search,
    dir: RunDir,
    sink: &'s mut Sink<'a>,
    meter: Meter,
    /// The monitor's channel and the run's inbox.
    steer: Steering,
    saves: Saves,
    /// `--max-steps`: stop (with a checkpoint) once the global step reaches it.
    max_steps: Option<u64>,
    /// Minimum time between two `Step` events.
    event_interval: Duration,
}

impl<'a, 's> Loop<'a, 's> {
    /// A run of `s` into `dir`, its clocks started now.
    pub(super) fn new(
        s: Search,
        dir: RunDir,
        sink: &'s mut Sink<'a>,
        meters: Meters,
        (max_steps, event_interval): (Option<u64>, Duration),
    ) -> Self {
        Loop {
            s,
            dir,
            sink,
            meter: Meter::new(meters),
            steer: Steering::new(),
            saves: Saves::default(),
            max_steps,
            event_interval,
        }
    }

    /// Runs the search until its last epoch ends or a stop comes, then finishes the run.
    pub(super) fn run(mut self, commands: &Receiver<Command>) {
        let snap = self.s.arch_snapshot();
        self.send(Event::Arch(snap));
        let stop = self.epochs(commands);
        self.finish(stop);
    }

    fn send(&mut self, e: Event) {
        self.sink.emit(e);
    }

    fn log(&mut self, level: Level, text: String) {
        self.sink.log(level, text);
    }

    /// Epoch after epoch until the configured number is done (`None`) or a stop comes
    /// (`Some(save)`).
    fn epochs(&mut self, commands: &Receiver<Command>) -> Option<bool> {
        let mut paused = false;
        loop {
            if self.s.progress().epoch >= self.s.config().train.epochs {
                return None;
            }
            self.s.ensure_plan();
            if let Some(save) = self.steps(commands, &mut paused) {
                return Some(save);
            }
            self.emit_progress();
            if let Some(save) = self.end_of_epoch(commands) {
                return Some(save);
            }
        }
    }

    /// The steps of the current epoch, answering commands between them. `Some(save)`: stop.
    fn steps(&mut self, commands: &Receiver<Command>, paused: &mut bool) -> Option<bool> {
        loop {
            if let Some(save) = self.poll(commands, paused) {
                return Some(save);
            }
            let p = self.s.progress();
            // An epoch that just ended is closed (validation, genotype) before --max-steps stops.
            if p.step_in_epoch >= self.s.steps_per_epoch() {
                return None;
            }
            if self.max_steps.is_some_and(|m| p.global_step >= m) {
                return Some(true);
            }
            let out = self.s.step()?;
            self.after_step(out);
        }
    }

    /// Meters, notices, the `Step` event at its rate, and the checkpoint every `every_steps`.
    fn after_step(&mut self, out: StepOut) {
        self.meter.push(out);
        for text in self.s.take_notices() {
            self.log(Level::Warn, text);
        }
        if self.meter.since_event() >= self.event_interval {
            self.emit_progress();
        }
        let every = self.s.config().checkpoint.every_steps;
        if every > 0 && self.s.progress().global_step.is_multiple_of(every as u64) {
            self.checkpoint();
        }
    }

    /// Reads the pending device figures into the meters (one synchronisation).
    fn drain_pending(&mut self) {
        if let Err(n) = self.meter.drain(&self.s, &mut self.dir) {
            self.log(
                Level::Error,
                format!("could not read the loss figures of {n} step(s) from the device; they are missing from the meters"),
            );
        }
    }

    /// The `Step` and `Arch` events of the window since the last ones (none if no step's
    /// figures are in).
    fn emit_progress(&mut self) {
        self.drain_pending();
        let Some(stats) = self.meter.window_stats(&self.s) else {
            return;
        };
        self.send(Event::Step(stats));
        let snap = self.s.arch_snapshot();
        self.send(Event::Arch(snap));
        self.meter.new_window();
    }

    /// The step of the checkpoint this run resumed from (the newest until it saves one).
    pub(super) fn resumed_at(&mut self, step: u64) {
        self.saves.newest = Some(step);
    }

    /// Writes a checkpoint; `false` (said as `CheckpointFailed`) when it could not.
    fn checkpoint(&mut self) -> bool {
        self.drain_pending();
        self.send(Event::Saving);
        let keep = self.s.config().checkpoint.keep;
        let global_step = self.s.progress().global_step;
        match checkpoint::save(&self.s, self.meter.meters(), &self.dir.path, keep) {
            Ok(path) => {
                self.saves.newest = Some(global_step);
                self.send(Event::CheckpointSaved {
                    path: path.display().to_string(),
                    global_step,
                });
                true
            }
            Err(e) => {
                self.saves.failed += 1;
                self.saves.failed_at = Some(global_step);
                self.saves.cause = Some(e.cause());
                self.send(Event::CheckpointFailed {
                    global_step,
                    reason: e.to_string(),
                    failed: self.saves.failed,
                });
                false
            }
        }
    }

    fn export(&mut self) {
        let g = self.s.current_genotype();
        let stem = format!("export-step{:09}", self.s.progress().global_step);
        match self
            .dir
            .write_genotype(&stem, &g, self.s.progress().global_step)
        {
            Ok(paths) => {
                let paths: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
                self.send(Event::Exported { paths });
            }
            Err(e) => self.log(Level::Error, e.to_string()),
        }
    }

    /// Handles one command. Returns `Some(save)` when the run must stop.
    fn handle(&mut self, c: Command, paused: &mut bool) -> Option<bool> {
        match c {
            Command::Pause => {
                if !*paused {
                    *paused = true;
                    self.emit_progress();
                    self.send(Event::Paused {
                        global_step: self.s.progress().global_step,
                    });
                }
            }
            Command::Resume => {
                if *paused {
                    *paused = false;
                    self.meter.restart_window_clock();
                    self.send(Event::Resumed);
                }
            }
            Command::Checkpoint => {
                self.checkpoint();
            }
            Command::Export => self.export(),
            Command::Stop { save } => return Some(save),
        }
        None
    }

    /// Answers the commands waiting (see [`Steering::next`]); while paused, waits for them.
    /// `Some(save)` = stop.
    fn poll(&mut self, commands: &Receiver<Command>, paused: &mut bool) -> Option<bool> {
        loop {
            match self
                .steer
                .next(commands, *paused, &self.dir.path, self.sink)
            {
                Next::Command(c) => {
                    if let Some(save) = self.handle(c, paused) {
                        return Some(save);
                    }
                }
                Next::Idle => return None,
                Next::Orphaned => return Some(true),
            }
        }
    }

    /// Validation, genotype, epoch event and checkpoint. A stop that arrives during the
    /// validation ends it early and is returned (`Some(save)`): the epoch then stays open, as
    /// when a stop comes right after its last step, and a resumed run validates it.
    fn end_of_epoch(&mut self, commands: &Receiver<Command>) -> Option<bool> {
        self.drain_pending();
        let max = self.s.config().train.eval_batches;
        let epoch = self.s.progress().epoch;
        self.sink.note(&format!("validating epoch {epoch}"));
        let mut stop = None;
        let (steer, sink, run_dir) = (&mut self.steer, &mut *self.sink, &self.dir.path);
        let mut cancel = || {
            stop = stop.or_else(|| steer.stop_during_eval(commands, run_dir, sink));
            stop.is_some()
        };
        let valid_start = Instant::now();
        let Some(eval) = self.s.evaluate_until(max, &mut cancel) else {
            return stop.or(Some(true));
        };
        let stats = self
            .meter
            .epoch_stats(epoch, eval, valid_start.elapsed().as_secs_f64());
        self.close_epoch(stats);
        None
    }

    /// After a full validation: the epoch's metrics line, genotype and events, the epoch closed,
    /// and its checkpoint every `every_epochs`.
    fn close_epoch(&mut self, stats: crate::protocol::EpochStats) {
        self.dir.metric(&json!({
            "kind": "epoch", "epoch": stats.epoch, "global_step": self.s.progress().global_step,
            "train_loss": stats.train_loss, "train_acc": stats.train_acc,
            "valid_loss": stats.valid_loss, "valid_acc": stats.valid_acc, "seconds": stats.seconds,
            "valid_seconds": stats.valid_seconds,
        }));
        let g = self.s.genotype();
        if let Err(e) = self.dir.write_genotype(
            &format!("epoch-{:03}", stats.epoch),
            &g,
            self.s.progress().global_step,
        ) {
            self.log(Level::Error, e.to_string());
        }
        self.sink
            .note(&format!("epoch {} genotype: {g}", stats.epoch));
        self.send(Event::Epoch(stats));
        let snap = self.s.arch_snapshot();
        self.send(Event::Arch(snap));
        self.meter.clear_epoch();
        self.s.end_epoch();
        self.meter.start_epoch_clock();
        let every = self.s.config().checkpoint.every_epochs;
        if every > 0 && self.s.progress().epoch.is_multiple_of(every) {
            self.checkpoint();
        }
    }

    /// The end of the run: a checkpoint unless stopped without saving, the final genotype and
    /// the `Finished` event.
    fn finish(&mut self, stop: Option<bool>) {
        self.emit_progress();
        let stopped = stop.is_some();
        let reached_max = self
            .max_steps
            .is_some_and(|m| self.s.progress().global_step >= m);
        let step = self.s.progress().global_step;
        // A periodic save may have just tried this very step: not twice (saved, or failed on a
        // state that has not changed since).
        let unsaved = stop.unwrap_or(true)
            && self.saves.newest != Some(step)
            && (self.saves.failed_at == Some(step) || !self.checkpoint());
        let g = self.s.genotype();
        if let Err(e) = self.dir.write_genotype("final", &g, step) {
            self.log(Level::Error, e.to_string());
        }
        let p = self.s.progress();
        let mut summary = format!(
            "{} after {} steps (epoch {}); genotype: {g}",
            if reached_max {
                "reached --max-steps"
            } else if stopped {
                "stopped"
            } else {
                "finished"
            },
            p.global_step,
            p.epoch
        );
        if let Some(report) = self.saves.report(p.global_step) {
            summary = format!("{summary}; {report}");
        }
        self.send(Event::Finished {
            summary,
            stopped: stopped && !reached_max,
            unsaved,
        });
    }
}

/// What the run's saves came to, for the end-of-run summary.
#[derive(Debug, Default)]
struct Saves {
    /// Saves of this process that failed, and the cause of the last failure.
    failed: usize,
    cause: Option<String>,
    /// The step of the newest checkpoint there is (written, or resumed from).
    newest: Option<u64>,
    /// The step of the last save that failed.
    failed_at: Option<u64>,
}

impl Saves {
    /// "newest checkpoint: step 10 (50 steps older; 5 saves failed: no space left on device)",
    /// when a save failed or the newest checkpoint is older than `last_step`; `None` otherwise.
    fn report(&self, last_step: u64) -> Option<String> {
        let failed = (self.failed > 0).then(|| {
            format!(
                "{} save{} failed: {}",
                self.failed,
                if self.failed == 1 { "" } else { "s" },
                self.cause.as_deref().unwrap_or("unknown error")
            )
        });
        match (self.newest, failed) {
            (Some(n), failed) if n < last_step => Some(format!(
                "newest checkpoint: step {n} ({} steps older{})",
                last_step - n,
                failed.map(|f| format!("; {f}")).unwrap_or_default()
            )),
            (None, failed) if last_step > 0 => Some(format!(
                "no checkpoint was saved{}",
                failed.map(|f| format!(" ({f})")).unwrap_or_default()
            )),
            (_, Some(f)) => Some(format!("newest checkpoint: the last step; {f}")),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Saves;

    #[test]
    fn the_save_report_names_the_newest_checkpoint_and_the_failures() {
        let ok = Saves {
            newest: Some(60),
            ..Saves::default()
        };
        assert_eq!(ok.report(60), None);
        let full = Saves {
            failed: 5,
            cause: Some("no space left on device".into()),
            newest: Some(10),
            failed_at: Some(60),
        };
        assert_eq!(
            full.report(60).as_deref(),
            Some(
                "newest checkpoint: step 10 (50 steps older; 5 saves failed: no space left on device)"
            )
        );
        let quit = Saves {
            newest: Some(10),
            ..Saves::default()
        };
        assert_eq!(
            quit.report(12).as_deref(),
            Some("newest checkpoint: step 10 (2 steps older)")
        );
        let none = Saves::default();
        assert_eq!(none.report(5).as_deref(), Some("no checkpoint was saved"));
        let late = Saves {
            failed: 1,
            cause: Some("x".into()),
            newest: Some(9),
            failed_at: Some(8),
        };
        assert_eq!(
            late.report(9).as_deref(),
            Some("newest checkpoint: the last step; 1 save failed: x")
        );
    }
}
