//! Terminal life cycle: raw mode + alternate screen on entry; restore on every way out (Drop, an
//! error, a UI-thread panic). Restoring is idempotent.
//!
//! The panic hook is thread-aware: the hook runs before `catch_unwind` gets the panic, so a
//! worker panic must not tear the screen down (the worker reports `Failed` and the UI shows it;
//! the panic message goes to stderr, which is the run's log file while the TUI is up). Only a
//! panic on the UI thread restores the terminal and stderr, then prints through the previous hook.

use std::io::{self, Stdout, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, Once};
use std::thread::ThreadId;

use crossterm::cursor::Show;
use crossterm::execute;
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

use super::stderr;

static ACTIVE: AtomicBool = AtomicBool::new(false);
static UI_THREAD: Mutex<Option<ThreadId>> = Mutex::new(None);
static HOOK: Once = Once::new();

/// The terminal type the UI draws on.
pub type Tui = Terminal<FullscreenBackend>;

/// The crossterm backend, except that it never asks the terminal where the cursor is.
///
/// ratatui's `Terminal::clear` reads the cursor position (a query the terminal must answer within
/// two seconds). Over a slow ssh link, or on a pseudo-terminal nobody answers (`script`, some
/// multiplexers), that fails and would take the whole UI down. A full-screen UI never needs the
/// answer: the last position we set is returned instead.
pub struct FullscreenBackend {
    inner: CrosstermBackend<Stdout>,
    cursor: ratatui::layout::Position,
}

impl FullscreenBackend {
    pub fn new(out: Stdout) -> Self {
        FullscreenBackend {
            inner: CrosstermBackend::new(out),
            cursor: ratatui::layout::Position::ORIGIN,
        }
    }
}

impl ratatui::backend::Backend for FullscreenBackend {
    type Error = io::Error;

    fn draw<'a, I>(&mut self, content: I) -> io::Result<()>
    where
        I: Iterator<Item = (u16, u16, &'a ratatui::buffer::Cell)>,
    {
        self.inner.draw(content)
    }
    fn hide_cursor(&mut self) -> io::Result<()> {
        self.inner.hide_cursor()
    }
    fn show_cursor(&mut self) -> io::Result<()> {
        self.inner.show_cursor()
    }
    fn get_cursor_position(&mut self) -> io::Result<ratatui::layout::Position> {
        Ok(self.cursor)
    }
    fn set_cursor_position<P: Into<ratatui::layout::Position>>(
        &mut self,
        position: P,
    ) -> io::Result<()> {
        let p = position.into();
        self.cursor = p;
        self.inner.set_cursor_position(p)
    }
    fn clear(&mut self) -> io::Result<()> {
        self.inner.clear()
    }
    fn clear_region(&mut self, clear_type: ratatui::backend::ClearType) -> io::Result<()> {
        self.inner.clear_region(clear_type)
    }
    fn size(&self) -> io::Result<ratatui::layout::Size> {
        self.inner.size()
    }
    fn window_size(&mut self) -> io::Result<ratatui::backend::WindowSize> {
        self.inner.window_size()
    }
    fn flush(&mut self) -> io::Result<()> {
        ratatui::backend::Backend::flush(&mut self.inner)
    }
}

/// Owns the terminal while the TUI is up; dropping it restores the terminal.
pub struct Guard {
    pub terminal: Tui,
}

impl Guard {
    /// Installs the panic hook (once), then enters raw mode and the alternate screen.
    pub fn enter() -> io::Result<Guard> {
        install_panic_hook();
        if let Ok(mut t) = UI_THREAD.lock() {
            *t = Some(std::thread::current().id());
        }
        ACTIVE.store(true, Ordering::SeqCst);
        let setup = || -> io::Result<Tui> {
            enable_raw_mode()?;
            let mut out = io::stdout();
            execute!(out, EnterAlternateScreen)?;
            let mut terminal = Terminal::new(FullscreenBackend::new(out))?;
            terminal.hide_cursor()?;
            terminal.clear()?;
            Ok(terminal)
        };
        match setup() {
            Ok(terminal) => Ok(Guard { terminal }),
            Err(e) => {
                restore();
                Err(e)
            }
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        restore();
    }
}

/// Leaves raw mode and the alternate screen and shows the cursor, once; errors are ignored (the
/// terminal may be gone: SIGHUP).
pub fn restore() {
    if !ACTIVE.swap(false, Ordering::SeqCst) {
        return;
    }
    let _ = disable_raw_mode();
    let mut out = io::stdout();
    let _ = execute!(out, LeaveAlternateScreen, Show);
    let _ = out.flush();
    if let Ok(mut t) = UI_THREAD.lock() {
        *t = None;
    }
}

/// Whether the TUI currently owns the terminal.
pub fn is_active() -> bool {
    ACTIVE.load(Ordering::SeqCst)
}

fn on_ui_thread() -> bool {
    let me = std::thread::current().id();
    UI_THREAD.lock().map(|t| *t == Some(me)).unwrap_or(false)
}

fn install_panic_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if is_active() && on_ui_thread() {
                restore();
                stderr::restore_now();
            }
            previous(info);
        }));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Marks the TUI active on this thread without touching the (absent) terminal.
    fn pretend_active() {
        install_panic_hook();
        if let Ok(mut t) = UI_THREAD.lock() {
            *t = Some(std::thread::current().id());
        }
        ACTIVE.store(true, Ordering::SeqCst);
    }

    #[test]
    fn panic_hook_restores_only_for_the_ui_thread() {
        pretend_active();
        // A worker panic (caught by the worker, as the real one does) leaves the TUI alone.
        let worker =
            std::thread::spawn(|| std::panic::catch_unwind(|| panic!("worker boom")).is_err());
        assert!(worker.join().unwrap());
        assert!(is_active(), "a worker panic must not tear the screen down");
        // A panic on the UI thread restores first.
        let caught = std::panic::catch_unwind(|| panic!("ui boom"));
        assert!(caught.is_err());
        assert!(!is_active(), "a UI-thread panic restores the terminal");
        restore(); // idempotent
        assert!(!is_active());
    }
}
