//! The consensus votes as horizontal bars (plotters' SVG backend, laid out in pixels): one row
//! per edge of the consensus genotype, its name and op on the left, the runs selecting that op
//! as a filled bar inside an outline of the runs keeping the edge at all, `votes/runs` after it.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::style::{FONT, GREY, INK, PALETTE, TICK_SIZE, TITLE_SIZE};
use crate::sweep::report::Vote;

const ROW_H: i32 = 24;
const BAR_W: i32 = 300;

/// The bars of `rows` (label, vote) out of `runs` runs.
pub fn votes_svg(title: &str, rows: &[(String, &Vote)], runs: usize) -> String {
    let label_w = rows
        .iter()
        .map(|(l, _)| (l.chars().count() as f64 * TICK_SIZE * 0.6) as i32)
        .max()
        .unwrap_or(100)
        + 20;
    let width =
        (label_w + BAR_W + 80).max((title.chars().count() as f64 * TITLE_SIZE * 0.6) as i32 + 20);
    let top = 48;
    let height = top + ROW_H * rows.len() as i32 + 56;
    let mut svg = String::new();
    let drawn = (|| -> Result<(), String> {
        let root =
            SVGBackend::with_string(&mut svg, (width as u32, height as u32)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let text = |s: String, at: (i32, i32), size: f64, pos: Pos| {
            root.draw(&Text::new(
                s,
                at,
                (FONT, size).into_font().color(&INK).pos(pos),
            ))
            .map_err(|e| e.to_string())
        };
        text(
            title.to_string(),
            (width / 2, 12),
            TITLE_SIZE,
            Pos::new(HPos::Center, VPos::Top),
        )?;
        let scale = |n: usize| label_w + (BAR_W as f64 * n as f64 / runs.max(1) as f64) as i32;
        for (i, (label, v)) in rows.iter().enumerate() {
            let y = top + i as i32 * ROW_H;
            text(
                label.clone(),
                (label_w - 10, y + ROW_H / 2),
                TICK_SIZE,
                Pos::new(HPos::Right, VPos::Center),
            )?;
            root.draw(&Rectangle::new(
                [(label_w, y + 4), (scale(v.votes), y + ROW_H - 4)],
                PALETTE[0].filled(),
            ))
            .map_err(|e| e.to_string())?;
            root.draw(&Rectangle::new(
                [(label_w, y + 4), (scale(v.kept), y + ROW_H - 4)],
                INK.stroke_width(1),
            ))
            .map_err(|e| e.to_string())?;
            text(
                format!("{}/{runs}", v.votes),
                (scale(v.kept.max(v.votes)) + 8, y + ROW_H / 2),
                TICK_SIZE,
                Pos::new(HPos::Left, VPos::Center),
            )?;
        }
        // The axis: 0 .. runs, with its unit.
        let y = top + ROW_H * rows.len() as i32 + 6;
        root.draw(&PathElement::new(
            vec![(label_w, y), (label_w + BAR_W, y)],
            INK.stroke_width(1),
        ))
        .map_err(|e| e.to_string())?;
        let ticks = runs.clamp(1, 10);
        for t in 0..=ticks {
            let n = runs * t / ticks;
            let x = scale(n);
            root.draw(&PathElement::new(
                vec![(x, y), (x, y + 5)],
                INK.stroke_width(1),
            ))
            .map_err(|e| e.to_string())?;
            root.draw(&PathElement::new(
                vec![(x, top), (x, y)],
                GREY.mix(0.3).stroke_width(1),
            ))
            .map_err(|e| e.to_string())?;
            text(
                n.to_string(),
                (x, y + 8),
                TICK_SIZE,
                Pos::new(HPos::Center, VPos::Top),
            )?;
        }
        text(
            format!("runs (of {runs})"),
            (label_w + BAR_W / 2, y + 28),
            TICK_SIZE + 1.0,
            Pos::new(HPos::Center, VPos::Top),
        )?;
        root.present().map_err(|e| e.to_string())
    })();
    if let Err(e) = drawn {
        return format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"400\" height=\"40\"><text x=\"10\" y=\"25\">{}</text></svg>\n",
            super::style::escape(&format!("could not draw the votes: {e}"))
        );
    }
    svg
}
