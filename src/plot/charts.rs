//! Line charts as SVG, laid out by plotters and written by `compact::CompactSvg`: a figure is a
//! grid of panels (each with its title and labelled axes) over one shared legend. Series differ
//! in colour and in dash or marker (`style::look`); raw values are drawn faint, a selection bold.
//! Each series is one path, thinned to what its pixels show, so a run of many thousand steps
//! draws as small a file as a short one.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::compact::{CompactSvg, Marks, Stroke, TOLERANCE};
use super::style::{FONT, GREY, INK, LABEL_SIZE, Look, TICK_SIZE, TITLE_SIZE};

/// How heavily a line is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weight {
    /// Raw values behind a smoothed line: thin and light, no markers.
    Faint,
    /// An ordinary series: its dash pattern and markers.
    Normal,
    /// A highlighted stretch (the op an edge selects): thick and solid, over the others.
    Bold,
}

/// One series of a panel.
#[derive(Debug, Clone)]
pub struct Line {
    /// Its legend entry (`None`: not in the legend).
    pub label: Option<String>,
    pub points: Vec<(f64, f64)>,
    pub look: Look,
    pub weight: Weight,
}

impl Line {
    pub fn new(label: impl Into<String>, points: Vec<(f64, f64)>, look: Look) -> Line {
        Line {
            label: Some(label.into()),
            points,
            look,
            weight: Weight::Normal,
        }
    }
}

/// One panel: a title, the axes' descriptions (with units) and its lines.
#[derive(Debug, Clone, Default)]
pub struct Panel {
    pub title: String,
    pub x_desc: String,
    pub y_desc: String,
    pub lines: Vec<Line>,
    /// Fixed y range (else the lines' own, padded).
    pub y_range: Option<(f64, f64)>,
}

/// A figure: its title, panels in `columns` columns, each `panel` pixels.
#[derive(Debug, Clone)]
pub struct Chart {
    pub title: String,
    pub panels: Vec<Panel>,
    pub columns: usize,
    pub panel: (u32, u32),
}

const TITLE_H: u32 = 36;
const LEGEND_ROW_H: u32 = 22;

fn font(size: f64) -> TextStyle<'static> {
    (FONT, size).into_font().color(&INK)
}

fn text_width(s: &str, size: f64) -> u32 {
    (s.chars().count() as f64 * size * 0.6).ceil() as u32
}

/// The legend's entries: each label once, with the look of its first line.
fn legend(chart: &Chart) -> Vec<(String, Look)> {
    let mut out: Vec<(String, Look)> = Vec::new();
    for l in chart.panels.iter().flat_map(|p| &p.lines) {
        if let Some(label) = &l.label
            && !out.iter().any(|(s, _)| s == label)
        {
            out.push((label.clone(), l.look));
        }
    }
    out
}

/// Lays the legend's entries out in rows of at most `width` pixels: (row, x) of each.
fn legend_layout(entries: &[(String, Look)], width: u32) -> Vec<(u32, u32)> {
    let (mut row, mut x) = (0, 12);
    entries
        .iter()
        .map(|(label, _)| {
            let w = 44 + text_width(label, TICK_SIZE) + 18;
            if x + w > width && x > 12 {
                row += 1;
                x = 12;
            }
            let at = (row, x);
            x += w;
            at
        })
        .collect()
}

