//! Run-time device selection: `cpu` (burn's Flex backend) or `cuda[:N]` (burn-tch, behind the
//! `tch` cargo feature).

use burn::tensor::Device;

use crate::error::{Error, Result};

/// A parsed `--device` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceSpec {
    Cpu,
    Cuda(usize),
    /// libtorch on the CPU: checks the `tch` build's numerics on machines without a GPU.
    TorchCpu,
}

impl std::str::FromStr for DeviceSpec {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim().to_ascii_lowercase();
        if s == "cpu" {
            return Ok(DeviceSpec::Cpu);
        }
        if s == "torch-cpu" {
            return Ok(DeviceSpec::TorchCpu);
        }
        if s == "cuda" || s == "gpu" {
            return Ok(DeviceSpec::Cuda(0));
        }
        if let Some(idx) = s.strip_prefix("cuda:") {
            let idx = idx
                .parse()
                .map_err(|_| Error::Device(format!("`{s}`: expected cuda:<index>")))?;
            return Ok(DeviceSpec::Cuda(idx));
        }
        Err(Error::Device(format!(
            "unknown device `{s}` (expected cpu, cuda, cuda:N or torch-cpu)"
        )))
    }
}

impl std::fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceSpec::Cpu => write!(f, "cpu"),
            DeviceSpec::Cuda(i) => write!(f, "cuda:{i}"),
            DeviceSpec::TorchCpu => write!(f, "torch-cpu"),
        }
    }
}

impl DeviceSpec {
    /// The burn device, or an error saying how to get CUDA support.
    pub fn device(self) -> Result<Device> {
        match self {
            DeviceSpec::Cpu => Ok(Device::flex()),
            #[cfg(feature = "tch")]
            #[allow(deprecated)]
            // burn-tch is deprecated upstream; it is our only CUDA path on burn 0.22.
            DeviceSpec::Cuda(i) => {
                check_libtorch_version()?;
                // libtorch panics on first use of an unusable device (no driver, no GPU, wrong
                // index), so allocate a probe tensor through tch's fallible API first.
                let probe = tch::Tensor::f_zeros([1], (tch::Kind::Float, tch::Device::Cuda(i)));
                if let Err(e) = probe {
                    let reason = e.to_string();
                    let first = reason.lines().next().unwrap_or("unknown error");
                    return Err(Error::Device(format!(
                        "cuda:{i} is not usable: {first} (use --device cpu)"
                    )));
                }
                Ok(Device::libtorch_cuda(i))
            }
            #[cfg(feature = "tch")]
            #[allow(deprecated)]
            DeviceSpec::TorchCpu => {
                check_libtorch_version()?;
                Ok(Device::libtorch())
            }
            #[cfg(not(feature = "tch"))]
            DeviceSpec::Cuda(_) | DeviceSpec::TorchCpu => Err(Error::Device(
                "this probe binary was built without GPU support: build one with \
                 `scripts/build-tch.sh` (cargo feature `tch`, against an installed PyTorch) \
                 and run it through `scripts/probe-gpu`"
                    .into(),
            )),
        }
    }
}

/// The PyTorch version this binary was built against (`scripts/build-tch.sh` records it).
pub const BUILT_AGAINST_TORCH: Option<&str> = option_env!("PROBE_TORCH_VERSION");

/// The version of the libtorch this process loaded: its `torch/lib` directory, found in
/// `/proc/self/maps`, sits beside `torch/version.py`.
pub fn loaded_torch_version() -> Option<(String, std::path::PathBuf)> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let lib = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.ends_with("/libtorch_cpu.so"))?;
    let dir = std::path::Path::new(lib).parent()?.to_path_buf();
    let text = std::fs::read_to_string(dir.parent()?.join("version.py")).ok()?;
    let version = text.lines().find_map(|l| {
        let rest = l.trim().strip_prefix("__version__")?;
        Some(
            rest.trim_start_matches([' ', '='])
                .trim()
                .trim_matches(['\'', '"'])
                .to_string(),
        )
    })?;
    Some((version, dir))
}

/// `2.11.0+cu130` → `2.11.0`.
fn release(version: &str) -> &str {
    version.split('+').next().unwrap_or(version)
}

