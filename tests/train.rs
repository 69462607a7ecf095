//! `nasp-tui train`: a tiny training on real CIFAR-10 (the loss falls, the test set is
//! evaluated, the run directory and the weights exist), exact resume, the parameter count
//! against the PyTorch peer, and bad input.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::tmux::Tmux;
use common::{cifar_dir, fixture, run, text};
use nasp_tui::config::Config;
use nasp_tui::engine::train::count_params;
use nasp_tui::genotype::{DARTS_V2, Genotype};
use tch::Tensor;

/// A headless training run of the tiny config (`tests/fixtures/train_tiny.toml`) into
/// `run_dir` with extra args.
fn tiny_train(run_dir: &Path, extra: &[&str]) -> std::process::Output {
    let cfg = fixture("train_tiny.toml");
    let data = cifar_dir();
    let mut args = vec![
        "train",
        "--headless",
        "--config",
        cfg.to_str().unwrap(),
        "--run-dir",
        run_dir.to_str().unwrap(),
        "--data-dir",
        data.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run(&args)
}

fn metrics(run: &Path, kind: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["kind"] == kind)
        .collect()
}

/// A safetensors file's tensors, read by libtorch in this process (on one libtorch thread).
fn tensors(path: &Path) -> HashMap<String, Tensor> {
    common::one_libtorch_thread();
    Tensor::read_safetensors(path)
        .unwrap()
        .into_iter()
        .collect()
}

/// Three epochs of 16 steps of a tiny network on 512 real CIFAR-10 images: the training loss
/// of the last epoch is below the first's, every epoch evaluates the 500 test images, and the
/// run directory holds what it should, the final weights loadable.
#[test]
fn a_tiny_training_learns_and_is_tested_every_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let o = tiny_train(dir.path(), &["--genotype", DARTS_V2]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("parameters: "), "{out}");
    assert!(out.contains("test loss"), "{out}");
    assert!(out.contains("drop path"), "{out}");
    let epochs = metrics(dir.path(), "epoch");
    assert_eq!(epochs.len(), 3, "{epochs:?}");
    for e in &epochs {
        assert_eq!(e["test_images"], 500, "{e}");
        let acc = e["test_acc"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&acc), "{e}");
    }
    let first = epochs[0]["train_loss"].as_f64().unwrap();
    let last = epochs[2]["train_loss"].as_f64().unwrap();
    assert!(last < first - 0.05, "train loss {first} -> {last}");
    // Drop path rises linearly: 0, 0.2·1/3, 0.2·2/3.
    let dp: Vec<f64> = epochs
        .iter()
        .map(|e| e["drop_path"].as_f64().unwrap())
        .collect();
    assert!(
        (dp[0]).abs() < 1e-12 && (dp[2] - 0.2 * 2.0 / 3.0).abs() < 1e-9,
        "{dp:?}"
    );
    for f in [
        "config.toml",
        "events.jsonl",
        "status.json",
        "log.txt",
        "genotypes/trained.txt",
    ] {
        assert!(dir.path().join(f).is_file(), "{f} missing");
    }
    let trained = std::fs::read_to_string(dir.path().join("genotypes/trained.txt")).unwrap();
    assert_eq!(
        Genotype::parse(trained.trim()).unwrap(),
        Genotype::parse(DARTS_V2).unwrap()
    );
    let w = tensors(&dir.path().join("weights.safetensors"));
    assert!(w.contains_key("net.classifier.weight") && w.contains_key("net.aux.fc.weight"));
    assert!(w.keys().any(|k| k.ends_with("running_mean")));
    let status = std::fs::read_to_string(dir.path().join("status.json")).unwrap();
    assert!(status.contains("finished"), "{status}");
}

