//! `nasp-tui export RUN_DIR|CHECKPOINT`: print the newest genotype of a run (its own genotype
//! files when they are newer than its newest checkpoint), saying on stderr which step and which
//! file it comes from.

use std::path::PathBuf;

use clap::Args;

use super::CliError;
use crate::engine::checkpoint;
use crate::exit;
use crate::genotype::{Genotype, python_str};
use crate::rundir::{genotypes, printable, printable_path};
use crate::space;

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
    let from = printable_path(&file);
    // Only op names of the op table reach the output: a genotype file is not trusted to be
    // one nasp-tui wrote, and DARTS's scripts `eval` the text.
    if g.nb201_cell().is_none()
        && let Some(op) = g
            .normal
            .iter()
            .chain(&g.reduce)
            .map(|(op, _)| op)
            .find(|op| space::lookup(op).is_none())
    {
        return Err(CliError::Failed(format!(
            "{from}: op {} is not in the op table ({}): not a genotype nasp-tui wrote; nothing printed",
            python_str(&printable(op)),
            space::known_names()
        )));
    }
    eprintln!("genotype of step {step}, from {from}");
    if a.format == "json" {
        println!("{}", g.to_json());
    } else {
        println!("{g}");
    }
    Ok(exit::OK)
}
