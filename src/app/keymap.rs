//! Every key binding, in one table: it dispatches keys, renders the `?` help overlay and the
//! footer hints, and is what a user's `keys.toml` overrides. No other module matches on
//! `KeyCode`.
//!
//! A user file lives at `<config dir>/nasp-tui/keys.toml` (`NASP_TUI_CONFIG_DIR` overrides the
//! folder) and holds `action = "key"` or `action = ["key", "key"]` lines, e.g. `pause = "F5"`.
//! An unknown action, a key that does not parse or a key bound twice in one context is a start-up
//! error naming the file and the key.

use std::fmt;
use std::path::{Path, PathBuf};

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// What a key asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Pause,
    Checkpoint,
    Export,
    Quit,
    Interrupt,
    Redraw,
    Help,
    NextCell,
    PrevCell,
    NormalCell,
    ReduceCell,
    EdgeUp,
    EdgeDown,
    OpLeft,
    OpRight,
    LogUp,
    LogDown,
    Close,
    SaveQuit,
    QuitNoSave,
    Cancel,
    DialogNext,
    DialogPrev,
    Confirm,
}

/// Where a binding applies: the main screen, or the quit dialog (the help overlay takes the main
/// bindings and closes on `Help`/`Close`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    Main,
    Dialog,
}

/// Help-overlay sections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Training,
    Navigation,
    General,
    QuitDialog,
}

impl Section {
    pub fn title(self) -> &'static str {
        match self {
            Section::Training => "Training",
            Section::Navigation => "Architecture pane",
            Section::General => "General",
            Section::QuitDialog => "Quit dialog",
        }
    }
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub action: Action,
    /// The name used in `keys.toml`.
    pub name: &'static str,
    pub context: Context,
    pub section: Section,
    pub help: &'static str,
    /// Shown in the footer (short label) when set.
    pub hint: Option<&'static str>,
    pub keys: Vec<Key>,
}

/// A key with the modifiers that matter (Ctrl and Alt; Shift is part of the character).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key {
    pub code: KeyCode,
    pub ctrl: bool,
    pub alt: bool,
}

impl Key {
    const fn plain(code: KeyCode) -> Key {
        Key {
            code,
            ctrl: false,
            alt: false,
        }
    }
    const fn ch(c: char) -> Key {
        Key::plain(KeyCode::Char(c))
    }
    const fn ctrl(c: char) -> Key {
        Key {
            code: KeyCode::Char(c),
            ctrl: true,
            alt: false,
        }
    }

    /// Parses `p`, `space`, `ctrl-c`, `alt-x`, `tab`, `shift-tab`, `enter`, `esc`, `up`, `f5`, ...
    pub fn parse(text: &str) -> Option<Key> {
        let mut ctrl = false;
        let mut alt = false;
        let mut rest = text.trim();
        if rest.chars().count() > 1 {
            loop {
                let lower = rest.to_ascii_lowercase();
                if let Some(r) = strip_any(&lower, &["ctrl-", "ctrl+", "c-"]) {
                    ctrl = true;
                    rest = &rest[rest.len() - r.len()..];
                } else if let Some(r) = strip_any(&lower, &["alt-", "alt+", "m-"]) {
                    alt = true;
                    rest = &rest[rest.len() - r.len()..];
                } else {
                    break;
                }
            }
        }
        let code = if rest.chars().count() == 1 {
            let c = rest.chars().next()?;
            KeyCode::Char(if ctrl { c.to_ascii_lowercase() } else { c })
        } else {
            match rest.to_ascii_lowercase().as_str() {
                "space" => KeyCode::Char(' '),
                "tab" => KeyCode::Tab,
                "shift-tab" | "shift+tab" | "backtab" => KeyCode::BackTab,
                "enter" | "return" => KeyCode::Enter,
                "esc" | "escape" => KeyCode::Esc,
                "up" => KeyCode::Up,
                "down" => KeyCode::Down,
                "left" => KeyCode::Left,
                "right" => KeyCode::Right,
                "pgup" | "pageup" => KeyCode::PageUp,
                "pgdn" | "pagedown" => KeyCode::PageDown,
                "home" => KeyCode::Home,
                "end" => KeyCode::End,
                "backspace" => KeyCode::Backspace,
                "delete" | "del" => KeyCode::Delete,
                "insert" | "ins" => KeyCode::Insert,
                f if f.starts_with('f') => {
                    let n: u8 = f[1..].parse().ok()?;
                    if (1..=12).contains(&n) {
                        KeyCode::F(n)
                    } else {
                        return None;
                    }
                }
                _ => return None,
            }
        };
        Some(Key { code, ctrl, alt })
    }

