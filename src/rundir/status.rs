//! `<run>/status.json`: where a run stands, for a process that did not start it (a watcher, the
//! runs table, `ls`, `ctl`). The owner replaces the whole file (written under a temporary name,
//! then renamed, so a reader on this host or over NFS sees the old or the new file, never half
//! of one) at each progress event and at least every [`HEARTBEAT`].

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::protocol::ArchSnapshot;

/// The file's name inside a run directory.
pub const STATUS_FILE: &str = "status.json";

/// The owner refreshes the heartbeat at least this often, even while paused.
pub const HEARTBEAT: Duration = Duration::from_secs(5);

/// A heartbeat older than this, from a process that is gone, marks the run STALE.
pub const STALE_AFTER: Duration = Duration::from_secs(30);

/// What the owning process says it is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    /// Loading data and building the model.
    Starting,
    Running,
    Paused,
    /// All epochs done, or `--max-steps` reached.
    Finished,
    /// Stopped by a user or a signal (resumable).
    Stopped,
    Failed,
}

impl RunState {
    /// Whether a process is (supposed to be) still working on the run.
    pub fn live(self) -> bool {
        matches!(
            self,
            RunState::Starting | RunState::Running | RunState::Paused
        )
    }
}

/// The state a reader shows: the owner's word, or STALE when the owner is gone without saying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    Said(RunState),
    Stale,
}

impl Shown {
    /// Upper-case label for tables (`RUNNING`, `STALE`, ...).
    pub fn label(self) -> &'static str {
        match self {
            Shown::Said(RunState::Starting) => "STARTING",
            Shown::Said(RunState::Running) => "RUNNING",
            Shown::Said(RunState::Paused) => "PAUSED",
            Shown::Said(RunState::Finished) => "FINISHED",
            Shown::Said(RunState::Stopped) => "STOPPED",
            Shown::Said(RunState::Failed) => "FAILED",
            Shown::Stale => "STALE",
        }
    }
}

/// The content of `status.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub state: RunState,
    pub pid: u32,
    pub host: String,
    /// Unix time (seconds) of the owner's last write.
    pub heartbeat: f64,
    /// Unix time the owning process started the run (this process, after a resume).
    pub started: f64,
    pub algorithm: String,
    pub device: String,
    /// Epochs done so far (the 0-based index of the epoch in progress).
    pub epoch: usize,
    pub epochs: usize,
    pub step: u64,
    pub steps_per_epoch: usize,
    pub train_acc: Option<f64>,
    pub valid_acc: Option<f64>,
    pub ms_per_step: Option<f64>,
    /// The latest architecture snapshot.
    pub arch: Option<ArchSnapshot>,
    /// The last line the run ended with (`Finished` summary or `Failed` message).
    #[serde(default)]
    pub message: Option<String>,
    /// Checkpoints of this process that could not be written.
    #[serde(default)]
    pub saves_failed: usize,
    /// The step of the newest checkpoint this process wrote.
    #[serde(default)]
    pub newest_checkpoint: Option<u64>,
    /// When the owning process started, in clock ticks after boot (`/proc/PID/stat`, field
    /// 22): with the pid, it names the process (a pid alone may be another process's after the
    /// owner died). 0: not known (a status written by an older nasp-tui).
    #[serde(default)]
    pub pid_start: u64,
    /// The boot the owning process ran in (`/proc/sys/kernel/random/boot_id`): after a reboot
    /// no process of the earlier boot lives. Empty: not known.
    #[serde(default)]
    pub boot_id: String,
}

/// The boot id of this machine (empty where the system does not say).
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// When process `pid` started, in clock ticks after boot (`None`: no such process, or no
/// `/proc`).
pub fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after its end.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Seconds since the Unix epoch, as `f64`.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// This machine's host name (empty if the system will not say).
#[allow(unsafe_code)]
pub fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for `len` bytes; gethostname writes at most that many.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return String::new();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Whether process `pid` exists on this host.
#[allow(unsafe_code)]
pub fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

