//! The evaluation network: the searched cell stacked into the network the papers train from
//! scratch (DARTS §3.3, NASP §4): a stem of 3·C channels, `cells` cells built from the genotype
//! with reduction cells at 1/3 and 2/3 of the depth (channels doubled at each), an auxiliary
//! head after the second reduction cell, global pooling and a linear classifier. Unlike the
//! supernet, every batch norm is affine and pooling ops have none; drop path zeroes a whole op
//! output per image.
//!
//! Ops come from the op table (`space::OpKind`), so both spaces' ops (DARTS's 8, NASP's 12) are
//! built by one match. Parameter names key the checkpoints and the final weights file: a batch
//! norm is named `bn`, a depthwise convolution `dw` (what `engine::init` looks for).

use tch::nn::{self, ModuleT};
use tch::{Kind, Tensor};

use crate::engine::ops::factorized_reduce;
use crate::genotype::Genotype;
use crate::space::{self, OpKind};

/// Channel multiplier of the stem (DARTS's `stem_multiplier`).
const STEM: i64 = 3;
/// The shape of one evaluation network.
#[derive(Debug, Clone, PartialEq)]
pub struct NetSpec {
    pub channels: i64,
    pub cells: usize,
    pub auxiliary: bool,
    /// Classes of the data set (10, or 100 for CIFAR-100).
    pub classes: i64,
}

fn conv(p: nn::Path, cin: i64, cout: i64, k: [i64; 2], s: [i64; 2], pad: [i64; 2]) -> nn::Conv2D {
    conv_g(p, cin, cout, k, s, pad, 1, 1)
}

// Mirrors a conv layer's own arguments.
#[allow(clippy::too_many_arguments)]
fn conv_g(
    p: nn::Path,
    cin: i64,
    cout: i64,
    k: [i64; 2],
    stride: [i64; 2],
    padding: [i64; 2],
    dil: i64,
    groups: i64,
) -> nn::Conv2D {
    let cfg = nn::ConvConfigND::<[i64; 2]> {
        stride,
        padding,
        dilation: [dil, dil],
        groups,
        bias: false,
        ..Default::default()
    };
    nn::conv(p, cin, cout, k, cfg)
}

fn bn(p: nn::Path, c: i64) -> nn::BatchNorm {
    nn::batch_norm2d(p, c, Default::default())
}

/// ReLU → k × k convolution → affine BN.
#[derive(Debug)]
struct ReluConvBn {
    conv: nn::Conv2D,
    bn: nn::BatchNorm,
}

impl ReluConvBn {
    fn new(p: &nn::Path, cin: i64, cout: i64, k: i64, stride: i64) -> Self {
        let pad = (k - 1) / 2;
        ReluConvBn {
            conv: conv(p / "conv", cin, cout, [k, k], [stride, stride], [pad, pad]),
            bn: bn(p / "bn", cout),
        }
    }
    /// On an input that is already ReLU'd.
    fn forward_relu(&self, xr: &Tensor, train: bool) -> Tensor {
        self.bn.forward_t(&xr.apply(&self.conv), train)
    }
}

/// ReLU → two 1 × 1 stride-2 convolutions (the second on the input shifted by a pixel) side by
/// side → affine BN.
#[derive(Debug)]
struct FactorizedReduce {
    c1: nn::Conv2D,
    c2: nn::Conv2D,
    bn: nn::BatchNorm,
}

impl FactorizedReduce {
    fn new(p: &nn::Path, cin: i64, cout: i64) -> Self {
        FactorizedReduce {
            c1: conv(p / "c1", cin, cout / 2, [1, 1], [2, 2], [0, 0]),
            c2: conv(p / "c2", cin, cout / 2, [1, 1], [2, 2], [0, 0]),
            bn: bn(p / "bn", cout),
        }
    }
    /// On an input that is already ReLU'd; the two convs as one (`factorized_reduce`).
    fn forward_relu(&self, x: &Tensor, train: bool) -> Tensor {
        let y = factorized_reduce(x, &self.c1.ws, &self.c2.ws, 1);
        self.bn.forward_t(&y, train)
    }
}

