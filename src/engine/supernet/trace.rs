//! The NASP architecture pass of a cell (every op of every edge, fused per group, without
//! autograd) and ∂L/∂Ā from what it traced: the fast path of the NASP architecture gradient.

use std::cell::OnceCell;

use tch::{Kind, Tensor};

use super::cell::{Cell, Group};
use crate::arch::Selection;
use crate::engine::ops::{BnMode, Input, is_channels_last, nhwc};

impl Cell {
    /// The NASP architecture pass, without autograd: every op on every edge mixed by Ā (one-hot
    /// rows, so the values are those of the selected ops), each group's ops fused, their last
    /// batch norms recording statistics as a per-edge pass would. Returns the cell output and,
    /// per group, what ∂L/∂Ā needs: the ops' outputs before those batch norms and their
    /// statistics (see [`GroupTrace`]).
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
                    let mixed = self.weighted(g, &wg, &trace, &states[0]);
                    g.edges
                        .iter()
                        .enumerate()
                        .map(|(i, &(_, node))| (node, mixed.select(1, i as i64)))
                        .collect()
                }
            };
            for (node, t) in terms {
                accumulate(&mut acc[node], t);
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

    /// Every op of group `g` on its state `x`: each op's output before its last batch norm with
    /// that batch norm's statistics (recorded as a per-edge pass would; the normalised outputs
    /// are formed only where read), and the skip's output.
    fn group_pass(&self, g: &Group, x: &Tensor, mode: BnMode) -> GroupTrace {
        let relu = OnceCell::new();
        let e = g.edges.len() as i64;
        let input = Input::fused(x, &relu, e);
        let pre = g
            .bn_cols
            .iter()
            .filter_map(|&i| {
                let op = &g.ops[i];
                let (y, shared) = op.pre_bn_once(&input, mode)?;
                let copies = if shared { e } else { 1 };
                let (mean, invstd) = op.final_bn()?.stats(&y, mode, copies);
                Some(PreBn {
                    y,
                    shared,
                    mean,
                    invstd,
                })
            })
            .collect();
        let skip = g.skip_col.map(|c| g.ops[c].forward(&input, mode));
        GroupTrace { pre, skip }
    }

    /// Each kept edge's term for its node: Ā's rows are one-hot (kept edges) or zero, so an
    /// edge's mixture is its selected op's output, formed from the trace instead of weighting
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
                let t = match (g.bn_cols.iter().position(|&c| c == col), &t.skip) {
                    (Some(j), _) => t.pre[j].normed_edge(i, e),
                    (None, Some(x_each)) if g.skip_col == Some(col) => {
                        per_edge(x_each, 1, e).select(1, 0).select(1, i)
                    }
                    _ => return None,
                };
                Some((node, t))
            })
            .collect()
    }

    /// `Σ_k w[e,k] · o_k(x_e)` for a group's edges (N × E × C × H × W) from its trace: each
    /// op's normalised output is `(y − mean) · invstd`, so its weighted term is `y` scaled per
    /// edge and channel, less a shift.
    fn weighted(&self, g: &Group, wg: &Tensor, t: &GroupTrace, cell_input: &Tensor) -> Tensor {
        let e = g.edges.len() as i64;
        let mut sum: Option<Tensor> = None;
        for (p, &col) in t.pre.iter().zip(&g.bn_cols) {
            let c = p.mean.size()[0] / e;
            let w = wg.select(1, col as i64).to_kind(Kind::Float).view([e, 1]);
            let scale = p.invstd.view([e, c]) * w;
            let shift = p.mean.view([e, c]) * &scale;
            let sz = p.y.size();
            let y =
                p.y.view([sz[0], if p.shared { 1 } else { e }, c, sz[2], sz[3]]);
            let term =
                (y * scale.view([1, e, c, 1, 1]) - shift.view([1, e, c, 1, 1])).to_kind(p.y.kind());
            accumulate(&mut sum, term);
        }
        if let (Some(x_each), Some(col)) = (&t.skip, g.skip_col) {
            let ws = wg
                .select(1, col as i64)
                .reshape([1, e, 1, 1, 1])
                .to_kind(x_each.kind());
            let term = per_edge(x_each, 1, e).squeeze_dim(1) * ws;
            accumulate(&mut sum, term);
        }
        // `None` is unreachable: every live op has a last batch norm or is the skip.
        sum.unwrap_or_else(|| {
            self.zero_node(cell_input)
                .unsqueeze(1)
                .repeat([1, e, 1, 1, 1])
        })
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
            if let (false, Some(idx)) = (t.pre.is_empty(), &g.bn_index) {
                // Σ ∂L/∂node per edge and channel, shared by every op's term.
                let gsum = gn.sum_dim_intlist(&[0i64, 3, 4][..], false, Kind::Float);
                let cols: Vec<Tensor> = t.pre.iter().map(|p| p.grad(&gn, &gsum, e)).collect();
                let _ = out
                    .shallow_clone()
                    .index_copy_(1, idx, &Tensor::stack(&cols, 1));
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

/// `sum += t`, starting from nothing.
fn accumulate(sum: &mut Option<Tensor>, t: Tensor) {
    *sum = Some(match sum.take() {
        None => t,
        Some(s) => s + t,
    });
}

/// `Σ_{n,h,w} y[n,(e,c),h,w] · g[n,e,c,h,w]` per edge and channel (E × C, float) for an op's
/// output before its last batch norm `y` (with `ey` = 1 edge: the same for every edge) and node
/// gradients `gn` stacked by [`stack_edges`]. Channels-last operands are read in memory order,
/// as P × ey × C and P × E × C (P = N·H·W), and summed over P; a strided five-dimensional
/// reduction instead costs about 2× on the CPU.
fn products(y: &Tensor, gn: &Tensor, ey: i64, e: i64) -> Tensor {
    let sz = y.size();
    let c = sz[1] / ey;
    let g = gn.to_kind(y.kind());
    if is_channels_last(y) {
        let p = sz[0] * sz[2] * sz[3];
        let yv = nhwc(y).view([p, ey, c]);
        let gv = g.permute([0, 3, 4, 1, 2]).reshape([p, e, c]);
        (yv * gv).sum_dim_intlist(&[0i64][..], false, Kind::Float)
    } else {
        (y.view([sz[0], ey, c, sz[2], sz[3]]) * g).sum_dim_intlist(
            &[0i64, 3, 4][..],
            false,
            Kind::Float,
        )
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

/// What the NASP architecture pass keeps of one group for ∂L/∂Ā: per op that ends in a batch
/// norm (the group's `bn_cols`, in order) its output before that batch norm and the batch
/// norm's statistics, and the skip's output (per edge).
pub struct GroupTrace {
    pre: Vec<PreBn>,
    skip: Option<Tensor>,
}

/// One (fused) op's output before its last batch norm and that batch norm's statistics in
/// this pass: the op's output is `(y − mean) · invstd` per channel. Keeping `y` instead spares
/// normalising (and, fused, concatenating) every op's output when only the selected ops' are
/// read whole; ∂L/∂Ā needs only sums over `y` (see [`PreBn::grad`]).
struct PreBn {
    /// N × (E·C) × H × W, or N × C × H × W when the same for every edge (`shared`: a pool).
    y: Tensor,
    shared: bool,
    /// Per channel of all the group's edges (E·C, float).
    mean: Tensor,
    invstd: Tensor,
}

impl PreBn {
    fn edges_in_y(&self, e: i64) -> i64 {
        if self.shared { 1 } else { e }
    }

    /// The op's output on edge `i` of `e` (N × C × H × W, in `y`'s layout and kind).
    fn normed_edge(&self, i: i64, e: i64) -> Tensor {
        let c = self.mean.size()[0] / e;
        let y = if self.shared {
            self.y.shallow_clone()
        } else {
            self.y.narrow(1, i * c, c)
        };
        let mean = self.mean.narrow(0, i * c, c).view([1, c, 1, 1]);
        let invstd = self.invstd.narrow(0, i * c, c).view([1, c, 1, 1]);
        ((&y - mean) * invstd).to_kind(y.kind())
    }

    /// `⟨∂L/∂node(e), o(x_e)⟩` per edge (E, float), from `gn` and its sums per edge and channel
    /// `gsum`: `Σ_c invstd_c · (Σ_p g·y − mean_c · Σ_p g)`.
    fn grad(&self, gn: &Tensor, gsum: &Tensor, e: i64) -> Tensor {
        let c = self.mean.size()[0] / e;
        let gy = products(&self.y, gn, self.edges_in_y(e), e);
        ((gy - self.mean.view([e, c]) * gsum) * self.invstd.view([e, c])).sum_dim_intlist(
            &[1i64][..],
            false,
            Kind::Float,
        )
    }
}

/// The NASP architecture pass of the whole network: logits and each cell's group traces.
pub struct ArchTrace {
    pub logits: Tensor,
    pub(super) cells: Vec<Vec<GroupTrace>>,
}

impl ArchTrace {
    /// A trace of nothing (a network whose architecture gradient takes another path).
    pub fn empty() -> ArchTrace {
        ArchTrace {
            logits: Tensor::new(),
            cells: Vec::new(),
        }
    }

    /// Every traced tensor (for tests).
    #[cfg(test)]
    pub fn tensors(&self) -> Vec<&Tensor> {
        self.cells
            .iter()
            .flatten()
            .flat_map(|g| {
                g.pre
                    .iter()
                    .flat_map(|p| [&p.y, &p.mean, &p.invstd])
                    .chain(g.skip.iter())
            })
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
                            pre: g
                                .pre
                                .iter()
                                .map(|p| PreBn {
                                    y: p.y.shallow_clone(),
                                    shared: p.shared,
                                    mean: p.mean.shallow_clone(),
                                    invstd: p.invstd.shallow_clone(),
                                })
                                .collect(),
                            skip: t(&g.skip),
                        })
                        .collect()
                })
                .collect(),
        }
    }
}
