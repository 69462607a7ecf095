//! `nasp-tui sweep` with the local launcher, `nasp-tui report`, and the inputs a sweep refuses
//! before anything starts (no Slurm needed: a dry run and stand-in `sbatch`/`scontrol`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{bin, epoch_metrics as epochs, fixture, run_status as status, text, wait_until};

fn data_set() -> String {
    "data.dataset=\"synthetic\"".to_string()
}

/// `nasp-tui sweep` on the tiny config with `args`, PATH as given (None: this process's).
fn sweep(dir: &Path, args: &[&str], path: Option<&str>) -> Output {
    let cfg = fixture("tiny.toml");
    let mut cmd = Command::new(bin());
    cmd.args(["sweep", "--config", cfg.to_str().unwrap(), "--dir"])
        .arg(dir)
        .args(["--set", "train.epochs=1", "--set", &data_set()])
        .args(args)
        // One libtorch thread, fixed, for the sweep's runs too (they inherit it, and it wins over
        // the sweep's share): a test compares a run's numbers with the same run's alone
        // (`common::tiny_search`), and libtorch's sums depend on the thread count.
        .env("OMP_NUM_THREADS", "1");
    if let Some(p) = path {
        cmd.env("PATH", p);
    }
    cmd.output().expect("run nasp-tui sweep")
}

fn runs_of(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("config.toml").is_file())
        .collect();
    v.sort();
    v
}

