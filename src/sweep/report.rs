//! `nasp-tui report`: per run its seed and grid values, epochs, search time, final train and
//! valid accuracy and genotype; the consensus genotype (for each node, the edges most runs keep
//! and on each the op most runs select, with the votes); the best run by valid accuracy (a
//! training run's, `nasp-tui train`, is its test accuracy, and says so).
//! Read from the run directories only (`status.json`, `metrics.jsonl`, `genotypes/`, and the
//! sweep's `sweep.toml` for the grid values).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::SweepFile;
use crate::config::Config;
use crate::genotype::Genotype;
use crate::rundir::genotypes;
use crate::rundir::listing::{find_runs, is_run_dir};
use crate::rundir::metrics;
use crate::rundir::status::{Status, unix_now};

/// One run's line of the report.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub path: PathBuf,
    pub name: String,
    pub seed: Option<u64>,
    /// Grid key and value (runs of a sweep).
    pub values: Vec<(String, String)>,
    pub state: String,
    pub epochs_done: Option<usize>,
    pub epochs: Option<usize>,
    /// Seconds of search: the epochs' times as the run logged them.
    pub search_seconds: f64,
    /// Of the last epoch the run finished.
    pub train_acc: Option<f64>,
    pub valid_acc: Option<f64>,
    /// A training run's (`nasp-tui train`) test accuracy: it measures the test set, not a
    /// validation split.
    pub test_acc: Option<f64>,
    /// The run's newest genotype (DARTS text).
    pub genotype: Option<String>,
    #[serde(skip)]
    pub parsed: Option<Genotype>,
}

impl RunReport {
    /// The accuracy the run's last epoch measured on held-out images: a search's validation
    /// split, else a training's test set.
    pub fn held_out_acc(&self) -> Option<f64> {
        self.valid_acc.or(self.test_acc)
    }

    /// The "valid acc" cell: a training run's test accuracy says so.
    fn held_out_cell(&self) -> String {
        match (self.valid_acc, self.test_acc) {
            (None, Some(t)) => format!("{} (test)", pct(Some(t))),
            (v, _) => pct(v),
        }
    }
}

/// For one kept edge of the consensus: the op most runs select on it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Vote {
    /// The intermediate node (0-based, as the genotype lists them).
    pub node: usize,
    /// The edge's input state.
    pub input: usize,
    pub op: String,
    /// Runs selecting `op` on this edge.
    pub votes: usize,
    /// Runs keeping this edge at all.
    pub kept: usize,
}

/// The consensus of the runs' genotypes.
#[derive(Debug, Clone, Serialize)]
pub struct Consensus {
    pub runs: usize,
    pub normal: Vec<Vote>,
    pub reduce: Vec<Vote>,
    pub genotype: String,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub runs: Vec<RunReport>,
    pub consensus: Option<Consensus>,
    /// The run with the best final valid (or, for a training run, test) accuracy: its name.
    pub best: Option<String>,
}

/// The runs PATHS name (run directories, or folders of runs and sweeps), in order, once each.
pub fn collect(paths: &[PathBuf]) -> Result<Report, String> {
    let mut runs: Vec<RunReport> = Vec::new();
    for p in paths {
        if !p.exists() {
            return Err(format!("{}: no such run directory or folder", p.display()));
        }
        let dirs: Vec<PathBuf> = if is_run_dir(p) {
            vec![p.clone()]
        } else {
            let mut v: Vec<PathBuf> = find_runs(p).into_iter().map(|l| l.path).collect();
            v.sort();
            v
        };
        if dirs.is_empty() {
            return Err(format!(
                "{}: not a run directory and holds no runs",
                p.display()
            ));
        }
        for d in dirs {
            if runs.iter().any(|r| r.path == d) {
                continue;
            }
            runs.push(read_run(&d));
        }
    }
    let best = runs
        .iter()
        .filter_map(|r| r.held_out_acc().map(|v| (v, &r.name)))
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, n)| n.clone());
    let genos: Vec<&Genotype> = runs.iter().filter_map(|r| r.parsed.as_ref()).collect();
    Ok(Report {
        consensus: consensus(&genos),
        best,
        runs,
    })
}