    /// Whether a terminal key event is this key. Characters match on the character produced
    /// (layout-aware, Shift ignored); Ctrl and Alt must agree.
    fn matches(&self, ev: &KeyEvent) -> bool {
        let ctrl = ev.modifiers.contains(KeyModifiers::CONTROL);
        let alt = ev.modifiers.contains(KeyModifiers::ALT);
        if ctrl != self.ctrl || alt != self.alt {
            return false;
        }
        match (self.code, ev.code) {
            (KeyCode::Char(a), KeyCode::Char(b)) if self.ctrl => a.eq_ignore_ascii_case(&b),
            (a, b) => a == b,
        }
    }
}

fn strip_any<'a>(s: &'a str, prefixes: &[&str]) -> Option<&'a str> {
    prefixes
        .iter()
        .find_map(|p| s.strip_prefix(p))
        .filter(|r| !r.is_empty())
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ctrl {
            f.write_str("Ctrl-")?;
        }
        if self.alt {
            f.write_str("Alt-")?;
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("Space"),
            KeyCode::Char(c) if self.ctrl => write!(f, "{}", c.to_ascii_uppercase()),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::Tab => f.write_str("Tab"),
            KeyCode::BackTab => f.write_str("Shift-Tab"),
            KeyCode::Enter => f.write_str("Enter"),
            KeyCode::Esc => f.write_str("Esc"),
            KeyCode::Up => f.write_str("Up"),
            KeyCode::Down => f.write_str("Down"),
            KeyCode::Left => f.write_str("Left"),
            KeyCode::Right => f.write_str("Right"),
            KeyCode::PageUp => f.write_str("PgUp"),
            KeyCode::PageDown => f.write_str("PgDn"),
            KeyCode::Home => f.write_str("Home"),
            KeyCode::End => f.write_str("End"),
            KeyCode::Backspace => f.write_str("Backspace"),
            KeyCode::Delete => f.write_str("Del"),
            KeyCode::Insert => f.write_str("Ins"),
            KeyCode::F(n) => write!(f, "F{n}"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// A keymap-loading error.
#[derive(Debug, thiserror::Error)]
pub enum KeymapError {
    #[error("cannot read key file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("key file {origin}: {message}")]
    Parse { origin: String, message: String },
    #[error("key file {origin}: unknown action `{action}` (known actions: {known})")]
    UnknownAction {
        origin: String,
        action: String,
        known: String,
    },
    #[error(
        "key file {origin}: action `{action}`: {key:?} is not a key (examples: \"p\", \"space\", \"ctrl-c\", \"F5\", \"shift-tab\")"
    )]
    BadKey {
        origin: String,
        action: String,
        key: String,
    },
    #[error("key file {origin}: key {key} is bound to both `{first}` and `{second}`")]
    Conflict {
        origin: String,
        key: String,
        first: String,
        second: String,
    },
}

/// The key table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMap {
    bindings: Vec<Binding>,
}

impl Default for KeyMap {
    fn default() -> Self {
        KeyMap {
            bindings: default_bindings(),
        }
    }
}

