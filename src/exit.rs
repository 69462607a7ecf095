//! The process's exit codes, in one place (the README lists them). The monitors (TUI, headless)
//! end a search with one of these; `cli` maps every error to one.

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
