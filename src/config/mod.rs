//! The search configuration: TOML files, `--set key=value` overrides, defaults and validation.
//!
//! Every key has a default here; a file names only what it changes. Unknown keys and values out of
//! range are errors that name the key (a misspelt hyper-parameter silently ignored is a research
//! bug).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

mod evaluation;
mod overrides;
mod validate;

pub use evaluation::EvaluationConfig;

use crate::arch::GenotypeRule;
use crate::space::{OpLists, Space};

/// Which search algorithm the worker runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    /// NASP: proximal iterations on a discrete architecture.
    Nasp,
    /// DARTS, first order (ξ = 0).
    Darts1,
    /// DARTS, second order (unrolled, finite-difference Hessian-vector product).
    Darts2,
}

impl Algorithm {
    /// The name used in configs, the CLI and the UI.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Nasp => "nasp",
            Algorithm::Darts1 => "darts1",
            Algorithm::Darts2 => "darts2",
        }
    }

    /// Parses `nasp`, `darts1` or `darts2`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "nasp" => Some(Algorithm::Nasp),
            "darts1" => Some(Algorithm::Darts1),
            "darts2" => Some(Algorithm::Darts2),
            _ => None,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Floating-point precision of the forward/backward passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Plain 32-bit floats everywhere.
    Fp32,
    /// bfloat16 autocast on CUDA (weights, optimizer state and A stay in fp32).
    Bf16,
}

/// An on/off setting whose default depends on the device: `"auto"`, `true` or `false`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Switch {
    /// Decided per device (see the setting).
    #[default]
    Auto,
    On,
    Off,
}

impl Switch {
    /// Whether it is on, `auto` standing for `when_auto`.
    pub fn on(self, when_auto: bool) -> bool {
        match self {
            Switch::Auto => when_auto,
            Switch::On => true,
            Switch::Off => false,
        }
    }
}

/// Whether channels-last activations are faster than NCHW on the CPU for a DARTS-space network
/// whose first cells have `channels` channels (later stages have 2× and 4×): at multiples of 8
/// and from 20 up. Measured with oneDNN's kernels on this project's CPU, NASP and DARTS first
/// order, 5 cells, batch 32 (BENCHMARKS.md, "The activation layout by channel count"):
/// channels-last took 16–34 % less time at C = 8, 16, 20, 24, 28 and 36, and 9–103 % more at
/// C = 6, 10, 12 and 14 (DARTS; NASP level at 12); C = 18 was mixed (NASP −5 %, DARTS +9 %).
pub fn channels_last_pays(channels: i64) -> bool {
    channels % 8 == 0 || channels >= 20
}

impl Serialize for Switch {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Switch::Auto => s.serialize_str("auto"),
            Switch::On => s.serialize_bool(true),
            Switch::Off => s.serialize_bool(false),
        }
    }
}

impl<'de> Deserialize<'de> for Switch {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bool(bool),
            Text(String),
        }
        match Raw::deserialize(d) {
            Ok(Raw::Bool(true)) => Ok(Switch::On),
            Ok(Raw::Bool(false)) => Ok(Switch::Off),
            Ok(Raw::Text(t)) if t == "auto" => Ok(Switch::Auto),
            Ok(Raw::Text(t)) => Err(serde::de::Error::custom(format!(
                "{t:?} is not a switch: use true, false or \"auto\""
            ))),
            Err(_) => Err(serde::de::Error::custom("expected true, false or \"auto\"")),
        }
    }
}

/// How the network's weights start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Init {
    /// The reference implementations' (PyTorch 0.3.1) initialisation: see `engine::init`.
    Reference,
    /// libtorch's defaults (Kaiming-uniform), what nasp-tui used before.
    Kaiming,
}

/// Where the images come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dataset {
    /// CIFAR-10 if it is found, otherwise the built-in synthetic set (announced).
    Auto,
    /// CIFAR-10 binary files; an error if they are not found.
    Cifar10,
    /// CIFAR-100 binary files (`train.bin`, `test.bin`; fine labels); an error if they are
    /// not found.
    Cifar100,
    /// The built-in deterministic synthetic set.
    Synthetic,
}

