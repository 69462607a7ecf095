//! Where a search step's time goes (`bench --phases`): wall time between marks the step sets at
//! the boundaries of its phases (all-ops pass, sparse pass forward and backward, products,
//! Adam, host work, weight step...). On the CPU the work is synchronous, so the marks split the
//! step exactly; on a GPU each mark waits for the device, which removes the overlap the step
//! otherwise has: read a GPU breakdown as shares, not as a step time.

use std::time::Instant;

/// Milliseconds per phase, summed over the steps since the last reset, in first-seen order.
#[derive(Debug, Default, Clone)]
pub struct PhaseClock {
    last: Option<Instant>,
    totals: Vec<(&'static str, f64)>,
}

impl PhaseClock {
    /// Starts timing from now (the beginning of a step).
    pub fn start(&mut self) {
        self.last = Some(Instant::now());
    }

    /// The time since the previous mark (or start) belongs to `phase`.
    pub fn mark(&mut self, phase: &'static str) {
        let Some(t) = self.last else {
            return;
        };
        let now = Instant::now();
        let ms = (now - t).as_secs_f64() * 1000.0;
        match self.totals.iter_mut().find(|(p, _)| *p == phase) {
            Some((_, total)) => *total += ms,
            None => self.totals.push((phase, ms)),
        }
        self.last = Some(now);
    }

    /// Forgets what was timed (after the warm-up).
    pub fn reset(&mut self) {
        self.totals.clear();
        self.last = None;
    }

    /// Each phase's total milliseconds since the last reset.
    pub fn totals(&self) -> Vec<(String, f64)> {
        self.totals
            .iter()
            .map(|(p, ms)| ((*p).to_string(), *ms))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn marks_split_the_time_between_them_and_sum_over_steps() {
        let mut c = PhaseClock::default();
        c.mark("ignored before start");
        assert!(c.totals().is_empty());
        for _ in 0..2 {
            c.start();
            std::thread::sleep(Duration::from_millis(20));
            c.mark("a");
            std::thread::sleep(Duration::from_millis(5));
            c.mark("b");
        }
        let t = c.totals();
        assert_eq!(
            t.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert!(t[0].1 >= 40.0 && t[1].1 >= 10.0, "{t:?}");
        assert!(t[0].1 > t[1].1, "{t:?}");
        c.reset();
        assert!(c.totals().is_empty());
    }
}
