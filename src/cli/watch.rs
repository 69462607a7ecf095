//! `nasp-tui watch [PATH...]`: the monitor attached to runs through their directories. One run
//! directory: the monitor, live (its event log tailed) or, for an ended or STALE run, a replay
//! with a time cursor. Several paths, a folder of runs, or none (the runs root): the runs table.

use std::path::PathBuf;

use clap::Args;

use super::CliError;
use crate::app::KeyMap;
use crate::rundir::listing::{find_runs, is_run_dir};
use crate::rundir::runs_root;
use crate::tui::watch::{Target, WatchOptions};

#[derive(Args)]
pub struct WatchArgs {
    /// Run directories or folders of runs (default: the user's runs root).
    paths: Vec<PathBuf>,
    /// Colour theme: a built-in name or a TOML file.
    #[arg(long)]
    theme: Option<String>,
    /// Frames per second at most.
    #[arg(long, default_value_t = 10)]
    fps: u32,
}

/// What the paths ask for, or the first one that is neither a run nor a folder of runs.
pub fn target(paths: &[PathBuf]) -> Result<Target, CliError> {
    if paths.is_empty() {
        return Ok(Target::Table(vec![runs_root()]));
    }
    for p in paths {
        if is_run_dir(p) {
            continue;
        }
        if !p.is_dir() {
            return Err(CliError::Usage(format!(
                "{} is not a run directory (no such folder)",
                p.display()
            )));
        }
        if paths.len() == 1 && find_runs(p).is_empty() {
            return Err(CliError::Usage(format!(
                "{} is not a run directory (no status.json or config.toml) and holds no runs",
                p.display()
            )));
        }
    }
    match paths {
        [one] if is_run_dir(one) => Ok(Target::Run(one.clone())),
        _ => Ok(Target::Table(paths.to_vec())),
    }
}

pub fn run(a: &WatchArgs) -> Result<i32, CliError> {
    let target = target(&a.paths)?;
    let theme = crate::theme::select_theme(
        a.theme.as_deref(),
        "default",
        crate::theme::no_color_requested(),
    )
    .map_err(|e| CliError::Usage(e.to_string()))?;
    let keymap = KeyMap::load_user().map_err(|e| CliError::Usage(e.to_string()))?;
    let opts = WatchOptions {
        theme,
        keymap,
        fps: a.fps.clamp(1, 60),
        ascii: !crate::tui::locale_is_utf8(),
    };
    crate::tui::watch::run(&target, &opts).map_err(|e| CliError::Failed(format!("{e:#}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit;

    #[test]
    fn a_folder_that_is_not_a_run_is_named_in_the_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = target(&[dir.path().to_path_buf()]).expect_err("not a run");
        assert!(
            e.to_string().contains(&dir.path().display().to_string()),
            "{e}"
        );
        assert_eq!(e.exit_code(), exit::USAGE);
        let missing = dir.path().join("nope");
        let e = target(std::slice::from_ref(&missing)).expect_err("missing");
        assert!(
            e.to_string().contains(&missing.display().to_string()),
            "{e}"
        );
        let run = dir.path().join("r1");
        std::fs::create_dir(&run).expect("mkdir");
        std::fs::write(run.join("config.toml"), "").expect("write");
        assert_eq!(
            target(std::slice::from_ref(&run)).expect("a run"),
            Target::Run(run.clone())
        );
        assert_eq!(
            target(&[dir.path().to_path_buf()]).expect("a folder of runs"),
            Target::Table(vec![dir.path().to_path_buf()])
        );
    }
}
