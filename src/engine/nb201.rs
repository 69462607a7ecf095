//! The NAS-Bench-201 network (`model.space = "nb201"`), as the benchmark's own code builds it:
//! a 3 × 3 stem convolution to C channels with a batch norm; N cells at C channels, a residual
//! block to 2C (ReLU-conv 3 × 3 stride 2-BN, ReLU-conv 3 × 3-BN, beside a 2 × 2 average pool
//! and a 1 × 1 convolution), N cells, a residual block to 4C, N cells; then batch norm, ReLU,
//! global average pooling and a linear classifier.
//!
//! A cell has one input (node 0) and three nodes; node n sums one op applied to every earlier
//! node; the output is node 3. Its six edges (1←0, 2←0, 2←1, 3←0, 3←1, 3←2, the rows of A) all
//! stay. The ops (the columns of A): `none` (zeros), `skip_connect` (identity), `nor_conv_1x1`
//! and `nor_conv_3x3` (ReLU → convolution with a bias → batch norm, non-affine in the search),
//! `avg_pool_3x3` (stride 1, padding 1 not counted, no batch norm).
//!
//! The same network, with one op per edge and affine batch norms in the cells, is the network
//! `train` builds for an NB201 cell (`Nb201Net::trained`).
//!
//! The NASP architecture gradient here uses the product form of the DARTS-space supernet
//! (∂L/∂Ā[e,k] = ⟨∂L/∂node(e), o_k(x_e)⟩) without its fusion: a pass through the selected ops
//! with autograd gives ∂L/∂node, then one pass without autograd runs every op of every edge
//! (recording the batch-norm statistics), forms the products on the fly and keeps only the
//! selected ops' outputs as it goes. A test checks it against a backward through every op.

use std::cell::OnceCell;

use tch::nn;
use tch::{Kind, Tensor};

use crate::arch::Selection;
use crate::engine::EngineError;
use crate::engine::ops::{Bn, BnMode};
use crate::engine::supernet::Mix;
use crate::nb201::{EDGES, NODES, OPS, node_rows};

const BN_MOMENTUM: f64 = 0.1;
const BN_EPS: f64 = 1e-5;

/// An affine batch norm with running statistics (the stem, the residual blocks, the last one,
/// and the cells of a trained network).
struct AffineBn {
    w: Tensor,
    b: Tensor,
    mean: Tensor,
    var: Tensor,
}

impl AffineBn {
    fn new(p: nn::Path, c: i64) -> Self {
        let bn = nn::batch_norm2d(
            p,
            c,
            nn::BatchNormConfig {
                affine: true,
                momentum: BN_MOMENTUM,
                eps: BN_EPS,
                ws_init: nn::Init::Const(1.0),
                bs_init: nn::Init::Const(0.0),
                ..Default::default()
            },
        );
        AffineBn {
            w: bn.ws.unwrap_or_else(Tensor::new),
            b: bn.bs.unwrap_or_else(Tensor::new),
            mean: bn.running_mean,
            var: bn.running_var,
        }
    }

    fn forward(&self, x: &Tensor, mode: BnMode) -> Tensor {
        let (mean, var) = match mode {
            BnMode::BatchOnly => (None, None),
            _ => (Some(&self.mean), Some(&self.var)),
        };
        x.batch_norm(
            Some(&self.w),
            Some(&self.b),
            mean,
            var,
            mode != BnMode::Eval,
            BN_MOMENTUM,
            BN_EPS,
            true,
        )
    }
}

/// A cell's batch norm: non-affine in the search, affine in a trained network.
enum CellBn {
    Plain(Bn),
    Affine(AffineBn),
}

impl CellBn {
    fn forward(&self, x: &Tensor, mode: BnMode) -> Tensor {
        match self {
            CellBn::Plain(b) => b.forward(x, mode),
            CellBn::Affine(b) => b.forward(x, mode),
        }
    }
}

