//! What a training checkpoint holds, in the search's checkpoint layout (`checkpoint::files`:
//! atomic directories, `latest`, checksums): `weights.safetensors` (every variable of the
//! network, batch-norm statistics included), `state.safetensors` (the SGD momentum buffers,
//! `momentum.<name>`), and `meta.json` (algorithm `train`, progress, the epoch RNG, the meters,
//! the resolved config and the genotype trained).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tch::Tensor;

use super::{Progress, Trainer};
use crate::engine::checkpoint::{
    self, CheckpointError, FORMAT_VERSION, META, Meta, Meters, STATE, WEIGHTS, bad,
};

/// The `algorithm` a training checkpoint's meta names.
pub const TRAIN: &str = "train";

fn write(path: &Path, tensors: &[(String, Tensor)]) -> Result<String, CheckpointError> {
    let refs: Vec<(&str, &Tensor)> = tensors.iter().map(|(k, t)| (k.as_str(), t)).collect();
    Tensor::write_safetensors(&refs, path).map_err(|e| CheckpointError::Write {
        path: path.to_path_buf(),
        source: checkpoint::io_error(&e.to_string()),
    })?;
    checkpoint::seal(path)
}

/// Writes the network's variables to `path` (safetensors, loadable from Python) and the same
/// under the names of the reference network that builds it, beside it: the DARTS reference's
/// `NetworkCIFAR` (`<name>-darts.safetensors`, see [`darts_twin`]) or, for an NB201 cell,
/// NAS-Bench-201's `TinyNetwork` (`<name>-nb201.safetensors`).
pub fn save_weights(t: &Trainer, path: &Path) -> Result<(), CheckpointError> {
    let vars = t.variables();
    let names: Vec<&str> = vars.iter().map(|(n, _)| n.as_str()).collect();
    let (named, twin_path) = if t.genotype().nb201_cell().is_some() {
        let n = t.config().model.cells;
        (
            super::pytorch_names::nb201_names(&names, n),
            twin(path, "nb201"),
        )
    } else {
        (super::pytorch_names::darts_names(&names), darts_twin(path))
    };
    let twin = named.ok().map(|named| {
        let renamed: Vec<(String, Tensor)> = named
            .into_iter()
            .zip(&vars)
            .map(|(n, (_, t))| (n, t.shallow_clone()))
            .collect();
        (twin_path, renamed)
    });
    let files = std::iter::once((path.to_path_buf(), vars)).chain(twin);
    for (path, vars) in files {
        let tmp = path.with_extension("safetensors.tmp");
        write(&tmp, &vars)?;
        std::fs::rename(&tmp, &path).map_err(|source| CheckpointError::Write {
            path: path.to_path_buf(),
            source,
        })?;
    }
    Ok(())
}

/// `weights.safetensors` → `weights-darts.safetensors`: the file under the reference's names.
pub fn darts_twin(path: &Path) -> PathBuf {
    twin(path, "darts")
}

/// `weights.safetensors` → `weights-KIND.safetensors`.
fn twin(path: &Path, kind: &str) -> PathBuf {
    let stem = path
        .file_stem()
        .map_or_else(|| "weights".into(), |s| s.to_string_lossy().into_owned());
    path.with_file_name(format!("{stem}-{kind}.safetensors"))
}

/// Writes a checkpoint of `t` into `<run_dir>/checkpoints` and returns its directory.
pub fn save_checkpoint(
    t: &Trainer,
    meters: &Meters,
    run_dir: &Path,
    keep: usize,
) -> Result<PathBuf, CheckpointError> {
    let p = t.progress();
    checkpoint::write_atomically(run_dir, p.global_step, keep, |tmp| {
        let mut checksums = HashMap::new();
        checksums.insert(
            WEIGHTS.to_string(),
            write(&tmp.join(WEIGHTS), &t.variables())?,
        );
        let momentum: Vec<(String, Tensor)> = t
            .names
            .iter()
            .zip(&t.sgd.buffers)
            .filter_map(|(n, b)| {
                b.as_ref()
                    .map(|b| (format!("momentum.{n}"), b.shallow_clone()))
            })
            .collect();
        checksums.insert(STATE.to_string(), write(&tmp.join(STATE), &momentum)?);
        Ok(Meta {
            format_version: FORMAT_VERSION,
            nasp_tui_version: env!("CARGO_PKG_VERSION").to_string(),
            algorithm: TRAIN.to_string(),
            epoch: p.epoch,
            step_in_epoch: p.step_in_epoch,
            global_step: p.global_step,
            steps_per_epoch: t.steps_per_epoch(),
            epoch_rng: t.epoch_rng.clone(),
            meters: meters.clone(),
            config: t.cfg.to_toml(),
            genotype: t.genotype.clone(),
            checksums,
            search: None,
        })
    })
}

fn read(path: &Path) -> Result<HashMap<String, Tensor>, CheckpointError> {
    Ok(Tensor::read_safetensors(path)
        .map_err(|e| bad(path, format!("cannot parse ({e})")))?
        .into_iter()
        .collect())
}

/// Loads a verified training checkpoint `dir` into `t` (built from the same config and
/// genotype); returns its meters.
pub fn load_checkpoint(
    dir: &Path,
    meta: &Meta,
    t: &mut Trainer,
) -> Result<Meters, CheckpointError> {
    if meta.algorithm != TRAIN {
        return Err(bad(
            &dir.join(META),
            format!(
                "is a checkpoint of a {} search, not of `nasp-tui train`; resume it with `nasp-tui search --resume`",
                meta.algorithm
            ),
        ));
    }
    let weights_path = dir.join(WEIGHTS);
    let weights = read(&weights_path)?;
    let state = read(&dir.join(STATE))?;
    tch::no_grad(|| -> Result<(), CheckpointError> {
        for (name, var) in t.variables() {
            let saved = weights
                .get(&name)
                .ok_or_else(|| bad(&weights_path, format!("has no tensor {name}")))?;
            if saved.size() != var.size() {
                return Err(bad(
                    &weights_path,
                    format!(
                        "tensor {name} has shape {:?}, the network {:?}",
                        saved.size(),
                        var.size()
                    ),
                ));
            }
            var.shallow_clone().copy_(saved);
        }
        Ok(())
    })?;
    for (i, name) in t.names.iter().enumerate() {
        t.sgd.buffers[i] = state
            .get(&format!("momentum.{name}"))
            .map(|b| b.to_device(t.device).copy());
    }
    t.progress = Progress {
        epoch: meta.epoch,
        step_in_epoch: meta.step_in_epoch,
        global_step: meta.global_step,
    };
    t.epoch_rng = meta.epoch_rng.clone();
    t.plan = None;
    Ok(meta.meters.clone())
}
