//! A run's figures. Each step's loss, accuracy and architecture loss stay on the device until
//! the logging rate asks for them (one synchronisation for many steps); then they feed the
//! meters a checkpoint carries, the `step` lines of metrics.jsonl (every `train.log_every`-th
//! step), and the window the next `Step` event reports.

use std::time::{Duration, Instant};

use tch::{Device, Kind, Tensor};

use super::{Eval, HeldOut, Job, StepOut};
use crate::engine::checkpoint::files::Meters;
use crate::protocol::{EpochStats, StepStats};
use crate::rundir::metrics::{Line, StepLine};

/// The figures of a run in this process.
pub(super) struct Meter {
    /// Host-side running sums (carried across a resume).
    meters: Meters,
    /// Device-side figures of each step since the last host read.
    pending: Vec<StepOut>,
    /// The window of the next `Step` event: loss·n, correct, arch loss and n summed; the steps
    /// with an architecture loss; its start, steps and images.
    ui_loss: (f64, f64, f64, usize),
    ui_arch_steps: usize,
    window_start: Instant,
    window_steps: usize,
    window_images: usize,
    /// When the last `Step` event went out.
    last_event: Instant,
    epoch_start: Instant,
    /// When stepping started in this process (for `elapsed_s` in the metrics).
    run_start: Instant,
}

/// Step figures that could not be read from the device (they are dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Unread(pub(super) usize);

impl Meter {
    /// Starts the clocks now, with `meters` from a checkpoint (or zero).
    pub(super) fn new(meters: Meters) -> Meter {
        let now = Instant::now();
        Meter {
            meters,
            pending: Vec::new(),
            ui_loss: (0.0, 0.0, 0.0, 0),
            ui_arch_steps: 0,
            window_start: now,
            window_steps: 0,
            window_images: 0,
            last_event: now,
            epoch_start: now,
            run_start: now,
        }
    }

    /// The sums a checkpoint saves.
    pub(super) fn meters(&self) -> &Meters {
        &self.meters
    }

    /// Takes one step's figures (still on the device).
    pub(super) fn push(&mut self, out: StepOut) {
        self.window_steps += 1;
        self.window_images += out.count;
        self.pending.push(out);
    }

    /// How long since the last `Step` event.
    pub(super) fn since_event(&self) -> Duration {
        self.last_event.elapsed()
    }

    /// Reads the pending figures into the meters (one synchronisation) and returns the `step`
    /// line of every `log_every`-th step. `Err`: the figures could not be read and are dropped.
    pub(super) fn drain(&mut self, job: &impl Job) -> Result<Vec<Line>, Unread> {
        if self.pending.is_empty() {
            return Ok(Vec::new());
        }
        let pending = std::mem::take(&mut self.pending);
        let vals = match read(&pending) {
            Some(v) => v,
            None => return Err(Unread(pending.len())),
        };
        let log_every = job.config().train.log_every;
        let le = log_every.max(1) as u64;
        let first_step = job.progress().global_step - pending.len() as u64;
        let mut lines = Vec::new();
        for (i, out) in pending.iter().enumerate() {
            let (loss, correct, arch) = (
                f64::from(vals[3 * i]),
                f64::from(vals[3 * i + 1]),
                f64::from(vals[3 * i + 2]),
            );
            let n = out.count;
            let m = &mut self.meters;
            m.window_loss += loss * n as f64;
            m.window_correct += correct;
            m.window_count += n;
            m.epoch_loss += loss * n as f64;
            m.epoch_correct += correct;
            m.epoch_count += n;
            self.ui_loss.0 += loss * n as f64;
            self.ui_loss.1 += correct;
            self.ui_loss.3 += n;
            if out.arch_loss.is_some() {
                self.ui_loss.2 += arch;
                self.ui_arch_steps += 1;
            }
            let step = first_step + i as u64 + 1;
            if log_every > 0 && step.is_multiple_of(le) && m.window_count > 0 {
                lines.push(Line::Step(StepLine {
                    epoch: job.progress().epoch,
                    global_step: step,
                    train_loss: m.window_loss / m.window_count as f64,
                    train_acc: m.window_correct / m.window_count as f64,
                    lr: job.lr(),
                    elapsed_s: self.run_start.elapsed().as_secs_f64(),
                }));
                m.window_loss = 0.0;
                m.window_correct = 0.0;
                m.window_count = 0;
            }
        }
        Ok(lines)
    }