impl Dataset {
    /// The NAS-Bench-201 column that scores a cell searched or trained on this data: CIFAR-100's
    /// for CIFAR-100, CIFAR-10's otherwise.
    pub fn nb201_column(self) -> crate::nb201::Dataset {
        match self {
            Dataset::Cifar100 => crate::nb201::Dataset::Cifar100,
            _ => crate::nb201::Dataset::Cifar10,
        }
    }
}

/// The whole resolved configuration of a search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub seed: u64,
    pub algorithm: Algorithm,
    pub device: String,
    pub precision: Precision,
    /// libtorch's CPU threads: 0 (default) chooses them (the CPUs this process may use, or
    /// `OMP_NUM_THREADS` when set; see README, "Threads"); N > 0 forces N.
    pub threads: usize,
    /// On a GPU, capture the NASP architecture pass as a CUDA graph and replay it each step
    /// (on by default: a third less time per step on an H200, and its steps equal the eager
    /// ones in the GPU tests; BENCHMARKS.md). No effect on the CPU.
    pub cuda_graphs: bool,
    /// On a GPU, run the cells' batch norms (non-affine) through cuDNN by giving them a constant
    /// unit scale and zero shift; libtorch's own kernels otherwise (off by default: no faster
    /// on an H200, BENCHMARKS.md). Same results either way. fp32 only: libtorch keeps bf16
    /// batch norms on its own kernels.
    pub cudnn_batch_norm: bool,
    /// Keep the activations channels-last (N, H, W, C in memory) on the CPU: oneDNN's preferred
    /// layout at most widths (BENCHMARKS.md). `auto` (default): on at the channel counts where it
    /// was measured faster ([`channels_last_pays`]), NCHW at the others. Same results either
    /// way (within rounding). Never on a GPU:
    /// there it was 39 % slower on an H200 and its steps drifted from NCHW's beyond rounding
    /// (BENCHMARKS.md, 2026-12-04), so `true` is not used there and the run log says so.
    pub channels_last: Switch,
    /// How the weights start: `reference` (default: the reference code's PyTorch 0.3.1 draws)
    /// or `kaiming` (libtorch's defaults).
    pub init: Init,
    pub data: DataConfig,
    pub model: ModelConfig,
    pub train: TrainConfig,
    pub arch: ArchConfig,
    pub checkpoint: CheckpointConfig,
    pub ui: UiConfig,
    /// `nasp-tui train` only: the network trained from scratch from a genotype.
    pub evaluation: EvaluationConfig,
    /// The run directory: who besides its owner may read and steer it.
    pub run: RunConfig,
}

/// `[run]`: the run directory's permissions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    pub share: Share,
}

