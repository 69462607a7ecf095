//! The figures of a run, a training run and a sweep, as [`Chart`]s and cell graphs.

use std::collections::BTreeMap;

use super::Figure;
use super::cell;
use super::charts::{Chart, Line, Panel, Weight, render};
use super::data::RunData;
use super::style::{GREY, Look, Marker, look};
use crate::arch::node_rows;
use crate::genotype::Genotype;
use crate::protocol::ArchSnapshot;
use crate::space::CellType;
use crate::sweep::report::{Report, Vote};

const STEP_DESC: &str = "step (batches)";

/// The cells of `g` as figures named `cell-normal`, `cell-reduce` (or `cell` for an NB201
/// cell), titled `who: normal cell, step N`.
pub fn cells(g: &Genotype, who: &str, step: u64) -> Vec<Figure> {
    if let Some(c) = g.nb201_cell() {
        let title = format!("{who}: NAS-Bench-201 cell, step {step}");
        return vec![Figure {
            name: "cell".into(),
            caption: format!("The cell of step {step}: {c}"),
            svg: cell::nb201_svg(&c.names(), &title),
        }];
    }
    [
        ("normal", &g.normal, &g.normal_concat),
        ("reduce", &g.reduce, &g.reduce_concat),
    ]
    .into_iter()
    .filter(|(_, pairs, _)| !pairs.is_empty())
    .map(|(kind, pairs, concat)| {
        let title = format!("{who}: {kind} cell, step {step}");
        Figure {
            name: format!("cell-{kind}"),
            caption: format!(
                "The {kind} cell of step {step}: inputs c_{{k-2}}, c_{{k-1}}, intermediate nodes, output c_{{k}}; each edge labelled with its op."
            ),
            svg: cell::darts_svg(pairs, concat, &title),
        }
    })
    .collect()
}

/// A centred moving average over about 1/40 of the points (at least one on each side).
fn smooth(v: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let w = (v.len() / 40).max(1);
    (0..v.len())
        .map(|i| {
            let lo = i.saturating_sub(w);
            let hi = (i + w + 1).min(v.len());
            let mean = v[lo..hi].iter().map(|p| p.1).sum::<f64>() / (hi - lo) as f64;
            (v[i].0, mean)
        })
        .collect()
}

/// Loss and accuracy over the steps: raw step figures faint, smoothed, the held-out split per
/// epoch.
pub fn curves(d: &RunData) -> Option<Figure> {
    if d.steps.is_empty() && d.epochs.is_empty() {
        return None;
    }
    let held = d.held_out();
    let panel =
        |what: &str,
         y_desc: &str,
         scale: f64,
         train: fn(&crate::rundir::metrics::StepRecord) -> Option<f64>,
         epoch_train: fn(&crate::rundir::metrics::EpochRecord) -> Option<f64>,
         epoch_held: fn(&crate::rundir::metrics::EpochRecord) -> Option<f64>| {
            let raw: Vec<(f64, f64)> = d
                .steps
                .iter()
                .filter_map(|s| Some((s.global_step? as f64, train(s)? * scale)))
                .collect();
            let mut lines = Vec::new();
            if raw.len() > 1 {
                lines.push(Line {
                    label: None,
                    points: raw.clone(),
                    look: look(0),
                    weight: Weight::Faint,
                });
                lines.push(Line::new(
                    "train (raw faint, smoothed)",
                    smooth(&raw),
                    look(0),
                ));
            } else {
                let per_epoch: Vec<(f64, f64)> = d
                    .epochs
                    .iter()
                    .filter_map(|e| Some((e.global_step? as f64, epoch_train(e)? * scale)))
                    .collect();
                lines.push(Line::new("train (per epoch)", per_epoch, look(0)));
            }
            let held_pts: Vec<(f64, f64)> = d
                .epochs
                .iter()
                .filter_map(|e| Some((e.global_step? as f64, epoch_held(e)? * scale)))
                .collect();
            if !held_pts.is_empty() {
                lines.push(Line::new(format!("{held} (per epoch)"), held_pts, look(1)));
            }
            Panel {
                title: what.to_string(),
                x_desc: STEP_DESC.into(),
                y_desc: y_desc.into(),
                lines,
                y_range: None,
            }
        };
    let chart = Chart {
        title: format!("{}: loss and accuracy", d.who()),
        panels: vec![
            panel(
                "loss",
                "cross-entropy (nats)",
                1.0,
                |s| s.train_loss,
                |e| e.train_loss,
                |e| e.valid_loss.or(e.test_loss),
            ),
            panel(
                "accuracy",
                "accuracy (%)",
                100.0,
                |s| s.train_acc,
                |e| e.train_acc,
                |e| e.valid_acc.or(e.test_acc),
            ),
        ],
        columns: 2,
        panel: (420, 320),
    };
    Some(figure(
        "curves",
        format!(
            "Loss and accuracy over the steps: the training batches' figures (faint) and their moving average; the {held} split at each epoch's end."
        ),
        &chart,
    ))
}

