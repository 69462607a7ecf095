//! The blocks the candidate ops are made of: the non-affine batch norm, the bias-free
//! convolution, and the ReLU-conv-BN, factorized-reduce and dilated-conv stacks. Each can be
//! fused across edges ([`Bn::fuse`] and the `fuse` of each block): the parts' tensors move into
//! one whose output is theirs side by side along channels (see `Op::fuse`).

use tch::Tensor;
use tch::nn;

use super::{BnMode, is_channels_last, to_channels_last};
use crate::engine::EngineError;

const BN_MOMENTUM: f64 = 0.1;
const BN_EPS: f64 = 1e-5;

/// Concatenates `parts` along dim 0 into one new tensor and moves each part's storage into it,
/// so the parts (parameters and buffers the optimizer and checkpoints know by name) and the
/// fused tensor share memory from then on.
fn fuse_storage(parts: &[&Tensor]) -> Result<Tensor, EngineError> {
    tch::no_grad(|| {
        let fused = Tensor::f_cat(parts, 0)
            .map_err(|e| EngineError::Fuse(format!("fusing weights: {e}")))?;
        if parts.iter().any(|p| !p.is_contiguous()) {
            return Err(EngineError::Fuse(
                "fusing weights: a part is not contiguous".into(),
            ));
        }
        let mut offset = 0i64;
        for p in parts {
            let (size, stride) = (p.size(), p.stride());
            let _ = p
                .shallow_clone()
                .f_set_source_tensor_storage_offset_(&fused, offset, size, stride)
                .map_err(|e| EngineError::Fuse(format!("fusing weights: {e}")))?;
            offset += p.numel() as i64;
        }
        Ok(fused)
    })
}

/// A non-affine batch norm (every BN inside a cell is one).
#[derive(Debug)]
pub struct Bn {
    mean: Tensor,
    var: Tensor,
    /// Constant scale 1 and shift 0 (no gradient), handed to libtorch with the input: the same
    /// normalisation, but on a GPU libtorch then runs it through cuDNN rather than its own
    /// kernels (it takes cuDNN only for a batch norm with both). See [`Bn::set_unit_affine`].
    unit_affine: Option<(Tensor, Tensor)>,
}

impl Bn {
    pub(crate) fn new(p: nn::Path, c: i64) -> Self {
        let b = nn::batch_norm2d(
            p,
            c,
            nn::BatchNormConfig {
                affine: false,
                momentum: BN_MOMENTUM,
                eps: BN_EPS,
                ..Default::default()
            },
        );
        Bn {
            mean: b.running_mean,
            var: b.running_var,
            unit_affine: None,
        }
    }

    /// Gives this batch norm a constant unit scale and zero shift (see the field's note).
    pub fn set_unit_affine(&mut self) {
        let ones = self.mean.ones_like();
        let zeros = self.mean.zeros_like();
        self.unit_affine = Some((ones, zeros));
    }

    pub fn forward(&self, x: &Tensor, mode: BnMode) -> Tensor {
        let (mean, var) = match mode {
            BnMode::BatchOnly => (None, None),
            _ => (Some(&self.mean), Some(&self.var)),
        };
        let (w, b) = match &self.unit_affine {
            Some((w, b)) => (Some(w), Some(b)),
            None => (None, None),
        };
        x.batch_norm(
            w,
            b,
            mean,
            var,
            mode != BnMode::Eval,
            BN_MOMENTUM,
            BN_EPS,
            true,
        )
    }

