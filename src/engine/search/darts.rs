//! The DARTS architecture gradients (spec §2.4): first order (∇_α of the validation loss at the
//! current weights) and second order (through a virtual SGD step, with the Hessian-vector
//! product by finite differences, as the reference `architect.py`).

use tch::Tensor;

use super::{Search, cross_entropy, wide};
use crate::engine::supernet::CellMix;

/// Each variable's saved copy and the variable itself.
type Saved = Vec<(Tensor, Tensor)>;

impl Search {
    /// softmax(α) of both cells (DARTS mixing weights).
    pub(super) fn softmax_weights(&self, detach: bool) -> [Tensor; 2] {
        let f = |t: &Tensor| {
            let s = t.softmax(-1, t.kind());
            if detach { s.detach() } else { s }
        };
        [f(&self.arch[0]), f(&self.arch[1])]
    }

    /// Cross-entropy with every op of every edge mixed by `w` (train-mode BN).
    pub(super) fn dense_loss(&self, w: &[Tensor; 2], x: &Tensor, y: &Tensor) -> Tensor {
        let mix = CellMix::dense(w);
        cross_entropy(&self.forward(x, mix, true), y)
    }

    /// ∇_α of the DARTS validation loss (first order) and the loss.
    pub(super) fn darts1_arch_grad(&self, x: &Tensor, y: &Tensor) -> ([Tensor; 2], Tensor) {
        let w = self.softmax_weights(false);
        let loss = self.dense_loss(&w, x, y);
        let g = Tensor::run_backward(&[&loss], &[&self.arch[0], &self.arch[1]], false, false);
        ([g[0].shallow_clone(), g[1].shallow_clone()], loss.detach())
    }

    /// A copy of every variable (weights and batch-norm statistics), by name order.
    fn snapshot_vars(&self) -> Saved {
        let mut v: Vec<(String, Tensor)> = self.vs.variables().into_iter().collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        tch::no_grad(|| v.into_iter().map(|(_, t)| (t.copy(), t)).collect())
    }

    fn restore_vars(saved: &[(Tensor, Tensor)]) {
        tch::no_grad(|| {
            for (copy, var) in saved {
                let mut var = var.shallow_clone();
                var.copy_(copy);
            }
        });
    }

    /// ∇_α of the DARTS second-order objective (spec §2.4) and the unrolled validation loss.
    pub(super) fn darts2_arch_grad(
        &self,
        xt: &Tensor,
        yt: &Tensor,
        xv: &Tensor,
        yv: &Tensor,
    ) -> ([Tensor; 2], Tensor) {
        let eta = self.lr();
        let saved = self.snapshot_vars();
        // 1. Virtual step w' = w − η(μ·m + g + λ·w) on the train batch (no clipping).
        self.virtual_step(xt, yt, eta);
        // The virtual step's forward ran on the real model: its BN statistics stay (the reference
        // keeps them); only the unrolled pass's are discarded below.
        let bn_after_virtual: Saved = tch::no_grad(|| {
            saved
                .iter()
                .filter(|(_, v)| !v.requires_grad())
                .map(|(_, v)| (v.copy(), v.shallow_clone()))
                .collect()
        });
        // 2. Unrolled validation loss: dα and v = ∇_w' L_val(w', α).
        let w = self.softmax_weights(false);
        let loss_v = self.dense_loss(&w, xv, yv);
        let mut inputs: Vec<&Tensor> = vec![&self.arch[0], &self.arch[1]];
        inputs.extend(self.params.iter());
        let grads = Tensor::run_backward(&[&loss_v], &inputs, false, false);
        let (dalpha, v) = (&grads[..2], &grads[2..]);
        // The unrolled copy's weights and BN statistics are discarded.
        Search::restore_vars(&saved);
        Search::restore_vars(&bn_after_virtual);
        // 3. Finite-difference Hessian-vector product on the train batch, r = 0.01/‖v‖.
        let (gp, gm, r) = self.hessian_vector_terms(v, xt, yt);
        // Put w back exactly (the ±r·v round trip is not bit-exact); keep the BN statistics the
        // two finite-difference passes updated, as the reference does.
        tch::no_grad(|| {
            for (copy, var) in &saved {
                if var.requires_grad() {
                    let mut var = var.shallow_clone();
                    var.copy_(copy);
                }
            }
        });
        let out = [0, 1].map(|i| &dalpha[i] - (&gp[i] - &gm[i]) / (&r * 2.0) * eta);
        (out, loss_v.detach())
    }

    /// The virtual SGD step w ← w − η(μ·m + g + λ·w) on (xt, yt), in place (no clipping).
    fn virtual_step(&self, xt: &Tensor, yt: &Tensor, eta: f64) {
        let (mu, lambda) = (self.cfg.train.momentum, self.cfg.train.weight_decay);
        let loss_t = self.dense_loss(&self.softmax_weights(true), xt, yt);
        let g = Tensor::run_backward(&[&loss_t], &self.params, false, false);
        tch::no_grad(|| {
            for (i, (p, g)) in self.params.iter().zip(&g).enumerate() {
                if g.defined() {
                    let m = self.sgd.buffer_or_zeros(i, p);
                    let upd = (m * mu + g + p * lambda) * eta;
                    let mut p = p.shallow_clone();
                    let _ = p.g_sub_(&upd);
                }
            }
        });
    }

    /// ∇_α L_train at w + r·v and at w − r·v, and r = hvp_scale/‖v‖. Moves the weights by ±r·v
    /// and back (not bit-exactly: the caller restores them).
    fn hessian_vector_terms(
        &self,
        v: &[Tensor],
        xt: &Tensor,
        yt: &Tensor,
    ) -> (Vec<Tensor>, Vec<Tensor>, Tensor) {
        let sq: Vec<Tensor> = v
            .iter()
            .filter(|t| t.defined())
            .map(|t| t.square().sum(wide(t.kind())))
            .collect();
        let r = self.hvp_scale / (Tensor::stack(&sq, 0).sum(sq[0].kind()).sqrt() + 1e-12);
        let shift = |scale: f64| {
            tch::no_grad(|| {
                for (p, vi) in self.params.iter().zip(v) {
                    if vi.defined() {
                        let mut p = p.shallow_clone();
                        let _ = p.g_add_(&(vi * &r * scale));
                    }
                }
            })
        };
        let alpha_grad = || {
            let loss = self.dense_loss(&self.softmax_weights(false), xt, yt);
            Tensor::run_backward(&[&loss], &[&self.arch[0], &self.arch[1]], false, false)
        };
        shift(1.0);
        let gp = alpha_grad();
        shift(-2.0);
        let gm = alpha_grad();
        shift(1.0);
        (gp, gm, r)
    }
}
