//! The run loop with a job of its own: a few steps of host scalars, saves that fail on demand,
//! figures that cannot be read. Its test-set evaluation and fixed genotype make it a training as
//! the loop sees one: the rules these tests hold (the save guard, the end summary,
//! `train.log_every`, unreadable figures said, one kind of metrics line) are the search's too,
//! as the loop is one.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;

use tch::Tensor;

use super::*;
use crate::genotype::{DARTS_V2, Genotype};
use crate::protocol::Level;

/// What the test sees of the job after the loop consumed it.
#[derive(Default)]
struct Seen {
    /// The step of every save tried.
    saves: Vec<u64>,
}

struct Fake {
    cfg: Config,
    genotype: Genotype,
    progress: Progress,
    steps_per_epoch: usize,
    /// Saves at these steps and later fail ("no space left on device").
    fail_saves_from: u64,
    /// The figures of this step cannot be read from the device.
    unreadable_step: Option<u64>,
    seen: Rc<RefCell<Seen>>,
}

impl Fake {
    fn new(epochs: usize, steps_per_epoch: usize, sets: &[&str]) -> (Fake, Rc<RefCell<Seen>>) {
        let mut cfg = Config::default();
        cfg.train.epochs = epochs;
        cfg.checkpoint.every_epochs = 0;
        cfg.checkpoint.every_steps = 0;
        for s in sets {
            let (k, v) = s.split_once('=').unwrap();
            match k {
                "train.log_every" => cfg.train.log_every = v.parse().unwrap(),
                "checkpoint.every_steps" => cfg.checkpoint.every_steps = v.parse().unwrap(),
                "checkpoint.every_epochs" => cfg.checkpoint.every_epochs = v.parse().unwrap(),
                _ => panic!("{k}"),
            }
        }
        let seen = Rc::new(RefCell::new(Seen::default()));
        let fake = Fake {
            cfg,
            genotype: Genotype::parse(DARTS_V2).unwrap(),
            progress: Progress::default(),
            steps_per_epoch,
            fail_saves_from: u64::MAX,
            unreadable_step: None,
            seen: seen.clone(),
        };
        (fake, seen)
    }
}

/// Step `k` (1-based) has loss k and k of 10 images right.
fn scalar(v: f32) -> Tensor {
    Tensor::from_slice(&[v]).view([])
}

impl Job for Fake {
    const HELD_OUT: HeldOut = HeldOut::Test;
    const ARCH_MOVES: bool = false;

    fn config(&self) -> &Config {
        &self.cfg
    }
    fn progress(&self) -> Progress {
        self.progress
    }
    fn steps_per_epoch(&self) -> usize {
        self.steps_per_epoch
    }
    fn ensure_plan(&mut self) {}
    fn step(&mut self) -> Option<StepOut> {
        if self.progress.step_in_epoch >= self.steps_per_epoch {
            return None;
        }
        self.progress.step_in_epoch += 1;
        self.progress.global_step += 1;
        let k = self.progress.global_step;
        let loss = if self.unreadable_step == Some(k) {
            // Two values where one is expected: the read of the figures fails.
            Tensor::from_slice(&[1.0f32, 2.0])
        } else {
            scalar(k as f32)
        };
        Some(StepOut {
            loss,
            correct: scalar(k as f32),
            count: 10,
            arch_loss: None,
        })
    }
    fn take_notices(&mut self) -> Vec<String> {
        Vec::new()
    }
    fn lr(&self) -> f64 {
        0.5
    }
    fn drop_path(&self) -> Option<f64> {
        Some(0.25)
    }
    fn arch_snapshot(&mut self) -> ArchSnapshot {
        ArchSnapshot::of_genotype(
            &self.genotype,
            &self.cfg.model.op_lists(),
            self.cfg.data.dataset.nb201_column(),
            self.progress.global_step,
            self.progress.epoch,
        )
    }
    fn evaluate_until(&mut self, cancel: &mut dyn FnMut() -> bool) -> Option<Eval> {
        (!cancel()).then_some(Eval {
            loss: 1.5,
            acc: 0.75,
            images: Some(100),
        })
    }
    fn epoch_files(&mut self, _dir: &RunDir, _epoch: usize) -> Vec<Said> {
        Vec::new()
    }
    fn end_epoch(&mut self) {
        self.progress.epoch += 1;
        self.progress.step_in_epoch = 0;
    }
    fn save(
        &self,
        _meters: &Meters,
        run_dir: &Path,
        _keep: usize,
    ) -> Result<PathBuf, CheckpointError> {
        let step = self.progress.global_step;
        self.seen.borrow_mut().saves.push(step);
        if step >= self.fail_saves_from {
            return Err(CheckpointError::Write {
                path: run_dir.join("checkpoints"),
                source: std::io::Error::from_raw_os_error(28),
            });
        }
        Ok(run_dir.join(format!("checkpoints/ckpt-{step:09}")))
    }
    fn export(&mut self, _dir: &RunDir) -> Result<Vec<PathBuf>, String> {
        Ok(Vec::new())
    }
    fn final_artefact(&mut self, _dir: &RunDir) -> Artefact {
        Artefact {
            summary: "weights: w".into(),
            error: None,
        }
    }
}

/// What a run of `job` said: its events and its metrics lines.
struct Ran {
    events: Vec<Event>,
    metrics: Vec<serde_json::Value>,
}

