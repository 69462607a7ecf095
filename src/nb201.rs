//! NAS-Bench-201 as data: its cell (six edges over four nodes, five ops), the benchmark's
//! architecture string (printer and parser), and the test accuracies of all 15,625 cells on
//! CIFAR-10, CIFAR-100 and ImageNet16-120 after the benchmark's 200-epoch training, carried in
//! `data/nb201-test-accuracy.bin` (made by `scripts/nb201-pack.py` from the benchmark's table;
//! a test compares every row with `../shared/data/nb201/`). A lookup of the cell a search
//! selects says how good it is without training it.
//!
//! Imports nothing of the crate.

use std::fmt;
use std::sync::OnceLock;

/// The benchmark's ops, in its order (the columns of A in the `nb201` space).
pub const OPS: [&str; 5] = [
    "none",
    "skip_connect",
    "nor_conv_1x1",
    "nor_conv_3x3",
    "avg_pool_3x3",
];

/// The six edges as (target node, source node), in the benchmark's order (the rows of A):
/// 1←0, 2←0, 2←1, 3←0, 3←1, 3←2. Node 0 is the cell's input, node 3 its output.
pub const EDGES: [(usize, usize); 6] = [(1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2)];

/// Intermediate nodes of the cell (1, 2, 3).
pub const NODES: usize = 3;

/// Number of cells in the space (5 ops on 6 edges).
pub const CELLS: usize = 15_625;

/// The edges (rows) into node `n` (1-based: 1, 2, 3).
pub fn node_rows(n: usize) -> std::ops::Range<usize> {
    let start = (1..n).sum::<usize>();
    start..start + n
}

/// An architecture string that does not parse; the message names the byte and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Nb201Error(pub String);

/// One NAS-Bench-201 cell: the op (index into [`OPS`]) on each edge of [`EDGES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cell {
    pub ops: [usize; 6],
}

impl Cell {
    /// The cell with `ops[e]` (names) on edge `e`; `None` if a name is not one of [`OPS`].
    pub fn from_names<S: AsRef<str>>(names: &[S]) -> Option<Cell> {
        if names.len() != EDGES.len() {
            return None;
        }
        let mut ops = [0; 6];
        for (o, n) in ops.iter_mut().zip(names) {
            *o = OPS.iter().position(|k| *k == n.as_ref())?;
        }
        Some(Cell { ops })
    }

    /// The op names edge by edge.
    pub fn names(&self) -> [&'static str; 6] {
        self.ops.map(|k| OPS[k])
    }

    /// The cell's code: Σ_e op(e)·5^e (0 ..= 15,624).
    pub fn code(&self) -> usize {
        self.ops.iter().rev().fold(0, |acc, &k| acc * 5 + k)
    }

    /// The cell of a code (see [`Cell::code`]); `None` past the last.
    pub fn from_code(code: usize) -> Option<Cell> {
        if code >= CELLS {
            return None;
        }
        let mut ops = [0; 6];
        let mut c = code;
        for o in &mut ops {
            *o = c % 5;
            c /= 5;
        }
        Some(Cell { ops })
    }

