//! One search: supernet, architecture parameters, optimizers, data, and the NASP / DARTS steps.
//!
//! This file holds [`Search`] itself: construction, the host copy of A and the proximal
//! selection Ā, one step (the architecture step, then the weight step), the epoch bookkeeping,
//! and what the worker, the checkpoints and the bench may read. The rest, by concern:
//! `method` is what differs between NASP and DARTS (the one place that looks at the algorithm),
//! `nasp` the NASP architecture gradient and the weight gradients of Ā's ops, `darts` the DARTS
//! architecture gradients, `graph` the CUDA graph of the NASP architecture pass, `eval` the
//! evaluation, and `state` what a checkpoint saves and restores.

mod darts;
mod eval;
mod graph;
mod method;
mod nasp;
#[cfg(test)]
mod nb201_tests;
mod phases;
mod state;
#[cfg(test)]
mod tests;

use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use crate::arch::{ArchMatrix, Selection, derive_genotype, proximal, select_every_edge};
use crate::config::{Config, Precision};
use crate::engine::EngineError;
use crate::engine::device_data::{DeviceData, EpochPlan};
use crate::engine::nb201::Nb201Net;
use crate::engine::ops::BnMode;
use crate::engine::optim::{Adam, Sgd, clip_grad_norm};
use crate::engine::supernet::{ArchTrace, CellMix, Supernet, is_reduction};
use crate::genotype::Genotype;
use crate::protocol::ArchSnapshot;
use crate::rng::Rng;
use crate::space::OpLists;

pub use eval::Eval;
pub use state::{ResumePoint, SavedState, StateError, TensorFile};

use graph::GraphState;
use phases::PhaseClock;

pub use crate::engine::run::{Progress, StepOut};

/// The network a search trains: the DARTS-style supernet (spaces `darts`, `nasp`) or
/// NAS-Bench-201's (`nb201`).
pub(crate) enum Net {
    Darts(Supernet),
    Nb201(Nb201Net),
}

impl Net {
    /// Logits and every cell's node outputs; NB201 mixes its one cell type by `mix.normal`.
    fn forward_nodes(
        &self,
        x: &Tensor,
        mix: CellMix,
        mode: BnMode,
        grad_nodes: bool,
    ) -> (Tensor, Vec<Vec<Tensor>>) {
        match self {
            Net::Darts(n) => n.forward_nodes(x, mix, mode, grad_nodes),
            Net::Nb201(n) => n.forward_nodes(x, mix.normal, mode, grad_nodes),
        }
    }

    /// The DARTS-space architecture pass (see `Supernet::arch_pass`); NB201's gradient takes
    /// its own path (`Nb201Net::arch_grad`), so it has no trace here: an empty one.
    fn arch_pass(
        &self,
        x: &Tensor,
        w: &[Tensor; 2],
        sel: Option<&[Selection; 2]>,
        mode: BnMode,
    ) -> ArchTrace {
        match self {
            Net::Darts(n) => n.arch_pass(x, w, sel, mode),
            Net::Nb201(_) => ArchTrace::empty(),
        }
    }

    /// ∂L/∂Ā from a DARTS-space trace (see `Supernet::arch_grads`); zeros for NB201 (no trace).
    fn arch_grads(
        &self,
        trace: &ArchTrace,
        node_grads: &[Vec<Tensor>],
        cols: [i64; 2],
        rows: [i64; 2],
    ) -> [Tensor; 2] {
        match self {
            Net::Darts(n) => n.arch_grads(trace, node_grads, cols),
            Net::Nb201(_) => {
                [0, 1].map(|i| Tensor::zeros([rows[i], cols[i]], (Kind::Float, Device::Cpu)))
            }
        }
    }
}

