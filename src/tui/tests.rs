//! The UI loop driven through `TestBackend` with a scripted worker on another thread.

use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, unbounded};
use crossterm::event::{Event as TermEvent, KeyCode, KeyEvent};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use super::*;
use crate::app::fixtures;
use crate::theme::builtin;

struct Harness {
    input: Sender<TermEvent>,
    signals: Sender<i32>,
    channels: Channels,
    commands_tx: Sender<Command>,
    worker: std::thread::JoinHandle<Vec<Command>>,
}

/// A fake worker: sends the fixture script, then answers commands like the real one, and
/// returns every command it got.
fn harness(answer_stop: bool) -> Harness {
    let (input_tx, input_rx) = unbounded();
    let (sig_tx, sig_rx) = unbounded();
    let (_res_tx, res_rx) = unbounded::<ResourceSample>();
    let (cmd_tx, cmd_rx): (Sender<Command>, Receiver<Command>) = unbounded();
    let (ev_tx, ev_rx) = unbounded();
    let worker = std::thread::spawn(move || {
        for ev in fixtures::script(true) {
            let _ = ev_tx.send(ev);
        }
        let mut got = Vec::new();
        while let Ok(cmd) = cmd_rx.recv_timeout(Duration::from_secs(10)) {
            got.push(cmd.clone());
            let reply: Vec<Event> = match cmd {
                Command::Pause => vec![Event::Paused { global_step: 400 }],
                Command::Resume => vec![Event::Resumed],
                Command::Checkpoint => vec![
                    Event::Saving,
                    Event::CheckpointSaved {
                        path: "ck".into(),
                        global_step: 400,
                    },
                ],
                Command::Export => vec![Event::Exported {
                    paths: vec!["g.txt".into(), "g.json".into()],
                }],
                Command::Stop { save } if answer_stop => {
                    let mut v = Vec::new();
                    if save {
                        v.extend([
                            Event::Saving,
                            Event::CheckpointSaved {
                                path: "ck".into(),
                                global_step: 400,
                            },
                        ]);
                    }
                    v.push(Event::Finished {
                        summary: "stopped".into(),
                        stopped: true,
                        unsaved: false,
                    });
                    v
                }
                Command::Stop { .. } => break,
            };
            for ev in reply {
                let _ = ev_tx.send(ev);
            }
            if matches!(got.last(), Some(Command::Stop { .. })) {
                break;
            }
        }
        got
    });
    let channels = Channels {
        input: input_rx,
        events: ev_rx,
        signals: sig_rx,
        resources: res_rx,
        device: None,
    };
    Harness {
        input: input_tx,
        signals: sig_tx,
        channels,
        commands_tx: cmd_tx,
        worker,
    }
}

/// What one run of the UI loop left behind.
struct Driven {
    code: i32,
    term: Terminal<TestBackend>,
    app: App,
    wall: Duration,
}

/// Runs the UI loop on an 80×24 `TestBackend` until it returns.
fn drive(channels: &Channels, commands: &Sender<Command>, fps: u32) -> Driven {
    let theme = builtin("default").unwrap();
    let mut term = Terminal::new(TestBackend::new(80, 24)).unwrap();
    let mut app = App::new(KeyMap::default());
    let start = Instant::now();
    let view = View {
        theme: &theme,
        glyphs: Glyphs::UNICODE,
        fps,
    };
    let code = event_loop(&mut term, &mut app, channels, commands, view, &|| {
        start.elapsed()
    });
    Driven {
        code,
        term,
        app,
        wall: start.elapsed(),
    }
}

/// Channels for a loop fed by hand: the given input and worker-event receivers, no signals, no
/// resource samples (their senders are returned to keep them open).
fn hand_fed(
    input: Receiver<TermEvent>,
    events: Receiver<Event>,
) -> (Channels, Sender<i32>, Sender<ResourceSample>) {
    let (sig_tx, sig_rx) = unbounded();
    let (res_tx, res_rx) = unbounded();
    let ch = Channels {
        input,
        events,
        signals: sig_rx,
        resources: res_rx,
        device: None,
    };
    (ch, sig_tx, res_tx)
}

fn run_loop(h: &Harness, fps: u32) -> (i32, usize) {
    let mut d = drive(&h.channels, &h.commands_tx, fps);
    (d.code, d.term.get_frame().count())
}

fn key(c: char) -> TermEvent {
    TermEvent::Key(KeyEvent::from(KeyCode::Char(c)))
}

#[test]
fn sigterm_saves_stops_and_exits_130() {
    let h = harness(true);
    h.signals.send(libc::SIGTERM).unwrap();
    let (code, _) = run_loop(&h, 10);
    assert_eq!(code, 130);
    let got = h.worker.join().unwrap();
    assert_eq!(got, vec![Command::Stop { save: true }]);
}

#[test]
fn quit_dialog_save_and_quit_exits_0() {
    let h = harness(true);
    for ev in [
        key('p'),
        key('p'),
        key('q'),
        TermEvent::Key(KeyEvent::from(KeyCode::Enter)),
    ] {
        h.input.send(ev).unwrap();
    }
    let (code, frames) = run_loop(&h, 10);
    assert_eq!(code, 0);
    assert!(frames >= 1);
    let got = h.worker.join().unwrap();
    assert_eq!(
        got,
        vec![
            Command::Pause,
            Command::Resume,
            Command::Stop { save: true }
        ]
    );
}

