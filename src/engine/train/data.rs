//! The data of `nasp-tui train` on the device: every training image (crop, flip, normalise as
//! the search does, then cutout) and the test set (no augmentation). An epoch's random draws
//! (order, crops, flips, cutout centres) come from the host RNG as one plan, so an epoch is a
//! pure function of the RNG state at its start and a resumed run draws the same batches.

use tch::{Device, Kind, Tensor};

use crate::dataset::Images;
use crate::engine::device_data::DeviceData;
use crate::rng::Rng;

/// Columns of a plan row: image index, crop offsets (y, x), flip, cutout centre (y, x).
const COLS: i64 = 6;

/// Training and test images on one device.
pub struct TrainData {
    data: DeviceData,
    /// Cutout side at the network's image size (0 = none).
    cutout: i64,
}

impl TrainData {
    /// Uploads `train` then `test` to `device`; `cutout` is in 32-px pixels (scaled with the
    /// image size).
    pub fn new(
        train: &Images,
        test: &Images,
        image_size: i64,
        cutout: i64,
        device: Device,
    ) -> TrainData {
        let mut all = train.clone();
        all.pixels.extend_from_slice(&test.pixels);
        all.labels.extend_from_slice(&test.labels);
        let data = DeviceData::with_split(&all, train.len(), image_size, device);
        TrainData {
            data,
            cutout: cutout * image_size / 32,
        }
    }

    pub fn n_train(&self) -> usize {
        self.data.n_train
    }

    /// The plan of one epoch: every training image once, in a random order, each with its
    /// crop, flip and cutout centre.
    pub fn plan(&self, rng: &mut Rng) -> Tensor {
        let side = self.data.image_size as u64;
        let mut rows = Vec::with_capacity(self.n_train() * COLS as usize);
        for idx in rng.permutation(self.n_train()) {
            rows.push(idx as i64);
            rows.push(rng.below(9) as i64);
            rows.push(rng.below(9) as i64);
            rows.push(rng.below(2) as i64);
            rows.push(rng.below(side) as i64);
            rows.push(rng.below(side) as i64);
        }
        Tensor::from_slice(&rows)
            .view([-1, COLS])
            .to_device(self.data.device)
    }

    /// The augmented images and labels of plan rows `start..start + len`.
    pub fn batch(&self, plan: &Tensor, start: usize, len: usize) -> (Tensor, Tensor) {
        let rows = plan.narrow(0, start as i64, len as i64);
        let (x, y) = self.data.gather(&rows);
        if self.cutout == 0 {
            return (x, y);
        }
        let keep = cutout_keep(
            &rows.select(1, 4),
            &rows.select(1, 5),
            self.data.image_size,
            self.cutout,
        );
        (x * keep.unsqueeze(1), y)
    }

    /// The test images (no augmentation) in chunks of `chunk`: the rows to gather.
    pub fn test_chunks(&self, chunk: usize) -> Vec<Tensor> {
        self.data.eval_batches(0, chunk)
    }

    /// The images and labels of test rows.
    pub fn gather(&self, rows: &Tensor) -> (Tensor, Tensor) {
        self.data.gather(rows)
    }
}

/// 1 outside and 0 inside each image's `size` × `size` square centred at (`cy`, `cx`) (clipped
/// at the border), N × S × S: DARTS's cutout.
pub fn cutout_keep(cy: &Tensor, cx: &Tensor, side: i64, size: i64) -> Tensor {
    let n = cy.size()[0];
    let half = size / 2;
    let r = Tensor::arange(side, (Kind::Int64, cy.device()));
    let (cy, cx) = (cy.view([n, 1, 1]), cx.view([n, 1, 1]));
    let ys = r.view([1, side, 1]);
    let xs = r.view([1, 1, side]);
    let inside_y = ys
        .ge_tensor(&(&cy - half))
        .logical_and(&ys.lt_tensor(&(&cy + half)));
    let inside_x = xs
        .ge_tensor(&(&cx - half))
        .logical_and(&xs.lt_tensor(&(&cx + half)));
    inside_y
        .logical_and(&inside_x)
        .logical_not()
        .to_kind(Kind::Float)
}
