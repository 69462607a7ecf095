//! The data set on the compute device, and batches made there: sampled, cropped, flipped and
//! normalised by tensor ops, so no image crosses from host to device per step.
//!
//! All random choices come from the host RNG and are uploaded once per epoch as a small plan
//! (index, crop offsets, flip per image), which keeps runs reproducible across devices and makes
//! resume exact: the plan of an epoch is a pure function of the RNG state at its start.

use tch::{Device, Kind, Tensor};

use crate::dataset::{Images, PIXELS};
use crate::rng::Rng;

const PAD: i64 = 4;
const SIDE: i64 = 32 + 2 * PAD;

/// Images on the device, zero-padded by 4 pixels (uint8, N×3×40×40), and labels (int64).
pub struct DeviceData {
    padded: Tensor,
    labels: Tensor,
    grid: Tensor,
    grid_flip: Tensor,
    shift: Tensor,
    inv_std: Tensor,
    pub n_train: usize,
    pub n_valid: usize,
    pub image_size: i64,
    pub device: Device,
}

/// One epoch's random draws, on the device: rows of (image index, oy, ox, flip).
pub struct EpochPlan {
    pub train: Tensor,
    pub valid: Tensor,
    pub steps: usize,
    pub batch: usize,
    pub n_train: usize,
}

/// Draws one image's crop offsets and flip.
fn draw_aug(rng: &mut Rng) -> [i64; 3] {
    [
        rng.below(2 * PAD as u64 + 1) as i64,
        rng.below(2 * PAD as u64 + 1) as i64,
        rng.below(2) as i64,
    ]
}

impl DeviceData {
    /// Uploads `images`, split into the first `train_portion` (weights) and the rest
    /// (architecture/validation).
    pub fn new(images: &Images, train_portion: f64, image_size: i64, device: Device) -> DeviceData {
        let n_train = ((images.len() as f64) * train_portion).floor() as usize;
        let n_train = n_train.clamp(1, images.len().saturating_sub(1).max(1));
        DeviceData::with_split(images, n_train, image_size, device)
    }

    /// Uploads `images`, of which the first `n_train` train the weights and the rest are
    /// evaluated (`nasp-tui train`: the training set, then the test set).
    pub fn with_split(images: &Images, n_train: usize, image_size: i64, device: Device) -> Self {
        let n = images.len() as i64;
        let raw = Tensor::from_slice(&images.pixels).view([n, 3, 32, 32]);
        let padded = raw
            .constant_pad_nd([PAD, PAD, PAD, PAD])
            .contiguous()
            .to_device(device);
        let labels = Tensor::from_slice(&images.labels)
            .to_kind(Kind::Int64)
            .to_device(device);
        let c = Tensor::arange(3, (Kind::Int64, Device::Cpu)).view([3, 1, 1]) * (SIDE * SIDE);
        let i = Tensor::arange(32, (Kind::Int64, Device::Cpu)).view([1, 32, 1]) * SIDE;
        let j = Tensor::arange(32, (Kind::Int64, Device::Cpu)).view([1, 1, 32]);
        let grid = (&c + &i + &j).to_device(device);
        let flipped_j: Tensor = j.neg() + 31;
        let grid_flip = (&c + &i + flipped_j).to_device(device);
        let (mean, std) = (images.mean, images.std);
        let shift: Vec<f32> = mean.iter().zip(std).map(|(m, s)| m / s).collect();
        let shift = Tensor::from_slice(&shift)
            .view([1, 3, 1, 1])
            .to_device(device);
        let inv_std = Tensor::from_slice(&std.map(|s| 1.0 / (255.0 * s)))
            .view([1, 3, 1, 1])
            .to_device(device);
        DeviceData {
            padded: padded.view([-1]),
            labels,
            grid,
            grid_flip,
            shift,
            inv_std,
            n_train,
            n_valid: images.len() - n_train,
            image_size,
            device,
        }
    }

    /// The plan of one epoch: a permutation of the train split in batches, and for every step a
    /// batch of distinct random validation images, each with its crop and flip.
    pub fn plan_epoch(&self, rng: &mut Rng, batch: usize) -> EpochPlan {
        let steps = self.n_train.div_ceil(batch);
        let mut train = Vec::with_capacity(self.n_train * 4);
        for idx in rng.permutation(self.n_train) {
            train.push(idx as i64);
            train.extend_from_slice(&draw_aug(rng));
        }
        let vb = batch.min(self.n_valid);
        let mut valid = Vec::with_capacity(steps * vb * 4);
        for _ in 0..steps {
            for idx in rng.sample_distinct(self.n_valid, vb) {
                valid.push((self.n_train + idx) as i64);
                valid.extend_from_slice(&draw_aug(rng));
            }
        }
        EpochPlan {
            train: Tensor::from_slice(&train)
                .view([-1, 4])
                .to_device(self.device),
            valid: Tensor::from_slice(&valid)
                .view([-1, 4])
                .to_device(self.device),
            steps,
            batch,
            n_train: self.n_train,
        }
    }

