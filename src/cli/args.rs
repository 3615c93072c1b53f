//! Arguments several commands share: where the model computes (`--device`, `--threads`), where
//! the data is, the test crop, and the parser of preset names.

use std::path::PathBuf;

use anyhow::bail;
use shiftlive::data::TestCrop;
use shiftlive::device::DeviceArg;
use shiftlive::model::{ModelError, Preset};
use shiftlive::train::DataSpec;

/// Where the model computes: `train`, `eval`, `predict`, `bench` and `bench-train` take these.
#[derive(Debug, Clone, clap::Args)]
pub struct ComputeArgs {
    /// auto, cpu, cuda or cuda:N
    #[arg(long, default_value = "auto")]
    pub device: DeviceArg,
    /// Intra-op threads (default: all cores)
    #[arg(long)]
    pub threads: Option<i32>,
}

impl ComputeArgs {
    /// Sets the intra-op thread count (if given) and resolves the device.
    pub fn init(&self) -> anyhow::Result<tch::Device> {
        if let Some(threads) = self.threads {
            tch::set_num_threads(threads);
        }
        self.device.resolve().map_err(anyhow::Error::msg)
    }
}

/// A preset by name or alias; an unknown name is an error listing the known ones.
pub fn preset(name: &str) -> Result<Preset, ModelError> {
    name.parse()
}

/// Where the data is: UCF-101 (`--data`) or lists (`--train-list`/`--val-list`).
#[derive(Debug, clap::Args)]
pub struct DataArgs {
    /// UCF-101 root: <Class>/<video>.avi, or rawframes/<Class>/<video>/img_*.jpg with --frames
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Directory of classInd.txt, trainlist0N.txt, testlist0N.txt (default: DATA/ucfTrainTestlist)
    #[arg(long)]
    pub splits: Option<PathBuf>,
    /// Read pre-extracted frames (DATA/rawframes/...) instead of videos
    #[arg(long)]
    pub frames: bool,
    /// Root of the paths in --train-list / --val-list / --list
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// Class names for list files, one per line: line 1 names label 0 (labels are 0-based)
    #[arg(long)]
    pub classes: Option<PathBuf>,
}

impl DataArgs {
    /// The training data: a UCF-101 split, or a training and a validation list.
    pub fn spec(
        &self,
        split: u8,
        train: Option<&PathBuf>,
        val: Option<&PathBuf>,
    ) -> anyhow::Result<DataSpec> {
        match (&self.data, train, val) {
            (Some(root), None, None) => Ok(DataSpec::Ucf101 {
                root: root.clone(),
                splits: self.splits.clone(),
                split,
                frames: self.frames,
            }),
            (None, Some(train), Some(val)) => Ok(DataSpec::List {
                root: self.root.clone().unwrap_or_else(|| PathBuf::from(".")),
                train: train.clone(),
                val: val.clone(),
                classes: self.classes.clone(),
            }),
            _ => bail!("give either --data (UCF-101 layout) or --train-list and --val-list"),
        }
    }
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum CropArg {
    #[value(alias = "center")]
    Centre,
    Three,
    Ten,
}

impl CropArg {
    pub fn test_crop(self) -> TestCrop {
        match self {
            CropArg::Centre => TestCrop::Centre,
            CropArg::Three => TestCrop::Three,
            CropArg::Ten => TestCrop::Ten,
        }
    }
}
