//! One cell of the supernet: its preprocessing, its candidate ops per edge, and the edges
//! grouped by the state they read (each group's ops fused, see `ops::Op::fuse`). This file builds
//! a cell and runs it edge by edge (the weight step, evaluation and DARTS); `trace` holds the
//! NASP architecture pass over the groups.

use std::cell::OnceCell;

use tch::nn;
use tch::{Device, Tensor};

use super::Mix;
use crate::arch::{edge_endpoints, node_rows, num_edges};
use crate::engine::EngineError;
use crate::engine::ops::{
    BnMode, FactorizedReduce, Input, Op, ReluConvBn, from_nhwc, is_channels_last, nhwc,
};
use crate::space::lookup;

/// How a cell brings its first input to its width: a 1×1 conv, or a factorized reduce after a
/// reduction cell (whose output is half the size of the input before it).
pub(super) enum Pre {
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
pub(super) struct Group {
    /// The state they read (0, 1: the cell inputs; 2 + n: node n).
    pub(super) src: usize,
    /// Their edge indices and target nodes, in node order.
    pub(super) edges: Vec<(usize, usize)>,
    /// One fused op per live op of the list, in list order.
    pub(super) ops: Vec<Op>,
    /// Among the live ops (mixing-weight columns): those with a last batch norm, in order (also
    /// as a device tensor), and the stride-1 skip's.
    pub(super) bn_cols: Vec<usize>,
    pub(super) bn_index: Option<Tensor>,
    pub(super) skip_col: Option<usize>,
}

/// One cell: preprocessing of its two inputs, every candidate op on every edge, and the same
/// ops fused per group of edges that read one state.
pub(super) struct Cell {
    pub(super) reduction: bool,
    pub(super) pre0: Pre,
    pub(super) pre1: ReluConvBn,
    pub(super) edges: Vec<Vec<Op>>,
    /// Indices of the ops that are not `none`, and the same as a device tensor (None when every op
    /// counts, so the weights row is used as is).
    pub(super) live_ops: Vec<usize>,
    pub(super) live_index: Option<Tensor>,
    pub(super) groups: Vec<Group>,
    /// The edges of all groups in group order (rows of the mixing weights, gathered once), and
    /// the inverse permutation.
    pub(super) group_rows: Tensor,
    pub(super) group_rows_inv: Tensor,
    pub(super) nodes: usize,
}

impl Cell {
    /// Builds cell `p` (a reduction cell or not, after one or not) with the candidate ops
    /// `names` on every edge, for inputs of `c_pp` and `c_p` channels and `c` channels inside.
    /// Parameters are created in a fixed order (preprocessing, then edge by edge, op by op): it
    /// decides the initial weights drawn from the seed, and the names key checkpoints.
    pub(super) fn new(
        p: &nn::Path,
        names: &[String],
        nodes: usize,
        (reduction, prev_reduction): (bool, bool),
        [c_pp, c_p, c]: [i64; 3],
    ) -> Result<Cell, EngineError> {
        let pre0 = if prev_reduction {
            Pre::Reduce(FactorizedReduce::new(p / "pre0", c_pp, c))
        } else {
            Pre::Conv(ReluConvBn::new(p / "pre0", c_pp, c, 1, 1, 0))
        };
        let pre1 = ReluConvBn::new(p / "pre1", c_p, c, 1, 1, 0);
        let mut edges = Vec::with_capacity(num_edges(nodes));
        for e in 0..num_edges(nodes) {
            let input = e - node_rows(edge_endpoints(e, nodes).0 - 2).start;
            let stride = if reduction && input < 2 { 2 } else { 1 };
            let mut ops = Vec::with_capacity(names.len());
            for (k, name) in names.iter().enumerate() {
                let spec = lookup(name).ok_or_else(|| EngineError::UnknownOp(name.clone()))?;
                ops.push(Op::new(p / "edges" / e / k, spec.kind, c, stride));
            }
            edges.push(ops);
        }
        let live_ops: Vec<usize> = (0..names.len()).filter(|k| names[*k] != "none").collect();
        let live_index = (live_ops.len() != names.len()).then(|| {
            Tensor::from_slice(&live_ops.iter().map(|k| *k as i64).collect::<Vec<_>>())
                .to_device(p.device())
        });
        let groups = make_groups(&edges, &live_ops, nodes, p.device())?;
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
        Ok(Cell {
            reduction,
            groups,
            group_rows,
            group_rows_inv,
            pre0,
            pre1,
            edges,
            live_ops,
            live_index,
            nodes,
        })
    }

    pub(super) fn preprocess(&self, s0: &Tensor, s1: &Tensor, mode: BnMode) -> Vec<Tensor> {
        vec![self.pre0.forward(s0, mode), self.pre1.forward(s1, mode)]
    }

    /// A node output of zeros (both kept edges hold `none`), shaped for cell input `x`.
    pub(super) fn zero_node(&self, x: &Tensor) -> Tensor {
        let relu = OnceCell::new();
        Op::Zero {
            stride: if self.reduction { 2 } else { 1 },
        }
        .forward(&Input::new(x, &relu), BnMode::Eval)
    }

    /// The mixing weights restricted to the ops that are not `none`.
    pub(super) fn live_columns(&self, w: &Tensor) -> Tensor {
        match &self.live_index {
            Some(idx) => w.index_select(1, idx),
            None => w.shallow_clone(),
        }
    }

    pub(super) fn forward(&self, s0: &Tensor, s1: &Tensor, mix: Mix, mode: BnMode) -> Tensor {
        self.forward_edges(s0, s1, mix, mode, false).0
    }

    /// Edge by edge: the sparse mix, and the dense mix with autograd through every op (DARTS).
    /// Also returns the node outputs; with `grad_nodes`, a node that does not depend on anything
    /// that requires grad (both kept edges `none`) becomes a leaf that does, so autograd can give
    /// ∂L/∂node for every node.
    pub(super) fn forward_edges(
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
}

/// Groups the edges of a cell by the state they read and fuses each live op across them.
fn make_groups(
    edges: &[Vec<Op>],
    live_ops: &[usize],
    nodes: usize,
    device: Device,
) -> Result<Vec<Group>, EngineError> {
    (0..=nodes)
        .map(|src| {
            let list: Vec<(usize, usize)> = (0..nodes)
                .filter(|n| src <= n + 1)
                .map(|n| (node_rows(n).start + src, n))
                .collect();
            let ops = live_ops
                .iter()
                .map(|&k| Op::fuse(&list.iter().map(|&(e, _)| &edges[e][k]).collect::<Vec<_>>()))
                .collect::<Result<Vec<_>, _>>()?;
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
                bn_cols,
                bn_index,
                skip_col,
            })
        })
        .collect()
}
