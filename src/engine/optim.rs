//! Hand-written optimizers whose whole state is plain tensors (so checkpoints can save it and a
//! resumed run continues exactly).

use tch::Tensor;

use crate::engine::{EngineError, native};

/// SGD with momentum (no dampening; Nesterov's form when `nesterov`) and coupled weight decay,
/// as PyTorch's.
/// A parameter whose gradient is undefined this step is left alone entirely: no decay, no
/// momentum drift (NASP's unselected ops).
pub struct Sgd {
    pub momentum: f64,
    pub weight_decay: f64,
    /// Nesterov momentum: the update is d + μ·buf instead of buf (NAS-Bench-201's setting).
    pub nesterov: bool,
    /// One buffer per parameter, created the first time that parameter gets a gradient.
    pub buffers: Vec<Option<Tensor>>,
    /// What went wrong in a step and was handled, for the run's log (see `Search::take_notices`).
    pub notices: Vec<String>,
}

impl Sgd {
    pub fn new(n: usize, momentum: f64, weight_decay: f64) -> Self {
        Sgd {
            momentum,
            weight_decay,
            nesterov: false,
            buffers: (0..n).map(|_| None).collect(),
            notices: Vec::new(),
        }
    }

    /// The same with Nesterov momentum on or off.
    pub fn with_nesterov(mut self, on: bool) -> Self {
        self.nesterov = on;
        self
    }

    /// One step with learning rate `lr`; `grads[i]` may be undefined. All defined parameters
    /// are updated in a few multi-tensor launches.
    pub fn step(&mut self, params: &[Tensor], grads: &[Tensor], lr: f64) {
        // Parameters seen before (momentum buffer exists) and those seen for the first time.
        let mut seen: [Vec<&Tensor>; 3] = [vec![], vec![], vec![]];
        let mut fresh: [Vec<&Tensor>; 3] = [vec![], vec![], vec![]];
        for ((p, g), buf) in params.iter().zip(grads).zip(self.buffers.iter_mut()) {
            if !g.defined() {
                continue;
            }
            let list = if buf.is_some() { &mut seen } else { &mut fresh };
            let b = buf.get_or_insert_with(|| tch::no_grad(|| p.zeros_like()));
            list[0].push(p);
            list[1].push(g);
            list[2].push(b);
        }
        for (lists, first) in [(seen, false), (fresh, true)] {
            if lists[0].is_empty() {
                continue;
            }
            let (wd, mu, nesterov) = (self.weight_decay, self.momentum, self.nesterov);
            let r = native::sgd_step(&lists, wd, mu, lr, first, nesterov);
            match r {
                Ok(()) => {}
                // Some parameters may already be updated: applying it again would be wrong.
                Err(EngineError::Native(e)) if e.starts_with("partial update") => {
                    self.notices.push(format!("SGD step failed midway ({e})"));
                }
                Err(e) => {
                    if let Some(text) = report_fallback(&e.to_string()) {
                        self.notices.push(text);
                    }
                    sgd_reference(&lists, [wd, mu, lr], first, nesterov);
                }
            }
        }
    }

    /// The momentum buffer that step `step` would read for `i` (zeros when none exists yet).
    pub fn buffer_or_zeros(&self, i: usize, like: &Tensor) -> Tensor {
        match &self.buffers[i] {
            Some(b) => b.shallow_clone(),
            None => like.zeros_like(),
        }
    }
}

/// The SGD update one tensor at a time (the multi-tensor kernels' fallback and test reference).
fn sgd_reference(lists: &[Vec<&Tensor>; 3], [wd, mu, lr]: [f64; 3], first: bool, nesterov: bool) {
    tch::no_grad(|| {
        for ((p, g), b) in lists[0].iter().zip(&lists[1]).zip(&lists[2]) {
            let d = if wd != 0.0 {
                *g + *p * wd
            } else {
                g.shallow_clone()
            };
            let mut b = b.shallow_clone();
            if first {
                b.copy_(&d);
            } else {
                let _ = b.g_mul_scalar_(mu).g_add_(&d);
            }
            let mut p = p.shallow_clone();
            if nesterov {
                let _ = p.g_sub_(&((d + b * mu) * lr));
            } else {
                let _ = p.g_sub_(&(b * lr));
            }
        }
    });
}