/// The complete state of a search on one device. Its parts are private: the worker, the
/// checkpoints and the bench go through the methods below.
pub struct Search {
    cfg: Config,
    device: Device,
    vs: VarStore,
    net: Net,
    /// The candidate ops of normal and reduction cells (columns of A; NB201: no reduction).
    lists: OpLists,
    params: Vec<Tensor>,
    /// The VarStore name of each entry of `params` (keys the SGD buffers in checkpoints).
    param_names: Vec<String>,
    /// For each entry of `params` that belongs to a candidate op: (reduction cell?, edge, op).
    param_ops: Vec<Option<(bool, usize, usize)>>,
    sgd: Sgd,
    /// Architecture parameters (A for NASP, α for DARTS): normal, reduce.
    arch: [Tensor; 2],
    adam: Adam,
    /// Host copy of A, refreshed every NASP step and at logging time.
    host_arch: [ArchMatrix; 2],
    /// The current proximal selection Ā (normal, reduce), from `host_arch`.
    selection: [Selection; 2],
    data: Option<DeviceData>,
    plan: Option<EpochPlan>,
    progress: Progress,
    /// RNG state at the start of the current epoch (the plan is re-drawn from it on resume).
    epoch_rng: Rng,
    /// RNG for draws inside steps (ε-greedy), saved as is.
    step_rng: Rng,
    /// NASP's parameter burden per op of the normal cell (see `method::burden`).
    burden: Option<Tensor>,
    autocast: bool,
    /// Numerator of DARTS's finite-difference radius r = hvp_scale/‖v‖ (0.01 in the reference).
    hvp_scale: f64,
    /// The NASP architecture pass as a CUDA graph (see `graph`).
    graph: GraphState,
    /// What went wrong and was handled (a fallback), for the run's log: see `take_notices`.
    notices: Vec<String>,
    /// Ā uploaded right after the host read of A (when the device queue is empty), for the next
    /// architecture step; `None` means "make it from `selection` when needed".
    abar: Option<[Tensor; 2]>,
    /// Per-phase timing of the steps (`bench --phases`); `None` (no cost) otherwise.
    phases: Option<PhaseClock>,
}

/// Half-precision kinds widen to fp32 for losses; fp32/fp64 stay as they are.
fn wide(k: Kind) -> Kind {
    match k {
        Kind::Double => Kind::Double,
        _ => Kind::Float,
    }
}

/// Cross-entropy of logits against int64 labels (mean over the batch), in fp32.
fn cross_entropy(logits: &Tensor, y: &Tensor) -> Tensor {
    logits
        .to_kind(wide(logits.kind()))
        .log_softmax(-1, wide(logits.kind()))
        .nll_loss(y)
}

/// How many of the batch's predictions are right (a device scalar).
fn correct(logits: &Tensor, y: &Tensor) -> Tensor {
    logits.argmax(-1, false).eq_tensor(y).sum(Kind::Float)
}

/// An empty selection, until the first host read of A makes the real one.
fn no_selection() -> Selection {
    Selection {
        ops: vec![],
        kept: vec![],
    }
}

impl Search {
    /// Builds the supernet and architecture parameters for `cfg` on `device` (weights seeded by
    /// `cfg.seed`). `data` may be `None` for benchmarks that feed their own batches.
    pub fn new(
        cfg: &Config,
        device: Device,
        data: Option<DeviceData>,
    ) -> Result<Search, EngineError> {
        tch::manual_seed(cfg.seed as i64);
        let lists = cfg.model.op_lists();
        let vs = VarStore::new(device);
        let net = build_net(&vs, cfg, device)?;
        let (params, param_names) = named_parameters(&vs);
        let nb201 = cfg.model.space.is_nb201();
        let cells = cfg.model.cells;
        let param_ops = param_names
            .iter()
            .map(|n| nasp::op_of_param(n, |c| !nb201 && is_reduction(c, cells)))
            .collect();
        let sgd = Sgd::new(params.len(), cfg.train.momentum, cfg.train.weight_decay)
            .with_nesterov(cfg.train.nesterov);
        let arch = method::initial_arch(cfg, &lists, device);
        let adam = Adam::new(
            &arch,
            cfg.arch.lr,
            (cfg.arch.betas[0], cfg.arch.betas[1]),
            cfg.arch.weight_decay,
        );
        let mut s = Search {
            cfg: cfg.clone(),
            device,
            vs,
            net,
            lists: lists.clone(),
            params,
            param_names,
            param_ops,
            sgd,
            host_arch: [ArchMatrix::filled(0, 0, 0.0), ArchMatrix::filled(0, 0, 0.0)],
            selection: [no_selection(), no_selection()],
            arch,
            adam,
            data,
            plan: None,
            progress: Progress::default(),
            epoch_rng: Rng::new(cfg.seed),
            step_rng: Rng::new(cfg.seed ^ 0xA5A5_A5A5),
            burden: method::burden(cfg, &lists, device),
            autocast: cfg.precision == Precision::Bf16 && device.is_cuda(),
            abar: None,
            phases: None,
            hvp_scale: 0.01,
            graph: GraphState::default(),
            notices: Vec::new(),
        };
        s.refresh_host_arch();
        Ok(s)
    }