/// A training run's figures per epoch: loss, accuracy, learning rate, drop path.
pub fn training(d: &RunData) -> Option<Figure> {
    if d.epochs.is_empty() {
        return None;
    }
    let x = |e: &crate::rundir::metrics::EpochRecord| e.epoch.map(|n| n as f64 + 1.0);
    let series =
        |label: &str, f: &dyn Fn(&crate::rundir::metrics::EpochRecord) -> Option<f64>, i: usize| {
            Line::new(
                label,
                d.epochs
                    .iter()
                    .filter_map(|e| Some((x(e)?, f(e)?)))
                    .collect(),
                look(i),
            )
        };
    let panel = |title: &str, y_desc: &str, lines: Vec<Line>| Panel {
        title: title.into(),
        x_desc: "epoch".into(),
        y_desc: y_desc.into(),
        lines: lines.into_iter().filter(|l| !l.points.is_empty()).collect(),
        y_range: None,
    };
    let chart = Chart {
        title: format!("{}: training per epoch", d.who()),
        panels: vec![
            panel(
                "loss",
                "cross-entropy (nats)",
                vec![
                    series("train", &|e| e.train_loss, 0),
                    series("test", &|e| e.test_loss, 1),
                ],
            ),
            panel(
                "accuracy",
                "accuracy (%)",
                vec![
                    series("train", &|e| e.train_acc.map(|a| 100.0 * a), 0),
                    series("test", &|e| e.test_acc.map(|a| 100.0 * a), 1),
                ],
            ),
            panel(
                "learning rate",
                "learning rate (per batch)",
                vec![series("learning rate", &|e| e.lr, 2)],
            ),
            panel(
                "drop path",
                "drop-path probability",
                vec![series("drop path", &|e| e.drop_path, 3)],
            ),
        ],
        columns: 2,
        panel: (420, 300),
    };
    Some(figure(
        "training",
        "Training per epoch: train and test loss and accuracy, the learning rate and the drop-path probability.".into(),
        &chart,
    ))
}

/// Edge `e`'s name: `node 1 ← c_{k-1}` (DARTS, nodes numbered as the cell figure does) or
/// `1 ← 0` (NB201).
fn edge_name(e: usize, nb201: bool, nodes: usize) -> String {
    if nb201 {
        let (to, from) = crate::nb201::EDGES.get(e).copied().unwrap_or((0, 0));
        return format!("edge {from} → {to}");
    }
    let (to, from) = crate::arch::edge_endpoints(e, nodes);
    let from = match from {
        0 => "c_{k-2}".to_string(),
        1 => "c_{k-1}".to_string(),
        s => format!("node {}", s - 2),
    };
    format!("{from} → node {}", to - 2)
}

/// For each edge of `cell`, the op the snapshot's genotype selects (`None`: a dropped edge).
fn selected(s: &ArchSnapshot, cell: CellType, ops: &[String], rows: usize) -> Vec<Option<usize>> {
    let g = &s.genotype;
    if let Some(c) = g.nb201_cell() {
        return c.ops.iter().map(|&k| Some(k)).collect();
    }
    let pairs = match cell {
        CellType::Normal => &g.normal,
        CellType::Reduce => &g.reduce,
    };
    let mut out = vec![None; rows];
    for (i, (op, input)) in pairs.iter().enumerate() {
        let row = node_rows(i / 2).start + input;
        if row < rows {
            out[row] = ops.iter().position(|o| o == op);
        }
    }
    out
}

/// The positions at which two genotypes' lists of one cell differ.
fn changes(a: &Genotype, b: &Genotype, cell: CellType) -> usize {
    let (x, y) = match cell {
        CellType::Normal => (&a.normal, &b.normal),
        CellType::Reduce => (&a.reduce, &b.reduce),
    };
    x.iter().zip(y).filter(|(p, q)| p != q).count() + x.len().abs_diff(y.len())
}

