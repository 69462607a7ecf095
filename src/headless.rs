//! Headless mode (`--headless`, or stdout not a terminal): consumes the worker's events and prints
//! lines instead of drawing. Events print in the words of [`Event::describe`] (the TUI's log pane
//! says the same); steps print as rate-limited progress lines, with the GPU's memory when the run
//! is on one, and epochs as a fuller progress line of their own.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, select};

use crate::exit::{self, RunEnd};
use crate::gpu::{Gpu, GpuStats};
use crate::protocol::{BenchmarkScore, Command, EpochStats, Event, StepStats};
use crate::tui::detach;

/// Formats a progress line for a `Step` event.
pub fn step_line(s: &StepStats, steps_per_epoch: usize) -> String {
    // A training run (`nasp-tui train`) has no architecture loss; its drop-path probability
    // takes that place.
    let middle = match s.drop_path {
        Some(p) => format!("drop path {p:.3}"),
        None => format!("arch loss {:.4}", s.arch_loss),
    };
    format!(
        "epoch {} step {}/{} (global {}) | train loss {:.4} acc {:.3} | {middle} | {:.1} ms/step {:.0} img/s | lr {:.5}",
        s.epoch,
        s.step,
        steps_per_epoch,
        s.global_step,
        s.train_loss,
        s.train_acc,
        s.ms_per_step,
        s.images_per_s,
        s.lr
    )
}

/// Formats the progress line for an `Epoch` event (the epoch as the worker numbers it, from 0).
pub fn epoch_line(e: &EpochStats) -> String {
    format!(
        "epoch {} done in {:.1} s ({} {:.1} s) | train loss {:.4} acc {:.3} | {} loss {:.4} acc {:.3}",
        e.epoch,
        e.seconds,
        if e.test { "test" } else { "validation" },
        e.valid_seconds,
        e.train_loss,
        e.train_acc,
        e.set_name(),
        e.valid_loss,
        e.valid_acc
    )
}

/// " | NB201 CIFAR-10 93.66 % (rank 258 of 15625, lookup)" for an epoch line of an NB201 search.
pub fn benchmark_suffix(b: Option<&BenchmarkScore>) -> String {
    b.map_or_else(String::new, |b| {
        format!(
            " | NB201 {} {:.2} % (rank {} of {}, lookup)",
            b.dataset, b.accuracy, b.rank, b.cells
        )
    })
}

/// " | GPU mem: process X MiB, device used/total MiB, util N%" for a progress line.
pub fn gpu_text(m: &GpuStats) -> String {
    let mib = |b: u64| b as f64 / 1048576.0;
    format!(
        " | GPU mem: process {}, device {:.0}/{:.0} MiB, util {}",
        m.process_bytes
            .map_or("n/a".into(), |b| format!("{:.0} MiB", mib(b))),
        mib(m.used_bytes),
        mib(m.total_bytes),
        m.utilization_pct.map_or("n/a".into(), |u| format!("{u}%"))
    )
}

/// What SIGHUP does to a headless search (`ui.on_hangup`).
#[derive(Debug, Clone, Copy)]
pub enum Hangup<'a> {
    /// Save a checkpoint and stop, as SIGTERM and SIGINT do.
    Stop,
    /// Save a checkpoint and go on. With `leave` (the output goes to the terminal, or to a pipe
    /// that dies with it: see [`output_dies_with_the_terminal`]), stdout and stderr move to the
    /// run's `log` and the process waits for the search without printing, as a detached TUI
    /// does; otherwise (output to a file) printing goes on.
    Detach { log: &'a Path, leave: bool },
}

/// Runs until the worker finishes or fails. `signals` delivers SIGTERM/SIGHUP/SIGINT (and SIGCONT,
/// ignored) numbers; SIGHUP does what `hangup` says.
/// Returns the exit code: 0 done, 1 failed, 130 interrupted.
pub fn run(
    commands: &Sender<Command>,
    events: &Receiver<Event>,
    signals: &Receiver<i32>,
    out: &mut dyn Write,
    line_every: Duration,
    hangup: Hangup,
) -> i32 {
    let mut printer = Printer {
        out,
        line_every,
        steps_per_epoch: 0,
        gpu: None,
        last_line: None,
        interrupted: false,
        benchmark: None,
    };
    loop {
        select! {
            recv(signals) -> sig => match (sig, hangup) {
                // SIGCONT (after a `kill -STOP`) only means "go on": nothing to redraw here.
                (Ok(crate::signals::SIGCONT) | Err(_), _) => {}
                _ if printer.interrupted => {}
                (Ok(crate::signals::SIGHUP), Hangup::Detach { log, leave }) => {
                    let _ = commands.send(Command::Checkpoint);
                    if leave {
                        return leave_terminal(commands, events, signals, log);
                    }
                    printer.line("SIGHUP: saving a checkpoint; the search goes on");
                }
                (Ok(sig), _) => {
                    printer.interrupted = true;
                    printer.line(&format!("signal {sig}: saving a checkpoint and stopping"));
                    let _ = commands.send(Command::Stop { save: true });
                }
            },
            recv(events) -> ev => {
                let Ok(ev) = ev else {
                    printer.line("error: the search thread ended without a result");
                    return exit::FAILED;
                };
                if let Some(code) = printer.on_event(ev) {
                    return code;
                }
            }
        }
    }
}