    /// The config this search runs (as resolved, with the device's speed switches).
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Where the search stands.
    pub fn progress(&self) -> Progress {
        self.progress
    }

    /// The candidate ops of normal and reduction cells (columns of A).
    pub fn op_lists(&self) -> &OpLists {
        &self.lists
    }

    /// The fallbacks and errors handled since the last call (for the run's log), oldest first.
    pub fn take_notices(&mut self) -> Vec<String> {
        let mut out = std::mem::take(&mut self.notices);
        out.append(&mut self.sgd.notices);
        out
    }

    /// Number of weight parameters (elements).
    pub fn param_count(&self) -> usize {
        self.params.iter().map(|p| p.numel()).sum()
    }

    /// Learning rate of the current epoch.
    pub fn lr(&self) -> f64 {
        self.cfg.lr_at_epoch(self.progress.epoch)
    }

    /// Steps in one epoch.
    pub fn steps_per_epoch(&self) -> usize {
        self.data
            .as_ref()
            .map_or(1, |d| d.n_train.div_ceil(self.cfg.train.batch_size))
    }

    /// Copies A to the host (one synchronisation) and recomputes Ā.
    fn refresh_host_arch(&mut self) {
        self.abar = None;
        self.read_host_arch();
        self.selection = [self.select(0), self.select(1)];
    }

    /// Copies A to the host without recomputing Ā.
    fn read_host_arch(&mut self) {
        let a = &self.arch;
        let flat = Tensor::cat(
            &[a[0].detach().reshape([-1]), a[1].detach().reshape([-1])],
            0,
        )
        .to_device(Device::Cpu);
        let flat = match Vec::<f32>::try_from(flat) {
            Ok(v) => v,
            Err(e) => {
                // The previous host copy (and selection) stays; say so in the run's log.
                self.notices.push(format!(
                    "cannot read the architecture parameters to the host ({e}); the selection stays as it was"
                ));
                return;
            }
        };
        let dims = |i: usize| {
            let s = self.arch[i].size();
            (s[0] as usize, s[1] as usize)
        };
        let ((r0, c0), (r1, c1)) = (dims(0), dims(1));
        let n0 = r0 * c0;
        if flat.len() < n0 + r1 * c1 {
            return;
        }
        self.host_arch = [
            ArchMatrix {
                rows: r0,
                cols: c0,
                data: flat[..n0].to_vec(),
            },
            ArchMatrix {
                rows: r1,
                cols: c1,
                data: flat[n0..n0 + r1 * c1].to_vec(),
            },
        ];
    }

    /// The proximal step for matrix `i` (with the optional ε-greedy draw).
    fn select(&mut self, i: usize) -> Selection {
        let m = &self.host_arch[i];
        let eps = self.cfg.arch.greedy;
        let random = if eps > 0.0 && self.step_rng.unit() < eps {
            Some(
                (0..m.rows)
                    .map(|_| self.step_rng.below(m.cols as u64) as usize)
                    .collect::<Vec<_>>(),
            )
        } else {
            None
        };
        if self.cfg.model.space.is_nb201() {
            select_every_edge(m, random.as_deref())
        } else {
            proximal(m, self.cfg.model.nodes, random.as_deref())
        }
    }

