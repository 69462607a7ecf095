//! Popups: the `?` help (generated from the keymap table) and the quit dialog.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::Span;
use ratatui::widgets::{Clear, Widget};

use super::{Skin, fit};
use crate::app::keymap::{Action, Context, Section};
use crate::app::{App, QuitChoice};

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

/// The help lines: (section title or key text, help text).
fn help_rows(app: &App) -> Vec<(String, &'static str, bool)> {
    let mut rows = Vec::new();
    let mut sections = vec![Section::Training, Section::Navigation, Section::General];
    if app.replay.is_some() {
        sections.insert(0, Section::Replay);
    }
    for section in sections {
        rows.push((section.title().to_string(), "", true));
        for b in app.keymap().bindings().iter().filter(|b| {
            b.section == section && matches!(b.context, Context::Main | Context::Replay)
        }) {
            let keys = b
                .keys
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("/");
            rows.push((keys, b.help, false));
        }
    }
    rows
}

pub fn help(buf: &mut Buffer, area: Rect, app: &App, skin: Skin) {
    let rows = help_rows(app);
    let key_w = rows
        .iter()
        .filter(|r| !r.2)
        .map(|r| r.0.chars().count())
        .max()
        .unwrap_or(8);
    let text_w = rows.iter().map(|r| r.1.len()).max().unwrap_or(20);
    let col_w = key_w + text_w + 4;
    // Too many keys for the terminal's height: two columns side by side (texts cut to fit)
    // rather than keys that silently fall off the bottom.
    let columns = if rows.len() + 2 > usize::from(area.height) {
        2
    } else {
        1
    };
    let per_column = rows.len().div_ceil(columns);
    let width = u16::try_from(columns * col_w + 2 + (columns - 1)).unwrap_or(80);
    let height = u16::try_from(per_column + 2).unwrap_or(40);
    let rect = centered(area, width.min(area.width), height);
    Clear.render(rect, buf);
    let block = skin.block(" keys (? or Esc closes) ", true);
    let inner = block.inner(rect);
    block.render(rect, buf);
    let col_width = (inner.width.saturating_sub(u16::from(columns > 1))) / columns as u16;
    for (i, (keys, text, is_section)) in rows.into_iter().enumerate() {
        let (col, r) = (i / per_column, i % per_column);
        if r >= usize::from(inner.height) {
            continue;
        }
        let row = Rect {
            x: inner.x + u16::try_from(col).unwrap_or(0) * (col_width + 1),
            y: inner.y + u16::try_from(r).unwrap_or(0),
            width: col_width,
            height: 1,
        };
        let line = if is_section {
            vec![Span::styled(
                keys,
                Style::new()
                    .fg(skin.theme.title)
                    .add_modifier(Modifier::BOLD | Modifier::UNDERLINED),
            )]
        } else {
            vec![
                Span::styled(format!(" {keys:<key_w$}  "), skin.key()),
                Span::styled(text, skin.text()),
            ]
        };
        fit(line, col_width).render(row, buf);
    }
}

pub fn quit(buf: &mut Buffer, area: Rect, app: &App, choice: QuitChoice, skin: Skin) {
    let rect = centered(area, 58, 7);
    Clear.render(rect, buf);
    let block = skin.block(" quit ", true);
    let inner = block.inner(rect);
    block.render(rect, buf);
    let line = |i: u16| Rect {
        y: inner.y + i,
        height: 1,
        ..inner
    };
    if inner.height < 3 {
        return;
    }
    let question = if app.is_watcher() {
        " Leave the watcher? The search goes on unless stopped."
    } else if app.training() {
        " Stop the training?"
    } else {
        " Stop the search?"
    };
    fit(
        vec![Span::styled(
            question,
            skin.text().add_modifier(Modifier::BOLD),
        )],
        inner.width,
    )
    .render(line(0), buf);
    let mut buttons = vec![Span::raw(" ")];
    for &c in app.quit_choices() {
        let style = if c == choice {
            Style::new()
                .fg(skin.theme.accent)
                .add_modifier(Modifier::BOLD | Modifier::REVERSED)
        } else {
            skin.text()
        };
        let mark = if c == choice { ">" } else { " " };
        buttons.push(Span::styled(format!("{mark}[ {} ]", c.label()), style));
        buttons.push(Span::raw(" "));
    }
    fit(buttons, inner.width).render(line(2), buf);
    if inner.height >= 5 {
        let km = app.keymap();
        let k = |a: Action| {
            km.first_key(a)
                .map_or_else(|| "-".to_string(), |k| k.to_string())
        };
        let hint = if app.is_watcher() {
            format!(
                " {}: leave  {}: stop search & save  {}: cancel  {}: choose",
                k(Action::Leave),
                k(Action::SaveQuit),
                k(Action::Cancel),
                k(Action::Confirm)
            )
        } else {
            format!(
                " {}: save & quit  {}: quit  {}: cancel  {}: choose",
                k(Action::SaveQuit),
                k(Action::QuitNoSave),
                k(Action::Cancel),
                k(Action::Confirm)
            )
        };
        fit(vec![Span::styled(hint, skin.dim())], inner.width).render(line(4), buf);
    }
}
