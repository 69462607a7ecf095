//! The Slurm launcher: `<sweep>/sweep.sbatch`, a job array with one task per run, submitted
//! with `sbatch --parsable`. Each task runs `nasp-tui sweep-run` on its run directory (which
//! resumes from the run's checkpoint when it has one). Ahead of the time limit the batch shell
//! gets SIGUSR1 (`--signal=B:USR1@GRACE`, see [`grace_s`]): it stops the search with SIGTERM (the search saves a
//! checkpoint and exits), then requeues its own task, which later continues from that
//! checkpoint. Cancellation, preemption and `scontrol requeue` send SIGTERM to the task's
//! processes; the search checkpoints the same way before Slurm's `KillWait` runs out.

use std::path::Path;
use std::process::Command;

use super::{SweepError, SweepFile, file_err};

/// The batch script's name inside the sweep folder.
pub const SCRIPT: &str = "sweep.sbatch";
/// The tasks' output folder inside the sweep folder (`<job>_<task>.out`).
pub const OUTPUT_DIR: &str = "slurm";
/// Seconds before the time limit at which a task checkpoints and requeues itself.
pub const GRACE_S: u64 = 120;

/// Seconds of a Slurm time limit (`M`, `M:S`, `H:M:S`, `D-H`, `D-H:M`, `D-H:M:S`).
fn time_limit_s(t: &str) -> Option<u64> {
    let (days, rest) = match t.split_once('-') {
        Some((d, r)) => (d.parse::<u64>().ok()?, r),
        None => (0, t),
    };
    let parts: Vec<u64> = rest
        .split(':')
        .map(|p| p.parse::<u64>().ok())
        .collect::<Option<_>>()?;
    let s = match (t.contains('-'), parts.as_slice()) {
        (false, [m]) => m * 60,
        (false, [m, s]) => m * 60 + s,
        (_, [h, m, s]) => h * 3600 + m * 60 + s,
        (true, [h]) => h * 3600,
        (true, [h, m]) => h * 3600 + m * 60,
        _ => return None,
    };
    Some(days * 86_400 + s)
}

/// The warning time for the time limit the sbatch options set: [`GRACE_S`], or a quarter of a
/// limit shorter than eight minutes (so a short job still does some work before it requeues).
pub fn grace_s(slurm_args: &[String]) -> u64 {
    let limit = slurm_args.iter().enumerate().find_map(|(i, a)| {
        a.strip_prefix("--time=")
            .or_else(|| a.strip_prefix("-t"))
            .filter(|v| !v.is_empty())
            .or_else(|| {
                (a == "--time" || a == "-t")
                    .then(|| slurm_args.get(i + 1).map(String::as_str))
                    .flatten()
            })
            .and_then(time_limit_s)
    });
    match limit {
        Some(l) if l < 4 * GRACE_S => (l / 4).max(1),
        _ => GRACE_S,
    }
}

/// Whether `program` is on PATH.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|d| {
            let p = d.join(program);
            p.is_file()
                && std::fs::metadata(&p)
                    .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0)
                    .unwrap_or(false)
        })
    })
}

/// Checks, before anything is written, that jobs can be submitted: `sbatch` is installed and
/// the controller answers (`scontrol ping`). The error says which is missing.
pub fn check_available() -> Result<(), SweepError> {
    if !on_path("sbatch") {
        return Err(SweepError::Scheduler(
            "sbatch not found on PATH: Slurm's commands are not installed on this machine \
             (submit from a login node of the cluster, or use --launcher local)"
                .into(),
        ));
    }
    if on_path("scontrol") {
        let out = Command::new("scontrol")
            .arg("ping")
            .output()
            .map_err(|e| SweepError::Scheduler(format!("cannot run `scontrol ping`: {e}")))?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if !out.status.success() || !text.contains("is UP") {
            return Err(SweepError::Scheduler(format!(
                "the Slurm controller does not answer (`scontrol ping`: {}); is slurmctld \
                 running? (scripts/slurm-local.sh start starts a one-node test cluster)",
                text.trim()
            )));
        }
    }
    Ok(())
}

