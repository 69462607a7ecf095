//! The command line: bad input gets a clear error naming the file or key, and a non-zero exit.

mod common;

use common::{run, text, tiny_search};

#[test]
fn invalid_configs_name_the_key_and_exit_2() {
    for (file, needle) in [
        ("unknown_key.toml", "chanels"),
        ("out_of_range.toml", "data.train_portion"),
        ("bad_algorithm.toml", "enas"),
        ("not_toml.toml", "not_toml.toml"),
        ("bad_on_hangup.toml", "ui.on_hangup"),
    ] {
        let p = common::fixture(&format!("invalid_configs/{file}"));
        let o = run(&[
            "search",
            "--headless",
            "--config",
            p.to_str().unwrap(),
            "--max-steps",
            "1",
        ]);
        assert_eq!(o.status.code(), Some(2), "{file}: {}", text(&o));
        assert!(
            text(&o).contains(needle),
            "{file}: expected {needle:?} in {}",
            text(&o)
        );
    }
    let o = run(&["search", "--headless", "--set", "model.cells=0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("model.cells"), "{}", text(&o));
    let o = run(&["search", "--headless", "--config", "/nonexistent/cfg.toml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("/nonexistent/cfg.toml"), "{}", text(&o));
    let o = run(&["bench", "--algo", "nasp,enas"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("enas"));
}

#[test]
fn bad_data_files_name_the_file() {
    let d = tempfile::tempdir().unwrap();
    // Each failed search leaves a run directory behind (not started over): one folder each.
    let run_dir = tempfile::tempdir().unwrap();
    let data = d.path().to_str().unwrap();
    // Missing files.
    let o = tiny_search(
        &run_dir.path().join("1"),
        &["--data-dir", data, "--max-steps", "1"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("data_batch_1.bin") && text(&o).contains("missing"),
        "{}",
        text(&o)
    );
    // A size that is not a multiple of 3073.
    std::fs::write(d.path().join("data_batch_1.bin"), vec![1u8; 3073 * 2 + 5]).unwrap();
    let o = tiny_search(
        &run_dir.path().join("2"),
        &["--data-dir", data, "--max-steps", "1"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("data_batch_1.bin") && text(&o).contains("3073"),
        "{}",
        text(&o)
    );
    // A label above 9.
    let mut bytes = vec![0u8; 3073 * 700];
    bytes[3073 * 5] = 200;
    std::fs::write(d.path().join("data_batch_1.bin"), bytes).unwrap();
    let o = tiny_search(
        &run_dir.path().join("3"),
        &["--data-dir", data, "--max-steps", "1"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("data_batch_1.bin") && text(&o).contains("label 200"),
        "{}",
        text(&o)
    );
}

#[test]
fn synthetic_fallback_is_announced() {
    let run_dir = tempfile::tempdir().unwrap();
    let cfg = common::fixture("tiny.toml");
    let o = std::process::Command::new(common::bin())
        .args([
            "search",
            "--headless",
            "--config",
            cfg.to_str().unwrap(),
            "--set",
            "data.dataset=\"auto\"",
            "--run-dir",
        ])
        .arg(run_dir.path())
        .args(["--max-steps", "2"])
        .env("NASP_TUI_DATA", "")
        .env("HOME", run_dir.path())
        .env("XDG_DATA_HOME", run_dir.path())
        .current_dir(run_dir.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("synthetic"), "{}", text(&o));
    assert!(text(&o).contains("no CIFAR-10 found"), "{}", text(&o));
}

/// `report` in Markdown on a terminal: a run folder named with a terminal escape (a window
/// title, here) is printed escaped, not sent to the terminal.
#[test]
fn report_prints_run_names_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run\u{1b}]0;owned\u{7}");
    std::fs::create_dir_all(&run_dir).unwrap();
    std::fs::write(run_dir.join("config.toml"), "seed = 4\n").unwrap();
    let out = run(&["report", run_dir.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", text(&out));
    assert!(stdout.contains("owned"), "{stdout}");
    assert!(
        !stdout.contains('\u{1b}') && !stdout.contains('\u{7}'),
        "{stdout:?}"
    );
}