    /// The genotype of the host copy of A as last read, by the configured rule.
    pub fn genotype(&self) -> Genotype {
        if self.cfg.model.space.is_nb201() {
            // Either rule takes each edge's largest entry (softmax keeps the order), `none`
            // included, as the benchmark's own searches derive their cells.
            return Genotype::nb201(&crate::arch::nb201_cell(&self.host_arch[0]));
        }
        derive_genotype(
            &self.host_arch[0],
            &self.host_arch[1],
            &self.lists,
            self.cfg.model.nodes,
            self.cfg.arch.genotype_rule,
        )
    }

    /// The genotype of A as it is now (DARTS's host copy is read first; NASP's is current).
    pub fn current_genotype(&mut self) -> Genotype {
        self.sync_host_arch();
        self.genotype()
    }

    /// A, Ā and the genotype for the monitor, as they are now (see `current_genotype`).
    pub fn arch_snapshot(&mut self) -> ArchSnapshot {
        self.sync_host_arch();
        ArchSnapshot {
            global_step: self.progress.global_step,
            epoch: self.progress.epoch,
            normal: self.host_arch[0].clone(),
            reduce: self.host_arch[1].clone(),
            normal_selected: self.selection[0].ops.clone(),
            reduce_selected: self.selection[1].ops.clone(),
            genotype: self.genotype(),
            benchmark: self.benchmark_score().map(Box::new),
        }
    }

    /// In the nb201 space: what the benchmark says of the cell derived now, on the column of
    /// the data set searched (CIFAR-100 for a CIFAR-100 search, CIFAR-10 otherwise).
    pub fn benchmark_score(&self) -> Option<crate::protocol::BenchmarkScore> {
        let cell = self.genotype().nb201_cell()?;
        Some(crate::protocol::BenchmarkScore::of(
            &cell,
            self.cfg.data.dataset.nb201_column(),
        ))
    }

    fn forward(&self, x: &Tensor, mix: CellMix, train: bool) -> Tensor {
        tch::autocast(self.autocast, || match &self.net {
            Net::Darts(n) => n.forward(x, mix, train),
            Net::Nb201(n) => n.forward(x, mix.normal, BnMode::of(train)),
        })
    }

    /// Gradient step on the weights with the current architecture; returns (loss, #correct).
    fn weight_step(&mut self, x: &Tensor, y: &Tensor) -> (Tensor, Tensor) {
        let mixing = self.mixing();
        let logits = self.forward(x, mixing.cell_mix(&self.selection), true);
        let loss = cross_entropy(&logits, y);
        self.mark("weight step: forward");
        let mut grads = self.weight_grads(&loss);
        self.mark("weight step: backward");
        if self.cfg.train.grad_clip > 0.0 {
            clip_grad_norm(&mut grads, self.cfg.train.grad_clip, &mut self.notices);
        }
        let lr = self.lr();
        self.sgd.step(&self.params, &grads, lr);
        self.mark("weight step: clip + SGD");
        (loss.detach(), correct(&logits.detach(), y))
    }

    /// Times the phases of the steps from now on (`bench --phases`); `reset` forgets the times
    /// so far (after the warm-up).
    pub fn time_phases(&mut self, reset: bool) {
        match &mut self.phases {
            Some(c) if reset => c.reset(),
            Some(_) => {}
            None => self.phases = Some(PhaseClock::default()),
        }
    }

    /// Milliseconds per phase over the steps timed (see [`Search::time_phases`]).
    pub fn phase_times(&self) -> Vec<(String, f64)> {
        self.phases
            .as_ref()
            .map(PhaseClock::totals)
            .unwrap_or_default()
    }

    /// The time since the previous mark belongs to `phase` (when timing; on a GPU after waiting
    /// for the device).
    fn mark(&mut self, phase: &'static str) {
        if let Some(c) = &mut self.phases {
            if let Device::Cuda(i) = self.device {
                tch::Cuda::synchronize(i as i64);
            }
            c.mark(phase);
        }
    }

