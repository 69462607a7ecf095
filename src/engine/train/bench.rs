//! `nasp-tui bench --train`: timed training steps of the evaluation network on one random
//! batch, with what the peer (`../shared/bench/peer_train.py`) does each step: cutout drawn
//! afresh, drop path at the full `evaluation.drop_path`, the auxiliary head, clipping, SGD.

use std::time::Instant;

use tch::{Device, Kind, Tensor};

use super::Trainer;
use super::data::cutout_keep;
use crate::config::Config;
use crate::engine::EngineError;
use crate::engine::bench::{BenchResult, GpuPeak, sync};
use crate::genotype::Genotype;

/// Runs `warmup` + `steps` training steps of `g`'s network at `cfg`'s sizes.
pub fn run(
    cfg: &Config,
    g: &Genotype,
    device: Device,
    steps: usize,
    warmup: usize,
) -> Result<BenchResult, EngineError> {
    let mut t = Trainer::new(cfg, g, device, None)?;
    t.set_drop_prob(cfg.evaluation.drop_path);
    tch::manual_seed(0);
    let (b, hw) = (cfg.train.batch_size as i64, cfg.data.image_size);
    let x0 = Tensor::randn([b, 3, hw, hw], (Kind::Float, device));
    let y = Tensor::randint(10, [b], (Kind::Int64, device));
    let cut = cfg.evaluation.cutout * hw / 32;
    let mut gpu = GpuPeak::open(device);
    let mut times = Vec::with_capacity(steps);
    for i in 0..warmup + steps {
        sync(device);
        let t0 = Instant::now();
        let x = if cut > 0 {
            let cy = Tensor::randint(hw, [b], (Kind::Int64, device));
            let cx = Tensor::randint(hw, [b], (Kind::Int64, device));
            &x0 * cutout_keep(&cy, &cx, hw, cut).unsqueeze(1)
        } else {
            x0.shallow_clone()
        };
        let out = t.step_on(&x, &y);
        let _ = out.loss.double_value(&[]);
        sync(device);
        if i >= warmup {
            times.push(t0.elapsed().as_secs_f64() * 1000.0);
        }
        gpu.sample();
    }
    times.sort_by(f64::total_cmp);
    let median = times.get(times.len() / 2).copied().unwrap_or(f64::NAN);
    Ok(BenchResult {
        algorithm: "train".into(),
        device: format!("{device:?}").to_lowercase(),
        steps,
        ms_median: median,
        ms_min: times.first().copied().unwrap_or(f64::NAN),
        images_per_s: b as f64 * 1000.0 / median,
        peak_rss_mb: crate::gpu::peak_rss_bytes().unwrap_or(0) as f64 / 1048576.0,
        peak_gpu_mb: gpu.peak_mb,
        profile: None,
        phases: Vec::new(),
        notes: t.take_notices(),
    })
}
