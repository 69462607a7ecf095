//! The process's exit codes, in one place (the README lists them). The monitors (TUI, headless)
//! end a search with one of these; `cli` maps every error to one.

/// The run finished, or a command did what it was asked.
pub const OK: i32 = 0;
/// The search failed, or a command could not do its work (a failed benchmark child).
pub const FAILED: i32 = 1;
/// A usage or config error: bad flags, config keys, theme or key files, unusable checkpoints.
pub const USAGE: i32 = 2;
/// Interrupted (SIGTERM, SIGHUP, SIGINT): the search saved a checkpoint, then stopped.
pub const INTERRUPTED: i32 = 130;
