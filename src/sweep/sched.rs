//! The scheduler's view of a sweep's runs, for the runs table: Slurm job states from `squeue`
//! (an explicit `-o` format with `|` between the fields, the user's `SQUEUE_FORMAT` removed
//! from its environment; never `--json`) and, for the tasks `squeue` no longer lists, `sacct`
//! where accounting is enabled (where it is not, `sacct` fails and `squeue` is all there is);
//! the local launcher's queue from its `launcher.json`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::local::LauncherInfo;
use super::{Launcher, Progress, SweepFile, progress};

/// One array task as the scheduler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskState {
    /// PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, REQUEUED, TIMEOUT, PREEMPTED, ...
    pub state: String,
    /// Why it is pending (`Resources`, `Priority`, `BeginTime`, ...).
    pub reason: Option<String>,
    pub node: Option<String>,
}

fn field(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty() && s != "(null)" && s != "None" && s != "n/a").then(|| s.to_string())
}

/// Parses `squeue -h -r -o '%F|%K|%T|%r|%N'` lines into task → state for job `job`.
pub fn parse_squeue(text: &str, job: &str) -> HashMap<usize, TaskState> {
    let mut out = HashMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split('|').collect();
        if f.len() < 5 || f[0].trim() != job {
            continue;
        }
        let Ok(task) = f[1].trim().parse::<usize>() else {
            continue;
        };
        out.insert(
            task,
            TaskState {
                state: f[2].trim().to_string(),
                reason: field(f[3]),
                node: field(f[4]),
            },
        );
    }
    out
}

/// Parses `sacct -n -P -X -o JobID,State,NodeList,Reason` lines (`<job>_<task>|STATE|...`;
/// `CANCELLED by 0` counts as CANCELLED) into task → state for job `job`.
pub fn parse_sacct(text: &str, job: &str) -> HashMap<usize, TaskState> {
    let mut out = HashMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split('|').collect();
        if f.len() < 3 {
            continue;
        }
        let Some((j, task)) = f[0].trim().split_once('_') else {
            continue;
        };
        let Ok(task) = task.parse::<usize>() else {
            continue;
        };
        if j != job {
            continue;
        }
        let state = f[1].split_whitespace().next().unwrap_or("").to_string();
        out.insert(
            task,
            TaskState {
                state,
                reason: f.get(3).and_then(|r| field(r)),
                node: field(f[2]),
            },
        );
    }
    out
}

