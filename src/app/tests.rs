//! App state without a terminal: keys → commands, events → state.

use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::fixtures;
use super::*;
use crate::protocol::Event;
use crate::space::CellType;

fn key(c: char) -> Msg {
    Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE))
}

fn code(c: KeyCode) -> Msg {
    Msg::Key(KeyEvent::new(c, KeyModifiers::NONE))
}

fn ctrl(c: char) -> Msg {
    Msg::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
}

fn running_app() -> App {
    let mut app = App::new(KeyMap::default());
    for ev in fixtures::script(true) {
        assert!(app.update(Msg::Worker(ev)).is_empty());
    }
    app
}

#[test]
fn warming_up_until_the_first_step() {
    let mut app = App::new(KeyMap::default());
    assert_eq!(app.state_label(), StateLabel::WarmingUp);
    app.update(Msg::Worker(Event::Started(fixtures::info(true))));
    assert_eq!(
        app.state_label(),
        StateLabel::WarmingUp,
        "Started alone is still warming up"
    );
    app.update(Msg::Worker(Event::Step(fixtures::step(1))));
    assert_eq!(app.state_label(), StateLabel::Running);
    assert_eq!(app.latest.step.as_ref().map(|s| s.global_step), Some(1));
}

#[test]
fn pause_key_sends_pause_and_state_follows_the_worker() {
    let mut app = running_app();
    assert_eq!(app.update(key('p')), vec![Command::Pause]);
    // The UI shows PAUSED only when the worker confirms.
    assert_eq!(app.state_label(), StateLabel::Running);
    app.update(Msg::Worker(Event::Paused { global_step: 400 }));
    assert_eq!(app.state_label(), StateLabel::Paused);
    assert!(
        app.log
            .lines
            .back()
            .is_some_and(|l| l.text.contains("paused at step 400"))
    );
    assert_eq!(app.update(key(' ')), vec![Command::Resume]);
    app.update(Msg::Worker(Event::Resumed));
    assert_eq!(app.state_label(), StateLabel::Running);
    // Two quick presses before any answer: pause then resume, not pause twice.
    assert_eq!(app.update(key('p')), vec![Command::Pause]);
    assert_eq!(app.update(key('p')), vec![Command::Resume]);
}

#[test]
fn release_events_are_ignored() {
    let mut app = running_app();
    let mut ev = KeyEvent::new(KeyCode::Char('p'), KeyModifiers::NONE);
    ev.kind = KeyEventKind::Release;
    assert!(app.update(Msg::Key(ev)).is_empty());
}

#[test]
fn checkpoint_and_export_keys() {
    let mut app = running_app();
    assert_eq!(app.update(key('c')), vec![Command::Checkpoint]);
    app.update(Msg::Worker(Event::Saving));
    assert_eq!(app.state_label(), StateLabel::Saving);
    app.update(Msg::Worker(Event::CheckpointSaved {
        path: "runs/test/checkpoints/step-400".into(),
        global_step: 400,
    }));
    assert_eq!(app.state_label(), StateLabel::Running);
    assert_eq!(app.update(key('e')), vec![Command::Export]);
    app.update(Msg::Worker(Event::Exported {
        paths: vec!["g/a.txt".into(), "g/a.json".into()],
    }));
    assert!(
        app.log
            .lines
            .back()
            .is_some_and(|l| l.text.contains("g/a.txt") && l.text.contains("g/a.json"))
    );
    assert_eq!(app.saves.last_export.len(), 2);
}

#[test]
fn quit_dialog_save_and_quit_then_finished_exits_0() {
    let mut app = running_app();
    assert!(app.update(key('q')).is_empty());
    assert_eq!(app.screen.overlay, Overlay::Quit(QuitChoice::SaveQuit));
    assert_eq!(app.key_context(), Context::Dialog);
    // Enter takes the highlighted default: save & quit.
    assert_eq!(
        app.update(code(KeyCode::Enter)),
        vec![Command::Stop { save: true }]
    );
    assert_eq!(app.screen.overlay, Overlay::None);
    assert_eq!(app.state_label(), StateLabel::Stopping);
    assert_eq!(app.exit_code(), None, "waits for Finished");
    app.update(Msg::Worker(Event::Finished {
        summary: "stopped at step 400".into(),
        stopped: true,
        unsaved: false,
    }));
    assert_eq!(app.exit_code(), Some(0));
}

