//! One line of key hints, generated from the keymap table.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::text::Span;
use ratatui::widgets::Widget;

use super::{Skin, fit};
use crate::app::App;
use crate::app::keymap::Context;

pub fn render(buf: &mut Buffer, area: Rect, app: &App, skin: Skin) {
    let mut spans = Vec::new();
    let replay = app.replay.is_some();
    for b in app
        .keymap()
        .bindings()
        .iter()
        .filter(|b| b.context == Context::Main || (replay && b.context == Context::Replay))
    {
        let (Some(hint), Some(key)) = (b.hint, b.keys.first()) else {
            continue;
        };
        spans.push(Span::styled(format!(" {key}"), skin.key()));
        spans.push(Span::styled(format!(" {hint} "), skin.dim()));
    }
    fit(spans, area.width).render(area, buf);
}