/// The tasks of `job` that `squeue` lists (pending, running, and ended ones it still holds).
pub fn squeue(job: &str) -> Result<HashMap<usize, TaskState>, String> {
    let out = Command::new("squeue")
        .env_remove("SQUEUE_FORMAT")
        .env_remove("SQUEUE_FORMAT2")
        .env_remove("SQUEUE_SORT")
        .args([
            "-h",
            "-r",
            "--states=all",
            "-j",
            job,
            "-o",
            "%F|%K|%T|%r|%N",
        ])
        .output()
        .map_err(|e| format!("cannot run squeue: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        // A job the controller has purged is "Invalid job id": nothing to list.
        if stderr.contains("Invalid job id") {
            return Ok(HashMap::new());
        }
        return Err(format!("squeue: {}", stderr.trim()));
    }
    Ok(parse_squeue(&String::from_utf8_lossy(&out.stdout), job))
}

/// The tasks of `job` in Slurm's accounting; an error where accounting is disabled.
pub fn sacct(job: &str) -> Result<HashMap<usize, TaskState>, String> {
    let out = Command::new("sacct")
        .args([
            "-n",
            "-P",
            "-X",
            "-j",
            job,
            "-o",
            "JobID,State,NodeList,Reason",
        ])
        .output()
        .map_err(|e| format!("cannot run sacct: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "sacct: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(parse_sacct(&String::from_utf8_lossy(&out.stdout), job))
}

/// The states of `job`'s tasks: `squeue` first, then `sacct` for the tasks it does not list
/// (where accounting is disabled `sacct` fails, and `squeue` is all there is). An error only
/// when `squeue` itself fails (the controller does not answer).
pub fn job_states(job: &str) -> Result<HashMap<usize, TaskState>, String> {
    let mut states = squeue(job)?;
    if let Ok(acct) = sacct(job) {
        for (task, st) in acct {
            states.entry(task).or_insert(st);
        }
    }
    Ok(states)
}

/// The scheduler column for a run: the task's state with its reason or node. A task pending
/// again after its run has started before is REQUEUED.
pub fn label(st: &TaskState, run_started_before: bool) -> String {
    let state = if st.state == "PENDING" && run_started_before {
        "REQUEUED"
    } else {
        st.state.as_str()
    };
    match (state, &st.reason, &st.node) {
        ("PENDING" | "REQUEUED", Some(r), _) => format!("{state} ({r})"),
        ("RUNNING" | "COMPLETING", _, Some(n)) => format!("{state} on {n}"),
        _ => state.to_string(),
    }
}

/// How long the scheduler's answers are reused (`squeue` is not called every second).
pub const SCHED_REFRESH: Duration = Duration::from_secs(5);

/// The scheduler states of the sweeps' runs, asked again at most every [`SCHED_REFRESH`].
#[derive(Default)]
pub struct SchedCache {
    /// Per sweep folder: when asked, and per run name its label.
    sweeps: HashMap<PathBuf, (Instant, HashMap<String, String>)>,
    /// What went wrong asking (for the table's notes).
    pub notes: Vec<String>,
}

impl SchedCache {
    /// The scheduler column of the run in `run_dir`: `None` when it is not part of a sweep.
    pub fn label(&mut self, run_dir: &Path) -> Option<String> {
        let sweep = run_dir.parent()?;
        let name = run_dir.file_name()?.to_string_lossy().into_owned();
        let fresh = self
            .sweeps
            .get(sweep)
            .is_some_and(|(t, _)| t.elapsed() < SCHED_REFRESH);
        if !fresh {
            let file = SweepFile::read(sweep).ok()??;
            let (labels, note) = sweep_labels(sweep, &file);
            if let Some(n) = note
                && !self.notes.contains(&n)
            {
                self.notes.push(n);
            }
            self.sweeps
                .insert(sweep.to_path_buf(), (Instant::now(), labels));
        }
        self.sweeps.get(sweep)?.1.get(&name).cloned()
    }
}

/// Per run name, the scheduler column of the sweep's runs now.
pub fn sweep_labels(sweep: &Path, file: &SweepFile) -> (HashMap<String, String>, Option<String>) {
    let mut out = HashMap::new();
    let mut note = None;
    let started = |name: &str| progress(&sweep.join(name)) != Progress::NotStarted;
    match file.launcher {
        Launcher::Slurm => {
            let mut by_job: HashMap<&str, HashMap<usize, TaskState>> = HashMap::new();
            for job in &file.jobs {
                if !by_job.contains_key(job.job_id.as_str()) {
                    let states = job_states(&job.job_id).unwrap_or_else(|e| {
                        note = Some(e);
                        HashMap::new()
                    });
                    by_job.insert(&job.job_id, states);
                }
            }
            for (i, r) in file.runs.iter().enumerate() {
                let Some(job) = file.job_of(i) else {
                    out.insert(r.name.clone(), "not submitted".into());
                    continue;
                };
                let st = by_job.get(job.job_id.as_str()).and_then(|m| m.get(&i));
                let text = match st {
                    Some(st) => format!("{}_{i} {}", job.job_id, label(st, started(&r.name))),
                    None => format!("{}_{i} gone from the queue", job.job_id),
                };
                out.insert(r.name.clone(), text);
            }
        }
        Launcher::Local => {
            let launcher = LauncherInfo::live(sweep);
            for (i, r) in file.runs.iter().enumerate() {
                let text = match &launcher {
                    Some(l) if l.queued.contains(&i) => "QUEUED (local)".to_string(),
                    Some(l) if l.running.contains(&i) => "STARTED (local)".to_string(),
                    _ if !started(&r.name) => "not started".to_string(),
                    _ => "local".to_string(),
                };
                out.insert(r.name.clone(), text);
            }
        }
    }
    (out, note)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squeue_and_sacct_lines_parse_for_their_job_only() {
        let q = "41|0|RUNNING|None|vm\n41|1|PENDING|Resources|\n41|2|PENDING|BeginTime|\n7|0|RUNNING|None|x\nnoise\n";
        let s = parse_squeue(q, "41");
        assert_eq!(s.len(), 3);
        assert_eq!(label(&s[&0], true), "RUNNING on vm");
        assert_eq!(label(&s[&1], false), "PENDING (Resources)");
        assert_eq!(label(&s[&2], true), "REQUEUED (BeginTime)");
        let a = "41_0|COMPLETED|vm|None\n41_1|CANCELLED by 0|vm|None\n41_[2-3]|PENDING|None assigned|Priority\n";
        let s = parse_sacct(a, "41");
        assert_eq!(s.len(), 2);
        assert_eq!(label(&s[&1], true), "CANCELLED");
        assert_eq!(s[&0].node.as_deref(), Some("vm"));
    }
}
