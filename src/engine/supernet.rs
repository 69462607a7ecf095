//! The DARTS search supernet (spec §1.2–1.3): stem, normal and reduction cells, classifier.

use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

use crate::config::ModelConfig;
use std::cell::OnceCell;

use crate::arch::{Selection, edge_endpoints, node_rows, num_edges};
use crate::engine::ops::{
    Bn, BnMode, FactorizedReduce, Input, Op, ReluConvBn, from_nhwc, is_channels_last, nhwc,
    to_channels_last,
};
use crate::space::{CellType, OpLists};

/// How a forward pass mixes the candidate ops of each edge.
#[derive(Clone, Copy)]
pub enum Mix<'a> {
    /// Every op on every edge, with autograd through all of them: `out_e = Σ_k w[e,k] · o_k(x_e)`
    /// (`w` is edges × ops; DARTS, and the reference for the NASP architecture pass).
    Dense(&'a Tensor),
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
    /// Every op mixed by `w` (normal, reduce).
    pub fn dense(w: &'a [Tensor; 2]) -> Self {
        CellMix {
            normal: Mix::Dense(&w[0]),
            reduce: Mix::Dense(&w[1]),
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
    /// The edges of all groups in group order (rows of the mixing weights, gathered once), and
    /// the inverse permutation.
    group_rows: Tensor,
    group_rows_inv: Tensor,
    nodes: usize,
}

impl Cell {
    fn preprocess(&self, s0: &Tensor, s1: &Tensor, mode: BnMode) -> Vec<Tensor> {
        vec![self.pre0.forward(s0, mode), self.pre1.forward(s1, mode)]
    }

    /// A node output of zeros (both kept edges hold `none`), shaped for cell input `x`.
    fn zero_node(&self, x: &Tensor) -> Tensor {
        let relu = OnceCell::new();
        Op::Zero {
            stride: if self.reduction { 2 } else { 1 },
        }
        .forward(&Input::new(x, &relu), BnMode::Eval)
    }

    /// The mixing weights restricted to the ops that are not `none`.
    fn live_columns(&self, w: &Tensor) -> Tensor {
        match &self.live_index {
            Some(idx) => w.index_select(1, idx),
            None => w.shallow_clone(),
        }
    }

    fn forward(&self, s0: &Tensor, s1: &Tensor, mix: Mix, mode: BnMode) -> Tensor {
        self.forward_edges(s0, s1, mix, mode, false).0
    }

    /// Edge by edge: the sparse mix, and the dense mix with autograd through every op (DARTS).
    /// Also returns the node outputs; with `grad_nodes`, a node that does not depend on anything
    /// that requires grad (both kept edges `none`) becomes a leaf that does, so autograd can give
    /// ∂L/∂node for every node.
    fn forward_edges(
        &self,
        s0: &Tensor,
        s1: &Tensor,
        mix: Mix,
        mode: BnMode,
        grad_nodes: bool,
    ) -> (Tensor, Vec<Tensor>) {
        let mut states = self.preprocess(s0, s1, mode);
        let mut relus: Vec<OnceCell<Tensor>> = vec![OnceCell::new(), OnceCell::new()];
        let weights = match mix {
            Mix::Dense(w) => Some(self.live_columns(w)),
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
                    (Mix::Dense(_), Some(w)) => Some(self.dense_edge(e, &input, w, mode)),
                    (Mix::Dense(_), None) => None,
                };
                if let Some(t) = term {
                    acc = Some(match acc {
                        None => t,
                        Some(a) => a + t,
                    });
                }
            }
            let mut out = match acc {
                Some(a) => a,
                None => self.zero_node(&states[0]),
            };
            if grad_nodes && !out.requires_grad() {
                out = out.detach().set_requires_grad(true);
            }
            states.push(out);
            relus.push(OnceCell::new());
        }
        (Tensor::cat(&states[2..], 1), states.split_off(2))
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
        if outs.first().is_some_and(is_channels_last) {
            // Stacked in N, H, W, C memory order, so the sum stays channels-last.
            let outs: Vec<Tensor> = outs.iter().map(nhwc).collect();
            from_nhwc(&(Tensor::stack(&outs, 0) * row).sum_dim_intlist(0, false, None))
        } else {
            (Tensor::stack(&outs, 0) * row).sum_dim_intlist(0, false, None)
        }
    }

    /// The NASP architecture pass, without autograd: every op on every edge mixed by Ā (one-hot
    /// rows, so the values are those of the selected ops), each group's ops fused and their last
    /// batch norms run as one (recording statistics as a per-edge pass would). Returns the cell
    /// output and, per group, what ∂L/∂Ā needs: the ops' outputs (see [`GroupTrace`]).
    fn arch_pass(
        &self,
        s0: &Tensor,
        s1: &Tensor,
        w: &Tensor,
        sel: Option<&Selection>,
        mode: BnMode,
    ) -> (Tensor, Vec<GroupTrace>) {
        let mut states = self.preprocess(s0, s1, mode);
        // The mixing weights in group order, live ops only (only the weighted mixture reads them).
        let w = sel
            .is_none()
            .then(|| self.live_columns(&w.index_select(0, &self.group_rows)));
        let mut acc: Vec<Option<Tensor>> = (0..self.nodes).map(|_| None).collect();
        let mut traces = Vec::with_capacity(self.groups.len());
        let mut row = 0i64;
        for g in &self.groups {
            let x = &states[g.src];
            let e = g.edges.len() as i64;
            let relu = OnceCell::new();
            let input = Input::fused(x, &relu, e);
            // Every op's output before its last batch norm, normalised at once, and the skip.
            let normed = g.bn.as_ref().map(|bn| {
                let pre: Vec<Tensor> = g
                    .bn_cols
                    .iter()
                    .filter_map(|&i| g.ops[i].pre_bn(&input, mode))
                    .collect();
                bn.forward(&Tensor::cat(&pre, 1), mode)
            });
            let skip = g.skip_col.map(|c| g.ops[c].forward(&input, mode));
            let terms: Vec<(usize, Tensor)> = match sel {
                // Ā's rows are one-hot (kept edges) or zero, so each edge's mixture is its
                // selected op's output: pick it instead of weighting every op.
                Some(sel) => g
                    .edges
                    .iter()
                    .enumerate()
                    .filter_map(|(i, &(edge, node))| {
                        let col = self
                            .live_ops
                            .iter()
                            .position(|&k| Some(k) == sel.ops[edge])?;
                        let (i, e) = (i as i64, e);
                        let t = match (g.bn_cols.iter().position(|&c| c == col), &normed, &skip) {
                            (Some(m), Some(y), _) => per_edge(y, g.bn_cols.len() as i64, e)
                                .select(1, m as i64)
                                .select(1, i),
                            (None, _, Some(x_each)) if g.skip_col == Some(col) => {
                                per_edge(x_each, 1, e).select(1, 0).select(1, i)
                            }
                            _ => return None,
                        };
                        Some((node, t))
                    })
                    .collect(),
                // Ā as data (a CUDA graph replays this with each step's Ā).
                None => {
                    let wg = w.as_ref().map_or_else(Tensor::new, |w| w.narrow(0, row, e));
                    let mixed = self.weighted(g, &wg, &normed, &skip, &states[0]);
                    g.edges
                        .iter()
                        .enumerate()
                        .map(|(i, &(_, node))| (node, mixed.select(1, i as i64)))
                        .collect()
                }
            };
            for (node, t) in terms {
                acc[node] = Some(match acc[node].take() {
                    None => t,
                    Some(a) => a + t,
                });
            }
            row += e;
            traces.push(GroupTrace { normed, skip });
            // Node src − 1 has now received all its inputs (none at all: both kept edges hold
            // `none`, a zero output).
            if let Some(n) = g.src.checked_sub(1).filter(|&n| n < self.nodes) {
                let out = match acc[n].take() {
                    Some(a) => a,
                    None => self.zero_node(&states[0]),
                };
                states.push(out);
            }
        }
        (Tensor::cat(&states[2..], 1), traces)
    }

    /// `Σ_k w[e,k] · o_k(x_e)` for a group's edges (N × E × C × H × W) from its traced outputs.
    fn weighted(
        &self,
        g: &Group,
        wg: &Tensor,
        normed: &Option<Tensor>,
        skip: &Option<Tensor>,
        cell_input: &Tensor,
    ) -> Tensor {
        let e = g.edges.len() as i64;
        let mut parts: Vec<Tensor> = Vec::with_capacity(2);
        if let (Some(y), Some(idx)) = (normed, &g.bn_index) {
            let m = g.bn_cols.len() as i64;
            let wb = wg.index_select(1, idx).transpose(0, 1).to_kind(y.kind());
            parts.push(if is_channels_last(y) {
                // Reduced in N, H, W, (op, edge, C) memory order: the sum (a new, contiguous
                // tensor) then reads as N × E × C × H × W with C at stride 1.
                let sz = y.size();
                let v = nhwc(y).view([sz[0], sz[2], sz[3], m, e, sz[1] / (m * e)]);
                (v * wb.reshape([1, 1, 1, m, e, 1]))
                    .sum_dim_intlist(3, false, None)
                    .permute([0, 3, 4, 1, 2])
            } else {
                (per_edge(y, m, e) * wb.reshape([1, m, e, 1, 1, 1])).sum_dim_intlist(1, false, None)
            });
        }
        if let (Some(x_each), Some(col)) = (skip, g.skip_col) {
            let ws = wg
                .select(1, col as i64)
                .reshape([1, e, 1, 1, 1])
                .to_kind(x_each.kind());
            parts.push(per_edge(x_each, 1, e).squeeze_dim(1) * ws);
        }
        let mut parts = parts.into_iter();
        match (parts.next(), parts.next()) {
            (Some(a), Some(b)) => a + b,
            (Some(a), None) => a,
            // Unreachable: every live op has a last batch norm or is the skip.
            _ => self
                .zero_node(cell_input)
                .unsqueeze(1)
                .repeat([1, e, 1, 1, 1]),
        }
    }

    /// ∂L/∂Ā of this cell (edges × all ops, `none` columns zero) from its groups' traces and
    /// ∂L/∂node: `∂L/∂Ā[e,k] = Σ ∂L/∂node(e) · o_k(x_e)`.
    fn arch_grad(&self, traces: &[GroupTrace], node_grads: &[Tensor], cols: i64) -> Tensor {
        let mut rows: Vec<Tensor> = Vec::with_capacity(self.groups.len());
        for (g, t) in self.groups.iter().zip(traces) {
            let e = g.edges.len() as i64;
            let grads: Vec<&Tensor> = g.edges.iter().map(|&(_, n)| &node_grads[n]).collect();
            let gn = stack_edges(&grads); // N × E × C × H × W
            let live = self.live_ops.len() as i64;
            let out = Tensor::zeros([e, live], (Kind::Float, gn.device()));
            if let (Some(y), Some(idx)) = (&t.normed, &g.bn_index) {
                let m = g.bn_cols.len() as i64;
                let prod = (per_edge(y, m, e) * gn.unsqueeze(1).to_kind(y.kind())).sum_dim_intlist(
                    &[0i64, 3, 4, 5][..],
                    false,
                    Kind::Float,
                );
                let _ = out
                    .shallow_clone()
                    .index_copy_(1, idx, &prod.transpose(0, 1));
            }
            if let (Some(x_each), Some(col)) = (&t.skip, g.skip_col) {
                let prod = (per_edge(x_each, 1, e).squeeze_dim(1) * gn.to_kind(x_each.kind()))
                    .sum_dim_intlist(&[0i64, 2, 3, 4][..], false, Kind::Float);
                out.select(1, col as i64).copy_(&prod);
            }
            rows.push(out);
        }
        let by_group = Tensor::cat(&rows, 0);
        let by_edge = by_group.index_select(0, &self.group_rows_inv);
        match &self.live_index {
            Some(idx) => {
                let full =
                    Tensor::zeros([by_edge.size()[0], cols], (Kind::Float, by_edge.device()));
                let _ = full.shallow_clone().index_copy_(1, idx, &by_edge);
                full
            }
            None => by_edge,
        }
    }
}

