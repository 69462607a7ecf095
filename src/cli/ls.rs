//! `nasp-tui ls [ROOT] [--json]`: the runs under a root, newest first, one line each.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use super::CliError;
use crate::exit;
use crate::rundir::listing::{Listed, find_runs};
use crate::rundir::status::unix_now;
use crate::rundir::{printable, printable_path, runs_root};
use crate::ui::age;

#[derive(Args)]
pub struct LsArgs {
    /// A folder of runs, a sweep folder or one run (default: the user's runs root).
    root: Option<PathBuf>,
    /// One JSON object per run, in an array.
    #[arg(long)]
    json: bool,
}

/// The state column: the owner's word, STALE, `?` for an unreadable status, `-` for none.
pub fn state_label(l: &Listed, now: f64) -> &'static str {
    match (&l.status, &l.problem) {
        (Some(s), _) => s.shown(now).label(),
        (None, Some(_)) => "?",
        (None, None) => "-",
    }
}

pub fn run(a: &LsArgs) -> Result<i32, CliError> {
    let root = a.root.clone().unwrap_or_else(runs_root);
    if a.root.is_none() && !root.exists() {
        eprintln!("no runs yet under {}", printable_path(&root));
        println!("{}", if a.json { "[]" } else { "" });
        return Ok(exit::OK);
    }
    if !root.is_dir() {
        return Err(CliError::Usage(format!(
            "{} is not a folder of runs (give one, or start a search first)",
            printable_path(&root)
        )));
    }
    let runs = find_runs(&root);
    let now = unix_now();
    if a.json {
        let rows: Vec<serde_json::Value> = runs
            .iter()
            .map(|l| {
                let s = l.status.as_ref();
                json!({
                    "path": l.path.to_string_lossy(),
                    "state": state_label(l, now),
                    "step": s.map(|s| s.step),
                    "epoch": s.map(|s| s.epoch),
                    "epochs": s.map(|s| s.epochs),
                    "valid_acc": s.and_then(|s| s.valid_acc),
                    "age_s": now - l.last_seen,
                    "problem": l.problem,
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(rows));
        return Ok(exit::OK);
    }
    println!(
        "{:<9} {:>8} {:>7} {:>7} {:>5}  path",
        "state", "step", "epoch", "valid", "age"
    );
    for l in &runs {
        let s = l.status.as_ref();
        println!(
            "{:<9} {:>8} {:>7} {:>7} {:>5}  {}",
            state_label(l, now),
            s.map_or("-".into(), |s| s.step.to_string()),
            s.map_or("-".into(), |s| format!("{}/{}", s.epoch, s.epochs)),
            s.and_then(|s| s.valid_acc)
                .map_or("-".into(), |v| format!("{:.1}%", 100.0 * v)),
            age(now - l.last_seen),
            printable_path(&l.path)
        );
        if let Some(p) = &l.problem {
            eprintln!("warning: {}", printable(p));
        }
    }
    Ok(exit::OK)
}
