//! Line charts as SVG, drawn with plotters' SVG backend: a figure is a grid of panels (each with
//! its title and labelled axes) over one shared legend. Series differ in colour and in dash or
//! marker (`style::look`); raw values are drawn faint, a selection bold.

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::element::DashedPathElement;
use plotters::prelude::*;

use super::style::{FONT, GREY, INK, LABEL_SIZE, Look, Marker, TICK_SIZE, TITLE_SIZE};

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
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
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
            let line = Line {
                label: None,
                points: Vec::new(),
                look: *look,
                weight: Weight::Normal,
            };
            draw_sample(&bottom, &line, (x, y), (x + 36, y))?;
            bottom
                .draw(&Text::new(label.clone(), (x + 44, y - 7), font(TICK_SIZE)))
                .map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// A legend's sample of a line: a stretch in its dash pattern with its marker in the middle.
fn draw_sample<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    line: &Line,
    from: (i32, i32),
    to: (i32, i32),
) -> Result<(), String> {
    let style = ShapeStyle::from(&line.look.colour).stroke_width(2);
    match line.look.dash {
        None => area
            .draw(&PathElement::new(vec![from, to], style))
            .map_err(|e| e.to_string())?,
        Some((a, b)) => area
            .draw(&DashedPathElement::new(
                vec![from, to],
                a as i32,
                b as i32,
                style,
            ))
            .map_err(|e| e.to_string())?,
    }
    let mid = ((from.0 + to.0) / 2, from.1);
    draw_marker(area, line.look, mid)
}

/// A marker drawn in pixel coordinates of `area`.
fn draw_marker<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    look: Look,
    at: (i32, i32),
) -> Result<(), String> {
    let style = ShapeStyle::from(&look.colour).stroke_width(2);
    let fill = style.filled();
    let r = match look.marker {
        Marker::Circle => area.draw(&Circle::new(at, 4, fill)),
        Marker::Triangle => area.draw(&TriangleMarker::new(at, 5, fill)),
        Marker::Square => area.draw(&Rectangle::new(
            [(at.0 - 4, at.1 - 4), (at.0 + 4, at.1 + 4)],
            fill,
        )),
        Marker::Cross => area.draw(&Cross::new(at, 4, style)),
    };
    r.map_err(|e| e.to_string())
}

/// Markers at `points` of a chart's coordinates.
fn draw_markers<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    points: &[(f64, f64)],
    look: Look,
) -> Result<(), String> {
    let style = ShapeStyle::from(&look.colour).stroke_width(2);
    let fill = style.filled();
    let at = |p: &(f64, f64)| EmptyElement::at(*p);
    let r = match look.marker {
        Marker::Circle => chart
            .draw_series(points.iter().map(|p| at(p) + Circle::new((0, 0), 4, fill)))
            .map(|_| ()),
        Marker::Triangle => chart
            .draw_series(
                points
                    .iter()
                    .map(|p| at(p) + TriangleMarker::new((0, 0), 5, fill)),
            )
            .map(|_| ()),
        Marker::Square => chart
            .draw_series(
                points
                    .iter()
                    .map(|p| at(p) + Rectangle::new([(-4, -4), (4, 4)], fill)),
            )
            .map(|_| ()),
        Marker::Cross => chart
            .draw_series(points.iter().map(|p| at(p) + Cross::new((0, 0), 4, style)))
            .map(|_| ()),
    };
    r.map_err(|e| e.to_string())
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

fn draw_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, p: &Panel) -> Result<(), String> {
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
    // Faint lines first, then ordinary ones, bold stretches on top.
    for weight in [Weight::Faint, Weight::Normal, Weight::Bold] {
        for l in p.lines.iter().filter(|l| l.weight == weight) {
            let points: Vec<(f64, f64)> = l
                .points
                .iter()
                .copied()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .collect();
            let colour = l.look.colour;
            match weight {
                Weight::Faint => {
                    chart
                        .draw_series(LineSeries::new(points, colour.mix(0.3).stroke_width(1)))
                        .map_err(|e| e.to_string())?;
                }
                Weight::Bold => {
                    chart
                        .draw_series(LineSeries::new(points, colour.stroke_width(4)))
                        .map_err(|e| e.to_string())?;
                }
                Weight::Normal => {
                    let style = colour.stroke_width(2);
                    match l.look.dash {
                        None => chart
                            .draw_series(LineSeries::new(points.clone(), style))
                            .map(|_| ()),
                        Some((a, b)) => chart
                            .draw_series(DashedLineSeries::new(
                                points.clone(),
                                a as i32,
                                b as i32,
                                style,
                            ))
                            .map(|_| ()),
                    }
                    .map_err(|e| e.to_string())?;
                    // Markers: every point of a short series, about eight along a long one.
                    let every = points.len().div_ceil(8).max(1);
                    let marked: Vec<(f64, f64)> = points
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| i % every == 0 || i + 1 == points.len())
                        .map(|(_, p)| *p)
                        .collect();
                    draw_markers(&mut chart, &marked, l.look)?;
                }
            }
        }
    }
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
