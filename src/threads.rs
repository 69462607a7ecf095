//! How libtorch's CPU threads are chosen, so that a search that shares the machine slows down by
//! its share instead of collapsing.
//!
//! libtorch runs its CPU work on an OpenMP pool whose threads, by default, spin while they wait
//! for work. When another process holds a core, the spinning threads keep pre-empting the one
//! that has work, and a step takes ten to fifty times longer (BENCHMARKS.md). So, unless the user
//! chose otherwise:
//! - the pool waits passively (`OMP_WAIT_POLICY=PASSIVE`): OpenMP reads that variable once, when
//!   libtorch is loaded (before `main`), so `main` sets it and runs this binary again
//!   ([`passive_wait`]); every child the program starts inherits it;
//! - the pool has as many threads as this process may use: the CPUs of its affinity mask within
//!   its cgroup's CPU quota (what `std::thread::available_parallelism` reports), at most
//!   `SLURM_CPUS_PER_TASK`, or the share a local sweep gives each of its runs
//!   (`NASP_TUI_THREADS`). The config key `threads` (> 0) and `OMP_NUM_THREADS` override it.
//!
//! [`apply`] sets the count and keeps a line saying what was chosen, for the run's log.
//!
//! Imports nothing of the crate.

use std::sync::OnceLock;

/// The OpenMP variable of the wait policy.
pub const WAIT_ENV: &str = "OMP_WAIT_POLICY";
/// Set in the environment of the process `passive_wait` runs again (and its children): the wait
/// policy was chosen by nasp-tui, not by the user.
const CHOSEN_ENV: &str = "NASP_TUI_PASSIVE_WAIT";
/// A thread count given by the local sweep launcher (its share of the CPUs per run).
pub const SHARE_ENV: &str = "NASP_TUI_THREADS";

/// Makes libtorch's OpenMP threads wait passively unless the user set `OMP_WAIT_POLICY`: sets it
/// and replaces this process with the same binary and arguments (OpenMP has read its settings
/// before `main`). Call it first thing in `main`, before any thread starts. If the binary cannot
/// be run again, this process goes on with OpenMP's default and the log says so.
#[allow(unsafe_code)]
pub fn passive_wait() {
    if std::env::var_os(WAIT_ENV).is_some() || std::env::var_os(CHOSEN_ENV).is_some() {
        return;
    }
    let first = std::env::args().nth(1);
    if !computes(first.as_deref()) {
        return;
    }
    // SAFETY: called at the start of `main`, before any other thread exists.
    unsafe {
        std::env::set_var(WAIT_ENV, "PASSIVE");
        std::env::set_var(CHOSEN_ENV, "1");
    }
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_default();
    use std::os::unix::process::CommandExt;
    // The binary's own path (not /proc/self/exe, which would name the process `exe`).
    let exe = std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into());
    let err = std::process::Command::new(exe).arg0(arg0).args(args).exec();
    // Only reached when the exec failed: OpenMP keeps the wait policy it read.
    // SAFETY: as above, still single-threaded.
    unsafe {
        std::env::set_var(CHOSEN_ENV, format!("failed: {err}"));
    }
}

/// Whether the subcommand `first` (the first argument) runs libtorch's CPU pool: a search (also
/// `nasp-tui` alone, or with only flags), `train`, `bench`, `check`, a sweep's run. The others
/// (`ls`, `ctl`, `export`, `report`, `nb201`, help...) are not worth running the binary again.
fn computes(first: Option<&str>) -> bool {
    match first {
        None => true,
        Some("-h" | "--help" | "-V" | "--version") => false,
        Some(f) if f.starts_with('-') => true,
        Some(cmd) => matches!(cmd, "search" | "train" | "bench" | "check" | "sweep-run"),
    }
}

/// What the wait policy is and who chose it.
fn wait_note() -> String {
    let policy = std::env::var(WAIT_ENV).unwrap_or_default();
    match std::env::var(CHOSEN_ENV) {
        Ok(v) if v.starts_with("failed") => format!(
            "OpenMP threads spin while waiting (running again with {WAIT_ENV}=PASSIVE {v}; set it yourself to avoid this)"
        ),
        Ok(_) => "OpenMP threads wait passively".to_string(),
        Err(_) if policy.is_empty() => "OpenMP's default wait policy".to_string(),
        Err(_) => format!("{WAIT_ENV}={policy} (yours)"),
    }
}

/// The CPUs this process may use (affinity mask within the cgroup's quota), and with Slurm's
/// `SLURM_CPUS_PER_TASK` at most that.
pub fn usable_cpus() -> (usize, String) {
    let avail = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let slurm = std::env::var("SLURM_CPUS_PER_TASK")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0);
    match slurm {
        Some(n) if n < avail => (n, format!("SLURM_CPUS_PER_TASK={n}")),
        _ => (avail, format!("{avail} usable CPU(s)")),
    }
}

/// The intra-op thread count for a config's `threads` (0 = choose): the key, else
/// `OMP_NUM_THREADS` (left to libtorch, which reads it), else a sweep's share, else the usable
/// CPUs. `None` means "leave libtorch's count".
pub fn choose(configured: usize) -> (Option<usize>, String) {
    if configured > 0 {
        return (Some(configured), format!("threads = {configured} (config)"));
    }
    if let Ok(v) = std::env::var("OMP_NUM_THREADS")
        && !v.trim().is_empty()
    {
        return (None, format!("OMP_NUM_THREADS={} (yours)", v.trim()));
    }
    if let Some(n) = std::env::var(SHARE_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
    {
        return (Some(n), format!("{n} (the sweep's share of the CPUs)"));
    }
    let (n, why) = usable_cpus();
    (Some(n), format!("{n} ({why})"))
}

static NOTE: OnceLock<String> = OnceLock::new();

/// Sets libtorch's intra-op thread count as [`choose`] says (once per process: later calls keep
/// the first choice) and returns the line that says what was chosen.
pub fn apply(configured: usize, set: impl FnOnce(usize), get: impl FnOnce() -> usize) -> String {
    NOTE.get_or_init(|| {
        let (n, why) = choose(configured);
        if let Some(n) = n {
            set(n);
        }
        format!("threads: {} = {why}; {}", get(), wait_note())
    })
    .clone()
}

/// The line [`apply`] made (empty before it ran).
pub fn note() -> String {
    NOTE.get().cloned().unwrap_or_default()
}

/// Each run's share when a local sweep runs `parallel` at once on the CPU.
pub fn share(parallel: usize) -> usize {
    (usable_cpus().0 / parallel.max(1)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_computing_subcommands_run_again() {
        for c in [
            None,
            Some("search"),
            Some("--config"),
            Some("train"),
            Some("sweep-run"),
        ] {
            assert!(computes(c), "{c:?}");
        }
        for c in [
            Some("ls"),
            Some("export"),
            Some("--help"),
            Some("nb201"),
            Some("sweep"),
        ] {
            assert!(!computes(c), "{c:?}");
        }
    }

    #[test]
    fn the_config_key_wins_and_shares_divide_the_cpus() {
        let (n, why) = choose(3);
        assert_eq!(n, Some(3));
        assert!(why.contains("config"), "{why}");
        let (cpus, _) = usable_cpus();
        assert!(cpus >= 1);
        assert_eq!(share(1), cpus);
        assert_eq!(share(cpus * 4), 1);
        assert_eq!(share(0), cpus);
    }
}
