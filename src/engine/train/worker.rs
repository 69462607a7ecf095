//! The "train" worker thread: sets up a training run (run directory, resume, device, data, the
//! network), trains it epoch by epoch with the test set evaluated at each epoch's end, and
//! answers commands between steps, from this process's monitor or from the run's inbox: the run
//! loop of `engine::run`, the search's. Every event goes through its `Sink` (channel, `log.txt`,
//! `events.jsonl`, `status.json`), so the monitors, `watch`, `ls` and `ctl` follow a training
//! run as they follow a search.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crossbeam_channel::Receiver;
use tch::Device;

use super::data::TrainData;
use super::{ParamCount, Trainer, load_checkpoint};
use crate::config::Config;
use crate::dataset;
use crate::engine::checkpoint::{Meta, Meters, locate};
use crate::engine::device::{device_label, resolve_device};
use crate::engine::run::sink::Sink;
use crate::engine::run::{Loop, WorkerHandle, refuse_if_owned, spawn_worker};
use crate::engine::{EngineError, resume};
use crate::genotype::Genotype;
use crate::protocol::{Command, Event, Level, RunInfo};
use crate::rundir::RunDir;

/// The final weights, in the run directory.
pub const FINAL_WEIGHTS: &str = "weights.safetensors";

/// What the training worker needs to start.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub config: Config,
    pub genotype: Genotype,
    pub run_dir: PathBuf,
    pub data_dir: Option<PathBuf>,
    pub max_steps: Option<u64>,
    /// A checkpoint to continue from (its directory, already located and verified).
    pub resume: Option<(PathBuf, Meta)>,
    /// Minimum time between two `Step` events.
    pub event_interval: Duration,
    /// `--take-over` (see `WorkerOptions::take_over`).
    pub take_over: bool,
}

/// Starts the training thread.
pub fn spawn(opts: TrainOptions) -> std::io::Result<WorkerHandle> {
    spawn_worker("train", move |crx, sink| run(&opts, crx, sink))
}

/// The config and checkpoint of `train --resume PATH` (a run or checkpoint directory): the
/// checkpoint's own config and genotype, with the device, checkpoint and UI settings of `cfg`.
pub fn resume_point(
    path: &Path,
    cfg: &Config,
) -> Result<(Config, Genotype, PathBuf, Meta, Option<String>), EngineError> {
    let (dir, meta, note) = locate(path)?;
    let origin = dir.join("meta.json").display().to_string();
    let saved = Config::from_toml_str(&meta.config, &origin)
        .map_err(|e| crate::engine::checkpoint::bad(&dir, e.to_string()))?;
    let config = Config {
        device: cfg.device.clone(),
        channels_last: cfg.channels_last,
        checkpoint: cfg.checkpoint.clone(),
        ui: cfg.ui.clone(),
        run: cfg.run.clone(),
        ..saved
    };
    Ok((config, meta.genotype.clone(), dir, meta, note))
}

fn run(
    opts: &TrainOptions,
    commands: &Receiver<Command>,
    sink: &mut Sink,
) -> Result<(), EngineError> {
    let taken_over = refuse_if_owned(&opts.run_dir, opts.take_over)?;
    let before = crate::engine::worker::steps_before(&opts.run_dir);
    let dir = RunDir::create(&opts.run_dir, opts.config.run.share)?;
    sink.attach(&opts.run_dir)?;
    if let Some(note) = taken_over {
        sink.log(Level::Warn, note);
    }
    let mut cfg = opts.config.clone();
    dir.write_genotype("trained", &opts.genotype, 0)?;
    let (device, device_note) = resolve_device(&cfg.device).map_err(EngineError::Device)?;
    if device.is_cuda() {
        tch::Cuda::cudnn_set_benchmark(true);
    }
    let (data, dataset) = load_data(opts, &mut cfg, device, &device_note, sink)?;
    dir.write_config(&cfg.to_toml())?;
    let mut t = Trainer::new(&cfg, &opts.genotype, device, Some(data))?;
    let mut meters = Meters::default();
    if let Some((ckpt, meta)) = &opts.resume {
        resume::check_steps_per_epoch(ckpt, meta, before, t.steps_per_epoch())?;
        meters = load_checkpoint(ckpt, meta, &mut t)?;
        sink.log(
            Level::Info,
            format!(
                "resumed from {} at epoch {} step {} (global step {})",
                ckpt.display(),
                meta.epoch,
                meta.step_in_epoch,
                meta.global_step
            ),
        );
    }
    let count = t.params();
    sink.note(&count.to_string());
    sink.emit(Event::Started(run_info(opts, &t, device, dataset, count)));
    let resumed_at = opts.resume.as_ref().map(|(_, m)| m.global_step);
    Loop::new(
        t,
        dir,
        sink,
        (meters, resumed_at),
        (opts.max_steps, opts.event_interval),
    )
    .run(commands);
    Ok(())
}

/// The training and test images on the device, and their description; the training images are
/// checked against the data `cfg` records (a resumed run's) and recorded in it.
fn load_data(
    opts: &TrainOptions,
    cfg: &mut Config,
    device: Device,
    device_note: &str,
    sink: &mut Sink,
) -> Result<(TrainData, String), EngineError> {
    let (train, test) =
        dataset::load_with_test(cfg, opts.data_dir.as_deref(), cfg.evaluation.test_limit)?;
    let origin = opts.run_dir.join("config.toml").display().to_string();
    if let Some(note) = dataset::record(&mut cfg.data, &train, &origin)? {
        sink.log(Level::Warn, note);
    }
    let description = format!("{}; {}", train.description, test.description);
    let level = if description.starts_with("synthetic") {
        Level::Warn
    } else {
        Level::Info
    };
    sink.log(
        level,
        format!(
            "data: {description}; device: {device_note}; activations {}; {}",
            cfg.layout_name(device.is_cuda()),
            crate::engine::set_threads(cfg)
        ),
    );
    let data = TrainData::new(
        &train,
        &test,
        cfg.data.image_size,
        cfg.evaluation.cutout,
        device,
    );
    Ok((data, description))
}

fn run_info(
    opts: &TrainOptions,
    t: &Trainer,
    device: Device,
    dataset: String,
    count: ParamCount,
) -> RunInfo {
    let cfg = t.config();
    let lists = cfg.model.op_lists();
    RunInfo {
        run_dir: opts.run_dir.display().to_string(),
        algorithm: "train".into(),
        device: device_label(device),
        dataset,
        epochs: cfg.train.epochs,
        steps_per_epoch: t.steps_per_epoch(),
        batch_size: cfg.train.batch_size,
        nodes: nodes_of(t.genotype()),
        normal_ops: lists.normal.clone(),
        reduce_ops: lists.reduce.clone(),
        params: count.without_aux,
        start_step: t.progress().global_step,
        proximal: true,
        trained: Some(Box::new(t.genotype().clone())),
        nb201: t.genotype().nb201_cell().is_some(),
    }
}

fn nodes_of(g: &Genotype) -> usize {
    g.normal.len().max(g.reduce.len()) / 2
}
