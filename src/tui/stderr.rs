//! While the TUI is up, file descriptor 2 points at the run's `log.txt`, so that anything printed
//! to stderr (libtorch and CUDA warnings from C++, a worker's panic message) lands in the log
//! instead of over the screen. Restored on drop and by the UI-thread panic hook.

use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};

/// The saved original fd 2 (-1 when not redirected).
static SAVED: AtomicI32 = AtomicI32::new(-1);

/// An active redirection; dropping it puts stderr back.
pub struct Redirect(());

impl Redirect {
    /// Points fd 2 at `path` (appending, created if missing).
    #[allow(unsafe_code)]
    pub fn to_file(path: &Path) -> io::Result<Redirect> {
        if SAVED.load(Ordering::SeqCst) >= 0 {
            return Err(io::Error::other("stderr is already redirected"));
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            // Owner only until the run sets the modes `run.share` asks for.
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
        let file = crate::rundir::open_append(path)?;
        let _ = io::stderr().flush();
        // SAFETY: dup/dup2/close are called on descriptors we own or that are open for the life
        // of the process (2); no Rust object holds fd 2 by value, and `file` stays open until
        // after dup2 has made its own copy.
        let saved = unsafe { libc::dup(2) };
        if saved < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: as above.
        if unsafe { libc::dup2(file.as_raw_fd(), 2) } < 0 {
            let e = io::Error::last_os_error();
            // SAFETY: `saved` came from dup above and is closed once.
            unsafe { libc::close(saved) };
            return Err(e);
        }
        SAVED.store(saved, Ordering::SeqCst);
        Ok(Redirect(()))
    }
}

impl Drop for Redirect {
    fn drop(&mut self) {
        restore_now();
    }
}

/// Puts the original stderr back (idempotent; safe to call from the panic hook).
#[allow(unsafe_code)]
pub fn restore_now() {
    let saved = SAVED.swap(-1, Ordering::SeqCst);
    if saved >= 0 {
        // SAFETY: `saved` is the descriptor dup'ed in `to_file`; the swap above hands it to
        // exactly one caller, which restores fd 2 from it and closes it.
        unsafe {
            libc::dup2(saved, 2);
            libc::close(saved);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_goes_to_the_log_and_comes_back() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("run").join("log.txt");
        {
            let _r = Redirect::to_file(&log).unwrap();
            assert!(
                Redirect::to_file(&log).is_err(),
                "one redirection at a time"
            );
            // Direct writes to fd 2 (as C++ code does), not the test harness's captured eprint.
            io::stderr()
                .write_all(b"libtorch warning: something\n")
                .unwrap();
            io::stderr().flush().unwrap();
        }
        assert_eq!(SAVED.load(Ordering::SeqCst), -1, "restored on drop");
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.contains("libtorch warning: something"), "{text}");
    }
}