#[allow(clippy::too_many_lines)]
fn default_bindings() -> Vec<Binding> {
    use Action as A;
    use Context::{Dialog, Main};
    use KeyCode as K;
    use Section as S;
    let b = |action, name, context, section, help, hint, keys: &[Key]| Binding {
        action,
        name,
        context,
        section,
        help,
        hint,
        keys: keys.to_vec(),
    };
    vec![
        b(
            A::Pause,
            "pause",
            Main,
            S::Training,
            "pause / resume the search",
            Some("pause"),
            &[Key::ch('p'), Key::ch(' ')],
        ),
        b(
            A::Checkpoint,
            "checkpoint",
            Main,
            S::Training,
            "save a checkpoint now",
            Some("ckpt"),
            &[Key::ch('c')],
        ),
        b(
            A::Export,
            "export",
            Main,
            S::Training,
            "export the genotype (text + JSON)",
            Some("export"),
            &[Key::ch('e')],
        ),
        b(
            A::Quit,
            "quit",
            Main,
            S::Training,
            "quit (asks: save & quit / quit / cancel)",
            Some("quit"),
            &[Key::ch('q')],
        ),
        b(
            A::Interrupt,
            "interrupt",
            Main,
            S::Training,
            "same as quit; again while stopping: force",
            None,
            &[Key::ctrl('c')],
        ),
        b(
            A::NextCell,
            "next_cell",
            Main,
            S::Navigation,
            "switch normal / reduce cell",
            Some("cell"),
            &[Key::plain(K::Tab)],
        ),
        b(
            A::PrevCell,
            "prev_cell",
            Main,
            S::Navigation,
            "switch cell (backwards)",
            None,
            &[Key::plain(K::BackTab)],
        ),
        b(
            A::NormalCell,
            "normal_cell",
            Main,
            S::Navigation,
            "show the normal cell",
            None,
            &[Key::ch('n')],
        ),
        b(
            A::ReduceCell,
            "reduce_cell",
            Main,
            S::Navigation,
            "show the reduction cell",
            None,
            &[Key::ch('r')],
        ),
        b(
            A::EdgeUp,
            "edge_up",
            Main,
            S::Navigation,
            "previous edge",
            None,
            &[Key::ch('k'), Key::plain(K::Up)],
        ),
        b(
            A::EdgeDown,
            "edge_down",
            Main,
            S::Navigation,
            "next edge",
            Some("edge"),
            &[Key::ch('j'), Key::plain(K::Down)],
        ),
        b(
            A::OpLeft,
            "op_left",
            Main,
            S::Navigation,
            "previous op",
            None,
            &[Key::ch('h'), Key::plain(K::Left)],
        ),
        b(
            A::OpRight,
            "op_right",
            Main,
            S::Navigation,
            "next op",
            None,
            &[Key::ch('l'), Key::plain(K::Right)],
        ),
        b(
            A::LogUp,
            "log_up",
            Main,
            S::General,
            "scroll the log back",
            None,
            &[Key::plain(K::PageUp)],
        ),
        b(
            A::LogDown,
            "log_down",
            Main,
            S::General,
            "scroll the log forward",
            None,
            &[Key::plain(K::PageDown)],
        ),
        b(
            A::Redraw,
            "redraw",
            Main,
            S::General,
            "redraw the whole screen",
            None,
            &[Key::ctrl('l')],
        ),
        b(
            A::Help,
            "help",
            Main,
            S::General,
            "show / hide this help",
            Some("help"),
            &[Key::ch('?'), Key::plain(K::F(1))],
        ),
        b(
            A::Close,
            "close",
            Main,
            S::General,
            "close the help",
            None,
            &[Key::plain(K::Esc)],
        ),
        b(
            A::SaveQuit,
            "dialog_save_quit",
            Dialog,
            S::QuitDialog,
            "save a checkpoint, then quit",
            None,
            &[Key::ch('s')],
        ),
        b(
            A::QuitNoSave,
            "dialog_quit",
            Dialog,
            S::QuitDialog,
            "quit without saving",
            None,
            &[Key::ch('d'), Key::ctrl('c')],
        ),
        b(
            A::Cancel,
            "dialog_cancel",
            Dialog,
            S::QuitDialog,
            "keep running",
            None,
            &[Key::plain(K::Esc), Key::ch('c')],
        ),
        b(
            A::DialogNext,
            "dialog_next",
            Dialog,
            S::QuitDialog,
            "next choice",
            None,
            &[Key::plain(K::Right), Key::plain(K::Tab), Key::ch('l')],
        ),
        b(
            A::DialogPrev,
            "dialog_prev",
            Dialog,
            S::QuitDialog,
            "previous choice",
            None,
            &[Key::plain(K::Left), Key::plain(K::BackTab), Key::ch('h')],
        ),
        b(
            A::Confirm,
            "dialog_confirm",
            Dialog,
            S::QuitDialog,
            "take the highlighted choice",
            None,
            &[Key::plain(K::Enter)],
        ),
    ]
}

impl KeyMap {
    /// The action bound to a key event in `context`, if any. Key releases are ignored (some
    /// terminals report them, and acting on both would double every key).
    pub fn action(&self, context: Context, ev: &KeyEvent) -> Option<Action> {
        if ev.kind == KeyEventKind::Release {
            return None;
        }
        self.bindings
            .iter()
            .filter(|b| b.context == context)
            .find(|b| b.keys.iter().any(|k| k.matches(ev)))
            .map(|b| b.action)
    }

