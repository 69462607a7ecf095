//! Finding runs: the run directories under a root (one level of sweep folders included), each
//! with its `status.json` when it has one. `ls`, `watch` and the runs table read this.

use std::fs;
use std::path::{Path, PathBuf};

use super::status::Status;

/// One run found on disk.
#[derive(Debug)]
pub struct Listed {
    pub path: PathBuf,
    /// `None`: a run written before runs kept a status (or one that has not started yet).
    pub status: Option<Status>,
    /// A `status.json` that could not be read.
    pub problem: Option<String>,
    /// Unix time of the run's last sign of life (heartbeat, else the directory's mtime).
    pub last_seen: f64,
    /// Unix time the run started (status), else the directory's mtime.
    pub started: f64,
}

/// Whether `dir` is a run directory (what a search writes first).
pub fn is_run_dir(dir: &Path) -> bool {
    dir.join(super::status::STATUS_FILE).is_file() || dir.join("config.toml").is_file()
}

fn mtime(p: &Path) -> f64 {
    fs::metadata(p)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Reads one run directory.
pub fn read_run(dir: &Path) -> Listed {
    let (status, problem) = match Status::read(dir) {
        Ok(s) => (s, None),
        Err(e) => (None, Some(e.to_string())),
    };
    let seen = mtime(dir);
    Listed {
        path: dir.to_path_buf(),
        last_seen: status.as_ref().map_or(seen, |s| s.heartbeat),
        started: status.as_ref().map_or(seen, |s| s.started),
        status,
        problem,
    }
}

/// The runs under `root` (and in its sub-folders that are not runs themselves, one level deep:
/// a sweep's folder), newest first. `root` itself may be a run directory.
pub fn find_runs(root: &Path) -> Vec<Listed> {
    if is_run_dir(root) {
        return vec![read_run(root)];
    }
    let mut out = Vec::new();
    for dir in subdirs(root) {
        if is_run_dir(&dir) {
            out.push(read_run(&dir));
        } else {
            out.extend(
                subdirs(&dir)
                    .filter(|d| is_run_dir(d))
                    .map(|d| read_run(&d)),
            );
        }
    }
    out.sort_by(|a, b| b.started.total_cmp(&a.started));
    out
}

fn subdirs(dir: &Path) -> impl Iterator<Item = PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .map(|it| {
            it.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v.into_iter()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_and_sweep_folders_are_found() {
        let root = tempfile::tempdir().unwrap();
        let a = root.path().join("a");
        let sweep = root.path().join("sweep/seed-1");
        for d in [&a, &sweep] {
            fs::create_dir_all(d).unwrap();
            fs::write(d.join("config.toml"), "").unwrap();
        }
        fs::create_dir_all(root.path().join("not-a-run/deeper/still-not")).unwrap();
        fs::write(a.join("status.json"), "garbage").unwrap();
        let found = find_runs(root.path());
        let paths: Vec<_> = found.iter().map(|l| l.path.clone()).collect();
        assert_eq!(paths.len(), 2, "{paths:?}");
        assert!(paths.contains(&a) && paths.contains(&sweep));
        let bad = found.iter().find(|l| l.path == a).unwrap();
        assert!(bad.problem.as_deref().unwrap().contains("not a run status"));
        assert_eq!(find_runs(&a).len(), 1, "a run directory lists itself");
    }
}
