//! The runs table's loop: keys move, sort and open (the monitor of that run, on the same
//! terminal; Esc comes back). The rows are collected on a thread of their own ("runs-table"),
//! every [`REFRESH`], and sent to the loop, so a slow file system or scheduler never holds the
//! keys: the scheduler's answers are then marked stale, and rows that stop coming are said in
//! the notes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, never, select, tick};
use ratatui::Terminal;
use ratatui::backend::Backend;

use super::{Ui, load, open_run};
use crate::app::keymap::Context;
use crate::app::runs::{RunRow, RunsIntent, RunsTable};
use crate::exit;
use crate::protocol::RunInfo;
use crate::rundir::listing::{Listed, find_runs, is_run_dir, read_run};
use crate::rundir::status::unix_now;
use crate::sweep::sched::{SchedCache, Scheduler};

/// How often the table reads the runs' status again.
pub const REFRESH: Duration = Duration::from_secs(1);

/// Rows older than this are said to be old in the table's notes.
const OLD_ROWS: Duration = Duration::from_secs(3);

/// One refresh of the table: its rows and its notes.
struct Refresh {
    rows: Vec<RunRow>,
    notes: Vec<String>,
}

/// Starts the thread that collects the rows of the runs under `sources` every [`REFRESH`]
/// (the scheduler's through `scheduler`) and sends them; it ends once the receiver is gone.
fn collect(sources: Vec<PathBuf>, scheduler: Scheduler) -> std::io::Result<Receiver<Refresh>> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::Builder::new()
        .name("runs-table".into())
        .spawn(move || {
            let mut infos = HashMap::new();
            let mut sched = SchedCache::new(scheduler);
            loop {
                let started = Instant::now();
                let mut notes = Vec::new();
                let rows = refresh_rows(&sources, &mut infos, &mut sched, &mut notes);
                if tx.send(Refresh { rows, notes }).is_err() {
                    return;
                }
                std::thread::sleep(REFRESH.saturating_sub(started.elapsed()));
            }
        })?;
    Ok(rx)
}

/// Runs the table until the user quits (0) or a signal arrives (130).
pub(super) fn run<B: Backend>(terminal: &mut Terminal<B>, ui: &Ui, sources: &[PathBuf]) -> i32 {
    run_with(terminal, ui, sources, Scheduler::default())
}

/// [`run`], asking `scheduler` for the sweeps' runs.
pub(super) fn run_with<B: Backend>(
    terminal: &mut Terminal<B>,
    ui: &Ui,
    sources: &[PathBuf],
    scheduler: Scheduler,
) -> i32 {
    let what = sources
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let mut table = RunsTable::new(ui.keymap.clone(), what);
    let (mut refreshes, mut notes) = match collect(sources.to_vec(), scheduler) {
        Ok(rx) => (rx, Vec::new()),
        Err(e) => (never(), vec![format!("cannot start reading the runs: {e}")]),
    };
    table.set_notes(notes.clone());
    let mut last_rows = Instant::now();
    let ticker = tick(REFRESH);
    let input = ui.input.clone();
    let mut signals = ui.signals.clone();
    let (theme, glyphs) = (ui.view.theme, ui.view.glyphs);
    loop {
        if table.take_dirty()
            && terminal
                .draw(|f| crate::ui::runs::render(f, &table, theme, glyphs))
                .is_err()
        {
            return exit::INTERRUPTED;
        }
        select! {
            recv(input) -> m => match m {
                Ok(crossterm::event::Event::Key(k)) => {
                    let Some(action) = ui.keymap.action(Context::Runs, &k) else { continue };
                    match table.on_action(action) {
                        Some(RunsIntent::Open(path)) => {
                            let code = open_run(terminal, ui, &path);
                            if code == exit::INTERRUPTED {
                                return code;
                            }
                            let _ = terminal.clear();
                            table.mark_dirty();
                        }
                        Some(RunsIntent::Quit) => return exit::OK,
                        None => {}
                    }
                }
                Ok(_) => table.mark_dirty(),
                Err(_) => return exit::INTERRUPTED,
            },
            recv(signals) -> m => match m {
                Ok(libc::SIGCONT) => { let _ = terminal.clear(); table.mark_dirty(); }
                Ok(_) => return exit::INTERRUPTED,
                Err(_) => signals = never(),
            },
            recv(refreshes) -> r => match r {
                Ok(r) => {
                    last_rows = Instant::now();
                    notes = r.notes;
                    table.set_rows(r.rows, notes.clone());
                }
                Err(_) => refreshes = never(),
            },
            recv(ticker) -> _ => {
                let age = last_rows.elapsed();
                if age >= OLD_ROWS {
                    let mut shown = vec![format!(
                        "the runs were last read {} s ago: their file system or scheduler is slow to answer",
                        age.as_secs()
                    )];
                    shown.extend(notes.iter().cloned());
                    table.set_notes(shown);
                }
            }
        }
    }
}

/// The rows of the runs under `sources` (run directories, or folders of runs), read now; the
/// runs' `Started` facts are cached in `infos`; a sweep's runs get their scheduler's word
/// (asked at most every few seconds, through `sched`); unreadable statuses go to `notes`.
pub fn refresh_rows(
    sources: &[PathBuf],
    infos: &mut HashMap<PathBuf, RunInfo>,
    sched: &mut SchedCache,
    notes: &mut Vec<String>,
) -> Vec<RunRow> {
    let now = unix_now();
    let mut rows: Vec<RunRow> = Vec::new();
    for src in sources {
        let listed: Vec<Listed> = if is_run_dir(src) {
            vec![read_run(src)]
        } else {
            find_runs(src)
        };
        for l in listed {
            if rows.iter().any(|r| r.path == l.path) {
                continue;
            }
            if let Some(p) = &l.problem {
                notes.push(p.clone());
            }
            if !infos.contains_key(&l.path)
                && let Some(i) = load::run_info(&l.path)
            {
                infos.insert(l.path.clone(), i);
            }
            let name = name_under(&l.path, src);
            let mut row = RunRow::new(&l, infos.get(&l.path), name, now);
            row.sched = sched.label(&l.path);
            rows.push(row);
        }
    }
    notes.append(&mut sched.notes);
    rows
}

/// The run's name: its path under the folder it was found in, else its last component.
fn name_under(path: &Path, root: &Path) -> String {
    match path.strip_prefix(root) {
        Ok(rel) if !rel.as_os_str().is_empty() => rel.display().to_string(),
        _ => path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        ),
    }
}
