//! `nasp-tui sweep`: seeds × grid as runs in one folder, launched here or on Slurm (logic in
//! `crate::sweep`); `nasp-tui report`; and the two hidden subcommands the launchers run:
//! `sweep-run` (one run of a sweep: a headless search, resumed from its checkpoint when it has
//! one) and `sweep-drain` (the local launcher's queue).

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

use super::search::{self, SearchArgs};
use super::{CliError, DEFAULT_CONFIG};
use crate::config::Config;
use crate::engine::checkpoint;
use crate::exit;
use crate::rundir::printable;
use crate::rundir::status::pid_alive;
use crate::sweep::local::{self, LauncherInfo};
use crate::sweep::report;
use crate::sweep::{
    GridAxis, Job, Launcher, Plan, Progress, Request, SweepError, SweepFile, progress, slurm,
};

#[derive(Args)]
pub struct SweepArgs {
    /// Base search config (TOML); default configs/default.toml.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Seeds 1..=N.
    #[arg(long, conflicts_with = "seed_list")]
    seeds: Option<u64>,
    /// These seeds, e.g. --seed-list 1,5,9.
    #[arg(long, value_delimiter = ',')]
    seed_list: Option<Vec<u64>>,
    /// A config key and its values, e.g. --grid arch.lr=3e-4,1e-3 (repeatable: the product).
    #[arg(long = "grid", value_name = "KEY=V1,V2")]
    grid: Vec<String>,
    /// Override a config key for every run (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Each run stops (with a checkpoint) after this many steps in total.
    #[arg(long)]
    max_steps: Option<u64>,
    /// local (this machine) or slurm (a job array).
    #[arg(long, default_value = "local")]
    launcher: String,
    /// Runs at once (local: default one per visible GPU, 1 on a CPU; slurm: the array's %K).
    #[arg(long)]
    parallel: Option<usize>,
    /// An sbatch option for the job array, e.g. --slurm-arg=--partition=gpu (repeatable).
    #[arg(long = "slurm-arg", value_name = "ARG", allow_hyphen_values = true)]
    slurm_args: Vec<String>,
    /// The sweep folder (default: a new one under the runs root).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Print the plan (and, for Slurm, write the batch script); start nothing.
    #[arg(long)]
    dry_run: bool,
    /// Wait until the runs have ended (local launcher).
    #[arg(long)]
    wait: bool,
}

#[derive(Args)]
pub struct SweepRunArgs {
    sweep_dir: PathBuf,
    name: String,
    /// This process sees only its own GPU (CUDA_VISIBLE_DEVICES): a `cuda:N` run uses cuda:0.
    #[arg(long)]
    pinned: bool,
}

#[derive(Args)]
pub struct SweepDrainArgs {
    sweep_dir: PathBuf,
    #[arg(long, default_value_t = 1)]
    parallel: usize,
    /// GPUs to pin the runs to, one per slot (CUDA_VISIBLE_DEVICES entries).
    #[arg(long, value_delimiter = ',')]
    gpus: Vec<String>,
}

#[derive(Args)]
pub struct ReportArgs {
    /// Run directories, sweep folders or folders of runs.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// md (default), json, or html (one self-contained file: the report and the figures).
    #[arg(long, default_value = "md")]
    format: String,
    /// Write the report to this file instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
}

impl From<SweepError> for CliError {
    fn from(e: SweepError) -> CliError {
        match e {
            SweepError::Usage(_) | SweepError::Config { .. } | SweepError::Mismatch(_) => {
                CliError::Usage(e.to_string())
            }
            SweepError::Scheduler(_) | SweepError::File { .. } => CliError::Failed(e.to_string()),
        }
    }
}

/// The GPUs this process may use: `CUDA_VISIBLE_DEVICES`'s entries when it is set, else
/// libtorch's device count.
fn visible_gpus() -> Vec<String> {
    match std::env::var("CUDA_VISIBLE_DEVICES") {
        Ok(v) => v
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty() && !s.starts_with('-'))
            .map(str::to_string)
            .collect(),
        Err(_) => (0..tch::Cuda::device_count())
            .map(|i| i.to_string())
            .collect(),
    }
}

/// Prints one line of the sweep's progress. Its lines name the sweep folder, runs and grid
/// values, read from the command line or back from `sweep.toml` and the folder: escaped
/// (`rundir::printable`) so that none of them can carry a terminal escape sequence.
fn say(line: &str) {
    println!("{}", printable(line));
}

