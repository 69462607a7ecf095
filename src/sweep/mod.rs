//! Sweeps: several searches (seeds × a grid of config values) in one folder, each an ordinary
//! run directory, launched here (`local`) or on a Slurm cluster (`slurm`), and summarised
//! (`report`). `sweep.toml` in the sweep folder records what the sweep is (seeds, grid, the
//! `--set` overrides, the launcher) and the Slurm jobs submitted for it; each run's resolved
//! `config.toml` is written when the sweep is planned, so a run that has not started yet is a
//! run directory already (the runs table lists it) and starts with exactly those settings.
//!
//! Plain files and processes only: no libtorch. `cli::sweep` turns the command line into a
//! [`Plan`] and drives the launchers.

pub mod local;
mod plan;
pub mod report;
pub mod sched;
pub mod slurm;

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::ConfigError;
use crate::rundir::status::{RunState, Shown, Status, unix_now};

pub use plan::{Plan, Request, plan};

/// The sweep's own file inside its folder.
pub const SWEEP_FILE: &str = "sweep.toml";

/// Why a sweep cannot be planned, started or read.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// Bad flags (a malformed `--grid`, no seeds).
    #[error("{0}")]
    Usage(String),
    /// A grid value or override the config refuses; names the grid key and the config key.
    #[error("{context}: {source}")]
    Config {
        context: String,
        source: ConfigError,
    },
    /// The folder holds another sweep.
    #[error("{0}")]
    Mismatch(String),
    /// The scheduler is missing or does not answer; says which.
    #[error("{0}")]
    Scheduler(String),
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
}

fn file_err(path: &Path, e: impl fmt::Display) -> SweepError {
    SweepError::File {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Where the runs go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Launcher {
    /// Detached processes on this machine, at most `parallel` at once.
    Local,
    /// A Slurm job array, one task per run.
    Slurm,
}

impl Launcher {
    pub fn parse(s: &str) -> Option<Launcher> {
        match s {
            "local" => Some(Launcher::Local),
            "slurm" => Some(Launcher::Slurm),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Launcher::Local => "local",
            Launcher::Slurm => "slurm",
        }
    }
}

/// One `--grid key=v1,v2`: a config key and the values it takes (as `--set` would read them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GridAxis {
    pub key: String,
    pub values: Vec<String>,
}

impl GridAxis {
    /// Parses `key=v1,v2,...` (values as TOML, like `--set`; strings may be bare).
    pub fn parse(arg: &str) -> Result<GridAxis, SweepError> {
        let usage = |m: &str| SweepError::Usage(format!("--grid {arg}: {m}"));
        let (key, values) = arg
            .split_once('=')
            .ok_or_else(|| usage("expected key=v1,v2, e.g. arch.lr=3e-4,1e-3"))?;
        let key = key.trim();
        if key.is_empty() {
            return Err(usage("the key is empty"));
        }
        let values: Vec<String> = values.split(',').map(|v| v.trim().to_string()).collect();
        if values.iter().any(String::is_empty) {
            return Err(usage("a value is empty (values are separated by commas)"));
        }
        let mut seen = Vec::new();
        for v in &values {
            if seen.contains(&v) {
                return Err(usage(&format!("the value {v} is given twice")));
            }
            seen.push(v);
        }
        Ok(GridAxis {
            key: key.to_string(),
            values,
        })
    }
}

/// One run of the sweep.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedRun {
    /// The run directory's name inside the sweep folder.
    pub name: String,
    pub seed: u64,
    /// The grid key and value of this run, per axis.
    pub values: Vec<(String, String)>,
}

impl PlannedRun {
    /// The `--set` overrides of this run after the sweep's own: its grid values, then its seed.
    pub fn sets(&self, base: &[String]) -> Vec<String> {
        let mut sets = base.to_vec();
        sets.extend(self.values.iter().map(|(k, v)| format!("{k}={v}")));
        sets.push(format!("seed={}", self.seed));
        sets
    }
}

/// A Slurm job array submitted for the sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub job_id: String,
    /// The array indices (run numbers) it runs.
    pub tasks: Vec<usize>,
    /// Unix time of the submission.
    pub submitted: f64,
}

/// `sweep.toml`: what the sweep is and how it was launched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepFile {
    /// The base config as given on the command line (for the record).
    pub config: String,
    /// The sweep's `--set` overrides (before each run's grid values and seed).
    #[serde(default)]
    pub sets: Vec<String>,
    pub seeds: Vec<u64>,
    #[serde(default)]
    pub max_steps: Option<u64>,
    pub launcher: Launcher,
    /// Local launcher: runs at once.
    #[serde(default)]
    pub parallel: Option<usize>,
    /// Slurm launcher: extra `sbatch` arguments.
    #[serde(default)]
    pub slurm_args: Vec<String>,
    #[serde(default)]
    pub grid: Vec<GridAxis>,
    /// The runs, in array-index order.
    pub runs: Vec<PlannedRun>,
    /// Slurm submissions, oldest first.
    #[serde(default)]
    pub jobs: Vec<Job>,
}

