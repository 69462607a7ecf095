//! A genotype's cells as SVG graphs, laid out by hand.
//!
//! A DARTS cell is drawn as DARTS's `visualize.py` has Graphviz draw it: the inputs c_{k-2}
//! and c_{k-1} on the left, the intermediate nodes (0, 1, ...), the output c_{k} on the right,
//! each edge labelled with its op. Here the nodes stand in columns by depth (a node one column
//! right of the deepest state it reads), so every edge runs left to right and a cell of four
//! nodes fits a page's column; a general layout engine would add a dependency (Graphviz is a
//! system package, the Rust ports large) for a graph whose shape is always the same. An edge
//! that spans several columns goes around the boxes of the columns between its ends, in lanes
//! (see [`darts_svg`]), and each label sits on its own edge where it covers no box, arrowhead
//! or other label. A NAS-Bench-201 cell is its four nodes in a row with its six edges, the
//! longer ones arched.
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

/// Between two edges that pass a column on the same side of its boxes (pixels).
const LANE: f64 = 12.0;
/// From a lane in a gap between two boxes to either box.
const CLEAR: f64 = 12.0;
/// From a lane above or below a column's boxes to the nearest box.
const CLEAR_OUT: f64 = 20.0;
/// How far past a column's boxes a lane runs straight.
const PAD: f64 = 6.0;
/// The arrowhead's length: an edge ends this far before its target's box.
const ARROW: f64 = 6.0;
/// The top of a DARTS cell's content, below the title.
const CONTENT_TOP: f64 = 44.0;

/// A point (pixels).
type P = (f64, f64);

/// The SVG of one DARTS cell: `pairs` lists two (op, input) per intermediate node (inputs: 0 =
/// c_{k-2}, 1 = c_{k-1}, 2.. = the nodes before), `concat` the states the output joins.
///
/// An edge between neighbouring columns is an S-curve from the right side of one box to the
/// left side of the other. A longer edge passes each column between its ends in a lane: a
/// straight stretch in a gap between that column's boxes, or above or below them, taken where
/// the edge would pass anyway if the gap is free, else on the side nearer to it; the lanes of
/// one gap or side are spread apart, and S-curves join them. So no edge crosses a box. Where
/// several edges meet one side of a box they start or end at points spread along it, in the
/// order they come from. Each label sits on its own edge, at the place along it (nearest the
/// target first) that overlaps no box, arrowhead or other label and covers the fewest other
/// edges.
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
    depth.push(out_col);
    let mut columns: Vec<Vec<usize>> = vec![Vec::new(); out_col + 1];
    for (s, &d) in depth.iter().enumerate() {
        columns[d].push(s);
    }
    let rows = columns.iter().map(Vec::len).max().unwrap_or(1).max(2);
    let mid = rows as f64 * ROW_H / 2.0;
    let mut placed: Vec<Option<Node>> = (0..=states).map(|_| None).collect();
    for (c, col) in columns.iter().enumerate() {
        let x = BOX_W / 2.0 + c as f64 * COL_W;
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
    let mut nodes: Vec<Node> = placed.into_iter().flatten().collect();
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
    let mut routes = darts_routes(&nodes, &depth, &edges);
    let mut labels = place_labels(&nodes, &edges, &routes);
    // Everything drawn, moved so that it starts below the title and a margin from the left.
    let mut lo = (f64::INFINITY, f64::INFINITY);
    let mut hi = (f64::NEG_INFINITY, f64::NEG_INFINITY);
    let mut grow = |x: f64, y: f64| {
        lo = (lo.0.min(x), lo.1.min(y));
        hi = (hi.0.max(x), hi.1.max(y));
    };
    for b in node_boxes(&nodes)
        .iter()
        .chain(labels.iter().map(|(b, _)| b))
    {
        grow(b.x - b.hw, b.y - b.hh);
        grow(b.x + b.hw, b.y + b.hh);
    }
    for r in &routes {
        for p in r.samples(12) {
            grow(p.0, p.1);
        }
        let (tip, _) = r.tip();
        grow(tip.0, tip.1);
    }
    let (dx, dy) = (MARGIN - lo.0, CONTENT_TOP - lo.1);
    for n in &mut nodes {
        n.x += dx;
        n.y += dy;
    }
    for r in &mut routes {
        r.shift(dx, dy);
    }
    for (b, _) in &mut labels {
        b.x += dx;
        b.y += dy;
    }
    let width = hi.0 + dx + MARGIN;
    let height = hi.1 + dy + MARGIN;
    let routes: Vec<Option<Route>> = routes.into_iter().map(Some).collect();
    write_svg(width, height, title, &nodes, &edges, &routes, &labels)
}

