//! `nasp-tui bench --train`: the evaluation network's training step (`nasp-tui train`) in a
//! child process, then the PyTorch peer (`peer_train.py`) at the same sizes.

use std::process::Command;

use super::BenchArgs;
use super::child::{print_result, run_child_with};
use super::peer::{peer_line, peer_python};
use crate::cli::CliError;
use crate::engine::train::bench as train_bench;
use crate::engine::train::count_params;
use crate::engine::worker;
use crate::exit;
use crate::genotype::{DARTS_V2, Genotype};

/// `bench --train`: the training step in a child process, then the peer at the same sizes.
pub fn run(a: &BenchArgs) -> Result<i32, CliError> {
    // The child resolves the same default (same working directory, same executable).
    let ca = a.config.clone();
    let cfg = ca.load_or(crate::cli::BENCH_TRAIN_CONFIG)?;
    cfg.validate_for_training()?;
    let text = a.genotype.clone().unwrap_or_else(|| DARTS_V2.to_string());
    let g = Genotype::parse(&text).map_err(|e| CliError::Usage(format!("--genotype: {e}")))?;
    g.check_trainable(&cfg.model.op_lists())
        .map_err(|e| CliError::Usage(format!("--genotype: {e}")))?;
    let (device, note) = worker::resolve_device(&cfg.device).map_err(CliError::Usage)?;
    if device.is_cuda() {
        tch::Cuda::cudnn_set_benchmark(true);
    }
    if a.child {
        let r = train_bench::run(&cfg, &g, device, a.steps, a.warmup)
            .map_err(|e| CliError::Failed(e.to_string()))?;
        println!("{}", serde_json::to_string(&r).unwrap_or_default());
        return Ok(exit::OK);
    }
    let count = count_params(&cfg, &g).map_err(|e| CliError::Usage(e.to_string()))?;
    let (m, e) = (&cfg.model, &cfg.evaluation);
    println!(
        "bench --train: C={} cells={} batch={} hw={} auxiliary={} drop_path={} cutout={} device={note} activations={} threads={} steps={} (+{} warm-up); {count}",
        m.channels,
        m.cells,
        cfg.train.batch_size,
        cfg.data.image_size,
        e.auxiliary,
        e.drop_path,
        e.cutout,
        cfg.layout_name(device.is_cuda()),
        tch::get_num_threads(),
        a.steps,
        a.warmup
    );
    let mut child = BenchArgs {
        config: ca,
        genotype: Some(text.clone()),
        ..a.clone()
    };
    child.child = true;
    let r = run_child_with(&child, &["--train", "--genotype", &text], &[])?
        .map_err(CliError::Failed)?;
    print_result(&r);
    if let Some(peer) = &a.peer {
        let c = cfg.model.channels.to_string();
        let mut cmd = Command::new(peer_python());
        cmd.arg(peer)
            .args(["--genotype", &text, "--C", &c])
            .args(["--layers", &m.cells.to_string()])
            .args(["--batch", &cfg.train.batch_size.to_string()])
            .args(["--hw", &cfg.data.image_size.to_string()])
            .args(["--steps", &a.steps.to_string()])
            .args(["--drop-path", &e.drop_path.to_string()])
            .args([
                "--cutout",
                &(e.cutout * cfg.data.image_size / 32).to_string(),
            ]);
        if !e.auxiliary {
            cmd.arg("--no-auxiliary");
        }
        peer_line(&mut cmd, &r, Some(count.without_aux))?;
    }
    Ok(exit::OK)
}
