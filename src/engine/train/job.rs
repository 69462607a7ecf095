//! A training as the run loop sees it (`engine::run::Job`): the test set at each epoch's end,
//! the drop-path schedule, the weights exported and written at the end; its genotype does not
//! move, so the monitor gets it once.

use std::path::{Path, PathBuf};

use super::worker::FINAL_WEIGHTS;
use super::{Trainer, save_checkpoint, save_weights};
use crate::engine::checkpoint::{CheckpointError, Meters};
use crate::engine::run::{Artefact, Eval, HeldOut, Job, Said, job_by_inherent_methods};
use crate::protocol::ArchSnapshot;
use crate::rundir::RunDir;

impl Job for Trainer {
    const HELD_OUT: HeldOut = HeldOut::Test;
    const ARCH_MOVES: bool = false;

    job_by_inherent_methods!(Trainer);

    fn drop_path(&self) -> Option<f64> {
        Some(self.drop_prob())
    }

    /// The trained genotype, all its ops selected.
    fn arch_snapshot(&mut self) -> ArchSnapshot {
        let p = Trainer::progress(self);
        let cfg = Trainer::config(self);
        ArchSnapshot::of_genotype(
            self.genotype(),
            &cfg.model.op_lists(),
            cfg.data.dataset.nb201_column(),
            p.global_step,
            p.epoch,
        )
    }

    /// The whole test set (`evaluation.test_limit` images).
    fn evaluate_until(&mut self, cancel: &mut dyn FnMut() -> bool) -> Option<Eval> {
        Trainer::evaluate_until(self, cancel).map(|e| Eval {
            loss: e.loss,
            acc: e.acc,
            images: Some(e.images),
        })
    }

    fn epoch_files(&mut self, _dir: &RunDir, _epoch: usize) -> Vec<Said> {
        Vec::new()
    }

    fn save(
        &self,
        meters: &Meters,
        run_dir: &Path,
        keep: usize,
    ) -> Result<PathBuf, CheckpointError> {
        save_checkpoint(self, meters, run_dir, keep)
    }

    /// The current weights as `weights-step<N>.safetensors`.
    fn export(&mut self, dir: &RunDir) -> Result<Vec<PathBuf>, String> {
        let step = Trainer::progress(self).global_step;
        let path = dir.path.join(format!("weights-step{step:09}.safetensors"));
        save_weights(self, &path).map_err(|e| e.to_string())?;
        Ok(vec![path])
    }

    /// `weights.safetensors`.
    fn final_artefact(&mut self, dir: &RunDir) -> Artefact {
        let path = dir.path.join(FINAL_WEIGHTS);
        match save_weights(self, &path) {
            Ok(()) => Artefact {
                summary: format!("weights: {}", path.display()),
                error: None,
            },
            Err(e) => Artefact {
                summary: "the final weights could not be written".to_string(),
                error: Some(e.to_string()),
            },
        }
    }
}
