//! The terminal UI in a real terminal: `nasp-tui search` inside a detached tmux session, read with
//! `tmux capture-pane`, driven with `tmux send-keys`, on the synthetic set. Needs `tmux`
//! (Debian/Ubuntu package `tmux`): without it the tests are reported as ignored, and under `CI`
//! they fail (see `common::tmux::require`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

mod common;

use common::tmux::{Tmux, require, step};
use common::{wait_for, wait_until};

const BIN: &str = env!("CARGO_BIN_EXE_nasp-tui");
const CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tui.toml");

/// `--set` arguments for the old behaviour on a hangup (checkpoint, exit 130), as written inside
/// [`search_command`]'s single quotes.
const ON_HANGUP_STOP: &str = "--set ui.on_hangup=\\\"stop\\\"";

/// `sh -c` line: run the search (with `extra` arguments), then record its exit code and keep
/// the pane open.
fn search_command(run_dir: &Path, exit_file: &Path, config_dir: &Path, extra: &str) -> String {
    format!(
        "sh -c 'env OMP_NUM_THREADS=1 LANG=C.UTF-8 NASP_TUI_CONFIG_DIR={cfg} {BIN} search --config {CONFIG} \
         --run-dir {run} {extra}; echo EXIT=$? > {exit}; sleep 600'",
        cfg = config_dir.display(),
        run = run_dir.display(),
        exit = exit_file.display(),
    )
}

fn wait_exit(exit_file: &Path, timeout: Duration) -> String {
    wait_for("the process's exit", timeout, || {
        std::fs::read_to_string(exit_file)
            .ok()
            .filter(|s| s.contains("EXIT="))
            .map(|s| s.trim().to_string())
    })
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default()
}

/// The parent of process `pid`.
fn parent_of(pid: i32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(1)?.parse().ok()
}

/// The run's `status.json` (null when it cannot be read yet).
fn status(run_dir: &Path) -> serde_json::Value {
    std::fs::read_to_string(run_dir.join("status.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

/// The nasp-tui process under the pane's shell (the stand-in, whose child runs the search).
fn child_of(parent: u32) -> Option<i32> {
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let Some(after) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            continue;
        };
        let ppid: Option<u32> = after.split_whitespace().nth(1).and_then(|p| p.parse().ok());
        if ppid == Some(parent) && stat.contains("(nasp-tui)") {
            return Some(pid);
        }
    }
    None
}

/// The process exited with `want`, the terminal is back on the normal screen, and a checkpoint
/// was written on the way out.
fn assert_clean_exit(t: &Tmux, exit_file: &Path, run_dir: &Path, want: &str) {
    assert_eq!(wait_exit(exit_file, Duration::from_secs(60)), want);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        t.display("#{alternate_on}"),
        "0",
        "terminal left the alternate screen"
    );
    assert!(
        !files_in(&run_dir.join("checkpoints")).is_empty(),
        "a checkpoint was saved on the way out ({want})"
    );
}