/// ReLU → depthwise (dilated) k × k convolution → pointwise convolution → affine BN.
#[derive(Debug)]
struct DilConv {
    dw: nn::Conv2D,
    pw: nn::Conv2D,
    bn: nn::BatchNorm,
}

impl DilConv {
    fn new(p: &nn::Path, c: i64, k: i64, stride: i64, pad: i64, dil: i64) -> Self {
        DilConv {
            dw: conv_g(p / "dw", c, c, [k, k], [stride; 2], [pad; 2], dil, c),
            pw: conv(p / "pw", c, c, [1, 1], [1, 1], [0, 0]),
            bn: bn(p / "bn", c),
        }
    }
    /// On an input that is already ReLU'd.
    fn forward_relu(&self, xr: &Tensor, train: bool) -> Tensor {
        self.bn
            .forward_t(&xr.apply(&self.dw).apply(&self.pw), train)
    }
}

/// One op of a trained cell.
#[derive(Debug)]
enum Op {
    /// `skip_connect` at stride 1 (never dropped by drop path).
    Identity,
    /// Max or average pooling (average excludes the padding); no batch norm.
    Pool {
        max: bool,
        k: i64,
        stride: i64,
    },
    /// `skip_connect` at stride 2.
    Reduce(FactorizedReduce),
    Sep(Box<[DilConv; 2]>),
    Dil(DilConv),
    Conv(ReluConvBn),
    /// ReLU → 1 × k → k × 1 convolutions → BN.
    Factorized {
        a: nn::Conv2D,
        b: nn::Conv2D,
        bn: nn::BatchNorm,
    },
}

impl Op {
    /// The op `kind` for `c` channels at `stride`; `None` for the zero op (no trained cell
    /// uses it: the genotype check refuses it first).
    fn new(p: &nn::Path, kind: OpKind, c: i64, stride: i64) -> Option<Op> {
        let s = stride;
        Some(match kind {
            OpKind::Zero => return None,
            OpKind::Pool { max, k } => Op::Pool { max, k, stride: s },
            OpKind::Skip if s == 1 => Op::Identity,
            OpKind::Skip => Op::Reduce(FactorizedReduce::new(&(p / "fr"), c, c)),
            OpKind::Sep { k } => Op::Sep(Box::new([
                DilConv::new(&(p / "a"), c, k, s, (k - 1) / 2, 1),
                DilConv::new(&(p / "b"), c, k, 1, (k - 1) / 2, 1),
            ])),
            OpKind::Dil { k } => Op::Dil(DilConv::new(&(p / "d"), c, k, s, k - 1, 2)),
            OpKind::Conv { k } => Op::Conv(ReluConvBn::new(&(p / "c"), c, c, k, s)),
            OpKind::Factorized { k } => Op::Factorized {
                a: conv(p / "a", c, c, [1, k], [1, s], [0, (k - 1) / 2]),
                b: conv(p / "b", c, c, [k, 1], [s, 1], [(k - 1) / 2, 0]),
                bn: bn(p / "bn", c),
            },
        })
    }

    /// The op on state `x`; `xr` gives its ReLU, computed once per state and shared by every
    /// op that starts with one.
    fn forward(&self, x: &Tensor, xr: &dyn Fn() -> Tensor, train: bool) -> Tensor {
        match self {
            Op::Identity => x.shallow_clone(),
            Op::Pool { max, k, stride } => {
                let pad = k / 2;
                if *max {
                    x.max_pool2d([*k, *k], [*stride, *stride], [pad, pad], [1, 1], false)
                } else {
                    x.avg_pool2d([*k, *k], [*stride, *stride], [pad, pad], false, false, None)
                }
            }
            Op::Reduce(fr) => fr.forward_relu(&xr(), train),
            Op::Sep(ab) => ab[1].forward_relu(&ab[0].forward_relu(&xr(), train).relu(), train),
            Op::Dil(d) => d.forward_relu(&xr(), train),
            Op::Conv(c) => c.forward_relu(&xr(), train),
            Op::Factorized { a, b, bn } => bn.forward_t(&xr().apply(a).apply(b), train),
        }
    }
}

