//! The worker thread "search": owns every tch object, runs the search loop, answers commands and
//! reports events. A panic inside becomes `Event::Failed`.

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError};
use serde_json::json;
use tch::{Device, Kind, Tensor};

use crate::config::Config;
use crate::dataset;
use crate::device::DeviceChoice;
use crate::engine::checkpoint::{self, Meters};
use crate::engine::device_data::DeviceData;
use crate::engine::resume;
use crate::engine::search::{Search, StepOut};
use crate::protocol::{ArchSnapshot, Command, EpochStats, Event, Level, RunInfo, StepStats};
use crate::rundir::RunDir;

/// What the worker needs to start.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    pub config: Config,
    pub run_dir: PathBuf,
    pub data_dir: Option<PathBuf>,
    pub max_steps: Option<u64>,
    /// A run or checkpoint directory to continue.
    pub resume: Option<PathBuf>,
    /// Minimum time between two `Step` events.
    pub event_interval: Duration,
}

/// The UI side of a running worker.
pub struct WorkerHandle {
    pub commands: Sender<Command>,
    pub events: Receiver<Event>,
    pub join: JoinHandle<()>,
}

/// Starts the worker thread.
pub fn spawn(opts: WorkerOptions) -> std::io::Result<WorkerHandle> {
    let (ctx, crx) = crossbeam_channel::unbounded();
    let (etx, erx) = crossbeam_channel::unbounded();
    let join = std::thread::Builder::new()
        .name("search".into())
        .spawn(move || {
            let events = etx.clone();
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| run(opts, &crx, &events)));
            let failure = match outcome {
                Ok(Ok(())) => None,
                Ok(Err(message)) => Some(message),
                Err(panic) => Some(format!(
                    "the search thread panicked: {}",
                    panic
                        .downcast_ref::<String>()
                        .map(String::as_str)
                        .or_else(|| panic.downcast_ref::<&str>().copied())
                        .unwrap_or("unknown panic")
                )),
            };
            if let Some(message) = failure {
                let _ = etx.send(Event::Failed { message });
            }
        })?;
    Ok(WorkerHandle {
        commands: ctx,
        events: erx,
        join,
    })
}

/// Resolves the `device` setting to a tch device, with a note for the log.
pub fn resolve_device(setting: &str) -> Result<(Device, String), String> {
    let cuda = tch::Cuda::is_available();
    match DeviceChoice::parse(setting)? {
        DeviceChoice::Cpu => Ok((Device::Cpu, "cpu".into())),
        DeviceChoice::Auto if !cuda => Ok((Device::Cpu, "cpu (no CUDA device found)".into())),
        DeviceChoice::Auto => Ok((Device::Cuda(0), DeviceChoice::Cuda(0).to_string())),
        DeviceChoice::Cuda(n) if cuda && (n as i64) < tch::Cuda::device_count() => {
            Ok((Device::Cuda(n), DeviceChoice::Cuda(n).to_string()))
        }
        DeviceChoice::Cuda(n) => Err(format!(
            "device = \"cuda:{n}\" but {} CUDA device(s) are available; use device = \"auto\" or \"cpu\"",
            if cuda { tch::Cuda::device_count() } else { 0 }
        )),
    }
}

struct Loop<'a> {
    s: Search,
    dir: RunDir,
    events: &'a Sender<Event>,
    meters: Meters,
    /// Device-side sums since the last host read: loss·n, correct, arch loss.
    pending: Vec<(Tensor, Tensor, Tensor, usize)>,
    /// Commands that arrived during an evaluation, handled at the next poll.
    deferred: std::collections::VecDeque<Command>,
    last_event: Instant,
    window_start: Instant,
    window_steps: usize,
    window_images: usize,
    ui_loss: (f64, f64, f64, usize),
    epoch_start: Instant,
    /// When stepping started in this process (for `elapsed_s` in the metrics).
    run_start: Instant,
    opts: &'a WorkerOptions,
}

