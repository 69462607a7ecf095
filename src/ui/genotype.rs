//! The current derived cell(s) as an aligned list: `node 2: sep_conv_3x3 ← 0, skip_connect ← 1`
//! (abbreviated, `2: sep3←0 skip←1`, when the pane is narrow).

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout as Split, Rect};
use ratatui::style::Style;
use ratatui::text::Span;
use ratatui::widgets::{Paragraph, Widget};

use super::{Skin, fit};
use crate::app::App;
use crate::arch::Layout;
use crate::protocol::BenchmarkScore;
use crate::space::CellType;

/// Rows the pane wants.
pub fn height(app: &App, _wide: bool) -> u16 {
    u16::try_from(app.nodes()).unwrap_or(8) + 2
}

pub fn render(buf: &mut Buffer, area: Rect, app: &App, wide: bool, skin: Skin) {
    let nb201 = app.layout() == Layout::Nb201;
    if wide {
        let [l, r] = Split::horizontal([Constraint::Fill(1), Constraint::Fill(1)]).areas(area);
        render_cell(buf, l, app, CellType::Normal, skin);
        if nb201 {
            render_benchmark(buf, r, app, skin);
        } else {
            render_cell(buf, r, app, CellType::Reduce, skin);
        }
    } else if nb201 && app.cells.focused == CellType::Reduce {
        render_benchmark(buf, area, app, skin);
    } else {
        render_cell(buf, area, app, app.cells.focused, skin);
    }
}

/// The lines of one DARTS-style cell (two (op, input) pairs per node, nodes from 2), full names
/// when they fit in `width`, else abbreviated.
pub fn lines(genes: &[(String, usize)], nodes: usize, width: usize, arrow: &str) -> Vec<String> {
    let groups: Vec<(usize, &[(String, usize)])> = genes
        .chunks(2)
        .take(nodes)
        .enumerate()
        .map(|(n, p)| (n + 2, p))
        .collect();
    group_lines(&groups, width, arrow)
}

/// The lines of a NAS-Bench-201 cell: node n (from 1) reads every earlier node.
pub fn nb201_lines(genes: &[(String, usize)], width: usize, arrow: &str) -> Vec<String> {
    let groups: Vec<(usize, &[(String, usize)])> = (1..=crate::nb201::NODES)
        .filter_map(|n| genes.get(crate::nb201::node_rows(n)).map(|g| (n, g)))
        .collect();
    group_lines(&groups, width, arrow)
}

/// One line per (node, its (op, input) pairs).
fn group_lines(groups: &[(usize, &[(String, usize)])], width: usize, arrow: &str) -> Vec<String> {
    let full = |abbrev: bool| -> Vec<String> {
        let name = |op: &str| {
            if abbrev {
                crate::space::label(op)
            } else {
                op.to_string()
            }
        };
        let w0 = groups
            .iter()
            .filter_map(|(_, p)| p.first())
            .map(|(o, _)| name(o).chars().count())
            .max()
            .unwrap_or(0);
        groups
            .iter()
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
                    format!("{n}: {}", parts.join(" "))
                } else {
                    format!("node {n}: {}", parts.join(", "))
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

/// What NAS-Bench-201 says of the cell derived now (an nb201 run).
pub fn benchmark_lines(b: &BenchmarkScore) -> Vec<String> {
    vec![
        format!(
            "{} test {:.2} % · rank {} of {}",
            b.dataset, b.accuracy, b.rank, b.cells
        ),
        "the benchmark's own training of this cell (a lookup)".to_string(),
        b.arch.clone(),
    ]
}

fn render_benchmark(buf: &mut Buffer, area: Rect, app: &App, skin: Skin) {
    let block = skin.block(" NAS-Bench-201 ", false);
    let inner = block.inner(area);
    block.render(area, buf);
    let text = match app.latest.arch.as_ref().and_then(|a| a.benchmark.as_ref()) {
        Some(b) => benchmark_lines(b),
        None => vec!["no architecture yet".to_string()],
    };
    draw_lines(buf, inner, text, skin);
}

fn draw_lines(buf: &mut Buffer, inner: Rect, text: Vec<String>, skin: Skin) {
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

fn render_cell(buf: &mut Buffer, area: Rect, app: &App, cell: CellType, skin: Skin) {
    let block = skin.block(format!(" {} genotype ", cell.name()), false);
    let inner = block.inner(area);
    block.render(area, buf);
    let Some(snap) = &app.latest.arch else {
        Paragraph::new(Span::styled("no architecture yet", skin.dim())).render(inner, buf);
        return;
    };
    let genes = match cell {
        CellType::Normal => &snap.genotype.normal,
        CellType::Reduce => &snap.genotype.reduce,
    };
    let (width, arrow) = (usize::from(inner.width), skin.glyphs.arrow());
    let text = match app.layout() {
        Layout::Nb201 => nb201_lines(genes, width, arrow),
        Layout::Darts { nodes } => lines(genes, nodes, width, arrow),
    };
    draw_lines(buf, inner, text, skin);
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
