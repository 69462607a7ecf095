//! The training loop of the "train" worker: epochs of steps, commands between steps (from this
//! process's monitor or the run's inbox), the test set at each epoch's end, checkpoints, and the
//! end of the run.

use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use serde_json::json;
use tch::{Device, Tensor};

use super::worker::FINAL_WEIGHTS;
use super::{StepOut, TestEval, Trainer, save_checkpoint, save_weights};
use crate::engine::checkpoint::Meters;
use crate::engine::worker::sink::Sink;
use crate::engine::worker::steer::{Next, Steering};
use crate::protocol::{ArchSnapshot, Command, EpochStats, Event, Level, StepStats};
use crate::rundir::RunDir;

/// The figures of the steps since the last `Step` event.
pub(super) struct Window {
    loss: f64,
    correct: f64,
    count: usize,
    steps: usize,
    start: Instant,
    last_event: Instant,
}

impl Window {
    pub(super) fn new() -> Self {
        Window {
            loss: 0.0,
            correct: 0.0,
            count: 0,
            steps: 0,
            start: Instant::now(),
            last_event: Instant::now(),
        }
    }
}

pub(super) struct Loop<'a, 's> {
    pub(super) t: Trainer,
    pub(super) dir: RunDir,
    pub(super) sink: &'s mut Sink<'a>,
    pub(super) meters: Meters,
    /// Device figures of the steps not read yet.
    pub(super) pending: Vec<StepOut>,
    pub(super) window: Window,
    pub(super) epoch_start: Instant,
    /// The monitor's channel and the run's inbox.
    pub(super) steer: Steering,
    /// The step of the newest checkpoint there is.
    pub(super) newest: Option<u64>,
    pub(super) failed: usize,
    pub(super) max_steps: Option<u64>,
    pub(super) event_interval: Duration,
}

impl Loop<'_, '_> {
    pub(super) fn send_arch(&mut self) {
        let p = self.t.progress();
        let snap = ArchSnapshot::of_genotype(
            self.t.genotype(),
            &self.t.config().model.op_lists(),
            p.global_step,
            p.epoch,
        );
        self.sink.emit(Event::Arch(snap));
    }

    /// Epochs until the configured number is done (`None`) or a stop (`Some(save)`).
    pub(super) fn epochs(&mut self, commands: &Receiver<Command>) -> Option<bool> {
        let mut paused = false;
        loop {
            if self.t.progress().epoch >= self.t.config().train.epochs {
                return None;
            }
            self.t.ensure_plan();
            if let Some(save) = self.steps(commands, &mut paused) {
                return Some(save);
            }
            self.emit_progress();
            if let Some(save) = self.end_of_epoch(commands) {
                return Some(save);
            }
        }
    }

    fn steps(&mut self, commands: &Receiver<Command>, paused: &mut bool) -> Option<bool> {
        loop {
            if let Some(save) = self.poll(commands, paused) {
                return Some(save);
            }
            let p = self.t.progress();
            if p.step_in_epoch >= self.t.steps_per_epoch() {
                return None;
            }
            if self.max_steps.is_some_and(|m| p.global_step >= m) {
                return Some(true);
            }
            let out = self.t.step()?;
            self.pending.push(out);
            self.window.steps += 1;
            for text in self.t.take_notices() {
                self.sink.log(Level::Warn, text);
            }
            if self.window.last_event.elapsed() >= self.event_interval {
                self.emit_progress();
            }
            let every = self.t.config().checkpoint.every_steps;
            if every > 0 && self.t.progress().global_step.is_multiple_of(every as u64) {
                self.checkpoint();
            }
        }
    }

    /// Reads the pending figures (one synchronisation) into the meters and the window.
    fn drain(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let parts: Vec<Tensor> = self
            .pending
            .iter()
            .flat_map(|o| [o.loss.view([1]), o.correct.view([1])])
            .collect();
        let values = Vec::<f64>::try_from(
            Tensor::cat(&parts, 0)
                .to_kind(tch::Kind::Double)
                .to_device(Device::Cpu),
        )
        .unwrap_or_default();
        let counts: Vec<usize> = self.pending.iter().map(|o| o.count).collect();
        self.pending.clear();
        let step = self.t.progress().global_step;
        for (i, n) in counts.iter().enumerate() {
            let (Some(l), Some(c)) = (values.get(2 * i), values.get(2 * i + 1)) else {
                continue;
            };
            let n = *n;
            self.meters.epoch_loss += l * n as f64;
            self.meters.epoch_correct += c;
            self.meters.epoch_count += n;
            self.window.loss += l * n as f64;
            self.window.correct += c;
            self.window.count += n;
            let s = step + 1 + i as u64 - counts.len() as u64;
            self.dir.metric(&json!({
                "kind": "step", "global_step": s, "train_loss": l, "train_acc": c / n.max(1) as f64,
            }));
        }
    }

    fn emit_progress(&mut self) {
        self.drain();
        let w = &self.window;
        if w.count == 0 {
            return;
        }
        let secs = w.start.elapsed().as_secs_f64().max(1e-9);
        let p = self.t.progress();
        let stats = StepStats {
            epoch: p.epoch,
            step: p.step_in_epoch,
            global_step: p.global_step,
            train_loss: w.loss / w.count as f64,
            train_acc: w.correct / w.count as f64,
            arch_loss: f64::NAN,
            lr: self.t.lr(),
            ms_per_step: 1000.0 * secs / w.steps.max(1) as f64,
            images_per_s: w.count as f64 / secs,
            drop_path: Some(self.t.drop_prob()),
        };
        self.sink.emit(Event::Step(stats));
        self.window = Window::new();
    }

