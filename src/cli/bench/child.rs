//! The timings' child processes: each algorithm (or the training step) timed in a process of
//! its own, so that its peak memory is its own, and the line it prints read back.

use std::process::Command;

use super::BenchArgs;
use crate::cli::CliError;
use crate::config::Algorithm;
use crate::engine::bench::BenchResult;

/// Runs one algorithm's timing in a child process, with `sets` after the command line's own
/// `--set`s; the inner error says why it gave no result.
pub(super) fn run_child(
    a: &BenchArgs,
    alg: Algorithm,
    sets: &[String],
) -> Result<Result<BenchResult, String>, CliError> {
    run_child_with(a, &["--algo", alg.name()], sets)
}

/// Runs a timing in a child process with `what` (the algorithm, or the training step) among
/// `a`'s flags and `sets` after its `--set`s; the inner error says why it gave no result (out
/// of memory, say), the outer that it could not be started.
pub(super) fn run_child_with(
    a: &BenchArgs,
    what: &[&str],
    sets: &[String],
) -> Result<Result<BenchResult, String>, CliError> {
    let exe = std::env::current_exe().map_err(|e| CliError::Failed(e.to_string()))?;
    let mut cmd = Command::new(&exe);
    cmd.arg("bench")
        .arg("--child")
        .args(what)
        .arg("--steps")
        .arg(a.steps.to_string())
        .arg("--warmup")
        .arg(a.warmup.to_string());
    if a.profile {
        cmd.arg("--profile");
    }
    if a.phases {
        cmd.arg("--phases");
    }
    if let Some(c) = &a.config.config {
        cmd.arg("--config").arg(c);
    }
    for s in a.config.sets.iter().chain(sets) {
        cmd.arg("--set").arg(s);
    }
    if let Some(d) = &a.config.device {
        cmd.arg("--device").arg(d);
    }
    let out = cmd
        .output()
        .map_err(|e| CliError::Failed(format!("cannot run {}: {e}", exe.display())))?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .lines()
        .find_map(|l| serde_json::from_str::<BenchResult>(l).ok())
        .ok_or_else(|| {
            format!(
                "bench of {} failed: {}",
                what.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )
        }))
}

pub(super) fn print_result(r: &BenchResult) {
    println!(
        "{:<7} {:>9.1} ms/step (median; min {:.1}) {:>8.1} img/s  peak RSS {:>7.0} MB{}",
        r.algorithm,
        r.ms_median,
        r.ms_min,
        r.images_per_s,
        r.peak_rss_mb,
        r.peak_gpu_mb
            .map(|g| format!("  peak GPU {g:.0} MB"))
            .unwrap_or_default()
    );
    for n in &r.notes {
        println!("        note: {n}");
    }
    let timed: f64 = r.phases.iter().map(|(_, ms)| ms).sum();
    for (phase, ms) in &r.phases {
        println!(
            "        {ms:>9.1} ms/step {:>5.1} %  {phase}",
            100.0 * ms / timed
        );
    }
    if let Some(p) = &r.profile {
        print!("{p}");
        println!();
    }
}