/// Stopping after 11 steps (mid-epoch, drop path and cutout on) and resuming gives the same
/// weights, batch-norm statistics and momentum, bitwise, as an uninterrupted run.
#[test]
fn resume_is_bitwise_exact() {
    let full = tempfile::tempdir().unwrap();
    let split = tempfile::tempdir().unwrap();
    let args = ["--genotype", DARTS_V2, "--set", "train.epochs=2"];
    let o = tiny_train(full.path(), &[&args[..], &["--max-steps", "24"]].concat());
    assert!(o.status.success(), "{}", text(&o));
    let o = tiny_train(split.path(), &[&args[..], &["--max-steps", "21"]].concat());
    assert!(o.status.success(), "{}", text(&o));
    let s = split.path().to_str().unwrap();
    let o = tiny_train(split.path(), &["--resume", s, "--max-steps", "24"]);
    let out = text(&o);
    assert!(o.status.success() && out.contains("resumed from"), "{out}");
    let latest = |p: &Path| -> PathBuf {
        let name = std::fs::read_to_string(p.join("checkpoints/latest")).unwrap();
        p.join("checkpoints").join(name.trim())
    };
    for file in ["weights.safetensors", "state.safetensors"] {
        let (a, b) = (
            tensors(&latest(full.path()).join(file)),
            tensors(&latest(split.path()).join(file)),
        );
        assert_eq!(a.len(), b.len(), "{file}");
        assert!(!a.is_empty(), "{file}");
        for (k, va) in &a {
            assert!(va.equal(&b[k]), "{file}: {k} differs");
        }
    }
    let loss = |p: &Path| -> Vec<(u64, f64)> {
        metrics(p, "step")
            .iter()
            .map(|v| {
                (
                    v["global_step"].as_u64().unwrap(),
                    v["train_loss"].as_f64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(loss(full.path()), loss(split.path()));
}

/// A training whose saves fail (its `checkpoints` is a file) on the synthetic set: the save at
/// the last step is not tried again at the end, the summary says no checkpoint was saved and
/// why, the run exits `exit::UNSAVED`, and `train.log_every` spaces the step lines as a
/// search's.
#[test]
fn a_training_whose_saves_fail_says_so_once_and_logs_every_nth_step() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("checkpoints"), "not a folder").unwrap();
    let cfg = fixture("train_tiny.toml");
    let o = run(&[
        "train",
        "--headless",
        "--genotype",
        DARTS_V2,
        "--config",
        cfg.to_str().unwrap(),
        "--run-dir",
        dir.path().to_str().unwrap(),
        "--set",
        "data.dataset=synthetic",
        "--set",
        "train.log_every=4",
        "--set",
        "checkpoint.every_steps=8",
        "--max-steps",
        "8",
    ]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(3), "{out}");
    assert!(
        out.contains("reached --max-steps after 8 steps (epoch 0); weights: ")
            && out.contains("; no checkpoint was saved (1 save failed: "),
        "{out}"
    );
    let events = std::fs::read_to_string(dir.path().join("events.jsonl")).unwrap();
    assert_eq!(
        events.matches("CheckpointFailed").count(),
        1,
        "the save that failed at step 8 is not tried again: {events}"
    );
    let steps: Vec<u64> = metrics(dir.path(), "step")
        .iter()
        .map(|v| v["global_step"].as_u64().unwrap())
        .collect();
    assert_eq!(steps, [4, 8]);
}

fn peer_python() -> PathBuf {
    std::env::var_os("NASP_TUI_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("python3"))
}

/// The peer's `--count` for `genotype` at C, cells: (params, params with the auxiliary head).
fn peer_count(genotype: &str, c: i64, cells: usize) -> (usize, usize) {
    let peer = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/bench/peer_train.py");
    let o = Command::new(peer_python())
        .arg(&peer)
        .args(["--count", "--genotype", genotype, "--C", &c.to_string()])
        .args(["--layers", &cells.to_string()])
        .output()
        .expect("run the PyTorch peer (NASP_TUI_PYTHON)");
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let field = |k: &str| -> usize {
        out.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{k}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {k} in {out}"))
    };
    (field("params"), field("params_with_aux"))
}

/// Our parameter count equals the PyTorch peer's for a DARTS-space genotype and a NASP-space
/// one (the peer builds only the ops the two spaces share, which this one uses), at shapes other
/// than the papers'.
#[test]
fn parameter_counts_equal_the_peers() {
    common::one_libtorch_thread();
    let darts = "Genotype(normal=[('sep_conv_5x5', 1), ('dil_conv_5x5', 0), ('avg_pool_3x3', 2), ('sep_conv_3x3', 0), ('skip_connect', 3), ('dil_conv_3x3', 1), ('max_pool_3x3', 4), ('sep_conv_5x5', 2)], normal_concat=[2, 3, 4, 5], reduce=[('dil_conv_5x5', 0), ('sep_conv_5x5', 1), ('avg_pool_3x3', 0), ('dil_conv_3x3', 2), ('skip_connect', 3), ('sep_conv_3x3', 1), ('max_pool_3x3', 4), ('sep_conv_3x3', 0)], reduce_concat=[3, 4, 5])";
    let nasp = "Genotype(normal=[('dil_conv_3x3', 0), ('skip_connect', 1), ('dil_conv_3x3', 2), ('dil_conv_3x3', 1), ('skip_connect', 3), ('dil_conv_3x3', 0), ('dil_conv_3x3', 4), ('skip_connect', 2)], normal_concat=range(2, 6), reduce=[('max_pool_3x3', 0), ('avg_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('avg_pool_3x3', 3), ('skip_connect', 0), ('skip_connect', 2), ('max_pool_3x3', 4)], reduce_concat=range(2, 6))";
    for (space, g, c, cells) in [("darts", darts, 20, 11), ("nasp", nasp, 24, 8)] {
        let cfg = Config::load(
            None,
            &[
                format!("model.space=\"{space}\""),
                format!("model.channels={c}"),
                format!("model.cells={cells}"),
            ],
        )
        .unwrap();
        let genotype = Genotype::parse(g).unwrap();
        genotype.check_trainable(&cfg.model.op_lists()).unwrap();
        let ours = count_params(&cfg, &genotype).unwrap();
        let peer = peer_count(g, c, cells);
        assert_eq!((ours.without_aux, ours.with_aux), peer, "{space}");
    }
}

/// Bad input exits 2 with a message that names the op, the position, or the file.
#[test]
fn bad_genotypes_and_run_dirs_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let r = run_dir.to_str().unwrap();
    let go = |extra: &[&str]| {
        let o = run(&[&["train", "--headless", "--run-dir", r], extra].concat());
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        text(&o)
    };
    // An op outside the space.
    let e = go(&[
        "--genotype",
        &DARTS_V2.replacen("sep_conv_3x3", "conv 3x3", 1),
    ]);
    assert!(
        e.contains("'conv 3x3'") && e.contains("`normal` position 0"),
        "{e}"
    );
    // A node input that does not exist.
    let e = go(&[
        "--genotype",
        &DARTS_V2.replacen("('dil_conv_3x3', 2)", "('dil_conv_3x3', 6)", 1),
    ]);
    assert!(
        e.contains("`normal` position 7") && e.contains("input 6"),
        "{e}"
    );
    // Malformed text, given and in a file.
    let e = go(&["--genotype", "Genotype(normal=[('sep_conv_3x3', 0]"]);
    assert!(e.contains("--genotype") && e.contains("byte"), "{e}");
    let file = dir.path().join("g.txt");
    std::fs::write(&file, "Genotype(normal=oops)").unwrap();
    let e = go(&[file.to_str().unwrap()]);
    assert!(e.contains("g.txt"), "{e}");
    // A run directory without a genotype.
    let empty = dir.path().join("empty-run");
    std::fs::create_dir_all(empty.join("checkpoints")).unwrap();
    let e = go(&[empty.to_str().unwrap()]);
    assert!(e.contains("empty-run") && e.contains("no genotype"), "{e}");
    // Nothing named at all.
    let e = go(&[]);
    assert!(e.contains("--genotype"), "{e}");
    assert!(!run_dir.exists(), "nothing is written on bad input");
}

/// `train RUN_DIR` trains the run's newest genotype (its final one) in the run's own space.
#[test]
fn a_search_run_directory_gives_its_final_genotype_and_space() {
    let dir = tempfile::tempdir().unwrap();
    let search = dir.path().join("search-run");
    let rd = nasp_tui::rundir::RunDir::open(&search).unwrap();
    let space = Config::load(None, &["model.space=\"nasp\"".into()]).unwrap();
    rd.write_config(&space.to_toml()).unwrap();
    let early = Genotype::parse(DARTS_V2).unwrap();
    let nasp = "Genotype(normal=[('conv 3x3', 0), ('sep_7x7', 1), ('conv_3x1_1x3', 0), ('skip_connect', 2), ('conv 1x1', 1), ('sep_3x3', 3), ('dil_conv_3x3', 0), ('sep_5x5', 4)], normal_concat=range(2, 6), reduce=[('max_pool_5x5', 0), ('max_pool_7x7', 1), ('skip_connect', 2), ('avg_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 3), ('skip_connect', 4), ('max_pool_3x3', 0)], reduce_concat=range(2, 6))";
    let last = Genotype::parse(nasp).unwrap();
    rd.write_genotype("epoch-000", &early, 10).unwrap();
    rd.write_genotype("final", &last, 20).unwrap();
    let out_dir = dir.path().join("trained");
    let o = tiny_train(&out_dir, &[search.to_str().unwrap(), "--max-steps", "2"]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("final.json (step 20)"), "{out}");
    let trained = std::fs::read_to_string(out_dir.join("genotypes/trained.txt")).unwrap();
    assert_eq!(Genotype::parse(trained.trim()).unwrap(), last);
    let cfg = std::fs::read_to_string(out_dir.join("config.toml")).unwrap();
    assert!(cfg.contains("space = \"nasp\""), "{cfg}");
}

/// `bench --train` times our step and the peer's at the same tiny size, the peer's parameter
/// count agreeing with ours.
#[test]
fn bench_train_runs_ours_and_the_peer() {
    let peer = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/bench/peer_train.py");
    let o = run(&[
        "bench",
        "--train",
        "--device",
        "cpu",
        "--steps",
        "2",
        "--warmup",
        "1",
        "--set",
        "model.channels=4",
        "--set",
        "model.cells=3",
        "--set",
        "train.batch_size=8",
        "--peer",
        peer.to_str().unwrap(),
    ]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("bench --train: C=4 cells=3 batch=8"), "{out}");
    assert!(out.contains("ms/step (median"), "{out}");
    assert!(
        out.contains("peer train") && out.contains("ours/peer"),
        "{out}"
    );
    assert!(!out.contains("warning"), "{out}");
}

/// SIGTERM stops a headless training run as it stops a search: a checkpoint, the final weights,
/// exit 130, and `status.json` says stopped.
#[test]
fn sigterm_checkpoints_and_exits_130() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = fixture("train_tiny.toml");
    let data = cifar_dir();
    let child = Command::new(common::bin())
        .args(["train", "--headless", "--genotype", DARTS_V2, "--config"])
        .arg(&cfg)
        .arg("--data-dir")
        .arg(&data)
        .arg("--run-dir")
        .arg(dir.path())
        .args(["--set", "train.epochs=50"])
        .env("OMP_NUM_THREADS", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let metrics = dir.path().join("metrics.jsonl");
    common::wait_until("a step line", Duration::from_secs(120), || {
        std::fs::read_to_string(&metrics)
            .unwrap_or_default()
            .contains("\"kind\":\"step\"")
    });
    // SAFETY: sending SIGTERM to our own child process.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    let t = text(&out);
    assert_eq!(out.status.code(), Some(130), "{t}");
    assert!(t.contains("stopped after"), "{t}");
    assert!(dir.path().join("checkpoints/latest").is_file(), "{t}");
    assert!(dir.path().join("weights.safetensors").is_file(), "{t}");
    let status = std::fs::read_to_string(dir.path().join("status.json")).unwrap();
    assert!(status.contains("\"state\":\"stopped\""), "{status}");
}

/// The monitor of a training run in a real terminal (tmux): the trained genotype, the test
/// charts and the drop path show; `p` pauses; `q` then `s` saves and quits (exit 0 as a
/// search's save & quit, a checkpoint, status stopped). On the synthetic set; needs tmux.
#[test]
#[cfg_attr(no_tmux, ignore = "needs tmux")]
fn the_monitor_trains_pauses_and_saves_on_quit() {
    common::tmux::require();
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let line = format!(
        "OMP_NUM_THREADS=1 {} train --genotype \"{DARTS_V2}\" --config {} --set data.dataset=synthetic --run-dir {} --set train.epochs=20; echo EXIT=$?; sleep 60",
        common::bin(),
        fixture("train_tiny.toml").display(),
        run_dir.display()
    );
    let t = Tmux::start("train", &line);
    let minutes = Duration::from_secs(120);
    let s = t.wait_for("a test epoch", minutes, |s| {
        s.contains("test acc") && s.contains("RUNNING")
    });
    assert!(
        s.contains("trained genotype") && s.contains("test/epoch"),
        "{s}"
    );
    assert!(s.contains("drop path"), "{s}");
    t.keys(&["p"]);
    t.wait_for("PAUSED", minutes, |s| s.contains("PAUSED"));
    t.keys(&["q"]);
    t.wait_for("the quit dialog", minutes, |s| {
        s.contains("Stop the training?")
    });
    t.keys(&["s"]);
    let s = t.wait_for("the exit", minutes, |s| s.contains("EXIT="));
    assert!(s.contains("EXIT=0"), "{s}");
    assert!(run_dir.join("checkpoints/latest").is_file());
    let status = std::fs::read_to_string(run_dir.join("status.json")).unwrap();
    assert!(status.contains("\"state\":\"stopped\""), "{status}");
}

/// An NB201 cell trains with the benchmark's recipe (configs/nb201-train.toml, built in) when
/// no --config is named: the benchmark's network (1,531,546 parameters for the all-3×3 cell
/// at C = 16, N = 5), and `none` edges allowed; a DARTS-style config refuses it by name.
#[test]
fn an_nb201_cell_trains_with_the_benchmark_recipe() {
    let dir = tempfile::tempdir().unwrap();
    let all3 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|";
    let run = dir.path().join("big");
    let out = common::run(&[
        "train",
        "--genotype",
        all3,
        "--headless",
        "--device",
        "cpu",
        "--max-steps",
        "1",
        "--set",
        "data.dataset=\"synthetic\"",
        "--set",
        "data.limit=64",
        "--set",
        "evaluation.test_limit=32",
        "--set",
        "train.batch_size=32",
        "--run-dir",
        run.to_str().unwrap(),
    ]);
    let text = common::text(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("parameters: 1531546"), "{text}");
    let cfg = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(
        cfg.contains("space = \"nb201\"") && cfg.contains("nesterov = true"),
        "{cfg}"
    );
    // A cell with `none` edges, on a small network, to the end of an epoch.
    let run = dir.path().join("small");
    let out = common::run(&[
        "train",
        "--genotype",
        "|skip_connect~0|+|none~0|avg_pool_3x3~1|+|nor_conv_1x1~0|none~1|skip_connect~2|",
        "--headless",
        "--device",
        "cpu",
        "--set",
        "data.dataset=\"synthetic\"",
        "--set",
        "data.limit=64",
        "--set",
        "data.image_size=8",
        "--set",
        "evaluation.test_limit=32",
        "--set",
        "train.batch_size=32",
        "--set",
        "train.epochs=1",
        "--set",
        "model.channels=4",
        "--set",
        "model.cells=1",
        "--run-dir",
        run.to_str().unwrap(),
    ]);
    let text = common::text(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("| NB201 CIFAR-10 "), "{text}");
    let cfg = common::fixture("tiny.toml");
    let out = common::run(&[
        "train",
        "--genotype",
        all3,
        "--headless",
        "--config",
        cfg.to_str().unwrap(),
        "--run-dir",
        dir.path().join("refused").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        common::text(&out).contains("model.space = \"nb201\""),
        "{}",
        common::text(&out)
    );
}

/// The final weights under the DARTS reference's `NetworkCIFAR` names
/// (`weights-darts.safetensors`) load into the PyTorch peer's network, built the reference's way
/// (every name must match; only `num_batches_tracked` may be absent), and that network scores
/// the test accuracy our run reported on the same test images. The genotype has a
/// FactorizedReduce op (a reduction skip from a cell input) and one after a reduction cell.
#[test]
fn the_darts_named_weights_load_into_the_reference_network() {
    let g = "Genotype(normal=[('sep_conv_5x5', 1), ('dil_conv_5x5', 0), ('avg_pool_3x3', 2), ('sep_conv_3x3', 0), ('skip_connect', 3), ('dil_conv_3x3', 1), ('max_pool_3x3', 4), ('sep_conv_5x5', 2)], normal_concat=[2, 3, 4, 5], reduce=[('skip_connect', 0), ('sep_conv_3x3', 1), ('dil_conv_5x5', 0), ('avg_pool_3x3', 2), ('skip_connect', 1), ('max_pool_3x3', 3), ('sep_conv_5x5', 4), ('skip_connect', 2)], reduce_concat=[2, 3, 4, 5])";
    let dir = tempfile::tempdir().unwrap();
    let o = tiny_train(dir.path(), &["--genotype", g, "--set", "train.epochs=1"]);
    assert!(o.status.success(), "{}", text(&o));
    let epoch = metrics(dir.path(), "epoch");
    let ours = epoch[0]["test_acc"].as_f64().expect("test_acc");
    let weights = dir.path().join("weights-darts.safetensors");
    assert!(weights.is_file(), "no {}", weights.display());
    let peer = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/bench/peer_train.py");
    let (theirs, peer_logits) = reference_figures(
        Command::new(peer_python())
            .arg(&peer)
            .args(["--load", weights.to_str().unwrap(), "--eval", "500"])
            .args(["--data", cifar_dir().to_str().unwrap()])
            .args(["--genotype", g, "--C", "4", "--layers", "3"]),
    );
    assert!(
        (ours - theirs).abs() <= 0.002,
        "ours {ours}, the reference network with our weights {theirs}"
    );
    // And the logits of the first test image, ours (our network with the run's final weights)
    // against the reference network's: equal within rounding.
    let cfg = Config::load(Some(&fixture("train_tiny.toml")), &[]).unwrap();
    let logits = our_logits0(&cfg, &Genotype::parse(g).unwrap(), dir.path());
    assert_eq!(logits.len(), peer_logits.len());
    for (a, b) in logits.iter().zip(&peer_logits) {
        assert!(
            (a - b).abs() < 1e-3,
            "logits differ: ours {logits:?}, theirs {peer_logits:?}"
        );
    }
}

/// An NB201 cell's final weights under NAS-Bench-201's own names (`weights-nb201.safetensors`)
/// load into the benchmark's network (xautodl's `TinyNetwork`, by `scripts/nb201-load.py`;
/// every name must match, only `num_batches_tracked` may be absent), which then scores the test
/// accuracy our run reported and gives the first test image our logits. The cell has every kind
/// of op, and two residual blocks sit between the stages.
#[test]
fn the_nb201_named_weights_load_into_the_benchmarks_network() {
    let cell =
        "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|";
    let dir = tempfile::tempdir().unwrap();
    let data = cifar_dir();
    let out = run(&[
        "train",
        "--genotype",
        cell,
        "--headless",
        "--device",
        "cpu",
        "--data-dir",
        data.to_str().unwrap(),
        "--set",
        "data.limit=256",
        "--set",
        "evaluation.test_limit=500",
        "--set",
        "train.batch_size=64",
        "--set",
        "train.epochs=1",
        "--set",
        "model.channels=4",
        "--set",
        "model.cells=1",
        "--run-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let ours = metrics(dir.path(), "epoch")[0]["test_acc"]
        .as_f64()
        .expect("test_acc");
    let weights = dir.path().join("weights-nb201.safetensors");
    assert!(weights.is_file(), "no {}", weights.display());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/nb201-load.py");
    let (theirs, peer_logits) = reference_figures(
        Command::new(peer_python())
            .arg(&script)
            .args(["--load", weights.to_str().unwrap(), "--arch", cell])
            .args(["--C", "4", "--N", "1", "--eval", "500"])
            .args(["--data", data.to_str().unwrap()]),
    );
    assert!(
        (ours - theirs).abs() <= 0.002,
        "ours {ours}, the benchmark's network with our weights {theirs}"
    );
    let cfg = Config::load(Some(&dir.path().join("config.toml")), &[]).unwrap();
    let logits = our_logits0(&cfg, &Genotype::parse(cell).unwrap(), dir.path());
    assert_eq!(logits.len(), peer_logits.len());
    for (a, b) in logits.iter().zip(&peer_logits) {
        assert!(
            (a - b).abs() < 1e-3,
            "logits differ: ours {logits:?}, theirs {peer_logits:?}"
        );
    }
}

/// Runs a reference network's loader (`peer_train.py --load`, `scripts/nb201-load.py`): its
/// accuracy on the test images and its logits of the first one.
fn reference_figures(cmd: &mut Command) -> (f64, Vec<f64>) {
    let o = cmd
        .output()
        .expect("run the reference network (NASP_TUI_PYTHON)");
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let accuracy: f64 = out
        .split_whitespace()
        .find_map(|w| w.strip_prefix("accuracy="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no accuracy in {out}"));
    let logits = out
        .split_whitespace()
        .find_map(|w| w.strip_prefix("logits0="))
        .map(|v| v.split(',').map(|x| x.parse().unwrap()).collect())
        .unwrap_or_else(|| panic!("no logits0 in {out}"));
    (accuracy, logits)
}

/// Our network of `genotype` with the final weights of the run in `run_dir`: its logits of the
/// first CIFAR-10 test image.
fn our_logits0(cfg: &Config, genotype: &Genotype, run_dir: &Path) -> Vec<f64> {
    common::one_libtorch_thread();
    let t = nasp_tui::engine::train::Trainer::new(cfg, genotype, tch::Device::Cpu, None).unwrap();
    let saved = tensors(&run_dir.join("weights.safetensors"));
    tch::no_grad(|| {
        for (name, v) in t.variables() {
            v.shallow_clone().copy_(&saved[&name]);
        }
    });
    let raw = std::fs::read(cifar_dir().join("test_batch.bin")).unwrap();
    let (mean, std) = (nasp_tui::dataset::MEAN, nasp_tui::dataset::STD);
    let px: Vec<f32> = (0..3072)
        .map(|i| (f32::from(raw[1 + i]) / 255.0 - mean[i / 1024]) / std[i / 1024])
        .collect();
    let x = Tensor::from_slice(&px).view([1, 3, 32, 32]);
    Vec::<f64>::try_from(t.logits(&x).to_kind(tch::Kind::Double).view([-1])).unwrap()
}
