//! The terminal UI in a real terminal: `nasp-tui search` inside a detached tmux session, read with
//! `tmux capture-pane`, driven with `tmux send-keys`. Needs `tmux` (Debian/Ubuntu package
//! `tmux`) and the real CIFAR-10 beside the checkout; without either it says so and passes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_nasp-tui");
const CIFAR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/cifar10");
const CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tui.toml");

/// A private tmux server (its own socket) with one session; killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(name: &str, shell_command: &str) -> Tmux {
        let socket = format!("nasp-tui-e2e-{}-{name}", std::process::id());
        let t = Tmux { socket };
        let out = t.cmd(&[
            "new-session",
            "-d",
            "-s",
            "e2e",
            "-x",
            "120",
            "-y",
            "40",
            shell_command,
        ]);
        assert!(
            out.status.success(),
            "tmux new-session: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        t
    }

    fn cmd(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run tmux")
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p", "-t", "e2e"]).stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "e2e"];
        args.extend_from_slice(keys);
        assert!(self.cmd(&args).status.success());
    }

    fn display(&self, format: &str) -> String {
        String::from_utf8_lossy(
            &self
                .cmd(&["display-message", "-p", "-t", "e2e", format])
                .stdout,
        )
        .trim()
        .to_string()
    }

    /// Polls the screen until `pred` holds; panics with the screen after `timeout`.
    fn wait_for(&self, what: &str, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            assert!(
                start.elapsed() < timeout,
                "timed out waiting for {what}; screen:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

/// The global step shown in the status line (`step N`).
fn step(screen: &str) -> Option<u64> {
    let line = screen.lines().next()?;
    let at = line.find("step ")? + 5;
    let digits: String = line[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

fn prerequisites() -> bool {
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("SKIPPED: tmux is not installed (apt-get install tmux)");
        return false;
    }
    if !Path::new(CIFAR).join("data_batch_1.bin").is_file() {
        eprintln!("SKIPPED: CIFAR-10 not found at {CIFAR}");
        return false;
    }
    true
}

/// `sh -c` line: run the search, then record its exit code and keep the pane open.
fn search_command(run_dir: &Path, exit_file: &Path, config_dir: &Path) -> String {
    format!(
        "sh -c 'env OMP_NUM_THREADS=1 LANG=C.UTF-8 NASP_TUI_CONFIG_DIR={cfg} {BIN} search --config {CONFIG} \
         --data-dir {CIFAR} --run-dir {run}; echo EXIT=$? > {exit}; sleep 600'",
        cfg = config_dir.display(),
        run = run_dir.display(),
        exit = exit_file.display(),
    )
}

fn wait_exit(exit_file: &Path, timeout: Duration) -> String {
    let start = Instant::now();
    loop {
        if let Ok(s) = std::fs::read_to_string(exit_file)
            && s.contains("EXIT=")
        {
            return s.trim().to_string();
        }
        assert!(
            start.elapsed() < timeout,
            "the process did not exit within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default()
}

/// The nasp-tui process: the child of the pane's shell.
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
fn pause_resume_export_and_save_quit_in_tmux() {
    if !prerequisites() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let run_dir = tmp.path().join("run");
    let exit_file = tmp.path().join("exit");
    let t = Tmux::start("main", &search_command(&run_dir, &exit_file, tmp.path()));

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

    // Help overlay from the key table, closed again.
    t.keys(&["?"]);
    t.wait_for("help", Duration::from_secs(5), |s| {
        s.contains("pause / resume the search")
    });
    t.keys(&["Escape"]);
    t.wait_for("help closed", Duration::from_secs(5), |s| {
        !s.contains("pause / resume the search")
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

/// A search running in its own tmux session `name`: the session, the nasp-tui process id, and
/// its temporary folder (run directory `run`, exit-code file `exit`).
struct Running {
    t: Tmux,
    pid: i32,
    tmp: tempfile::TempDir,
}

impl Running {
    fn start(name: &str) -> Running {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (run_dir, exit_file) = (tmp.path().join("run"), tmp.path().join("exit"));
        let t = Tmux::start(name, &search_command(&run_dir, &exit_file, tmp.path()));
        t.wait_for("RUNNING", Duration::from_secs(180), |s| {
            s.contains("RUNNING") && step(s).is_some()
        });
        let shell: u32 = t.display("#{pane_pid}").parse().expect("pane pid");
        let pid = child_of(shell).expect("nasp-tui process under the pane's shell");
        Running { t, pid, tmp }
    }

    fn run_dir(&self) -> PathBuf {
        self.tmp.path().join("run")
    }

    fn exit_file(&self) -> PathBuf {
        self.tmp.path().join("exit")
    }
}

#[test]
fn sighup_stops_cleanly_and_restores_the_terminal() {
    if !prerequisites() {
        return;
    }
    let r = Running::start("hup");
    let (t, pid, run_dir, exit_file) = (&r.t, r.pid, r.run_dir(), r.exit_file());
    let killed = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    assert_clean_exit(t, &exit_file, &run_dir, "EXIT=130");
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
fn sigcont_repaints_a_stale_screen() {
    if !prerequisites() {
        return;
    }
    const GARBAGE: &str = "XX-STALE-GARBAGE-XX";
    let r = Running::start("cont");
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
    let s = t.wait_for(
        "a full repaint after SIGCONT",
        Duration::from_secs(10),
        |s| !s.contains(GARBAGE),
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
/// pseudo-terminals are killed. The search must save a checkpoint and the process must end,
/// not linger on the dead terminal (crossterm's reader can spin on it forever).
#[test]
fn losing_the_terminal_saves_and_ends_the_process() {
    if !prerequisites() {
        return;
    }
    let r = Running::start("gone");
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
