//! The View: draws an `&App` into a frame. Pure: no I/O, no clocks, no mutation of the app; the
//! same state always gives the same screen (the snapshot tests rely on it).
//!
//! Layout, top to bottom: status line(s), body (architecture heat map left; genotype, resources
//! and charts right), log, key-hint footer. Panes shrink, hide or scroll as the terminal gets
//! smaller; below [`MIN_WIDTH`]×[`MIN_HEIGHT`] a "terminal too small" note replaces them.

mod charts;
mod footer;
mod genotype;
mod heatmap;
mod log_pane;
mod popups;
mod resources;
pub mod runs;
mod status;

#[cfg(test)]
mod tests;

use ratatui::Frame;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::symbols::{self, border};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

use crate::app::{App, Overlay};
use crate::space::CellType;
use crate::theme::Theme;

/// Smallest usable terminal.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 16;

/// The characters the UI draws with: Unicode, or plain ASCII when the locale is not UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Glyphs {
    pub ascii: bool,
}

const ASCII_BORDER: border::Set<'static> = border::Set {
    top_left: "+",
    top_right: "+",
    bottom_left: "+",
    bottom_right: "+",
    vertical_left: "|",
    vertical_right: "|",
    horizontal_top: "-",
    horizontal_bottom: "-",
};

impl Glyphs {
    pub const UNICODE: Glyphs = Glyphs { ascii: false };
    pub const ASCII: Glyphs = Glyphs { ascii: true };

    pub fn border(self) -> border::Set<'static> {
        if self.ascii {
            ASCII_BORDER
        } else {
            border::PLAIN
        }
    }
    /// Marks the op the search selects on an edge.
    pub fn selected(self) -> &'static str {
        if self.ascii { "*" } else { "●" }
    }
    /// Marks the best op of an edge the node drops.
    pub fn dropped(self) -> &'static str {
        if self.ascii { "o" } else { "○" }
    }
    pub fn arrow(self) -> &'static str {
        if self.ascii { "<-" } else { "←" }
    }
    pub fn sep(self) -> &'static str {
        if self.ascii { " | " } else { " · " }
    }
    pub fn spark(self) -> &'static [char] {
        if self.ascii {
            &['_', '.', ',', '-', '=', '+', '*', '#']
        } else {
            &['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█']
        }
    }
    pub fn gauge(self) -> (char, char) {
        if self.ascii {
            ('#', '.')
        } else {
            ('█', '░')
        }
    }
    pub fn spinner(self, tick: usize) -> char {
        let frames: &[char] = if self.ascii {
            &['|', '/', '-', '\\']
        } else {
            &['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧']
        };
        frames[tick % frames.len()]
    }
    pub fn line_marker(self) -> symbols::Marker {
        if self.ascii {
            symbols::Marker::Custom('*')
        } else {
            symbols::Marker::Braille
        }
    }
    pub fn point_marker(self, kind: usize) -> symbols::Marker {
        let (u, a) = [('◆', 'O'), ('·', '+')][kind % 2];
        symbols::Marker::Custom(if self.ascii { a } else { u })
    }
}

/// Everything a pane needs besides its state.
#[derive(Clone, Copy)]
pub struct Skin<'a> {
    pub theme: &'a Theme,
    pub glyphs: Glyphs,
}

impl<'a> Skin<'a> {
    /// A bordered block with a title; `focused` highlights the border.
    pub fn block(self, title: impl Into<Line<'a>>, focused: bool) -> Block<'a> {
        let t = self.theme;
        let border = if focused {
            Style::new().fg(t.border_focus).add_modifier(Modifier::BOLD)
        } else {
            Style::new().fg(t.border)
        };
        Block::bordered()
            .border_set(self.glyphs.border())
            .border_style(border)
            .title(title)
            .title_style(Style::new().fg(t.title).add_modifier(Modifier::BOLD))
    }

    pub fn text(self) -> Style {
        Style::new().fg(self.theme.text)
    }

    pub fn dim(self) -> Style {
        Style::new().fg(self.theme.dim).add_modifier(Modifier::DIM)
    }

    pub fn key(self) -> Style {
        Style::new().fg(self.theme.key).add_modifier(Modifier::BOLD)
    }
}

/// Renders the whole screen.
pub fn render(frame: &mut Frame, app: &App, theme: &Theme, glyphs: Glyphs) {
    let area = frame.area();
    let skin = Skin { theme, glyphs };
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let text = format!(
            "terminal too small: {}x{}, need {MIN_WIDTH}x{MIN_HEIGHT}\nstate: {}",
            area.width,
            area.height,
            app.state_label().text()
        );
        frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), area);
        finish(frame.buffer_mut(), glyphs);
        return;
    }
    let buf = frame.buffer_mut();
    draw(buf, area, app, skin);
    finish(buf, glyphs);
}