#[test]
fn quit_dialog_navigation_quit_and_cancel() {
    let mut app = running_app();
    app.update(ctrl('c'));
    assert_eq!(app.screen.overlay, Overlay::Quit(QuitChoice::SaveQuit));
    app.update(code(KeyCode::Right));
    assert_eq!(app.screen.overlay, Overlay::Quit(QuitChoice::Quit));
    app.update(code(KeyCode::Right));
    assert_eq!(app.screen.overlay, Overlay::Quit(QuitChoice::Cancel));
    assert!(app.update(code(KeyCode::Enter)).is_empty());
    assert_eq!(app.screen.overlay, Overlay::None);
    assert!(app.leaving.stopping.is_none());
    // `c` inside the dialog cancels instead of checkpointing.
    app.update(key('q'));
    assert!(app.update(key('c')).is_empty());
    assert_eq!(app.screen.overlay, Overlay::None);
    // `d` quits without saving.
    app.update(key('q'));
    assert_eq!(app.update(key('d')), vec![Command::Stop { save: false }]);
    // While stopping, Ctrl-C forces the exit.
    app.update(ctrl('c'));
    assert_eq!(app.exit_code(), Some(130));
}

#[test]
fn focus_moves_between_edges_ops_and_cells() {
    let mut app = running_app();
    assert_eq!(
        (
            app.cells.focused,
            app.cells.normal.edge,
            app.cells.normal.op
        ),
        (CellType::Normal, 0, 0)
    );
    app.update(code(KeyCode::Down));
    app.update(key('j'));
    app.update(key('l'));
    assert_eq!((app.cells.normal.edge, app.cells.normal.op), (2, 1));
    app.update(key('k'));
    app.update(code(KeyCode::Left));
    app.update(code(KeyCode::Left));
    assert_eq!((app.cells.normal.edge, app.cells.normal.op), (1, 0));
    for _ in 0..40 {
        app.update(key('j'));
        app.update(key('l'));
    }
    assert_eq!(
        (app.cells.normal.edge, app.cells.normal.op),
        (13, 7),
        "clamped to 14 edges x 8 ops"
    );
    app.update(code(KeyCode::Tab));
    assert_eq!(app.cells.focused, CellType::Reduce);
    assert_eq!(
        (app.cells.reduce.edge, app.cells.reduce.op),
        (0, 0),
        "each cell keeps its own focus"
    );
    app.update(key('n'));
    assert_eq!(app.cells.focused, CellType::Normal);
    app.update(key('r'));
    assert_eq!(app.cells.focused, CellType::Reduce);
    // History of the focused weight is recorded per snapshot.
    assert_eq!(app.cells.normal.history[13 * 8 + 7].len_seen(), 40);
}

#[test]
fn failed_event_shows_failed_and_keeps_the_ui_until_quit() {
    let mut app = running_app();
    app.update(Msg::Worker(Event::Failed {
        message: "CUDA out of memory".into(),
    }));
    assert_eq!(app.state_label(), StateLabel::Failed);
    assert!(
        app.log
            .lines
            .back()
            .is_some_and(|l| l.level == Level::Error && l.text.contains("CUDA out of memory"))
    );
    assert_eq!(app.exit_code(), None, "the UI stays up");
    assert!(app.update(key('p')).is_empty(), "no pause after failure");
    assert!(
        app.update(key('c')).is_empty(),
        "no checkpoint after failure"
    );
    app.update(Msg::WorkerGone);
    assert_eq!(app.state_label(), StateLabel::Failed);
    assert_eq!(app.exit_code(), None);
    assert!(app.update(key('q')).is_empty());
    assert_eq!(
        app.exit_code(),
        Some(1),
        "q quits at once after FAILED, exit 1"
    );
}

