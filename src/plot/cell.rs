//! A genotype's cells as SVG graphs, laid out by hand.
//!
//! A DARTS cell is drawn as DARTS's `visualize.py` has Graphviz draw it: the inputs c_{k-2}
//! and c_{k-1} on the left, the intermediate nodes (0, 1, ...), the output c_{k} on the right,
//! each edge labelled with its op. Here the nodes stand in columns by depth (a node one column
//! right of the deepest state it reads), so every edge runs left to right and a cell of four
//! nodes fits a page's column; a general layout engine would add a dependency (Graphviz is a
//! system package, the Rust ports large) for a graph whose shape is always the same. A
//! NAS-Bench-201 cell is its four nodes in a row with its six edges, the longer ones arched.
//!
//! Edges are told apart without colour too: skip connections dotted, pools dashed, convolutions
//! solid, `none` (the zero op) faint. The SVG holds no ids, scripts or external references, so
//! several can sit inline in one HTML page.

use std::fmt::Write as _;

use super::style::{FONT, escape};

const COL_W: f64 = 210.0;
const ROW_H: f64 = 92.0;
const BOX_W: f64 = 74.0;
const BOX_H: f64 = 32.0;
const MARGIN: f64 = 24.0;
const TOP: f64 = 56.0;
const FONT_SIZE: f64 = 14.0;

/// How an edge of op `op` is stroked: (colour, dash pattern, width).
fn stroke(op: &str) -> (&'static str, &'static str, f64) {
    if op == "none" {
        ("#999999", "2,4", 1.2)
    } else if op.contains("skip") {
        ("#009e73", "2,3", 2.0)
    } else if op.contains("pool") {
        ("#d55e00", "7,4", 2.0)
    } else {
        ("#0072b2", "", 2.0)
    }
}

/// A node of the drawing: its centre, its text and its fill.
struct Node {
    x: f64,
    y: f64,
    text: String,
    fill: &'static str,
}

/// An edge: from node, to node, its label (`None`: an edge into the output).
struct Edge {
    from: usize,
    to: usize,
    label: Option<String>,
}

/// Width of `text` at the figures' font size (an estimate: the SVG names no font).
fn text_width(text: &str) -> f64 {
    text.chars().count() as f64 * FONT_SIZE * 0.6
}

/// The SVG of one DARTS cell: `pairs` lists two (op, input) per intermediate node (inputs: 0 =
/// c_{k-2}, 1 = c_{k-1}, 2.. = the nodes before), `concat` the states the output joins.
pub fn darts_svg(pairs: &[(String, usize)], concat: &[usize], title: &str) -> String {
    let nodes = pairs.len() / 2;
    let states = nodes + 2;
    let mut depth = vec![0usize; states];
    for n in 0..nodes {
        let d = pairs[2 * n..2 * n + 2]
            .iter()
            .map(|(_, i)| depth.get(*i).copied().unwrap_or(0))
            .max()
            .unwrap_or(0);
        depth[n + 2] = d + 1;
    }
    let out_col = depth.iter().copied().max().unwrap_or(0) + 1;
    let mut columns: Vec<Vec<usize>> = vec![Vec::new(); out_col + 1];
    for (s, &d) in depth.iter().enumerate() {
        columns[d].push(s);
    }
    columns[out_col].push(states);
    let rows = columns.iter().map(Vec::len).max().unwrap_or(1).max(2);
    let height = TOP + rows as f64 * ROW_H + MARGIN;
    let width = 2.0 * MARGIN + BOX_W + out_col as f64 * COL_W;
    let mid = TOP + rows as f64 * ROW_H / 2.0;
    let mut placed: Vec<Option<Node>> = (0..=states).map(|_| None).collect();
    for (c, col) in columns.iter().enumerate() {
        let x = MARGIN + BOX_W / 2.0 + c as f64 * COL_W;
        let top = mid - (col.len() as f64 - 1.0) * ROW_H / 2.0;
        for (r, &s) in col.iter().enumerate() {
            let (text, fill) = match s {
                0 => ("c_{k-2}".to_string(), "#c7e9c0"),
                1 => ("c_{k-1}".to_string(), "#c7e9c0"),
                s if s == states => ("c_{k}".to_string(), "#f3e6a8"),
                s => ((s - 2).to_string(), "#c6dbef"),
            };
            placed[s] = Some(Node {
                x,
                y: top + r as f64 * ROW_H,
                text,
                fill,
            });
        }
    }
    let nodes_drawn: Vec<Node> = placed.into_iter().flatten().collect();
    let mut edges: Vec<Edge> = pairs
        .iter()
        .enumerate()
        .filter(|(_, (_, i))| *i < states)
        .map(|(e, (op, i))| Edge {
            from: *i,
            to: e / 2 + 2,
            label: Some(op.clone()),
        })
        .collect();
    edges.extend(concat.iter().filter(|&&s| s < states).map(|&s| Edge {
        from: s,
        to: states,
        label: None,
    }));
    svg(width, height, title, &nodes_drawn, &edges, |from, to| {
        // An S-curve from the right side of one box to the left side of the other.
        let (x0, y0) = (from.x + BOX_W / 2.0, from.y);
        let (x1, y1) = (to.x - BOX_W / 2.0 - 6.0, to.y);
        let dx = (x1 - x0) / 2.0;
        Curve::Cubic([(x0, y0), (x0 + dx, y0), (x1 - dx, y1), (x1, y1)])
    })
}