/// `run.share`: who besides the run's owner may read and steer it (the run directory's modes,
/// set when the run starts, whatever the umask).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Share {
    /// Nobody: folders 0700, files 0600 (the default).
    #[default]
    Owner,
    /// The run directory's group may read it (`ls`, `watch`, `report`, `export`): folders
    /// 0750, files 0640.
    GroupRead,
    /// The group may read it and steer it (`ctl`, the watcher's keys): as `group-read`, and
    /// `commands/` group-writable (2770).
    Group,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    pub dataset: Dataset,
    pub dir: String,
    pub train_portion: f64,
    /// Side of the square images the network sees (32 = CIFAR-10 as is; 16 or 8 average-pool
    /// the augmented 32-px crop down, for tiny test runs).
    pub image_size: i64,
    /// Use only the first `limit` training images (0 = all).
    pub limit: usize,
    /// Written by a run into its `config.toml`: how many training images it used. A config that
    /// names it (a resumed run's) is checked against the images found (0: not checked).
    pub images: usize,
    /// Written by a run into its `config.toml`: `sha256:` and the digest of the training images
    /// it used (labels and pixels). A config that names it (a resumed run's) is checked against
    /// the images found ("": not checked).
    pub fingerprint: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    pub space: Space,
    pub channels: i64,
    pub cells: usize,
    pub nodes: usize,
    /// Overrides the space's normal-cell op list (names from the op catalogue).
    pub normal_ops: Vec<String>,
    /// Overrides the space's reduction-cell op list.
    pub reduce_ops: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub lr_min: f64,
    pub momentum: f64,
    /// Nesterov momentum (NAS-Bench-201's search and training settings use it).
    pub nesterov: bool,
    pub weight_decay: f64,
    pub grad_clip: f64,
    /// Validation batches evaluated at the end of each epoch (0 = the whole validation split).
    pub eval_batches: usize,
    /// Headless progress line every this many steps (0 = only per epoch).
    pub log_every: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ArchConfig {
    pub lr: f64,
    pub betas: [f64; 2],
    pub weight_decay: f64,
    /// Initial value of every entry of A (NASP). DARTS uses `init_std`.
    pub init: f64,
    /// DARTS initialisation: α = init_std · N(0, 1) (the reference code's 1e-3). In the nb201
    /// space NASP also adds init_std · N(0, 1) to `init` (then clips to [0, 1]), so that an
    /// all-equal start does not select `none`, the first op, on every edge by tie order.
    pub init_std: f64,
    /// Model-complexity regulariser coefficient (spec §3.8), NASP only.
    pub l2: f64,
    /// ε of the ε-greedy proximal step (inert in the reference code; off by default).
    pub greedy: f64,
    pub genotype_rule: GenotypeRule,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckpointConfig {
    pub every_steps: usize,
    pub every_epochs: usize,
    pub keep: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UiConfig {
    pub fps: u32,
    pub theme: String,
    /// What the TUI does when its terminal goes away (SIGHUP: the ssh link dropped).
    pub on_hangup: OnHangup,
}

/// `ui.on_hangup`: what the TUI does when its terminal goes away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnHangup {
    /// Save a checkpoint, then keep searching without a terminal (`nasp-tui watch` comes back).
    #[default]
    Detach,
    /// Save a checkpoint and stop (exit 130).
    Stop,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            seed: 2,
            algorithm: Algorithm::Nasp,
            device: "auto".into(),
            precision: Precision::Fp32,
            threads: 0,
            cuda_graphs: true,
            cudnn_batch_norm: false,
            channels_last: Switch::Auto,
            init: Init::Reference,
            data: DataConfig::default(),
            model: ModelConfig::default(),
            train: TrainConfig::default(),
            arch: ArchConfig::default(),
            checkpoint: CheckpointConfig::default(),
            ui: UiConfig::default(),
            evaluation: EvaluationConfig::default(),
            run: RunConfig::default(),
        }
    }
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            dataset: Dataset::Auto,
            dir: String::new(),
            train_portion: 0.5,
            image_size: 32,
            limit: 0,
            images: 0,
            fingerprint: String::new(),
        }
    }
}

impl ModelConfig {
    /// The op lists this model searches over (its space's, or its own lists).
    pub fn op_lists(&self) -> OpLists {
        OpLists::new(self.space, &self.normal_ops, &self.reduce_ops)
    }
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            space: Space::Darts,
            channels: 16,
            cells: 8,
            nodes: 4,
            normal_ops: Vec::new(),
            reduce_ops: Vec::new(),
        }
    }
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 50,
            batch_size: 64,
            lr: 0.025,
            lr_min: 0.001,
            momentum: 0.9,
            nesterov: false,
            weight_decay: 3e-4,
            grad_clip: 5.0,
            eval_batches: 0,
            log_every: 50,
        }
    }
}

impl Default for ArchConfig {
    fn default() -> Self {
        ArchConfig {
            lr: 3e-4,
            betas: [0.5, 0.999],
            weight_decay: 1e-3,
            init: 0.5,
            init_std: 1e-3,
            l2: 0.0,
            greedy: 0.0,
            genotype_rule: GenotypeRule::Proximal,
        }
    }
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        CheckpointConfig {
            every_steps: 0,
            every_epochs: 1,
            keep: 3,
        }
    }
}

impl Default for UiConfig {
    fn default() -> Self {
        UiConfig {
            fps: 10,
            theme: "default".into(),
            on_hangup: OnHangup::Detach,
        }
    }
}

/// A configuration error; its message names the file and/or key and says what to change.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("--set {arg}: {message}")]
    Set { arg: String, message: String },
    #[error("config key `{key}`: {message}")]
    Invalid { key: String, message: String },
}

pub(crate) fn invalid(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        message: message.into(),
    }
}

