//! The DARTS search supernet (spec §1.2–1.3): stem, normal and reduction cells, classifier.

use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

use crate::config::ModelConfig;
use std::cell::OnceCell;

use crate::engine::ops::{Bn, BnMode, FactorizedReduce, Input, Op, ReluConvBn};
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
    fn forward(&self, x: &Tensor, mode: BnMode) -> Tensor {
        match self {
            Pre::Conv(c) => c.forward(x, mode),
            Pre::Reduce(r) => r.forward(x, mode),
        }
    }
}

/// The edges that leave one state, with their live ops fused (see [`Op::fuse`]).
struct Group {
    /// The state they read (0, 1: the cell inputs; 2 + n: node n).
    src: usize,
    /// Their edge indices and target nodes, in node order.
    edges: Vec<(usize, usize)>,
    /// One fused op per live op of the list, in list order.
    ops: Vec<Op>,
    /// The last batch norms of all ops that have one, as one over their channels side by side
    /// (each op's own is a slice of it), so the group normalises once; `None` if no op has one.
    bn: Option<Bn>,
    /// Among the live ops (mixing-weight columns): those with a last batch norm, in order (also
    /// as a device tensor), and the stride-1 skip's.
    bn_cols: Vec<usize>,
    bn_index: Option<Tensor>,
    skip_col: Option<usize>,
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
    groups: Vec<Group>,
    /// The edges of all groups in group order (rows of the mixing weights, gathered once).
    group_rows: Tensor,
    nodes: usize,
}

impl Cell {
    fn preprocess(&self, s0: &Tensor, s1: &Tensor, mode: BnMode) -> Vec<Tensor> {
        vec![self.pre0.forward(s0, mode), self.pre1.forward(s1, mode)]
    }

    /// The mixing weights restricted to the ops that are not `none`.
    fn live_columns(&self, w: &Tensor) -> Tensor {
        match &self.live_index {
            Some(idx) => w.index_select(1, idx),
            None => w.shallow_clone(),
        }
    }

    fn forward(&self, s0: &Tensor, s1: &Tensor, mix: Mix, mode: BnMode) -> Tensor {
        match mix {
            Mix::Dense { w, live: Some(sel) } => self.forward_fused(s0, s1, w, sel, mode),
            _ => self.forward_edges(s0, s1, mix, mode),
        }
    }

