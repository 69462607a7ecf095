//! A search that shares the machine slows down by its share: two tiny headless searches at once,
//! and one beside a busy CPU, each make at least a third of the progress one alone makes in the
//! same wall time. With libtorch's OpenMP threads spinning long while they wait and a fixed two
//! threads (the old default), two searches on two cores stalled each other to almost nothing
//! (issue 27, BENCHMARKS.md). Run with `NASP_TUI_OMP_WAIT=1 NASP_TUI_THREADS=2` in the
//! environment (the old wait, a fixed count), this test fails.
//!
//! The children run without `OMP_NUM_THREADS`, `OMP_WAIT_POLICY` and `GOMP_SPINCOUNT` (in case the
//! caller set them), so they choose their threading themselves, as a user's search does.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn start(run: &Path) -> Child {
    Command::new(common::bin())
        .args([
            "search",
            "--headless",
            "--device",
            "cpu",
            "--set",
            "data.dataset=\"synthetic\"",
            "--set",
            "data.limit=4000",
            "--set",
            "model.channels=4",
            "--set",
            "model.cells=3",
            "--set",
            "train.batch_size=16",
            "--set",
            "train.epochs=1000",
            "--run-dir",
        ])
        .arg(run)
        .env_remove("OMP_NUM_THREADS")
        .env_remove("OMP_WAIT_POLICY")
        .env_remove("GOMP_SPINCOUNT")
        .env_remove("NASP_TUI_OMP_WAIT")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start a search")
}

fn step(run: &Path) -> u64 {
    common::run_status(run)["step"].as_u64().unwrap_or(0)
}

/// Steps each of `runs` makes over `span`, measured after all have made their first steps.
fn progress(runs: &[&Path], span: Duration) -> Vec<u64> {
    let mut children: Vec<Child> = runs.iter().map(|r| start(r)).collect();
    common::wait_until(
        "the searches' first steps",
        Duration::from_secs(120),
        || runs.iter().all(|r| step(r) > 2),
    );
    let before: Vec<u64> = runs.iter().map(|r| step(r)).collect();
    let t = Instant::now();
    std::thread::sleep(span);
    let after: Vec<u64> = runs.iter().map(|r| step(r)).collect();
    let elapsed = t.elapsed();
    for c in &mut children {
        let _ = c.kill();
        let _ = c.wait();
    }
    assert!(elapsed < span * 2, "the clock slipped: {elapsed:?}");
    after.iter().zip(&before).map(|(a, b)| a - b).collect()
}

#[test]
fn two_searches_at_once_each_keep_a_third_of_one_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    let span = Duration::from_secs(10);
    let alone = progress(&[&a], span)[0];
    let both = progress(&[&b, &c], span);
    let busy = beside_a_busy_cpu(|| progress(&[&dir.path().join("d")], span)[0]);
    eprintln!("steps in {span:?}: alone {alone}, two at once {both:?}, beside a busy CPU {busy}");
    assert!(
        alone >= 15,
        "one search alone made only {alone} steps in {span:?}"
    );
    for (i, n) in both.iter().enumerate() {
        assert!(
            3 * n >= alone,
            "search {i} of two at once made {n} steps, one alone {alone} (in {span:?} each)"
        );
    }
    assert!(
        3 * busy >= alone,
        "beside a busy CPU a search made {busy} steps, alone {alone} (in {span:?} each)"
    );
    // The run said that it took fewer threads.
    let log = std::fs::read_to_string(dir.path().join("d").join("events.jsonl")).unwrap();
    assert!(log.contains("other processes use"), "{log}");
}

/// `f` run while a thread of this process keeps one CPU busy.
fn beside_a_busy_cpu<T>(f: impl FnOnce() -> T) -> T {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let spinner = std::thread::spawn(move || {
        let mut x = 0u64;
        while !flag.load(Ordering::Relaxed) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
    });
    let out = f();
    stop.store(true, Ordering::Relaxed);
    spinner.join().unwrap();
    out
}