impl Status {
    /// This process starting a run at Unix time `now`: nothing known yet but who owns it.
    pub fn starting(now: f64) -> Status {
        Status {
            state: RunState::Starting,
            pid: std::process::id(),
            host: host_name(),
            heartbeat: now,
            started: now,
            algorithm: String::new(),
            device: String::new(),
            epoch: 0,
            epochs: 0,
            step: 0,
            steps_per_epoch: 0,
            train_acc: None,
            valid_acc: None,
            ms_per_step: None,
            arch: None,
            message: None,
            saves_failed: 0,
            newest_checkpoint: None,
            pid_start: process_start(std::process::id()).unwrap_or(0),
            boot_id: boot_id(),
        }
    }

    /// Whether the owner is still there: a live state, and on this host (where it can be
    /// checked) the very process that wrote it (same boot, its pid alive with the start time it
    /// recorded), on another host a recent heartbeat (one from the future counts as now). So a
    /// run killed here (SIGKILL, the OOM killer) is STALE at once, and can be resumed at once;
    /// so is a run whose pid another process has taken after a reboot.
    pub fn owner_alive(&self, now: f64) -> bool {
        if !self.state.live() {
            return false;
        }
        if self.host == host_name() {
            return self.is_here();
        }
        now - self.heartbeat.min(now) < STALE_AFTER.as_secs_f64()
    }

    /// Whether the process this status names is running on this machine: same boot, pid alive,
    /// and (where recorded) the same start time.
    pub fn is_here(&self) -> bool {
        if !self.boot_id.is_empty() && self.boot_id != boot_id() {
            return false;
        }
        if self.pid_start == 0 {
            return pid_alive(self.pid);
        }
        process_start(self.pid) == Some(self.pid_start)
    }

    /// What a reader shows at time `now`.
    pub fn shown(&self, now: f64) -> Shown {
        if self.state.live() && !self.owner_alive(now) {
            Shown::Stale
        } else {
            Shown::Said(self.state)
        }
    }

    /// Replaces `<dir>/status.json` atomically (through a temporary file nobody can guess or
    /// plant, see `secure::replace`).
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string(self).map_err(std::io::Error::other)?;
        super::replace(&dir.join(STATUS_FILE), text.as_bytes())
    }

    /// Reads `<dir>/status.json` (a regular file of at most `secure::STATUS_MAX` bytes, not
    /// through a link); `Ok(None)` when there is none yet. A heartbeat later than the file's
    /// modification time (the writer's clock ahead of the file system's: another node's) is
    /// clamped to it, so that a dead run's heartbeat does not stay fresh for the clocks'
    /// difference.
    pub fn read(dir: &Path) -> Result<Option<Status>, StatusError> {
        let path = dir.join(STATUS_FILE);
        let read = super::secure::open_read(&path, super::secure::STATUS_MAX).and_then(|f| {
            let mtime = f
                .metadata()?
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_secs_f64());
            let mut text = String::new();
            std::io::Read::read_to_string(
                &mut std::io::Read::take(f, super::secure::STATUS_MAX),
                &mut text,
            )?;
            Ok((text, mtime))
        });
        match read {
            Ok((text, mtime)) => serde_json::from_str::<Status>(&text)
                .map(|mut s| {
                    // A second's grace: file systems keep coarser times than the heartbeat.
                    if let Some(m) = mtime.filter(|m| s.heartbeat > m + 1.0) {
                        s.heartbeat = m;
                    }
                    Some(s)
                })
                .map_err(|e| StatusError::Corrupt {
                    path,
                    reason: e.to_string(),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StatusError::Read { path, source }),
        }
    }
}

