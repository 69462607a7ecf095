//! `nasp-tui plot PATH [--out DIR]`: the figures of a run, a training run or a sweep folder as
//! SVG files (`crate::plot`), by default in `PATH/figures/`. What the run's files do not hold
//! yet is said on stderr, and what they hold is drawn.

use std::path::PathBuf;

use clap::Args;

use super::CliError;
use crate::exit;
use crate::plot::{self, PlotError};

#[derive(Args)]
pub struct PlotArgs {
    /// A run directory (a search or a training run) or a folder of runs (a sweep).
    path: PathBuf,
    /// Where the SVG files go (made if missing); default PATH/figures.
    #[arg(long)]
    out: Option<PathBuf>,
}

impl From<PlotError> for CliError {
    fn from(e: PlotError) -> CliError {
        if e.is_usage() {
            CliError::Usage(e.to_string())
        } else {
            CliError::Failed(e.to_string())
        }
    }
}

pub fn run(a: &PlotArgs) -> Result<i32, CliError> {
    let figures = plot::figures(&a.path)?;
    let out = a.out.clone().unwrap_or_else(|| a.path.join("figures"));
    let written = plot::write(&figures, &out)?;
    for m in &figures.missing {
        eprintln!("not drawn: {m}");
    }
    for p in &written {
        println!("{}", p.display());
    }
    Ok(exit::OK)
}
