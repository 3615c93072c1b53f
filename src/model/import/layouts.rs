//! The key maps of the imported layouts onto our torchvision-style names, and what the mapped
//! tensors and the TSM authors' file names say about the network.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use tch::Tensor;

use super::convert::ImportFormat;
use crate::model::config::{Backbone, ShiftPlacement};
use crate::model::mobilenet_v2::make_divisible;

/// Why the mapped tensors describe no network we build.
#[derive(Debug, thiserror::Error)]
pub enum UnknownBackbone {
    #[error("ResNet with blocks {blocks:?} ({kind}) is not ResNet-18/34/50/101")]
    ResnetDepth {
        blocks: Vec<usize>,
        kind: &'static str,
    },
    #[error("MobileNetV2 stem of {stem} channels and last conv of {last:?}: no known width")]
    MobileNetV2Width { stem: i64, last: Option<i64> },
    #[error("neither a ResNet (conv1.weight) nor a MobileNetV2 (features.0.0.weight)")]
    Neither,
}

/// What the key map found out about the source network.
#[derive(Debug, Default)]
pub(super) struct Found {
    pub shifted: bool,
    pub placement_block: bool,
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
            ("conv", "weight") => Some("conv1.weight".into()),
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

/// Blocks per `layerN` of mmaction2's MobileNetV2 (its `arch_settings`).
const MM_MBV2_BLOCKS: [usize; 7] = [1, 2, 3, 4, 3, 3, 1];

/// mmaction2's MobileNetV2 (ConvModules `conv`/`bn`: `conv1`, `layer1`..`layer7` of
/// InvertedResidual blocks whose `conv` lists 2 or 3 ConvModules, `conv2`) -> torchvision names.
/// `expanded`: the (layer, block) pairs with an expansion ConvModule (their `conv.2` exists).
fn mmaction2_mbv2_key(key: &str, expanded: &BTreeSet<(usize, usize)>) -> Option<String> {
    if let Some(param) = key.strip_prefix("cls_head.fc_cls.") {
        return is_param(param).then(|| format!("classifier.1.{param}"));
    }
    let rest = key.strip_prefix("backbone.")?;
    let conv_bn = |tail: &str, index: &str| -> Option<String> {
        match tail.split_once('.')? {
            ("conv", "weight") => Some(format!("features.{index}.0.weight")),
            ("bn", p) if is_param(p) => Some(format!("features.{index}.1.{p}")),
            _ => None,
        }
    };
    if let Some(tail) = rest.strip_prefix("conv1.") {
        return conv_bn(tail, "0");
    }
    if let Some(tail) = rest.strip_prefix("conv2.") {
        let last = 1 + MM_MBV2_BLOCKS.iter().sum::<usize>();
        return conv_bn(tail, &last.to_string());
    }
    let parts: Vec<&str> = rest.split('.').collect();
    // layerL.J.conv.K.(conv|bn).param
    let [layer, block, "conv", k, kind, param] = parts[..] else {
        return None;
    };
    let layer: usize = layer.strip_prefix("layer")?.parse().ok()?;
    let block: usize = block.parse().ok()?;
    let k: usize = k.parse().ok()?;
    if !(1..=MM_MBV2_BLOCKS.len()).contains(&layer)
        || block >= MM_MBV2_BLOCKS[layer - 1]
        || !is_param(param)
        || (kind == "conv" && param != "weight")
    {
        return None;
    }
    let index = 1 + MM_MBV2_BLOCKS[..layer - 1].iter().sum::<usize>() + block;
    // torchvision: the ConvBNReLUs are `conv.N.0` / `conv.N.1`, the projection `conv.M` (conv)
    // and `conv.M+1` (its BN).
    let convs = if expanded.contains(&(layer, block)) {
        3
    } else {
        2
    };
    let ours = match (k + 1 == convs, kind) {
        (false, "conv") => format!("{k}.0"),
        (false, "bn") => format!("{k}.1"),
        (true, "conv") => format!("{k}"),
        (true, "bn") => format!("{}", k + 1),
        _ => return None,
    };
    Some(format!("features.{index}.conv.{ours}.{param}"))
}

/// Removes the `.net` of shifted modules, noting where it sat.
fn strip_net(key: &str, found: &mut Found) -> String {
    if !key.contains(".net.") {
        return key.to_string();
    }
    found.shifted = true;
    // `layerX.Y.net.` (or `features.N.net.`) wraps a whole block: shift on the block input.
    let parts: Vec<&str> = key.split('.').collect();
    if let Some(i) = parts.iter().position(|p| *p == "net")
        && i >= 2
        && parts[i - 2].starts_with("layer")
    {
        found.placement_block = true;
    }
    key.replace(".net.", ".")
}

pub(super) fn map_keys(
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
    let fc = if keys
        .iter()
        .any(|k| k.starts_with("module.base_model.features."))
    {
        "classifier.1"
    } else {
        "fc"
    };
    // mmaction2's MobileNetV2 has a `backbone.conv2` (its ResNet only `layerX.Y.conv2`).
    let mm_mbv2 = keys.iter().any(|k| k.starts_with("backbone.conv2."));
    let mm_expanded: BTreeSet<(usize, usize)> = keys
        .iter()
        .filter_map(|k| {
            let parts: Vec<&str> = k.split('.').collect();
            match parts[..] {
                ["backbone", layer, block, "conv", "2", ..] => Some((
                    layer.strip_prefix("layer")?.parse().ok()?,
                    block.parse().ok()?,
                )),
                _ => None,
            }
        })
        .collect();
    let mut placed = Vec::new();
    let mut left = Vec::new();
    for key in keys {
        let ours = match format {
            ImportFormat::MitOnline => mit_mbv2_key(key, &expanded),
            ImportFormat::Torchvision => Some(key.clone()),
            ImportFormat::Mmaction2 if mm_mbv2 => {
                mmaction2_mbv2_key(&strip_net(key, found), &mm_expanded)
            }
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
pub(super) fn backbone_of(tensors: &BTreeMap<String, Tensor>) -> Result<Backbone, UnknownBackbone> {
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
                let kind = if bottleneck { "bottleneck" } else { "basic" };
                return Err(UnknownBackbone::ResnetDepth { blocks, kind });
            }
        };
        return Ok(Backbone::resnet(depth, base_width));
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
        return Err(UnknownBackbone::MobileNetV2Width {
            stem: stem_ch,
            last,
        });
    }
    Err(UnknownBackbone::Neither)
}

/// The file name of `path` (the whole path if it has none, such as `..`).
pub(super) fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Settings the TSM authors put in their file names:
/// `TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment8_e50.pth`.
pub(super) fn settings_from_name(
    path: &Path,
) -> (Option<i64>, Option<i64>, Option<ShiftPlacement>, bool, bool) {
    let name = file_name(path);
    let (mut segments, mut shift_div, mut placement, mut tpool, mut nl) =
        (None, None, None, false, false);
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

#[cfg(test)]
#[path = "layouts_tests.rs"]
mod tests;