#[test]
fn worker_gone_keeps_the_ui_until_q_and_exits_1() {
    let h = harness(false);
    h.input.send(key('q')).unwrap();
    h.input.send(key('d')).unwrap();
    // The fake worker leaves on Stop without Finished: the channel closes. That is an orderly
    // end after a requested stop, so exit 0.
    let (code, _) = run_loop(&h, 10);
    assert_eq!(code, 0);
    assert_eq!(
        h.worker.join().unwrap(),
        vec![Command::Stop { save: false }]
    );

    // A worker that fails: FAILED stays on screen until `q`, then exit 1.
    let (input_tx, input_rx) = unbounded();
    let (ev_tx, ev_rx) = unbounded();
    let (cmd_tx, _cmd_rx) = unbounded();
    ev_tx.send(Event::Started(fixtures::info(true))).unwrap();
    ev_tx
        .send(Event::Failed {
            message: "boom".into(),
        })
        .unwrap();
    drop(ev_tx);
    let quitter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        input_tx.send(key('q')).unwrap();
        input_tx
    });
    let (ch, _sig, _res) = hand_fed(input_rx, ev_rx);
    let Driven {
        code, term, wall, ..
    } = drive(&ch, &cmd_tx, 10);
    assert!(wall >= Duration::from_millis(250), "waited for the user");
    assert_eq!(code, 1);
    let _ = quitter.join();
    let screen = format!("{}", term.backend());
    assert!(
        screen.contains("FAILED") && screen.contains("boom"),
        "{screen}"
    );
}

#[test]
fn frame_rate_is_capped_under_an_event_burst() {
    // 2000 events in a burst, then quit after 600 ms: at 10 fps that is at most ~8 frames.
    let (input_tx, input_rx) = unbounded();
    let (ev_tx, ev_rx) = unbounded();
    let (cmd_tx, _cmd_rx) = unbounded();
    ev_tx.send(Event::Started(fixtures::info(true))).unwrap();
    let feeder = std::thread::spawn(move || {
        for i in 1..=1000u64 {
            let _ = ev_tx.send(Event::Step(fixtures::step(i)));
            let _ = ev_tx.send(Event::Arch(fixtures::snapshot(i, 0.0)));
            if i % 100 == 0 {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        std::thread::sleep(Duration::from_millis(100));
        let _ = input_tx.send(key('q'));
        let _ = input_tx.send(key('d'));
        let _ = ev_tx.send(Event::Finished {
            summary: "done".into(),
            stopped: true,
            unsaved: false,
        });
        (ev_tx, input_tx)
    });
    let (ch, _sig, _res) = hand_fed(input_rx, ev_rx);
    let Driven {
        code,
        mut term,
        app,
        wall,
    } = drive(&ch, &cmd_tx, 10);
    let frames = term.get_frame().count();
    let _ = feeder.join();
    assert_eq!(code, 0);
    let cap = (wall.as_secs_f64() * 10.0).ceil() as usize + 2;
    assert!(frames <= cap, "{frames} frames in {wall:?} (cap {cap})");
    assert!(frames >= 2, "{frames}");
    assert_eq!(
        app.latest.step.as_ref().map(|s| s.global_step),
        Some(1000),
        "no event lost"
    );
}

#[test]
fn locale_detection() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_string())
        }
    };
    assert!(locale_says_utf8(env(&[("LANG", "en_US.UTF-8")])));
    assert!(locale_says_utf8(env(&[
        ("LC_CTYPE", "C.utf8"),
        ("LANG", "C")
    ])));
    assert!(
        !locale_says_utf8(env(&[("LC_ALL", "C"), ("LANG", "en_US.UTF-8")])),
        "LC_ALL wins"
    );
    assert!(
        locale_says_utf8(env(&[("LC_ALL", ""), ("LANG", "de_DE.UTF-8")])),
        "empty means unset"
    );
    assert!(!locale_says_utf8(env(&[("LANG", "POSIX")])));
    assert!(!locale_says_utf8(env(&[])));
}

#[test]
fn ui_thread_cpu_is_measurable() {
    let t0 = thread_cpu_seconds().expect("/proc/thread-self/stat");
    let mut x = 0u64;
    let until = Instant::now() + Duration::from_millis(150);
    while Instant::now() < until {
        x = x.wrapping_add(std::hint::black_box(1));
    }
    let t1 = thread_cpu_seconds().unwrap();
    assert!(t1 >= t0 && x > 0);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.txt");
    record_ui_cpu(&log, Duration::from_secs(2));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.starts_with("ui thread cpu: ") && text.contains("s over 2.0 s wall"),
        "{text}"
    );
}

/// `Started` queued behind another event (as on `--resume`, where "resumed from" comes first)
/// still tells the resource sampler the run's device.
#[test]
fn the_sampler_learns_the_device_from_a_burst() {
    let (input_tx, input_rx) = unbounded();
    let (ev_tx, ev_rx) = unbounded();
    let (cmd_tx, _cmd_rx) = unbounded();
    let (dev_tx, dev_rx) = unbounded();
    let mut info = fixtures::info(true);
    info.device = "cuda:1".into();
    ev_tx
        .send(Event::Log {
            level: crate::protocol::Level::Info,
            text: "resumed from somewhere".into(),
        })
        .unwrap();
    ev_tx.send(Event::Started(info)).unwrap();
    ev_tx
        .send(Event::Finished {
            summary: "done".into(),
            stopped: false,
            unsaved: false,
        })
        .unwrap();
    // As in the burst test: `q` then `d` ends the loop whether `Finished` is seen first or not.
    input_tx.send(key('q')).unwrap();
    input_tx.send(key('d')).unwrap();
    let (mut ch, _sig, _res) = hand_fed(input_rx, ev_rx);
    ch.device = Some(dev_tx);
    let d = drive(&ch, &cmd_tx, 10);
    assert_eq!(d.code, 0);
    assert_eq!(dev_rx.try_recv().ok().as_deref(), Some("cuda:1"));
}
