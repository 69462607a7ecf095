//! The local launcher: a detached process (`nasp-tui sweep-drain`, its own session, output in
//! `<sweep>/launcher.log`) that runs the sweep's unfinished runs, at most `parallel` at once,
//! each as a detached `nasp-tui sweep-run` process of its own (pinned to one GPU through
//! `CUDA_VISIBLE_DEVICES` when there are GPUs), and exits when the queue is empty. While it
//! works, `<sweep>/launcher.json` names it and the runs it has yet to start.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{Progress, SweepError, SweepFile, file_err, progress, to_do};
use crate::rundir::printable;
use crate::rundir::status::{STALE_AFTER, host_name, pid_alive, unix_now};

/// The launcher's file inside the sweep folder, while it runs.
pub const LAUNCHER_FILE: &str = "launcher.json";
/// The launcher's output.
pub const LAUNCHER_LOG: &str = "launcher.log";
/// A run's headless output (its progress lines) inside its own folder.
pub const RUN_OUTPUT: &str = "output.txt";

/// `launcher.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LauncherInfo {
    pub pid: u32,
    pub host: String,
    pub heartbeat: f64,
    pub parallel: usize,
    /// Runs (by index) not started yet.
    pub queued: Vec<usize>,
    /// Runs (by index) started and not yet ended.
    pub running: Vec<usize>,
}

impl LauncherInfo {
    /// The sweep's launcher, if one is working on it now: its heartbeat is fresh and, on this
    /// host, its process exists and has not exited (a killed launcher whose parent is gone can
    /// stay a zombie where nothing reaps orphans).
    pub fn live(sweep_dir: &Path) -> Option<LauncherInfo> {
        let text = fs::read_to_string(sweep_dir.join(LAUNCHER_FILE)).ok()?;
        let info: LauncherInfo = serde_json::from_str(&text).ok()?;
        let fresh = unix_now() - info.heartbeat < STALE_AFTER.as_secs_f64();
        let alive =
            fresh && (info.host != host_name() || (pid_alive(info.pid) && !zombie(info.pid)));
        alive.then_some(info)
    }

    fn write(&self, sweep_dir: &Path) {
        let tmp = sweep_dir.join(format!(".{LAUNCHER_FILE}.{}", self.pid));
        if let Ok(text) = serde_json::to_string(self)
            && fs::write(&tmp, text).is_ok()
        {
            let _ = fs::rename(&tmp, sweep_dir.join(LAUNCHER_FILE));
        }
    }
}

