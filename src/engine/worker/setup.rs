//! Setting a run up on the worker thread: the run directory, the checkpoint to resume from (via
//! `engine::resume`), the device, the data, the search (restored from the checkpoint), and the
//! `Started` event.

use std::path::{Path, PathBuf};

use tch::Device;

use super::WorkerOptions;
use crate::config::Config;
use crate::dataset;
use crate::engine::EngineError;
use crate::engine::checkpoint::{self, Meta, Meters};
use crate::engine::device::{device_label, resolve_device};
use crate::engine::device_data::DeviceData;
use crate::engine::resume;
use crate::engine::run::sink::Sink;
use crate::engine::run::{Loop, refuse_if_owned};
use crate::engine::search::Search;
use crate::protocol::{Event, Level, RunInfo};
use crate::rundir::RunDir;
use crate::rundir::status::Status;

/// Prepares the run `opts` describes and says `Started`; the loop is ready to run.
pub(super) fn setup<'a, 's>(
    opts: &WorkerOptions,
    sink: &'s mut Sink<'a>,
) -> Result<Loop<'a, 's, Search>, EngineError> {
    let taken_over = refuse_if_owned(&opts.run_dir, opts.take_over)?;
    // What the run's last process said (its steps per epoch), before this one replaces it.
    let before = steps_before(&opts.run_dir);
    let dir = RunDir::create(&opts.run_dir, opts.config.run.share)?;
    sink.attach(&opts.run_dir)?;
    if let Some(note) = taken_over {
        sink.log(Level::Warn, note);
    }
    let (mut cfg, resume) = resume_point(opts, sink)?;
    let (device, device_note) = resolve_device(&cfg.device).map_err(EngineError::Device)?;
    if device.is_cuda() {
        tch::Cuda::cudnn_set_benchmark(true);
    }
    let (data, dataset) = load_data(opts, &mut cfg, (device, &device_note), sink)?;
    dir.write_config(&cfg.to_toml())?;
    let mut s = Search::new(&cfg, device, Some(data))?;
    let mut meters = Meters::default();
    if let Some((ckpt, meta)) = &resume {
        resume::check_steps_per_epoch(ckpt, meta, before, s.steps_per_epoch())?;
        meters = checkpoint::load(ckpt, meta, &mut s)?;
        let text = format!(
            "resumed from {} at epoch {} step {} (global step {})",
            ckpt.display(),
            meta.epoch,
            meta.step_in_epoch,
            meta.global_step
        );
        sink.log(Level::Info, text);
    }
    sink.emit(Event::Started(run_info(opts, &s, device, dataset)));
    let resumed_at = resume.as_ref().map(|(_, meta)| meta.global_step);
    Ok(Loop::new(
        s,
        dir,
        sink,
        (meters, resumed_at),
        (opts.max_steps, opts.event_interval),
    ))
}

/// The config the run uses and, with `--resume`, the checkpoint it continues from (saying in
/// the log what the user should know about it).
fn resume_point(
    opts: &WorkerOptions,
    sink: &mut Sink,
) -> Result<(Config, Option<(PathBuf, Meta)>), EngineError> {
    let Some(p) = &opts.resume else {
        return Ok((opts.config.clone(), None));
    };
    let r = resume::prepare(p, &opts.config)?;
    if let Some(n) = &r.note {
        sink.log(Level::Warn, n.clone());
    }
    Ok((r.config, Some((r.checkpoint, r.meta))))
}

/// The steps per epoch the run directory's `status.json` says (0: none, or unreadable).
pub(crate) fn steps_before(run_dir: &Path) -> usize {
    Status::read(run_dir)
        .ok()
        .flatten()
        .map_or(0, |s| s.steps_per_epoch)
}

/// The images on the device, and their description (said in the log: a warning when they are
/// synthetic). The images are checked against the data `cfg` records (a resumed run's) and
/// recorded in it, for the run's `config.toml` and checkpoints.
fn load_data(
    opts: &WorkerOptions,
    cfg: &mut Config,
    (device, device_note): (Device, &str),
    sink: &mut Sink,
) -> Result<(DeviceData, String), EngineError> {
    let threads = crate::engine::set_threads(cfg);
    let images = dataset::load(cfg, opts.data_dir.as_deref())?;
    let origin = opts.run_dir.join("config.toml").display().to_string();
    if let Some(note) = dataset::record(&mut cfg.data, &images, &origin)? {
        sink.log(Level::Warn, note);
    }
    let layout = cfg.layout_name(device.is_cuda());
    let note = format!(
        "data: {}; device: {device_note}; activations {layout}; {threads}",
        images.description
    );
    let level = if images.description.starts_with("synthetic") {
        Level::Warn
    } else {
        Level::Info
    };
    sink.log(level, note);
    let data = DeviceData::new(&images, cfg.data.train_portion, cfg.data.image_size, device);
    Ok((data, images.description))
}

/// What the monitor shows of the run from the start.
fn run_info(opts: &WorkerOptions, s: &Search, device: Device, dataset: String) -> RunInfo {
    let cfg = s.config();
    RunInfo {
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
        trained: None,
        nb201: cfg.model.space.is_nb201(),
    }
}
