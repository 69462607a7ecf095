//! CIFAR-10 and CIFAR-100 in their standard binary layouts, and the built-in synthetic data set.
//! Plain bytes here; the engine turns them into tensors.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::config::{Config, DataConfig, Dataset};
use crate::rng::Rng;

/// Bytes per record: 1 label byte + 3072 pixel bytes (R, G, B planes of 32×32).
pub const RECORD: usize = 3073;
pub const PIXELS: usize = 3072;
pub const TRAIN_FILES: [&str; 5] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
];
/// Per-channel mean and std of the CIFAR-10 training set (spec §1.1).
pub const MEAN: [f32; 3] = [0.491_399_68, 0.482_158_27, 0.446_531_24];
pub const STD: [f32; 3] = [0.247_032_33, 0.243_485_05, 0.261_587_68];

/// CIFAR-100's binary version: one coarse and one fine label byte, then the 3072 pixel bytes.
pub const RECORD_100: usize = 3074;
pub const TRAIN_FILE_100: &str = "train.bin";
pub const TEST_FILE_100: &str = "test.bin";
/// Per-channel mean and std of the CIFAR-100 training set (as NAS-Bench-201's code uses them:
/// 129.3, 124.1, 112.4 and 68.2, 65.4, 70.4 on the 0–255 scale).
pub const MEAN_100: [f32; 3] = [129.3 / 255.0, 124.1 / 255.0, 112.4 / 255.0];
pub const STD_100: [f32; 3] = [68.2 / 255.0, 65.4 / 255.0, 70.4 / 255.0];

/// Images (N × 3072 bytes, CHW), labels (0..classes), and how to normalise them.
#[derive(Debug, Clone)]
pub struct Images {
    pub pixels: Vec<u8>,
    pub labels: Vec<u8>,
    /// What the images are, for the UI ("CIFAR-10 (…)", "synthetic").
    pub description: String,
    /// 10 (CIFAR-10, synthetic) or 100 (CIFAR-100's fine labels).
    pub classes: usize,
    /// The per-channel mean and std the engine normalises by (of the set's training images).
    pub mean: [f32; 3],
    pub std: [f32; 3],
    /// Which set the images are (never `Auto`).
    pub kind: Dataset,
    /// The folder they were read from, absolute (`None`: the built-in synthetic set).
    pub dir: Option<PathBuf>,
}

impl Images {
    /// No images yet, of a 10-class set normalised as CIFAR-10.
    pub fn empty_cifar10() -> Images {
        Images {
            pixels: Vec::new(),
            labels: Vec::new(),
            description: String::new(),
            classes: 10,
            mean: MEAN,
            std: STD,
            kind: Dataset::Cifar10,
            dir: None,
        }
    }