#[test]
#[cfg_attr(no_tmux, ignore = "needs tmux")]
fn pause_resume_export_and_save_quit_in_tmux() {
    require();
    let tmp = tempfile::tempdir().expect("tempdir");
    let run_dir = tmp.path().join("run");
    let exit_file = tmp.path().join("exit");
    let t = Tmux::start(
        "main",
        &search_command(&run_dir, &exit_file, tmp.path(), ""),
    );

    let s = t.wait_for("RUNNING", Duration::from_secs(180), |s| {
        s.contains("RUNNING") && step(s).is_some()
    });
    assert_eq!(
        t.display("#{alternate_on}"),
        "1",
        "the TUI uses the alternate screen"
    );
    assert!(s.contains("normal cell"), "{s}");

    // Pause: PAUSED within a second or two, and the step count stays frozen.
    t.keys(&["p"]);
    let s = t.wait_for("PAUSED", Duration::from_secs(5), |s| s.contains("PAUSED"));
    let frozen = step(&s).expect("step on screen");
    std::thread::sleep(Duration::from_secs(3));
    let s = t.screen();
    assert!(s.contains("PAUSED"), "{s}");
    assert_eq!(
        step(&s),
        Some(frozen),
        "the step count moved while paused:\n{s}"
    );

    // Resume: steps advance again.
    t.keys(&["p"]);
    t.wait_for(
        "steps to advance after resume",
        Duration::from_secs(60),
        |s| s.contains("RUNNING") && step(s).is_some_and(|n| n > frozen),
    );

    // Export: genotype files appear and the log names them.
    t.keys(&["e"]);
    let genotypes = run_dir.join("genotypes");
    let start = Instant::now();
    let exported = loop {
        let found: Vec<PathBuf> = files_in(&genotypes)
            .into_iter()
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("export-"))
            })
            .collect();
        if found.len() >= 2 {
            break found;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no export in {}",
            genotypes.display()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        exported
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "json"))
    );
    assert!(
        exported
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "txt"))
    );
    t.wait_for("the export in the log", Duration::from_secs(10), |s| {
        s.contains("exported:")
    });
    // Beside the text, the two cells as SVG.
    for cell in ["normal", "reduce"] {
        let svg = files_in(&genotypes).into_iter().find(|p| {
            p.file_name().is_some_and(|n| {
                let n = n.to_string_lossy();
                n.starts_with("export-") && n.ends_with(&format!("-{cell}.svg"))
            })
        });
        let svg = svg.unwrap_or_else(|| panic!("no {cell} cell figure in {}", genotypes.display()));
        let text = std::fs::read_to_string(&svg).unwrap_or_default();
        assert!(text.contains(&format!("{cell} cell")), "{text}");
    }

    // Help overlay from the key table, closed again.
    t.keys(&["?"]);
    t.wait_for("help", Duration::from_secs(5), |s| {
        s.contains("pause / resume the run")
    });
    t.keys(&["Escape"]);
    t.wait_for("help closed", Duration::from_secs(5), |s| {
        !s.contains("pause / resume the run")
    });

    // Quit: the dialog, then save & quit; exit 0 and the normal screen is back.
    t.keys(&["q"]);
    t.wait_for("the quit dialog", Duration::from_secs(5), |s| {
        s.contains("save & quit") && s.contains("cancel")
    });
    t.keys(&["s"]);
    assert_clean_exit(&t, &exit_file, &run_dir, "EXIT=0");
    let log = std::fs::read_to_string(run_dir.join("log.txt")).unwrap_or_default();
    assert!(
        log.contains("ui thread cpu: "),
        "the UI records its CPU time in log.txt:\n{log}"
    );
}

/// A search running in its own tmux session `name`: the session, the search process's id (its
/// `status.json` says it), the stand-in the pane's shell waits for, and its temporary folder (run
/// directory `run`, exit-code file `exit`).
struct Running {
    t: Tmux,
    pid: i32,
    stand_in: i32,
    tmp: tempfile::TempDir,
}

impl Running {
    fn start(name: &str, extra: &str) -> Running {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (run_dir, exit_file) = (tmp.path().join("run"), tmp.path().join("exit"));
        let t = Tmux::start(
            name,
            &search_command(&run_dir, &exit_file, tmp.path(), extra),
        );
        t.wait_for("RUNNING", Duration::from_secs(180), |s| {
            s.contains("RUNNING") && step(s).is_some()
        });
        let shell: u32 = t.display("#{pane_pid}").parse().expect("pane pid");
        let stand_in = child_of(shell).expect("nasp-tui process under the pane's shell");
        let pid = status(&tmp.path().join("run"))["pid"]
            .as_i64()
            .expect("status.json names the search process") as i32;
        assert_ne!(pid, stand_in, "the search runs in a child of the stand-in");
        assert_eq!(parent_of(pid), Some(stand_in as u32));
        Running {
            t,
            pid,
            stand_in,
            tmp,
        }
    }

    fn run_dir(&self) -> PathBuf {
        self.tmp.path().join("run")
    }

    fn exit_file(&self) -> PathBuf {
        self.tmp.path().join("exit")
    }
}

impl Drop for Running {
    /// A detached search outlives its tmux server: a failed test must not leave it running.
    fn drop(&mut self) {
        if !ended(self.pid) {
            let _ = Command::new("kill")
                .args(["-KILL", &self.pid.to_string()])
                .status();
        }
    }
}

/// `ui.on_hangup = "stop"`: SIGHUP keeps the old behaviour (checkpoint, exit 130). The signal
/// goes to the stand-in the shell started, which passes it on to the search and exits with the
/// search's exit code.
#[test]
#[cfg_attr(no_tmux, ignore = "needs tmux")]
fn sighup_stops_cleanly_under_on_hangup_stop() {
    require();
    let r = Running::start("hup", ON_HANGUP_STOP);
    let (t, run_dir, exit_file) = (&r.t, r.run_dir(), r.exit_file());
    kill("-HUP", r.stand_in);
    assert_clean_exit(t, &exit_file, &run_dir, "EXIT=130");
    assert!(ended(r.pid), "the search process ended too");
}