/// A convolution drawn as PyTorch 1.x draws it (weights and bias from U(±1/√fan_in)) when
/// `reference`, libtorch's defaults otherwise.
fn conv(
    p: nn::Path,
    cin: i64,
    cout: i64,
    k: i64,
    stride: i64,
    bias: bool,
    reference: bool,
) -> nn::Conv2D {
    let bound = 1.0 / ((cin * k * k) as f64).sqrt();
    let mut cfg = nn::ConvConfig {
        stride,
        padding: k / 2,
        bias,
        ..Default::default()
    };
    if reference {
        cfg.ws_init = nn::Init::Uniform {
            lo: -bound,
            up: bound,
        };
        cfg.bs_init = nn::Init::Uniform {
            lo: -bound,
            up: bound,
        };
    }
    nn::conv2d(p, cin, cout, k, cfg)
}

/// ReLU → convolution → batch norm; the cells' `nor_conv_*` and the residual blocks' halves.
struct ReluConvBn {
    conv: nn::Conv2D,
    bn: CellBn,
}

impl ReluConvBn {
    fn forward_relu(&self, xr: &Tensor, mode: BnMode) -> Tensor {
        self.bn.forward(&xr.apply(&self.conv), mode)
    }
}

/// One candidate op of an edge.
enum EdgeOp {
    Zero,
    Skip,
    Conv(ReluConvBn),
    Pool,
}

/// The ReLU of a state, computed once for all the convolutions that read it.
fn relu_of<'a>(x: &Tensor, cache: &'a OnceCell<Tensor>) -> &'a Tensor {
    cache.get_or_init(|| x.relu())
}

impl EdgeOp {
    /// The op's output on `x` (`None` for `none`: its zeros are never formed).
    fn forward(&self, x: &Tensor, relu: &OnceCell<Tensor>, mode: BnMode) -> Option<Tensor> {
        match self {
            EdgeOp::Zero => None,
            EdgeOp::Skip => Some(x.shallow_clone()),
            EdgeOp::Conv(c) => Some(c.forward_relu(relu_of(x, relu), mode)),
            EdgeOp::Pool => Some(x.avg_pool2d([3, 3], [1, 1], [1, 1], false, false, None)),
        }
    }
}

/// One cell: for each edge, the ops it holds (every op in the search; the genotype's one in a
/// trained network), by column.
struct Cell {
    edges: Vec<Vec<Option<EdgeOp>>>,
}

/// Adds `t` to an optional running sum.
fn accumulate(acc: &mut Option<Tensor>, t: Tensor) {
    *acc = Some(match acc.take() {
        None => t,
        Some(a) => a + t,
    });
}

impl Cell {
    /// Builds the cell at `p` with channels `c`; `only[e]` names the one op to build on edge e
    /// (a trained network), `None` builds all five.
    fn new(p: &nn::Path, c: i64, only: Option<&[usize; 6]>, affine: bool, reference: bool) -> Cell {
        let edges = (0..EDGES.len())
            .map(|e| {
                (0..OPS.len())
                    .map(|k| {
                        if only.is_some_and(|o| o[e] != k) {
                            return None;
                        }
                        let q = p / "edges" / e / k;
                        Some(match OPS[k] {
                            "none" => EdgeOp::Zero,
                            "skip_connect" => EdgeOp::Skip,
                            "avg_pool_3x3" => EdgeOp::Pool,
                            name => {
                                let ks = if name == "nor_conv_1x1" { 1 } else { 3 };
                                // The benchmark gives the convolution a bias exactly when its
                                // batch norm is not affine.
                                let conv = conv(&q / "conv", c, c, ks, 1, !affine, reference);
                                let bn = if affine {
                                    CellBn::Affine(AffineBn::new(&q / "bn", c))
                                } else {
                                    CellBn::Plain(Bn::new(&q / "bn", c))
                                };
                                EdgeOp::Conv(ReluConvBn { conv, bn })
                            }
                        })
                    })
                    .collect()
            })
            .collect();
        Cell { edges }
    }

