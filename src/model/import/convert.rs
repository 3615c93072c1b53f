//! Importing PyTorch checkpoints of other projects into shiftlive safetensors checkpoints.
//!
//! Four layouts, each mapped key by key onto our torchvision-style names:
//! - `mit-online`: the TSM authors' online demo MobileNetV2 (Lin et al., "TSM: Temporal Shift
//!   Module for Efficient Video Understanding", ICCV 2019): a plain state_dict whose blocks number
//!   their layers as one flat `nn.Sequential` (`features.N.conv.0/1/3/4/6/7`, ReLU6s included),
//!   `classifier.weight` a bare Linear; uni-directional shift.
//! - `mit-tsm`: their offline TSN/TSM (`module.base_model.*`, shifted convs under `.net`,
//!   `module.new_fc.*`), settings read from the file name as they name it.
//! - `mmaction2`: TSM/TSN ResNets and MobileNetV2s (`backbone.*` of ConvModules `.conv`/`.bn`,
//!   `cls_head.fc_cls.*`).
//! - `torchvision`: ImageNet ResNet/MobileNetV2 state_dicts (our names already).
//!
//! Every tensor must be placed and every variable of the network filled, or the import fails
//! naming the keys left over or missing; the output is written (atomically) only at the end.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tch::nn;

use super::layouts::{
    Found, UnknownBackbone, backbone_of, file_name, map_keys, settings_from_name,
};
use super::pth::{PthError, read_pth};
use crate::model::ModelError;
use crate::model::body::classifier_of;
use crate::model::checkpoint;
use crate::model::config::{ModelConfig, ShiftDirection, ShiftPlacement, Temporal};
use crate::model::net::ActionNet;

/// The checkpoint layouts `import` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportFormat {
    MitOnline,
    MitTsm,
    Mmaction2,
    Torchvision,
}

impl ImportFormat {
    pub fn name(self) -> &'static str {
        match self {
            Self::MitOnline => "mit-online",
            Self::MitTsm => "mit-tsm",
            Self::Mmaction2 => "mmaction2",
            Self::Torchvision => "torchvision",
        }
    }

    /// A key the layout always has, shown when a file does not fit.
    pub(super) fn example_key(self) -> &'static str {
        match self {
            Self::MitOnline => "features.2.conv.6.weight, classifier.weight",
            Self::MitTsm => "module.base_model.conv1.weight, module.new_fc.weight",
            Self::Mmaction2 => "backbone.conv1.conv.weight, cls_head.fc_cls.weight",
            Self::Torchvision => {
                "conv1.weight, fc.weight (or features.0.0.weight, classifier.1.weight)"
            }
        }
    }
}

/// Settings a checkpoint's weights cannot tell; each `None` takes the layout's default.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Class names, one a line; their count must equal the classifier's.
    pub labels: Option<PathBuf>,
    pub num_segments: Option<i64>,
    pub shift_div: Option<i64>,
    /// The shift direction (`None` in `Some(None)`: no shift, TSN).
    pub shift: Option<Option<ShiftDirection>>,
    pub temporal_pool: Option<bool>,
    pub input_size: Option<i64>,
    pub name: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("checkpoint {path}")]
    Pth {
        path: PathBuf,
        #[source]
        source: PthError,
    },
    #[error("{path}: not a {format} checkpoint")]
    Backbone {
        path: PathBuf,
        format: &'static str,
        #[source]
        source: UnknownBackbone,
    },
    #[error("{path}: not a {format} checkpoint: {what}")]
    Layout {
        path: PathBuf,
        format: &'static str,
        what: String,
    },
    #[error("labels {labels} for {path}: cannot read")]
    LabelsRead {
        labels: PathBuf,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("labels {labels} do not fit {path}: {what}")]
    Labels {
        labels: PathBuf,
        path: PathBuf,
        what: String,
    },
}

