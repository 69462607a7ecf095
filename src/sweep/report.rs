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

/// A path as text, its bytes that are not UTF-8 replaced.
fn lossy_path<S: serde::Serializer>(p: &Path, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&p.to_string_lossy())
}

/// One run's line of the report.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// Written to JSON lossily: a folder name that is not UTF-8 gets U+FFFD for its bad bytes
    /// (JSON has no way to hold them) instead of failing the whole report.
    #[serde(serialize_with = "lossy_path")]
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
    /// The run's newest genotype (DARTS text, or NAS-Bench-201's string).
    pub genotype: Option<String>,
    /// The search algorithm (from the run's config).
    pub algorithm: Option<String>,
    /// An NB201 run: the benchmark's test accuracy (%) of its newest genotype's cell,
    /// and that cell's rank among the 15,625 (a lookup, not a measurement of the run).
    pub nb201_acc: Option<f64>,
    pub nb201_rank: Option<usize>,
    /// The benchmark's column those figures come from: the data set the run used
    /// ("CIFAR-10", or "CIFAR-100" for a CIFAR-100 run).
    pub nb201_column: Option<String>,
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

/// The NB201 figures of one group of runs (same algorithm and grid values, any seeds).
#[derive(Debug, Clone, Serialize)]
pub struct Nb201Group {
    /// The algorithm and grid values the runs share.
    pub label: String,
    pub runs: usize,
    /// Mean and (population) standard deviation of the test accuracies, in %.
    pub mean: f64,
    pub std: f64,
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
    /// NB201 runs: mean ± std of the benchmark accuracy per algorithm and grid values.
    pub nb201: Vec<Nb201Group>,
}

/// The runs PATHS name (run directories, or folders of runs and sweeps), in order, once each.
pub fn collect(paths: &[PathBuf]) -> Result<Report, String> {
    let mut runs: Vec<RunReport> = Vec::new();
    let mut seen: Vec<PathBuf> = Vec::new();
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
            // The same run reached by two paths (a link, `a/../a`) is one run.
            let real = fs::canonicalize(&d).unwrap_or_else(|_| d.clone());
            if seen.contains(&real) {
                continue;
            }
            seen.push(real);
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
        nb201: nb201_groups(&runs),
        runs,
    })
}

/// Mean ± std of the runs' NB201 accuracies, per algorithm and grid values (over seeds).
/// The benchmark column of the published results (and of CIFAR-10 runs).
const CIFAR10: &str = "CIFAR-10";

fn nb201_groups(runs: &[RunReport]) -> Vec<Nb201Group> {
    let mut groups: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for r in runs {
        let Some(acc) = r.nb201_acc else { continue };
        // A run still searching (or stopped) has not derived its final cell.
        if r.state != "FINISHED" {
            continue;
        }
        let mut label = r.algorithm.clone().unwrap_or_else(|| "?".into());
        for (k, v) in r.values.iter().filter(|(k, _)| k != "algorithm") {
            label.push_str(&format!(", {k}={v}"));
        }
        if let Some(c) = r.nb201_column.as_deref().filter(|c| *c != CIFAR10) {
            label.push_str(&format!(" on {c}"));
        }
        groups.entry(label).or_default().push(acc);
    }
    groups
        .into_iter()
        .map(|(label, v)| {
            let n = v.len() as f64;
            let mean = v.iter().sum::<f64>() / n;
            let std = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
            Nb201Group {
                label,
                runs: v.len(),
                mean,
                std,
            }
        })
        .collect()
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
    let seed = run_config(dir).map(|c| c.seed);
    (name, seed, Vec::new())
}

