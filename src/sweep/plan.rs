//! Planning a sweep: the command line's request checked against the config (every run's
//! settings resolved before anything is written) and against what the folder already holds.

use std::fs;
use std::path::PathBuf;

use super::{
    GridAxis, Launcher, Progress, SWEEP_FILE, SweepError, SweepFile, expand, file_err, progress,
    to_do,
};
use crate::config::{Config, ConfigError};

/// A sweep ready to launch: its file and each run's resolved config.
pub struct Plan {
    pub dir: PathBuf,
    pub file: SweepFile,
    /// Per run (as `file.runs`), its resolved config.
    pub configs: Vec<Config>,
    /// The folder already held this sweep (`sweep` continues it).
    pub existing: bool,
}

/// What the command line asks for.
pub struct Request {
    pub dir: PathBuf,
    /// The base config file (None: the caller's default text in `base_text`).
    pub config: Option<PathBuf>,
    pub base_text: Option<(String, String)>,
    pub sets: Vec<String>,
    /// None: the config's own seed.
    pub seeds: Option<Vec<u64>>,
    pub grid: Vec<GridAxis>,
    pub max_steps: Option<u64>,
    pub launcher: Launcher,
    pub parallel: Option<usize>,
    pub slurm_args: Vec<String>,
}

impl Request {
    fn load(&self, sets: &[String]) -> Result<Config, ConfigError> {
        match (&self.config, &self.base_text) {
            (Some(p), _) => Config::load(Some(p), sets),
            (None, Some((text, origin))) => Config::load_text(text, origin, sets),
            (None, None) => Config::load(None, sets),
        }
    }
}

/// Expands and checks the request: every run's config must load (the error names the grid
/// value and the config key) before anything is written or started; a folder holding another
/// sweep is refused with the difference.
pub fn plan(req: &Request) -> Result<Plan, SweepError> {
    let mut keys: Vec<&str> = Vec::new();
    for axis in &req.grid {
        if keys.contains(&axis.key.as_str()) {
            return Err(SweepError::Usage(format!(
                "--grid {}: the key is given twice; list all its values in one --grid",
                axis.key
            )));
        }
        if axis.key == "seed" && req.seeds.is_some() {
            return Err(SweepError::Usage(
                "--grid seed=... and --seeds/--seed-list both set the seed: use one".into(),
            ));
        }
        keys.push(&axis.key);
    }
    let base = req.load(&req.sets).map_err(|source| SweepError::Config {
        context: "the sweep's base config".into(),
        source,
    })?;
    let seeds = match &req.seeds {
        Some(s) if s.is_empty() => {
            return Err(SweepError::Usage(
                "no seeds: give --seeds N with N ≥ 1".into(),
            ));
        }
        Some(s) => {
            if let Some(d) = s
                .iter()
                .enumerate()
                .find_map(|(i, x)| s[..i].contains(x).then_some(x))
            {
                return Err(SweepError::Usage(format!(
                    "--seed-list: seed {d} is given twice (two identical runs)"
                )));
            }
            s.clone()
        }
        None => vec![base.seed],
    };
    let mut runs = expand(&seeds, &req.grid);
    if req.grid.iter().any(|a| a.key == "seed") {
        // The grid sets the seed: name and record each run by its grid seed.
        for r in &mut runs {
            if let Some((_, v)) = r.values.iter().find(|(k, _)| k == "seed") {
                r.seed = v.parse().unwrap_or(r.seed);
            }
        }
    }
    let mut configs = Vec::with_capacity(runs.len());
    for r in &runs {
        let cfg = req.load(&r.sets(&req.sets)).map_err(|source| {
            let values: Vec<String> = r.values.iter().map(|(k, v)| format!("{k}={v}")).collect();
            SweepError::Config {
                context: format!("--grid {}", values.join(" ")),
                source,
            }
        })?;
        // Values written differently but meaning the same (`3e-4` and `0.0003`, `nasp` and
        // `"nasp"`) would make two identical runs.
        if let Some(i) = configs.iter().position(|c| *c == cfg) {
            let say = |r: &super::PlannedRun| {
                let v: Vec<String> = r.values.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!("{} (seed {})", v.join(" "), r.seed)
            };
            return Err(SweepError::Usage(format!(
                "--grid: {} and {} give the same config (two identical runs); list each value once",
                say(&runs[i]),
                say(r)
            )));
        }
        configs.push(cfg);
    }
    let file = SweepFile {
        config: req.config.as_ref().map_or_else(
            || "configs/default.toml".into(),
            |p| p.display().to_string(),
        ),
        sets: req.sets.clone(),
        seeds,
        max_steps: req.max_steps,
        launcher: req.launcher,
        parallel: req.parallel,
        slurm_args: req.slurm_args.clone(),
        grid: req.grid.clone(),
        runs,
        jobs: Vec::new(),
    };
    let (existing, file) = match SweepFile::read(&req.dir)? {
        Some(old) => {
            let diff = old.differences(&file);
            if !diff.is_empty() {
                return Err(SweepError::Mismatch(format!(
                    "{} holds another sweep ({}); choose another --dir or repeat that sweep's settings",
                    req.dir.display(),
                    diff.join("; ")
                )));
            }
            // Keep the record of earlier submissions; take this command's launcher settings.
            (
                true,
                SweepFile {
                    jobs: old.jobs,
                    ..file
                },
            )
        }
        None => {
            if req.dir.is_dir() && fs::read_dir(&req.dir).is_ok_and(|mut d| d.next().is_some()) {
                return Err(SweepError::Mismatch(format!(
                    "{} is not empty and holds no {SWEEP_FILE}: choose a new or empty --dir",
                    req.dir.display()
                )));
            }
            (false, file)
        }
    };
    Ok(Plan {
        dir: req.dir.clone(),
        file,
        configs,
        existing,
    })
}

impl Plan {
    /// Writes the sweep folder: `sweep.toml` and each run's folder with its resolved
    /// `config.toml` (runs that have started keep theirs).
    pub fn write(&self) -> Result<(), SweepError> {
        fs::create_dir_all(&self.dir).map_err(|e| file_err(&self.dir, e))?;
        for (r, cfg) in self.file.runs.iter().zip(&self.configs) {
            let dir = self.dir.join(&r.name);
            let path = dir.join("config.toml");
            if path.is_file() {
                continue;
            }
            fs::create_dir_all(&dir).map_err(|e| file_err(&dir, e))?;
            fs::write(&path, cfg.to_toml()).map_err(|e| file_err(&path, e))?;
        }
        self.file.write(&self.dir)
    }

    /// The runs still to do (not finished, not owned by a live process), by index.
    pub fn to_do(&self) -> Vec<usize> {
        to_do(&self.dir, &self.file)
    }

    /// One line per run: index, name, where it stands.
    pub fn describe(&self) -> Vec<String> {
        self.file
            .runs
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let d = self.dir.join(&r.name);
                let what = match progress(&d) {
                    Progress::NotStarted => "to start",
                    Progress::Live => "running (left alone)",
                    Progress::Finished => "finished (not repeated)",
                    Progress::Unfinished => "to continue",
                };
                format!("  [{i}] {} — {what}", d.display())
            })
            .collect()
    }
}