    /// Parses the benchmark's string, e.g.
    /// `|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|`:
    /// node 1's input edges, then node 2's, then node 3's, each `op~source`. Each node must
    /// name each earlier node once (any order); white space around the string is ignored.
    pub fn parse(s: &str) -> Result<Cell, Nb201Error> {
        let lead = s.len() - s.trim_start().len();
        let text = s.trim();
        let err = |at: usize, what: String| Nb201Error(format!("at byte {}: {what}", lead + at));
        let mut ops: [Option<usize>; 6] = [None; 6];
        let mut at = 0;
        let groups: Vec<&str> = text.split('+').collect();
        if groups.len() != NODES {
            return Err(Nb201Error(format!(
                "an NB201 cell names {NODES} nodes separated by `+`, this has {} (e.g. \
                 `|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|`)",
                groups.len()
            )));
        }
        for (i, group) in groups.iter().enumerate() {
            let node = i + 1;
            let start = at;
            if !group.starts_with('|') || !group.ends_with('|') || group.len() < 2 {
                return Err(err(
                    start,
                    format!("node {node}'s edges must be written `|op~j|...|`"),
                ));
            }
            let inner = &group[1..group.len() - 1];
            let mut pos = start + 1;
            let mut seen = 0;
            for part in inner.split('|') {
                let Some((op, src)) = part.split_once('~') else {
                    return Err(err(pos, format!("expected `op~source`, found `{part}`")));
                };
                let k = OPS.iter().position(|o| *o == op).ok_or_else(|| {
                    err(
                        pos,
                        format!("unknown op `{op}` (NB201's ops: {})", OPS.join(", ")),
                    )
                })?;
                let j: usize = src.parse().map_err(|_| {
                    err(pos + op.len() + 1, format!("`{src}` is not a node number"))
                })?;
                if j >= node {
                    return Err(err(
                        pos + op.len() + 1,
                        format!("node {node} can only read nodes 0..{}, not {j}", node - 1),
                    ));
                }
                let e = node_rows(node).start + j;
                if ops[e].is_some() {
                    return Err(err(pos, format!("node {node} names node {j} twice")));
                }
                ops[e] = Some(k);
                seen += 1;
                pos += part.len() + 1;
            }
            if seen != node {
                return Err(err(
                    start,
                    format!("node {node} must read each of nodes 0..{} once", node - 1),
                ));
            }
            at += group.len() + 1;
        }
        let mut out = [0; 6];
        for (o, k) in out.iter_mut().zip(ops) {
            *o = k.ok_or_else(|| Nb201Error("an edge is missing".into()))?;
        }
        Ok(Cell { ops: out })
    }
}

impl fmt::Display for Cell {
    /// The benchmark's string: `|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nodes: Vec<String> = (1..=NODES)
            .map(|n| {
                let edges: String = node_rows(n)
                    .enumerate()
                    .map(|(j, e)| format!("|{}~{j}", OPS[self.ops[e]]))
                    .collect();
                format!("{edges}|")
            })
            .collect();
        write!(f, "{}", nodes.join("+"))
    }
}

/// The data sets the benchmark reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dataset {
    Cifar10,
    Cifar100,
    ImageNet16,
}

impl Dataset {
    pub const ALL: [Dataset; 3] = [Dataset::Cifar10, Dataset::Cifar100, Dataset::ImageNet16];

    pub fn name(self) -> &'static str {
        match self {
            Dataset::Cifar10 => "CIFAR-10",
            Dataset::Cifar100 => "CIFAR-100",
            Dataset::ImageNet16 => "ImageNet16-120",
        }
    }

    fn column(self) -> usize {
        self as usize
    }
}

/// What the benchmark says of one cell.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Entry {
    /// The cell's index in the benchmark (0 ..= 15,624).
    pub index: usize,
    /// Test accuracy (%) per [`Dataset`], in [`Dataset::ALL`]'s order.
    pub accuracy: [f64; 3],
    /// Rank among all 15,625 cells per data set (1 = the best; cells with equal accuracy share
    /// the better rank).
    pub rank: [usize; 3],
}

impl Entry {
    pub fn accuracy(&self, d: Dataset) -> f64 {
        self.accuracy[d.column()]
    }

    pub fn rank(&self, d: Dataset) -> usize {
        self.rank[d.column()]
    }
}

/// The whole table, indexed by cell code.
pub struct Table {
    by_code: Vec<Entry>,
}

const PACKED: &[u8] = include_bytes!("../data/nb201-test-accuracy.bin");
const RECORD: usize = 14;