/// The state letter of process `pid` (`R`, `S`, `T` stopped, `Z`...), from `/proc/<pid>/stat`.
fn proc_state(pid: i32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().next().map(str::to_string)
}

fn kill(signal: &str, pid: i32) {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill {signal} {pid}");
}

/// Suspended with `kill -STOP` and continued with `kill -CONT` (a shell's Ctrl-Z / `fg`, or a
/// tmux re-attach), the monitor must repaint the whole screen: whatever was written over it
/// meanwhile must go, even where no cell changes between frames (the footer's blank tail).
#[test]
#[cfg_attr(no_tmux, ignore = "needs tmux")]
fn sigcont_repaints_a_stale_screen() {
    require();
    const GARBAGE: &str = "XX-STALE-GARBAGE-XX";
    let r = Running::start("cont", "");
    let (t, pid) = (&r.t, r.pid);
    let tty = t.display("#{pane_tty}");
    kill("-STOP", pid);
    let start = Instant::now();
    while proc_state(pid).as_deref() != Some("T") {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "pid {pid} did not stop"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Over the footer's blank right-hand part (the last row) and the first pane's top border
    // (row 3): cells that no frame changes, so only a full repaint removes the text.
    let mut pane = std::fs::OpenOptions::new()
        .write(true)
        .open(&tty)
        .expect("open the pane's tty");
    std::io::Write::write_all(
        &mut pane,
        format!("\x1b[999;80H{GARBAGE}\x1b[3;20H{GARBAGE}").as_bytes(),
    )
    .expect("write to the pane's tty");
    drop(pane);
    t.wait_for(
        "the garbage on the stopped screen",
        Duration::from_secs(5),
        |s| s.matches(GARBAGE).count() == 2,
    );
    kill("-CONT", pid);
    // The repaint clears the screen before it draws: wait for the drawn screen, not the clear
    // one (on a loaded machine tmux can be read between the two).
    let s = t.wait_for(
        "a full repaint after SIGCONT",
        Duration::from_secs(10),
        |s| !s.contains(GARBAGE) && s.contains("? help"),
    );
    assert!(
        s.contains("RUNNING") && s.contains("normal cell") && s.contains("? help"),
        "the whole screen is drawn again:\n{s}"
    );
    // Still a working monitor: stop it the usual way.
    kill("-TERM", pid);
    assert_clean_exit(t, &r.exit_file(), &r.run_dir(), "EXIT=130");
}

/// Whether process `pid` has ended (gone, or a zombie waiting to be reaped).
fn ended(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
            .is_some_and(|state| state == "Z"),
    }
}

