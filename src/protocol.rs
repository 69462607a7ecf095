//! The one seam between the search worker and whoever watches it (the TUI or the headless
//! printer): `Command` goes down, `Event` comes up, over crossbeam channels. Payloads are plain
//! owned data, never tensors.
//!
//! [`Event::describe`] is the one wording of an event as a line of text: the TUI's log pane, the
//! headless output and the run's `log.txt` all take it from here.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::exit::RunEnd;

use crate::arch::{ArchMatrix, node_rows, num_edges};
use crate::genotype::Genotype;
use crate::space::{CellType, OpLists};

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
    /// `nasp-tui train`: the genotype whose network is trained from scratch (no search; the
    /// epoch figures are then the test set's). `None` for a search.
    #[serde(default)]
    pub trained: Option<Box<Genotype>>,
    /// The cells are NAS-Bench-201's (one input, every edge kept, no reduction cell).
    #[serde(default)]
    pub nb201: bool,
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
    /// `nasp-tui train`: the drop-path probability in force (`None` for a search).
    #[serde(default)]
    pub drop_path: Option<f64>,
}

/// What NAS-Bench-201 says of the cell a search in the `nb201` space derives now: a lookup in
/// the benchmark's table (its 200-epoch training of that cell), not a measurement of this run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchmarkScore {
    /// The cell, as the benchmark writes it.
    pub arch: String,
    /// The data set whose column is read ("CIFAR-10", or "CIFAR-100" for a CIFAR-100 search).
    pub dataset: String,
    /// The benchmark's test accuracy of the cell on `dataset`, in %.
    pub accuracy: f64,
    /// Its rank among all `cells` cells on `dataset` (1 = the best).
    pub rank: usize,
    pub cells: usize,
}

impl BenchmarkScore {
    /// The score of `cell` on `dataset`.
    pub fn of(cell: &crate::nb201::Cell, dataset: crate::nb201::Dataset) -> BenchmarkScore {
        let e = crate::nb201::table().lookup(cell);
        BenchmarkScore {
            arch: cell.to_string(),
            dataset: dataset.name().to_string(),
            accuracy: e.accuracy(dataset),
            rank: e.rank(dataset),
            cells: crate::nb201::CELLS,
        }
    }
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
    /// In the `nb201` space: the benchmark's accuracy of `genotype`'s cell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub benchmark: Option<Box<BenchmarkScore>>,
}

impl ArchSnapshot {
    /// A fixed genotype as a snapshot (`nasp-tui train`): 1 where the genotype puts an op on
    /// an edge (of the op lists `lists`), 0 elsewhere, so the cell panes draw the trained cell;
    /// an NB201 cell is scored on the benchmark's column `column`.
    pub fn of_genotype(
        g: &Genotype,
        lists: &OpLists,
        column: crate::nb201::Dataset,
        global_step: u64,
        epoch: usize,
    ) -> Self {
        if let Some(cell) = g.nb201_cell() {
            let mut normal = ArchMatrix::filled(cell.ops.len(), crate::nb201::OPS.len(), 0.0);
            for (e, &k) in cell.ops.iter().enumerate() {
                normal.data[e * normal.cols + k] = 1.0;
            }
            return ArchSnapshot {
                global_step,
                epoch,
                normal,
                reduce: ArchMatrix::filled(0, 0, 0.0),
                normal_selected: cell.ops.iter().map(|&k| Some(k)).collect(),
                reduce_selected: Vec::new(),
                genotype: g.clone(),
                benchmark: Some(Box::new(BenchmarkScore::of(&cell, column))),
            };
        }
        let nodes = g.normal.len().max(g.reduce.len()) / 2;
        let cell = |pairs: &[(String, usize)], cell: CellType| {
            let ops = lists.get(cell);
            let mut m = ArchMatrix::filled(num_edges(nodes), ops.len(), 0.0);
            let mut selected = vec![None; num_edges(nodes)];
            for (e, (op, input)) in pairs.iter().enumerate() {
                let row = node_rows(e / 2).start + input;
                if let Some(col) = ops.iter().position(|o| o == op)
                    && row < m.rows
                {
                    m.data[row * m.cols + col] = 1.0;
                    selected[row] = Some(col);
                }
            }
            (m, selected)
        };
        let (normal, normal_selected) = cell(&g.normal, CellType::Normal);
        let (reduce, reduce_selected) = cell(&g.reduce, CellType::Reduce);
        ArchSnapshot {
            global_step,
            epoch,
            normal,
            reduce,
            normal_selected,
            reduce_selected,
            genotype: g.clone(),
            benchmark: None,
        }
    }
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
    /// `nasp-tui train`: the `valid_*` figures are the test set's.
    #[serde(default)]
    pub test: bool,
}