    /// The statistics this batch norm would normalise `y` by, without normalising it: per
    /// channel the mean and 1/√(var + eps), the batch's (recorded in the running statistics
    /// under [`BnMode::Train`], as [`Bn::forward`] would) or the running ones under
    /// [`BnMode::Eval`]. `copies` > 1: `y` holds the channels of one edge, the same input for
    /// each of `copies` edges whose channels this batch norm has side by side (a fused pool);
    /// the statistics returned then cover all of them.
    pub fn stats(&self, y: &Tensor, mode: BnMode, copies: i64) -> (Tensor, Tensor) {
        let (mean, var) = match mode {
            BnMode::Eval => (self.mean.shallow_clone(), self.var.shallow_clone()),
            _ => {
                let none: Option<&Tensor> = None;
                let (m, v) = y.batch_norm_update_stats(none, none, 0.0);
                let (m, v) = if copies > 1 {
                    (m.repeat([copies]), v.repeat([copies]))
                } else {
                    (m, v)
                };
                if mode == BnMode::Train {
                    // Running statistics take the unbiased variance, as libtorch's do.
                    let n = (y.numel() as i64 / y.size()[1]) as f64;
                    let unbiased = if n > 1.0 { n / (n - 1.0) } else { 1.0 };
                    tch::no_grad(|| {
                        let _ = self.mean.shallow_clone().lerp_(&m, BN_MOMENTUM);
                        let _ = self
                            .var
                            .shallow_clone()
                            .lerp_(&(&v * unbiased), BN_MOMENTUM);
                    });
                }
                (m, v)
            }
        };
        (mean, (var + BN_EPS).rsqrt())
    }

    /// The batch norms of `parts` as one over their channels side by side; the parts' buffers
    /// move into it (shared memory).
    pub fn fuse(parts: &[&Bn]) -> Result<Bn, EngineError> {
        let mut fused = Bn {
            mean: fuse_storage(&parts.iter().map(|b| &b.mean).collect::<Vec<_>>())?,
            var: fuse_storage(&parts.iter().map(|b| &b.var).collect::<Vec<_>>())?,
            unit_affine: None,
        };
        if parts.iter().any(|b| b.unit_affine.is_some()) {
            fused.set_unit_affine();
        }
        Ok(fused)
    }
}

/// A bias-free 2-d convolution.
#[derive(Debug)]
pub struct Conv {
    w: Tensor,
    stride: [i64; 2],
    pad: [i64; 2],
    dil: i64,
    groups: i64,
}

impl Conv {
    // Mirrors a conv layer's own arguments.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        p: nn::Path,
        cin: i64,
        cout: i64,
        k: [i64; 2],
        stride: [i64; 2],
        pad: [i64; 2],
        dil: i64,
        groups: i64,
    ) -> Self {
        let cfg = nn::ConvConfigND::<[i64; 2]> {
            stride,
            padding: pad,
            dilation: [dil, dil],
            groups,
            bias: false,
            ..Default::default()
        };
        Conv {
            w: nn::conv(p, cin, cout, k, cfg).ws,
            stride,
            pad,
            dil,
            groups,
        }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        x.conv2d(
            &self.w,
            None::<&Tensor>,
            self.stride,
            self.pad,
            [self.dil, self.dil],
            self.groups,
        )
    }

    /// The convs of `parts.len()` edges as one. `shared_input`: the fused conv reads the one
    /// input every edge reads (only for ungrouped convs); otherwise it reads the edges' inputs
    /// side by side along channels. Either way its output is the edges' outputs side by side.
    pub(super) fn fuse(parts: &[&Conv], shared_input: bool) -> Result<Conv, EngineError> {
        let first = parts[0];
        if shared_input && first.groups != 1 {
            return Err(EngineError::Fuse(
                "a grouped conv cannot read a shared input".into(),
            ));
        }
        Ok(Conv {
            w: fuse_storage(&parts.iter().map(|c| &c.w).collect::<Vec<_>>())?,
            stride: first.stride,
            pad: first.pad,
            dil: first.dil,
            groups: if shared_input {
                1
            } else {
                first.groups * parts.len() as i64
            },
        })
    }
}

/// ReLU → Conv(k×k) → BN.
#[derive(Debug)]
pub struct ReluConvBn {
    pub(super) conv: Conv,
    pub(crate) bn: Bn,
}