/// The SVG of a NAS-Bench-201 cell: `ops` the six edges' ops in the benchmark's edge order.
pub fn nb201_svg(ops: &[&str], title: &str) -> String {
    let height = TOP + 3.0 * ROW_H + MARGIN;
    let y = TOP + 1.5 * ROW_H;
    let names = ["0 (in)", "1", "2", "3 (out)"];
    let nodes: Vec<Node> = names
        .iter()
        .enumerate()
        .map(|(i, t)| Node {
            x: MARGIN + BOX_W / 2.0 + i as f64 * COL_W,
            y,
            text: (*t).to_string(),
            fill: match i {
                0 => "#c7e9c0",
                3 => "#f3e6a8",
                _ => "#c6dbef",
            },
        })
        .collect();
    let width = 2.0 * MARGIN + BOX_W + 3.0 * COL_W;
    let edges: Vec<Edge> = crate::nb201::EDGES
        .iter()
        .zip(ops)
        .map(|(&(to, from), op)| Edge {
            from,
            to,
            label: Some((*op).to_string()),
        })
        .collect();
    svg(width, height, title, &nodes, &edges, |a, b| {
        let span = (b.x - a.x) / COL_W;
        let (x0, x1) = (a.x + BOX_W / 2.0, b.x - BOX_W / 2.0 - 6.0);
        if span < 1.5 {
            return Curve::Cubic([(x0, a.y), (x0, a.y), (x1, b.y), (x1, b.y)]);
        }
        // Two columns: an arch above; three: an arch below.
        let lift = if span < 2.5 {
            -1.3 * ROW_H
        } else {
            1.3 * ROW_H
        };
        let (sx, sy) = (a.x, a.y + lift.signum() * BOX_H / 2.0);
        let (ex, ey) = (b.x, b.y + lift.signum() * (BOX_H / 2.0 + 6.0));
        Curve::Cubic([(sx, sy), (sx, sy + lift), (ex, ey + lift), (ex, ey)])
    })
}

/// A cubic Bézier curve's four points.
enum Curve {
    Cubic([(f64, f64); 4]),
}

impl Curve {
    fn at(&self, t: f64) -> (f64, f64) {
        let Curve::Cubic(p) = self;
        let u = 1.0 - t;
        let w = [u * u * u, 3.0 * u * u * t, 3.0 * u * t * t, t * t * t];
        (
            (0..4).map(|i| w[i] * p[i].0).sum(),
            (0..4).map(|i| w[i] * p[i].1).sum(),
        )
    }

    fn path(&self) -> String {
        let Curve::Cubic(p) = self;
        format!(
            "M{:.1},{:.1} C{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}",
            p[0].0, p[0].1, p[1].0, p[1].1, p[2].0, p[2].1, p[3].0, p[3].1
        )
    }

    /// The end point and the direction the curve arrives from (unit vector).
    fn end(&self) -> ((f64, f64), (f64, f64)) {
        let Curve::Cubic(p) = self;
        let end = p[3];
        let before = self.at(0.97);
        let (dx, dy) = (end.0 - before.0, end.1 - before.1);
        let len = (dx * dx + dy * dy).sqrt().max(1e-9);
        (end, (dx / len, dy / len))
    }
}

/// A label's box: centre, half width, half height.
#[derive(Clone, Copy)]
struct LabelBox {
    x: f64,
    y: f64,
    hw: f64,
    hh: f64,
}

impl LabelBox {
    fn overlaps(&self, o: &LabelBox) -> bool {
        (self.x - o.x).abs() < self.hw + o.hw && (self.y - o.y).abs() < self.hh + o.hh
    }
}