impl Loop<'_> {
    fn send(&self, e: Event) {
        let _ = self.events.send(e);
    }

    fn log(&mut self, level: Level, text: String) {
        self.dir.log(&format!("[{level:?}] {text}"));
        self.send(Event::Log { level, text });
    }

    /// Reads the pending device sums into the host meters (one synchronisation).
    fn drain_pending(&mut self) {
        if self.pending.is_empty() {
            return;
        }
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
        let vals = Vec::<f32>::try_from(
            Tensor::stack(&parts, 0)
                .to_device(Device::Cpu)
                .reshape([-1]),
        )
        .unwrap_or_default();
        if vals.len() < 3 * self.pending.len() {
            let n = self.pending.len();
            self.pending.clear();
            self.log(
                Level::Error,
                format!("could not read the loss figures of {n} step(s) from the device; they are missing from the meters"),
            );
            return;
        }
        let le = self.s.config().train.log_every.max(1) as u64;
        let first_step = self.s.progress().global_step - self.pending.len() as u64;
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
            if self.s.config().train.log_every > 0 && step.is_multiple_of(le) && m.window_count > 0
            {
                let line = json!({
                    "kind": "step", "epoch": self.s.progress().epoch, "global_step": step,
                    "train_loss": m.window_loss / m.window_count as f64,
                    "train_acc": m.window_correct / m.window_count as f64,
                    "lr": self.s.lr(),
                    "elapsed_s": self.run_start.elapsed().as_secs_f64(),
                });
                m.window_loss = 0.0;
                m.window_correct = 0.0;
                m.window_count = 0;
                self.dir.metric(&line);
            }
        }
        self.pending.clear();
    }

    fn arch_snapshot(&mut self) -> ArchSnapshot {
        self.s.arch_snapshot()
    }

    fn emit_progress(&mut self) {
        self.drain_pending();
        let secs = self.window_start.elapsed().as_secs_f64().max(1e-9);
        let (l, c, a, n) = self.ui_loss;
        if n == 0 {
            return;
        }
        let stats = StepStats {
            epoch: self.s.progress().epoch,
            step: self.s.progress().step_in_epoch,
            global_step: self.s.progress().global_step,
            train_loss: l / n as f64,
            train_acc: c / n as f64,
            arch_loss: a / self.window_steps.max(1) as f64,
            lr: self.s.lr(),
            ms_per_step: 1000.0 * secs / self.window_steps.max(1) as f64,
            images_per_s: self.window_images as f64 / secs,
        };
        self.send(Event::Step(stats));
        let snap = self.arch_snapshot();
        self.send(Event::Arch(snap));
        self.ui_loss = (0.0, 0.0, 0.0, 0);
        self.window_start = Instant::now();
        self.window_steps = 0;
        self.window_images = 0;
        self.last_event = Instant::now();
    }

    fn checkpoint(&mut self) {
        self.drain_pending();
        self.send(Event::Saving);
        match checkpoint::save(
            &self.s,
            &self.meters,
            &self.dir.path,
            self.s.config().checkpoint.keep,
        ) {
            Ok(path) => {
                self.dir
                    .log(&format!("[Info] checkpoint saved: {}", path.display()));
                self.send(Event::CheckpointSaved {
                    path: path.display().to_string(),
                    global_step: self.s.progress().global_step,
                });
            }
            Err(e) => self.log(
                Level::Error,
                format!("{e}; the search goes on, earlier checkpoints are untouched"),
            ),
        }
    }

    fn export(&mut self) {
        let g = self.s.current_genotype();
        match self.dir.write_genotype(
            &format!("export-step{:09}", self.s.progress().global_step),
            &g,
        ) {
            Ok(paths) => {
                let paths: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
                self.dir
                    .log(&format!("[Info] genotype exported: {}", paths.join(", ")));
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
                        global_step: self.s.progress().global_step,
                    });
                }
            }
            Command::Resume => {
                if *paused {
                    *paused = false;
                    self.window_start = Instant::now();
                    self.send(Event::Resumed);
                }
            }
            Command::Checkpoint => self.checkpoint(),
            Command::Export => self.export(),
            Command::Stop { save } => return Some(save),
        }
        None
    }

    /// Drains commands (blocking while paused). `Some(save)` = stop.
    fn poll(&mut self, commands: &Receiver<Command>, paused: &mut bool) -> Option<bool> {
        loop {
            let c = if let Some(c) = self.deferred.pop_front() {
                c
            } else if *paused {
                match commands.recv() {
                    Ok(c) => c,
                    Err(_) => return Some(true),
                }
            } else {
                match commands.try_recv() {
                    Ok(c) => c,
                    Err(TryRecvError::Empty) => return None,
                    // Nobody can steer us any more: save and stop.
                    Err(TryRecvError::Disconnected) => return Some(true),
                }
            };
            if let Some(save) = self.handle(c, paused) {
                return Some(save);
            }
        }
    }

    /// Validation, genotype, epoch event and checkpoint. A stop that arrives during the
    /// validation ends it early and is returned (`Some(save)`): the epoch then stays open, as
    /// when a stop comes right after its last step, and a resumed run validates it.
    fn end_of_epoch(&mut self, commands: &Receiver<Command>) -> Option<bool> {
        self.drain_pending();
        let mut stop = None;
        let deferred = &mut self.deferred;
        let mut cancel = || {
            loop {
                match commands.try_recv() {
                    Ok(Command::Stop { save }) => stop = Some(save),
                    Ok(other) => {
                        deferred.push_back(other);
                        continue;
                    }
                    Err(TryRecvError::Empty) => {}
                    // Nobody can steer us any more: save and stop.
                    Err(TryRecvError::Disconnected) => stop = Some(true),
                }
                return stop.is_some();
            }
        };
        let max = self.s.config().train.eval_batches;
        self.dir.log(&format!(
            "[Info] validating epoch {}",
            self.s.progress().epoch
        ));
        let valid_start = Instant::now();
        let Some(eval) = self.s.evaluate_until(max, &mut cancel) else {
            return stop.or(Some(true));
        };
        let m = &self.meters;
        let stats = EpochStats {
            epoch: self.s.progress().epoch,
            train_loss: m.epoch_loss / m.epoch_count.max(1) as f64,
            train_acc: m.epoch_correct / m.epoch_count.max(1) as f64,
            valid_loss: eval.loss,
            valid_acc: eval.acc,
            seconds: self.epoch_start.elapsed().as_secs_f64(),
            valid_seconds: valid_start.elapsed().as_secs_f64(),
        };
        self.dir.metric(&json!({
            "kind": "epoch", "epoch": stats.epoch, "global_step": self.s.progress().global_step,
            "train_loss": stats.train_loss, "train_acc": stats.train_acc,
            "valid_loss": stats.valid_loss, "valid_acc": stats.valid_acc, "seconds": stats.seconds,
            "valid_seconds": stats.valid_seconds,
        }));
        let g = self.s.genotype();
        if let Err(e) = self
            .dir
            .write_genotype(&format!("epoch-{:03}", self.s.progress().epoch), &g)
        {
            self.log(Level::Error, e);
        }
        self.dir.log(&format!(
            "[Info] epoch {} genotype: {g}",
            self.s.progress().epoch
        ));
        self.send(Event::Epoch(stats));
        let snap = self.arch_snapshot();
        self.send(Event::Arch(snap));
        self.meters.epoch_loss = 0.0;
        self.meters.epoch_correct = 0.0;
        self.meters.epoch_count = 0;
        self.s.end_epoch();
        self.epoch_start = Instant::now();
        let every = self.s.config().checkpoint.every_epochs;
        if every > 0 && self.s.progress().epoch.is_multiple_of(every) {
            self.checkpoint();
        }
        None
    }
}

