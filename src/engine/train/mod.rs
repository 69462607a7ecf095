//! `nasp-tui train`: the network of a genotype trained from scratch (the evaluation stage of
//! NASP and DARTS). [`Trainer`] owns the network (`net`), its optimizer, the device data
//! (`data`) and the epoch bookkeeping; `worker` runs it on its own thread through the run loop
//! a search runs (`engine::run`, as which a training is a `Job`: `job`), so behind the same
//! events, sink, inbox and checkpoint layout; `state` is what a checkpoint holds.
//!
//! Randomness: the epoch's order, crops, flips and cutout centres come from the host RNG (one
//! plan per epoch); drop path draws from libtorch's generator, re-seeded from (seed, global
//! step) before every step. Both are functions of the saved state, so a resumed run on the CPU
//! is bitwise the run that was not interrupted.

pub mod bench;
pub mod data;
mod job;
pub mod net;
pub mod pytorch_names;
mod state;
#[cfg(test)]
mod tests;
pub mod worker;

use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

use crate::config::{Config, Init};
use crate::engine::EngineError;
use crate::engine::ops::to_channels_last;
use crate::engine::optim::{Sgd, clip_grad_norm};
use crate::genotype::Genotype;
use crate::rng::Rng;

use crate::arch::Selection;
use crate::engine::nb201::Nb201Net;
use crate::engine::ops::BnMode;
use crate::engine::supernet::Mix;
use data::TrainData;
use net::{EvalNet, Logits, NetSpec};

pub use state::{TRAIN, darts_twin, load_checkpoint, save_checkpoint, save_weights};

/// Images per forward pass on the test set (at least the training batch).
const TEST_CHUNK: usize = 500;

pub use crate::engine::run::{Progress, StepOut};

/// Mean loss and accuracy on the test set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TestEval {
    pub loss: f64,
    pub acc: f64,
    pub images: usize,
}

/// Parameters of the network, without and with the auxiliary head (the papers count without).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamCount {
    pub without_aux: usize,
    pub with_aux: usize,
}

impl std::fmt::Display for ParamCount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "parameters: {} (with auxiliary head: {})",
            self.without_aux, self.with_aux
        )
    }
}

/// The network a training run trains: DARTS's NetworkCIFAR of a DARTS-style genotype, or the
/// NAS-Bench-201 network of a cell (its one op per edge; no auxiliary head, no drop path).
enum TrainNet {
    Darts(Box<EvalNet>),
    Nb201 { net: Box<Nb201Net>, cell: Selection },
}

impl TrainNet {
    /// Builds the network of `g` at `cfg`'s shape under `p`.
    fn new(p: &tch::nn::Path, g: &Genotype, cfg: &Config) -> Result<TrainNet, EngineError> {
        match g.nb201_cell() {
            Some(cell) => {
                let reference = cfg.init == Init::Reference;
                let (c, n) = (cfg.model.channels, cfg.model.cells);
                let net = Nb201Net::trained(p, c, n, cfg.classes(), &cell.ops, reference)?;
                let cell = Selection {
                    ops: cell.ops.iter().map(|&k| Some(k)).collect(),
                    kept: Vec::new(),
                };
                Ok(TrainNet::Nb201 {
                    net: Box::new(net),
                    cell,
                })
            }
            None => Ok(TrainNet::Darts(Box::new(
                EvalNet::new(p, g, &spec(cfg)).map_err(EngineError::Genotype)?,
            ))),
        }
    }

    fn forward(&self, x: &Tensor, train: bool, drop_prob: f64) -> Logits {
        match self {
            TrainNet::Darts(n) => n.forward(x, train, drop_prob),
            TrainNet::Nb201 { net, cell } => Logits {
                main: net.forward(x, Mix::Sparse(cell), BnMode::of(train)),
                aux: None,
            },
        }
    }
}

/// A training run on one device.
pub struct Trainer {
    cfg: Config,
    genotype: Genotype,
    device: Device,
    vs: VarStore,
    net: TrainNet,
    /// Trainable variables, sorted by name, and their names (key the momentum buffers).
    params: Vec<Tensor>,
    names: Vec<String>,
    sgd: Sgd,
    data: Option<TrainData>,
    plan: Option<Tensor>,
    progress: Progress,
    /// RNG state at the start of the current epoch (its plan is drawn from it).
    epoch_rng: Rng,
    channels_last: bool,
    /// A drop-path probability that replaces the schedule's (the benchmark's full 0.2).
    drop_override: Option<f64>,
    notices: Vec<String>,
}

