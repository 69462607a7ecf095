//! The search space as data: the one table of candidate operations (name, column label, what the
//! engine builds, parameter formula) and the op lists of each space. Config validation, the
//! supernet's constructors, the regulariser's burden, genotype checks and the panes all read
//! this table; to add an op, add a row here and one arm to `engine::ops::Op::new` (the compiler
//! asks for it: the match on [`OpKind`] is exhaustive).
//!
//! Imports nothing of the crate: every other module may use it.

use serde::{Deserialize, Serialize};

/// What an op computes; `engine::ops` builds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpKind {
    /// A zero output (`none`).
    Zero,
    /// Max (`max: true`) or average pooling with a k × k window, then a non-affine BN.
    Pool { max: bool, k: i64 },
    /// Identity at stride 1, factorized reduction at stride 2 (`skip_connect`).
    Skip,
    /// A depthwise-separable k × k convolution applied twice.
    Sep { k: i64 },
    /// A dilated (rate 2) separable k × k convolution.
    Dil { k: i64 },
    /// ReLU → dense k × k convolution → BN.
    Conv { k: i64 },
    /// ReLU → 1 × k convolution → k × 1 convolution → BN.
    Factorized { k: i64 },
}

impl OpKind {
    /// Weights of the op at stride 1 with `c` channels in and out (batch norms are non-affine
    /// in the search, so they add none). At C = 12 this is NASP's PARAMS table (spec §3.8).
    pub fn params(self, c: i64) -> i64 {
        match self {
            OpKind::Zero | OpKind::Pool { .. } | OpKind::Skip => 0,
            OpKind::Sep { k } => 2 * (c * k * k + c * c),
            OpKind::Dil { k } => c * k * k + c * c,
            OpKind::Conv { k } => c * c * k * k,
            OpKind::Factorized { k } => 2 * c * c * k,
        }
    }
}

/// One row of the op table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpSpec {
    /// The name configs and genotypes use (DARTS and NASP spellings; note the spaces).
    pub name: &'static str,
    /// Four-character column label for the panes.
    pub label: &'static str,
    pub kind: OpKind,
}

const fn op(name: &'static str, label: &'static str, kind: OpKind) -> OpSpec {
    OpSpec { name, label, kind }
}

/// Every op the engine can build.
pub const OPS: &[OpSpec] = &[
    op("none", "none", OpKind::Zero),
    op("max_pool_3x3", "max3", OpKind::Pool { max: true, k: 3 }),
    op("avg_pool_3x3", "avg3", OpKind::Pool { max: false, k: 3 }),
    op("skip_connect", "skip", OpKind::Skip),
    op("sep_conv_3x3", "sep3", OpKind::Sep { k: 3 }),
    op("sep_conv_5x5", "sep5", OpKind::Sep { k: 5 }),
    op("dil_conv_3x3", "dil3", OpKind::Dil { k: 3 }),
    op("dil_conv_5x5", "dil5", OpKind::Dil { k: 5 }),
    op("conv_3x1_1x3", "c3x1", OpKind::Factorized { k: 3 }),
    op("conv 1x1", "c1x1", OpKind::Conv { k: 1 }),
    op("conv 3x3", "c3x3", OpKind::Conv { k: 3 }),
    op("sep_3x3", "sep3", OpKind::Sep { k: 3 }),
    op("sep_5x5", "sep5", OpKind::Sep { k: 5 }),
    op("sep_7x7", "sep7", OpKind::Sep { k: 7 }),
    op("max_pool_5x5", "max5", OpKind::Pool { max: true, k: 5 }),
    op("max_pool_7x7", "max7", OpKind::Pool { max: true, k: 7 }),
    // NAS-Bench-201's convolutions (ReLU → conv → BN). In the `nb201` space the engine builds
    // them as the benchmark does (with a conv bias beside the non-affine BN); elsewhere they are
    // the DARTS-style `Conv` (a bias before a batch norm changes nothing but the count).
    op("nor_conv_1x1", "ncv1", OpKind::Conv { k: 1 }),
    op("nor_conv_3x3", "ncv3", OpKind::Conv { k: 3 }),
];

/// The row of op `name`, if the engine knows it.
pub fn lookup(name: &str) -> Option<&'static OpSpec> {
    OPS.iter().find(|o| o.name == name)
}

/// Every op name, comma-separated (for error messages).
pub fn known_names() -> String {
    OPS.iter().map(|o| o.name).collect::<Vec<_>>().join(", ")
}

/// The column label of op `name` (an unknown name: its first four characters).
pub fn label(name: &str) -> String {
    lookup(name).map_or_else(|| name.chars().take(4).collect(), |o| o.label.to_string())
}

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

/// NAS-Bench-201's ops, in its order (its cell has no reduction type).
pub const NB201_OPS: &[&str] = &[
    "none",
    "skip_connect",
    "nor_conv_1x1",
    "nor_conv_3x3",
    "avg_pool_3x3",
];