impl EpochStats {
    /// What the evaluated set is called: "test" (`nasp-tui train`) or "valid" (a search).
    pub fn set_name(&self) -> &'static str {
        if self.test { "test" } else { "valid" }
    }
}

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Level {
    Info,
    Warn,
    Error,
}

impl Level {
    /// What a line of this level starts with as plain text: nothing for `Info`, `warning: ` or
    /// `error: ` (the log pane shows it in the level's colour, the headless output as is).
    pub fn prefix(self) -> &'static str {
        match self {
            Level::Info => "",
            Level::Warn => "warning: ",
            Level::Error => "error: ",
        }
    }
}

/// One line of a run's log: an event's [`Event::describe`], or a note of the UI itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub level: Level,
    pub text: String,
}

impl LogLine {
    pub fn new(level: Level, text: impl Into<String>) -> LogLine {
        LogLine {
            level,
            text: text.into(),
        }
    }

    /// The line as the run's `log.txt` writes it: `[Info] text`, `[Warn] text`, `[Error] text`.
    pub fn tagged(&self) -> String {
        format!("[{:?}] {}", self.level, self.text)
    }
}

/// Plain text: the level's [`Level::prefix`], then the text (`warning: no GPU`).
impl fmt::Display for LogLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.level.prefix(), self.text)
    }
}

/// Sent by the worker. Serialisable: every event also goes, one JSON line each, into the run's
/// `events.jsonl`, which other processes read (`watch`, `ctl --wait`, replays).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// A checkpoint could not be written (the search goes on; earlier checkpoints are intact).
    /// `failed`: how many saves of this process failed so far.
    CheckpointFailed {
        global_step: u64,
        reason: String,
        failed: usize,
    },
    /// The genotype was written to these files.
    Exported { paths: Vec<String> },
    /// Something to show in the log pane.
    Log { level: Level, text: String },
    /// The run ended: all epochs done, `--max-steps` reached, or stopped. `unsaved`: a final
    /// checkpoint was wanted and could not be written (the summary says which checkpoint is
    /// the newest); the process then exits with `exit::UNSAVED`.
    Finished {
        summary: String,
        stopped: bool,
        #[serde(default)]
        unsaved: bool,
    },
    /// The worker failed (an error or a caught panic); it has stopped.
    Failed { message: String },
    /// A command from the run's inbox (`<run>/commands/`, sent by `ctl` or a watcher) was taken
    /// and is being acted on; `id` names the command file.
    Acknowledged { id: String, command: String },
}

impl Event {
    /// How the run ended, when this event ends it (`Finished`, `Failed`); `interrupted`: a
    /// signal asked for the stop.
    pub fn run_end(&self, interrupted: bool) -> Option<RunEnd> {
        match self {
            Event::Finished { unsaved, .. } => Some(RunEnd::Finished {
                unsaved: *unsaved,
                interrupted,
            }),
            Event::Failed { .. } => Some(RunEnd::Failed),
            _ => None,
        }
    }

