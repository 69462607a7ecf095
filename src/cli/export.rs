//! `nasp-tui export RUN_DIR|CHECKPOINT`: print the newest genotype of a run (its own genotype
//! files when they are newer than its newest checkpoint), saying on stderr which step and which
//! file it comes from.

use std::path::PathBuf;

use clap::Args;

use super::CliError;
use crate::engine::checkpoint;
use crate::exit;
use crate::genotype::Genotype;
use crate::rundir::genotypes;

#[derive(Args)]
pub struct ExportArgs {
    /// A run directory or a checkpoint directory.
    path: PathBuf,
    /// darts (the Genotype(...) text) or json.
    #[arg(long, default_value = "darts")]
    format: String,
}

/// The newest genotype under `path`: (genotype, step, the file it was read from).
fn newest(path: &std::path::Path) -> Result<(Genotype, u64, PathBuf), CliError> {
    let from_files = genotypes::newest(path);
    let from_checkpoint = checkpoint::locate(path);
    match (from_checkpoint, from_files) {
        (Ok((dir, meta, note)), files) => {
            if let Some(n) = note {
                eprintln!("warning: {n}");
            }
            match files {
                Some((step, file, g)) if step > meta.global_step => Ok((g, step, file)),
                _ => Ok((meta.genotype, meta.global_step, dir.join(checkpoint::META))),
            }
        }
        (Err(_), Some((step, file, g))) => Ok((g, step, file)),
        (Err(e), None) => Err(e.into()),
    }
}

pub fn run(a: &ExportArgs) -> Result<i32, CliError> {
    if a.format != "darts" && a.format != "json" {
        return Err(CliError::Usage(format!(
            "--format {}: use darts or json",
            a.format
        )));
    }
    let (g, step, file) = newest(&a.path)?;
    eprintln!("genotype of step {step}, from {}", file.display());
    if a.format == "json" {
        println!("{}", g.to_json());
    } else {
        println!("{g}");
    }
    Ok(exit::OK)
}
