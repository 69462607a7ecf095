//! The files a run writes (design §6): `config.toml`, `metrics.jsonl` (its lines: `metrics`),
//! `log.txt`, `genotypes/`;
//! and the run directory as an interface for other processes (design §9): the event log
//! (`events`), the status file (`status`) and the command inbox (`inbox`). Plain file I/O, no
//! tensors.

pub mod events;
pub mod genotypes;
pub mod inbox;
pub mod listing;
pub mod metrics;
pub mod secure;
pub mod status;

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::config::Share;
use crate::genotype::Genotype;
use secure::Modes;

/// A run directory, opened for appending (its `log.txt` is written by whoever reports the
/// run's events: `engine::worker`'s sink).
pub struct RunDir {
    pub path: PathBuf,
    metrics: File,
}

/// A file of the run directory that cannot be made or written.
#[derive(Debug, thiserror::Error)]
pub enum RunDirError {
    #[error("cannot create run directory {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// `s` as it may reach a terminal: control characters (C0, DEL, C1: escape sequences, a bell,
/// a carriage return that hides what precedes it) and the bidirectional overrides that reorder
/// text are written as `\x1b`, `\u{202e}`, ... so that text read from a file (a run's name, its
/// status, a genotype) can neither set a window title, write the clipboard (OSC 52), clear the
/// screen, nor show something other than what it is. The one place the line commands make file
/// text printable.
pub fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let bidi = matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        if (c.is_control() && c != '\t') || bidi {
            let n = u32::from(c);
            if n < 0x100 {
                out.push_str(&format!("\\x{n:02x}"));
            } else {
                out.push_str(&format!("\\u{{{n:x}}}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// [`printable`], keeping the line breaks of a text of several lines.
pub fn printable_lines(s: &str) -> String {
    s.split('\n').map(printable).collect::<Vec<_>>().join("\n")
}

/// A path as it may reach a terminal (see [`printable`]; bytes that are not UTF-8 as `\u{fffd}`'s
/// replacement character).
pub fn printable_path(p: &Path) -> String {
    printable(&p.to_string_lossy())
}

/// Opens `<dir>/log.txt` for appending (never through a link, with the run directory's file
/// mode).
pub fn open_log(dir: &Path) -> Result<File, RunDirError> {
    let path = dir.join("log.txt");
    open_append(&path).map_err(|source| RunDirError::Create { path, source })
}

/// Where runs go by default: `<user data dir>/runs` (e.g. `~/.local/share/nasp-tui/runs`;
/// `XDG_DATA_HOME` moves it).
pub fn runs_root() -> PathBuf {
    directories::ProjectDirs::from("", "", "nasp-tui")
        .map(|p| p.data_dir().join("runs"))
        .unwrap_or_else(|| PathBuf::from("runs"))
}

/// The default run directory: `<runs root>/<timestamp>-<algorithm>` (with `-2`, `-3`, ... when
/// a run started in the same second has the name).
pub fn default_run_dir(algorithm: &str) -> PathBuf {
    let base = runs_root();
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let name = format!("{}-{algorithm}", timestamp(secs));
    let mut dir = base.join(&name);
    let mut k = 2;
    while dir.exists() {
        dir = base.join(format!("{name}-{k}"));
        k += 1;
    }
    dir
}

/// The files in `dir` that show a run was started there (a search or a training writes them as
/// it starts: `status.json`, `events.jsonl`, `metrics.jsonl`; `checkpoints/` as it saves), in
/// that order; empty when there are none. A folder holding only `config.toml` is a sweep's run
/// that has not started.
pub fn run_traces(dir: &Path) -> Vec<&'static str> {
    [
        (status::STATUS_FILE, false),
        (events::EVENTS_FILE, false),
        ("metrics.jsonl", false),
        ("checkpoints", true),
    ]
    .into_iter()
    .filter(|(name, folder)| {
        fs::symlink_metadata(dir.join(name)).is_ok_and(|m| !*folder || m.is_dir())
    })
    .map(|(name, folder)| if folder { "checkpoints/" } else { name })
    .collect()
}

/// `YYYYMMDD-HHMMSS` (UTC) for a Unix time.
pub fn timestamp(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Opens a file of a run directory for appending (see [`secure::open_append`]: never through a
/// link, only a regular file of this user's), with the mode of the folder it is in.
pub fn open_append(path: &Path) -> std::io::Result<File> {
    let mode = Modes::within(path.parent().unwrap_or(Path::new("."))).file;
    secure::open_append(path, mode)
}

/// Replaces a file of a run directory (see [`secure::replace`]), with the mode of the folder it
/// is in.
pub fn replace(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mode = Modes::within(path.parent().unwrap_or(Path::new("."))).file;
    secure::replace(path, bytes, mode)
}

impl RunDir {
    /// Reopens a run directory (keeping who may read it).
    pub fn open(path: &Path) -> Result<RunDir, RunDirError> {
        let share = if Modes::within(path) == Modes::of(Share::Owner) {
            Share::Owner
        } else {
            Share::GroupRead
        };
        RunDir::create(path, share)
    }

    /// Creates (or reopens, on resume) the run directory with the modes `share` asks for, and
    /// its `genotypes/` and `commands/` (the inbox is the run's: made by the run, not by the
    /// first process that sends a command).
    pub fn create(path: &Path, share: Share) -> Result<RunDir, RunDirError> {
        let err = |p: &Path| {
            let path = p.to_path_buf();
            move |source| RunDirError::Create { path, source }
        };
        let modes = Modes::of(share);
        secure::make_dir(path, modes.dir).map_err(err(path))?;
        let genotypes = path.join("genotypes");
        secure::make_dir(&genotypes, modes.dir).map_err(err(&genotypes))?;
        let inbox = path.join(inbox::COMMANDS_DIR);
        secure::make_dir(&inbox, modes.inbox).map_err(err(&inbox))?;
        let m = path.join("metrics.jsonl");
        let metrics = open_append(&m).map_err(err(&m))?;
        Ok(RunDir {
            path: path.to_path_buf(),
            metrics,
        })
    }

    /// Writes the resolved config.
    pub fn write_config(&self, toml: &str) -> Result<(), RunDirError> {
        let path = self.path.join("config.toml");
        replace(&path, toml.as_bytes()).map_err(|source| RunDirError::Write { path, source })
    }

    /// Appends one line to `metrics.jsonl` (the only writer of its lines).
    pub fn metric(&mut self, line: &metrics::Line) {
        if let Ok(text) = serde_json::to_string(line) {
            let _ = writeln!(self.metrics, "{text}");
        }
    }

    /// Writes the genotype of step `global_step` in both formats as `genotypes/<stem>.txt` and
    /// `.json`, and notes the pair in `genotypes/index.jsonl` (so that `export` can tell which
    /// file holds the newest genotype).
    pub fn write_genotype(
        &self,
        stem: &str,
        g: &Genotype,
        global_step: u64,
    ) -> Result<Vec<PathBuf>, RunDirError> {
        let dir = self.path.join("genotypes");
        let txt = dir.join(format!("{stem}.txt"));
        let json = dir.join(format!("{stem}.json"));
        for (path, text) in [(&txt, format!("{g}\n")), (&json, g.to_json() + "\n")] {
            replace(path, text.as_bytes()).map_err(|source| RunDirError::Write {
                path: path.clone(),
                source,
            })?;
        }
        let index = dir.join(genotypes::INDEX);
        let entry = genotypes::Entry {
            step: global_step,
            file: format!("{stem}.json"),
        };
        let line = serde_json::to_string(&entry).unwrap_or_default();
        open_append(&index)
            .and_then(|mut f| writeln!(f, "{line}"))
            .map_err(|source| RunDirError::Write {
                path: index,
                source,
            })?;
        Ok(vec![txt, json])
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn printable_text_carries_no_escapes() {
        let evil =
            "run\x1b]0;title\x07\x1b]52;c;cGF5bG9hZA==\x07\x1b[2J\r\u{9b}31m\u{202e}gpj.exe\ttab é";
        let p = super::printable(evil);
        assert!(!p.chars().any(|c| c.is_control() && c != '\t'), "{p:?}");
        assert_eq!(
            p,
            "run\\x1b]0;title\\x07\\x1b]52;c;cGF5bG9hZA==\\x07\\x1b[2J\\x0d\\x9b31m\\u{202e}gpj.exe\ttab é"
        );
        assert_eq!(super::printable("plain/name-1"), "plain/name-1");
    }

    #[test]
    fn timestamp_format() {
        assert_eq!(super::timestamp(0), "19700101-000000");
        assert_eq!(super::timestamp(1_795_000_000), "20261118-110640");
    }
}
