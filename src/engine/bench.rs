//! `nasp-tui bench`: timed search steps of each algorithm on one supernet and one fixed batch.

use std::time::Instant;

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::config::{Algorithm, Config};
use crate::engine::EngineError;
use crate::engine::search::Search;

/// The figures of one algorithm.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchResult {
    pub algorithm: String,
    pub device: String,
    pub steps: usize,
    pub ms_median: f64,
    pub ms_min: f64,
    pub images_per_s: f64,
    pub peak_rss_mb: f64,
    pub peak_gpu_mb: Option<f64>,
    /// With `--profile`: device time per kernel over the timed steps (see `native::profile_end`).
    #[serde(default)]
    pub profile: Option<String>,
    /// With `--phases`: milliseconds per step in each phase of the step (see
    /// `search::phases`), in the step's order.
    #[serde(default)]
    pub phases: Vec<(String, f64)>,
    /// What the run should be read with: fallbacks the search took, how often the CUDA graph
    /// was replayed.
    #[serde(default)]
    pub notes: Vec<String>,
}

pub(crate) fn sync(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}

/// The most GPU memory this process held at the samples taken (NVML), on a CUDA device.
pub(crate) struct GpuPeak {
    gpu: Option<crate::gpu::Gpu>,
    index: usize,
    pid: u32,
    pub(crate) peak_mb: Option<f64>,
}

impl GpuPeak {
    pub(crate) fn open(device: Device) -> GpuPeak {
        let gpu = device
            .is_cuda()
            .then(crate::gpu::Gpu::open)
            .and_then(Result::ok);
        let index = match device {
            Device::Cuda(n) => n,
            _ => 0,
        };
        GpuPeak {
            gpu,
            index,
            pid: std::process::id(),
            peak_mb: None,
        }
    }

    /// Reads the process's GPU memory now and keeps the largest reading.
    pub(crate) fn sample(&mut self) {
        let Some(g) = &self.gpu else {
            return;
        };
        if let Some(mb) = g
            .stats_for_cuda(self.index, self.pid)
            .ok()
            .and_then(|st| st.process_bytes)
            .map(|v| v as f64 / 1048576.0)
        {
            self.peak_mb = Some(self.peak_mb.map_or(mb, |p: f64| p.max(mb)));
        }
    }
}

/// How a bench looks inside the steps (both off: plain timing).
#[derive(Debug, Clone, Copy, Default)]
pub struct Insight {
    /// The timed steps run under the libtorch profiler (which slows them down).
    pub profile: bool,
    /// The timed steps record the wall time of each phase.
    pub phases: bool,
}

/// Runs `warmup` + `steps` steps of `algorithm` with random batches of the config's size.
pub fn run(
    cfg: &Config,
    algorithm: Algorithm,
    device: Device,
    steps: usize,
    warmup: usize,
    insight: Insight,
) -> Result<BenchResult, EngineError> {
    let profile = insight.profile;
    crate::engine::set_threads(cfg);
    let mut cfg = cfg.clone();
    cfg.algorithm = algorithm;
    let mut s = Search::new(&cfg, device, None)?;
    tch::manual_seed(0);
    let (b, hw) = (cfg.train.batch_size as i64, cfg.data.image_size);
    let batch = || {
        (
            Tensor::randn([b, 3, hw, hw], (Kind::Float, device)),
            Tensor::randint(10, [b], (Kind::Int64, device)),
        )
    };
    let (xt, yt) = batch();
    let (xv, yv) = batch();
    let mut gpu = GpuPeak::open(device);
    let mut times = Vec::with_capacity(steps);
    let mut summary = None;
    for i in 0..warmup + steps {
        sync(device);
        if profile && i == warmup {
            crate::engine::native::profile_begin(device.is_cuda())?;
        }
        if insight.phases {
            s.time_phases(i == warmup);
        }
        let t0 = Instant::now();
        let out = s.step_on(&xt, &yt, &xv, &yv);
        // Reading the loss is what a real run does at its logging rate; here it also makes the
        // CPU timing honest for the asynchronous GPU.
        let _ = out.loss.double_value(&[]);
        sync(device);
        if i >= warmup {
            times.push(t0.elapsed().as_secs_f64() * 1000.0);
        }
        gpu.sample();
    }
    if profile && steps > 0 {
        let text = crate::engine::native::profile_end(None, 30)?;
        summary = Some(format!("{text}  (over {steps} steps)"));
    }
    let mut notes = s.take_notices();
    if algorithm == Algorithm::Nasp {
        notes.push(selection_note(&s));
    }
    if s.arch_graph_requested() {
        notes.push(format!(
            "CUDA graph of the architecture pass replayed in {} of {} steps",
            s.graph_replays(),
            warmup + steps
        ));
    }
    let phases = s
        .phase_times()
        .into_iter()
        .map(|(p, ms)| (p, ms / steps.max(1) as f64))
        .collect();
    times.sort_by(f64::total_cmp);
    let median = times.get(times.len() / 2).copied().unwrap_or(f64::NAN);
    Ok(BenchResult {
        algorithm: algorithm.name().into(),
        device: format!("{device:?}").to_lowercase(),
        steps,
        ms_median: median,
        ms_min: times.first().copied().unwrap_or(f64::NAN),
        images_per_s: b as f64 * 1000.0 / median,
        peak_rss_mb: crate::gpu::peak_rss_bytes().unwrap_or(0) as f64 / 1048576.0,
        peak_gpu_mb: gpu.peak_mb,
        profile: summary,
        phases,
        notes,
    })
}

/// The ops the selection Ā holds after the timed steps, per cell type, most frequent first:
/// NASP's sparse pass and weight step run exactly these, so a selection of pools and skips
/// measures a lighter step than a search whose cells hold convolutions (and `none` everywhere,
/// the old bench config's, measured a step that trains nothing: issue 28).
fn selection_note(s: &Search) -> String {
    let lists = s.op_lists();
    let mut cells = Vec::new();
    for (name, ops, sel) in [
        ("normal", &lists.normal, &s.selection()[0]),
        ("reduce", &lists.reduce, &s.selection()[1]),
    ] {
        let kept: Vec<&str> = sel.ops.iter().flatten().map(|&k| ops[k].as_str()).collect();
        if kept.is_empty() {
            continue;
        }
        cells.push(format!("{name} {}", op_mix(&kept)));
    }
    format!("Ā after the timed steps: {}", cells.join("; "))
}

/// `ops` counted, most frequent first (ties by name): "sep_conv_3x3 ×3, skip_connect ×1".
fn op_mix(ops: &[&str]) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for op in ops {
        match counts.iter_mut().find(|(o, _)| o == op) {
            Some((_, n)) => *n += 1,
            None => counts.push((op, 1)),
        }
    }
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    counts
        .iter()
        .map(|(o, n)| format!("{o} ×{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn op_mix_counts_most_frequent_first() {
        let ops = [
            "skip_connect",
            "sep_conv_3x3",
            "max_pool_3x3",
            "sep_conv_3x3",
        ];
        assert_eq!(
            super::op_mix(&ops),
            "sep_conv_3x3 ×2, max_pool_3x3 ×1, skip_connect ×1"
        );
        assert_eq!(super::op_mix(&[]), "");
    }
}
