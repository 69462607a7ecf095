//! Detaching: the UI has left (the `d` key, or the terminal hung up under `ui.on_hangup =
//! "detach"`) and the search goes on in this process, without a terminal.
//!
//! From then on nothing may touch the terminal, which may be gone: stdin becomes an empty pipe
//! (a crossterm reader stuck on a hung-up tty then sees "nothing to read" and ends instead of
//! spinning), stdout and stderr go to the run's `log.txt`, SIGPIPE and the terminal's job-control
//! signals are ignored, and the process leaves the terminal's session where it can (`setsid`).
//! The main thread then only waits for the worker ([`wait`]): SIGTERM still saves and stops;
//! SIGHUP, SIGINT and SIGCONT are noted and ignored; a stop sent with `nasp-tui ctl` or a watcher
//! ends it as usual.

use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::path::Path;

use crossbeam_channel::{Receiver, Sender, after, never, select};

use crate::app::SIGNAL_STOP_TIMEOUT;
use crate::exit;
use crate::protocol::{Command, Event};

/// How the terminal UI ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The UI quit; the process exits with this code.
    Exit(i32),
    /// The UI left the search running without it (see [`leave_terminal`] and [`wait`]).
    Detached,
}

impl Ending {
    /// The exit code when nobody carries on after the UI (a detach counts as 0).
    pub fn code(self) -> i32 {
        match self {
            Ending::Exit(c) => c,
            Ending::Detached => exit::OK,
        }
    }
}

/// The two lines printed on the terminal when detaching; the last says how to come back.
pub fn farewell(run_dir: &Path, pid: u32) -> [String; 2] {
    let run = run_dir.display();
    [
        format!(
            "nasp-tui: detached; the search goes on in process {pid} (output: {run}/log.txt; \
             stop it with `nasp-tui ctl {run} stop`); this terminal can be closed"
        ),
        format!("come back with: nasp-tui watch {run}"),
    ]
}

/// The last words on the terminal (which may be gone: write errors are ignored), then off it
/// for good ([`leave_terminal`]); the log says how that went.
pub(super) fn say_goodbye_and_leave(run_dir: &Path, log_path: &Path) {
    let lines = farewell(run_dir, std::process::id());
    let mut out = io::stdout().lock();
    for line in &lines {
        let _ = writeln!(out, "{line}");
    }
    let _ = out.flush();
    drop(out);
    let said = match leave_terminal(log_path) {
        Ok(own_session) => format!(
            "[Info] detached from the terminal (own session: {own_session}); {}",
            lines[1]
        ),
        Err(e) => format!("[Error] cannot send stdout/stderr to the log: {e}"),
    };
    super::append_line(log_path, &said);
    // The farewell is on the screen: the shell may take the terminal back.
    super::foreground::release();
}

/// Where a detached process notes what it does: the run's log (stderr, itself sent to the log
/// once detached, when the file cannot be opened).
pub fn log_file(path: &Path) -> Box<dyn Write> {
    match crate::rundir::open_append(path) {
        Ok(f) => Box::new(f),
        Err(_) => Box::new(io::stderr()),
    }
}

