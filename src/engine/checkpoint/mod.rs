//! Checkpoints that never lose a run: everything a bit-exact resume needs. This file writes what
//! [`Search::save_state`] gives into tensor files and `meta.json`, and reads them back through
//! [`Search::restore_state`]; `files` holds the on-disk layout (atomic writes,
//! `latest`, checksums, finding the checkpoint to resume from), which needs no libtorch.

pub mod files;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tch::Tensor;

use crate::engine::run::Progress;
use crate::engine::search::{ResumePoint, Search, TensorFile};

pub use files::{
    CheckpointError, FORMAT_VERSION, META, Meta, Meters, STATE, SearchMeta, WEIGHTS, bad, list,
    locate, seal, verify, write_atomically,
};

/// Writes a checkpoint of `s` into `<run_dir>/checkpoints` and returns its directory.
pub fn save(
    s: &Search,
    meters: &Meters,
    run_dir: &Path,
    keep: usize,
) -> Result<PathBuf, CheckpointError> {
    files::write_atomically(run_dir, s.progress().global_step, keep, |tmp| {
        let saved = s.save_state();
        let mut checksums = HashMap::new();
        for (file, tensors) in [(WEIGHTS, &saved.weights), (STATE, &saved.state)] {
            let path = tmp.join(file);
            let refs: Vec<(&str, &Tensor)> = tensors.iter().map(|(k, t)| (k.as_str(), t)).collect();
            Tensor::write_safetensors(&refs, &path).map_err(|e| CheckpointError::Write {
                path: path.clone(),
                source: io_error(&e.to_string()),
            })?;
            checksums.insert(file.to_string(), files::seal(&path)?);
        }
        let point = saved.point;
        Ok(Meta {
            format_version: FORMAT_VERSION,
            nasp_tui_version: env!("CARGO_PKG_VERSION").to_string(),
            algorithm: saved.algorithm.to_string(),
            epoch: point.progress.epoch,
            step_in_epoch: point.progress.step_in_epoch,
            global_step: point.progress.global_step,
            steps_per_epoch: s.steps_per_epoch(),
            epoch_rng: point.epoch_rng,
            meters: meters.clone(),
            config: saved.config,
            genotype: saved.genotype,
            checksums,
            search: Some(SearchMeta {
                step_rng: point.step_rng,
                adam_t: point.adam_t,
                selection: point.selection,
            }),
        })
    })
}

/// Reads one tensor file of a checkpoint, by tensor name.
fn read_tensors(path: &Path) -> Result<HashMap<String, Tensor>, CheckpointError> {
    Ok(Tensor::read_safetensors(path)
        .map_err(|e| bad(path, format!("cannot parse ({e})")))?
        .into_iter()
        .collect())
}

/// Loads a verified checkpoint into `s` (built from a compatible config).
pub fn load(dir: &Path, meta: &Meta, s: &mut Search) -> Result<Meters, CheckpointError> {
    let Some(part) = &meta.search else {
        return Err(bad(
            &dir.join(META),
            format!(
                "is a checkpoint of `nasp-tui {}`, not of a search",
                meta.algorithm
            ),
        ));
    };
    let weights = read_tensors(&dir.join(WEIGHTS))?;
    let state = read_tensors(&dir.join(STATE))?;
    let point = ResumePoint {
        progress: Progress {
            epoch: meta.epoch,
            step_in_epoch: meta.step_in_epoch,
            global_step: meta.global_step,
        },
        epoch_rng: meta.epoch_rng.clone(),
        step_rng: part.step_rng.clone(),
        adam_t: part.adam_t,
        selection: part.selection.clone(),
    };
    s.restore_state(&weights, &state, point).map_err(|e| {
        let file = match e.file {
            TensorFile::Weights => WEIGHTS,
            TensorFile::State => STATE,
        };
        bad(&dir.join(file), e.reason)
    })?;
    Ok(meta.meters.clone())
}

/// The operating system's error inside a libtorch/safetensors write error (whose text carries
/// it as `Os { code: 28, ... }`), so that a full disk reads "No space left on device" like any
/// other write; the whole text when there is none.
pub(crate) fn io_error(text: &str) -> std::io::Error {
    text.split("code: ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .map_or_else(
            || std::io::Error::other(text.to_string()),
            std::io::Error::from_raw_os_error,
        )
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_write_error_keeps_the_os_error() {
        let e = super::io_error(
            "safetensors error /x/w.safetensors: IoError(Os { code: 28, kind: StorageFull, message: \"No space left on device\" })",
        );
        assert_eq!(e.raw_os_error(), Some(28));
        assert!(e.to_string().starts_with("No space left on device"), "{e}");
        assert_eq!(super::io_error("odd").to_string(), "odd");
    }
}
