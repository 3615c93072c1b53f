//! Picking the compute device: `auto` takes CUDA when libtorch sees a GPU, the CPU otherwise.

use std::fmt;
use std::str::FromStr;

use tch::Device;

/// A `--device` value: `auto`, `cpu`, `cuda` or `cuda:N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceArg {
    #[default]
    Auto,
    Cpu,
    Cuda(usize),
}

/// A device that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    #[error("'{0}' is not a device: use auto, cpu, cuda or cuda:N")]
    NotADevice(String),
    #[error(
        "device cuda:{index} requested, but libtorch sees no CUDA device (no GPU, or a \
         CPU-only libtorch: see README, 'CUDA')"
    )]
    NoCuda { index: usize },
    #[error("device cuda:{index} requested, but only {count} CUDA device(s) exist")]
    TooFew { index: usize, count: usize },
}

impl FromStr for DeviceArg {
    type Err = DeviceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(0)),
            _ => match s.strip_prefix("cuda:").map(str::parse::<usize>) {
                Some(Ok(index)) => Ok(Self::Cuda(index)),
                _ => Err(DeviceError::NotADevice(s.to_string())),
            },
        }
    }
}

impl fmt::Display for DeviceArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => write!(f, "auto"),
            Self::Cpu => write!(f, "cpu"),
            Self::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

impl DeviceArg {
    /// Resolves to a tch device; asking for CUDA on a machine without it is an error.
    pub fn resolve(self) -> Result<Device, DeviceError> {
        match self {
            Self::Auto => Ok(Device::cuda_if_available()),
            Self::Cpu => Ok(Device::Cpu),
            Self::Cuda(index) => {
                let count = tch::Cuda::device_count() as usize;
                if index < count {
                    Ok(Device::Cuda(index))
                } else if count == 0 {
                    Err(DeviceError::NoCuda { index })
                } else {
                    Err(DeviceError::TooFew { index, count })
                }
            }
        }
    }
}

/// A short name for logs and JSON: `cpu` or `cuda:N`.
pub fn device_name(device: Device) -> String {
    match device {
        Device::Cuda(i) => format!("cuda:{i}"),
        Device::Mps => "mps".into(),
        Device::Vulkan => "vulkan".into(),
        _ => "cpu".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_parse_and_print_back() {
        for name in ["auto", "cpu", "cuda:0", "cuda:3"] {
            assert_eq!(
                name.parse::<DeviceArg>().map(|d| d.to_string()),
                Ok(name.into())
            );
        }
        assert_eq!("cuda".parse(), Ok(DeviceArg::Cuda(0)));
        assert_eq!(
            "gpu".parse::<DeviceArg>(),
            Err(DeviceError::NotADevice("gpu".into()))
        );
    }
}
