//! `<run>/commands/`: how another process steers a run. A command is a small JSON file
//! (`{"id": ..., "command": "pause"}`) written under a temporary name and renamed into place,
//! which is atomic on a local disk and on NFS, where sockets between hosts are not an option.
//! The owner takes the files between steps, in the order they were sent, acts, acknowledges
//! by id in the event log and removes them; a file it cannot parse is moved to `rejected/`.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::secure;
use crate::protocol::Command;

/// The inbox folder's name inside a run directory.
pub const COMMANDS_DIR: &str = "commands";

/// A command as it travels through the inbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verb {
    Pause,
    Resume,
    Checkpoint,
    Export,
    /// Save a checkpoint, then stop.
    Stop,
}

impl Verb {
    pub fn parse(s: &str) -> Option<Verb> {
        Some(match s {
            "pause" => Verb::Pause,
            "resume" => Verb::Resume,
            "checkpoint" => Verb::Checkpoint,
            "export" => Verb::Export,
            "stop" => Verb::Stop,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Verb::Pause => "pause",
            Verb::Resume => "resume",
            Verb::Checkpoint => "checkpoint",
            Verb::Export => "export",
            Verb::Stop => "stop",
        }
    }

    /// The worker command it becomes.
    pub fn command(self) -> Command {
        match self {
            Verb::Pause => Command::Pause,
            Verb::Resume => Command::Resume,
            Verb::Checkpoint => Command::Checkpoint,
            Verb::Export => Command::Export,
            Verb::Stop => Command::Stop { save: true },
        }
    }
}

/// The content of one command file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Unique per command: `<unix nanoseconds>-<pid>-<host>`, so names sort in sending order.
    pub id: String,
    pub command: Verb,
    /// Unix time (seconds) it was written. A command written before the process reading it took
    /// the run is not that process's to run (it was meant for an earlier one, which never took
    /// it): it is dropped. Absent (a command written by hand or by an older `ctl`): the file's
    /// modification time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written: Option<f64>,
}

/// One file taken from the inbox.
#[derive(Debug, Clone, PartialEq)]
pub enum Taken {
    Command(Envelope),
    /// A file that was not a command; it was moved to `commands/rejected/`.
    Rejected {
        file: PathBuf,
        reason: String,
    },
    /// The inbox itself cannot be trusted (a link in its place): nothing was read.
    Unreadable {
        reason: String,
    },
    /// A command written before the reading process took the run; removed, not to be run.
    Expired(Envelope),
    /// A command whose file could not be removed: the reader runs it unless it ran its id
    /// already (an id is never run twice).
    Stuck(Envelope),
}

/// Writes a command into `<run>/commands/` and returns its id. The folder is the run's (made as
/// it starts): a run directory without one is not written into. The file is written under a
/// hidden name nobody can guess, created exclusively, then renamed into place.
pub fn send(run_dir: &Path, verb: Verb) -> std::io::Result<String> {
    let dir = run_dir.join(COMMANDS_DIR);
    let m = fs::symlink_metadata(&dir).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!(
                "{} is missing ({e}); a run makes it as it starts (one started by an older nasp-tui has none)",
                dir.display()
            ),
        )
    })?;
    if !m.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} is not a folder (a link?): nothing sent", dir.display()),
        ));
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let host: String = super::status::host_name()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let id = format!("{nanos:020}-{}-{host}", std::process::id());
    let text = serde_json::to_string(&Envelope {
        id: id.clone(),
        command: verb,
        written: Some(super::status::unix_now()),
    })
    .map_err(std::io::Error::other)?;
    let dest = dir.join(format!("{id}.json"));
    // Readable by the run's owner when the sender is someone else of the run's group.
    let (mut f, tmp) = secure::create_temporary(&dest, 0o640)?;
    let done = f
        .write_all(text.as_bytes())
        .and_then(|()| fs::rename(&tmp, &dest));
    if done.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    done.map(|()| id)
}

/// Takes every command waiting in `<run>/commands/`, oldest first, removing each file (or
/// moving it to `rejected/` when it is not a command, or not a regular file: a link, a FIFO, a
/// folder). Files are opened without following links and without blocking, and read only up to
/// `secure::COMMAND_MAX` bytes. Hidden temporary files are left alone: their senders are still
/// writing them. An inbox that is not a folder of this user's (a link put in its place) is not
/// read at all.
pub fn take(run_dir: &Path) -> Vec<Taken> {
    take_since(run_dir, f64::NEG_INFINITY)
}

