//! Resource sampling off the UI thread, about once a second: the search process's RSS (`VmRSS`
//! from `/proc/<pid>/status`) and, for CUDA runs, NVML's view of the device (used/total memory,
//! utilisation, that process's memory). The search process is this one, or for a watcher the
//! watched run's process when it runs on this host. NVML is loaded at run time; if it cannot be loaded the
//! pane says "no GPU" and the reason.
//!
//! The NVML reading itself (and the device mapping) lives in `crate::gpu`.

use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, unbounded};

use crate::app::{GpuSample, ResourceSample};

/// How often a sample is taken.
pub const PERIOD: Duration = Duration::from_secs(1);

/// A running sampler: tell it the device, read samples.
pub struct Sampler {
    pub device: Sender<String>,
    pub samples: Receiver<ResourceSample>,
    handle: Option<JoinHandle<()>>,
}

impl Sampler {
    /// Samples this process.
    pub fn spawn() -> std::io::Result<Sampler> {
        Sampler::spawn_for(std::process::id())
    }

    /// Samples process `pid` (of this host).
    pub fn spawn_for(pid: u32) -> std::io::Result<Sampler> {
        let (dev_tx, dev_rx) = unbounded::<String>();
        let (tx, rx) = unbounded();
        let handle = std::thread::Builder::new()
            .name("nasp-tui-resources".into())
            .spawn(move || {
                let mut gpu = Gpu::None;
                loop {
                    match dev_rx.recv_timeout(PERIOD) {
                        Ok(device) => gpu = Gpu::open(&device),
                        Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                    let sample = ResourceSample {
                        rss_bytes: crate::gpu::rss_bytes_of(pid),
                        gpu: gpu.sample(pid),
                    };
                    if tx.send(sample).is_err() {
                        break;
                    }
                }
            })?;
        Ok(Sampler {
            device: dev_tx,
            samples: rx,
            handle: Some(handle),
        })
    }

    /// Stops the thread (it notices within one period) and waits for it.
    pub fn stop(self) {
        let Sampler {
            device,
            samples,
            handle,
        } = self;
        // Closing both channels ends the thread's loop.
        drop(device);
        drop(samples);
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

enum Gpu {
    None,
    Unavailable(String),
    Nvml {
        gpu: Box<crate::gpu::Gpu>,
        cuda_index: usize,
    },
}

impl Gpu {
    fn open(device: &str) -> Gpu {
        let Some(cuda_index) = crate::device::DeviceChoice::cuda_index(device) else {
            return Gpu::None;
        };
        match crate::gpu::Gpu::open() {
            Ok(gpu) => Gpu::Nvml {
                gpu: Box::new(gpu),
                cuda_index,
            },
            Err(why) => Gpu::Unavailable(why),
        }
    }

    fn sample(&self, pid: u32) -> GpuSample {
        match self {
            Gpu::None => GpuSample::NotUsed,
            Gpu::Unavailable(why) => GpuSample::Unavailable(why.clone()),
            Gpu::Nvml { gpu, cuda_index } => match gpu.stats_for_cuda(*cuda_index, pid) {
                Ok(s) => GpuSample::Device {
                    index: s.index,
                    name: s.name,
                    used_bytes: s.used_bytes,
                    total_bytes: s.total_bytes,
                    util_percent: s.utilization_pct,
                    process_bytes: s.process_bytes,
                },
                Err(why) => GpuSample::Unavailable(why),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_parsing_and_cpu_runs() {
        assert!(crate::gpu::rss_bytes().is_some_and(|b| b > 0));
        assert_eq!(Gpu::open("cpu").sample(1), GpuSample::NotUsed);
    }

    /// On a GPU machine: `cargo test --release --lib -- --ignored nvml_reads_the_gpu`.
    #[test]
    #[ignore = "needs an NVIDIA GPU and driver"]
    fn nvml_reads_the_gpu() {
        match Gpu::open("cuda:0").sample(std::process::id()) {
            GpuSample::Device {
                total_bytes,
                used_bytes,
                ..
            } => {
                assert!(total_bytes > 0 && used_bytes <= total_bytes);
            }
            other => panic!("expected a GPU reading, got {other:?}"),
        }
    }

    #[test]
    fn sampler_reports_about_once_a_second() {
        let s = Sampler::spawn().unwrap();
        s.device.send("cpu".into()).unwrap();
        let first = s.samples.recv_timeout(Duration::from_secs(3)).unwrap();
        assert!(first.rss_bytes.is_some());
        assert_eq!(first.gpu, GpuSample::NotUsed);
        s.stop();
    }

    /// A watcher samples the watched process: a child's RSS, not its own.
    #[test]
    fn sampler_reads_another_process() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let s = Sampler::spawn_for(child.id()).unwrap();
        let got = s.samples.recv_timeout(Duration::from_secs(3)).unwrap();
        let want = crate::gpu::rss_bytes_of(child.id()).unwrap();
        let own = crate::gpu::rss_bytes().unwrap();
        let rss = got.rss_bytes.unwrap();
        assert!(
            rss <= want * 2 && rss * 2 >= want && rss * 4 < own,
            "{rss} {want} {own}"
        );
        child.kill().unwrap();
        child.wait().unwrap();
        s.stop();
        let gone = Sampler::spawn_for(child.id()).unwrap();
        let after = gone.samples.recv_timeout(Duration::from_secs(3)).unwrap();
        assert_eq!(after.rss_bytes, None, "an ended process has no RSS");
        gone.stop();
    }
}
