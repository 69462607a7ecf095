//! Candidate operations and the blocks they are made of (spec §1.4–1.5).
//!
//! Weights are created through `tch::nn` (so names and initialisation are the usual ones) and
//! kept as plain tensors, which lets [`Op::fuse`] lay the ops of several edges side by side:
//! the NASP architecture step then runs each op type once for all the edges that read the same
//! state, instead of once per edge (the step is bound by kernel launches on a GPU).
//!
//! This file holds the op itself ([`Op`]), its input ([`Input`]) and the activation-layout
//! helpers; `layers` holds the blocks.

mod layers;

use std::cell::OnceCell;

use tch::Tensor;
use tch::nn;

use crate::engine::EngineError;
use crate::space::OpKind;

pub use layers::{Bn, Conv, DilConv, FactorizedReduce, ReluConvBn, factorized_reduce};

/// How batch norm treats one pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BnMode {
    /// Batch statistics, running statistics updated (training).
    Train,
    /// Running statistics (evaluation).
    Eval,
    /// Batch statistics, running statistics left alone (a second pass over a batch whose
    /// statistics another pass already recorded).
    BatchOnly,
}

impl BnMode {
    pub fn of(train: bool) -> Self {
        if train { BnMode::Train } else { BnMode::Eval }
    }
}

/// Whether a 4-d activation is laid out channels-last (N, H, W, C in memory), the layout
/// `channels_last = true` keeps every activation in (tch has no memory-format argument; the
/// helpers below build the layout from permutes).
pub fn is_channels_last(t: &Tensor) -> bool {
    t.dim() == 4 && t.size()[1] > 1 && t.stride()[1] == 1
}

/// A 4-d tensor seen as N × H × W × C (for a channels-last one, its memory order).
pub fn nhwc(t: &Tensor) -> Tensor {
    t.permute([0, 2, 3, 1])
}

/// An N × H × W × C tensor seen as N × C × H × W (channels-last when it was contiguous).
pub fn from_nhwc(t: &Tensor) -> Tensor {
    t.permute([0, 3, 1, 2])
}

/// `x` (N × C × H × W) as a channels-last tensor (a copy).
pub fn to_channels_last(x: &Tensor) -> Tensor {
    from_nhwc(&nhwc(x).contiguous())
}

/// `x` repeated `copies` times side by side along channels (`repeat`), in `x`'s layout.
fn repeat_channels(x: &Tensor, copies: i64) -> Tensor {
    if !is_channels_last(x) {
        return x.repeat([1, copies, 1, 1]);
    }
    let sz = x.size();
    from_nhwc(
        &nhwc(x)
            .unsqueeze(3)
            .expand([sz[0], sz[2], sz[3], copies, sz[1]], false)
            .reshape([sz[0], sz[2], sz[3], copies * sz[1]]),
    )
}

/// Zeros of shape `n × c × h × w` in the layout of `like`.
fn zeros_in_layout(like: &Tensor, [n, c, h, w]: [i64; 4]) -> Tensor {
    let opts = (like.kind(), like.device());
    if is_channels_last(like) {
        from_nhwc(&Tensor::zeros([n, h, w, c], opts))
    } else {
        Tensor::zeros([n, c, h, w], opts)
    }
}

/// An op's input. The ReLU of `x` is computed once and shared by every op that starts with one
/// (on all the edges that read this state); the cache is filled on first use, in the grad mode
/// of that moment, so a caller that mixes `no_grad` users with autograd users keeps separate
/// caches. For fused ops, `copies` > 1 and the per-edge forms hold `x` (or its ReLU) once per
/// edge side by side along channels.
pub struct Input<'a> {
    pub x: &'a Tensor,
    relu: &'a OnceCell<Tensor>,
    copies: i64,
    x_each: OnceCell<Tensor>,
    relu_each: OnceCell<Tensor>,
}

impl<'a> Input<'a> {
    /// The input of one edge.
    pub fn new(x: &'a Tensor, relu: &'a OnceCell<Tensor>) -> Self {
        Input::fused(x, relu, 1)
    }

    /// The input of `copies` fused edges that all read `x`.
    pub fn fused(x: &'a Tensor, relu: &'a OnceCell<Tensor>, copies: i64) -> Self {
        Input {
            x,
            relu,
            copies,
            x_each: OnceCell::new(),
            relu_each: OnceCell::new(),
        }
    }

    pub fn relu(&self) -> &Tensor {
        self.relu.get_or_init(|| self.x.relu())
    }

    fn x_each(&self) -> &Tensor {
        if self.copies == 1 {
            return self.x;
        }
        self.x_each
            .get_or_init(|| repeat_channels(self.x, self.copies))
    }

