//! What every run on a worker thread shares, a search's and a training's alike: the thread's
//! start (an error or a panic inside becomes `Event::Failed`), the refusal of a run directory
//! another live process owns, and the run loop itself, written once over the small [`Job`]
//! trait that `Search` and `Trainer` implement.
//!
//! `run_loop` runs a job (steps; commands between steps and between evaluation chunks; epoch
//! ends; saves and what they came to; the end of the run), `meter` keeps its figures (device
//! figures read at the event rate, the metrics lines), `steer` says where commands come from
//! (the monitor's channel and the run's inbox, those arriving during an evaluation kept for
//! later) and `sink` where events go.
//!
//! The cut: a job knows its network and data (how to step, evaluate, save, and what its final
//! artefact is); the loop knows the run (when to do each, what to tell whom, and in which
//! words). So every rule about the run — the save guard, the end summary, `train.log_every`,
//! the metrics lines — exists once, for both.

mod meter;
mod run_loop;
pub(crate) mod sink;
pub(crate) mod steer;
#[cfg(test)]
mod tests;

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use tch::Tensor;

use crate::config::Config;
use crate::engine::EngineError;
use crate::engine::checkpoint::files::{CheckpointError, Meters};
use crate::protocol::{ArchSnapshot, Command, Event};
use crate::rundir::RunDir;
use crate::rundir::status::{Status, host_name, unix_now};

pub(crate) use run_loop::Loop;

/// Where a run stands: the epoch, the steps done in it, and the steps done in all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    pub epoch: usize,
    pub step_in_epoch: usize,
    pub global_step: u64,
}

/// Figures of one step, as device tensors (read on the host only at the logging rate).
pub struct StepOut {
    pub loss: Tensor,
    pub correct: Tensor,
    pub count: usize,
    /// The architecture loss (a search's; `None` for a training).
    pub arch_loss: Option<Tensor>,
}

/// Mean loss and accuracy of the evaluation that closes an epoch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Eval {
    pub loss: f64,
    pub acc: f64,
    /// Images evaluated, where the job counts them (the test set).
    pub images: Option<usize>,
}

/// What the evaluation at an epoch's end measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeldOut {
    /// The search's validation split.
    Valid,
    /// The training's test set.
    Test,
}

impl HeldOut {
    /// "validating" / "testing".
    fn verb(self) -> &'static str {
        match self {
            HeldOut::Valid => "validating",
            HeldOut::Test => "testing",
        }
    }
}

/// Something a job says about its files: an error for the log pane, or a line for `log.txt`.
#[derive(Debug, Clone, PartialEq)]
pub enum Said {
    Error(String),
    Note(String),
}

/// The last thing a run writes (the search's final genotype, the training's weights).
#[derive(Debug, Clone, PartialEq)]
pub struct Artefact {
    /// What the end summary says of it: "genotype: …", "weights: PATH".
    pub summary: String,
    /// Why it could not be written, for the log.
    pub error: Option<String>,
}

/// A search or a training as the run loop sees it: what it does at each point of a run. The
/// loop decides when (and what to tell the monitors); the job does.
pub(crate) trait Job {
    /// What the evaluation at an epoch's end measures.
    const HELD_OUT: HeldOut;
    /// Whether the architecture moves as the run goes: then an `Arch` event follows each
    /// `Step` event and each epoch (a training shows its genotype once, at the start).
    const ARCH_MOVES: bool;

    /// The config the job runs (epochs, checkpoint cadence, `train.log_every`).
    fn config(&self) -> &Config;
    fn progress(&self) -> Progress;
    fn steps_per_epoch(&self) -> usize;
    /// Draws the current epoch's plan unless it is drawn.
    fn ensure_plan(&mut self);
    /// One step of the current epoch; `None` when it is over.
    fn step(&mut self) -> Option<StepOut>;
    /// Fallbacks and errors handled since the last call, for the log.
    fn take_notices(&mut self) -> Vec<String>;
    /// The learning rate of the current epoch.
    fn lr(&self) -> f64;
    /// The drop-path probability of the current epoch, for a job that drops paths.
    fn drop_path(&self) -> Option<f64>;
    /// The architecture for the monitor, as it is now.
    fn arch_snapshot(&mut self) -> ArchSnapshot;
    /// The evaluation that closes an epoch, asking `cancel` before each chunk: `None` when it
    /// said yes.
    fn evaluate_until(&mut self, cancel: &mut dyn FnMut() -> bool) -> Option<Eval>;
    /// What the job writes when epoch `epoch` closes (before [`Job::end_epoch`]).
    fn epoch_files(&mut self, dir: &RunDir, epoch: usize) -> Vec<Said>;
    /// Moves to the next epoch's start.
    fn end_epoch(&mut self);
    /// Writes a checkpoint into `<run_dir>/checkpoints`; its directory.
    fn save(
        &self,
        meters: &Meters,
        run_dir: &Path,
        keep: usize,
    ) -> Result<PathBuf, CheckpointError>;
    /// `e` in the monitor: the files written.
    fn export(&mut self, dir: &RunDir) -> Result<Vec<PathBuf>, String>;
    /// The run's last artefact, written at its end.
    fn final_artefact(&mut self, dir: &RunDir) -> Artefact;
}

