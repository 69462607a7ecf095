//! Everything that can change the UI's state arrives as one `Msg`.

use std::time::Duration;

use crossterm::event::KeyEvent;

use crate::protocol::Event;

/// An input to [`crate::app::App::update`].
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    /// A key press (the app's keymap turns it into an action).
    Key(KeyEvent),
    /// The terminal changed size.
    Resize,
    /// The terminal input ended (the tty went away); treated like SIGHUP.
    InputClosed,
    /// An event from the worker.
    Worker(Event),
    /// The worker's event channel closed: the worker is gone.
    WorkerGone,
    /// Time passed; carries the time since the UI started (injected so updates stay pure).
    Tick(Duration),
    /// A signal arrived (the number): SIGTERM or SIGINT stop the run with a checkpoint; SIGHUP
    /// too under `ui.on_hangup = "stop"`, else it checkpoints and the UI detaches; SIGCONT (back from a `kill -STOP` or Ctrl-Z) asks for a full repaint.
    Signal(i32),
    /// A fresh resource sample (about once a second).
    Resources(ResourceSample),
}

/// Process and GPU figures, sampled off the UI thread.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResourceSample {
    /// Resident set size of this process (`VmRSS`), in bytes.
    pub rss_bytes: Option<u64>,
    pub gpu: GpuSample,
}

/// What is known about the GPU.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum GpuSample {
    /// The run is on the CPU (or has not said yet).
    #[default]
    NotUsed,
    /// The run uses a GPU but NVML cannot tell us about it (the reason, short).
    Unavailable(String),
    /// A reading from NVML.
    Device {
        index: u32,
        name: String,
        used_bytes: u64,
        total_bytes: u64,
        /// GPU utilisation in percent (not reported under MIG).
        util_percent: Option<u32>,
        /// Memory this process holds on the device (includes libtorch's cache).
        process_bytes: Option<u64>,
    },
}