/// Half the width of node `n`'s box.
fn half_width(n: &Node) -> f64 {
    BOX_W.max(text_width(&n.text) + 12.0) / 2.0
}

/// The nodes' boxes.
fn node_boxes(nodes: &[Node]) -> Vec<LabelBox> {
    nodes
        .iter()
        .map(|n| LabelBox {
            x: n.x,
            y: n.y,
            hw: half_width(n),
            hh: BOX_H / 2.0,
        })
        .collect()
}

/// The routes of a DARTS cell's edges (see [`darts_svg`]); `column` holds each node's column.
fn darts_routes(nodes: &[Node], column: &[usize], edges: &[Edge]) -> Vec<Route> {
    let columns = column.iter().copied().max().unwrap_or(0) + 1;
    // Each column's centre, its widest box's half width, its boxes' spans (top to bottom) and
    // the free stretches beside them: above, between, below.
    let mut col_x = vec![0.0; columns];
    let mut col_hw = vec![0.0f64; columns];
    let mut spans: Vec<Vec<(f64, f64)>> = vec![Vec::new(); columns];
    for (n, node) in nodes.iter().enumerate() {
        let c = column.get(n).copied().unwrap_or(0);
        col_x[c] = node.x;
        col_hw[c] = col_hw[c].max(half_width(node));
        spans[c].push((node.y - BOX_H / 2.0, node.y + BOX_H / 2.0));
    }
    let free: Vec<Vec<(f64, f64)>> = spans
        .iter_mut()
        .map(|sp| {
            sp.sort_by(|a, b| a.0.total_cmp(&b.0));
            let mut v = Vec::with_capacity(sp.len() + 1);
            let mut top = f64::NEG_INFINITY;
            for (i, &(a, b)) in sp.iter().enumerate() {
                v.push((top, a - if i == 0 { CLEAR_OUT } else { CLEAR }));
                top = b + if i + 1 == sp.len() { CLEAR_OUT } else { CLEAR };
            }
            v.push((top, f64::INFINITY));
            v
        })
        .collect();
    let ends = |e: &Edge| -> Option<(usize, usize)> {
        let (a, b) = (*column.get(e.from)?, *column.get(e.to)?);
        (a < b && e.from < nodes.len() && e.to < nodes.len()).then_some((a, b))
    };
    // Which free stretch each long edge takes in each column it passes: the one nearest to
    // where a straight line between its ends would pass; a tie (the line through a box's
    // middle) goes towards the target, or for an edge between two boxes level with each
    // other, to the side fewer such edges took (shorter edges first).
    let mut order: Vec<usize> = (0..edges.len()).collect();
    order.sort_by_key(|&e| (ends(&edges[e]).map_or(0, |(a, b)| b - a), e));
    // Per (column, stretch): (edge, where the straight line passes, span).
    let mut users: Vec<Vec<Vec<(usize, f64, usize)>>> =
        free.iter().map(|f| vec![Vec::new(); f.len()]).collect();
    let (mut level_above, mut level_below) = (0usize, 0usize);
    for &e in &order {
        let Some((a, b)) = ends(&edges[e]) else {
            continue;
        };
        if b - a < 2 {
            continue;
        }
        let (s, t) = (&nodes[edges[e].from], &nodes[edges[e].to]);
        let up = if t.y < s.y {
            true
        } else if t.y > s.y {
            false
        } else if level_above <= level_below {
            level_above += 1;
            true
        } else {
            level_below += 1;
            false
        };
        for c in a + 1..b {
            let f = (col_x[c] - s.x) / (t.x - s.x);
            let want = s.y + f * (t.y - s.y);
            let dist = |&(lo, hi): &(f64, f64)| {
                if want < lo {
                    lo - want
                } else if want > hi {
                    want - hi
                } else {
                    0.0
                }
            };
            let mut best = 0;
            for (i, stretch) in free[c].iter().enumerate() {
                let (d, bd) = (dist(stretch), dist(&free[c][best]));
                if d < bd - 1e-9 || ((d - bd).abs() <= 1e-9 && !up) {
                    best = i;
                }
            }
            users[c][best].push((e, want, b - a));
        }
    }
    // Lanes: spread evenly in a gap between boxes, in the order of where the straight lines
    // pass; above (below) the boxes, the edge whose line passes nearest to them closest (the
    // shorter first, so that longer edges go around shorter ones), each where its line passes
    // if that is further out.
    let mut lane: Vec<Vec<(usize, f64)>> = vec![Vec::new(); edges.len()];
    for (c, stretches) in users.iter_mut().enumerate() {
        for (i, list) in stretches.iter_mut().enumerate() {
            let (lo, hi) = free[c][i];
            let by_want = |a: &(usize, f64, usize), b: &(usize, f64, usize)| {
                a.1.total_cmp(&b.1).then(a.2.cmp(&b.2)).then(a.0.cmp(&b.0))
            };
            if lo.is_finite() && hi.is_finite() {
                list.sort_by(by_want);
                let k = list.len() as f64;
                for (j, &(e, _, _)) in list.iter().enumerate() {
                    lane[e].push((c, lo + (hi - lo) * (j as f64 + 1.0) / (k + 1.0)));
                }
            } else if lo.is_finite() {
                list.sort_by(by_want);
                let mut prev = lo - LANE;
                for &(e, want, _) in list.iter() {
                    prev = want.max(prev + LANE);
                    lane[e].push((c, prev));
                }
            } else {
                list.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.2.cmp(&b.2)).then(a.0.cmp(&b.0)));
                let mut prev = hi + LANE;
                for &(e, want, _) in list.iter() {
                    prev = want.min(prev - LANE);
                    lane[e].push((c, prev));
                }
            }
        }
    }
    for l in &mut lane {
        l.sort_by_key(|&(c, _)| c);
    }
    // Ports: the edges meeting one side of a box spread along it, in the order of where they
    // come from (the nearest lane, else the other end).
    let mut out_port = vec![0.0; edges.len()];
    let mut in_port = vec![0.0; edges.len()];
    for n in 0..nodes.len() {
        let mut outs: Vec<(f64, usize)> = Vec::new();
        let mut ins: Vec<(f64, usize)> = Vec::new();
        for (e, edge) in edges.iter().enumerate() {
            if ends(edge).is_none() {
                continue;
            }
            if edge.from == n {
                outs.push((lane[e].first().map_or(nodes[edge.to].y, |l| l.1), e));
            }
            if edge.to == n {
                ins.push((lane[e].last().map_or(nodes[edge.from].y, |l| l.1), e));
            }
        }
        for (list, port) in [(&mut outs, &mut out_port), (&mut ins, &mut in_port)] {
            list.sort_by(|p, q| p.0.total_cmp(&q.0).then(p.1.cmp(&q.1)));
            let k = list.len();
            let step = if k > 1 {
                ((BOX_H - 10.0) / (k - 1) as f64).min(10.0)
            } else {
                0.0
            };
            for (j, &(_, e)) in list.iter().enumerate() {
                port[e] = (j as f64 - (k as f64 - 1.0) / 2.0) * step;
            }
        }
    }
    edges
        .iter()
        .enumerate()
        .map(|(e, edge)| {
            let (Some(s), Some(t)) = (nodes.get(edge.from), nodes.get(edge.to)) else {
                // (An edge names only drawn nodes: `darts_svg` keeps no other.)
                return Route::cubic([(0.0, 0.0); 4]);
            };
            let start = (s.x + half_width(s), s.y + out_port[e]);
            let end = (t.x - half_width(t) - ARROW, t.y + in_port[e]);
            let mut r = Route {
                start,
                segs: Vec::new(),
            };
            let mut at = start;
            for &(c, y) in &lane[e] {
                let a = (col_x[c] - col_hw[c] - PAD, y);
                let b = (col_x[c] + col_hw[c] + PAD, y);
                r.segs.push(s_curve(at, a));
                r.segs.push([
                    (a.0 + (b.0 - a.0) / 3.0, y),
                    (a.0 + 2.0 * (b.0 - a.0) / 3.0, y),
                    b,
                ]);
                at = b;
            }
            r.segs.push(s_curve(at, end));
            r
        })
        .collect()
}

