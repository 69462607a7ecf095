//! How stable a cell's selection is: per edge, the step at which its marked op last changed, and
//! the changes of the last epoch. Fed by every architecture snapshot (live or replayed).

use std::collections::VecDeque;

/// The selection's history of one cell, kept small (the last epoch's changes only).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Stability {
    /// The marked op per edge in the latest snapshot.
    marked: Vec<usize>,
    /// Per edge: the global step of its last change (the first snapshot's step before any).
    since: Vec<u64>,
    /// (global step, edges changed) of the changes within the last window.
    changes: VecDeque<(u64, u32)>,
    /// The latest snapshot's step.
    pub step: u64,
    /// Steps per epoch: the window of [`Stability::changes_last_epoch`].
    window: u64,
}

impl Stability {
    /// Folds in one snapshot's marked ops at `step`.
    pub fn record(&mut self, step: u64, marked: &[usize], window: u64) {
        self.window = window.max(1);
        if self.marked.len() != marked.len() {
            self.marked = marked.to_vec();
            self.since = vec![step; marked.len()];
            self.changes.clear();
        } else {
            let mut n = 0;
            for (e, (old, new)) in self.marked.iter_mut().zip(marked).enumerate() {
                if old != new {
                    *old = *new;
                    self.since[e] = step;
                    n += 1;
                }
            }
            if n > 0 {
                self.changes.push_back((step, n));
            }
        }
        self.step = step;
        while self
            .changes
            .front()
            .is_some_and(|(s, _)| *s + self.window <= step)
        {
            self.changes.pop_front();
        }
    }

    /// Steps since edge `e`'s op last changed (since the first snapshot if it never did).
    pub fn steps_since_change(&self, e: usize) -> Option<u64> {
        self.since.get(e).map(|s| self.step.saturating_sub(*s))
    }

    /// How many edge selections changed over the last epoch's steps.
    pub fn changes_last_epoch(&self) -> u32 {
        self.changes.iter().map(|(_, n)| n).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_changes_in_the_window_and_steps_since() {
        let mut s = Stability::default();
        s.record(10, &[1, 2, 3], 100);
        assert_eq!(s.steps_since_change(0), Some(0));
        s.record(20, &[1, 4, 3], 100);
        s.record(30, &[0, 2, 3], 100);
        assert_eq!(s.changes_last_epoch(), 3, "edge 1 twice, edge 0 once");
        s.record(125, &[0, 2, 3], 100);
        assert_eq!(
            s.changes_last_epoch(),
            2,
            "the change at step 20 left the window"
        );
        assert_eq!(s.steps_since_change(0), Some(95));
        assert_eq!(s.steps_since_change(2), Some(115));
        assert_eq!(s.steps_since_change(9), None);
    }
}
