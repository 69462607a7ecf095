//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod tmux;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The real CIFAR-10 beside the checkout (read-only); tests that need it fail loudly without it.
pub fn cifar_dir() -> PathBuf {
    let p = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/data/cifar10"
    ));
    assert!(
        p.join("data_batch_1.bin").is_file(),
        "real CIFAR-10 expected at {}",
        p.display()
    );
    p
}

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures")).join(name)
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_nasp-tui")
}

/// Pins the calling thread to one libtorch thread. Call it first in a test that runs libtorch
/// in this process (or in the helper through which it does). OpenMP keeps the thread count per
/// calling thread and, unset, starts one thread per core for every test thread that runs
/// libtorch; cargo runs a binary's tests on parallel threads, and OpenMP's threads spin while
/// they wait, so without this the tests would oversubscribe the cores and crawl. A worker thread
/// a test starts chooses its own count: give its config `threads = 1`.
pub fn one_libtorch_thread() {
    tch::set_num_threads(1);
}

/// Runs `nasp-tui` with `args` (headless: stdout is not a terminal here).
pub fn run(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        // One libtorch thread, fixed: tests compare this child's numbers bitwise with another
        // run's (an exact resume, a sweep's run against one alone) or against the seeds `check`
        // was calibrated with, and libtorch's sums depend on the thread count (a count that
        // follows the load, as a run's does by default, would differ between the runs compared).
        .env("OMP_NUM_THREADS", "1")
        .output()
        .expect("run nasp-tui")
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The `--set` that runs a test on the synthetic set (for the tests not about CIFAR-10).
pub const SYNTHETIC: [&str; 2] = ["--set", "data.dataset=\"synthetic\""];

/// A headless search of the tiny config into `run_dir` with extra args, on the synthetic set
/// unless `extra` names a `--data-dir`.
pub fn tiny_search(run_dir: &Path, extra: &[&str]) -> Output {
    let cfg = fixture("tiny.toml");
    let mut args = vec![
        "search",
        "--headless",
        "--config",
        cfg.to_str().unwrap(),
        "--run-dir",
        run_dir.to_str().unwrap(),
    ];
    if !extra.contains(&"--data-dir") {
        args.extend_from_slice(&SYNTHETIC);
    }
    args.extend_from_slice(extra);
    run(&args)
}

/// Waits (polling every 50 ms) until `ready` gives a value, failing the test with `what` after
/// `limit`: the one waiting loop of the tests.
pub fn wait_for<T>(
    what: &str,
    limit: std::time::Duration,
    mut ready: impl FnMut() -> Option<T>,
) -> T {
    let t = std::time::Instant::now();
    loop {
        if let Some(v) = ready() {
            return v;
        }
        assert!(
            t.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Waits (polling) until `ok`, failing the test with `what` after `limit`.
pub fn wait_until(what: &str, limit: std::time::Duration, mut ok: impl FnMut() -> bool) {
    wait_for(what, limit, || ok().then_some(()));
}

/// A run's `status.json` (null while there is none, or while it cannot be read).
pub fn run_status(run: &Path) -> serde_json::Value {
    std::fs::read_to_string(run.join("status.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

/// Per epoch of a run: (train loss, valid accuracy, global step) from its `metrics.jsonl`.
pub fn epoch_metrics(run: &Path) -> Vec<(serde_json::Value, serde_json::Value, serde_json::Value)> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| l.contains("\"kind\":\"epoch\""))
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["train_loss"].clone(),
                v["valid_acc"].clone(),
                v["global_step"].clone(),
            )
        })
        .collect()
}