/// Draws nodes, edges (through `curve`), edge labels (moved apart where they would overlap)
/// and the title.
fn svg(
    width: f64,
    height: f64,
    title: &str,
    nodes: &[Node],
    edges: &[Edge],
    curve: impl Fn(&Node, &Node) -> Curve,
) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {width:.0} {height:.0}\" font-family=\"{FONT}\" font-size=\"{FONT_SIZE}\">\n\
         <rect x=\"0\" y=\"0\" width=\"{width:.0}\" height=\"{height:.0}\" fill=\"#ffffff\"/>\n\
         <text x=\"{:.1}\" y=\"28\" text-anchor=\"middle\" font-size=\"17\">{}</text>\n",
        width / 2.0,
        escape(title)
    );
    let curves: Vec<Option<Curve>> = edges
        .iter()
        .map(|e| match (nodes.get(e.from), nodes.get(e.to)) {
            (Some(a), Some(b)) => Some(curve(a, b)),
            _ => None,
        })
        .collect();
    for (e, c) in edges.iter().zip(&curves) {
        let Some(c) = c else { continue };
        let (colour, dash, w) = match &e.label {
            Some(op) => stroke(op),
            None => ("#777777", "", 1.5),
        };
        let dash = if dash.is_empty() {
            String::new()
        } else {
            format!(" stroke-dasharray=\"{dash}\"")
        };
        let _ = writeln!(
            s,
            "<path d=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"{w}\"{dash}/>",
            c.path()
        );
        let ((x, y), (dx, dy)) = c.end();
        let (px, py) = (-dy, dx);
        let _ = writeln!(
            s,
            "<polygon points=\"{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}\" fill=\"{colour}\"/>",
            x + 6.0 * dx,
            y + 6.0 * dy,
            x - 4.0 * px,
            y - 4.0 * py,
            x + 4.0 * px,
            y + 4.0 * py
        );
    }
    // Labels: on their edge, moved down (then up) past any label they would
    // cover; white boxes keep them readable over crossing edges.
    // The nodes' boxes are obstacles too: a label is never hidden under a node.
    let obstacles: Vec<LabelBox> = nodes
        .iter()
        .map(|n| LabelBox {
            x: n.x,
            y: n.y,
            hw: BOX_W.max(text_width(&n.text) + 12.0) / 2.0,
            hh: BOX_H / 2.0,
        })
        .collect();
    let mut boxes: Vec<LabelBox> = Vec::new();
    let mut texts: Vec<&str> = Vec::new();
    for (e, c) in edges.iter().zip(&curves) {
        let (Some(label), Some(c)) = (&e.label, c) else {
            continue;
        };
        // Past the middle: edges that cross there (c_{k-2} to a lower node, c_{k-1} to an
        // upper one) are apart again, each near its own target.
        let (x, y) = c.at(0.62);
        let mut b = LabelBox {
            x,
            y,
            hw: text_width(label) / 2.0 + 4.0,
            hh: FONT_SIZE * 0.65,
        };
        for _ in 0..20 {
            match boxes.iter().chain(&obstacles).find(|o| o.overlaps(&b)) {
                Some(o) => b.y = o.y + o.hh + b.hh + 1.0,
                None => break,
            }
        }
        boxes.push(b);
        texts.push(label);
    }
    for (b, t) in boxes.iter().zip(&texts) {
        let _ = writeln!(
            s,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"3\" fill=\"#ffffff\" fill-opacity=\"0.9\"/>\n\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" dominant-baseline=\"central\">{}</text>",
            b.x - b.hw,
            b.y - b.hh,
            2.0 * b.hw,
            2.0 * b.hh,
            b.x,
            b.y,
            escape(t)
        );
    }
    for n in nodes {
        let w = BOX_W.max(text_width(&n.text) + 12.0);
        let _ = writeln!(
            s,
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{BOX_H}\" rx=\"8\" fill=\"{}\" stroke=\"#000000\" stroke-width=\"1.2\"/>\n\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" dominant-baseline=\"central\">{}</text>",
            n.x - w / 2.0,
            n.y - BOX_H / 2.0,
            n.fill,
            n.x,
            n.y,
            escape(&n.text)
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::genotype::{DARTS_V2, Genotype};

    #[test]
    fn every_op_and_node_is_text_and_edges_run_left_to_right() {
        let g = Genotype::parse(DARTS_V2).unwrap();
        let svg = darts_svg(&g.normal, &g.normal_concat, "DARTS_V2: normal cell");
        for (op, _) in &g.normal {
            assert!(svg.contains(&format!(">{op}</text>")), "{op} missing");
        }
        assert_eq!(
            svg.matches("<path ").count(),
            8 + 4,
            "8 op edges, 4 into c_{{k}}"
        );
        for n in ["c_{k-2}", "c_{k-1}", "c_{k}", ">0<", ">3<"] {
            assert!(svg.contains(n), "{n} missing");
        }
        // Every op's label is its own text element: 8 labels, 7 nodes, the title.
        assert_eq!(svg.matches("</text>").count(), 8 + 7 + 1);
    }

    #[test]
    fn an_nb201_cell_has_six_labelled_edges() {
        let ops = [
            "nor_conv_3x3",
            "none",
            "skip_connect",
            "avg_pool_3x3",
            "nor_conv_1x1",
            "nor_conv_3x3",
        ];
        let svg = nb201_svg(&ops, "cell");
        assert_eq!(svg.matches("<path ").count(), 6);
        for op in ops {
            assert!(svg.contains(&format!(">{op}</text>")), "{op}");
        }
        assert!(svg.contains("stroke-dasharray=\"2,4\""), "none is faint");
    }

    /// The whole of one small figure: a change of layout or style shows here as a diff.
    #[test]
    fn an_nb201_cell_snapshot() {
        let ops = [
            "skip_connect",
            "skip_connect",
            "nor_conv_3x3",
            "skip_connect",
            "nor_conv_3x3",
            "nor_conv_3x3",
        ];
        insta::assert_snapshot!(nb201_svg(
            &ops,
            "seed1 (nasp): NAS-Bench-201 cell, step 3950"
        ));
    }
}
