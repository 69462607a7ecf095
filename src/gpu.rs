//! GPU memory and utilisation through NVML, loaded at run time (no GPU or no driver → `None`).

use nvml_wrapper::Nvml;
use nvml_wrapper::enums::device::UsedGpuMemory;

/// One GPU's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct GpuStats {
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
    /// Loads NVML; `Err` says why there is no GPU information (shown as "no GPU").
    pub fn open() -> Result<Gpu, String> {
        Nvml::init()
            .map(|nvml| Gpu { nvml })
            .map_err(|e| e.to_string())
    }

    /// Figures of device `index` for process `pid`.
    pub fn stats(&self, index: u32, pid: u32) -> Option<GpuStats> {
        let d = self.nvml.device_by_index(index).ok()?;
        let mem = d.memory_info().ok()?;
        let process_bytes = d.running_compute_processes().ok().and_then(|ps| {
            ps.iter()
                .find(|p| p.pid == pid)
                .and_then(|p| match p.used_gpu_memory {
                    UsedGpuMemory::Used(b) => Some(b),
                    UsedGpuMemory::Unavailable => None,
                })
        });
        Some(GpuStats {
            name: d.name().unwrap_or_else(|_| "GPU".into()),
            used_bytes: mem.used,
            total_bytes: mem.total,
            process_bytes,
            utilization_pct: d.utilization_rates().ok().map(|u| u.gpu),
        })
    }
}

/// Peak resident set size of this process (VmHWM) in bytes, from /proc.
pub fn peak_rss_bytes() -> Option<u64> {
    proc_status_kb("VmHWM:").map(|kb| kb * 1024)
}

/// Current resident set size of this process (VmRSS) in bytes, from /proc.
pub fn rss_bytes() -> Option<u64> {
    proc_status_kb("VmRSS:").map(|kb| kb * 1024)
}

fn proc_status_kb(key: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
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
    }
}