    /// One search step on explicit batches (train: xt, yt; architecture: xv, yv): the
    /// architecture step (Adam on A), then the weight step (SGD on w).
    pub fn step_on(&mut self, xt: &Tensor, yt: &Tensor, xv: &Tensor, yv: &Tensor) -> StepOut {
        if let Some(c) = &mut self.phases {
            c.start();
        }
        let arch_loss = self.arch_step_on(xt, yt, xv, yv);
        let (loss, correct) = self.weight_step(xt, yt);
        self.progress.global_step += 1;
        StepOut {
            loss,
            correct,
            count: yt.size()[0] as usize,
            arch_loss: Some(arch_loss),
        }
    }

    /// The architecture step alone (the first half of [`Search::step_on`]): the gradient of A
    /// (at Ā for NASP), Adam, and for NASP the clip to [0, 1] and the re-selection of Ā. The
    /// weights are left as they are. Returns the architecture loss (a device scalar).
    pub fn arch_step_on(&mut self, xt: &Tensor, yt: &Tensor, xv: &Tensor, yv: &Tensor) -> Tensor {
        self.arch_step_edited(xt, yt, xv, yv, |_| {})
    }

    /// [`Search::arch_step_on`] with `edit` applied to the gradient before Adam sees it (the
    /// planted-architecture check's own tests break the gradient with it, to show it can fail).
    pub(crate) fn arch_step_edited(
        &mut self,
        xt: &Tensor,
        yt: &Tensor,
        xv: &Tensor,
        yv: &Tensor,
        edit: impl FnOnce(&mut [Tensor; 2]),
    ) -> Tensor {
        let (mut grads, arch_loss) = self.arch_grad(xt, yt, xv, yv);
        edit(&mut grads);
        self.adam.step(&self.arch, &grads);
        self.mark("Adam on A");
        self.after_arch_step();
        self.mark("clip A, host read, proximal selection, upload of Ā");
        arch_loss
    }

    /// Sets A (normal, reduce; each edges × ops of this search) and re-selects Ā.
    pub fn set_arch(&mut self, normal: &ArchMatrix, reduce: &ArchMatrix) {
        for (a, m) in self.arch.iter().zip([normal, reduce]) {
            let t = Tensor::from_slice(&m.data)
                .view([m.rows as i64, m.cols as i64])
                .to_device(self.device);
            tch::no_grad(|| a.shallow_clone().copy_(&t));
        }
        self.refresh_host_arch();
    }

    /// The current proximal selection Ā (normal, reduce) of the host copy of A.
    pub fn selection(&self) -> &[Selection; 2] {
        &self.selection
    }

    /// Logits of the network of Ā alone (only the selected ops, weight 1) on `x`, without
    /// autograd, batch-norm by the batch's statistics (as in every pass of a step).
    pub fn selected_logits(&self, x: &Tensor) -> Tensor {
        tch::no_grad(|| self.forward(x, CellMix::sparse(&self.selection), true))
    }

    /// Multiplies the classifier's weight and bias by `factor`: the logits scale by `factor`
    /// and their argmax stays (the planted check's sharper teacher).
    pub fn scale_logits(&mut self, factor: f64) {
        for (name, t) in self.vs.variables() {
            if name.ends_with("classifier.weight") || name.ends_with("classifier.bias") {
                tch::no_grad(|| {
                    let _ = t.shallow_clone().g_mul_scalar_(factor);
                });
            }
        }
    }

    /// Makes this search's variables (weights and batch-norm statistics) copies of `from`'s
    /// (the same model config; A and the optimizers are left alone).
    pub fn copy_weights(&mut self, from: &Search) -> Result<(), EngineError> {
        self.vs
            .copy(&from.vs)
            .map_err(|e| EngineError::Native(format!("cannot copy the weights: {e}")))
    }

    /// Starts the current epoch afresh: its first step, and its plan drawn from `epoch_rng`.
    pub fn begin_epoch(&mut self) {
        self.progress.step_in_epoch = 0;
        self.prepare_plan();
    }