fn exe() -> Result<PathBuf, CliError> {
    std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .map_err(|e| CliError::Failed(format!("cannot tell where nasp-tui itself is: {e}")))
}

fn absolute(p: &Path) -> Result<PathBuf, CliError> {
    std::path::absolute(p)
        .map_err(|e| CliError::Usage(format!("{}: not a usable path: {e}", p.display())))
}

fn request(a: &SweepArgs) -> Result<Request, CliError> {
    let launcher = Launcher::parse(&a.launcher)
        .ok_or_else(|| CliError::Usage(format!("--launcher {}: use local or slurm", a.launcher)))?;
    if a.parallel == Some(0) {
        return Err(CliError::Usage("--parallel: give 1 or more".into()));
    }
    if a.seeds == Some(0) {
        return Err(CliError::Usage("--seeds: give 1 or more".into()));
    }
    if let Some(bad) = a.slurm_args.iter().find(|s| s.contains('\n')) {
        return Err(CliError::Usage(format!(
            "--slurm-arg {bad:?}: one option per --slurm-arg, without line breaks"
        )));
    }
    let grid = a
        .grid
        .iter()
        .map(|g| GridAxis::parse(g))
        .collect::<Result<Vec<_>, _>>()?;
    let seeds = match (a.seeds, &a.seed_list) {
        (Some(n), _) => Some((1..=n).collect()),
        (None, Some(list)) => Some(list.clone()),
        (None, None) => None,
    };
    let config = match &a.config {
        Some(p) => Some(absolute(p)?),
        None => DEFAULT_CONFIG.path().map(|p| absolute(&p)).transpose()?,
    };
    let dir = match &a.dir {
        Some(d) => absolute(d)?,
        None => absolute(&crate::rundir::default_run_dir("sweep"))?,
    };
    Ok(Request {
        dir,
        base_text: config
            .is_none()
            .then(|| (DEFAULT_CONFIG.text.to_string(), DEFAULT_CONFIG.origin())),
        config,
        sets: a.sets.clone(),
        seeds,
        grid,
        max_steps: a.max_steps,
        launcher,
        parallel: a.parallel,
        slurm_args: a.slurm_args.clone(),
    })
}

pub fn run(a: &SweepArgs) -> Result<i32, CliError> {
    let req = request(a)?;
    let plan = crate::sweep::plan(&req)?;
    let n = plan.file.runs.len();
    say(&format!(
        "sweep {} ({} runs: {} seed(s){}; launcher {})",
        plan.dir.display(),
        n,
        plan.file.seeds.len(),
        plan.file
            .grid
            .iter()
            .map(|g| format!(" × {}={}", g.key, g.values.join(",")))
            .collect::<String>(),
        plan.file.launcher.name()
    ));
    for line in plan.describe() {
        say(&line);
    }
    match plan.file.launcher {
        Launcher::Local => run_local(a, &plan),
        Launcher::Slurm => run_slurm(a, plan),
    }
}

fn run_local(a: &SweepArgs, plan: &Plan) -> Result<i32, CliError> {
    let uses_gpu = plan.configs.iter().any(|c| c.device != "cpu");
    let gpus = if uses_gpu { visible_gpus() } else { Vec::new() };
    let parallel = a.parallel.unwrap_or(gpus.len().max(1));
    let where_ = if gpus.is_empty() {
        "on the CPU".to_string()
    } else {
        format!("pinned to GPU(s) {}", gpus.join(","))
    };
    if let Some(l) = LauncherInfo::live(&plan.dir) {
        say(&format!(
            "a launcher (pid {} on {}) is already working on this sweep: {} queued, {} running; nothing new started",
            l.pid,
            l.host,
            l.queued.len(),
            l.running.len()
        ));
        if !a.wait {
            return Ok(exit::OK);
        }
        while LauncherInfo::live(&plan.dir).is_some() {
            std::thread::sleep(Duration::from_millis(500));
        }
        return Ok(unfinished_summary(plan, "the launcher ended"));
    }
    let to_do = plan.to_do();
    if to_do.is_empty() {
        say("nothing to start: every run has finished or is running");
        return Ok(exit::OK);
    }
    if a.dry_run {
        say(&format!(
            "dry run: would start {} run(s), {parallel} at once, {where_}; nothing started",
            to_do.len()
        ));
        return Ok(exit::OK);
    }
    plan.write()?;
    let mut child = local::spawn_launcher(&exe()?, &plan.dir, parallel, &gpus)?;
    say(&format!(
        "launcher pid {} runs {} run(s), {parallel} at once, {where_} (log: {}); watch: nasp-tui watch {}",
        child.id(),
        to_do.len(),
        plan.dir.join(local::LAUNCHER_LOG).display(),
        plan.dir.display()
    ));
    if !a.wait {
        return Ok(exit::OK);
    }
    let status = child
        .wait()
        .map_err(|e| CliError::Failed(format!("waiting for the launcher: {e}")))?;
    Ok(unfinished_summary(
        plan,
        &format!("the launcher ended ({status})"),
    ))
}

