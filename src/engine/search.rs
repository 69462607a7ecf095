//! One search: supernet, architecture parameters, optimizers, data, and the NASP / DARTS steps.

use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use crate::arch::{ArchMatrix, Selection, derive_genotype, num_edges, proximal};
use crate::config::{Algorithm, Config, Precision};
use crate::engine::EngineError;
use crate::engine::device_data::{DeviceData, EpochPlan};
use crate::engine::native::CudaGraph;
use crate::engine::optim::{Adam, Sgd, clip_grad_norm};
use crate::engine::supernet::{ArchTrace, CellMix, Supernet};
use crate::genotype::Genotype;
use crate::rng::Rng;

/// Eager architecture passes on the graph's side stream before it is captured.
const GRAPH_WARMUP: usize = 2;

/// A captured architecture pass: its static inputs and outputs, and the graph (dropped last).
struct CapturedPass {
    x: Tensor,
    abar: [Tensor; 2],
    trace: ArchTrace,
    graph: CudaGraph,
    /// The CUDA device it runs on.
    device: usize,
}

impl Drop for CapturedPass {
    /// A replay may still be running on the side stream (e.g. after a panic between the replay
    /// and the join): wait for the device before its tensors and the graph are freed.
    fn drop(&mut self) {
        sync_quietly(self.device);
    }
}

/// Waits for CUDA device `device`; a CUDA error (tch panics on one) is ignored: this runs while
/// tearing down, possibly during another panic's unwinding.
fn sync_quietly(device: usize) {
    let _ = std::panic::catch_unwind(|| tch::Cuda::synchronize(device as i64));
}

/// Where the CUDA graph of the architecture pass stands.
#[derive(Default)]
struct GraphState {
    /// Turned off after a failure.
    off: bool,
    /// Eager warm-up passes done so far, and the graph they ran on (before the capture).
    warm: usize,
    side: Option<CudaGraph>,
    captured: Option<CapturedPass>,
    /// A replay was queued on the side stream and the main stream has not waited for it yet:
    /// its outputs must not be read before [`Search::join_arch_pass`].
    unjoined: bool,
    /// Replays so far (kept when graphs are turned off, for the bench's report).
    replays: u64,
}

impl GraphState {
    /// Replays the captured pass on its side stream, after the work queued so far on the main
    /// stream, and goes back to the main stream without waiting: the sparse pass that follows
    /// runs beside it (until `Search::join_arch_pass`).
    fn replay_captured(&mut self) -> Result<(), EngineError> {
        let Some(c) = &self.captured else {
            return Err(EngineError::Graph("replay before a capture".into()));
        };
        c.graph.enter()?;
        let replayed = c.graph.replay();
        let left = c.graph.leave();
        replayed.and(left)?;
        self.unjoined = true;
        self.replays += 1;
        Ok(())
    }
}

/// Images per forward pass in evaluation (at least the training batch).
const EVAL_CHUNK: usize = 512;

/// Figures of one step, as device tensors (read on the host only at the logging rate).
pub struct StepOut {
    pub loss: Tensor,
    pub correct: Tensor,
    pub count: usize,
    pub arch_loss: Tensor,
}

/// Mean loss and accuracy over a set of batches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Eval {
    pub loss: f64,
    pub acc: f64,
}

/// The complete state of a search on one device.
pub struct Search {
    pub cfg: Config,
    pub device: Device,
    pub vs: VarStore,
    pub net: Supernet,
    pub params: Vec<Tensor>,
    /// The VarStore name of each entry of `params` (keys the SGD buffers in checkpoints).
    pub param_names: Vec<String>,
    /// For each entry of `params` that belongs to a candidate op: (reduction cell?, edge, op).
    param_ops: Vec<Option<(bool, usize, usize)>>,
    pub sgd: Sgd,
    /// Architecture parameters (A for NASP, α for DARTS): normal, reduce.
    pub arch: [Tensor; 2],
    pub adam: Adam,
    /// Host copy of A, refreshed every NASP step and at logging time.
    pub host_arch: [ArchMatrix; 2],
    /// The current proximal selection Ā (normal, reduce), from `host_arch`.
    pub selection: [Selection; 2],
    pub data: Option<DeviceData>,
    pub plan: Option<EpochPlan>,
    pub epoch: usize,
    pub step_in_epoch: usize,
    pub global_step: u64,
    /// RNG state at the start of the current epoch (the plan is re-drawn from it on resume).
    pub epoch_rng: Rng,
    /// RNG for draws inside steps (ε-greedy), saved as is.
    pub step_rng: Rng,
    burden: Option<Tensor>,
    autocast: bool,
    /// Numerator of DARTS's finite-difference radius r = hvp_scale/‖v‖ (0.01 in the reference).
    pub hvp_scale: f64,
    /// The NASP architecture pass as a CUDA graph (see `arch_trace`).
    graph: GraphState,
    /// What went wrong and was handled (a fallback), for the run's log: see `take_notices`.
    notices: Vec<String>,
    /// Ā uploaded right after the host read of A (when the device queue is empty), for the next
    /// architecture step; `None` means "make it from `selection` when needed".
    abar: Option<[Tensor; 2]>,
}

/// Half-precision kinds widen to fp32 for losses; fp32/fp64 stay as they are.
fn wide(k: Kind) -> Kind {
    match k {
        Kind::Double => Kind::Double,
        _ => Kind::Float,
    }
}

/// Cross-entropy of logits against int64 labels (mean over the batch), in fp32.
pub fn cross_entropy(logits: &Tensor, y: &Tensor) -> Tensor {
    logits
        .to_kind(wide(logits.kind()))
        .log_softmax(-1, wide(logits.kind()))
        .nll_loss(y)
}