    /// No images yet, of CIFAR-100 (fine labels).
    pub fn empty_cifar100() -> Images {
        Images {
            classes: 100,
            mean: MEAN_100,
            std: STD_100,
            kind: Dataset::Cifar100,
            ..Images::empty_cifar10()
        }
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    /// Keeps the first `n` images (no-op when `n` is 0 or larger than the set).
    pub fn truncate(&mut self, n: usize) {
        if n > 0 && n < self.len() {
            self.labels.truncate(n);
            self.pixels.truncate(n * PIXELS);
        }
    }
}

/// A data error: names the file and what was expected.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error(
        "CIFAR-10 file {path} is missing; expected data_batch_1.bin … data_batch_5.bin (the binary version) in {dir}. Point --data-dir (or data.dir / NASP_TUI_DATA) at that folder"
    )]
    Missing { path: PathBuf, dir: PathBuf },
    #[error(
        "CIFAR-10 test file {path} is missing; `nasp-tui train` evaluates on test_batch.bin, expected in {dir} beside the training files"
    )]
    MissingTest { path: PathBuf, dir: PathBuf },
    #[error("cannot read CIFAR-10 file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "CIFAR-10 file {path} has {size} bytes, not a multiple of 3073 (1 label byte + 3072 pixel bytes per record): is it the binary version, complete and uncorrupted?"
    )]
    Size { path: PathBuf, size: usize },
    #[error(
        "CIFAR-10 file {path}: record {record} has label {label}, but labels must be 0-9: the file is corrupt or not CIFAR-10"
    )]
    Label {
        path: PathBuf,
        record: usize,
        label: u8,
    },
    #[error(
        "no CIFAR-10 found (looked in: {looked}); set data.dataset = \"synthetic\" or \"auto\", or point --data-dir at the folder holding data_batch_1.bin"
    )]
    NotFound { looked: String },
    #[error(
        "CIFAR-100 file {path} is missing; expected train.bin and test.bin (the binary version, `cifar-100-binary`) in {dir}. Point --data-dir (or data.dir / NASP_TUI_DATA) at that folder"
    )]
    Missing100 { path: PathBuf, dir: PathBuf },
    #[error(
        "no CIFAR-100 found (looked in: {looked}); point --data-dir at the folder holding train.bin and test.bin (CIFAR-100's binary version)"
    )]
    NotFound100 { looked: String },
    #[error(
        "CIFAR-100 file {path} has {size} bytes, not a multiple of 3074 (a coarse and a fine label byte + 3072 pixel bytes per record): is it the binary version, complete and uncorrupted?"
    )]
    Size100 { path: PathBuf, size: usize },
    #[error(
        "CIFAR-100 file {path}: record {record} has coarse label {coarse} and fine label {fine}, but they must be 0-19 and 0-99: the file is corrupt or not CIFAR-100"
    )]
    Label100 {
        path: PathBuf,
        record: usize,
        coarse: u8,
        fine: u8,
    },
    #[error(
        "the data found is not the data this run was made on ({differences}): {origin} records {recorded}; found {found}. Point --data-dir at the folder that holds the run's data; to search other data, start a new run in another --run-dir"
    )]
    NotTheRunsData {
        origin: String,
        differences: String,
        recorded: String,
        found: String,
    },
}

/// Reads one CIFAR-100 binary file (`train.bin` or `test.bin`), appending its fine labels and
/// pixels to `out`.
pub fn read_cifar100_file(path: &Path, out: &mut Images) -> Result<(), DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    if bytes.is_empty() || bytes.len() % RECORD_100 != 0 {
        return Err(DataError::Size100 {
            path: path.to_path_buf(),
            size: bytes.len(),
        });
    }
    out.labels.reserve(bytes.len() / RECORD_100);
    out.pixels.reserve(bytes.len() / RECORD_100 * PIXELS);
    for (i, rec) in bytes.chunks_exact(RECORD_100).enumerate() {
        let (coarse, fine) = (rec[0], rec[1]);
        if coarse > 19 || fine > 99 {
            return Err(DataError::Label100 {
                path: path.to_path_buf(),
                record: i,
                coarse,
                fine,
            });
        }
        out.labels.push(fine);
        out.pixels.extend_from_slice(&rec[2..]);
    }
    Ok(())
}

/// Whether `dir` looks like CIFAR-100's binary folder (holds `train.bin`).
pub fn looks_like_cifar100(dir: &Path) -> bool {
    dir.join(TRAIN_FILE_100).is_file()
}

/// CIFAR-100's training images from `dir` (the first `limit`, 0 = all 50,000).
pub fn load_cifar100_train(dir: &Path, limit: usize) -> Result<Images, DataError> {
    let path = dir.join(TRAIN_FILE_100);
    if !path.is_file() {
        return Err(DataError::Missing100 {
            path,
            dir: dir.to_path_buf(),
        });
    }
    let mut out = Images::empty_cifar100();
    read_cifar100_file(&path, &mut out)?;
    out.truncate(limit);
    out.dir = Some(absolute(dir));
    out.description = format!("CIFAR-100 ({} images, {})", out.len(), dir.display());
    Ok(out)
}

