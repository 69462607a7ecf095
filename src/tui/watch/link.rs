//! The link between a watcher and a live run, through the run's directory only: one thread that
//! tails `events.jsonl` (polled every [`POLL`]; complete lines only, unreadable ones become
//! warnings in the log pane), writes the monitor's commands into the run's inbox, and watches
//! `status.json` for an owner that went away (STALE), after which it hangs up.

use std::path::Path;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded, unbounded};

use crate::protocol::{Command, Event, Level};
use crate::rundir::events::{EVENTS_FILE, EventReader};
use crate::rundir::inbox::{self, Verb};
use crate::rundir::status::{Shown, Status, unix_now};

/// How often the event log is polled.
pub const POLL: Duration = Duration::from_millis(500);
/// How often the owner's liveness is checked.
const STATUS_EVERY: Duration = Duration::from_secs(2);

/// The two ends the monitor holds: events up, commands down. Dropping `commands` ends the
/// thread (within [`POLL`]).
pub struct Link {
    pub events: Receiver<Event>,
    pub commands: Sender<Command>,
}

impl Link {
    /// Starts tailing `run_dir`, from its first event.
    pub fn spawn(run_dir: &Path) -> std::io::Result<Link> {
        let (ev_tx, events) = bounded(4096);
        let (commands, cmd_rx) = unbounded();
        let dir = run_dir.to_path_buf();
        std::thread::Builder::new()
            .name("watch-link".into())
            .spawn(move || link_loop(&dir, &cmd_rx, &ev_tx))?;
        Ok(Link { events, commands })
    }
}

/// The inbox word for a monitor command (a watcher's stop always saves).
pub fn verb(cmd: &Command) -> Verb {
    match cmd {
        Command::Pause => Verb::Pause,
        Command::Resume => Verb::Resume,
        Command::Checkpoint => Verb::Checkpoint,
        Command::Export => Verb::Export,
        Command::Stop { .. } => Verb::Stop,
    }
}

fn link_loop(dir: &Path, commands: &Receiver<Command>, events: &Sender<Event>) {
    let mut reader = EventReader::new(&dir.join(EVENTS_FILE));
    let mut ended = false;
    let mut last_status = Instant::now();
    loop {
        // Everything there is now (a long run arrives in slices), then wait.
        loop {
            let mut batch = reader.poll::<Event>();
            let more = !batch.records.is_empty() || !batch.warnings.is_empty();
            if batch.restarted {
                let text = format!("{} was replaced: reading it again", EVENTS_FILE);
                batch.warnings.insert(0, text);
            }
            for text in batch.warnings {
                if events
                    .send(Event::Log {
                        level: Level::Warn,
                        text,
                    })
                    .is_err()
                {
                    return;
                }
            }
            for r in batch.records {
                ended |= matches!(r.event, Event::Finished { .. } | Event::Failed { .. });
                if events.send(r.event).is_err() {
                    return;
                }
            }
            if !more {
                break;
            }
        }
        if !ended && last_status.elapsed() >= STATUS_EVERY {
            last_status = Instant::now();
            if let Some(text) = stale(dir) {
                let _ = events.send(Event::Log {
                    level: Level::Warn,
                    text,
                });
                return;
            }
        }
        match commands.recv_timeout(POLL) {
            Ok(cmd) => {
                let v = verb(&cmd);
                if let Err(e) = inbox::send(dir, v) {
                    let text = format!(
                        "cannot send {} to {}/commands: {e}",
                        v.name(),
                        dir.display()
                    );
                    if events
                        .send(Event::Log {
                            level: Level::Error,
                            text,
                        })
                        .is_err()
                    {
                        return;
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Why the run's owner is gone, when its status says STALE.
fn stale(dir: &Path) -> Option<String> {
    let s = Status::read(dir).ok()??;
    let now = unix_now();
    (s.shown(now) == Shown::Stale).then(|| {
        format!(
            "the run's process (pid {} on {}) is gone; last heartbeat {:.0} s ago",
            s.pid,
            s.host,
            now - s.heartbeat
        )
    })
}
