//! Everything that touches libtorch: supernet, optimizers, device data, the search steps, the
//! training, the run loop both share on their worker threads, and the benchmark.

pub mod bench;
pub mod check;
pub mod checkpoint;
pub mod device;
pub mod device_data;
mod error;
pub mod init;
pub mod native;
pub mod nb201;
pub mod ops;
pub mod optim;
pub mod resume;
pub mod run;
pub mod search;
pub mod supernet;
pub mod train;
pub mod worker;

pub use error::EngineError;

/// Sets libtorch's CPU thread count for `cfg` (see `crate::threads`: once per process) and
/// returns the line that says what was chosen.
pub fn set_threads(cfg: &crate::config::Config) -> String {
    crate::threads::apply(
        cfg.threads,
        |n| tch::set_num_threads(i32::try_from(n).unwrap_or(i32::MAX)),
        || usize::try_from(tch::get_num_threads()).unwrap_or(0),
    )
}

/// Follows the CPUs other processes leave free (`crate::threads::adapt`, at most once a
/// second): sets the new count on this thread (the one that runs the steps; OpenMP keeps the
/// count per thread) and returns the line to log when it changed.
pub fn adapt_threads() -> Option<String> {
    let (n, line) = crate::threads::adapt()?;
    tch::set_num_threads(i32::try_from(n).unwrap_or(i32::MAX));
    Some(line)
}

/// libtorch's random generator is global and the unit tests run on parallel threads: every
/// unit test that seeds it or draws from it (building a supernet draws its weights) holds this
/// lock, so that a test whose numbers must be its own gets them. It also gives the test's thread
/// one libtorch thread ([`one_libtorch_thread`]).
#[cfg(test)]
pub(crate) fn test_rng_lock() -> std::sync::MutexGuard<'static, ()> {
    static RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());
    one_libtorch_thread();
    RNG.lock().unwrap_or_else(|e| e.into_inner())
}

/// Pins the calling test thread to one libtorch thread. cargo runs the unit tests on parallel
/// threads; OpenMP keeps the thread count per calling thread and, unset, gives each of them a
/// team as large as the machine, whose threads spin while they wait: the teams oversubscribe the
/// cores and every test crawls (issue 27). `test_rng_lock` calls it; a test that runs libtorch
/// on larger tensors without the lock calls it first (tensors of a few numbers never start a
/// team), and a test that sets another count on purpose says why.
#[cfg(test)]
pub(crate) fn one_libtorch_thread() {
    tch::set_num_threads(1);
}