    fn relu_each(&self) -> &Tensor {
        if self.copies == 1 {
            return self.relu();
        }
        self.relu_each
            .get_or_init(|| repeat_channels(self.relu(), self.copies))
    }
}

/// One candidate operation on one edge (or, fused, on several edges that read the same state).
#[derive(Debug)]
pub enum Op {
    /// `none`: a zero output (subsampled when the stride is 2).
    Zero { stride: i64 },
    /// Max or average pooling (average excludes padding), followed by a non-affine BN.
    Pool {
        max: bool,
        k: i64,
        stride: i64,
        bn: Bn,
    },
    /// `skip_connect` at stride 1.
    Identity,
    /// `skip_connect` at stride 2.
    Reduce(FactorizedReduce),
    /// Separable conv applied twice.
    Sep(Box<[DilConv; 2]>),
    /// Dilated separable conv.
    Dil(DilConv),
    /// `conv 1x1` / `conv 3x3`.
    Conv(ReluConvBn),
    /// `conv_3x1_1x3`: ReLU → 1×3 conv → 3×1 conv → BN.
    Conv31 { a: Conv, b: Conv, bn: Bn },
}

impl Op {
    /// Builds an op of `kind` (a row of the op table, `crate::space`) for `c` channels at
    /// `stride`. Parameter names under `p` key checkpoints: keep them stable.
    pub fn new(p: nn::Path, kind: OpKind, c: i64, stride: i64) -> Op {
        let s = stride;
        // Separable and dilated convolutions pad to keep the size: (k - 1) / 2 · dilation.
        let sep = |k: i64| {
            Op::Sep(Box::new([
                DilConv::new(&p / "a", c, k, s, (k - 1) / 2, 1),
                DilConv::new(&p / "b", c, k, 1, (k - 1) / 2, 1),
            ]))
        };
        match kind {
            OpKind::Zero => Op::Zero { stride: s },
            OpKind::Pool { max, k } => Op::Pool {
                max,
                k,
                stride: s,
                bn: Bn::new(&p / "bn", c),
            },
            OpKind::Skip if s == 1 => Op::Identity,
            OpKind::Skip => Op::Reduce(FactorizedReduce::new(&p / "fr", c, c)),
            OpKind::Sep { k } => sep(k),
            OpKind::Dil { k } => Op::Dil(DilConv::new(&p / "d", c, k, s, k - 1, 2)),
            OpKind::Conv { k } => Op::Conv(ReluConvBn::new(&p / "c", c, c, k, s, (k - 1) / 2)),
            OpKind::Factorized { k } => Op::Conv31 {
                a: Conv::new(&p / "a", c, c, [1, k], [1, s], [0, (k - 1) / 2], 1, 1),
                b: Conv::new(&p / "b", c, c, [k, 1], [s, 1], [(k - 1) / 2, 0], 1, 1),
                bn: Bn::new(&p / "bn", c),
            },
        }
    }

    /// Whether the op's output is identically zero (it can be skipped in a weighted sum).
    pub fn is_zero(&self) -> bool {
        matches!(self, Op::Zero { .. })
    }

