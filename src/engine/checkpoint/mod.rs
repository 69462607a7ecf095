//! Checkpoints that never lose a run: everything a bit-exact resume needs. This file turns a
//! [`Search`] into tensor files and back; `files` holds the on-disk layout (atomic writes,
//! `latest`, checksums, finding the checkpoint to resume from), which needs no libtorch.

mod files;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tch::{Device, Tensor};

use crate::engine::search::Search;

pub use files::{
    CheckpointError, FORMAT_VERSION, Meta, Meters, STATE, WEIGHTS, bad, list, locate, verify,
};

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
    files::write_atomically(run_dir, s.global_step, keep, |tmp| {
        let mut checksums = HashMap::new();
        for (file, tensors) in [(WEIGHTS, weight_tensors(s)), (STATE, state_tensors(s))] {
            let path = tmp.join(file);
            let refs: Vec<(&str, &Tensor)> = tensors.iter().map(|(k, t)| (k.as_str(), t)).collect();
            Tensor::write_safetensors(&refs, &path).map_err(|e| CheckpointError::Write {
                path: path.clone(),
                source: std::io::Error::other(e.to_string()),
            })?;
            checksums.insert(file.to_string(), files::seal(&path)?);
        }
        Ok(Meta {
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
        })
    })
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
