//! The current derived cell(s) as an aligned list: `node 2: sep_conv_3x3 ← 0, skip_connect ← 1`
//! (abbreviated, `2: sep3←0 skip←1`, when the pane is narrow).

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::Span;
use ratatui::widgets::{Paragraph, Widget};

use super::{Skin, fit};
use crate::app::App;
use crate::space::CellType;

/// Rows the pane wants.
pub fn height(app: &App, _wide: bool) -> u16 {
    u16::try_from(app.nodes()).unwrap_or(8) + 2
}

pub fn render(buf: &mut Buffer, area: Rect, app: &App, wide: bool, skin: Skin) {
    if wide {
        let [l, r] = Layout::horizontal([Constraint::Fill(1), Constraint::Fill(1)]).areas(area);
        render_cell(buf, l, app, CellType::Normal, skin);
        render_cell(buf, r, app, CellType::Reduce, skin);
    } else {
        render_cell(buf, area, app, app.cell, skin);
    }
}

/// The lines of one cell, full names when they fit in `width`, else abbreviated.
pub fn lines(genes: &[(String, usize)], nodes: usize, width: usize, arrow: &str) -> Vec<String> {
    let pairs: Vec<&[(String, usize)]> = genes.chunks(2).take(nodes).collect();
    let full = |abbrev: bool| -> Vec<String> {
        let name = |op: &str| {
            if abbrev {
                crate::space::label(op)
            } else {
                op.to_string()
            }
        };
        let w0 = pairs
            .iter()
            .filter_map(|p| p.first())
            .map(|(o, _)| name(o).chars().count())
            .max()
            .unwrap_or(0);
        pairs
            .iter()
            .enumerate()
            .map(|(n, p)| {
                let parts: Vec<String> = p
                    .iter()
                    .enumerate()
                    .map(|(j, (op, input))| {
                        let nm = name(op);
                        if abbrev {
                            format!("{nm}{arrow}{input}")
                        } else if j == 0 {
                            format!("{nm:<w0$} {arrow} {input}")
                        } else {
                            format!("{nm} {arrow} {input}")
                        }
                    })
                    .collect();
                if abbrev {
                    format!("{}: {}", n + 2, parts.join(" "))
                } else {
                    format!("node {}: {}", n + 2, parts.join(", "))
                }
            })
            .collect()
    };
    let long = full(false);
    if long.iter().all(|l| l.chars().count() <= width) {
        long
    } else {
        full(true)
    }
}

fn render_cell(buf: &mut Buffer, area: Rect, app: &App, cell: CellType, skin: Skin) {
    let block = skin.block(format!(" {} genotype ", cell.name()), false);
    let inner = block.inner(area);
    block.render(area, buf);
    let Some(snap) = &app.arch else {
        Paragraph::new(Span::styled("no architecture yet", skin.dim())).render(inner, buf);
        return;
    };
    let genes = match cell {
        CellType::Normal => &snap.genotype.normal,
        CellType::Reduce => &snap.genotype.reduce,
    };
    let text = lines(
        genes,
        app.nodes(),
        usize::from(inner.width),
        skin.glyphs.arrow(),
    );
    for (i, l) in text.into_iter().enumerate().take(usize::from(inner.height)) {
        let row = Rect {
            y: inner.y + u16::try_from(i).unwrap_or(0),
            height: 1,
            ..inner
        };
        fit(
            vec![Span::styled(l, Style::new().fg(skin.theme.text))],
            inner.width,
        )
        .render(row, buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_full_names_or_abbreviations() {
        let genes: Vec<(String, usize)> = [
            ("sep_conv_3x3", 0),
            ("skip_connect", 1),
            ("dil_conv_5x5", 2),
            ("sep_conv_3x3", 0),
        ]
        .iter()
        .map(|(o, i)| ((*o).to_string(), *i))
        .collect();
        let wide = lines(&genes, 2, 80, "←");
        assert_eq!(
            wide,
            vec![
                "node 2: sep_conv_3x3 ← 0, skip_connect ← 1",
                "node 3: dil_conv_5x5 ← 2, sep_conv_3x3 ← 0"
            ]
        );
        let narrow = lines(&genes, 2, 24, "<-");
        assert_eq!(narrow, vec!["2: sep3<-0 skip<-1", "3: dil5<-2 sep3<-0"]);
    }
}
