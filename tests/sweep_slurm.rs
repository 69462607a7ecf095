//! `nasp-tui sweep --launcher slurm` on a real one-node Slurm cluster on this machine
//! (`scripts/slurm-local.sh start`, run here when the cluster is not up; it needs root). A
//! sweep of three tiny searches completes and the runs table shows the scheduler's states;
//! preempted tasks (`scontrol requeue`, and the time-limit warning signal) come back from their
//! checkpoints with the numbers of an uninterrupted run; a cancelled task shows CANCELLED.
//! Without root and without a running cluster (`build.rs` sets `no_slurm`) they are reported as
//! ignored; under `CI` they run, and fail without one.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::Duration;

use common::{bin, epoch_metrics as epochs, fixture, run_status as status, text, wait_until};
use nasp_tui::sweep::sched::SchedCache;
use nasp_tui::tui::watch::refresh_rows;

/// The cluster has two CPUs: one test at a time.
static CLUSTER: Mutex<bool> = Mutex::new(false);

fn script() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scripts/slurm-local.sh"
    ))
}

/// Makes sure the cluster is up (started here when it is not and this is root); fails the test
/// when it cannot be.
fn cluster_up() {
    let up = || {
        Command::new(script())
            .arg("status")
            .status()
            .is_ok_and(|s| s.success())
    };
    if up() {
        return;
    }
    // SAFETY: geteuid has no preconditions.
    assert!(
        unsafe { libc::geteuid() } == 0,
        "no Slurm cluster up and not root (run scripts/slurm-local.sh start as root); under CI the Slurm tests must run"
    );
    let o = Command::new(script())
        .arg("start")
        .output()
        .expect("run slurm-local.sh");
    assert!(o.status.success(), "slurm-local.sh start: {}", text(&o));
    assert!(up(), "the cluster is not up after slurm-local.sh start");
}

fn sweep(dir: &Path, args: &[&str]) -> Output {
    let cfg = fixture("tiny.toml");
    Command::new(bin())
        .args([
            "sweep",
            "--launcher",
            "slurm",
            "--config",
            cfg.to_str().unwrap(),
            "--dir",
        ])
        .arg(dir)
        .args(common::SYNTHETIC)
        .args(args)
        // One libtorch thread, fixed, for the batch tasks too (they inherit it): a test compares
        // a requeued run's numbers with the same run's alone (`common::tiny_search`), and
        // libtorch's sums depend on the thread count.
        .env("OMP_NUM_THREADS", "1")
        .output()
        .expect("run nasp-tui sweep")
}

fn job_id(dir: &Path) -> String {
    let t = std::fs::read_to_string(dir.join("sweep.toml")).unwrap();
    let v: toml::Table = toml::from_str(&t).unwrap();
    let jobs = v["jobs"].as_array().unwrap();
    jobs.last().unwrap()["job_id"].as_str().unwrap().to_string()
}

/// Per run name: (the run's state, the scheduler column), as the runs table reads them now.
fn table(dir: &Path) -> HashMap<String, (String, String)> {
    let mut infos = HashMap::new();
    let mut notes = Vec::new();
    let rows = refresh_rows(
        &[dir.to_path_buf()],
        &mut infos,
        &mut SchedCache::default(),
        &mut notes,
    );
    rows.into_iter()
        .map(|r| {
            (
                r.name.clone(),
                (r.state.to_string(), r.sched.unwrap_or_default()),
            )
        })
        .collect()
}

fn step(run: &Path) -> u64 {
    status(run)["step"].as_u64().unwrap_or(0)
}

fn scontrol(args: &[&str]) {
    let o = Command::new("scontrol")
        .args(args)
        .output()
        .expect("scontrol");
    assert!(o.status.success(), "scontrol {args:?}: {}", text(&o));
}