impl Ran {
    fn finished(&self) -> (String, bool) {
        self.events
            .iter()
            .find_map(|e| match e {
                Event::Finished {
                    summary, unsaved, ..
                } => Some((summary.clone(), *unsaved)),
                _ => None,
            })
            .expect("a Finished event")
    }

    fn failed_saves(&self) -> Vec<u64> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::CheckpointFailed { global_step, .. } => Some(*global_step),
                _ => None,
            })
            .collect()
    }

    fn lines(&self, kind: &str) -> Vec<&serde_json::Value> {
        self.metrics.iter().filter(|v| v["kind"] == kind).collect()
    }
}

/// Runs `job` to its end (or `max_steps`) in a fresh run directory.
fn run(job: Fake, max_steps: Option<u64>) -> Ran {
    let tmp = tempfile::tempdir().unwrap();
    let dir = RunDir::open(tmp.path()).unwrap();
    let (etx, erx) = crossbeam_channel::unbounded();
    let (_ctx, crx) = crossbeam_channel::unbounded::<Command>();
    let mut sink = sink::Sink::new(&etx);
    Loop::new(
        job,
        dir,
        &mut sink,
        (Meters::default(), None),
        (max_steps, Duration::ZERO),
    )
    .run(&crx);
    let metrics = std::fs::read_to_string(tmp.path().join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    Ran {
        events: erx.try_iter().collect(),
        metrics,
    }
}

#[test]
fn a_save_that_failed_at_the_last_step_is_not_tried_again() {
    let (mut job, seen) = Fake::new(1, 8, &["checkpoint.every_steps=2"]);
    job.fail_saves_from = 4;
    let ran = run(job, Some(4));
    // Step 2 saved, step 4 failed; the end of the run does not try step 4 again.
    assert_eq!(seen.borrow().saves, [2, 4]);
    assert_eq!(ran.failed_saves(), [4]);
    let (summary, unsaved) = ran.finished();
    assert!(unsaved, "{summary}");
    assert_eq!(
        summary,
        "reached --max-steps after 4 steps (epoch 0); weights: w; \
         newest checkpoint: step 2 (2 steps older; 1 save failed: no space left on device)"
    );
}

#[test]
fn the_end_summary_names_the_newest_checkpoint_after_failed_saves() {
    let (mut job, seen) = Fake::new(2, 3, &["checkpoint.every_epochs=1"]);
    job.fail_saves_from = 4;
    let ran = run(job, None);
    // Epoch 1 saved at step 3; epoch 2's save and the final one failed.
    assert_eq!(seen.borrow().saves, [3, 6]);
    let (summary, unsaved) = ran.finished();
    assert!(unsaved);
    assert!(
        summary.ends_with(
            "; newest checkpoint: step 3 (3 steps older; 1 save failed: no space left on device)"
        ),
        "{summary}"
    );
    // A run whose saves all work says nothing of them.
    let (job, _) = Fake::new(1, 3, &[]);
    let (summary, unsaved) = run(job, None).finished();
    assert!(!unsaved);
    assert_eq!(summary, "finished after 3 steps (epoch 1); weights: w");
}

#[test]
fn step_lines_follow_log_every_and_average_their_steps() {
    let (job, _) = Fake::new(1, 9, &["train.log_every=3"]);
    let ran = run(job, None);
    let steps = ran.lines("step");
    let at: Vec<u64> = steps
        .iter()
        .map(|v| v["global_step"].as_u64().unwrap())
        .collect();
    assert_eq!(at, [3, 6, 9]);
    // Steps 4, 5, 6: losses 4, 5, 6 and 4 + 5 + 6 of 30 images right.
    assert_eq!(steps[1]["train_loss"], 5.0);
    assert_eq!(steps[1]["train_acc"], 0.5);
    assert_eq!(steps[1]["lr"], 0.5);
    let (job, _) = Fake::new(1, 4, &["train.log_every=0"]);
    assert!(run(job, None).lines("step").is_empty());
}

#[test]
fn figures_that_cannot_be_read_are_said_not_dropped_silently() {
    let (mut job, _) = Fake::new(1, 4, &["train.log_every=1"]);
    job.unreadable_step = Some(2);
    let ran = run(job, None);
    let errors: Vec<&String> = ran
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Log {
                level: Level::Error,
                text,
            } => Some(text),
            _ => None,
        })
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("could not read the loss figures of"),
        "{}",
        errors[0]
    );
    // The other steps' figures are in.
    assert!(!ran.lines("step").is_empty());
}

#[test]
fn the_epoch_line_names_the_split_the_job_evaluates() {
    let (job, _) = Fake::new(1, 2, &[]);
    let ran = run(job, None);
    let epochs = ran.lines("epoch");
    assert_eq!(epochs.len(), 1);
    let e = epochs[0];
    assert_eq!(
        (e["test_acc"].as_f64(), e["test_images"].as_u64()),
        (Some(0.75), Some(100))
    );
    assert_eq!(e["drop_path"], 0.25);
    assert!(e.get("valid_acc").is_none(), "{e}");
    // The monitor's epoch event says it was the test set.
    assert!(
        ran.events
            .iter()
            .any(|ev| matches!(ev, Event::Epoch(s) if s.test))
    );
}
