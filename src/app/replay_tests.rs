//! The replay's cursor against the event log it replays: the state at the cursor is the log's.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::super::fixtures;
use super::super::{App, KeyMap, Msg, StateLabel};
use crate::protocol::{ArchSnapshot, Event, Level};

fn key(c: KeyCode) -> Msg {
    Msg::Key(KeyEvent::new(c, KeyModifiers::NONE))
}

/// A snapshot whose selection is a function of the step, so that every step differs.
fn snap(step: u64) -> ArchSnapshot {
    let mut s = fixtures::snapshot(step, 0.0);
    for (e, sel) in s.normal_selected.iter_mut().enumerate() {
        *sel = Some((step as usize * 7 + e) % 8);
    }
    s
}

/// Started, then `n` steps (each a Step and an Arch), a second apart.
fn log(n: u64) -> Vec<(f64, Event)> {
    let mut out = vec![(1000.0, Event::Started(fixtures::info(true)))];
    for s in 1..=n {
        let t = 1000.0 + s as f64;
        out.push((t, Event::Step(fixtures::step(s))));
        out.push((t, Event::Arch(snap(s))));
    }
    out
}

fn at_step(app: &App) -> u64 {
    app.latest.arch.as_ref().map_or(0, |a| a.global_step)
}

/// The selection the log records for `step`.
fn logged(events: &[(f64, Event)], step: u64) -> Vec<Option<usize>> {
    events
        .iter()
        .find_map(|(_, e)| match e {
            Event::Arch(a) if a.global_step == step => Some(a.normal_selected.clone()),
            _ => None,
        })
        .expect("the step is in the log")
}

#[test]
fn the_cursor_shows_each_step_as_the_log_recorded_it() {
    let events = log(1000);
    let mut app = App::replay(KeyMap::default(), events.clone(), Vec::new());
    assert_eq!(app.state_label(), StateLabel::Replay);
    assert_eq!(at_step(&app), 1000, "opens at the end");
    for _ in 0..10 {
        assert!(app.update(key(KeyCode::Left)).is_empty());
    }
    assert_eq!(at_step(&app), 990);
    let arch = app.latest.arch.clone().expect("a snapshot");
    assert_eq!(arch.normal_selected, logged(&events, 990));
    assert_ne!(arch.normal_selected, logged(&events, 1000), "it moved");
    assert_eq!(app.latest.step.as_ref().map(|s| s.global_step), Some(990));
    assert_eq!(
        app.charts.train_acc.last().map(|p| p.0),
        Some(990.0),
        "the charts end at the cursor"
    );
    // 10 % back crosses keyframes (every 256 events): the state is rebuilt, not patched.
    app.update(key(KeyCode::PageUp));
    let s = at_step(&app);
    assert!((880..=890).contains(&s), "{s}");
    assert_eq!(
        app.latest.arch.as_ref().map(|a| a.normal_selected.clone()),
        Some(logged(&events, s))
    );
    assert_eq!(
        app.charts.train_acc.len_seen(),
        s as usize,
        "no point after the cursor"
    );
    app.update(key(KeyCode::Home));
    assert_eq!(at_step(&app), 1);
    app.update(key(KeyCode::Right));
    assert_eq!(at_step(&app), 2);
    assert_eq!(
        app.latest.arch.as_ref().map(|a| a.normal_selected.clone()),
        Some(logged(&events, 2))
    );
    app.update(key(KeyCode::End));
    assert_eq!(at_step(&app), 1000);
    let c = app.replay.as_ref().expect("replay").cursor();
    assert_eq!((c.at, c.len), (2001, 2001));
    assert!((c.seconds - 1000.0).abs() < 1e-9);
}

#[test]
fn focus_survives_a_jump_back_and_steering_is_refused() {
    let mut app = App::replay(
        KeyMap::default(),
        log(600),
        vec![(Level::Warn, "skipped a line".into())],
    );
    app.update(key(KeyCode::Down));
    app.update(key(KeyCode::Down));
    app.update(key(KeyCode::Home));
    assert_eq!(app.cells.normal.edge, 2, "the focused edge is kept");
    assert!(app.log.lines.iter().any(|l| l.text == "skipped a line"));
    for c in ['p', 'c', 'e'] {
        assert!(app.update(key(KeyCode::Char(c))).is_empty(), "{c}");
    }
    app.update(key(KeyCode::Char('q')));
    assert_eq!(app.exit_code(), Some(0), "q leaves a replay at once");
}