/// `text` quoted for bash (single quotes).
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The batch script of the sweep in `sweep_dir` (an absolute path): `exe` is the nasp-tui
/// binary the tasks run; `gpu`: the runs ask for one GPU each.
pub fn script(sweep_dir: &Path, file: &SweepFile, exe: &Path, gpu: bool) -> String {
    let dir = sweep_dir.display().to_string();
    let mut s = String::from("#!/bin/bash\n");
    s.push_str("# A nasp-tui sweep: one array task per run (written by `nasp-tui sweep`).\n");
    // The folder's name may hold anything a file name can (spaces, a newline): the job name
    // keeps only letters, digits, `.`, `_` and `-`, and the output path is relative to the
    // job's working directory (the sweep folder: `submit` runs sbatch there), so no `#SBATCH`
    // line carries the folder's name.
    let name: String = sweep_dir
        .file_name()
        .map_or_else(|| "sweep".into(), |n| n.to_string_lossy().into_owned())
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    s.push_str(&format!("#SBATCH --job-name=nasp-{name}\n"));
    s.push_str(&format!("#SBATCH --output={OUTPUT_DIR}/%A_%a.out\n"));
    s.push_str("#SBATCH --open-mode=append\n");
    s.push_str("#SBATCH --requeue\n");
    let grace = grace_s(&file.slurm_args);
    s.push_str(&format!("#SBATCH --signal=B:USR1@{grace}\n"));
    let user_gres = file
        .slurm_args
        .iter()
        .any(|a| a.starts_with("--gres") || a.starts_with("--gpus"));
    if gpu && !user_gres {
        s.push_str("#SBATCH --gres=gpu:1\n");
    }
    for a in &file.slurm_args {
        s.push_str(&format!("#SBATCH {a}\n"));
    }
    s.push_str("\nset -u\n");
    s.push_str(&format!("exe={}\n", quote(&exe.display().to_string())));
    s.push_str(&format!("sweep={}\n", quote(&dir)));
    let names: Vec<String> = file.runs.iter().map(|r| quote(&r.name)).collect();
    s.push_str(&format!("runs=({})\n", names.join(" ")));
    s.push_str("name=${runs[$SLURM_ARRAY_TASK_ID]}\n");
    s.push_str(
        "echo \"task ${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}: $name on $(hostname), \
         start $((${SLURM_RESTART_COUNT:-0} + 1))\"\n",
    );
    let pinned = if gpu { " --pinned" } else { "" };
    s.push_str(&format!(
        "\"$exe\" sweep-run \"$sweep\" \"$name\"{pinned} &\n"
    ));
    s.push_str("child=$!\n");
    s.push_str(
        "# Ahead of the time limit: the search checkpoints and stops, then the task requeues.\n\
         requeue() {\n\
         \x20 echo \"time limit near: checkpointing $name, then requeueing\"\n\
         \x20 kill -TERM \"$child\" 2>/dev/null\n\
         \x20 while kill -0 \"$child\" 2>/dev/null; do wait \"$child\"; done\n\
         \x20 scontrol requeue \"${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}\"\n\
         \x20 exit 0\n\
         }\n\
         trap requeue USR1\n\
         # Cancelled, preempted or requeued: Slurm sends SIGTERM; the search checkpoints.\n\
         trap 'kill -TERM \"$child\" 2>/dev/null' TERM\n\
         wait \"$child\"\n\
         rc=$?\n\
         while kill -0 \"$child\" 2>/dev/null; do wait \"$child\"; rc=$?; done\n\
         exit $rc\n",
    );
    s
}

/// Writes the batch script (and the tasks' output folder) into the sweep folder.
pub fn write_script(sweep_dir: &Path, text: &str) -> Result<(), SweepError> {
    let out = sweep_dir.join(OUTPUT_DIR);
    std::fs::create_dir_all(&out).map_err(|e| file_err(&out, e))?;
    let path = sweep_dir.join(SCRIPT);
    std::fs::write(&path, text).map_err(|e| file_err(&path, e))
}

/// `--array=` for the tasks (run indices), with `%K` to run at most `parallel` at once.
pub fn array_spec(tasks: &[usize], parallel: Option<usize>) -> String {
    let list: Vec<String> = tasks.iter().map(ToString::to_string).collect();
    match parallel {
        Some(k) => format!("{}%{k}", list.join(",")),
        None => list.join(","),
    }
}

