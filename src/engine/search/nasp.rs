//! The NASP architecture gradient (spec §2.3): the fast path (one all-ops pass without
//! autograd, one sparse pass through Ā's ops with it, and their products) and the reference path
//! (autograd through every op); and the weight gradients of only the ops Ā selects.

use tch::{Kind, Tensor};

use super::Net;
use super::{Search, cross_entropy};
use crate::engine::ops::BnMode;
use crate::engine::supernet::CellMix;

impl Search {
    /// Ā of both cells as 0/1 tensors on the device (leaves that require grad).
    pub(super) fn selection_tensors(&self) -> [Tensor; 2] {
        let make = |i: usize| {
            let m = self.selection[i].to_matrix(self.host_arch[i].cols);
            Tensor::from_slice(&m.data)
                .view([m.rows as i64, m.cols as i64])
                .to_device(self.device)
                .set_requires_grad(true)
        };
        [make(0), make(1)]
    }

    /// The reference NASP architecture loss at Ā on (x, y): every op of every edge mixed by Ā
    /// with autograd through all of them (slow; used to check the fast path).
    pub(super) fn nasp_arch_loss(&self, abar: &[Tensor; 2], x: &Tensor, y: &Tensor) -> Tensor {
        let logits = self.forward(x, CellMix::dense(abar), true);
        cross_entropy(&logits, y) + self.burden_loss(abar)
    }

    /// The parameter-burden term `l2 · Σ Ā²·b` of the normal cell (0 without one).
    fn burden_loss(&self, abar: &[Tensor; 2]) -> Tensor {
        match &self.burden {
            Some(b) => (abar[0].square() * b).sum(Kind::Float) * self.cfg.arch.l2,
            None => Tensor::zeros([], (Kind::Float, self.device)),
        }
    }

    /// Gradient of the NASP architecture loss w.r.t. Ā (normal, reduce) and the loss.
    ///
    /// Fast path: ∂L/∂Ā[e,k] = ⟨∂L/∂node(e), o_k(x_e)⟩. One pass without autograd runs every op
    /// (fused per source state) and records batch-norm statistics; a second pass through only
    /// the selected ops (batch statistics, nothing recorded) gives ∂L/∂node by autograd; the
    /// products of the two finish it. `full_graph` instead back-propagates through every op (the
    /// reference behaviour).
    pub(super) fn nasp_arch_grad(
        &mut self,
        x: &Tensor,
        y: &Tensor,
        full_graph: bool,
    ) -> ([Tensor; 2], Tensor) {
        // Ā was uploaded at the end of the previous step, while the queue was empty.
        let abar = self.abar.take().unwrap_or_else(|| self.selection_tensors());
        if full_graph {
            let loss = self.nasp_arch_loss(&abar, x, y);
            let g = Tensor::run_backward(&[&loss], &[&abar[0], &abar[1]], false, false);
            return ([g[0].shallow_clone(), g[1].shallow_clone()], loss.detach());
        }
        if matches!(self.net, Net::Nb201(_)) {
            return self.nb201_arch_grad(x, y, &abar);
        }
        let trace = self.arch_trace(x, &abar);
        self.mark("arch: all-ops pass (no autograd)");
        let (logits, nodes) = tch::autocast(self.autocast, || {
            self.net
                .forward_nodes(x, CellMix::sparse(&self.selection), BnMode::BatchOnly, true)
        });
        // The sparse pass's loss is the architecture loss (same values as the all-ops pass: Ā
        // is one-hot on kept edges, both normalise by the batch's statistics).
        let ce = cross_entropy(&logits, y);
        self.mark("arch: sparse pass forward");
        let node_grads = node_grads(&ce, &nodes);
        self.mark("arch: sparse pass backward");
        self.join_arch_pass();
        let cols = [abar[0].size()[1], abar[1].size()[1]];
        let rows = [abar[0].size()[0], abar[1].size()[0]];
        let mut grads = self.net.arch_grads(&trace, &node_grads, cols, rows);
        let loss = tch::no_grad(|| ce.detach() + self.burden_loss(&abar));
        if let Some(b) = &self.burden {
            grads[0] = &grads[0] + &abar[0].detach() * b * (2.0 * self.cfg.arch.l2);
        }
        self.mark("arch: products and burden");
        (grads, loss)
    }

