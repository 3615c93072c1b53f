//! `shiftlive import`: PyTorch checkpoints of the TSM authors, mmaction2 and torchvision read
//! without Python and converted into shiftlive checkpoints.

mod convert;
mod layouts;
mod pickle;
mod pickle_value;
mod pth;

pub use convert::{ImportError, ImportFormat, ImportOptions, import};
pub use pth::{PthFile, read_pth};
