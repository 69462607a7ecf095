//! How libtorch's CPU threads are chosen, so that a search that shares the machine slows down by
//! its share instead of collapsing.
//!
//! libtorch runs its CPU work on an OpenMP pool (GNU libgomp in the PyPI wheel) whose threads,
//! by default, spin for a long while (libgomp: 300,000 rounds) each time they wait for work. When
//! another process holds a core, the spinning threads keep pre-empting the one that has work,
//! and a step takes ten to fifty times longer (BENCHMARKS.md). Waiting passively
//! (`OMP_WAIT_POLICY=PASSIVE`) cures that but costs a search alone about a fifth of its speed:
//! each of a step's thousands of small parallel regions then wakes sleeping threads. A brief spin
//! keeps both. So, unless the user chose otherwise:
//! - the pool's threads spin briefly, then sleep (`GOMP_SPINCOUNT` = [`SPINCOUNT`], chosen by
//!   measurement, BENCHMARKS.md "Sharing the machine"): libgomp reads it once, when libtorch is
//!   loaded (before `main`), so `main` sets it and runs this binary again ([`brief_spin`]);
//!   every child the program starts inherits it. `OMP_WAIT_POLICY` or `GOMP_SPINCOUNT` set by
//!   the user are left alone;
//! - the pool has as many threads as this process may use: the CPUs of its affinity mask within
//!   its cgroup's CPU quota (what `std::thread::available_parallelism` reports), at most
//!   `SLURM_CPUS_PER_TASK`, or the share a local sweep gives each of its runs
//!   (`NASP_TUI_THREADS`). The config key `threads` (> 0) and `OMP_NUM_THREADS` override it.
//!
//! - while a run goes on, the count follows the CPUs other processes leave free ([`adapt`]: once
//!   a second, from `/proc`): with two threads on two CPUs and one of them taken by another
//!   process, every parallel region waits for the thread that shares a CPU, and one thread is
//!   faster than two. Only a count nasp-tui chose follows; `threads = N`, `OMP_NUM_THREADS` and
//!   a sweep's share stay as they are (a run whose numbers must repeat bitwise fixes its count).
//!
//! [`apply`] sets the count and keeps a line saying what was chosen, for the run's log.
//!
//! Imports nothing of the crate.

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The OpenMP variable of the wait policy.
pub const WAIT_ENV: &str = "OMP_WAIT_POLICY";
/// libgomp's rounds of spinning before a waiting thread sleeps.
pub const SPIN_ENV: &str = "GOMP_SPINCOUNT";
/// The rounds nasp-tui chooses: long enough that a search alone keeps libgomp's default speed,
/// short enough that a thread gives its core back within microseconds (BENCHMARKS.md).
pub const SPINCOUNT: u32 = 10_000;
/// Set in the environment of the process `brief_spin` runs again (and its children): the wait
/// was chosen by nasp-tui, not by the user.
pub const CHOSEN_ENV: &str = "NASP_TUI_OMP_WAIT";
/// A thread count given by the local sweep launcher (its share of the CPUs per run).
pub const SHARE_ENV: &str = "NASP_TUI_THREADS";

