//! Candidate operations and the blocks they are made of (spec §1.4–1.5), built on `tch::nn`.

use tch::Tensor;
use tch::nn::{self, ModuleT};

fn bn(p: nn::Path, c: i64, affine: bool) -> nn::BatchNorm {
    nn::batch_norm2d(
        p,
        c,
        nn::BatchNormConfig {
            affine,
            ..Default::default()
        },
    )
}

// A private constructor mirroring a conv layer's own arguments.
#[allow(clippy::too_many_arguments)]
fn conv(
    p: nn::Path,
    cin: i64,
    cout: i64,
    k: [i64; 2],
    stride: [i64; 2],
    pad: [i64; 2],
    dil: i64,
    groups: i64,
) -> nn::Conv<[i64; 2]> {
    let cfg = nn::ConvConfigND::<[i64; 2]> {
        stride,
        padding: pad,
        dilation: [dil, dil],
        groups,
        bias: false,
        ..Default::default()
    };
    nn::conv(p, cin, cout, k, cfg)
}

/// ReLU → Conv(k×k) → BN.
#[derive(Debug)]
pub struct ReluConvBn {
    conv: nn::Conv<[i64; 2]>,
    bn: nn::BatchNorm,
}

impl ReluConvBn {
    pub fn new(p: nn::Path, cin: i64, cout: i64, k: i64, stride: i64, pad: i64) -> Self {
        ReluConvBn {
            conv: conv(
                &p / "conv",
                cin,
                cout,
                [k, k],
                [stride, stride],
                [pad, pad],
                1,
                1,
            ),
            bn: bn(&p / "bn", cout, false),
        }
    }
    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        self.forward_relu(&x.relu(), train)
    }
    /// The same on an input that is already ReLU'd.
    pub fn forward_relu(&self, xr: &Tensor, train: bool) -> Tensor {
        self.bn.forward_t(&xr.apply(&self.conv), train)
    }
}

/// ReLU, two 1×1 stride-2 convs (the second on the input shifted by one pixel), concat, BN.
#[derive(Debug)]
pub struct FactorizedReduce {
    c1: nn::Conv<[i64; 2]>,
    c2: nn::Conv<[i64; 2]>,
    bn: nn::BatchNorm,
}

impl FactorizedReduce {
    pub fn new(p: nn::Path, cin: i64, cout: i64, affine: bool) -> Self {
        FactorizedReduce {
            c1: conv(&p / "c1", cin, cout / 2, [1, 1], [2, 2], [0, 0], 1, 1),
            c2: conv(&p / "c2", cin, cout / 2, [1, 1], [2, 2], [0, 0], 1, 1),
            bn: bn(&p / "bn", cout, affine),
        }
    }
    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        self.forward_relu(&x.relu(), train)
    }
    /// The same on an input that is already ReLU'd.
    pub fn forward_relu(&self, x: &Tensor, train: bool) -> Tensor {
        let shifted = x
            .narrow(2, 1, x.size()[2] - 1)
            .narrow(3, 1, x.size()[3] - 1);
        let y = Tensor::cat(&[x.apply(&self.c1), shifted.apply(&self.c2)], 1);
        self.bn.forward_t(&y, train)
    }
}

/// ReLU → depthwise (dilated) conv → pointwise conv → BN.
#[derive(Debug)]
pub struct DilConv {
    dw: nn::Conv<[i64; 2]>,
    pw: nn::Conv<[i64; 2]>,
    bn: nn::BatchNorm,
}

impl DilConv {
    pub fn new(p: nn::Path, c: i64, k: i64, stride: i64, pad: i64, dil: i64) -> Self {
        DilConv {
            dw: conv(
                &p / "dw",
                c,
                c,
                [k, k],
                [stride, stride],
                [pad, pad],
                dil,
                c,
            ),
            pw: conv(&p / "pw", c, c, [1, 1], [1, 1], [0, 0], 1, 1),
            bn: bn(&p / "bn", c, false),
        }
    }
    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        self.forward_relu(&x.relu(), train)
    }
    /// The same on an input that is already ReLU'd.
    pub fn forward_relu(&self, xr: &Tensor, train: bool) -> Tensor {
        self.bn
            .forward_t(&xr.apply(&self.dw).apply(&self.pw), train)
    }
}

/// An edge's input and, computed once and shared by every op that starts with a ReLU (on all the
/// edges that read this state), its ReLU.
/// The cache is filled on first use, in the grad mode of that moment: a caller that mixes
/// `no_grad` users with autograd users fills it beforehand (see `Cell::forward`).
pub struct Input<'a> {
    pub x: &'a Tensor,
    pub relu: &'a std::cell::OnceCell<Tensor>,
}