fn run_config(dir: &Path) -> Option<Config> {
    fs::read_to_string(dir.join("config.toml"))
        .ok()
        .and_then(|t| Config::from_toml_str(&t, "config.toml").ok())
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
    let config = run_config(dir);
    let column = config.as_ref().map_or(crate::nb201::Dataset::Cifar10, |c| {
        c.data.dataset.nb201_column()
    });
    let nb201 = parsed.as_ref().and_then(Genotype::nb201_cell).map(|c| {
        let e = crate::nb201::table().lookup(&c);
        (e.accuracy(column), e.rank(column))
    });
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
        algorithm: config.map(|c| c.algorithm.name().to_string()),
        nb201_acc: nb201.map(|x| x.0),
        nb201_rank: nb201.map(|x| x.1),
        nb201_column: nb201.map(|_| column.name().to_string()),
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

/// The consensus of NB201 cells: on each of the six edges, the op most runs select (ties: the
/// name first in alphabetical order). Every edge is kept.
fn nb201_consensus(cells: &[crate::nb201::Cell]) -> Consensus {
    let mut votes = Vec::new();
    let mut ops = [0usize; 6];
    for (e, &(node, input)) in crate::nb201::EDGES.iter().enumerate() {
        let mut count: BTreeMap<&str, usize> = BTreeMap::new();
        for c in cells {
            *count.entry(crate::nb201::OPS[c.ops[e]]).or_default() += 1;
        }
        let (op, n) = count
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map_or(("none", 0), |(o, n)| (*o, *n));
        ops[e] = crate::nb201::OPS.iter().position(|o| *o == op).unwrap_or(0);
        votes.push(Vote {
            node,
            input,
            op: op.to_string(),
            votes: n,
            kept: cells.len(),
        });
    }
    Consensus {
        runs: cells.len(),
        normal: votes,
        reduce: Vec::new(),
        genotype: crate::nb201::Cell { ops }.to_string(),
    }
}

/// The consensus of the genotypes (None without any).
pub fn consensus(genos: &[&Genotype]) -> Option<Consensus> {
    let first = genos.first()?;
    let cells: Vec<crate::nb201::Cell> = genos.iter().filter_map(|g| g.nb201_cell()).collect();
    if cells.len() == genos.len() {
        return Some(nb201_consensus(&cells));
    }
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

/// The runs' NB201 accuracies per group beside the published results.
fn nb201_section(groups: &[Nb201Group]) -> String {
    let mut s = String::from(
        "\n## NAS-Bench-201\n\nTest accuracy of the derived cells, as the benchmark \
         measured them (its 200-epoch training of each cell: a lookup, not this run's own \
         accuracy), on the data set the runs searched (CIFAR-10 unless a group says otherwise; \
         the published results are CIFAR-10's); mean ± std over the seeds of the finished \
         runs.\n\n| method | runs | test accuracy |\n|---|---|---|\n",
    );
    for g in groups {
        s.push_str(&format!(
            "| {} (these runs) | {} | {:.2} ± {:.2} |\n",
            g.label, g.runs, g.mean, g.std
        ));
    }
    for (name, mean, std) in crate::nb201::PUBLISHED_CIFAR10 {
        let std = std.map_or_else(String::new, |d| format!(" ± {d:.2}"));
        s.push_str(&format!("| {name} (published) | - | {mean:.2}{std} |\n"));
    }
    let best = crate::nb201::table().best(crate::nb201::Dataset::Cifar10);
    s.push_str(&format!("| best cell in the space | - | {best:.2} |\n"));
    s
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
        let any_nb201 = self.runs.iter().any(|r| r.nb201_acc.is_some());
        if any_nb201 {
            head.push("NB201 test (rank)");
        }
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
            if any_nb201 {
                cells.push(match (r.nb201_acc, r.nb201_rank) {
                    (Some(a), Some(k)) => match r.nb201_column.as_deref() {
                        Some(c) if c != CIFAR10 => format!("{a:.2}% ({k}) {c}"),
                        _ => format!("{a:.2}% ({k})"),
                    },
                    _ => "-".into(),
                });
            }
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
                let nb201 = c.reduce.is_empty() && c.genotype.starts_with('|');
                let rule = if nb201 {
                    "On each edge (NAS-Bench-201 keeps all six), the op most runs select"
                } else {
                    "Per node, the two edges most runs keep; on each, the op most runs select"
                };
                s.push_str(&format!("{rule} ({} runs).\n\n", c.runs));
                for (cell, votes) in [("normal", &c.normal), ("reduce", &c.reduce)] {
                    if nb201 {
                        for v in votes.iter() {
                            s.push_str(&format!(
                                "- edge {}←{}: {} ({} of {} runs)\n",
                                v.node, v.input, v.op, v.votes, c.runs
                            ));
                        }
                        break;
                    }
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
        if !self.nb201.is_empty() {
            s.push_str(&nb201_section(&self.nb201));
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

    #[test]
    fn a_run_reached_through_a_link_is_counted_once() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("sweep").join("seed1");
        std::fs::create_dir_all(&run).unwrap();
        std::fs::write(run.join("config.toml"), "seed = 1\n").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path().join("sweep"), &link).unwrap();
        let report = collect(&[run.clone(), link.join("seed1"), dir.path().join("sweep")]).unwrap();
        assert_eq!(
            report.runs.len(),
            1,
            "{:?}",
            report.runs.iter().map(|r| &r.path).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_run_whose_name_is_not_utf8_is_reported_in_json() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join(std::ffi::OsStr::from_bytes(b"run-\xff"));
        std::fs::create_dir_all(&run).unwrap();
        std::fs::write(run.join("config.toml"), "seed = 4\n").unwrap();
        let report = collect(&[run]).unwrap();
        let j: serde_json::Value =
            serde_json::from_str(&report.json()).expect("JSON, not an error");
        assert!(j.get("error").is_none(), "{j}");
        let path = j["runs"][0]["path"].as_str().unwrap();
        assert!(path.ends_with("run-\u{fffd}"), "{path}");
    }

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

    #[test]
    fn nb201_consensus_and_groups() {
        let cell = |s: &str| Genotype::parse(s).unwrap();
        let a =
            cell("|skip_connect~0|+|nor_conv_3x3~0|none~1|+|none~0|nor_conv_3x3~1|nor_conv_1x1~2|");
        let b = cell(
            "|skip_connect~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|none~0|skip_connect~1|nor_conv_1x1~2|",
        );
        let c = cell(
            "|nor_conv_1x1~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|none~0|skip_connect~1|nor_conv_3x3~2|",
        );
        let con = consensus(&[&a, &b, &c]).unwrap();
        assert_eq!(
            con.genotype,
            "|skip_connect~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|none~0|skip_connect~1|nor_conv_1x1~2|"
        );
        assert_eq!(con.normal.len(), 6);
        assert_eq!((con.normal[0].node, con.normal[0].input), (1, 0));
        assert_eq!((con.normal[5].node, con.normal[5].input), (3, 2));
        assert_eq!(con.normal[3].votes, 3);
        let run = |alg: &str, acc: f64| RunReport {
            path: PathBuf::new(),
            name: String::new(),
            seed: None,
            values: vec![("algorithm".into(), format!("\"{alg}\""))],
            state: "FINISHED".into(),
            epochs_done: None,
            epochs: None,
            search_seconds: 0.0,
            train_acc: None,
            valid_acc: None,
            test_acc: None,
            genotype: None,
            algorithm: Some(alg.into()),
            nb201_acc: Some(acc),
            nb201_rank: None,
            nb201_column: Some(CIFAR10.into()),
            parsed: None,
        };
        let mut running = run("nasp", 10.0);
        running.state = "RUNNING".into();
        let mut c100 = run("nasp", 70.0);
        c100.nb201_column = Some("CIFAR-100".into());
        let groups = nb201_groups(&[
            run("nasp", 90.0),
            run("darts1", 54.3),
            run("nasp", 92.0),
            running,
            c100,
        ]);
        assert_eq!(groups.len(), 3, "{groups:?}");
        let c100 = groups.iter().find(|g| g.label == "nasp on CIFAR-100");
        assert_eq!(c100.map(|g| g.runs), Some(1), "{groups:?}");
        let nasp = groups.iter().find(|g| g.label == "nasp").unwrap();
        assert_eq!(nasp.runs, 2);
        assert!((nasp.mean - 91.0).abs() < 1e-9 && (nasp.std - 1.0).abs() < 1e-9);
        let md = nb201_section(&groups);
        assert!(md.contains("nasp (these runs) | 2 | 91.00 ± 1.00"), "{md}");
        assert!(md.contains("DARTS-V1 (first order) (published)"), "{md}");
        assert!(md.contains("best cell in the space | - | 94.37"), "{md}");
    }
}
