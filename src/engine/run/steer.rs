//! The commands a run's loop answers between steps, for the search and the training alike: from
//! this process's monitor (a channel) and from other processes (the run's inbox
//! `<run>/commands/`, looked at every [`INBOX_EVERY`]), with those that arrive during an
//! evaluation kept for the next poll.

use std::collections::{HashSet, VecDeque};
use std::path::Path;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, TryRecvError};

use super::sink::Sink;
use crate::protocol::{Command, Event, Level};
use crate::rundir::inbox::{self, Taken};

/// How often the run's inbox is looked at (a directory listing; over NFS a round trip).
pub(crate) const INBOX_EVERY: Duration = Duration::from_millis(500);

/// What [`Steering::next`] found.
pub(crate) enum Next {
    /// A command to answer.
    Command(Command),
    /// Nothing is waiting: go on stepping.
    Idle,
    /// The monitor's channel is gone and nobody can steer the run any more: save and stop.
    Orphaned,
}

/// Where a run's commands come from, and those kept for later.
pub(crate) struct Steering {
    /// When the inbox was last looked at.
    inbox_seen: Instant,
    /// Commands that arrived during an evaluation (or read from the inbox), oldest first.
    deferred: VecDeque<Command>,
    /// The inbox was found untrustworthy (said once).
    inbox_refused: bool,
    /// The ids of the inbox's commands run so far: an id is never run twice (a file that
    /// cannot be removed comes back at every poll).
    ran: HashSet<String>,
    /// Those of them said to be stuck.
    said_stuck: HashSet<String>,
}

impl Steering {
    pub(crate) fn new() -> Self {
        Steering {
            // Due at once: commands waiting as the run starts are answered before its first step.
            inbox_seen: Instant::now()
                .checked_sub(INBOX_EVERY)
                .unwrap_or_else(Instant::now),
            deferred: VecDeque::new(),
            inbox_refused: false,
            ran: HashSet::new(),
            said_stuck: HashSet::new(),
        }
    }

    /// The next command: a deferred one, then the inbox's (when due), then the monitor's. While
    /// `paused` it waits for one, keeping the heartbeat.
    pub(crate) fn next(
        &mut self,
        commands: &Receiver<Command>,
        paused: bool,
        run_dir: &Path,
        sink: &mut Sink,
    ) -> Next {
        loop {
            if self.inbox_seen.elapsed() >= INBOX_EVERY {
                self.take_inbox(run_dir, sink);
            }
            if let Some(c) = self.deferred.pop_front() {
                return Next::Command(c);
            }
            if paused {
                match commands.recv_timeout(INBOX_EVERY) {
                    Ok(c) => return Next::Command(c),
                    Err(RecvTimeoutError::Timeout) => sink.heartbeat(),
                    Err(RecvTimeoutError::Disconnected) => return Next::Orphaned,
                }
                continue;
            }
            return match commands.try_recv() {
                Ok(c) => Next::Command(c),
                Err(TryRecvError::Empty) => Next::Idle,
                Err(TryRecvError::Disconnected) => Next::Orphaned,
            };
        }
    }

    /// Asked between the chunks of an evaluation: keeps the heartbeat, reads the inbox (when
    /// due) and the monitor's channel, and keeps every command but a stop for later.
    /// `Some(save)`: a stop came (or the channel is gone: save and stop).
    pub(crate) fn stop_during_eval(
        &mut self,
        commands: &Receiver<Command>,
        run_dir: &Path,
        sink: &mut Sink,
    ) -> Option<bool> {
        sink.heartbeat();
        if self.inbox_seen.elapsed() >= INBOX_EVERY {
            self.take_inbox(run_dir, sink);
        }
        let mut stop = None;
        self.deferred.retain(|c| match c {
            Command::Stop { save } => {
                stop = Some(*save);
                false
            }
            _ => true,
        });
        loop {
            match commands.try_recv() {
                Ok(Command::Stop { save }) => stop = Some(save),
                Ok(other) => self.deferred.push_back(other),
                Err(TryRecvError::Empty) => return stop,
                Err(TryRecvError::Disconnected) => return Some(true),
            }
        }
    }