/// An S-curve from `p` to `q`, level at both ends: a segment's two control points and end.
fn s_curve(p: P, q: P) -> [P; 3] {
    let dx = (q.0 - p.0) / 2.0;
    [(p.0 + dx, p.1), (q.0 - dx, q.1), q]
}

/// Where each labelled edge's label goes (in edge order), and its text.
fn place_labels<'a>(
    nodes: &[Node],
    edges: &'a [Edge],
    routes: &[Route],
) -> Vec<(LabelBox, &'a str)> {
    let mut hard: Vec<LabelBox> = node_boxes(nodes)
        .into_iter()
        .map(|b| LabelBox {
            hw: b.hw + 2.0,
            hh: b.hh + 2.0,
            ..b
        })
        .collect();
    // Arrowheads stay visible.
    for r in routes {
        let ((x, y), (dx, dy)) = r.end();
        hard.push(LabelBox {
            x: x + 3.0 * dx,
            y: y + 3.0 * dy,
            hw: 6.0,
            hh: 6.0,
        });
    }
    let samples: Vec<Vec<P>> = routes.iter().map(|r| r.samples(24)).collect();
    // Each labelled edge's candidate spots, best first: along the stretches between columns,
    // the last (nearest the target) first, each from its middle outwards; then the straight
    // runs; then anywhere along it in small steps. Ranked by how many other edges pass under
    // the label, then whether its own edge runs steeply there (a label on a steep stretch
    // reads as belonging to whichever edge is level beside it), then that order.
    let mut candidates: Vec<(usize, &str, Vec<LabelBox>)> = Vec::new();
    let mut homes: Vec<P> = Vec::new();
    for (e, (edge, r)) in edges.iter().zip(routes).enumerate() {
        let Some(label) = &edge.label else {
            continue;
        };
        homes.push(r.at(0.5));
        let (hw, hh) = (text_width(label) / 2.0 + 4.0, FONT_SIZE * 0.65);
        let mut spots: Vec<(usize, f64)> = Vec::new();
        for i in (0..r.segs.len()).rev().step_by(2) {
            for t in [0.5, 0.38, 0.62, 0.26, 0.74, 0.14, 0.86] {
                spots.push((i, t));
            }
        }
        for i in (1..r.segs.len()).step_by(2) {
            spots.push((i, 0.5));
        }
        for i in (0..r.segs.len()).rev() {
            for k in 1..20 {
                spots.push((i, f64::from(k) / 20.0));
            }
        }
        let mut ranked: Vec<(usize, bool, usize, LabelBox)> = spots
            .into_iter()
            .enumerate()
            .map(|(rank, (i, t))| {
                let (x, y) = r.seg_at(i, t);
                let (a, b) = (
                    r.seg_at(i, (t - 0.02).max(0.0)),
                    r.seg_at(i, (t + 0.02).min(1.0)),
                );
                let steep = (b.1 - a.1).abs() > 0.6 * (b.0 - a.0).abs();
                let b = LabelBox { x, y, hw, hh };
                let cover = samples
                    .iter()
                    .enumerate()
                    .filter(|&(o, pts)| {
                        o != e
                            && pts.iter().any(|p| {
                                (p.0 - b.x).abs() < b.hw + 2.0 && (p.1 - b.y).abs() < b.hh + 2.0
                            })
                    })
                    .count();
                (cover, steep, rank, b)
            })
            .filter(|(_, _, _, b)| !hard.iter().any(|o| o.overlaps(b)))
            .collect();
        ranked.sort_by_key(|&(cover, steep, rank, _)| (cover, steep, rank));
        candidates.push((e, label, ranked.into_iter().map(|c| c.3).collect()));
    }
    // The first placement, in that order of preference, where no two labels overlap: a
    // depth-first search over the labels, those with the fewest candidates first, within a
    // budget of steps; past it, each label greedily in turn.
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    order.sort_by_key(|&i| (candidates[i].2.len(), candidates[i].0));
    let apart = |a: &LabelBox, b: &LabelBox| {
        !LabelBox {
            hw: a.hw + 1.0,
            hh: a.hh + 1.0,
            ..*a
        }
        .overlaps(b)
    };
    let mut placed: Vec<Option<LabelBox>> = vec![None; candidates.len()];
    let mut budget = 1_000_000usize;
    let found = search(&order, &candidates, &mut placed, &mut budget, &apart);
    if !found {
        placed = vec![None; candidates.len()];
        for &i in &order {
            placed[i] = candidates[i]
                .2
                .iter()
                .find(|b| placed.iter().flatten().all(|o| apart(o, b)))
                .copied();
        }
    }
    // A label left without a place: below whatever covers its edge's middle.
    for (i, (_, label, _)) in candidates.iter().enumerate() {
        if placed[i].is_none() {
            let (x, y) = homes[i];
            let mut b = LabelBox {
                x,
                y,
                hw: text_width(label) / 2.0 + 4.0,
                hh: FONT_SIZE * 0.65,
            };
            for _ in 0..40 {
                match hard
                    .iter()
                    .chain(placed.iter().flatten())
                    .find(|o| o.overlaps(&b))
                {
                    Some(o) => b.y = o.y + o.hh + b.hh + 1.0,
                    None => break,
                }
            }
            placed[i] = Some(b);
        }
    }
    candidates
        .iter()
        .zip(placed)
        .filter_map(|((_, label, _), b)| Some((b?, *label)))
        .collect()
}

