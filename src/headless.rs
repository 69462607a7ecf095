//! Headless mode: consumes the worker's events and prints progress lines instead of drawing.

use std::io::Write;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, select};

use crate::exit;
use crate::protocol::{Command, Event, Level};

/// Formats a progress line for a `Step` event.
pub fn step_line(s: &crate::protocol::StepStats, steps_per_epoch: usize) -> String {
    format!(
        "epoch {} step {}/{} (global {}) | train loss {:.4} acc {:.3} | arch loss {:.4} | {:.1} ms/step {:.0} img/s | lr {:.5}",
        s.epoch,
        s.step,
        steps_per_epoch,
        s.global_step,
        s.train_loss,
        s.train_acc,
        s.arch_loss,
        s.ms_per_step,
        s.images_per_s,
        s.lr
    )
}

/// " | GPU <name> mem: process X MiB, device used/total MiB, util N%" for a progress line.
pub fn gpu_text(m: &crate::gpu::GpuStats) -> String {
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

/// Runs until the worker finishes or fails. `signals` delivers SIGTERM/SIGHUP/SIGINT (and SIGCONT,
/// ignored) numbers.
/// Returns the exit code: 0 done, 1 failed, 130 interrupted.
pub fn run(
    commands: &Sender<Command>,
    events: &Receiver<Event>,
    signals: &Receiver<i32>,
    out: &mut dyn Write,
    line_every: Duration,
) -> i32 {
    let mut steps_per_epoch = 0;
    let mut gpu: Option<(crate::gpu::Gpu, usize)> = None;
    let mut last_line: Option<Instant> = None;
    let mut interrupted = false;
    loop {
        select! {
            recv(signals) -> sig => {
                // SIGCONT (after a `kill -STOP`) only means "go on": nothing to redraw here.
                if let Ok(sig) = sig && sig != crate::signals::SIGCONT && !interrupted {
                    interrupted = true;
                    let _ = writeln!(out, "signal {sig}: saving a checkpoint and stopping");
                    let _ = commands.send(Command::Stop { save: true });
                }
            }
            recv(events) -> ev => {
                let Ok(ev) = ev else {
                    let _ = writeln!(out, "error: the search thread ended without a result");
                    return exit::FAILED;
                };
                match ev {
                    Event::Started(info) => {
                        steps_per_epoch = info.steps_per_epoch;
                        if let Some(idx) = crate::device::DeviceChoice::cuda_index(&info.device) {
                            gpu = crate::gpu::Gpu::open().ok().map(|g| (g, idx));
                        }
                        let _ = writeln!(out, "started {} on {} | {} | {} epochs × {} steps, batch {} | {} weights | run dir {}",
                            info.algorithm, info.device, info.dataset, info.epochs, info.steps_per_epoch, info.batch_size, info.params, info.run_dir);
                    }
                    Event::Step(s) => {
                        if last_line.is_none_or(|t| t.elapsed() >= line_every) {
                            let mem = gpu.as_ref().and_then(|(g, i)| g.stats_for_cuda(*i, std::process::id()).ok()).map(|m| gpu_text(&m)).unwrap_or_default();
                            let _ = writeln!(out, "{}{mem}", step_line(&s, steps_per_epoch));
                            last_line = Some(Instant::now());
                        }
                    }
                    Event::Epoch(e) => {
                        let _ = writeln!(out, "epoch {} done in {:.1} s (validation {:.1} s) | train loss {:.4} acc {:.3} | valid loss {:.4} acc {:.3}",
                            e.epoch, e.seconds, e.valid_seconds, e.train_loss, e.train_acc, e.valid_loss, e.valid_acc);
                    }
                    Event::Arch(_) | Event::Saving => {}
                    Event::Paused { global_step } => { let _ = writeln!(out, "paused at step {global_step}"); }
                    Event::Resumed => { let _ = writeln!(out, "resumed"); }
                    Event::CheckpointSaved { path, global_step } => { let _ = writeln!(out, "checkpoint saved at step {global_step}: {path}"); }
                    Event::Exported { paths } => { let _ = writeln!(out, "genotype exported: {}", paths.join(", ")); }
                    Event::Log { level, text } => {
                        let tag = match level { Level::Info => "info", Level::Warn => "warning", Level::Error => "error" };
                        let _ = writeln!(out, "{tag}: {text}");
                    }
                    Event::Finished { summary, .. } => {
                        let _ = writeln!(out, "{summary}");
                        return if interrupted { exit::INTERRUPTED } else { exit::OK };
                    }
                    Event::Failed { message } => {
                        let _ = writeln!(out, "error: {message}");
                        return exit::FAILED;
                    }
                }
                let _ = out.flush();
            }
        }
    }
}
