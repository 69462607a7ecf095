//! Checkpoints that never lose a run: everything a bit-exact resume needs, written atomically.
//!
//! Layout: `<run>/checkpoints/ckpt-<global step>/{weights.safetensors, state.safetensors,
//! meta.json}` and `<run>/checkpoints/latest` (the name of the newest directory). A checkpoint is
//! written into a hidden temporary directory, every file is fsynced, the directory is renamed
//! into place and the parent fsynced; only then is `latest` replaced (again by rename) and old
//! checkpoints beyond `keep` removed. A crash at any moment leaves the previous checkpoint intact.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tch::{Device, Tensor};

use crate::config::Config;
use crate::engine::search::Search;
use crate::genotype::{Genotype, Selection};
use crate::rng::Rng;

/// Version of the on-disk format; a checkpoint with a larger number is refused.
pub const FORMAT_VERSION: u32 = 1;
const WEIGHTS: &str = "weights.safetensors";
const STATE: &str = "state.safetensors";
const META: &str = "meta.json";

/// Host-side running sums carried across a resume so the logged figures are the same.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Meters {
    pub window_loss: f64,
    pub window_correct: f64,
    pub window_count: usize,
    pub epoch_loss: f64,
    pub epoch_correct: f64,
    pub epoch_count: usize,
}

/// `meta.json`: small facts about a checkpoint, and the checksums of its tensor files.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    pub format_version: u32,
    pub nasp_tui_version: String,
    pub algorithm: String,
    pub epoch: usize,
    pub step_in_epoch: usize,
    pub global_step: u64,
    pub epoch_rng: Rng,
    pub step_rng: Rng,
    pub adam_t: u64,
    pub meters: Meters,
    /// The resolved config (TOML).
    pub config: String,
    pub genotype: Genotype,
    /// The proximal selection Ā in force (it may come from an ε-greedy draw).
    pub selection: [Selection; 2],
    /// sha256 of each tensor file, hex.
    pub checksums: HashMap<String, String>,
}