/// Places the labels `order[0]`, `order[1]`, ... each at its first candidate apart from those
/// placed; backs up when one has none. False when there is no such placement or `budget` steps
/// run out.
fn search(
    order: &[usize],
    candidates: &[(usize, &str, Vec<LabelBox>)],
    placed: &mut [Option<LabelBox>],
    budget: &mut usize,
    apart: &impl Fn(&LabelBox, &LabelBox) -> bool,
) -> bool {
    let Some((&i, rest)) = order.split_first() else {
        return true;
    };
    for b in &candidates[i].2 {
        if *budget == 0 {
            return false;
        }
        *budget -= 1;
        if placed.iter().flatten().all(|o| apart(o, b)) {
            placed[i] = Some(*b);
            if search(rest, candidates, placed, budget, apart) {
                return true;
            }
            placed[i] = None;
        }
    }
    false
}

/// A path of cubic Bézier segments: where it starts, and each segment's two control points and
/// end.
struct Route {
    start: P,
    segs: Vec<[P; 3]>,
}

impl Route {
    /// One cubic segment through four points.
    fn cubic(p: [P; 4]) -> Route {
        Route {
            start: p[0],
            segs: vec![[p[1], p[2], p[3]]],
        }
    }

    /// Segment `i` at `t` (0 to 1).
    fn seg_at(&self, i: usize, t: f64) -> P {
        let Some(seg) = self.segs.get(i) else {
            return self.start;
        };
        let p0 = if i == 0 {
            self.start
        } else {
            self.segs[i - 1][2]
        };
        let p = [p0, seg[0], seg[1], seg[2]];
        let u = 1.0 - t;
        let w = [u * u * u, 3.0 * u * u * t, 3.0 * u * t * t, t * t * t];
        (
            (0..4).map(|i| w[i] * p[i].0).sum(),
            (0..4).map(|i| w[i] * p[i].1).sum(),
        )
    }