fn draw(buf: &mut Buffer, area: Rect, app: &App, skin: Skin) {
    let plan = Plan::new(area, app, skin.glyphs);
    status::render(buf, plan.status, app, skin);
    render_left(buf, &plan, app, skin);
    if let Some(right) = plan.right {
        render_right(buf, right, app, skin);
    }
    footer::render(buf, plan.footer, app, skin);

    match app.screen.overlay {
        Overlay::None => {}
        Overlay::Help => popups::help(buf, area, app, skin),
        Overlay::Quit(choice) => popups::quit(buf, area, app, choice, skin),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Arrangement {
    Both,
    LogLeft,
    LogBottom,
}

/// Where the parts of the screen go.
struct Plan {
    arrangement: Arrangement,
    /// Height of one cell's heat map.
    heat_h: u16,
    status: Rect,
    /// The heat map(s), and the log in [`Arrangement::LogLeft`].
    left: Rect,
    /// Genotype, resources and charts, when there is room beside the heat map.
    right: Option<Rect>,
    /// Under the body: the log, except in [`Arrangement::LogLeft`].
    bottom: Rect,
    footer: Rect,
}

impl Plan {
    fn new(area: Rect, app: &App, glyphs: Glyphs) -> Plan {
        let status_h: u16 = if area.height >= 30 { 2 } else { 1 };
        let edges = app.latest.arch.as_ref().map_or_else(
            || app.layout().edges(),
            |a| a.normal.rows.max(a.reduce.rows),
        );
        let heat_h = heatmap::height(edges);
        let avail = area.height - status_h - 1;
        let heat_w = heatmap::width(app, glyphs);
        // The stability column only where the right column keeps a useful width.
        let heat_w = if area.width >= heat_w + heatmap::HELD_WIDTH + 60 {
            heat_w + heatmap::HELD_WIDTH
        } else {
            heat_w
        };
        let has_right = area.width.saturating_sub(heat_w) >= 24;
        // Three arrangements, roomiest first:
        // - both cells stacked on the left, the log along the bottom;
        // - the focused cell on the left with the log under it, the right column full height;
        // - the focused cell on the left, the log along the bottom (80x24).
        let arrangement = if avail >= 2 * heat_h + 6 {
            Arrangement::Both
        } else if has_right && avail >= heat_h + 6 {
            Arrangement::LogLeft
        } else {
            Arrangement::LogBottom
        };
        let body_h = match arrangement {
            Arrangement::Both => 2 * heat_h,
            Arrangement::LogLeft => avail,
            Arrangement::LogBottom => {
                heat_h.min(avail.saturating_sub(3.min(avail.saturating_sub(8))))
            }
        };
        let [status, body, bottom, footer] = Layout::vertical([
            Constraint::Length(status_h),
            Constraint::Length(body_h),
            Constraint::Length(avail - body_h),
            Constraint::Length(1),
        ])
        .areas(area);
        let (left, right) = if has_right {
            let [l, r] =
                Layout::horizontal([Constraint::Length(heat_w), Constraint::Fill(1)]).areas(body);
            (l, Some(r))
        } else {
            (body, None)
        };
        Plan {
            arrangement,
            heat_h,
            status,
            left,
            right,
            bottom,
            footer,
        }
    }
}

/// The heat map(s) and the log, as the plan arranges them.
fn render_left(buf: &mut Buffer, plan: &Plan, app: &App, skin: Skin) {
    let split = || {
        let [top, low]: [Rect; 2] =
            Layout::vertical([Constraint::Length(plan.heat_h), Constraint::Fill(1)])
                .areas(plan.left);
        (top, low)
    };
    match plan.arrangement {
        Arrangement::Both => {
            let (top, low) = split();
            let focused = |c| app.cells.focused == c;
            heatmap::render(
                buf,
                top,
                app,
                CellType::Normal,
                focused(CellType::Normal),
                skin,
            );
            heatmap::render(
                buf,
                low,
                app,
                CellType::Reduce,
                focused(CellType::Reduce),
                skin,
            );
            log_pane::render(buf, plan.bottom, app, skin);
        }
        Arrangement::LogLeft => {
            let (top, low) = split();
            heatmap::render(buf, top, app, app.cells.focused, false, skin);
            log_pane::render(buf, low, app, skin);
        }
        Arrangement::LogBottom => {
            heatmap::render(buf, plan.left, app, app.cells.focused, false, skin);
            log_pane::render(buf, plan.bottom, app, skin);
        }
    }
}

fn render_right(buf: &mut Buffer, area: Rect, app: &App, skin: Skin) {
    let wide = area.width >= 80;
    let geno_h = genotype::height(app, wide);
    let res_h = resources::HEIGHT;
    let mut constraints = vec![Constraint::Length(geno_h)];
    let show_res = area.height >= geno_h + res_h;
    if show_res {
        constraints.push(Constraint::Length(res_h));
    }
    constraints.push(Constraint::Fill(1));
    let rects = Layout::vertical(constraints).split(area);
    genotype::render(buf, rects[0], app, wide, skin);
    if show_res {
        resources::render(buf, rects[1], app, skin);
    }
    let charts_area = rects[rects.len() - 1];
    if charts_area.height >= 5 {
        charts::render(buf, charts_area, app, skin);
    }
}

/// Last pass over the frame: in ASCII mode, replace anything a widget drew outside ASCII (chart
/// axes, scroll marks) so that a non-UTF-8 terminal never receives a multi-byte character.
pub(crate) fn finish(buf: &mut Buffer, glyphs: Glyphs) {
    if !glyphs.ascii {
        return;
    }
    let area = buf.area;
    for y in area.top()..area.bottom() {
        for x in area.left()..area.right() {
            let cell = &mut buf[(x, y)];
            let sym = cell.symbol();
            if !sym.is_ascii() {
                let replacement = ascii_for(sym);
                cell.set_symbol(replacement);
            }
        }
    }
}

fn ascii_for(sym: &str) -> &'static str {
    match sym.chars().next().unwrap_or(' ') {
        '─' | '━' | '═' | '╌' | '┄' => "-",
        '│' | '┃' | '║' | '╎' | '┆' => "|",
        '┌' | '┐' | '└' | '┘' | '├' | '┤' | '┬' | '┴' | '┼' | '╭' | '╮' | '╰' | '╯' => {
            "+"
        }
        '●' | '•' | '◆' => "*",
        '○' => "o",
        '·' | '…' => ".",
        '←' => "<",
        '→' => ">",
        '█' | '▇' | '▆' | '▅' => "#",
        '▄' | '▃' | '▂' | '▁' | '▀' => "=",
        '░' => ".",
        _ => "?",
    }
}

/// A line of spans, cut to `width` columns.
pub fn fit(spans: Vec<Span<'_>>, width: u16) -> Line<'_> {
    let mut left = usize::from(width);
    let mut out = Vec::with_capacity(spans.len());
    for s in spans {
        if left == 0 {
            break;
        }
        let w = s.width();
        if w <= left {
            left -= w;
            out.push(s);
        } else {
            let cut: String = s.content.chars().take(left).collect();
            out.push(Span::styled(cut, s.style));
            left = 0;
        }
    }
    Line::from(out)
}

/// Formats a byte count with binary units (`1.2 GiB`).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// How long ago, short: "12s", "5m", "3h", "2d".
pub fn age(seconds: f64) -> String {
    let s = seconds.max(0.0);
    match s {
        s if s < 120.0 => format!("{s:.0}s"),
        s if s < 7200.0 => format!("{:.0}m", s / 60.0),
        s if s < 172_800.0 => format!("{:.0}h", s / 3600.0),
        s => format!("{:.0}d", s / 86_400.0),
    }
}

/// `h:mm:ss`.
pub fn hms(d: std::time::Duration) -> String {
    let s = d.as_secs();
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}
