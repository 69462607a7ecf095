//! Run directories a user can trust (issue 24): a resumed run finds the data it was made on or
//! says why not; a run directory holding a run is not started over by accident.
//!
//! Each test here failed on the code before its fix; the comment above it says how.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{bin, fixture, text};

/// A CIFAR-10 binary folder of `5 × per` images whose pixels depend on `salt` (so two folders
/// of the same size hold different images).
fn fake_cifar(dir: &Path, per: usize, salt: u8) {
    std::fs::create_dir_all(dir).unwrap();
    for f in 0..5 {
        let mut bytes = Vec::with_capacity(per * 3073);
        for i in 0..per {
            let n = f * per + i;
            bytes.push((n % 10) as u8);
            bytes.extend((0..3072).map(|p| (n * 7 + p * 13 + usize::from(salt) * 101) as u8));
        }
        std::fs::write(dir.join(format!("data_batch_{}.bin", f + 1)), bytes).unwrap();
    }
}

/// `nasp-tui ARGS` run from `cwd` with no CIFAR-10 anywhere it would look by itself (no
/// `NASP_TUI_DATA`, an empty user data dir, no `./data`).
fn run_in(cwd: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .current_dir(cwd)
        .env("OMP_NUM_THREADS", "1")
        .env_remove("NASP_TUI_DATA")
        .env("XDG_DATA_HOME", cwd.join("xdg"))
        .output()
        .expect("run nasp-tui")
}

fn tiny() -> String {
    fixture("tiny.toml").display().to_string()
}

fn config_toml(run: &Path) -> toml::Table {
    toml::from_str(&std::fs::read_to_string(run.join("config.toml")).unwrap()).unwrap()
}

fn data_key(run: &Path, key: &str) -> toml::Value {
    config_toml(run)["data"][key].clone()
}

/// The run's own config.toml records the data it used, and `--resume` without `--data-dir`
/// goes on on that data; moved data is found with `--data-dir`, other data is refused naming
/// the difference and `--data-dir`.
///
/// Before: config.toml said `dataset = "auto"`, `dir = ""`; the resume went on on the
/// synthetic set (313 steps an epoch for CIFAR-10's 1,561) with a warning and exit 0.
#[test]
fn a_resume_runs_on_the_data_the_run_was_made_on() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let cifar = cwd.join("cifar");
    fake_cifar(&cifar, 128, 1);
    let run = cwd.join("run");
    let r = run.to_str().unwrap();
    let tiny = tiny();
    let o = run_in(
        cwd,
        &[
            "search",
            "--headless",
            "--config",
            &tiny,
            "--set",
            "data.dataset=\"auto\"",
            "--data-dir",
            cifar.to_str().unwrap(),
            "--run-dir",
            r,
            "--max-steps",
            "2",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let abs = cifar.canonicalize().unwrap();
    assert_eq!(data_key(&run, "dataset").as_str(), Some("cifar10"));
    assert_eq!(data_key(&run, "dir").as_str(), abs.to_str());
    assert_eq!(data_key(&run, "images").as_integer(), Some(640));
    let print = data_key(&run, "fingerprint");
    assert!(
        print
            .as_str()
            .is_some_and(|p| p.starts_with("sha256:") && p.len() == 71),
        "{print:?}"
    );

    // Resumed without --data-dir (and without --config): the same images, from the folder
    // the run recorded.
    let o = run_in(
        cwd,
        &["search", "--headless", "--resume", r, "--max-steps", "4"],
    );
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(!t.contains("synthetic"), "{t}");
    assert!(t.contains("CIFAR-10 (640 images"), "{t}");
    assert_eq!(common::run_status(&run)["steps_per_epoch"], 10);

    // The data moved: the resume says where it looked and names --data-dir ...
    let moved = cwd.join("moved");
    std::fs::rename(&cifar, &moved).unwrap();
    let o = run_in(
        cwd,
        &["search", "--headless", "--resume", r, "--max-steps", "6"],
    );
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(t.contains("--data-dir") && t.contains("missing"), "{t}");
    // ... and with --data-dir at the new folder it goes on, saying that the folder changed.
    let o = run_in(
        cwd,
        &[
            "search",
            "--headless",
            "--resume",
            r,
            "--data-dir",
            moved.to_str().unwrap(),
            "--max-steps",
            "6",
        ],
    );
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("the same images are now read from"), "{t}");
    let moved_abs = moved.canonicalize().unwrap();
    assert_eq!(data_key(&run, "dir").as_str(), moved_abs.to_str());

    // Other images of the same count: refused, naming the difference and --data-dir.
    let other = cwd.join("other");
    fake_cifar(&other, 128, 2);
    let o = run_in(
        cwd,
        &[
            "search",
            "--headless",
            "--resume",
            r,
            "--data-dir",
            other.to_str().unwrap(),
            "--max-steps",
            "8",
        ],
    );
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(
        t.contains("not the data this run was made on")
            && t.contains("data.fingerprint differs")
            && t.contains("--data-dir"),
        "{t}"
    );
    // Refused before a step: the run's config still names its own data.
    assert_eq!(data_key(&run, "dir").as_str(), moved_abs.to_str());
}