#[test]
#[cfg_attr(no_slurm, ignore = "needs a Slurm cluster (or root to start one)")]
fn three_searches_complete_and_the_table_shows_their_scheduler_states() {
    let _one = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    cluster_up();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sw");
    let o = sweep(&dir, &["--seeds", "3", "--set", "train.epochs=1"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("submitted job array"), "{}", text(&o));
    let job = job_id(&dir);
    // Again at once: the tasks are queued or running, nothing is submitted twice.
    let o = sweep(&dir, &["--seeds", "3", "--set", "train.epochs=1"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("nothing to submit"), "{}", text(&o));
    assert_eq!(job_id(&dir), job);
    let script = std::fs::read_to_string(dir.join("sweep.sbatch")).unwrap();
    assert!(script.contains("#SBATCH --requeue"), "{script}");
    // Watch the table until every task has completed; note every scheduler state seen.
    let mut seen: HashSet<String> = HashSet::new();
    wait_until("three COMPLETED tasks", Duration::from_secs(120), || {
        let t = table(&dir);
        for (_, sched) in t.values() {
            seen.insert(sched.clone());
        }
        t.len() == 3
            && t.values()
                .all(|(state, sched)| state == "FINISHED" && sched.ends_with("COMPLETED"))
    });
    let host = nasp_tui::rundir::status::host_name();
    assert!(
        seen.iter()
            .any(|s| s.ends_with(&format!("RUNNING on {host}"))),
        "never saw a task RUNNING on {host}: {seen:?}"
    );
    let t = table(&dir);
    for i in 0..3 {
        let name = format!("seed{}", i + 1);
        assert_eq!(t[&name].1, format!("{job}_{i} COMPLETED"), "{t:?}");
    }
    // The table as drawn: the scheduler column beside the run's own state.
    let rows = refresh_rows(
        std::slice::from_ref(&dir),
        &mut HashMap::new(),
        &mut SchedCache::default(),
        &mut Vec::new(),
    );
    let cols = nasp_tui::ui::runs::Columns::of(&rows, 120);
    let line = nasp_tui::ui::runs::row_text(&rows[0], &cols);
    assert!(
        line.contains("FINISHED") && line.contains("COMPLETED"),
        "{line}"
    );
    // Submitting the same sweep again submits nothing.
    let o = sweep(&dir, &["--seeds", "3", "--set", "train.epochs=1"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("nothing to submit"), "{}", text(&o));
    assert_eq!(job_id(&dir), job);
}

#[test]
#[cfg_attr(no_slurm, ignore = "needs a Slurm cluster (or root to start one)")]
fn preempted_tasks_continue_from_their_checkpoints() {
    let _one = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    cluster_up();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sw");
    let o = sweep(&dir, &["--seed-list", "7,8", "--set", "train.epochs=2"]);
    assert!(o.status.success(), "{}", text(&o));
    let job = job_id(&dir);
    let (a, b) = (dir.join("seed7"), dir.join("seed8"));
    wait_until("both runs past step 3", Duration::from_secs(120), || {
        step(&a) >= 3 && step(&b) >= 3
    });
    // Task 0 is preempted (the controller requeues it: SIGTERM to its processes); task 1 gets
    // the warning a time limit gives (SIGUSR1 to the batch shell), which requeues it itself.
    scontrol(&["requeue", &format!("{job}_0")]);
    let o = Command::new("scancel")
        .args(["--batch", "--signal=USR1", &format!("{job}_1")])
        .output()
        .unwrap();
    assert!(o.status.success(), "scancel: {}", text(&o));
    let mut seen: HashSet<String> = HashSet::new();
    wait_until(
        "both runs stopped with a checkpoint and requeued",
        Duration::from_secs(60),
        || {
            let t = table(&dir);
            for (_, s) in t.values() {
                seen.insert(s.clone());
            }
            t.values()
                .all(|(state, s)| state == "STOPPED" && s.contains("REQUEUED"))
        },
    );
    let stopped = (step(&a), step(&b));
    assert!(stopped.0 < 20 && stopped.1 < 20, "{stopped:?}");
    // Slurm holds a requeued job back for a while (BeginTime); let them start now, though not
    // within the second of the requeue (the node refuses a credential of that second as revoked).
    std::thread::sleep(Duration::from_secs(2));
    for i in 0..2 {
        scontrol(&["update", &format!("jobid={job}_{i}"), "StartTime=now"]);
    }
    wait_until(
        "both requeued tasks to complete",
        Duration::from_secs(120),
        || {
            let t = table(&dir);
            t.values()
                .all(|(state, s)| state == "FINISHED" && s.ends_with("COMPLETED"))
        },
    );
    for (run, seed) in [(&a, "7"), (&b, "8")] {
        let log = std::fs::read_to_string(run.join("log.txt")).unwrap();
        assert!(log.contains("resumed from"), "{log}");
        assert_eq!(step(run), 20);
        let alone = tmp.path().join(format!("alone{seed}"));
        let o = common::tiny_search(
            &alone,
            &["--set", "train.epochs=2", "--set", &format!("seed={seed}")],
        );
        assert!(o.status.success(), "{}", text(&o));
        assert_eq!(
            epochs(&alone),
            epochs(run),
            "seed {seed}: a step done twice or lost"
        );
    }
    let out: String = (0..2)
        .map(|i| std::fs::read_to_string(dir.join(format!("slurm/{job}_{i}.out"))).unwrap())
        .collect();
    assert_eq!(out.matches(", start 2").count(), 2, "{out}");
    assert!(
        out.contains("time limit near: checkpointing seed8"),
        "{out}"
    );
}

#[test]
#[cfg_attr(no_slurm, ignore = "needs a Slurm cluster (or root to start one)")]
fn a_cancelled_task_shows_cancelled() {
    let _one = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    cluster_up();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sw");
    let o = sweep(&dir, &["--seeds", "1", "--set", "train.epochs=50"]);
    assert!(o.status.success(), "{}", text(&o));
    let job = job_id(&dir);
    let run = dir.join("seed1");
    wait_until("the run to start", Duration::from_secs(60), || {
        step(&run) >= 1
    });
    let o = Command::new("scancel").arg(&job).output().unwrap();
    assert!(o.status.success(), "scancel: {}", text(&o));
    wait_until("CANCELLED", Duration::from_secs(60), || {
        let t = table(&dir);
        t["seed1"].1 == format!("{job}_0 CANCELLED") && t["seed1"].0 == "STOPPED"
    });
    // The run saved a checkpoint on the way out: a later sweep would continue it.
    assert!(std::fs::read_dir(run.join("checkpoints")).unwrap().count() > 0);
    // A run that fails (no data where the config says) shows FAILED, its task too.
    let bad = tmp.path().join("bad");
    let o = Command::new(bin())
        .args(["sweep", "--launcher", "slurm", "--config"])
        .arg(fixture("tiny.toml"))
        .arg("--dir")
        .arg(&bad)
        .args(["--set", "data.dir=\"/nonexistent\""])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let job = job_id(&bad);
    wait_until("FAILED", Duration::from_secs(60), || {
        let t = table(&bad);
        t["seed3"] == ("FAILED".to_string(), format!("{job}_0 FAILED"))
    });
}

/// A real time limit (2 minutes: the warning comes 30 s ahead, give or take Slurm's minute of
/// resolution): the task checkpoints, requeues itself and its next start resumes from that
/// checkpoint (then it is cancelled: finishing is what the other tests check). About two
/// minutes, so not in `make test`: `cargo test --release --test sweep_slurm -- --ignored`.
#[test]
#[ignore = "takes two minutes of a real Slurm time limit"]
fn a_task_at_its_time_limit_requeues_and_resumes() {
    let _one = CLUSTER.lock().unwrap_or_else(|e| e.into_inner());
    cluster_up();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sw");
    let args = [
        "--seeds",
        "1",
        "--set",
        "train.epochs=200",
        "--slurm-arg=--time=2",
    ];
    let o = sweep(&dir, &args);
    assert!(o.status.success(), "{}", text(&o));
    let job = job_id(&dir);
    let run = dir.join("seed1");
    wait_until("the time-limit warning", Duration::from_secs(150), || {
        status(&run)["state"] == "stopped" && table(&dir)["seed1"].1.contains("REQUEUED")
    });
    let stopped = step(&run);
    assert!(stopped > 0, "stopped at {stopped}");
    std::thread::sleep(Duration::from_secs(2));
    scontrol(&["update", &format!("jobid={job}_0"), "StartTime=now"]);
    wait_until(
        "the requeued task to go on",
        Duration::from_secs(60),
        || status(&run)["state"] == "running" && step(&run) > stopped,
    );
    let _ = Command::new("scancel").arg(&job).output();
    let out = std::fs::read_to_string(dir.join(format!("slurm/{job}_0.out"))).unwrap();
    assert!(out.contains("time limit near"), "{out}");
    let ckpt = run.join(format!("checkpoints/ckpt-{stopped:09}"));
    assert!(
        out.contains(&format!("resumed from {}", ckpt.display())),
        "{out}"
    );
}