/// Makes libtorch's OpenMP threads spin briefly, then sleep, unless the user set
/// `OMP_WAIT_POLICY` or `GOMP_SPINCOUNT`: sets `GOMP_SPINCOUNT` and replaces this process with
/// the same binary and arguments (libgomp has read its settings before `main`). Call it first
/// thing in `main`, before any thread starts. If the binary cannot be run again, this process
/// goes on with libgomp's default and the log says so.
#[allow(unsafe_code)]
pub fn brief_spin() {
    let set = |k: &str| std::env::var_os(k).is_some();
    if set(WAIT_ENV) || set(SPIN_ENV) || set(CHOSEN_ENV) {
        return;
    }
    let first = std::env::args().nth(1);
    if !computes(first.as_deref()) {
        return;
    }
    // SAFETY: called at the start of `main`, before any other thread exists.
    unsafe {
        std::env::set_var(SPIN_ENV, SPINCOUNT.to_string());
        std::env::set_var(CHOSEN_ENV, "1");
    }
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_default();
    use std::os::unix::process::CommandExt;
    // The binary's own path (not /proc/self/exe, which would name the process `exe`).
    let exe = std::env::current_exe().unwrap_or_else(|_| "/proc/self/exe".into());
    let err = std::process::Command::new(exe).arg0(arg0).args(args).exec();
    // Only reached when the exec failed: libgomp keeps the spin it read.
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

/// What the wait is and who chose it.
fn wait_note() -> String {
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let (policy, spin) = (var(WAIT_ENV), var(SPIN_ENV));
    match std::env::var(CHOSEN_ENV) {
        Ok(v) if v.starts_with("failed") => format!(
            "OpenMP threads spin long while waiting (running again with {SPIN_ENV}={SPINCOUNT} {v}; set it yourself to avoid this)"
        ),
        Ok(_) => format!("OpenMP threads spin briefly, then sleep ({SPIN_ENV}={spin})"),
        Err(_) if policy.is_empty() && spin.is_empty() => "OpenMP's default wait".to_string(),
        Err(_) if spin.is_empty() => format!("{WAIT_ENV}={policy} (yours)"),
        Err(_) if policy.is_empty() => format!("{SPIN_ENV}={spin} (yours)"),
        Err(_) => format!("{WAIT_ENV}={policy}, {SPIN_ENV}={spin} (yours)"),
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

/// The count that follows the free CPUs, when nasp-tui chose it (see [`adapt`]).
static GOVERNOR: Mutex<Option<Governor>> = Mutex::new(None);

/// Sets libtorch's intra-op thread count as [`choose`] says (once per process: later calls keep
/// the first choice) and returns the line that says what was chosen.
pub fn apply(configured: usize, set: impl FnOnce(usize), get: impl FnOnce() -> usize) -> String {
    NOTE.get_or_init(|| {
        let (n, why) = choose(configured);
        let mut follows = "";
        if let Some(n) = n {
            set(n);
            // The usable CPUs (not a sweep's share, which already divides them) follow.
            if configured == 0 && std::env::var_os(SHARE_ENV).is_none() && n > 1 {
                if let Ok(mut g) = GOVERNOR.lock() {
                    *g = Some(Governor::new(n));
                }
                follows = ", fewer while other processes use the CPUs";
            }
        }
        format!("threads: {} = {why}{follows}; {}", get(), wait_note())
    })
    .clone()
}

/// How often [`adapt`] reads the CPU times.
pub const ADAPT_INTERVAL: Duration = Duration::from_secs(1);

/// When the count nasp-tui chose should change because other processes took or left CPUs:
/// the new count and a line for the log. Reads `/proc` at most once per [`ADAPT_INTERVAL`];
/// `None` otherwise, when the count was not chosen by nasp-tui, or when `/proc` cannot be read.
/// The caller sets the count on the thread that runs libtorch's work (OpenMP keeps it per
/// thread).
pub fn adapt() -> Option<(usize, String)> {
    let mut guard = GOVERNOR.lock().ok()?;
    let g = guard.as_mut()?;
    let now = Instant::now();
    if g.last
        .is_some_and(|(t, _)| now.duration_since(t) < ADAPT_INTERVAL)
    {
        return None;
    }
    let times = CpuTimes::read()?;
    let (_, before) = g.last.replace((now, times))?;
    let others = times.others_since(&before);
    let n = g.decide(others)?;
    Some((
        n,
        format!(
            "threads: {n} (other processes use {others:.1} of the {} CPU(s) this run may use)",
            g.max
        ),
    ))
}

/// A thread count that follows the CPUs other processes leave free: down at once (a shared
/// CPU stalls every parallel region), up after two readings in a row (a brief lull does not
/// make it flap).
#[derive(Debug, Clone)]
pub struct Governor {
    /// The count chosen at the start: the usable CPUs.
    max: usize,
    current: usize,
    /// Readings in a row that asked for more threads.
    ups: u32,
    last: Option<(Instant, CpuTimes)>,
}

impl Governor {
    pub fn new(max: usize) -> Governor {
        Governor {
            max,
            current: max,
            ups: 0,
            last: None,
        }
    }

    /// The new count when `others` CPUs are busy with other processes, if it changes.
    pub fn decide(&mut self, others: f64) -> Option<usize> {
        let free = (self.max as f64 - others).round().max(1.0);
        let want = (free as usize).clamp(1, self.max);
        if want < self.current {
            self.ups = 0;
            self.current = want;
            return Some(want);
        }
        if want == self.current {
            self.ups = 0;
            return None;
        }
        self.ups += 1;
        if self.ups < 2 {
            return None;
        }
        self.ups = 0;
        self.current = want;
        Some(want)
    }
}

/// CPU time (in the kernel's clock ticks) on the CPUs this process may use, and of this
/// process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuTimes {
    /// Busy ticks of those CPUs (everything but idle and I/O wait).
    pub busy: u64,
    /// All ticks of those CPUs.
    pub total: u64,
    /// This process's user and system ticks.
    pub own: u64,
    /// How many CPUs were counted.
    pub cpus: usize,
}

impl CpuTimes {
    /// Reads `/proc/stat`, `/proc/self/status` and `/proc/self/stat`.
    pub fn read() -> Option<CpuTimes> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let allowed = status
            .lines()
            .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
            .and_then(|l| parse_cpu_list(l.trim()));
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let (busy, total, cpus) = parse_proc_stat(&stat, allowed.as_deref())?;
        let own = parse_own_ticks(&std::fs::read_to_string("/proc/self/stat").ok()?)?;
        Some(CpuTimes {
            busy,
            total,
            own,
            cpus,
        })
    }

    /// CPUs that other processes kept busy, on average, between `before` and `self`.
    pub fn others_since(&self, before: &CpuTimes) -> f64 {
        let total = self.total.saturating_sub(before.total);
        if total == 0 || self.cpus == 0 {
            return 0.0;
        }
        let per_cpu = total as f64 / self.cpus as f64;
        let busy = self.busy.saturating_sub(before.busy);
        let own = self.own.saturating_sub(before.own);
        busy.saturating_sub(own) as f64 / per_cpu
    }
}

/// `0-3,8,10-11` as the CPUs it names.
fn parse_cpu_list(s: &str) -> Option<Vec<usize>> {
    let mut out = Vec::new();
    for part in s.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => out.extend(a.trim().parse::<usize>().ok()?..=b.trim().parse().ok()?),
            None => out.push(part.trim().parse().ok()?),
        }
    }
    Some(out)
}