/// After waiting: 0 and "all N runs finished", or 1 and the runs not finished.
fn unfinished_summary(plan: &Plan, ended: &str) -> i32 {
    let unfinished: Vec<&str> = plan
        .file
        .runs
        .iter()
        .filter(|r| progress(&plan.dir.join(&r.name)) != Progress::Finished)
        .map(|r| r.name.as_str())
        .collect();
    if unfinished.is_empty() {
        say(&format!("all {} runs finished", plan.file.runs.len()));
        exit::OK
    } else {
        say(&format!("{ended}; not finished: {}", unfinished.join(", ")));
        exit::FAILED
    }
}

fn run_slurm(a: &SweepArgs, mut plan: Plan) -> Result<i32, CliError> {
    let gpu = plan.configs.iter().any(|c| c.device.starts_with("cuda"));
    let mut to_do = plan.to_do();
    if !a.dry_run {
        // Before anything is written: can jobs be submitted at all?
        slurm::check_available()?;
        // A task still queued (or starting) in an earlier job is not submitted twice.
        let queued = queued_tasks(&plan.file);
        for i in &queued {
            if to_do.contains(i) {
                say(&format!(
                    "  [{i}] {}: still in the queue of job {}, not submitted again",
                    plan.file.runs[*i].name,
                    plan.file.job_of(*i).map_or("?", |j| j.job_id.as_str())
                ));
            }
        }
        to_do.retain(|i| !queued.contains(i));
        if to_do.is_empty() {
            say("nothing to submit: every run has finished, is running or is queued");
            return Ok(exit::OK);
        }
    }
    plan.write()?;
    let script = slurm::script(&plan.dir, &plan.file, &exe()?, gpu);
    slurm::write_script(&plan.dir, &script)?;
    let spec = slurm::array_spec(&to_do, a.parallel);
    let script_path = plan.dir.join(slurm::SCRIPT);
    if a.dry_run {
        say(&format!(
            "dry run: would submit `sbatch --parsable --array={spec} {}`; nothing submitted",
            script_path.display()
        ));
        return Ok(exit::OK);
    }
    let job_id = slurm::submit(&plan.dir, &to_do, a.parallel)?;
    plan.file.jobs.push(Job {
        job_id: job_id.clone(),
        tasks: to_do.clone(),
        submitted: crate::rundir::status::unix_now(),
    });
    plan.file.write(&plan.dir)?;
    say(&format!(
        "submitted job array {job_id} ({} task(s): {spec}); watch: nasp-tui watch {}",
        to_do.len(),
        plan.dir.display()
    ));
    if a.wait {
        while slurm_pending(&job_id) {
            std::thread::sleep(Duration::from_secs(2));
        }
    }
    Ok(exit::OK)
}

/// The runs (by index) whose newest job still holds their task in a state that will run it.
fn queued_tasks(file: &SweepFile) -> Vec<usize> {
    let mut states = std::collections::HashMap::new();
    (0..file.runs.len())
        .filter(|&i| {
            let Some(job) = file.job_of(i) else {
                return false;
            };
            let tasks = states
                .entry(job.job_id.clone())
                .or_insert_with(|| crate::sweep::sched::squeue(&job.job_id).unwrap_or_default());
            tasks.get(&i).is_some_and(|t| !final_state(&t.state))
        })
        .collect()
}

