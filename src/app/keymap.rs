//! Every key binding, in one table: it dispatches keys, renders the `?` help overlay and the
//! footer hints, and is what a user's `keys.toml` overrides. No module outside this one matches
//! on `KeyCode`.
//!
//! Here: the actions, contexts and help sections, and the lookups the UI makes. Beside it: the
//! default table (`table`), one key's parsing, matching and name (`key`), and the user's file
//! (`file`).
//!
//! A user file lives at `<config dir>/nasp-tui/keys.toml` (`NASP_TUI_CONFIG_DIR` overrides the
//! folder) and holds `action = "key"` or `action = ["key", "key"]` lines, e.g. `pause = "F5"`.
//! An unknown action, a key that does not parse or a key bound twice in one context is a start-up
//! error naming the file and the key.

mod file;
mod key;
mod table;

use crossterm::event::{KeyEvent, KeyEventKind};

pub use file::{KeymapError, user_keys_path};
pub use key::Key;

/// What a key asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Pause,
    Checkpoint,
    Export,
    Quit,
    Detach,
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
    /// Quit dialog of a watcher: leave it, the search goes on.
    Leave,
    ReplayBack,
    ReplayForward,
    ReplayPageBack,
    ReplayPageForward,
    ReplayStart,
    ReplayEnd,
    /// Charts: the next smoothing weight.
    Smoothing,
    RunsUp,
    RunsDown,
    RunsOpen,
    RunsSort,
    RunsReverse,
    RunsQuit,
}

/// Where a binding applies: the main screen, or the quit dialog (the help overlay takes the main
/// bindings and closes on `Help`/`Close`); in a replay, the replay keys first, then the main
/// ones; the runs table of `watch` has its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    Main,
    Dialog,
    Replay,
    Runs,
}

/// Help-overlay sections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Training,
    Navigation,
    General,
    QuitDialog,
    Replay,
    Runs,
}

impl Section {
    pub fn title(self) -> &'static str {
        match self {
            Section::Training => "Training",
            Section::Navigation => "Architecture pane",
            Section::General => "General",
            Section::QuitDialog => "Quit dialog",
            Section::Replay => "Replay (an ended run)",
            Section::Runs => "Runs table",
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

/// The key table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMap {
    bindings: Vec<Binding>,
}

impl Default for KeyMap {
    fn default() -> Self {
        KeyMap {
            bindings: table::default_bindings(),
        }
    }
}

impl KeyMap {
    /// The action bound to a key event in `context`, if any. Key releases are ignored (some
    /// terminals report them, and acting on both would double every key).
    pub fn action(&self, context: Context, ev: &KeyEvent) -> Option<Action> {
        if ev.kind == KeyEventKind::Release {
            return None;
        }
        let find = |c: Context| {
            self.bindings
                .iter()
                .filter(|b| b.context == c)
                .find(|b| b.keys.iter().any(|k| k.matches(ev)))
                .map(|b| b.action)
        };
        match context {
            Context::Replay => find(Context::Replay).or_else(|| find(Context::Main)),
            c => find(c),
        }
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
}

#[cfg(test)]
mod tests;
