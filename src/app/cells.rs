//! The architecture pane's state ([`Cells`]): the focused cell, per cell the focused edge and op
//! and the history of every weight ([`CellView`]) and how stable its selection is; and the
//! display-ready weights of the latest snapshot ([`CellWeights`], from [`cell_weights`]).

use super::{Action, App, History, Stability};
use crate::arch::{ArchMatrix, Layout};
use crate::protocol::ArchSnapshot;
use crate::space::CellType;

/// The cells' views: which cell the keys act on, and per cell its view and the stability of its
/// selection.
#[derive(Debug, Clone)]
pub struct Cells {
    /// The cell the keys act on (and the one shown where only one fits).
    pub focused: CellType,
    pub normal: CellView,
    pub reduce: CellView,
    /// Per cell: how stable the selection is (steps since each edge's op changed, changes in the
    /// last epoch).
    pub normal_stability: Stability,
    pub reduce_stability: Stability,
}

impl Default for Cells {
    fn default() -> Cells {
        Cells {
            focused: CellType::Normal,
            normal: CellView::new(),
            reduce: CellView::new(),
            normal_stability: Stability::default(),
            reduce_stability: Stability::default(),
        }
    }
}

impl Cells {
    pub fn view(&self, cell: CellType) -> &CellView {
        match cell {
            CellType::Normal => &self.normal,
            CellType::Reduce => &self.reduce,
        }
    }

    fn view_mut(&mut self, cell: CellType) -> &mut CellView {
        match cell {
            CellType::Normal => &mut self.normal,
            CellType::Reduce => &mut self.reduce,
        }
    }

    /// How stable a cell's selection is.
    pub fn stability(&self, cell: CellType) -> &Stability {
        match cell {
            CellType::Normal => &self.normal_stability,
            CellType::Reduce => &self.reduce_stability,
        }
    }

    fn stability_mut(&mut self, cell: CellType) -> &mut Stability {
        match cell {
            CellType::Normal => &mut self.normal_stability,
            CellType::Reduce => &mut self.reduce_stability,
        }
    }
}

/// Per-cell view state: the focused edge and op, and the history of every weight.
#[derive(Debug, Clone, PartialEq)]
pub struct CellView {
    pub edge: usize,
    pub op: usize,
    /// One history per (edge, op), row-major, of the value the heat map shows.
    pub history: Vec<History>,
}

impl CellView {
    fn new() -> CellView {
        CellView {
            edge: 0,
            op: 0,
            history: Vec::new(),
        }
    }
}

/// Derived, display-ready facts about one cell of the current architecture snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct CellWeights {
    /// The values shown: A (NASP) or softmax(A) (DARTS).
    pub values: ArchMatrix,
    /// The marked op per edge: Ā's choice (NASP) or the argmax (DARTS).
    pub marked: Vec<usize>,
    /// Whether the edge is kept by the derived cell (dropped edges are dimmed).
    pub kept: Vec<bool>,
}

impl App {
    pub fn cell_view(&self, cell: CellType) -> &CellView {
        self.cells.view(cell)
    }

    /// Whether the heat map shows Ā-selection (NASP) rather than softmax/argmax (DARTS).
    pub fn proximal(&self) -> bool {
        self.run.info.as_ref().is_none_or(|i| i.proximal)
    }

    /// Whether the run trains a fixed genotype (`nasp-tui train`) rather than searching: the
    /// cell panes then show the genotype, the charts the test set, the status the drop path.
    pub fn training(&self) -> bool {
        self.run.info.as_ref().is_some_and(|i| i.trained.is_some())
    }

    /// The op names of a cell (empty before `Started`).
    pub fn ops(&self, cell: CellType) -> &[String] {
        match (&self.run.info, cell) {
            (Some(i), CellType::Normal) => &i.normal_ops,
            (Some(i), CellType::Reduce) => &i.reduce_ops,
            (None, _) => &[],
        }
    }

    /// Display-ready weights of a cell, from the latest snapshot.
    pub fn weights(&self, cell: CellType) -> Option<CellWeights> {
        let snap = self.latest.arch.as_ref()?;
        Some(cell_weights(snap, cell, self.proximal(), self.layout()))
    }

    /// Intermediate nodes per cell.
    pub fn nodes(&self) -> usize {
        self.layout().nodes()
    }