/// Refuses a libtorch other than the one the binary was built against, naming both: the C++
/// ABI of what tch calls is only known to match for the version it was built with.
#[allow(dead_code)]
fn check_libtorch_version() -> Result<()> {
    let (Some(built), Some((loaded, dir))) = (BUILT_AGAINST_TORCH, loaded_torch_version()) else {
        return Ok(());
    };
    if release(built) != release(&loaded) {
        return Err(Error::Device(format!(
            "this probe was built against PyTorch {built} but loaded libtorch {loaded} from {}: \
             run it through scripts/probe-gpu, or rebuild with scripts/build-tch.sh against \
             this PyTorch",
            dir.display()
        )));
    }
    Ok(())
}

/// Free and total bytes of CUDA device `index`, as the driver reports them (`cuMemGetInfo` in
/// the device's primary context, the one PyTorch uses); `None` where no driver answers. The
/// driver library is opened at run time, so no CUDA is needed to build or run probe without it.
pub fn cuda_memory(index: usize) -> Option<(u64, u64)> {
    use std::ffi::c_void;
    type Status = i32;
    // SAFETY: the symbols are the CUDA driver API's, with the signatures its header declares;
    // every call's status is checked before its outputs are used, and the context retained here
    // is popped and released on every path after it was pushed.
    unsafe {
        let lib = libloading::Library::new("libcuda.so.1").ok()?;
        let init = lib
            .get::<unsafe extern "C" fn(u32) -> Status>(b"cuInit")
            .ok()?;
        let device_get = lib
            .get::<unsafe extern "C" fn(*mut i32, i32) -> Status>(b"cuDeviceGet")
            .ok()?;
        let retain = lib
            .get::<unsafe extern "C" fn(*mut *mut c_void, i32) -> Status>(
                b"cuDevicePrimaryCtxRetain",
            )
            .ok()?;
        let release = lib
            .get::<unsafe extern "C" fn(i32) -> Status>(b"cuDevicePrimaryCtxRelease_v2")
            .ok()?;
        let push = lib
            .get::<unsafe extern "C" fn(*mut c_void) -> Status>(b"cuCtxPushCurrent_v2")
            .ok()?;
        let pop = lib
            .get::<unsafe extern "C" fn(*mut *mut c_void) -> Status>(b"cuCtxPopCurrent_v2")
            .ok()?;
        let mem_info = lib
            .get::<unsafe extern "C" fn(*mut usize, *mut usize) -> Status>(b"cuMemGetInfo_v2")
            .ok()?;
        if init(0) != 0 {
            return None;
        }
        let mut dev = 0i32;
        if device_get(&mut dev, i32::try_from(index).ok()?) != 0 {
            return None;
        }
        let mut ctx: *mut c_void = std::ptr::null_mut();
        if retain(&mut ctx, dev) != 0 {
            return None;
        }
        let mut result = None;
        if push(ctx) == 0 {
            let (mut free, mut total) = (0usize, 0usize);
            if mem_info(&mut free, &mut total) == 0 {
                result = Some((free as u64, total as u64));
            }
            let mut popped: *mut c_void = std::ptr::null_mut();
            pop(&mut popped);
        }
        release(dev);
        result
    }
}

/// Whether `device` is a libtorch one (CPU or CUDA).
pub fn is_libtorch(device: &Device) -> bool {
    #[cfg(feature = "tch")]
    {
        matches!(
            device.as_dispatch(),
            burn::backend::DispatchDevice::LibTorch(_)
        )
    }
    #[cfg(not(feature = "tch"))]
    {
        let _ = device;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torch_release_drops_the_local_part() {
        assert_eq!(release("2.11.0+cu130"), "2.11.0");
        assert_eq!(release("2.9.0"), "2.9.0");
        // Without libtorch loaded there is nothing to compare.
        assert!(loaded_torch_version().is_none() || cfg!(feature = "tch"));
    }

    #[test]
    fn parses_device_names() {
        assert_eq!("cpu".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cpu);
        assert_eq!("cuda".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(0));
        assert_eq!("CUDA:1".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(1));
        assert!("tpu".parse::<DeviceSpec>().is_err());
        assert!("cuda:x".parse::<DeviceSpec>().is_err());
    }

    #[cfg(not(feature = "tch"))]
    #[test]
    fn cuda_without_the_feature_says_how_to_build_it() {
        let err = DeviceSpec::Cuda(0).device().unwrap_err().to_string();
        assert!(err.contains("build-tch.sh"), "{err}");
    }
}
