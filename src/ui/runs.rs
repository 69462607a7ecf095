//! The runs table of `nasp-tui watch` and, under it, the consensus of the shown runs: per edge
//! of each cell, how many runs select each op now (`·` for none; `drop` counts the runs whose
//! node drops the edge). The selected row is in reverse video; the footer comes from the key
//! table.

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::Span;
use ratatui::widgets::Widget;

use super::{Glyphs, Skin, fit};
use crate::app::keymap::Context;
use crate::app::runs::{Consensus, RunRow, RunsTable};
use crate::arch::edge_endpoints;
use crate::theme::Theme;

/// Draws the whole runs screen.
pub fn render(frame: &mut Frame, t: &RunsTable, theme: &Theme, glyphs: Glyphs) {
    let area = frame.area();
    let skin = Skin { theme, glyphs };
    let buf = frame.buffer_mut();
    let rows_h = u16::try_from(t.rows().len().max(1) + 3).unwrap_or(u16::MAX);
    let table_h = rows_h.min(area.height.saturating_sub(1).max(1) / 2).max(4);
    let [table, consensus, notes, footer] = Layout::vertical([
        Constraint::Length(table_h.min(area.height)),
        Constraint::Fill(1),
        Constraint::Length(u16::from(!t.notes.is_empty())),
        Constraint::Length(1),
    ])
    .areas(area);
    render_table(buf, table, t, skin);
    render_consensus(buf, consensus, t, skin);
    if let Some(n) = t.notes.first() {
        fit(vec![Span::styled(format!(" {n}"), skin.dim())], notes.width).render(notes, buf);
    }
    render_footer(buf, footer, t, skin);
    super::finish(buf, glyphs);
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{:.1}%", 100.0 * v))
}

/// The widths of the table's columns that depend on its rows and its width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Columns {
    pub name: usize,
    /// The scheduler's column: 0 when no row is a sweep's run.
    pub sched: usize,
    /// Whether the NAS-Bench-201 column shows (a row is an NB201 run).
    pub bench: bool,
}

/// The NB201 column's width: `94.37% #1` up to `10.00% #15625`.
const BENCH_W: usize = 13;

impl Columns {
    /// The columns of `rows` in a table `width` cells wide.
    pub fn of(rows: &[RunRow], width: usize) -> Columns {
        let sched = rows
            .iter()
            .filter_map(|r| r.sched.as_ref())
            .map(|s| s.chars().count())
            .max()
            .map_or(0, |w| w.clamp(9, 32));
        let bench = rows.iter().any(|r| r.bench.is_some());
        let fixed = 8
            + 7
            + 8
            + 6
            + 6
            + 7
            + 7
            + 10
            + 4
            + 9
            + if sched > 0 { sched + 1 } else { 0 }
            + if bench { BENCH_W + 1 } else { 0 };
        Columns {
            name: width.saturating_sub(fixed).clamp(4, 40),
            sched,
            bench,
        }
    }
}

/// One row as text: name, state, epoch, step, train, valid, (an NB201 run's table: the
/// benchmark's accuracy and rank of its current cell), ms/step, device, host, age, and (a table
/// with a sweep's runs) the scheduler's word.
pub fn row_text(r: &RunRow, c: &Columns) -> String {
    let name_w = c.name;
    let name: String = r.name.chars().take(name_w).collect();
    let bench = if c.bench {
        let b = r
            .bench
            .map_or_else(|| "-".into(), |(acc, rank)| format!("{acc:.2}% #{rank}"));
        format!(" {b:>BENCH_W$}")
    } else {
        String::new()
    };
    let mut text = format!(
        "{name:<name_w$} {:<8} {:>7} {:>8} {:>6} {:>6}{bench} {:>7} {:<7} {:<10} {:>4}",
        r.state,
        r.epoch.map_or("-".into(), |(e, n)| format!("{e}/{n}")),
        r.step.map_or("-".into(), |s| s.to_string()),
        pct(r.train_acc),
        pct(r.valid_acc),
        r.ms_per_step.map_or("-".into(), |m| format!("{m:.0}")),
        r.device.chars().take(7).collect::<String>(),
        r.host.chars().take(10).collect::<String>(),
        super::age(r.age_s),
    );
    let sched_w = c.sched;
    if sched_w > 0 {
        let sched: String = r
            .sched
            .as_deref()
            .unwrap_or("-")
            .chars()
            .take(sched_w)
            .collect();
        text.push_str(&format!(" {sched:<sched_w$}"));
    }
    text
}