impl ReluConvBn {
    pub fn new(p: nn::Path, cin: i64, cout: i64, k: i64, stride: i64, pad: i64) -> Self {
        ReluConvBn {
            conv: Conv::new(
                &p / "conv",
                cin,
                cout,
                [k, k],
                [stride, stride],
                [pad, pad],
                1,
                1,
            ),
            bn: Bn::new(&p / "bn", cout),
        }
    }
    pub fn forward(&self, x: &Tensor, mode: BnMode) -> Tensor {
        self.forward_relu(&x.relu(), mode)
    }
    /// The same on an input that is already ReLU'd.
    pub fn forward_relu(&self, xr: &Tensor, mode: BnMode) -> Tensor {
        self.bn.forward(&self.conv.forward(xr), mode)
    }
    pub(super) fn fuse(parts: &[&ReluConvBn]) -> Result<Self, EngineError> {
        Ok(ReluConvBn {
            conv: Conv::fuse(&parts.iter().map(|c| &c.conv).collect::<Vec<_>>(), true)?,
            bn: Bn::fuse(&parts.iter().map(|c| &c.bn).collect::<Vec<_>>())?,
        })
    }
}

/// ReLU, two 1×1 stride-2 convs (the second on the input shifted by one pixel), concat, BN.
#[derive(Debug)]
pub struct FactorizedReduce {
    c1: Conv,
    c2: Conv,
    pub(crate) bn: Bn,
    /// How many edges this holds side by side (1 unless fused).
    copies: i64,
}

impl FactorizedReduce {
    pub fn new(p: nn::Path, cin: i64, cout: i64) -> Self {
        FactorizedReduce {
            c1: Conv::new(&p / "c1", cin, cout / 2, [1, 1], [2, 2], [0, 0], 1, 1),
            c2: Conv::new(&p / "c2", cin, cout / 2, [1, 1], [2, 2], [0, 0], 1, 1),
            bn: Bn::new(&p / "bn", cout),
            copies: 1,
        }
    }
    pub fn forward(&self, x: &Tensor, mode: BnMode) -> Tensor {
        self.forward_relu(&x.relu(), mode)
    }
    /// The same on an input that is already ReLU'd.
    pub fn forward_relu(&self, x: &Tensor, mode: BnMode) -> Tensor {
        self.bn.forward(&self.pre_bn(x), mode)
    }
    /// The two convs as one ([`factorized_reduce`]); with `copies` edges fused, each edge's
    /// halves come out next to each other: [edge][c1 | c2].
    pub(super) fn pre_bn(&self, x: &Tensor) -> Tensor {
        factorized_reduce(x, &self.c1.w, &self.c2.w, self.copies)
    }
    pub(super) fn fuse(parts: &[&FactorizedReduce]) -> Result<Self, EngineError> {
        Ok(FactorizedReduce {
            c1: Conv::fuse(&parts.iter().map(|f| &f.c1).collect::<Vec<_>>(), true)?,
            c2: Conv::fuse(&parts.iter().map(|f| &f.c2).collect::<Vec<_>>(), true)?,
            bn: Bn::fuse(&parts.iter().map(|f| &f.bn).collect::<Vec<_>>())?,
            copies: parts.len() as i64,
        })
    }
}