    /// The event as one log line, in the words every monitor uses; `None` for the events that are
    /// not logged line by line.
    ///
    /// Logged: `Started`, `Epoch` (numbered from 1, as the status bar counts), `Paused`,
    /// `Resumed`, `CheckpointSaved`, `Exported`, `Log` (its own level and text), `Finished` (the
    /// worker's summary) and `Failed` (an error). Not logged: `Step` and `Arch` (progress at up
    /// to ten a second: the TUI draws it, the headless printer rate-limits its own progress
    /// lines) and `Saving` (the status bar shows it; `CheckpointSaved` or an error `Log` follows).
    pub fn describe(&self) -> Option<LogLine> {
        let info = |text: String| Some(LogLine::new(Level::Info, text));
        match self {
            Event::Started(i) => info(format!(
                "started: {} on {} ({}), {} epochs x {} steps, {} parameters",
                i.algorithm, i.device, i.dataset, i.epochs, i.steps_per_epoch, i.params
            )),
            Event::Epoch(e) => info(format!(
                "epoch {} done: train acc {:.3}, {set} acc {:.3}, {set} loss {:.3} ({:.1} s)",
                e.epoch + 1,
                e.train_acc,
                e.valid_acc,
                e.valid_loss,
                e.seconds,
                set = e.set_name(),
            )),
            Event::Paused { global_step } => info(format!("paused at step {global_step}")),
            Event::Resumed => info("resumed".to_string()),
            Event::CheckpointSaved { path, global_step } => {
                info(format!("checkpoint saved at step {global_step}: {path}"))
            }
            Event::Exported { paths } => info(format!("genotype exported: {}", paths.join(", "))),
            Event::Log { level, text } => Some(LogLine::new(*level, text.clone())),
            Event::Finished { summary, .. } => info(summary.clone()),
            Event::Failed { message } => {
                Some(LogLine::new(Level::Error, format!("FAILED: {message}")))
            }
            Event::CheckpointFailed {
                global_step,
                reason,
                failed,
            } => Some(LogLine::new(
                Level::Error,
                format!(
                    "checkpoint at step {global_step} failed ({failed} so far): {reason}; the search goes on, earlier checkpoints are untouched"
                ),
            )),
            Event::Acknowledged { id, command } => {
                info(format!("{command} received from another process ({id})"))
            }
            Event::Step(_) | Event::Arch(_) | Event::Saving => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::fixtures;

    fn text(ev: &Event) -> String {
        ev.describe().expect("a logged event").to_string()
    }

    #[test]
    fn every_logged_event_has_one_wording() {
        assert_eq!(
            text(&Event::Started(fixtures::info(true))),
            "started: nasp on cpu (cifar10), 50 epochs x 391 steps, 1930842 parameters"
        );
        let epoch = EpochStats {
            epoch: 0,
            train_loss: 1.9,
            train_acc: 0.42,
            valid_loss: 1.7,
            valid_acc: 0.39,
            seconds: 48.0,
            valid_seconds: 6.0,
            test: false,
        };
        assert_eq!(
            text(&Event::Epoch(epoch.clone())),
            "epoch 1 done: train acc 0.420, valid acc 0.390, valid loss 1.700 (48.0 s)"
        );
        let test = EpochStats {
            test: true,
            ..epoch
        };
        assert_eq!(
            text(&Event::Epoch(test)),
            "epoch 1 done: train acc 0.420, test acc 0.390, test loss 1.700 (48.0 s)"
        );
        assert_eq!(
            text(&Event::Paused { global_step: 400 }),
            "paused at step 400"
        );
        assert_eq!(text(&Event::Resumed), "resumed");
        assert_eq!(
            text(&Event::CheckpointSaved {
                path: "runs/x/checkpoints/ckpt-000000400".into(),
                global_step: 400
            }),
            "checkpoint saved at step 400: runs/x/checkpoints/ckpt-000000400"
        );
        assert_eq!(
            text(&Event::Exported {
                paths: vec!["g/a.txt".into(), "g/a.json".into()]
            }),
            "genotype exported: g/a.txt, g/a.json"
        );
        assert_eq!(
            text(&Event::Finished {
                summary: "stopped after 9 steps (epoch 0); genotype: x".into(),
                stopped: true,
                unsaved: false,
            }),
            "stopped after 9 steps (epoch 0); genotype: x"
        );
    }

    #[test]
    fn levels_carry_over_and_prefix_the_plain_text() {
        let failed = Event::Failed {
            message: "CUDA out of memory".into(),
        }
        .describe()
        .expect("a line");
        assert_eq!(failed.level, Level::Error);
        assert_eq!(failed.text, "FAILED: CUDA out of memory");
        assert_eq!(failed.to_string(), "error: FAILED: CUDA out of memory");
        assert_eq!(failed.tagged(), "[Error] FAILED: CUDA out of memory");
        for (level, plain) in [
            (Level::Info, "no GPU"),
            (Level::Warn, "warning: no GPU"),
            (Level::Error, "error: no GPU"),
        ] {
            let line = Event::Log {
                level,
                text: "no GPU".into(),
            }
            .describe()
            .expect("a line");
            assert_eq!(line, LogLine::new(level, "no GPU"));
            assert_eq!(line.to_string(), plain);
        }
    }

    #[test]
    fn progress_and_saving_have_no_line() {
        assert_eq!(Event::Step(fixtures::step(400)).describe(), None);
        assert_eq!(Event::Arch(fixtures::snapshot(400, 0.5)).describe(), None);
        assert_eq!(Event::Saving.describe(), None);
    }
}
