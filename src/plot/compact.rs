//! A plotters drawing backend that writes small SVG, and the two elements that use it: a
//! series' line ([`Stroke`]) and its markers ([`Marks`]).
//!
//! plotters' own SVG backend writes each stroke, dash, marker and text as an element that spells
//! out every attribute; the weights of a long run (14 panels of 7 series) came to several
//! hundred kilobytes, mostly dashes. Here:
//!
//! - consecutive strokes of one style (grid lines, ticks, axes) are one `<path>`, the texts
//!   drawn between them (tick labels) written after it: a chart's texts and strokes do not
//!   overlap, so only the bytes change;
//! - a series is one `<path>` of relative moves through the points that its pixels show
//!   ([`thin`]), dashed with `stroke-dasharray`; the stretches of one series (the selection's
//!   bold runs) are the subpaths of one path;
//! - the markers of one shape and colour are one `<path>`, written last;
//! - a text carries only what differs from the document (the font family, the most common
//!   font size and centred anchoring are the root's, the fill black); joins are round for the
//!   whole document.
//!
//! The layout (ticks, labels, text sizes) is still plotters', so a chart looks as it did. The
//! output holds no ids, so several figures can sit inline in one HTML page.

use std::fmt::Write as _;

use plotters::element::{Drawable, PointCollection};
use plotters::style::RGBColor;
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind,
    FontStyle, FontTransform,
};

use super::style::{FONT, Marker, escape};

type Error = DrawingErrorKind<std::fmt::Error>;

/// How far (pixels) a point of a line 2 pixels wide or wider may be from the thinned line for
/// [`thin`] to leave it out: half the line's width, so the thinned line still covers the centre
/// of the true one.
pub const TOLERANCE: f64 = 1.0;

/// The SVG document being drawn, written into a string.
pub struct CompactSvg<'a> {
    out: &'a mut String,
    size: (u32, u32),
    /// Strokes of one style not written yet: (their attributes, their path data).
    pending: Option<(String, String)>,
    /// Texts drawn since those strokes began, written after them.
    texts: String,
    /// The font size (pixels, as written) a text need not repeat.
    font_size: String,
    /// Markers, one path per (shape, colour), in the order first drawn: written last, over
    /// everything (a chart's panels do not overlap, so only the bytes change).
    marks: Vec<((Marker, String), String)>,
    closed: bool,
}

impl<'a> CompactSvg<'a> {
    /// A document of `size` pixels written into `out` (completed by `present` or when dropped);
    /// `font_size` is the size (as plotters takes it) of most of its texts.
    pub fn new(out: &'a mut String, size: (u32, u32), font_size: f64) -> Self {
        let (w, h) = size;
        let font_size = short(font_size / 1.24);
        let _ = writeln!(
            out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
             viewBox=\"0 0 {w} {h}\" font-family=\"{FONT}\" font-size=\"{font_size}\" \
             text-anchor=\"middle\" stroke-linejoin=\"round\">"
        );
        CompactSvg {
            out,
            size,
            pending: None,
            texts: String::new(),
            font_size,
            marks: Vec::new(),
            closed: false,
        }
    }

    fn flush(&mut self) {
        if let Some((attrs, d)) = self.pending.take() {
            let _ = writeln!(self.out, "<path d=\"{d}\" fill=\"none\"{attrs}/>");
        }
        self.out.push_str(&self.texts);
        self.texts.clear();
    }

    fn finish(&mut self) {
        if !self.closed {
            self.flush();
            for ((marker, c), d) in self.marks.drain(..) {
                if marker == Marker::Cross {
                    let _ = writeln!(
                        self.out,
                        "<path d=\"{d}\" fill=\"none\" stroke=\"{c}\" stroke-width=\"2\"/>"
                    );
                } else {
                    let _ = writeln!(self.out, "<path d=\"{d}\" fill=\"{c}\"/>");
                }
            }
            self.out.push_str("</svg>\n");
            self.closed = true;
        }
    }

