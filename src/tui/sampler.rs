//! Resource sampling off the UI thread, about once a second: this process's RSS (`VmRSS` from
//! `/proc/self/status`) and, for CUDA runs, NVML's view of the device (used/total memory,
//! utilisation, this process's memory). NVML is loaded at run time; if it cannot be loaded the
//! pane says "no GPU" and the reason.
//!
//! Device mapping: `cuda:N` is the N-th entry of `CUDA_VISIBLE_DEVICES` when that is set (an
//! index or a `GPU-…` UUID), else NVML index N. CUDA's default order (fastest first) can differ
//! from NVML's PCI order on mixed machines; set `CUDA_DEVICE_ORDER=PCI_BUS_ID` there.

use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, unbounded};
use nvml_wrapper::Nvml;
use nvml_wrapper::enums::device::UsedGpuMemory;

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
        nvml: Box<Nvml>,
        index: u32,
        uuid: Option<String>,
    },
}

impl Gpu {
    fn open(device: &str) -> Gpu {
        let Some(rest) = device.strip_prefix("cuda") else {
            return Gpu::None;
        };
        let n: usize = rest.trim_start_matches(':').parse().unwrap_or(0);
        let nvml = match Nvml::init().or_else(|_| {
            Nvml::builder()
                .lib_path("libnvidia-ml.so.1".as_ref())
                .init()
        }) {
            Ok(n) => n,
            Err(e) => return Gpu::Unavailable(format!("NVML: {e}")),
        };
        let (index, uuid) = match std::env::var("CUDA_VISIBLE_DEVICES")
            .ok()
            .and_then(|v| v.split(',').nth(n).map(|s| s.trim().to_string()))
        {
            Some(entry) => match entry.parse::<u32>() {
                Ok(i) => (i, None),
                Err(_) => (0, Some(entry)),
            },
            None => (u32::try_from(n).unwrap_or(0), None),
        };
        Gpu::Nvml {
            nvml: Box::new(nvml),
            index,
            uuid,
        }
    }

    fn sample(&self) -> GpuSample {
        match self {
            Gpu::None => GpuSample::NotUsed,
            Gpu::Unavailable(why) => GpuSample::Unavailable(why.clone()),
            Gpu::Nvml { nvml, index, uuid } => {
                let dev = match uuid {
                    Some(u) => nvml.device_by_uuid(u.as_str()),
                    None => nvml.device_by_index(*index),
                };
                let dev = match dev {
                    Ok(d) => d,
                    Err(e) => return GpuSample::Unavailable(format!("NVML device {index}: {e}")),
                };
                let mem = match dev.memory_info() {
                    Ok(m) => m,
                    Err(e) => return GpuSample::Unavailable(format!("NVML memory: {e}")),
                };
                let me = std::process::id();
                let process_bytes = dev.running_compute_processes().ok().and_then(|ps| {
                    ps.into_iter()
                        .find(|p| p.pid == me)
                        .and_then(|p| match p.used_gpu_memory {
                            UsedGpuMemory::Used(b) => Some(b),
                            UsedGpuMemory::Unavailable => None,
                        })
                });
                GpuSample::Device {
                    index: dev.index().unwrap_or(*index),
                    name: dev.name().unwrap_or_default(),
                    used_bytes: mem.used,
                    total_bytes: mem.total,
                    util_percent: dev.utilization_rates().ok().map(|u| u.gpu),
                    process_bytes,
                }
            }
        }
    }
}

/// `VmRSS` of this process in bytes.
pub fn read_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_rss(&status)
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_parsing_and_cpu_runs() {
        assert_eq!(
            parse_vm_rss("Name:\tx\nVmRSS:\t  2048 kB\nVmHWM: 1 kB\n"),
            Some(2 * 1024 * 1024)
        );
        assert_eq!(parse_vm_rss("Name: x\n"), None);
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
