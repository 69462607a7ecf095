//! The NASP architecture pass of a cell (every op of every edge, fused per group, without
//! autograd) and ∂L/∂Ā from what it traced: the fast path of the NASP architecture gradient.

use std::cell::OnceCell;

use tch::{Kind, Tensor};

use super::cell::{Cell, Group};
use crate::arch::Selection;
use crate::engine::ops::{BnMode, Input, is_channels_last, nhwc};

impl Cell {
    /// The NASP architecture pass, without autograd: every op on every edge mixed by Ā (one-hot
    /// rows, so the values are those of the selected ops), each group's ops fused and their last
    /// batch norms run as one (recording statistics as a per-edge pass would). Returns the cell
    /// output and, per group, what ∂L/∂Ā needs: the ops' outputs (see [`GroupTrace`]).
    pub(super) fn arch_pass(
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
            let e = g.edges.len() as i64;
            let trace = self.group_pass(g, &states[g.src], mode);
            let terms: Vec<(usize, Tensor)> = match sel {
                Some(sel) => self.selected_terms(g, sel, &trace),
                // Ā as data (a CUDA graph replays this with each step's Ā).
                None => {
                    let wg = w.as_ref().map_or_else(Tensor::new, |w| w.narrow(0, row, e));
                    let mixed = self.weighted(g, &wg, &trace.normed, &trace.skip, &states[0]);
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
            traces.push(trace);
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

    /// Every op of group `g` on its state `x`: the outputs before each op's last batch norm,
    /// normalised at once, and the skip's.
    fn group_pass(&self, g: &Group, x: &Tensor, mode: BnMode) -> GroupTrace {
        let relu = OnceCell::new();
        let input = Input::fused(x, &relu, g.edges.len() as i64);
        let normed = g.bn.as_ref().map(|bn| {
            let pre: Vec<Tensor> = g
                .bn_cols
                .iter()
                .filter_map(|&i| g.ops[i].pre_bn(&input, mode))
                .collect();
            bn.forward(&Tensor::cat(&pre, 1), mode)
        });
        let skip = g.skip_col.map(|c| g.ops[c].forward(&input, mode));
        GroupTrace { normed, skip }
    }

    /// Each kept edge's term for its node: Ā's rows are one-hot (kept edges) or zero, so an
    /// edge's mixture is its selected op's output, picked from the trace instead of weighting
    /// every op.
    fn selected_terms(&self, g: &Group, sel: &Selection, t: &GroupTrace) -> Vec<(usize, Tensor)> {
        let e = g.edges.len() as i64;
        g.edges
            .iter()
            .enumerate()
            .filter_map(|(i, &(edge, node))| {
                let col = self
                    .live_ops
                    .iter()
                    .position(|&k| Some(k) == sel.ops[edge])?;
                let i = i as i64;
                let t = match (g.bn_cols.iter().position(|&c| c == col), &t.normed, &t.skip) {
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
            .collect()
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
    pub(super) fn arch_grad(
        &self,
        traces: &[GroupTrace],
        node_grads: &[Tensor],
        cols: i64,
    ) -> Tensor {
        let mut rows: Vec<Tensor> = Vec::with_capacity(self.groups.len());
        for (g, t) in self.groups.iter().zip(traces) {
            let e = g.edges.len() as i64;
            let grads: Vec<&Tensor> = g.edges.iter().map(|&(_, n)| &node_grads[n]).collect();
            let gn = stack_edges(&grads); // N × E × C × H × W
            let live = self.live_ops.len() as i64;
            let out = Tensor::zeros([e, live], (Kind::Float, gn.device()));
            if let (Some(y), Some(idx)) = (&t.normed, &g.bn_index) {
                let m = g.bn_cols.len() as i64;
                let prod = if is_channels_last(y) {
                    products_nhwc(y, &gn, m, e)
                } else {
                    (per_edge(y, m, e) * gn.unsqueeze(1).to_kind(y.kind())).sum_dim_intlist(
                        &[0i64, 3, 4, 5][..],
                        false,
                        Kind::Float,
                    )
                };
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

/// `Σ_{n,c,h,w} y[n,(k,e,c),h,w] · g[n,e,c,h,w]` per (op k, edge e) for a channels-last trace
/// `y` (memory N, H, W, (op, edge, C)) and node gradients `gn` stacked by [`stack_edges`]
/// (memory N, H, W, E, C): both read in memory order as P × m × e × C and P × e × C (P = N·H·W),
/// the product summed over C (the innermost dimension), then over P. The same sums as the
/// general path, without its strided six-dimensional reduction (2× the time on the CPU).
fn products_nhwc(y: &Tensor, gn: &Tensor, m: i64, e: i64) -> Tensor {
    let sz = y.size();
    let (p, c) = (sz[0] * sz[2] * sz[3], sz[1] / (m * e));
    let yv = nhwc(y).view([p, m, e, c]);
    let gv = gn.permute([0, 3, 4, 1, 2]).reshape([p, 1, e, c]);
    (yv * gv.to_kind(y.kind()))
        .sum_dim_intlist(&[3i64][..], false, Kind::Float)
        .sum_dim_intlist(&[0i64][..], false, Kind::Float)
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
    pub(super) cells: Vec<Vec<GroupTrace>>,
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
