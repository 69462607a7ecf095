//! SIGTERM, SIGHUP (the ssh session died), SIGINT (from `kill`; in raw mode Ctrl-C is a key) and
//! SIGCONT (redraw after a suspend) as messages on a channel, read by whichever monitor runs the
//! search (the TUI, or the headless printer, which ignores SIGCONT). Registered once per process,
//! by `cli::search`, for both modes.

use std::io;

use crossbeam_channel::{Receiver, unbounded};
pub use signal_hook::consts::signal::{SIGCONT, SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// The signals [`register`] listens to.
pub const SIGNALS: [i32; 4] = [SIGTERM, SIGHUP, SIGINT, SIGCONT];

/// Registers handlers and returns the channel the signal numbers arrive on. The handlers replace
/// the default actions (termination) for the rest of the process, so call this only when the
/// receiver will be read.
pub fn register() -> io::Result<Receiver<i32>> {
    let mut signals = Signals::new(SIGNALS)?;
    let (tx, rx) = unbounded();
    std::thread::Builder::new()
        .name("nasp-tui-signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                if tx.send(sig).is_err() {
                    break;
                }
            }
        })?;
    Ok(rx)
}