/// Multiplies each image's op output by 0 (probability `p`) or 1 / (1 − p): one Bernoulli draw
/// per image from libtorch's generator (DARTS's `drop_path`).
pub fn drop_path(x: &Tensor, p: f64) -> Tensor {
    let keep = 1.0 - p;
    let n = x.size()[0];
    let mask = Tensor::rand([n, 1, 1, 1], (Kind::Float, x.device()))
        .lt(keep)
        .to_kind(x.kind());
    x * (mask / keep)
}

/// A cell: its two preprocessed inputs, its ops (two per node) and the states it concatenates.
#[derive(Debug)]
struct Cell {
    pre0: Pre,
    pre1: ReluConvBn,
    ops: Vec<(Op, usize)>,
    concat: Vec<usize>,
}

/// The preprocessing of a cell's first input: a factorized reduction when the previous cell
/// reduced (the two inputs then differ in size), a 1 × 1 ReLU-conv-BN otherwise.
#[derive(Debug)]
enum Pre {
    Reduce(FactorizedReduce),
    Conv(ReluConvBn),
}

impl Cell {
    /// The cell on its inputs `s0`, `s1`, each given with its ReLU (the previous cells' outputs
    /// are ReLU'd once for the two cells that read each).
    fn forward(&self, s0: &State, s1: &State, train: bool, drop_prob: f64) -> Tensor {
        let s0 = match &self.pre0 {
            Pre::Reduce(fr) => fr.forward_relu(s0.relu(), train),
            Pre::Conv(c) => c.forward_relu(s0.relu(), train),
        };
        let s1 = self.pre1.forward_relu(s1.relu(), train);
        let mut states = vec![State::new(s0), State::new(s1)];
        for pair in self.ops.chunks(2) {
            let mut node: Option<Tensor> = None;
            for (op, input) in pair {
                let st = &states[*input];
                let mut h = op.forward(&st.x, &|| st.relu().shallow_clone(), train);
                if train && drop_prob > 0.0 && !matches!(op, Op::Identity) {
                    h = drop_path(&h, drop_prob);
                }
                node = Some(match node {
                    None => h,
                    Some(acc) => acc + h,
                });
            }
            if let Some(n) = node {
                states.push(State::new(n));
            }
        }
        let picked: Vec<&Tensor> = self.concat.iter().map(|&k| &states[k].x).collect();
        Tensor::cat(&picked, 1)
    }
}

/// A state of the network and its ReLU, made on first use.
struct State {
    x: Tensor,
    relu: std::cell::OnceCell<Tensor>,
}

impl State {
    fn new(x: Tensor) -> Self {
        State {
            x,
            relu: std::cell::OnceCell::new(),
        }
    }
    fn relu(&self) -> &Tensor {
        self.relu.get_or_init(|| self.x.relu())
    }
}

/// The auxiliary classifier on the 8 × 8 output of the second reduction cell (DARTS's
/// `AuxiliaryHeadCIFAR`).
#[derive(Debug)]
struct AuxHead {
    c1: nn::Conv2D,
    bn1: nn::BatchNorm,
    c2: nn::Conv2D,
    bn2: nn::BatchNorm,
    fc: nn::Linear,
}

impl AuxHead {
    fn new(p: &nn::Path, c: i64, classes: i64) -> Self {
        AuxHead {
            c1: conv(p / "c1", c, 128, [1, 1], [1, 1], [0, 0]),
            bn1: bn(p / "c1" / "bn", 128),
            c2: conv(p / "c2", 128, 768, [2, 2], [1, 1], [0, 0]),
            bn2: bn(p / "c2" / "bn", 768),
            fc: nn::linear(p / "fc", 768, classes, Default::default()),
        }
    }
    /// On the ReLU of the second reduction cell's output.
    fn forward(&self, xr: &Tensor, train: bool) -> Tensor {
        let y = xr.avg_pool2d([5, 5], [3, 3], [0, 0], false, false, None);
        let y = self.bn1.forward_t(&y.apply(&self.c1), train).relu();
        let y = self.bn2.forward_t(&y.apply(&self.c2), train).relu();
        y.flatten(1, -1).apply(&self.fc)
    }
}

/// The whole evaluation network.
#[derive(Debug)]
pub struct EvalNet {
    stem_conv: nn::Conv2D,
    stem_bn: nn::BatchNorm,
    cells: Vec<Cell>,
    /// The auxiliary head and the index of the cell it reads.
    aux: Option<(AuxHead, usize)>,
    classifier: nn::Linear,
}

