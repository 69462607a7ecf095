//! GPU memory and utilisation through NVML, loaded at run time (no GPU or no driver → an error
//! that says why, shown as "no GPU"), and this process's memory from /proc. The one NVML reader
//! of the program: the resources pane, the headless progress lines, `nasp-tui info` and `bench`
//! all use it.
//!
//! Device mapping: `cuda:N` is the N-th entry of `CUDA_VISIBLE_DEVICES` when that is set (an
//! index or a `GPU-…` UUID), else NVML index N. CUDA's default order (fastest first) can differ
//! from NVML's PCI order on mixed machines; set `CUDA_DEVICE_ORDER=PCI_BUS_ID` there.

use nvml_wrapper::Nvml;
use nvml_wrapper::enums::device::UsedGpuMemory;

/// One GPU's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct GpuStats {
    /// NVML index of the device.
    pub index: u32,
    pub name: String,
    pub used_bytes: u64,
    pub total_bytes: u64,
    /// GPU memory used by this process (None when the driver does not say).
    pub process_bytes: Option<u64>,
    pub utilization_pct: Option<u32>,
}

/// An NVML session (the library stays loaded while this lives).
pub struct Gpu {
    nvml: Nvml,
}

impl Gpu {
    /// Loads NVML; `Err` says why there is no GPU information.
    pub fn open() -> Result<Gpu, String> {
        Nvml::init()
            .or_else(|_| {
                Nvml::builder()
                    .lib_path("libnvidia-ml.so.1".as_ref())
                    .init()
            })
            .map(|nvml| Gpu { nvml })
            .map_err(|e| format!("NVML: {e}"))
    }

    /// Figures of device `index` (NVML numbering) for process `pid`.
    pub fn stats(&self, index: u32, pid: u32) -> Option<GpuStats> {
        let d = self.nvml.device_by_index(index).ok()?;
        read(&d, index, pid).ok()
    }

    /// Figures of the device CUDA calls `cuda:cuda_index`, for process `pid`.
    pub fn stats_for_cuda(&self, cuda_index: usize, pid: u32) -> Result<GpuStats, String> {
        let visible = std::env::var("CUDA_VISIBLE_DEVICES").ok();
        let entry = visible
            .as_deref()
            .and_then(|v| v.split(',').nth(cuda_index))
            .map(str::trim);
        let (d, index) = match entry {
            Some(e) => match e.parse::<u32>() {
                Ok(i) => (self.nvml.device_by_index(i), i),
                Err(_) => (self.nvml.device_by_uuid(e), 0),
            },
            None => {
                let i = u32::try_from(cuda_index).unwrap_or(0);
                (self.nvml.device_by_index(i), i)
            }
        };
        let d = d.map_err(|e| format!("NVML device {index}: {e}"))?;
        let index = d.index().unwrap_or(index);
        read(&d, index, pid)
    }
}

fn read(d: &nvml_wrapper::Device, index: u32, pid: u32) -> Result<GpuStats, String> {
    let mem = d.memory_info().map_err(|e| format!("NVML memory: {e}"))?;
    let process_bytes = d.running_compute_processes().ok().and_then(|ps| {
        ps.iter()
            .find(|p| p.pid == pid)
            .and_then(|p| match p.used_gpu_memory {
                UsedGpuMemory::Used(b) => Some(b),
                UsedGpuMemory::Unavailable => None,
            })
    });
    Ok(GpuStats {
        index,
        name: d.name().unwrap_or_else(|_| "GPU".into()),
        used_bytes: mem.used,
        total_bytes: mem.total,
        process_bytes,
        utilization_pct: d.utilization_rates().ok().map(|u| u.gpu),
    })
}

/// Peak resident set size of this process (VmHWM) in bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    proc_status_kb("VmHWM:").map(|kb| kb * 1024)
}

/// Current resident set size of this process (VmRSS) in bytes.
pub fn rss_bytes() -> Option<u64> {
    proc_status_kb("VmRSS:").map(|kb| kb * 1024)
}

/// `VmRSS` of process `pid` (of this host) in bytes; `None` when it is gone or unreadable.
pub fn rss_bytes_of(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status_kb(&text, "VmRSS:").map(|kb| kb * 1024)
}

fn proc_status_kb(key: &str) -> Option<u64> {
    status_kb(&std::fs::read_to_string("/proc/self/status").ok()?, key)
}

/// The kB figure of `key` (e.g. `VmRSS:`) in a `/proc/<pid>/status` text.
pub fn status_kb(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn rss_is_read() {
        let rss = super::rss_bytes().unwrap();
        let peak = super::peak_rss_bytes().unwrap();
        assert!(rss > 1 << 20 && peak >= rss);
        let status = "Name:\tx\nVmRSS:\t  2048 kB\nVmHWM: 1 kB\n";
        assert_eq!(super::status_kb(status, "VmRSS:"), Some(2048));
        assert_eq!(super::status_kb("Name: x\n", "VmRSS:"), None);
    }
}