    /// Moves the inbox's commands to the queue, each acknowledged in the events; a file that is
    /// not a command is said in the log (it was moved to `commands/rejected/`).
    fn take_inbox(&mut self, run_dir: &Path, sink: &mut Sink) {
        self.inbox_seen = Instant::now();
        for taken in inbox::take_since(run_dir, sink.started()) {
            match taken {
                Taken::Command(env) | Taken::Stuck(env) if self.ran.contains(&env.id) => {
                    if self.said_stuck.insert(env.id.clone()) {
                        sink.log(
                            Level::Error,
                            format!(
                                "command {} ({}) was run already and its file cannot be removed from {}/commands: not run again; remove the file",
                                env.id,
                                env.command.name(),
                                run_dir.display()
                            ),
                        );
                    }
                }
                Taken::Command(env) | Taken::Stuck(env) => {
                    self.ran.insert(env.id.clone());
                    sink.emit(Event::Acknowledged {
                        id: env.id,
                        command: env.command.name().to_string(),
                    });
                    self.deferred.push_back(env.command.command());
                }
                Taken::Expired(env) => sink.log(
                    Level::Warn,
                    format!(
                        "command {} ({}) was written before this process took the run: dropped, not run",
                        env.id,
                        env.command.name()
                    ),
                ),
                Taken::Rejected { file, reason } => sink.log(
                    Level::Error,
                    format!("command file {}: {reason}", file.display()),
                ),
                Taken::Unreadable { reason } => {
                    if !self.inbox_refused {
                        self.inbox_refused = true;
                        sink.log(Level::Error, reason);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rundir::inbox::{Verb, send};

    fn due() -> Steering {
        let mut s = Steering::new();
        s.inbox_seen = Instant::now()
            .checked_sub(INBOX_EVERY * 2)
            .unwrap_or_else(Instant::now);
        s
    }

    fn command(n: Next) -> Option<Command> {
        match n {
            Next::Command(c) => Some(c),
            _ => None,
        }
    }

    /// A stop from the inbox or the channel ends an evaluation; the other commands, from both,
    /// are answered afterwards in the order they came, each inbox command acknowledged.
    #[test]
    fn a_stop_during_an_evaluation_ends_it_and_the_rest_waits() {
        let run = tempfile::tempdir().unwrap();
        let (tx, rx) = crossbeam_channel::unbounded();
        let (etx, erx) = crossbeam_channel::unbounded();
        let mut sink = Sink::new(&etx);
        let mut steer = due();
        std::fs::create_dir(run.path().join(crate::rundir::inbox::COMMANDS_DIR)).unwrap();
        send(run.path(), Verb::Pause).unwrap();
        send(run.path(), Verb::Stop).unwrap();
        tx.send(Command::Checkpoint).unwrap();
        let got = steer.stop_during_eval(&rx, run.path(), &mut sink);
        assert_eq!(got, Some(true));
        let acks = erx
            .try_iter()
            .filter(|e| matches!(e, Event::Acknowledged { .. }))
            .count();
        assert_eq!(acks, 2);
        assert_eq!(
            command(steer.next(&rx, false, run.path(), &mut sink)),
            Some(Command::Pause)
        );
        assert_eq!(
            command(steer.next(&rx, false, run.path(), &mut sink)),
            Some(Command::Checkpoint)
        );
        assert!(matches!(
            steer.next(&rx, false, run.path(), &mut sink),
            Next::Idle
        ));
        // Nothing waiting: the evaluation goes on.
        assert_eq!(steer.stop_during_eval(&rx, run.path(), &mut sink), None);
        tx.send(Command::Stop { save: false }).unwrap();
        assert_eq!(
            steer.stop_during_eval(&rx, run.path(), &mut sink),
            Some(false)
        );
        // The monitor gone: save and stop.
        drop(tx);
        assert_eq!(
            steer.stop_during_eval(&rx, run.path(), &mut sink),
            Some(true)
        );
        assert!(matches!(
            steer.next(&rx, false, run.path(), &mut sink),
            Next::Orphaned
        ));
    }

    /// A command file that comes back (it could not be removed) is not run twice: said once
    /// as an error instead.
    #[test]
    fn an_id_is_never_run_twice() {
        let run = tempfile::tempdir().unwrap();
        let (_tx, rx) = crossbeam_channel::unbounded::<Command>();
        let (etx, erx) = crossbeam_channel::unbounded();
        let mut sink = Sink::new(&etx);
        let inbox = run.path().join(crate::rundir::inbox::COMMANDS_DIR);
        std::fs::create_dir(&inbox).unwrap();
        let text = r#"{"id": "once", "command": "export"}"#;
        let mut runs = 0;
        let mut steer = due();
        for _ in 0..3 {
            std::fs::write(inbox.join("once.json"), text).unwrap();
            steer.inbox_seen = Instant::now()
                .checked_sub(INBOX_EVERY * 2)
                .unwrap_or_else(Instant::now);
            while let Next::Command(c) = steer.next(&rx, false, run.path(), &mut sink) {
                assert_eq!(c, Command::Export);
                runs += 1;
            }
        }
        assert_eq!(runs, 1);
        let said: Vec<String> = erx
            .try_iter()
            .filter_map(|e| match e {
                Event::Log { text, .. } => Some(text),
                _ => None,
            })
            .collect();
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(said[0].contains("not run again"), "{said:?}");
    }
}