    /// Images and labels for plan rows (index, oy, ox, flip): N×3×S×S float, N int64.
    pub fn gather(&self, rows: &Tensor) -> (Tensor, Tensor) {
        let b = rows.size()[0];
        let idx = rows.select(1, 0);
        let base = &idx * (3 * SIDE * SIDE) + rows.select(1, 1) * SIDE + rows.select(1, 2);
        let flip = rows.select(1, 3).view([b, 1, 1, 1]).ne(0);
        let offsets = self
            .grid
            .unsqueeze(0)
            .where_self(&flip.logical_not(), &self.grid_flip.unsqueeze(0));
        let lin = base.view([b, 1, 1, 1]) + offsets;
        let bytes = self.padded.take(&lin);
        let x = bytes.to_kind(Kind::Float) * &self.inv_std - &self.shift;
        let x = if self.image_size < 32 {
            let k = 32 / self.image_size;
            x.avg_pool2d([k, k], [k, k], [0, 0], false, true, None)
        } else {
            x
        };
        (x, self.labels.index_select(0, &idx))
    }

    /// The train batch of step `s` of a plan.
    pub fn train_batch(&self, plan: &EpochPlan, s: usize) -> (Tensor, Tensor) {
        let start = s * plan.batch;
        let len = plan.batch.min(plan.n_train - start);
        self.gather(&plan.train.narrow(0, start as i64, len as i64))
    }

    /// The validation batch of step `s` of a plan.
    pub fn valid_batch(&self, plan: &EpochPlan, s: usize) -> (Tensor, Tensor) {
        let vb = plan.valid.size()[0] / plan.steps as i64;
        self.gather(&plan.valid.narrow(0, s as i64 * vb, vb))
    }

    /// Un-augmented validation images (centre crop, no flip) for evaluation: the first `limit`
    /// (0 = the whole split) in chunks of `chunk`. One upload for all of them.
    pub fn eval_batches(&self, limit: usize, chunk: usize) -> Vec<Tensor> {
        let batch = chunk.max(1);
        let n = if limit == 0 {
            self.n_valid
        } else {
            self.n_valid.min(limit)
        };
        if n == 0 {
            return Vec::new();
        }
        let rows: Vec<i64> = (0..n)
            .flat_map(|i| [(self.n_train + i) as i64, PAD, PAD, 0])
            .collect();
        let all = Tensor::from_slice(&rows)
            .view([-1, 4])
            .to_device(self.device);
        (0..n)
            .step_by(batch)
            .map(|start| all.narrow(0, start as i64, batch.min(n - start) as i64))
            .collect()
    }
}

/// Number of pixels in one image (for tests).
pub const IMAGE_PIXELS: usize = PIXELS;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::{augment_host, synthetic};

    #[test]
    fn eval_batches_cover_the_validation_split_once() {
        crate::engine::one_libtorch_thread();
        let imgs = synthetic(12, 3);
        let d = DeviceData::new(&imgs, 0.5, 32, Device::Cpu);
        let sizes = |v: Vec<Tensor>| v.iter().map(|t| t.size()[0]).collect::<Vec<_>>();
        assert_eq!(sizes(d.eval_batches(0, 4)), vec![4, 2]);
        assert_eq!(sizes(d.eval_batches(4, 4)), vec![4]);
        assert_eq!(sizes(d.eval_batches(5, 2)), vec![2, 2, 1]);
        let all = d.eval_batches(0, 4);
        let idx: Vec<i64> = all
            .iter()
            .flat_map(|t| Vec::<i64>::try_from(t.select(1, 0)).unwrap())
            .collect();
        assert_eq!(idx, (6..12).collect::<Vec<i64>>());
    }

    #[test]
    fn tensor_augmentation_equals_host_reference() {
        crate::engine::one_libtorch_thread();
        let imgs = synthetic(12, 3);
        let d = DeviceData::new(&imgs, 0.5, 32, Device::Cpu);
        let mut rng = Rng::new(9);
        let plan = d.plan_epoch(&mut rng, 4);
        let rows = Vec::<i64>::try_from(plan.train.reshape([-1])).unwrap();
        let (x, y) = d.train_batch(&plan, 0);
        assert_eq!(x.size(), vec![4, 3, 32, 32]);
        let xs = Vec::<f32>::try_from(x.reshape([-1])).unwrap();
        for b in 0..4 {
            let r = &rows[b * 4..b * 4 + 4];
            let img = &imgs.pixels[r[0] as usize * PIXELS..(r[0] as usize + 1) * PIXELS];
            let want = augment_host(img, r[1] as usize, r[2] as usize, r[3] != 0);
            let got = &xs[b * PIXELS..(b + 1) * PIXELS];
            let err = want
                .iter()
                .zip(got)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(err < 1e-5, "image {b}: max error {err}");
            assert_eq!(
                y.int64_value(&[b as i64]),
                i64::from(imgs.labels[r[0] as usize])
            );
        }
    }
}
