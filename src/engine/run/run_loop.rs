//! The run loop on the worker thread, for a search and a training alike: steps, the commands
//! between them (pause, resume, checkpoint, export, stop: from this process's monitor, or from
//! other processes through the run's inbox `<run>/commands/`), the end of each epoch (the
//! held-out evaluation, the job's files, the checkpoint) and the end of the run. Every event
//! goes out through the `Sink`; every metrics line through `RunDir::metric`.

use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use super::meter::{Meter, Unread};
use super::sink::Sink;
use super::steer::{Next, Steering};
use super::{HeldOut, Job, Said};
use crate::engine::checkpoint::files::Meters;
use crate::protocol::{Command, EpochStats, Event, Level};
use crate::rundir::RunDir;
use crate::rundir::metrics::{self, EpochLine, Line};

/// A run in progress.
pub(crate) struct Loop<'a, 's, J: Job> {
    job: J,
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

impl<'a, 's, J: Job> Loop<'a, 's, J> {
    /// A run of `job` into `dir`, its clocks started now, with `meters` from the checkpoint it
    /// resumed from (whose step is `resumed_at`).
    pub(crate) fn new(
        job: J,
        dir: RunDir,
        sink: &'s mut Sink<'a>,
        (meters, resumed_at): (Meters, Option<u64>),
        (max_steps, event_interval): (Option<u64>, Duration),
    ) -> Self {
        Loop {
            job,
            dir,
            sink,
            meter: Meter::new(meters),
            steer: Steering::new(),
            saves: Saves {
                newest: resumed_at,
                ..Saves::default()
            },
            max_steps,
            event_interval,
        }
    }

    /// Runs the job until its last epoch ends or a stop comes, then finishes the run.
    pub(crate) fn run(mut self, commands: &Receiver<Command>) {
        let snap = self.job.arch_snapshot();
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
            if self.job.progress().epoch >= self.job.config().train.epochs {
                return None;
            }
            self.job.ensure_plan();
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
            let p = self.job.progress();
            // An epoch that just ended is closed (evaluation, files) before --max-steps stops.
            if p.step_in_epoch >= self.job.steps_per_epoch() {
                return None;
            }
            if self.max_steps.is_some_and(|m| p.global_step >= m) {
                return Some(true);
            }
            let out = self.job.step()?;
            self.meter.push(out);
            self.after_step();
        }
    }

    /// Notices, the `Step` event at its rate, and the checkpoint every `every_steps`.
    fn after_step(&mut self) {
        for text in self.job.take_notices() {
            self.log(Level::Warn, text);
        }
        if let Some(line) = crate::engine::adapt_threads() {
            self.log(Level::Info, line);
        }
        if self.meter.since_event() >= self.event_interval {
            self.emit_progress();
        }
        let every = self.job.config().checkpoint.every_steps;
        if every > 0 && self.job.progress().global_step.is_multiple_of(every as u64) {
            self.checkpoint();
        }
    }

    /// Reads the pending device figures into the meters (one synchronisation) and writes their
    /// step lines; says so when they could not be read.
    fn drain_pending(&mut self) {
        match self.meter.drain(&self.job) {
            Ok(lines) => {
                for line in &lines {
                    self.dir.metric(line);
                }
            }
            Err(Unread(n)) => self.log(
                Level::Error,
                format!("could not read the loss figures of {n} step(s) from the device; they are missing from the meters"),
            ),
        }
    }

    /// The `Step` event (and, when the architecture moves, the `Arch` event) of the window
    /// since the last ones; none if no step's figures are in.
    fn emit_progress(&mut self) {
        self.drain_pending();
        let Some(stats) = self.meter.window_stats(&self.job) else {
            return;
        };
        self.send(Event::Step(stats));
        if J::ARCH_MOVES {
            let snap = self.job.arch_snapshot();
            self.send(Event::Arch(snap));
        }
        self.meter.new_window();
    }