    /// The route at `t` (0 to 1), each segment an equal share of `t`.
    fn at(&self, t: f64) -> P {
        let n = self.segs.len().max(1) as f64;
        let i = ((t * n).floor() as usize).min(self.segs.len().saturating_sub(1));
        self.seg_at(i, t * n - i as f64)
    }

    /// `per` points along each segment, and the start.
    fn samples(&self, per: usize) -> Vec<P> {
        let mut v = vec![self.start];
        for i in 0..self.segs.len() {
            for k in 1..=per {
                v.push(self.seg_at(i, k as f64 / per as f64));
            }
        }
        v
    }

    fn shift(&mut self, dx: f64, dy: f64) {
        let m = |p: &mut P| {
            p.0 += dx;
            p.1 += dy;
        };
        m(&mut self.start);
        for seg in &mut self.segs {
            seg.iter_mut().for_each(m);
        }
    }

    fn path(&self) -> String {
        let mut s = format!("M{:.1},{:.1}", self.start.0, self.start.1);
        for [a, b, c] in &self.segs {
            let _ = write!(
                s,
                " C{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}",
                a.0, a.1, b.0, b.1, c.0, c.1
            );
        }
        s
    }

    /// The end point and the direction the route arrives from (unit vector).
    fn end(&self) -> (P, P) {
        let last = self.segs.len().saturating_sub(1);
        let end = self.segs.get(last).map_or(self.start, |s| s[2]);
        let before = self.seg_at(last, 0.97);
        let (dx, dy) = (end.0 - before.0, end.1 - before.1);
        let len = (dx * dx + dy * dy).sqrt().max(1e-9);
        (end, (dx / len, dy / len))
    }

