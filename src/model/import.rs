//! Importing PyTorch checkpoints of other projects into shiftlive safetensors checkpoints.
//!
//! Four layouts, each mapped key by key onto our torchvision-style names:
//! - `mit-online`: the TSM authors' online demo MobileNetV2 (Lin et al., "TSM: Temporal Shift
//!   Module for Efficient Video Understanding", ICCV 2019): a plain state_dict whose blocks number
//!   their layers as one flat `nn.Sequential` (`features.N.conv.0/1/3/4/6/7`, ReLU6s included),
//!   `classifier.weight` a bare Linear; uni-directional shift.
//! - `mit-tsm`: their offline TSN/TSM (`module.base_model.*`, shifted convs under `.net`,
//!   `module.new_fc.*`), settings read from the file name as they name it.
//! - `mmaction2`: TSM/TSN ResNets (`backbone.*` of ConvModules `.conv`/`.bn`, `cls_head.fc_cls.*`).
//! - `torchvision`: ImageNet ResNet/MobileNetV2 state_dicts (our names already).
//!
//! Every tensor must be placed and every variable of the network filled, or the import fails
//! naming the keys left over or missing; the output is written (atomically) only at the end.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use tch::{Tensor, nn};

use super::checkpoint;
use super::config::{Backbone, ModelConfig, ShiftDirection, ShiftPlacement, Temporal};
use super::mobilenet_v2::make_divisible;
use super::net::ActionNet;
use super::pth::read_pth;
use super::ModelError;

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
    fn example_key(self) -> &'static str {
        match self {
            Self::MitOnline => "features.2.conv.6.weight, classifier.weight",
            Self::MitTsm => "module.base_model.conv1.weight, module.new_fc.weight",
            Self::Mmaction2 => "backbone.conv1.conv.weight, cls_head.fc_cls.weight",
            Self::Torchvision => "conv1.weight, fc.weight (or features.0.0.weight, classifier.1.weight)",
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
    #[error("{path}: not a {format} checkpoint: {what}")]
    Layout {
        path: PathBuf,
        format: &'static str,
        what: String,
    },
    #[error("labels {labels} do not fit {path}: {what}")]
    Labels {
        labels: PathBuf,
        path: PathBuf,
        what: String,
    },
}

/// What the key map found out about the source network.
#[derive(Debug, Default)]
struct Found {
    shifted: bool,
    placement_block: bool,
}

fn is_param(s: &str) -> bool {
    matches!(s, "weight" | "bias" | "running_mean" | "running_var")
}

/// The TSM authors' flat block numbering -> torchvision's nested one. `expanded`: the block has
/// an expansion conv (their `conv.6` exists).
fn mit_mbv2_key(key: &str, expanded: &BTreeSet<String>) -> Option<String> {
    if let Some(param) = key.strip_prefix("classifier.") {
        return is_param(param).then(|| format!("classifier.1.{param}"));
    }
    let rest = key.strip_prefix("features.")?;
    let (n, rest) = rest.split_once('.')?;
    let index: usize = n.parse().ok()?;
    if let Some(inner) = rest.strip_prefix("conv.") {
        let (k, param) = inner.split_once('.')?;
        if !is_param(param) {
            return None;
        }
        let ours = if expanded.contains(n) {
            match k {
                "0" => "0.0",
                "1" => "0.1",
                "3" => "1.0",
                "4" => "1.1",
                "6" => "2",
                "7" => "3",
                _ => return None,
            }
        } else {
            match k {
                "0" => "0.0",
                "1" => "0.1",
                "3" => "1",
                "4" => "2",
                _ => return None,
            }
        };
        return Some(format!("features.{index}.conv.{ours}.{param}"));
    }
    // The stem and the last 1x1 conv: Sequential(conv, bn, relu6), as in torchvision.
    let (k, param) = rest.split_once('.')?;
    (matches!(k, "0" | "1") && is_param(param)).then(|| key.to_string())
}

