//! Checkpoints: exact resume, crash safety under SIGKILL, bad checkpoints, export.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{text, tiny_search};
use nasp_tui::engine::checkpoint;
use nasp_tui::genotype::Genotype;
use tch::Tensor;

/// A safetensors file's tensors, read by libtorch in this process (on one libtorch thread).
fn tensors(path: &Path) -> HashMap<String, Tensor> {
    common::one_libtorch_thread();
    Tensor::read_safetensors(path)
        .unwrap()
        .into_iter()
        .collect()
}

fn step_losses(run: &Path) -> Vec<(u64, f64, f64)> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["kind"] == "step" || v["kind"] == "epoch")
        .map(|v| {
            let loss = v["train_loss"].as_f64().unwrap();
            let extra = v
                .get("valid_acc")
                .and_then(serde_json::Value::as_f64)
                .unwrap_or(v["train_acc"].as_f64().unwrap());
            (v["global_step"].as_u64().unwrap(), loss, extra)
        })
        .collect()
}

fn assert_bitwise_equal(a: &Path, b: &Path) {
    for file in ["weights.safetensors", "state.safetensors"] {
        let (ta, tb) = (tensors(&a.join(file)), tensors(&b.join(file)));
        assert_eq!(ta.len(), tb.len(), "{file}");
        for (k, va) in &ta {
            let vb = &tb[k];
            assert!(
                va.equal(vb),
                "{file}: tensor {k} differs (max abs diff {})",
                (va - vb).abs().max().double_value(&[])
            );
        }
    }
}