    /// The arrowhead's tip and the direction.
    fn tip(&self) -> (P, P) {
        let ((x, y), (dx, dy)) = self.end();
        ((x + ARROW * dx, y + ARROW * dy), (dx, dy))
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

/// Draws nodes, edges (through `curve`), edge labels (on their edge past its middle, moved
/// apart where they would overlap) and the title.
fn svg(
    width: f64,
    height: f64,
    title: &str,
    nodes: &[Node],
    edges: &[Edge],
    curve: impl Fn(&Node, &Node) -> Route,
) -> String {
    let routes: Vec<Option<Route>> = edges
        .iter()
        .map(|e| match (nodes.get(e.from), nodes.get(e.to)) {
            (Some(a), Some(b)) => Some(curve(a, b)),
            _ => None,
        })
        .collect();
    // Labels: on their edge, moved down (then up) past any label they would
    // cover; white boxes keep them readable over crossing edges.
    // The nodes' boxes are obstacles too: a label is never hidden under a node.
    let obstacles = node_boxes(nodes);
    let mut labels: Vec<(LabelBox, &str)> = Vec::new();
    for (e, c) in edges.iter().zip(&routes) {
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
            match labels
                .iter()
                .map(|(b, _)| b)
                .chain(&obstacles)
                .find(|o| o.overlaps(&b))
            {
                Some(o) => b.y = o.y + o.hh + b.hh + 1.0,
                None => break,
            }
        }
        labels.push((b, label));
    }
    write_svg(width, height, title, nodes, edges, &routes, &labels)
}

/// Writes the figure: the title, the edges with their arrowheads, the labels on white boxes
/// (readable over crossing edges), then the nodes.
fn write_svg(
    width: f64,
    height: f64,
    title: &str,
    nodes: &[Node],
    edges: &[Edge],
    routes: &[Option<Route>],
    labels: &[(LabelBox, &str)],
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
    for (e, c) in edges.iter().zip(routes) {
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
    for (b, t) in labels {
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
        let w = 2.0 * half_width(n);
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
            return Route::cubic([(x0, a.y), (x0, a.y), (x1, b.y), (x1, b.y)]);
        }
        // Two columns: an arch above; three: an arch below.
        let lift = if span < 2.5 {
            -1.3 * ROW_H
        } else {
            1.3 * ROW_H
        };
        let (sx, sy) = (a.x, a.y + lift.signum() * BOX_H / 2.0);
        let (ex, ey) = (b.x, b.y + lift.signum() * (BOX_H / 2.0 + 6.0));
        Route::cubic([(sx, sy), (sx, sy + lift), (ex, ey + lift), (ex, ey)])
    })
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

    /// An axis-aligned box: left, top, right, bottom.
    type Rect = (f64, f64, f64, f64);
    /// Points along a drawn path.
    type Sampled = Vec<(f64, f64)>;