fn correct(logits: &Tensor, y: &Tensor) -> Tensor {
    logits.argmax(-1, false).eq_tensor(y).sum(Kind::Float)
}

impl Drop for Search {
    /// A replay of the architecture pass not yet waited for (a step that panicked half-way)
    /// reads and writes the weights and batch-norm buffers: wait for it before any are freed.
    fn drop(&mut self) {
        if let (true, Device::Cuda(i)) = (self.graph.unjoined, self.device) {
            sync_quietly(i);
        }
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
        let mut net = Supernet::new(&(vs.root() / "net"), &cfg.model, lists.clone(), 10)?;
        if cfg.cudnn_batch_norm && device.is_cuda() {
            net.set_unit_affine_bn();
        }
        net.channels_last = cfg.channels_last_on(device.is_cuda());
        let params = vs.trainable_variables();
        let named = vs.variables();
        let param_names: Vec<String> = params
            .iter()
            .map(|p| {
                named
                    .iter()
                    .find(|(_, t)| t.data_ptr() == p.data_ptr())
                    .map(|(k, _)| k.clone())
                    .unwrap_or_default()
            })
            .collect();
        let param_ops = param_names
            .iter()
            .map(|n| op_of_param(n, cfg.model.cells))
            .collect();
        let sgd = Sgd::new(params.len(), cfg.train.momentum, cfg.train.weight_decay);
        let e = num_edges(cfg.model.nodes) as i64;
        let make = |k: usize| -> Tensor {
            let t = match cfg.algorithm {
                Algorithm::Nasp => {
                    Tensor::full([e, k as i64], cfg.arch.init, (Kind::Float, Device::Cpu))
                }
                Algorithm::Darts1 | Algorithm::Darts2 => {
                    Tensor::randn([e, k as i64], (Kind::Float, Device::Cpu)) * cfg.arch.init_std
                }
            };
            t.to_device(device).set_requires_grad(true)
        };
        let arch = [make(lists.normal.len()), make(lists.reduce.len())];
        let adam = Adam::new(
            &arch,
            cfg.arch.lr,
            (cfg.arch.betas[0], cfg.arch.betas[1]),
            cfg.arch.weight_decay,
        );
        let burden = (cfg.algorithm == Algorithm::Nasp && cfg.arch.l2 > 0.0).then(|| {
            // NASP's burden: each op's share of the weights at C = 12 (spec §3.8).
            let p: Vec<f64> = lists
                .normal
                .iter()
                .map(|n| crate::space::lookup(n).map_or(0, |o| o.kind.params(12)) as f64)
                .collect();
            let total: f64 = p.iter().sum::<f64>().max(1.0);
            let b: Vec<f32> = p.iter().map(|v| (v / total) as f32).collect();
            Tensor::from_slice(&b).view([1, -1]).to_device(device)
        });
        let autocast = cfg.precision == Precision::Bf16 && device.is_cuda();
        let mut s = Search {
            cfg: cfg.clone(),
            device,
            vs,
            net,
            params,
            param_names,
            param_ops,
            sgd,
            host_arch: [ArchMatrix::filled(0, 0, 0.0), ArchMatrix::filled(0, 0, 0.0)],
            selection: [
                Selection {
                    ops: vec![],
                    kept: vec![],
                },
                Selection {
                    ops: vec![],
                    kept: vec![],
                },
            ],
            arch,
            adam,
            data,
            plan: None,
            epoch: 0,
            step_in_epoch: 0,
            global_step: 0,
            epoch_rng: Rng::new(cfg.seed),
            step_rng: Rng::new(cfg.seed ^ 0xA5A5_A5A5),
            burden,
            autocast,
            abar: None,
            hvp_scale: 0.01,
            graph: GraphState::default(),
            notices: Vec::new(),
        };
        s.refresh_host_arch();
        Ok(s)
    }

    /// The fallbacks and errors handled since the last call (for the run's log), oldest first.
    pub fn take_notices(&mut self) -> Vec<String> {
        let mut out = std::mem::take(&mut self.notices);
        out.append(&mut self.sgd.notices);
        out
    }

    /// How many steps replayed the captured architecture pass (`cuda_graphs`).
    pub fn graph_replays(&self) -> u64 {
        self.graph.replays
    }

    /// Number of weight parameters (elements).
    pub fn param_count(&self) -> usize {
        self.params.iter().map(|p| p.numel()).sum()
    }

    /// Copies A to the host (one synchronisation) and recomputes Ā.
    pub fn refresh_host_arch(&mut self) {
        self.abar = None;
        self.read_host_arch();
        self.selection = [self.select(0), self.select(1)];
    }

    /// Forgets the uploaded Ā (after `selection` was replaced from outside, e.g. on resume).
    pub fn clear_cached_selection(&mut self) {
        self.abar = None;
    }