    /// All bindings, in table order (help overlay).
    pub fn bindings(&self) -> &[Binding] {
        &self.bindings
    }

    /// The keys of an action, as text (`p/Space`); empty when unbound.
    pub fn keys_of(&self, action: Action) -> String {
        self.bindings
            .iter()
            .find(|b| b.action == action)
            .map(|b| {
                b.keys
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("/")
            })
            .unwrap_or_default()
    }

    /// The first key of an action (footer, dialog buttons).
    pub fn first_key(&self, action: Action) -> Option<Key> {
        self.bindings
            .iter()
            .find(|b| b.action == action)
            .and_then(|b| b.keys.first().copied())
    }

    /// Parses a `keys.toml` text over the defaults; `origin` names the file in errors.
    pub fn from_toml_str(text: &str, origin: &str) -> Result<KeyMap, KeymapError> {
        let table: toml::Table =
            toml::from_str(text).map_err(|e: toml::de::Error| KeymapError::Parse {
                origin: origin.to_string(),
                message: e.message().to_string(),
            })?;
        let mut map = KeyMap::default();
        for (action, value) in table {
            let known = || {
                map.bindings
                    .iter()
                    .map(|b| b.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let Some(idx) = map.bindings.iter().position(|b| b.name == action) else {
                return Err(KeymapError::UnknownAction {
                    origin: origin.to_string(),
                    action,
                    known: known(),
                });
            };
            let texts: Vec<String> = match value {
                toml::Value::String(s) => vec![s],
                toml::Value::Array(a) => a
                    .into_iter()
                    .map(|v| match v {
                        toml::Value::String(s) => Ok(s),
                        other => Err(KeymapError::BadKey {
                            origin: origin.to_string(),
                            action: action.clone(),
                            key: other.to_string(),
                        }),
                    })
                    .collect::<Result<_, _>>()?,
                other => {
                    return Err(KeymapError::BadKey {
                        origin: origin.to_string(),
                        action,
                        key: other.to_string(),
                    });
                }
            };
            let mut keys = Vec::with_capacity(texts.len());
            for t in texts {
                let key = Key::parse(&t).ok_or_else(|| KeymapError::BadKey {
                    origin: origin.to_string(),
                    action: action.clone(),
                    key: t.clone(),
                })?;
                keys.push(key);
            }
            map.bindings[idx].keys = keys;
        }
        map.check_conflicts(origin)?;
        Ok(map)
    }

    fn check_conflicts(&self, origin: &str) -> Result<(), KeymapError> {
        for (i, a) in self.bindings.iter().enumerate() {
            for b in &self.bindings[i + 1..] {
                if a.context != b.context {
                    continue;
                }
                if let Some(k) = a.keys.iter().find(|k| b.keys.contains(k)) {
                    return Err(KeymapError::Conflict {
                        origin: origin.to_string(),
                        key: k.to_string(),
                        first: a.name.to_string(),
                        second: b.name.to_string(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Loads `path` over the defaults; a missing file means the defaults.
    pub fn load_file(path: &Path) -> Result<KeyMap, KeymapError> {
        match std::fs::read_to_string(path) {
            Ok(text) => KeyMap::from_toml_str(&text, &path.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(KeyMap::default()),
            Err(source) => Err(KeymapError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Loads the user's `keys.toml` (see the module docs), or the defaults when there is none.
    pub fn load_user() -> Result<KeyMap, KeymapError> {
        match user_keys_path() {
            Some(p) => KeyMap::load_file(&p),
            None => Ok(KeyMap::default()),
        }
    }
}

/// `<config dir>/nasp-tui/keys.toml`, or `$NASP_TUI_CONFIG_DIR/keys.toml`.
pub fn user_keys_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("NASP_TUI_CONFIG_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("keys.toml"));
    }
    directories::ProjectDirs::from("", "", "nasp-tui").map(|d| d.config_dir().join("keys.toml"))
}

#[cfg(test)]
mod tests {
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
        let m = KeyMap::from_toml_str("pause = \"F5\"\nexport = [\"x\", \"ctrl-e\"]\n", "k.toml")
            .unwrap();
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
}
