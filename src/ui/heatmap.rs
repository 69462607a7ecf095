//! Architecture weights of one cell: edges × ops, each value with three decimals (`.623`: A
//! moves by thousandths per step), coloured on each row's own scale (so a row's movement shows
//! even when all its values sit near 0.5); the last column is how long the edge's selection has
//! held (steps since its op last changed), and the title counts the cell's selection changes
//! over the last epoch. The op the search selects on each edge carries a symbol (`●`, ASCII `*`) as well as
//! colour, edges the node drops are dimmed (their best op marked `○`/`o`), and the focused
//! weight is shown in reverse video with its history as a sparkline on the last row.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use super::{Glyphs, Skin, fit};
use crate::app::{App, CellView, CellWeights};
use crate::arch::Layout;
use crate::space::CellType;
use crate::theme::HEAT_STEPS;

/// Columns per op: a space, four digits, the marker.
const COL_W: u16 = 6;
/// The stability column: a space and four characters (`12`, `1.2k`).
const HELD_W: u16 = 5;

/// Rows the pane needs to show `edges` edges without scrolling.
pub fn height(edges: usize) -> u16 {
    u16::try_from(edges)
        .unwrap_or(u16::MAX - 4)
        .saturating_add(4)
}

fn label_width(glyphs: Glyphs) -> u16 {
    if glyphs.ascii { 5 } else { 4 }
}

/// Columns the stability column (`held`) adds, drawn when the layout gives room for it.
pub const HELD_WIDTH: u16 = HELD_W;

/// Columns the pane needs (without the stability column).
pub fn width(app: &App, glyphs: Glyphs) -> u16 {
    let cols = app
        .ops(CellType::Normal)
        .len()
        .max(app.ops(CellType::Reduce).len());
    let cols = if cols == 0 { 8 } else { cols };
    label_width(glyphs) + COL_W * u16::try_from(cols).unwrap_or(16) + 2
}

/// A value in four columns with three decimals where it can (`.503`, `1.00`).
fn num4(v: f32) -> String {
    let s = format!("{v:.3}");
    match s.strip_prefix('0') {
        Some(rest) => rest.to_string(),
        None => format!("{v:4.2}"),
    }
}

/// A step count in four columns (`12`, `1.2k`, `45k`, `3.1M`).
fn count4(n: u64) -> String {
    match n {
        n if n < 1000 => n.to_string(),
        n if n < 10_000 => format!("{:.1}k", n as f64 / 1e3),
        n if n < 1_000_000 => format!("{}k", n / 1000),
        n => format!("{:.1}M", n as f64 / 1e6),
    }
}

fn edge_label(e: usize, layout: Layout, glyphs: Glyphs) -> String {
    let (node, input) = layout.endpoints(e);
    format!("{node}{}{input}", glyphs.arrow())
}

pub fn render(buf: &mut Buffer, area: Rect, app: &App, cell: CellType, focused: bool, skin: Skin) {
    let g = skin.glyphs;
    let rule = if app.training() {
        format!("trained genotype ({} = op)", g.selected())
    } else if app.proximal() {
        format!("A ({} = prox)", g.selected())
    } else {
        format!("softmax(A) ({} = argmax)", g.selected())
    };
    let rule = if app.training() {
        rule
    } else {
        let changes = app.stability(cell).changes_last_epoch();
        format!("{rule} · {changes} changes/epoch · colour per row")
    };
    let title = Line::from(vec![
        Span::raw(format!(" {} cell ", cell.name())),
        Span::styled(format!("{rule} "), skin.dim()),
    ]);
    let block = skin.block(title, focused);
    let inner = block.inner(area);
    block.render(area, buf);
    if inner.height == 0 {
        return;
    }
    if cell == CellType::Reduce && app.layout() == Layout::Nb201 {
        Paragraph::new(Span::styled(
            "NAS-Bench-201 has no reduction cell (residual blocks join its stages)",
            skin.dim(),
        ))
        .render(inner, buf);
        return;
    }
    let Some(w) = app.weights(cell) else {
        Paragraph::new(Span::styled(
            "waiting for the first architecture snapshot",
            skin.dim(),
        ))
        .render(inner, buf);
        return;
    };
    let view = app.cell_view(cell);
    let grid = Grid::new(&w, app.cells.focused == cell, view, app.layout(), skin);
    let held = app.stability(cell);
    let row = |y| Rect {
        y,
        height: 1,
        ..inner
    };
    let mut y = inner.y;
    // A training run's cell never changes: no "held" column, no history line.
    let training = app.training();
    let mut header = grid.header(app.ops(cell));
    if !training {
        header.push(Span::styled(" held", skin.dim()));
    }
    fit(header, inner.width).render(row(y), buf);
    y += 1;

    // Edge rows, scrolled so that the focused edge stays visible.
    let visible = usize::from(inner.height.saturating_sub(2)).max(1);
    let rows = w.values.rows;
    let offset = if rows <= visible {
        0
    } else {
        view.edge.saturating_sub(visible / 2).min(rows - visible)
    };
    for e in offset..(offset + visible).min(rows) {
        if y >= inner.bottom() {
            break;
        }
        let mut spans = grid.edge_row(e);
        if !training {
            let since = held.steps_since_change(e).map_or_else(String::new, count4);
            spans.push(Span::styled(format!(" {since:>4}"), skin.dim()));
        }
        fit(spans, inner.width).render(row(y), buf);
        y += 1;
    }

    // Last row: the focused weight's history.
    let last = row(inner.bottom() - 1);
    if inner.height >= 3 && !training {
        history_line(app, cell, last, skin).render(last, buf);
    }
}