#[test]
fn worker_gone_without_a_word_is_a_failure() {
    let mut app = running_app();
    app.update(Msg::WorkerGone);
    assert_eq!(app.state_label(), StateLabel::Failed);
    assert_eq!(app.exit_code(), None);
}

#[test]
fn finished_run_stays_up_and_quits_with_0() {
    let mut app = running_app();
    app.update(Msg::Worker(Event::Finished {
        summary: "50 epochs".into(),
        stopped: false,
        unsaved: false,
    }));
    assert_eq!(app.state_label(), StateLabel::Finished);
    assert_eq!(app.exit_code(), None);
    app.update(key('q'));
    assert_eq!(app.screen.overlay, Overlay::None, "no dialog once finished");
    assert_eq!(app.exit_code(), Some(0));
}

#[test]
fn signal_stops_with_save_and_exits_130() {
    let mut app = running_app();
    app.update(key('q'));
    let cmds = app.update(Msg::Signal(libc::SIGTERM));
    assert_eq!(cmds, vec![Command::Stop { save: true }]);
    assert_eq!(app.screen.overlay, Overlay::None, "the dialog closes");
    assert!(
        app.update(Msg::Signal(libc::SIGHUP)).is_empty(),
        "one stop only"
    );
    app.update(Msg::Worker(Event::Saving));
    app.update(Msg::Worker(Event::CheckpointSaved {
        path: "c".into(),
        global_step: 400,
    }));
    app.update(Msg::Worker(Event::Finished {
        summary: "stopped".into(),
        stopped: true,
        unsaved: false,
    }));
    assert_eq!(app.exit_code(), Some(130));
}

#[test]
fn signal_stop_gives_up_after_the_timeout() {
    let mut app = running_app();
    app.leaving.on_hangup = OnHangup::Stop;
    app.update(Msg::Tick(Duration::from_secs(5)));
    app.update(Msg::Signal(libc::SIGHUP));
    app.update(Msg::Tick(Duration::from_secs(34)));
    assert_eq!(app.exit_code(), None);
    app.update(Msg::Tick(Duration::from_secs(35)));
    assert_eq!(app.exit_code(), Some(130));
}

#[test]
fn input_closed_acts_like_sighup() {
    let mut app = running_app();
    app.leaving.on_hangup = OnHangup::Stop;
    assert_eq!(
        app.update(Msg::InputClosed),
        vec![Command::Stop { save: true }]
    );
    app.update(Msg::WorkerGone);
    assert_eq!(app.exit_code(), Some(130));
}

#[test]
fn hangup_checkpoints_and_detaches_by_default() {
    for msg in [Msg::Signal(libc::SIGHUP), Msg::InputClosed] {
        let mut app = running_app();
        assert_eq!(app.leaving.on_hangup, OnHangup::Detach);
        app.update(key('q'));
        assert_eq!(
            app.update(msg.clone()),
            vec![Command::Checkpoint],
            "{msg:?}"
        );
        assert!(app.detaching(), "{msg:?}");
        assert_eq!(app.exit_code(), Some(0), "the UI leaves at once");
        assert_eq!(app.screen.overlay, Overlay::None);
        assert!(app.leaving.stopping.is_none(), "the search is not stopped");
    }
    // SIGTERM and SIGINT still stop the run.
    for sig in [libc::SIGTERM, libc::SIGINT] {
        let mut app = running_app();
        assert_eq!(
            app.update(Msg::Signal(sig)),
            vec![Command::Stop { save: true }]
        );
        assert!(!app.detaching());
    }
}

#[test]
fn d_detaches_but_keeps_its_meaning_in_the_quit_dialog() {
    let mut app = running_app();
    assert!(
        app.update(key('d')).is_empty(),
        "no command: the search goes on"
    );
    assert!(app.detaching());
    assert_eq!(app.exit_code(), Some(0));

    // In the quit dialog `d` is still "quit without saving".
    let mut app = running_app();
    app.update(key('q'));
    assert_eq!(app.update(key('d')), vec![Command::Stop { save: false }]);
    assert!(!app.detaching());

    // Nothing to detach from once the run is over.
    let mut app = running_app();
    app.update(Msg::Worker(Event::Finished {
        summary: "done".into(),
        stopped: false,
        unsaved: false,
    }));
    app.update(key('d'));
    assert!(!app.detaching());
    assert_eq!(app.exit_code(), None);
}