#[test]
fn a_local_sweep_runs_every_run_once_and_reports_them() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sw");
    let grid = ["--seeds", "2", "--grid", "train.lr=0.05,0.1"];
    let o = sweep(&dir, &[&grid[..], &["--wait"]].concat(), None);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("all 4 runs finished"), "{}", text(&o));
    let runs = runs_of(&dir);
    let names: Vec<String> = runs
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "seed1_train.lr-0.05",
            "seed1_train.lr-0.1",
            "seed2_train.lr-0.05",
            "seed2_train.lr-0.1"
        ]
    );
    for r in &runs {
        let s = status(r);
        assert_eq!(s["state"], "finished", "{}", r.display());
        assert_eq!(s["step"], 10, "{}: one epoch of 10 steps", r.display());
        let cfg = std::fs::read_to_string(r.join("config.toml")).unwrap();
        let name = r.file_name().unwrap().to_string_lossy().into_owned();
        let seed = if name.starts_with("seed1") { 1 } else { 2 };
        assert!(cfg.contains(&format!("seed = {seed}\n")), "{cfg}");
        let lr = if name.ends_with("0.05") {
            "lr = 0.05\n"
        } else {
            "lr = 0.1\n"
        };
        assert!(cfg.contains(lr), "{name}: {cfg}");
    }
    // Each run is what `search --headless` makes of the same settings: same seed, same steps,
    // same metrics.
    let alone = tmp.path().join("alone");
    let o = common::tiny_search(
        &alone,
        &[
            "--set",
            "train.epochs=1",
            "--set",
            "seed=2",
            "--set",
            "train.lr=0.1",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(epochs(&alone), epochs(&dir.join("seed2_train.lr-0.1")));

    // The report: four rows, the consensus, the best run.
    let o = common::run(&["report", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let md = String::from_utf8_lossy(&o.stdout).into_owned();
    let rows = md.lines().filter(|l| l.starts_with("| seed")).count();
    assert_eq!(rows, 4, "{md}");
    assert!(md.contains("| run | seed | train.lr | state |"), "{md}");
    assert!(
        md.contains("## Consensus genotype") && md.contains("of 4 runs"),
        "{md}"
    );
    assert!(md.contains("## Best run by valid accuracy"), "{md}");
    let o = common::run(&["report", "--format", "json", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).expect("report json");
    let rows = j["runs"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    let best = j["best"].as_str().expect("a best run");
    let best_acc = rows
        .iter()
        .find(|r| r["name"] == best)
        .and_then(|r| r["valid_acc"].as_f64())
        .unwrap();
    assert!(
        rows.iter()
            .all(|r| r["valid_acc"].as_f64().unwrap() <= best_acc)
    );
    assert_eq!(j["consensus"]["runs"], 4);
    // Per node two kept edges, each with its votes (at most the runs, at least one).
    let normal = j["consensus"]["normal"].as_array().unwrap();
    assert_eq!(normal.len(), 8, "{normal:?}");
    assert!(
        normal
            .iter()
            .all(|v| (1..=4).contains(&v["votes"].as_u64().unwrap()))
    );

    // A second sweep on the same folder starts nothing: no run is repeated.
    let before: Vec<f64> = runs
        .iter()
        .map(|r| status(r)["heartbeat"].as_f64().unwrap())
        .collect();
    let log_before = std::fs::read_to_string(dir.join("launcher.log")).unwrap();
    let o = sweep(&dir, &grid, None);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("nothing to start"), "{}", text(&o));
    std::thread::sleep(std::time::Duration::from_millis(500));
    let after: Vec<f64> = runs
        .iter()
        .map(|r| status(r)["heartbeat"].as_f64().unwrap())
        .collect();
    assert_eq!(before, after);
    assert_eq!(
        log_before,
        std::fs::read_to_string(dir.join("launcher.log")).unwrap()
    );

    // The same folder with another grid is refused with the difference.
    let o = sweep(&dir, &["--seeds", "2", "--grid", "train.lr=0.05,0.2"], None);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("grid train.lr: the folder has 0.05,0.1, the command asks for 0.05,0.2"),
        "{}",
        text(&o)
    );
}

fn kill(pid: u64, sig: i32) {
    // SAFETY: sending a signal to a process this test started.
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

#[test]
fn an_interrupted_sweep_continues_from_checkpoints() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sw");
    let args = ["--seed-list", "4,5", "--set", "train.epochs=2"];
    let o = sweep(&dir, &args, None);
    assert!(o.status.success(), "{}", text(&o));
    let first = dir.join("seed4");
    // The first run is under way: stop the launcher (the queue), then the run (SIGTERM: it
    // saves a checkpoint and stops), as a reboot or a kill would.
    wait_until(
        "the first run's step 3",
        std::time::Duration::from_secs(60),
        || first.join("status.json").is_file() && status(&first)["step"].as_u64().unwrap_or(0) >= 3,
    );
    let launcher: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("launcher.json")).unwrap()).unwrap();
    kill(launcher["pid"].as_u64().unwrap(), libc::SIGKILL);
    kill(status(&first)["pid"].as_u64().unwrap(), libc::SIGTERM);
    wait_until(
        "the first run to stop",
        std::time::Duration::from_secs(30),
        || status(&first)["state"] == "stopped",
    );
    let stopped_at = status(&first)["step"].as_u64().unwrap();
    assert!(stopped_at < 20, "stopped at {stopped_at}");
    assert!(
        !dir.join("seed5/status.json").exists(),
        "the second run never started"
    );
    // Running the sweep again continues the first from its checkpoint and starts the second.
    let o = sweep(&dir, &[&args[..], &["--wait"]].concat(), None);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("seed4 — to continue"), "{}", text(&o));
    assert!(text(&o).contains("seed5 — to start"), "{}", text(&o));
    let log = std::fs::read_to_string(first.join("log.txt")).unwrap();
    assert!(log.contains("resumed from"), "{log}");
    for r in runs_of(&dir) {
        assert_eq!(status(&r)["state"], "finished");
        assert_eq!(status(&r)["step"], 20);
    }
    // No step twice, none lost: the same numbers as an uninterrupted run.
    let alone = tmp.path().join("alone");
    let o = common::tiny_search(&alone, &["--set", "train.epochs=2", "--set", "seed=4"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(epochs(&alone), epochs(&first));
}

#[test]
fn bad_sweeps_are_refused_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sw");
    for (args, want) in [
        (vec!["--grid", "arch.no_such=1,2"], "no_such"),
        (vec!["--grid", "train.epochs=two,3"], "train.epochs"),
        (vec!["--grid", "train.lr"], "--grid train.lr"),
        (vec!["--seeds", "0"], "--seeds"),
        (vec!["--launcher", "pbs"], "--launcher pbs"),
    ] {
        let o = sweep(&dir, &args, None);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(text(&o).contains(want), "{args:?}: {}", text(&o));
        assert!(!dir.exists(), "{args:?} wrote {}", dir.display());
    }
    // No sbatch: said so, nothing written.
    let empty = tmp.path().join("empty-path");
    std::fs::create_dir(&empty).unwrap();
    let o = sweep(
        &dir,
        &["--launcher", "slurm"],
        Some(empty.to_str().unwrap()),
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("sbatch not found"), "{}", text(&o));
    assert!(!dir.exists());
    // A controller that does not answer: said so, nothing written, nothing submitted.
    let fake = tmp.path().join("fake-slurm");
    std::fs::create_dir(&fake).unwrap();
    let submitted = tmp.path().join("submitted");
    for (name, body) in [
        (
            "sbatch",
            format!("#!/bin/sh\ntouch {}\necho 1\n", submitted.display()),
        ),
        (
            "scontrol",
            "#!/bin/sh\necho 'Slurmctld(primary) at ctl is DOWN'\nexit 1\n".to_string(),
        ),
    ] {
        let p = fake.join(name);
        std::fs::write(&p, body).unwrap();
        std::os::unix::fs::PermissionsExt::set_mode(
            &mut std::fs::metadata(&p).unwrap().permissions(),
            0o755,
        );
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    let path = format!("{}:/usr/bin:/bin", fake.display());
    let o = sweep(&dir, &["--launcher", "slurm"], Some(&path));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("controller does not answer"),
        "{}",
        text(&o)
    );
    assert!(!dir.exists() && !submitted.exists());
    // A dry run writes the plan and the batch script and submits nothing.
    let o = sweep(
        &dir,
        &[
            "--launcher",
            "slurm",
            "--seeds",
            "3",
            "--dry-run",
            "--slurm-arg=--time=0:05:00",
        ],
        Some(&path),
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("--array=0,1,2"), "{}", text(&o));
    let script = std::fs::read_to_string(dir.join("sweep.sbatch")).unwrap();
    assert!(script.contains("#SBATCH --time=0:05:00\n"), "{script}");
    assert!(!submitted.exists(), "a dry run submitted");
    let file = std::fs::read_to_string(dir.join("sweep.toml")).unwrap();
    assert!(
        file.contains("launcher = \"slurm\"") && file.contains("jobs = []"),
        "{file}"
    );
    // A local dry run starts nothing.
    let local = tmp.path().join("local");
    let o = sweep(&local, &["--seeds", "2", "--dry-run"], None);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("would start 2 run(s)"), "{}", text(&o));
    assert!(!local.exists());
}