/// Reads one CIFAR-10 binary file, appending to `out`.
pub fn read_cifar_file(path: &Path, out: &mut Images) -> Result<(), DataError> {
    let bytes = std::fs::read(path).map_err(|source| DataError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    if bytes.is_empty() || bytes.len() % RECORD != 0 {
        return Err(DataError::Size {
            path: path.to_path_buf(),
            size: bytes.len(),
        });
    }
    out.labels.reserve(bytes.len() / RECORD);
    out.pixels.reserve(bytes.len() / RECORD * PIXELS);
    for (i, rec) in bytes.chunks_exact(RECORD).enumerate() {
        if rec[0] > 9 {
            return Err(DataError::Label {
                path: path.to_path_buf(),
                record: i,
                label: rec[0],
            });
        }
        out.labels.push(rec[0]);
        out.pixels.extend_from_slice(&rec[1..]);
    }
    Ok(())
}

/// Whether `dir` looks like a CIFAR-10 binary folder (holds `data_batch_1.bin`).
pub fn looks_like_cifar(dir: &Path) -> bool {
    dir.join(TRAIN_FILES[0]).is_file()
}

/// Loads the five training files from `dir`; `limit` > 0 stops reading once that many images
/// are in (the first files only).
pub fn load_cifar_train(dir: &Path, limit: usize) -> Result<Images, DataError> {
    let mut out = Images::empty_cifar10();
    for f in TRAIN_FILES {
        if limit > 0 && out.len() >= limit {
            break;
        }
        let path = dir.join(f);
        if !path.is_file() {
            return Err(DataError::Missing {
                path,
                dir: dir.to_path_buf(),
            });
        }
        read_cifar_file(&path, &mut out)?;
    }
    out.truncate(limit);
    out.dir = Some(absolute(dir));
    out.description = format!("CIFAR-10 ({} images, {})", out.len(), dir.display());
    Ok(out)
}

/// Candidate CIFAR-10 folders, in order: `--data-dir`, `data.dir`, `NASP_TUI_DATA`, the user data
/// dir, `./data/cifar-10-batches-bin`.
pub fn candidate_dirs(cli: Option<&Path>, config_dir: &str) -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Some(d) = cli {
        v.push(d.to_path_buf());
    }
    if !config_dir.is_empty() {
        v.push(PathBuf::from(config_dir));
    }
    if let Some(d) = std::env::var_os("NASP_TUI_DATA").filter(|d| !d.is_empty()) {
        v.push(PathBuf::from(d));
    }
    if let Some(p) = directories::ProjectDirs::from("", "", "nasp-tui") {
        v.push(p.data_dir().join("cifar-10-batches-bin"));
    }
    v.push(PathBuf::from("data/cifar-10-batches-bin"));
    v
}

/// A deterministic synthetic 10-class set: each class is a colour and stripe orientation with
/// noise, so a search can learn it. `n` images from `seed`.
pub fn synthetic(n: usize, seed: u64) -> Images {
    let mut rng = Rng::new(seed ^ 0x5EED);
    let mut pixels = Vec::with_capacity(n * PIXELS);
    let mut labels = Vec::with_capacity(n);
    for _ in 0..n {
        let label = rng.below(10) as u8;
        let l = f32::from(label);
        let base = [
            (l * 25.0) % 255.0,
            (255.0 - l * 20.0) % 255.0,
            (l * 57.0 + 40.0) % 255.0,
        ];
        let period = 2 + (label as usize % 5);
        let vertical = label >= 5;
        for (c, b) in base.iter().enumerate() {
            for y in 0..32 {
                for x in 0..32 {
                    let t = if vertical { x } else { y };
                    let stripe = if (t / period).is_multiple_of(2) {
                        50.0
                    } else {
                        -50.0
                    };
                    let noise = (rng.unit() as f32 - 0.5) * 60.0;
                    let v = (b + stripe * (c as f32 + 1.0) / 3.0 + noise).clamp(0.0, 255.0);
                    pixels.push(v as u8);
                }
            }
        }
        labels.push(label);
    }
    Images {
        pixels,
        labels,
        description: format!("synthetic ({n} images; no CIFAR-10 found)"),
        kind: Dataset::Synthetic,
        ..Images::empty_cifar10()
    }
}

