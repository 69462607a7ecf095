//! Resource sampling off the UI thread, about once a second: this process's RSS (`VmRSS` from
//! `/proc/self/status`) and, for CUDA runs, NVML's view of the device (used/total memory,
//! utilisation, this process's memory). NVML is loaded at run time; if it cannot be loaded the
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
    pub fn spawn() -> std::io::Result<Sampler> {
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
                        rss_bytes: read_rss(),
                        gpu: gpu.sample(),
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

    fn sample(&self) -> GpuSample {
        match self {
            Gpu::None => GpuSample::NotUsed,
            Gpu::Unavailable(why) => GpuSample::Unavailable(why.clone()),
            Gpu::Nvml { gpu, cuda_index } => {
                match gpu.stats_for_cuda(*cuda_index, std::process::id()) {
                    Ok(s) => GpuSample::Device {
                        index: s.index,
                        name: s.name,
                        used_bytes: s.used_bytes,
                        total_bytes: s.total_bytes,
                        util_percent: s.utilization_pct,
                        process_bytes: s.process_bytes,
                    },
                    Err(why) => GpuSample::Unavailable(why),
                }
            }
        }
    }
}

/// `VmRSS` of this process in bytes.
pub fn read_rss() -> Option<u64> {
    crate::gpu::rss_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_parsing_and_cpu_runs() {
        assert!(read_rss().is_some_and(|b| b > 0));
        assert_eq!(Gpu::open("cpu").sample(), GpuSample::NotUsed);
    }

    /// On a GPU machine: `cargo test --release --lib -- --ignored nvml_reads_the_gpu`.
    #[test]
    #[ignore = "needs an NVIDIA GPU and driver"]
    fn nvml_reads_the_gpu() {
        match Gpu::open("cuda:0").sample() {
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
}
