//! A search as the run loop sees it (`engine::run::Job`): validation at each epoch's end, the
//! epoch's genotype, the exported genotype, the final genotype.

use std::path::{Path, PathBuf};

use crate::engine::checkpoint::{self, CheckpointError, Meters};
use crate::engine::run::{Artefact, Eval, HeldOut, Job, Said, job_by_inherent_methods};
use crate::engine::search::Search;
use crate::protocol::ArchSnapshot;
use crate::rundir::RunDir;

impl Job for Search {
    const HELD_OUT: HeldOut = HeldOut::Valid;
    const ARCH_MOVES: bool = true;

    job_by_inherent_methods!(Search);

    fn drop_path(&self) -> Option<f64> {
        None
    }

    fn arch_snapshot(&mut self) -> ArchSnapshot {
        Search::arch_snapshot(self)
    }

    /// `train.eval_batches` batches of the validation split (all of it when 0).
    fn evaluate_until(&mut self, cancel: &mut dyn FnMut() -> bool) -> Option<Eval> {
        let max = self.config().train.eval_batches;
        Search::evaluate_until(self, max, cancel).map(|e| Eval {
            loss: e.loss,
            acc: e.acc,
            images: None,
        })
    }

    /// `genotypes/epoch-NNN`, and the genotype in `log.txt`.
    fn epoch_files(&mut self, dir: &RunDir, epoch: usize) -> Vec<Said> {
        let g = self.genotype();
        let step = Search::progress(self).global_step;
        let mut said = Vec::new();
        if let Err(e) = dir.write_genotype(&format!("epoch-{epoch:03}"), &g, step) {
            said.push(Said::Error(e.to_string()));
        }
        said.push(Said::Note(format!("epoch {epoch} genotype: {g}")));
        said
    }

    fn save(
        &self,
        meters: &Meters,
        run_dir: &Path,
        keep: usize,
    ) -> Result<PathBuf, CheckpointError> {
        checkpoint::save(self, meters, run_dir, keep)
    }

    /// The genotype of A as it is now, as `genotypes/export-step<N>` (text and JSON), and its
    /// cells drawn beside them (`export-step<N>-normal.svg`, `-reduce.svg`; `-cell.svg` for a
    /// NAS-Bench-201 cell).
    fn export(&mut self, dir: &RunDir) -> Result<Vec<PathBuf>, String> {
        let g = self.current_genotype();
        let step = Search::progress(self).global_step;
        let stem = format!("export-step{step:09}");
        let mut paths = dir
            .write_genotype(&stem, &g, step)
            .map_err(|e| e.to_string())?;
        let name = dir.path.file_name().map_or_else(
            || dir.path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let who = format!("{name} ({})", self.config().algorithm.name());
        let cells = crate::plot::write_cells(&dir.path.join("genotypes"), &stem, &g, &who, step)
            .map_err(|e| {
                format!(
                    "the genotype is written ({}), its cell figures not: {e}",
                    paths[0].display()
                )
            })?;
        paths.extend(cells);
        Ok(paths)
    }

    /// `genotypes/final`.
    fn final_artefact(&mut self, dir: &RunDir) -> Artefact {
        let g = self.genotype();
        let step = Search::progress(self).global_step;
        Artefact {
            error: dir
                .write_genotype("final", &g, step)
                .err()
                .map(|e| e.to_string()),
            summary: format!("genotype: {g}"),
        }
    }
}