/// A checkpoint problem, naming the file and the reason.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("checkpoint {path}: {reason}")]
    Bad { path: PathBuf, reason: String },
    #[error("cannot write checkpoint in {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn bad(path: &Path, reason: impl Into<String>) -> CheckpointError {
    CheckpointError::Bad {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

fn fsync_path(path: &Path) -> std::io::Result<()> {
    File::open(path)?.sync_all()
}

/// Named tensors of the optimizer and architecture state.
fn state_tensors(s: &Search) -> Vec<(String, Tensor)> {
    let mut v = vec![
        (
            "arch.normal".to_string(),
            s.arch[0].detach().to_device(Device::Cpu),
        ),
        (
            "arch.reduce".to_string(),
            s.arch[1].detach().to_device(Device::Cpu),
        ),
    ];
    for i in 0..2 {
        v.push((format!("adam.m.{i}"), s.adam.m[i].to_device(Device::Cpu)));
        v.push((format!("adam.v.{i}"), s.adam.v[i].to_device(Device::Cpu)));
    }
    for (name, buf) in s.param_names.iter().zip(&s.sgd.buffers) {
        if let Some(b) = buf {
            v.push((format!("sgd.{name}"), b.to_device(Device::Cpu)));
        }
    }
    v
}

fn weight_tensors(s: &Search) -> Vec<(String, Tensor)> {
    let mut v: Vec<(String, Tensor)> =
        s.vs.variables()
            .into_iter()
            .map(|(k, t)| (k, t.detach().to_device(Device::Cpu)))
            .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Writes a checkpoint of `s` into `<run_dir>/checkpoints` and returns its directory.
pub fn save(
    s: &Search,
    meters: &Meters,
    run_dir: &Path,
    keep: usize,
) -> Result<PathBuf, CheckpointError> {
    let root = run_dir.join("checkpoints");
    let werr = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CheckpointError::Write { path, source }
    };
    fs::create_dir_all(&root).map_err(werr(&root))?;
    let name = format!("ckpt-{:09}", s.global_step);
    let tmp = root.join(format!(".tmp-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir(&tmp).map_err(werr(&tmp))?;
    let result = (|| {
        let mut checksums = HashMap::new();
        for (file, tensors) in [(WEIGHTS, weight_tensors(s)), (STATE, state_tensors(s))] {
            let path = tmp.join(file);
            let refs: Vec<(&str, &Tensor)> = tensors.iter().map(|(k, t)| (k.as_str(), t)).collect();
            Tensor::write_safetensors(&refs, &path).map_err(|e| CheckpointError::Write {
                path: path.clone(),
                source: std::io::Error::other(e.to_string()),
            })?;
            fsync_path(&path).map_err(werr(&path))?;
            checksums.insert(file.to_string(), sha256_file(&path).map_err(werr(&path))?);
        }
        let meta = Meta {
            format_version: FORMAT_VERSION,
            nasp_tui_version: env!("CARGO_PKG_VERSION").to_string(),
            algorithm: s.cfg.algorithm.name().to_string(),
            epoch: s.epoch,
            step_in_epoch: s.step_in_epoch,
            global_step: s.global_step,
            epoch_rng: s.epoch_rng.clone(),
            step_rng: s.step_rng.clone(),
            adam_t: s.adam.t,
            meters: meters.clone(),
            config: s.cfg.to_toml(),
            genotype: s.genotype(),
            selection: s.selection.clone(),
            checksums,
        };
        let path = tmp.join(META);
        let text = serde_json::to_string_pretty(&meta)
            .map_err(|e| werr(&path)(std::io::Error::other(e)))?;
        let mut f = File::create(&path).map_err(werr(&path))?;
        f.write_all(text.as_bytes()).map_err(werr(&path))?;
        f.sync_all().map_err(werr(&path))?;
        fsync_path(&tmp).map_err(werr(&tmp))?;
        // A second save at the same step (e.g. `c`, then the epoch ends) gets its own name: an
        // existing checkpoint is never removed before its successor is in place.
        let (mut dest, mut final_name) = (root.join(&name), name.clone());
        let mut k = 1;
        while dest.exists() {
            final_name = format!("{name}.{k}");
            dest = root.join(&final_name);
            k += 1;
        }
        fs::rename(&tmp, &dest).map_err(werr(&dest))?;
        fsync_path(&root).map_err(werr(&root))?;
        write_latest(&root, &final_name)?;
        prune(&root, keep);
        Ok(dest)
    })();
    if result.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    result
}

fn write_latest(root: &Path, name: &str) -> Result<(), CheckpointError> {
    let tmp = root.join(format!(".latest-{}", std::process::id()));
    let path = root.join("latest");
    let w = |source| CheckpointError::Write {
        path: path.clone(),
        source,
    };
    let mut f = File::create(&tmp).map_err(w)?;
    f.write_all(name.as_bytes()).map_err(w)?;
    f.sync_all().map_err(w)?;
    fs::rename(&tmp, &path).map_err(w)?;
    fsync_path(root).map_err(w)
}

/// Checkpoint directories under `root`, newest first (by the time they were written, so a run
/// resumed from an older checkpoint ranks its own new saves above the abandoned later ones).
pub fn list(root: &Path) -> Vec<PathBuf> {
    let mut v: Vec<(std::time::SystemTime, PathBuf)> = fs::read_dir(root)
        .map(|it| {
            it.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.is_dir()
                        && p.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.starts_with("ckpt-"))
                })
                .map(|p| {
                    let t = fs::metadata(p.join(META))
                        .and_then(|m| m.modified())
                        .unwrap_or(std::time::UNIX_EPOCH);
                    (t, p)
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v.reverse();
    v.into_iter().map(|(_, p)| p).collect()
}

fn prune(root: &Path, keep: usize) {
    for old in list(root).into_iter().skip(keep.max(1)) {
        let _ = fs::remove_dir_all(old);
    }
    // Leftovers of interrupted saves.
    if let Ok(it) = fs::read_dir(root) {
        for e in it.filter_map(Result::ok) {
            let n = e.file_name();
            if n.to_str().is_some_and(|n| {
                n.starts_with(".tmp-ckpt-") && !n.ends_with(&format!("-{}", std::process::id()))
            }) {
                let _ = fs::remove_dir_all(e.path());
            }
        }
    }
}

/// Reads and verifies `meta.json` and the checksums of a checkpoint directory.
pub fn verify(dir: &Path) -> Result<Meta, CheckpointError> {
    let meta_path = dir.join(META);
    let text = fs::read_to_string(&meta_path)
        .map_err(|e| bad(&meta_path, format!("cannot read it ({e})")))?;
    // Check the version before the full shape, so a newer format is named as such.
    let raw: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        bad(
            &meta_path,
            format!("not valid JSON, the file is truncated or corrupt ({e})"),
        )
    })?;
    let version = raw
        .get("format_version")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0);
    if version > u64::from(FORMAT_VERSION) {
        return Err(bad(
            &meta_path,
            format!(
                "format version {version} is newer than this nasp-tui understands ({FORMAT_VERSION}); upgrade nasp-tui to load it"
            ),
        ));
    }
    let meta: Meta = serde_json::from_value(raw)
        .map_err(|e| bad(&meta_path, format!("unexpected content ({e})")))?;
    for file in [WEIGHTS, STATE] {
        let path = dir.join(file);
        let want = meta
            .checksums
            .get(file)
            .ok_or_else(|| bad(&meta_path, format!("no checksum for {file}")))?;
        let got = sha256_file(&path).map_err(|e| bad(&path, format!("cannot read it ({e})")))?;
        if &got != want {
            return Err(bad(
                &path,
                "checksum mismatch: the file is truncated or corrupt",
            ));
        }
    }
    Ok(meta)
}

/// Finds the checkpoint to resume from: `path` may be a checkpoint directory, or a run
/// directory (then `latest`, falling back to the newest valid one). Returns the directory, its
/// meta, and a note when it fell back.
pub fn locate(path: &Path) -> Result<(PathBuf, Meta, Option<String>), CheckpointError> {
    if path.join(META).exists() {
        let meta = verify(path)?;
        return Ok((path.to_path_buf(), meta, None));
    }
    let root = path.join("checkpoints");
    if !root.is_dir() {
        return Err(bad(
            path,
            "is neither a checkpoint directory (with meta.json) nor a run directory (with checkpoints/)",
        ));
    }
    let latest = fs::read_to_string(root.join("latest"))
        .ok()
        .map(|s| root.join(s.trim()));
    let mut errors = Vec::new();
    let mut candidates = list(&root);
    if let Some(l) = &latest {
        candidates.retain(|c| c != l);
        candidates.insert(0, l.clone());
    }
    for (i, dir) in candidates.iter().enumerate() {
        match verify(dir) {
            Ok(meta) => {
                let note = (i > 0).then(|| {
                    format!(
                        "skipped unusable checkpoint(s): {}; resuming from {}",
                        errors.join("; "),
                        dir.display()
                    )
                });
                return Ok((dir.clone(), meta, note));
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    Err(bad(
        &root,
        if errors.is_empty() {
            "holds no checkpoint".to_string()
        } else {
            format!("no valid checkpoint: {}", errors.join("; "))
        },
    ))
}

/// Checks that a checkpoint's config describes the same search as `cfg` (model and algorithm).
pub fn check_compatible(dir: &Path, meta: &Meta, cfg: &Config) -> Result<Config, CheckpointError> {
    let saved = Config::from_toml_str(&meta.config, &dir.join(META).display().to_string())
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
    // step counter refers to.
    let mut a = saved.data.clone();
    let mut b = cfg.data.clone();
    a.dir.clear();
    b.dir.clear();
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

/// The training settings (other than the batch size) that differ between a checkpoint and the
/// config a resume uses: such a resume continues, but is no longer the same run.
pub fn train_differences(saved: &Config, cfg: &Config) -> Vec<String> {
    let a = toml::to_string(&saved.train).unwrap_or_default();
    let b = toml::to_string(&cfg.train).unwrap_or_default();
    a.lines()
        .zip(b.lines())
        .filter(|(x, y)| x != y)
        .map(|(x, y)| format!("train.{x} → train.{y}"))
        .collect()
}

/// Loads a verified checkpoint into `s` (built from a compatible config).
pub fn load(dir: &Path, meta: &Meta, s: &mut Search) -> Result<Meters, CheckpointError> {
    let wpath = dir.join(WEIGHTS);
    let weights =
        Tensor::read_safetensors(&wpath).map_err(|e| bad(&wpath, format!("cannot parse ({e})")))?;
    let weights: HashMap<String, Tensor> = weights.into_iter().collect();
    let vars = s.vs.variables();
    if weights.len() != vars.len() {
        return Err(bad(
            &wpath,
            format!(
                "holds {} tensors, the model has {}: another model/space",
                weights.len(),
                vars.len()
            ),
        ));
    }
    let spath = dir.join(STATE);
    let state: HashMap<String, Tensor> = Tensor::read_safetensors(&spath)
        .map_err(|e| bad(&spath, format!("cannot parse ({e})")))?
        .into_iter()
        .collect();
    let get = |m: &HashMap<String, Tensor>, k: &str, p: &Path| {
        m.get(k)
            .map(Tensor::shallow_clone)
            .ok_or_else(|| bad(p, format!("has no tensor {k}")))
    };
    let copy = |dst: &Tensor, src: &Tensor, p: &Path, k: &str| -> Result<(), CheckpointError> {
        if dst.size() != src.size() {
            return Err(bad(
                p,
                format!(
                    "tensor {k} has shape {:?}, the model expects {:?}: another model/space",
                    src.size(),
                    dst.size()
                ),
            ));
        }
        tch::no_grad(|| dst.shallow_clone().copy_(src));
        Ok(())
    };
    for (k, v) in &vars {
        copy(v, &get(&weights, k, &wpath)?, &wpath, k)?;
    }
    copy(
        &s.arch[0],
        &get(&state, "arch.normal", &spath)?,
        &spath,
        "arch.normal",
    )?;
    copy(
        &s.arch[1],
        &get(&state, "arch.reduce", &spath)?,
        &spath,
        "arch.reduce",
    )?;
    for i in 0..2 {
        copy(
            &s.adam.m[i],
            &get(&state, &format!("adam.m.{i}"), &spath)?,
            &spath,
            "adam.m",
        )?;
        copy(
            &s.adam.v[i],
            &get(&state, &format!("adam.v.{i}"), &spath)?,
            &spath,
            "adam.v",
        )?;
    }
    s.adam.t = meta.adam_t;
    for (i, name) in s.param_names.iter().enumerate() {
        s.sgd.buffers[i] = state
            .get(&format!("sgd.{name}"))
            .map(|b| b.to_device(s.device));
    }
    s.epoch = meta.epoch;
    s.step_in_epoch = meta.step_in_epoch;
    s.global_step = meta.global_step;
    s.epoch_rng = meta.epoch_rng.clone();
    s.step_rng = meta.step_rng.clone();
    s.read_host_arch();
    s.selection = meta.selection.clone();
    s.clear_cached_selection();
    s.plan = None;
    Ok(meta.meters.clone())
}
