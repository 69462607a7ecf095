//! `<run>/commands/`: how another process steers a run. A command is a small JSON file
//! (`{"id": ..., "command": "pause"}`) written under a temporary name and renamed into place,
//! which is atomic on a local disk and on NFS, where sockets between hosts are not an option.
//! The owner takes the files between steps, in the order they were sent, acts, acknowledges
//! by id in the event log and removes them; a file it cannot parse is moved to `rejected/`.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Unique per command: `<unix nanoseconds>-<pid>-<host>`, so names sort in sending order.
    pub id: String,
    pub command: Verb,
}

/// One file taken from the inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    Command(Envelope),
    /// A file that was not a command; it was moved to `commands/rejected/`.
    Rejected {
        file: PathBuf,
        reason: String,
    },
}

/// Writes a command into `<run>/commands/` and returns its id.
pub fn send(run_dir: &Path, verb: Verb) -> std::io::Result<String> {
    let dir = run_dir.join(COMMANDS_DIR);
    fs::create_dir_all(&dir)?;
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
    })
    .map_err(std::io::Error::other)?;
    let tmp = dir.join(format!(".{id}.tmp"));
    fs::write(&tmp, text)?;
    fs::rename(&tmp, dir.join(format!("{id}.json")))?;
    Ok(id)
}

/// Takes every command waiting in `<run>/commands/`, oldest first, removing each file (or
/// moving it to `rejected/` when it is not a command). Hidden temporary files are left alone:
/// their senders are still writing them.
pub fn take(run_dir: &Path) -> Vec<Taken> {
    let dir = run_dir.join(COMMANDS_DIR);
    let Ok(entries) = fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| !n.starts_with('.'))
        })
        .collect();
    files.sort();
    files
        .into_iter()
        .filter_map(|p| take_one(&dir, &p))
        .collect()
}

fn take_one(dir: &Path, path: &Path) -> Option<Taken> {
    // Read errors (a file removed meanwhile) are not ours to report.
    let text = fs::read_to_string(path).ok()?;
    match serde_json::from_str::<Envelope>(&text) {
        Ok(env) => {
            let _ = fs::remove_file(path);
            Some(Taken::Command(env))
        }
        Err(e) => {
            let rejected = dir.join("rejected");
            let dest = rejected.join(path.file_name()?);
            let moved = fs::create_dir_all(&rejected).and_then(|()| fs::rename(path, &dest));
            if moved.is_err() {
                let _ = fs::remove_file(path);
            }
            Some(Taken::Rejected {
                file: dest,
                reason: format!(
                    "not a command ({e}); expected {{\"id\": \"...\", \"command\": \"pause|resume|checkpoint|export|stop\"}}"
                ),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sent_commands_come_out_in_order_once() {
        let run = tempfile::tempdir().unwrap();
        assert!(take(run.path()).is_empty(), "no inbox yet");
        let a = send(run.path(), Verb::Pause).unwrap();
        let b = send(run.path(), Verb::Stop).unwrap();
        assert!(a < b);
        // A sender still writing (hidden temporary name) is left alone.
        fs::write(run.path().join("commands/.x.tmp"), "{").unwrap();
        let got = take(run.path());
        assert_eq!(
            got,
            vec![
                Taken::Command(Envelope {
                    id: a,
                    command: Verb::Pause
                }),
                Taken::Command(Envelope {
                    id: b,
                    command: Verb::Stop
                }),
            ]
        );
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
        assert!(take(run.path()).is_empty());
    }
}