/// [`take`], dropping (and saying so as [`Taken::Expired`]) the commands written before Unix
/// time `not_before` (when the reading process took the run).
pub fn take_since(run_dir: &Path, not_before: f64) -> Vec<Taken> {
    let dir = run_dir.join(COMMANDS_DIR);
    if fs::symlink_metadata(&dir).is_err() {
        return Vec::new();
    }
    if !secure::own_dir(&dir) {
        return vec![Taken::Unreadable {
            reason: format!(
                "{} is not a folder of this user's (a link, or another user's): commands are not read from it; remove it and resume the run",
                dir.display()
            ),
        }];
    }
    let Ok(entries) = fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_none_or(|n| !n.starts_with('.') && n != REJECTED)
        })
        .map(|e| e.path())
        .collect();
    files.sort();
    files
        .into_iter()
        .filter_map(|p| take_one(&dir, &p, not_before))
        .collect()
}

/// Removes command `id` from `<run>/commands/` if it is still there (not taken by the run):
/// `Ok(true)` when it was withdrawn, `Ok(false)` when the run had taken it already.
pub fn withdraw(run_dir: &Path, id: &str) -> std::io::Result<bool> {
    match fs::remove_file(run_dir.join(COMMANDS_DIR).join(format!("{id}.json"))) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// The folder inside `commands/` where files that are not commands go.
pub const REJECTED: &str = "rejected";

fn take_one(dir: &Path, path: &Path, not_before: f64) -> Option<Taken> {
    let read = secure::open_read(path, secure::COMMAND_MAX).and_then(|f| {
        let mtime = f
            .metadata()?
            .modified()?
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let mut bytes = Vec::new();
        f.take(secure::COMMAND_MAX + 1).read_to_end(&mut bytes)?;
        Ok((bytes, mtime))
    });
    let (bytes, mtime) = match read {
        Ok(b) => b,
        // Removed meanwhile (its sender withdrew it): not ours to report.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => return Some(reject(dir, path, format!("not read ({e})"))),
    };
    match serde_json::from_slice::<Envelope>(&bytes) {
        Ok(mut env) => {
            let removed = fs::remove_file(path).is_ok();
            let written = *env.written.get_or_insert(mtime);
            if written < not_before {
                return Some(Taken::Expired(env));
            }
            Some(if removed {
                Taken::Command(env)
            } else {
                Taken::Stuck(env)
            })
        }
        // The reason names where the text went wrong, never what it says.
        Err(e) => {
            let what = match e.classify() {
                serde_json::error::Category::Data => "JSON, but not a command",
                _ => "not JSON",
            };
            Some(reject(
                dir,
                path,
                format!(
                    "not a command ({what}, at line {} column {}); expected {{\"id\": \"...\", \"command\": \"pause|resume|checkpoint|export|stop\"}}",
                    e.line(),
                    e.column()
                ),
            ))
        }
    }
}

/// Moves `path` to `<dir>/rejected/` (or removes it when that cannot be done).
fn reject(dir: &Path, path: &Path, reason: String) -> Taken {
    let rejected = dir.join(REJECTED);
    let name = path.file_name().map(PathBuf::from).unwrap_or_default();
    let dest = rejected.join(name);
    let moved = secure::make_dir(&rejected, 0o700).and_then(|()| fs::rename(path, &dest));
    if moved.is_err() {
        let _ = fs::remove_file(path).or_else(|_| fs::remove_dir(path));
    }
    Taken::Rejected { file: dest, reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sent_commands_come_out_in_order_once() {
        let run = tempfile::tempdir().unwrap();
        assert!(take(run.path()).is_empty(), "no inbox yet");
        assert!(
            send(run.path(), Verb::Pause).is_err(),
            "the run makes its inbox"
        );
        fs::create_dir(run.path().join(COMMANDS_DIR)).unwrap();
        let a = send(run.path(), Verb::Pause).unwrap();
        let b = send(run.path(), Verb::Stop).unwrap();
        assert!(a < b);
        // A sender still writing (hidden temporary name) is left alone.
        fs::write(run.path().join("commands/.x.tmp"), "{").unwrap();
        let got: Vec<(String, Verb)> = take(run.path())
            .into_iter()
            .map(|t| match t {
                // Each carries the time it was written.
                Taken::Command(e) if e.written.is_some_and(|t| t > 1e9) => (e.id, e.command),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(got, vec![(a, Verb::Pause), (b, Verb::Stop)]);
        assert!(take(run.path()).is_empty(), "each command is taken once");
        assert_eq!(Verb::Stop.command(), Command::Stop { save: true });
    }

    #[test]
    fn a_bad_file_is_moved_aside_with_a_reason() {
        let run = tempfile::tempdir().unwrap();
        fs::create_dir_all(run.path().join(COMMANDS_DIR)).unwrap();
        fs::write(
            run.path().join("commands/oops.json"),
            "{\"command\": \"dance\"}",
        )
        .unwrap();
        let got = take(run.path());
        let [Taken::Rejected { file, reason }] = got.as_slice() else {
            panic!("{got:?}");
        };
        assert!(file.ends_with("commands/rejected/oops.json"));
        assert!(file.is_file());
        assert!(reason.contains("not a command"), "{reason}");
        assert!(
            !reason.contains("dance"),
            "the file's text is not copied: {reason}"
        );
        assert!(take(run.path()).is_empty());
    }

    /// A link in the inbox's place is not followed (the folder it points to keeps its files);
    /// a FIFO, a link and a folder in the inbox are moved aside without being opened or waited
    /// on.
    #[test]
    fn links_and_fifos_are_not_followed_or_waited_on() {
        let run = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        fs::write(elsewhere.path().join("precious.json"), "{}").unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), run.path().join(COMMANDS_DIR)).unwrap();
        let got = take(run.path());
        assert!(
            matches!(got.as_slice(), [Taken::Unreadable { .. }]),
            "{got:?}"
        );
        assert!(elsewhere.path().join("precious.json").is_file());
        assert!(!elsewhere.path().join(REJECTED).exists());
        assert!(send(run.path(), Verb::Stop).is_err());
        assert_eq!(fs::read_dir(elsewhere.path()).unwrap().count(), 1);

        let run = tempfile::tempdir().unwrap();
        let inbox = run.path().join(COMMANDS_DIR);
        fs::create_dir(&inbox).unwrap();
        let made = std::process::Command::new("mkfifo")
            .arg(inbox.join("a-fifo.json"))
            .status();
        assert!(made.unwrap().success());
        std::os::unix::fs::symlink(elsewhere.path().join("precious.json"), inbox.join("b.json"))
            .unwrap();
        fs::create_dir(inbox.join("c.json")).unwrap();
        let t = std::time::Instant::now();
        let got = take(run.path());
        assert!(t.elapsed() < std::time::Duration::from_secs(2));
        let reasons: Vec<&str> = got
            .iter()
            .filter_map(|t| match t {
                Taken::Rejected { reason, .. } => Some(reason.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(reasons.len(), 3, "{got:?}");
        assert!(reasons[0].contains("FIFO"), "{reasons:?}");
        assert!(reasons[1].contains("symbolic link"), "{reasons:?}");
        assert!(reasons[2].contains("folder"), "{reasons:?}");
        assert!(inbox.join("rejected/a-fifo.json").exists());
        assert!(elsewhere.path().join("precious.json").is_file());
        assert!(take(run.path()).is_empty());
    }

    /// A command written before the reading process took the run is dropped (its file
    /// removed); one without a time is dated by its file. A command file of a gigabyte (sparse)
    /// is refused without being read. A command not yet taken can be withdrawn.
    #[test]
    fn old_commands_are_dropped_and_huge_ones_not_read() {
        let run = tempfile::tempdir().unwrap();
        let inbox = run.path().join(COMMANDS_DIR);
        fs::create_dir(&inbox).unwrap();
        fs::write(
            inbox.join("1.json"),
            r#"{"id": "old", "command": "stop", "written": 1000.0}"#,
        )
        .unwrap();
        fs::write(
            inbox.join("2.json"),
            r#"{"id": "undated", "command": "pause"}"#,
        )
        .unwrap();
        let now = super::super::status::unix_now();
        let got = take_since(run.path(), now + 60.0);
        assert!(
            matches!(got.as_slice(), [Taken::Expired(a), Taken::Expired(b)]
                if a.id == "old" && b.id == "undated" && b.written.is_some_and(|t| t > 1e9)),
            "{got:?}"
        );
        assert_eq!(fs::read_dir(&inbox).unwrap().count(), 0);
        let id = send(run.path(), Verb::Pause).unwrap();
        let got = take_since(run.path(), now - 60.0);
        assert!(
            matches!(got.as_slice(), [Taken::Command(e)] if e.id == id),
            "{got:?}"
        );
        // Withdrawn before the run took it; then there is nothing to withdraw.
        let id = send(run.path(), Verb::Stop).unwrap();
        assert!(withdraw(run.path(), &id).unwrap());
        assert!(!withdraw(run.path(), &id).unwrap());
        assert!(take(run.path()).is_empty());

        let huge = fs::File::create(inbox.join("3.json")).unwrap();
        huge.set_len(1 << 30).unwrap();
        let got = take(run.path());
        assert!(
            matches!(got.as_slice(), [Taken::Rejected { reason, .. }] if reason.contains("more than")),
            "{got:?}"
        );
    }
}