impl Input<'_> {
    pub fn relu(&self) -> &Tensor {
        self.relu.get_or_init(|| self.x.relu())
    }
}

/// One candidate operation on one edge.
#[derive(Debug)]
pub enum Op {
    /// `none`: a zero output (subsampled when the stride is 2).
    Zero { stride: i64 },
    /// Max or average pooling (average excludes padding), followed by a non-affine BN.
    Pool {
        max: bool,
        k: i64,
        stride: i64,
        bn: nn::BatchNorm,
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
    Conv31 {
        a: nn::Conv<[i64; 2]>,
        b: nn::Conv<[i64; 2]>,
        bn: nn::BatchNorm,
    },
}

impl Op {
    /// Builds the op called `name` for `c` channels at `stride`; `None` for an unknown name.
    pub fn new(p: nn::Path, name: &str, c: i64, stride: i64) -> Option<Op> {
        let s = stride;
        let pool = |max: bool, k: i64| Op::Pool {
            max,
            k,
            stride: s,
            bn: bn(&p / "bn", c, false),
        };
        Some(match name {
            "none" => Op::Zero { stride: s },
            "max_pool_3x3" => pool(true, 3),
            "max_pool_5x5" => pool(true, 5),
            "max_pool_7x7" => pool(true, 7),
            "avg_pool_3x3" => pool(false, 3),
            "skip_connect" if s == 1 => Op::Identity,
            "skip_connect" => Op::Reduce(FactorizedReduce::new(&p / "fr", c, c, false)),
            "sep_conv_3x3" | "sep_3x3" => Op::Sep(Box::new([
                DilConv::new(&p / "a", c, 3, s, 1, 1),
                DilConv::new(&p / "b", c, 3, 1, 1, 1),
            ])),
            "sep_conv_5x5" | "sep_5x5" => Op::Sep(Box::new([
                DilConv::new(&p / "a", c, 5, s, 2, 1),
                DilConv::new(&p / "b", c, 5, 1, 2, 1),
            ])),
            "sep_7x7" => Op::Sep(Box::new([
                DilConv::new(&p / "a", c, 7, s, 3, 1),
                DilConv::new(&p / "b", c, 7, 1, 3, 1),
            ])),
            "dil_conv_3x3" => Op::Dil(DilConv::new(&p / "d", c, 3, s, 2, 2)),
            "dil_conv_5x5" => Op::Dil(DilConv::new(&p / "d", c, 5, s, 4, 2)),
            "conv 1x1" => Op::Conv(ReluConvBn::new(&p / "c", c, c, 1, s, 0)),
            "conv 3x3" => Op::Conv(ReluConvBn::new(&p / "c", c, c, 3, s, 1)),
            "conv_3x1_1x3" => Op::Conv31 {
                a: conv(&p / "a", c, c, [1, 3], [1, s], [0, 1], 1, 1),
                b: conv(&p / "b", c, c, [3, 1], [s, 1], [1, 0], 1, 1),
                bn: bn(&p / "bn", c, false),
            },
            _ => return None,
        })
    }

    /// Whether the op's output is identically zero (it can be skipped in a weighted sum).
    pub fn is_zero(&self) -> bool {
        matches!(self, Op::Zero { .. })
    }

    pub fn forward(&self, input: &Input, train: bool) -> Tensor {
        let x = input.x;
        match self {
            Op::Zero { stride } => {
                let sz = x.size();
                let (h, w) = ((sz[2] + stride - 1) / stride, (sz[3] + stride - 1) / stride);
                Tensor::zeros([sz[0], sz[1], h, w], (x.kind(), x.device()))
            }
            Op::Pool { max, k, stride, bn } => {
                let pad = k / 2;
                let y = if *max {
                    x.max_pool2d([*k, *k], [*stride, *stride], [pad, pad], [1, 1], false)
                } else {
                    x.avg_pool2d([*k, *k], [*stride, *stride], [pad, pad], false, false, None)
                };
                bn.forward_t(&y, train)
            }
            Op::Identity => x.shallow_clone(),
            Op::Reduce(fr) => fr.forward_relu(input.relu(), train),
            Op::Sep(ab) => ab[1].forward(&ab[0].forward_relu(input.relu(), train), train),
            Op::Dil(d) => d.forward_relu(input.relu(), train),
            Op::Conv(c) => c.forward_relu(input.relu(), train),
            Op::Conv31 { a, b, bn } => bn.forward_t(&input.relu().apply(a).apply(b), train),
        }
    }
}
