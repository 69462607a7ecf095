//! Loss and accuracy over global steps: train loss and architecture (validation-batch) loss;
//! train accuracy per step, validation accuracy per epoch, and in an NB201 search the
//! benchmark's test accuracy of the cell derived at each snapshot (a training run, `nasp-tui train`:
//! the test set's loss and accuracy per epoch). Each series has its own marker as
//! well as colour, and the legend lives in the title, so `mono` keeps them apart. Line series
//! draw their raw points dimmed under an exponential moving average (TensorBoard's debiased
//! smoothing, the weight in the title, `s` changes it; 0 draws the raw line).

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Chart, Dataset, GraphType, Paragraph, Widget};

use super::Skin;
use crate::app::{App, History};

pub fn render(buf: &mut Buffer, area: Rect, app: &App, skin: Skin) {
    if area.width >= 80 {
        let [l, r] = Layout::horizontal([Constraint::Fill(1), Constraint::Fill(1)]).areas(area);
        loss(buf, l, app, skin);
        accuracy(buf, r, app, skin);
    } else if area.height >= 14 {
        let [t, b] = Layout::vertical([Constraint::Fill(1), Constraint::Fill(1)]).areas(area);
        loss(buf, t, app, skin);
        accuracy(buf, b, app, skin);
    } else {
        accuracy(buf, area, app, skin);
    }
}

struct Series<'a> {
    name: &'a str,
    history: &'a History,
    colour: ratatui::style::Color,
    /// None: a line; Some(kind): scatter points with marker `kind`.
    points: Option<usize>,
}

fn loss(buf: &mut Buffer, area: Rect, app: &App, skin: Skin) {
    let t = skin.theme;
    // A search charts its architecture (validation-batch) loss; a training run (`nasp-tui
    // train`) its test loss per epoch.
    let second = if app.training() {
        Series {
            name: "test/epoch",
            history: &app.charts.valid_loss,
            colour: t.valid,
            points: Some(0),
        }
    } else {
        Series {
            name: "arch",
            history: &app.charts.arch_loss,
            colour: t.arch,
            points: Some(1),
        }
    };
    chart(
        buf,
        area,
        "loss",
        &[
            Series {
                name: "train",
                history: &app.charts.train_loss,
                colour: t.train,
                points: None,
            },
            second,
        ],
        None,
        app.charts.smoothing,
        skin,
    );
}

fn accuracy(buf: &mut Buffer, area: Rect, app: &App, skin: Skin) {
    let t = skin.theme;
    let mut series = vec![
        Series {
            name: "train",
            history: &app.charts.train_acc,
            colour: t.train,
            points: None,
        },
        Series {
            name: if app.training() {
                "test/epoch"
            } else {
                "valid/epoch"
            },
            history: &app.charts.valid_acc,
            colour: t.valid,
            points: Some(0),
        },
    ];
    // An NB201 search: the benchmark's test accuracy of the cell derived at each snapshot
    // (a lookup, drawn as points: it is a step function, not to be smoothed).
    if !app.charts.bench_acc.points().is_empty() {
        series.push(Series {
            name: "NB201 (lookup)",
            history: &app.charts.bench_acc,
            colour: t.arch,
            points: Some(1),
        });
    }
    chart(
        buf,
        area,
        "accuracy",
        &series,
        Some((0.0, 1.0)),
        app.charts.smoothing,
        skin,
    );
}

/// Exponential moving average, debiased at the start (TensorBoard's smoothing).
pub fn smooth(points: &[(f64, f64)], weight: f64) -> Vec<(f64, f64)> {
    let mut avg = 0.0;
    let mut norm = 0.0;
    points
        .iter()
        .map(|&(x, y)| {
            avg = avg * weight + (1.0 - weight) * y;
            norm = norm * weight + (1.0 - weight);
            (x, avg / norm)
        })
        .collect()
}

