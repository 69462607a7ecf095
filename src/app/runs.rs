//! The runs table of `nasp-tui watch` (several runs, a folder of runs, or the runs root): one row
//! per run from its `status.json`, sortable, with a selection that survives refreshes (it
//! follows the run, not the row number), and the consensus of the shown runs' selections. Pure
//! state: the watcher reads the files and hands the rows in; keys come back as [`RunsIntent`].

use std::path::PathBuf;

use super::{Action, KeyMap};
use crate::protocol::RunInfo;
use crate::rundir::listing::Listed;

/// One run as the table shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    pub path: PathBuf,
    /// The run directory's name (with its sweep folder, when under one).
    pub name: String,
    /// RUNNING, PAUSED, FINISHED, STOPPED, FAILED, STARTING, STALE; `?` unreadable, `-` none.
    pub state: &'static str,
    /// (epochs done, epochs).
    pub epoch: Option<(usize, usize)>,
    pub step: Option<u64>,
    pub train_acc: Option<f64>,
    pub valid_acc: Option<f64>,
    pub ms_per_step: Option<f64>,
    pub device: String,
    pub host: String,
    /// Seconds since the run's last sign of life.
    pub age_s: f64,
    /// The selected op (by name; `None` = edge dropped) per edge, normal then reduce cell.
    pub selection: Option<[Vec<Option<String>>; 2]>,
    /// Intermediate nodes per cell (edge labels).
    pub nodes: usize,
    /// A sweep's run: what its scheduler says (`PENDING (Resources)`, `RUNNING on node1`,
    /// `REQUEUED (BeginTime)`, `COMPLETED`, `CANCELLED`, `QUEUED (local)`, ...).
    pub sched: Option<String>,
    /// An NB201 run: the benchmark's test accuracy (%) of its current cell and that cell's rank
    /// (a lookup in NAS-Bench-201's table, not a measurement of the run).
    pub bench: Option<(f64, usize)>,
}

impl RunRow {
    /// A row from a listed run; `info` (the run's `Started` event) names the ops.
    pub fn new(l: &Listed, info: Option<&RunInfo>, name: String, now: f64) -> RunRow {
        let s = l.status.as_ref();
        let state = match (s, &l.problem) {
            (Some(s), _) => s.shown(now).label(),
            (None, Some(_)) => "?",
            (None, None) => "-",
        };
        let selection = match (s.and_then(|s| s.arch.as_ref()), info) {
            (Some(a), Some(i)) => {
                let names = |sel: &[Option<usize>], ops: &[String]| {
                    sel.iter()
                        .map(|k| k.and_then(|k| ops.get(k).cloned()))
                        .collect()
                };
                Some([
                    names(&a.normal_selected, &i.normal_ops),
                    names(&a.reduce_selected, &i.reduce_ops),
                ])
            }
            _ => None,
        };
        RunRow {
            path: l.path.clone(),
            name,
            state,
            epoch: s.map(|s| (s.epoch, s.epochs)),
            step: s.map(|s| s.step),
            train_acc: s.and_then(|s| s.train_acc),
            valid_acc: s.and_then(|s| s.valid_acc),
            ms_per_step: s.and_then(|s| s.ms_per_step),
            device: s.map_or_else(String::new, |s| s.device.clone()),
            host: s.map_or_else(String::new, |s| s.host.clone()),
            age_s: now - l.last_seen,
            selection,
            nodes: info.map_or(4, |i| i.nodes),
            sched: None,
            bench: s
                .and_then(|s| s.arch.as_ref())
                .and_then(|a| a.benchmark.as_ref())
                .map(|b| (b.accuracy, b.rank)),
        }
    }

    /// Whether a process is working on the run (not ended, not stale).
    pub fn live(&self) -> bool {
        matches!(self.state, "RUNNING" | "PAUSED" | "STARTING")
    }
}

/// The columns the table sorts by, in the order `s` steps through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Age,
    Name,
    State,
    Step,
    Valid,
    /// The NAS-Bench-201 accuracy of the run's current cell (runs without one last).
    Bench,
}

impl SortKey {
    const ALL: [SortKey; 6] = [
        SortKey::Age,
        SortKey::Name,
        SortKey::State,
        SortKey::Step,
        SortKey::Valid,
        SortKey::Bench,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SortKey::Age => "age",
            SortKey::Name => "name",
            SortKey::State => "state",
            SortKey::Step => "step",
            SortKey::Valid => "valid",
            SortKey::Bench => "nb201",
        }
    }
}

/// What a key in the table asks the watcher to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunsIntent {
    Open(PathBuf),
    Quit,
}

/// For one cell: per edge, how many of the shown runs select each op now.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Consensus {
    /// The ops, in the order first met.
    pub ops: Vec<String>,
    /// Per edge: the count per op (as `ops`), then the runs that drop the edge.
    pub counts: Vec<(Vec<usize>, usize)>,
    /// Runs that had a selection to count.
    pub runs: usize,
}

/// The table's state.
#[derive(Debug, Clone)]
pub struct RunsTable {
    keymap: KeyMap,
    rows: Vec<RunRow>,
    pub sort: SortKey,
    pub reverse: bool,
    /// The selected run (kept by path across refreshes).
    selected: Option<PathBuf>,
    /// What the watcher was asked to show (a root or the paths given), for the title.
    pub source: String,
    /// A problem to show (an unreadable status, say).
    pub notes: Vec<String>,
    dirty: bool,
}

