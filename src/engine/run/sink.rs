//! Where the worker's events go, all through [`Sink::emit`]: the monitor of this process (the
//! channel), the run's `log.txt` (the event in the words of `Event::describe`), and, for other
//! processes, `events.jsonl` (every event, numbered and timed) and `status.json` (where the run
//! stands, with a heartbeat). Writing the last two can fail (a full disk) without stopping the
//! search: the first failure is said once, in the log.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use crate::protocol::{Event, Level};
use crate::rundir::events::EventWriter;
use crate::rundir::status::{HEARTBEAT, RunState, Status, unix_now};
use crate::rundir::{RunDirError, open_log};

/// `status.json` is rewritten at most this often for progress alone (state changes: at once).
const STATUS_EVERY: Duration = Duration::from_secs(1);

pub(crate) struct Sink<'a> {
    tx: &'a Sender<Event>,
    /// The run directory and its `log.txt`, once attached (a failure before that reaches the
    /// channel only).
    dir: Option<PathBuf>,
    log: Option<File>,
    events: Option<EventWriter>,
    status: Option<Status>,
    status_written: Option<Instant>,
    /// What failed to be written already (said once each).
    said: Vec<&'static str>,
}

impl<'a> Sink<'a> {
    pub(crate) fn new(tx: &'a Sender<Event>) -> Sink<'a> {
        Sink {
            tx,
            dir: None,
            log: None,
            events: None,
            status: None,
            status_written: None,
            said: Vec::new(),
        }
    }

    /// From now on, events also go into the files of run directory `dir` (which exists).
    pub(crate) fn attach(&mut self, dir: &Path) -> Result<(), RunDirError> {
        self.log = Some(open_log(dir)?);
        self.dir = Some(dir.to_path_buf());
        // Owned from now on: a second search on this directory is refused (see `setup`).
        self.status = Some(Status::starting(unix_now()));
        self.write_status();
        match EventWriter::open(dir) {
            Ok(w) => self.events = Some(w),
            Err(e) => self.trouble(
                "events",
                format!(
                    "cannot write {}/events.jsonl ({e}); other processes cannot follow this run",
                    dir.display()
                ),
            ),
        }
        Ok(())
    }

    fn log_line(&mut self, line: &str) {
        if let Some(f) = self.log.as_mut() {
            let _ = writeln!(f, "{line}");
        }
    }

    /// Sends an event everywhere it goes.
    pub(crate) fn emit(&mut self, ev: Event) {
        if let Some(line) = ev.describe() {
            self.log_line(&line.tagged());
        }
        if let Some(w) = self.events.as_mut()
            && let Err(e) = w.append(&ev, unix_now())
        {
            let path = w.path().display().to_string();
            self.events = None;
            self.trouble(
                "events",
                format!(
                    "cannot write {path} ({e}); other processes no longer see this run's events"
                ),
            );
        }
        self.track(&ev);
        let _ = self.tx.send(ev);
    }

    /// A line for `log.txt` alone (what the monitor does not show).
    pub(crate) fn note(&mut self, text: &str) {
        self.log_line(&format!("[Info] {text}"));
    }

    /// A log line for the monitor and `log.txt`.
    pub(crate) fn log(&mut self, level: Level, text: String) {
        self.emit(Event::Log { level, text });
    }

    /// When this process took the run (Unix time; −∞ before it did): commands written before
    /// were meant for an earlier process.
    pub(crate) fn started(&self) -> f64 {
        self.status
            .as_ref()
            .map_or(f64::NEG_INFINITY, |s| s.started)
    }

    /// Rewrites `status.json` if its heartbeat is due (call it while nothing else happens: paused,
    /// validating, saving).
    pub(crate) fn heartbeat(&mut self) {
        if self
            .status_written
            .is_some_and(|t| t.elapsed() >= HEARTBEAT)
        {
            self.write_status();
        }
    }

    /// Folds an event into the status and writes it when due.
    fn track(&mut self, ev: &Event) {
        let Some(s) = self.status.as_mut() else {
            return;
        };
        let urgent = match ev {
            Event::Started(info) => {
                s.algorithm.clone_from(&info.algorithm);
                s.device.clone_from(&info.device);
                s.epochs = info.epochs;
                s.step = info.start_step;
                s.steps_per_epoch = info.steps_per_epoch;
                set(s, RunState::Running)
            }
            Event::Step(st) => {
                s.step = st.global_step;
                s.epoch = st.epoch;
                s.train_acc = Some(st.train_acc);
                s.ms_per_step = Some(st.ms_per_step);
                false
            }
            Event::Arch(a) => {
                s.arch = Some(a.clone());
                false
            }
            Event::Epoch(e) => {
                s.valid_acc = Some(e.valid_acc);
                // Epochs done (a step's `epoch` is the one in progress: as many are done).
                s.epoch = e.epoch + 1;
                true
            }
            Event::Paused { .. } => set(s, RunState::Paused),
            Event::Resumed => set(s, RunState::Running),
            Event::CheckpointSaved { global_step, .. } => {
                s.newest_checkpoint = Some(*global_step);
                false
            }
            Event::CheckpointFailed { failed, .. } => {
                s.saves_failed = *failed;
                true
            }
            Event::Finished {
                summary, stopped, ..
            } => {
                s.message = Some(summary.clone());
                set(
                    s,
                    if *stopped {
                        RunState::Stopped
                    } else {
                        RunState::Finished
                    },
                )
            }
            Event::Failed { message } => {
                s.message = Some(message.clone());
                set(s, RunState::Failed)
            }
            _ => false,
        };
        if urgent
            || self
                .status_written
                .is_none_or(|t| t.elapsed() >= STATUS_EVERY)
        {
            self.write_status();
        }
    }

    fn write_status(&mut self) {
        let (Some(s), Some(dir)) = (self.status.as_mut(), self.dir.as_ref()) else {
            return;
        };
        s.heartbeat = unix_now();
        let failed = s.write(dir).err().map(|e| {
            format!(
                "cannot write {}/status.json ({e}); other processes may see this run as stale",
                dir.display()
            )
        });
        self.status_written = Some(Instant::now());
        if let Some(text) = failed {
            self.trouble("status", text);
        }
    }

    /// Says a file problem once (in the log pane and `log.txt`).
    fn trouble(&mut self, what: &'static str, text: String) {
        if !self.said.contains(&what) {
            self.said.push(what);
            self.log(Level::Warn, text);
        }
    }
}

fn set(s: &mut Status, state: RunState) -> bool {
    s.state = state;
    true
}
