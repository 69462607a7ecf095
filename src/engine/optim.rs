//! Hand-written optimizers whose whole state is plain tensors (so checkpoints can save it and a
//! resumed run continues exactly).

use tch::Tensor;

/// SGD with momentum (no dampening, no Nesterov) and coupled weight decay, as PyTorch's.
/// A parameter whose gradient is undefined this step is left alone entirely: no decay, no
/// momentum drift (NASP's unselected ops).
pub struct Sgd {
    pub momentum: f64,
    pub weight_decay: f64,
    /// One buffer per parameter, created the first time that parameter gets a gradient.
    pub buffers: Vec<Option<Tensor>>,
}

impl Sgd {
    pub fn new(n: usize, momentum: f64, weight_decay: f64) -> Self {
        Sgd {
            momentum,
            weight_decay,
            buffers: (0..n).map(|_| None).collect(),
        }
    }

    /// One step with learning rate `lr`; `grads[i]` may be undefined.
    pub fn step(&mut self, params: &[Tensor], grads: &[Tensor], lr: f64) {
        tch::no_grad(|| {
            for ((p, g), buf) in params.iter().zip(grads).zip(self.buffers.iter_mut()) {
                if !g.defined() {
                    continue;
                }
                let d = if self.weight_decay != 0.0 {
                    g + p * self.weight_decay
                } else {
                    g.shallow_clone()
                };
                let step = match buf {
                    Some(b) => {
                        let _ = b.g_mul_scalar_(self.momentum).g_add_(&d);
                        b.shallow_clone()
                    }
                    None => {
                        let b = d.detach().copy();
                        *buf = Some(b.shallow_clone());
                        b
                    }
                };
                let mut p = p.shallow_clone();
                let _ = p.g_sub_(&(step * lr));
            }
        });
    }

    /// The momentum buffer that step `step` would read for `i` (zeros when none exists yet).
    pub fn buffer_or_zeros(&self, i: usize, like: &Tensor) -> Tensor {
        match &self.buffers[i] {
            Some(b) => b.shallow_clone(),
            None => like.zeros_like(),
        }
    }
}

/// Scales the defined gradients so that their global L2 norm is at most `max_norm` (computed on
/// the device, no host synchronisation). Returns the norm as a 0-d tensor.
pub fn clip_grad_norm(grads: &mut [Tensor], max_norm: f64) -> Option<Tensor> {
    let defined: Vec<&Tensor> = grads.iter().filter(|g| g.defined()).collect();
    if defined.is_empty() {
        return None;
    }
    let sq: Vec<Tensor> = defined.iter().map(|g| g.square().sum(g.kind())).collect();
    let total = Tensor::stack(&sq, 0).sum(tch::Kind::Float).sqrt();
    let coef = (max_norm / (&total + 1e-6)).clamp_max(1.0);
    for g in grads.iter_mut().filter(|g| g.defined()) {
        let _ = g.g_mul_(&coef);
    }
    Some(total)
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

    #[test]
    fn adam_first_step_moves_by_lr() {
        let p = Tensor::from_slice(&[0.5f32, 0.5]);
        let mut adam = Adam::new(&[p.shallow_clone()], 0.01, (0.5, 0.999), 0.0);
        adam.step(&[p.shallow_clone()], &[Tensor::from_slice(&[1.0f32, -3.0])]);
        assert!((p.double_value(&[0]) - 0.49).abs() < 1e-6);
        assert!((p.double_value(&[1]) - 0.51).abs() < 1e-6);
        assert_eq!(adam.t, 1);
    }

    #[test]
    fn clip_scales_to_max_norm() {
        let mut g = vec![
            Tensor::from_slice(&[3.0f32]),
            Tensor::new(),
            Tensor::from_slice(&[4.0f32]),
        ];
        let n = clip_grad_norm(&mut g, 1.0).unwrap();
        assert!((n.double_value(&[]) - 5.0).abs() < 1e-6);
        assert!((g[0].double_value(&[0]) - 0.6).abs() < 1e-5);
        assert!((g[2].double_value(&[0]) - 0.8).abs() < 1e-5);
    }
}