/// Host reference of the training augmentation for one image: pad 4 with zeros, crop 32×32 at
/// (`oy`, `ox`) in 0..=8, flip horizontally if `flip`, scale to [0, 1] and normalise per channel.
/// The engine's tensor path (used on every device) must produce exactly this.
pub fn augment_host(img: &[u8], oy: usize, ox: usize, flip: bool) -> Vec<f32> {
    let mut out = vec![0f32; PIXELS];
    for c in 0..3 {
        for i in 0..32 {
            for j in 0..32 {
                let jj = if flip { 31 - j } else { j };
                let (py, px) = (i + oy, jj + ox);
                let v = if (4..36).contains(&py) && (4..36).contains(&px) {
                    f32::from(img[c * 1024 + (py - 4) * 32 + (px - 4)])
                } else {
                    0.0
                };
                out[c * 1024 + i * 32 + j] = (v / 255.0 - MEAN[c]) / STD[c];
            }
        }
    }
    out
}

/// Loads the images `cfg` asks for: `--data-dir` (`cli_dir`) or `data.dir` when named (then it
/// must be CIFAR-10), else the first folder that holds CIFAR-10, else (with `dataset = "auto"`)
/// the synthetic set.
pub fn load(cfg: &Config, cli_dir: Option<&Path>) -> Result<Images, DataError> {
    match cifar_dir(cfg, cli_dir)? {
        Some(dir) if cfg.data.dataset == Dataset::Cifar100 => {
            load_cifar100_train(&dir, cfg.data.limit)
        }
        Some(dir) => load_cifar_train(&dir, cfg.data.limit),
        None => Ok(synthetic_train(cfg)),
    }
}

/// The test file of the CIFAR-10 binary version.
pub const TEST_FILE: &str = "test_batch.bin";

/// The training images and the test images (`test_batch.bin` beside the training files; the
/// first `test_limit`, 0 = all) for `nasp-tui train`; a synthetic pair when `cfg` falls back
/// to synthetic data.
pub fn load_with_test(
    cfg: &Config,
    cli_dir: Option<&Path>,
    test_limit: usize,
) -> Result<(Images, Images), DataError> {
    let Some(dir) = cifar_dir(cfg, cli_dir)? else {
        let n = if test_limit > 0 { test_limit } else { 2_000 };
        let mut test = synthetic(n, cfg.seed ^ 0x7E57);
        test.description = format!("synthetic ({n} test images)");
        return Ok((synthetic_train(cfg), test));
    };
    if cfg.data.dataset == Dataset::Cifar100 {
        let train = load_cifar100_train(&dir, cfg.data.limit)?;
        let path = dir.join(TEST_FILE_100);
        if !path.is_file() {
            return Err(DataError::Missing100 { path, dir });
        }
        let mut test = Images::empty_cifar100();
        read_cifar100_file(&path, &mut test)?;
        test.truncate(test_limit);
        test.description = format!("CIFAR-100 test ({} images)", test.len());
        return Ok((train, test));
    }
    let train = load_cifar_train(&dir, cfg.data.limit)?;
    let path = dir.join(TEST_FILE);
    if !path.is_file() {
        return Err(DataError::MissingTest { path, dir });
    }
    let mut test = Images::empty_cifar10();
    read_cifar_file(&path, &mut test)?;
    test.truncate(test_limit);
    test.description = format!("CIFAR-10 test ({} images)", test.len());
    Ok((train, test))
}

fn synthetic_train(cfg: &Config) -> Images {
    let limit = cfg.data.limit;
    let mut s = synthetic(if limit > 0 { limit } else { 10_000 }, cfg.seed);
    if cfg.data.dataset == Dataset::Synthetic {
        s.description = format!("synthetic ({} images)", s.len());
    }
    s
}

