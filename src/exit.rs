//! The process's exit codes, in one place (the README lists them). A run's end becomes one
//! through [`RunEnd::code`] (every monitor: TUI, headless, detached), an error of a subcommand
//! through `cli::CliError::exit_code`.

/// The run finished, or a command did what it was asked.
pub const OK: i32 = 0;
/// The search failed, or a command could not do its work (a failed benchmark child).
pub const FAILED: i32 = 1;
/// A usage or config error: bad flags, config keys, theme or key files, unusable checkpoints.
pub const USAGE: i32 = 2;
/// The run ended, but its final checkpoint could not be written (a full disk, say): the summary
/// names the newest checkpoint there is, which a resume would start from.
pub const UNSAVED: i32 = 3;
/// Interrupted (SIGTERM, SIGINT; SIGHUP under `ui.on_hangup = "stop"`): the search saved a
/// checkpoint, then stopped.
pub const INTERRUPTED: i32 = 130;

/// How a run ended, as far as its exit code goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    /// The run failed (`Event::Failed`).
    Failed,
    /// The run finished or stopped (`Event::Finished`): `unsaved` when its last state is in no
    /// checkpoint, `interrupted` when a signal asked for the stop.
    Finished { unsaved: bool, interrupted: bool },
}

impl RunEnd {
    /// The exit code of a run's end, the one rule for every monitor (the TUI, the headless
    /// printer, a detached search): a failure is 1, an unsaved end 3 (the newest checkpoint is
    /// older; this outranks a signal), a stop a signal asked for 130, anything else 0.
    pub fn code(self) -> i32 {
        match self {
            RunEnd::Failed => FAILED,
            RunEnd::Finished { unsaved: true, .. } => UNSAVED,
            RunEnd::Finished {
                interrupted: true, ..
            } => INTERRUPTED,
            RunEnd::Finished { .. } => OK,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_end_has_one_code() {
        let f = |unsaved, interrupted| RunEnd::Finished {
            unsaved,
            interrupted,
        };
        assert_eq!(RunEnd::Failed.code(), FAILED);
        assert_eq!(f(false, false).code(), OK);
        assert_eq!(f(false, true).code(), INTERRUPTED);
        assert_eq!(f(true, true).code(), UNSAVED);
        assert_eq!(f(true, false).code(), UNSAVED);
    }
}