/// Off the terminal after a hangup: stdin an empty pipe, stdout and stderr to the run's `log`
/// (where the run's events are written anyway), then wait for the search without printing.
fn leave_terminal(
    commands: &Sender<Command>,
    events: &Receiver<Event>,
    signals: &Receiver<i32>,
    log: &Path,
) -> i32 {
    let mut note = detach::log_file(log);
    let _ = writeln!(
        note,
        "[Warn] SIGHUP: saving a checkpoint and going on without the terminal (output: {})",
        log.display()
    );
    let said = match detach::quiet_stdin().and_then(|()| detach::leave_terminal(log)) {
        Ok(own_session) => format!(
            "[Info] detached from the terminal (own session: {own_session}); come back with: \
             nasp-tui watch {}",
            log.parent().unwrap_or(log).display()
        ),
        Err(e) => format!("[Error] cannot leave the terminal: {e}"),
    };
    let _ = writeln!(note, "{said}");
    detach::wait(commands, events, signals, &mut note)
}

/// Whether stdout is the terminal, or a pipe (to `tee`, say) that ends with it: after a hangup,
/// writing there would fail (EIO, SIGPIPE). A file stays writable.
pub fn output_dies_with_the_terminal() -> bool {
    use std::io::IsTerminal;
    use std::os::unix::fs::FileTypeExt;
    std::io::stdout().is_terminal()
        || std::fs::metadata("/proc/self/fd/1")
            .is_ok_and(|m| m.file_type().is_fifo() || m.file_type().is_socket())
}

/// What the headless loop remembers between events.
struct Printer<'a> {
    out: &'a mut dyn Write,
    /// Progress lines at most this often.
    line_every: Duration,
    steps_per_epoch: usize,
    /// NVML and the run's CUDA index, when the run is on a GPU NVML can read.
    gpu: Option<(Gpu, usize)>,
    last_line: Option<Instant>,
    /// A signal asked for the stop (the exit code is then 130).
    interrupted: bool,
    /// An NB201 search: the benchmark's figure of the cell of the latest snapshot.
    benchmark: Option<Box<BenchmarkScore>>,
}

impl Printer<'_> {
    /// Prints what the event says; returns the exit code once the run is over.
    fn on_event(&mut self, ev: Event) -> Option<i32> {
        match &ev {
            Event::Started(info) => {
                self.steps_per_epoch = info.steps_per_epoch;
                if let Some(idx) = crate::device::DeviceChoice::cuda_index(&info.device) {
                    self.gpu = Gpu::open().ok().map(|g| (g, idx));
                }
            }
            Event::Step(s) => self.progress(s),
            Event::Arch(a) => self.benchmark.clone_from(&a.benchmark),
            Event::Epoch(e) => {
                let line = epoch_line(e) + &benchmark_suffix(self.benchmark.as_deref());
                self.line(&line);
            }
            _ => {}
        }
        if !matches!(ev, Event::Epoch(_))
            && let Some(line) = ev.describe()
        {
            self.line(&line.to_string());
        }
        match &ev {
            Event::Started(info) => {
                // The TUI's first log line says the same.
                self.line(&format!("run directory: {}", info.run_dir));
                None
            }
            _ => ev.run_end(self.interrupted).map(RunEnd::code),
        }
    }

    /// A step's progress line, at most once per `line_every`.
    fn progress(&mut self, s: &StepStats) {
        if self
            .last_line
            .is_some_and(|t| t.elapsed() < self.line_every)
        {
            return;
        }
        let mem = self
            .gpu
            .as_ref()
            .and_then(|(g, i)| g.stats_for_cuda(*i, std::process::id()).ok())
            .map(|m| gpu_text(&m))
            .unwrap_or_default();
        self.line(&format!("{}{mem}", step_line(s, self.steps_per_epoch)));
        self.last_line = Some(Instant::now());
    }

    /// Prints one line (best effort: a closed stdout must not stop the search).
    fn line(&mut self, text: &str) {
        let _ = writeln!(self.out, "{text}");
        let _ = self.out.flush();
    }
}

