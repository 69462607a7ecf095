//! The worker thread "search": sets a search up (`setup`: run directory, resume, device, data,
//! the search) and runs it through the run loop of `engine::run`, as which a search is a `Job`
//! (`job`). An error or a panic inside becomes `Event::Failed`.

mod job;
mod setup;

pub(crate) use setup::steps_before;

use std::path::PathBuf;
use std::time::Duration;

use crossbeam_channel::Receiver;

use crate::config::Config;
use crate::engine::EngineError;
use crate::engine::run::sink::Sink;
use crate::protocol::Command;

pub use crate::engine::device::resolve_device;
pub use crate::engine::run::WorkerHandle;

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
    /// `--take-over`: start even though the run's status names a live owner that cannot be
    /// checked from here.
    pub take_over: bool,
}

/// Starts the worker thread.
pub fn spawn(opts: WorkerOptions) -> std::io::Result<WorkerHandle> {
    crate::engine::run::spawn_worker("search", move |crx, sink| run(&opts, crx, sink))
}

/// The whole run on the worker thread: set up, search until done or stopped, finish.
fn run(
    opts: &WorkerOptions,
    commands: &Receiver<Command>,
    sink: &mut Sink,
) -> Result<(), EngineError> {
    setup::setup(opts, sink)?.run(commands);
    Ok(())
}
