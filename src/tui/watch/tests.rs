//! The watcher's link and loading against real files: a run that has not started yet, lines
//! cut short or garbage, commands into the inbox, a replay of a damaged log.

use std::io::Write;
use std::time::Duration;

use super::{Link, load};
use crate::app::{KeyMap, fixtures};
use crate::protocol::{Command, Event, Level};
use crate::rundir::events::{EVENTS_FILE, EventWriter};
use crate::rundir::inbox::{self, Taken, Verb};

fn next(link: &Link) -> Event {
    link.events
        .recv_timeout(Duration::from_secs(5))
        .expect("an event within 5 s")
}

fn append_raw(dir: &std::path::Path, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join(EVENTS_FILE))
        .expect("open the log");
    f.write_all(bytes).expect("append");
}

#[test]
fn waits_for_the_first_event_skips_bad_lines_and_sends_commands() {
    let dir = tempfile::tempdir().expect("tempdir");
    let link = Link::spawn(dir.path()).expect("link");
    std::thread::sleep(Duration::from_millis(700));
    assert!(
        link.events.try_recv().is_err(),
        "nothing before the run's first event"
    );

    // The run makes its inbox as it starts.
    std::fs::create_dir(dir.path().join(inbox::COMMANDS_DIR)).expect("inbox");
    let mut w = EventWriter::open(dir.path()).expect("writer");
    w.append(&Event::Started(fixtures::info(true)), 1.0)
        .expect("append");
    assert!(matches!(next(&link), Event::Started(_)));

    // A garbage line, then a line cut short: a warning for the first, nothing for the second
    // until it is complete.
    append_raw(
        dir.path(),
        b"this is not json\n{\"seq\":3,\"time\":2.0,\"event\":\"Res",
    );
    match next(&link) {
        Event::Log { level, text } => {
            assert_eq!(level, Level::Warn);
            assert!(
                text.contains("events.jsonl") && text.contains("unreadable"),
                "{text}"
            );
        }
        other => panic!("expected a warning, got {other:?}"),
    }
    append_raw(dir.path(), b"umed\"}\n");
    assert_eq!(next(&link), Event::Resumed);

    for cmd in [
        Command::Pause,
        Command::Checkpoint,
        Command::Export,
        Command::Stop { save: false },
    ] {
        link.commands.send(cmd).expect("send");
    }
    std::thread::sleep(Duration::from_millis(1500));
    let taken: Vec<Verb> = inbox::take(dir.path())
        .into_iter()
        .filter_map(|t| match t {
            Taken::Command(e) => Some(e.command),
            _ => None,
        })
        .collect();
    assert_eq!(
        taken,
        vec![Verb::Pause, Verb::Checkpoint, Verb::Export, Verb::Stop]
    );
}

#[test]
fn a_damaged_log_replays_with_warnings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut w = EventWriter::open(dir.path()).expect("writer");
    for ev in fixtures::script(true) {
        w.append(&ev, 1.0).expect("append");
    }
    append_raw(
        dir.path(),
        b"{\"seq\":99,\"garbage\n{\"seq\":100,\"time\":1.0,\"ev",
    );
    let app = load::replay(dir.path(), KeyMap::default(), "FINISHED");
    assert_eq!(app.latest.arch.as_ref().map(|a| a.global_step), Some(400));
    let warnings: Vec<&str> = app
        .log
        .lines
        .iter()
        .filter(|l| l.level == Level::Warn)
        .map(|l| l.text.as_str())
        .collect();
    assert_eq!(
        warnings.len(),
        2,
        "the garbage line and the cut last line: {warnings:?}"
    );
    assert!(
        warnings[0].contains("skipped an unreadable line"),
        "{warnings:?}"
    );
    assert!(warnings[1].contains("cut short"), "{warnings:?}");
}

/// The runs table of a Slurm sweep whose `squeue` hangs: the rows are collected on their own
/// thread, so keys still answer at once, quit included.
#[test]
fn the_runs_table_answers_keys_while_the_scheduler_hangs() {
    use std::time::Instant;

    use crossterm::event::{Event as TermEvent, KeyCode, KeyEvent};
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use crate::sweep::sched::Scheduler;
    use crate::sweep::sched::tests::{script, slurm_sweep};

    let tmp = tempfile::tempdir().expect("tempdir");
    let sweep = slurm_sweep(tmp.path());
    let asked = tmp.path().join("asked");
    let hangs = script(
        tmp.path(),
        "squeue",
        &format!("touch {}; sleep 30", asked.display()),
    );
    let scheduler = Scheduler {
        squeue: hangs.clone(),
        sacct: hangs,
        timeout: Duration::from_secs(20),
    };
    let (keys, input) = crossbeam_channel::unbounded();
    let (done_tx, done) = crossbeam_channel::bounded(1);
    let sources = vec![sweep];
    std::thread::spawn(move || {
        let theme = crate::theme::builtin("default").expect("theme");
        let keymap = KeyMap::default();
        let ui = super::Ui {
            view: crate::tui::View {
                theme: &theme,
                glyphs: crate::ui::Glyphs { ascii: false },
                fps: 10,
            },
            keymap: &keymap,
            input,
            signals: crossbeam_channel::never(),
            started: Instant::now(),
        };
        let mut terminal = Terminal::new(TestBackend::new(110, 16)).expect("terminal");
        let code = super::table::run_with(&mut terminal, &ui, &sources, scheduler);
        let screen: String = terminal
            .backend()
            .buffer()
            .content()
            .iter()
            .map(|c| c.symbol())
            .collect();
        let _ = done_tx.send((code, screen));
    });
    let t = Instant::now();
    while !asked.exists() {
        assert!(t.elapsed() < Duration::from_secs(10), "squeue never asked");
        std::thread::sleep(Duration::from_millis(20));
    }
    let key = |c| TermEvent::Key(KeyEvent::from(KeyCode::Char(c)));
    keys.send(key('s')).expect("send s");
    std::thread::sleep(Duration::from_millis(300));
    let quit = Instant::now();
    keys.send(key('q')).expect("send q");
    let (code, screen) = done
        .recv_timeout(Duration::from_secs(1))
        .expect("the table leaves within a second of q while squeue hangs");
    assert!(quit.elapsed() < Duration::from_secs(1));
    assert_eq!(code, crate::exit::OK);
    assert!(
        screen.contains("sort name"),
        "the sort key answered: {screen}"
    );
}