/// A checkpoint written before runs recorded their data (no fingerprint in its config, no
/// steps per epoch in its meta) resumed on data giving another number of steps per epoch:
/// refused, never silent.
///
/// Before: the run went on at 5 steps an epoch where it had 10 (exit 0).
#[test]
fn another_number_of_steps_per_epoch_is_never_silent() {
    let tmp = tempfile::tempdir().unwrap();
    let cwd = tmp.path();
    let (cifar, small) = (cwd.join("cifar"), cwd.join("small"));
    fake_cifar(&cifar, 128, 1);
    fake_cifar(&small, 64, 1);
    let run = cwd.join("run");
    let r = run.to_str().unwrap();
    let tiny = tiny();
    let o = run_in(
        cwd,
        &[
            "search",
            "--headless",
            "--config",
            &tiny,
            "--data-dir",
            cifar.to_str().unwrap(),
            "--run-dir",
            r,
            "--max-steps",
            "2",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    // Make the run look as an older nasp-tui wrote it.
    let forget = |toml: &str| {
        toml.lines()
            .filter(|l| !l.starts_with("images =") && !l.starts_with("fingerprint ="))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let cfg = std::fs::read_to_string(run.join("config.toml")).unwrap();
    std::fs::write(run.join("config.toml"), forget(&cfg)).unwrap();
    for ckpt in std::fs::read_dir(run.join("checkpoints")).unwrap() {
        let meta = ckpt.unwrap().path().join("meta.json");
        if !meta.is_file() {
            continue;
        }
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&meta).unwrap()).unwrap();
        let old = forget(v["config"].as_str().unwrap());
        v["config"] = serde_json::json!(old);
        v.as_object_mut().unwrap().remove("steps_per_epoch");
        std::fs::write(&meta, v.to_string()).unwrap();
    }
    let o = run_in(
        cwd,
        &[
            "search",
            "--headless",
            "--resume",
            r,
            "--data-dir",
            small.to_str().unwrap(),
            "--max-steps",
            "4",
        ],
    );
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(
        t.contains("10 steps per epoch") && t.contains("gives 5") && t.contains("--data-dir"),
        "{t}"
    );
}

/// A new search on a run directory that holds a run is refused (exit 2), saying how to continue
/// it and how to start fresh; nothing of the run is touched. `--resume` of the run itself goes
/// on; a sweep's run not started yet (only its `config.toml`) starts.
///
/// Before: the second search overwrote the first one's config and final genotype and mixed its
/// logs and checkpoints with them (exit 0).
#[test]
fn a_run_directory_holding_a_run_is_not_started_over() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let o = common::tiny_search(&run, &["--max-steps", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    let before: Vec<(PathBuf, Vec<u8>)> = ["config.toml", "events.jsonl", "metrics.jsonl"]
        .iter()
        .map(|f| (run.join(f), std::fs::read(run.join(f)).unwrap()))
        .collect();
    let o = common::tiny_search(&run, &["--max-steps", "3", "--set", "seed=9"]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    let r = run.display().to_string();
    assert!(
        t.contains("holds a run already")
            && t.contains(&format!("nasp-tui search --resume {r}"))
            && t.contains("does not exist yet"),
        "{t}"
    );
    for (path, bytes) in before {
        assert_eq!(
            std::fs::read(&path).unwrap(),
            bytes,
            "{} changed",
            path.display()
        );
    }
    // Continuing it is what --resume is for.
    let o = common::tiny_search(&run, &["--resume", &r, "--max-steps", "3"]);
    assert!(o.status.success(), "{}", text(&o));
    // An empty folder, or one holding only a config (a sweep's run not started), is fine.
    let planned = tmp.path().join("planned");
    std::fs::create_dir_all(&planned).unwrap();
    std::fs::copy(fixture("tiny.toml"), planned.join("config.toml")).unwrap();
    let o = common::tiny_search(&planned, &["--max-steps", "1"]);
    assert!(o.status.success(), "{}", text(&o));
}

/// `path`'s permission bits (with setgid).
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

/// Every folder and file under `dir` (itself included) with its mode, links refused.
fn modes_under(dir: &Path) -> Vec<(PathBuf, bool, u32)> {
    let mut out = vec![(dir.to_path_buf(), true, mode(dir))];
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let t = std::fs::symlink_metadata(&p).unwrap().file_type();
        assert!(!t.is_symlink(), "{} is a link", p.display());
        if t.is_dir() {
            out.extend(modes_under(&p));
        } else {
            out.push((p.clone(), false, mode(&p)));
        }
    }
    out
}

/// A tiny search into `run` under umask 000 (as on a shared folder whose users set it so),
/// with `extra` arguments.
fn search_under_umask_000(run: &Path, extra: &[&str]) -> Output {
    let tiny = tiny();
    let mut args = vec![
        "-c",
        "umask 000; exec \"$0\" \"$@\"",
        bin(),
        "search",
        "--headless",
        "--config",
        &tiny,
        "--set",
        "data.dataset=\"synthetic\"",
        "--run-dir",
        run.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    Command::new("sh")
        .args(&args)
        .env("OMP_NUM_THREADS", "1")
        .output()
        .unwrap()
}

/// Under umask 000 a run directory and all it holds are still its owner's only (folders 0700,
/// files 0600, checkpoints included), and the search makes `commands/` itself; with
/// `run.share = "group"` the group may read (0750, 0640) and write commands (`commands/` 2770).
///
/// Before: everything was 0777/0666 under umask 000, and `commands/` was made by whoever sent the
/// first command.
#[test]
fn modes_are_the_runs_not_the_umasks() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let o = search_under_umask_000(&run, &["--max-steps", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(run.join("commands").is_dir(), "the search makes its inbox");
    assert!(run.join("checkpoints/latest").is_file());
    for (p, dir, m) in modes_under(&run) {
        assert_eq!(m, if dir { 0o700 } else { 0o600 }, "{}", p.display());
    }

    let shared = tmp.path().join("shared");
    let o = search_under_umask_000(
        &shared,
        &["--max-steps", "2", "--set", "run.share=\"group\""],
    );
    assert!(o.status.success(), "{}", text(&o));
    for (p, dir, m) in modes_under(&shared) {
        let want = match (dir, p.file_name().and_then(|n| n.to_str())) {
            (true, Some("commands")) => 0o2770,
            (true, _) => 0o750,
            (false, _) => 0o640,
        };
        assert_eq!(m, want, "{:o} at {}", m, p.display());
    }
}

/// The second user's set-up: a temporary folder that `nobody` may enter and read (0755), for
/// the runs of a test that acts as that user through [`as_nobody`] (such tests need root and
/// setpriv; `--cfg no_second_user` ignores them).
fn second_user_root() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    tmp
}

/// `path` and all it holds open to everybody (`chmod -R a+rwX`), as an older nasp-tui left a run
/// directory under umask 000.
fn open_to_all(path: &Path) {
    let done = Command::new("chmod")
        .arg("-R")
        .arg("a+rwX")
        .arg(path)
        .status();
    assert!(done.unwrap().success());
}

/// `cmd` run as the user `nobody` (in group `group`, or in no group of ours), through setpriv.
fn as_nobody(group: &str, cmd: &str) -> Output {
    Command::new("setpriv")
        .args([
            "--reuid=nobody",
            &format!("--regid={group}"),
            "--clear-groups",
            "sh",
            "-c",
            cmd,
        ])
        .output()
        .unwrap()
}

/// Another user cannot read or steer a run by default, and with `run.share = "group"` a member
/// of its group can read it and drop a command into `commands/`, but not write anywhere else.
///
/// Before: under umask 002 or 000 the run's files were open to the group or to everybody.
#[test]
#[cfg_attr(
    no_second_user,
    ignore = "needs root and setpriv to act as a second user"
)]
fn another_user_reads_and_steers_only_what_the_run_shares() {
    let tmp = second_user_root();
    let root = tmp.path();
    let (private, shared) = (root.join("private"), root.join("shared"));
    let o = search_under_umask_000(&private, &["--max-steps", "1"]);
    assert!(o.status.success(), "{}", text(&o));
    let p = private.display();
    // Not in the run's group: nothing.
    for cmd in [
        format!("cat {p}/status.json"),
        format!("cat {p}/events.jsonl"),
        format!("echo '{{}}' > {p}/commands/x.json"),
    ] {
        let o = as_nobody("nogroup", &cmd);
        assert!(!o.status.success(), "{cmd}: {}", text(&o));
    }
    let o = search_under_umask_000(
        &shared,
        &["--max-steps", "1", "--set", "run.share=\"group\""],
    );
    assert!(o.status.success(), "{}", text(&o));
    // In the run's group (the owner's, root's group 0 here): reads, and writes only commands.
    let s = shared.display();
    for cmd in [
        format!("cat {s}/status.json"),
        format!("cat {s}/checkpoints/latest"),
        format!("echo '{{}}' > {s}/commands/x.json"),
    ] {
        let o = as_nobody("0", &cmd);
        assert!(o.status.success(), "{cmd}: {}", text(&o));
    }
    for cmd in [
        format!("echo x >> {s}/events.jsonl"),
        format!("ln -s /etc/passwd {s}/.status.json.planted"),
        format!("cat {p}/status.json"),
    ] {
        let o = as_nobody("0", &cmd);
        assert!(!o.status.success(), "{cmd}: {}", text(&o));
    }
}

/// A run directory left open to everybody (made by an older nasp-tui under umask 000): another
/// user puts links in place of `events.jsonl` and of `commands/`. The owner's resume writes
/// through neither: the file behind the first keeps its bytes, the folder behind the second
/// keeps its files.
///
/// Before: the resumed run appended its events to the file behind the link, and moved every
/// file of the folder behind `commands/` into a `rejected/` there.
#[test]
#[cfg_attr(
    no_second_user,
    ignore = "needs root and setpriv to act as a second user"
)]
fn another_user_cannot_turn_a_run_against_its_owner() {
    let tmp = second_user_root();
    let root = tmp.path();
    let victim = root.join("victim");
    std::fs::write(&victim, "the owner's own file\n").unwrap();
    std::fs::set_permissions(&victim, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let unrelated = root.join("unrelated");
    std::fs::create_dir(&unrelated).unwrap();
    std::fs::write(unrelated.join("notes.txt"), "keep me").unwrap();
    std::fs::set_permissions(
        &unrelated,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();

    let run = root.join("run");
    let o = common::tiny_search(&run, &["--max-steps", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    open_to_all(&run);
    let r = run.display();
    let o = as_nobody(
        "nogroup",
        &format!(
            "rm -f {r}/events.jsonl && ln -s {} {r}/events.jsonl",
            victim.display()
        ),
    );
    assert!(o.status.success(), "{}", text(&o));
    let resume = |steps: &str| {
        common::tiny_search(
            &run,
            &["--resume", run.to_str().unwrap(), "--max-steps", steps],
        )
    };
    let o = resume("12");
    let t = text(&o);
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "the owner's own file\n",
        "{t}"
    );
    assert!(
        t.contains("events.jsonl") && t.contains("symbolic link"),
        "{t}"
    );
    // The resume made the folder its owner's again: nobody else can plant anything now.
    assert_eq!(mode(&run), 0o700);

    // Opened to all again, as the older nasp-tui left it.
    open_to_all(&run);
    let o = as_nobody(
        "nogroup",
        &format!(
            "rm -rf {r}/commands && ln -s {} {r}/commands",
            unrelated.display()
        ),
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = resume("24");
    let t = text(&o);
    assert!(unrelated.join("notes.txt").is_file(), "{t}");
    assert!(!unrelated.join("rejected").exists(), "{t}");
    assert!(!o.status.success(), "{t}");
    assert!(t.contains("commands") && t.contains("symbolic link"), "{t}");
}

/// A headless tiny search long enough to be steered (50 epochs), in the background; killed when
/// dropped.
struct Running(std::process::Child);

impl Running {
    fn start(run: &Path) -> Running {
        let child = Command::new(bin())
            .args(["search", "--headless", "--config"])
            .arg(fixture("tiny.toml"))
            .args(common::SYNTHETIC)
            .arg("--run-dir")
            .arg(run)
            .args(["--set", "train.epochs=50"])
            .env("OMP_NUM_THREADS", "1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let r = Running(child);
        common::wait_until(
            "the run to be running",
            std::time::Duration::from_secs(120),
            || common::run_status(run)["state"] == "running",
        );
        r
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ctl(run: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .arg("ctl")
        .arg(run)
        .args(args)
        .output()
        .unwrap()
}

/// `ctl --wait` that times out withdraws its command: it never fires later. A wait too long for
/// the clock waits (no panic).
///
/// Before: the command stayed queued and the run acted on it afterwards (a `stop` ended the run,
/// or the next resumed one after one step); `--wait 1e300` panicked after sending.
#[test]
fn a_command_not_acknowledged_in_time_is_withdrawn() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let _search = Running::start(&run);
    let o = ctl(&run, &["stop", "--wait", "0"]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("withdrawn") && t.contains("will not run"), "{t}");
    // Four inbox polls later the run is still going, and no stop was acknowledged.
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(common::run_status(&run)["state"], "running");
    let events = std::fs::read_to_string(run.join("events.jsonl")).unwrap();
    assert!(!events.contains("\"command\":\"stop\""), "{events}");
    assert_eq!(std::fs::read_dir(run.join("commands")).unwrap().count(), 0);

    let o = ctl(&run, &["pause", "--wait", "1e300"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("pause acknowledged"), "{}", text(&o));
    let o = ctl(&run, &["resume", "--wait", "30"]);
    assert!(o.status.success(), "{}", text(&o));
}

/// A command written before the process that reads it took the run (meant for an earlier
/// process, which ended without taking it) is dropped with a warning event, not run.
///
/// Before: a `stop` left in the inbox of a stopped run ended the resumed run at its first step.
#[test]
fn a_command_meant_for_an_earlier_process_is_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let o = common::tiny_search(&run, &["--max-steps", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    std::fs::create_dir_all(run.join("commands")).unwrap();
    std::fs::write(
        run.join("commands/00000000001000000000-1-old.json"),
        r#"{"id": "00000000001000000000-1-old", "command": "stop", "written": 1000.0}"#,
    )
    .unwrap();
    let o = common::tiny_search(
        &run,
        &["--resume", run.to_str().unwrap(), "--max-steps", "25"],
    );
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert_eq!(common::run_status(&run)["step"], 25, "{t}");
    let events = std::fs::read_to_string(run.join("events.jsonl")).unwrap();
    assert!(
        events.contains("00000000001000000000-1-old (stop) was written before this process took the run: dropped"),
        "{events}"
    );
    assert!(!events.contains("\"Acknowledged\""), "{events}");
}

/// A run another host's status still holds (its heartbeat fresh: that node's clock is ahead, or
/// it went down a moment ago) is refused, saying how to take it over; `--take-over` takes it.
///
/// Before: refused with no way out but editing `status.json` by hand.
#[test]
fn a_run_wrongly_held_alive_can_be_taken_over() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let o = common::tiny_search(&run, &["--max-steps", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    let mut status = common::run_status(&run);
    status["state"] = "running".into();
    status["host"] = "a-node-that-went-down".into();
    status["pid"] = 4_194_305.into();
    let ahead = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        + 600.0;
    status["heartbeat"] = ahead.into();
    std::fs::write(run.join("status.json"), status.to_string()).unwrap();
    let r = run.to_str().unwrap();
    let o = common::tiny_search(&run, &["--resume", r, "--max-steps", "4"]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(
        t.contains("a-node-that-went-down") && t.contains("--take-over"),
        "{t}"
    );
    let o = common::tiny_search(&run, &["--resume", r, "--max-steps", "4", "--take-over"]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("took the run over from pid 4194305 on a-node-that-went-down"),
        "{t}"
    );
    assert_eq!(common::run_status(&run)["step"], 4);
}

/// Text read from a run directory reaches the terminal printable: a run named with escape
/// sequences, a status whose host sets the window title and writes the clipboard. `export`
/// prints op names only from the op table: a genotype file with an op name that would run code
/// when its text is `eval`ed is refused, and nothing of it is printed raw.
///
/// Before: `ls` and `ctl` printed the escapes raw (window title, OSC 52, clear screen); `export`
/// printed the crafted op name inside a Python literal unescaped.
#[test]
fn text_from_files_reaches_the_terminal_printable() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run\x1b]0;owned\x07\x1b[2J");
    std::fs::create_dir(&run).unwrap();
    std::fs::write(run.join("config.toml"), "").unwrap();
    let status = serde_json::json!({
        "state": "stopped", "pid": 1, "host": "node\x1b]52;c;cGF5bG9hZA==\x07",
        "heartbeat": 1.0, "started": 1.0, "algorithm": "nasp", "device": "cpu",
        "epoch": 0, "epochs": 1, "step": 3, "steps_per_epoch": 10,
        "train_acc": null, "valid_acc": null, "ms_per_step": null, "arch": null
    });
    std::fs::write(run.join("status.json"), status.to_string()).unwrap();
    let raw = |o: &Output| o.stdout.contains(&0x1b) || o.stderr.contains(&0x1b);
    let o = Command::new(bin())
        .arg("ls")
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(!raw(&o), "{:?}", text(&o));
    assert!(text(&o).contains("run\\x1b]0;owned\\x07"), "{}", text(&o));
    let o = ctl(&run, &["pause"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(!raw(&o), "{:?}", text(&o));
    assert!(text(&o).contains("node\\x1b]52;c;"), "{}", text(&o));

    let genotypes = run.join("genotypes");
    std::fs::create_dir(&genotypes).unwrap();
    let evil = "x'), __import__('os').system('touch PWNED'), ('";
    let g = serde_json::json!({
        "normal": [[evil, 0], ["skip_connect", 1]], "normal_concat": [2],
        "reduce": [["max_pool_3x3", 0], ["skip_connect", 1]], "reduce_concat": [2]
    });
    std::fs::write(genotypes.join("g.json"), g.to_string()).unwrap();
    std::fs::write(
        genotypes.join("index.jsonl"),
        "{\"step\": 3, \"file\": \"g.json\"}\n",
    )
    .unwrap();
    let o = Command::new(bin())
        .arg("export")
        .arg(&run)
        .output()
        .unwrap();
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(o.stdout.is_empty(), "{t}");
    assert!(!raw(&o), "{t:?}");
    assert!(
        t.contains("not in the op table") && t.contains("\\'"),
        "{t}"
    );
    assert!(!t.contains(evil), "{t}");
}