impl Config {
    /// Loads `path` (or only the defaults when `None`), applies `--set` overrides in order, and
    /// validates the result.
    pub fn load(path: Option<&Path>, sets: &[String]) -> Result<Config, ConfigError> {
        match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.to_path_buf(),
                    source,
                })?;
                Config::load_text(&text, &p.display().to_string(), sets)
            }
            None => Config::load_text("", "<defaults>", sets),
        }
    }

    /// Like [`Config::load`] from TOML text; `origin` names it in errors.
    pub fn load_text(text: &str, origin: &str, sets: &[String]) -> Result<Config, ConfigError> {
        let mut value: toml::Table = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_string(),
            message: e.to_string(),
        })?;
        for arg in sets {
            overrides::apply_set(&mut value, arg)?;
        }
        let origin = if sets.is_empty() {
            origin.to_string()
        } else {
            format!("{origin} with --set overrides")
        };
        Config::from_table(value, &origin)
    }

    /// Parses TOML text (used for the `config.toml` a run directory or checkpoint carries).
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let value: toml::Table = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_string(),
            message: e.to_string(),
        })?;
        Config::from_table(value, origin)
    }

    fn from_table(value: toml::Table, origin: &str) -> Result<Config, ConfigError> {
        // serde_path_to_error names the key whose value did not fit (`cuda_graphs: invalid
        // type: integer `3`, expected a boolean`).
        let config: Config = serde_path_to_error::deserialize(toml::Value::Table(value)).map_err(
            |e: serde_path_to_error::Error<toml::de::Error>| {
                let key = e.path().to_string();
                let message = e.into_inner().message().to_string();
                ConfigError::Parse {
                    path: origin.to_string(),
                    // (A top-level unknown field is named by the message itself.)
                    message: if key == "."
                        || (message.starts_with("unknown field") && !key.contains('.'))
                    {
                        message
                    } else {
                        format!("{key}: {message}")
                    },
                }
            },
        )?;
        config.validate()?;
        Ok(config)
    }

    /// Whether activations are kept channels-last on a device (`cuda`: a GPU): `auto` means on
    /// the CPU at the channel counts where it was measured faster ([`channels_last_pays`]);
    /// never on a GPU (see the setting).
    pub fn channels_last_on(&self, cuda: bool) -> bool {
        // The NB201 network keeps N, C, H, W (channels-last is the DARTS-space supernet's).
        !cuda
            && !self.model.space.is_nb201()
            && self
                .channels_last
                .on(channels_last_pays(self.model.channels))
    }

    /// Classes of the data set: 100 for CIFAR-100, 10 otherwise (CIFAR-10, synthetic).
    pub fn classes(&self) -> i64 {
        if self.data.dataset == Dataset::Cifar100 {
            100
        } else {
            10
        }
    }

    /// The activation layout on a device, as the run log and `bench` name it.
    pub fn layout_name(&self, cuda: bool) -> &'static str {
        if self.channels_last_on(cuda) {
            "channels-last"
        } else if cuda && self.channels_last == Switch::On {
            "NCHW (channels_last = true is not used on a GPU)"
        } else if !cuda && self.channels_last == Switch::Auto && !self.model.space.is_nb201() {
            "NCHW (channels-last is slower on the CPU at this channel count; channels_last = true forces it)"
        } else {
            "NCHW"
        }
    }

    /// The configuration as TOML text (every key, resolved).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot serialise config: {e}\n"))
    }

    /// Steps in one epoch: one pass over the weight-training split.
    pub fn steps_per_epoch(&self, train_images: usize) -> usize {
        train_images.div_ceil(self.train.batch_size).max(1)
    }

    /// Learning rate of epoch `e` (cosine with floor, stepped at the start of each epoch; spec
    /// §2.2): `lr_min + (lr - lr_min)/2 · (1 + cos(π e / epochs))`.
    pub fn lr_at_epoch(&self, epoch: usize) -> f64 {
        let t = &self.train;
        let x = std::f64::consts::PI * epoch as f64 / t.epochs as f64;
        t.lr_min + 0.5 * (t.lr - t.lr_min) * (1.0 + x.cos())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every shipped config loads, and each NASP one starts from a meaningful selection: no
    /// `none` in its op lists unless the space is the benchmark's fixed supernet. The binary
    /// carries configs/default.toml as its built-in default.
    #[test]
    fn shipped_configs_load_and_nasp_ones_exclude_none() {
        for (name, text) in [
            ("default.toml", include_str!("../../configs/default.toml")),
            (
                "cifar10-nasp.toml",
                include_str!("../../configs/cifar10-nasp.toml"),
            ),
            (
                "cifar10-nasp-darts.toml",
                include_str!("../../configs/cifar10-nasp-darts.toml"),
            ),
            (
                "cifar10-darts.toml",
                include_str!("../../configs/cifar10-darts.toml"),
            ),
            ("bench.toml", include_str!("../../configs/bench.toml")),
            (
                "cifar10-train.toml",
                include_str!("../../configs/cifar10-train.toml"),
            ),
            (
                "bench-train.toml",
                include_str!("../../configs/bench-train.toml"),
            ),
        ] {
            let c = Config::load_text(text, name, &[]).unwrap();
            let lists = c.model.op_lists();
            // (The training config names no search: its op lists only bound the genotype's ops.)
            if c.algorithm == Algorithm::Nasp
                && name != "bench.toml"
                && name != "cifar10-train.toml"
                && name != "bench-train.toml"
            {
                assert!(
                    !lists
                        .normal
                        .iter()
                        .chain(&lists.reduce)
                        .any(|o| o == "none"),
                    "{name}"
                );
            }
        }
        let c = Config::load_text(include_str!("../../configs/default.toml"), "d", &[]).unwrap();
        assert_eq!((c.model.channels, c.model.cells), (8, 5));
    }

    #[test]
    fn lr_schedule_matches_spec() {
        let c = Config::default();
        assert!((c.lr_at_epoch(0) - 0.025).abs() < 1e-12);
        assert!(
            (c.lr_at_epoch(24) - 0.013753).abs() < 1e-6,
            "{}",
            c.lr_at_epoch(24)
        );
        assert!(
            (c.lr_at_epoch(49) - 0.0010237).abs() < 1e-7,
            "{}",
            c.lr_at_epoch(49)
        );
        assert!(c.lr_at_epoch(49) > c.train.lr_min);
    }

    #[test]
    fn set_overrides_and_unknown_keys() {
        let c = Config::load(
            None,
            &["model.channels=8".into(), "algorithm=darts1".into()],
        )
        .unwrap();
        assert_eq!(c.model.channels, 8);
        assert_eq!(c.algorithm, Algorithm::Darts1);
        let e = Config::load(None, &["model.chanels=8".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("chanels"), "{e}");
        let e = Config::load(None, &["train.batch_size=0".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("train.batch_size"), "{e}");
        let e = Config::load(None, &["model.normal_ops=[\"none\", \"none\"]".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("model.normal_ops") && e.contains("none"), "{e}");
        let e = Config::load(None, &["device=gpu".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("device"), "{e}");
        // A value of the wrong type names its key.
        for (set, key) in [
            ("cuda_graphs=3", "cuda_graphs"),
            ("train.batch_size=\"a\"", "train.batch_size"),
            ("precision=\"fp16\"", "precision"),
        ] {
            let e = Config::load(None, &[set.into()]).unwrap_err().to_string();
            assert!(e.contains(&format!("{key}:")), "{set}: {e}");
        }
    }

    #[test]
    fn evaluation_keys_are_checked_by_name() {
        for (set, key) in [
            ("evaluation.drop_path=1.5", "evaluation.drop_path"),
            ("evaluation.cutout=40", "evaluation.cutout"),
            (
                "evaluation.auxiliary_weight=-1.0",
                "evaluation.auxiliary_weight",
            ),
            ("evaluation.auxiliary=3", "evaluation.auxiliary"),
            ("evaluation.dropath=0.1", "dropath"),
        ] {
            let e = Config::load(None, &[set.into()]).unwrap_err().to_string();
            assert!(e.contains(key), "{set}: {e}");
        }
        let small = Config::load(None, &["data.image_size=16".into()]).unwrap();
        let e = small.validate_for_training().unwrap_err().to_string();
        assert!(
            e.contains("evaluation.auxiliary") && e.contains("image_size"),
            "{e}"
        );
        let no_aux = Config::load(
            None,
            &[
                "data.image_size=16".into(),
                "evaluation.auxiliary=false".into(),
            ],
        )
        .unwrap();
        no_aux.validate_for_training().unwrap();
    }

    #[test]
    fn switches_take_auto_true_or_false() {
        for (v, want) in [
            ("\"auto\"", Switch::Auto),
            ("true", Switch::On),
            ("false", Switch::Off),
        ] {
            let c = Config::load(None, &[format!("channels_last={v}")]).unwrap();
            assert_eq!(c.channels_last, want);
            let back = Config::from_toml_str(&c.to_toml(), "test").unwrap();
            assert_eq!(back.channels_last, want);
        }
        assert_eq!(Config::default().channels_last, Switch::Auto);
        assert!(Switch::Auto.on(true) && !Switch::Auto.on(false));
        for bad in ["\"yes\"", "1"] {
            let e = Config::load(None, &[format!("channels_last={bad}")])
                .unwrap_err()
                .to_string();
            assert!(e.contains("channels_last:"), "{e}");
            assert!(e.contains("auto"), "{e}");
        }
    }

    /// The layout per device: `auto` is channels-last on the CPU only; `true` never reaches a
    /// GPU, and the log line says so; the CUDA graph is on by default.
    #[test]
    fn layout_per_device_and_gpu_defaults() {
        let on = |v: &str| Config::load(None, &[format!("channels_last={v}")]).unwrap();
        let (auto, yes, no) = (on("\"auto\""), on("true"), on("false"));
        assert!(auto.channels_last_on(false) && !auto.channels_last_on(true));
        assert!(yes.channels_last_on(false) && !yes.channels_last_on(true));
        assert!(!no.channels_last_on(false) && !no.channels_last_on(true));
        assert_eq!(auto.layout_name(false), "channels-last");
        assert_eq!(auto.layout_name(true), "NCHW");
        assert!(yes.layout_name(true).contains("not used on a GPU"));
        assert_eq!(no.layout_name(true), "NCHW");
        assert!(Config::default().cuda_graphs && !Config::default().cudnn_batch_norm);
    }

    /// `auto` on the CPU follows the channel count: channels-last at widths where it was
    /// measured faster, NCHW where it was slower; `true` / `false` still force it.
    #[test]
    fn auto_layout_follows_the_channel_count() {
        let at = |c: i64, v: &str| {
            Config::load(
                None,
                &[format!("model.channels={c}"), format!("channels_last={v}")],
            )
            .unwrap()
        };
        let widths = [
            (8, true),
            (16, true),
            (20, true),
            (36, true),
            (10, false),
            (12, false),
        ];
        for (c, want) in widths {
            assert_eq!(at(c, "\"auto\"").channels_last_on(false), want, "C = {c}");
            assert!(at(c, "true").channels_last_on(false), "C = {c}");
            assert!(!at(c, "false").channels_last_on(false), "C = {c}");
            assert!(!at(c, "\"auto\"").channels_last_on(true), "C = {c}");
        }
        assert!(
            at(10, "\"auto\"")
                .layout_name(false)
                .contains("slower on the CPU")
        );
        assert_eq!(at(10, "false").layout_name(false), "NCHW");
    }

    #[test]
    fn resolved_config_round_trips() {
        let c = Config::load(None, &["arch.l2=0.5".into()]).unwrap();
        let back = Config::from_toml_str(&c.to_toml(), "test").unwrap();
        assert_eq!(c, back);
    }

    #[test]
    fn on_hangup_is_detach_or_stop() {
        assert_eq!(Config::default().ui.on_hangup, OnHangup::Detach);
        let c = Config::load(None, &["ui.on_hangup=\"stop\"".into()]).unwrap();
        assert_eq!(c.ui.on_hangup, OnHangup::Stop);
        let back = Config::from_toml_str(&c.to_toml(), "test").unwrap();
        assert_eq!(back.ui.on_hangup, OnHangup::Stop);
        let fixture = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/invalid_configs/bad_on_hangup.toml"
        );
        let e = Config::load(Some(Path::new(fixture)), &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("ui.on_hangup:") && e.contains("exit"), "{e}");
    }
}
