//! The terminal side: sets the terminal up, runs the UI loop on the calling (main) thread, and
//! puts everything back on every way out.
//!
//! ```text
//! input thread ──crossterm events───────┐
//! signal thread ──SIGTERM/HUP/INT/CONT──┤
//! resource sampler (1/s) ───────────────┤
//! worker ──Event────────────────────────┼─▶ UI thread: select! → App::update(Msg) → Vec<Command> ─▶ worker
//! tick (4/s: clock, spinner) ───────────┘                 redraw only when dirty, at most `fps`/s
//! ```
//!
//! The loop blocks in `select!` (no polling); a frame is drawn only when the app says something
//! visible changed, and never more often than `fps` times a second. A full repaint (clear, then
//! draw) follows Ctrl-L and SIGCONT, when the screen may hold something else.

pub mod detach;
pub mod foreground;
pub mod input;
pub mod sampler;
pub mod stderr;
pub mod terminal;
pub mod watch;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use crossbeam_channel::{Receiver, Sender, after, never, select, tick};
use ratatui::Terminal;
use ratatui::backend::Backend;

use crate::app::{App, KeyMap, Msg, ResourceSample};
use crate::protocol::{Command, Event, Level};
use crate::theme::Theme;
use crate::ui::{self, Glyphs};

/// What [`run`] needs besides the channels.
pub struct TuiOptions {
    pub theme: Theme,
    pub keymap: KeyMap,
    /// Frames per second at most (`ui.fps`).
    pub fps: u32,
    /// Draw with ASCII only (default: when the locale is not UTF-8).
    pub ascii: bool,
    /// The run's `log.txt`: stderr goes there while the TUI is up.
    pub log_path: PathBuf,
    pub run_dir: PathBuf,
    /// SIGTERM/SIGHUP/SIGINT/SIGCONT numbers (from [`crate::signals::register`]); `None` makes `run`
    /// register its own.
    pub signals: Option<Receiver<i32>>,
    /// What a hangup does (`ui.on_hangup`).
    pub on_hangup: crate::config::OnHangup,
    /// Lines for the log pane before the run's own (e.g. other live runs).
    pub notes: Vec<String>,
}

impl TuiOptions {
    /// Options with the glyphs chosen from the locale and no signal channel yet.
    pub fn new(
        theme: Theme,
        keymap: KeyMap,
        fps: u32,
        log_path: PathBuf,
        run_dir: PathBuf,
    ) -> TuiOptions {
        TuiOptions {
            theme,
            keymap,
            fps,
            ascii: !locale_is_utf8(),
            log_path,
            run_dir,
            signals: None,
            on_hangup: crate::config::OnHangup::default(),
            notes: Vec::new(),
        }
    }
}

/// A start-up error of the TUI: a bad theme or key file (the CLI maps it to exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Theme(#[from] crate::theme::ThemeError),
    #[error(transparent)]
    Keys(#[from] crate::app::keymap::KeymapError),
}

impl TuiOptions {
    /// Everything from the command line and the config: the theme (`--theme` > `NO_COLOR` >
    /// `ui.theme`), the user's `keys.toml`, `ui.fps`, and the run's `log.txt` as the stderr
    /// target. Fails on a bad theme or key file, naming it.
    pub fn resolve(
        cli_theme: Option<&str>,
        config_theme: &str,
        fps: u32,
        run_dir: &Path,
    ) -> Result<TuiOptions, StartupError> {
        let theme = crate::theme::select_theme(
            cli_theme,
            config_theme,
            crate::theme::no_color_requested(),
        )?;
        let keymap = KeyMap::load_user()?;
        Ok(TuiOptions::new(
            theme,
            keymap,
            fps,
            run_dir.join("log.txt"),
            run_dir.to_path_buf(),
        ))
    }
}

/// Whether the locale says UTF-8: the first set of `LC_ALL`, `LC_CTYPE`, `LANG` names UTF-8.
pub fn locale_is_utf8() -> bool {
    locale_says_utf8(|k| std::env::var(k).ok())
}

fn locale_says_utf8(get: impl Fn(&str) -> Option<String>) -> bool {
    let get = |k: &str| get(k).filter(|v| !v.is_empty());
    let value = get("LC_ALL")
        .or_else(|| get("LC_CTYPE"))
        .or_else(|| get("LANG"));
    value.is_some_and(|v| {
        let v = v.to_ascii_lowercase();
        v.contains("utf-8") || v.contains("utf8")
    })
}

/// Runs the monitor until the user quits, a signal stops the run, or (after the worker is gone)
/// the user leaves. Returns the exit code: 0 normal (or detached), 130 after a signal, 1 after
/// FAILED.
pub fn run(
    opts: TuiOptions,
    commands: Sender<Command>,
    events: Receiver<Event>,
) -> anyhow::Result<i32> {
    run_detachable(opts, commands, events).map(detach::Ending::code)
}

