//! The run directory as an interface between processes: `ctl` with and without a live owner, a
//! second search on an owned directory refused, a command file that is not one moved aside with
//! an error event, and what `events.jsonl`, `status.json` and `ls` say.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{bin, fixture, text};

/// A headless tiny search long enough to be steered (50 epochs), in the background.
struct Running(Child);

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
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let r = Running(child);
        wait_for(run, "\"state\":\"running\"", Duration::from_secs(120));
        r
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// Waits until `<run>/status.json` contains `needle`.
fn wait_for(run: &Path, needle: &str, limit: Duration) {
    common::wait_until(&format!("status.json to say {needle}"), limit, || {
        read(&run.join("status.json")).contains(needle)
    });
}

fn ctl(run: &Path, args: &[&str]) -> std::process::Output {
    Command::new(bin())
        .arg("ctl")
        .arg(run)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn ctl_steers_a_live_run_and_refuses_without_one() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let mut search = Running::start(&run);

    // A second search on the same directory is refused, naming the owner's pid.
    let pid = search.0.id();
    let second = common::tiny_search(&run, &["--max-steps", "2"]);
    let t = text(&second);
    assert_eq!(second.status.code(), Some(1), "{t}");
    assert!(
        t.contains("in use by pid") && t.contains(&pid.to_string()),
        "{t}"
    );
    assert!(
        read(&run.join("status.json")).contains(&format!("\"pid\":{pid}")),
        "the refused search must not take the status over"
    );

    // Pause, acknowledged; the step count stops.
    let o = ctl(&run, &["pause", "--wait", "30"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("pause acknowledged"), "{}", text(&o));
    wait_for(&run, "\"state\":\"paused\"", Duration::from_secs(30));
    let events = read(&run.join("events.jsonl"));
    assert!(
        events.contains("\"Acknowledged\""),
        "no acknowledgement recorded"
    );
    assert!(events.contains("\"Paused\""));

    // A command file that is not one: moved aside, said as an error event.
    let inbox = run.join("commands");
    std::fs::write(inbox.join("zz-bad.json"), "{\"command\": \"dance\"}").unwrap();
    let o = ctl(&run, &["resume", "--wait", "30"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(inbox.join("rejected/zz-bad.json").is_file());
    common::wait_until(
        "an error event for the bad file",
        Duration::from_secs(30),
        || read(&run.join("events.jsonl")).contains("zz-bad.json"),
    );
    wait_for(&run, "\"state\":\"running\"", Duration::from_secs(30));

    // `ls` shows it running.
    let ls = Command::new(bin())
        .arg("ls")
        .arg(dir.path())
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&ls.stdout);
    assert!(
        listing.contains("RUNNING") && listing.contains("run"),
        "{listing}"
    );

    // Export: the genotype as text and JSON, and its two cells drawn beside them (the path of
    // the monitor's `e`), every op of the exported genotype written in its cell's figure.
    let o = ctl(&run, &["export", "--wait", "30"]);
    assert!(o.status.success(), "{}", text(&o));
    let genotypes = run.join("genotypes");
    let exported = |suffix: &str| {
        std::fs::read_dir(&genotypes)
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| {
                let n = p.file_name().unwrap().to_string_lossy();
                n.starts_with("export-step") && n.ends_with(suffix)
            })
    };
    common::wait_until("the exported cells", Duration::from_secs(30), || {
        exported("-reduce.svg").is_some()
    });
    let g = nasp_tui::genotype::Genotype::from_json(&read(&exported(".json").unwrap())).unwrap();
    for (suffix, ops) in [("-normal.svg", &g.normal), ("-reduce.svg", &g.reduce)] {
        let svg = read(&exported(suffix).unwrap());
        assert!(
            svg.starts_with("<svg") && svg.contains("run (nasp)"),
            "{svg}"
        );
        for (op, _) in ops.iter() {
            assert!(
                svg.contains(&format!(">{op}</text>")),
                "{suffix}: {op} missing"
            );
        }
    }

    // Stop with a checkpoint, then the run has no live owner: ctl says so (exit 1).
    let o = ctl(&run, &["stop", "--wait", "60"]);
    assert!(o.status.success(), "{}", text(&o));
    let status = search.0.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert!(run.join("checkpoints/latest").is_file());
    wait_for(&run, "\"state\":\"stopped\"", Duration::from_secs(5));
    let o = ctl(&run, &["pause", "--wait", "5"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("no live process owns"), "{}", text(&o));
    // Nothing was left in the inbox for a later resume to pick up.
    let left: Vec<_> = std::fs::read_dir(&inbox)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.path().is_file())
        .collect();
    assert!(left.is_empty(), "{left:?}");

    // Bad uses: an unknown command (2), a folder that is not a run (2).
    assert_eq!(ctl(&run, &["dance"]).status.code(), Some(2));
    assert_eq!(ctl(dir.path(), &["pause"]).status.code(), Some(2));
}

#[test]
fn a_killed_run_is_stale() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let mut search = Running::start(&run);
    // A checkpoint to continue from (a run directory holding a run is continued, not started
    // over: issue 24).
    let o = ctl(&run, &["checkpoint", "--wait", "60"]);
    assert!(o.status.success(), "{}", text(&o));
    search.0.kill().unwrap();
    search.0.wait().unwrap();
    // Its status still says running, but the pid is gone: once the heartbeat is old (30 s) it
    // is STALE. Age the heartbeat instead of waiting.
    let p = run.join("status.json");
    let mut s: serde_json::Value = serde_json::from_str(&read(&p)).unwrap();
    s["heartbeat"] = serde_json::json!(s["heartbeat"].as_f64().unwrap() - 120.0);
    std::fs::write(&p, s.to_string()).unwrap();
    let ls = Command::new(bin())
        .arg("ls")
        .arg(dir.path())
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&ls.stdout);
    assert!(listing.contains("STALE"), "{listing}");
    // A stale owner does not block a new search in its directory.
    let next = s["step"].as_u64().unwrap() + 2;
    let o = common::tiny_search(
        &run,
        &[
            "--resume",
            run.to_str().unwrap(),
            "--max-steps",
            &next.to_string(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
}
