//! Architectures as plain data: the edge layout of a cell, the matrices of architecture weights,
//! the proximal step that picks the discrete architecture Ā, and the derivation of a genotype
//! from A. Nothing here touches libtorch: the UI, checkpoints and tests use it freely.

use serde::{Deserialize, Serialize};

use crate::genotype::Genotype;
use crate::space::OpLists;

/// How the genotype is derived from the architecture parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GenotypeRule {
    /// The edges and ops the proximal step keeps (Ā).
    Proximal,
    /// The reference code's ranking by softmax(A) (DARTS rule).
    Softmax,
}

/// Number of edges of a cell with `nodes` intermediate nodes: Σ_{n<nodes} (n + 2).
pub fn num_edges(nodes: usize) -> usize {
    (0..nodes).map(|n| n + 2).sum()
}

/// The rows (edges) owned by intermediate node `n` (0-based), as a range of row indices.
pub fn node_rows(n: usize) -> std::ops::Range<usize> {
    let start = num_edges(n);
    start..start + n + 2
}

/// For edge `e`: (target node in genotype numbering 2.., input index 0..).
pub fn edge_endpoints(e: usize, nodes: usize) -> (usize, usize) {
    for n in 0..nodes {
        let r = node_rows(n);
        if r.contains(&e) {
            return (n + 2, e - r.start);
        }
    }
    (nodes + 1, 0)
}

/// How a cell's edges are laid out, for everything that names or draws them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// DARTS's cell: inputs 0 and 1, intermediate nodes 2.., each with an edge from every
    /// earlier state, two of them kept per node.
    Darts { nodes: usize },
    /// NAS-Bench-201's cell: input node 0, nodes 1..3, every edge kept (see `crate::nb201`).
    Nb201,
}

impl Layout {
    /// Number of edges (rows of A).
    pub fn edges(self) -> usize {
        match self {
            Layout::Darts { nodes } => num_edges(nodes),
            Layout::Nb201 => crate::nb201::EDGES.len(),
        }
    }

    /// Intermediate nodes.
    pub fn nodes(self) -> usize {
        match self {
            Layout::Darts { nodes } => nodes,
            Layout::Nb201 => crate::nb201::NODES,
        }
    }

    /// Edge `e` as (target node, source): genotype numbering (DARTS: nodes from 2; NB201: from 1).
    pub fn endpoints(self, e: usize) -> (usize, usize) {
        match self {
            Layout::Darts { nodes } => edge_endpoints(e, nodes),
            Layout::Nb201 => crate::nb201::EDGES.get(e).copied().unwrap_or((0, 0)),
        }
    }

    /// Whether every edge stays in the derived cell (no top-2 choice per node).
    pub fn keeps_every_edge(self) -> bool {
        self == Layout::Nb201
    }
}

/// A dense row-major matrix of architecture values (edges × ops), plain `f32` data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArchMatrix {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f32>,
}

impl ArchMatrix {
    pub fn filled(rows: usize, cols: usize, v: f32) -> Self {
        ArchMatrix {
            rows,
            cols,
            data: vec![v; rows * cols],
        }
    }

    pub fn from_rows(rows: &[Vec<f32>]) -> Self {
        let cols = rows.first().map_or(0, Vec::len);
        ArchMatrix {
            rows: rows.len(),
            cols,
            data: rows.iter().flatten().copied().collect(),
        }
    }

    pub fn row(&self, r: usize) -> &[f32] {
        &self.data[r * self.cols..(r + 1) * self.cols]
    }

    pub fn get(&self, r: usize, c: usize) -> f32 {
        self.data[r * self.cols + c]
    }

    pub fn to_rows(&self) -> Vec<Vec<f32>> {
        (0..self.rows).map(|r| self.row(r).to_vec()).collect()
    }

    /// Row-wise softmax.
    pub fn softmax(&self) -> ArchMatrix {
        let mut out = self.clone();
        for r in 0..self.rows {
            let row = &mut out.data[r * self.cols..(r + 1) * self.cols];
            let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut s = 0.0;
            for v in row.iter_mut() {
                *v = (*v - m).exp();
                s += *v;
            }
            for v in row.iter_mut() {
                *v /= s;
            }
        }
        out
    }
}

/// Index of the largest value; ties go to the lowest index.
pub fn argmax(row: &[f32]) -> usize {
    let mut best = 0;
    for (i, v) in row.iter().enumerate() {
        if *v > row[best] {
            best = i;
        }
    }
    best
}