/// Whether process `pid` has exited and waits to be reaped (Linux `/proc`; false elsewhere).
fn zombie(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

fn append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Detaches `cmd` from this process's terminal and session; stdin empty, output to `out`.
#[allow(unsafe_code)]
fn detach(cmd: &mut Command, out: &Path) -> std::io::Result<()> {
    let log = append(out)?;
    let err = log.try_clone()?;
    cmd.stdin(Stdio::null()).stdout(log).stderr(err);
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    Ok(())
}

/// Starts the launcher for the sweep in `sweep_dir` as a detached process of `exe`; returns it.
pub fn spawn_launcher(
    exe: &Path,
    sweep_dir: &Path,
    parallel: usize,
    gpus: &[String],
) -> Result<Child, SweepError> {
    let mut cmd = Command::new(exe);
    cmd.arg("sweep-drain")
        .arg(sweep_dir)
        .arg("--parallel")
        .arg(parallel.to_string());
    if !gpus.is_empty() {
        cmd.arg("--gpus").arg(gpus.join(","));
    }
    let log = sweep_dir.join(LAUNCHER_LOG);
    detach(&mut cmd, &log).map_err(|e| file_err(&log, e))?;
    cmd.spawn()
        .map_err(|e| file_err(exe, format!("cannot start the launcher: {e}")))
}

/// Writes one progress line to `out`. The lines name runs, read back from `sweep.toml`:
/// escaped (`rundir::printable`) so that none can carry a terminal escape sequence to whoever
/// reads `launcher.log`.
fn note(out: &mut dyn Write, line: &str) {
    let _ = writeln!(out, "{}", printable(line));
}

struct Running {
    index: usize,
    slot: usize,
    child: Child,
}

/// The launcher's loop: starts the runs to do, `parallel` at once (slot `k` pinned to
/// `gpus[k % gpus.len()]` when there are GPUs), waits for them, and returns when all have
/// ended: the number of runs that did not finish. Progress lines go to `out`.
pub fn drain(
    exe: &Path,
    sweep_dir: &Path,
    parallel: usize,
    gpus: &[String],
    out: &mut dyn Write,
) -> Result<usize, SweepError> {
    let file = SweepFile::read(sweep_dir)?.ok_or_else(|| {
        file_err(
            &sweep_dir.join(super::SWEEP_FILE),
            "missing: not a sweep folder",
        )
    })?;
    let parallel = parallel.max(1);
    let mut queue: std::collections::VecDeque<usize> = to_do(sweep_dir, &file).into();
    let mut running: Vec<Running> = Vec::new();
    let mut info = LauncherInfo {
        pid: std::process::id(),
        host: host_name(),
        heartbeat: unix_now(),
        parallel,
        queued: queue.iter().copied().collect(),
        running: Vec::new(),
    };
    info.write(sweep_dir);
    note(
        out,
        &format!(
            "launcher pid {}: {} run(s) to do, {parallel} at once",
            info.pid,
            queue.len()
        ),
    );
    let mut last_write = Instant::now();
    let mut failed = 0usize;
    loop {
        while running.len() < parallel
            && let Some(i) = queue.pop_front()
        {
            let name = &file.runs[i].name;
            let dir = sweep_dir.join(name);
            // Someone else may have started or finished it since the queue was made.
            if !matches!(progress(&dir), Progress::NotStarted | Progress::Unfinished) {
                note(
                    out,
                    &format!("{name}: left alone (running or finished elsewhere)"),
                );
                continue;
            }
            let slot = (0..parallel)
                .find(|s| running.iter().all(|r| r.slot != *s))
                .unwrap_or(0);
            let gpu = (!gpus.is_empty()).then(|| gpus[slot % gpus.len()].clone());
            match start_run(exe, sweep_dir, name, gpu.as_deref(), parallel) {
                Ok(child) => {
                    note(
                        out,
                        &format!(
                            "{name}: started, pid {}{}",
                            child.id(),
                            gpu.as_ref()
                                .map_or(String::new(), |g| format!(" on GPU {g}"))
                        ),
                    );
                    running.push(Running {
                        index: i,
                        slot,
                        child,
                    });
                }
                Err(e) => {
                    failed += 1;
                    note(out, &format!("{name}: cannot start: {e}"));
                }
            }
        }
        let mut ended = Vec::new();
        for (k, r) in running.iter_mut().enumerate() {
            if let Ok(Some(status)) = r.child.try_wait() {
                let name = &file.runs[r.index].name;
                let done = progress(&sweep_dir.join(name)) == Progress::Finished;
                if !done {
                    failed += 1;
                }
                note(
                    out,
                    &format!(
                        "{name}: ended ({status}){}",
                        if done { "" } else { ", not finished" }
                    ),
                );
                ended.push(k);
            }
        }
        for k in ended.into_iter().rev() {
            running.remove(k);
        }
        if running.is_empty() && queue.is_empty() {
            break;
        }
        if last_write.elapsed() > Duration::from_secs(2) {
            info.heartbeat = unix_now();
            info.queued = queue.iter().copied().collect();
            info.running = running.iter().map(|r| r.index).collect();
            info.write(sweep_dir);
            last_write = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = fs::remove_file(sweep_dir.join(LAUNCHER_FILE));
    note(
        out,
        &format!("launcher pid {}: done ({} not finished)", info.pid, failed),
    );
    Ok(failed)
}

/// Starts one run of the sweep as a detached `sweep-run` process.
/// On the CPU each of the `parallel` runs at once gets its share of the usable CPUs as its
/// thread count (`NASP_TUI_THREADS`; a run's `threads` key or `OMP_NUM_THREADS` still wins).
fn start_run(
    exe: &Path,
    sweep_dir: &Path,
    name: &str,
    gpu: Option<&str>,
    parallel: usize,
) -> std::io::Result<Child> {
    let run_dir: PathBuf = sweep_dir.join(name);
    let mut cmd = Command::new(exe);
    cmd.arg("sweep-run").arg(sweep_dir).arg(name);
    match gpu {
        Some(g) => {
            cmd.env("CUDA_VISIBLE_DEVICES", g).arg("--pinned");
        }
        None => {
            cmd.env(
                crate::threads::SHARE_ENV,
                crate::threads::share(parallel).to_string(),
            );
        }
    }
    detach(&mut cmd, &run_dir.join(RUN_OUTPUT))?;
    cmd.spawn()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::{Launcher, expand};

    /// A stand-in for `nasp-tui sweep-run`: notes when it starts and ends and which GPU it
    /// sees, and leaves its run finished.
    const FAKE: &str = r#"#!/bin/sh
# args: sweep-run SWEEP NAME [--pinned]
run="$2/$3"
echo "start $(date +%s.%N) $3 ${CUDA_VISIBLE_DEVICES:-none} $4" >> "$2/trace"
sleep 0.4
printf '{"state":"finished","pid":1,"host":"h","heartbeat":0,"started":0,"algorithm":"","device":"","epoch":1,"epochs":1,"step":1,"steps_per_epoch":1}' > "$run/status.json"
echo "end $(date +%s.%N) $3" >> "$2/trace"
"#;

    #[test]
    fn runs_k_at_once_each_slot_pinned_to_its_gpu() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("sw");
        let runs = expand(&[1, 2, 3, 4, 5], &[]);
        for r in &runs {
            fs::create_dir_all(dir.join(&r.name)).unwrap();
        }
        // Run 3 has finished already: it is not started again.
        fs::write(
            dir.join("seed3/status.json"),
            r#"{"state":"finished","pid":1,"host":"h","heartbeat":0,"started":0,"algorithm":"","device":"","epoch":1,"epochs":1,"step":1,"steps_per_epoch":1}"#,
        )
        .unwrap();
        let file = SweepFile {
            config: "c".into(),
            sets: Vec::new(),
            seeds: vec![1, 2, 3, 4, 5],
            max_steps: None,
            launcher: Launcher::Local,
            parallel: Some(2),
            slurm_args: Vec::new(),
            grid: Vec::new(),
            runs,
            jobs: Vec::new(),
        };
        file.write(&dir).unwrap();
        let exe = tmp.path().join("fake-nasp-tui");
        fs::write(&exe, FAKE).unwrap();
        fs::set_permissions(&exe, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let mut out = Vec::new();
        let unfinished = drain(&exe, &dir, 2, &["5".into(), "7".into()], &mut out).unwrap();
        let log = String::from_utf8_lossy(&out);
        assert_eq!(unfinished, 0, "{log}");
        assert!(
            !dir.join(LAUNCHER_FILE).exists(),
            "launcher.json stays after the end"
        );
        let trace = fs::read_to_string(dir.join("trace")).unwrap();
        let mut events: Vec<(f64, bool, String, String)> = trace
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                let gpu = f.get(3).map_or(String::new(), ToString::to_string);
                (
                    f[1].parse().unwrap(),
                    f[0] == "start",
                    f[2].to_string(),
                    gpu,
                )
            })
            .collect();
        events.sort_by(|a, b| a.0.total_cmp(&b.0));
        let started: Vec<&str> = events
            .iter()
            .filter(|e| e.1)
            .map(|e| e.2.as_str())
            .collect();
        assert_eq!(started.len(), 4, "{trace}");
        assert!(
            !started.contains(&"seed3"),
            "a finished run was started again: {trace}"
        );
        let (mut now, mut most) = (Vec::<String>::new(), 0);
        for (_, start, name, gpu) in &events {
            if *start {
                assert!(!now.contains(gpu), "two runs at once on GPU {gpu}: {trace}");
                now.push(gpu.clone());
                most = most.max(now.len());
            } else {
                let g = events
                    .iter()
                    .find(|e| e.1 && &e.2 == name)
                    .map(|e| e.3.clone())
                    .unwrap();
                now.retain(|x| *x != g);
            }
        }
        assert_eq!(most, 2, "at most and at best two at once: {trace}");
        assert!(
            trace.contains(" 5 --pinned") && trace.contains(" 7 --pinned"),
            "{trace}"
        );
    }
}