    /// Copies A to the host without recomputing Ā.
    pub fn read_host_arch(&mut self) {
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
        let (r, c0, c1) = (
            self.arch[0].size()[0] as usize,
            self.arch[0].size()[1] as usize,
            self.arch[1].size()[1] as usize,
        );
        if flat.len() < r * (c0 + c1) {
            return;
        }
        self.host_arch = [
            ArchMatrix {
                rows: r,
                cols: c0,
                data: flat[..r * c0].to_vec(),
            },
            ArchMatrix {
                rows: r,
                cols: c1,
                data: flat[r * c0..r * (c0 + c1)].to_vec(),
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
        proximal(m, self.cfg.model.nodes, random.as_deref())
    }

    /// The genotype of the current architecture, by the configured rule.
    pub fn genotype(&self) -> Genotype {
        derive_genotype(
            &self.host_arch[0],
            &self.host_arch[1],
            &self.net.lists,
            self.cfg.model.nodes,
            self.cfg.arch.genotype_rule,
        )
    }

    /// Learning rate of the current epoch.
    pub fn lr(&self) -> f64 {
        self.cfg.lr_at_epoch(self.epoch)
    }

    /// Steps in one epoch.
    pub fn steps_per_epoch(&self) -> usize {
        self.data
            .as_ref()
            .map_or(1, |d| d.n_train.div_ceil(self.cfg.train.batch_size))
    }

    fn forward(&self, x: &Tensor, mix: CellMix, train: bool) -> Tensor {
        tch::autocast(self.autocast, || self.net.forward(x, mix, train))
    }

    /// Ā of both cells as 0/1 tensors on the device (leaves that require grad).
    fn selection_tensors(&self) -> [Tensor; 2] {
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
    pub fn nasp_arch_loss(&self, abar: &[Tensor; 2], x: &Tensor, y: &Tensor) -> Tensor {
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
    pub fn nasp_arch_grad(
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
        let trace = self.arch_trace(x, &abar);
        let (logits, nodes) = tch::autocast(self.autocast, || {
            self.net.forward_nodes(
                x,
                CellMix::sparse(&self.selection),
                crate::engine::ops::BnMode::BatchOnly,
                true,
            )
        });
        let flat: Vec<&Tensor> = nodes.iter().flatten().collect();
        // The sparse pass's loss is the architecture loss (same values as the all-ops pass: Ā
        // is one-hot on kept edges, both normalise by the batch's statistics).
        let ce = cross_entropy(&logits, y);
        let g = Tensor::run_backward(&[&ce], &flat, false, false);
        let mut g = g.into_iter();
        let node_grads: Vec<Vec<Tensor>> = nodes
            .iter()
            .map(|cell| {
                cell.iter()
                    .map(|n| match g.next() {
                        Some(t) if t.defined() => t,
                        _ => n.zeros_like(),
                    })
                    .collect()
            })
            .collect();
        self.join_arch_pass();
        let cols = [abar[0].size()[1], abar[1].size()[1]];
        let mut grads = self.net.arch_grads(&trace, &node_grads, cols);
        let loss = tch::no_grad(|| ce.detach() + self.burden_loss(&abar));
        if let Some(b) = &self.burden {
            grads[0] = &grads[0] + &abar[0].detach() * b * (2.0 * self.cfg.arch.l2);
        }
        (grads, loss)
    }

    /// The architecture pass run now; `select`: mix by the host's selection (eager) rather than
    /// by Ā as data (what a CUDA graph records).
    fn arch_pass_eager(&self, x: &Tensor, abar: &[Tensor; 2], select: bool) -> ArchTrace {
        let sel = select.then_some(&self.selection);
        tch::autocast(self.autocast, || {
            self.net
                .arch_pass(x, abar, sel, crate::engine::ops::BnMode::Train)
        })
    }

    /// The architecture pass at Ā on `x`. On a GPU with `cuda_graphs = true` the first
    /// steps run eagerly on a side stream (cuDNN's autotuning and per-stream set-up happen
    /// there), the next is captured as a CUDA graph, and later steps with the same batch shape
    /// copy their inputs into the graph's and replay it: one launch instead of thousands. The
    /// replay runs on the side stream beside the sparse pass that follows on the main stream
    /// (both only read the weights; the main stream waits for it before reading its outputs,
    /// `join_arch_pass`). Any failure turns graphs off for the run (said once in the run's log)
    /// and the pass runs eagerly.
    fn arch_trace(&mut self, x: &Tensor, abar: &[Tensor; 2]) -> ArchTrace {
        let Device::Cuda(index) = self.device else {
            return self.arch_pass_eager(x, abar, true);
        };
        // A replay of the previous step not waited for (a step that panicked half-way): wait now,
        // before its inputs are overwritten.
        self.join_arch_pass();
        if !self.cfg.cuda_graphs || self.graph.off {
            return self.arch_pass_eager(x, abar, true);
        }
        match self.arch_trace_graph(index, x, abar) {
            Ok(Some(t)) => t,
            Ok(None) => self.arch_pass_eager(x, abar, true),
            Err(e) => {
                self.graphs_off(format!(
                    "CUDA graph of the architecture pass failed ({e}); running it eagerly"
                ));
                self.arch_pass_eager(x, abar, true)
            }
        }
    }

    /// Makes the main stream wait for a replayed architecture pass (see `arch_trace`). If that
    /// fails, waits for the whole device instead and runs later passes eagerly.
    fn join_arch_pass(&mut self) {
        if !std::mem::take(&mut self.graph.unjoined) {
            return;
        }
        let joined = match &self.graph.captured {
            Some(c) => c.graph.join(),
            None => Err(EngineError::Graph("the captured graph is gone".into())),
        };
        if let Err(e) = joined {
            self.graphs_off(format!(
                "CUDA graph of the architecture pass: cannot wait for it ({e}); running it eagerly from now on"
            ));
        }
    }

    /// Turns CUDA graphs off for the rest of the run, saying `why` in the run's log. Waits for
    /// the device first: the side stream may still run work on what is freed here.
    fn graphs_off(&mut self, why: String) {
        self.notices.push(why);
        if let Device::Cuda(i) = self.device {
            sync_quietly(i);
        }
        self.graph = GraphState {
            off: true,
            replays: self.graph.replays,
            ..GraphState::default()
        };
    }

    /// The Ā-weighted pass (what the graph records) with a libtorch error turned into `Err`
    /// instead of a panic, so that the caller can leave the side stream and fall back.
    fn guarded_pass(&self, x: &Tensor, abar: &[Tensor; 2]) -> Result<ArchTrace, EngineError> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.arch_pass_eager(x, abar, false)
        }))
        .map_err(|p| {
            EngineError::Graph(
                p.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "the architecture pass panicked".into()),
            )
        })
    }

    /// The graph path of `arch_trace`; `Ok(None)`: run eagerly on the default stream.
    fn arch_trace_graph(
        &mut self,
        index: usize,
        x: &Tensor,
        abar: &[Tensor; 2],
    ) -> Result<Option<ArchTrace>, EngineError> {
        if let Some(c) = &self.graph.captured {
            if c.x.size() != x.size() {
                // E.g. an epoch's last, smaller batch.
                return Ok(None);
            }
            tch::no_grad(|| {
                c.x.shallow_clone().copy_(x);
                for (dst, src) in c.abar.iter().zip(abar) {
                    dst.shallow_clone().copy_(src);
                }
            });
            let trace = c.trace.shallow_clone();
            self.graph.replay_captured()?;
            return Ok(Some(trace));
        }
        if self.graph.side.is_none() {
            self.graph.side = Some(CudaGraph::new(index)?);
        }
        let Some(graph) = self.graph.side.take() else {
            return Ok(None);
        };
        graph.enter()?;
        if self.graph.warm < GRAPH_WARMUP {
            let t = self.guarded_pass(x, abar);
            graph.exit()?;
            self.graph.warm += 1;
            self.graph.side = Some(graph);
            return t.map(Some);
        }
        // Static inputs (allocated before the capture), the capture (recorded, not run), and a
        // first replay that does this step's work.
        let xs = x.copy();
        let ab = [abar[0].detach().copy(), abar[1].detach().copy()];
        let captured = graph.capture_begin().and_then(|()| {
            let t = self.guarded_pass(&xs, &ab);
            // End the capture even when the pass failed, so the stream is usable again.
            let ended = graph.capture_end();
            let t = t?;
            ended.map(|()| t)
        });
        let exited = graph.exit();
        let trace = captured?;
        exited?;
        let out = trace.shallow_clone();
        self.graph.captured = Some(CapturedPass {
            x: xs,
            abar: ab,
            trace,
            graph,
            device: index,
        });
        self.graph.replay_captured()?;
        Ok(Some(out))
    }

    /// softmax(α) of both cells (DARTS mixing weights).
    pub fn softmax_weights(&self, detach: bool) -> [Tensor; 2] {
        let f = |t: &Tensor| {
            let s = t.softmax(-1, t.kind());
            if detach { s.detach() } else { s }
        };
        [f(&self.arch[0]), f(&self.arch[1])]
    }

    /// Cross-entropy with every op of every edge mixed by `w` (train-mode BN).
    pub fn dense_loss(&self, w: &[Tensor; 2], x: &Tensor, y: &Tensor) -> Tensor {
        let mix = CellMix::dense(w);
        cross_entropy(&self.forward(x, mix, true), y)
    }

    /// ∇_α of the DARTS validation loss (first order) and the loss.
    pub fn darts1_arch_grad(&self, x: &Tensor, y: &Tensor) -> ([Tensor; 2], Tensor) {
        let w = self.softmax_weights(false);
        let loss = self.dense_loss(&w, x, y);
        let g = Tensor::run_backward(&[&loss], &[&self.arch[0], &self.arch[1]], false, false);
        ([g[0].shallow_clone(), g[1].shallow_clone()], loss.detach())
    }

    fn snapshot_vars(&self) -> Vec<(Tensor, Tensor)> {
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
    pub fn darts2_arch_grad(
        &self,
        xt: &Tensor,
        yt: &Tensor,
        xv: &Tensor,
        yv: &Tensor,
    ) -> ([Tensor; 2], Tensor) {
        let eta = self.lr();
        let (mu, lambda) = (self.cfg.train.momentum, self.cfg.train.weight_decay);
        let saved = self.snapshot_vars();
        // 1. Virtual step w' = w − η(μ·m + g + λ·w) on the train batch (no clipping).
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
        // The virtual step's forward ran on the real model: its BN statistics stay (the reference
        // keeps them); only the unrolled pass's are discarded below.
        let bn_after_virtual: Vec<(Tensor, Tensor)> = tch::no_grad(|| {
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
        let alpha_grad = |s: &Search| {
            let loss = s.dense_loss(&s.softmax_weights(false), xt, yt);
            Tensor::run_backward(&[&loss], &[&s.arch[0], &s.arch[1]], false, false)
        };
        shift(1.0);
        let gp = alpha_grad(self);
        shift(-2.0);
        let gm = alpha_grad(self);
        shift(1.0);
        // Put w back exactly (the ±r·v round trip is not bit-exact); keep the BN statistics the
        // two finite-difference passes updated, as the reference does.
        tch::no_grad(|| {
            for ((copy, var), _) in saved.iter().zip(0..) {
                if var.requires_grad() {
                    let mut var = var.shallow_clone();
                    var.copy_(copy);
                }
            }
        });
        let out = [0, 1].map(|i| &dalpha[i] - (&gp[i] - &gm[i]) / (&r * 2.0) * eta);
        (out, loss_v.detach())
    }

    /// ∂loss/∂w for every parameter; under NASP only the ops Ā selects take part, and the others
    /// get an undefined gradient without being handed to autograd at all.
    fn weight_grads(&self, loss: &Tensor) -> Vec<Tensor> {
        if self.cfg.algorithm != Algorithm::Nasp {
            return Tensor::run_backward(&[loss], &self.params, false, false);
        }
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

    /// Gradient step on the weights with the current architecture; returns (loss, #correct).
    fn weight_step(&mut self, x: &Tensor, y: &Tensor) -> (Tensor, Tensor) {
        let logits = match self.cfg.algorithm {
            Algorithm::Nasp => {
                let mix = CellMix::sparse(&self.selection);
                self.forward(x, mix, true)
            }
            Algorithm::Darts1 | Algorithm::Darts2 => {
                let w = self.softmax_weights(true);
                let mix = CellMix::dense(&w);
                self.forward(x, mix, true)
            }
        };
        let loss = cross_entropy(&logits, y);
        let mut grads = self.weight_grads(&loss);
        clip_grad_norm(&mut grads, self.cfg.train.grad_clip, &mut self.notices);
        let lr = self.lr();
        self.sgd.step(&self.params, &grads, lr);
        (loss.detach(), correct(&logits.detach(), y))
    }

    /// One search step on explicit batches (train: xt, yt; architecture: xv, yv).
    pub fn step_on(&mut self, xt: &Tensor, yt: &Tensor, xv: &Tensor, yv: &Tensor) -> StepOut {
        let (grads, arch_loss) = match self.cfg.algorithm {
            Algorithm::Nasp => self.nasp_arch_grad(xv, yv, false),
            Algorithm::Darts1 => self.darts1_arch_grad(xv, yv),
            Algorithm::Darts2 => self.darts2_arch_grad(xt, yt, xv, yv),
        };
        self.adam.step(&self.arch, &grads);
        if self.cfg.algorithm == Algorithm::Nasp {
            // prox_C2: the box [0, 1]; then the host needs A for the next proximal selection.
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
        let (loss, correct) = self.weight_step(xt, yt);
        self.global_step += 1;
        StepOut {
            loss,
            correct,
            count: yt.size()[0] as usize,
            arch_loss,
        }
    }

    /// Starts epoch `self.epoch`: records the RNG state and draws the epoch plan.
    pub fn begin_epoch(&mut self) {
        self.step_in_epoch = 0;
        self.prepare_plan();
    }

    /// (Re)draws the plan of the current epoch from `epoch_rng` (used after a resume too).
    pub fn prepare_plan(&mut self) {
        if let Some(d) = &self.data {
            let mut rng = self.epoch_rng.clone();
            self.plan = Some(d.plan_epoch(&mut rng, self.cfg.train.batch_size));
        }
    }

    /// Advances the epoch RNG to the next epoch (the state a new plan starts from).
    pub fn end_epoch(&mut self) {
        if let Some(d) = &self.data {
            let mut rng = self.epoch_rng.clone();
            let _ = d.plan_epoch(&mut rng, self.cfg.train.batch_size);
            self.epoch_rng = rng;
        }
        self.epoch += 1;
        self.step_in_epoch = 0;
        self.plan = None;
    }

    /// One step of the current epoch from the data plan. `None` when the epoch is over.
    pub fn step(&mut self) -> Option<StepOut> {
        if self.plan.is_none() {
            self.prepare_plan();
        }
        let (plan, data) = (self.plan.as_ref()?, self.data.as_ref()?);
        if self.step_in_epoch >= plan.steps {
            return None;
        }
        let (xt, yt) = data.train_batch(plan, self.step_in_epoch);
        let (xv, yv) = data.valid_batch(plan, self.step_in_epoch);
        let out = self.step_on(&xt, &yt, &xv, &yv);
        self.step_in_epoch += 1;
        Some(out)
    }

    /// Evaluates on the validation split (eval-mode BN, no augmentation): NASP with Ā and only
    /// the selected ops, DARTS with the softmax mixture.
    pub fn evaluate(&mut self, max_batches: usize) -> Eval {
        self.evaluate_until(max_batches, &mut || false)
            .unwrap_or(Eval {
                loss: f64::NAN,
                acc: f64::NAN,
            })
    }

    /// [`Search::evaluate`], asking `cancel` before each chunk of images: `None` when it said
    /// yes (a stop during a long evaluation need not wait for its end).
    pub fn evaluate_until(
        &mut self,
        max_batches: usize,
        cancel: &mut dyn FnMut() -> bool,
    ) -> Option<Eval> {
        if self.cfg.algorithm != Algorithm::Nasp {
            self.refresh_host_arch();
        }
        let Some(data) = &self.data else {
            return Some(Eval {
                loss: f64::NAN,
                acc: f64::NAN,
            });
        };
        // `max_batches` training-size batches' worth of images, in larger chunks (evaluation
        // keeps no graph; fewer, larger launches on a GPU). Eval-mode BN makes the result
        // independent of the chunking.
        let batch = self.cfg.train.batch_size;
        let batches = data.eval_batches(batch * max_batches, batch.max(EVAL_CHUNK));
        let w = self.softmax_weights(true);
        let (loss_sum, correct_sum, n) = tch::no_grad(|| {
            let mut loss_sum = Tensor::zeros([], (Kind::Float, self.device));
            let mut correct_sum = Tensor::zeros([], (Kind::Float, self.device));
            let mut n = 0usize;
            for rows in &batches {
                if cancel() {
                    return None;
                }
                let (x, y) = data.gather(rows);
                let mix = match self.cfg.algorithm {
                    Algorithm::Nasp => CellMix::sparse(&self.selection),
                    _ => CellMix::dense(&w),
                };
                let logits = self.forward(&x, mix, false);
                let b = y.size()[0] as usize;
                loss_sum += cross_entropy(&logits, &y) * b as f64;
                correct_sum += correct(&logits, &y);
                n += b;
            }
            Some((loss_sum, correct_sum, n))
        })?;
        let n = n.max(1) as f64;
        Some(Eval {
            loss: loss_sum.double_value(&[]) / n,
            acc: correct_sum.double_value(&[]) / n,
        })
    }
}

/// `net.cells.<c>.edges.<e>.<k>.…` → (whether cell c is a reduction cell, e, k).
fn op_of_param(name: &str, cells: usize) -> Option<(bool, usize, usize)> {
    let rest = name.strip_prefix("net.cells.")?;
    let mut parts = rest.split('.');
    let c: usize = parts.next()?.parse().ok()?;
    if parts.next()? != "edges" {
        return None;
    }
    let e = parts.next()?.parse().ok()?;
    let k = parts.next()?.parse().ok()?;
    Some((crate::engine::supernet::is_reduction(c, cells), e, k))
}

/// Builds the weight store for a model config alone (for parameter counts and shapes).
pub fn build_supernet(cfg: &Config, device: Device) -> Result<(VarStore, Supernet), EngineError> {
    let vs = VarStore::new(device);
    let net = Supernet::new(&(vs.root() / "net"), &cfg.model, cfg.model.op_lists(), 10)?;
    Ok((vs, net))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ops::{BnMode, is_channels_last};
    use std::collections::HashMap;

    /// A tiny NASP search (C = 4, 3 cells, 4 × 8 px batches unless `extra` says otherwise).
    fn tiny(space: &str, extra: &[&str]) -> Config {
        let mut sets = vec![
            format!("model.space=\"{space}\""),
            "model.channels=4".into(),
            "model.cells=3".into(),
            "train.batch_size=4".into(),
            "data.image_size=8".into(),
        ];
        sets.extend(extra.iter().map(|s| s.to_string()));
        Config::load(None, &sets).unwrap()
    }

    /// For the GPU tests: a CUDA device, and convolutions at fp32 precision (cuDNN's default
    /// TF32 rounds differently per algorithm, which would blur the comparisons).
    fn gpu_test_setup() {
        assert!(tch::Cuda::is_available(), "no CUDA device");
        crate::engine::native::set_tf32(false).unwrap();
    }

    /// Sets A to uniform random values (seeded) and re-selects Ā.
    fn random_arch(s: &mut Search, seed: i64) {
        tch::manual_seed(seed);
        for a in &s.arch {
            let r = Tensor::rand(a.size(), (Kind::Float, a.device()));
            tch::no_grad(|| a.shallow_clone().copy_(&r));
        }
        s.refresh_host_arch();
    }

    /// On a GPU: the NASP architecture gradient and the batch-norm statistics with the captured,
    /// replayed architecture pass equal those of eager passes, over steps whose Ā changes.
    #[test]
    #[ignore = "needs a CUDA device; scripts/gpu-check.sh runs it"]
    fn cuda_graph_arch_pass_matches_eager() {
        gpu_test_setup();
        let mut cfg = tiny("nasp", &["train.batch_size=8", "data.image_size=16"]);
        let dev = Device::Cuda(0);
        cfg.cuda_graphs = true;
        let mut graphed = Search::new(&cfg, dev, None).unwrap();
        cfg.cuda_graphs = false;
        let mut eager = Search::new(&cfg, dev, None).unwrap();
        tch::manual_seed(7);
        for step in 0..6 {
            for i in 0..2 {
                let a = Tensor::rand(graphed.arch[i].size(), (Kind::Float, dev));
                tch::no_grad(|| {
                    graphed.arch[i].shallow_clone().copy_(&a);
                    eager.arch[i].shallow_clone().copy_(&a);
                });
            }
            graphed.refresh_host_arch();
            eager.refresh_host_arch();
            let x = Tensor::randn([8, 3, 16, 16], (Kind::Float, dev));
            let y = Tensor::randint(10, [8], (Kind::Int64, dev));
            let (gg, lg) = graphed.nasp_arch_grad(&x, &y, false);
            let (ge, le) = eager.nasp_arch_grad(&x, &y, false);
            assert!((lg.double_value(&[]) - le.double_value(&[])).abs() < 1e-4);
            for i in 0..2 {
                let d = (&gg[i] - &ge[i]).norm().double_value(&[]);
                let n = ge[i].norm().double_value(&[]);
                assert!(d <= 1e-4 * n.max(1e-12), "step {step} cell {i}: {d} vs {n}");
            }
            let (vg, ve) = (graphed.vs.variables(), eager.vs.variables());
            for (k, v) in &vg {
                let d = (v - &ve[k]).abs().max().double_value(&[]);
                assert!(d < 1e-4, "step {step} {k}: {d}");
            }
        }
        assert!(!graphed.graph.off, "the graph path was turned off");
        assert!(graphed.graph.captured.is_some(), "nothing was captured");
        assert_eq!(graphed.graph_replays(), 6 - GRAPH_WARMUP as u64);
        assert_eq!(graphed.take_notices(), Vec::<String>::new());
    }

    /// `steps` NASP steps of two copies of one tiny search, the second changed by `switch` (a
    /// speed switch): same losses and architecture gradients, and every weight and batch-norm
    /// statistic moved by the same amount (within `tol` of its own change). A stays put
    /// (architecture learning rate 0): Adam's first steps turn a rounding-level difference of a
    /// near-zero gradient into a full step either way, which would compare the selections rather
    /// than the switch. Returns the switched search.
    fn switch_changes_nothing(
        dev: Device,
        steps: usize,
        tol: f64,
        switch: impl Fn(&mut Search),
    ) -> Search {
        let mut cfg = tiny("nasp", &["train.batch_size=8", "channels_last=false"]);
        cfg.arch.lr = 0.0;
        let mut plain = Search::new(&cfg, dev, None).unwrap();
        let mut other = Search::new(&cfg, dev, None).unwrap();
        switch(&mut other);
        random_arch(&mut plain, 3);
        // The same start for both, whatever other tests drew from the global RNG meanwhile.
        tch::no_grad(|| {
            let from = plain.vs.variables();
            for (k, v) in other.vs.variables() {
                v.shallow_clone().copy_(&from[&k]);
            }
            for i in 0..2 {
                other.arch[i].shallow_clone().copy_(&plain.arch[i]);
            }
        });
        other.refresh_host_arch();
        let before: HashMap<String, Tensor> = plain
            .vs
            .variables()
            .into_iter()
            .map(|(k, v)| (k, v.copy()))
            .collect();
        let max = |t: &Tensor| t.abs().max().double_value(&[]);
        // Within `tol` of `b`, plus rounding of values of size `scale` (a running mean near 0
        // moves by rounding noise only).
        let near = |a: &Tensor, b: &Tensor, scale: f64| {
            max(&(a - b)) <= tol * max(b) + tol * 1e-3 * scale.max(1.0)
        };
        let close = |a: &Tensor, b: &Tensor| near(a, b, max(b));
        for step in 0..steps {
            let x = Tensor::randn([8, 3, 8, 8], (Kind::Float, dev));
            let y = Tensor::randint(10, [8], (Kind::Int64, dev));
            let p = plain.step_on(&x, &y, &x, &y);
            let u = other.step_on(&x, &y, &x, &y);
            assert!(close(&u.loss, &p.loss), "step {step}: loss");
            assert!(close(&u.arch_loss, &p.arch_loss), "step {step}: arch loss");
        }
        let (vp, vu) = (plain.vs.variables(), other.vs.variables());
        let mut moved = 0;
        for (k, v) in &vp {
            let (dp, du) = (v - &before[k], &vu[k] - &before[k]);
            let scale = max(&before[k]);
            assert!(
                near(&du, &dp, scale),
                "{k}: changed {} vs {}",
                max(&du),
                max(&dp)
            );
            moved += usize::from(max(&dp) > 0.0);
        }
        assert!(moved > 100, "only {moved} variables changed");
        for i in 0..2 {
            // Adam's first moment: a running mean of the architecture gradients.
            let (g, h) = (&plain.adam.m[i], &other.adam.m[i]);
            assert!(max(g) > 0.0);
            assert!(close(h, g), "architecture gradient {i}");
        }
        // Evaluation mode (running statistics) too.
        let x = Tensor::randn([8, 3, 8, 8], (Kind::Float, dev));
        let eval =
            |s: &Search| tch::no_grad(|| s.forward(&x, CellMix::sparse(&s.selection), false));
        assert!(close(&eval(&other), &eval(&plain)), "evaluation logits");
        other
    }

    fn unit_affine(s: &mut Search) {
        s.net.set_unit_affine_bn();
    }

    #[test]
    fn unit_affine_batch_norm_changes_nothing_on_cpu() {
        switch_changes_nothing(Device::Cpu, 2, 1e-5, unit_affine);
    }

    #[test]
    fn channels_last_changes_nothing_on_cpu() {
        switch_changes_nothing(Device::Cpu, 2, 1e-3, |s| s.net.channels_last = true);
    }

    /// With `channels_last`, the node outputs of a pass and everything the architecture pass
    /// traces (selected and Ā-weighted mixtures) are channels-last: a pass that fell back to
    /// N, C, H, W would pay a layout copy per op.
    fn check_channels_last_layout(dev: Device) {
        for space in ["nasp", "darts"] {
            let mut s = Search::new(&tiny(space, &[]), dev, None).unwrap();
            s.net.channels_last = true;
            random_arch(&mut s, 4);
            let x = Tensor::randn([4, 3, 8, 8], (Kind::Float, dev));
            let mix = CellMix::sparse(&s.selection);
            let (_, nodes) = tch::no_grad(|| s.net.forward_nodes(&x, mix, BnMode::Train, false));
            let abar = s.selection_tensors();
            let w = s.softmax_weights(true);
            let (_, dense) = tch::no_grad(|| {
                s.net
                    .forward_nodes(&x, CellMix::dense(&w), BnMode::Train, false)
            });
            for (what, all) in [("sparse", &nodes), ("dense", &dense)] {
                for (c, cell) in all.iter().enumerate() {
                    for (n, t) in cell.iter().enumerate() {
                        let st = t.stride();
                        assert!(
                            is_channels_last(t),
                            "{space} {what} cell {c} node {n}: {st:?}"
                        );
                    }
                }
            }
            for select in [true, false] {
                let trace = s.arch_pass_eager(&x, &abar, select);
                let traced = trace.tensors();
                assert!(traced.len() > 10);
                for t in traced {
                    let st = t.stride();
                    assert!(
                        is_channels_last(t),
                        "{space} select={select}: traced {st:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn channels_last_keeps_the_layout() {
        check_channels_last_layout(Device::Cpu);
    }

    /// On a GPU channels-last activations take other kernels (cuDNN depthwise convolutions,
    /// channels-last batch norms): the same layout and the same search within rounding.
    #[test]
    #[ignore = "needs a CUDA device; scripts/gpu-check.sh runs it"]
    fn channels_last_matches_on_the_gpu() {
        gpu_test_setup();
        check_channels_last_layout(Device::Cuda(0));
        switch_changes_nothing(Device::Cuda(0), 2, 1e-3, |s| s.net.channels_last = true);
    }

    /// On a GPU the unit-affine batch norms run through cuDNN instead of libtorch's kernels:
    /// the same search within rounding, and no libtorch batch-norm kernel left in a profiled
    /// step (while one without the switch has them).
    #[test]
    #[ignore = "needs a CUDA device; scripts/gpu-check.sh runs it"]
    fn cudnn_batch_norm_matches_native() {
        gpu_test_setup();
        let mut cudnn = switch_changes_nothing(Device::Cuda(0), 2, 1e-3, unit_affine);
        let mut native = Search::new(&cudnn.cfg.clone(), Device::Cuda(0), None).unwrap();
        for (s, want_native) in [(&mut cudnn, false), (&mut native, true)] {
            let x = Tensor::randn([8, 3, 8, 8], (Kind::Float, Device::Cuda(0)));
            let y = Tensor::randint(10, [8], (Kind::Int64, Device::Cuda(0)));
            s.step_on(&x, &y, &x, &y);
            crate::engine::native::profile_begin(true).unwrap();
            s.step_on(&x, &y, &x, &y);
            tch::Cuda::synchronize(0);
            let kernels = crate::engine::native::profile_end(None, 100_000).unwrap();
            let has_native = kernels.contains("batch_norm_collect_statistics")
                || kernels.contains("batch_norm_backward");
            assert_eq!(has_native, want_native, "kernels:\n{kernels}");
        }
    }

    /// On a GPU, full steps with every speed switch on (the CUDA graph replayed beside the
    /// sparse pass, reading weights each weight step changed; cuDNN batch norms; channels-last)
    /// match plain eager steps, and the graph was captured and kept.
    #[test]
    #[ignore = "needs a CUDA device; scripts/gpu-check.sh runs it"]
    fn all_gpu_switches_match_plain_steps() {
        gpu_test_setup();
        let mut s = switch_changes_nothing(Device::Cuda(0), GRAPH_WARMUP + 4, 1e-3, |s| {
            s.cfg.cuda_graphs = true;
            s.net.channels_last = true;
            s.net.set_unit_affine_bn();
        });
        assert!(!s.graph.off, "the graph path was turned off");
        assert!(s.graph.captured.is_some(), "nothing was captured");
        assert_eq!(
            s.graph_replays(),
            4,
            "every step after warm-up replays the graph"
        );
        assert_eq!(s.take_notices(), Vec::<String>::new());
    }

    /// The architecture pass mixing by the host's selection (eager) and by Ā as data (what a
    /// CUDA graph records) give the same logits and the same traces.
    #[test]
    fn selected_and_weighted_mixtures_agree() {
        for layout in ["false", "true"] {
            for space in ["nasp", "darts"] {
                let cfg = tiny(space, &[&format!("channels_last={layout}")]);
                let mut s = Search::new(&cfg, Device::Cpu, None).unwrap();
                random_arch(&mut s, 9);
                let abar = s.selection_tensors();
                let x = Tensor::randn([4, 3, 8, 8], (Kind::Float, Device::Cpu));
                let a = s.arch_pass_eager(&x, &abar, true);
                let b = s.arch_pass_eager(&x, &abar, false);
                let d = (&a.logits - &b.logits).abs().max().double_value(&[]);
                assert!(d < 1e-5, "{space} {layout}: logits differ by {d}");
                assert!(a.logits.abs().max().double_value(&[]) > 0.0);
                let (ta, tb) = (a.tensors(), b.tensors());
                assert_eq!(ta.len(), tb.len());
                for (u, v) in ta.iter().zip(&tb) {
                    let d = (*u - *v).abs().max().double_value(&[]);
                    assert!(d < 1e-4, "{space} {layout}: traces differ by {d}");
                }
            }
        }
    }

    /// An evaluation asks its cancel callback before each chunk and stops when told.
    #[test]
    fn evaluation_stops_when_cancelled() {
        let imgs = crate::dataset::synthetic(1200, 1);
        let data = DeviceData::new(&imgs, 0.5, 8, Device::Cpu);
        let mut s = Search::new(&tiny("nasp", &[]), Device::Cpu, Some(data)).unwrap();
        let mut asked = 0;
        let full = s.evaluate_until(0, &mut || {
            asked += 1;
            false
        });
        assert!(full.is_some_and(|e| e.loss.is_finite() && e.acc >= 0.0));
        assert_eq!(asked, 2, "600 validation images in chunks of 512");
        let mut asked = 0;
        let cut = s.evaluate_until(0, &mut || {
            asked += 1;
            asked == 2
        });
        assert!(cut.is_none());
    }

    /// The NASP weight step asks autograd only for the parameters of Ā's ops; the gradients
    /// must be exactly those of asking for every parameter.
    #[test]
    fn nasp_weight_grads_cover_every_parameter_the_step_uses() {
        let mut s = Search::new(&tiny("nasp", &[]), Device::Cpu, None).unwrap();
        random_arch(&mut s, 4);
        let x = Tensor::randn([4, 3, 8, 8], (Kind::Float, Device::Cpu));
        let y = Tensor::randint(10, [4], (Kind::Int64, Device::Cpu));
        let loss = || cross_entropy(&s.forward(&x, CellMix::sparse(&s.selection), true), &y);
        let all = Tensor::run_backward(&[&loss()], &s.params, false, false);
        let ours = s.weight_grads(&loss());
        let mut used = 0;
        for (i, (a, b)) in all.iter().zip(&ours).enumerate() {
            assert_eq!(a.defined(), b.defined(), "{}", s.param_names[i]);
            if a.defined() {
                used += 1;
                assert!((a - b).abs().max().double_value(&[]) < 1e-6);
            }
        }
        assert!(
            used > 10 && used < s.params.len() / 2,
            "{used} of {}",
            s.params.len()
        );
    }
}
