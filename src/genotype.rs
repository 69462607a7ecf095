//! Architectures as plain data: op lists, the edge layout of a cell, the proximal step that picks
//! the discrete architecture Ā, and genotypes (derivation, DARTS text format, JSON).
//!
//! Nothing here touches libtorch: the UI, checkpoints and tests use it freely.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::config::{GenotypeRule, ModelConfig, Space};

/// Every op name the engine can build (DARTS and NASP spellings; note the spaces).
pub const OP_CATALOGUE: &[&str] = &[
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
    "conv_3x1_1x3",
    "conv 1x1",
    "conv 3x3",
    "sep_3x3",
    "sep_5x5",
    "sep_7x7",
    "max_pool_5x5",
    "max_pool_7x7",
];

/// The DARTS candidate list (same for normal and reduction cells).
pub const DARTS_OPS: &[&str] = &[
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
];

/// NASP's normal-cell list (released code, 12-op configuration).
pub const NASP_NORMAL_OPS: &[&str] = &[
    "skip_connect",
    "conv_3x1_1x3",
    "dil_conv_3x3",
    "conv 1x1",
    "conv 3x3",
    "sep_3x3",
    "sep_5x5",
    "sep_7x7",
];

/// NASP's reduction-cell list.
pub const NASP_REDUCE_OPS: &[&str] = &[
    "skip_connect",
    "avg_pool_3x3",
    "max_pool_3x3",
    "max_pool_5x5",
    "max_pool_7x7",
];

/// The op lists of a model: normal and reduction cells.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpLists {
    pub normal: Vec<String>,
    pub reduce: Vec<String>,
}

impl OpLists {
    /// The lists a model config asks for (its space, or its explicit lists).
    pub fn from_model(m: &ModelConfig) -> OpLists {
        let (n, r): (&[&str], &[&str]) = match m.space {
            Space::Darts => (DARTS_OPS, DARTS_OPS),
            Space::Nasp => (NASP_NORMAL_OPS, NASP_REDUCE_OPS),
        };
        let own = |v: &[String], d: &[&str]| {
            if v.is_empty() {
                d.iter().map(|s| (*s).to_string()).collect()
            } else {
                v.to_vec()
            }
        };
        OpLists {
            normal: own(&m.normal_ops, n),
            reduce: own(&m.reduce_ops, r),
        }
    }

    /// The list of one cell type.
    pub fn get(&self, cell: CellType) -> &[String] {
        match cell {
            CellType::Normal => &self.normal,
            CellType::Reduce => &self.reduce,
        }
    }
}

/// Normal or reduction cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CellType {
    Normal,
    Reduce,
}