#[cfg(test)]
mod tests {
    use crossbeam_channel::unbounded;

    use super::*;
    use crate::app::fixtures;
    use crate::protocol::Level;

    #[test]
    fn events_print_in_the_described_words_and_the_run_ends_the_loop() {
        let (commands, _) = unbounded();
        let (etx, events) = unbounded();
        let (_stx, signals) = unbounded::<i32>();
        let mut script = fixtures::script(true);
        script.extend([
            Event::Log {
                level: Level::Warn,
                text: "no GPU".into(),
            },
            Event::Exported {
                paths: vec!["g/a.txt".into(), "g/a.json".into()],
            },
            Event::Failed {
                message: "boom".into(),
            },
        ]);
        for ev in script {
            etx.send(ev).expect("send");
        }
        let mut out = Vec::new();
        let code = run(
            &commands,
            &events,
            &signals,
            &mut out,
            Duration::from_secs(3600),
            Hangup::Stop,
        );
        assert_eq!(code, exit::FAILED);
        let text = String::from_utf8(out).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "started: nasp on cpu (cifar10), 50 epochs x 391 steps, 1930842 parameters",
                "run directory: runs/test",
                &step_line(&fixtures::step(10), 391),
                "epoch 0 done in 48.0 s (validation 3.0 s) | train loss 1.6000 acc 0.420 | valid loss 1.7000 acc 0.390",
                "data: CIFAR-10, 25000 train / 25000 valid",
                "warning: no GPU",
                "genotype exported: g/a.txt, g/a.json",
                "error: FAILED: boom",
            ]
        );
    }

    #[test]
    fn a_signal_stops_with_a_checkpoint_and_exit_130_and_sigcont_is_ignored() {
        let (commands, crx) = unbounded();
        let (etx, events) = unbounded();
        let (stx, signals) = unbounded();
        let printer = std::thread::spawn(move || {
            let mut out = Vec::new();
            let code = run(
                &commands,
                &events,
                &signals,
                &mut out,
                Duration::ZERO,
                Hangup::Stop,
            );
            (code, String::from_utf8(out).expect("utf-8"))
        });
        stx.send(crate::signals::SIGCONT).expect("send");
        stx.send(crate::signals::SIGTERM).expect("send");
        let cmd = crx
            .recv_timeout(Duration::from_secs(10))
            .expect("a command");
        assert_eq!(cmd, Command::Stop { save: true });
        etx.send(Event::Finished {
            summary: "stopped after 9 steps (epoch 0); genotype: x".into(),
            stopped: true,
            unsaved: false,
        })
        .expect("send");
        let (code, text) = printer.join().expect("the printer thread");
        assert_eq!(code, exit::INTERRUPTED);
        assert_eq!(
            text,
            format!(
                "signal {}: saving a checkpoint and stopping\nstopped after 9 steps (epoch 0); genotype: x\n",
                crate::signals::SIGTERM
            )
        );
        assert!(crx.try_recv().is_err(), "one stop, nothing for SIGCONT");
    }

    /// `ui.on_hangup = "detach"` with the output in a file: SIGHUP saves and the search goes on
    /// (printing), SIGTERM still stops it.
    #[test]
    fn sighup_under_detach_checkpoints_and_goes_on() {
        let (commands, crx) = unbounded();
        let (etx, events) = unbounded();
        let (stx, signals) = unbounded();
        let printer = std::thread::spawn(move || {
            let mut out = Vec::new();
            let log = Path::new("unused-log.txt");
            let hangup = Hangup::Detach { log, leave: false };
            let code = run(
                &commands,
                &events,
                &signals,
                &mut out,
                Duration::ZERO,
                hangup,
            );
            (code, String::from_utf8(out).expect("utf-8"))
        });
        stx.send(crate::signals::SIGHUP).expect("send");
        let wait = Duration::from_secs(10);
        assert_eq!(crx.recv_timeout(wait), Ok(Command::Checkpoint));
        etx.send(Event::Step(fixtures::step(3))).expect("send");
        stx.send(crate::signals::SIGTERM).expect("send");
        assert_eq!(crx.recv_timeout(wait), Ok(Command::Stop { save: true }));
        etx.send(Event::Finished {
            summary: "stopped".into(),
            stopped: true,
            unsaved: false,
        })
        .expect("send");
        let (code, text) = printer.join().expect("the printer thread");
        assert_eq!(code, exit::INTERRUPTED);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "SIGHUP: saving a checkpoint; the search goes on");
        assert!(lines[1].starts_with("epoch "), "still printing: {text}");
        assert!(!Path::new("unused-log.txt").exists());
    }
}