/// What one forward pass gives: the logits, and the auxiliary head's in training.
pub struct Logits {
    pub main: Tensor,
    pub aux: Option<Tensor>,
}

/// Whether cell `i` of `cells` is a reduction cell (at 1/3 and 2/3 of the depth).
pub fn is_reduction(i: usize, cells: usize) -> bool {
    i == cells / 3 || i == 2 * cells / 3
}

impl EvalNet {
    /// Builds the network of `g` under `p` (the genotype is checked beforehand: see
    /// `Genotype::check_trainable`; an op the table lacks is an error naming it).
    pub fn new(p: &nn::Path, g: &Genotype, spec: &NetSpec) -> Result<EvalNet, String> {
        let c = spec.channels;
        let stem_c = STEM * c;
        let stem_conv = conv(p / "stem" / "conv", 3, stem_c, [3, 3], [1, 1], [1, 1]);
        let stem_bn = bn(p / "stem" / "bn", stem_c);
        let (mut c_pp, mut c_p, mut c_cur) = (stem_c, stem_c, c);
        let mut cells = Vec::with_capacity(spec.cells);
        let mut reduction_prev = false;
        let mut aux = None;
        let aux_at = 2 * spec.cells / 3;
        for i in 0..spec.cells {
            let reduction = is_reduction(i, spec.cells);
            if reduction {
                c_cur *= 2;
            }
            let cp = p / "cells" / i;
            let (ops, concat) = if reduction {
                (&g.reduce, &g.reduce_concat)
            } else {
                (&g.normal, &g.normal_concat)
            };
            let pre0 = if reduction_prev {
                Pre::Reduce(FactorizedReduce::new(&(&cp / "pre0"), c_pp, c_cur))
            } else {
                Pre::Conv(ReluConvBn::new(&(&cp / "pre0"), c_pp, c_cur, 1, 1))
            };
            let pre1 = ReluConvBn::new(&(&cp / "pre1"), c_p, c_cur, 1, 1);
            let mut built = Vec::with_capacity(ops.len());
            for (e, (name, input)) in ops.iter().enumerate() {
                let kind = space::lookup(name)
                    .ok_or_else(|| format!("unknown op {name:?}"))?
                    .kind;
                let stride = if reduction && *input < 2 { 2 } else { 1 };
                let op = Op::new(&(&cp / "ops" / e), kind, c_cur, stride)
                    .ok_or_else(|| format!("op {name:?} (the zero op) cannot be trained"))?;
                built.push((op, *input));
            }
            cells.push(Cell {
                pre0,
                pre1,
                ops: built,
                concat: concat.clone(),
            });
            reduction_prev = reduction;
            c_pp = c_p;
            c_p = concat.len() as i64 * c_cur;
            if spec.auxiliary && i == aux_at {
                aux = Some((AuxHead::new(&(p / "aux"), c_p, spec.classes), i));
            }
        }
        let classifier = nn::linear(p / "classifier", c_p, spec.classes, Default::default());
        Ok(EvalNet {
            stem_conv,
            stem_bn,
            cells,
            aux,
            classifier,
        })
    }

    /// Logits of `x`; in training with drop-path probability `drop_prob`, and the auxiliary
    /// logits when the network has the head.
    pub fn forward(&self, x: &Tensor, train: bool, drop_prob: f64) -> Logits {
        let s = self.stem_bn.forward_t(&x.apply(&self.stem_conv), train);
        // The stem's output is both inputs of the first cell: one ReLU for both.
        let stem = std::rc::Rc::new(State::new(s));
        let (mut s0, mut s1) = (stem.clone(), stem);
        let mut aux = None;
        for (i, cell) in self.cells.iter().enumerate() {
            let out = std::rc::Rc::new(State::new(cell.forward(&s0, &s1, train, drop_prob)));
            s0 = s1;
            s1 = out;
            if let Some((head, at)) = &self.aux
                && train
                && *at == i
            {
                aux = Some(head.forward(s1.relu(), train));
            }
        }
        let pooled = s1.x.adaptive_avg_pool2d([1, 1]).flatten(1, -1);
        Logits {
            main: pooled.apply(&self.classifier),
            aux,
        }
    }
}