/// [`run`], telling a detach apart: then the terminal is restored, the last lines printed on it
/// say how to come back, and the process no longer touches it ([`detach::leave_terminal`]); the
/// caller keeps the command channel open and waits for the worker ([`detach::wait`]).
pub fn run_detachable(
    opts: TuiOptions,
    commands: Sender<Command>,
    events: Receiver<Event>,
) -> anyhow::Result<detach::Ending> {
    let started = Instant::now();
    let signals = match opts.signals {
        Some(rx) => rx,
        None => crate::signals::register().context("cannot register signal handlers")?,
    };
    let mut app = App::new(opts.keymap);
    app.leaving.on_hangup = opts.on_hangup;
    for line in &opts.notes {
        app.note(Level::Info, line.clone());
    }
    app.note(
        Level::Info,
        format!("run directory: {}", opts.run_dir.display()),
    );

    // stderr → log.txt before the screen is taken, so nothing C++ prints can land on it.
    let redirect = match stderr::Redirect::to_file(&opts.log_path) {
        Ok(r) => Some(r),
        Err(e) => {
            app.note(
                Level::Warn,
                format!("cannot send stderr to {}: {e}", opts.log_path.display()),
            );
            None
        }
    };
    let input = input::Input::spawn().context("cannot start the input thread")?;
    let sampler = sampler::Sampler::spawn().context("cannot start the resource sampler")?;
    let mut guard = terminal::Guard::enter().context("cannot set up the terminal")?;

    let channels = Channels {
        input: input.events.clone(),
        events,
        signals,
        resources: sampler.samples.clone(),
        device: Some(sampler.device.clone()),
    };
    let view = View {
        theme: &opts.theme,
        glyphs: Glyphs { ascii: opts.ascii },
        fps: opts.fps,
    };
    let code = event_loop(
        &mut guard.terminal,
        &mut app,
        &channels,
        &commands,
        view,
        &|| started.elapsed(),
    );

    drop(channels);
    drop(guard);
    drop(redirect);
    let detached = app.detaching();
    if detached && let Err(e) = detach::quiet_stdin() {
        append_line(&opts.log_path, &format!("[Warn] cannot quiet stdin: {e}"));
    }
    if !input.stop() {
        append_line(
            &opts.log_path,
            "[Info] the terminal went away: the input thread is left to end with the process",
        );
    }
    sampler.stop();
    record_ui_cpu(&opts.log_path, started.elapsed());
    if !detached {
        return Ok(detach::Ending::Exit(code));
    }
    detach::say_goodbye_and_leave(&opts.run_dir, &opts.log_path);
    Ok(detach::Ending::Detached)
}

/// Appends `line` to the run's log (best effort: the UI is already gone).
fn append_line(log_path: &Path, line: &str) {
    if let Ok(mut f) = crate::rundir::open_append(log_path) {
        let _ = writeln!(f, "{line}");
    }
}

/// The sources the loop waits on.
pub struct Channels {
    pub input: Receiver<crossterm::event::Event>,
    pub events: Receiver<Event>,
    pub signals: Receiver<i32>,
    pub resources: Receiver<ResourceSample>,
    /// Where to tell the sampler the run's device (from `Started`).
    pub device: Option<Sender<String>>,
}

/// How to draw.
#[derive(Clone, Copy)]
pub struct View<'a> {
    pub theme: &'a Theme,
    pub glyphs: Glyphs,
    pub fps: u32,
}

/// The UI loop, generic over the backend so tests can drive it with `TestBackend`. `clock` gives
/// the time since start. Returns the exit code.
pub fn event_loop<B: Backend>(
    terminal: &mut Terminal<B>,
    app: &mut App,
    ch: &Channels,
    commands: &Sender<Command>,
    view: View,
    clock: &dyn Fn() -> Duration,
) -> i32 {
    let mut frames = Frames::new(view.fps);
    let mut sources = Sources::new(ch);
    loop {
        frames.draw_if_due(terminal, app, commands, view, clock);
        if let Some(code) = app.exit_code() {
            return code;
        }
        let Some(msg) = sources.next(ch, &frames.wake(clock), clock) else {
            continue;
        };
        dispatch(app, msg, commands);
        // Take whatever else the worker has queued before drawing (one frame for a burst).
        while app.exit_code().is_none() {
            match sources.events.try_recv() {
                Ok(ev) => dispatch(app, worker_msg(ch, ev), commands),
                Err(_) => break,
            }
        }
    }
}

/// When the loop draws: only when something visible changed, at most once per frame period, and
/// never again once the terminal failed.
struct Frames {
    period: Duration,
    last_draw: Option<Duration>,
    dirty: bool,
    pending_clear: bool,
    can_draw: bool,
}

impl Frames {
    fn new(fps: u32) -> Frames {
        Frames {
            period: Duration::from_secs_f64(1.0 / f64::from(fps.clamp(1, 120))),
            last_draw: None,
            dirty: true,
            pending_clear: false,
            can_draw: true,
        }
    }

