//! The input thread: terminal events (keys, resizes) onto a channel. It waits in `poll` with a
//! timeout (no busy loop) so it can notice the stop flag; a read error (the tty went away) ends
//! the thread, which the UI sees as a closed channel.
//!
//! Once the terminal is gone (an ssh connection dropped, a tmux pane killed), crossterm 0.29's
//! reader can stay inside `poll` for good, re-reading the hung-up tty (crossterm issue #793).
//! So stopping waits a bounded time for the thread and otherwise leaves it behind: the process
//! is ending, and a join would keep it alive forever.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, bounded, unbounded};
use crossterm::event::{self, Event};

/// A running input thread.
pub struct Input {
    pub events: Receiver<Event>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
    /// Closed when the thread ends (its sender is dropped then).
    ended: Receiver<()>,
}

/// How long `Input::stop` waits for the thread: a few poll intervals.
const STOP_WAIT: Duration = Duration::from_secs(1);

impl Input {
    pub fn spawn() -> std::io::Result<Input> {
        let (tx, rx) = unbounded();
        let (ended_tx, ended) = bounded::<()>(0);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name("nasp-tui-input".into())
            .spawn(move || {
                let _ended = ended_tx;
                while !flag.load(Ordering::Relaxed) {
                    match event::poll(Duration::from_millis(200)) {
                        Ok(true) => match event::read() {
                            Ok(ev) => {
                                if tx.send(ev).is_err() {
                                    break;
                                }
                            }
                            Err(_) => break,
                        },
                        Ok(false) => {}
                        Err(_) => break,
                    }
                }
            })?;
        Ok(Input {
            events: rx,
            stop,
            handle: Some(handle),
            ended,
        })
    }

    /// Asks the thread to stop and waits for it (normally one poll interval). A thread still
    /// running after `STOP_WAIT` is stuck on a terminal that went away: it is left behind, and
    /// ends with the process. Returns whether the thread ended.
    pub fn stop(mut self) -> bool {
        self.stop.store(true, Ordering::Relaxed);
        match self.ended.recv_timeout(STOP_WAIT) {
            Err(RecvTimeoutError::Timeout) => false,
            Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                if let Some(h) = self.handle.take() {
                    let _ = h.join();
                }
                true
            }
        }
    }
}