    /// Draws the plan of the current epoch unless it is drawn already (after a resume, it is
    /// drawn again from the saved `epoch_rng`: the same plan).
    pub fn ensure_plan(&mut self) {
        if self.plan.is_none() {
            self.prepare_plan();
        }
    }

    /// (Re)draws the plan of the current epoch from `epoch_rng`.
    fn prepare_plan(&mut self) {
        if let Some(d) = &self.data {
            let mut rng = self.epoch_rng.clone();
            self.plan = Some(d.plan_epoch(&mut rng, self.cfg.train.batch_size));
        }
    }

    /// Closes the epoch: advances the epoch RNG to the next epoch (the state a new plan starts
    /// from) and the counters to its start.
    pub fn end_epoch(&mut self) {
        if let Some(d) = &self.data {
            let mut rng = self.epoch_rng.clone();
            let _ = d.plan_epoch(&mut rng, self.cfg.train.batch_size);
            self.epoch_rng = rng;
        }
        self.progress.epoch += 1;
        self.progress.step_in_epoch = 0;
        self.plan = None;
    }

    /// One step of the current epoch from the data plan. `None` when the epoch is over.
    pub fn step(&mut self) -> Option<StepOut> {
        self.ensure_plan();
        let (plan, data) = (self.plan.as_ref()?, self.data.as_ref()?);
        if self.progress.step_in_epoch >= plan.steps {
            return None;
        }
        let (xt, yt) = data.train_batch(plan, self.progress.step_in_epoch);
        let (xv, yv) = data.valid_batch(plan, self.progress.step_in_epoch);
        let out = self.step_on(&xt, &yt, &xv, &yv);
        self.progress.step_in_epoch += 1;
        Some(out)
    }
}

#[cfg(test)]
impl Search {
    /// The DARTS-space supernet of a search built in such a space (tests only).
    pub(crate) fn supernet(&mut self) -> &mut Supernet {
        match &mut self.net {
            Net::Darts(n) => n,
            Net::Nb201(_) => panic!("not a DARTS-space search"),
        }
    }
}

/// The trainable variables of `vs` and the VarStore name of each.
fn named_parameters(vs: &VarStore) -> (Vec<Tensor>, Vec<String>) {
    let params = vs.trainable_variables();
    let named = vs.variables();
    let names = params
        .iter()
        .map(|p| {
            named
                .iter()
                .find(|(_, t)| t.data_ptr() == p.data_ptr())
                .map(|(k, _)| k.clone())
                .unwrap_or_default()
        })
        .collect();
    (params, names)
}

/// Builds the network of `cfg` under `vs`, weights drawn as `cfg.init` says, with the device's
/// speed switches.
fn build_net(vs: &VarStore, cfg: &Config, device: Device) -> Result<Net, EngineError> {
    let reference = cfg.init == crate::config::Init::Reference;
    let m = &cfg.model;
    if m.space.is_nb201() {
        // The benchmark's code draws its own way (PyTorch 1.x's defaults), not the DARTS
        // reference's PyTorch 0.3.1 draws.
        let n = Nb201Net::search(
            &(vs.root() / "net"),
            m.channels,
            m.cells,
            cfg.classes(),
            reference,
        )?;
        return Ok(Net::Nb201(n));
    }
    let mut net = Supernet::new(&(vs.root() / "net"), m, m.op_lists(), cfg.classes())?;
    if reference {
        crate::engine::init::apply_reference(vs);
    }
    if cfg.cudnn_batch_norm && device.is_cuda() {
        net.set_unit_affine_bn();
    }
    net.channels_last = cfg.channels_last_on(device.is_cuda());
    Ok(Net::Darts(net))
}

/// Builds the weight store of a DARTS-space supernet alone (for parameter counts and shapes).
pub fn build_supernet(cfg: &Config, device: Device) -> Result<(VarStore, Supernet), EngineError> {
    let vs = VarStore::new(device);
    let net = Supernet::new(
        &(vs.root() / "net"),
        &cfg.model,
        cfg.model.op_lists(),
        cfg.classes(),
    )?;
    Ok((vs, net))
}