impl CellType {
    pub fn name(self) -> &'static str {
        match self {
            CellType::Normal => "normal",
            CellType::Reduce => "reduce",
        }
    }
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
fn argmax(row: &[f32]) -> usize {
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

/// A derived cell pair in the DARTS `Genotype` form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genotype {
    pub normal: Vec<(String, usize)>,
    pub normal_concat: Vec<usize>,
    pub reduce: Vec<(String, usize)>,
    pub reduce_concat: Vec<usize>,
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

impl Genotype {
    /// Derives the genotype from the continuous matrices A (normal, reduce).
    pub fn derive(
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

    /// The genotype as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Parses the JSON form.
    pub fn from_json(s: &str) -> Result<Genotype, String> {
        serde_json::from_str(s).map_err(|e| e.to_string())
    }

    /// Parses the DARTS text form. Accepts `range(a, b)` concats, either quote style, op names
    /// with spaces, and any white space.
    pub fn parse(s: &str) -> Result<Genotype, String> {
        let mut p = Parser {
            s: s.as_bytes(),
            i: 0,
        };
        p.ws();
        p.expect_word("Genotype")?;
        p.expect(b'(')?;
        let (mut normal, mut normal_concat, mut reduce, mut reduce_concat) =
            (None, None, None, None);
        loop {
            p.ws();
            if p.eat(b')') {
                break;
            }
            let key = p.ident()?;
            p.expect(b'=')?;
            match key.as_str() {
                "normal" => normal = Some(p.pairs()?),
                "reduce" => reduce = Some(p.pairs()?),
                "normal_concat" => normal_concat = Some(p.concat()?),
                "reduce_concat" => reduce_concat = Some(p.concat()?),
                other => return Err(format!("unknown field `{other}` at byte {}", p.i)),
            }
            p.ws();
            if !p.eat(b',') {
                p.expect(b')')?;
                break;
            }
        }
        p.ws();
        if p.i != p.s.len() {
            return Err(format!(
                "unexpected text after the closing parenthesis at byte {}",
                p.i
            ));
        }
        Ok(Genotype {
            normal: normal.ok_or("missing `normal`")?,
            normal_concat: normal_concat.ok_or("missing `normal_concat`")?,
            reduce: reduce.ok_or("missing `reduce`")?,
            reduce_concat: reduce_concat.ok_or("missing `reduce_concat`")?,
        })
    }
}

impl fmt::Display for Genotype {
    /// `Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=[2, 3, 4, 5], reduce=[...],
    /// reduce_concat=[2, 3, 4, 5])`, as the DARTS/NASP training scripts accept.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pairs = |v: &[(String, usize)]| {
            v.iter()
                .map(|(o, i)| format!("('{o}', {i})"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let ints = |v: &[usize]| {
            v.iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        write!(
            f,
            "Genotype(normal=[{}], normal_concat=[{}], reduce=[{}], reduce_concat=[{}])",
            pairs(&self.normal),
            ints(&self.normal_concat),
            pairs(&self.reduce),
            ints(&self.reduce_concat)
        )
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(format!("expected `{}` at byte {}", c as char, self.i))
        }
    }
    fn ident(&mut self) -> Result<String, String> {
        self.ws();
        let start = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'_')
        {
            self.i += 1;
        }
        if start == self.i {
            return Err(format!("expected a name at byte {start}"));
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }
    fn expect_word(&mut self, w: &str) -> Result<(), String> {
        let got = self.ident()?;
        if got == w {
            Ok(())
        } else {
            Err(format!("expected `{w}`, found `{got}`"))
        }
    }
    fn int(&mut self) -> Result<usize, String> {
        self.ws();
        let start = self.i;
        while self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
            self.i += 1;
        }
        std::str::from_utf8(&self.s[start..self.i])
            .ok()
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| format!("expected a number at byte {start}"))
    }
    fn string(&mut self) -> Result<String, String> {
        self.ws();
        let q = *self
            .s
            .get(self.i)
            .ok_or("unexpected end, expected a quoted op name")?;
        if q != b'\'' && q != b'"' {
            return Err(format!("expected a quoted op name at byte {}", self.i));
        }
        self.i += 1;
        let start = self.i;
        while self.i < self.s.len() && self.s[self.i] != q {
            self.i += 1;
        }
        if self.i >= self.s.len() {
            return Err(format!("unterminated string starting at byte {start}"));
        }
        let out = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
        self.i += 1;
        Ok(out)
    }
    fn pairs(&mut self) -> Result<Vec<(String, usize)>, String> {
        self.expect(b'[')?;
        let mut out = Vec::new();
        if self.eat(b']') {
            return Ok(out);
        }
        loop {
            self.expect(b'(')?;
            let op = self.string()?;
            self.expect(b',')?;
            let i = self.int()?;
            self.expect(b')')?;
            out.push((op, i));
            if self.eat(b']') {
                return Ok(out);
            }
            self.expect(b',')?;
            if self.eat(b']') {
                return Ok(out);
            }
        }
    }
    fn concat(&mut self) -> Result<Vec<usize>, String> {
        self.ws();
        if self.s[self.i..].starts_with(b"range") {
            self.i += 5;
            self.expect(b'(')?;
            let a = self.int()?;
            self.expect(b',')?;
            let b = self.int()?;
            self.expect(b')')?;
            return Ok((a..b).collect());
        }
        self.expect(b'[')?;
        let mut out = Vec::new();
        if self.eat(b']') {
            return Ok(out);
        }
        loop {
            out.push(self.int()?);
            if self.eat(b']') {
                return Ok(out);
            }
            self.expect(b',')?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let p = Genotype::derive(&m, &m, &lists, 4, GenotypeRule::Proximal);
        let s = Genotype::derive(&m, &m, &lists, 4, GenotypeRule::Softmax);
        assert_eq!(p.normal[2], ("skip_connect".to_string(), 0));
        assert_eq!(s.normal[2], ("skip_connect".to_string(), 1));
    }

    #[test]
    fn text_round_trip_with_range_and_spaces() {
        let text = "Genotype(normal=[('conv_3x1_1x3', 0), ('conv 3x3', 1), ('dil_conv_3x3', 2), ('conv 3x3', 1), ('dil_conv_3x3', 2), ('conv 3x3', 0), ('skip_connect', 0), ('dil_conv_3x3', 3)], normal_concat=range(2, 6), reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_5x5', 1), ('skip_connect', 2), ('skip_connect', 3), ('skip_connect', 0), ('skip_connect', 1)], reduce_concat=range(2, 6))";
        let g = Genotype::parse(text).unwrap();
        assert_eq!(g.normal_concat, vec![2, 3, 4, 5]);
        assert_eq!(g.normal[1], ("conv 3x3".to_string(), 1));
        let again = Genotype::parse(&g.to_string()).unwrap();
        assert_eq!(g, again);
        assert!(g.to_string().contains("normal_concat=[2, 3, 4, 5]"));
        assert_eq!(Genotype::from_json(&g.to_json()).unwrap(), g);
        assert!(Genotype::parse("Genotype(normal=[('a', 0)]").is_err());
        assert!(Genotype::parse("Genotype(normal=[], bogus=1)").is_err());
    }

    #[test]
    fn edge_layout() {
        assert_eq!(num_edges(4), 14);
        assert_eq!(node_rows(3), 9..14);
        assert_eq!(edge_endpoints(8, 4), (4, 3));
        assert_eq!(edge_endpoints(9, 4), (5, 0));
    }
}
