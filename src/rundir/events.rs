//! `<run>/events.jsonl`: the run's events, one JSON object per line (`seq`, `time`, `event`),
//! appended by the one process that owns the run. Readers (a watcher, a replay, the runs table)
//! keep a byte offset and take only complete lines, so a line being written is read on the next
//! poll; a garbage or truncated line (a crash mid-write, a disk that filled up) is skipped with
//! a warning. Plain polling: file-change notification does not see writes from other NFS hosts.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The file's name inside a run directory.
pub const EVENTS_FILE: &str = "events.jsonl";

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record<E> {
    /// 1, 2, 3, ... in the order written (continues across a resume).
    pub seq: u64,
    /// Unix time (seconds) when it was written.
    pub time: f64,
    pub event: E,
}

/// Appends records to `events.jsonl`. Each record is written with one `write` call of a complete
/// line, so a reader never sees a record cut in two except at the very end of the file.
pub struct EventWriter {
    file: File,
    path: PathBuf,
    seq: u64,
}

impl EventWriter {
    /// Opens (or, on resume, continues) `<dir>/events.jsonl`; numbering goes on from the last
    /// readable record.
    pub fn open(dir: &Path) -> std::io::Result<EventWriter> {
        let path = dir.join(EVENTS_FILE);
        let seq = last_seq(&path);
        let mut file = super::open_append(&path)?;
        // A line cut short by a crash must not glue itself to the next record.
        if file.metadata()?.len() > 0 && !ends_with_newline(&path) {
            file.write_all(b"\n")?;
        }
        Ok(EventWriter { file, path, seq })
    }

    /// Appends one record; returns its sequence number.
    pub fn append<E: Serialize>(&mut self, event: &E, time: f64) -> std::io::Result<u64> {
        let seq = self.seq + 1;
        let mut line =
            serde_json::to_vec(&Record { seq, time, event }).map_err(std::io::Error::other)?;
        line.push(b'\n');
        self.file.write_all(&line)?;
        self.seq = seq;
        Ok(seq)
    }

    /// Bytes written so far (the file's length).
    pub fn len(&self) -> u64 {
        self.file.metadata().map_or(0, |m| m.len())
    }

    /// Whether nothing has been written.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn ends_with_newline(path: &Path) -> bool {
    let Ok(mut f) = super::secure::open_read(path, u64::MAX) else {
        return true;
    };
    let mut last = [0u8; 1];
    f.seek(SeekFrom::End(-1)).is_ok() && f.read_exact(&mut last).is_ok() && last[0] == b'\n'
}

/// The sequence number of the last readable record of `path` (0 if none).
fn last_seq(path: &Path) -> u64 {
    let mut reader = EventReader::new(path);
    let mut last = 0;
    loop {
        let batch = reader.poll::<serde::de::IgnoredAny>();
        if batch.records.is_empty() && batch.warnings.is_empty() {
            return last;
        }
        if let Some(r) = batch.records.last() {
            last = r.seq;
        }
    }
}

/// What one poll found.
#[derive(Debug)]
pub struct Batch<E> {
    pub records: Vec<E>,
    /// Lines that could not be read, each named by its byte offset.
    pub warnings: Vec<String>,
    /// The file got shorter than what was read before (replaced): reading started over.
    pub restarted: bool,
}

/// Reads the complete lines added since the last poll.
pub struct EventReader {
    path: PathBuf,
    offset: u64,
    /// Bytes read past the last newline (a line still being written).
    partial: Vec<u8>,
    /// Inside a line longer than [`LINE_MAX`]: its bytes are dropped up to its newline.
    skipping: bool,
}

/// The longest line read: a run's events take a few kilobytes; a longer "line" is not the run's
/// and is skipped (with a warning) instead of being kept in memory while it grows.
pub const LINE_MAX: usize = 1 << 20;

/// At most this many bytes are read per poll, so that opening a long run reads in slices.
const POLL_BYTES: usize = 8 << 20;

impl EventReader {
    pub fn new(path: &Path) -> EventReader {
        EventReader {
            path: path.to_path_buf(),
            offset: 0,
            partial: Vec::new(),
            skipping: false,
        }
    }

    /// The records of the complete lines that arrived since the last call (up to a few MB per
    /// call: call again while it returns records). A missing file reads as empty (a watcher
    /// started before the run's first event waits for it).
    pub fn poll<E: DeserializeOwned>(&mut self) -> Batch<Record<E>> {
        let mut batch = Batch {
            records: Vec::new(),
            warnings: Vec::new(),
            restarted: false,
        };
        // Not through a link, not a FIFO (which would block), only a regular file.
        let Ok(mut f) = super::secure::open_read(&self.path, u64::MAX) else {
            return batch;
        };
        let len = f.metadata().map_or(0, |m| m.len());
        if len < self.offset {
            self.offset = 0;
            self.partial.clear();
            self.skipping = false;
            batch.restarted = true;
        }
        if len == self.offset || f.seek(SeekFrom::Start(self.offset)).is_err() {
            return batch;
        }
        let want = usize::try_from(len - self.offset)
            .unwrap_or(POLL_BYTES)
            .min(POLL_BYTES);
        let mut buf = vec![0u8; want];
        let Ok(n) = f.read(&mut buf) else {
            return batch;
        };
        buf.truncate(n);
        let start = self.offset - self.partial.len() as u64;
        self.offset += n as u64;
        let mut data = std::mem::take(&mut self.partial);
        data.extend_from_slice(&buf);
        let mut start = start;
        if self.skipping {
            // The rest of an overlong line: dropped up to its newline.
            let Some(nl) = data.iter().position(|b| *b == b'\n') else {
                return batch;
            };
            data.drain(..=nl);
            start = self.offset - data.len() as u64;
            self.skipping = false;
        }
        let Some(end) = data.iter().rposition(|b| *b == b'\n') else {
            if data.len() > LINE_MAX {
                batch.warnings.push(format!(
                    "{}: skipped a line of more than {LINE_MAX} bytes at byte {start}",
                    self.path.display()
                ));
                self.skipping = true;
            } else {
                self.partial = data;
            }
            return batch;
        };
        self.partial = data[end + 1..].to_vec();
        let mut at = start;
        for line in data[..end].split(|b| *b == b'\n') {
            let here = at;
            at += line.len() as u64 + 1;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<Record<E>>(line) {
                Ok(r) => batch.records.push(r),
                Err(e) => batch.warnings.push(format!(
                    "{}: skipped an unreadable line at byte {here} ({e})",
                    self.path.display()
                )),
            }
        }
        batch
    }