fn chart(
    buf: &mut Buffer,
    area: Rect,
    title: &str,
    series: &[Series],
    clamp: Option<(f64, f64)>,
    smoothing: f64,
    skin: Skin,
) {
    let g = skin.glyphs;
    let title = if smoothing > 0.0 {
        format!("{title} (smooth {smoothing:.2})")
    } else {
        title.to_string()
    };
    let block = skin.block(title_line(&title, series, skin), false);
    let data: Vec<Vec<(f64, f64)>> = series.iter().map(|s| s.history.points()).collect();
    let smoothed: Vec<Option<Vec<(f64, f64)>>> = series
        .iter()
        .zip(&data)
        .map(|(s, d)| (s.points.is_none() && smoothing > 0.0).then(|| smooth(d, smoothing)))
        .collect();
    if data.iter().all(Vec::is_empty) {
        let inner = block.inner(area);
        block.render(area, buf);
        Paragraph::new(Span::styled("no data yet", skin.dim())).render(inner, buf);
        return;
    }
    let ([x0, x1], [y0, y1]) = bounds(&data, clamp);
    let mut datasets: Vec<Dataset> = Vec::new();
    for ((s, d), sm) in series.iter().zip(&data).zip(&smoothed) {
        let ds = Dataset::default().data(d).style(Style::new().fg(s.colour));
        datasets.push(match (s.points, sm) {
            (Some(k), _) => ds.marker(g.point_marker(k)).graph_type(GraphType::Scatter),
            (None, None) => ds.marker(g.line_marker()).graph_type(GraphType::Line),
            // Raw points dimmed, the smoothed line over them.
            (None, Some(_)) => ds
                .marker(g.line_marker())
                .graph_type(GraphType::Scatter)
                .style(
                    Style::new()
                        .fg(s.colour)
                        .add_modifier(ratatui::style::Modifier::DIM),
                ),
        });
    }
    for (s, sm) in series.iter().zip(&smoothed) {
        if let Some(sm) = sm {
            datasets.push(
                Dataset::default()
                    .data(sm)
                    .style(Style::new().fg(s.colour))
                    .marker(g.line_marker())
                    .graph_type(GraphType::Line),
            );
        }
    }
    let label = |v: f64| Span::styled(format!("{v:.2}"), skin.dim());
    let step_label = |v: f64| Span::styled(format!("{v:.0}"), skin.dim());
    Chart::new(datasets)
        .block(block)
        .legend_position(None)
        .x_axis(
            Axis::default()
                .bounds([x0, x1])
                .labels([step_label(x0), step_label(x1)])
                .style(skin.dim()),
        )
        .y_axis(
            Axis::default()
                .bounds([y0, y1])
                .labels([label(y0), label(y1)])
                .style(skin.dim()),
        )
        .render(area, buf);
}

/// The title with the legend: each series' marker and name in its colour.
fn title_line<'a>(title: &str, series: &[Series], skin: Skin) -> Line<'a> {
    let g = skin.glyphs;
    let marker_char = |s: &Series| match s.points {
        None if g.ascii => "*".to_string(),
        None => "─".to_string(),
        Some(k) => match g.point_marker(k) {
            ratatui::symbols::Marker::Custom(c) => c.to_string(),
            _ => "o".to_string(),
        },
    };
    let mut title_spans = vec![Span::raw(format!(" {title} "))];
    for s in series {
        title_spans.push(Span::styled(
            format!("{} {} ", marker_char(s), s.name),
            Style::new().fg(s.colour),
        ));
    }
    Line::from(title_spans)
}

/// The axes' bounds: all points, x widened when it is one step, y padded by 5 % and kept inside
/// `clamp` (accuracy stays within 0..1).
fn bounds(data: &[Vec<(f64, f64)>], clamp: Option<(f64, f64)>) -> ([f64; 2], [f64; 2]) {
    let all = data.iter().flatten();
    let (x0, x1, y0, y1) = all.fold(
        (
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ),
        |(a, b, c, d), p| (a.min(p.0), b.max(p.0), c.min(p.1), d.max(p.1)),
    );
    let (x0, x1) = if x1 > x0 {
        (x0, x1)
    } else {
        (x0 - 1.0, x0 + 1.0)
    };
    let pad = ((y1 - y0) * 0.05).max(1e-3);
    let (mut y0, mut y1) = (y0 - pad, y1 + pad);
    if let Some((lo, hi)) = clamp {
        y0 = y0.max(lo);
        y1 = y1.min(hi);
        if y1 <= y0 {
            (y0, y1) = (lo, hi);
        }
    }
    ([x0, x1], [y0, y1])
}