/// mmaction2's ResNet (ConvModules) -> torchvision names.
fn mmaction2_key(key: &str) -> Option<String> {
    if let Some(param) = key.strip_prefix("cls_head.fc_cls.") {
        return is_param(param).then(|| format!("fc.{param}"));
    }
    let rest = key.strip_prefix("backbone.")?;
    if let Some(tail) = rest.strip_prefix("conv1.") {
        return match tail.split_once('.')? {
            ("conv", p) if p == "weight" => Some("conv1.weight".into()),
            ("bn", p) if is_param(p) => Some(format!("bn1.{p}")),
            _ => None,
        };
    }
    let parts: Vec<&str> = rest.split('.').collect();
    // layerX.Y.(convK|downsample).(conv|bn).param
    let [layer, block, module, kind, param] = parts[..] else {
        return None;
    };
    if !layer.starts_with("layer") || block.parse::<usize>().is_err() || !is_param(param) {
        return None;
    }
    let ours = match (module, kind) {
        ("downsample", "conv") => "downsample.0".to_string(),
        ("downsample", "bn") => "downsample.1".to_string(),
        (m, "conv") if m.starts_with("conv") => m.to_string(),
        (m, "bn") if m.starts_with("conv") => format!("bn{}", &m[4..]),
        _ => return None,
    };
    if kind == "conv" && param != "weight" {
        return None;
    }
    Some(format!("{layer}.{block}.{ours}.{param}"))
}

/// Removes the `.net` of shifted modules, noting where it sat.
fn strip_net(key: &str, found: &mut Found) -> String {
    if !key.contains(".net.") {
        return key.to_string();
    }
    found.shifted = true;
    // `layerX.Y.net.` (or `features.N.net.`) wraps a whole block: shift on the block input.
    let parts: Vec<&str> = key.split('.').collect();
    if let Some(i) = parts.iter().position(|p| *p == "net") {
        if i >= 2 && parts[i - 2].starts_with("layer") {
            found.placement_block = true;
        }
    }
    key.replace(".net.", ".")
}

fn map_keys(
    format: ImportFormat,
    keys: &[String],
    found: &mut Found,
) -> (Vec<(String, String)>, Vec<String>) {
    let expanded: BTreeSet<String> = keys
        .iter()
        .filter_map(|k| {
            let k = k.strip_prefix("module.base_model.").unwrap_or(k);
            let rest = k.strip_prefix("features.")?;
            let (n, rest) = rest.split_once('.')?;
            rest.starts_with("conv.6.").then(|| n.to_string())
        })
        .collect();
    // Their new_fc is `fc` of a ResNet, `classifier.1` of a MobileNetV2.
    let fc = if keys.iter().any(|k| k.starts_with("module.base_model.features.")) {
        "classifier.1"
    } else {
        "fc"
    };
    let mut placed = Vec::new();
    let mut left = Vec::new();
    for key in keys {
        let ours = match format {
            ImportFormat::MitOnline => mit_mbv2_key(key, &expanded),
            ImportFormat::Torchvision => Some(key.clone()),
            ImportFormat::Mmaction2 => mmaction2_key(&strip_net(key, found)),
            ImportFormat::MitTsm => {
                if let Some(param) = key.strip_prefix("module.new_fc.") {
                    is_param(param).then(|| format!("{fc}.{param}"))
                } else if let Some(rest) = key.strip_prefix("module.base_model.") {
                    let rest = strip_net(rest, found);
                    if rest.starts_with("features.") {
                        mit_mbv2_key(&rest, &expanded)
                    } else {
                        Some(rest)
                    }
                } else {
                    None
                }
            }
        };
        match ours {
            Some(ours) => placed.push((key.clone(), ours)),
            None => left.push(key.clone()),
        }
    }
    (placed, left)
}

