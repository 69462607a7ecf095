//! Device names, parsed once: the `device` setting (`auto`, `cpu`, `cuda`, `cuda:N`) and the
//! labels runs report (`cpu`, `cuda:N`). Plain data: the engine maps a choice to a libtorch
//! device, the monitors read the CUDA index for GPU figures.

use std::fmt;

/// A parsed device name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceChoice {
    /// CUDA device 0 if CUDA is available, else the CPU.
    Auto,
    Cpu,
    Cuda(usize),
}

impl DeviceChoice {
    /// Parses `auto`, `cpu`, `cuda` or `cuda:N`.
    pub fn parse(s: &str) -> Result<DeviceChoice, String> {
        match s {
            "auto" => Ok(DeviceChoice::Auto),
            "cpu" => Ok(DeviceChoice::Cpu),
            "cuda" => Ok(DeviceChoice::Cuda(0)),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(DeviceChoice::Cuda)
                .ok_or_else(|| format!("{s:?} is not a device: use auto, cpu or cuda:N")),
        }
    }

    /// The CUDA index of a device label (`cuda:N`), `None` for anything else.
    pub fn cuda_index(label: &str) -> Option<usize> {
        match DeviceChoice::parse(label) {
            Ok(DeviceChoice::Cuda(n)) => Some(n),
            _ => None,
        }
    }
}

impl fmt::Display for DeviceChoice {
    /// `auto`, `cpu` or `cuda:N`: the form `parse` reads and runs report.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceChoice::Auto => f.write_str("auto"),
            DeviceChoice::Cpu => f.write_str("cpu"),
            DeviceChoice::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in ["auto", "cpu", "cuda:0", "cuda:3"] {
            assert_eq!(DeviceChoice::parse(s).unwrap().to_string(), s);
        }
        assert_eq!(DeviceChoice::parse("cuda"), Ok(DeviceChoice::Cuda(0)));
        assert!(DeviceChoice::parse("gpu").unwrap_err().contains("cuda:N"));
        assert!(DeviceChoice::parse("cuda:x").is_err());
        assert_eq!(DeviceChoice::cuda_index("cuda:2"), Some(2));
        assert_eq!(DeviceChoice::cuda_index("cpu"), None);
    }
}