    /// The value of attribute `name` in one element's text.
    fn attr(element: &str, name: &str) -> Option<String> {
        let start = element.find(&format!(" {name}=\""))? + name.len() + 3;
        let len = element[start..].find('"')?;
        Some(element[start..start + len].to_string())
    }

    fn num(element: &str, name: &str) -> f64 {
        attr(element, name)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {element}"))
    }

    /// Points along a path of absolute `M`, `L` and `C` commands, every few pixels.
    fn sample(d: &str) -> Vec<(f64, f64)> {
        let mut spaced = String::new();
        for c in d.chars() {
            if c.is_ascii_alphabetic() {
                spaced.push(' ');
                spaced.push(c);
                spaced.push(' ');
            } else if c == ',' {
                spaced.push(' ');
            } else {
                spaced.push(c);
            }
        }
        let tokens: Vec<&str> = spaced.split_whitespace().collect();
        let mut out = Vec::new();
        let mut at = (0.0, 0.0);
        let mut i = 0;
        let mut cmd = "M";
        while i < tokens.len() {
            if tokens[i].chars().all(|c| c.is_ascii_alphabetic()) {
                cmd = tokens[i];
                i += 1;
                continue;
            }
            let n = |k: usize| -> f64 { tokens[i + k].parse().unwrap() };
            match cmd {
                "M" => {
                    at = (n(0), n(1));
                    out.push(at);
                    i += 2;
                }
                "L" => {
                    let to = (n(0), n(1));
                    for s in 1..=40 {
                        let t = f64::from(s) / 40.0;
                        out.push((at.0 + t * (to.0 - at.0), at.1 + t * (to.1 - at.1)));
                    }
                    at = to;
                    i += 2;
                }
                "C" => {
                    let p = [at, (n(0), n(1)), (n(2), n(3)), (n(4), n(5))];
                    for s in 1..=80 {
                        let t = f64::from(s) / 80.0;
                        let u = 1.0 - t;
                        let w = [u * u * u, 3.0 * u * u * t, 3.0 * u * t * t, t * t * t];
                        out.push((
                            (0..4).map(|k| w[k] * p[k].0).sum(),
                            (0..4).map(|k| w[k] * p[k].1).sum(),
                        ));
                    }
                    at = p[3];
                    i += 6;
                }
                other => panic!("path command {other} in {d}"),
            }
        }
        out
    }

    fn inside(p: (f64, f64), r: Rect, margin: f64) -> bool {
        p.0 > r.0 - margin && p.0 < r.2 + margin && p.1 > r.1 - margin && p.1 < r.3 + margin
    }

    fn overlap(a: Rect, b: Rect) -> bool {
        a.0 < b.2 && b.0 < a.2 && a.1 < b.3 && b.1 < a.3
    }

    /// The geometry of a drawn DARTS cell: node boxes, label boxes (in edge order) and the
    /// sampled edges (op edges in order, then those into c_{k}).
    fn geometry(svg: &str) -> (Vec<Rect>, Vec<Rect>, Vec<Sampled>) {
        let (mut nodes, mut labels, mut edges) = (Vec::new(), Vec::new(), Vec::new());
        for element in svg.split('<').skip(1) {
            if element.starts_with("rect ") && attr(element, "rx").is_some() {
                let (x, y) = (num(element, "x"), num(element, "y"));
                let r = (x, y, x + num(element, "width"), y + num(element, "height"));
                if attr(element, "rx").as_deref() == Some("8") {
                    nodes.push(r);
                } else {
                    labels.push(r);
                }
            } else if element.starts_with("path ") {
                edges.push(sample(&attr(element, "d").unwrap()));
            }
        }
        (nodes, labels, edges)
    }

