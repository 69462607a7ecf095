//! Reading a run directory for the watcher: which way to open it (live or replay), the whole
//! event log for a replay, and the run's facts (`Started`) for the runs table.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use crate::app::{App, KeyMap};
use crate::protocol::{Event, Level, RunInfo};
use crate::rundir::events::{EVENTS_FILE, EventReader, Record};
use crate::rundir::status::{Shown, Status, unix_now};

/// How a run opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opening {
    /// A process works on it (or none has written a status yet): follow it.
    Live,
    /// Finished, stopped, failed or STALE: replay it. The string says which.
    Replay(&'static str),
}

/// Live when its status says a live owner (or there is no status yet: a run about to start).
pub fn opening(dir: &Path) -> Opening {
    match Status::read(dir) {
        Ok(None) => Opening::Live,
        Ok(Some(s)) => match s.shown(unix_now()) {
            Shown::Said(st) if st.live() => Opening::Live,
            shown => Opening::Replay(shown.label()),
        },
        Err(_) => Opening::Replay("?"),
    }
}

/// A replay of the whole event log of `dir`; unreadable lines become warnings in the log pane.
pub fn replay(dir: &Path, keymap: KeyMap, why: &str) -> App {
    let path = dir.join(EVENTS_FILE);
    let batch = EventReader::new(&path).read_all::<Event>();
    let mut notes = vec![(
        Level::Info,
        format!(
            "replay of {} ({why}): {} events; the cursor keys move through it",
            dir.display(),
            batch.records.len()
        ),
    )];
    if let Err(e) = Status::read(dir) {
        notes.push((Level::Warn, e.to_string()));
    }
    notes.extend(batch.warnings.into_iter().map(|w| (Level::Warn, w)));
    if let Some(n) = cut_short(&path) {
        notes.push((
            Level::Warn,
            format!(
                "{}: the last line is cut short ({n} bytes): skipped",
                path.display()
            ),
        ));
    }
    let events = batch
        .records
        .into_iter()
        .map(|Record { time, event, .. }| (time, event))
        .collect();
    App::replay(keymap, events, notes)
}

/// The length of a last line without its newline (a writer that died mid-line), if any.
fn cut_short(path: &Path) -> Option<usize> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(1 << 16))).ok()?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes).ok()?;
    let start = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let tail = &bytes[start..];
    (!tail.iter().all(u8::is_ascii_whitespace)).then_some(tail.len())
}

/// The run's `Started` facts: op names and nodes (from the first lines of its event log).
pub fn run_info(dir: &Path) -> Option<RunInfo> {
    let f = File::open(dir.join(EVENTS_FILE)).ok()?;
    BufReader::new(f)
        .lines()
        .take(16)
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str::<Record<Event>>(&l).ok())
        .find_map(|r| match r.event {
            Event::Started(i) => Some(i),
            _ => None,
        })
}