    /// Draws a frame (cleared first after a redraw request) when one is wanted and due. A
    /// terminal that cannot be drawn on is gone (ssh dropped): stop drawing, stop the run safely.
    fn draw_if_due<B: Backend>(
        &mut self,
        terminal: &mut Terminal<B>,
        app: &mut App,
        commands: &Sender<Command>,
        view: View,
        clock: &dyn Fn() -> Duration,
    ) {
        if !self.can_draw {
            return;
        }
        self.dirty |= app.take_dirty();
        self.pending_clear |= app.take_clear();
        let now = clock();
        let due = self.last_draw.is_none_or(|t| now >= t + self.period);
        if !((self.dirty || self.pending_clear) && due) {
            return;
        }
        let drawn = (|| -> Result<(), String> {
            if self.pending_clear {
                terminal.clear().map_err(|e| e.to_string())?;
            }
            terminal
                .draw(|f| ui::render(f, app, view.theme, view.glyphs))
                .map_err(|e| e.to_string())?;
            Ok(())
        })();
        if let Err(e) = drawn {
            self.can_draw = false;
            app.note(Level::Error, format!("cannot draw: {e}"));
            dispatch(app, Msg::InputClosed, commands);
        }
        self.last_draw = Some(now);
        self.dirty = false;
        self.pending_clear = false;
    }

    /// Fires when a frame held back by the rate limit is due.
    fn wake(&self, clock: &dyn Fn() -> Duration) -> Receiver<Instant> {
        match self.last_draw {
            Some(t) if (self.dirty || self.pending_clear) && self.can_draw => {
                after((t + self.period).saturating_sub(clock()))
            }
            _ => never(),
        }
    }
}

/// What the loop waits on; a source that closes is replaced by `never()`.
struct Sources {
    input: Receiver<crossterm::event::Event>,
    events: Receiver<Event>,
    signals: Receiver<i32>,
    resources: Receiver<ResourceSample>,
    ticker: Receiver<Instant>,
}

impl Sources {
    fn new(ch: &Channels) -> Sources {
        Sources {
            input: ch.input.clone(),
            events: ch.events.clone(),
            signals: ch.signals.clone(),
            resources: ch.resources.clone(),
            ticker: tick(Duration::from_millis(250)),
        }
    }

    /// Blocks until something arrives; `None` when it was nothing for the app (an ignored
    /// terminal event, a closed side channel, or `wake`).
    fn next(
        &mut self,
        ch: &Channels,
        wake: &Receiver<Instant>,
        clock: &dyn Fn() -> Duration,
    ) -> Option<Msg> {
        let msg = select! {
            recv(self.input) -> m => match m {
                Ok(ev) => to_msg(ev)?,
                Err(_) => { self.input = never(); Msg::InputClosed }
            },
            recv(self.events) -> m => match m {
                Ok(ev) => worker_msg(ch, ev),
                Err(_) => { self.events = never(); Msg::WorkerGone }
            },
            recv(self.signals) -> m => match m {
                Ok(sig) => Msg::Signal(sig),
                Err(_) => { self.signals = never(); return None }
            },
            recv(self.resources) -> m => match m {
                Ok(r) => Msg::Resources(r),
                Err(_) => { self.resources = never(); return None }
            },
            recv(self.ticker) -> _ => Msg::Tick(clock()),
            recv(wake) -> _ => return None,
        };
        Some(msg)
    }
}

/// A worker event as a message for the app; `Started` also tells the resource sampler which
/// device to read (whether the event woke the loop or came in a burst after another).
fn worker_msg(ch: &Channels, ev: Event) -> Msg {
    if let (Event::Started(info), Some(dev)) = (&ev, &ch.device) {
        let _ = dev.send(info.device.clone());
    }
    Msg::Worker(ev)
}

fn dispatch(app: &mut App, msg: Msg, commands: &Sender<Command>) {
    for cmd in app.update(msg) {
        if commands.send(cmd).is_err() {
            app.update(Msg::WorkerGone);
            break;
        }
    }
}

fn to_msg(ev: crossterm::event::Event) -> Option<Msg> {
    use crossterm::event::Event as E;
    match ev {
        E::Key(k) => Some(Msg::Key(k)),
        E::Resize(..) | E::FocusGained => Some(Msg::Resize),
        _ => None,
    }
}

/// CPU seconds (user + system) the calling thread has used, from `/proc/thread-self/stat`.
pub fn thread_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the command name: state is field 3 of stat(5), utime 14 and stime 15.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / clock_ticks())
}

#[allow(unsafe_code)]
fn clock_ticks() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// Appends `ui thread cpu: X s over Y s wall (Z%)` to the log (the benchmark hook).
fn record_ui_cpu(log_path: &Path, wall: Duration) {
    let Some(cpu) = thread_cpu_seconds() else {
        return;
    };
    let wall_s = wall.as_secs_f64();
    let pct = if wall_s > 0.0 {
        100.0 * cpu / wall_s
    } else {
        0.0
    };
    append_line(
        log_path,
        &format!("ui thread cpu: {cpu:.2} s over {wall_s:.1} s wall ({pct:.2}%)"),
    );
}

#[cfg(test)]
mod tests;