    /// A stroked polyline in absolute coordinates, joined to the strokes before it when they
    /// have the same style.
    fn stroke_absolute(&mut self, attrs: String, points: &[BackendCoord]) {
        let Some((&first, rest)) = points.split_first() else {
            return;
        };
        if self.pending.as_ref().is_some_and(|(a, _)| *a != attrs) {
            self.flush();
        }
        let (_, d) = self.pending.get_or_insert_with(|| (attrs, String::new()));
        d.push('M');
        push_num(d, first.0);
        push_num(d, first.1);
        let mut at = first;
        for &p in rest {
            if p.0 == at.0 {
                d.push('V');
                push_num(d, p.1);
            } else if p.1 == at.1 {
                d.push('H');
                push_num(d, p.0);
            } else {
                d.push('L');
                push_num(d, p.0);
                push_num(d, p.1);
            }
            at = p;
        }
    }

    /// A series' line: one path, a subpath of relative moves through each of `runs`.
    fn series(&mut self, runs: &[Vec<BackendCoord>], s: &Stroke<impl Sized>) {
        self.flush();
        let mut d = String::new();
        let mut dots = false;
        for run in runs {
            let Some((&first, rest)) = run.split_first() else {
                continue;
            };
            d.push('M');
            push_num(&mut d, first.0);
            push_num(&mut d, first.1);
            if rest.is_empty() {
                // One point: a dot the width of the line.
                d.push_str("h0");
                dots = true;
            } else {
                d.push('l');
            }
            let mut at = first;
            for &p in rest {
                push_num(&mut d, p.0 - at.0);
                push_num(&mut d, p.1 - at.1);
                at = p;
            }
        }
        if d.is_empty() {
            return;
        }
        let mut attrs = stroke_attrs(backend_colour(s.colour, s.opacity), s.width);
        if let Some((on, off)) = s.dash {
            let _ = write!(attrs, " stroke-dasharray=\"{on},{off}\"");
        }
        if dots {
            attrs.push_str(" stroke-linecap=\"round\"");
        }
        let _ = writeln!(self.out, "<path d=\"{d}\" fill=\"none\"{attrs}/>");
    }

    /// Markers of one shape at `points`, as one path.
    /// Markers of one shape and colour at `points`: added to the one path of that shape and
    /// colour, written last.
    fn marks(&mut self, points: &[BackendCoord], colour: RGBColor, marker: Marker) {
        if points.is_empty() {
            return;
        }
        let c = colour_attr(backend_colour(colour, 1.0));
        let at = match self
            .marks
            .iter()
            .position(|(k, _)| *k == (marker, c.clone()))
        {
            Some(i) => i,
            None => {
                self.marks.push(((marker, c), String::new()));
                self.marks.len() - 1
            }
        };
        let d = &mut self.marks[at].1;
        for &(x, y) in points {
            match marker {
                Marker::Circle => {
                    let _ = write!(d, "M{} {y}a4 4 0 1 0 8 0a4 4 0 1 0-8 0", x - 4);
                }
                Marker::Triangle => {
                    let _ = write!(d, "M{x} {}l4.3 7.5h-8.6z", y - 5);
                }
                Marker::Square => {
                    let _ = write!(d, "M{} {}h8v8h-8z", x - 4, y - 4);
                }
                Marker::Cross => {
                    let _ = write!(d, "M{} {}l8 8m0-8l-8 8", x - 4, y - 4);
                }
            }
        }
    }
}

impl Drop for CompactSvg<'_> {
    fn drop(&mut self) {
        self.finish();
    }
}

fn backend_colour(c: RGBColor, alpha: f64) -> BackendColor {
    BackendColor {
        alpha,
        rgb: (c.0, c.1, c.2),
    }
}