    fn op(&self, e: usize, k: usize) -> Option<&EdgeOp> {
        self.edges.get(e)?.get(k)?.as_ref()
    }

    /// The cell's output (node 3) and its three nodes. `Mix::Sparse`: each edge's selected op;
    /// `Mix::Dense(w)`: Σ_k w[e,k]·o_k(x_e) over the ops this cell holds. With `grad_nodes`,
    /// each node is its own autograd node (a view, or a leaf when nothing before it needs
    /// grad), so that ∂L/∂node is the gradient of its own uses only.
    fn forward(
        &self,
        x: &Tensor,
        mix: Mix,
        mode: BnMode,
        grad_nodes: bool,
    ) -> (Tensor, Vec<Tensor>) {
        let mut states = vec![x.shallow_clone()];
        let relus: Vec<OnceCell<Tensor>> = (0..=NODES).map(|_| OnceCell::new()).collect();
        for n in 1..=NODES {
            let mut acc = None;
            for (j, e) in node_rows(n).enumerate() {
                match mix {
                    Mix::Sparse(sel) => {
                        let out = sel.ops[e]
                            .and_then(|k| self.op(e, k))
                            .and_then(|op| op.forward(&states[j], &relus[j], mode));
                        if let Some(t) = out {
                            accumulate(&mut acc, t);
                        }
                    }
                    Mix::Dense(w) => {
                        for k in 0..OPS.len() {
                            let out = self
                                .op(e, k)
                                .and_then(|op| op.forward(&states[j], &relus[j], mode));
                            if let Some(t) = out {
                                let wk = w.get(e as i64).get(k as i64).to_kind(t.kind());
                                accumulate(&mut acc, t * wk);
                            }
                        }
                    }
                }
            }
            let mut out = acc.unwrap_or_else(|| x.zeros_like());
            if grad_nodes {
                out = if out.requires_grad() {
                    out.view_as(&out)
                } else {
                    out.detach().set_requires_grad(true)
                };
            }
            states.push(out);
        }
        (states[NODES].shallow_clone(), states.split_off(1))
    }

    /// The pass through Ā's ops that NASP's architecture step takes (with autograd): the
    /// cell's output and what the products need (see [`CellTrace`]). Each node is its own
    /// autograd node, as in `forward` with `grad_nodes`.
    fn forward_traced(&self, x: &Tensor, sel: &Selection, mode: BnMode) -> (Tensor, CellTrace) {
        let mut states = vec![x.shallow_clone()];
        let relus: Vec<OnceCell<Tensor>> = (0..=NODES).map(|_| OnceCell::new()).collect();
        let mut terms = Vec::with_capacity(EDGES.len());
        for n in 1..=NODES {
            let mut acc = None;
            for (j, e) in node_rows(n).enumerate() {
                let out = sel.ops[e]
                    .and_then(|k| self.op(e, k))
                    .and_then(|op| op.forward(&states[j], &relus[j], mode));
                if let Some(t) = &out {
                    accumulate(&mut acc, t.shallow_clone());
                }
                terms.push(out);
            }
            let out = acc.unwrap_or_else(|| x.zeros_like());
            let out = if out.requires_grad() {
                out.view_as(&out)
            } else {
                out.detach().set_requires_grad(true)
            };
            states.push(out);
        }
        let out = states[NODES].shallow_clone();
        (out, CellTrace { states, terms })
    }