    /// Edge by edge: the sparse mix, and the dense mix with autograd through every op (DARTS).
    fn forward_edges(&self, s0: &Tensor, s1: &Tensor, mix: Mix, mode: BnMode) -> Tensor {
        let mut states = self.preprocess(s0, s1, mode);
        let mut relus: Vec<OnceCell<Tensor>> = vec![OnceCell::new(), OnceCell::new()];
        let weights = match mix {
            Mix::Dense { w, .. } => Some(self.live_columns(w)),
            Mix::Sparse(_) => None,
        };
        for n in 0..self.nodes {
            let rows = node_rows(n);
            let mut acc: Option<Tensor> = None;
            for (j, e) in rows.clone().enumerate() {
                let input = Input::new(&states[j], &relus[j]);
                let term = match (mix, &weights) {
                    (Mix::Sparse(sel), _) => {
                        sel.ops[e].map(|k| self.edges[e][k].forward(&input, mode))
                    }
                    (Mix::Dense { .. }, Some(w)) => Some(self.dense_edge(e, &input, w, mode)),
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
    fn dense_edge(&self, e: usize, input: &Input, w: &Tensor, mode: BnMode) -> Tensor {
        let outs: Vec<Tensor> = self
            .live_ops
            .iter()
            .map(|&k| self.edges[e][k].forward(input, mode))
            .collect();
        let mut row = w.get(e as i64).view([-1, 1, 1, 1, 1]);
        if row.kind() != input.x.kind() {
            row = row.to_kind(input.x.kind());
        }
        (Tensor::stack(&outs, 0) * row).sum_dim_intlist(0, false, None)
    }

    /// The NASP architecture pass: every op on every edge mixed by Ā, with autograd to Ā and,
    /// through the ops Ā selects, to the states (∂L/∂Ā needs every op's output; the unselected
    /// ops' gradients are multiplied by Ā = 0). Each group runs its fused ops once without
    /// autograd (recording batch-norm statistics, as a per-edge pass would); each selected op
    /// runs again on its own with autograd, as a term of value zero that carries the gradient.
    fn forward_fused(
        &self,
        s0: &Tensor,
        s1: &Tensor,
        w: &Tensor,
        sel: &Selection,
        mode: BnMode,
    ) -> Tensor {
        let mut states = self.preprocess(s0, s1, mode);
        let w = self.live_columns(&w.index_select(0, &self.group_rows));
        let mut acc: Vec<Option<Tensor>> = (0..self.nodes).map(|_| None).collect();
        let mut row = 0i64;
        let second = match mode {
            BnMode::Eval => BnMode::Eval,
            _ => BnMode::BatchOnly,
        };
        for g in &self.groups {
            let x = &states[g.src];
            let e = g.edges.len() as i64;
            // Every op's output before its last batch norm, normalised at once, and the skip.
            let (normed, skip) = tch::no_grad(|| {
                let relu = OnceCell::new();
                let input = Input::fused(x, &relu, e);
                let normed = g.bn.as_ref().map(|bn| {
                    let pre: Vec<Tensor> = g
                        .bn_cols
                        .iter()
                        .filter_map(|&i| g.ops[i].pre_bn(&input, mode))
                        .collect();
                    bn.forward(&Tensor::cat(&pre, 1), mode)
                });
                let skip = g.skip_col.map(|c| g.ops[c].forward(&input, mode));
                (normed, skip)
            });
            let wg = w.narrow(0, row, e);
            let mut parts: Vec<Tensor> = Vec::with_capacity(2);
            if let (Some(y), Some(idx)) = (&normed, &g.bn_index) {
                let sz = y.size();
                let m = g.bn_cols.len() as i64;
                let c = sz[1] / (m * e);
                let mut wb = wg
                    .index_select(1, idx)
                    .transpose(0, 1)
                    .reshape([1, m, e, 1, 1, 1]);
                if wb.kind() != y.kind() {
                    wb = wb.to_kind(y.kind());
                }
                parts.push(
                    (y.view([sz[0], m, e, c, sz[2], sz[3]]) * wb).sum_dim_intlist(1, false, None),
                );
            }
            if let (Some(x_each), Some(col)) = (&skip, g.skip_col) {
                let sz = x_each.size();
                let mut ws = wg.select(1, col as i64).reshape([1, e, 1, 1, 1]);
                if ws.kind() != x_each.kind() {
                    ws = ws.to_kind(x_each.kind());
                }
                parts.push(x_each.view([sz[0], e, sz[1] / e, sz[2], sz[3]]) * ws);
            }
            let mut parts = parts.into_iter();
            let mixed = match (parts.next(), parts.next()) {
                (Some(a), Some(b)) => a + b,
                (Some(a), None) => a,
                // Unreachable: every live op has a last batch norm or is the skip.
                _ => self.edges[g.edges[0].0][0]
                    .zero_like(x, self.reduction)
                    .unsqueeze(1)
                    .repeat([1, e, 1, 1, 1]),
            };
            let relu = OnceCell::new();
            let input = Input::new(x, &relu);
            for (i, &(edge, node)) in g.edges.iter().enumerate() {
                let value = mixed.select(1, i as i64);
                let t = match sel.ops[edge].map(|o| &self.edges[edge][o]) {
                    Some(op) if !op.is_zero() => {
                        let o = op.forward(&input, second);
                        value + (&o - o.detach())
                    }
                    _ => value,
                };
                acc[node] = Some(match acc[node].take() {
                    None => t,
                    Some(a) => a + t,
                });
            }
            row += e;
            // Node src − 1 has now received all its inputs.
            if let Some(out) = g.src.checked_sub(1).and_then(|n| acc.get_mut(n)?.take()) {
                states.push(out);
            }
        }
        Tensor::cat(&states[2..], 1)
    }
}

impl Op {
    /// A zero tensor shaped like this edge's output for input `x`.
    fn zero_like(&self, x: &Tensor, reduction: bool) -> Tensor {
        let relu = OnceCell::new();
        Op::Zero {
            stride: if reduction { 2 } else { 1 },
        }
        .forward(&Input::new(x, &relu), BnMode::Eval)
    }
}

/// Groups the edges of a cell by the state they read and fuses each live op across them.
fn make_groups(
    edges: &[Vec<Op>],
    live_ops: &[usize],
    nodes: usize,
    device: Device,
) -> Result<Vec<Group>, String> {
    (0..=nodes)
        .map(|src| {
            let list: Vec<(usize, usize)> = (0..nodes)
                .filter(|n| src <= n + 1)
                .map(|n| (node_rows(n).start + src, n))
                .collect();
            let mut ops = live_ops
                .iter()
                .map(|&k| Op::fuse(&list.iter().map(|&(e, _)| &edges[e][k]).collect::<Vec<_>>()))
                .collect::<Result<Vec<_>, _>>()?;
            // One batch norm over all ops' last ones: the edges' buffers move into it, op by op
            // and edge by edge (the order of the concatenated pre-BN outputs), and each fused
            // op's own becomes a slice of it.
            let parts: Vec<&Bn> = live_ops
                .iter()
                .flat_map(|&k| {
                    list.iter()
                        .filter_map(move |&(e, _)| edges[e][k].final_bn())
                })
                .collect();
            let bn = if parts.is_empty() {
                None
            } else {
                let all = Bn::fuse(&parts)?;
                let mut start = 0;
                for op in ops.iter_mut() {
                    if let Some(len) = op.final_bn().map(Bn::channels) {
                        op.set_final_bn(all.slice(start, len));
                        start += len;
                    }
                }
                Some(all)
            };
            let bn_cols: Vec<usize> = (0..ops.len())
                .filter(|&i| ops[i].final_bn().is_some())
                .collect();
            let skip_col = ops.iter().position(|o| matches!(o, Op::Identity));
            let bn_index = (!bn_cols.is_empty()).then(|| {
                Tensor::from_slice(&bn_cols.iter().map(|&i| i as i64).collect::<Vec<_>>())
                    .to_device(device)
            });
            Ok(Group {
                src,
                edges: list,
                ops,
                bn,
                bn_cols,
                bn_index,
                skip_col,
            })
        })
        .collect()
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
                Pre::Reduce(FactorizedReduce::new(&cp / "pre0", c_pp, c_cur))
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
            let groups = make_groups(&edges, &live_ops, m.nodes, p.device())?;
            let rows: Vec<i64> = groups
                .iter()
                .flat_map(|g| g.edges.iter().map(|&(e, _)| e as i64))
                .collect();
            let group_rows = Tensor::from_slice(&rows).to_device(p.device());

            cells.push(Cell {
                reduction,
                groups,
                group_rows,
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
            let out = cell.forward(&s0, &s1, m, BnMode::of(train));
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
                let o = cell.forward(&s0, &s1, Mix::Sparse(&sel), BnMode::Eval);
                out.push(o.size());
                s0 = s1;
                s1 = o;
            }
            out
        })
    }
}
