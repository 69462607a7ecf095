//! The PyTorch peer (`../shared/bench/peer_step.py`, `peer_train.py`) at our sizes: its
//! command, the figures it prints, and the line that puts them beside ours.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cli::CliError;
use crate::config::Config;
use crate::engine::bench::BenchResult;
use crate::space::CellType;

/// Runs the PyTorch peer at the sizes of `cfg` for `ours`' algorithm and prints the ratios.
pub(super) fn run(
    peer: &Path,
    cfg: &Config,
    steps: usize,
    ours: &BenchResult,
) -> Result<(), CliError> {
    peer_line(
        &mut peer_step(peer, cfg, steps, &ours.algorithm),
        ours,
        None,
    )
}

/// The peer's search step command for `algorithm` at the sizes of `cfg`.
fn peer_step(peer: &Path, cfg: &Config, steps: usize, algorithm: &str) -> Command {
    let (m, c) = (&cfg.model, cfg.model.channels.to_string());
    let mut cmd = Command::new(peer_python());
    cmd.arg(peer)
        .args(["--mode", algorithm, "--C", &c])
        .args(["--layers", &m.cells.to_string()])
        .args(["--batch", &cfg.train.batch_size.to_string()])
        .args(["--hw", &cfg.data.image_size.to_string()])
        .args(["--steps", &steps.to_string()]);
    // The peer's supernet is DARTS's 8 ops; a space without `none` is its 7-op form.
    let ops = m.op_lists();
    let has_none = |c| ops.get(c).iter().any(|o| o == "none");
    if !has_none(CellType::Normal) && !has_none(CellType::Reduce) {
        cmd.arg("--no-none");
    }
    cmd
}

/// The peer's median ms/step and peak RSS (MB) for `algorithm` at the sizes of `cfg`; the inner
/// error says why it printed no result (out of memory, say).
pub(super) fn peer_figures(
    peer: &Path,
    cfg: &Config,
    steps: usize,
    algorithm: &str,
) -> Result<Result<(f64, f64), String>, CliError> {
    Ok(peer_run(&mut peer_step(peer, cfg, steps, algorithm))?.map(|f| (f.ms, f.rss_mb)))
}

/// What a peer run printed.
struct PeerFigures {
    ms: f64,
    rss_mb: f64,
    params: Option<f64>,
}

/// Runs a peer command and reads its figures; the inner error says why there are none.
fn peer_run(cmd: &mut Command) -> Result<Result<PeerFigures, String>, CliError> {
    let out = cmd
        .output()
        .map_err(|e| CliError::Failed(format!("cannot run the peer: {e}")))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |k: &str| {
        text.split_whitespace()
            .find_map(|w| w.strip_prefix(k))
            .and_then(|v| v.parse::<f64>().ok())
    };
    Ok(match (field("ms_per_step="), field("peak_rss_mb=")) {
        (Some(ms), Some(rss_mb)) => Ok(PeerFigures {
            ms,
            rss_mb,
            params: field("params="),
        }),
        _ => Err(format!(
            "the peer printed no result: {} {}",
            text.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    })
}

/// Runs a peer command and prints its figures beside `ours` (and checks its parameter count
/// against `params` when given).
pub(super) fn peer_line(
    cmd: &mut Command,
    ours: &BenchResult,
    params: Option<usize>,
) -> Result<(), CliError> {
    let f = match peer_run(cmd)? {
        Ok(f) => f,
        Err(why) => {
            eprintln!("warning: {why}");
            return Ok(());
        }
    };
    println!(
        "peer {:<7} {:>9.1} ms/step  peak RSS {:>7.0} MB | ours/peer: time {:.3}, RSS {:.3}",
        ours.algorithm,
        f.ms,
        f.rss_mb,
        ours.ms_median / f.ms,
        ours.peak_rss_mb / f.rss_mb
    );
    if let (Some(want), Some(theirs)) = (params, f.params)
        && (theirs as usize) != want
    {
        eprintln!("warning: the peer counts {theirs} parameters, we count {want}");
    }
    Ok(())
}

/// The Python with the same torch the build links against: `NASP_TUI_PYTHON`, else the first
/// environment `scripts/setup.sh` made under the cache directory, else `python3`.
pub(super) fn peer_python() -> PathBuf {
    if let Some(p) = std::env::var_os("NASP_TUI_PYTHON") {
        return PathBuf::from(p);
    }
    let cache = std::env::var_os("NASP_TUI_CACHE")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("XDG_CACHE_HOME")
                .map(|c| PathBuf::from(c).join("nasp-tui"))
                .or_else(|| {
                    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/nasp-tui"))
                })
        });
    cache
        .and_then(|c| std::fs::read_dir(c).ok())
        .and_then(|it| {
            it.filter_map(Result::ok)
                .map(|e| e.path().join("bin/python"))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| PathBuf::from("python3"))
}
