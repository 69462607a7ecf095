//! Which tch device a run uses: the `device` setting resolved against the CUDA devices present.

use tch::Device;

use crate::device::DeviceChoice;

/// Resolves the `device` setting to a tch device, with a note for the log. The error is the
/// text to show (the CLI reports it as a usage error).
pub fn resolve_device(setting: &str) -> Result<(Device, String), String> {
    let cuda = tch::Cuda::is_available();
    match DeviceChoice::parse(setting)? {
        DeviceChoice::Cpu => Ok((Device::Cpu, "cpu".into())),
        DeviceChoice::Auto if !cuda => Ok((Device::Cpu, "cpu (no CUDA device found)".into())),
        DeviceChoice::Auto => Ok((Device::Cuda(0), DeviceChoice::Cuda(0).to_string())),
        DeviceChoice::Cuda(n) if cuda && (n as i64) < tch::Cuda::device_count() => {
            Ok((Device::Cuda(n), DeviceChoice::Cuda(n).to_string()))
        }
        DeviceChoice::Cuda(n) => Err(format!(
            "device = \"cuda:{n}\" but {} CUDA device(s) are available; use device = \"auto\" or \"cpu\"",
            if cuda { tch::Cuda::device_count() } else { 0 }
        )),
    }
}

/// The device's name as the UI shows it (`cpu`, `cuda:N`).
pub fn device_label(d: Device) -> String {
    match d {
        Device::Cuda(n) => DeviceChoice::Cuda(n),
        _ => DeviceChoice::Cpu,
    }
    .to_string()
}