/// The architecture weights of one cell over the steps: one panel per edge, one line per op (A
/// for NASP, softmax(α) for DARTS), the op the selection keeps drawn bold; and the number of
/// the cell's selected (op, input) pairs that changed at each epoch's end.
pub fn arch(d: &RunData, cell: CellType) -> Option<Figure> {
    let first = d.snapshots.first()?;
    let m = match cell {
        CellType::Normal => &first.normal,
        CellType::Reduce => &first.reduce,
    };
    if m.rows == 0 {
        return None;
    }
    let mut ops: Vec<String> = match cell {
        CellType::Normal => d.normal_ops.clone(),
        CellType::Reduce => d.reduce_ops.clone(),
    };
    if ops.len() != m.cols {
        ops = if d.nb201 && m.cols == crate::nb201::OPS.len() {
            crate::nb201::OPS.iter().map(|s| (*s).to_string()).collect()
        } else {
            (0..m.cols).map(|k| format!("op {k}")).collect()
        };
    }
    let nodes = d
        .genotype
        .as_ref()
        .map_or(4, |(_, g)| g.normal.len().max(g.reduce.len()) / 2);
    let values = |s: &ArchSnapshot| {
        let a = match cell {
            CellType::Normal => &s.normal,
            CellType::Reduce => &s.reduce,
        };
        if d.proximal { a.clone() } else { a.softmax() }
    };
    let shown: Vec<_> = d.snapshots.iter().map(values).collect();
    let sel: Vec<Vec<Option<usize>>> = d
        .snapshots
        .iter()
        .map(|s| selected(s, cell, &ops, m.rows))
        .collect();
    let mut panels = Vec::new();
    for e in 0..m.rows {
        let mut lines = Vec::new();
        for (k, op) in ops.iter().enumerate() {
            let pts: Vec<(f64, f64)> = d
                .snapshots
                .iter()
                .zip(&shown)
                .filter(|(_, v)| v.rows == m.rows && v.cols == m.cols)
                .map(|(s, v)| (s.global_step as f64, f64::from(v.get(e, k))))
                .collect();
            lines.push(Line::new(op.clone(), pts, look(k)));
            // Bold where this op is the edge's selection.
            let mut run: Vec<(f64, f64)> = Vec::new();
            for ((s, v), chosen) in d.snapshots.iter().zip(&shown).zip(&sel) {
                let on = chosen.get(e).copied().flatten() == Some(k) && v.rows == m.rows;
                if on {
                    run.push((s.global_step as f64, f64::from(v.get(e, k))));
                } else if !run.is_empty() {
                    lines.push(bold(std::mem::take(&mut run), k));
                }
            }
            if !run.is_empty() {
                lines.push(bold(run, k));
            }
        }
        let last = sel
            .last()
            .and_then(|s| s.get(e).copied().flatten())
            .map_or("dropped".to_string(), |k| ops[k].clone());
        panels.push(Panel {
            title: format!("{}: {last}", edge_name(e, d.nb201, nodes)),
            x_desc: STEP_DESC.into(),
            y_desc: if d.proximal {
                "A (weight, no unit)".into()
            } else {
                "softmax(α) (probability)".into()
            },
            lines,
            y_range: if d.proximal {
                Some((-0.05, 1.05))
            } else {
                Some((0.0, 1.0))
            },
        });
    }
    if !d.epoch_ends.is_empty() {
        let mut prev = &first.genotype;
        let mut pts = Vec::new();
        for s in &d.epoch_ends {
            pts.push((
                s.epoch as f64 + 1.0,
                changes(prev, &s.genotype, cell) as f64,
            ));
            prev = &s.genotype;
        }
        // Grey and dotted with circles: apart from every op's look.
        let l = Line::new(
            "selection changes",
            pts,
            Look {
                colour: GREY,
                dash: Some((2, 3)),
                marker: Marker::Circle,
            },
        );
        panels.push(Panel {
            title: "selection changes per epoch".into(),
            x_desc: "epoch".into(),
            y_desc: "changed (op, input) pairs".into(),
            lines: vec![l],
            y_range: None,
        });
    }
    let what = if d.proximal { "A" } else { "softmax(α)" };
    let kind = if d.nb201 { "cell" } else { cell.name() };
    let chart = Chart {
        title: format!("{}: {what} of the {kind} cell over the steps", d.who()),
        panels,
        columns: 4,
        panel: (300, 220),
    };
    Some(figure(
        &format!("arch-{kind}"),
        format!(
            "{what} of each op on each edge of the {kind} cell over the steps (one panel per edge, titled with the op selected at the end); the selected op bold; last panel: how many of the cell's selected (op, input) pairs changed at each epoch's end."
        ),
        &chart,
    ))
}

