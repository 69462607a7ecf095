//! Figures from a run's files, for a paper or a look over ssh: `nasp-tui plot` writes them as
//! SVG, `nasp-tui report --format html` puts them inline in one HTML file, and the monitor's
//! export (`e`) writes the cells beside the genotype text.
//!
//! Read from the run directory only (`metrics.jsonl`, `events.jsonl`, `genotypes/`,
//! `config.toml`; a sweep's runs through `sweep::report`), so a finished, running or copied run
//! draws the same. The same files give the same bytes: no time, no random ids.
//!
//! - `data.rs` — what one run's figures are drawn from, and what its files do not hold yet;
//! - `figures.rs` — the figures: cells, loss and accuracy, architecture weights, a training
//!   run's epochs, a sweep's accuracies and consensus;
//! - `cell.rs` — the cell graphs, laid out by hand; `charts.rs` — line charts (plotters),
//!   written by `compact.rs` as small SVG (series thinned to their pixels);
//!   `bars.rs` — the consensus votes; `style.rs` — palette, dashes, markers;
//! - `html.rs` — the one-file HTML report.

mod bars;
mod cell;
mod charts;
mod compact;
pub mod data;
mod figures;
pub mod html;
mod style;

use std::fs;
use std::path::{Path, PathBuf};

use crate::genotype::Genotype;
use crate::rundir::listing::{find_runs, is_run_dir};
use crate::space::CellType;
use crate::sweep::report;
use data::RunData;

/// One figure: its file name without `.svg` (`curves`, `cell-normal`; a sweep's run's figures
/// `RUN/curves`), a sentence saying what it shows, and the SVG document.
#[derive(Debug, Clone)]
pub struct Figure {
    pub name: String,
    pub caption: String,
    pub svg: String,
}

/// The figures of a path, and what could not be drawn (one sentence each).
#[derive(Debug, Clone, Default)]
pub struct Plot {
    pub figures: Vec<Figure>,
    pub missing: Vec<String>,
}

/// Why no figure could be drawn or written.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("{0}: no such run directory or folder")]
    NoSuchPath(PathBuf),
    #[error("{0}: not a run directory (it has no status.json or config.toml) and holds no runs")]
    NotARun(PathBuf),
    #[error("{path}: nothing to draw yet: {}", missing.join("; "))]
    Nothing { path: PathBuf, missing: Vec<String> },
    #[error("cannot write the figures to {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl PlotError {
    /// Whether the path itself was wrong (a usage error) rather than the work failing.
    pub fn is_usage(&self) -> bool {
        matches!(self, PlotError::NoSuchPath(_) | PlotError::NotARun(_))
    }
}

/// The figures of one run directory (none for what its files do not hold yet).
pub fn run_figures(d: &RunData) -> Vec<Figure> {
    let mut out = Vec::new();
    if let Some((step, g)) = &d.genotype {
        out.extend(figures::cells(g, &d.who(), *step));
    }
    if d.training {
        out.extend(figures::training(d));
    }
    out.extend(figures::curves(d));
    if !d.training {
        out.extend(figures::arch(d, CellType::Normal));
        if !d.nb201 {
            out.extend(figures::arch(d, CellType::Reduce));
        }
    }
    out
}

/// The figures of `path`: a run directory (a search or a training run), or a folder of runs
/// (a sweep): the sweep's figures, then each run's under its name.
pub fn figures(path: &Path) -> Result<Plot, PlotError> {
    if !path.exists() {
        return Err(PlotError::NoSuchPath(path.to_path_buf()));
    }
    if is_run_dir(path) {
        let d = RunData::read(path);
        let figures = run_figures(&d);
        if figures.is_empty() {
            return Err(PlotError::Nothing {
                path: path.to_path_buf(),
                missing: d.missing,
            });
        }
        return Ok(Plot {
            figures,
            missing: d.missing,
        });
    }
    let mut runs: Vec<PathBuf> = find_runs(path).into_iter().map(|l| l.path).collect();
    if runs.is_empty() {
        return Err(PlotError::NotARun(path.to_path_buf()));
    }
    runs.sort();
    let r = report::collect(&[path.to_path_buf()]).map_err(|_| PlotError::NotARun(path.into()))?;
    let mut plot = Plot::default();
    plot.figures.extend(sweep_figures(&r, &folder_name(path)));
    for run in &runs {
        let d = RunData::read(run);
        for mut f in run_figures(&d) {
            f.name = format!("{}/{}", d.name, f.name);
            plot.figures.push(f);
        }
        plot.missing
            .extend(d.missing.iter().map(|m| format!("{}: {m}", d.name)));
    }
    Ok(plot)
}

/// The figures of several runs together: each run's final accuracy and the consensus.
pub fn sweep_figures(r: &report::Report, name: &str) -> Vec<Figure> {
    let mut out = Vec::new();
    out.extend(figures::sweep_accuracy(r, name));
    out.extend(figures::sweep_consensus(r, name));
    out
}

fn folder_name(p: &Path) -> String {
    let abs = p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    abs.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Writes each figure as `<out>/<name>.svg`; returns the paths written.
pub fn write(plot: &Plot, out: &Path) -> Result<Vec<PathBuf>, PlotError> {
    let mut written = Vec::new();
    for f in &plot.figures {
        let path = out.join(format!("{}.svg", f.name));
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|source| PlotError::Write {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        fs::write(&path, &f.svg).map_err(|source| PlotError::Write {
            path: path.clone(),
            source,
        })?;
        written.push(path);
    }
    Ok(written)
}

/// The cells of genotype `g` (step `step` of run `who`, `name (algorithm)`) as
/// `<dir>/<stem>-normal.svg` and `-reduce.svg` (`-cell.svg` for a NAS-Bench-201 cell): what the
/// monitor's export writes beside the genotype text.
pub fn write_cells(
    dir: &Path,
    stem: &str,
    g: &Genotype,
    who: &str,
    step: u64,
) -> std::io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for f in figures::cells(g, who, step) {
        let kind = f.name.trim_start_matches("cell-");
        let path = dir.join(format!("{stem}-{kind}.svg"));
        fs::write(&path, &f.svg)?;
        written.push(path);
    }
    Ok(written)
}