    /// The rest of NASP's product form for this cell, without autograd: every op Ā does not
    /// select, on the states the pass through Ā's ops made, each output dotted with ∂L/∂node of
    /// its edge's node (`grads`, nodes 1..3); the selected ops' products come from their traced
    /// outputs. Per source state: one ReLU, one pooling and, per convolution type, one
    /// convolution over all the edges that need it (their weights side by side), whose batch
    /// norms then record statistics edge by edge under `mode` (so that with the traced pass
    /// every batch norm records once, as a pass through every op would). Returns ∂L/∂Ā of this
    /// cell (6 × 5; `none` stays 0).
    fn products(&self, t: &CellTrace, sel: &Selection, grads: &[Tensor], mode: BnMode) -> Tensor {
        let states: Vec<Tensor> = t.states.iter().map(Tensor::detach).collect();
        let device = states[0].device();
        let mut slots: Vec<Option<Tensor>> = (0..EDGES.len() * OPS.len()).map(|_| None).collect();
        let dot = |o: &Tensor, g: &Tensor| {
            o.reshape([-1])
                .to_kind(g.kind())
                .dot(&g.reshape([-1]))
                .to_kind(Kind::Float)
        };
        for (j, x) in states.iter().enumerate().take(NODES) {
            // The edges that leave state j: (edge, ∂L/∂node of its target).
            let out: Vec<(usize, &Tensor)> = EDGES
                .iter()
                .enumerate()
                .filter(|(_, (_, src))| *src == j)
                .map(|(e, (node, _))| (e, &grads[node - 1]))
                .collect();
            let relu = OnceCell::new();
            let mut pooled: Option<Tensor> = None;
            for k in 0..OPS.len() {
                let mut fuse: Vec<(usize, &ReluConvBn, &Bn, &Tensor)> = Vec::new();
                for &(e, g) in &out {
                    let slot = &mut slots[e * OPS.len() + k];
                    if sel.ops[e] == Some(k) {
                        *slot = t.terms[e].as_ref().map(|o| dot(&o.detach(), g));
                        continue;
                    }
                    match self.op(e, k) {
                        None | Some(EdgeOp::Zero) => {}
                        Some(EdgeOp::Skip) => *slot = Some(dot(x, g)),
                        Some(EdgeOp::Pool) => {
                            let p = pooled.get_or_insert_with(|| {
                                x.avg_pool2d([3, 3], [1, 1], [1, 1], false, false, None)
                            });
                            *slot = Some(dot(p, g));
                        }
                        Some(EdgeOp::Conv(c)) => match &c.bn {
                            CellBn::Plain(bn) => fuse.push((e, c, bn, g)),
                            // (A trained network's cell: one edge at a time.)
                            CellBn::Affine(_) => {
                                let o = c.forward_relu(relu_of(x, &relu), mode);
                                *slot = Some(dot(&o, g));
                            }
                        },
                    }
                }
                if fuse.is_empty() {
                    continue;
                }
                // One convolution for every edge that needs op k: weights and biases side by
                // side, its output the edges' outputs side by side along channels.
                let w: Vec<&Tensor> = fuse.iter().map(|f| &f.1.conv.ws).collect();
                let b: Vec<&Tensor> = fuse.iter().filter_map(|f| f.1.conv.bs.as_ref()).collect();
                let bias = (b.len() == w.len()).then(|| Tensor::cat(&b, 0));
                let first = &fuse[0].1.conv;
                let pad = first.ws.size()[3] / 2;
                let y = relu_of(x, &relu).conv2d(
                    &Tensor::cat(&w, 0),
                    bias.as_ref(),
                    [1, 1],
                    [pad, pad],
                    [1, 1],
                    1,
                );
                let c = first.ws.size()[0];
                for (i, (e, _, bn, g)) in fuse.iter().enumerate() {
                    let ye = y.narrow(1, i as i64 * c, c);
                    let (mean, invstd) = bn.stats(&ye, mode, 1);
                    let shape = [1, c, 1, 1];
                    let o = (ye - mean.view(shape)) * invstd.view(shape);
                    slots[e * OPS.len() + k] = Some(dot(&o, g));
                }
            }
        }
        let zero = Tensor::zeros([], (Kind::Float, device));
        let entries: Vec<Tensor> = slots
            .into_iter()
            .map(|s| s.unwrap_or_else(|| zero.shallow_clone()))
            .collect();
        Tensor::stack(&entries, 0).view([EDGES.len() as i64, OPS.len() as i64])
    }
}