/// The CIFAR-10 folder `cfg` and `cli_dir` name or that is found; `None` for synthetic data.
fn cifar_dir(cfg: &Config, cli_dir: Option<&Path>) -> Result<Option<PathBuf>, DataError> {
    if cfg.data.dataset == Dataset::Synthetic {
        return Ok(None);
    }
    let dirs = candidate_dirs(cli_dir, &cfg.data.dir);
    // An explicitly named folder must be CIFAR-10: a wrong path is an error, not a silent
    // fallback.
    let explicit = cli_dir
        .map(PathBuf::from)
        .or_else(|| (!cfg.data.dir.is_empty()).then(|| PathBuf::from(&cfg.data.dir)));
    if let Some(dir) = explicit {
        return Ok(Some(dir));
    }
    if cfg.data.dataset == Dataset::Cifar100 {
        if let Some(dir) = dirs.iter().find(|d| looks_like_cifar100(d)) {
            return Ok(Some(dir.clone()));
        }
        let looked = dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        return Err(DataError::NotFound100 { looked });
    }
    if let Some(dir) = dirs.iter().find(|d| looks_like_cifar(d)) {
        return Ok(Some(dir.clone()));
    }
    if cfg.data.dataset == Dataset::Cifar10 {
        let looked = dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        return Err(DataError::NotFound { looked });
    }
    Ok(None)
}

/// `dir` made absolute (symbolic links resolved where it exists), so that a run's
/// `config.toml` names its data wherever the run is resumed from.
fn absolute(dir: &Path) -> PathBuf {
    dir.canonicalize()
        .or_else(|_| std::path::absolute(dir))
        .unwrap_or_else(|_| dir.to_path_buf())
}

/// The fingerprint of a set of images: `sha256:` and the hex digest of their labels, then their
/// pixels (the images a run trains on, after `data.limit`).
pub fn fingerprint(images: &Images) -> String {
    let mut h = Sha256::new();
    h.update((images.len() as u64).to_le_bytes());
    h.update(&images.labels);
    h.update(&images.pixels);
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// The name of a set as `data.dataset` writes it.
fn kind_name(kind: Dataset) -> &'static str {
    match kind {
        Dataset::Auto => "auto",
        Dataset::Cifar10 => "cifar10",
        Dataset::Cifar100 => "cifar100",
        Dataset::Synthetic => "synthetic",
    }
}

/// "cifar10, 50000 images in /data/cifar10, sha256:0123456789ab…".
fn describe(kind: Dataset, dir: &str, images: usize, fingerprint: &str) -> String {
    let mut parts = vec![kind_name(kind).to_string()];
    if images > 0 {
        parts.push(format!("{images} images"));
    }
    if !dir.is_empty() {
        parts.push(format!("in {dir}"));
    }
    if !fingerprint.is_empty() {
        let short: String = fingerprint.chars().take(19).collect();
        parts.push(format!("{short}…"));
    }
    parts.join(", ")
}

