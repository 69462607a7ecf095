//! The runs table from fabricated run directories: states (STALE included), order, selection
//! and the consensus counts.

use std::path::Path;

use super::{RunRow, RunsIntent, RunsTable, SortKey};
use crate::app::keymap::Action;
use crate::app::{KeyMap, fixtures};
use crate::protocol::ArchSnapshot;
use crate::rundir::listing::read_run;
use crate::rundir::status::{RunState, Status, host_name, unix_now};

fn status(state: RunState, pid: u32, heartbeat: f64, step: u64, arch: ArchSnapshot) -> Status {
    Status {
        state,
        pid,
        host: host_name(),
        heartbeat,
        started: heartbeat - 100.0,
        algorithm: "nasp".into(),
        device: "cpu".into(),
        epoch: 1,
        epochs: 4,
        step,
        steps_per_epoch: 10,
        train_acc: Some(0.5),
        valid_acc: Some(0.25),
        ms_per_step: Some(130.0),
        arch: Some(arch),
        ..Status::starting(heartbeat)
    }
}

fn with_edge0(op: Option<usize>) -> ArchSnapshot {
    let mut s = fixtures::snapshot(10, 0.0);
    s.normal_selected[0] = op;
    s
}

fn rows(dir: &Path, now: f64) -> Vec<RunRow> {
    let info = fixtures::info(true);
    ["done", "live", "killed"]
        .iter()
        .map(|n| {
            let l = read_run(&dir.join(n));
            RunRow::new(&l, Some(&info), (*n).to_string(), now)
        })
        .collect()
}

#[test]
fn three_runs_their_states_and_the_consensus() {
    let dir = tempfile::tempdir().expect("tempdir");
    let now = unix_now();
    let me = std::process::id();
    let gone = 999_999_999;
    for (name, st) in [
        (
            "done",
            status(
                RunState::Finished,
                gone,
                now - 600.0,
                40,
                with_edge0(Some(3)),
            ),
        ),
        (
            "live",
            status(RunState::Running, me, now, 25, with_edge0(Some(3))),
        ),
        (
            "killed",
            status(RunState::Running, gone, now - 120.0, 12, with_edge0(None)),
        ),
    ] {
        let d = dir.path().join(name);
        std::fs::create_dir(&d).expect("mkdir");
        st.write(&d).expect("status");
    }
    let mut t = RunsTable::new(KeyMap::default(), "test".into());
    t.set_rows(rows(dir.path(), now), Vec::new());
    let states: Vec<(&str, &str)> = t
        .rows()
        .iter()
        .map(|r| (r.name.as_str(), r.state))
        .collect();
    assert_eq!(
        states,
        vec![
            ("live", "RUNNING"),
            ("killed", "STALE"),
            ("done", "FINISHED")
        ],
        "newest first"
    );
    assert!(t.rows()[0].live() && !t.rows()[1].live());

    let c = t.consensus(0);
    assert_eq!(c.runs, 3);
    let op3 = &fixtures::ops()[3];
    let sep3 = c.ops.iter().position(|o| o == op3).expect("op 3");
    assert_eq!(c.counts[0].0[sep3], 2, "two runs select op 3 on edge 0");
    assert_eq!(c.counts[0].1, 1, "one drops edge 0");
    for (e, (counts, dropped)) in c.counts.iter().enumerate() {
        assert_eq!(counts.iter().sum::<usize>() + dropped, 3, "edge {e}");
    }

    // Sorting and a selection that follows the run.
    t.on_action(Action::RunsDown);
    assert_eq!(t.rows()[t.selected().expect("sel")].name, "killed");
    while t.sort != SortKey::Step {
        t.on_action(Action::RunsSort);
    }
    let names: Vec<&str> = t.rows().iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, vec!["done", "live", "killed"], "most steps first");
    assert_eq!(
        t.on_action(Action::RunsOpen),
        Some(RunsIntent::Open(dir.path().join("killed")))
    );
    assert_eq!(t.on_action(Action::RunsQuit), Some(RunsIntent::Quit));
}

#[test]
fn nb201_runs_show_and_sort_by_the_benchmark_accuracy() {
    use crate::nb201::{Cell, Dataset};
    use crate::protocol::BenchmarkScore;
    use crate::ui::runs::{Columns, row_text};
    let dir = tempfile::tempdir().expect("tempdir");
    let now = unix_now();
    let cells = [
        (
            "all-skip",
            "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|",
        ),
        (
            "convs",
            "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
        ),
        ("darts", ""),
    ];
    for (name, arch) in cells {
        let mut snap = with_edge0(Some(3));
        if !arch.is_empty() {
            let cell = Cell::parse(arch).expect("cell");
            snap.benchmark = Some(Box::new(BenchmarkScore::of(&cell, Dataset::Cifar10)));
        }
        let d = dir.path().join(name);
        std::fs::create_dir(&d).expect("mkdir");
        status(RunState::Finished, 999_999_999, now - 60.0, 40, snap)
            .write(&d)
            .expect("status");
    }
    let info = fixtures::info(true);
    let rows: Vec<RunRow> = ["all-skip", "convs", "darts"]
        .iter()
        .map(|n| {
            RunRow::new(
                &read_run(&dir.path().join(n)),
                Some(&info),
                (*n).into(),
                now,
            )
        })
        .collect();
    let mut t = RunsTable::new(KeyMap::default(), "test".into());
    t.set_rows(rows, Vec::new());
    while t.sort != SortKey::Bench {
        t.on_action(Action::RunsSort);
    }
    let order: Vec<(&str, Option<usize>)> = t
        .rows()
        .iter()
        .map(|r| (r.name.as_str(), r.bench.map(|b| b.1)))
        .collect();
    assert_eq!(order[2], ("darts", None), "a run without a cell sorts last");
    assert_eq!(order[0].0, "convs", "{order:?}");
    let skip = t.rows()[1].bench.expect("all-skip scored");
    assert!(
        (skip.0 - 54.30).abs() < 0.01,
        "all-skip as published: {skip:?}"
    );
    let cols = Columns::of(t.rows(), 140);
    assert!(cols.bench);
    let line = row_text(&t.rows()[1], &cols);
    assert!(
        line.contains(&format!("{:.2}% #{}", skip.0, skip.1)),
        "{line}"
    );
    assert!(
        row_text(&t.rows()[2], &cols).contains("      - "),
        "darts row shows -"
    );
    // A table without NB201 runs has no such column.
    let plain: Vec<RunRow> = t.rows()[2..].to_vec();
    assert!(!Columns::of(&plain, 140).bench);
}