/// Set when the per-tensor fallback ran (the tests check it never does).
static FALLBACK_USED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Records that the per-tensor path is used; the message to log, the first time only.
fn report_fallback(e: &str) -> Option<String> {
    let before = FALLBACK_USED.swap(true, std::sync::atomic::Ordering::Relaxed);
    (!before)
        .then(|| format!("multi-tensor optimizer kernels failed ({e}); using per-tensor updates"))
}

/// Scales the defined gradients so that their global L2 norm is at most `max_norm` (computed on
/// the device, no host synchronisation). Returns the norm as a 0-d tensor; a fallback to the
/// per-tensor path is said in `notices` (the first time).
pub fn clip_grad_norm(
    grads: &mut [Tensor],
    max_norm: f64,
    notices: &mut Vec<String>,
) -> Option<Tensor> {
    let defined: Vec<&Tensor> = grads.iter().filter(|g| g.defined()).collect();
    if defined.is_empty() {
        return None;
    }
    match native::clip_grad_norm(&defined, max_norm) {
        Ok(total) => Some(total),
        Err(e) => {
            notices.extend(report_fallback(&e.to_string()));
            Some(clip_reference(grads, max_norm))
        }
    }
}

/// Gradient clipping one tensor at a time (fallback and test reference).
fn clip_reference(grads: &mut [Tensor], max_norm: f64) -> Tensor {
    let sq: Vec<Tensor> = grads
        .iter()
        .filter(|g| g.defined())
        .map(|g| g.square().sum(g.kind()))
        .collect();
    let total = Tensor::stack(&sq, 0).sum(tch::Kind::Float).sqrt();
    let coef = (max_norm / (&total + 1e-6)).clamp_max(1.0);
    for g in grads.iter_mut().filter(|g| g.defined()) {
        let _ = g.g_mul_(&coef);
    }
    total
}

/// Adam with coupled (L2) weight decay, as PyTorch's `Adam(weight_decay=…)`.
pub struct Adam {
    pub lr: f64,
    pub betas: (f64, f64),
    pub eps: f64,
    pub weight_decay: f64,
    pub m: Vec<Tensor>,
    pub v: Vec<Tensor>,
    pub t: u64,
}

impl Adam {
    pub fn new(params: &[Tensor], lr: f64, betas: (f64, f64), weight_decay: f64) -> Self {
        Adam {
            lr,
            betas,
            eps: 1e-8,
            weight_decay,
            m: params.iter().map(|p| p.zeros_like().detach()).collect(),
            v: params.iter().map(|p| p.zeros_like().detach()).collect(),
            t: 0,
        }
    }