    /// How the run's cells lay out their edges.
    pub fn layout(&self) -> Layout {
        match &self.run.info {
            Some(i) if i.nb201 => Layout::Nb201,
            Some(i) => Layout::Darts { nodes: i.nodes },
            None => Layout::Darts { nodes: 4 },
        }
    }

    pub(super) fn move_focus(&mut self, action: Action) {
        let focused = self.cells.focused;
        let edges = self.latest.arch.as_ref().map_or(0, |a| match focused {
            CellType::Normal => a.normal.rows,
            CellType::Reduce => a.reduce.rows,
        });
        let ops = self.ops(focused).len();
        let view = self.cells.view_mut(focused);
        match action {
            Action::EdgeUp => view.edge = view.edge.saturating_sub(1),
            Action::EdgeDown if edges > 0 => view.edge = (view.edge + 1).min(edges - 1),
            Action::OpLeft => view.op = view.op.saturating_sub(1),
            Action::OpRight if ops > 0 => view.op = (view.op + 1).min(ops - 1),
            _ => {}
        }
    }

    /// How stable a cell's selection is.
    pub fn stability(&self, cell: CellType) -> &Stability {
        self.cells.stability(cell)
    }

    pub(super) fn record_arch(&mut self, snap: &ArchSnapshot) {
        let proximal = self.proximal();
        let layout = self.layout();
        let window = self
            .run
            .info
            .as_ref()
            .map_or(1000, |i| i.steps_per_epoch as u64);
        for cell in [CellType::Normal, CellType::Reduce] {
            let w = cell_weights(snap, cell, proximal, layout);
            self.cells
                .stability_mut(cell)
                .record(snap.global_step, &w.marked, window);
            let view = self.cells.view_mut(cell);
            let n = w.values.data.len();
            if view.history.len() != n {
                view.history = (0..n).map(|_| History::new(240, 120)).collect();
            }
            let x = snap.global_step as f64;
            for (h, v) in view.history.iter_mut().zip(&w.values.data) {
                h.push(x, f64::from(*v));
            }
        }
    }

    pub(super) fn clamp_focus(&mut self) {
        for cell in [CellType::Normal, CellType::Reduce] {
            let (rows, cols) = match (&self.latest.arch, cell) {
                (Some(a), CellType::Normal) => (a.normal.rows, a.normal.cols),
                (Some(a), CellType::Reduce) => (a.reduce.rows, a.reduce.cols),
                (None, _) => continue,
            };
            let view = self.cells.view_mut(cell);
            view.edge = view.edge.min(rows.saturating_sub(1));
            view.op = view.op.min(cols.saturating_sub(1));
        }
    }
}

/// The display values of one cell: A with Ā's choice (NASP), or softmax(A) with its argmax
/// (DARTS). Kept edges come from Ā (NASP) or from the genotype (DARTS: top-2 inputs per node).
pub fn cell_weights(
    snap: &ArchSnapshot,
    cell: CellType,
    proximal: bool,
    layout: Layout,
) -> CellWeights {
    let (a, selected, genes) = match cell {
        CellType::Normal => (&snap.normal, &snap.normal_selected, &snap.genotype.normal),
        CellType::Reduce => (&snap.reduce, &snap.reduce_selected, &snap.genotype.reduce),
    };
    let argmax = |m: &ArchMatrix, r: usize| {
        let row = m.row(r);
        (0..row.len()).fold(0, |best, k| if row[k] > row[best] { k } else { best })
    };
    if proximal {
        let marked = (0..a.rows)
            .map(|r| {
                selected
                    .get(r)
                    .copied()
                    .flatten()
                    .unwrap_or_else(|| argmax(a, r))
            })
            .collect();
        let kept = (0..a.rows)
            .map(|r| selected.get(r).copied().flatten().is_some())
            .collect();
        CellWeights {
            values: a.clone(),
            marked,
            kept,
        }
    } else {
        let p = a.softmax();
        let marked = (0..p.rows).map(|r| argmax(&p, r)).collect();
        let kept = (0..a.rows)
            .map(|e| {
                if layout.keeps_every_edge() {
                    return true;
                }
                let (node, input) = layout.endpoints(e);
                let n = node.saturating_sub(2);
                // The genotype lists two (op, input) pairs per node, in node order.
                genes.iter().skip(2 * n).take(2).any(|(_, i)| *i == input) && n < layout.nodes()
            })
            .collect();
        CellWeights {
            values: p,
            marked,
            kept,
        }
    }
}