/// The escaped forms `rundir::printable` writes for the two sequences below.
const TITLE: &str = "\x1b]0;pwned\x07";
const TITLE_SHOWN: &str = "\\x1b]0;pwned\\x07";
const CLEAR: &str = "\x1b[2J";
const CLEAR_SHOWN: &str = "\\x1b[2J";

/// No raw escape sequence in the command's output, and `shown` (the escaped form) in it.
fn assert_escaped(o: &Output, shown: &[&str]) {
    let raw = [&o.stdout[..], &o.stderr[..]].concat();
    assert!(
        !raw.contains(&0x1b) && !raw.contains(&0x07),
        "a raw control byte reached the terminal: {:?}",
        text(o)
    );
    for s in shown {
        assert!(text(o).contains(s), "{s} not shown: {}", text(o));
    }
}

#[test]
fn sweep_lines_show_folder_names_and_values_escaped() {
    let tmp = tempfile::tempdir().unwrap();
    // A folder and a grid value carrying escape sequences: the plan and the dry-run lines
    // name both.
    let dir = tmp.path().join(format!("sw{TITLE}"));
    let grid = format!("data.dir={CLEAR},plain");
    let o = sweep(&dir, &["--grid", &grid, "--dry-run"], None);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("would start 2 run(s)"), "{}", text(&o));
    assert_escaped(&o, &[TITLE_SHOWN, CLEAR_SHOWN]);
    // The Slurm dry run names its batch script, inside the folder.
    let o = sweep(&dir, &["--launcher", "slurm", "--dry-run"], None);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("--array=0"), "{}", text(&o));
    assert_escaped(&o, &[TITLE_SHOWN]);

    // Run names read back from a sweep.toml: `sweep-run` and the local launcher name them.
    let sw = tmp.path().join("by-hand");
    let name = format!("seed1{CLEAR}");
    let finished = format!("seed2{TITLE}");
    std::fs::create_dir_all(sw.join(&name)).unwrap();
    std::fs::create_dir_all(sw.join(&finished)).unwrap();
    // A config that does not load: the run started by the launcher ends at once.
    std::fs::write(sw.join(&name).join("config.toml"), "no = [toml").unwrap();
    std::fs::write(
        sw.join(&finished).join("status.json"),
        r#"{"state":"finished","pid":1,"host":"h","heartbeat":0,"started":0,"algorithm":"","device":"","epoch":1,"epochs":1,"step":1,"steps_per_epoch":1}"#,
    )
    .unwrap();
    let toml_name = |n: &str| n.replace('\x1b', "\\u001b").replace('\x07', "\\u0007");
    std::fs::write(
        sw.join("sweep.toml"),
        format!(
            "config = \"c\"\nseeds = [1, 2]\nlauncher = \"local\"\n\
             [[runs]]\nname = \"{}\"\nseed = 1\nvalues = []\n\
             [[runs]]\nname = \"{}\"\nseed = 2\nvalues = []\n",
            toml_name(&name),
            toml_name(&finished)
        ),
    )
    .unwrap();
    let o = common::run(&["sweep-run", sw.to_str().unwrap(), &finished]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("has finished"), "{}", text(&o));
    assert_escaped(&o, &[TITLE_SHOWN]);
    let o = common::run(&["sweep-drain", sw.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("seed1{CLEAR_SHOWN}: started")),
        "{}",
        text(&o)
    );
    assert_escaped(&o, &[CLEAR_SHOWN]);
}
