//! The lines of `metrics.jsonl`, typed: what a run writes ([`Line`], through
//! [`super::RunDir::metric`], the one place that writes them) and what `report` reads back
//! ([`EpochRecord`]). A search's epoch line carries the validation figures (`valid_loss`,
//! `valid_acc`, `valid_seconds`), a training's the test set's (`test_loss`, `test_acc`,
//! `test_images`, `test_seconds`): the names say which split was measured.

use serde::{Deserialize, Serialize};

/// One line of `metrics.jsonl`, tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Line {
    Step(StepLine),
    Epoch(EpochLine),
}

/// Every `train.log_every`-th step: the training figures averaged since the previous step line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepLine {
    pub epoch: usize,
    pub global_step: u64,
    pub train_loss: f64,
    pub train_acc: f64,
    pub lr: f64,
    /// Seconds since stepping started in this process.
    pub elapsed_s: f64,
}

/// The end of an epoch: its training figures, the held-out evaluation, its time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EpochLine {
    pub epoch: usize,
    pub global_step: u64,
    pub train_loss: f64,
    pub train_acc: f64,
    #[serde(flatten)]
    pub held_out: HeldOut,
    pub lr: f64,
    /// The drop-path probability of the epoch (training only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drop_path: Option<f64>,
    /// The epoch's wall time, evaluation included.
    pub seconds: f64,
}

/// The figures of the evaluation that closes an epoch, named by the split it measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum HeldOut {
    /// A search's validation split.
    Valid {
        valid_loss: f64,
        valid_acc: f64,
        valid_seconds: f64,
    },
    /// A training's test set.
    Test {
        test_loss: f64,
        test_acc: f64,
        test_images: usize,
        test_seconds: f64,
    },
}

/// An epoch line as read back (any version: every figure may be missing or `null`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct EpochRecord {
    pub epoch: Option<usize>,
    pub global_step: Option<u64>,
    pub seconds: Option<f64>,
    pub train_loss: Option<f64>,
    pub train_acc: Option<f64>,
    pub valid_loss: Option<f64>,
    pub valid_acc: Option<f64>,
    pub test_loss: Option<f64>,
    pub test_acc: Option<f64>,
    pub lr: Option<f64>,
    pub drop_path: Option<f64>,
}

/// A step line as read back (any version: every figure may be missing or `null`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct StepRecord {
    pub epoch: Option<usize>,
    pub global_step: Option<u64>,
    pub train_loss: Option<f64>,
    pub train_acc: Option<f64>,
    pub lr: Option<f64>,
}

/// The epoch lines of a `metrics.jsonl` text, in order (lines of other kinds, and lines that
/// are not JSON objects, are passed over).
pub fn epochs(text: &str) -> Vec<EpochRecord> {
    of_kind(text, "epoch")
}

/// The step lines of a `metrics.jsonl` text, in order (as [`epochs`] reads the epoch lines).
pub fn steps(text: &str) -> Vec<StepRecord> {
    of_kind(text, "step")
}

fn of_kind<T: serde::de::DeserializeOwned>(text: &str, kind: &str) -> Vec<T> {
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v.get("kind").and_then(serde_json::Value::as_str) == Some(kind))
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch(held_out: HeldOut, drop_path: Option<f64>) -> Line {
        Line::Epoch(EpochLine {
            epoch: 2,
            global_step: 30,
            train_loss: 1.5,
            train_acc: 0.25,
            held_out,
            lr: 0.1,
            drop_path,
            seconds: 4.0,
        })
    }

    #[test]
    fn lines_name_their_kind_and_the_split_they_measured() {
        let valid = epoch(
            HeldOut::Valid {
                valid_loss: 1.75,
                valid_acc: 0.5,
                valid_seconds: 1.0,
            },
            None,
        );
        assert_eq!(
            serde_json::to_string(&valid).unwrap(),
            r#"{"kind":"epoch","epoch":2,"global_step":30,"train_loss":1.5,"train_acc":0.25,"valid_loss":1.75,"valid_acc":0.5,"valid_seconds":1.0,"lr":0.1,"seconds":4.0}"#
        );
        let test = epoch(
            HeldOut::Test {
                test_loss: 1.25,
                test_acc: 0.75,
                test_images: 500,
                test_seconds: 0.5,
            },
            Some(0.1),
        );
        assert_eq!(
            serde_json::to_string(&test).unwrap(),
            r#"{"kind":"epoch","epoch":2,"global_step":30,"train_loss":1.5,"train_acc":0.25,"test_loss":1.25,"test_acc":0.75,"test_images":500,"test_seconds":0.5,"lr":0.1,"drop_path":0.1,"seconds":4.0}"#
        );
        let step = Line::Step(StepLine {
            epoch: 0,
            global_step: 5,
            train_loss: 2.0,
            train_acc: 0.5,
            lr: 0.025,
            elapsed_s: 1.5,
        });
        assert_eq!(
            serde_json::to_string(&step).unwrap(),
            r#"{"kind":"step","epoch":0,"global_step":5,"train_loss":2.0,"train_acc":0.5,"lr":0.025,"elapsed_s":1.5}"#
        );
    }

    #[test]
    fn epoch_records_read_both_kinds_of_run_and_old_lines() {
        let text = [
            r#"{"kind":"step","global_step":1,"train_loss":2.0}"#,
            r#"{"kind":"epoch","epoch":0,"valid_acc":0.5,"train_acc":0.25,"seconds":3.0}"#,
            "not json",
            // A training run's line from before the lines were typed (test figures, no lr).
            r#"{"kind":"epoch","epoch":1,"test_acc":0.75,"test_images":500,"seconds":2.0}"#,
            // An evaluation with nothing to evaluate wrote NaN, which JSON says as null.
            r#"{"kind":"epoch","epoch":2,"valid_acc":null,"seconds":1.0}"#,
        ]
        .join("\n");
        let e = epochs(&text);
        assert_eq!(e.len(), 3, "{e:?}");
        assert_eq!((e[0].valid_acc, e[0].test_acc), (Some(0.5), None));
        assert_eq!((e[1].valid_acc, e[1].test_acc), (None, Some(0.75)));
        assert_eq!((e[2].valid_acc, e[2].seconds), (None, Some(1.0)));
        let s = steps(&text);
        assert_eq!(s.len(), 1, "{s:?}");
        assert_eq!((s[0].global_step, s[0].train_loss), (Some(1), Some(2.0)));
        assert_eq!(s[0].train_acc, None);
    }
}