/// The seed of libtorch's generator for the drop-path draws of step `global_step`.
fn step_seed(seed: u64, global_step: u64) -> i64 {
    let mut r = Rng::new(seed ^ 0xD209_7A7B ^ global_step.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    (r.next_u64() >> 1) as i64
}

fn cross_entropy(logits: &Tensor, y: &Tensor) -> Tensor {
    logits
        .to_kind(Kind::Float)
        .log_softmax(-1, Kind::Float)
        .nll_loss(y)
}

fn correct(logits: &Tensor, y: &Tensor) -> Tensor {
    logits.argmax(-1, false).eq_tensor(y).sum(Kind::Float)
}

/// The network shape `cfg` asks for.
pub fn spec(cfg: &Config) -> NetSpec {
    NetSpec {
        channels: cfg.model.channels,
        cells: cfg.model.cells,
        auxiliary: cfg.evaluation.auxiliary,
        classes: cfg.classes(),
    }
}

/// The parameter counts of `g` at `cfg`'s shape (a network built on the CPU and dropped).
pub fn count_params(cfg: &Config, g: &Genotype) -> Result<ParamCount, EngineError> {
    g.check_trainable(&cfg.model.op_lists())
        .map_err(|e| EngineError::Genotype(e.to_string()))?;
    let vs = VarStore::new(Device::Cpu);
    TrainNet::new(&(vs.root() / "net"), g, cfg)?;
    Ok(counts(&vs))
}

fn counts(vs: &VarStore) -> ParamCount {
    let (mut all, mut aux) = (0, 0);
    for (name, t) in vs.variables() {
        if t.requires_grad() {
            all += t.numel();
            if name.starts_with("net.aux.") {
                aux += t.numel();
            }
        }
    }
    ParamCount {
        without_aux: all - aux,
        with_aux: all,
    }
}

impl Trainer {
    /// Builds the network of `g` for `cfg` on `device` (weights seeded by `cfg.seed`, drawn as
    /// `cfg.init` says). `data` may be `None` for benchmarks that feed their own batches.
    pub fn new(
        cfg: &Config,
        g: &Genotype,
        device: Device,
        data: Option<TrainData>,
    ) -> Result<Trainer, EngineError> {
        g.check_trainable(&cfg.model.op_lists())
            .map_err(|e| EngineError::Genotype(e.to_string()))?;
        tch::manual_seed(cfg.seed as i64);
        let vs = VarStore::new(device);
        let net = TrainNet::new(&(vs.root() / "net"), g, cfg)?;
        // The NB201 network draws its own reference weights (the benchmark's PyTorch 1.x ones).
        if cfg.init == Init::Reference && matches!(net, TrainNet::Darts(_)) {
            crate::engine::init::apply_reference(&vs);
        }
        let vars = vs.variables();
        let mut names: Vec<String> = vars
            .iter()
            .filter(|(_, t)| t.requires_grad())
            .map(|(k, _)| k.clone())
            .collect();
        names.sort();
        let params: Vec<Tensor> = names.iter().map(|n| vars[n].shallow_clone()).collect();
        let sgd = Sgd::new(params.len(), cfg.train.momentum, cfg.train.weight_decay)
            .with_nesterov(cfg.train.nesterov);
        Ok(Trainer {
            cfg: cfg.clone(),
            genotype: g.clone(),
            device,
            vs,
            net,
            params,
            names,
            sgd,
            data,
            plan: None,
            progress: Progress::default(),
            epoch_rng: Rng::new(cfg.seed),
            channels_last: cfg.channels_last_on(device.is_cuda()),
            drop_override: None,
            notices: Vec::new(),
        })
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn genotype(&self) -> &Genotype {
        &self.genotype
    }

    pub fn progress(&self) -> Progress {
        self.progress
    }

    pub fn params(&self) -> ParamCount {
        counts(&self.vs)
    }

    /// What went wrong and was handled since the last call (optimizer fallbacks).
    pub fn take_notices(&mut self) -> Vec<String> {
        let mut v = std::mem::take(&mut self.notices);
        v.append(&mut self.sgd.notices);
        v
    }

    /// Images the training set holds (0 without data).
    pub fn train_images(&self) -> usize {
        self.data.as_ref().map_or(0, TrainData::n_train)
    }

    pub fn steps_per_epoch(&self) -> usize {
        self.cfg.steps_per_epoch(self.train_images())
    }

    /// The learning rate of the current epoch (cosine from `train.lr` to `train.lr_min`).
    pub fn lr(&self) -> f64 {
        self.cfg.lr_at_epoch(self.progress.epoch)
    }

    /// The drop-path probability of the current epoch: `evaluation.drop_path` · epoch / epochs.
    pub fn drop_prob(&self) -> f64 {
        self.drop_override.unwrap_or_else(|| {
            self.cfg.evaluation.drop_path * self.progress.epoch as f64
                / self.cfg.train.epochs as f64
        })
    }

    /// Drops paths with probability `p` from now on, whatever the epoch (the benchmark times
    /// the step with the full `evaluation.drop_path`, as the peer does).
    pub fn set_drop_prob(&mut self, p: f64) {
        self.drop_override = Some(p);
    }

    fn input(&self, x: &Tensor) -> Tensor {
        if self.channels_last {
            to_channels_last(x)
        } else {
            x.shallow_clone()
        }
    }

    /// One training step on an explicit batch: forward (drop path, auxiliary head), the loss
    /// (main + `auxiliary_weight` · auxiliary), gradients, clipping, SGD.
    pub fn step_on(&mut self, x: &Tensor, y: &Tensor) -> StepOut {
        tch::manual_seed(step_seed(self.cfg.seed, self.progress.global_step));
        let x = self.input(x);
        let out = self.net.forward(&x, true, self.drop_prob());
        let main = cross_entropy(&out.main, y);
        let loss = match &out.aux {
            Some(aux) => &main + cross_entropy(aux, y) * self.cfg.evaluation.auxiliary_weight,
            None => main.shallow_clone(),
        };
        let mut grads = Tensor::run_backward(&[&loss], &self.params, false, false);
        if self.cfg.train.grad_clip > 0.0 {
            clip_grad_norm(&mut grads, self.cfg.train.grad_clip, &mut self.notices);
        }
        let lr = self.lr();
        self.sgd.step(&self.params, &grads, lr);
        self.progress.global_step += 1;
        StepOut {
            loss: main.detach(),
            correct: correct(&out.main.detach(), y),
            count: y.size()[0] as usize,
            arch_loss: None,
        }
    }

    /// Draws the plan of the current epoch unless it is drawn already.
    pub fn ensure_plan(&mut self) {
        if self.plan.is_none()
            && let Some(d) = &self.data
        {
            let mut rng = self.epoch_rng.clone();
            self.plan = Some(d.plan(&mut rng));
        }
    }

    /// One step of the current epoch from its plan; `None` when the epoch is over.
    pub fn step(&mut self) -> Option<StepOut> {
        self.ensure_plan();
        let (plan, data) = (self.plan.as_ref()?, self.data.as_ref()?);
        let batch = self.cfg.train.batch_size;
        let start = self.progress.step_in_epoch * batch;
        if start >= data.n_train() {
            return None;
        }
        let (x, y) = data.batch(plan, start, batch.min(data.n_train() - start));
        let out = self.step_on(&x, &y);
        self.progress.step_in_epoch += 1;
        Some(out)
    }

    /// Closes the epoch: the RNG moves past its plan, the counters to the next epoch's start.
    pub fn end_epoch(&mut self) {
        if let Some(d) = &self.data {
            let mut rng = self.epoch_rng.clone();
            let _ = d.plan(&mut rng);
            self.epoch_rng = rng;
        }
        self.progress.epoch += 1;
        self.progress.step_in_epoch = 0;
        self.plan = None;
    }

    /// Logits of `x` in evaluation mode (running batch-norm statistics, no drop path).
    pub fn logits(&self, x: &Tensor) -> Tensor {
        tch::no_grad(|| self.net.forward(&self.input(x), false, 0.0).main)
    }

    /// Evaluates the test set, asking `cancel` before each chunk: `None` when it said yes.
    pub fn evaluate_until(&self, cancel: &mut dyn FnMut() -> bool) -> Option<TestEval> {
        let Some(data) = &self.data else {
            return Some(TestEval {
                loss: f64::NAN,
                acc: f64::NAN,
                images: 0,
            });
        };
        let chunks = data.test_chunks(self.cfg.train.batch_size.max(TEST_CHUNK));
        let mut loss_sum = Tensor::zeros([], (Kind::Float, self.device));
        let mut correct_sum = Tensor::zeros([], (Kind::Float, self.device));
        let mut n = 0usize;
        for rows in &chunks {
            if cancel() {
                return None;
            }
            let (x, y) = data.gather(rows);
            let logits = self.logits(&x);
            let b = y.size()[0] as usize;
            loss_sum += cross_entropy(&logits, &y) * b as f64;
            correct_sum += correct(&logits, &y);
            n += b;
        }
        let d = n.max(1) as f64;
        Some(TestEval {
            loss: loss_sum.double_value(&[]) / d,
            acc: correct_sum.double_value(&[]) / d,
            images: n,
        })
    }

    /// Every variable of the network by name (weights and batch-norm statistics).
    pub fn variables(&self) -> Vec<(String, Tensor)> {
        let mut v: Vec<(String, Tensor)> = self.vs.variables().into_iter().collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }
}
