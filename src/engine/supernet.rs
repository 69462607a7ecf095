//! The DARTS search supernet (spec §1.2–1.3): stem, normal and reduction cells, classifier.

use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

use crate::config::ModelConfig;
use std::cell::OnceCell;

use crate::engine::ops::{FactorizedReduce, Input, Op, ReluConvBn};
use crate::genotype::{CellType, OpLists, Selection, node_rows, num_edges};

/// How a forward pass mixes the candidate ops of each edge.
#[derive(Clone, Copy)]
pub enum Mix<'a> {
    /// Every op on every edge: `out_e = Σ_k w[e,k] · o_k(x_e)` (`w` is edges × ops). With
    /// `live = Some(Ā)`, only the ops Ā selects keep their autograd graph; the others are computed
    /// without autograd and enter as constants, which leaves ∂L/∂w unchanged (the NASP arch step).
    Dense {
        w: &'a Tensor,
        live: Option<&'a Selection>,
    },
    /// Only the ops Ā selects on the edges it keeps, with weight 1 (the NASP weight step and
    /// evaluation: `2 · nodes` op evaluations per cell).
    Sparse(&'a Selection),
}

/// The mixing of normal and reduction cells for one forward pass.
#[derive(Clone, Copy)]
pub struct CellMix<'a> {
    pub normal: Mix<'a>,
    pub reduce: Mix<'a>,
}

impl<'a> CellMix<'a> {
    /// Every op mixed by `w` (normal, reduce); with `live`, only Ā's ops keep their graph.
    pub fn dense(w: &'a [Tensor; 2], live: Option<&'a [Selection; 2]>) -> Self {
        CellMix {
            normal: Mix::Dense {
                w: &w[0],
                live: live.map(|l| &l[0]),
            },
            reduce: Mix::Dense {
                w: &w[1],
                live: live.map(|l| &l[1]),
            },
        }
    }

    /// Only the ops Ā selects (normal, reduce).
    pub fn sparse(sel: &'a [Selection; 2]) -> Self {
        CellMix {
            normal: Mix::Sparse(&sel[0]),
            reduce: Mix::Sparse(&sel[1]),
        }
    }
}

enum Pre {
    Conv(ReluConvBn),
    Reduce(FactorizedReduce),
}

impl Pre {
    fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        match self {
            Pre::Conv(c) => c.forward(x, train),
            Pre::Reduce(r) => r.forward(x, train),
        }
    }
}

struct Cell {
    reduction: bool,
    pre0: Pre,
    pre1: ReluConvBn,
    edges: Vec<Vec<Op>>,
    /// Indices of the ops that are not `none`, and the same as a device tensor (None when every op
    /// counts, so the weights row is used as is).
    live_ops: Vec<usize>,
    live_index: Option<Tensor>,
    nodes: usize,
}

impl Cell {
    fn forward(&self, s0: &Tensor, s1: &Tensor, mix: Mix, train: bool) -> Tensor {
        let mut states = vec![self.pre0.forward(s0, train), self.pre1.forward(s1, train)];
        let mut relus: Vec<OnceCell<Tensor>> = vec![OnceCell::new(), OnceCell::new()];
        // In the dense mix every state feeds ReLU-first ops, some of them under `no_grad`: make
        // each state's ReLU up front, with autograd, once for all its out-edges.
        let dense = matches!(mix, Mix::Dense { .. });
        let weights = match mix {
            Mix::Dense { w, .. } => Some(match &self.live_index {
                Some(idx) => w.index_select(1, idx),
                None => w.shallow_clone(),
            }),
            Mix::Sparse(_) => None,
        };
        for n in 0..self.nodes {
            let rows = node_rows(n);
            let mut acc: Option<Tensor> = None;
            for (j, e) in rows.clone().enumerate() {
                if dense {
                    let _ = relus[j].get_or_init(|| states[j].relu());
                }
                let input = Input {
                    x: &states[j],
                    relu: &relus[j],
                };
                let term = match (mix, &weights) {
                    (Mix::Sparse(sel), _) => {
                        sel.ops[e].map(|k| self.edges[e][k].forward(&input, train))
                    }
                    (Mix::Dense { live, .. }, Some(w)) => {
                        Some(self.dense_edge(e, &input, w, live, train))
                    }
                    (Mix::Dense { .. }, None) => None,
                };
                if let Some(t) = term {
                    acc = Some(match acc {
                        None => t,
                        Some(a) => a + t,
                    });
                }
            }
            let out = match acc {
                Some(a) => a,
                // A node whose kept edges both hold `none`: a zero output of the right shape.
                None => self.edges[rows.start][0].zero_like(&states[0], self.reduction),
            };
            states.push(out);
            relus.push(OnceCell::new());
        }
        Tensor::cat(&states[2..], 1)
    }

    /// `Σ_k w[e,k] · o_k(x)` over the ops that are not `none`; `w` holds only those columns.
    fn dense_edge(
        &self,
        e: usize,
        input: &Input,
        w: &Tensor,
        live: Option<&Selection>,
        train: bool,
    ) -> Tensor {
        let selected = live.and_then(|s| s.ops[e]);
        let outs: Vec<Tensor> = self
            .live_ops
            .iter()
            .map(|&k| {
                let op = &self.edges[e][k];
                if live.is_none() || selected == Some(k) {
                    op.forward(input, train)
                } else {
                    tch::no_grad(|| op.forward(input, train))
                }
            })
            .collect();
        let mut row = w.get(e as i64).view([-1, 1, 1, 1, 1]);
        if row.kind() != input.x.kind() {
            row = row.to_kind(input.x.kind());
        }
        (Tensor::stack(&outs, 0) * row).sum_dim_intlist(0, false, None)
    }
}