/// Reads `input`, maps it onto our network and writes `output`; nothing is written on failure.
pub fn import(
    format: ImportFormat,
    input: &Path,
    output: &Path,
    options: &ImportOptions,
) -> Result<ModelConfig, ImportError> {
    let layout = |what: String| ImportError::Layout {
        path: input.to_path_buf(),
        format: format.name(),
        what,
    };
    // The output must not be an input (the checkpoint or the labels) nor a link, fifo or device:
    // refused before the work, and again when written.
    let mut inputs = vec![input];
    inputs.extend(options.labels.as_deref());
    crate::fsio::check_target(output, &inputs).map_err(ModelError::from)?;
    let file = read_pth(input).map_err(|source| ImportError::Pth {
        path: input.to_path_buf(),
        source,
    })?;
    let keys: Vec<String> = file
        .tensors
        .keys()
        .filter(|k| !k.ends_with("num_batches_tracked"))
        .cloned()
        .collect();
    let mut found = Found::default();
    let (placed, left) = map_keys(format, &keys, &mut found);
    if !left.is_empty() {
        return Err(layout(format!(
            "{} of {} tensors left over, not in its layout (it has keys like {}): {}",
            left.len(),
            keys.len(),
            format.example_key(),
            checkpoint::summarise(&left)
        )));
    }
    let mut tensors = BTreeMap::new();
    for (theirs, ours) in placed {
        if let Some(t) = file.tensors.get(&theirs)
            && tensors.insert(ours.clone(), t.shallow_clone()).is_some()
        {
            return Err(layout(format!(
                "two tensors map onto '{ours}' (one is '{theirs}')"
            )));
        }
    }
    let backbone = backbone_of(&tensors).map_err(|source| ImportError::Backbone {
        path: input.to_path_buf(),
        format: format.name(),
        source,
    })?;
    let classifier = format!("{}.weight", classifier_of(&backbone));
    // Without a classifier the class count is unknown: 1 stands in, and the check of every
    // tensor against the network below reports the classifier missing with the rest.
    let num_classes = tensors.get(&classifier).map_or(1, |t| t.size()[0]);

    let (name_segments, name_div, name_placement, name_tpool, non_local) = match format {
        ImportFormat::MitTsm => settings_from_name(input),
        _ => (None, None, None, false, false),
    };
    if non_local {
        return Err(layout(
            "non-local blocks ('_nl' in the name) are not supported".into(),
        ));
    }
    let default_direction = match format {
        ImportFormat::MitOnline => Some(ShiftDirection::Uni),
        ImportFormat::Torchvision => Some(ShiftDirection::Bi),
        ImportFormat::MitTsm | ImportFormat::Mmaction2 => {
            found.shifted.then_some(ShiftDirection::Bi)
        }
    };
    let temporal = match options.shift.unwrap_or(default_direction) {
        None => Temporal::None,
        Some(direction) => Temporal::Shift {
            direction,
            shift_div: options.shift_div.or(name_div).unwrap_or(8),
            placement: if found.placement_block {
                ShiftPlacement::Block
            } else {
                name_placement.unwrap_or(ShiftPlacement::Blockres)
            },
            temporal_pool: options.temporal_pool.unwrap_or(name_tpool),
        },
    };
    let stem = file_name(input);
    let stem = stem
        .trim_end_matches(".tar")
        .trim_end_matches(".pth")
        .trim_end_matches(".pt")
        .to_string();
    let config = ModelConfig {
        name: options.name.clone().unwrap_or(stem),
        backbone,
        temporal,
        num_segments: options.num_segments.or(name_segments).unwrap_or(8),
        num_classes,
        dropout: 0.5,
        input_size: options.input_size.unwrap_or(224),
    };

    let labels = match &options.labels {
        Some(path) => Some(read_labels(path, input, num_classes)?),
        None => None,
    };

    let vs = nn::VarStore::new(tch::Device::Cpu);
    let _net = ActionNet::new(&vs.root(), &config)?;
    checkpoint::load_weights(&vs, &tensors, input, &config.name).map_err(|e| match e {
        ModelError::CheckpointMismatch { model, report, .. } => layout(format!(
            "its tensors, renamed, do not fit {model}:\n{report}"
        )),
        other => other.into(),
    })?;

    let preprocess = checkpoint::preprocess_metadata(&crate::preprocess::Transform::imagenet(
        config.input_size as usize,
    ));
    let mut extra = vec![
        ("preprocess", preprocess),
        ("import.format", format.name().to_string()),
        ("import.source", file_name(input)),
    ];
    if let Some(labels) = labels {
        extra.push(("labels", serde_json::Value::from(labels).to_string()));
    }
    checkpoint::save_checked(&vs, &config, &extra, output, &inputs)?;
    Ok(config)
}

fn read_labels(path: &Path, input: &Path, classes: i64) -> Result<Vec<String>, ImportError> {
    let bad = |what: String| ImportError::Labels {
        labels: path.to_path_buf(),
        path: input.to_path_buf(),
        what,
    };
    let text = std::fs::read_to_string(path).map_err(|source| ImportError::LabelsRead {
        labels: path.to_path_buf(),
        path: input.to_path_buf(),
        source,
    })?;
    let labels = checkpoint::label_lines(&text);
    if labels.len() as i64 != classes {
        return Err(bad(format!(
            "{} labels for a classifier of {classes} classes",
            labels.len()
        )));
    }
    Ok(labels)
}