impl Table {
    fn unpack(bytes: &[u8]) -> Result<Table, Nb201Error> {
        if bytes.len() != CELLS * RECORD {
            return Err(Nb201Error(format!(
                "the NB201 table holds {} bytes, not {}",
                bytes.len(),
                CELLS * RECORD
            )));
        }
        let mut by_code: Vec<Option<Entry>> = vec![None; CELLS];
        for (index, r) in bytes.chunks_exact(RECORD).enumerate() {
            let code = usize::from(u16::from_le_bytes([r[0], r[1]]));
            let acc = |o: usize| {
                f64::from(u32::from_le_bytes([r[o], r[o + 1], r[o + 2], r[o + 3]])) / 1e4
            };
            let slot = by_code.get_mut(code).ok_or_else(|| {
                Nb201Error(format!("NB201 table: record {index} has code {code}"))
            })?;
            *slot = Some(Entry {
                index,
                accuracy: [acc(2), acc(6), acc(10)],
                rank: [0; 3],
            });
        }
        let mut by_code = by_code
            .into_iter()
            .enumerate()
            .map(|(c, e)| e.ok_or_else(|| Nb201Error(format!("NB201 table: no cell {c}"))))
            .collect::<Result<Vec<Entry>, _>>()?;
        for d in 0..3 {
            let mut order: Vec<usize> = (0..CELLS).collect();
            order.sort_by(|&a, &b| by_code[b].accuracy[d].total_cmp(&by_code[a].accuracy[d]));
            let mut rank = 1;
            for (i, &c) in order.iter().enumerate() {
                if i > 0 && by_code[c].accuracy[d] < by_code[order[i - 1]].accuracy[d] {
                    rank = i + 1;
                }
                by_code[c].rank[d] = rank;
            }
        }
        Ok(Table { by_code })
    }

    /// What the benchmark says of `cell`.
    pub fn lookup(&self, cell: &Cell) -> Entry {
        self.by_code[cell.code()]
    }

    /// Every cell with its entry, by code.
    pub fn iter(&self) -> impl Iterator<Item = (Cell, &Entry)> {
        self.by_code
            .iter()
            .enumerate()
            .filter_map(|(c, e)| Cell::from_code(c).map(|cell| (cell, e)))
    }

    /// The best test accuracy on `d` of any cell.
    pub fn best(&self, d: Dataset) -> f64 {
        self.by_code
            .iter()
            .map(|e| e.accuracy(d))
            .fold(f64::NEG_INFINITY, f64::max)
    }
}

/// The table carried in the binary (unpacked once).
pub fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| match Table::unpack(PACKED) {
        Ok(t) => t,
        // The bytes are part of the binary and checked by a test: this cannot happen in a
        // build whose tests passed.
        Err(e) => panic!("{e}"),
    })
}