/// The discrete architecture Ā: for each edge, the op it keeps, or `None` for a dropped edge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selection {
    pub ops: Vec<Option<usize>>,
    /// For each node, its kept rows, stronger first.
    pub kept: Vec<[usize; 2]>,
}

impl Selection {
    /// Ā as a 0/1 matrix with `cols` columns.
    pub fn to_matrix(&self, cols: usize) -> ArchMatrix {
        let mut m = ArchMatrix::filled(self.ops.len(), cols, 0.0);
        for (r, op) in self.ops.iter().enumerate() {
            if let Some(k) = op {
                m.data[r * cols + k] = 1.0;
            }
        }
        m
    }

    /// (edge, op) pairs of the kept edges, in edge order.
    pub fn pairs(&self) -> Vec<(usize, usize)> {
        self.ops
            .iter()
            .enumerate()
            .filter_map(|(e, op)| op.map(|k| (e, k)))
            .collect()
    }
}

/// The proximal step of NASP (spec §3.2): one-hot argmax per row (ties → lowest op), then keep
/// the two rows of each node with the largest raw value at their argmax (ties → lower row).
/// `random_ops` replaces the argmax (the ε-greedy branch) when given.
pub fn proximal(m: &ArchMatrix, nodes: usize, random_ops: Option<&[usize]>) -> Selection {
    let k: Vec<usize> = match random_ops {
        Some(r) => r.to_vec(),
        None => (0..m.rows).map(|r| argmax(m.row(r))).collect(),
    };
    let v: Vec<f32> = (0..m.rows).map(|r| m.get(r, k[r])).collect();
    let mut ops = vec![None; m.rows];
    let mut kept = Vec::with_capacity(nodes);
    for n in 0..nodes {
        let rows = node_rows(n);
        let mut order: Vec<usize> = rows.collect();
        // Stable sort, descending by value: ties keep the lower row first.
        order.sort_by(|a, b| {
            v[*b]
                .partial_cmp(&v[*a])
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        let top = [order[0], order[1]];
        for r in top {
            ops[r] = Some(k[r]);
        }
        kept.push(top);
    }
    Selection { ops, kept }
}

/// The selection of a space whose cells keep every edge (NAS-Bench-201): the argmax of each
/// row (ties → lowest op), or `random_ops` (the ε-greedy branch); no edge is dropped, and a
/// selected `none` is an op like the others (it removes the edge from the network).
pub fn select_every_edge(m: &ArchMatrix, random_ops: Option<&[usize]>) -> Selection {
    let ops = match random_ops {
        Some(r) => r.iter().map(|&k| Some(k)).collect(),
        None => (0..m.rows).map(|r| Some(argmax(m.row(r)))).collect(),
    };
    Selection {
        ops,
        kept: Vec::new(),
    }
}

/// The NAS-Bench-201 cell of an edges × ops matrix (6 × 5): each edge's largest entry.
pub fn nb201_cell(m: &ArchMatrix) -> crate::nb201::Cell {
    let mut ops = [0; 6];
    for (e, o) in ops.iter_mut().enumerate().take(m.rows) {
        *o = argmax(m.row(e));
    }
    crate::nb201::Cell { ops }
}

/// Derives one cell's (op, input) list.
fn derive_cell(
    m: &ArchMatrix,
    ops: &[String],
    nodes: usize,
    rule: GenotypeRule,
) -> Vec<(String, usize)> {
    let mut out = Vec::with_capacity(2 * nodes);
    match rule {
        GenotypeRule::Proximal => {
            let sel = proximal(m, nodes, None);
            for (n, top) in sel.kept.iter().enumerate() {
                for r in top {
                    let k = sel.ops[*r].unwrap_or(0);
                    out.push((ops[k].clone(), r - node_rows(n).start));
                }
            }
        }
        GenotypeRule::Softmax => {
            let p = m.softmax();
            let none = ops.iter().position(|o| o == "none");
            let best = |r: usize| -> (usize, f32) {
                let mut bk = usize::MAX;
                let mut bv = f32::NEG_INFINITY;
                for (k, v) in p.row(r).iter().enumerate() {
                    if Some(k) != none && *v > bv {
                        bk = k;
                        bv = *v;
                    }
                }
                (bk, bv)
            };
            for n in 0..nodes {
                let rows = node_rows(n);
                let mut order: Vec<usize> = rows.clone().collect();
                order.sort_by(|a, b| {
                    best(*b)
                        .1
                        .partial_cmp(&best(*a).1)
                        .unwrap_or(std::cmp::Ordering::Equal)
                });
                for r in &order[..2] {
                    out.push((ops[best(*r).0].clone(), r - rows.start));
                }
            }
        }
    }
    out
}

/// Derives the genotype from the continuous matrices A (normal, reduce).
pub fn derive_genotype(
    normal: &ArchMatrix,
    reduce: &ArchMatrix,
    lists: &OpLists,
    nodes: usize,
    rule: GenotypeRule,
) -> Genotype {
    let concat: Vec<usize> = (2..2 + nodes).collect();
    Genotype {
        normal: derive_cell(normal, &lists.normal, nodes, rule),
        normal_concat: concat.clone(),
        reduce: derive_cell(reduce, &lists.reduce, nodes, rule),
        reduce_concat: concat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::NASP_NORMAL_OPS;

    #[test]
    fn all_half_selects_op0_on_input_edges() {
        let m = ArchMatrix::filled(14, 8, 0.5);
        let sel = proximal(&m, 4, None);
        let kept: Vec<usize> = sel.pairs().iter().map(|p| p.0).collect();
        assert_eq!(kept, vec![0, 1, 2, 3, 5, 6, 9, 10]);
        assert!(sel.pairs().iter().all(|p| p.1 == 0));
        for r in [4, 7, 8, 11, 12, 13] {
            assert_eq!(sel.ops[r], None);
        }
        let bin = sel.to_matrix(8);
        for r in [4, 7, 8, 11, 12, 13] {
            assert!(bin.row(r).iter().all(|v| *v == 0.0));
        }
    }

    #[test]
    fn ties_and_zero_rows() {
        let mut m = ArchMatrix::filled(14, 5, 0.0);
        // Row 2: tie between ops 1 and 3 → op 1. Row 3 all zero → op 0, value 0.
        m.data[2 * 5 + 1] = 0.7;
        m.data[2 * 5 + 3] = 0.7;
        // Node 3 (rows 2..5): row 4 at 0.7 too → rows 2 and 4 tie at 0.7; kept order 2, 4.
        m.data[4 * 5 + 4] = 0.7;
        // Node 4 (rows 5..9): row 8 strongest, rows 5,6,7 tie at 0 → lower row 5 wins.
        m.data[8 * 5 + 2] = 0.9;
        let sel = proximal(&m, 4, None);
        assert_eq!(sel.ops[2], Some(1));
        assert_eq!(sel.ops[4], Some(4));
        assert_eq!(sel.ops[3], None);
        assert_eq!(sel.kept[1], [2, 4]);
        assert_eq!(sel.kept[2], [8, 5]);
        assert_eq!(sel.ops[5], Some(0));
        assert_eq!(sel.kept[0], [0, 1]);
    }

    #[test]
    fn softmax_and_proximal_rules_can_disagree() {
        // Spec §3.10: row a = [0.9, 0.9, 0...], row b = [0.8, 0, ...].
        let mut m = ArchMatrix::filled(14, 8, 0.0);
        for c in 0..2 {
            m.data[2 * 8 + c] = 0.9; // row 2, node 3
        }
        m.data[3 * 8] = 0.8; // row 3
        m.data[4 * 8] = 0.1;
        let lists = OpLists {
            normal: NASP_NORMAL_OPS.iter().map(|s| s.to_string()).collect(),
            reduce: NASP_NORMAL_OPS.iter().map(|s| s.to_string()).collect(),
        };
        let p = derive_genotype(&m, &m, &lists, 4, GenotypeRule::Proximal);
        let s = derive_genotype(&m, &m, &lists, 4, GenotypeRule::Softmax);
        assert_eq!(p.normal[2], ("skip_connect".to_string(), 0));
        assert_eq!(s.normal[2], ("skip_connect".to_string(), 1));
    }

    #[test]
    fn edge_layout() {
        assert_eq!(num_edges(4), 14);
        assert_eq!(node_rows(3), 9..14);
        assert_eq!(edge_endpoints(8, 4), (4, 3));
        assert_eq!(edge_endpoints(9, 4), (5, 0));
    }
}