    /// The `Step` event of the window so far (drained figures only); `None` when none are in.
    pub(super) fn window_stats(&self, job: &impl Job) -> Option<StepStats> {
        let secs = self.window_start.elapsed().as_secs_f64().max(1e-9);
        let (l, c, a, n) = self.ui_loss;
        if n == 0 {
            return None;
        }
        let p = job.progress();
        Some(StepStats {
            epoch: p.epoch,
            step: p.step_in_epoch,
            global_step: p.global_step,
            train_loss: l / n as f64,
            train_acc: c / n as f64,
            arch_loss: if self.ui_arch_steps == 0 {
                f64::NAN
            } else {
                a / self.window_steps.max(1) as f64
            },
            lr: job.lr(),
            ms_per_step: 1000.0 * secs / self.window_steps.max(1) as f64,
            images_per_s: self.window_images as f64 / secs,
            drop_path: job.drop_path(),
        })
    }

    /// Starts the next window after a `Step` event.
    pub(super) fn new_window(&mut self) {
        self.ui_loss = (0.0, 0.0, 0.0, 0);
        self.ui_arch_steps = 0;
        self.window_start = Instant::now();
        self.window_steps = 0;
        self.window_images = 0;
        self.last_event = Instant::now();
    }

    /// Restarts the window's clock (after a pause, which it must not count).
    pub(super) fn restart_window_clock(&mut self) {
        self.window_start = Instant::now();
    }

    /// The figures of epoch `epoch`, evaluated on `held_out` by `eval` in `eval_seconds`.
    pub(super) fn epoch_stats(
        &self,
        epoch: usize,
        held_out: HeldOut,
        eval: Eval,
        eval_seconds: f64,
    ) -> EpochStats {
        let m = &self.meters;
        EpochStats {
            epoch,
            train_loss: m.epoch_loss / m.epoch_count.max(1) as f64,
            train_acc: m.epoch_correct / m.epoch_count.max(1) as f64,
            valid_loss: eval.loss,
            valid_acc: eval.acc,
            seconds: self.epoch_start.elapsed().as_secs_f64(),
            valid_seconds: eval_seconds,
            test: held_out == HeldOut::Test,
        }
    }

    /// Clears the epoch's sums and starts the next epoch's clock.
    pub(super) fn next_epoch(&mut self) {
        self.meters.epoch_loss = 0.0;
        self.meters.epoch_correct = 0.0;
        self.meters.epoch_count = 0;
        self.epoch_start = Instant::now();
    }
}

/// The figures of `pending` on the host, in one read: per step its loss, correct and
/// architecture loss (0 for a step without one); `None` when the device would not give them.
fn read(pending: &[StepOut]) -> Option<Vec<f32>> {
    let mut parts = Vec::with_capacity(3 * pending.len());
    for o in pending {
        for t in [Some(&o.loss), Some(&o.correct), o.arch_loss.as_ref()]
            .into_iter()
            .flatten()
        {
            parts.push(t.f_to_kind(Kind::Float).ok()?.f_reshape([1]).ok()?);
        }
    }
    let all = Tensor::f_cat(&parts, 0)
        .ok()?
        .f_to_device(Device::Cpu)
        .ok()?;
    let flat = Vec::<f32>::try_from(all).ok()?;
    let mut it = flat.into_iter();
    let mut out = Vec::with_capacity(3 * pending.len());
    for o in pending {
        out.push(it.next()?);
        out.push(it.next()?);
        out.push(if o.arch_loss.is_some() {
            it.next()?
        } else {
            0.0
        });
    }
    Some(out)
}
