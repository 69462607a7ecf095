//! The input thread: terminal events (keys, resizes) onto a channel. It waits in `poll` with a
//! timeout (no busy loop) so it can notice the stop flag; a read error (the tty went away) ends
//! the thread, which the UI sees as a closed channel.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, unbounded};
use crossterm::event::{self, Event};

/// A running input thread.
pub struct Input {
    pub events: Receiver<Event>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Input {
    pub fn spawn() -> std::io::Result<Input> {
        let (tx, rx) = unbounded();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name("nasp-tui-input".into())
            .spawn(move || {
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
        })
    }

    /// Asks the thread to stop and waits for it (at most one poll interval).
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