/// Per-edge N × C × H × W tensors stacked N × E × C × H × W, channels-last ones in N, H, W, E, C
/// memory order (so products with a channels-last trace read both in the same order).
fn stack_edges(ts: &[&Tensor]) -> Tensor {
    if ts.first().is_some_and(|t| is_channels_last(t)) {
        let ts: Vec<Tensor> = ts.iter().map(|t| nhwc(t)).collect();
        Tensor::stack(&ts, 3).permute([0, 3, 4, 1, 2])
    } else {
        Tensor::stack(ts, 1)
    }
}

/// `t` (N × (m·e·C) × H × W, side by side as op, edge, channel) viewed N × m × e × C × H × W.
fn per_edge(t: &Tensor, m: i64, e: i64) -> Tensor {
    let sz = t.size();
    t.view([sz[0], m, e, sz[1] / (m * e), sz[2], sz[3]])
}

/// What the NASP architecture pass keeps of one group for ∂L/∂Ā: the normalised outputs of its
/// ops that end in a batch norm (side by side: op, edge, channel) and the skip's (per edge).
pub struct GroupTrace {
    normed: Option<Tensor>,
    skip: Option<Tensor>,
}

/// The NASP architecture pass of the whole network: logits and each cell's group traces.
pub struct ArchTrace {
    pub logits: Tensor,
    cells: Vec<Vec<GroupTrace>>,
}

