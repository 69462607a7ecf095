//! Replay of an ended run: every recorded event in memory and a time cursor. The state at the
//! cursor is the fold of the events before it, from the nearest kept copy of the app (a
//! keyframe, one every ~1/16 of the run) — so moving back costs a slice of the run, not all of
//! it, and moving forward folds only the events passed. Heat map, selection, genotype, charts
//! and log all follow, because they are the same [`App`] fields the live monitor draws.

use std::sync::Arc;

use super::{Action, App};
use crate::protocol::{Event, Level};

/// Keyframes per run (at most about this many, plus one).
const KEYFRAMES: usize = 16;
/// Fewer events than this between keyframes are not worth a copy of the app.
const MIN_KEYFRAME_GAP: usize = 256;

/// Where the cursor stands.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReplayCursor {
    /// Events folded in (0..=len).
    pub at: usize,
    pub len: usize,
    /// Seconds from the first event to the last folded one.
    pub seconds: f64,
}

/// The recorded events and the cursor.
#[derive(Debug, Clone)]
pub struct Replay {
    events: Arc<Vec<(f64, Event)>>,
    /// (events folded, the app after them), increasing; the first is at 0.
    keyframes: Arc<Vec<(usize, App)>>,
    /// Cursor positions that end on an architecture snapshot (one per recorded step).
    stops: Arc<Vec<usize>>,
    at: usize,
}

impl Replay {
    pub fn cursor(&self) -> ReplayCursor {
        let t0 = self.events.first().map_or(0.0, |e| e.0);
        let seconds = match self.at {
            0 => 0.0,
            n => self.events[n - 1].0 - t0,
        };
        ReplayCursor {
            at: self.at,
            len: self.events.len(),
            seconds,
        }
    }
}

impl App {
    /// A replay of recorded `(time, event)` pairs, opened at the end; `notes` (unreadable lines
    /// of the log, say) go first into the log pane.
    pub fn replay(
        keymap: super::KeyMap,
        events: Vec<(f64, Event)>,
        notes: Vec<(Level, String)>,
    ) -> App {
        let mut app = App::new(keymap);
        for (level, text) in notes {
            app.note(level, text);
        }
        let gap = (events.len() / KEYFRAMES).max(MIN_KEYFRAME_GAP);
        let mut keyframes = vec![(0, app.clone())];
        let mut stops = Vec::new();
        for (i, (_, ev)) in events.iter().enumerate() {
            if matches!(ev, Event::Arch(_)) {
                stops.push(i + 1);
            }
            app.on_event(ev.clone());
            if (i + 1) % gap == 0 {
                keyframes.push((i + 1, app.clone()));
            }
        }
        app.replay = Some(Replay {
            at: events.len(),
            events: Arc::new(events),
            keyframes: Arc::new(keyframes),
            stops: Arc::new(stops),
        });
        app.screen.dirty = true;
        app
    }

    /// Moves the replay cursor as a key asks.
    pub(super) fn move_cursor(&mut self, action: Action) {
        let Some(r) = &self.replay else {
            return;
        };
        let len = r.events.len();
        let page = (len / 10).max(1);
        let target = match action {
            Action::ReplayBack => r.stops.iter().rev().find(|s| **s < r.at).copied(),
            Action::ReplayForward => r.stops.iter().find(|s| **s > r.at).copied(),
            Action::ReplayPageBack => Some(r.at.saturating_sub(page)),
            Action::ReplayPageForward => Some((r.at + page).min(len)),
            Action::ReplayStart => Some(r.stops.first().copied().unwrap_or(0)),
            Action::ReplayEnd => Some(len),
            _ => None,
        };
        if let Some(t) = target {
            self.seek(t);
        }
    }

    /// Puts the cursor after `target` events: folds forward from here, or from the nearest
    /// keyframe before it.
    pub fn seek(&mut self, target: usize) {
        let Some(mut r) = self.replay.take() else {
            return;
        };
        let target = target.min(r.events.len());
        if target < r.at {
            let Some((k, frame)) = r.keyframes.iter().rev().find(|(k, _)| *k <= target) else {
                self.replay = Some(r);
                return;
            };
            self.adopt(frame.clone());
            r.at = *k;
        }
        for (_, ev) in &r.events[r.at..target] {
            self.on_event(ev.clone());
        }
        r.at = target;
        self.replay = Some(r);
        self.clamp_focus();
        self.screen.dirty = true;
    }

    /// Takes the folded state of `folded`, keeping what the user set here (focus, overlay,
    /// smoothing, scroll, the clock and resources).
    fn adopt(&mut self, mut folded: App) {
        folded.screen.overlay = self.screen.overlay;
        folded.cells.focused = self.cells.focused;
        for (mine, theirs) in [
            (&self.cells.normal, &mut folded.cells.normal),
            (&self.cells.reduce, &mut folded.cells.reduce),
        ] {
            theirs.edge = mine.edge;
            theirs.op = mine.op;
        }
        folded.log.scroll = self.log.scroll;
        folded.charts.smoothing = self.charts.smoothing;
        folded.latest.elapsed = self.latest.elapsed;
        folded.latest.resources = self.latest.resources.take();
        folded.leaving.exit = self.leaving.exit;
        folded.keymap = std::mem::take(&mut self.keymap);
        *self = folded;
    }
}

#[cfg(test)]
#[path = "replay_tests.rs"]
mod tests;
