//! The checkpoint layout on disk, without libtorch. `<run>/checkpoints/ckpt-<global step>/
//! {weights.safetensors, state.safetensors, meta.json}` and `<run>/checkpoints/latest` (the name
//! of the newest directory). A checkpoint is written into a hidden temporary directory, every
//! file is fsynced, the directory is renamed into place and the parent fsynced; only then is
//! `latest` replaced (again by rename) and old checkpoints beyond `keep` removed. A crash at any
//! moment leaves the previous checkpoint intact.

use std::collections::HashMap;
use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::arch::Selection;
use crate::genotype::Genotype;
use crate::rng::Rng;
use crate::rundir::secure::{self, Modes};

/// Version of the on-disk format; a checkpoint with a larger number is refused.
pub const FORMAT_VERSION: u32 = 1;
pub const WEIGHTS: &str = "weights.safetensors";
pub const STATE: &str = "state.safetensors";
pub const META: &str = "meta.json";

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

/// `meta.json`: small facts about a checkpoint, and the checksums of its tensor files. The
/// fields of any run come first; a search adds its own part (`search`), written into the same
/// JSON object, so a checkpoint of either kind, old or new, reads with this one type.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    pub format_version: u32,
    pub nasp_tui_version: String,
    /// The search's algorithm (`nasp`, `darts1`, …) or `train`.
    pub algorithm: String,
    pub epoch: usize,
    pub step_in_epoch: usize,
    pub global_step: u64,
    /// Steps in one epoch of the run (0: a checkpoint written before it was recorded). A resume
    /// whose data gives another number is refused: the step counter would mean other batches.
    #[serde(default)]
    pub steps_per_epoch: usize,
    /// The RNG state at the start of the current epoch (its plan is drawn again from it).
    pub epoch_rng: Rng,
    pub meters: Meters,
    /// The resolved config (TOML).
    pub config: String,
    /// The search's genotype at this step, or the genotype a training trains.
    pub genotype: Genotype,
    /// sha256 of each tensor file, hex.
    pub checksums: HashMap<String, String>,
    /// What only a search keeps (`None` for a training; a training checkpoint written before
    /// the split carries a placeholder here, which nothing reads).
    #[serde(flatten)]
    pub search: Option<SearchMeta>,
}

/// The part of `meta.json` only a search writes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SearchMeta {
    /// RNG for draws inside steps (ε-greedy).
    pub step_rng: Rng,
    /// Adam's step count.
    pub adam_t: u64,
    /// The proximal selection Ā in force (it may come from an ε-greedy draw).
    pub selection: [Selection; 2],
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

impl CheckpointError {
    /// The cause alone, without the path, in lower case: "no space left on device".
    pub fn cause(&self) -> String {
        let text = match self {
            CheckpointError::Bad { reason, .. } => reason.clone(),
            CheckpointError::Write { source, .. } => {
                // io::Error says "No space left on device (os error 28)".
                let t = source.to_string();
                t.split(" (os error").next().unwrap_or(&t).to_string()
            }
        };
        let mut c = text.chars();
        c.next()
            .map(|f| f.to_lowercase().chain(c).collect())
            .unwrap_or_default()
    }
}

