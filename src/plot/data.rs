//! What the figures of one run are drawn from, read from its directory: the lines of
//! `metrics.jsonl`, the architecture snapshots of `events.jsonl` (thinned to a few hundred, the
//! last of each epoch kept), the newest genotype, and who the run is (name, algorithm, space).
//! What is not there yet is said in `missing`, one sentence each.

use std::fs;
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::genotype::Genotype;
use crate::protocol::{ArchSnapshot, Event};
use crate::rundir::events::{EVENTS_FILE, EventReader};
use crate::rundir::genotypes;
use crate::rundir::metrics::{self, EpochRecord, StepRecord};

/// At most about this many snapshots are kept for the weights-over-time figures.
const SNAPSHOTS: u64 = 300;

/// One run's figures' data.
#[derive(Debug, Clone, Default)]
pub struct RunData {
    pub path: PathBuf,
    /// The directory's name.
    pub name: String,
    /// `nasp`, `darts1`, `darts2` (from the run's events, else its config); `?` unknown.
    pub algorithm: String,
    /// A `nasp-tui train` run: its epoch figures are the test set's.
    pub training: bool,
    /// Whether A is shown as is (NASP) or through a softmax (DARTS).
    pub proximal: bool,
    pub nb201: bool,
    pub normal_ops: Vec<String>,
    pub reduce_ops: Vec<String>,
    pub steps: Vec<StepRecord>,
    pub epochs: Vec<EpochRecord>,
    /// Thinned architecture snapshots, in step order.
    pub snapshots: Vec<ArchSnapshot>,
    /// The last snapshot of each epoch, in order.
    pub epoch_ends: Vec<ArchSnapshot>,
    /// The newest genotype and its step.
    pub genotype: Option<(u64, Genotype)>,
    /// What the run's files do not hold yet, one sentence each.
    pub missing: Vec<String>,
}

impl RunData {
    /// `name (algorithm)`, the start of every title.
    pub fn who(&self) -> String {
        format!("{} ({})", self.name, self.algorithm)
    }

    /// The held-out split's name: "test" for a training run, else "valid".
    pub fn held_out(&self) -> &'static str {
        if self.training { "test" } else { "valid" }
    }

    /// Reads `dir` (a run directory; the caller has checked that it is one).
    pub fn read(dir: &Path) -> RunData {
        let name = dir.file_name().map_or_else(
            || dir.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let mut d = RunData {
            path: dir.to_path_buf(),
            name,
            algorithm: "?".into(),
            ..RunData::default()
        };
        let config = fs::read_to_string(dir.join("config.toml"))
            .ok()
            .and_then(|t| Config::from_toml_str(&t, "config.toml").ok());
        if let Some(c) = &config {
            d.algorithm = c.algorithm.name().to_string();
            d.proximal = d.algorithm == "nasp";
        }
        match fs::read_to_string(dir.join("metrics.jsonl")) {
            Ok(text) => {
                d.steps = metrics::steps(&text);
                d.epochs = metrics::epochs(&text);
                if d.steps.is_empty() && d.epochs.is_empty() {
                    d.missing.push(
                        "metrics.jsonl has no lines yet (the first comes after train.log_every steps): no loss or accuracy figure".into(),
                    );
                }
            }
            Err(_) => d.missing.push(
                "no metrics.jsonl (the run has not started stepping): no loss or accuracy figure"
                    .into(),
            ),
        }
        d.training = d.epochs.iter().any(|e| e.test_acc.is_some());
        d.read_events(&dir.join(EVENTS_FILE));
        d.genotype = genotypes::newest(dir).map(|(step, _, g)| (step, g));
        if d.genotype.is_none() {
            d.missing.push(
                "genotypes/ holds no genotype yet (the first is written at the end of epoch 1): no cell figure".into(),
            );
        }
        if let Some((_, g)) = &d.genotype {
            d.nb201 |= g.nb201_cell().is_some();
        }
        d
    }

    /// The run's facts and its architecture snapshots from `events.jsonl`, read in slices.
    fn read_events(&mut self, path: &Path) {
        if !path.is_file() {
            if !self.training {
                self.missing.push(
                    "no events.jsonl (a run from before runs kept their events, or not started): no architecture-weight figure".into(),
                );
            }
            return;
        }
        let mut reader = EventReader::new(path);
        let mut total: Option<u64> = None;
        let mut next_kept = 0u64;
        let mut last: Option<ArchSnapshot> = None;
        loop {
            let batch = reader.poll::<Event>();
            if batch.records.is_empty() && batch.warnings.is_empty() {
                break;
            }
            for r in batch.records {
                match r.event {
                    Event::Started(info) => {
                        self.algorithm.clone_from(&info.algorithm);
                        self.proximal = info.proximal;
                        self.nb201 = info.nb201;
                        self.training |= info.trained.is_some();
                        self.normal_ops = info.normal_ops;
                        self.reduce_ops = info.reduce_ops;
                        let steps = (info.epochs * info.steps_per_epoch) as u64;
                        total = Some(steps.max(1));
                    }
                    Event::Arch(s) if !self.training => {
                        if let Some(prev) = &last
                            && prev.epoch != s.epoch
                        {
                            self.epoch_ends.push(prev.clone());
                        }
                        let every = total.map_or(1, |t| (t / SNAPSHOTS).max(1));
                        if s.global_step >= next_kept {
                            self.snapshots.push(s.clone());
                            next_kept = s.global_step + every;
                        }
                        last = Some(s);
                    }
                    _ => {}
                }
            }
        }
        if let Some(s) = last {
            if self
                .snapshots
                .last()
                .is_none_or(|k| k.global_step != s.global_step)
            {
                self.snapshots.push(s.clone());
            }
            self.epoch_ends.push(s);
        }
        if self.snapshots.is_empty() && !self.training {
            self.missing.push(
                "events.jsonl holds no architecture snapshot yet: no architecture-weight figure"
                    .into(),
            );
        }
    }
}
