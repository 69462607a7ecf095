//! What differs between NASP and DARTS, in one place: the only code that looks at the
//! configured algorithm. NASP keeps A in the box [0, 1] on the host as well, takes its gradient
//! at the proximal selection Ā and trains only Ā's ops; DARTS mixes every op by softmax(α) and
//! differentiates through all of them (first order, or second order through a virtual step).

use tch::{Device, Kind, Tensor};

use super::Search;
use crate::arch::{Selection, num_edges};
use crate::config::{Algorithm, Config};
use crate::engine::supernet::CellMix;
use crate::space::OpLists;

/// A's start (normal, reduce; edges × ops, requiring grad): NASP's `arch.init` everywhere,
/// DARTS's α drawn from N(0, `arch.init_std`²) by libtorch's generator (after the weights).
///
/// The tie rule of the nb201 space: there `none` is the first op and every edge is kept, so
/// an all-equal A would select `none` on every edge (a cell without a path from input to
/// output). NASP's A starts at `arch.init` plus `arch.init_std`·N(0, 1) drawn from the seed
/// (clipped to [0, 1]), the small random start the benchmark's own DARTS uses for α: each
/// edge starts on an op of its own draw. The reduction matrix of nb201 has no rows.
pub(super) fn initial_arch(cfg: &Config, lists: &OpLists, device: Device) -> [Tensor; 2] {
    let nb201 = cfg.model.space.is_nb201();
    let rows = |reduce: bool| -> i64 {
        match (nb201, reduce) {
            (true, false) => crate::nb201::EDGES.len() as i64,
            (true, true) => 0,
            (false, _) => num_edges(cfg.model.nodes) as i64,
        }
    };
    let make = |k: usize, reduce: bool| -> Tensor {
        let shape = [rows(reduce), k as i64];
        let cpu = (Kind::Float, Device::Cpu);
        let t = match cfg.algorithm {
            Algorithm::Nasp if nb201 => {
                (Tensor::randn(shape, cpu) * cfg.arch.init_std + cfg.arch.init).clamp(0.0, 1.0)
            }
            Algorithm::Nasp => Tensor::full(shape, cfg.arch.init, cpu),
            Algorithm::Darts1 | Algorithm::Darts2 => Tensor::randn(shape, cpu) * cfg.arch.init_std,
        };
        t.to_device(device).set_requires_grad(true)
    };
    [
        make(lists.normal.len(), false),
        make(lists.reduce.len(), true),
    ]
}

/// NASP's parameter burden with `arch.l2` > 0: each op's share of the weights at C = 12 (spec
/// §3.8), a 1 × ops row for the normal cell. `None` otherwise.
pub(super) fn burden(cfg: &Config, lists: &OpLists, device: Device) -> Option<Tensor> {
    (cfg.algorithm == Algorithm::Nasp && cfg.arch.l2 > 0.0).then(|| {
        let p: Vec<f64> = lists
            .normal
            .iter()
            .map(|n| crate::space::lookup(n).map_or(0, |o| o.kind.params(12)) as f64)
            .collect();
        let total: f64 = p.iter().sum::<f64>().max(1.0);
        let b: Vec<f32> = p.iter().map(|v| (v / total) as f32).collect();
        Tensor::from_slice(&b).view([1, -1]).to_device(device)
    })
}

/// How the weight step and evaluation mix the candidate ops of each edge.
pub(super) enum Mixing {
    /// Only the ops of Ā's selection (NASP).
    Selected,
    /// Every op, weighted by softmax(α) (DARTS), detached.
    Softmax([Tensor; 2]),
}

impl Mixing {
    /// The mixture of both cells, with the selection `sel` in force.
    pub(super) fn cell_mix<'a>(&'a self, sel: &'a [Selection; 2]) -> CellMix<'a> {
        match self {
            Mixing::Selected => CellMix::sparse(sel),
            Mixing::Softmax(w) => CellMix::dense(w),
        }
    }
}

impl Search {
    /// Whether this is NASP's proximal search: A lives in the box [0, 1], its host copy and Ā
    /// are refreshed every step, and Ā alone decides the weight step and evaluation.
    pub fn proximal(&self) -> bool {
        self.cfg.algorithm == Algorithm::Nasp
    }

    /// The architecture gradient of one step (normal, reduce) and the architecture loss.
    pub(super) fn arch_grad(
        &mut self,
        xt: &Tensor,
        yt: &Tensor,
        xv: &Tensor,
        yv: &Tensor,
    ) -> ([Tensor; 2], Tensor) {
        let out = match self.cfg.algorithm {
            Algorithm::Nasp => self.nasp_arch_grad(xv, yv, false),
            Algorithm::Darts1 => self.darts1_arch_grad(xv, yv),
            Algorithm::Darts2 => self.darts2_arch_grad(xt, yt, xv, yv),
        };
        self.mark("arch: gradient (rest)");
        out
    }

    /// After Adam's step on A. NASP: prox_C2 (the box [0, 1]), then the host reads A for the
    /// next proximal selection and uploads the new Ā. DARTS: nothing.
    pub(super) fn after_arch_step(&mut self) {
        if !self.proximal() {
            return;
        }
        tch::no_grad(|| {
            for a in &self.arch {
                let mut a = a.shallow_clone();
                let _ = a.clamp_(0.0, 1.0);
            }
        });
        self.refresh_host_arch();
        // Upload the next Ā now, while the device queue is empty: a copy from pageable host
        // memory behind queued work would wait for that work (a second synchronisation).
        self.abar = Some(self.selection_tensors());
    }

    /// ∂loss/∂w for every parameter: NASP asks autograd only for those of Ā's ops (see
    /// `selected_weight_grads`), DARTS for all.
    pub(super) fn weight_grads(&self, loss: &Tensor) -> Vec<Tensor> {
        if self.proximal() {
            self.selected_weight_grads(loss)
        } else {
            Tensor::run_backward(&[loss], &self.params, false, false)
        }
    }

    /// How the weight step and evaluation mix the ops now.
    pub(super) fn mixing(&self) -> Mixing {
        if self.proximal() {
            Mixing::Selected
        } else {
            Mixing::Softmax(self.softmax_weights(true))
        }
    }

    /// Brings the host copy of A (and Ā) up to date where the steps do not keep it so: DARTS
    /// reads α only when asked (evaluation, the monitor, an export).
    pub(super) fn sync_host_arch(&mut self) {
        if !self.proximal() {
            self.refresh_host_arch();
        }
    }
}