/// What the pass through Ā's ops keeps of a cell for the products: its input and its three
/// nodes (`states`, the nodes as autograd nodes of their own), and each edge's selected op's
/// output (`None` for `none`).
pub struct CellTrace {
    pub states: Vec<Tensor>,
    terms: Vec<Option<Tensor>>,
}

/// The residual block between stages (affine batch norms, as in the benchmark's code).
struct ResBlock {
    a: ReluConvBn,
    b: ReluConvBn,
    down: nn::Conv2D,
}

impl ResBlock {
    fn new(p: &nn::Path, cin: i64, cout: i64, reference: bool) -> ResBlock {
        let half = |name: &str, ci: i64, stride: i64| ReluConvBn {
            conv: conv(p / name / "conv", ci, cout, 3, stride, false, reference),
            bn: CellBn::Affine(AffineBn::new(p / name / "bn", cout)),
        };
        ResBlock {
            a: half("a", cin, 2),
            b: half("b", cout, 1),
            down: conv(p / "down", cin, cout, 1, 1, false, reference),
        }
    }

    fn forward(&self, x: &Tensor, mode: BnMode) -> Tensor {
        let a = self.a.forward_relu(&x.relu(), mode);
        let b = self.b.forward_relu(&a.relu(), mode);
        let short = x
            .avg_pool2d([2, 2], [2, 2], [0, 0], false, true, None)
            .apply(&self.down);
        short + b
    }
}

enum Layer {
    Cell(Cell),
    Res(Box<ResBlock>),
}

/// The NAS-Bench-201 network: the search supernet, or a trained cell's network.
pub struct Nb201Net {
    stem: nn::Conv2D,
    stem_bn: AffineBn,
    layers: Vec<Layer>,
    last_bn: AffineBn,
    classifier: nn::Linear,
    /// Cells per stage (N).
    pub cells_per_stage: usize,
}

impl Nb201Net {
    /// The search supernet under `p`: every op on every edge, non-affine batch norms in the
    /// cells; `reference`: PyTorch 1.x's draws (the benchmark's), libtorch's otherwise.
    pub fn search(
        p: &nn::Path,
        c: i64,
        n: usize,
        classes: i64,
        reference: bool,
    ) -> Result<Nb201Net, EngineError> {
        Nb201Net::new(p, c, n, classes, None, reference)
    }

    /// The network `train` builds for `cell` (op indices edge by edge): one op per edge,
    /// affine batch norms.
    pub fn trained(
        p: &nn::Path,
        c: i64,
        n: usize,
        classes: i64,
        cell: &[usize; 6],
        reference: bool,
    ) -> Result<Nb201Net, EngineError> {
        Nb201Net::new(p, c, n, classes, Some(cell), reference)
    }

    fn new(
        p: &nn::Path,
        c: i64,
        n: usize,
        classes: i64,
        only: Option<&[usize; 6]>,
        reference: bool,
    ) -> Result<Nb201Net, EngineError> {
        if only.is_some_and(|o| o.iter().any(|&k| k >= OPS.len())) {
            return Err(EngineError::UnknownOp(
                "an NB201 op index past the five".into(),
            ));
        }
        let stem = conv(p / "stem" / "conv", 3, c, 3, 1, false, reference);
        let stem_bn = AffineBn::new(p / "stem" / "bn", c);
        let mut layers = Vec::with_capacity(3 * n + 2);
        let mut width = c;
        let mut cell_index = 0;
        for stage in 0..3 {
            if stage > 0 {
                layers.push(Layer::Res(Box::new(ResBlock::new(
                    &(p / "res" / (stage - 1)),
                    width,
                    2 * width,
                    reference,
                ))));
                width *= 2;
            }
            for _ in 0..n {
                let affine = only.is_some();
                layers.push(Layer::Cell(Cell::new(
                    &(p / "cells" / cell_index),
                    width,
                    only,
                    affine,
                    reference,
                )));
                cell_index += 1;
            }
        }
        let last_bn = AffineBn::new(p / "last_bn", width);
        let bound = 1.0 / (width as f64).sqrt();
        let lin = if reference {
            nn::LinearConfig {
                ws_init: nn::Init::Uniform {
                    lo: -bound,
                    up: bound,
                },
                bs_init: Some(nn::Init::Uniform {
                    lo: -bound,
                    up: bound,
                }),
                bias: true,
            }
        } else {
            Default::default()
        };
        let classifier = nn::linear(p / "classifier", width, classes, lin);
        Ok(Nb201Net {
            stem,
            stem_bn,
            layers,
            last_bn,
            classifier,
            cells_per_stage: n,
        })
    }