    /// NASP's architecture gradient in the NB201 space (one cell type, every edge kept): the
    /// pass through Ā's ops with autograd first (batch statistics, nothing recorded) for
    /// ∂L/∂node, then the all-ops pass without autograd forms the products as it goes (and
    /// records the batch-norm statistics). The reduction matrix has no rows.
    fn nb201_arch_grad(
        &mut self,
        x: &Tensor,
        y: &Tensor,
        abar: &[Tensor; 2],
    ) -> ([Tensor; 2], Tensor) {
        let sel = self.selection[0].clone();
        // The pass through Ā's ops records the batch-norm statistics of what it runs; the
        // products' pass records those of the ops it does not select.
        let traced = self
            .nb201_net()
            .map(|net| tch::autocast(self.autocast, || net.forward_traced(x, &sel, BnMode::Train)));
        let Some((logits, traces)) = traced else {
            let zero = Tensor::zeros([], (Kind::Float, self.device));
            return ([abar[0].zeros_like(), abar[1].zeros_like()], zero);
        };
        let ce = cross_entropy(&logits, y);
        self.mark("arch: sparse pass forward");
        let nodes: Vec<Vec<Tensor>> = traces
            .iter()
            .map(|t| t.states[1..].iter().map(Tensor::shallow_clone).collect())
            .collect();
        let grads = node_grads(&ce, &nodes);
        self.mark("arch: sparse pass backward");
        let g = self.nb201_net().map_or_else(
            || abar[0].zeros_like(),
            |net| {
                tch::autocast(self.autocast, || {
                    net.arch_grad(&traces, &sel, &grads, BnMode::Train)
                })
            },
        );
        self.mark("arch: the other ops and the products (no autograd)");
        let mut g = g.to_kind(abar[0].kind());
        let loss = tch::no_grad(|| ce.detach() + self.burden_loss(abar));
        if let Some(b) = &self.burden {
            g = &g + &abar[0].detach() * b * (2.0 * self.cfg.arch.l2);
        }
        ([g, abar[1].detach().zeros_like()], loss)
    }

    fn nb201_net(&self) -> Option<&crate::engine::nb201::Nb201Net> {
        match &self.net {
            Net::Nb201(n) => Some(n),
            Net::Darts(_) => None,
        }
    }

    /// ∂loss/∂w under NASP: autograd is asked only for the parameters outside the candidate ops
    /// and those of the ops Ā selects; the others get an undefined gradient (SGD leaves them
    /// alone) without being handed to autograd at all.
    pub(super) fn selected_weight_grads(&self, loss: &Tensor) -> Vec<Tensor> {
        let used: Vec<usize> = (0..self.params.len())
            .filter(|&i| match self.param_ops[i] {
                None => true,
                Some((red, e, k)) => self.selection[usize::from(red)].ops.get(e) == Some(&Some(k)),
            })
            .collect();
        let inputs: Vec<&Tensor> = used.iter().map(|&i| &self.params[i]).collect();
        let got = Tensor::run_backward(&[loss], &inputs, false, false);
        let mut grads: Vec<Tensor> = (0..self.params.len()).map(|_| Tensor::new()).collect();
        for (i, g) in used.into_iter().zip(got) {
            grads[i] = g;
        }
        grads
    }
}

/// ∂`loss`/∂node for every node of every cell; a node the loss does not depend on gets zeros.
fn node_grads(loss: &Tensor, nodes: &[Vec<Tensor>]) -> Vec<Vec<Tensor>> {
    let flat: Vec<&Tensor> = nodes.iter().flatten().collect();
    let g = Tensor::run_backward(&[loss], &flat, false, false);
    let mut g = g.into_iter();
    nodes
        .iter()
        .map(|cell| {
            cell.iter()
                .map(|n| match g.next() {
                    Some(t) if t.defined() => t,
                    _ => n.zeros_like(),
                })
                .collect()
        })
        .collect()
}

/// `net.cells.<c>.edges.<e>.<k>.…` → (whether cell c is a reduction cell, e, k).
pub(super) fn op_of_param(
    name: &str,
    reduction: impl Fn(usize) -> bool,
) -> Option<(bool, usize, usize)> {
    let rest = name.strip_prefix("net.cells.")?;
    let mut parts = rest.split('.');
    let c: usize = parts.next()?.parse().ok()?;
    if parts.next()? != "edges" {
        return None;
    }
    let e = parts.next()?.parse().ok()?;
    let k = parts.next()?.parse().ok()?;
    Some((reduction(c), e, k))
}