    /// Reads everything there is now (for a replay).
    pub fn read_all<E: DeserializeOwned>(&mut self) -> Batch<Record<E>> {
        let mut all = self.poll::<E>();
        loop {
            let more = self.poll::<E>();
            if more.records.is_empty() && more.warnings.is_empty() {
                return all;
            }
            all.records.extend(more.records);
            all.warnings.extend(more.warnings);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    enum Ev {
        A(u32),
        B { text: String },
    }

    #[test]
    fn complete_lines_only_and_garbage_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = EventReader::new(&dir.path().join(EVENTS_FILE));
        assert!(
            r.poll::<Ev>().records.is_empty(),
            "no file yet: nothing, no error"
        );
        let mut w = EventWriter::open(dir.path()).unwrap();
        assert_eq!(w.append(&Ev::A(1), 10.0).unwrap(), 1);
        let got = r.poll::<Ev>();
        assert_eq!(got.records.len(), 1);
        assert_eq!(got.records[0].event, Ev::A(1));
        // A half-written line is not read until its newline arrives.
        let path = w.path().to_path_buf();
        let mut raw = OpenOptions::new().append(true).open(&path).unwrap();
        raw.write_all(b"{\"seq\":2,\"time\":1.0,\"event\":{\"A\":")
            .unwrap();
        assert!(r.poll::<Ev>().records.is_empty());
        raw.write_all(b"2}}\nnot json at all\n").unwrap();
        let got = r.poll::<Ev>();
        assert_eq!(got.records.len(), 1);
        assert_eq!(got.records[0].seq, 2);
        assert_eq!(got.warnings.len(), 1, "{:?}", got.warnings);
        assert!(got.warnings[0].contains("events.jsonl"));
        // A crash mid-line: the next writer starts a fresh line and numbers on.
        raw.write_all(b"{\"seq\":3,\"ti").unwrap();
        drop(w);
        let mut w = EventWriter::open(dir.path()).unwrap();
        assert_eq!(
            w.append(&Ev::B { text: "x".into() }, 11.0).unwrap(),
            3,
            "numbering continues after the last readable record"
        );
        let got = r.poll::<Ev>();
        assert_eq!(got.records.len(), 1);
        assert_eq!(got.records[0].event, Ev::B { text: "x".into() });
        assert_eq!(got.warnings.len(), 1, "the cut line is skipped");
    }

    #[test]
    fn a_replaced_file_is_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = EventWriter::open(dir.path()).unwrap();
        for i in 0..3 {
            w.append(&Ev::A(i), 0.0).unwrap();
        }
        let mut r = EventReader::new(w.path());
        assert_eq!(r.read_all::<Ev>().records.len(), 3);
        std::fs::write(w.path(), "{\"seq\":1,\"time\":0.0,\"event\":{\"A\":9}}\n").unwrap();
        let got = r.poll::<Ev>();
        assert!(got.restarted);
        assert_eq!(got.records[0].event, Ev::A(9));
    }

    /// A line that never ends is not kept in memory as it grows: past `LINE_MAX` it is
    /// skipped with a warning, and the records after its newline are read. A link or a FIFO in
    /// the log's place is not read (nor waited on).
    #[test]
    fn an_endless_line_is_skipped_and_a_fifo_is_not_waited_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(EVENTS_FILE);
        let mut raw = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap();
        let mut r = EventReader::new(&path);
        let chunk = vec![b'x'; LINE_MAX / 2 + 1];
        let mut warned = 0;
        for _ in 0..6 {
            raw.write_all(&chunk).unwrap();
            warned += r.poll::<Ev>().warnings.len();
            assert!(r.partial.len() <= LINE_MAX, "{}", r.partial.len());
        }
        assert_eq!(warned, 1);
        raw.write_all(b"\n{\"seq\":1,\"time\":0.0,\"event\":{\"A\":5}}\n")
            .unwrap();
        let got = r.poll::<Ev>();
        assert_eq!(got.records.len(), 1, "{:?}", got.warnings);
        assert_eq!(got.records[0].event, Ev::A(5));
        std::fs::remove_file(&path).unwrap();
        let made = std::process::Command::new("mkfifo").arg(&path).status();
        assert!(made.unwrap().success());
        let mut r = EventReader::new(&path);
        assert!(r.poll::<Ev>().records.is_empty());
    }
}