/// The search space: which candidate operations each edge holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Space {
    /// DARTS: the same 8 ops (with `none`) in normal and reduction cells.
    Darts,
    /// NASP's released code: 8 normal ops, 5 reduction ops, no `none`.
    Nasp,
    /// NAS-Bench-201: one cell type (six edges over three nodes, every edge kept), five ops with
    /// `none`, stacked in three stages joined by residual blocks; every cell's accuracy is known
    /// (`crate::nb201`).
    Nb201,
}

impl Space {
    /// The space's own op list of a cell type.
    pub fn ops(self, cell: CellType) -> &'static [&'static str] {
        match (self, cell) {
            (Space::Darts, _) => DARTS_OPS,
            (Space::Nasp, CellType::Normal) => NASP_NORMAL_OPS,
            (Space::Nasp, CellType::Reduce) => NASP_REDUCE_OPS,
            (Space::Nb201, CellType::Normal) => NB201_OPS,
            (Space::Nb201, CellType::Reduce) => &[],
        }
    }

    /// Whether the space's cells are NAS-Bench-201's (one input, every edge kept, no
    /// reduction cells) rather than DARTS's (two inputs, two edges kept per node).
    pub fn is_nb201(self) -> bool {
        self == Space::Nb201
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

/// The op lists of a model: normal and reduction cells.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpLists {
    pub normal: Vec<String>,
    pub reduce: Vec<String>,
}

impl OpLists {
    /// The lists of `space`, each replaced by its override when that is not empty.
    pub fn new(space: Space, normal: &[String], reduce: &[String]) -> OpLists {
        let own = |v: &[String], cell: CellType| {
            if v.is_empty() {
                space.ops(cell).iter().map(|s| (*s).to_string()).collect()
            } else {
                v.to_vec()
            }
        };
        OpLists {
            normal: own(normal, CellType::Normal),
            reduce: own(reduce, CellType::Reduce),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// NASP's PARAMS table (C = 12, non-affine BN; spec §3.8), spelled out.
    #[test]
    fn parameter_formula_matches_the_nasp_table() {
        let table = [
            ("conv_3x1_1x3", 864),
            ("sep_7x7", 1464),
            ("conv 3x3", 1296),
            ("sep_5x5", 888),
            ("sep_conv_5x5", 888),
            ("sep_3x3", 504),
            ("sep_conv_3x3", 504),
            ("dil_conv_5x5", 444),
            ("conv 1x1", 144),
            ("dil_conv_3x3", 252),
            ("skip_connect", 0),
            ("max_pool_3x3", 0),
            ("none", 0),
        ];
        for (name, want) in table {
            assert_eq!(lookup(name).unwrap().kind.params(12), want, "{name}");
        }
        // The table's 7 × 1 factorized convolution (an op the catalogue does not build).
        assert_eq!(OpKind::Factorized { k: 7 }.params(12), 2016);
    }

    /// The op lists against the reference code's, name for name and in order (spec §1.5): the
    /// column order of A and the genotype names depend on it. Any swap or rename fails.
    #[test]
    fn op_lists_match_the_reference_lists_in_order() {
        let darts = [
            "none",
            "max_pool_3x3",
            "avg_pool_3x3",
            "skip_connect",
            "sep_conv_3x3",
            "sep_conv_5x5",
            "dil_conv_3x3",
            "dil_conv_5x5",
        ];
        let normal = [
            "skip_connect",
            "conv_3x1_1x3",
            "dil_conv_3x3",
            "conv 1x1",
            "conv 3x3",
            "sep_3x3",
            "sep_5x5",
            "sep_7x7",
        ];
        let reduce = [
            "skip_connect",
            "avg_pool_3x3",
            "max_pool_3x3",
            "max_pool_5x5",
            "max_pool_7x7",
        ];
        assert_eq!(DARTS_OPS, darts);
        assert_eq!(NASP_NORMAL_OPS, normal);
        assert_eq!(NASP_REDUCE_OPS, reduce);
        assert_eq!(Space::Darts.ops(CellType::Normal), darts);
        assert_eq!(Space::Darts.ops(CellType::Reduce), darts);
        assert_eq!(Space::Nasp.ops(CellType::Normal), normal);
        assert_eq!(Space::Nasp.ops(CellType::Reduce), reduce);
    }

    #[test]
    fn every_listed_op_is_in_the_table_once() {
        for list in [DARTS_OPS, NASP_NORMAL_OPS, NASP_REDUCE_OPS] {
            for name in list {
                assert!(lookup(name).is_some(), "{name}");
            }
        }
        for (i, a) in OPS.iter().enumerate() {
            assert!(a.label.chars().count() <= 4, "{}", a.name);
            assert!(OPS[i + 1..].iter().all(|b| b.name != a.name), "{}", a.name);
        }
        assert_eq!(label("sep_conv_3x3"), "sep3");
        assert_eq!(label("something_new"), "some");
    }

    #[test]
    fn overrides_replace_only_their_list() {
        let l = OpLists::new(Space::Nasp, &[], &["none".into(), "skip_connect".into()]);
        assert_eq!(l.normal.len(), NASP_NORMAL_OPS.len());
        assert_eq!(l.get(CellType::Reduce), ["none", "skip_connect"]);
    }
}
