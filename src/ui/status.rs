//! Status: the state as text, progress, speed; segments that do not fit are dropped, least
//! important first. The global step count always shows as `step N` (scripts and the end-to-end
//! test read it).

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;

use super::{Skin, fit, hms};
use crate::app::{App, Phase, StateLabel};

/// A piece of the status line with its drop priority (higher survives longer).
struct Segment<'a> {
    spans: Vec<Span<'a>>,
    keep: u8,
}

fn seg<'a>(keep: u8, spans: Vec<Span<'a>>) -> Segment<'a> {
    Segment { spans, keep }
}

pub fn render(buf: &mut Buffer, area: Rect, app: &App, skin: Skin) {
    let line = pack(segments(app, area.height, skin), area.width);
    line.render(Rect { height: 1, ..area }, buf);
    if area.height >= 2 {
        let second = Rect {
            y: area.y + 1,
            height: 1,
            ..area
        };
        progress_line(app, second.width, skin).render(second, buf);
    }
}

/// Every segment of the first status row, in display order (`pack` drops what does not fit).
fn segments(app: &App, rows: u16, skin: Skin) -> Vec<Segment<'static>> {
    let text = skin.text();
    let accent = Style::new()
        .fg(skin.theme.accent)
        .add_modifier(Modifier::BOLD);
    let sep = Span::styled(skin.glyphs.sep(), skin.dim());

    let mut segs: Vec<Segment> = vec![seg(9, vec![state_span(app.state_label(), skin)])];
    if let Some(r) = &app.replay {
        let c = r.cursor();
        let t = hms(std::time::Duration::from_secs_f64(c.seconds.max(0.0)));
        segs.push(seg(
            9,
            vec![Span::styled(
                format!(" at {t} (event {}/{})", c.at, c.len),
                accent,
            )],
        ));
    } else {
        segs.extend(phase_note(app, skin));
    }
    if app.saves.failed > 0 {
        // A run that cannot save must say so where the eye goes first (high priority).
        segs.push(seg(
            9,
            vec![Span::styled(
                format!(
                    " {} save{} failed",
                    app.saves.failed,
                    if app.saves.failed == 1 { "" } else { "s" }
                ),
                Style::new()
                    .fg(skin.theme.failed)
                    .add_modifier(Modifier::BOLD),
            )],
        ));
    }
    let global_step = app.latest.step.as_ref().map_or_else(
        || app.run.info.as_ref().map_or(0, |i| i.start_step),
        |s| s.global_step,
    );
    segs.push(seg(
        9,
        vec![
            Span::raw(" "),
            Span::styled(format!("step {global_step}"), accent),
        ],
    ));
    if let (Some(info), Some(s)) = (&app.run.info, &app.latest.step) {
        segs.push(seg(
            7,
            vec![
                sep.clone(),
                Span::styled(format!("epoch {}/{}", s.epoch + 1, info.epochs), text),
            ],
        ));
    }
    segs.extend(progress_segments(app, rows, skin));
    if let Some(s) = &app.latest.step {
        segs.push(seg(
            3,
            vec![
                sep.clone(),
                Span::styled(format!("{:.0} ms/step", s.ms_per_step), text),
            ],
        ));
        segs.push(seg(
            2,
            vec![
                sep.clone(),
                Span::styled(format!("{:.0} img/s", s.images_per_s), text),
            ],
        ));
    }
    if let Some(p) = app
        .latest
        .step
        .as_ref()
        .and_then(|s| s.drop_path.map(|p| (s.lr, p)))
    {
        // A training run: the schedule's learning rate and drop-path probability.
        segs.push(seg(
            4,
            vec![
                sep.clone(),
                Span::styled(format!("lr {:.5} drop path {:.3}", p.0, p.1), text),
            ],
        ));
    }
    segs.extend(run_segments(app, skin));
    segs
}

/// The state as reversed text in its colour (` RUNNING `).
fn state_span(label: StateLabel, skin: Skin) -> Span<'static> {
    let t = skin.theme;
    let colour = match label {
        StateLabel::WarmingUp => t.warming,
        StateLabel::Running => t.running,
        StateLabel::Paused => t.paused,
        StateLabel::Saving | StateLabel::Stopping => t.saving,
        StateLabel::Finished => t.finished,
        StateLabel::Failed => t.failed,
        StateLabel::Replay => t.accent,
    };
    Span::styled(
        format!(" {} ", label.text()),
        Style::new()
            .fg(colour)
            .add_modifier(Modifier::BOLD | Modifier::REVERSED),
    )
}