    /// The same op on every edge of `parts` (all built alike and reading the same state) as one
    /// op whose output is theirs side by side along channels. The parts' weights and buffers
    /// move into the fused op's tensors (shared memory), so both stay in step.
    pub fn fuse(parts: &[&Op]) -> Result<Op, EngineError> {
        fn each<'a, T>(parts: &[&'a Op], f: impl Fn(&'a Op) -> Option<&'a T>) -> Vec<&'a T> {
            parts.iter().filter_map(|o| f(o)).collect()
        }
        let Some(first) = parts.first() else {
            return Err(EngineError::Fuse("nothing to fuse".into()));
        };
        if !parts
            .iter()
            .all(|o| std::mem::discriminant(*o) == std::mem::discriminant(*first))
        {
            return Err(EngineError::Fuse("fused ops differ in kind".into()));
        }
        Ok(match first {
            Op::Zero { stride } => Op::Zero { stride: *stride },
            Op::Identity => Op::Identity,
            Op::Pool { max, k, stride, .. } => Op::Pool {
                max: *max,
                k: *k,
                stride: *stride,
                bn: Bn::fuse(&each(parts, |o| match o {
                    Op::Pool { bn, .. } => Some(bn),
                    _ => None,
                }))?,
            },
            Op::Reduce(_) => Op::Reduce(FactorizedReduce::fuse(&each(parts, |o| match o {
                Op::Reduce(f) => Some(f),
                _ => None,
            }))?),
            Op::Sep(_) => {
                let seps = each(parts, |o| match o {
                    Op::Sep(ab) => Some(&**ab),
                    _ => None,
                });
                let half =
                    |i: usize| DilConv::fuse(&seps.iter().map(|ab| &ab[i]).collect::<Vec<_>>());
                Op::Sep(Box::new([half(0)?, half(1)?]))
            }
            Op::Dil(_) => Op::Dil(DilConv::fuse(&each(parts, |o| match o {
                Op::Dil(d) => Some(d),
                _ => None,
            }))?),
            Op::Conv(_) => Op::Conv(ReluConvBn::fuse(&each(parts, |o| match o {
                Op::Conv(c) => Some(c),
                _ => None,
            }))?),
            Op::Conv31 { .. } => {
                let (mut a, mut b, mut bn) = (vec![], vec![], vec![]);
                for o in parts {
                    if let Op::Conv31 { a: x, b: y, bn: z } = o {
                        a.push(x);
                        b.push(y);
                        bn.push(z);
                    }
                }
                Op::Conv31 {
                    a: Conv::fuse(&a, true)?,
                    b: Conv::fuse(&b, false)?,
                    bn: Bn::fuse(&bn)?,
                }
            }
        })
    }

    pub fn forward(&self, input: &Input, mode: BnMode) -> Tensor {
        match (self, self.final_bn()) {
            (Op::Zero { stride }, _) => {
                let x = input.x;
                let sz = x.size();
                let (h, w) = ((sz[2] + stride - 1) / stride, (sz[3] + stride - 1) / stride);
                zeros_in_layout(x, [sz[0], sz[1] * input.copies, h, w])
            }
            (Op::Identity, _) => input.x_each().shallow_clone(),
            (_, Some(bn)) => match self.pre_bn(input, mode) {
                Some(y) => bn.forward(&y, mode),
                None => input.x_each().shallow_clone(),
            },
            (_, None) => input.x_each().shallow_clone(),
        }
    }

    /// Calls `f` on every batch norm of the op.
    pub fn for_each_bn(&mut self, f: &mut dyn FnMut(&mut Bn)) {
        match self {
            Op::Zero { .. } | Op::Identity => {}
            Op::Pool { bn, .. } | Op::Conv31 { bn, .. } => f(bn),
            Op::Reduce(fr) => f(&mut fr.bn),
            Op::Sep(ab) => {
                f(&mut ab[0].bn);
                f(&mut ab[1].bn);
            }
            Op::Dil(d) => f(&mut d.bn),
            Op::Conv(c) => f(&mut c.bn),
        }
    }

    /// The op's last batch norm (every op but `none` and the stride-1 skip ends with one).
    pub fn final_bn(&self) -> Option<&Bn> {
        match self {
            Op::Zero { .. } | Op::Identity => None,
            Op::Pool { bn, .. } | Op::Conv31 { bn, .. } => Some(bn),
            Op::Reduce(fr) => Some(&fr.bn),
            Op::Sep(ab) => Some(&ab[1].bn),
            Op::Dil(d) => Some(&d.bn),
            Op::Conv(c) => Some(&c.bn),
        }
    }

    /// The input of the op's last batch norm (`None` for ops without one). A fused pool pools
    /// the shared input once and then repeats it for each edge.
    pub fn pre_bn(&self, input: &Input, mode: BnMode) -> Option<Tensor> {
        let (y, shared) = self.pre_bn_once(input, mode)?;
        Some(if shared && input.copies > 1 {
            repeat_channels(&y, input.copies)
        } else {
            y
        })
    }

    /// [`Op::pre_bn`] without repeating what is the same for every fused edge: `true` with a
    /// pool's output (one edge's channels, the same for each edge), `false` with all edges'.
    pub fn pre_bn_once(&self, input: &Input, mode: BnMode) -> Option<(Tensor, bool)> {
        Some((
            match self {
                Op::Zero { .. } | Op::Identity => return None,
                Op::Pool { max, k, stride, .. } => {
                    let (x, pad) = (input.x, k / 2);
                    let y = if *max {
                        x.max_pool2d([*k, *k], [*stride, *stride], [pad, pad], [1, 1], false)
                    } else {
                        x.avg_pool2d([*k, *k], [*stride, *stride], [pad, pad], false, false, None)
                    };
                    return Some((y, true));
                }
                Op::Reduce(fr) => fr.pre_bn(input.relu()),
                Op::Sep(ab) => ab[1].pre_bn(&ab[0].forward_relu(input.relu_each(), mode).relu()),
                Op::Dil(d) => d.pre_bn(input.relu_each()),
                Op::Conv(c) => c.conv.forward(input.relu()),
                Op::Conv31 { a, b, .. } => b.forward(&a.forward(input.relu())),
            },
            false,
        ))
    }
}
