//! Scripted worker events for tests (app state and snapshot rendering): a small DARTS-space NASP
//! run with known weights, so the selected op of every edge is known.

use crate::arch::{ArchMatrix, GenotypeRule, derive_genotype, proximal};
use crate::protocol::{ArchSnapshot, EpochStats, Event, Level, RunInfo, StepStats};
use crate::space::{DARTS_OPS, OpLists};

pub fn ops() -> Vec<String> {
    DARTS_OPS.iter().map(|s| (*s).to_string()).collect()
}

pub fn info(proximal: bool) -> RunInfo {
    RunInfo {
        run_dir: "runs/test".into(),
        algorithm: if proximal {
            "nasp".into()
        } else {
            "darts1".into()
        },
        device: "cpu".into(),
        dataset: "cifar10".into(),
        epochs: 50,
        steps_per_epoch: 391,
        batch_size: 64,
        nodes: 4,
        normal_ops: ops(),
        reduce_ops: ops(),
        params: 1_930_842,
        start_step: 0,
        proximal,
        trained: None,
        nb201: false,
    }
}

/// The op the fixture makes strongest on edge `e` of the normal cell.
pub fn strongest_normal_op(e: usize) -> usize {
    (e * 3 + 1) % 8
}

/// A deterministic A: a clear winner per edge (`strongest_normal_op`), varied edge strengths.
pub fn matrix(shift: usize, t: f32) -> ArchMatrix {
    let rows = 14;
    let cols = 8;
    let mut data = Vec::with_capacity(rows * cols);
    for e in 0..rows {
        let best = (e * 3 + 1 + shift) % cols;
        for k in 0..cols {
            let base = 0.1 + 0.05 * ((e + 2 * k) % 5) as f32;
            let v = if k == best {
                0.55 + 0.03 * (e % 7) as f32 + t
            } else {
                base
            };
            data.push(v.clamp(0.0, 1.0));
        }
    }
    ArchMatrix { rows, cols, data }
}

pub fn snapshot(global_step: u64, t: f32) -> ArchSnapshot {
    let normal = matrix(0, t);
    let reduce = matrix(2, t);
    let ns = proximal(&normal, 4, None);
    let rs = proximal(&reduce, 4, None);
    let lists = OpLists {
        normal: ops(),
        reduce: ops(),
    };
    let genotype = derive_genotype(&normal, &reduce, &lists, 4, GenotypeRule::Proximal);
    ArchSnapshot {
        global_step,
        epoch: 0,
        normal,
        reduce,
        normal_selected: ns.ops,
        reduce_selected: rs.ops,
        genotype,
        benchmark: None,
    }
}

pub fn step(global_step: u64) -> StepStats {
    let x = global_step as f64;
    StepStats {
        epoch: (global_step / 391) as usize,
        step: (global_step % 391) as usize,
        global_step,
        train_loss: 2.3 - 0.8 * (x / 400.0).min(1.0),
        train_acc: 0.1 + 0.4 * (x / 400.0).min(1.0),
        arch_loss: 2.4 - 0.7 * (x / 400.0).min(1.0),
        lr: 0.025,
        ms_per_step: 120.0,
        images_per_s: 533.3,
        drop_path: None,
    }
}

/// Started, 40 steps with arch snapshots, one epoch end, a log line.
pub fn script(proximal: bool) -> Vec<Event> {
    let mut out = vec![Event::Started(info(proximal))];
    for i in 1..=40u64 {
        let gs = i * 10;
        out.push(Event::Step(step(gs)));
        out.push(Event::Arch(snapshot(gs, 0.002 * i as f32)));
    }
    out.push(Event::Epoch(EpochStats {
        epoch: 0,
        train_loss: 1.6,
        train_acc: 0.42,
        valid_loss: 1.7,
        valid_acc: 0.39,
        seconds: 48.0,
        valid_seconds: 3.0,
        test: false,
    }));
    out.push(Event::Log {
        level: Level::Info,
        text: "data: CIFAR-10, 25000 train / 25000 valid".into(),
    });
    out
}