    fn checkpoint(&mut self) -> bool {
        self.drain();
        self.sink.emit(Event::Saving);
        let keep = self.t.config().checkpoint.keep;
        let step = self.t.progress().global_step;
        match save_checkpoint(&self.t, &self.meters, &self.dir.path, keep) {
            Ok(path) => {
                self.newest = Some(step);
                self.sink.emit(Event::CheckpointSaved {
                    path: path.display().to_string(),
                    global_step: step,
                });
                true
            }
            Err(e) => {
                self.failed += 1;
                self.sink.emit(Event::CheckpointFailed {
                    global_step: step,
                    reason: e.to_string(),
                    failed: self.failed,
                });
                false
            }
        }
    }

    /// `e` in the monitor: the current weights as `weights-step<N>.safetensors`.
    fn export(&mut self) {
        let step = self.t.progress().global_step;
        let path = self
            .dir
            .path
            .join(format!("weights-step{step:09}.safetensors"));
        match save_weights(&self.t, &path) {
            Ok(()) => self.sink.emit(Event::Exported {
                paths: vec![path.display().to_string()],
            }),
            Err(e) => self.sink.log(Level::Error, e.to_string()),
        }
    }

    fn handle(&mut self, c: Command, paused: &mut bool) -> Option<bool> {
        match c {
            Command::Pause if !*paused => {
                *paused = true;
                self.emit_progress();
                self.sink.emit(Event::Paused {
                    global_step: self.t.progress().global_step,
                });
            }
            Command::Resume if *paused => {
                *paused = false;
                self.window.start = Instant::now();
                self.sink.emit(Event::Resumed);
            }
            Command::Pause | Command::Resume => {}
            Command::Checkpoint => {
                self.checkpoint();
            }
            Command::Export => self.export(),
            Command::Stop { save } => return Some(save),
        }
        None
    }

    /// Answers the commands waiting; while paused, waits for them. `Some(save)` = stop.
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

    /// The test set, the epoch's figures and event, its checkpoint. A stop during the test
    /// evaluation ends it early (`Some(save)`); the epoch stays open and a resumed run
    /// evaluates it.
    fn end_of_epoch(&mut self, commands: &Receiver<Command>) -> Option<bool> {
        self.drain();
        let epoch = self.t.progress().epoch;
        self.sink.note(&format!("testing epoch {epoch}"));
        let test_start = Instant::now();
        let mut stop = None;
        let (steer, sink, run_dir) = (&mut self.steer, &mut *self.sink, &self.dir.path);
        let mut cancel = || {
            stop = stop.or_else(|| steer.stop_during_eval(commands, run_dir, sink));
            stop.is_some()
        };
        let eval = self.t.evaluate_until(&mut cancel);
        let Some(eval) = eval else {
            return stop.or(Some(true));
        };
        self.close_epoch(epoch, eval, test_start.elapsed().as_secs_f64());
        None
    }

    fn close_epoch(&mut self, epoch: usize, eval: TestEval, test_seconds: f64) {
        let m = &self.meters;
        let stats = EpochStats {
            epoch,
            train_loss: m.epoch_loss / m.epoch_count.max(1) as f64,
            train_acc: m.epoch_correct / m.epoch_count.max(1) as f64,
            valid_loss: eval.loss,
            valid_acc: eval.acc,
            seconds: self.epoch_start.elapsed().as_secs_f64(),
            valid_seconds: test_seconds,
            test: true,
        };
        self.dir.metric(&json!({
            "kind": "epoch", "epoch": epoch, "global_step": self.t.progress().global_step,
            "train_loss": stats.train_loss, "train_acc": stats.train_acc,
            "test_loss": eval.loss, "test_acc": eval.acc, "test_images": eval.images,
            "lr": self.t.lr(), "drop_path": self.t.drop_prob(),
            "seconds": stats.seconds, "test_seconds": test_seconds,
        }));
        self.sink.emit(Event::Epoch(stats));
        self.meters.epoch_loss = 0.0;
        self.meters.epoch_correct = 0.0;
        self.meters.epoch_count = 0;
        self.t.end_epoch();
        self.epoch_start = Instant::now();
        let every = self.t.config().checkpoint.every_epochs;
        if every > 0 && self.t.progress().epoch.is_multiple_of(every) {
            self.checkpoint();
        }
    }

    /// A checkpoint unless stopped without saving, the final weights, `Finished`.
    pub(super) fn finish(&mut self, stop: Option<bool>) {
        self.emit_progress();
        let stopped = stop.is_some();
        let step = self.t.progress().global_step;
        let reached_max = self.max_steps.is_some_and(|m| step >= m);
        let unsaved = stop.unwrap_or(true) && self.newest != Some(step) && !self.checkpoint();
        let weights = self.dir.path.join(FINAL_WEIGHTS);
        let weights_note = match save_weights(&self.t, &weights) {
            Ok(()) => format!("weights: {}", weights.display()),
            Err(e) => {
                self.sink.log(Level::Error, e.to_string());
                "the final weights could not be written".to_string()
            }
        };
        let p = self.t.progress();
        let summary = format!(
            "{} after {} steps (epoch {}); {weights_note}",
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
        self.sink.emit(Event::Finished {
            summary,
            stopped: stopped && !reached_max,
            unsaved,
        });
    }
}
