//! The scheduler's view of a sweep's runs, for the runs table: Slurm job states from `squeue`
//! (an explicit `-o` format with `|` between the fields, the user's `SQUEUE_FORMAT` removed
//! from its environment; never `--json`) and, for the tasks `squeue` no longer lists, `sacct`
//! where accounting is enabled (where it is not, `sacct` fails and `squeue` is all there is);
//! the local launcher's queue from its `launcher.json`. Every command runs with a time limit
//! ([`SCHED_TIMEOUT`]): a controller that does not answer is said in the table's notes, and the
//! runs keep their last answer, marked stale.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

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

/// How long `squeue` or `sacct` may take before nobody waits for it any more.
pub const SCHED_TIMEOUT: Duration = Duration::from_secs(5);

/// The scheduler's commands and how long each may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheduler {
    pub squeue: PathBuf,
    pub sacct: PathBuf,
    pub timeout: Duration,
}

impl Default for Scheduler {
    fn default() -> Self {
        Scheduler {
            squeue: "squeue".into(),
            sacct: "sacct".into(),
            timeout: SCHED_TIMEOUT,
        }
    }
}

impl Scheduler {
    /// The tasks of `job` that `squeue` lists (pending, running, and ended ones it still
    /// holds).
    pub fn squeue(&self, job: &str) -> Result<HashMap<usize, TaskState>, String> {
        let mut cmd = Command::new(&self.squeue);
        cmd.env_remove("SQUEUE_FORMAT")
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
            ]);
        let out = output_within(&mut cmd, self.timeout)?;
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
    pub fn sacct(&self, job: &str) -> Result<HashMap<usize, TaskState>, String> {
        let mut cmd = Command::new(&self.sacct);
        cmd.args([
            "-n",
            "-P",
            "-X",
            "-j",
            job,
            "-o",
            "JobID,State,NodeList,Reason",
        ]);
        let out = output_within(&mut cmd, self.timeout)?;
        if !out.status.success() {
            return Err(format!(
                "sacct: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(parse_sacct(&String::from_utf8_lossy(&out.stdout), job))
    }

    /// The states of `job`'s tasks: `squeue` first, then `sacct` for the tasks it does not
    /// list (where accounting is disabled `sacct` fails, and `squeue` is all there is). An
    /// error only when `squeue` itself fails (the controller does not answer).
    pub fn job_states(&self, job: &str) -> Result<HashMap<usize, TaskState>, String> {
        let mut states = self.squeue(job)?;
        if let Ok(acct) = self.sacct(job) {
            for (task, st) in acct {
                states.entry(task).or_insert(st);
            }
        }
        Ok(states)
    }
}

/// The tasks of `job` that `squeue` lists, asked with the default commands and time limit.
pub fn squeue(job: &str) -> Result<HashMap<usize, TaskState>, String> {
    Scheduler::default().squeue(job)
}

/// Runs `cmd` (no input) and collects its output, unless it takes longer than `timeout`: then
/// it is killed, with every process it started (its own process group), and the error says so.
fn output_within(cmd: &mut Command, timeout: Duration) -> Result<Output, String> {
    let name = Path::new(cmd.get_program())
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot run {name}: {e}"))?;
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                kill_group(child.id());
                let _ = child.wait();
                return Err(format!(
                    "{name} did not answer within {} s",
                    timeout.as_secs_f64()
                ));
            }
            Err(e) => return Err(format!("{name}: {e}")),
        }
    };
    // A process it left behind may still hold the pipes: read what is there by the deadline.
    let wait = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(100));
    Ok(Output {
        status,
        stdout: stdout.recv_timeout(wait).unwrap_or_default(),
        stderr: stderr.recv_timeout(wait).unwrap_or_default(),
    })
}

/// Reads a child's pipe to its end on a thread of its own; the bytes come on the channel.
fn drain(pipe: Option<impl Read + Send + 'static>) -> Receiver<Vec<u8>> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    if let Some(mut p) = pipe {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = p.read_to_end(&mut buf);
            let _ = tx.send(buf);
        });
    }
    rx
}

/// Kills process group `pgid` (a scheduler command and whatever it started).
#[allow(unsafe_code)]
fn kill_group(pgid: u32) {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return;
    };
    // SAFETY: sends a signal to the process group of our own child; no memory is involved.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
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
    /// The commands asked, and how long each may take.
    pub scheduler: Scheduler,
    /// Per sweep folder: when asked, and per run name its label.
    sweeps: HashMap<PathBuf, Asked>,
    /// What went wrong asking (for the table's notes).
    pub notes: Vec<String>,
}

/// A sweep's labels as last asked.
struct Asked {
    at: Instant,
    labels: HashMap<String, String>,
}

/// What a run's scheduler column says while the scheduler does not answer.
pub const STALE: &str = "(stale)";

impl SchedCache {
    /// A cache asking `scheduler`.
    pub fn new(scheduler: Scheduler) -> SchedCache {
        SchedCache {
            scheduler,
            ..SchedCache::default()
        }
    }

    /// The scheduler column of the run in `run_dir`: `None` when it is not part of a sweep.
    /// When the scheduler did not answer, the last answer there was, marked [`STALE`].
    pub fn label(&mut self, run_dir: &Path) -> Option<String> {
        let sweep = run_dir.parent()?;
        let name = run_dir.file_name()?.to_string_lossy().into_owned();
        let fresh = self
            .sweeps
            .get(sweep)
            .is_some_and(|a| a.at.elapsed() < SCHED_REFRESH);
        if !fresh {
            let file = SweepFile::read(sweep).ok()??;
            let (mut labels, unanswered, note) = sweep_labels(&self.scheduler, sweep, &file);
            if let Some(n) = note
                && !self.notes.contains(&n)
            {
                self.notes.push(n);
            }
            let before = self.sweeps.remove(sweep);
            for run in &unanswered {
                let last = before
                    .as_ref()
                    .and_then(|b| b.labels.get(run))
                    .map(|l| l.trim_end_matches(STALE).trim_end().to_string());
                let text = match last {
                    Some(l) => format!("{l} {STALE}"),
                    None => format!("? {STALE}"),
                };
                labels.insert(run.clone(), text);
            }
            self.sweeps.insert(
                sweep.to_path_buf(),
                Asked {
                    at: Instant::now(),
                    labels,
                },
            );
        }
        self.sweeps.get(sweep)?.labels.get(&name).cloned()
    }
}

