//! The key table: dispatch, key names, user files and their errors.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::*;

fn press(code: KeyCode, mods: KeyModifiers) -> KeyEvent {
    KeyEvent::new(code, mods)
}

#[test]
fn default_table_dispatches_and_ignores_release() {
    let m = KeyMap::default();
    let none = KeyModifiers::NONE;
    assert_eq!(
        m.action(Context::Main, &press(KeyCode::Char('p'), none)),
        Some(Action::Pause)
    );
    assert_eq!(
        m.action(Context::Main, &press(KeyCode::Char(' '), none)),
        Some(Action::Pause)
    );
    assert_eq!(
        m.action(
            Context::Main,
            &press(KeyCode::Char('c'), KeyModifiers::CONTROL)
        ),
        Some(Action::Interrupt)
    );
    assert_eq!(
        m.action(Context::Main, &press(KeyCode::Char('c'), none)),
        Some(Action::Checkpoint)
    );
    assert_eq!(
        m.action(Context::Dialog, &press(KeyCode::Char('c'), none)),
        Some(Action::Cancel)
    );
    // `?` typed with Shift still matches.
    assert_eq!(
        m.action(
            Context::Main,
            &press(KeyCode::Char('?'), KeyModifiers::SHIFT)
        ),
        Some(Action::Help)
    );
    let mut release = press(KeyCode::Char('p'), none);
    release.kind = KeyEventKind::Release;
    assert_eq!(m.action(Context::Main, &release), None);
    assert_eq!(
        m.action(Context::Main, &press(KeyCode::Char('z'), none)),
        None
    );
    assert_eq!(m.keys_of(Action::Pause), "p/Space");
    assert!(m.check_conflicts("default").is_ok());
}

#[test]
fn key_parsing() {
    assert_eq!(Key::parse("ctrl-c"), Some(Key::ctrl('c')));
    assert_eq!(Key::parse("C-L"), Some(Key::ctrl('l')));
    assert_eq!(Key::parse("F5"), Some(Key::plain(KeyCode::F(5))));
    assert_eq!(Key::parse("shift-tab"), Some(Key::plain(KeyCode::BackTab)));
    assert_eq!(Key::parse("-"), Some(Key::ch('-')));
    assert_eq!(Key::parse("P"), Some(Key::ch('P')));
    assert_eq!(Key::parse("ctrl-"), None);
    assert_eq!(Key::parse("F13"), None);
    assert_eq!(Key::parse("hyper-x"), None);
    assert_eq!(Key::ctrl('l').to_string(), "Ctrl-L");
}

#[test]
fn user_file_overrides_and_errors() {
    let m =
        KeyMap::from_toml_str("pause = \"F5\"\nexport = [\"x\", \"ctrl-e\"]\n", "k.toml").unwrap();
    let none = KeyModifiers::NONE;
    assert_eq!(
        m.action(Context::Main, &press(KeyCode::F(5), none)),
        Some(Action::Pause)
    );
    assert_eq!(
        m.action(Context::Main, &press(KeyCode::Char('p'), none)),
        None
    );
    assert_eq!(
        m.action(Context::Main, &press(KeyCode::Char('x'), none)),
        Some(Action::Export)
    );
    assert_eq!(
        m.action(
            Context::Main,
            &press(KeyCode::Char('e'), KeyModifiers::CONTROL)
        ),
        Some(Action::Export)
    );

    let e = KeyMap::from_toml_str("pasue = \"p\"", "k.toml")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("k.toml") && e.contains("pasue") && e.contains("pause"),
        "{e}"
    );
    let e = KeyMap::from_toml_str("pause = \"hyper-p\"", "k.toml")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("k.toml") && e.contains("pause") && e.contains("hyper-p"),
        "{e}"
    );
    let e = KeyMap::from_toml_str("pause = \"c\"", "k.toml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("pause") && e.contains("checkpoint"), "{e}");
    let e = KeyMap::from_toml_str("pause = 3", "k.toml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("pause") && e.contains('3'), "{e}");
    let e = KeyMap::from_toml_str("pause = ", "k.toml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("k.toml"), "{e}");
}

#[test]
fn missing_file_means_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let m = KeyMap::load_file(&dir.path().join("keys.toml")).unwrap();
    assert_eq!(m, KeyMap::default());
    let p = dir.path().join("bad.toml");
    std::fs::write(&p, "quit = \"nope-q\"").unwrap();
    let e = KeyMap::load_file(&p).unwrap_err().to_string();
    assert!(e.contains("bad.toml") && e.contains("nope-q"), "{e}");
}