fn run(
    opts: WorkerOptions,
    commands: &Receiver<Command>,
    events: &Sender<Event>,
) -> Result<(), String> {
    let mut cfg = opts.config.clone();
    let mut dir = RunDir::open(&opts.run_dir)?;
    let resume = match &opts.resume {
        Some(p) => {
            let r = resume::prepare(p, &cfg).map_err(|e| e.to_string())?;
            cfg = r.config.clone();
            if let Some(n) = &r.note {
                dir.log(&format!("[Warn] {n}"));
                let _ = events.send(Event::Log {
                    level: Level::Warn,
                    text: n.clone(),
                });
            }
            Some((r.checkpoint, r.meta))
        }
        None => None,
    };
    dir.write_config(&cfg.to_toml())?;
    let (device, device_note) = resolve_device(&cfg.device)?;
    if device.is_cuda() {
        tch::Cuda::cudnn_set_benchmark(true);
    }
    let images = dataset::load(&cfg, opts.data_dir.as_deref()).map_err(|e| e.to_string())?;
    let layout = cfg.layout_name(device.is_cuda());
    let note = format!(
        "data: {}; device: {device_note}; activations {layout}",
        images.description
    );
    dir.log(&format!("[Info] {note}"));
    let _ = events.send(Event::Log {
        level: if images.description.starts_with("synthetic") {
            Level::Warn
        } else {
            Level::Info
        },
        text: note,
    });
    let data = DeviceData::new(&images, cfg.data.train_portion, cfg.data.image_size, device);
    let dataset = images.description.clone();
    drop(images);
    let mut s = Search::new(&cfg, device, Some(data)).map_err(|e| e.to_string())?;
    let mut meters = Meters::default();
    if let Some((ckpt, meta)) = &resume {
        meters = checkpoint::load(ckpt, meta, &mut s).map_err(|e| e.to_string())?;
        let text = format!(
            "resumed from {} at epoch {} step {} (global step {})",
            ckpt.display(),
            meta.epoch,
            meta.step_in_epoch,
            meta.global_step
        );
        dir.log(&format!("[Info] {text}"));
        let _ = events.send(Event::Log {
            level: Level::Info,
            text,
        });
    }
    let info = RunInfo {
        run_dir: opts.run_dir.display().to_string(),
        algorithm: cfg.algorithm.name().to_string(),
        device: device_label(device),
        dataset,
        epochs: cfg.train.epochs,
        steps_per_epoch: s.steps_per_epoch(),
        batch_size: cfg.train.batch_size,
        nodes: cfg.model.nodes,
        normal_ops: s.op_lists().normal.clone(),
        reduce_ops: s.op_lists().reduce.clone(),
        params: s.param_count(),
        start_step: s.progress().global_step,
        proximal: s.proximal(),
    };
    let _ = events.send(Event::Started(info));
    let now = Instant::now();
    let mut lp = Loop {
        s,
        dir,
        events,
        meters,
        pending: Vec::new(),
        deferred: std::collections::VecDeque::new(),
        last_event: now,
        window_start: now,
        window_steps: 0,
        window_images: 0,
        ui_loss: (0.0, 0.0, 0.0, 0),
        epoch_start: now,
        run_start: now,
        opts: &opts,
    };
    let snap = lp.arch_snapshot();
    lp.send(Event::Arch(snap));
    let mut paused = false;
    let stop = 'outer: loop {
        if lp.s.progress().epoch >= lp.s.config().train.epochs {
            break None;
        }
        lp.s.ensure_plan();
        while let Some(StepOut {
            loss,
            correct,
            count,
            arch_loss,
        }) = {
            if let Some(save) = lp.poll(commands, &mut paused) {
                break 'outer Some(save);
            }
            // An epoch that just ended is closed (validation, genotype) before --max-steps stops.
            if lp.s.progress().step_in_epoch >= lp.s.steps_per_epoch() {
                None
            } else if lp
                .opts
                .max_steps
                .is_some_and(|m| lp.s.progress().global_step >= m)
            {
                break 'outer Some(true);
            } else {
                lp.s.step()
            }
        } {
            lp.pending.push((loss, correct, arch_loss, count));
            for text in lp.s.take_notices() {
                lp.log(Level::Warn, text);
            }
            lp.window_steps += 1;
            lp.window_images += count;
            if lp.last_event.elapsed() >= lp.opts.event_interval {
                lp.emit_progress();
            }
            let every = lp.s.config().checkpoint.every_steps;
            if every > 0 && lp.s.progress().global_step.is_multiple_of(every as u64) {
                lp.checkpoint();
            }
        }
        lp.emit_progress();
        if let Some(save) = lp.end_of_epoch(commands) {
            break 'outer Some(save);
        }
    };
    lp.emit_progress();
    let stopped = stop.is_some();
    let reached_max = lp
        .opts
        .max_steps
        .is_some_and(|m| lp.s.progress().global_step >= m);
    if stop.unwrap_or(true) {
        lp.checkpoint();
    }
    let g = lp.s.genotype();
    if let Err(e) = lp.dir.write_genotype("final", &g) {
        lp.log(Level::Error, e);
    }
    let summary = format!(
        "{} after {} steps (epoch {}); genotype: {g}",
        if reached_max {
            "reached --max-steps"
        } else if stopped {
            "stopped"
        } else {
            "finished"
        },
        lp.s.progress().global_step,
        lp.s.progress().epoch
    );
    lp.dir.log(&format!("[Info] {summary}"));
    lp.send(Event::Finished {
        summary,
        stopped: stopped && !reached_max,
    });
    Ok(())
}

fn device_label(d: Device) -> String {
    match d {
        Device::Cuda(n) => DeviceChoice::Cuda(n),
        _ => DeviceChoice::Cpu,
    }
    .to_string()
}