/// The chart as an SVG document.
pub fn render(chart: &Chart) -> Result<String, String> {
    let columns = chart.columns.max(1);
    let rows = chart.panels.len().div_ceil(columns).max(1);
    let width = chart.panel.0 * columns as u32;
    let entries = legend(chart);
    let places = legend_layout(&entries, width);
    let legend_rows = places.last().map_or(0, |p| p.0 + 1);
    let height = TITLE_H + chart.panel.1 * rows as u32 + legend_rows * LEGEND_ROW_H + 8;
    let mut svg = String::new();
    {
        let root = CompactSvg::new(&mut svg, (width, height), TICK_SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let (top, rest) = root.split_vertically(TITLE_H);
        top.draw(&Text::new(
            chart.title.clone(),
            (width as i32 / 2, 10),
            font(TITLE_SIZE).pos(plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Center,
                plotters::style::text_anchor::VPos::Top,
            )),
        ))
        .map_err(|e| e.to_string())?;
        let (grid, bottom) = rest.split_vertically(chart.panel.1 * rows as u32);
        let cells = grid.split_evenly((rows, columns));
        for (p, area) in chart.panels.iter().zip(&cells) {
            draw_panel(area, p)?;
        }
        for ((label, look), (row, x)) in entries.iter().zip(&places) {
            let y = (row * LEGEND_ROW_H + LEGEND_ROW_H / 2) as i32;
            let x = *x as i32;
            draw_sample(&bottom, *look, (x, y), (x + 36, y))?;
            bottom
                .draw(&Text::new(label.clone(), (x + 44, y - 7), font(TICK_SIZE)))
                .map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// A legend's sample of a line: a stretch in its dash pattern with its marker in the middle.
fn draw_sample(
    area: &DrawingArea<CompactSvg<'_>, Shift>,
    look: Look,
    from: (i32, i32),
    to: (i32, i32),
) -> Result<(), String> {
    area.draw(&Stroke {
        runs: vec![vec![from, to]],
        colour: look.colour,
        opacity: 1.0,
        width: 2,
        dash: look.dash,
        tolerance: TOLERANCE,
    })
    .map_err(|e| e.to_string())?;
    area.draw(&Marks {
        points: vec![((from.0 + to.0) / 2, from.1)],
        colour: look.colour,
        marker: look.marker,
    })
    .map_err(|e| e.to_string())
}

/// Which of a series' `n` points carry its markers: every point of a short series; else
/// `count` spread evenly, shifted by `phase` (0 to 1) of their spacing, so that the series of
/// one panel, each with its own phase, mark different steps.
fn marked(n: usize, count: usize, phase: f64) -> Vec<usize> {
    if n <= 16 {
        return (0..n).collect();
    }
    let mut v: Vec<usize> = (0..count)
        .map(|j| (((j as f64 + phase) / count as f64) * (n - 1) as f64).round() as usize)
        .map(|i| i.min(n - 1))
        .collect();
    v.dedup();
    v
}

/// The range of `v` padded by 5 % (a flat series gets ±0.5, or ±5 % of its value).
fn padded(lo: f64, hi: f64) -> (f64, f64) {
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0);
    }
    if hi - lo < 1e-12 {
        let d = if lo.abs() > 1e-9 {
            lo.abs() * 0.05
        } else {
            0.5
        };
        return (lo - d, hi + d);
    }
    let d = (hi - lo) * 0.05;
    (lo - d, hi + d)
}

fn draw_panel(area: &DrawingArea<CompactSvg<'_>, Shift>, p: &Panel) -> Result<(), String> {
    let pts = || p.lines.iter().flat_map(|l| &l.points);
    let fold = |f: fn(f64, f64) -> f64, init: f64, sel: fn(&(f64, f64)) -> f64| {
        pts().map(sel).filter(|v| v.is_finite()).fold(init, f)
    };
    let (x0, x1) = {
        let (lo, hi) = (
            fold(f64::min, f64::INFINITY, |p| p.0),
            fold(f64::max, f64::NEG_INFINITY, |p| p.0),
        );
        if lo.is_finite() && hi > lo {
            (lo, hi)
        } else {
            padded(lo, hi)
        }
    };
    let (y0, y1) = p.y_range.unwrap_or_else(|| {
        padded(
            fold(f64::min, f64::INFINITY, |p| p.1),
            fold(f64::max, f64::NEG_INFINITY, |p| p.1),
        )
    });
    let mut chart = ChartBuilder::on(area)
        .caption(p.title.clone(), font(LABEL_SIZE))
        .margin(8)
        .margin_right(16)
        .x_label_area_size(40)
        .y_label_area_size(58)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc(p.x_desc.clone())
        .y_desc(p.y_desc.clone())
        .axis_desc_style(font(TICK_SIZE + 1.0))
        .label_style(font(TICK_SIZE))
        .x_labels(6)
        .y_labels(6)
        .x_label_formatter(&|v| tick(*v))
        .y_label_formatter(&|v| tick(*v))
        .bold_line_style(GREY.mix(0.25))
        .light_line_style(WHITE.mix(0.0))
        .axis_style(INK)
        .draw()
        .map_err(|e| e.to_string())?;
    // Faint lines first, then ordinary ones, bold stretches on top (those of one look as one
    // path); markers over the lines. A point outside a fixed y range is drawn on its edge.
    let (lo, hi) = (y0.min(y1), y0.max(y1));
    let normal = p
        .lines
        .iter()
        .filter(|l| l.weight == Weight::Normal)
        .count();
    let count = (21 / normal.max(1)).clamp(3, 8);
    let mut marks = Vec::new();
    let mut strokes: Vec<Stroke<(f64, f64)>> = Vec::new();
    for weight in [Weight::Faint, Weight::Normal, Weight::Bold] {
        for l in p.lines.iter().filter(|l| l.weight == weight) {
            let points: Vec<(f64, f64)> = l
                .points
                .iter()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .map(|&(x, y)| (x, y.clamp(lo, hi)))
                .collect();
            let (opacity, width, dash, tolerance) = match weight {
                Weight::Faint => (0.3, 1, None, 0.0),
                Weight::Normal => (1.0, 2, l.look.dash, TOLERANCE),
                Weight::Bold => (1.0, 4, None, TOLERANCE),
            };
            if weight == Weight::Normal {
                let phase = (marks.len() as f64 + 0.5) / normal as f64;
                marks.push(Marks {
                    points: marked(points.len(), count, phase)
                        .into_iter()
                        .map(|i| points[i])
                        .collect(),
                    colour: l.look.colour,
                    marker: l.look.marker,
                });
            }
            match strokes.last_mut() {
                Some(s)
                    if weight == Weight::Bold && s.width == width && s.colour == l.look.colour =>
                {
                    s.runs.push(points);
                }
                _ => strokes.push(Stroke {
                    runs: vec![points],
                    colour: l.look.colour,
                    opacity,
                    width,
                    dash,
                    tolerance,
                }),
            }
        }
    }
    chart.draw_series(strokes).map_err(|e| e.to_string())?;
    chart.draw_series(marks).map_err(|e| e.to_string())?;
    Ok(())
}

/// A tick label: few digits, no trailing zeros.
fn tick(v: f64) -> String {
    let a = v.abs();
    let s = if a >= 1000.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 0.1 {
        format!("{v:.2}")
    } else if a >= 0.001 {
        format!("{v:.4}")
    } else {
        format!("{v:.1e}")
    };
    if s.contains('.') && !s.contains('e') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::style::look;

    #[test]
    fn ticks_are_short() {
        assert_eq!(tick(0.0), "0");
        assert_eq!(tick(2500.0), "2500");
        assert_eq!(tick(12.5), "12.5");
        assert_eq!(tick(0.25), "0.25");
        assert_eq!(tick(0.005), "0.005");
        assert_eq!(tick(0.00001), "1.0e-5");
    }

    #[test]
    fn a_chart_has_its_title_axes_and_legend() {
        let chart = Chart {
            title: "run (nasp): loss".into(),
            panels: vec![Panel {
                title: "loss".into(),
                x_desc: "step".into(),
                y_desc: "cross-entropy (nats)".into(),
                lines: vec![
                    Line::new("train", vec![(0.0, 2.0), (10.0, 1.0)], look(0)),
                    Line::new("valid", vec![(5.0, 1.5), (10.0, 1.2)], look(1)),
                ],
                y_range: None,
            }],
            columns: 1,
            panel: (400, 300),
        };
        let svg = render(&chart).unwrap();
        // plotters writes each text on a line of its own.
        for t in [
            "run (nasp): loss",
            "cross-entropy (nats)",
            "\nstep\n",
            "\ntrain\n",
            "\nvalid\n",
        ] {
            assert!(svg.contains(t), "{t} missing");
        }
        assert_eq!(
            svg,
            render(&chart).unwrap(),
            "the same chart, the same bytes"
        );
    }
}