fn render_table(buf: &mut Buffer, area: Rect, t: &RunsTable, skin: Skin) {
    let arrow = if t.reverse { "^" } else { "v" };
    let title = format!(
        " runs: {} ({}) · sort {} {arrow} ",
        t.source,
        t.rows().len(),
        t.sort.name()
    );
    let block = skin.block(title, true);
    let inner = block.inner(area);
    block.render(area, buf);
    if inner.height == 0 {
        return;
    }
    let cols = Columns::of(t.rows(), usize::from(inner.width));
    let (name_w, sched_w) = (cols.name, cols.sched);
    let line = |i: u16| Rect {
        y: inner.y + i,
        height: 1,
        ..inner
    };
    let bench = if cols.bench {
        format!(" {:>BENCH_W$}", "NB201 test")
    } else {
        String::new()
    };
    let mut header = format!(
        "{:<name_w$} {:<8} {:>7} {:>8} {:>6} {:>6}{bench} {:>7} {:<7} {:<10} {:>4}",
        "name", "state", "epoch", "step", "train", "valid", "ms/step", "device", "host", "age"
    );
    if sched_w > 0 {
        header.push_str(&format!(" {:<sched_w$}", "scheduler"));
    }
    let head_style = Style::new()
        .fg(skin.theme.title)
        .add_modifier(Modifier::BOLD);
    fit(vec![Span::styled(header, head_style)], inner.width).render(line(0), buf);
    if t.rows().is_empty() {
        let empty = Span::styled(
            "no runs found (yet): the table refreshes every second",
            skin.dim(),
        );
        fit(vec![empty], inner.width).render(line(1.min(inner.height - 1)), buf);
        return;
    }
    let visible = usize::from(inner.height.saturating_sub(1)).max(1);
    let sel = t.selected().unwrap_or(0);
    let offset = sel.saturating_sub(visible - 1);
    for (i, r) in t.rows().iter().enumerate().skip(offset).take(visible) {
        let y = u16::try_from(i - offset + 1).unwrap_or(0);
        let mut style = state_style(r.state, skin);
        if i == sel {
            style = style.add_modifier(Modifier::REVERSED);
        }
        fit(vec![Span::styled(row_text(r, &cols), style)], inner.width).render(line(y), buf);
    }
}

fn state_style(state: &str, skin: Skin) -> Style {
    let t = skin.theme;
    match state {
        "RUNNING" => Style::new().fg(t.running),
        "PAUSED" => Style::new().fg(t.paused),
        "FAILED" => Style::new().fg(t.failed),
        "STALE" | "?" => Style::new().fg(t.failed).add_modifier(Modifier::DIM),
        "FINISHED" | "STOPPED" => Style::new().fg(t.finished),
        _ => skin.text(),
    }
}

fn render_consensus(buf: &mut Buffer, area: Rect, t: &RunsTable, skin: Skin) {
    if area.height < 3 {
        return;
    }
    let cells = [("normal", t.consensus(0)), ("reduce", t.consensus(1))];
    let halves: [Rect; 2] = if area.width >= 100 {
        Layout::horizontal([Constraint::Fill(1), Constraint::Fill(1)]).areas(area)
    } else {
        Layout::vertical([Constraint::Fill(1), Constraint::Fill(1)]).areas(area)
    };
    for ((name, c), rect) in cells.iter().zip(halves) {
        consensus_pane(buf, rect, name, c, t.nodes(), skin);
    }
}

fn consensus_pane(
    buf: &mut Buffer,
    area: Rect,
    cell: &str,
    c: &Consensus,
    nodes: usize,
    skin: Skin,
) {
    let title = format!(
        " consensus, {cell} cell: runs selecting each op now, of {} ",
        c.runs
    );
    let block = skin.block(title, false);
    let inner = block.inner(area);
    block.render(area, buf);
    if inner.height == 0 {
        return;
    }
    let line = |i: usize| Rect {
        y: inner.y + u16::try_from(i).unwrap_or(0),
        height: 1,
        ..inner
    };
    if c.runs == 0 {
        let s = Span::styled("no run has an architecture snapshot yet", skin.dim());
        fit(vec![s], inner.width).render(line(0), buf);
        return;
    }
    let mut head = vec![Span::raw("     ")];
    for op in &c.ops {
        head.push(Span::styled(
            format!("{:>5}", crate::space::label(op)),
            Style::new().fg(skin.theme.title),
        ));
    }
    head.push(Span::styled(" drop", skin.dim()));
    fit(head, inner.width).render(line(0), buf);
    for (e, (counts, dropped)) in c.counts.iter().enumerate() {
        if e + 1 >= usize::from(inner.height) {
            break;
        }
        let (node, input) = edge_endpoints(e, nodes);
        let mut spans = vec![Span::styled(format!("{node}<{input}  "), skin.text())];
        let best = counts.iter().copied().max().unwrap_or(0);
        for n in counts {
            let style = if *n == best && *n > 0 {
                Style::new()
                    .fg(skin.theme.selected)
                    .add_modifier(Modifier::BOLD)
            } else {
                skin.text()
            };
            let text = if *n == 0 {
                "·".to_string()
            } else {
                n.to_string()
            };
            spans.push(Span::styled(format!("{text:>5}"), style));
        }
        let d = if *dropped == 0 {
            "·".to_string()
        } else {
            dropped.to_string()
        };
        spans.push(Span::styled(format!("{d:>5}"), skin.dim()));
        fit(spans, inner.width).render(line(e + 1), buf);
    }
}

fn render_footer(buf: &mut Buffer, area: Rect, t: &RunsTable, skin: Skin) {
    let mut spans = Vec::new();
    for b in t
        .keymap()
        .bindings()
        .iter()
        .filter(|b| b.context == Context::Runs)
    {
        let (Some(hint), Some(key)) = (b.hint, b.keys.first()) else {
            continue;
        };
        spans.push(Span::styled(format!(" {key}"), skin.key()));
        spans.push(Span::styled(format!(" {hint} "), skin.dim()));
    }
    fit(spans, area.width).render(area, buf);
}