/// The part of a [`Job`] impl that only hands the call to the type's own method of the same
/// name (`config`, `progress`, `steps_per_epoch`, `ensure_plan`, `step`, `take_notices`, `lr`,
/// `end_epoch`): written once, for `Search` and `Trainer`, inside their `impl Job`. A macro, as
/// Rust has no delegation and the inherent methods stay (the bench, the check and the tests
/// call them without the trait).
macro_rules! job_by_inherent_methods {
    ($t:ty) => {
        fn config(&self) -> &$crate::config::Config {
            <$t>::config(self)
        }

        fn progress(&self) -> $crate::engine::run::Progress {
            <$t>::progress(self)
        }

        fn steps_per_epoch(&self) -> usize {
            <$t>::steps_per_epoch(self)
        }

        fn ensure_plan(&mut self) {
            <$t>::ensure_plan(self);
        }

        fn step(&mut self) -> Option<$crate::engine::run::StepOut> {
            <$t>::step(self)
        }

        fn take_notices(&mut self) -> Vec<String> {
            <$t>::take_notices(self)
        }

        fn lr(&self) -> f64 {
            <$t>::lr(self)
        }

        fn end_epoch(&mut self) {
            <$t>::end_epoch(self);
        }
    };
}
pub(crate) use job_by_inherent_methods;

/// The UI side of a running worker.
pub struct WorkerHandle {
    pub commands: Sender<Command>,
    pub events: Receiver<Event>,
    pub join: JoinHandle<()>,
}

/// Starts a worker thread named `name` running `body` with the command channel and the sink;
/// an error it returns, or a panic, becomes `Event::Failed` (the search's and the training's
/// worker both start here).
pub(crate) fn spawn_worker(
    name: &'static str,
    body: impl FnOnce(&Receiver<Command>, &mut sink::Sink) -> Result<(), EngineError> + Send + 'static,
) -> std::io::Result<WorkerHandle> {
    let (ctx, crx) = crossbeam_channel::unbounded();
    let (etx, erx) = crossbeam_channel::unbounded();
    let join = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let mut sink = sink::Sink::new(&etx);
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| body(&crx, &mut sink)));
            let failure = match outcome {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(panic) => Some(format!(
                    "the {name} thread panicked: {}",
                    panic
                        .downcast_ref::<String>()
                        .map(String::as_str)
                        .or_else(|| panic.downcast_ref::<&str>().copied())
                        .unwrap_or("unknown panic")
                )),
            };
            if let Some(message) = failure {
                sink.emit(Event::Failed { message });
            }
        })?;
    Ok(WorkerHandle {
        commands: ctx,
        events: erx,
        join,
    })
}

/// Refuses a run directory that a live process (this host: that very process, see
/// `Status::is_here`; another host: its heartbeat is fresh) owns: two runs must never write one
/// directory. With `take_over` (`--take-over`), a run whose owner cannot be checked from here
/// (another host's, or this host's where its process is gone) is taken anyway: the note says
/// from whom, for the log.
pub(crate) fn refuse_if_owned(dir: &Path, take_over: bool) -> Result<Option<String>, EngineError> {
    let Ok(Some(owner)) = Status::read(dir) else {
        return Ok(None);
    };
    let now = unix_now();
    if !owner.owner_alive(now) || owner.pid == std::process::id() {
        return Ok(None);
    }
    let here = owner.host == host_name();
    let (d, pid, host) = (dir.display(), owner.pid, &owner.host);
    if here && owner.is_here() {
        return Err(EngineError::RunInUse(format!(
            "run directory {d} is in use by pid {pid} on {host} ({}); watch it with `nasp-tui watch {d}`, stop it with `nasp-tui ctl {d} stop`, or choose another --run-dir",
            owner.shown(now).label(),
        )));
    }
    if take_over {
        return Ok(Some(format!(
            "took the run over from pid {pid} on {host} (--take-over; its last heartbeat {:.0} s ago)",
            now - owner.heartbeat
        )));
    }
    Err(EngineError::RunInUse(format!(
        "run directory {d} is in use by pid {pid} on {host} ({}, heartbeat {:.0} s ago); watch it with `nasp-tui watch {d}`, or choose another --run-dir. If no process works on it any more (its node went down, or its clock is ahead of this one's), take it over with --take-over",
        owner.shown(now).label(),
        now - owner.heartbeat
    )))
}
