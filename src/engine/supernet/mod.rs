//! The DARTS search supernet (spec §1.2–1.3): stem, normal and reduction cells, classifier.
//!
//! This file holds the network and its passes; `cell` builds a cell and runs it edge by edge,
//! `trace` holds the NASP architecture pass and ∂L/∂Ā from it.

mod cell;
mod trace;

use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

use crate::arch::{Selection, num_edges};
use crate::config::ModelConfig;
use crate::engine::EngineError;
use crate::engine::ops::{Bn, BnMode, is_channels_last, to_channels_last};
use crate::space::{CellType, OpLists};
use cell::{Cell, Pre};

pub use trace::{ArchTrace, GroupTrace};

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
    ) -> Result<Supernet, EngineError> {
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
            let names = lists.get(if reduction {
                CellType::Reduce
            } else {
                CellType::Normal
            });
            cells.push(Cell::new(
                &(p / "cells" / i),
                names,
                m.nodes,
                (reduction, prev_reduction),
                [c_pp, c_p, c_cur],
            )?);
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