/// A Slurm job state after which the task will not run again by itself.
fn final_state(state: &str) -> bool {
    matches!(
        state,
        "COMPLETED"
            | "FAILED"
            | "CANCELLED"
            | "TIMEOUT"
            | "OUT_OF_MEMORY"
            | "NODE_FAIL"
            | "BOOT_FAIL"
            | "DEADLINE"
            | "PREEMPTED"
    )
}

/// Whether `squeue` still lists a pending or running task of the job.
fn slurm_pending(job: &str) -> bool {
    crate::sweep::sched::squeue(job).is_ok_and(|m| m.values().any(|s| !final_state(&s.state)))
}

/// `sweep-run SWEEP_DIR NAME`: the run's headless search, from its checkpoint when it has one;
/// a finished run is not run again.
pub fn run_one(a: &SweepRunArgs) -> Result<i32, CliError> {
    let file = SweepFile::read(&a.sweep_dir)?.ok_or_else(|| {
        CliError::Usage(format!(
            "{} is not a sweep folder (no sweep.toml)",
            a.sweep_dir.display()
        ))
    })?;
    if file.index_of(&a.name).is_none() {
        return Err(CliError::Usage(format!(
            "{}: the sweep has no run named {}",
            a.sweep_dir.display(),
            a.name
        )));
    }
    let dir = a.sweep_dir.join(&a.name);
    match progress(&dir) {
        Progress::Finished => {
            say(&format!("{} has finished: not run again", dir.display()));
            return Ok(exit::OK);
        }
        Progress::Live => {
            return Err(CliError::Failed(format!(
                "{} is owned by a live process: not started twice",
                dir.display()
            )));
        }
        Progress::NotStarted | Progress::Unfinished => {}
    }
    let config = dir.join("config.toml");
    let device = if a.pinned {
        let cfg = Config::load(Some(&config), &[])?;
        cfg.device.starts_with("cuda").then(|| "cuda:0".to_string())
    } else {
        None
    };
    let resume = !checkpoint::list(&dir.join("checkpoints")).is_empty();
    let args = SearchArgs::headless_run(dir, (!resume).then_some(config), file.max_steps, device);
    search::run(args)
}

/// `sweep-drain SWEEP_DIR`: the local launcher's loop.
pub fn drain(a: &SweepDrainArgs) -> Result<i32, CliError> {
    if let Some(l) = LauncherInfo::live(&a.sweep_dir)
        && l.pid != std::process::id()
        && pid_alive(l.pid)
    {
        return Err(CliError::Failed(format!(
            "another launcher (pid {}) is working on {}",
            l.pid,
            a.sweep_dir.display()
        )));
    }
    let unfinished = local::drain(
        &exe()?,
        &a.sweep_dir,
        a.parallel,
        &a.gpus,
        &mut std::io::stdout(),
    )?;
    Ok(if unfinished == 0 {
        exit::OK
    } else {
        exit::FAILED
    })
}

/// `report PATH... [--format md|json|html] [--out FILE]`.
pub fn report(a: &ReportArgs) -> Result<i32, CliError> {
    let format = a.format.as_str();
    if !matches!(format, "md" | "markdown" | "json" | "html") {
        return Err(CliError::Usage(format!(
            "--format {format}: use md, json or html"
        )));
    }
    let r = report::collect(&a.paths).map_err(CliError::Usage)?;
    let text = match format {
        "json" => format!("{}\n", r.json()),
        "html" => crate::plot::html::page(&r, &report_title(&a.paths)),
        _ => r.markdown(),
    };
    match &a.out {
        Some(path) => std::fs::write(path, text).map_err(|e| {
            CliError::Failed(format!(
                "cannot write the report to {}: {e}",
                path.display()
            ))
        })?,
        // Markdown to a terminal: run names and values come from folder and file names.
        None if matches!(format, "md" | "markdown") => {
            print!("{}", crate::rundir::printable_lines(&text));
        }
        None => print!("{text}"),
    }
    Ok(exit::OK)
}

/// The HTML report's title: the folder or run it reports on (their names, for several).
fn report_title(paths: &[PathBuf]) -> String {
    let names: Vec<String> = paths
        .iter()
        .map(|p| {
            let abs = p.canonicalize().unwrap_or_else(|_| p.clone());
            abs.file_name().map_or_else(
                || p.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            )
        })
        .collect();
    format!("nasp-tui report: {}", names.join(", "))
}
