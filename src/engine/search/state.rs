//! What a checkpoint keeps of a search: every variable of the weight store, A, Adam's and SGD's
//! state, the counters and RNGs, Ā in force, and the facts `meta.json` records. The names of the
//! tensors are the checkpoint format: keep them stable.

use std::collections::HashMap;

use tch::{Device, Tensor};

use super::{Progress, Search};
use crate::arch::Selection;
use crate::genotype::Genotype;
use crate::rng::Rng;

/// The two tensor files of a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TensorFile {
    /// Every variable of the weight store (weights and batch-norm statistics).
    Weights,
    /// A, Adam's moments and the SGD momentum buffers.
    State,
}

/// Saved tensors that do not fit this search; `reason` names the tensor (the caller names the
/// file).
#[derive(Debug, thiserror::Error)]
#[error("{reason}")]
pub struct StateError {
    pub file: TensorFile,
    pub reason: String,
}

/// Where a resumed search continues: its counters and RNGs, Adam's step count, and Ā in force
/// (it may come from an ε-greedy draw, so it is saved rather than recomputed).
#[derive(Debug, Clone)]
pub struct ResumePoint {
    pub progress: Progress,
    pub epoch_rng: Rng,
    pub step_rng: Rng,
    pub adam_t: u64,
    pub selection: [Selection; 2],
}

/// Everything a checkpoint saves of a search, with the tensors on the host.
pub struct SavedState {
    /// Every variable of the weight store by its name, sorted by name.
    pub weights: Vec<(String, Tensor)>,
    /// `arch.normal`, `arch.reduce`, `adam.m.<i>`, `adam.v.<i>`, and `sgd.<parameter name>` for
    /// each SGD momentum buffer that exists.
    pub state: Vec<(String, Tensor)>,
    pub point: ResumePoint,
    pub algorithm: &'static str,
    /// The resolved config (TOML).
    pub config: String,
    pub genotype: Genotype,
}

impl TensorFile {
    /// The error `reason` about a tensor of this file.
    fn error(self, reason: String) -> StateError {
        StateError { file: self, reason }
    }

    /// The tensor called `name` among this file's tensors `from`.
    fn get<'a>(
        self,
        from: &'a HashMap<String, Tensor>,
        name: &str,
    ) -> Result<&'a Tensor, StateError> {
        from.get(name)
            .ok_or_else(|| self.error(format!("has no tensor {name}")))
    }

    /// `src` (this file's tensor `name`) copied into `dst` (no autograd), unless their shapes
    /// differ.
    fn copy(self, dst: &Tensor, src: &Tensor, name: &str) -> Result<(), StateError> {
        if dst.size() != src.size() {
            return Err(self.error(format!(
                "tensor {name} has shape {:?}, the model expects {:?}: another model/space",
                src.size(),
                dst.size()
            )));
        }
        tch::no_grad(|| dst.shallow_clone().copy_(src));
        Ok(())
    }
}

impl Search {
    /// What a checkpoint saves (tensors copied to the host).
    pub fn save_state(&self) -> SavedState {
        let cpu = |t: &Tensor| t.to_device(Device::Cpu);
        let mut weights: Vec<(String, Tensor)> = self
            .vs
            .variables()
            .into_iter()
            .map(|(k, t)| (k, cpu(&t.detach())))
            .collect();
        weights.sort_by(|a, b| a.0.cmp(&b.0));
        let mut state = vec![
            ("arch.normal".to_string(), cpu(&self.arch[0].detach())),
            ("arch.reduce".to_string(), cpu(&self.arch[1].detach())),
        ];
        for i in 0..2 {
            state.push((format!("adam.m.{i}"), cpu(&self.adam.m[i])));
            state.push((format!("adam.v.{i}"), cpu(&self.adam.v[i])));
        }
        for (name, buf) in self.param_names.iter().zip(&self.sgd.buffers) {
            if let Some(b) = buf {
                state.push((format!("sgd.{name}"), cpu(b)));
            }
        }
        SavedState {
            weights,
            state,
            point: ResumePoint {
                progress: self.progress,
                epoch_rng: self.epoch_rng.clone(),
                step_rng: self.step_rng.clone(),
                adam_t: self.adam.t,
                selection: self.selection.clone(),
            },
            algorithm: self.cfg.algorithm.name(),
            config: self.cfg.to_toml(),
            genotype: self.genotype(),
        }
    }

    /// Puts a checkpoint's tensors (by name, as [`Search::save_state`] names them) and its
    /// resume point in place. The search must be built from a compatible config; a missing
    /// tensor, a tensor of another shape or another number of weights is an error naming it.
    pub fn restore_state(
        &mut self,
        weights: &HashMap<String, Tensor>,
        state: &HashMap<String, Tensor>,
        point: ResumePoint,
    ) -> Result<(), StateError> {
        self.restore_weights(weights)?;
        self.restore_optimizers(state, point.adam_t)?;
        self.progress = point.progress;
        self.epoch_rng = point.epoch_rng;
        self.step_rng = point.step_rng;
        self.read_host_arch();
        // The saved Ā, not one recomputed from A (an ε-greedy draw would differ).
        self.selection = point.selection;
        self.abar = None;
        self.plan = None;
        Ok(())
    }

    fn restore_weights(&mut self, weights: &HashMap<String, Tensor>) -> Result<(), StateError> {
        let file = TensorFile::Weights;
        let vars = self.vs.variables();
        if weights.len() != vars.len() {
            return Err(file.error(format!(
                "holds {} tensors, the model has {}: another model/space",
                weights.len(),
                vars.len()
            )));
        }
        for (k, v) in &vars {
            file.copy(v, file.get(weights, k)?, k)?;
        }
        Ok(())
    }

    /// A, Adam's moments and step count, and the SGD momentum buffers (a parameter without one
    /// had no gradient yet).
    fn restore_optimizers(
        &mut self,
        state: &HashMap<String, Tensor>,
        adam_t: u64,
    ) -> Result<(), StateError> {
        let file = TensorFile::State;
        for (i, name) in ["arch.normal", "arch.reduce"].into_iter().enumerate() {
            file.copy(&self.arch[i], file.get(state, name)?, name)?;
        }
        for i in 0..2 {
            file.copy(
                &self.adam.m[i],
                file.get(state, &format!("adam.m.{i}"))?,
                "adam.m",
            )?;
            file.copy(
                &self.adam.v[i],
                file.get(state, &format!("adam.v.{i}"))?,
                "adam.v",
            )?;
        }
        self.adam.t = adam_t;
        for (i, name) in self.param_names.iter().enumerate() {
            self.sgd.buffers[i] = state
                .get(&format!("sgd.{name}"))
                .map(|b| b.to_device(self.device));
        }
        Ok(())
    }
}