fn colour_attr(c: BackendColor) -> String {
    let (r, g, b) = c.rgb;
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// ` name="0.25"` for an alpha below 1, else nothing.
fn opacity(name: &str, alpha: f64) -> String {
    if alpha >= 1.0 {
        String::new()
    } else {
        format!(" {name}=\"{}\"", short(alpha))
    }
}

fn stroke_attrs(c: BackendColor, width: u32) -> String {
    format!(
        " stroke=\"{}\" stroke-width=\"{width}\"{}",
        colour_attr(c),
        opacity("stroke-opacity", c.alpha)
    )
}

/// A number with at most two decimals, without trailing zeros.
fn short(v: f64) -> String {
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

/// Appends a number to path data, with a space only where the two would run together.
fn push_num(d: &mut String, v: i32) {
    if v >= 0 && d.ends_with(|c: char| c.is_ascii_digit()) {
        d.push(' ');
    }
    let _ = write!(d, "{v}");
}

impl DrawingBackend for CompactSvg<'_> {
    type ErrorType = std::fmt::Error;

    fn get_size(&self) -> (u32, u32) {
        self.size
    }

    fn ensure_prepared(&mut self) -> Result<(), Error> {
        Ok(())
    }

    fn present(&mut self) -> Result<(), Error> {
        self.finish();
        Ok(())
    }

    fn draw_pixel(&mut self, p: BackendCoord, c: BackendColor) -> Result<(), Error> {
        self.draw_rect(p, (p.0 + 1, p.1 + 1), &c, true)
    }

    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), Error> {
        if style.color().alpha > 0.0 {
            self.stroke_absolute(
                stroke_attrs(style.color(), style.stroke_width()),
                &[from, to],
            );
        }
        Ok(())
    }

    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), Error> {
        if style.color().alpha > 0.0 {
            let points: Vec<BackendCoord> = path.into_iter().collect();
            self.stroke_absolute(stroke_attrs(style.color(), style.stroke_width()), &points);
        }
        Ok(())
    }

    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), Error> {
        let c = style.color();
        if c.alpha <= 0.0 {
            return Ok(());
        }
        self.flush();
        let paint = if fill {
            format!(
                " fill=\"{}\"{}",
                colour_attr(c),
                opacity("fill-opacity", c.alpha)
            )
        } else {
            format!(" fill=\"none\"{}", stroke_attrs(c, style.stroke_width()))
        };
        let _ = writeln!(
            self.out,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"{paint}/>",
            upper_left.0,
            upper_left.1,
            bottom_right.0 - upper_left.0,
            bottom_right.1 - upper_left.1
        );
        Ok(())
    }

    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), Error> {
        let c = style.color();
        if c.alpha <= 0.0 {
            return Ok(());
        }
        self.flush();
        let paint = if fill {
            format!(
                " fill=\"{}\"{}",
                colour_attr(c),
                opacity("fill-opacity", c.alpha)
            )
        } else {
            format!(" fill=\"none\"{}", stroke_attrs(c, style.stroke_width()))
        };
        let _ = writeln!(
            self.out,
            "<circle cx=\"{}\" cy=\"{}\" r=\"{radius}\"{paint}/>",
            center.0, center.1
        );
        Ok(())
    }

    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), Error> {
        let c = style.color();
        if c.alpha <= 0.0 {
            return Ok(());
        }
        self.flush();
        let mut d = String::new();
        for (i, (x, y)) in vert.into_iter().enumerate() {
            d.push(if i == 0 { 'M' } else { 'L' });
            push_num(&mut d, x);
            push_num(&mut d, y);
        }
        d.push('z');
        let _ = writeln!(
            self.out,
            "<path d=\"{d}\" fill=\"{}\"{}/>",
            colour_attr(c),
            opacity("fill-opacity", c.alpha)
        );
        Ok(())
    }

    fn draw_text<T: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &T,
        (x, y): BackendCoord,
    ) -> Result<(), Error> {
        let c = style.color();
        if c.alpha <= 0.0 {
            return Ok(());
        }
        // plotters' sizes are 1.24 times the pixel size its SVG backend writes.
        let px = style.size() / 1.24;
        // The baseline where plotters' SVG backend puts it with its `dy` (0.76 em below the
        // top; half an x-height, about a quarter em, below the centre or above the bottom), in
        // whole pixels; a turned text turns about the point plotters gave, as there.
        let anchor = style.anchor();
        let dy = match anchor.v_pos {
            VPos::Top => 0.76 * px,
            VPos::Center => 0.25 * px,
            VPos::Bottom => -0.25 * px,
        };
        let mut attrs = format!("x=\"{x}\" y=\"{}\"", (f64::from(y) + dy).round());
        attrs.push_str(match anchor.h_pos {
            HPos::Left => " text-anchor=\"start\"",
            HPos::Center => "",
            HPos::Right => " text-anchor=\"end\"",
        });
        let size = short(px);
        if size != self.font_size {
            let _ = write!(attrs, " font-size=\"{size}\"");
        }
        let family = style.family();
        if family.as_str() != FONT {
            let _ = write!(attrs, " font-family=\"{}\"", escape(family.as_str()));
        }
        if c.rgb != (0, 0, 0) {
            let _ = write!(attrs, " fill=\"{}\"", colour_attr(c));
        }
        attrs.push_str(&opacity("fill-opacity", c.alpha));
        match style.style() {
            FontStyle::Normal => {}
            FontStyle::Bold => attrs.push_str(" font-weight=\"bold\""),
            other => {
                let _ = write!(attrs, " font-style=\"{}\"", other.as_str());
            }
        }
        let angle = match style.transform() {
            FontTransform::Rotate90 => 90,
            FontTransform::Rotate180 => 180,
            FontTransform::Rotate270 => 270,
            FontTransform::None => 0,
        };
        if angle != 0 {
            let _ = write!(attrs, " transform=\"rotate({angle} {x} {y})\"");
        }
        // The text on a line of its own, as plotters writes it; after the strokes around it.
        let to = if self.pending.is_some() {
            &mut self.texts
        } else {
            &mut *self.out
        };
        let _ = writeln!(to, "<text {attrs}>\n{}\n</text>", escape(text));
        Ok(())
    }
}

