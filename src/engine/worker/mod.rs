//! The worker thread "search": owns every tch object, runs the search loop, answers commands and
//! reports events. An error or a panic inside becomes `Event::Failed`.
//!
//! `setup` prepares a run (run directory, resume, device, data, the search), `run_loop` runs it
//! (steps, commands, end of epoch, finish) and `meter` keeps its figures. `steer` (where the
//! commands come from) and `sink` (where the events go) serve the training worker too.

mod meter;
mod run_loop;
mod setup;

pub(crate) use setup::refuse_if_owned;
pub(crate) mod sink;
pub(crate) mod steer;

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};

use crate::config::Config;
use crate::engine::EngineError;
use crate::protocol::{Command, Event};

pub use crate::engine::device::resolve_device;

/// What the worker needs to start.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    pub config: Config,
    pub run_dir: PathBuf,
    pub data_dir: Option<PathBuf>,
    pub max_steps: Option<u64>,
    /// A run or checkpoint directory to continue.
    pub resume: Option<PathBuf>,
    /// Minimum time between two `Step` events.
    pub event_interval: Duration,
}

/// The UI side of a running worker.
pub struct WorkerHandle {
    pub commands: Sender<Command>,
    pub events: Receiver<Event>,
    pub join: JoinHandle<()>,
}

/// Starts the worker thread.
pub fn spawn(opts: WorkerOptions) -> std::io::Result<WorkerHandle> {
    spawn_named("search", move |crx, sink| run(&opts, crx, sink))
}

/// Starts a worker thread named `name` running `body` with the command channel and the sink;
/// an error it returns, or a panic, becomes `Event::Failed` (the search's and the training's
/// worker both start here).
pub(crate) fn spawn_named(
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

/// The whole run on the worker thread: set up, search until done or stopped, finish.
fn run(
    opts: &WorkerOptions,
    commands: &Receiver<Command>,
    sink: &mut sink::Sink,
) -> Result<(), EngineError> {
    setup::setup(opts, sink)?.run(commands);
    Ok(())
}