    pub fn step(&mut self, params: &[Tensor], grads: &[Tensor]) {
        self.t += 1;
        let (b1, b2) = self.betas;
        let bc1 = 1.0 - b1.powi(self.t as i32);
        let bc2 = 1.0 - b2.powi(self.t as i32);
        tch::no_grad(|| {
            for (i, (p, g)) in params.iter().zip(grads).enumerate() {
                if !g.defined() {
                    continue;
                }
                let g = if self.weight_decay != 0.0 {
                    g + p * self.weight_decay
                } else {
                    g.shallow_clone()
                };
                let _ = self.m[i].g_mul_scalar_(b1).g_add_(&(&g * (1.0 - b1)));
                let _ = self.v[i]
                    .g_mul_scalar_(b2)
                    .g_add_(&(g.square() * (1.0 - b2)));
                let denom = (&self.v[i] / bc2).sqrt() + self.eps;
                let update = (&self.m[i] / bc1) / denom * self.lr;
                let mut p = p.shallow_clone();
                let _ = p.g_sub_(&update);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sgd_matches_pytorch_formula_and_skips_undefined() {
        let p = Tensor::from_slice(&[1.0f32, -2.0]);
        let q = Tensor::from_slice(&[3.0f32]);
        let mut sgd = Sgd::new(2, 0.9, 0.1);
        let g = Tensor::from_slice(&[0.5f32, 0.5]);
        sgd.step(
            &[p.shallow_clone(), q.shallow_clone()],
            &[g.shallow_clone(), Tensor::new()],
            0.1,
        );
        // d = g + 0.1 p = [0.6, 0.3]; p -= 0.1 d
        assert!((p.double_value(&[0]) - 0.94).abs() < 1e-6);
        assert!((p.double_value(&[1]) + 2.03).abs() < 1e-6);
        assert_eq!(q.double_value(&[0]), 3.0);
        sgd.step(
            &[p.shallow_clone(), q.shallow_clone()],
            &[g.shallow_clone(), Tensor::new()],
            0.1,
        );
        // buf = 0.9*0.6 + (0.5 + 0.094) = 1.134; p = 0.94 - 0.1134
        assert!((p.double_value(&[0]) - 0.8266).abs() < 1e-6);
        assert!(sgd.buffers[1].is_none());
    }

    /// Nesterov's form, as PyTorch's `SGD(nesterov=True)`: the update is d + μ·buf.
    #[test]
    fn sgd_nesterov_matches_pytorch_formula() {
        let p = Tensor::from_slice(&[1.0f32]);
        let mut sgd = Sgd::new(1, 0.9, 0.1).with_nesterov(true);
        let g = Tensor::from_slice(&[0.5f32]);
        sgd.step(&[p.shallow_clone()], &[g.shallow_clone()], 0.1);
        // d = 0.6, buf = 0.6, p = 1 − 0.1·(0.6 + 0.54) = 0.886
        assert!((p.double_value(&[0]) - 0.886).abs() < 1e-6);
        sgd.step(&[p.shallow_clone()], &[g.shallow_clone()], 0.1);
        // d = 0.5 + 0.0886 = 0.5886, buf = 0.54 + 0.5886 = 1.1286,
        // p = 0.886 − 0.1·(0.5886 + 1.01574) = 0.7255660
        assert!((p.double_value(&[0]) - 0.725_566).abs() < 1e-6);
    }

    /// The multi-tensor kernels against the per-tensor reference, over three steps (the first
    /// creates the momentum buffers), with clipping in between.
    #[test]
    fn multi_tensor_kernels_match_the_per_tensor_reference() {
        let _rng = crate::engine::test_rng_lock();
        tch::manual_seed(3);
        let shapes: [&[i64]; 4] = [&[4, 3, 3, 3], &[7], &[2, 5], &[1]];
        let make = || -> Vec<Tensor> {
            shapes
                .iter()
                .map(|s| Tensor::randn(*s, (tch::Kind::Float, tch::Device::Cpu)))
                .collect()
        };
        for nesterov in [false, true] {
            let p0 = make();
            let fast: Vec<Tensor> = p0.iter().map(|t| t.copy()).collect();
            let slow: Vec<Tensor> = p0.iter().map(|t| t.copy()).collect();
            let mut sgd = Sgd::new(fast.len(), 0.9, 3e-4).with_nesterov(nesterov);
            let mut bufs: Vec<Tensor> = fast.iter().map(|t| t.zeros_like()).collect();
            for step in 0..3 {
                let g = make();
                let mut g_fast: Vec<Tensor> = g.iter().map(|t| t.copy()).collect();
                let mut g_slow: Vec<Tensor> = g.iter().map(|t| t.copy()).collect();
                let n_fast = clip_grad_norm(&mut g_fast, 1.5, &mut vec![]).unwrap();
                let n_slow = clip_reference(&mut g_slow, 1.5);
                assert!((n_fast.double_value(&[]) - n_slow.double_value(&[])).abs() < 1e-4);
                sgd.step(&fast, &g_fast, 0.05);
                let lists = [
                    slow.iter().collect::<Vec<_>>(),
                    g_slow.iter().collect::<Vec<_>>(),
                    bufs.iter_mut().map(|b| &*b).collect::<Vec<_>>(),
                ];
                sgd_reference(&lists, [3e-4, 0.9, 0.05], step == 0, nesterov);
                for (a, b) in fast.iter().zip(&slow) {
                    let d = (a - b).abs().max().double_value(&[]);
                    assert!(d < 1e-6, "step {step}: {d}");
                }
                let moved = (&fast[0] - &p0[0]).abs().max().double_value(&[]);
                assert!(moved > 1e-3);
            }
        }
        assert!(!FALLBACK_USED.load(std::sync::atomic::Ordering::Relaxed));
    }

    #[test]
    fn adam_first_step_moves_by_lr() {
        let p = Tensor::from_slice(&[0.5f32, 0.5]);
        let mut adam = Adam::new(&[p.shallow_clone()], 0.01, (0.5, 0.999), 0.0);
        adam.step(&[p.shallow_clone()], &[Tensor::from_slice(&[1.0f32, -3.0])]);
        assert!((p.double_value(&[0]) - 0.49).abs() < 1e-6);
        assert!((p.double_value(&[1]) - 0.51).abs() < 1e-6);
        assert_eq!(adam.t, 1);
    }

    /// Adam's weight decay is coupled L2 (added to the gradient, as PyTorch's `Adam`, not
    /// AdamW): three steps against the formula in f64. Dropping the decay, or decoupling it
    /// (`p -= lr·wd·p` beside the update), fails; so does a missing bias correction.
    #[test]
    fn adam_weight_decay_is_coupled_l2() {
        let (lr, b1, b2, wd, eps) = (0.01, 0.5, 0.999, 0.3, 1e-8);
        let start = [1.0f64, -0.5, 0.2];
        let grads = [[0.05f64, -0.02, 0.4], [-0.1, 0.03, 0.2], [0.02, 0.01, -0.3]];
        let p = Tensor::from_slice(&start).set_requires_grad(false);
        let mut adam = Adam::new(&[p.shallow_clone()], lr, (b1, b2), wd);
        let (mut want, mut m, mut v) = (start, [0.0f64; 3], [0.0f64; 3]);
        for (t, g) in grads.iter().enumerate() {
            adam.step(&[p.shallow_clone()], &[Tensor::from_slice(g)]);
            let t = t as i32 + 1;
            for j in 0..3 {
                let gj = g[j] + wd * want[j];
                m[j] = b1 * m[j] + (1.0 - b1) * gj;
                v[j] = b2 * v[j] + (1.0 - b2) * gj * gj;
                let mh = m[j] / (1.0 - b1.powi(t));
                let vh = v[j] / (1.0 - b2.powi(t));
                want[j] -= lr * mh / (vh.sqrt() + eps);
            }
            let got = Vec::<f64>::try_from(&p).unwrap();
            for j in 0..3 {
                assert!(
                    (got[j] - want[j]).abs() < 1e-12,
                    "step {t}: {got:?} vs {want:?}"
                );
            }
        }
        // The decay matters here: without it the first entry ends elsewhere.
        let q = Tensor::from_slice(&start);
        let mut plain = Adam::new(&[q.shallow_clone()], lr, (b1, b2), 0.0);
        for g in &grads {
            plain.step(&[q.shallow_clone()], &[Tensor::from_slice(g)]);
        }
        let q = Vec::<f64>::try_from(&q).unwrap();
        assert!((q[0] - want[0]).abs() > 1e-4, "{q:?} vs {want:?}");
    }

    #[test]
    fn clip_scales_to_max_norm() {
        let mut g = vec![
            Tensor::from_slice(&[3.0f32]),
            Tensor::new(),
            Tensor::from_slice(&[4.0f32]),
        ];
        let n = clip_grad_norm(&mut g, 1.0, &mut vec![]).unwrap();
        assert!((n.double_value(&[]) - 5.0).abs() < 1e-6);
        assert!((g[0].double_value(&[0]) - 0.6).abs() < 1e-5);
        assert!((g[2].double_value(&[0]) - 0.8).abs() < 1e-5);
    }
}
