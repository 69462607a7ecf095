//! Resuming a run, in one place: which run directory and config a `--resume PATH` means, which
//! checkpoint it loads (falling back past damaged ones), whether that checkpoint fits the config,
//! and the config the resumed run uses. `cli::search` asks for the paths, the worker for the
//! checkpoint; `checkpoint::load` then puts the tensors in place.

use std::path::{Path, PathBuf};

use crate::config::{Config, DataConfig, Dataset};
use crate::engine::checkpoint::{CheckpointError, Meta, bad, locate};

/// A checkpoint to continue from, and the config the resumed run uses.
#[derive(Debug, Clone)]
pub struct Resume {
    /// The checkpoint directory.
    pub checkpoint: PathBuf,
    pub meta: Meta,
    /// The checkpoint's model, algorithm, data and seed, with the training, checkpoint, UI and
    /// device settings (and speed switches) of the config given now.
    pub config: Config,
    /// What the user should know: damaged checkpoints skipped, training settings changed.
    pub note: Option<String>,
}

/// The run directory that `--resume PATH` continues: PATH itself when it is a run directory,
/// the run that holds it when it is a checkpoint directory.
pub fn run_dir_of(path: &Path) -> Option<PathBuf> {
    if path.join("checkpoints").is_dir() {
        Some(path.to_path_buf())
    } else if path.join("meta.json").is_file() {
        let run = path.join("../..");
        Some(run.canonicalize().unwrap_or(run))
    } else {
        None
    }
}

/// The run's own resolved `config.toml` for `--resume PATH` (a run or checkpoint directory).
pub fn run_config_of(path: &Path) -> Option<PathBuf> {
    [path.join("config.toml"), path.join("../../config.toml")]
        .into_iter()
        .find(|p| p.is_file())
}

/// Finds the checkpoint `path` names (see [`locate`]), checks it against `cfg` and merges the
/// two configs.
pub fn prepare(path: &Path, cfg: &Config) -> Result<Resume, CheckpointError> {
    let (checkpoint, meta, note) = locate(path)?;
    let saved = check_compatible(&checkpoint, &meta, cfg)?;
    let changed = train_differences(&saved, cfg);
    let mut note = note;
    if !changed.is_empty() {
        let text = format!(
            "resuming with changed training settings ({}): the run continues, but it is no longer the run the checkpoint came from",
            changed.join(", ")
        );
        note = Some(note.map_or(text.clone(), |n| format!("{n}; {text}")));
    }
    let config = Config {
        train: cfg.train.clone(),
        checkpoint: cfg.checkpoint.clone(),
        ui: cfg.ui.clone(),
        run: cfg.run.clone(),
        device: cfg.device.clone(),
        cuda_graphs: cfg.cuda_graphs,
        cudnn_batch_norm: cfg.cudnn_batch_norm,
        channels_last: cfg.channels_last,
        ..saved
    };
    Ok(Resume {
        checkpoint,
        meta,
        config,
        note,
    })
}

/// Refuses to continue checkpoint `dir` on data that gives `now` steps per epoch when the run
/// had another number: the checkpoint's (`meta.steps_per_epoch`), or for a checkpoint that did
/// not record it, what the run's last `status.json` said (`before`, 0: unknown). The step
/// counter would otherwise name other batches, silently.
pub fn check_steps_per_epoch(
    dir: &Path,
    meta: &Meta,
    before: usize,
    now: usize,
) -> Result<(), CheckpointError> {
    let had = if meta.steps_per_epoch > 0 {
        meta.steps_per_epoch
    } else {
        before
    };
    if had > 0 && had != now {
        return Err(bad(
            dir,
            format!(
                "the run had {had} steps per epoch, the data found gives {now}: it is not the data the run was made on. Point --data-dir at the folder that holds the run's data; to search other data, start a new run in another --run-dir"
            ),
        ));
    }
    Ok(())
}

/// Checks that a checkpoint's config describes the same search as `cfg` (model and algorithm).
fn check_compatible(dir: &Path, meta: &Meta, cfg: &Config) -> Result<Config, CheckpointError> {
    let saved = Config::from_toml_str(&meta.config, &dir.join("meta.json").display().to_string())
        .map_err(|e| bad(dir, e.to_string()))?;
    if saved.algorithm != cfg.algorithm {
        return Err(bad(
            dir,
            format!(
                "was made with algorithm = {}, the config asks for {}",
                saved.algorithm, cfg.algorithm
            ),
        ));
    }
    if saved.model != cfg.model {
        let a = toml::to_string(&saved.model).unwrap_or_default();
        let b = toml::to_string(&cfg.model).unwrap_or_default();
        let diff: Vec<String> = a
            .lines()
            .zip(b.lines())
            .filter(|(x, y)| x != y)
            .map(|(x, y)| format!("checkpoint model.{x} vs config model.{y}"))
            .collect();
        return Err(bad(
            dir,
            format!("is from another model/space: {}", diff.join(", ")),
        ));
    }
    // The data plan of an epoch (split, batches, image size) must be the one the checkpoint's
    // step counter refers to. Which images it ran on (the set, its folder, count and
    // fingerprint, recorded by the run) is checked when they are loaded, against the images
    // found (`dataset::record`); here only a set named on both sides must agree.
    let named = |d: Dataset| d != Dataset::Auto;
    if named(saved.data.dataset)
        && named(cfg.data.dataset)
        && saved.data.dataset != cfg.data.dataset
    {
        return Err(bad(
            dir,
            format!(
                "was made on data.dataset = {:?}, the config asks for {:?}; resume with the run's own config.toml, or start a new run in another --run-dir",
                saved.data.dataset, cfg.data.dataset
            ),
        ));
    }
    let (a, b) = (comparable(&saved.data), comparable(&cfg.data));
    if a != b || saved.train.batch_size != cfg.train.batch_size || saved.seed != cfg.seed {
        return Err(bad(
            dir,
            format!(
                "was made with other data settings (data section, train.batch_size or seed): \
                 checkpoint {:?}, batch {}, seed {}; config {:?}, batch {}, seed {}. Resume \
                 with the run's own config.toml",
                a, saved.train.batch_size, saved.seed, b, cfg.train.batch_size, cfg.seed
            ),
        ));
    }
    Ok(saved)
}

/// The data settings a resume must keep: the folder left out (the same images may move), and
/// what the run recorded of its images (`dataset`, `images`, `fingerprint`) left out where
/// either side does not name it (`auto`, 0, "": a config written before runs recorded it, or a
/// user's config given with `--config`).
fn comparable(d: &DataConfig) -> DataConfig {
    DataConfig {
        dir: String::new(),
        dataset: Dataset::Auto,
        images: 0,
        fingerprint: String::new(),
        ..d.clone()
    }
}

/// The training settings (other than the batch size) that differ between a checkpoint and the
/// config a resume uses: such a resume continues, but is no longer the same run.
fn train_differences(saved: &Config, cfg: &Config) -> Vec<String> {
    let a = toml::to_string(&saved.train).unwrap_or_default();
    let b = toml::to_string(&cfg.train).unwrap_or_default();
    a.lines()
        .zip(b.lines())
        .filter(|(x, y)| x != y)
        .map(|(x, y)| format!("train.{x} → train.{y}"))
        .collect()
}
