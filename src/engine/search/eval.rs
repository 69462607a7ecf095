//! Evaluation on the validation split: eval-mode batch norm, no augmentation, NASP with Ā's ops
//! only and DARTS with the softmax mixture; cancellable between chunks.

use tch::{Kind, Tensor};

use super::{Search, correct, cross_entropy};

/// Images per forward pass in evaluation (at least the training batch).
const EVAL_CHUNK: usize = 512;

/// Mean loss and accuracy over a set of batches.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Eval {
    pub loss: f64,
    pub acc: f64,
}

impl Eval {
    /// The figures of an evaluation that had nothing to evaluate.
    const NONE: Eval = Eval {
        loss: f64::NAN,
        acc: f64::NAN,
    };
}

impl Search {
    /// Evaluates on the validation split (eval-mode BN, no augmentation): NASP with Ā and only
    /// the selected ops, DARTS with the softmax mixture.
    pub fn evaluate(&mut self, max_batches: usize) -> Eval {
        self.evaluate_until(max_batches, &mut || false)
            .unwrap_or(Eval::NONE)
    }

    /// [`Search::evaluate`], asking `cancel` before each chunk of images: `None` when it said
    /// yes (a stop during a long evaluation need not wait for its end).
    pub fn evaluate_until(
        &mut self,
        max_batches: usize,
        cancel: &mut dyn FnMut() -> bool,
    ) -> Option<Eval> {
        self.sync_host_arch();
        let Some(data) = &self.data else {
            return Some(Eval::NONE);
        };
        // `max_batches` training-size batches' worth of images, in larger chunks (evaluation
        // keeps no graph; fewer, larger launches on a GPU). Eval-mode BN makes the result
        // independent of the chunking.
        let batch = self.cfg.train.batch_size;
        let batches = data.eval_batches(batch * max_batches, batch.max(EVAL_CHUNK));
        let mixing = self.mixing();
        let (loss_sum, correct_sum, n) = tch::no_grad(|| {
            let mut loss_sum = Tensor::zeros([], (Kind::Float, self.device));
            let mut correct_sum = Tensor::zeros([], (Kind::Float, self.device));
            let mut n = 0usize;
            for rows in &batches {
                if cancel() {
                    return None;
                }
                let (x, y) = data.gather(rows);
                let logits = self.forward(&x, mixing.cell_mix(&self.selection), false);
                let b = y.size()[0] as usize;
                loss_sum += cross_entropy(&logits, &y) * b as f64;
                correct_sum += correct(&logits, &y);
                n += b;
            }
            Some((loss_sum, correct_sum, n))
        })?;
        let n = n.max(1) as f64;
        Some(Eval {
            loss: loss_sum.double_value(&[]) / n,
            acc: correct_sum.double_value(&[]) / n,
        })
    }
}