impl Op {
    /// A zero tensor shaped like this edge's output for input `x`.
    fn zero_like(&self, x: &Tensor, reduction: bool) -> Tensor {
        let relu = OnceCell::new();
        Op::Zero {
            stride: if reduction { 2 } else { 1 },
        }
        .forward(&Input { x, relu: &relu }, false)
    }
}

/// The search network.
pub struct Supernet {
    stem_conv: nn::Conv2D,
    stem_bn: nn::BatchNorm,
    cells: Vec<Cell>,
    classifier: nn::Linear,
    pub lists: OpLists,
    pub nodes: usize,
}

/// Whether cell `i` of `cells` is a reduction cell (indices cells/3 and 2·cells/3).
pub fn is_reduction(i: usize, cells: usize) -> bool {
    i == cells / 3 || i == 2 * cells / 3
}

impl Supernet {
    /// Builds the supernet under `p` (parameter names are stable: they key checkpoints).
    pub fn new(
        p: &nn::Path,
        m: &ModelConfig,
        lists: OpLists,
        classes: i64,
    ) -> Result<Supernet, String> {
        let c = m.channels;
        let stem_c = 3 * c;
        let stem_conv = nn::conv2d(
            p / "stem" / "conv",
            3,
            stem_c,
            3,
            nn::ConvConfig {
                padding: 1,
                bias: false,
                ..Default::default()
            },
        );
        let stem_bn = nn::batch_norm2d(p / "stem" / "bn", stem_c, Default::default());
        let (mut c_pp, mut c_p, mut c_cur) = (stem_c, stem_c, c);
        let mut cells = Vec::with_capacity(m.cells);
        let mut prev_reduction = false;
        for i in 0..m.cells {
            let reduction = is_reduction(i, m.cells);
            if reduction {
                c_cur *= 2;
            }
            let cp = p / "cells" / i;
            let pre0 = if prev_reduction {
                Pre::Reduce(FactorizedReduce::new(&cp / "pre0", c_pp, c_cur, false))
            } else {
                Pre::Conv(ReluConvBn::new(&cp / "pre0", c_pp, c_cur, 1, 1, 0))
            };
            let pre1 = ReluConvBn::new(&cp / "pre1", c_p, c_cur, 1, 1, 0);
            let names = lists.get(if reduction {
                CellType::Reduce
            } else {
                CellType::Normal
            });
            let mut edges = Vec::with_capacity(num_edges(m.nodes));
            for e in 0..num_edges(m.nodes) {
                let input = e - node_rows(crate::genotype::edge_endpoints(e, m.nodes).0 - 2).start;
                let stride = if reduction && input < 2 { 2 } else { 1 };
                let mut ops = Vec::with_capacity(names.len());
                for (k, name) in names.iter().enumerate() {
                    let op = Op::new(&cp / "edges" / e / k, name, c_cur, stride)
                        .ok_or_else(|| format!("unknown op {name:?}"))?;
                    ops.push(op);
                }
                edges.push(ops);
            }
            let live_ops: Vec<usize> = (0..names.len()).filter(|k| names[*k] != "none").collect();
            let live_index = (live_ops.len() != names.len()).then(|| {
                Tensor::from_slice(&live_ops.iter().map(|k| *k as i64).collect::<Vec<_>>())
                    .to_device(p.device())
            });
            cells.push(Cell {
                reduction,
                pre0,
                pre1,
                edges,
                live_ops,
                live_index,
                nodes: m.nodes,
            });
            prev_reduction = reduction;
            c_pp = c_p;
            c_p = (m.nodes as i64) * c_cur;
        }
        let classifier = nn::linear(p / "classifier", c_p, classes, Default::default());
        Ok(Supernet {
            stem_conv,
            stem_bn,
            cells,
            classifier,
            lists,
            nodes: m.nodes,
        })
    }

    /// Logits for a batch `x` (N×3×H×W, float).
    pub fn forward(&self, x: &Tensor, mix: CellMix, train: bool) -> Tensor {
        let stem = self.stem_bn.forward_t(&x.apply(&self.stem_conv), train);
        let mut s0 = stem.shallow_clone();
        let mut s1 = stem;
        for cell in &self.cells {
            let m = if cell.reduction {
                mix.reduce
            } else {
                mix.normal
            };
            let out = cell.forward(&s0, &s1, m, train);
            s0 = s1;
            s1 = out;
        }
        s1.adaptive_avg_pool2d([1, 1])
            .flatten(1, -1)
            .apply(&self.classifier)
    }

    /// Output shapes of every cell for an input of `hw` pixels (for tests and the UI).
    pub fn cell_shapes(&self, hw: i64, device: Device) -> Vec<Vec<i64>> {
        let x = Tensor::zeros([2, 3, hw, hw], (Kind::Float, device));
        let n = num_edges(self.nodes);
        let sel = Selection {
            ops: vec![Some(0); n],
            kept: Vec::new(),
        };
        tch::no_grad(|| {
            let stem = self.stem_bn.forward_t(&x.apply(&self.stem_conv), false);
            let (mut s0, mut s1) = (stem.shallow_clone(), stem);
            let mut out = Vec::new();
            for cell in &self.cells {
                let o = cell.forward(&s0, &s1, Mix::Sparse(&sel), false);
                out.push(o.size());
                s0 = s1;
                s1 = o;
            }
            out
        })
    }
}