/// Submits the sweep's script for `tasks`; returns the job id.
pub fn submit(
    sweep_dir: &Path,
    tasks: &[usize],
    parallel: Option<usize>,
) -> Result<String, SweepError> {
    let out = Command::new("sbatch")
        .arg("--parsable")
        .arg(format!("--array={}", array_spec(tasks, parallel)))
        .arg(sweep_dir.join(SCRIPT))
        .current_dir(sweep_dir)
        .output()
        .map_err(|e| SweepError::Scheduler(format!("cannot run sbatch: {e}")))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        let unreachable = [
            "Unable to contact",
            "Connection refused",
            "Socket timed out",
        ]
        .iter()
        .any(|m| stderr.contains(m));
        return Err(SweepError::Scheduler(if unreachable {
            format!(
                "the Slurm controller is unreachable (sbatch: {}); the sweep folder is written, run the same `nasp-tui sweep` again once it answers",
                stderr.trim()
            )
        } else {
            format!(
                "sbatch refused the job array: {}; fix the --slurm-arg values and run the same `nasp-tui sweep` again",
                stderr.trim()
            )
        }));
    }
    // `--parsable`: "<job id>[;<cluster>]".
    let id = stdout
        .trim()
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        return Err(SweepError::Scheduler(format!(
            "sbatch answered {:?}, not a job id",
            stdout.trim()
        )));
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::{GridAxis, Launcher, PlannedRun, expand};

    #[test]
    fn the_warning_comes_before_the_time_limit() {
        let g = |a: &[&str]| grace_s(&a.iter().map(ToString::to_string).collect::<Vec<_>>());
        assert_eq!(g(&[]), 120);
        assert_eq!(g(&["--time=4:00:00"]), 120);
        assert_eq!(g(&["--time=2"]), 30);
        assert_eq!(g(&["-t", "1:00"]), 15);
        assert_eq!(g(&["-t3:20"]), 50);
        assert_eq!(g(&["--time=1-00"]), 120);
        assert_eq!(g(&["--time=0-0:4:0"]), 60);
        assert_eq!(g(&["--time=UNLIMITED"]), 120);
        assert_eq!(time_limit_s("2-3"), Some(2 * 86_400 + 3 * 3600));
    }

    fn file(args: &[&str]) -> SweepFile {
        let grid = vec![GridAxis::parse("arch.lr=0.1,0.2").unwrap()];
        let runs: Vec<PlannedRun> = expand(&[1], &grid);
        SweepFile {
            config: "c.toml".into(),
            sets: Vec::new(),
            seeds: vec![1],
            max_steps: None,
            launcher: Launcher::Slurm,
            parallel: None,
            slurm_args: args.iter().map(ToString::to_string).collect(),
            grid,
            runs,
            jobs: Vec::new(),
        }
    }

    #[test]
    fn a_folder_name_with_spaces_and_a_newline_stays_inside_its_quotes() {
        let f = file(&[]);
        let dir = Path::new("/s/my sweep\ntouch owned");
        let s = script(dir, &f, Path::new("/x"), false);
        for line in s.lines().filter(|l| l.starts_with("#SBATCH")) {
            assert!(
                !line.contains(' ') || line.starts_with("#SBATCH --"),
                "{line}"
            );
            assert!(
                !line.contains("my sweep") && !line.contains("touch owned"),
                "{line}"
            );
        }
        assert!(
            s.contains("#SBATCH --job-name=nasp-my_sweep_touch_owned\n"),
            "{s}"
        );
        assert!(
            !s.lines()
                .any(|l| l.starts_with("touch") && !l.ends_with("owned'")),
            "{s}"
        );
        assert!(s.contains("sweep='/s/my sweep\ntouch owned'\n"), "{s}");
        let ok = std::process::Command::new("bash")
            .arg("-n")
            .arg("-c")
            .arg(&s)
            .status()
            .unwrap();
        assert!(ok.success(), "the script does not parse:\n{s}");
    }

    #[test]
    fn the_script_is_an_array_over_the_runs_that_requeues_itself() {
        let f = file(&["--partition=debug", "--time=0:10:00"]);
        let s = script(Path::new("/s/sw"), &f, Path::new("/bin/nasp tui"), false);
        assert!(s.starts_with("#!/bin/bash\n"));
        for want in [
            "#SBATCH --requeue\n",
            "#SBATCH --signal=B:USR1@120\n",
            "#SBATCH --partition=debug\n",
            "#SBATCH --time=0:10:00\n",
            "#SBATCH --output=slurm/%A_%a.out\n",
            "exe='/bin/nasp tui'\n",
            "runs=('seed1_arch.lr-0.1' 'seed1_arch.lr-0.2')\n",
            "scontrol requeue \"${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}\"",
        ] {
            assert!(s.contains(want), "missing {want:?} in\n{s}");
        }
        assert!(!s.contains("--gres"), "a CPU run asks for no GPU");
        let g = script(Path::new("/s/sw"), &f, Path::new("/x"), true);
        assert!(g.contains("#SBATCH --gres=gpu:1\n") && g.contains("--pinned &"));
        let own = script(
            Path::new("/s"),
            &file(&["--gres=gpu:a100:1"]),
            Path::new("/x"),
            true,
        );
        assert_eq!(own.matches("--gres").count(), 1, "{own}");
        assert_eq!(array_spec(&[0, 2, 5], Some(2)), "0,2,5%2");
        let short = script(
            Path::new("/s"),
            &file(&["--time=4"]),
            Path::new("/x"),
            false,
        );
        assert!(short.contains("#SBATCH --signal=B:USR1@60\n"), "{short}");
        assert_eq!(array_spec(&[1], None), "1");
    }
}