/// A search method's published result on NAS-Bench-201 (CIFAR-10 test accuracy, %), for the
/// report's comparison rows: (method, mean, std if published). From the benchmark's paper and
/// the methods' own papers (DARTS collapses to the all-`skip_connect` cell).
pub const PUBLISHED_CIFAR10: &[(&str, f64, Option<f64>)] = &[
    ("DARTS-V1 (first order)", 54.30, Some(0.00)),
    ("DARTS-V2 (second order)", 54.30, Some(0.00)),
    ("GDAS", 93.61, Some(0.09)),
    ("DrNAS", 94.36, Some(0.00)),
];

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|";

    #[test]
    fn the_string_round_trips() {
        let c = Cell::parse(EXAMPLE).unwrap();
        assert_eq!(
            c.names(),
            [
                "nor_conv_3x3",
                "nor_conv_3x3",
                "avg_pool_3x3",
                "skip_connect",
                "nor_conv_3x3",
                "skip_connect"
            ]
        );
        assert_eq!(c.to_string(), EXAMPLE);
        for code in [0, 1, 777, 15_624] {
            let c = Cell::from_code(code).unwrap();
            assert_eq!(c.code(), code);
            assert_eq!(Cell::parse(&c.to_string()).unwrap(), c);
        }
        assert_eq!(Cell::from_code(CELLS), None);
        // Any order of a node's edges, white space around.
        let shuffled = "  |nor_conv_3x3~0|+|avg_pool_3x3~1|nor_conv_3x3~0|+|skip_connect~2|nor_conv_3x3~1|skip_connect~0|\n";
        assert_eq!(Cell::parse(shuffled).unwrap(), c_example());
    }

    fn c_example() -> Cell {
        Cell::parse(EXAMPLE).unwrap()
    }

    #[test]
    fn bad_strings_name_the_byte() {
        let cases = [
            (
                "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|",
                "3 nodes",
            ),
            (
                "|nor_conv_5x5~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
                "at byte 1: unknown op `nor_conv_5x5`",
            ),
            (
                "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~2|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
                "at byte 46: node 2 can only read nodes 0..1, not 2",
            ),
            (
                "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~0|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
                "at byte 33: node 2 names node 0 twice",
            ),
            (
                "|nor_conv_3x3~0|+|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
                "at byte 17: node 2 must read each of nodes 0..1 once",
            ),
            (
                "|nor_conv_3x3-0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
                "at byte 1: expected `op~source`",
            ),
            (
                "nor_conv_3x3~0+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
                "at byte 0: node 1's edges",
            ),
            (
                "|nor_conv_3x3~x|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
                "at byte 14: `x` is not a node number",
            ),
        ];
        for (s, want) in cases {
            let e = Cell::parse(s).unwrap_err().to_string();
            assert!(e.contains(want), "{s}: {e}");
        }
    }

    /// Every row of the benchmark's CSV against the table the binary carries: index, cell and
    /// the three accuracies; then the published checks (best 94.37, all-skip 54.30 / 15.61 /
    /// 16.32 at index 1835).
    #[test]
    fn the_carried_table_is_the_benchmarks() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/data/nb201/nb201-test-accuracy.csv"
        );
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("{path}: {e} (the NB201 CSV is needed by this test)"));
        let t = table();
        let mut rows = 0;
        for (i, line) in text.lines().skip(1).enumerate() {
            let f: Vec<&str> = line.split(',').collect();
            assert_eq!(f.len(), 5, "{line}");
            let cell = Cell::parse(f[1]).unwrap();
            assert_eq!(cell.to_string(), f[1]);
            let e = t.lookup(&cell);
            assert_eq!(e.index, f[0].parse::<usize>().unwrap());
            assert_eq!(e.index, i);
            for (d, col) in [f[2], f[3], f[4]].iter().enumerate() {
                let want: f64 = col.parse().unwrap();
                assert!((e.accuracy[d] - want).abs() < 5e-5, "{line}: {d}");
            }
            rows += 1;
        }
        assert_eq!(rows, CELLS);
        assert!((t.best(Dataset::Cifar10) - 94.3733).abs() < 1e-9);
        let skip = Cell { ops: [1; 6] };
        let e = t.lookup(&skip);
        assert_eq!(e.index, 1835);
        assert_eq!(
            e.accuracy.map(|a| (a * 100.0).round() / 100.0),
            [54.30, 15.61, 16.32]
        );
    }

    #[test]
    fn ranks_count_from_the_best() {
        let t = table();
        let mut best = None;
        for (cell, e) in t.iter() {
            assert!((1..=CELLS).contains(&e.rank(Dataset::Cifar10)));
            if e.rank(Dataset::Cifar10) == 1 {
                best = Some(cell);
            }
        }
        let best = t.lookup(&best.unwrap());
        assert!((best.accuracy(Dataset::Cifar10) - 94.3733).abs() < 1e-9);
        // A better accuracy never ranks below a worse one.
        let e: Vec<&Entry> = t.by_code.iter().take(500).collect();
        for a in &e {
            for b in &e {
                if a.accuracy[0] > b.accuracy[0] {
                    assert!(a.rank[0] < b.rank[0]);
                }
            }
        }
        // The all-`none` cell (no path from input to output) is at chance level.
        let none = t.lookup(&Cell { ops: [0; 6] });
        assert!(none.accuracy(Dataset::Cifar10) <= 10.0 + 1e-9);
    }

    #[test]
    fn a_truncated_table_is_an_error() {
        assert!(Table::unpack(&PACKED[..100]).is_err());
    }
}
