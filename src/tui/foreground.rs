//! The shell's prompt comes back on a detach: a search with the TUI runs in a child process,
//! while the process the shell started stays in the foreground as a stand-in.
//!
//! A shell waits for the process it started, so a search that detaches in that same process
//! keeps the prompt away until it ends. [`fork_stand_in`] forks once, before any thread exists
//! (no lock or thread pool is copied half-way): the child returns and runs the search and its
//! TUI; the parent waits on a pipe. When the child detaches it writes one byte ([`release`])
//! after its farewell lines, and the stand-in exits 0 — the prompt returns while the search
//! steps on. When the child ends without detaching, the pipe closes and the stand-in exits with
//! the child's code (128 + the signal when a signal killed it), so scripts see the search's own
//! exit code.
//!
//! Signals someone sends the stand-in by pid (`kill -TERM`, `-HUP`, `-INT`, `-CONT`) are passed on
//! to the child; those the kernel sends (a hung-up terminal) reach the child by itself, as it is
//! in the same process group, and are not passed on twice.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, Ordering};

use crate::signals::SIGNALS;

/// The one byte the child writes when it detaches.
const DETACHED: u8 = b'd';

/// The write end of the pipe to the stand-in, in the child (none when there is no stand-in).
static STAND_IN: Mutex<Option<OwnedFd>> = Mutex::new(None);

/// The child's pid, for the stand-in's signal handler.
static CHILD: AtomicI32 = AtomicI32::new(0);

/// Forks into the stand-in (which never returns from here) and the child (which returns `Ok`).
/// Call it before any thread is started. On an error nothing was forked and the search runs in
/// this process, as before (its detach then keeps the prompt until it ends).
#[allow(unsafe_code)]
pub fn fork_stand_in() -> io::Result<()> {
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 writes two new descriptors into `fds`.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors are new and owned by nothing else.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: no other thread exists yet (the caller's contract), so the child is a full copy.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            drop(read);
            if let Ok(mut slot) = STAND_IN.lock() {
                *slot = Some(write);
            }
            Ok(())
        }
        child => {
            drop(write);
            std::process::exit(stand_in(child, read))
        }
    }
}

/// In the child: tells the stand-in that the search is detached, so it exits 0 and the shell's
/// prompt returns. Does nothing without a stand-in or the second time.
pub fn release() {
    let Ok(mut slot) = STAND_IN.lock() else {
        return;
    };
    if let Some(fd) = slot.take() {
        let mut file = std::fs::File::from(fd);
        let _ = io::Write::write_all(&mut file, &[DETACHED]);
    }
}

/// The stand-in: passes signals on, waits for the detach byte or the end of the child, returns
/// the exit code.
#[allow(unsafe_code)]
fn stand_in(child: libc::pid_t, read: OwnedFd) -> i32 {
    CHILD.store(child, Ordering::SeqCst);
    for sig in SIGNALS {
        // SAFETY: a plain sigaction with an async-signal-safe handler (it only calls kill).
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = pass_on as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(sig, &action, std::ptr::null_mut());
        }
    }
    let mut file = std::fs::File::from(read);
    let mut byte = [0u8; 1];
    loop {
        match io::Read::read(&mut file, &mut byte) {
            Ok(1) if byte[0] == DETACHED => return crate::exit::OK,
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    child_code(child)
}

/// The child's exit code once it has ended (128 + the signal that killed it).
#[allow(unsafe_code)]
fn child_code(child: libc::pid_t) -> i32 {
    let mut status = 0;
    loop {
        // SAFETY: waits for our own child; `status` is a plain int.
        let r = unsafe { libc::waitpid(child, &mut status, 0) };
        if r == child {
            break;
        }
        if r < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return crate::exit::FAILED;
        }
    }
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        crate::exit::FAILED
    }
}

/// The stand-in's signal handler: a signal a process sent (not the kernel's, which the child got
/// too) goes on to the child.
#[allow(unsafe_code)]
extern "C" fn pass_on(sig: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel hands a valid siginfo to an SA_SIGINFO handler.
    let sent_by_a_process = info.is_null() || unsafe { (*info).si_code } <= 0;
    let child = CHILD.load(Ordering::SeqCst);
    if sent_by_a_process && child > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe { libc::kill(child, sig) };
    }
}