/// The points of a polyline (pixels) that draw the same picture: repeated points dropped; of
/// each run of points in one pixel column, the first, the lowest, the highest and the last;
/// then the points within `tol` pixels of the line through those kept around them left out
/// (Ramer–Douglas–Peucker). The first and last points, and every extreme further than `tol`
/// from the thinned line, stay.
pub fn thin(points: &[BackendCoord], tol: f64) -> Vec<BackendCoord> {
    let mut column: Vec<BackendCoord> = Vec::with_capacity(points.len().min(4096));
    let mut i = 0;
    while i < points.len() {
        let x = points[i].0;
        let mut j = i;
        while j < points.len() && points[j].0 == x {
            j += 1;
        }
        let run = &points[i..j];
        let lowest = (0..run.len()).min_by_key(|&k| run[k].1).unwrap_or(0);
        let highest = (0..run.len()).max_by_key(|&k| run[k].1).unwrap_or(0);
        let mut keep = [0, lowest, highest, run.len() - 1];
        keep.sort_unstable();
        for k in keep {
            if column.last() != Some(&run[k]) {
                column.push(run[k]);
            }
        }
        i = j;
    }
    if column.len() <= 2 {
        return column;
    }
    let mut keep = vec![false; column.len()];
    keep[0] = true;
    keep[column.len() - 1] = true;
    let mut spans = vec![(0, column.len() - 1)];
    while let Some((a, b)) = spans.pop() {
        let mut far = (a, 0.0);
        for (k, &p) in column.iter().enumerate().take(b).skip(a + 1) {
            let d = distance(p, column[a], column[b]);
            if d > far.1 {
                far = (k, d);
            }
        }
        if far.1 > tol {
            keep[far.0] = true;
            spans.push((a, far.0));
            spans.push((far.0, b));
        }
    }
    column
        .into_iter()
        .zip(keep)
        .filter_map(|(p, k)| k.then_some(p))
        .collect()
}

