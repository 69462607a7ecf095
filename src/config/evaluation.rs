//! The `[evaluation]` section: the settings of `nasp-tui train` beyond the search's.

use serde::{Deserialize, Serialize};

/// `[evaluation]`: what `nasp-tui train` adds to the network and the data (the search ignores
/// it). The model section gives the network's width and depth (`model.channels`, `model.cells`)
/// and its space (which ops a genotype may use); `train` the optimizer and the epochs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvaluationConfig {
    /// The auxiliary head after the second reduction cell (needs `data.image_size = 32`).
    pub auxiliary: bool,
    /// Weight of the auxiliary head's loss.
    pub auxiliary_weight: f64,
    /// Drop-path probability at the end of training (it rises linearly from 0 over the epochs).
    pub drop_path: f64,
    /// Side of the square zeroed by cutout, in 32-px pixels (0 = no cutout).
    pub cutout: i64,
    /// Use only the first `test_limit` test images (0 = all 10,000).
    pub test_limit: usize,
}

impl Default for EvaluationConfig {
    fn default() -> Self {
        EvaluationConfig {
            auxiliary: true,
            auxiliary_weight: 0.4,
            drop_path: 0.2,
            cutout: 16,
            test_limit: 0,
        }
    }
}
