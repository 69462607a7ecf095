//! `nasp-tui watch` in a real terminal (tmux), attached to a headless search through its run
//! directory only: the step moves, `p` pauses the search process (its event log stops growing)
//! and resumes it, `c` checkpoints, `e` exports, leaving the watcher leaves the search running.
//! And a replay of a finished run, whose cursor moves, and the runs table, whose keys answer
//! while the scheduler hangs. On the synthetic set; needs tmux (see `common::tmux::require`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::tmux::{Tmux, require, step};

const BIN: &str = env!("CARGO_BIN_EXE_nasp-tui");
const TINY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tiny.toml");

/// A headless search, killed on drop.
struct Search(Child);

impl Drop for Search {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn search(run_dir: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.env("OMP_NUM_THREADS", "1")
        .args([
            "search",
            "--headless",
            "--config",
            TINY,
            "--set",
            "data.dataset=synthetic",
            "--run-dir",
        ])
        .arg(run_dir)
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

fn watch_command(args: &str, exit_file: &Path) -> String {
    format!(
        "sh -c 'env LANG=C.UTF-8 NASP_TUI_CONFIG_DIR=/nonexistent {BIN} watch {args}; echo EXIT=$? > {}; sleep 600'",
        exit_file.display()
    )
}

fn wait_file(path: &Path, timeout: Duration) -> String {
    common::wait_for(&format!("{}", path.display()), timeout, || {
        std::fs::read_to_string(path)
            .ok()
            .filter(|s| s.contains("EXIT="))
            .map(|s| s.trim().to_string())
    })
}

fn log_len(run: &Path) -> u64 {
    std::fs::metadata(run.join("events.jsonl")).map_or(0, |m| m.len())
}

fn status_step(run: &Path) -> u64 {
    let text = std::fs::read_to_string(run.join("status.json")).unwrap_or_default();
    serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("step").and_then(serde_json::Value::as_u64))
        .unwrap_or(0)
}

#[test]
#[cfg_attr(no_tmux, ignore = "needs tmux")]
fn a_watcher_steers_a_headless_search_and_leaves_it_running() {
    require();
    let dir = tempfile::tempdir().expect("tempdir");
    let run: PathBuf = dir.path().join("live");
    let _search = Search(
        search(&run, &["--set", "train.epochs=200"])
            .spawn()
            .expect("start the search"),
    );
    let start = Instant::now();
    while !run.join("config.toml").is_file() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the run directory did not appear"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let exit_file = dir.path().join("exit");
    let t = Tmux::start(
        "live",
        &watch_command(&run.display().to_string(), &exit_file),
    );
    let s = t.wait_for("steps", Duration::from_secs(60), |s| {
        step(s).is_some_and(|n| n > 0)
    });
    let first = step(&s).expect("a step");
    t.wait_for("the step to move", Duration::from_secs(30), |s| {
        step(s).is_some_and(|n| n > first)
    });

    // p: the search process pauses; its event log stops growing.
    t.keys(&["p"]);
    t.wait_for("PAUSED", Duration::from_secs(30), |s| s.contains("PAUSED"));
    let len = log_len(&run);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(log_len(&run), len, "the paused search wrote no event");
    t.keys(&["p"]);
    t.wait_for("RUNNING", Duration::from_secs(30), |s| {
        s.contains("RUNNING")
    });
    let resumed = step(&t.screen()).unwrap_or(0);
    t.wait_for("the step to move again", Duration::from_secs(30), |s| {
        step(s).is_some_and(|n| n > resumed)
    });

    // c and e: the run answers through its log; the files are there.
    t.keys(&["c"]);
    t.wait_for("checkpoint saved", Duration::from_secs(60), |s| {
        s.contains("checkpoint saved")
    });
    assert!(
        run.join("checkpoints/latest").exists(),
        "a checkpoint on disk"
    );
    t.keys(&["e"]);
    t.wait_for("genotype exported", Duration::from_secs(60), |s| {
        s.contains("genotype exported")
    });

    // q offers leave / stop / cancel; leaving leaves the search running.
    t.keys(&["q"]);
    t.wait_for("the watcher's dialog", Duration::from_secs(10), |s| {
        s.contains("Leave the watcher?")
    });
    t.keys(&["q"]);
    assert_eq!(wait_file(&exit_file, Duration::from_secs(10)), "EXIT=0");
    let before = status_step(&run);
    let start = Instant::now();
    while status_step(&run) <= before {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the search stopped with the watcher"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
#[cfg_attr(no_tmux, ignore = "needs tmux")]
fn a_finished_run_opens_in_replay_and_the_cursor_moves() {
    require();
    let dir = tempfile::tempdir().expect("tempdir");
    let run = dir.path().join("done");
    let status = search(&run, &["--max-steps", "12"])
        .status()
        .expect("search");
    assert!(status.success());
    let exit_file = dir.path().join("exit");
    let t = Tmux::start(
        "replay",
        &watch_command(&run.display().to_string(), &exit_file),
    );
    let s = t.wait_for("REPLAY", Duration::from_secs(20), |s| s.contains("REPLAY"));
    assert_eq!(step(&s), Some(12), "opens at the end:\n{s}");
    t.keys(&["Left", "Left", "Left"]);
    let s = t.wait_for("the cursor to move back", Duration::from_secs(10), |s| {
        step(s).is_some_and(|n| n < 12)
    });
    assert!(s.contains("REPLAY"));
    t.keys(&["Home"]);
    // The first snapshot is the one before the first step.
    t.wait_for("the first snapshot", Duration::from_secs(10), |s| {
        step(s) == Some(0)
    });
    t.keys(&["q"]);
    assert_eq!(wait_file(&exit_file, Duration::from_secs(10)), "EXIT=0");
}

#[test]
#[cfg_attr(no_tmux, ignore = "needs tmux")]
fn the_runs_table_lists_runs_and_opens_one() {
    require();
    let dir = tempfile::tempdir().expect("tempdir");
    for name in ["alpha", "beta"] {
        let status = search(&dir.path().join(name), &["--max-steps", "3"])
            .status()
            .expect("search");
        assert!(status.success());
    }
    let exit_file = dir.path().join("exit");
    let t = Tmux::start(
        "table",
        &watch_command(&dir.path().display().to_string(), &exit_file),
    );
    let s = t.wait_for("the table", Duration::from_secs(20), |s| {
        s.contains("alpha") && s.contains("beta") && s.contains("consensus")
    });
    assert!(s.matches("FINISHED").count() >= 2, "{s}");
    assert!(s.contains("of 2"), "the consensus counts both runs:\n{s}");
    t.keys(&["Enter"]);
    t.wait_for("a replay", Duration::from_secs(20), |s| {
        s.contains("REPLAY")
    });
    t.keys(&["Escape"]);
    t.wait_for("the table again", Duration::from_secs(20), |s| {
        s.contains("consensus")
    });
    t.keys(&["q"]);
    assert_eq!(wait_file(&exit_file, Duration::from_secs(10)), "EXIT=0");
}

/// The runs table of a Slurm sweep whose `squeue` and `sacct` hang (scripts that sleep, first
/// on `PATH`): the table draws at once, and keys answer within a second, quit included.
#[test]
#[cfg_attr(no_tmux, ignore = "needs tmux")]
fn the_runs_table_answers_keys_while_the_scheduler_hangs() {
    use std::os::unix::fs::PermissionsExt;
    require();
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    for tool in ["squeue", "sacct"] {
        let path = bin.join(tool);
        std::fs::write(&path, "#!/bin/sh\nsleep 20\n").expect("script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let sweep = dir.path().join("sweep");
    for run in ["r0", "r1"] {
        std::fs::create_dir_all(sweep.join(run)).expect("run dir");
        std::fs::write(sweep.join(run).join("config.toml"), "seed = 1\n").expect("config");
    }
    std::fs::write(
        sweep.join("sweep.toml"),
        "config = \"c.toml\"\nseeds = [1, 2]\nlauncher = \"slurm\"\n\n\
         [[runs]]\nname = \"r0\"\nseed = 1\nvalues = []\n\n\
         [[runs]]\nname = \"r1\"\nseed = 2\nvalues = []\n\n\
         [[jobs]]\njob_id = \"41\"\ntasks = [0, 1]\nsubmitted = 0.0\n",
    )
    .expect("sweep.toml");
    let exit_file = dir.path().join("exit");
    let t = Tmux::start(
        "hang",
        &format!(
            "sh -c 'env PATH={}:$PATH LANG=C.UTF-8 NASP_TUI_CONFIG_DIR=/nonexistent {BIN} watch {}; echo EXIT=$? > {}; sleep 600'",
            bin.display(),
            sweep.display(),
            exit_file.display()
        ),
    );
    t.wait_for("the table", Duration::from_secs(5), |s| {
        s.contains("runs:") && s.contains("sort age")
    });
    t.keys(&["s"]);
    t.wait_for("the sort key's answer", Duration::from_secs(1), |s| {
        s.contains("sort name")
    });
    t.keys(&["q"]);
    assert_eq!(wait_file(&exit_file, Duration::from_secs(1)), "EXIT=0");
}

#[test]
fn a_folder_that_is_not_a_run_is_refused_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(BIN)
        .arg("watch")
        .arg(dir.path())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&dir.path().display().to_string()), "{err}");
}
