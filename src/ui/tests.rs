//! Whole-screen snapshots at 80×24 and 160×48 from scripted events (TestBackend + insta), plus
//! checks on content and styles that snapshots cannot see (colour, modifiers).

use std::time::Duration;

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::{Color, Modifier};

use super::{Glyphs, render};
use crate::app::fixtures;
use crate::app::{App, GpuSample, KeyMap, Msg, ResourceSample};
use crate::protocol::Event;
use crate::space::{CellType, DARTS_OPS};
use crate::theme::{Theme, builtin};

fn app_with(proximal: bool) -> App {
    let mut app = App::new(KeyMap::default());
    for ev in fixtures::script(proximal) {
        app.update(Msg::Worker(ev));
    }
    app.update(Msg::Tick(Duration::from_secs(83)));
    app.update(Msg::Resources(ResourceSample {
        rss_bytes: Some(734_003_200),
        gpu: GpuSample::NotUsed,
    }));
    app
}

fn draw(app: &App, theme: &Theme, glyphs: Glyphs, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut term = Terminal::new(TestBackend::new(w, h)).expect("test backend");
    term.draw(|f| render(f, app, theme, glyphs)).expect("draw");
    term
}

fn text(buf: &Buffer) -> String {
    let a = buf.area;
    let mut out = String::new();
    for y in a.top()..a.bottom() {
        for x in a.left()..a.right() {
            out.push_str(buf[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

/// Position of the first occurrence of `needle` on screen.
fn find(buf: &Buffer, needle: &str) -> Option<(u16, u16)> {
    let t = text(buf);
    for (y, line) in t.lines().enumerate() {
        if let Some(byte) = line.find(needle) {
            let x = line[..byte].chars().count();
            return Some((u16::try_from(x).ok()?, u16::try_from(y).ok()?));
        }
    }
    None
}

#[test]
fn running_80x24() {
    let app = app_with(true);
    let term = draw(&app, &builtin("default").unwrap(), Glyphs::UNICODE, 80, 24);
    let t = text(term.backend().buffer());
    assert!(t.contains("RUNNING") && t.contains("step 400"), "{t}");
    assert!(t.contains("normal cell"), "{t}");
    assert!(t.contains("2←0") && t.contains("5←4"), "edge labels: {t}");
    insta::assert_snapshot!(term.backend());
}

#[test]
fn running_160x48() {
    let app = app_with(true);
    let term = draw(&app, &builtin("default").unwrap(), Glyphs::UNICODE, 160, 48);
    let t = text(term.backend().buffer());
    assert!(
        t.contains("normal cell") && t.contains("reduce cell"),
        "both cells: {t}"
    );
    assert!(
        t.contains("node 2: "),
        "full genotype names at this width: {t}"
    );
    assert!(t.contains("loss") && t.contains("accuracy"), "{t}");
    assert!(t.contains("epoch 1 done"), "log pane: {t}");
    insta::assert_snapshot!(term.backend());
}

#[test]
fn heat_map_marks_the_selected_op_of_every_kept_edge() {
    let app = app_with(true);
    let term = draw(&app, &builtin("default").unwrap(), Glyphs::UNICODE, 160, 48);
    let buf = term.backend().buffer();
    let snap = app.latest.arch.as_ref().unwrap();
    let (_, header_y) = find(buf, " none ").expect("header row");
    let (label_x, _) = find(buf, "│2←0")
        .map(|(x, y)| (x + 1, y))
        .expect("edge label");
    for e in 0..14 {
        let y = header_y + 1 + e as u16;
        let row: String = (label_x..label_x + 52)
            .map(|x| buf[(x, y)].symbol().to_string())
            .collect();
        let sel = snap.normal_selected[e];
        let marks: Vec<usize> = (0..8)
            .filter(|k| row.chars().nth(4 + 6 * k + 5) == Some('●'))
            .collect();
        match sel {
            Some(k) => {
                assert_eq!(k, fixtures::strongest_normal_op(e));
                assert_eq!(marks, vec![k], "edge {e}: {row}");
                // The marked value is bold and in the theme's `selected` colour.
                let cell = &buf[(label_x + 4 + 6 * k as u16 + 2, y)];
                assert_eq!(cell.fg, builtin("default").unwrap().selected, "edge {e}");
                assert!(cell.modifier.contains(Modifier::BOLD));
            }
            None => {
                assert!(marks.is_empty(), "dropped edge {e} has no ●: {row}");
                assert!(
                    row.contains('○'),
                    "dropped edge {e} shows its best op as ○: {row}"
                );
                assert!(
                    buf[(label_x, y)].modifier.contains(Modifier::DIM),
                    "dropped edge {e} is dimmed"
                );
            }
        }
        // The number under the marker reads like .623 (three decimals: A moves slowly).
        let v = snap.normal.get(e, fixtures::strongest_normal_op(e));
        let shown = format!("{v:.3}");
        assert!(row.contains(&shown[1..]), "edge {e}: {row}");
    }
}

#[test]
fn darts_mode_shows_softmax_and_argmax() {
    let app = app_with(false);
    let term = draw(&app, &builtin("default").unwrap(), Glyphs::UNICODE, 80, 24);
    let t = text(term.backend().buffer());
    assert!(t.contains("softmax(A)") && t.contains("argmax"), "{t}");
    // Softmax of the fixture's rows: values well under 0.5.
    let w = app.weights(CellType::Normal).unwrap();
    let shown = format!("{:.3}", w.values.get(0, 1));
    assert!(t.contains(&shown[1..]), "{t}");
    insta::assert_snapshot!(term.backend());
}

#[test]
fn paused_and_focus_80x24() {
    let mut app = app_with(true);
    app.update(Msg::Worker(Event::Paused { global_step: 400 }));
    for c in ['j', 'j', 'l', 'l', 'l'] {
        app.update(Msg::Key(crossterm::event::KeyEvent::from(
            crossterm::event::KeyCode::Char(c),
        )));
    }
    let term = draw(&app, &builtin("default").unwrap(), Glyphs::UNICODE, 80, 24);
    let buf = term.backend().buffer();
    let t = text(buf);
    assert!(t.contains("PAUSED") && t.contains("step 400"), "{t}");
    assert!(
        t.contains("3←0 skip_connect"),
        "history line names the focused edge and op: {t}"
    );
    // The focused weight (edge 2, op 3) is reverse video.
    let (label_x, y) = find(buf, "│3←0")
        .map(|(x, y)| (x + 1, y))
        .expect("edge 2 label");
    assert!(
        buf[(label_x + 4 + 6 * 3 + 2, y)]
            .modifier
            .contains(Modifier::REVERSED)
    );
    insta::assert_snapshot!(term.backend());
}

#[test]
fn failed_80x24() {
    let mut app = app_with(true);
    app.update(Msg::Worker(Event::Failed {
        message: "CUDA out of memory (tried to allocate 2.00 GiB)".into(),
    }));
    let term = draw(&app, &builtin("default").unwrap(), Glyphs::UNICODE, 80, 24);
    let t = text(term.backend().buffer());
    assert!(t.contains("FAILED"), "{t}");
    assert!(
        t.contains("error: FAILED: CUDA out of memory"),
        "log pane shows the message: {t}"
    );
    insta::assert_snapshot!(term.backend());
}

#[test]
fn failed_160x48() {
    let mut app = app_with(true);
    app.update(Msg::Worker(Event::Failed {
        message: "worker panicked: index out of bounds".into(),
    }));
    let term = draw(&app, &builtin("default").unwrap(), Glyphs::UNICODE, 160, 48);
    insta::assert_snapshot!(term.backend());
}

#[test]
fn warming_up_before_any_event() {
    let mut app = App::new(KeyMap::default());
    app.update(Msg::Tick(Duration::from_millis(1250)));
    let term = draw(&app, &builtin("default").unwrap(), Glyphs::UNICODE, 80, 24);
    let t = text(term.backend().buffer());
    assert!(
        t.contains("WARMING UP") && t.contains("loading data"),
        "{t}"
    );
    assert!(t.contains("step 0"), "{t}");
    insta::assert_snapshot!(term.backend());
}

#[test]
fn quit_dialog_and_help_80x24() {
    let mut app = app_with(true);
    app.update(Msg::Key(crossterm::event::KeyEvent::from(
        crossterm::event::KeyCode::Char('q'),
    )));
    let term = draw(&app, &builtin("default").unwrap(), Glyphs::UNICODE, 80, 24);
    let t = text(term.backend().buffer());
    assert!(
        t.contains("[ save & quit ]") && t.contains("[ quit ]") && t.contains("[ cancel ]"),
        "{t}"
    );
    insta::assert_snapshot!("quit_dialog_80x24", term.backend());

    let mut app = app_with(true);
    app.update(Msg::Key(crossterm::event::KeyEvent::from(
        crossterm::event::KeyCode::Char('?'),
    )));
    let term = draw(&app, &builtin("default").unwrap(), Glyphs::UNICODE, 80, 24);
    let t = text(term.backend().buffer());
    for needle in [
        "p/Space",
        "pause / resume",
        "Ctrl-L",
        "Tab",
        "export the genotype",
    ] {
        assert!(t.contains(needle), "help shows {needle}: {t}");
    }
    insta::assert_snapshot!("help_80x24", term.backend());
}

#[test]
fn ascii_mode_draws_only_ascii() {
    let mut app = app_with(true);
    app.update(Msg::Key(crossterm::event::KeyEvent::from(
        crossterm::event::KeyCode::Char('q'),
    )));
    for (w, h) in [(80, 24), (160, 48)] {
        let term = draw(&app, &builtin("mono").unwrap(), Glyphs::ASCII, w, h);
        let t = text(term.backend().buffer());
        assert!(t.is_ascii(), "non-ASCII at {w}x{h}: {t}");
        assert!(t.contains("2<-0") && t.contains('*'), "{t}");
    }
    let term = draw(&app, &builtin("mono").unwrap(), Glyphs::ASCII, 80, 24);
    insta::assert_snapshot!(term.backend());
}

#[test]
fn mono_theme_has_no_colour_but_keeps_marks() {
    let app = app_with(true);
    let term = draw(&app, &builtin("mono").unwrap(), Glyphs::UNICODE, 80, 24);
    let buf = term.backend().buffer();
    let a = buf.area;
    for y in a.top()..a.bottom() {
        for x in a.left()..a.right() {
            assert_eq!(buf[(x, y)].fg, Color::Reset, "colour at {x},{y}");
        }
    }
    let (x, y) = find(buf, "RUNNING").unwrap();
    assert!(
        buf[(x, y)].modifier.contains(Modifier::REVERSED),
        "state stands out without colour"
    );
    assert!(text(buf).contains('●'));
}

#[test]
fn nothing_overlaps_and_small_sizes_do_not_panic() {
    let app = app_with(true);
    for (w, h) in [
        (80, 24),
        (100, 30),
        (120, 40),
        (160, 48),
        (200, 60),
        (60, 16),
        (59, 15),
        (20, 5),
        (1, 1),
    ] {
        let term = draw(&app, &builtin("default").unwrap(), Glyphs::UNICODE, w, h);
        let t = text(term.backend().buffer());
        if w >= 60 && h >= 16 {
            assert!(t.contains("step 400"), "{w}x{h}: {t}");
        } else if w >= 20 {
            assert!(t.contains("too small"), "{w}x{h}: {t}");
        }
    }
    // At 80x24 the heat map shows all 14 edges and the log keeps at least one line.
    let term = draw(&app, &builtin("default").unwrap(), Glyphs::UNICODE, 80, 24);
    let t = text(term.backend().buffer());
    assert!(t.contains("5←4") && t.contains(" log "), "{t}");
    assert!(DARTS_OPS.len() == 8);
}

#[test]
fn running_120x40_puts_the_log_under_the_heat_map() {
    let app = app_with(true);
    let term = draw(&app, &builtin("default").unwrap(), Glyphs::UNICODE, 120, 40);
    let buf = term.backend().buffer();
    let (x, y) = find(buf, "┌ log ").expect("log pane");
    assert_eq!(x, 0);
    assert!(y > 18, "below the heat map: {y}");
    assert!(
        text(buf).contains("┌ loss") && text(buf).contains("┌ accuracy"),
        "both charts"
    );
    insta::assert_snapshot!(term.backend());
}

#[test]
fn log_never_shows_the_tail_of_a_line_without_its_start() {
    let mut app = app_with(true);
    let long = format!(
        "exported: {}",
        "runs/x/genotypes/export-step000000400.json, ".repeat(3)
    );
    app.note(crate::protocol::Level::Info, long.clone());
    app.note(crate::protocol::Level::Info, "short line");
    let term = draw(&app, &builtin("default").unwrap(), Glyphs::UNICODE, 80, 24);
    let t = text(term.backend().buffer());
    assert!(t.contains("short line"), "{t}");
    assert!(
        !t.contains("export-step000000400.json, runs"),
        "no partial wrapped line: {t}"
    );
    let term = draw(&app, &builtin("default").unwrap(), Glyphs::UNICODE, 160, 48);
    let t = text(term.backend().buffer());
    assert!(
        t.contains("exported: runs/x/genotypes/"),
        "a roomy log shows it whole: {t}"
    );
}

/// A training run (`nasp-tui train`): the cell panes show the trained genotype, the charts the
/// test set, the status line the learning rate and the drop-path probability.
#[test]
fn a_training_run_shows_its_genotype_test_figures_and_drop_path() {
    use crate::genotype::Genotype;
    use crate::protocol::{ArchSnapshot, EpochStats};
    use crate::space::{OpLists, Space};
    let g = Genotype::parse("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])").unwrap();
    let lists = OpLists::new(Space::Darts, &[], &[]);
    let mut info = fixtures::info(true);
    info.algorithm = "train".into();
    info.trained = Some(Box::new(g.clone()));
    let mut app = App::new(KeyMap::default());
    app.update(Msg::Worker(Event::Started(info)));
    app.update(Msg::Worker(Event::Arch(ArchSnapshot::of_genotype(
        &g,
        &lists,
        crate::nb201::Dataset::Cifar10,
        0,
        0,
    ))));
    for i in 1..=60u64 {
        let mut s = fixtures::step(i * 10);
        s.arch_loss = f64::NAN;
        s.drop_path = Some(0.05);
        s.lr = 0.0243;
        app.update(Msg::Worker(Event::Step(s)));
    }
    app.update(Msg::Worker(Event::Epoch(EpochStats {
        epoch: 0,
        train_loss: 1.6,
        train_acc: 0.42,
        valid_loss: 1.5,
        valid_acc: 0.47,
        seconds: 48.0,
        valid_seconds: 3.0,
        test: true,
    })));
    let term = draw(&app, &builtin("default").unwrap(), Glyphs::UNICODE, 160, 48);
    let t = text(term.backend().buffer());
    assert!(t.contains("trained genotype"), "{t}");
    assert!(t.contains("test/epoch"), "{t}");
    assert!(
        !t.contains("arch"),
        "no architecture loss in a training run: {t}"
    );
    assert!(t.contains("lr 0.02430 drop path 0.050"), "{t}");
    assert!(t.contains("test acc 0.470"), "{t}");
    assert!(!t.contains("held"), "{t}");
    app.update(Msg::Key(crossterm::event::KeyEvent::from(
        crossterm::event::KeyCode::Char('q'),
    )));
    let term = draw(&app, &builtin("default").unwrap(), Glyphs::UNICODE, 160, 48);
    let t = text(term.backend().buffer());
    assert!(t.contains("Stop the training?"), "{t}");
    // The selected ops of the genotype are the ones marked.
    assert_eq!(
        app.latest.arch.as_ref().unwrap().normal_selected[0],
        Some(4)
    );
    assert!(app.charts.arch_loss.points().is_empty());
}