/// Checks the images found against the data `data` records (`data.dataset` when it is not
/// `auto`, `data.images` when not 0, `data.fingerprint` when not empty: what a run's own
/// `config.toml` says of the data it was made on), then records these images there: their kind,
/// absolute folder (empty for the synthetic set), count and fingerprint. `origin` names the
/// config in the error. Returns a note when the same images were found in another folder.
pub fn record(
    data: &mut DataConfig,
    images: &Images,
    origin: &str,
) -> Result<Option<String>, DataError> {
    let print = fingerprint(images);
    let dir = images
        .dir
        .as_ref()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    let recorded = !data.fingerprint.is_empty() || data.images > 0;
    let mut differences = Vec::new();
    if recorded && data.dataset != Dataset::Auto && data.dataset != images.kind {
        differences.push(format!(
            "data.dataset {} → {}",
            kind_name(data.dataset),
            kind_name(images.kind)
        ));
    }
    if data.images > 0 && data.images != images.len() {
        differences.push(format!("data.images {} → {}", data.images, images.len()));
    }
    if !data.fingerprint.is_empty() && data.fingerprint != print {
        differences.push("data.fingerprint differs".to_string());
    }
    if !differences.is_empty() {
        return Err(DataError::NotTheRunsData {
            origin: origin.to_string(),
            differences: differences.join(", "),
            recorded: describe(data.dataset, &data.dir, data.images, &data.fingerprint),
            found: describe(images.kind, &dir, images.len(), &print),
        });
    }
    let note = (recorded && !data.dir.is_empty() && data.dir != dir).then(|| {
        format!(
            "the run's data was in {}; the same images are now read from {dir}",
            data.dir
        )
    });
    data.dataset = images.kind;
    data.dir = dir;
    data.images = images.len();
    data.fingerprint = print;
    Ok(note)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run's data is recorded (kind, folder, count, fingerprint); the same images pass (a
    /// moved folder with a note), other ones are refused naming the difference and --data-dir.
    #[test]
    fn the_data_a_run_used_is_recorded_and_checked() {
        let mut data = Config::default().data;
        let a = synthetic(40, 1);
        assert_eq!(record(&mut data, &a, "run/config.toml").unwrap(), None);
        assert_eq!(data.dataset, Dataset::Synthetic);
        assert_eq!((data.images, data.dir.as_str()), (40, ""));
        assert_eq!(data.fingerprint, fingerprint(&a));
        assert_ne!(fingerprint(&a), fingerprint(&synthetic(40, 2)));
        let kept = data.clone();
        assert_eq!(record(&mut data, &a, "x").unwrap(), None, "the same images");
        assert_eq!(data, kept);
        let mut moved = a.clone();
        moved.dir = Some(PathBuf::from("/elsewhere"));
        let mut d = kept.clone();
        d.dir = "/before".into();
        let note = record(&mut d, &moved, "x").unwrap().unwrap_or_default();
        assert!(
            note.contains("/before") && note.contains("/elsewhere"),
            "{note}"
        );
        assert_eq!(d.dir, "/elsewhere");
        for (other, what) in [
            (synthetic(40, 2), "data.fingerprint differs"),
            (synthetic(41, 1), "data.images 40 → 41"),
        ] {
            let e = record(&mut data.clone(), &other, "run/config.toml")
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(what) && e.contains("run/config.toml") && e.contains("--data-dir"),
                "{e}"
            );
        }
        let mut cifar = a.clone();
        cifar.kind = Dataset::Cifar10;
        let e = record(&mut data.clone(), &cifar, "x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("data.dataset synthetic → cifar10"), "{e}");
    }

    /// `n` CIFAR-100 records (coarse label, fine label, 3072 pixels): record i has fine label
    /// `(7 i) mod 100`, coarse label `fine / 5`, and every pixel byte equal to i mod 256.
    fn cifar100_bytes(n: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(n * RECORD_100);
        for i in 0..n {
            let fine = (7 * i % 100) as u8;
            out.push(fine / 5);
            out.push(fine);
            out.extend(std::iter::repeat_n((i % 256) as u8, PIXELS));
        }
        out
    }

    /// CIFAR-100's binary layout, written here (no copy of the real set is at hand): the fine
    /// label and the pixels of every record, the limit, the test file, CIFAR-100's
    /// normalisation and 100 classes; and bad files named.
    #[test]
    fn cifar100_files_are_read_with_fine_labels() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(TRAIN_FILE_100), cifar100_bytes(30)).unwrap();
        std::fs::write(dir.path().join(TEST_FILE_100), cifar100_bytes(12)).unwrap();
        let train = load_cifar100_train(dir.path(), 0).unwrap();
        assert_eq!(train.len(), 30);
        assert_eq!(train.classes, 100);
        assert_eq!((train.mean, train.std), (MEAN_100, STD_100));
        for i in 0..30 {
            assert_eq!(train.labels[i], (7 * i % 100) as u8);
            let px = &train.pixels[i * PIXELS..(i + 1) * PIXELS];
            assert!(px.iter().all(|&b| b == i as u8), "record {i}");
        }
        assert_eq!(load_cifar100_train(dir.path(), 5).unwrap().len(), 5);
        let mut cfg = Config::default();
        cfg.data.dataset = Dataset::Cifar100;
        cfg.data.dir = dir.path().display().to_string();
        let (tr, te) = load_with_test(&cfg, None, 0).unwrap();
        assert_eq!((tr.len(), te.len(), te.classes), (30, 12, 100));
        assert!(
            te.description.contains("CIFAR-100 test"),
            "{}",
            te.description
        );
        assert_eq!(load(&cfg, None).unwrap().len(), 30);
        // A fine label past 99, a coarse one past 19, a wrong size, a missing file.
        let p = dir.path().join(TRAIN_FILE_100);
        for (at, v, what) in [(1, 100, "fine label 100"), (0, 20, "coarse label 20")] {
            let mut b = cifar100_bytes(3);
            b[RECORD_100 + at] = v;
            std::fs::write(&p, &b).unwrap();
            let e = load_cifar100_train(dir.path(), 0).unwrap_err().to_string();
            assert!(
                e.contains(what) && e.contains("record 1") && e.contains("train.bin"),
                "{e}"
            );
        }
        std::fs::write(&p, vec![0u8; RECORD]).unwrap();
        let e = load_cifar100_train(dir.path(), 0).unwrap_err().to_string();
        assert!(e.contains("3074") && e.contains("train.bin"), "{e}");
        std::fs::remove_file(&p).unwrap();
        let e = load_cifar100_train(dir.path(), 0).unwrap_err().to_string();
        assert!(e.contains("train.bin") && e.contains("missing"), "{e}");
        // CIFAR-10 files are not CIFAR-100 (and not found as such).
        cfg.data.dir = String::new();
        let e = load(&cfg, Some(std::path::Path::new("/nonexistent-cifar")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("CIFAR-100"), "{e}");
    }

    #[test]
    fn bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("data_batch_1.bin");
        std::fs::write(&p, vec![0u8; 3072]).unwrap();
        let e = load_cifar_train(dir.path(), 0).unwrap_err().to_string();
        assert!(e.contains("data_batch_1.bin") && e.contains("3073"), "{e}");
        let mut rec = vec![0u8; RECORD];
        rec[0] = 12;
        std::fs::write(&p, &rec).unwrap();
        let e = load_cifar_train(dir.path(), 0).unwrap_err().to_string();
        assert!(
            e.contains("label 12") && e.contains("data_batch_1.bin"),
            "{e}"
        );
        rec[0] = 3;
        std::fs::write(&p, &rec).unwrap();
        let e = load_cifar_train(dir.path(), 0).unwrap_err().to_string();
        assert!(
            e.contains("data_batch_2.bin") && e.contains("missing"),
            "{e}"
        );
        // With a limit the later files are not needed.
        let ok = load_cifar_train(dir.path(), 1).unwrap();
        assert_eq!(ok.labels, vec![3]);
    }

    #[test]
    fn synthetic_is_deterministic() {
        let a = synthetic(20, 1);
        let b = synthetic(20, 1);
        assert_eq!(a.pixels, b.pixels);
        assert_eq!(a.labels, b.labels);
        assert_eq!(a.pixels.len(), 20 * PIXELS);
    }

    #[test]
    fn host_augment_crop_and_flip() {
        let img: Vec<u8> = (0..PIXELS).map(|i| (i % 256) as u8).collect();
        let centre = augment_host(&img, 4, 4, false);
        let v = (f32::from(img[5]) / 255.0 - MEAN[0]) / STD[0];
        assert!((centre[5] - v).abs() < 1e-6);
        let flipped = augment_host(&img, 4, 4, true);
        assert!((flipped[31 - 5] - v).abs() < 1e-6);
        let corner = augment_host(&img, 0, 0, false);
        assert!((corner[0] - (0.0 - MEAN[0]) / STD[0]).abs() < 1e-6);
    }
}
