//! Resources: process RSS, and the GPU (device used/total, utilisation, this process's share) or
//! "no GPU".

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::Span;
use ratatui::widgets::Widget;

use super::{Skin, bytes, fit};
use crate::app::{App, GpuSample};

/// Rows the pane takes (three lines and the border).
pub const HEIGHT: u16 = 5;

/// The three lines of the pane.
pub fn lines(app: &App) -> [String; 3] {
    let Some(r) = &app.latest.resources else {
        return ["RSS  ...".into(), "GPU  ...".into(), String::new()];
    };
    let rss = format!(
        "RSS  {}",
        r.rss_bytes.map_or_else(|| "n/a".to_string(), bytes)
    );
    match &r.gpu {
        GpuSample::NotUsed => [rss, "GPU  no GPU".into(), String::new()],
        GpuSample::Unavailable(why) => [rss, "GPU  no GPU".into(), format!("     ({why})")],
        GpuSample::Device {
            index,
            name,
            used_bytes,
            total_bytes,
            util_percent,
            process_bytes,
        } => {
            let util = util_percent.map_or_else(String::new, |u| format!(", util {u}%"));
            [
                rss,
                format!(
                    "GPU{index} {}/{}{util}",
                    bytes(*used_bytes),
                    bytes(*total_bytes)
                ),
                format!(
                    "proc {} (incl. cache){}",
                    process_bytes.map_or_else(|| "n/a".to_string(), bytes),
                    if name.is_empty() {
                        String::new()
                    } else {
                        format!(" {name}")
                    }
                ),
            ]
        }
    }
}

pub fn render(buf: &mut Buffer, area: Rect, app: &App, skin: Skin) {
    let block = skin.block(" resources ", false);
    let inner = block.inner(area);
    block.render(area, buf);
    let style = Style::new().fg(skin.theme.text);
    for (i, l) in lines(app)
        .into_iter()
        .enumerate()
        .take(usize::from(inner.height))
    {
        let row = Rect {
            y: inner.y + u16::try_from(i).unwrap_or(0),
            height: 1,
            ..inner
        };
        fit(vec![Span::styled(l, style)], inner.width).render(row, buf);
    }
}