impl SweepFile {
    /// Reads `<dir>/sweep.toml`; `Ok(None)` when the folder has none.
    pub fn read(dir: &Path) -> Result<Option<SweepFile>, SweepError> {
        let path = dir.join(SWEEP_FILE);
        match fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text)
                .map(Some)
                .map_err(|e| file_err(&path, format!("not a sweep file: {e}"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(file_err(&path, e)),
        }
    }

    /// Replaces `<dir>/sweep.toml` (written aside, then renamed).
    pub fn write(&self, dir: &Path) -> Result<(), SweepError> {
        let path = dir.join(SWEEP_FILE);
        let text = toml::to_string_pretty(self).map_err(|e| file_err(&path, e))?;
        let tmp = dir.join(format!(".{SWEEP_FILE}.{}", std::process::id()));
        fs::write(&tmp, text)
            .and_then(|()| fs::rename(&tmp, &path))
            .map_err(|e| file_err(&path, e))
    }

    /// How `other` (a new command line) differs from this sweep: the seeds, grid and overrides
    /// that define its runs. Empty when it is the same sweep.
    pub fn differences(&self, other: &SweepFile) -> Vec<String> {
        let mut out = Vec::new();
        if self.seeds != other.seeds {
            out.push(format!(
                "seeds: the folder has {:?}, the command asks for {:?}",
                self.seeds, other.seeds
            ));
        }
        let keys = |g: &[GridAxis]| g.iter().map(|a| a.key.clone()).collect::<Vec<_>>();
        if keys(&self.grid) != keys(&other.grid) {
            out.push(format!(
                "grid keys: the folder has {:?}, the command asks for {:?}",
                keys(&self.grid),
                keys(&other.grid)
            ));
        } else {
            for (a, b) in self.grid.iter().zip(&other.grid) {
                if a.values != b.values {
                    out.push(format!(
                        "grid {}: the folder has {}, the command asks for {}",
                        a.key,
                        a.values.join(","),
                        b.values.join(",")
                    ));
                }
            }
        }
        if self.sets != other.sets {
            out.push(format!(
                "--set: the folder has {:?}, the command asks for {:?}",
                self.sets, other.sets
            ));
        }
        out
    }

    /// The folder of run `i`.
    pub fn run_dir(&self, sweep_dir: &Path, i: usize) -> Option<PathBuf> {
        self.runs.get(i).map(|r| sweep_dir.join(&r.name))
    }

    /// The index of the run named `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.runs.iter().position(|r| r.name == name)
    }

    /// The newest job that runs task `i`.
    pub fn job_of(&self, i: usize) -> Option<&Job> {
        self.jobs.iter().rev().find(|j| j.tasks.contains(&i))
    }
}

/// A directory-name-safe rendering of a grid value or key.
fn slug(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Seeds × grid, seeds outermost, the first grid axis next: the runs in array-index order,
/// each named `seed<S>[_<key>-<value>]...` (made unique with its index if two names collide).
pub fn expand(seeds: &[u64], grid: &[GridAxis]) -> Vec<PlannedRun> {
    let mut combos: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for axis in grid {
        combos = combos
            .into_iter()
            .flat_map(|c| {
                axis.values.iter().map(move |v| {
                    let mut c = c.clone();
                    c.push((axis.key.clone(), v.clone()));
                    c
                })
            })
            .collect();
    }
    let mut runs: Vec<PlannedRun> = Vec::new();
    for &seed in seeds {
        for values in &combos {
            let mut name = format!("seed{seed}");
            for (k, v) in values {
                name.push_str(&format!("_{}-{}", slug(k), slug(v)));
            }
            if runs.iter().any(|r| r.name == name) {
                name = format!("{name}_{}", runs.len());
            }
            runs.push(PlannedRun {
                name,
                seed,
                values: values.clone(),
            });
        }
    }
    runs
}

/// Where one run stands, from its `status.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// No status yet: never started.
    NotStarted,
    /// A live process owns it (here, or on another node with a fresh heartbeat).
    Live,
    /// All its epochs (or `--max-steps`) done: never run again.
    Finished,
    /// Stopped, failed or STALE: to continue (from its checkpoint when it has one).
    Unfinished,
}

/// Where the run in `dir` stands now.
pub fn progress(dir: &Path) -> Progress {
    match Status::read(dir) {
        Ok(None) => Progress::NotStarted,
        Err(_) => Progress::Unfinished,
        Ok(Some(s)) => match s.shown(unix_now()) {
            Shown::Said(RunState::Finished) => Progress::Finished,
            Shown::Said(st) if st.live() => Progress::Live,
            _ => Progress::Unfinished,
        },
    }
}

