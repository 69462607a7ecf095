//! The one seam between the search worker and whoever watches it (the TUI or the headless
//! printer): `Command` goes down, `Event` comes up, over crossbeam channels. Payloads are plain
//! owned data, never tensors.

use serde::{Deserialize, Serialize};

use crate::arch::ArchMatrix;
use crate::genotype::Genotype;

/// Sent by the UI (or a signal handler) to the worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Stop stepping after the current step; answered by `Event::Paused`.
    Pause,
    /// Continue after a pause; answered by `Event::Resumed`.
    Resume,
    /// Save a checkpoint now; answered by `CheckpointSaved` or an error `Log`.
    Checkpoint,
    /// Write the current genotype (DARTS text and JSON) into the run directory; answered by
    /// `Exported`.
    Export,
    /// Finish the current step, save a checkpoint if `save`, then answer `Finished`.
    Stop { save: bool },
}

/// Static facts about a run, sent once in `Event::Started`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub run_dir: String,
    pub algorithm: String,
    pub device: String,
    pub dataset: String,
    pub epochs: usize,
    pub steps_per_epoch: usize,
    pub batch_size: usize,
    pub nodes: usize,
    pub normal_ops: Vec<String>,
    pub reduce_ops: Vec<String>,
    pub params: usize,
    /// First global step of this process (non-zero after a resume).
    pub start_step: u64,
    /// Whether the proximal selection (Ā) is meaningful (NASP) or A is shown through a softmax.
    pub proximal: bool,
}

/// Training progress, sent at a capped rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepStats {
    pub epoch: usize,
    /// Step within the epoch (1-based once a step is done).
    pub step: usize,
    pub global_step: u64,
    /// Mean train loss / accuracy over the steps since the last `Step` event.
    pub train_loss: f64,
    pub train_acc: f64,
    /// Loss of the architecture step (validation batch).
    pub arch_loss: f64,
    pub lr: f64,
    pub ms_per_step: f64,
    pub images_per_s: f64,
}

/// Architecture snapshot: the continuous A and the proximal selection Ā of both cells.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArchSnapshot {
    pub global_step: u64,
    pub epoch: usize,
    pub normal: ArchMatrix,
    pub reduce: ArchMatrix,
    /// For each edge, the op Ā keeps (`None` = the node drops this edge).
    pub normal_selected: Vec<Option<usize>>,
    pub reduce_selected: Vec<Option<usize>>,
    pub genotype: Genotype,
}

/// End-of-epoch figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochStats {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_acc: f64,
    pub valid_loss: f64,
    pub valid_acc: f64,
    /// Wall time of the epoch, validation included, and of the validation alone.
    pub seconds: f64,
    pub valid_seconds: f64,
}

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Level {
    Info,
    Warn,
    Error,
}

/// Sent by the worker.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The model is built and the data loaded; stepping starts.
    Started(RunInfo),
    /// Progress (at most ~10 per second).
    Step(StepStats),
    /// Architecture weights and selection (with each `Step`, and at epoch end).
    Arch(ArchSnapshot),
    /// An epoch ended (after validation).
    Epoch(EpochStats),
    /// The worker is paused (the step counter does not move).
    Paused { global_step: u64 },
    /// The worker resumed stepping.
    Resumed,
    /// A checkpoint is being written.
    Saving,
    /// A checkpoint was written to `path`.
    CheckpointSaved { path: String, global_step: u64 },
    /// The genotype was written to these files.
    Exported { paths: Vec<String> },
    /// Something to show in the log pane.
    Log { level: Level, text: String },
    /// The run ended: all epochs done, `--max-steps` reached, or stopped.
    Finished { summary: String, stopped: bool },
    /// The worker failed (an error or a caught panic); it has stopped.
    Failed { message: String },
}