/// The terminal itself goes away (as when an ssh connection drops): the tmux server and its
/// pseudo-terminals are killed. Under `ui.on_hangup = "stop"` the search must save a checkpoint
/// and the process must end, not linger on the dead terminal (crossterm's reader can spin on it
/// forever).
#[test]
#[cfg_attr(no_tmux, ignore = "needs tmux")]
fn losing_the_terminal_saves_and_ends_the_process_under_on_hangup_stop() {
    require();
    let r = Running::start("gone", ON_HANGUP_STOP);
    let (pid, run_dir) = (r.pid, r.run_dir());
    assert!(r.t.cmd(&["kill-server"]).status.success());
    let start = Instant::now();
    while !ended(pid) {
        if start.elapsed() > Duration::from_secs(90) {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("nasp-tui (pid {pid}) still runs 90 s after its terminal went away");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        !files_in(&run_dir.join("checkpoints")).is_empty(),
        "a checkpoint was saved on the way out"
    );
}

/// `status.json`'s step and heartbeat, and the size of `events.jsonl`.
fn progress(run_dir: &Path) -> (u64, f64, u64) {
    let status = status(run_dir);
    let events = std::fs::metadata(run_dir.join("events.jsonl")).map_or(0, |m| m.len());
    (
        status["step"].as_u64().unwrap_or(0),
        status["heartbeat"].as_f64().unwrap_or(0.0),
        events,
    )
}

/// The detached process is alive and its search steps on: status step and heartbeat move and
/// the event log grows.
fn assert_keeps_stepping(pid: i32, run_dir: &Path) {
    let before = progress(run_dir);
    let start = Instant::now();
    loop {
        assert!(!ended(pid), "the detached process {pid} ended");
        let now = progress(run_dir);
        if now.0 > before.0 + 5 && now.1 > before.1 && now.2 > before.2 {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the search did not step on: {before:?} then {now:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Nothing of process `pid` points at the terminal any more: stdout and stderr go to the run's
/// log, stdin is a pipe, no descriptor is the pane's tty, and no input thread is left reading.
fn assert_off_the_terminal(pid: i32, run_dir: &Path, tty: &str) {
    let start = Instant::now();
    while !std::fs::read_to_string(run_dir.join("log.txt"))
        .unwrap_or_default()
        .contains("detached from the terminal")
    {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the log never says the process detached"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let fd = |n: &str| std::fs::read_link(format!("/proc/{pid}/fd/{n}")).expect("readlink fd");
    let log = std::fs::canonicalize(run_dir.join("log.txt")).expect("log.txt");
    assert_eq!(fd("1"), log, "stdout goes to the log");
    assert_eq!(fd("2"), log, "stderr goes to the log");
    assert!(
        fd("0").to_string_lossy().starts_with("pipe:"),
        "stdin is a pipe: {:?}",
        fd("0")
    );
    for e in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("fds")
        .flatten()
    {
        let target = std::fs::read_link(e.path()).unwrap_or_default();
        assert_ne!(
            target.to_string_lossy(),
            tty,
            "fd {:?} still points at the terminal",
            e.file_name()
        );
    }
    let start = Instant::now();
    loop {
        let threads: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
            .expect("tasks")
            .flatten()
            .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
            .map(|c| c.trim().to_string())
            .collect();
        if !threads.iter().any(|c| c == "nasp-tui-input") {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the input thread is still there (stuck on the terminal?): {threads:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `nasp-tui ctl RUN stop --wait 30`, then the process ends within a minute with a checkpoint.
fn ctl_stop(pid: i32, run_dir: &Path) {
    let out = Command::new(BIN)
        .arg("ctl")
        .arg(run_dir)
        .args(["stop", "--wait", "30"])
        .output()
        .expect("run ctl");
    assert!(
        out.status.success(),
        "ctl stop: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until(
        &format!("the detached process {pid} to end after ctl stop"),
        Duration::from_secs(60),
        || ended(pid),
    );
    assert!(
        !files_in(&run_dir.join("checkpoints")).is_empty(),
        "a checkpoint was saved on the way out"
    );
}

/// The last line on the screen after a detach names `nasp-tui watch <run>`.
fn wait_for_detach_line(t: &Tmux, run_dir: &Path) -> String {
    let want = format!("come back with: nasp-tui watch {}", run_dir.display());
    let s = t.wait_for("the detach message", Duration::from_secs(30), |s| {
        s.lines().rev().find(|l| !l.trim().is_empty()) == Some(want.as_str())
    });
    assert_eq!(
        t.display("#{alternate_on}"),
        "0",
        "the terminal is restored"
    );
    assert!(s.contains("nasp-tui: detached"), "{s}");
    s
}

/// `d`: the terminal is restored, the last line says how to come back, the shell gets its
/// prompt back at once (the stand-in exits 0) while the search goes on stepping without writing
/// to the terminal; a new watcher re-attaches to it, and when `ctl stop` ends the run (with a
/// checkpoint) the watcher goes on as the run's replay.
#[test]
#[cfg_attr(no_tmux, ignore = "needs tmux")]
fn d_detaches_and_the_search_keeps_stepping() {
    require();
    let r = Running::start("detach", "");
    let (t, pid, run_dir) = (&r.t, r.pid, r.run_dir());
    let tty = t.display("#{pane_tty}");
    t.keys(&["d"]);
    let shown = wait_for_detach_line(t, &run_dir);
    assert_eq!(
        wait_exit(&r.exit_file(), Duration::from_secs(10)),
        "EXIT=0",
        "the shell's command ended (its prompt is back) right after the detach"
    );
    assert!(ended(r.stand_in));
    assert_keeps_stepping(pid, &run_dir);
    assert_off_the_terminal(pid, &run_dir, &tty);
    assert_eq!(t.screen(), shown, "nothing written after the detach line");
    let w = reattach("reattach", &run_dir);
    ctl_stop(pid, &run_dir);
    w.wait_for(
        "the watcher's replay of the ended run",
        Duration::from_secs(30),
        |s| s.contains("REPLAY") && s.contains("the run ended while watched"),
    );
    w.keys(&["q"]);
    assert_eq!(t.screen(), shown, "nothing written on the way out either");
}

/// A new watcher (in a terminal of its own) attached to the run: its step count moves.
fn reattach(name: &str, run_dir: &Path) -> Tmux {
    let w = Tmux::start(
        name,
        &format!(
            "sh -c 'env LANG=C.UTF-8 {BIN} watch {}; sleep 600'",
            run_dir.display()
        ),
    );
    let s = w.wait_for("the watcher", Duration::from_secs(30), |s| {
        s.contains("RUNNING") && step(s).is_some()
    });
    let first = step(&s).unwrap_or(0);
    w.wait_for("the watched step to move", Duration::from_secs(30), |s| {
        step(s).is_some_and(|n| n > first)
    });
    w
}

/// SIGHUP (default `ui.on_hangup = "detach"`): a checkpoint, the detach message, the search
/// steps on; SIGTERM still stops it (checkpoint, exit 130).
#[test]
#[cfg_attr(no_tmux, ignore = "needs tmux")]
fn sighup_checkpoints_and_detaches() {
    require();
    let r = Running::start("hupdetach", "");
    let (t, pid, run_dir) = (&r.t, r.pid, r.run_dir());
    kill("-HUP", pid);
    wait_for_detach_line(t, &run_dir);
    wait_until("a checkpoint after SIGHUP", Duration::from_secs(30), || {
        !files_in(&run_dir.join("checkpoints")).is_empty()
    });
    assert_eq!(
        wait_exit(&r.exit_file(), Duration::from_secs(10)),
        "EXIT=0",
        "the stand-in left at the detach"
    );
    assert_keeps_stepping(pid, &run_dir);
    kill("-HUP", pid);
    kill("-INT", pid);
    assert_keeps_stepping(pid, &run_dir);
    kill("-TERM", pid);
    wait_until(
        "SIGTERM to end the detached search",
        Duration::from_secs(60),
        || ended(pid),
    );
    assert_eq!(status(&run_dir)["state"], "stopped", "{}", status(&run_dir));
}

/// The terminal goes away (the tmux server is killed, as when ssh drops) under the default
/// `ui.on_hangup = "detach"`: the search steps on, off the dead terminal, until `ctl stop`.
#[test]
#[cfg_attr(no_tmux, ignore = "needs tmux")]
fn losing_the_terminal_leaves_the_search_stepping() {
    require();
    let r = Running::start("gonedetach", "");
    let (pid, run_dir) = (r.pid, r.run_dir());
    let tty = r.t.display("#{pane_tty}");
    assert!(r.t.cmd(&["kill-server"]).status.success());
    assert_keeps_stepping(pid, &run_dir);
    assert_off_the_terminal(pid, &run_dir, &tty);
    let w = reattach("gonewatch", &run_dir);
    w.keys(&["q"]);
    w.wait_for("the watcher's dialog", Duration::from_secs(10), |s| {
        s.contains("Leave the watcher?")
    });
    w.keys(&["q"]);
    assert_keeps_stepping(pid, &run_dir);
    ctl_stop(pid, &run_dir);
}

/// A headless search in a terminal that goes away (default `ui.on_hangup = "detach"`): a
/// checkpoint, then it steps on with its output in the run's log, and a watcher attaches to it.
#[test]
#[cfg_attr(no_tmux, ignore = "needs tmux")]
fn a_headless_search_survives_a_lost_terminal() {
    require();
    let tmp = tempfile::tempdir().expect("tempdir");
    let (run_dir, exit_file) = (tmp.path().join("run"), tmp.path().join("exit"));
    let t = Tmux::start(
        "headlessgone",
        &search_command(&run_dir, &exit_file, tmp.path(), "--headless"),
    );
    t.wait_for("progress lines", Duration::from_secs(180), |s| {
        s.contains("ms/step")
    });
    let pid = status(&run_dir)["pid"].as_i64().expect("pid") as i32;
    let guard = Killer(pid);
    let tty = t.display("#{pane_tty}");
    assert!(t.cmd(&["kill-server"]).status.success());
    wait_until(
        "a checkpoint after the hangup",
        Duration::from_secs(30),
        || !files_in(&run_dir.join("checkpoints")).is_empty(),
    );
    assert_keeps_stepping(pid, &run_dir);
    assert_off_the_terminal(pid, &run_dir, &tty);
    let log = std::fs::read_to_string(run_dir.join("log.txt")).unwrap_or_default();
    assert!(
        log.contains("SIGHUP: saving a checkpoint and going on"),
        "{log}"
    );
    let w = reattach("headlesswatch", &run_dir);
    drop(w);
    assert_keeps_stepping(pid, &run_dir);
    ctl_stop(pid, &run_dir);
    drop(guard);
}

/// Kills a process left running by a failed test.
struct Killer(i32);

impl Drop for Killer {
    fn drop(&mut self) {
        if !ended(self.0) {
            let _ = Command::new("kill")
                .args(["-KILL", &self.0.to_string()])
                .status();
        }
    }
}
