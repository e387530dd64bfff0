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
            DeviceSpec::TorchCpu => Ok(Device::libtorch()),
            #[cfg(not(feature = "tch"))]
            DeviceSpec::Cuda(_) | DeviceSpec::TorchCpu => Err(Error::Device(
                "this probe binary was built without GPU support: rebuild with \
                 `scripts/build-tch.sh` (cargo feature `tch`, libtorch from PyTorch 2.9.0)"
                    .into(),
            )),
        }
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