/// The distance (pixels) from `p` to the segment from `a` to `b`.
fn distance(p: BackendCoord, a: BackendCoord, b: BackendCoord) -> f64 {
    let (px, py) = (f64::from(p.0 - a.0), f64::from(p.1 - a.1));
    let (dx, dy) = (f64::from(b.0 - a.0), f64::from(b.1 - a.1));
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 {
        ((px * dx + py * dy) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    ((px - t * dx).powi(2) + (py - t * dy).powi(2)).sqrt()
}

/// A series' line: one path through the points of each of its runs (each thinned to what the
/// pixels show), dashed by `stroke-dasharray`.
#[derive(Debug, Clone)]
pub struct Stroke<C> {
    /// Stretches of the line, each its own subpath (most series: one).
    pub runs: Vec<Vec<C>>,
    pub colour: RGBColor,
    pub opacity: f64,
    pub width: u32,
    /// Dash and gap (pixels); `None`: solid.
    pub dash: Option<(u32, u32)>,
    /// [`thin`]'s tolerance (pixels): [`TOLERANCE`], or 0 to keep each pixel column's span
    /// and every bend (a faint line of raw values, whose texture is the point).
    pub tolerance: f64,
}

impl<'b, C: 'b> PointCollection<'b, C> for &'b Stroke<C> {
    type Point = &'b C;
    type IntoIter = std::iter::Flatten<std::slice::Iter<'b, Vec<C>>>;
    fn point_iter(self) -> Self::IntoIter {
        self.runs.iter().flatten()
    }
}

impl<'a, C> Drawable<CompactSvg<'a>> for Stroke<C> {
    fn draw<I: Iterator<Item = BackendCoord>>(
        &self,
        pos: I,
        backend: &mut CompactSvg<'a>,
        _: (u32, u32),
    ) -> Result<(), Error> {
        let mut pos = pos;
        let runs: Vec<Vec<BackendCoord>> = self
            .runs
            .iter()
            .map(|r| {
                thin(
                    &pos.by_ref().take(r.len()).collect::<Vec<_>>(),
                    self.tolerance,
                )
            })
            .collect();
        backend.series(&runs, self);
        Ok(())
    }
}

/// Markers of one shape and colour at points, drawn as one path.
#[derive(Debug, Clone)]
pub struct Marks<C> {
    pub points: Vec<C>,
    pub colour: RGBColor,
    pub marker: Marker,
}

impl<'b, C: 'b> PointCollection<'b, C> for &'b Marks<C> {
    type Point = &'b C;
    type IntoIter = &'b [C];
    fn point_iter(self) -> &'b [C] {
        &self.points
    }
}

impl<'a, C> Drawable<CompactSvg<'a>> for Marks<C> {
    fn draw<I: Iterator<Item = BackendCoord>>(
        &self,
        pos: I,
        backend: &mut CompactSvg<'a>,
        _: (u32, u32),
    ) -> Result<(), Error> {
        let points: Vec<BackendCoord> = pos.collect();
        backend.marks(&points, self.colour, self.marker);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thinning_keeps_the_ends_and_the_extremes_and_drops_straight_runs() {
        // A straight ramp: its two ends are enough.
        let ramp: Vec<BackendCoord> = (0..200).map(|i| (i, 100 + i / 2)).collect();
        assert_eq!(thin(&ramp, TOLERANCE), [(0, 100), (199, 199)]);
        // A spike of one point in a flat line, and a dip: both stay, with the ends.
        let mut v: Vec<BackendCoord> = (0..300).map(|i| (i, 50)).collect();
        v[120].1 = 10;
        v[240].1 = 90;
        let t = thin(&v, TOLERANCE);
        for p in [(0, 50), (120, 10), (240, 90), (299, 50)] {
            assert!(t.contains(&p), "{p:?} dropped: {t:?}");
        }
        assert!(t.len() <= 8, "{t:?}");
        // Many points per pixel column: at most four per column, the column's span kept.
        let dense: Vec<BackendCoord> = (0..5000)
            .map(|i| (i / 50, if i % 7 == 0 { 20 } else { 30 + (i % 5) }))
            .collect();
        let t = thin(&dense, TOLERANCE);
        assert!(t.len() <= 4 * 100, "{}", t.len());
        for x in [0, 37, 99] {
            let col: Vec<i32> = t.iter().filter(|p| p.0 == x).map(|p| p.1).collect();
            assert!(
                col.contains(&20) && col.contains(&34),
                "column {x}: {col:?}"
            );
        }
        // Every point left out is within the tolerance of the thinned line.
        let wave: Vec<BackendCoord> = (0..400)
            .map(|i| {
                (
                    i,
                    (60.0 + 40.0 * (f64::from(i) / 30.0).sin()).round() as i32,
                )
            })
            .collect();
        let t = thin(&wave, TOLERANCE);
        assert!(t.len() < wave.len() / 2, "{} of {}", t.len(), wave.len());
        for p in &wave {
            let d = t
                .windows(2)
                .map(|w| distance(*p, w[0], w[1]))
                .fold(f64::INFINITY, f64::min);
            assert!(
                d <= TOLERANCE + 1e-9,
                "{p:?} is {d} px off the thinned line"
            );
        }
    }

    #[test]
    fn path_numbers_are_joined_without_needless_spaces() {
        let mut d = String::from("M");
        for v in [10, -3, 4, 0, -12] {
            push_num(&mut d, v);
        }
        assert_eq!(d, "M10-3 4 0-12");
        assert_eq!(short(0.25), "0.25");
        assert_eq!(short(12.096_774), "12.1");
        assert_eq!(short(1.0), "1");
    }
}