pub fn bad(path: &Path, reason: impl Into<String>) -> CheckpointError {
    CheckpointError::Bad {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = secure::open_read(path, u64::MAX)?;
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

fn write_error(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError {
    let path = path.to_path_buf();
    move |source| CheckpointError::Write { path, source }
}

/// Fsyncs a file just written and returns its sha256 (hex), for `meta.json`.
pub fn seal(path: &Path) -> Result<String, CheckpointError> {
    fsync_path(path).map_err(write_error(path))?;
    sha256_file(path).map_err(write_error(path))
}

/// Writes a checkpoint of `global_step` under `<run_dir>/checkpoints`: `fill` writes the tensor
/// files into the temporary directory it is given (sealing each with [`seal`]) and returns the
/// meta, which is written last; then the directory is renamed into place, `latest` updated and
/// older checkpoints beyond `keep` pruned. On any error the temporary directory is removed and
/// the earlier checkpoints stay as they were. Returns the new directory.
pub fn write_atomically(
    run_dir: &Path,
    global_step: u64,
    keep: usize,
    fill: impl FnOnce(&Path) -> Result<Meta, CheckpointError>,
) -> Result<PathBuf, CheckpointError> {
    let root = run_dir.join("checkpoints");
    let modes = Modes::within(run_dir);
    secure::make_dir(&root, modes.dir).map_err(write_error(&root))?;
    let name = format!("ckpt-{global_step:09}");
    // Made here, exclusively, under a name nobody can guess: nobody else writes into it.
    let tmp = root.join(format!(
        ".tmp-{name}-{}-{}",
        secure::unpredictable(),
        std::process::id()
    ));
    DirBuilder::new()
        .mode(modes.dir)
        .create(&tmp)
        .map_err(write_error(&tmp))?;
    let result = fill(&tmp).and_then(|meta| {
        let path = tmp.join(META);
        let text = serde_json::to_string_pretty(&meta)
            .map_err(|e| write_error(&path)(std::io::Error::other(e)))?;
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(modes.file)
            .open(&path)
            .map_err(write_error(&path))?;
        f.write_all(text.as_bytes()).map_err(write_error(&path))?;
        f.sync_all().map_err(write_error(&path))?;
        // The tensor files as libtorch made them (the umask's mode): the run's mode.
        for entry in fs::read_dir(&tmp).map_err(write_error(&tmp))?.flatten() {
            fs::set_permissions(entry.path(), Permissions::from_mode(modes.file))
                .map_err(write_error(&entry.path()))?;
        }
        fs::set_permissions(&tmp, Permissions::from_mode(modes.dir)).map_err(write_error(&tmp))?;
        fsync_path(&tmp).map_err(write_error(&tmp))?;
        // A second save at the same step (e.g. `c`, then the epoch ends) gets its own name: an
        // existing checkpoint is never removed before its successor is in place.
        let (mut dest, mut final_name) = (root.join(&name), name.clone());
        let mut k = 1;
        while dest.exists() {
            final_name = format!("{name}.{k}");
            dest = root.join(&final_name);
            k += 1;
        }
        fs::rename(&tmp, &dest).map_err(write_error(&dest))?;
        fsync_path(&root).map_err(write_error(&root))?;
        write_latest(&root, &final_name)?;
        prune(&root, keep);
        Ok(dest)
    });
    if result.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    result
}

fn write_latest(root: &Path, name: &str) -> Result<(), CheckpointError> {
    let path = root.join("latest");
    let w = |source| CheckpointError::Write {
        path: path.clone(),
        source,
    };
    let mode = Modes::within(root).file;
    let (mut f, tmp) = secure::create_temporary(&path, mode).map_err(w)?;
    let done = f
        .write_all(name.as_bytes())
        .and_then(|()| f.sync_all())
        .and_then(|()| fs::rename(&tmp, &path));
    if done.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    done.map_err(w)?;
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
    let text = secure::read_to_string(&meta_path, secure::SMALL_FILE_MAX)
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
    let latest = secure::read_to_string(&root.join("latest"), 4096)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A `meta.json` as nasp-tui 0.x wrote it before the search's part was split off: every
    /// field at the top level, a training checkpoint with placeholders for the search's.
    fn old_meta(algorithm: &str, selection: &str) -> String {
        format!(
            r#"{{
  "format_version": 1, "nasp_tui_version": "0.1.0", "algorithm": "{algorithm}",
  "epoch": 2, "step_in_epoch": 3, "global_step": 35,
  "epoch_rng": {{"s": [1, 2, 3, 18446744073709551615]}},
  "step_rng": {{"s": [5, 6, 7, 8]}},
  "adam_t": {adam_t},
  "meters": {{"window_loss": 0.0, "window_correct": 0.0, "window_count": 0,
              "epoch_loss": 4.5, "epoch_correct": 2.0, "epoch_count": 3}},
  "config": "seed = 1\n",
  "genotype": {{"normal": [["skip_connect", 0]], "normal_concat": [2],
                "reduce": [["max_pool_3x3", 1]], "reduce_concat": [2]}},
  "selection": [{selection}, {selection}],
  "checksums": {{"weights.safetensors": "ab", "state.safetensors": "cd"}}
}}"#,
            adam_t = if algorithm == "train" { 0 } else { 35 }
        )
    }

    #[test]
    fn checkpoints_written_before_the_split_still_read() {
        let search: Meta =
            serde_json::from_str(&old_meta("nasp", r#"{"ops": [1, null], "kept": [[0, 1]]}"#))
                .unwrap();
        assert_eq!((search.epoch, search.global_step), (2, 35));
        assert_eq!(search.meters.epoch_count, 3);
        let part = search.search.as_ref().expect("the search's part");
        assert_eq!(part.adam_t, 35);
        assert_eq!(part.selection[1].ops, [Some(1), None]);
        let state = |r: &Rng| serde_json::to_value(r).unwrap()["s"].clone();
        assert_eq!(state(&part.step_rng), serde_json::json!([5, 6, 7, 8]));
        assert_eq!(
            state(&search.epoch_rng),
            serde_json::json!([1, 2, 3, u64::MAX])
        );

        let train: Meta =
            serde_json::from_str(&old_meta("train", r#"{"ops": [], "kept": []}"#)).unwrap();
        assert_eq!(
            (train.algorithm.as_str(), train.step_in_epoch),
            ("train", 3)
        );
        assert_eq!(train.genotype.reduce[0].0, "max_pool_3x3");
    }

    #[test]
    fn a_training_checkpoint_writes_no_search_part_and_reads_back() {
        let mut m: Meta =
            serde_json::from_str(&old_meta("train", r#"{"ops": [], "kept": []}"#)).unwrap();
        m.search = None;
        let text = serde_json::to_string(&m).unwrap();
        for key in ["step_rng", "adam_t", "selection"] {
            assert!(!text.contains(key), "{key} in {text}");
        }
        let back: Meta = serde_json::from_str(&text).unwrap();
        assert!(back.search.is_none());
        assert_eq!(back.global_step, 35);
        // A search's part goes into the same object, as before.
        let s: Meta =
            serde_json::from_str(&old_meta("nasp", r#"{"ops": [0], "kept": [[0, 1]]}"#)).unwrap();
        let v: serde_json::Value = serde_json::to_value(&s).unwrap();
        assert_eq!(v["adam_t"], 35);
        assert_eq!(v["selection"][0]["ops"][0], 0);
    }
}