fn bold(points: Vec<(f64, f64)>, k: usize) -> Line {
    Line {
        label: None,
        points,
        look: look(k),
        weight: Weight::Bold,
    }
}

fn figure(name: &str, caption: String, chart: &Chart) -> Figure {
    let svg = render(chart).unwrap_or_else(|e| {
        format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"400\" height=\"40\"><text x=\"10\" y=\"25\">{}</text></svg>\n",
            super::style::escape(&format!("could not draw {name}: {e}"))
        )
    });
    Figure {
        name: name.to_string(),
        caption,
        svg,
    }
}

/// A grid value as written in `sweep.toml`, unquoted: `algorithm="nasp"` → `algorithm=nasp`.
fn value_label(values: &[(String, String)]) -> String {
    if values.is_empty() {
        return "runs".into();
    }
    values
        .iter()
        .map(|(k, v)| format!("{k}={}", v.trim_matches('"')))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The algorithms of the report's runs, for a title: `nasp` or `nasp, darts1`.
fn algorithms(r: &Report) -> String {
    let mut v: Vec<&str> = r
        .runs
        .iter()
        .filter_map(|r| r.algorithm.as_deref())
        .collect();
    v.sort_unstable();
    v.dedup();
    if v.is_empty() {
        "?".into()
    } else {
        v.join(", ")
    }
}

/// A sweep's final held-out accuracy of each run by seed, one line per grid value.
pub fn sweep_accuracy(r: &Report, name: &str) -> Option<Figure> {
    let mut groups: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for (i, run) in r.runs.iter().enumerate() {
        let Some(acc) = run.held_out_acc() else {
            continue;
        };
        let x = run.seed.map_or(i as f64 + 1.0, |s| s as f64);
        groups
            .entry(value_label(&run.values))
            .or_default()
            .push((x, 100.0 * acc));
    }
    if groups.is_empty() {
        return None;
    }
    let test = r.runs.iter().all(|x| x.valid_acc.is_none());
    let held = if test { "test" } else { "valid" };
    let lines = groups
        .into_iter()
        .enumerate()
        .map(|(i, (label, mut pts))| {
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            Line::new(label, pts, look(i))
        })
        .collect();
    let chart = Chart {
        title: format!("{name} ({}): final {held} accuracy by seed", algorithms(r)),
        panels: vec![Panel {
            title: format!("final {held} accuracy"),
            x_desc: "seed".into(),
            y_desc: format!("{held} accuracy (%)"),
            lines,
            y_range: None,
        }],
        columns: 1,
        panel: (560, 360),
    };
    Some(figure(
        "sweep-accuracy",
        format!("Each run's {held} accuracy at its last epoch, by seed; one line per grid value."),
        &chart,
    ))
}

/// The consensus genotype's votes: per kept edge, how many runs select its op and how many keep
/// the edge at all, as bars.
pub fn sweep_consensus(r: &Report, name: &str) -> Option<Figure> {
    let c = r.consensus.as_ref()?;
    let nb201 = c.reduce.is_empty() && c.genotype.starts_with('|');
    let mut rows: Vec<(String, &Vote)> = Vec::new();
    for (cell, votes) in [("normal", &c.normal), ("reduce", &c.reduce)] {
        for v in votes {
            let label = if nb201 {
                format!("edge {} → {}: {}", v.input, v.node, v.op)
            } else {
                let from = match v.input {
                    0 => "c_{k-2}".to_string(),
                    1 => "c_{k-1}".to_string(),
                    s => format!("node {}", s - 2),
                };
                format!("{cell} {from} → node {}: {}", v.node, v.op)
            };
            rows.push((label, v));
        }
    }
    if rows.is_empty() {
        return None;
    }
    let title = format!(
        "{name} ({}): consensus of {} runs' selected ops",
        algorithms(r),
        c.runs
    );
    Some(Figure {
        name: "sweep-consensus".into(),
        caption: format!(
            "For each edge of the consensus genotype, the runs that select its op (filled) and the runs that keep the edge at all (outline), of {}.",
            c.runs
        ),
        svg: super::bars::votes_svg(&title, &rows, c.runs),
    })
}