/// A factorized reduce's two 1×1 stride-2 convs `w1`, `w2` (each `copies` × C/2 outputs) on
/// `x`, run as one 2×2 stride-2 conv: `w1` at the window's top-left tap, `w2` at
/// its bottom-right, so one conv gives `[conv1(x) | conv2(x shifted by one pixel)]` per copy
/// (for even H and W, the only sizes where the two halves line up). Spares the shifted view,
/// its backward (a full-size zero gradient and a strided copy) and the concatenation: 2–3×
/// faster on the CPU (BENCHMARKS.md, "The factorized reduce as one conv").
pub fn factorized_reduce(x: &Tensor, w1: &Tensor, w2: &Tensor, copies: i64) -> Tensor {
    let sz = w1.size();
    let per = [copies, sz[0] / copies, sz[1], 1, 1];
    let tap = |w: &Tensor, pad: [i64; 4]| w.reshape(per).constant_pad_nd(pad);
    let w = Tensor::cat(&[tap(w1, [0, 1, 0, 1]), tap(w2, [1, 0, 1, 0])], 1).view([
        2 * sz[0],
        sz[1],
        2,
        2,
    ]);
    let w = if is_channels_last(x) {
        to_channels_last(&w)
    } else {
        w
    };
    x.conv2d(&w, None::<&Tensor>, [2, 2], [0, 0], [1, 1], 1)
}

/// ReLU → depthwise (dilated) conv → pointwise conv → BN.
#[derive(Debug)]
pub struct DilConv {
    dw: Conv,
    pw: Conv,
    pub(super) bn: Bn,
}

