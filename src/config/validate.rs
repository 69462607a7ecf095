//! Range and combination checks of a parsed config; every error names its key and says what
//! to use instead.

use super::{Algorithm, Config, ConfigError, Precision, invalid};
use crate::device::DeviceChoice;
use crate::space;

impl Config {
    /// Checks ranges and combinations; the error names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        DeviceChoice::parse(&self.device).map_err(|m| invalid("device", m))?;
        self.validate_data()?;
        self.validate_model()?;
        self.validate_train()?;
        self.validate_arch()?;
        self.validate_evaluation()?;
        if self.checkpoint.keep == 0 {
            return Err(invalid("checkpoint.keep", "must be at least 1"));
        }
        if self.threads > 4096 {
            return Err(invalid(
                "threads",
                format!("{} must be from 0 (choose) to 4096", self.threads),
            ));
        }
        if self.ui.fps == 0 || self.ui.fps > 60 {
            return Err(invalid(
                "ui.fps",
                format!("{} must be from 1 to 60", self.ui.fps),
            ));
        }
        if self.precision == Precision::Bf16 && self.algorithm == Algorithm::Darts2 {
            return Err(invalid(
                "precision",
                "bf16 is not supported with darts2 (its finite differences need fp32)",
            ));
        }
        Ok(())
    }

    fn validate_data(&self) -> Result<(), ConfigError> {
        let d = &self.data;
        if !(d.train_portion > 0.0 && d.train_portion < 1.0) {
            return Err(invalid(
                "data.train_portion",
                format!("{} must lie strictly between 0 and 1", d.train_portion),
            ));
        }
        if !matches!(d.image_size, 8 | 16 | 32) {
            return Err(invalid(
                "data.image_size",
                format!("{} is not supported: use 8, 16 or 32", d.image_size),
            ));
        }
        if d.limit != 0 && d.limit < 4 {
            return Err(invalid(
                "data.limit",
                "use 0 (all images) or at least 4 images",
            ));
        }
        let hex = d.fingerprint.strip_prefix("sha256:");
        if !d.fingerprint.is_empty()
            && !hex.is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(invalid(
                "data.fingerprint",
                "is not a fingerprint a run wrote (\"sha256:\" and 64 hex digits); remove the key to use any data",
            ));
        }
        Ok(())
    }

    fn validate_model(&self) -> Result<(), ConfigError> {
        let m = &self.model;
        if m.channels < 2 || m.channels % 2 != 0 || m.channels > 1024 {
            return Err(invalid(
                "model.channels",
                format!("{} must be an even number from 2 to 1024", m.channels),
            ));
        }
        if m.cells < 1 || m.cells > 64 {
            return Err(invalid(
                "model.cells",
                format!("{} must be from 1 to 64", m.cells),
            ));
        }
        if m.space.is_nb201() {
            if m.nodes != crate::nb201::NODES {
                return Err(invalid(
                    "model.nodes",
                    format!(
                        "{} must be {} in the nb201 space (its cell has {} nodes)",
                        m.nodes,
                        crate::nb201::NODES,
                        crate::nb201::NODES
                    ),
                ));
            }
            for (key, list) in [
                ("model.normal_ops", &m.normal_ops),
                ("model.reduce_ops", &m.reduce_ops),
            ] {
                if !list.is_empty() {
                    return Err(invalid(
                        key,
                        "must be empty in the nb201 space: its ops are the benchmark's five",
                    ));
                }
            }
        }
        if m.nodes < 2 || m.nodes > 8 {
            return Err(invalid(
                "model.nodes",
                format!("{} must be from 2 to 8", m.nodes),
            ));
        }
        for (key, list) in [
            ("model.normal_ops", &m.normal_ops),
            ("model.reduce_ops", &m.reduce_ops),
        ] {
            for name in list {
                if space::lookup(name).is_none() {
                    return Err(invalid(
                        key,
                        format!("unknown op {name:?}; known ops: {}", space::known_names()),
                    ));
                }
            }
            if !list.is_empty() && list.iter().all(|n| n == "none") {
                return Err(invalid(key, "needs at least one op other than \"none\""));
            }
            if list.len() == 1 {
                return Err(invalid(
                    key,
                    "needs at least 2 ops (or leave it empty for the space's list)",
                ));
            }
        }
        Ok(())
    }

    fn validate_train(&self) -> Result<(), ConfigError> {
        let t = &self.train;
        if t.epochs == 0 {
            return Err(invalid("train.epochs", "must be at least 1"));
        }
        if t.batch_size == 0 || t.batch_size > 4096 {
            return Err(invalid(
                "train.batch_size",
                format!("{} must be from 1 to 4096", t.batch_size),
            ));
        }
        positive("train.lr", t.lr)?;
        if !(t.lr_min >= 0.0 && t.lr_min <= t.lr) {
            return Err(invalid(
                "train.lr_min",
                format!("{} must be from 0 to train.lr ({})", t.lr_min, t.lr),
            ));
        }
        unit("train.momentum", t.momentum)?;
        non_negative("train.weight_decay", t.weight_decay)?;
        // 0 turns clipping off (NAS-Bench-201's training recipe does not clip).
        non_negative("train.grad_clip", t.grad_clip)?;
        Ok(())
    }

    fn validate_arch(&self) -> Result<(), ConfigError> {
        let a = &self.arch;
        positive("arch.lr", a.lr)?;
        unit("arch.betas", a.betas[0])?;
        unit("arch.betas", a.betas[1])?;
        non_negative("arch.weight_decay", a.weight_decay)?;
        if !(0.0..=1.0).contains(&a.init) {
            return Err(invalid(
                "arch.init",
                format!("{} must lie in [0, 1] (the box of A)", a.init),
            ));
        }
        non_negative("arch.init_std", a.init_std)?;
        non_negative("arch.l2", a.l2)?;
        if !(0.0..=1.0).contains(&a.greedy) {
            return Err(invalid(
                "arch.greedy",
                format!("{} is a probability: use a value in [0, 1]", a.greedy),
            ));
        }
        Ok(())
    }
}