    /// What is wrong with the drawing of one cell, one sentence each.
    fn faults(pairs: &[(String, usize)], concat: &[usize]) -> Vec<String> {
        let svg = darts_svg(pairs, concat, "cell");
        let (nodes, labels, edges) = geometry(&svg);
        let mut out = Vec::new();
        assert_eq!(nodes.len(), pairs.len() / 2 + 3, "{svg}");
        assert_eq!(labels.len(), pairs.len(), "{svg}");
        for (e, pts) in edges.iter().enumerate() {
            let (first, last) = (pts[0], pts[pts.len() - 1]);
            // Its own two ends: the boxes its first and last points touch.
            let ends: Vec<usize> = (0..nodes.len())
                .filter(|&n| inside(first, nodes[n], 8.0) || inside(last, nodes[n], 8.0))
                .collect();
            assert_eq!(ends.len(), 2, "edge {e} ends in {ends:?}: {svg}");
            for (n, &b) in nodes.iter().enumerate() {
                if ends.contains(&n) {
                    continue;
                }
                if let Some(p) = pts.iter().find(|&&p| inside(p, b, 2.0)) {
                    out.push(format!("edge {e} passes through node box {n} at {p:?}"));
                }
            }
        }
        for (i, &l) in labels.iter().enumerate() {
            for (n, &b) in nodes.iter().enumerate() {
                if overlap(l, b) {
                    out.push(format!("label {i} overlaps node box {n}"));
                }
            }
            for (j, &m) in labels.iter().enumerate().skip(i + 1) {
                if overlap(l, m) {
                    out.push(format!("labels {i} and {j} overlap"));
                }
            }
            if !edges[i].iter().any(|&p| inside(p, l, 1.0)) {
                out.push(format!("label {i} is off its edge"));
            }
        }
        out
    }

    /// A cell whose node `n` reads `inputs[n]`, its ops varied.
    fn cell(inputs: &[[usize; 2]], shift: usize) -> Vec<(String, usize)> {
        const OPS: [&str; 8] = [
            "sep_conv_3x3",
            "skip_connect",
            "max_pool_3x3",
            "dil_conv_5x5",
            "none",
            "avg_pool_3x3",
            "sep_conv_5x5",
            "dil_conv_3x3",
        ];
        inputs
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, &input)| (OPS[(i + shift) % OPS.len()].to_string(), input))
            .collect()
    }

    /// Long edges go around the boxes between their ends, and labels stay clear of boxes and of
    /// each other, each on its own edge: DARTS_V2's cells, every node reading c_{k-2} and
    /// c_{k-1}, a chain 0 → 1 → 2 → 3, cells of two and five nodes, and every way four nodes
    /// can choose their two inputs (180).
    #[test]
    fn edges_go_around_boxes_and_labels_stay_clear() {
        let g = Genotype::parse(DARTS_V2).unwrap();
        let mut cells = vec![
            ("DARTS_V2 normal".to_string(), g.normal.clone()),
            ("DARTS_V2 reduce".to_string(), g.reduce.clone()),
            (
                "every node reads c_{k-2}, c_{k-1}".to_string(),
                cell(&[[0, 1]; 4], 0),
            ),
            (
                "chain 0 → 1 → 2 → 3".to_string(),
                cell(&[[0, 1], [2, 1], [3, 0], [4, 1]], 3),
            ),
            ("two nodes".to_string(), cell(&[[0, 1], [1, 2]], 5)),
            (
                "five nodes".to_string(),
                cell(&[[0, 1], [0, 2], [1, 3], [2, 4], [0, 5]], 2),
            ),
        ];
        let choices = |n: usize| -> Vec<[usize; 2]> {
            let states = n + 2;
            (0..states)
                .flat_map(|a| (a + 1..states).map(move |b| [a, b]))
                .collect()
        };
        let mut k = 0;
        for a in choices(0) {
            for b in choices(1) {
                for c in choices(2) {
                    for d in choices(3) {
                        cells.push((
                            format!("inputs {a:?} {b:?} {c:?} {d:?}"),
                            cell(&[a, b, c, d], k),
                        ));
                        k += 1;
                    }
                }
            }
        }
        assert_eq!(cells.len(), 6 + 180);
        let mut bad = Vec::new();
        for (name, pairs) in &cells {
            let concat: Vec<usize> = (2..pairs.len() / 2 + 2).collect();
            let f = faults(pairs, &concat);
            if !f.is_empty() {
                bad.push(format!("{name}: {}", f.join("; ")));
            }
        }
        assert!(
            bad.is_empty(),
            "{} of {} cells drawn badly:\n{}",
            bad.len(),
            cells.len(),
            bad.join("\n")
        );
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
