//! `<run>/genotypes/`: the genotype files a run writes (per epoch, on export, at the end) and
//! `index.jsonl`, one line per file with the step it holds, so that the newest can be found.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::genotype::Genotype;

/// The index's name inside `genotypes/`.
pub const INDEX: &str = "index.jsonl";

/// One line of the index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The global step whose genotype the file holds.
    pub step: u64,
    /// The JSON file's name in `genotypes/` (the `.txt` beside it holds the same genotype).
    pub file: String,
}

/// The newest genotype the run's files hold: its step, the JSON file and the genotype. Entries
/// whose file is missing or unreadable are passed over (newest readable wins; among equal steps,
/// the one written last).
pub fn newest(run_dir: &Path) -> Option<(u64, PathBuf, Genotype)> {
    let dir = run_dir.join("genotypes");
    let read = |p: &Path| super::secure::read_to_string(p, super::secure::SMALL_FILE_MAX);
    let text = read(&dir.join(INDEX)).ok()?;
    let mut entries: Vec<Entry> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    entries.reverse();
    entries.sort_by_key(|e| std::cmp::Reverse(e.step));
    entries.into_iter().find_map(|e| {
        let path = dir.join(&e.file);
        let g = Genotype::from_json(&read(&path).ok()?).ok()?;
        Some((e.step, path, g))
    })
}