/// The runs of the sweep to do now (not finished, not owned by a live process), by index.
pub fn to_do(sweep_dir: &Path, file: &SweepFile) -> Vec<usize> {
    (0..file.runs.len())
        .filter(|&i| {
            let d = sweep_dir.join(&file.runs[i].name);
            matches!(progress(&d), Progress::NotStarted | Progress::Unfinished)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_args_parse_and_refuse_malformed_ones() {
        let a = GridAxis::parse("arch.lr=0.01, 0.02").unwrap();
        assert_eq!(a.key, "arch.lr");
        assert_eq!(a.values, vec!["0.01", "0.02"]);
        for bad in ["arch.lr", "=1,2", "arch.lr=1,,2", "arch.lr=1,1"] {
            let e = GridAxis::parse(bad).unwrap_err().to_string();
            assert!(e.contains("--grid"), "{bad}: {e}");
        }
    }

    #[test]
    fn seeds_times_grid_in_index_order() {
        let g = vec![
            GridAxis::parse("arch.lr=0.01,0.02").unwrap(),
            GridAxis::parse("algorithm=nasp,darts1").unwrap(),
        ];
        let runs = expand(&[1, 2], &g);
        assert_eq!(runs.len(), 8);
        assert_eq!(runs[0].name, "seed1_arch.lr-0.01_algorithm-nasp");
        assert_eq!(runs[1].name, "seed1_arch.lr-0.01_algorithm-darts1");
        assert_eq!(runs[7].name, "seed2_arch.lr-0.02_algorithm-darts1");
        assert_eq!(
            runs[3].sets(&["train.epochs=1".into()]),
            vec![
                "train.epochs=1",
                "arch.lr=0.02",
                "algorithm=darts1",
                "seed=1"
            ]
        );
        // Values that slug alike stay apart.
        let runs = expand(
            &[1],
            &[GridAxis::parse("ui.theme=\"a b\",\"a_b\"").unwrap()],
        );
        assert_ne!(runs[0].name, runs[1].name);
    }

    fn request(dir: &Path, grid: &[&str]) -> Request {
        Request {
            dir: dir.to_path_buf(),
            config: None,
            base_text: None,
            sets: vec!["train.epochs=1".into()],
            seeds: Some(vec![1, 2]),
            grid: grid.iter().map(|g| GridAxis::parse(g).unwrap()).collect(),
            max_steps: None,
            launcher: Launcher::Local,
            parallel: None,
            slurm_args: Vec::new(),
        }
    }

    #[test]
    fn bad_grid_keys_and_values_name_the_key_before_anything_is_written() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("sw");
        for (grid, key) in [
            ("arch.no_such_key=1,2", "no_such_key"),
            ("train.epochs=two,3", "train.epochs"),
            ("model.channels=0,4", "model.channels"),
        ] {
            let e = plan(&request(&dir, &[grid])).err().expect(grid).to_string();
            assert!(e.contains(key), "{grid}: {e}");
            assert!(
                !dir.exists(),
                "nothing is written before the plan is checked"
            );
        }
    }

    #[test]
    fn a_folder_of_another_sweep_is_refused_with_the_difference() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("sw");
        let p = plan(&request(&dir, &["arch.lr=0.01,0.02"])).unwrap();
        assert!(!p.existing);
        p.write().unwrap();
        assert_eq!(p.to_do(), vec![0, 1, 2, 3]);
        assert!(dir.join("seed2_arch.lr-0.02/config.toml").is_file());
        let again = plan(&request(&dir, &["arch.lr=0.01,0.02"])).unwrap();
        assert!(again.existing);
        let e = plan(&request(&dir, &["arch.lr=0.01,0.03"]))
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("grid arch.lr") && e.contains("0.01,0.02") && e.contains("0.01,0.03"),
            "{e}"
        );
        let e = plan(&request(&dir, &["train.lr=0.1,0.2"]))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("grid keys"), "{e}");
        let other = tmp.path().join("full");
        fs::create_dir_all(other.join("x")).unwrap();
        let e = plan(&request(&other, &[])).err().unwrap().to_string();
        assert!(e.contains("not empty"), "{e}");
        let mut twice = request(&tmp.path().join("twice"), &[]);
        twice.seeds = Some(vec![3, 1, 3]);
        let e = plan(&twice).err().unwrap().to_string();
        assert!(e.contains("seed 3 is given twice"), "{e}");
        // The same value written two ways is two identical runs too.
        let e = plan(&request(&tmp.path().join("same"), &["arch.lr=3e-4,0.0003"]))
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("arch.lr=3e-4") && e.contains("arch.lr=0.0003") && e.contains("same config"),
            "{e}"
        );
        let e = plan(&request(
            &tmp.path().join("alg"),
            &["algorithm=nasp,\"nasp\""],
        ))
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("same config"), "{e}");
    }
}