/// A `status.json` that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a run status ({reason}); remove it if no process owns the run")]
    Corrupt { path: PathBuf, reason: String },
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn status(state: RunState, pid: u32, host: &str, heartbeat: f64) -> Status {
        Status {
            state,
            pid,
            host: host.into(),
            heartbeat,
            started: heartbeat,
            algorithm: "nasp".into(),
            device: "cpu".into(),
            epoch: 0,
            epochs: 50,
            step: 12,
            steps_per_epoch: 100,
            train_acc: Some(0.5),
            valid_acc: None,
            ms_per_step: Some(300.0),
            arch: None,
            message: None,
            saves_failed: 0,
            newest_checkpoint: None,
            pid_start: 0,
            boot_id: String::new(),
        }
    }

    /// A pid that is alive but not the owner's process (its start time differs: the pid was
    /// reused, say after a reboot), or a status from another boot: STALE. A heartbeat from the
    /// future, in a file written long ago: clamped to the file's time, STALE.
    ///
    /// Before: the live pid kept the run RUNNING for ever (resume refused, no way out), and a
    /// heartbeat ahead of the clocks kept a dead run of another node alive.
    #[test]
    fn the_owner_is_a_process_not_a_pid() {
        let now = unix_now();
        let me = host_name();
        let mut mine = Status::starting(now);
        mine.state = RunState::Running;
        assert!(mine.pid_start > 0 && !mine.boot_id.is_empty());
        assert!(mine.owner_alive(now));
        // This process's pid, another process's start time: the pid was reused.
        let reused = Status {
            pid_start: mine.pid_start + 1,
            ..mine.clone()
        };
        assert_eq!(reused.shown(now).label(), "STALE");
        let other_boot = Status {
            boot_id: "00000000-0000-0000-0000-000000000000".into(),
            ..mine.clone()
        };
        assert_eq!(other_boot.shown(now).label(), "STALE");
        // Written by an older nasp-tui (no start time): the pid alone, as before.
        let old = status(RunState::Running, std::process::id(), &me, now);
        assert!(old.owner_alive(now));

        let dir = tempfile::tempdir().unwrap();
        let far = status(
            RunState::Running,
            1,
            "some-other-node",
            now + 3.0 * 86_400.0,
        );
        far.write(dir.path()).unwrap();
        let f = fs::File::options()
            .write(true)
            .open(dir.path().join(STATUS_FILE))
            .unwrap();
        f.set_modified(std::time::SystemTime::now() - Duration::from_secs(3600))
            .unwrap();
        let read = Status::read(dir.path()).unwrap().unwrap();
        assert!(read.heartbeat < now - 3000.0, "{}", read.heartbeat);
        assert_eq!(read.shown(now).label(), "STALE");
        // Even unclamped, a heartbeat from the future is no fresher than now.
        assert!(far.owner_alive(now));
        assert!(!far.owner_alive(now + 3.0 * 86_400.0 + 31.0));
    }

    #[test]
    fn round_trip_and_atomic_replace() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Status::read(dir.path()).unwrap().is_none());
        // (A whole second: JSON need not round-trip every f64 to the last bit.)
        let s = status(
            RunState::Running,
            std::process::id(),
            &host_name(),
            unix_now().floor(),
        );
        s.write(dir.path()).unwrap();
        assert_eq!(Status::read(dir.path()).unwrap(), Some(s.clone()));
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file left");
        // A link planted where the temporary file used to be (its name was predictable) is
        // not written through.
        let victim = dir.path().join("victim");
        fs::write(&victim, "mine").unwrap();
        let planted = dir
            .path()
            .join(format!(".{STATUS_FILE}.{}", std::process::id()));
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        s.write(dir.path()).unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "mine");
        fs::remove_file(&planted).unwrap();
        fs::remove_file(&victim).unwrap();
        fs::write(dir.path().join(STATUS_FILE), "{ half").unwrap();
        let e = Status::read(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("status.json") && e.contains("not a run status"),
            "{e}"
        );
    }

    #[test]
    fn stale_when_the_owner_is_gone() {
        let now = unix_now();
        let me = host_name();
        // This process: alive.
        let live = status(RunState::Running, std::process::id(), &me, now);
        assert_eq!(live.shown(now), Shown::Said(RunState::Running));
        // A pid that cannot exist on this host, with an old heartbeat: stale.
        let gone = status(RunState::Running, 999_999_999, &me, now - 100.0);
        assert_eq!(gone.shown(now).label(), "STALE");
        // Killed a moment ago (its heartbeat is fresh): stale at once, the pid tells.
        let killed = status(RunState::Running, 999_999_999, &me, now - 1.0);
        assert_eq!(killed.shown(now).label(), "STALE");
        // Another host: only the heartbeat tells.
        let far = status(RunState::Paused, 1, "some-other-node", now - 5.0);
        assert_eq!(far.shown(now), Shown::Said(RunState::Paused));
        assert_eq!(far.shown(now + 60.0), Shown::Stale);
        // An ended run is never stale.
        let done = status(RunState::Finished, 999_999_999, &me, now - 1e6);
        assert_eq!(done.shown(now).label(), "FINISHED");
    }
}
