//! `nasp-tui check`, the planted-architecture self-check: it recovers the plant for several
//! teacher seeds (exit 0), not with shuffled labels (exit 1), and names a bad option (exit 2).
//! Most runs are smaller than the default (2 cells: reduction cells only, 8 planted pairs) to
//! keep each to seconds; the calibration seeds run the default at one and two libtorch threads
//! (the thread count changes the rounding, and so the path: the verdict must not change). The
//! faulty gradients (sign flipped, op columns shifted) are unit tests in `engine::check` at the
//! same seeds: they are not reachable from the command line. A DARTS student is refused (exit
//! 2, saying why).

mod common;

use common::{bin, run, text};

/// `nasp-tui check` with the defaults but `seed`, at `threads` libtorch threads (the count
/// is part of what is calibrated: it is set here, not left to the machine).
fn default_check(seed: &str, threads: &str, extra: &[&str]) -> std::process::Output {
    std::process::Command::new(bin())
        .args(["check", "--seed", seed])
        .args(extra)
        .env("OMP_NUM_THREADS", threads)
        .output()
        .expect("run nasp-tui check")
}

/// `nasp-tui check` at test size with `extra` options.
fn check(extra: &[&str]) -> std::process::Output {
    let mut args = vec!["check", "--cells", "2", "--steps", "80", "--images", "1024"];
    args.extend_from_slice(extra);
    run(&args)
}

/// The last line, `recovered X of Y`, as (X, Y).
fn recovered(out: &str) -> (usize, usize) {
    let last = out.lines().last().unwrap_or_default();
    let rest = last.strip_prefix("recovered ").expect(last);
    let (x, y) = rest.split_once(" of ").expect(last);
    (x.parse().unwrap(), y.parse().unwrap())
}

#[test]
fn recovers_the_plant_for_several_teacher_seeds() {
    for seed in ["1", "2", "3"] {
        let o = check(&["--seed", seed]);
        let out = String::from_utf8_lossy(&o.stdout).to_string();
        assert_eq!(o.status.code(), Some(0), "seed {seed}: {}", text(&o));
        let (x, y) = recovered(&out);
        assert_eq!(y, 8, "{out}");
        assert!(x as f64 / y as f64 >= 0.85, "seed {seed}: {out}");
    }
}

/// Teacher seeds of BENCHMARKS.md's calibration at the default size, each at the thread count
/// it needed the most of its starts with (seed 8: the second start at one thread; 9 and 5 at
/// two threads, where the old check recovered 2 and 15 of 16): the verdict is the plant, every
/// pair of it, and the output says which selection was judged and how close it was.
#[test]
fn default_check_recovers_calibration_seeds_at_one_and_two_threads() {
    for (seed, threads) in [("8", "1"), ("9", "2"), ("5", "2")] {
        let o = default_check(seed, threads, &[]);
        let out = String::from_utf8_lossy(&o.stdout).to_string();
        assert_eq!(
            o.status.code(),
            Some(0),
            "seed {seed} at {threads}: {}",
            text(&o)
        );
        assert_eq!(recovered(&out), (16, 16), "seed {seed} at {threads}: {out}");
        assert!(
            out.contains(&format!("threads: {threads} = OMP_NUM_THREADS={threads}")),
            "{out}"
        );
        assert!(
            out.contains("reproduces every label (100.0% of the labels)"),
            "{out}"
        );
        assert!(out.contains("closest recovered pair:"), "{out}");
        assert!(!out.contains("missed "), "{out}");
    }
}

#[test]
fn recovers_a_plant_with_normal_and_reduction_cells() {
    let o = run(&[
        "check",
        "--cells",
        "3",
        "--channels",
        "4",
        "--steps",
        "160",
        "--images",
        "1024",
        "--seed",
        "4",
    ]);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(out.contains("planted normal:"), "{out}");
    assert_eq!(recovered(&out).1, 16, "{out}");
}

#[test]
fn shuffled_labels_fail() {
    let o = check(&["--seed", "1", "--shuffle-labels"]);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let (x, y) = recovered(&out);
    assert!((x as f64) < 0.5 * y as f64, "{out}");
    // Every start ran (none reproduced the labels), and each missed pair is named with the
    // student's A against its rival.
    assert!(out.contains("(3 of 3 starts run)"), "{out}");
    assert!(out.contains("the most accurate selection seen"), "{out}");
    let missed = out.lines().filter(|l| l.starts_with("missed ")).count();
    assert_eq!(missed, y - x, "{out}");
    assert!(out.contains("missed reduce edge "), "{out}");
    assert!(out.contains(" against "), "{out}");
}

#[test]
fn bad_options_are_usage_errors_naming_the_option() {
    for (args, needle) in [
        (&["check", "--cells", "0"][..], "--cells"),
        (&["check", "--min", "2"][..], "--min"),
        (&["check", "--channels", "0"][..], "--channels"),
        (&["check", "--steps", "0"][..], "--steps"),
        (&["check", "--starts", "0"][..], "--starts"),
        (&["check", "--images", "10"][..], "--images"),
        (&["check", "--algo", "enas"][..], "--algo"),
        (
            &["check", "--algo", "darts1"][..],
            "--algo darts1: not supported",
        ),
        (
            &["check", "--algo", "darts2"][..],
            "--algo darts2: not supported",
        ),
    ] {
        let o = run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        assert!(text(&o).contains(needle), "{args:?}: {}", text(&o));
        assert!(!text(&o).contains("recovered"), "{args:?}: {}", text(&o));
    }
}
