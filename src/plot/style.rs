//! How the figures look: one palette, line styles and markers that tell series apart without
//! colour (print in grey, colour-blind readers), and the fonts' sizes.

use plotters::style::RGBColor;

/// Okabe and Ito's colour-blind-safe palette, without its yellow (too faint on white and in
/// grey): blue, vermillion, bluish green, reddish purple, orange, sky blue, black.
pub const PALETTE: [RGBColor; 7] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
];

/// Text, axes and frames.
pub const INK: RGBColor = RGBColor(0, 0, 0);
/// Grid lines, faint raw points.
pub const GREY: RGBColor = RGBColor(110, 110, 110);

/// The font of every figure (a generic family: the figures name no font file).
pub const FONT: &str = "sans-serif";
/// Sizes as plotters takes them (it writes a font size 1.24 times smaller: 16, 14, 12 px).
pub const TITLE_SIZE: f64 = 20.0;
pub const LABEL_SIZE: f64 = 17.0;
pub const TICK_SIZE: f64 = 15.0;

/// A series' marker shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    Circle,
    Triangle,
    Square,
    Cross,
}

/// How series `i` of a chart is drawn: colour, dash pattern (`None`: solid; else dash and gap in
/// pixels) and marker. Neighbouring indices differ in colour and in dash or marker, so that
/// the first twelve series stay apart in grey.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Look {
    pub colour: RGBColor,
    pub dash: Option<(u32, u32)>,
    pub marker: Marker,
}

const DASHES: [Option<(u32, u32)>; 3] = [None, Some((8, 4)), Some((2, 3))];
const MARKERS: [Marker; 4] = [
    Marker::Circle,
    Marker::Triangle,
    Marker::Square,
    Marker::Cross,
];

/// The look of series `i`.
pub fn look(i: usize) -> Look {
    Look {
        colour: PALETTE[i % PALETTE.len()],
        dash: DASHES[i % DASHES.len()],
        marker: MARKERS[i % MARKERS.len()],
    }
}

/// `&`, `<`, `>`, `"` as XML writes them.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_twelve_looks_differ_without_colour() {
        let mut seen = Vec::new();
        for i in 0..12 {
            let l = look(i);
            let key = (l.dash, l.marker);
            assert!(!seen.contains(&key), "series {i} repeats {key:?}");
            seen.push(key);
        }
        assert_eq!(escape("a<b & \"c\">"), "a&lt;b &amp; &quot;c&quot;&gt;");
    }
}
