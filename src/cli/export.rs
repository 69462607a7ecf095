//! `nasp-tui export RUN_DIR|CHECKPOINT`: print the genotype a checkpoint holds.

use std::path::PathBuf;

use clap::Args;

use super::CliError;
use crate::engine::checkpoint;
use crate::exit;

#[derive(Args)]
pub struct ExportArgs {
    /// A run directory or a checkpoint directory.
    path: PathBuf,
    /// darts (the Genotype(...) text) or json.
    #[arg(long, default_value = "darts")]
    format: String,
}

pub fn run(a: &ExportArgs) -> Result<i32, CliError> {
    if a.format != "darts" && a.format != "json" {
        return Err(CliError::Usage(format!(
            "--format {}: use darts or json",
            a.format
        )));
    }
    let (_, meta, note) = checkpoint::locate(&a.path)?;
    if let Some(n) = note {
        eprintln!("warning: {n}");
    }
    if a.format == "json" {
        println!("{}", meta.genotype.to_json());
    } else {
        println!("{}", meta.genotype);
    }
    Ok(exit::OK)
}
