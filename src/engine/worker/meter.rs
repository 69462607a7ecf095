//! The worker's figures. Each step's loss, accuracy and architecture loss stay on the device
//! until the logging rate asks for them (one synchronisation for many steps); then they feed the
//! meters a checkpoint carries, the `step` lines of metrics.jsonl, and the window the next
//! `Step` event reports.

use std::time::Instant;

use serde_json::json;
use tch::{Device, Kind, Tensor};

use crate::engine::checkpoint::Meters;
use crate::engine::search::{Eval, Search, StepOut};
use crate::protocol::{EpochStats, StepStats};
use crate::rundir::RunDir;

/// The figures of a run in this process.
pub(super) struct Meter {
    /// Host-side running sums (carried across a resume).
    meters: Meters,
    /// Device-side figures of each step since the last host read: loss, #correct, arch loss, n.
    pending: Vec<(Tensor, Tensor, Tensor, usize)>,
    /// The window of the next `Step` event: loss·n, correct, arch loss and n summed, its start,
    /// steps and images.
    ui_loss: (f64, f64, f64, usize),
    window_start: Instant,
    window_steps: usize,
    window_images: usize,
    /// When the last `Step` event went out.
    last_event: Instant,
    epoch_start: Instant,
    /// When stepping started in this process (for `elapsed_s` in the metrics).
    run_start: Instant,
}

impl Meter {
    /// Starts the clocks now, with `meters` from a checkpoint (or zero).
    pub(super) fn new(meters: Meters) -> Meter {
        let now = Instant::now();
        Meter {
            meters,
            pending: Vec::new(),
            ui_loss: (0.0, 0.0, 0.0, 0),
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
        self.pending
            .push((out.loss, out.correct, out.arch_loss, out.count));
        self.window_steps += 1;
        self.window_images += out.count;
    }

    /// How long since the last `Step` event.
    pub(super) fn since_event(&self) -> std::time::Duration {
        self.last_event.elapsed()
    }

    /// Reads the pending figures into the meters (one synchronisation) and writes the `step`
    /// line of every `log_every`-th step into `dir`. `Err(n)`: the figures of `n` steps could
    /// not be read and are dropped.
    pub(super) fn drain(&mut self, s: &Search, dir: &mut RunDir) -> Result<(), usize> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let vals = self.read_pending();
        if vals.len() < 3 * self.pending.len() {
            let n = self.pending.len();
            self.pending.clear();
            return Err(n);
        }
        let log_every = s.config().train.log_every;
        let le = log_every.max(1) as u64;
        let first_step = s.progress().global_step - self.pending.len() as u64;
        for (i, (_, _, _, n)) in self.pending.iter().enumerate() {
            let (loss, correct, arch) = (
                f64::from(vals[3 * i]),
                f64::from(vals[3 * i + 1]),
                f64::from(vals[3 * i + 2]),
            );
            let n = *n;
            let m = &mut self.meters;
            m.window_loss += loss * n as f64;
            m.window_correct += correct;
            m.window_count += n;
            m.epoch_loss += loss * n as f64;
            m.epoch_correct += correct;
            m.epoch_count += n;
            self.ui_loss.0 += loss * n as f64;
            self.ui_loss.1 += correct;
            self.ui_loss.2 += arch;
            self.ui_loss.3 += n;
            let step = first_step + i as u64 + 1;
            if log_every > 0 && step.is_multiple_of(le) && m.window_count > 0 {
                let line = json!({
                    "kind": "step", "epoch": s.progress().epoch, "global_step": step,
                    "train_loss": m.window_loss / m.window_count as f64,
                    "train_acc": m.window_correct / m.window_count as f64,
                    "lr": s.lr(),
                    "elapsed_s": self.run_start.elapsed().as_secs_f64(),
                });
                m.window_loss = 0.0;
                m.window_correct = 0.0;
                m.window_count = 0;
                dir.metric(&line);
            }
        }
        self.pending.clear();
        Ok(())
    }

    /// The pending figures on the host, three per step (empty when the read failed).
    fn read_pending(&self) -> Vec<f32> {
        let parts: Vec<Tensor> = self
            .pending
            .iter()
            .map(|(l, c, a, _)| {
                Tensor::stack(
                    &[
                        l.to_kind(Kind::Float),
                        c.to_kind(Kind::Float),
                        a.to_kind(Kind::Float),
                    ],
                    0,
                )
            })
            .collect();
        Vec::<f32>::try_from(
            Tensor::stack(&parts, 0)
                .to_device(Device::Cpu)
                .reshape([-1]),
        )
        .unwrap_or_default()
    }

    /// The `Step` event of the window so far (drained figures only); `None` when none are in.
    pub(super) fn window_stats(&self, s: &Search) -> Option<StepStats> {
        let secs = self.window_start.elapsed().as_secs_f64().max(1e-9);
        let (l, c, a, n) = self.ui_loss;
        if n == 0 {
            return None;
        }
        let p = s.progress();
        Some(StepStats {
            epoch: p.epoch,
            step: p.step_in_epoch,
            global_step: p.global_step,
            train_loss: l / n as f64,
            train_acc: c / n as f64,
            arch_loss: a / self.window_steps.max(1) as f64,
            lr: s.lr(),
            ms_per_step: 1000.0 * secs / self.window_steps.max(1) as f64,
            images_per_s: self.window_images as f64 / secs,
            drop_path: None,
        })
    }

    /// Starts the next window after a `Step` event.
    pub(super) fn new_window(&mut self) {
        self.ui_loss = (0.0, 0.0, 0.0, 0);
        self.window_start = Instant::now();
        self.window_steps = 0;
        self.window_images = 0;
        self.last_event = Instant::now();
    }

    /// Restarts the window's clock (after a pause, which it must not count).
    pub(super) fn restart_window_clock(&mut self) {
        self.window_start = Instant::now();
    }

    /// The figures of epoch `epoch`, validated by `eval` in `valid_seconds`.
    pub(super) fn epoch_stats(&self, epoch: usize, eval: Eval, valid_seconds: f64) -> EpochStats {
        let m = &self.meters;
        EpochStats {
            epoch,
            train_loss: m.epoch_loss / m.epoch_count.max(1) as f64,
            train_acc: m.epoch_correct / m.epoch_count.max(1) as f64,
            valid_loss: eval.loss,
            valid_acc: eval.acc,
            seconds: self.epoch_start.elapsed().as_secs_f64(),
            valid_seconds,
            test: false,
        }
    }

    /// Clears the epoch's sums.
    pub(super) fn clear_epoch(&mut self) {
        self.meters.epoch_loss = 0.0;
        self.meters.epoch_correct = 0.0;
        self.meters.epoch_count = 0;
    }

    /// Starts the next epoch's clock.
    pub(super) fn start_epoch_clock(&mut self) {
        self.epoch_start = Instant::now();
    }
}