/// The weights of one cell as the pane draws them, with the focus when the cell is shown.
struct Grid<'a> {
    w: &'a CellWeights,
    /// Whether this is the cell the keys move in (the focus shows only then).
    active: bool,
    view: &'a CellView,
    layout: Layout,
    skin: Skin<'a>,
}

impl<'a> Grid<'a> {
    fn new(
        w: &'a CellWeights,
        active: bool,
        view: &'a CellView,
        layout: Layout,
        skin: Skin<'a>,
    ) -> Grid<'a> {
        Grid {
            w,
            active,
            view,
            layout,
            skin,
        }
    }

    /// Op abbreviations over their columns.
    fn header(&self, ops: &[String]) -> Vec<Span<'static>> {
        let t = self.skin.theme;
        let mut header = vec![Span::raw(
            " ".repeat(usize::from(label_width(self.skin.glyphs))),
        )];
        for (k, op) in ops.iter().enumerate().take(self.w.values.cols) {
            let style = if self.active && k == self.view.op {
                Style::new().fg(t.accent).add_modifier(Modifier::BOLD)
            } else {
                Style::new().fg(t.title)
            };
            header.push(Span::styled(
                format!(" {:>4} ", crate::space::label(op)),
                style,
            ));
        }
        header
    }

    /// One edge: its label, then each op's value with its mark.
    fn edge_row(&self, e: usize) -> Vec<Span<'static>> {
        let (t, g, skin) = (self.skin.theme, self.skin.glyphs, self.skin);
        let w = self.w;
        let label_w = usize::from(label_width(g));
        let kept = w.kept.get(e).copied().unwrap_or(false);
        let focused_row = self.active && e == self.view.edge;
        let label_style = if focused_row {
            Style::new()
                .fg(t.accent)
                .add_modifier(Modifier::BOLD | Modifier::REVERSED)
        } else if kept {
            skin.text()
        } else {
            skin.dim()
        };
        let mut spans = vec![
            Span::styled(
                format!(
                    "{:<width$}",
                    edge_label(e, self.layout, g),
                    width = label_w - 1
                ),
                label_style,
            ),
            Span::raw(" "),
        ];
        // Colour on the row's own scale: movement within an edge stays visible.
        let (row_lo, row_hi) = w
            .values
            .row(e)
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(*v), hi.max(*v))
            });
        for k in 0..w.values.cols {
            let v = w.values.get(e, k);
            let marked = w.marked.get(e) == Some(&k);
            let mut style = if !kept {
                skin.dim()
            } else if marked {
                Style::new().fg(t.selected).add_modifier(Modifier::BOLD)
            } else {
                Style::new().fg(heat_colour(v, row_lo, row_hi, skin))
            };
            if focused_row && k == self.view.op {
                style = style
                    .add_modifier(Modifier::REVERSED)
                    .remove_modifier(Modifier::DIM);
            }
            let mark = match (marked, kept) {
                (true, true) => g.selected(),
                (true, false) => g.dropped(),
                _ => " ",
            };
            spans.push(Span::raw(" "));
            spans.push(Span::styled(format!("{}{mark}", num4(v)), style));
        }
        spans
    }
}

fn heat_colour(v: f32, lo: f32, hi: f32, skin: Skin) -> ratatui::style::Color {
    let idx = if hi - lo > 1e-6 {
        (((v - lo) / (hi - lo)) * HEAT_STEPS as f32)
            .floor()
            .clamp(0.0, (HEAT_STEPS - 1) as f32) as usize
    } else {
        HEAT_STEPS / 2
    };
    skin.theme.heat[idx]
}

fn history_line(app: &App, cell: CellType, area: Rect, skin: Skin) -> Line<'static> {
    let view = app.cell_view(cell);
    let ops = app.ops(cell);
    let cols = ops.len().max(1);
    let g = skin.glyphs;
    let op = ops.get(view.op).map_or("?", String::as_str);
    let label = edge_label(view.edge, app.layout(), g);
    let Some(h) = view.history.get(view.edge * cols + view.op) else {
        return Line::from(Span::styled(format!("{label} {op}"), skin.dim()));
    };
    let now = h.last().map_or(f64::NAN, |p| p.1);
    let head = format!("{label} {op} {now:.2} ");
    let room = usize::from(area.width).saturating_sub(head.chars().count() + 12);
    let pts = h.recent(room);
    let (lo, hi) = pts
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(p.1), hi.max(p.1))
        });
    let spark = g.spark();
    let line: String = pts
        .iter()
        .map(|p| {
            let i = if hi - lo > 1e-9 {
                ((p.1 - lo) / (hi - lo) * (spark.len() - 1) as f64).round() as usize
            } else {
                spark.len() / 2
            };
            spark[i.min(spark.len() - 1)]
        })
        .collect();
    let range = if pts.is_empty() {
        String::new()
    } else {
        format!(" {lo:.2}..{hi:.2}")
    };
    fit(
        vec![
            Span::styled(head, Style::new().fg(skin.theme.accent)),
            Span::styled(line, Style::new().fg(skin.theme.selected)),
            Span::styled(range, skin.dim()),
        ],
        area.width,
    )
}