/// K steps + checkpoint + resume for K more steps equals 2K uninterrupted steps, bitwise on the
/// CPU: weights, BN statistics, A, optimizer state, and every logged loss. K = 7 is mid-epoch
/// (10 steps per epoch) and 2K crosses an epoch end with its evaluation.
#[test]
fn resume_is_bitwise_exact() {
    let full = tempfile::tempdir().unwrap();
    let split = tempfile::tempdir().unwrap();
    let o = tiny_search(full.path(), &["--max-steps", "14"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = tiny_search(split.path(), &["--max-steps", "7"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let s = split.path().to_str().unwrap();
    let o = tiny_search(split.path(), &["--resume", s, "--max-steps", "14"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("resumed from"), "{}", text(&o));
    let a = full.path().join("checkpoints/ckpt-000000014");
    let b = split.path().join("checkpoints/ckpt-000000014");
    assert_bitwise_equal(&a, &b);
    let (ma, mb) = (
        checkpoint::verify(&a).unwrap(),
        checkpoint::verify(&b).unwrap(),
    );
    let adam_t = |m: &checkpoint::Meta| m.search.as_ref().map(|s| s.adam_t);
    assert_eq!(
        (ma.epoch, ma.step_in_epoch, adam_t(&ma)),
        (mb.epoch, mb.step_in_epoch, adam_t(&mb))
    );
    assert_eq!(ma.genotype, mb.genotype);
    let (la, lb) = (step_losses(full.path()), step_losses(split.path()));
    assert_eq!(la.len(), 15, "14 step lines and 1 epoch line");
    assert_eq!(la, lb, "logged losses differ");
}

/// A child process saving a checkpoint every step is killed with SIGKILL at random moments; the
/// checkpoint `latest` names must always verify, and the previous ones stay loadable.
#[test]
fn sigkill_during_saves_never_corrupts_the_newest_checkpoint() {
    let run = tempfile::tempdir().unwrap();
    let cfg = common::fixture("tiny.toml");
    let mut rng = nasp_tui::rng::Rng::new(42);
    let mut kills = 0;
    for i in 0..24 {
        let mut cmd = std::process::Command::new(common::bin());
        cmd.args(["search", "--headless", "--config", cfg.to_str().unwrap()])
            .args(common::SYNTHETIC)
            .args([
                "--set",
                "checkpoint.every_steps=1",
                "--set",
                "checkpoint.keep=2",
                "--set",
                "train.epochs=1000",
                "--run-dir",
            ])
            .arg(run.path())
            .env("OMP_NUM_THREADS", "1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        if i > 0 {
            cmd.arg("--resume").arg(run.path());
        }
        let mut child = cmd.spawn().unwrap();
        let latest = run.path().join("checkpoints/latest");
        let before = std::fs::read_to_string(&latest).unwrap_or_default();
        let t0 = Instant::now();
        // Wait for at least one new save, then kill at a random moment among the next saves.
        while std::fs::read_to_string(&latest).unwrap_or_default() == before
            && t0.elapsed() < Duration::from_secs(60)
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(rng.below(400)));
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;
        let (dir, meta, note) =
            checkpoint::locate(run.path()).unwrap_or_else(|e| panic!("after kill {i}: {e}"));
        assert!(
            note.is_none(),
            "after kill {i}: latest was unusable: {note:?}"
        );
        assert_eq!(
            dir.file_name().unwrap().to_str().unwrap(),
            std::fs::read_to_string(&latest).unwrap().trim()
        );
        assert!(meta.global_step > 0);
    }
    assert_eq!(kills, 24);
    // Every checkpoint directory left behind is complete and verifies.
    for d in checkpoint::list(&run.path().join("checkpoints")) {
        checkpoint::verify(&d).unwrap_or_else(|e| panic!("{e}"));
    }
}

fn make_run() -> tempfile::TempDir {
    let run = tempfile::tempdir().unwrap();
    let o = tiny_search(
        run.path(),
        &["--max-steps", "3", "--set", "checkpoint.every_steps=2"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    run
}

#[test]
fn bad_checkpoints_are_named_with_the_reason() {
    let run = make_run();
    let ck = run.path().join("checkpoints");
    let newest = ck.join("ckpt-000000003");
    let older = ck.join("ckpt-000000002");
    assert!(newest.is_dir() && older.is_dir());
    let r = run.path().to_str().unwrap();

    // Corrupted byte → checksum; --resume RUN_DIR falls back to the older one and says so.
    let w = newest.join("weights.safetensors");
    let mut bytes = std::fs::read(&w).unwrap();
    let n = bytes.len();
    bytes[n - 10] ^= 0xFF;
    std::fs::write(&w, &bytes).unwrap();
    let e = checkpoint::verify(&newest).unwrap_err().to_string();
    assert!(
        e.contains("weights.safetensors") && e.contains("checksum"),
        "{e}"
    );
    let o = tiny_search(run.path(), &["--resume", r, "--max-steps", "4"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("checksum") && text(&o).contains("ckpt-000000002"),
        "{}",
        text(&o)
    );

    // Truncated file, resumed directly → exit 1 naming the file.
    let run = make_run();
    let newest = run.path().join("checkpoints/ckpt-000000003");
    let s = newest.join("state.safetensors");
    let bytes = std::fs::read(&s).unwrap();
    std::fs::write(&s, &bytes[..bytes.len() / 2]).unwrap();
    let o = tiny_search(
        run.path(),
        &["--resume", newest.to_str().unwrap(), "--max-steps", "4"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("state.safetensors") && text(&o).contains("truncated"),
        "{}",
        text(&o)
    );

    // Newer format version.
    let older = run.path().join("checkpoints/ckpt-000000002");
    let meta = older.join("meta.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&meta).unwrap()).unwrap();
    v["format_version"] = serde_json::json!(99);
    std::fs::write(&meta, v.to_string()).unwrap();
    let e = checkpoint::verify(&older).unwrap_err().to_string();
    assert!(
        e.contains("meta.json") && e.contains("99") && e.contains("newer"),
        "{e}"
    );

    // Another model: resuming with a different channel count is refused, naming the key.
    let run = make_run();
    let o = tiny_search(
        run.path(),
        &[
            "--resume",
            run.path().to_str().unwrap(),
            "--set",
            "model.channels=6",
            "--max-steps",
            "4",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("channels") && text(&o).contains("another model"),
        "{}",
        text(&o)
    );

    // Other data settings: the step counter would point into another epoch plan.
    let o = tiny_search(
        run.path(),
        &[
            "--resume",
            run.path().to_str().unwrap(),
            "--set",
            "train.batch_size=16",
            "--max-steps",
            "4",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("batch") && text(&o).contains("config.toml"),
        "{}",
        text(&o)
    );

    // Not a checkpoint at all.
    let empty = tempfile::tempdir().unwrap();
    let e = checkpoint::locate(empty.path()).unwrap_err().to_string();
    assert!(e.contains(empty.path().to_str().unwrap()), "{e}");
}

#[test]
fn saving_where_it_cannot_write_is_an_error_event_and_the_search_goes_on() {
    let run = tempfile::tempdir().unwrap();
    // `checkpoints` is a file: no directory can be made there (works as root too).
    std::fs::write(run.path().join("checkpoints"), b"not a directory").unwrap();
    let o = tiny_search(
        run.path(),
        &["--max-steps", "4", "--set", "checkpoint.every_steps=2"],
    );
    let t = text(&o);
    // Every save failed, the final one too: the run says so and exits with 3 (exit::UNSAVED).
    assert_eq!(o.status.code(), Some(3), "{t}");
    assert!(
        t.contains("cannot write checkpoint") && t.contains("the search goes on"),
        "{t}"
    );
    assert!(t.contains("reached --max-steps after 4 steps"), "{t}");
    assert!(
        t.contains("no checkpoint was saved (2 saves failed: "),
        "{t}"
    );
    assert_eq!(
        std::fs::read(run.path().join("checkpoints")).unwrap(),
        b"not a directory"
    );

    // A read-only checkpoints directory (meaningful only when not root): earlier checkpoints stay.
    let run = make_run();
    let ck = run.path().join("checkpoints");
    let before: Vec<_> = checkpoint::list(&ck);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&ck, std::fs::Permissions::from_mode(0o555)).unwrap();
    let o = tiny_search(
        run.path(),
        &[
            "--resume",
            run.path().to_str().unwrap(),
            "--max-steps",
            "5",
            "--set",
            "checkpoint.every_steps=1",
        ],
    );
    std::fs::set_permissions(&ck, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    for d in before.iter().filter(|d| d.exists()) {
        checkpoint::verify(d).unwrap();
    }
}

#[test]
fn export_round_trips_and_known_text_is_exact() {
    let run = make_run();
    let o = common::run(&["export", run.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let g = Genotype::parse(String::from_utf8_lossy(&o.stdout).trim()).unwrap();
    let (_, meta, _) = checkpoint::locate(run.path()).unwrap();
    assert_eq!(g, meta.genotype);
    let o = common::run(&[
        "export",
        run.path()
            .join("checkpoints/ckpt-000000003")
            .to_str()
            .unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(
        Genotype::from_json(&String::from_utf8_lossy(&o.stdout)).unwrap(),
        g
    );
    let o = common::run(&["export", run.path().to_str().unwrap(), "--format", "yaml"]);
    assert_eq!(o.status.code(), Some(2));

    // DARTS_V2 (spec §4.4), as the DARTS/NASP training scripts accept it.
    let p = |v: &[(&str, usize)]| {
        v.iter()
            .map(|(o, i)| (o.to_string(), *i))
            .collect::<Vec<_>>()
    };
    let v2 = Genotype {
        normal: p(&[
            ("sep_conv_3x3", 0),
            ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 0),
            ("sep_conv_3x3", 1),
            ("sep_conv_3x3", 1),
            ("skip_connect", 0),
            ("skip_connect", 0),
            ("dil_conv_3x3", 2),
        ]),
        normal_concat: vec![2, 3, 4, 5],
        reduce: p(&[
            ("max_pool_3x3", 0),
            ("max_pool_3x3", 1),
            ("skip_connect", 2),
            ("max_pool_3x3", 1),
            ("max_pool_3x3", 0),
            ("skip_connect", 2),
            ("skip_connect", 2),
            ("max_pool_3x3", 1),
        ]),
        reduce_concat: vec![2, 3, 4, 5],
    };
    let want = "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])";
    assert_eq!(v2.to_string(), want);
    assert_eq!(Genotype::parse(want).unwrap(), v2);
}

/// Resuming from an older checkpoint of a run, then saving: the new save is the newest by time,
/// `latest` names it, it survives pruning, and no existing checkpoint was removed before it
/// was in place (a second save of step 3 gets its own name).
#[test]
fn resuming_from_an_older_checkpoint_keeps_the_new_saves() {
    let run = make_run();
    let older = run.path().join("checkpoints/ckpt-000000002");
    let o = tiny_search(
        run.path(),
        &[
            "--resume",
            older.to_str().unwrap(),
            "--max-steps",
            "3",
            "--set",
            "checkpoint.keep=1",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let latest = std::fs::read_to_string(run.path().join("checkpoints/latest")).unwrap();
    assert_eq!(latest.trim(), "ckpt-000000003.1");
    let left = checkpoint::list(&run.path().join("checkpoints"));
    assert_eq!(left, vec![run.path().join("checkpoints/ckpt-000000003.1")]);
    let (dir, meta, note) = checkpoint::locate(run.path()).unwrap();
    assert!(note.is_none());
    assert_eq!((dir, meta.global_step), (left[0].clone(), 3));
}

/// A stop that arrives during the end-of-epoch validation ends it early: the epoch stays open
/// (no "epoch 0 done", the checkpoint is at the epoch's last step) and a resumed run validates it.
#[test]
fn stop_during_validation_keeps_the_epoch_open_and_resume_validates_it() {
    let run = tempfile::tempdir().unwrap();
    let cfg = common::fixture("tiny.toml");
    // 200 training images (7 steps of 32), then 9,800 validation images: a few seconds.
    let sets = [
        "data.limit=10000",
        "data.train_portion=0.02",
        "train.eval_batches=0",
    ];
    let mut cmd = std::process::Command::new(common::bin());
    cmd.args(["search", "--headless", "--config", cfg.to_str().unwrap()])
        .args(common::SYNTHETIC)
        .arg("--run-dir")
        .arg(run.path())
        .env("OMP_NUM_THREADS", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for s in sets {
        cmd.args(["--set", s]);
    }
    let child = cmd.spawn().unwrap();
    let log = run.path().join("log.txt");
    let t0 = Instant::now();
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("validating epoch 0")
    {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "no validation started"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // SAFETY: sending SIGTERM to our own child process.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    let first = text(&out);
    assert_eq!(out.status.code(), Some(130), "{first}");
    assert!(
        !first.contains("epoch 0 done"),
        "validation ran to its end: {first}"
    );
    let latest = std::fs::read_to_string(run.path().join("checkpoints/latest")).unwrap();
    assert!(latest.trim().ends_with("ckpt-000000007"), "{latest}");

    let again = tempfile::tempdir().unwrap();
    let mut args: Vec<&str> = vec!["--resume", run.path().to_str().unwrap(), "--max-steps", "8"];
    for s in sets {
        args.extend_from_slice(&["--set", s]);
    }
    let out = tiny_search(again.path(), &args);
    let second = text(&out);
    assert_eq!(out.status.code(), Some(0), "{second}");
    assert!(second.contains("epoch 0 done"), "{second}");
}