    /// Number of cells (3N).
    pub fn cells(&self) -> usize {
        3 * self.cells_per_stage
    }

    fn head(&self, s: &Tensor, mode: BnMode) -> Tensor {
        self.last_bn
            .forward(s, mode)
            .relu()
            .adaptive_avg_pool2d([1, 1])
            .flatten(1, -1)
            .apply(&self.classifier)
    }

    /// Logits and every cell's three nodes (see `Cell::forward` for `grad_nodes`).
    pub fn forward_nodes(
        &self,
        x: &Tensor,
        mix: Mix,
        mode: BnMode,
        grad_nodes: bool,
    ) -> (Tensor, Vec<Vec<Tensor>>) {
        let mut s = self.stem_bn.forward(&x.apply(&self.stem), mode);
        let mut nodes = Vec::with_capacity(self.cells());
        for layer in &self.layers {
            s = match layer {
                Layer::Res(r) => r.forward(&s, mode),
                Layer::Cell(c) => {
                    let (out, n) = c.forward(&s, mix, mode, grad_nodes);
                    nodes.push(n);
                    out
                }
            };
        }
        (self.head(&s, mode), nodes)
    }

    /// Logits of a batch.
    pub fn forward(&self, x: &Tensor, mix: Mix, mode: BnMode) -> Tensor {
        self.forward_nodes(x, mix, mode, false).0
    }

    /// The pass through Ā's ops (`sel`) of NASP's architecture step, with autograd: logits and
    /// each cell's trace (its nodes, whose gradients the products take).
    pub fn forward_traced(
        &self,
        x: &Tensor,
        sel: &Selection,
        mode: BnMode,
    ) -> (Tensor, Vec<CellTrace>) {
        let mut s = self.stem_bn.forward(&x.apply(&self.stem), mode);
        let mut traces = Vec::with_capacity(self.cells());
        for layer in &self.layers {
            s = match layer {
                Layer::Res(r) => r.forward(&s, mode),
                Layer::Cell(c) => {
                    let (out, t) = c.forward_traced(&s, sel, mode);
                    traces.push(t);
                    out
                }
            };
        }
        (self.head(&s, mode), traces)
    }

    /// NASP's ∂L/∂Ā (6 × 5, summed over the cells, which share A) from the traces of the pass
    /// through Ā's ops and ∂L/∂node of every cell: the ops Ā does not select run without
    /// autograd on the traced states (batch-norm statistics recorded under `mode`).
    pub fn arch_grad(
        &self,
        traces: &[CellTrace],
        sel: &Selection,
        node_grads: &[Vec<Tensor>],
        mode: BnMode,
    ) -> Tensor {
        tch::no_grad(|| {
            let cells = self.layers.iter().filter_map(|l| match l {
                Layer::Cell(c) => Some(c),
                Layer::Res(_) => None,
            });
            let mut total: Option<Tensor> = None;
            for ((c, t), g) in cells.zip(traces).zip(node_grads) {
                accumulate(&mut total, c.products(t, sel, g, mode));
            }
            total.unwrap_or_else(|| {
                let device = traces
                    .first()
                    .map_or(tch::Device::Cpu, |t| t.states[0].device());
                Tensor::zeros(
                    [EDGES.len() as i64, OPS.len() as i64],
                    (Kind::Float, device),
                )
            })
        })
    }
}