impl Config {
    fn validate_evaluation(&self) -> Result<(), ConfigError> {
        let e = &self.evaluation;
        non_negative("evaluation.auxiliary_weight", e.auxiliary_weight)?;
        unit("evaluation.drop_path", e.drop_path)?;
        if !(0..=32).contains(&e.cutout) {
            return Err(invalid(
                "evaluation.cutout",
                format!("{} must be from 0 (no cutout) to 32 pixels", e.cutout),
            ));
        }
        Ok(())
    }

    /// The checks only `nasp-tui train` needs (a search config with these values is fine).
    pub fn validate_for_training(&self) -> Result<(), ConfigError> {
        if self.evaluation.auxiliary && self.data.image_size != 32 {
            return Err(invalid(
                "evaluation.auxiliary",
                format!(
                    "the auxiliary head reads the 8 x 8 output of the second reduction cell and needs data.image_size = 32 (it is {}); set evaluation.auxiliary = false for smaller images",
                    self.data.image_size
                ),
            ));
        }
        Ok(())
    }
}

fn positive(key: &str, v: f64) -> Result<(), ConfigError> {
    if v > 0.0 && v.is_finite() {
        Ok(())
    } else {
        Err(invalid(key, format!("{v} must be a positive number")))
    }
}

fn non_negative(key: &str, v: f64) -> Result<(), ConfigError> {
    if v >= 0.0 && v.is_finite() {
        Ok(())
    } else {
        Err(invalid(key, format!("{v} must be 0 or more")))
    }
}

fn unit(key: &str, v: f64) -> Result<(), ConfigError> {
    if (0.0..1.0).contains(&v) {
        Ok(())
    } else {
        Err(invalid(key, format!("{v} must lie in [0, 1)")))
    }
}
