//! `nasp-tui train`: the evaluation stage. Resolves the genotype (a search's run directory, a
//! genotype file, or `--genotype` text), the config (`configs/cifar10-train.toml` unless
//! `--config`), checks the genotype against the config's space, prints the parameter count,
//! and runs the training worker under the same monitors as a search.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

use super::search::{monitor, monitor_options, refuse_a_run_there, register_signals};
use super::{CliError, ConfigArgs};
use crate::config::Config;
use crate::engine::train::worker::{self, TrainOptions};
use crate::engine::train::{TRAIN, count_params};
use crate::engine::{EngineError, resume};
use crate::genotype::Genotype;
use crate::rundir;
use crate::rundir::genotypes;

#[derive(Args, Default)]
pub struct TrainArgs {
    /// A search's run directory (its final genotype) or a genotype file (DARTS text or JSON).
    source: Option<PathBuf>,
    /// The genotype as DARTS text, "Genotype(normal=[...], normal_concat=[...], ...)", or a
    /// NAS-Bench-201 cell, "|nor_conv_3x3~0|+|...|".
    #[arg(long, conflicts_with = "source")]
    genotype: Option<String>,
    #[command(flatten)]
    config: ConfigArgs,
    /// Print progress lines instead of opening the terminal UI.
    #[arg(long)]
    headless: bool,
    /// Where the run writes its files (default: under the user data dir).
    #[arg(long)]
    run_dir: Option<PathBuf>,
    /// Folder with the CIFAR-10 binary files (test_batch.bin included).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Continue a training run (its directory) or one of its checkpoints.
    #[arg(long, conflicts_with_all = ["source", "genotype"])]
    resume: Option<PathBuf>,
    /// Stop (with a checkpoint) after this many steps in total.
    #[arg(long)]
    max_steps: Option<u64>,
    /// Colour theme: default, light, high-contrast, mono, or a theme file.
    #[arg(long)]
    theme: Option<String>,
    /// Take the run directory over although its status names a live owner on another host (see
    /// `search --take-over`).
    #[arg(long)]
    take_over: bool,
}

/// The flags' config: `--config`, else configs/cifar10-train.toml, with the overrides.
fn load_config(a: &ConfigArgs) -> Result<Config, CliError> {
    a.load_or(super::TRAIN_CONFIG)
}

/// Reads a genotype file: JSON (as `genotypes/*.json`) or the DARTS text form.
fn read_genotype_file(path: &Path) -> Result<Genotype, CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        CliError::Usage(format!("cannot read genotype file {}: {e}", path.display()))
    })?;
    let parsed = if text.trim_start().starts_with('{') {
        Genotype::from_json(&text)
    } else {
        Genotype::parse(text.trim())
    };
    parsed.map_err(|e| CliError::Usage(format!("genotype file {}: {e}", path.display())))
}

/// The final (newest) genotype of search run `dir`; the run's space and op lists replace the
/// config's (the genotype's ops come from them).
fn genotype_of_run(dir: &Path, cfg: &mut Config) -> Result<(Genotype, String), CliError> {
    let Some((step, file, g)) = genotypes::newest(dir) else {
        return Err(CliError::Usage(format!(
            "run directory {} holds no genotype (no readable genotypes/{} entry): a search writes one at each epoch's end and when it finishes; pass a genotype file or --genotype instead",
            dir.display(),
            genotypes::INDEX
        )));
    };
    let run_cfg = dir.join("config.toml");
    if let Ok(text) = std::fs::read_to_string(&run_cfg) {
        let theirs = Config::from_toml_str(&text, &run_cfg.display().to_string())?;
        cfg.model.space = theirs.model.space;
        cfg.model.normal_ops = theirs.model.normal_ops;
        cfg.model.reduce_ops = theirs.model.reduce_ops;
    }
    Ok((g, format!("{} (step {step})", file.display())))
}

/// The config, genotype and where it came from, of a new training run.
fn new_run(a: &TrainArgs) -> Result<(Config, Genotype, String), CliError> {
    let mut cfg = load_config(&a.config)?;
    let (g, origin) = match (&a.source, &a.genotype) {
        (Some(p), None) if p.is_dir() => genotype_of_run(p, &mut cfg)?,
        (Some(p), None) => (read_genotype_file(p)?, p.display().to_string()),
        (None, Some(text)) => (
            Genotype::parse(text).map_err(|e| CliError::Usage(format!("--genotype: {e}")))?,
            "--genotype".to_string(),
        ),
        _ => {
            return Err(CliError::Usage(
                "name the genotype to train: a search's RUN_DIR, a GENOTYPE_FILE, or --genotype \"Genotype(...)\" (or --resume a training run)".into(),
            ));
        }
    };
    if g.nb201_cell().is_some() && a.config.config.is_none() {
        // A NAS-Bench-201 cell trains with the benchmark's recipe unless --config says otherwise.
        cfg = a.config.load_or(super::NB201_TRAIN_CONFIG)?;
    }
    g.check_trainable(&cfg.model.op_lists())
        .map_err(|e| CliError::Usage(format!("{origin}: {e}")))?;
    Ok((cfg, g, origin))
}

pub fn run(a: TrainArgs) -> Result<i32, CliError> {
    let (mut cfg, genotype, resume_from) = match &a.resume {
        Some(path) => {
            let given = match (&a.config.config, resume::run_config_of(path)) {
                (None, Some(own)) => Config::load(Some(&own), &a.config.overrides())?,
                _ => load_config(&a.config)?,
            };
            let (cfg, g, dir, meta, note) =
                worker::resume_point(path, &given).map_err(|e| match e {
                    EngineError::Checkpoint(c) => CliError::Checkpoint(c),
                    other => CliError::Failed(other.to_string()),
                })?;
            if meta.algorithm != TRAIN {
                return Err(CliError::Usage(format!(
                    "{} is a checkpoint of a {} search, not of a training run; continue it with `nasp-tui search --resume`, or train its genotype with `nasp-tui train {}`",
                    dir.display(),
                    meta.algorithm,
                    path.display()
                )));
            }
            if let Some(n) = note {
                eprintln!("warning: {n}");
            }
            (cfg, g, Some((dir, meta)))
        }
        None => {
            let (cfg, g, origin) = new_run(&a)?;
            eprintln!("genotype from {origin}: {g}");
            (cfg, g, None)
        }
    };
    if let Some(t) = &a.theme {
        cfg.ui.theme = t.clone();
    }
    cfg.validate_for_training()?;
    let count = count_params(&cfg, &genotype).map_err(|e| CliError::Usage(e.to_string()))?;
    println!("{count}");
    let run_dir = a
        .run_dir
        .clone()
        .or_else(|| a.resume.as_deref().and_then(resume::run_dir_of))
        .unwrap_or_else(|| rundir::default_run_dir("train"));
    refuse_a_run_there(&run_dir, a.resume.as_deref(), "train")?;
    let fresh = a.run_dir.is_none() && a.resume.is_none();
    let (tui_opts, hangup) =
        monitor_options(a.headless, a.theme.as_deref(), &cfg, &run_dir, fresh)?;
    let opts = TrainOptions {
        config: cfg,
        genotype,
        run_dir,
        data_dir: a.data_dir.clone(),
        max_steps: a.max_steps,
        resume: resume_from,
        event_interval: Duration::from_millis(100),
        take_over: a.take_over,
    };
    let signals = register_signals(tui_opts.is_some());
    let handle = worker::spawn(opts)
        .map_err(|e| CliError::Failed(format!("cannot start the training thread: {e}")))?;
    monitor(handle, signals, tui_opts, &hangup)
}