/// The backbone the mapped (our-named) tensors describe.
fn backbone_of(tensors: &BTreeMap<String, Tensor>) -> Result<Backbone, String> {
    if let Some(stem) = tensors.get("conv1.weight") {
        let base_width = stem.size()[0];
        let bottleneck = tensors.contains_key("layer1.0.conv3.weight");
        let blocks: Vec<usize> = (1..=4)
            .map(|s| {
                let prefix = format!("layer{s}.");
                tensors
                    .keys()
                    .filter_map(|k| k.strip_prefix(&prefix)?.split('.').next()?.parse().ok())
                    .map(|b: usize| b + 1)
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let depth = match (bottleneck, &blocks[..]) {
            (false, [2, 2, 2, 2]) => 18,
            (false, [3, 4, 6, 3]) => 34,
            (true, [3, 4, 6, 3]) => 50,
            (true, [3, 4, 23, 3]) => 101,
            _ => {
                return Err(format!(
                    "ResNet with blocks {blocks:?} ({}) is not ResNet-18/34/50/101",
                    if bottleneck { "bottleneck" } else { "basic" }
                ));
            }
        };
        return Ok(Backbone::Resnet { depth, base_width });
    }
    if let Some(stem) = tensors.get("features.0.0.weight") {
        let stem_ch = stem.size()[0];
        let last = tensors.get("features.18.0.weight").map(|t| t.size()[0]);
        for width_mult in [1.0, 0.5, 0.75, 1.4, 1.3, 0.35, 0.25, 2.0] {
            if make_divisible(32.0 * width_mult, 8) == stem_ch
                && last == Some(make_divisible(1280.0 * f64::max(width_mult, 1.0), 8))
            {
                return Ok(Backbone::MobileNetV2 { width_mult });
            }
        }
        return Err(format!(
            "MobileNetV2 stem of {stem_ch} channels and last conv of {last:?}: no known width"
        ));
    }
    Err("neither a ResNet (conv1.weight) nor a MobileNetV2 (features.0.0.weight)".into())
}

/// Settings the TSM authors put in their file names:
/// `TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment8_e50.pth`.
fn settings_from_name(path: &Path) -> (Option<i64>, Option<i64>, Option<ShiftPlacement>, bool, bool) {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let (mut segments, mut shift_div, mut placement, mut tpool, mut nl) = (None, None, None, false, false);
    for token in name.split(['_', '.']) {
        if let Some(n) = token.strip_prefix("segment") {
            segments = n.parse().ok().or(segments);
        } else if let Some(n) = token.strip_prefix("shift") {
            shift_div = n.parse().ok().or(shift_div);
        } else if token == "blockres" {
            placement = Some(ShiftPlacement::Blockres);
        } else if token == "block" {
            placement = Some(ShiftPlacement::Block);
        } else if token == "tpool" {
            tpool = true;
        } else if token == "nl" {
            nl = true;
        }
    }
    (segments, shift_div, placement, tpool, nl)
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
    let file = read_pth(input)?;
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
            summarise(&left)
        )));
    }
    let mut tensors = BTreeMap::new();
    for (theirs, ours) in placed {
        if let Some(t) = file.tensors.get(&theirs) {
            if tensors.insert(ours.clone(), t.shallow_clone()).is_some() {
                return Err(layout(format!("two tensors map onto '{ours}' (one is '{theirs}')")));
            }
        }
    }
    let backbone = backbone_of(&tensors).map_err(layout)?;
    let classifier = match backbone {
        Backbone::Resnet { .. } => "fc.weight",
        Backbone::MobileNetV2 { .. } => "classifier.1.weight",
    };
    let num_classes = tensors
        .get(classifier)
        .map(|t| t.size()[0])
        .ok_or_else(|| layout(format!("no classifier '{classifier}' after mapping")))?;

    let (name_segments, name_div, name_placement, name_tpool, non_local) = match format {
        ImportFormat::MitTsm => settings_from_name(input),
        _ => (None, None, None, false, false),
    };
    if non_local {
        return Err(layout("non-local blocks ('_nl' in the name) are not supported".into()));
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
    let stem = input
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
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
    checkpoint::load_weights(&vs, &tensors, input, &config.name)?;

    let resize = (config.input_size as f64 * 256.0 / 224.0).round() as i64;
    let preprocess = serde_json::json!({
        "mean": [0.485, 0.456, 0.406],
        "std": [0.229, 0.224, 0.225],
        "value_range": [0.0, 1.0],
        "resize": resize,
        "crop": config.input_size,
    });
    let mut extra = vec![
        ("preprocess", preprocess.to_string()),
        ("import.format", format.name().to_string()),
        ("import.source", input.display().to_string()),
    ];
    if let Some(labels) = labels {
        extra.push(("labels", serde_json::Value::from(labels).to_string()));
    }
    checkpoint::save(&vs, &config, &extra, output)?;
    Ok(config)
}

fn read_labels(path: &Path, input: &Path, classes: i64) -> Result<Vec<String>, ImportError> {
    let bad = |what: String| ImportError::Labels {
        labels: path.to_path_buf(),
        path: input.to_path_buf(),
        what,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read: {e}")))?;
    let labels: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    if labels.len() as i64 != classes {
        return Err(bad(format!(
            "{} labels for a classifier of {classes} classes",
            labels.len()
        )));
    }
    Ok(labels)
}

fn summarise(names: &[String]) -> String {
    const SHOWN: usize = 8;
    let mut out = names.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > SHOWN {
        out.push_str(&format!(", ... and {} more", names.len() - SHOWN));
    }
    out
}