/// Seed and grid values from the sweep the run belongs to, else the seed of its config.
fn identity(dir: &Path) -> (String, Option<u64>, Vec<(String, String)>) {
    let name = dir.file_name().map_or_else(
        || dir.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    if let Some(parent) = dir.parent()
        && let Ok(Some(f)) = SweepFile::read(parent)
        && let Some(i) = f.index_of(&name)
    {
        let r = &f.runs[i];
        return (name, Some(r.seed), r.values.clone());
    }
    let seed = fs::read_to_string(dir.join("config.toml"))
        .ok()
        .and_then(|t| Config::from_toml_str(&t, "config.toml").ok())
        .map(|c| c.seed);
    (name, seed, Vec::new())
}

fn read_run(dir: &Path) -> RunReport {
    let (name, seed, values) = identity(dir);
    let status = Status::read(dir).ok().flatten();
    let epochs = fs::read_to_string(dir.join("metrics.jsonl"))
        .map(|t| metrics::epochs(&t))
        .unwrap_or_default();
    let seconds = epochs.iter().filter_map(|e| e.seconds).sum();
    let last = epochs.last().cloned().unwrap_or_default();
    let parsed = genotypes::newest(dir).map(|(_, _, g)| g);
    RunReport {
        path: dir.to_path_buf(),
        name,
        seed,
        values,
        state: status
            .as_ref()
            .map_or("-", |s| s.shown(unix_now()).label())
            .to_string(),
        epochs_done: status.as_ref().map(|s| s.epoch),
        epochs: status.as_ref().map(|s| s.epochs),
        search_seconds: seconds,
        train_acc: last.train_acc,
        valid_acc: last.valid_acc,
        test_acc: last.test_acc,
        genotype: parsed.as_ref().map(ToString::to_string),
        parsed,
    }
}

/// The consensus of one cell type: per node, the two inputs most runs keep (ties: the lower
/// input), and on each the op most runs select (ties: the name first in alphabetical order).
fn cell_consensus(cells: &[&[(String, usize)]]) -> Vec<Vote> {
    let nodes = cells.iter().map(|c| c.len() / 2).max().unwrap_or(0);
    let mut out = Vec::new();
    for node in 0..nodes {
        // input -> op -> votes
        let mut edges: BTreeMap<usize, BTreeMap<&str, usize>> = BTreeMap::new();
        for c in cells {
            for (op, input) in c.iter().skip(2 * node).take(2) {
                *edges.entry(*input).or_default().entry(op).or_default() += 1;
            }
        }
        let mut ranked: Vec<(usize, usize, &str, usize)> = edges
            .iter()
            .map(|(input, ops)| {
                let kept = ops.values().sum();
                let (op, votes) = ops
                    .iter()
                    .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
                    .map_or(("", 0), |(o, v)| (*o, *v));
                (*input, kept, op, votes)
            })
            .collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut kept: Vec<Vote> = ranked
            .into_iter()
            .take(2)
            .map(|(input, kept, op, votes)| Vote {
                node,
                input,
                op: op.to_string(),
                votes,
                kept,
            })
            .collect();
        kept.sort_by_key(|v| v.input);
        out.extend(kept);
    }
    out
}

/// The consensus of the genotypes (None without any).
pub fn consensus(genos: &[&Genotype]) -> Option<Consensus> {
    let first = genos.first()?;
    let normal: Vec<&[(String, usize)]> = genos.iter().map(|g| g.normal.as_slice()).collect();
    let reduce: Vec<&[(String, usize)]> = genos.iter().map(|g| g.reduce.as_slice()).collect();
    let normal = cell_consensus(&normal);
    let reduce = cell_consensus(&reduce);
    let pairs = |v: &[Vote]| v.iter().map(|v| (v.op.clone(), v.input)).collect();
    let g = Genotype {
        normal: pairs(&normal),
        normal_concat: first.normal_concat.clone(),
        reduce: pairs(&reduce),
        reduce_concat: first.reduce_concat.clone(),
    };
    Some(Consensus {
        runs: genos.len(),
        normal,
        reduce,
        genotype: g.to_string(),
    })
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{:.1}%", 100.0 * v))
}

fn duration(s: f64) -> String {
    let s = s.round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

impl Report {
    /// The report as Markdown.
    pub fn markdown(&self) -> String {
        let mut keys: Vec<&str> = Vec::new();
        for r in &self.runs {
            for (k, _) in &r.values {
                if !keys.contains(&k.as_str()) {
                    keys.push(k);
                }
            }
        }
        let mut s = format!("# Sweep report ({} runs)\n\n", self.runs.len());
        let mut head = vec!["run", "seed"];
        head.extend(keys.iter().copied());
        head.extend(["state", "epochs", "search time", "train acc", "valid acc"]);
        s.push_str(&format!("| {} |\n", head.join(" | ")));
        s.push_str(&format!("|{}\n", "---|".repeat(head.len())));
        for r in &self.runs {
            let mut cells = vec![r.name.clone(), r.seed.map_or("-".into(), |x| x.to_string())];
            for k in &keys {
                let v = r.values.iter().find(|(key, _)| key == k);
                cells.push(v.map_or("-".into(), |(_, v)| v.clone()));
            }
            cells.push(r.state.clone());
            cells.push(match (r.epochs_done, r.epochs) {
                (Some(d), Some(n)) => format!("{d}/{n}"),
                _ => "-".into(),
            });
            cells.push(duration(r.search_seconds));
            cells.push(pct(r.train_acc));
            cells.push(r.held_out_cell());
            s.push_str(&format!("| {} |\n", cells.join(" | ")));
        }
        s.push_str("\n## Genotypes\n\n");
        for r in &self.runs {
            s.push_str(&format!(
                "- {}: `{}`\n",
                r.name,
                r.genotype.as_deref().unwrap_or("(none yet)")
            ));
        }
        s.push_str("\n## Consensus genotype\n\n");
        match &self.consensus {
            None => s.push_str("No run has a genotype yet.\n"),
            Some(c) => {
                s.push_str(&format!(
                    "Per node, the two edges most runs keep; on each, the op most runs select ({} runs).\n\n",
                    c.runs
                ));
                for (cell, votes) in [("normal", &c.normal), ("reduce", &c.reduce)] {
                    s.push_str(&format!("{cell}:\n"));
                    for v in votes.iter() {
                        s.push_str(&format!(
                            "- node {}, input {}: {} ({} of {} runs; {} keep the edge)\n",
                            v.node + 2,
                            v.input,
                            v.op,
                            v.votes,
                            c.runs,
                            v.kept
                        ));
                    }
                }
                s.push_str(&format!("\n`{}`\n", c.genotype));
            }
        }
        s.push_str("\n## Best run by valid accuracy\n\n");
        match self
            .best
            .as_ref()
            .and_then(|b| self.runs.iter().find(|r| &r.name == b))
        {
            Some(r) => s.push_str(&format!(
                "{} ({}): {}, train {}\n",
                r.name,
                r.path.display(),
                match r.test_acc {
                    Some(t) if r.valid_acc.is_none() => format!("test {}", pct(Some(t))),
                    _ => format!("valid {}", pct(r.valid_acc)),
                },
                pct(r.train_acc)
            )),
            None => s.push_str("No run has finished an epoch yet.\n"),
        }
        s
    }

    /// The report as one JSON object.
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(normal: &[(&str, usize)]) -> Genotype {
        Genotype {
            normal: normal.iter().map(|(o, i)| ((*o).to_string(), *i)).collect(),
            normal_concat: vec![2, 3],
            reduce: normal.iter().map(|(o, i)| ((*o).to_string(), *i)).collect(),
            reduce_concat: vec![2, 3],
        }
    }

    #[test]
    fn consensus_takes_the_most_kept_edges_and_the_most_chosen_op() {
        let a = g(&[("sep", 0), ("skip", 1), ("max", 2), ("sep", 0)]);
        let b = g(&[("sep", 0), ("dil", 1), ("avg", 1), ("sep", 2)]);
        let c = g(&[("avg", 1), ("sep", 0), ("max", 2), ("skip", 0)]);
        let con = consensus(&[&a, &b, &c]).unwrap();
        assert_eq!(con.runs, 3);
        let want = |node, input, op: &str, votes, kept| Vote {
            node,
            input,
            op: op.into(),
            votes,
            kept,
        };
        assert_eq!(
            con.normal,
            vec![
                want(0, 0, "sep", 3, 3),
                // input 1: skip, dil, avg once each: the first by name wins the tie.
                want(0, 1, "avg", 1, 3),
                // node 1: input 0 kept by a (sep) and c (skip), input 2 by a, b, c (max twice).
                want(1, 0, "sep", 1, 2),
                want(1, 2, "max", 2, 3),
            ]
        );
        assert!(
            con.genotype
                .starts_with("Genotype(normal=[('sep', 0), ('avg', 1)"),
            "{}",
            con.genotype
        );
        assert!(consensus(&[]).is_none());
    }

    #[test]
    fn a_training_run_reports_its_test_accuracy() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("train-run");
        std::fs::create_dir_all(&run).unwrap();
        // The epoch lines `nasp-tui train` writes (test figures, no validation split).
        std::fs::write(
            run.join("metrics.jsonl"),
            concat!(
                r#"{"kind":"step","epoch":0,"global_step":1,"train_loss":2.3,"train_acc":0.1}"#,
                "\n",
                r#"{"kind":"epoch","epoch":0,"global_step":16,"train_loss":2.0,"train_acc":0.2,"test_loss":1.9,"test_acc":0.3,"test_images":500,"test_seconds":1.0,"lr":0.05,"drop_path":0.0,"seconds":10.0}"#,
                "\n",
                r#"{"kind":"epoch","epoch":1,"global_step":32,"train_loss":1.8,"train_acc":0.35,"test_loss":1.7,"test_acc":0.4,"test_images":500,"test_seconds":1.0,"lr":0.02,"drop_path":0.1,"seconds":12.0}"#,
                "\n"
            ),
        )
        .unwrap();
        std::fs::write(run.join("config.toml"), "seed = 4\n").unwrap();
        let report = collect(&[run]).unwrap();
        let r = &report.runs[0];
        assert_eq!(
            (r.train_acc, r.valid_acc, r.test_acc),
            (Some(0.35), None, Some(0.4))
        );
        assert_eq!(r.search_seconds, 22.0);
        assert_eq!(report.best.as_deref(), Some("train-run"));
        let md = report.markdown();
        assert!(md.contains("| 35.0% | 40.0% (test) |"), "{md}");
        assert!(md.contains("test 40.0%, train 35.0%"), "{md}");
        let j: serde_json::Value = serde_json::from_str(&report.json()).unwrap();
        assert_eq!(j["runs"][0]["test_acc"], 0.4);
    }
}