impl ArchTrace {
    /// Every traced tensor (for tests).
    #[cfg(test)]
    pub fn tensors(&self) -> Vec<&Tensor> {
        self.cells
            .iter()
            .flatten()
            .flat_map(|g| g.normed.iter().chain(g.skip.iter()))
            .collect()
    }

    /// Another handle on the same tensors.
    pub fn shallow_clone(&self) -> ArchTrace {
        let t = |o: &Option<Tensor>| o.as_ref().map(Tensor::shallow_clone);
        ArchTrace {
            logits: self.logits.shallow_clone(),
            cells: self
                .cells
                .iter()
                .map(|c| {
                    c.iter()
                        .map(|g| GroupTrace {
                            normed: t(&g.normed),
                            skip: t(&g.skip),
                        })
                        .collect()
                })
                .collect(),
        }
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
    /// Keep activations channels-last (N, H, W, C in memory) from the stem on
    /// (`channels_last`); the values are the same either way.
    pub channels_last: bool,
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
                let input = e - node_rows(edge_endpoints(e, m.nodes).0 - 2).start;
                let stride = if reduction && input < 2 { 2 } else { 1 };
                let mut ops = Vec::with_capacity(names.len());
                for (k, name) in names.iter().enumerate() {
                    let spec =
                        crate::space::lookup(name).ok_or_else(|| format!("unknown op {name:?}"))?;
                    ops.push(Op::new(&cp / "edges" / e / k, spec.kind, c_cur, stride));
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
            let mut inv = vec![0i64; rows.len()];
            for (i, &r) in rows.iter().enumerate() {
                inv[r as usize] = i as i64;
            }
            let group_rows_inv = Tensor::from_slice(&inv).to_device(p.device());

            cells.push(Cell {
                reduction,
                groups,
                group_rows,
                group_rows_inv,
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
            channels_last: false,
        })
    }

    /// Logits for a batch `x` (N×3×H×W, float).
    pub fn forward(&self, x: &Tensor, mix: CellMix, train: bool) -> Tensor {
        self.forward_nodes(x, mix, BnMode::of(train), false).0
    }

    fn stem(&self, x: &Tensor, mode: BnMode) -> Tensor {
        let y = if self.channels_last && !is_channels_last(x) {
            to_channels_last(x).apply(&self.stem_conv)
        } else {
            x.apply(&self.stem_conv)
        };
        match mode {
            BnMode::Train => self.stem_bn.forward_t(&y, true),
            BnMode::Eval => self.stem_bn.forward_t(&y, false),
            BnMode::BatchOnly => y.batch_norm(
                self.stem_bn.ws.as_ref(),
                self.stem_bn.bs.as_ref(),
                None::<&Tensor>,
                None,
                true,
                0.1,
                1e-5,
                true,
            ),
        }
    }

    fn head(&self, s: &Tensor) -> Tensor {
        s.adaptive_avg_pool2d([1, 1])
            .flatten(1, -1)
            .apply(&self.classifier)
    }

    /// Logits and every cell's node outputs (with `grad_nodes`, each one something autograd can
    /// differentiate with respect to; see `Cell::forward_edges`).
    pub fn forward_nodes(
        &self,
        x: &Tensor,
        mix: CellMix,
        mode: BnMode,
        grad_nodes: bool,
    ) -> (Tensor, Vec<Vec<Tensor>>) {
        let stem = self.stem(x, mode);
        let mut s0 = stem.shallow_clone();
        let mut s1 = stem;
        let mut nodes = Vec::with_capacity(self.cells.len());
        for cell in &self.cells {
            let m = if cell.reduction {
                mix.reduce
            } else {
                mix.normal
            };
            let (out, n) = cell.forward_edges(&s0, &s1, m, mode, grad_nodes);
            nodes.push(n);
            s0 = s1;
            s1 = out;
        }
        (self.head(&s1), nodes)
    }

    /// The NASP architecture pass at Ā = `w` (normal, reduce), without autograd: every op of
    /// every edge runs (fused per source state), batch-norm statistics are recorded once.
    /// With `sel` (Ā's selection, matching `w`), each edge's mixture is taken as its selected
    /// op's output; without, `w` weights every op (what a CUDA graph replays, Ā being data).
    pub fn arch_pass(
        &self,
        x: &Tensor,
        w: &[Tensor; 2],
        sel: Option<&[Selection; 2]>,
        mode: BnMode,
    ) -> ArchTrace {
        tch::no_grad(|| {
            let stem = self.stem(x, mode);
            let mut s0 = stem.shallow_clone();
            let mut s1 = stem;
            let mut cells = Vec::with_capacity(self.cells.len());
            for cell in &self.cells {
                let i = usize::from(cell.reduction);
                let (out, traces) = cell.arch_pass(&s0, &s1, &w[i], sel.map(|s| &s[i]), mode);
                cells.push(traces);
                s0 = s1;
                s1 = out;
            }
            ArchTrace {
                logits: self.head(&s1),
                cells,
            }
        })
    }

    /// ∂L/∂Ā (normal, reduce; `cols` ops each) from an architecture pass and ∂L/∂node of every
    /// cell, taken at the same Ā (e.g. from a sparse pass through the selected ops).
    pub fn arch_grads(
        &self,
        trace: &ArchTrace,
        node_grads: &[Vec<Tensor>],
        cols: [i64; 2],
    ) -> [Tensor; 2] {
        tch::no_grad(|| {
            let mut out: [Option<Tensor>; 2] = [None, None];
            for ((cell, t), g) in self.cells.iter().zip(&trace.cells).zip(node_grads) {
                let i = usize::from(cell.reduction);
                let grad = cell.arch_grad(t, g, cols[i]);
                out[i] = Some(match out[i].take() {
                    None => grad,
                    Some(a) => a + grad,
                });
            }
            let device = trace.logits.device();
            let rows = num_edges(self.nodes) as i64;
            [0, 1].map(|i| {
                out[i]
                    .take()
                    .unwrap_or_else(|| Tensor::zeros([rows, cols[i]], (Kind::Float, device)))
            })
        })
    }

    /// Gives every batch norm in the cells a constant unit scale and zero shift: the same
    /// network, but on a GPU libtorch runs those batch norms through cuDNN (`cudnn_batch_norm`).
    pub fn set_unit_affine_bn(&mut self) {
        let f = &mut |bn: &mut Bn| bn.set_unit_affine();
        for cell in &mut self.cells {
            match &mut cell.pre0 {
                Pre::Conv(c) => f(&mut c.bn),
                Pre::Reduce(r) => f(&mut r.bn),
            }
            f(&mut cell.pre1.bn);
            for op in cell.edges.iter_mut().flatten() {
                op.for_each_bn(f);
            }
            for g in &mut cell.groups {
                for op in &mut g.ops {
                    op.for_each_bn(f);
                }
                if let Some(bn) = &mut g.bn {
                    f(bn);
                }
            }
        }
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