impl DilConv {
    pub fn new(p: nn::Path, c: i64, k: i64, stride: i64, pad: i64, dil: i64) -> Self {
        DilConv {
            dw: Conv::new(
                &p / "dw",
                c,
                c,
                [k, k],
                [stride, stride],
                [pad, pad],
                dil,
                c,
            ),
            pw: Conv::new(&p / "pw", c, c, [1, 1], [1, 1], [0, 0], 1, 1),
            bn: Bn::new(&p / "bn", c),
        }
    }
    pub fn forward(&self, x: &Tensor, mode: BnMode) -> Tensor {
        self.forward_relu(&x.relu(), mode)
    }
    /// The same on an input that is already ReLU'd.
    pub fn forward_relu(&self, xr: &Tensor, mode: BnMode) -> Tensor {
        self.bn.forward(&self.pre_bn(xr), mode)
    }
    /// What the BN normalises: pointwise(depthwise(xr)).
    pub(super) fn pre_bn(&self, xr: &Tensor) -> Tensor {
        self.pw.forward(&self.dw.forward(xr))
    }
    pub(super) fn fuse(parts: &[&DilConv]) -> Result<Self, EngineError> {
        Ok(DilConv {
            dw: Conv::fuse(&parts.iter().map(|d| &d.dw).collect::<Vec<_>>(), false)?,
            pw: Conv::fuse(&parts.iter().map(|d| &d.pw).collect::<Vec<_>>(), false)?,
            bn: Bn::fuse(&parts.iter().map(|d| &d.bn).collect::<Vec<_>>())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use tch::{Device, Kind, Tensor, nn};

    use super::{Bn, BnMode, factorized_reduce};
    use crate::engine::ops::to_channels_last;

    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a - b).abs().max().double_value(&[])
    }

    /// The one 2×2 conv of `factorized_reduce` against the two 1×1 stride-2 convs it
    /// replaces (the second on the input shifted by a pixel, then the halves side by side per
    /// copy): same values and same gradients for the input and both weights, for one edge and
    /// for three fused, in both layouts.
    #[test]
    fn factorized_reduce_as_one_conv_matches_two() {
        let _rng = crate::engine::test_rng_lock();
        tch::manual_seed(9);
        let opts = (Kind::Float, Device::Cpu);
        for (copies, channels_last) in [(1, false), (3, false), (1, true), (3, true)] {
            let (cin, half) = (6, 4);
            let layout = |t: Tensor| {
                let t = if channels_last {
                    to_channels_last(&t)
                } else {
                    t
                };
                t.set_requires_grad(true)
            };
            let x = layout(Tensor::randn([2, cin, 8, 8], opts));
            let w1 = layout(Tensor::randn([copies * half, cin, 1, 1], opts));
            let w2 = layout(Tensor::randn([copies * half, cin, 1, 1], opts));
            let one = factorized_reduce(&x, &w1, &w2, copies);
            let conv = |x: &Tensor, w: &Tensor| {
                x.conv2d(w, None::<&Tensor>, [2, 2], [0, 0], [1, 1], 1)
                    .view([2, copies, half, 4, 4])
            };
            let shifted = x.narrow(2, 1, 7).narrow(3, 1, 7);
            let two = Tensor::cat(&[conv(&x, &w1), conv(&shifted, &w2)], 2).view([
                2,
                copies * 2 * half,
                4,
                4,
            ]);
            let what = format!("copies {copies}, channels-last {channels_last}");
            assert_eq!(one.size(), two.size(), "{what}");
            assert!(max_diff(&one, &two) < 1e-5, "{what}");
            assert_eq!(
                crate::engine::ops::is_channels_last(&one),
                channels_last,
                "{what}"
            );
            let g = Tensor::randn(one.size(), opts);
            let ga = Tensor::run_backward(
                &[(&one * &g).sum(Kind::Float)],
                &[&x, &w1, &w2],
                false,
                false,
            );
            let gb = Tensor::run_backward(
                &[(&two * &g).sum(Kind::Float)],
                &[&x, &w1, &w2],
                false,
                false,
            );
            for (a, b) in ga.iter().zip(&gb) {
                assert!(
                    max_diff(a, b) < 1e-4,
                    "{what}: gradient off by {}",
                    max_diff(a, b)
                );
            }
            // A shift the wrong way round would not match: the test can tell the taps apart.
            let swapped = factorized_reduce(&x, &w2, &w1, copies);
            assert!(max_diff(&swapped, &two) > 1e-2, "{what}");
        }
    }

    /// `Bn::stats` gives what `Bn::forward` normalises by, in every mode, and records the same
    /// running statistics; with `copies` > 1 one edge's channels stand for each fused edge's.
    #[test]
    fn stats_match_the_batch_norm_they_replace() {
        let _rng = crate::engine::test_rng_lock();
        tch::manual_seed(5);
        let vs = nn::VarStore::new(Device::Cpu);
        let (by_stats, by_forward) = (Bn::new(vs.root() / "a", 6), Bn::new(vs.root() / "b", 6));
        let y = Tensor::randn([4, 6, 5, 5], (Kind::Float, Device::Cpu)) * 3.0 + 1.5;
        for mode in [
            BnMode::Train,
            BnMode::BatchOnly,
            BnMode::Eval,
            BnMode::Train,
        ] {
            let (mean, invstd) = by_stats.stats(&y, mode, 1);
            let normed = (&y - mean.view([1, 6, 1, 1])) * invstd.view([1, 6, 1, 1]);
            let want = by_forward.forward(&y, mode);
            assert!(max_diff(&normed, &want) < 1e-5, "{mode:?}");
            assert!(
                max_diff(&by_stats.mean, &by_forward.mean) < 1e-6,
                "{mode:?}"
            );
            assert!(max_diff(&by_stats.var, &by_forward.var) < 1e-5, "{mode:?}");
        }
        // Two recording passes moved the running statistics away from their start.
        assert!(max_diff(&by_stats.mean, &by_stats.mean.zeros_like()) > 0.1);
        // A pool's output fused over 3 edges: stats of one edge's 2 channels, for all 6.
        let fused = Bn::new(vs.root() / "c", 6);
        let single = Bn::new(vs.root() / "d", 6);
        let one = y.narrow(1, 0, 2);
        let (mean, invstd) = fused.stats(&one, BnMode::Train, 3);
        let want = single.forward(&one.repeat([1, 3, 1, 1]), BnMode::Train);
        let normed =
            (one.repeat([1, 3, 1, 1]) - mean.view([1, 6, 1, 1])) * invstd.view([1, 6, 1, 1]);
        assert!(max_diff(&normed, &want) < 1e-5);
        assert!(max_diff(&fused.var, &single.var) < 1e-5);
    }
}