    /// Writes a checkpoint; `false` (said as `CheckpointFailed`) when it could not.
    fn checkpoint(&mut self) -> bool {
        self.drain_pending();
        self.send(Event::Saving);
        let keep = self.job.config().checkpoint.keep;
        let global_step = self.job.progress().global_step;
        match self.job.save(self.meter.meters(), &self.dir.path, keep) {
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
        match self.job.export(&self.dir) {
            Ok(paths) => {
                let paths: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
                self.send(Event::Exported { paths });
            }
            Err(e) => self.log(Level::Error, e),
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
                        global_step: self.job.progress().global_step,
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

    /// The held-out evaluation, then the epoch closed. A stop that arrives during the
    /// evaluation ends it early and is returned (`Some(save)`): the epoch then stays open, as
    /// when a stop comes right after its last step, and a resumed run evaluates it.
    fn end_of_epoch(&mut self, commands: &Receiver<Command>) -> Option<bool> {
        self.drain_pending();
        let epoch = self.job.progress().epoch;
        self.sink
            .note(&format!("{} epoch {epoch}", J::HELD_OUT.verb()));
        let mut stop = None;
        let (steer, sink, run_dir) = (&mut self.steer, &mut *self.sink, &self.dir.path);
        let mut cancel = || {
            stop = stop.or_else(|| steer.stop_during_eval(commands, run_dir, sink));
            stop.is_some()
        };
        let eval_start = Instant::now();
        let Some(eval) = self.job.evaluate_until(&mut cancel) else {
            return stop.or(Some(true));
        };
        let eval_seconds = eval_start.elapsed().as_secs_f64();
        let stats = self
            .meter
            .epoch_stats(epoch, J::HELD_OUT, eval, eval_seconds);
        self.close_epoch(stats, eval.images);
        None
    }

    /// After a full evaluation: the epoch's metrics line, the job's files and events, the
    /// epoch closed, and its checkpoint every `every_epochs`.
    fn close_epoch(&mut self, stats: EpochStats, images: Option<usize>) {
        let line = self.epoch_line(&stats, images);
        self.dir.metric(&line);
        for said in self.job.epoch_files(&self.dir, stats.epoch) {
            match said {
                Said::Error(text) => self.log(Level::Error, text),
                Said::Note(text) => self.sink.note(&text),
            }
        }
        self.send(Event::Epoch(stats));
        if J::ARCH_MOVES {
            let snap = self.job.arch_snapshot();
            self.send(Event::Arch(snap));
        }
        self.meter.next_epoch();
        self.job.end_epoch();
        let every = self.job.config().checkpoint.every_epochs;
        if every > 0 && self.job.progress().epoch.is_multiple_of(every) {
            self.checkpoint();
        }
    }

    /// The `epoch` line of `metrics.jsonl`, named by the split the job evaluates.
    fn epoch_line(&self, s: &EpochStats, images: Option<usize>) -> Line {
        let held_out = match J::HELD_OUT {
            HeldOut::Valid => metrics::HeldOut::Valid {
                valid_loss: s.valid_loss,
                valid_acc: s.valid_acc,
                valid_seconds: s.valid_seconds,
            },
            HeldOut::Test => metrics::HeldOut::Test {
                test_loss: s.valid_loss,
                test_acc: s.valid_acc,
                test_images: images.unwrap_or(0),
                test_seconds: s.valid_seconds,
            },
        };
        Line::Epoch(EpochLine {
            epoch: s.epoch,
            global_step: self.job.progress().global_step,
            train_loss: s.train_loss,
            train_acc: s.train_acc,
            held_out,
            lr: self.job.lr(),
            drop_path: self.job.drop_path(),
            seconds: s.seconds,
        })
    }

    /// The end of the run: a checkpoint unless stopped without saving, the job's final
    /// artefact and the `Finished` event, whose summary names the newest checkpoint when the
    /// last state is not in one.
    fn finish(&mut self, stop: Option<bool>) {
        self.emit_progress();
        let stopped = stop.is_some();
        let step = self.job.progress().global_step;
        let reached_max = self.max_steps.is_some_and(|m| step >= m);
        // A periodic save may have just tried this very step: not twice (saved, or failed on a
        // state that has not changed since).
        let unsaved = stop.unwrap_or(true)
            && self.saves.newest != Some(step)
            && (self.saves.failed_at == Some(step) || !self.checkpoint());
        let artefact = self.job.final_artefact(&self.dir);
        if let Some(e) = artefact.error {
            self.log(Level::Error, e);
        }
        let p = self.job.progress();
        let mut summary = format!(
            "{} after {} steps (epoch {}); {}",
            if reached_max {
                "reached --max-steps"
            } else if stopped {
                "stopped"
            } else {
                "finished"
            },
            p.global_step,
            p.epoch,
            artefact.summary
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