/// Points fd 0 at the read end of an empty, non-blocking pipe whose write end stays open (and
/// is leaked on purpose): reads find nothing to read, never end-of-file nor an error, so an input
/// thread stuck re-reading a hung-up tty (crossterm issue #793) goes back to its poll and ends.
#[allow(unsafe_code)]
pub fn quiet_stdin() -> io::Result<()> {
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 writes two new descriptors into `fds`.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fds[0]` is ours; dup2 replaces fd 0, which no Rust object owns by value.
    let r = unsafe { libc::dup2(fds[0], 0) };
    let e = io::Error::last_os_error();
    // SAFETY: the read end was copied to fd 0 (or the copy failed); close our extra number.
    unsafe { libc::close(fds[0]) };
    if r < 0 { Err(e) } else { Ok(()) }
}

/// Cuts the process off the terminal: fd 1 and 2 append to `log_path`, SIGPIPE, SIGQUIT,
/// SIGTSTP, SIGTTIN and SIGTTOU are ignored, and the process starts a session of its own when it
/// can (not when it leads its process group, as under an interactive shell; the signals the
/// terminal could still send it are then ignored or handled). Returns whether it left the
/// terminal's session.
#[allow(unsafe_code)]
pub fn leave_terminal(log_path: &Path) -> io::Result<bool> {
    let _ = io::stdout().flush();
    let _ = io::stderr().flush();
    let log = crate::rundir::open_append(log_path)?;
    for fd in [1, 2] {
        // SAFETY: `log` stays open across the call; fd 1 and 2 are not owned by any Rust
        // object (std's handles only refer to the numbers).
        if unsafe { libc::dup2(log.as_raw_fd(), fd) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    for sig in [
        libc::SIGPIPE,
        libc::SIGQUIT,
        libc::SIGTSTP,
        libc::SIGTTIN,
        libc::SIGTTOU,
    ] {
        // SAFETY: setting a signal's disposition to "ignore".
        unsafe { libc::signal(sig, libc::SIG_IGN) };
    }
    // SAFETY: setsid only changes this process's session; it fails (harmlessly) when the
    // process leads its group.
    Ok(unsafe { libc::setsid() } >= 0)
}

/// Waits for the detached search to end, draining its events (the worker writes them to the run
/// directory itself). SIGTERM asks for a stop with a checkpoint (exit 130; given up after
/// [`SIGNAL_STOP_TIMEOUT`]); other signals are noted in `log` and ignored. Returns the exit code:
/// 0 finished or stopped from outside, 130 after SIGTERM, 1 failed.
pub fn wait(
    commands: &Sender<Command>,
    events: &Receiver<Event>,
    signals: &Receiver<i32>,
    log: &mut dyn Write,
) -> i32 {
    let mut signals = signals.clone();
    let mut deadline = never();
    let mut interrupted = false;
    let mut note = |text: &str| {
        let _ = writeln!(log, "{text}");
        let _ = log.flush();
    };
    loop {
        select! {
            recv(signals) -> sig => match sig {
                Ok(libc::SIGTERM) if !interrupted => {
                    interrupted = true;
                    note("[Warn] SIGTERM: saving a checkpoint and stopping the detached search");
                    let _ = commands.send(Command::Stop { save: true });
                    deadline = after(SIGNAL_STOP_TIMEOUT);
                }
                Ok(libc::SIGCONT | libc::SIGTERM) => {}
                Ok(sig) => note(&format!(
                    "[Info] signal {sig} ignored: the search is detached (SIGTERM or `nasp-tui ctl RUN stop` stops it)"
                )),
                Err(_) => signals = never(),
            },
            recv(events) -> ev => match ev {
                Ok(ev) => {
                    if let Some(end) = ev.run_end(interrupted) {
                        return end.code();
                    }
                }
                Err(_) => {
                    note("[Error] the search thread ended without a result");
                    return exit::FAILED;
                }
            },
            recv(deadline) -> _ => {
                note("[Error] the worker did not finish in time; exiting anyway");
                return exit::INTERRUPTED;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crossbeam_channel::unbounded;

    use super::*;

    fn finished() -> Event {
        Event::Finished {
            summary: "stopped".into(),
            stopped: true,
            unsaved: false,
        }
    }

    #[test]
    fn only_sigterm_stops_a_detached_search() {
        let (cmd_tx, cmd_rx) = unbounded();
        let (ev_tx, ev_rx) = unbounded();
        let (sig_tx, sig_rx) = unbounded();
        for sig in [libc::SIGHUP, libc::SIGINT, libc::SIGCONT, libc::SIGTERM] {
            sig_tx.send(sig).unwrap();
        }
        let worker = std::thread::spawn(move || {
            // Only the SIGTERM's stop arrives, once.
            let got = cmd_rx.recv().unwrap();
            ev_tx.send(Event::Saving).unwrap();
            ev_tx.send(finished()).unwrap();
            (got, cmd_rx)
        });
        let mut log = Vec::new();
        let code = wait(&cmd_tx, &ev_rx, &sig_rx, &mut log);
        let (got, cmd_rx) = worker.join().unwrap();
        assert_eq!(got, Command::Stop { save: true });
        assert!(cmd_rx.try_recv().is_err(), "one stop only");
        assert_eq!(code, exit::INTERRUPTED);
        let log = String::from_utf8(log).unwrap();
        assert!(
            log.contains(&format!("signal {} ignored", libc::SIGHUP)),
            "{log}"
        );
        assert!(
            log.contains(&format!("signal {} ignored", libc::SIGINT)),
            "{log}"
        );
        assert!(log.contains("SIGTERM: saving a checkpoint"), "{log}");
    }

    #[test]
    fn a_stop_from_outside_ends_it_with_0_and_a_failure_with_1() {
        let (cmd_tx, _cmd_rx) = unbounded();
        let (_sig_tx, sig_rx) = unbounded::<i32>();
        let (ev_tx, ev_rx) = unbounded();
        ev_tx.send(Event::Saving).unwrap();
        ev_tx.send(finished()).unwrap();
        assert_eq!(wait(&cmd_tx, &ev_rx, &sig_rx, &mut Vec::new()), exit::OK);
        ev_tx
            .send(Event::Failed {
                message: "boom".into(),
            })
            .unwrap();
        assert_eq!(
            wait(&cmd_tx, &ev_rx, &sig_rx, &mut Vec::new()),
            exit::FAILED
        );
        drop(ev_tx);
        assert_eq!(
            wait(&cmd_tx, &ev_rx, &sig_rx, &mut Vec::new()),
            exit::FAILED
        );
    }

    #[test]
    fn the_last_line_says_how_to_come_back() {
        let lines = farewell(Path::new("/runs/r1"), 42);
        assert!(lines[0].contains("process 42"), "{lines:?}");
        assert!(lines[0].contains("nasp-tui ctl /runs/r1 stop"), "{lines:?}");
        assert_eq!(lines[1], "come back with: nasp-tui watch /runs/r1");
    }
}
