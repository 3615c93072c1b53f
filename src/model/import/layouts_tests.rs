//! The import key maps on a few names of each layout, and the settings in the TSM authors'
//! file names.

use std::collections::BTreeSet;
use std::path::Path;

use super::*;

#[test]
fn mmaction2_resnet_keys_map_to_torchvision_names() {
    for (theirs, ours) in [
        ("backbone.conv1.conv.weight", Some("conv1.weight")),
        ("backbone.conv1.bn.running_var", Some("bn1.running_var")),
        ("backbone.layer1.0.conv2.bn.bias", Some("layer1.0.bn2.bias")),
        (
            "backbone.layer2.0.downsample.conv.weight",
            Some("layer2.0.downsample.0.weight"),
        ),
        ("cls_head.fc_cls.bias", Some("fc.bias")),
        // ConvModules' convs have no bias here; an unknown head is not ours.
        ("backbone.layer1.0.conv1.conv.bias", None),
        ("neck.fc.weight", None),
    ] {
        assert_eq!(mmaction2_key(theirs).as_deref(), ours, "{theirs}");
    }
}

#[test]
fn tsm_authors_flat_mobilenet_blocks_map_to_torchvision_nesting() {
    let expanded: BTreeSet<String> = ["2".to_string()].into();
    for (theirs, ours) in [
        (
            "features.2.conv.0.weight",
            Some("features.2.conv.0.0.weight"),
        ),
        ("features.2.conv.6.weight", Some("features.2.conv.2.weight")),
        (
            "features.2.conv.7.running_mean",
            Some("features.2.conv.3.running_mean"),
        ),
        ("features.1.conv.3.weight", Some("features.1.conv.1.weight")),
        ("features.1.conv.4.bias", Some("features.1.conv.2.bias")),
        ("features.0.1.weight", Some("features.0.1.weight")),
        ("classifier.weight", Some("classifier.1.weight")),
        ("features.1.conv.6.weight", None),
    ] {
        assert_eq!(mit_mbv2_key(theirs, &expanded).as_deref(), ours, "{theirs}");
    }
}

#[test]
fn mmaction2_mobilenet_layers_map_to_feature_indices() {
    let expanded: BTreeSet<(usize, usize)> = [(2, 1)].into();
    for (theirs, ours) in [
        ("backbone.conv1.conv.weight", Some("features.0.0.weight")),
        ("backbone.conv2.bn.weight", Some("features.18.1.weight")),
        (
            "backbone.layer1.0.conv.0.conv.weight",
            Some("features.1.conv.0.0.weight"),
        ),
        (
            "backbone.layer1.0.conv.1.bn.bias",
            Some("features.1.conv.2.bias"),
        ),
        (
            "backbone.layer2.1.conv.0.bn.weight",
            Some("features.3.conv.0.1.weight"),
        ),
        (
            "backbone.layer2.1.conv.2.conv.weight",
            Some("features.3.conv.2.weight"),
        ),
        (
            "backbone.layer2.1.conv.2.bn.running_var",
            Some("features.3.conv.3.running_var"),
        ),
        ("backbone.layer1.1.conv.0.conv.weight", None),
    ] {
        assert_eq!(
            mmaction2_mbv2_key(theirs, &expanded).as_deref(),
            ours,
            "{theirs}"
        );
    }
}

#[test]
fn tsm_authors_shifted_keys_lose_their_net_and_tell_the_placement() {
    let keys: Vec<String> = [
        "module.base_model.conv1.weight",
        "module.base_model.layer1.0.conv1.net.weight",
        "module.new_fc.bias",
        "module.other.weight",
    ]
    .map(String::from)
    .into();
    let mut found = Found::default();
    let (placed, left) = map_keys(ImportFormat::MitTsm, &keys, &mut found);
    let ours: Vec<&str> = placed.iter().map(|(_, ours)| ours.as_str()).collect();
    assert_eq!(ours, ["conv1.weight", "layer1.0.conv1.weight", "fc.bias"]);
    assert_eq!(left, ["module.other.weight"]);
    assert!(found.shifted && !found.placement_block);

    let keys = vec!["module.base_model.layer1.0.net.conv1.weight".to_string()];
    let mut found = Found::default();
    let (placed, _) = map_keys(ImportFormat::MitTsm, &keys, &mut found);
    assert_eq!(placed[0].1, "layer1.0.conv1.weight");
    assert!(found.placement_block);
}

#[test]
fn settings_come_from_the_tsm_authors_file_names() {
    let name = Path::new("TSM_kinetics_RGB_resnet50_shift8_blockres_avg_segment8_e50.pth");
    assert_eq!(
        settings_from_name(name),
        (
            Some(8),
            Some(8),
            Some(ShiftPlacement::Blockres),
            false,
            false
        )
    );
    let name = Path::new("TSM_something_RGB_resnet50_shift4_block_tpool_segment16_nl.pth");
    assert_eq!(
        settings_from_name(name),
        (Some(16), Some(4), Some(ShiftPlacement::Block), true, true)
    );
}
