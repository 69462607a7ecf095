//! Where the run is ([`Phase`]), what the status bar calls it ([`StateLabel`]), and a stop the
//! UI asked for ([`Stopping`]).

use std::time::Duration;

use crate::exit::RunEnd;

/// Where the run is.
#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    /// Before `Started`: the worker builds the model and loads the data.
    WarmingUp,
    /// `Started` arrived, before the first `Step` (still warming up: the first step can be slow).
    Started,
    Running,
    Paused,
    Finished {
        summary: String,
        stopped: bool,
    },
    Failed {
        message: String,
    },
}

/// The state shown as text in the status pane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateLabel {
    WarmingUp,
    Running,
    Paused,
    Saving,
    Stopping,
    Finished,
    Failed,
    /// A replay of an ended run (the time cursor moves through it).
    Replay,
}

impl StateLabel {
    pub fn text(self) -> &'static str {
        match self {
            StateLabel::WarmingUp => "WARMING UP",
            StateLabel::Running => "RUNNING",
            StateLabel::Paused => "PAUSED",
            StateLabel::Saving => "SAVING",
            StateLabel::Stopping => "STOPPING",
            StateLabel::Finished => "FINISHED",
            StateLabel::Failed => "FAILED",
            StateLabel::Replay => "REPLAY",
        }
    }
}

/// A stop the UI asked for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stopping {
    pub save: bool,
    /// Set when a signal asked for the stop: exit 130, give up at `deadline`.
    pub signal: Option<i32>,
    pub deadline: Option<Duration>,
}

impl Stopping {
    /// The exit code once the worker has gone without a `Finished`: as a run that finished
    /// saved, after this stop.
    pub fn exit_code(self) -> i32 {
        RunEnd::Finished {
            unsaved: false,
            interrupted: self.signal.is_some(),
        }
        .code()
    }
}