#[test]
fn redraw_and_dirty_tracking() {
    let mut app = running_app();
    assert!(app.take_dirty());
    assert!(!app.take_dirty());
    app.update(Msg::Tick(Duration::from_millis(100)));
    assert!(!app.take_dirty(), "same second, running: nothing to redraw");
    app.update(Msg::Tick(Duration::from_millis(1100)));
    assert!(app.take_dirty(), "the clock moved");
    app.update(ctrl('l'));
    assert!(app.take_clear());
    assert!(!app.take_clear());
    app.update(key('?'));
    assert_eq!(app.screen.overlay, Overlay::Help);
    app.update(code(KeyCode::Esc));
    assert_eq!(app.screen.overlay, Overlay::None);
}

#[test]
fn progress_and_eta() {
    let app = running_app();
    let (frac, eta) = app.progress().unwrap();
    assert!((frac - 400.0 / 19_550.0).abs() < 1e-9, "{frac}");
    assert_eq!(eta.map(|d| d.as_secs()), Some((19_550 - 400) * 120 / 1000));
}

#[test]
fn heat_map_values_darts_vs_nasp() {
    let nasp = running_app();
    let w = nasp.weights(CellType::Normal).unwrap();
    for e in 0..14 {
        assert_eq!(w.marked[e], fixtures::strongest_normal_op(e), "edge {e}");
    }
    assert_eq!(
        w.kept.iter().filter(|k| **k).count(),
        8,
        "two edges per node"
    );
    assert!(
        (w.values.get(0, 1) - nasp.latest.arch.as_ref().unwrap().normal.get(0, 1)).abs() < 1e-6
    );

    let mut darts = App::new(KeyMap::default());
    for ev in fixtures::script(false) {
        darts.update(Msg::Worker(ev));
    }
    let w = darts.weights(CellType::Normal).unwrap();
    let row_sum: f32 = w.values.row(3).iter().sum();
    assert!((row_sum - 1.0).abs() < 1e-5, "softmax rows sum to 1");
    assert_eq!(w.marked[3], fixtures::strongest_normal_op(3));
    assert_eq!(w.kept.iter().filter(|k| **k).count(), 8);
}

/// A watcher whose run ends by itself (finished, failed) leaves the live view for the run's
/// replay; a watcher that stopped the run itself just leaves; the run's own monitor stays up.
#[test]
fn a_watched_run_that_ends_opens_its_replay() {
    let finished = || Event::Finished {
        summary: "done".into(),
        stopped: false,
        unsaved: false,
    };
    let watcher = || {
        let mut app = App::attached(KeyMap::default());
        for ev in fixtures::script(true) {
            app.update(Msg::Worker(ev));
        }
        assert!(!app.replay_next());
        app
    };
    let mut done = watcher();
    done.update(Msg::Worker(finished()));
    assert!(done.replay_next());
    assert_eq!(done.exit_code(), Some(0));

    let mut failed = watcher();
    failed.update(Msg::Worker(Event::Failed {
        message: "boom".into(),
    }));
    assert!(failed.replay_next());

    let mut stopper = watcher();
    stopper.update(key('q'));
    assert_eq!(stopper.update(key('s')), vec![Command::Stop { save: true }]);
    assert_eq!(stopper.exit_code(), None, "waits for the run to stop");
    stopper.update(Msg::Worker(finished()));
    assert!(!stopper.replay_next(), "its own stop: it leaves");
    assert_eq!(stopper.exit_code(), Some(0));

    let mut own = running_app();
    own.update(Msg::Worker(finished()));
    assert!(!own.replay_next());
    assert_eq!(own.exit_code(), None, "the run's own monitor stays up");
}