/// What the state label needs said next to it: the warm-up spinner, or the failure.
fn phase_note(app: &App, skin: Skin) -> Option<Segment<'static>> {
    match &app.run.phase {
        Phase::WarmingUp | Phase::Started if app.leaving.stopping.is_none() => {
            let spin = skin
                .glyphs
                .spinner((app.latest.elapsed.as_millis() / 250) as usize);
            let what = if app.run.info.is_some() {
                "first step"
            } else {
                "loading data, building the model"
            };
            Some(seg(
                8,
                vec![Span::styled(format!(" {spin} {what}"), skin.text())],
            ))
        }
        Phase::Failed { message } => Some(seg(
            8,
            vec![Span::styled(
                format!(" {message}"),
                Style::new().fg(skin.theme.failed),
            )],
        )),
        _ => None,
    }
}

/// The run's progress: a small gauge (one status row only), the percentage and the ETA.
fn progress_segments(app: &App, rows: u16, skin: Skin) -> Vec<Segment<'static>> {
    let text = skin.text();
    let mut segs = Vec::new();
    let Some((frac, eta)) = app.progress() else {
        return segs;
    };
    if rows < 2 {
        segs.push(seg(4, vec![Span::raw(" "), gauge_span(frac, 10, skin)]));
    }
    segs.push(seg(
        6,
        vec![Span::styled(format!(" {:.1}%", frac * 100.0), text)],
    ));
    if let Some(eta) = eta.filter(|_| matches!(app.run.phase, Phase::Running | Phase::Paused)) {
        segs.push(seg(
            5,
            vec![
                Span::styled(skin.glyphs.sep(), skin.dim()),
                Span::styled(format!("ETA {}", hms(eta)), text),
            ],
        ));
    }
    segs
}

/// The tail of the row: the finished run's summary, what runs where, and the elapsed time.
fn run_segments(app: &App, skin: Skin) -> Vec<Segment<'static>> {
    let sep = Span::styled(skin.glyphs.sep(), skin.dim());
    let mut segs = Vec::new();
    if let Phase::Finished { summary, .. } = &app.run.phase {
        segs.push(seg(
            8,
            vec![sep.clone(), Span::styled(summary.clone(), skin.text())],
        ));
    }
    if let Some(info) = &app.run.info {
        let g = skin.glyphs.sep();
        segs.push(seg(
            1,
            vec![
                sep.clone(),
                Span::styled(
                    format!("{}{g}{}{g}{}", info.algorithm, info.device, info.dataset),
                    skin.dim(),
                ),
            ],
        ));
    }
    segs.push(seg(
        0,
        vec![
            sep,
            Span::styled(format!("elapsed {}", hms(app.latest.elapsed)), skin.dim()),
        ],
    ));
    segs
}

/// Keeps the most important segments that fit, in their original order.
fn pack<'a>(mut segs: Vec<Segment<'a>>, width: u16) -> Line<'a> {
    let w = |s: &[Segment]| {
        s.iter()
            .flat_map(|g| &g.spans)
            .map(Span::width)
            .sum::<usize>()
    };
    while w(&segs) > usize::from(width) {
        let Some((idx, _)) = segs
            .iter()
            .enumerate()
            .filter(|(_, s)| s.keep < 9)
            .min_by_key(|(_, s)| s.keep)
        else {
            break;
        };
        segs.remove(idx);
    }
    fit(segs.into_iter().flat_map(|s| s.spans).collect(), width)
}

fn gauge_span(frac: f64, width: usize, skin: Skin) -> Span<'static> {
    let (full, empty) = skin.glyphs.gauge();
    let n = ((frac.clamp(0.0, 1.0) * width as f64).round() as usize).min(width);
    let bar: String = std::iter::repeat_n(full, n)
        .chain(std::iter::repeat_n(empty, width - n))
        .collect();
    Span::styled(format!("[{bar}]"), Style::new().fg(skin.theme.gauge))
}

/// Second status row (tall terminals): a wide run gauge and the position inside the epoch.
fn progress_line(app: &App, width: u16, skin: Skin) -> Line<'static> {
    let text = skin.text();
    let Some((frac, _)) = app.progress() else {
        return Line::from(Span::styled(" waiting for the first step", skin.dim()));
    };
    let within = match (&app.run.info, &app.latest.step) {
        (Some(i), Some(s)) => format!(
            " step {}/{} of epoch {}",
            s.step,
            i.steps_per_epoch,
            s.epoch + 1
        ),
        _ => String::new(),
    };
    let label = format!(" run {:5.1}%", frac * 100.0);
    let bar_w = usize::from(width)
        .saturating_sub(label.len() + within.len() + 4)
        .min(60);
    fit(
        vec![
            Span::styled(label, text),
            Span::raw(" "),
            gauge_span(frac, bar_w, skin),
            Span::styled(within, text),
        ],
        width,
    )
}