/// Per run name, the scheduler column of the sweep's runs now; the runs whose scheduler did not
/// answer (their label is left out); what went wrong.
pub fn sweep_labels(
    scheduler: &Scheduler,
    sweep: &Path,
    file: &SweepFile,
) -> (HashMap<String, String>, HashSet<String>, Option<String>) {
    let mut out = HashMap::new();
    let mut unanswered = HashSet::new();
    let mut note = None;
    let started = |name: &str| progress(&sweep.join(name)) != Progress::NotStarted;
    match file.launcher {
        Launcher::Slurm => {
            let mut by_job: HashMap<&str, Option<HashMap<usize, TaskState>>> = HashMap::new();
            for job in &file.jobs {
                if !by_job.contains_key(job.job_id.as_str()) {
                    let states = scheduler
                        .job_states(&job.job_id)
                        .map_err(|e| note = Some(e))
                        .ok();
                    by_job.insert(&job.job_id, states);
                }
            }
            for (i, r) in file.runs.iter().enumerate() {
                let Some(job) = file.job_of(i) else {
                    out.insert(r.name.clone(), "not submitted".into());
                    continue;
                };
                let Some(Some(states)) = by_job.get(job.job_id.as_str()) else {
                    unanswered.insert(r.name.clone());
                    continue;
                };
                let text = match states.get(&i) {
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
    (out, unanswered, note)
}

#[cfg(test)]
pub(crate) mod tests {
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

    /// An executable shell script `name` in `dir` running `body`, ready to run: executed once
    /// with `probe` until the system lets it (a file just written can be busy for a moment
    /// while another test thread forks).
    pub(crate) fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(name);
        std::fs::write(
            &path,
            format!("#!/bin/sh\n[ \"$1\" = probe ] && exit 0\n{body}\n"),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let t = Instant::now();
        while Command::new(&path).arg("probe").status().is_err() {
            assert!(t.elapsed() < Duration::from_secs(10), "cannot run {name}");
            std::thread::sleep(Duration::from_millis(20));
        }
        path
    }

    /// A sweep folder of Slurm job 41 with runs r0 and r1 (r0 started).
    pub(crate) fn slurm_sweep(dir: &Path) -> PathBuf {
        let sweep = dir.join("sweep");
        for r in ["r0", "r1"] {
            std::fs::create_dir_all(sweep.join(r)).unwrap();
            std::fs::write(sweep.join(r).join("config.toml"), "seed = 1\n").unwrap();
        }
        std::fs::write(
            sweep.join(crate::sweep::SWEEP_FILE),
            r#"config = "c.toml"
seeds = [1, 2]
launcher = "slurm"

[[runs]]
name = "r0"
seed = 1
values = []

[[runs]]
name = "r1"
seed = 2
values = []

[[jobs]]
job_id = "41"
tasks = [0, 1]
submitted = 0.0
"#,
        )
        .unwrap();
        sweep
    }

    #[test]
    fn a_scheduler_that_does_not_answer_is_killed_and_its_runs_keep_their_last_answer() {
        let tmp = tempfile::tempdir().unwrap();
        let sweep = slurm_sweep(tmp.path());
        let answers = script(
            tmp.path(),
            "squeue-ok",
            "echo '41|0|RUNNING|None|vm'; echo '41|1|PENDING|Resources|'",
        );
        let fails = script(tmp.path(), "sacct-fails", "exit 1");
        let hangs = script(tmp.path(), "squeue-hangs", "sleep 30");
        let mut cache = SchedCache::new(Scheduler {
            squeue: answers,
            sacct: fails.clone(),
            timeout: Duration::from_secs(10),
        });
        assert_eq!(
            cache.label(&sweep.join("r0")).as_deref(),
            Some("41_0 RUNNING on vm")
        );
        assert_eq!(
            cache.label(&sweep.join("r1")).as_deref(),
            Some("41_1 PENDING (Resources)")
        );
        // The controller stops answering: the table waits for it at most the time limit, and
        // the runs keep their last answer, marked stale.
        cache.scheduler = Scheduler {
            squeue: hangs,
            sacct: fails,
            timeout: Duration::from_millis(300),
        };
        for a in cache.sweeps.values_mut() {
            a.at = Instant::now().checked_sub(SCHED_REFRESH).unwrap();
        }
        let t = Instant::now();
        assert_eq!(
            cache.label(&sweep.join("r0")).as_deref(),
            Some("41_0 RUNNING on vm (stale)")
        );
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        assert_eq!(
            cache.label(&sweep.join("r1")).as_deref(),
            Some("41_1 PENDING (Resources) (stale)")
        );
        assert_eq!(cache.notes, ["squeue-hangs did not answer within 0.3 s"]);
        // Stale once more: still one mark.
        for a in cache.sweeps.values_mut() {
            a.at = Instant::now().checked_sub(SCHED_REFRESH).unwrap();
        }
        assert_eq!(
            cache.label(&sweep.join("r0")).as_deref(),
            Some("41_0 RUNNING on vm (stale)")
        );
    }
}
