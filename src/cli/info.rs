//! `nasp-tui info`: what this machine offers (libtorch, CUDA, cuDNN, GPUs via NVML).

use crate::exit;

pub fn run() -> i32 {
    println!("nasp-tui {}", env!("CARGO_PKG_VERSION"));
    let cfg = crate::config::Config::default();
    println!("libtorch {}", crate::engine::set_threads(&cfg));
    let cuda = tch::Cuda::is_available();
    println!(
        "CUDA available: {cuda} ({} device(s)), cuDNN: {}",
        tch::Cuda::device_count(),
        tch::Cuda::cudnn_is_available()
    );
    match crate::gpu::Gpu::open() {
        Ok(g) => {
            for i in 0..tch::Cuda::device_count().max(1) as u32 {
                if let Some(s) = g.stats(i, std::process::id()) {
                    println!(
                        "GPU {i}: {} | memory used {:.0} / {:.0} MiB | utilisation {}",
                        s.name,
                        s.used_bytes as f64 / 1048576.0,
                        s.total_bytes as f64 / 1048576.0,
                        s.utilization_pct.map_or("n/a".into(), |u| format!("{u}%"))
                    );
                }
            }
        }
        Err(e) => println!("NVML: not available ({e}): no GPU figures"),
    }
    exit::OK
}
