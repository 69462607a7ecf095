//! The log: worker messages, checkpoints, exported paths, errors. Long lines wrap; the newest
//! line sits at the bottom unless the user scrolled back (PgUp/PgDn).

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::Span;
use ratatui::widgets::Widget;

use super::{Skin, fit};
use crate::app::App;
use crate::protocol::Level;

pub fn render(buf: &mut Buffer, area: Rect, app: &App, skin: Skin) {
    let t = skin.theme;
    let title = if app.log.scroll > 0 {
        format!(" log (scrolled back {}) ", app.log.scroll)
    } else {
        " log ".to_string()
    };
    let block = skin.block(title, false);
    let inner = block.inner(area);
    block.render(area, buf);
    let width = usize::from(inner.width).max(1);
    let height = usize::from(inner.height);
    if height == 0 {
        return;
    }
    // Wrap the newest lines until the pane is full (scrolled back by `log_scroll` lines).
    let mut rows: Vec<(String, Style)> = Vec::new();
    let end = app.log.lines.len().saturating_sub(app.log.scroll);
    for line in app.log.lines.iter().take(end).rev() {
        let style = match line.level {
            Level::Info => Style::new().fg(t.info),
            Level::Warn => Style::new().fg(t.warn),
            Level::Error => Style::new().fg(t.error).add_modifier(Modifier::BOLD),
        };
        // The plain text with the level's prefix (`warning: `, `error: `), as headless prints it.
        let text = line.to_string();
        let chars: Vec<char> = text.chars().collect();
        let pieces: Vec<String> = chars.chunks(width).map(|c| c.iter().collect()).collect();
        if rows.len() + pieces.len() > height {
            if rows.is_empty() {
                // The newest line alone is taller than the pane: show its beginning.
                rows.extend(pieces.into_iter().take(height).rev().map(|p| (p, style)));
            }
            // Never show the tail of a line without its start.
            break;
        }
        rows.extend(pieces.into_iter().rev().map(|p| (p, style)));
    }
    rows.reverse();
    for (i, (text, style)) in rows.into_iter().enumerate() {
        let row = Rect {
            y: inner.y + u16::try_from(i).unwrap_or(0),
            height: 1,
            ..inner
        };
        fit(vec![Span::styled(text, style)], inner.width).render(row, buf);
    }
}
