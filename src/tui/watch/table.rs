//! The runs table's loop: every [`REFRESH`] the status of each run is read again; keys move,
//! sort and open (the monitor of that run, on the same terminal; Esc comes back).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crossbeam_channel::{never, select, tick};
use ratatui::Terminal;
use ratatui::backend::Backend;

use super::{Ui, load, open_run};
use crate::app::keymap::Context;
use crate::app::runs::{RunRow, RunsIntent, RunsTable};
use crate::exit;
use crate::protocol::RunInfo;
use crate::rundir::listing::{Listed, find_runs, is_run_dir, read_run};
use crate::rundir::status::unix_now;
use crate::sweep::sched::SchedCache;

/// How often the table reads the runs' status again.
pub const REFRESH: Duration = Duration::from_secs(1);

/// Runs the table until the user quits (0) or a signal arrives (130).
pub(super) fn run<B: Backend>(terminal: &mut Terminal<B>, ui: &Ui, sources: &[PathBuf]) -> i32 {
    let what = sources
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let mut table = RunsTable::new(ui.keymap.clone(), what);
    let mut infos = HashMap::new();
    let mut notes = Vec::new();
    let mut sched = SchedCache::default();
    table.set_rows(
        refresh_rows(sources, &mut infos, &mut sched, &mut notes),
        notes,
    );
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
            recv(ticker) -> _ => {
                let mut notes = Vec::new();
                let rows = refresh_rows(sources, &mut infos, &mut sched, &mut notes);
                table.set_rows(rows, notes);
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