impl RunsTable {
    pub fn new(keymap: KeyMap, source: String) -> RunsTable {
        RunsTable {
            keymap,
            rows: Vec::new(),
            sort: SortKey::Age,
            reverse: false,
            selected: None,
            source,
            notes: Vec::new(),
            dirty: true,
        }
    }

    pub fn keymap(&self) -> &KeyMap {
        &self.keymap
    }

    /// Whether something visible changed since the last call (and resets it).
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    pub fn mark_dirty(&mut self) {
        self.dirty = true;
    }

    /// Replaces the rows and notes (a refresh), sorted; redraws only when they changed.
    pub fn set_rows(&mut self, rows: Vec<RunRow>, notes: Vec<String>) {
        if notes != self.notes {
            self.notes = notes;
            self.dirty = true;
        }
        if rows != self.rows {
            self.rows = rows;
            self.sort_rows();
            self.dirty = true;
        }
    }

    /// Replaces the notes alone (the rows stay); redraws when they changed.
    pub fn set_notes(&mut self, notes: Vec<String>) {
        if notes != self.notes {
            self.notes = notes;
            self.dirty = true;
        }
    }

    /// The rows in display order.
    pub fn rows(&self) -> &[RunRow] {
        &self.rows
    }

    /// The index of the selected row (the first when none was chosen or it went away).
    pub fn selected(&self) -> Option<usize> {
        if self.rows.is_empty() {
            return None;
        }
        let found = self
            .selected
            .as_ref()
            .and_then(|p| self.rows.iter().position(|r| &r.path == p));
        Some(found.unwrap_or(0))
    }

    fn sort_rows(&mut self) {
        let cmp_f = |a: Option<f64>, b: Option<f64>| {
            a.unwrap_or(f64::NEG_INFINITY)
                .total_cmp(&b.unwrap_or(f64::NEG_INFINITY))
        };
        let key = self.sort;
        self.rows.sort_by(|a, b| {
            let o = match key {
                SortKey::Age => a.age_s.total_cmp(&b.age_s),
                SortKey::Name => a.name.cmp(&b.name),
                SortKey::State => a.state.cmp(b.state),
                SortKey::Step => b.step.cmp(&a.step),
                SortKey::Valid => cmp_f(b.valid_acc, a.valid_acc),
                SortKey::Bench => cmp_f(b.bench.map(|x| x.0), a.bench.map(|x| x.0)),
            };
            o.then_with(|| a.name.cmp(&b.name))
        });
        if self.reverse {
            self.rows.reverse();
        }
    }

    /// Runs a key's action.
    pub fn on_action(&mut self, action: Action) -> Option<RunsIntent> {
        self.dirty = true;
        let at = self.selected();
        let pick = |i: usize, rows: &[RunRow]| rows.get(i).map(|r| r.path.clone());
        match action {
            Action::RunsUp => {
                if let Some(i) = at {
                    self.selected = pick(i.saturating_sub(1), &self.rows);
                }
            }
            Action::RunsDown => {
                if let Some(i) = at {
                    self.selected = pick((i + 1).min(self.rows.len() - 1), &self.rows);
                }
            }
            Action::RunsOpen => return at.and_then(|i| pick(i, &self.rows)).map(RunsIntent::Open),
            Action::RunsSort => {
                let i = SortKey::ALL
                    .iter()
                    .position(|k| *k == self.sort)
                    .unwrap_or(0);
                self.sort = SortKey::ALL[(i + 1) % SortKey::ALL.len()];
                self.sort_rows();
            }
            Action::RunsReverse => {
                self.reverse = !self.reverse;
                self.rows.reverse();
            }
            Action::RunsQuit => return Some(RunsIntent::Quit),
            _ => {}
        }
        None
    }

    /// For cell 0 (normal) or 1 (reduce): per edge, how many shown runs select each op now.
    pub fn consensus(&self, cell: usize) -> Consensus {
        let mut c = Consensus::default();
        for sel in self.rows.iter().filter_map(|r| r.selection.as_ref()) {
            let edges = &sel[cell.min(1)];
            c.runs += 1;
            if c.counts.len() < edges.len() {
                c.counts.resize(edges.len(), (vec![0; c.ops.len()], 0));
            }
            for (e, op) in edges.iter().enumerate() {
                let Some(op) = op else {
                    c.counts[e].1 += 1;
                    continue;
                };
                let k = match c.ops.iter().position(|o| o == op) {
                    Some(k) => k,
                    None => {
                        c.ops.push(op.clone());
                        for row in &mut c.counts {
                            row.0.push(0);
                        }
                        c.ops.len() - 1
                    }
                };
                c.counts[e].0[k] += 1;
            }
        }
        c
    }

    /// Intermediate nodes per cell of the shown runs (edge labels).
    pub fn nodes(&self) -> usize {
        self.rows
            .iter()
            .find(|r| r.selection.is_some())
            .map_or(4, |r| r.nodes)
    }
}

#[cfg(test)]
#[path = "runs_tests.rs"]
mod tests;