/// The busy and total ticks of the `cpuN` lines of `/proc/stat` (those of `allowed` when
/// given), and how many lines were counted.
fn parse_proc_stat(text: &str, allowed: Option<&[usize]>) -> Option<(u64, u64, usize)> {
    let (mut busy, mut total, mut n) = (0u64, 0u64, 0usize);
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let Some(cpu) = fields.next().and_then(|f| f.strip_prefix("cpu")) else {
            continue;
        };
        let Ok(id) = cpu.parse::<usize>() else {
            continue; // the `cpu` line of all CPUs
        };
        if allowed.is_some_and(|a| !a.contains(&id)) {
            continue;
        }
        let v: Vec<u64> = fields.filter_map(|f| f.parse().ok()).collect();
        // user nice system idle iowait irq softirq steal (guest time is inside user).
        let all: u64 = v.iter().take(8).sum();
        let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
        busy += all.saturating_sub(idle);
        total += all;
        n += 1;
    }
    (n > 0).then_some((busy, total, n))
}

/// User plus system ticks from `/proc/self/stat` (fields 14 and 15; the name in parentheses
/// may hold spaces).
fn parse_own_ticks(text: &str) -> Option<u64> {
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, so utime (14) and stime (15) are at 11 and 12.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
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
    fn the_count_drops_at_once_and_rises_after_two_readings() {
        let mut g = Governor::new(2);
        assert_eq!(g.decide(0.1), None, "alone: stays at 2");
        assert_eq!(g.decide(1.0), Some(1), "a busy CPU beside: 1 at once");
        assert_eq!(
            g.decide(1.9),
            None,
            "another search at two threads: still 1"
        );
        assert_eq!(g.decide(0.0), None, "one quiet reading is not enough");
        assert_eq!(g.decide(0.9), None, "and the next is busy again");
        assert_eq!(g.decide(0.0), None);
        assert_eq!(
            g.decide(0.2),
            Some(2),
            "two quiet readings in a row: back to 2"
        );
        let mut big = Governor::new(16);
        assert_eq!(big.decide(3.2), Some(13));
        assert_eq!(big.decide(40.0), Some(1), "never below 1");
    }

    #[test]
    fn proc_files_are_read_as_the_kernel_writes_them() {
        assert_eq!(parse_cpu_list("0-1"), Some(vec![0, 1]));
        assert_eq!(parse_cpu_list("0,2-4,7"), Some(vec![0, 2, 3, 4, 7]));
        assert_eq!(parse_cpu_list("x"), None);
        let stat = "cpu  300 0 30 600 10 0 0 0 0 0\n\
                    cpu0 100 0 10 200 5 0 0 0 0 0\n\
                    cpu1 200 0 20 400 5 0 0 0 0 0\n\
                    intr 1 2 3\n";
        assert_eq!(parse_proc_stat(stat, None), Some((330, 940, 2)));
        assert_eq!(parse_proc_stat(stat, Some(&[1])), Some((220, 625, 1)));
        assert_eq!(parse_proc_stat("intr 1\n", None), None);
        let own = "4242 (nasp tui (x)) R 1 2 3 4 5 6 7 8 9 10 17 25 0 0 20 0 3";
        assert_eq!(parse_own_ticks(own), Some(42));
        // Others' use: of 2 CPUs over 100 ticks each, 150 busy, 50 of them ours.
        let a = CpuTimes {
            busy: 1000,
            total: 2000,
            own: 300,
            cpus: 2,
        };
        let b = CpuTimes {
            busy: 1150,
            total: 2200,
            own: 350,
            cpus: 2,
        };
        assert!((b.others_since(&a) - 1.0).abs() < 1e-9);
        assert_eq!(a.others_since(&a), 0.0);
        let now = CpuTimes::read().expect("/proc is readable here");
        assert!(now.cpus >= 1 && now.total >= now.busy, "{now:?}");
    }

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
