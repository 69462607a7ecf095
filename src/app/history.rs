//! Bounded metric history: the recent window at full resolution plus the whole run down-sampled,
//! so a week-long run costs the same memory as a minute-long one (burn's scheme: when the coarse
//! buffer fills, keep every other point and double the stride).

use std::collections::VecDeque;

/// One series of `(x, y)` points.
#[derive(Debug, Clone, PartialEq)]
pub struct History {
    recent: VecDeque<(f64, f64)>,
    recent_cap: usize,
    overall: Vec<(f64, f64)>,
    overall_cap: usize,
    stride: usize,
    seen: usize,
}

impl History {
    /// `recent_cap` points at full resolution, at most `overall_cap` points for the whole run.
    pub fn new(recent_cap: usize, overall_cap: usize) -> History {
        History {
            recent: VecDeque::with_capacity(recent_cap.max(1)),
            recent_cap: recent_cap.max(1),
            overall: Vec::with_capacity(overall_cap.max(2)),
            overall_cap: overall_cap.max(2),
            stride: 1,
            seen: 0,
        }
    }

    pub fn push(&mut self, x: f64, y: f64) {
        if !x.is_finite() || !y.is_finite() {
            return;
        }
        if self.recent.len() == self.recent_cap {
            self.recent.pop_front();
        }
        self.recent.push_back((x, y));
        if self.seen.is_multiple_of(self.stride) {
            if self.overall.len() == self.overall_cap {
                let kept: Vec<(f64, f64)> = self.overall.iter().step_by(2).copied().collect();
                self.overall = kept;
                self.stride *= 2;
            }
            if self.seen.is_multiple_of(self.stride) {
                self.overall.push((x, y));
            }
        }
        self.seen += 1;
    }

    pub fn is_empty(&self) -> bool {
        self.recent.is_empty()
    }

    /// Points pushed so far (including those no longer stored).
    pub fn len_seen(&self) -> usize {
        self.seen
    }

    /// The newest point.
    pub fn last(&self) -> Option<(f64, f64)> {
        self.recent.back().copied()
    }

    /// The newest `n` points at full resolution, oldest first.
    pub fn recent(&self, n: usize) -> Vec<(f64, f64)> {
        let skip = self.recent.len().saturating_sub(n);
        self.recent.iter().skip(skip).copied().collect()
    }

    /// The whole run: the coarse points older than the recent window, then the recent window.
    pub fn points(&self) -> Vec<(f64, f64)> {
        let start = self.recent.front().map_or(f64::INFINITY, |p| p.0);
        let mut out: Vec<(f64, f64)> = self
            .overall
            .iter()
            .take_while(|p| p.0 < start)
            .copied()
            .collect();
        out.extend(self.recent.iter().copied());
        out
    }

    /// Smallest and largest y over [`History::points`].
    pub fn y_bounds(&self) -> Option<(f64, f64)> {
        let pts = self.points();
        let lo = pts.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
        let hi = pts.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
        (lo <= hi).then_some((lo, hi))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_stays_bounded_and_covers_the_whole_run() {
        let mut h = History::new(10, 16);
        for i in 0..10_000 {
            h.push(f64::from(i), f64::from(i) * 2.0);
        }
        let pts = h.points();
        assert!(pts.len() <= 26, "{}", pts.len());
        assert_eq!(
            pts.first().map(|p| p.0),
            Some(0.0),
            "the first point of the run is kept"
        );
        assert_eq!(pts.last(), Some(&(9999.0, 19998.0)));
        assert!(pts.windows(2).all(|w| w[0].0 < w[1].0), "x increases");
        assert_eq!(
            h.recent(3),
            vec![(9997.0, 19994.0), (9998.0, 19996.0), (9999.0, 19998.0)]
        );
        assert_eq!(h.len_seen(), 10_000);
        assert_eq!(h.y_bounds(), Some((0.0, 19998.0)));
    }

    #[test]
    fn short_runs_are_kept_exactly_and_nan_is_skipped() {
        let mut h = History::new(100, 100);
        h.push(1.0, 0.5);
        h.push(2.0, f64::NAN);
        h.push(3.0, 0.25);
        assert_eq!(h.points(), vec![(1.0, 0.5), (3.0, 0.25)]);
        assert!(History::new(4, 4).y_bounds().is_none());
    }
}
