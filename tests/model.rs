//! Model building blocks end to end: the profile figures against the published ones, checkpoints
//! (round trip, mismatches, corrupt files) and clear errors for bad input.

mod common;

use std::path::Path;

use shiftlive::model::{
    ActionNet, Backbone, InferenceLayout, ModelConfig, ModelError, ResnetVariant, ShiftDirection,
    Temporal, TensorFile, checkpoint,
};
use shiftlive::online::{Recognizer, RecognizerOptions};
use shiftlive::profile::Profile;
use tch::{Kind, Tensor, nn};

fn within(value: f64, target: f64, tolerance: f64) -> bool {
    ((value - target) / target).abs() <= tolerance
}

#[test]
fn tsm_r50_profile_matches_the_paper_and_mmaction2() {
    let mut config = ModelConfig::tsm_r50();
    config.num_classes = 400;
    let p = Profile::of(&config, 8).unwrap();
    eprintln!("{}", p.table());
    // TSM paper: 24.3 M params; mmaction2: 32.88 G multiply-adds (paper: 33 G).
    assert!(
        within(p.params as f64, 24.33e6, 0.01),
        "params {}",
        p.params
    );
    assert!(within(p.flops as f64, 32.88e9, 0.01), "flops {}", p.flops);
    assert_eq!(
        p.stages.iter().map(|s| s.params).sum::<u64>(),
        p.params,
        "stage params add up to the model's"
    );
}

#[test]
fn tsm_mobilenet_v2_profile_matches_mmaction2_and_torchvision() {
    let p = Profile::of(&ModelConfig::tsm_mobilenet_v2(), 8).unwrap();
    eprintln!("{}", p.table());
    assert!(
        within(p.params as f64, 2.736e6, 0.01),
        "params {}",
        p.params
    );
    assert!(within(p.flops as f64, 2.40e9, 0.02), "flops {}", p.flops);
    assert_eq!(p.stages.iter().map(|s| s.params).sum::<u64>(), p.params);
}

#[test]
fn temporal_pool_halves_the_flops_of_layers_2_to_4() {
    let plain = Profile::of(&ModelConfig::tsm_r50(), 8).unwrap();
    let mut config = ModelConfig::tsm_r50();
    if let shiftlive::model::Temporal::Shift { temporal_pool, .. } = &mut config.temporal {
        *temporal_pool = true;
    }
    let pooled = Profile::of(&config, 8).unwrap();
    assert_eq!(
        pooled.stages[1].macs, plain.stages[1].macs,
        "layer1 runs on all frames"
    );
    for s in 2..5 {
        assert_eq!(pooled.stages[s].macs * 2, plain.stages[s].macs, "stage {s}");
    }
}

#[test]
fn mobilenet_v2_online_shifts_ten_blocks_with_the_demo_cache_shapes() {
    let config = ModelConfig::tsm_mobilenet_v2_online();
    let vs = nn::VarStore::new(tch::Device::Cpu);
    let net = ActionNet::new(&vs.root(), &config).unwrap();
    assert_eq!(net.shift_slots(), 10);
    let mut cache = net.new_cache();
    let x = Tensor::zeros([1, 3, 224, 224], (Kind::Float, tch::Device::Cpu));
    let _ = tch::no_grad(|| net.forward_stream(&x, &mut cache)).unwrap();
    let shapes: Vec<Vec<i64>> = cache.shapes().into_iter().map(Option::unwrap).collect();
    let expected = [
        [1, 3, 56, 56],
        [1, 4, 28, 28],
        [1, 4, 28, 28],
        [1, 8, 14, 14],
        [1, 8, 14, 14],
        [1, 8, 14, 14],
        [1, 12, 14, 14],
        [1, 12, 14, 14],
        [1, 20, 7, 7],
        [1, 20, 7, 7],
    ];
    assert_eq!(shapes, expected.map(|s| s.to_vec()));
    // About 106 KiB of fp32, as the TSM authors' demo.
    assert_eq!(cache.bytes(), 108_192);
}

fn tiny_net(config: &ModelConfig) -> (nn::VarStore, ActionNet) {
    let vs = nn::VarStore::new(tch::Device::Cpu);
    let net = ActionNet::new(&vs.root(), config).unwrap();
    (vs, net)
}

#[test]
fn checkpoint_round_trip_gives_the_same_logits() {
    tch::manual_seed(1);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let config = ModelConfig::mvf_r18_tiny();
    let (vs, net) = tiny_net(&config);
    // Non-trivial BatchNorm statistics, so a missed buffer would show.
    tch::no_grad(|| {
        for (name, var) in vs.variables() {
            if name.ends_with("running_var") {
                var.shallow_clone().copy_(&(var.rand_like() + 0.5));
            }
        }
    });
    checkpoint::save(&vs, &config, &[("note", "test".into())], &path).unwrap();
    let (_vs2, net2) = ActionNet::load(&path, tch::Device::Cpu).unwrap();
    assert_eq!(net2.config(), &config);
    let x = Tensor::randn([8, 3, 64, 64], (Kind::Float, tch::Device::Cpu));
    let a = tch::no_grad(|| net.forward_clip(&x, false)).unwrap().logits;
    let b = tch::no_grad(|| net2.forward_clip(&x, false))
        .unwrap()
        .logits;
    assert_eq!((a - b).abs().max().double_value(&[]), 0.0);
    let file = TensorFile::read(&path).unwrap();
    assert_eq!(file.metadata["note"], "test");
    // Nothing but the checkpoint in the directory: the temporary file was renamed.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn a_checkpoint_of_another_model_names_what_does_not_fit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r18.safetensors");
    let r18 = ModelConfig::tsm_r18_tiny();
    let (vs, _) = tiny_net(&r18);
    checkpoint::save(&vs, &r18, &[], &path).unwrap();
    let file = TensorFile::read(&path).unwrap();
    let mut other = r18.clone();
    other.backbone = Backbone::resnet(34, 16);
    other.num_classes = 7;
    let (vs34, _) = tiny_net(&other);
    let err = checkpoint::load_weights(&vs34, &file.tensors, &path, "r34").unwrap_err();
    let text = err.to_string();
    eprintln!("{text}");
    assert!(matches!(err, ModelError::CheckpointMismatch { .. }));
    assert!(text.contains("r18.safetensors"), "names the file: {text}");
    assert!(
        text.contains("missing (") && text.contains("layer1.2.conv1.weight"),
        "{text}"
    );
    assert!(
        text.contains("wrong shape (")
            && text.contains("fc.weight: model has [7, 128], file has [10, 128]"),
        "{text}"
    );
}

#[test]
fn corrupt_and_foreign_files_give_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.safetensors");
    std::fs::write(&text, "this is not a checkpoint").unwrap();
    let err = ActionNet::load(&text, tch::Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("notes.safetensors") && err.contains("not a safetensors file"),
        "{err}"
    );

    let missing = dir.path().join("absent.safetensors");
    let err = ActionNet::load(&missing, tch::Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("absent.safetensors") && err.contains("cannot read"),
        "{err}"
    );

    // A safetensors file without our config (a bare PyTorch export, say).
    let bare = dir.path().join("bare.safetensors");
    let mut file = TensorFile::default();
    file.tensors.insert(
        "w".into(),
        Tensor::ones([2], (Kind::Float, tch::Device::Cpu)),
    );
    file.write(&bare).unwrap();
    let err = ActionNet::load(&bare, tch::Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a shiftlive checkpoint"), "{err}");

    // Truncated: the header promises more bytes than there are.
    let (vs, _) = tiny_net(&ModelConfig::tsn_r18_tiny());
    let good = dir.path().join("good.safetensors");
    checkpoint::save(&vs, &ModelConfig::tsn_r18_tiny(), &[], &good).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let cut = dir.path().join("cut.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let err = ActionNet::load(&cut, tch::Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(err.contains("cut.safetensors"), "{err}");
}

#[test]
fn unknown_presets_and_bad_configs_are_refused_by_name() {
    let err = ModelConfig::from_preset("tsm_r51").unwrap_err().to_string();
    assert!(
        err.contains("tsm_r51") && err.contains("tsm_r50_online"),
        "{err}"
    );
    let mut config = ModelConfig::tsm_r50();
    config.backbone = Backbone::resnet(42, 64);
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("depth 42"), "{err}");
    let err = ModelConfig::from_json("{\"name\": 3}")
        .unwrap_err()
        .to_string();
    assert!(err.contains("malformed model config"), "{err}");
}

#[test]
fn bad_input_shapes_are_explained() {
    let (_vs, net) = tiny_net(&ModelConfig::tsm_r18_tiny());
    let f = |shape: &[i64]| Tensor::zeros(shape, (Kind::Float, tch::Device::Cpu));
    let err = net
        .forward_clip(&f(&[6, 3, 64, 64]), false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("divisible by the 4 frames") && err.contains("6 frames"),
        "{err}"
    );
    let err = net
        .forward_clip(&f(&[4, 1, 64, 64]), false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("3 colour channels") && err.contains("1 channels"),
        "{err}"
    );
    let err = net
        .forward_clip(&f(&[4, 64, 64]), false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("4-D batch"), "{err}");
    let err = net
        .forward_clip(&f(&[4, 3, 8, 8]), false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("32x32"), "{err}");
}

#[test]
fn offline_models_are_refused_for_streaming() {
    for config in [ModelConfig::tsm_r18_tiny(), ModelConfig::mvf_r18_tiny()] {
        let (_vs, net) = tiny_net(&config);
        let mut cache = net.new_cache();
        let x = Tensor::zeros([1, 3, 64, 64], (Kind::Float, tch::Device::Cpu));
        let err = net.forward_stream(&x, &mut cache).unwrap_err().to_string();
        assert!(err.contains("cannot run online"), "{err}");
    }
    let _ = Path::new("");
}

#[test]
fn vgg16_profile_matches_torchvision() {
    let mut config = ModelConfig::tsn_vgg16();
    config.num_classes = 1000;
    let p = Profile::of(&config, 1).unwrap();
    eprintln!("{}", p.table());
    // torchvision's vgg16: 138,357,544 parameters and "15.47 GFLOPS", which are multiply-adds of
    // the conv and linear layers (thop and fvcore count the same). By hand at 224 px, conv
    // multiply-adds per stage 224^2 * 9 * (3*64 + 64*64), 112^2 * 9 * (64*128 + 128*128),
    // 56^2 * 9 * (128*256 + 2*256^2), 28^2 * 9 * (256*512 + 2*512^2), 14^2 * 9 * 3*512^2 =
    // 15,346,630,656, plus fc6, fc7 and the classifier 25088*4096 + 4096^2 + 4096*1000.
    assert_eq!(p.params, 138_357_544);
    assert!(
        within(p.params as f64, 138.36e6, 0.02),
        "params {}",
        p.params
    );
    assert_eq!(
        p.flops,
        15_346_630_656 + 25_088 * 4096 + 4096 * 4096 + 4096 * 1000
    );
    assert!(within(p.flops as f64, 15.47e9, 0.02), "flops {}", p.flops);
    // Five pools take 224 to 7: fc6 sees 7x7x512 = 25088 features.
    let fc6 = p.stages.iter().find(|s| s.name.contains("fc6")).unwrap();
    assert_eq!(fc6.params, 25_088 * 4096 + 4096);
    assert_eq!(p.stages.iter().map(|s| s.params).sum::<u64>(), p.params);
}

#[test]
fn resnet50_d_profile_matches_paddleclas_and_timm() {
    let mut plain = ModelConfig::tsn_r50();
    let mut d = ModelConfig::tsn_r50_vd();
    plain.num_classes = 1000;
    d.num_classes = 1000;
    let b = Profile::of(&plain, 1).unwrap();
    let p = Profile::of(&d, 1).unwrap();
    eprintln!("{}", p.table());
    // Against ResNet-50 (torchvision, 25,557,032), the deep stem (3x3 convs 3->32->32->64 with
    // BatchNorm) replaces the 7x7 conv (3->64 with BatchNorm); the shortcut convs keep their
    // shapes and output sizes, the average pool adds neither weights nor multiply-adds.
    let deep_params = 9 * (3 * 32 + 32 * 32 + 32 * 64) + 2 * (32 + 32 + 64);
    let stem_params = 49 * 3 * 64 + 2 * 64;
    assert_eq!(b.params, 25_557_032);
    assert_eq!(p.params, b.params - stem_params + deep_params);
    assert_eq!(p.params, 25_576_264, "timm's resnet50d: 25.58 M");
    // PaddleClas lists 25.63 M: Paddle counts each BatchNorm's mean and variance as parameters
    // too (53,248 values here), and with them the figure is exact.
    let vs = nn::VarStore::new(tch::Device::Cpu);
    let _net = ActionNet::new(&vs.root(), &d).unwrap();
    let all: i64 = vs.variables().values().map(|t| t.numel() as i64).sum();
    assert_eq!(all as u64 - p.params, 53_248);
    assert!(within(all as f64, 25.63e6, 0.0002), "all values {all}");
    assert!(
        within(p.params as f64, 25.63e6, 0.02),
        "params {}",
        p.params
    );
    // Multiply-adds: the deep stem at 112x112 costs 112^2 * 9 * (3*32 + 32*32 + 32*64) against
    // the 7x7 conv's 112^2 * 49 * 3*64.
    let stem_delta = 112 * 112 * (9 * (3 * 32 + 32 * 32 + 32 * 64) - 49 * 3 * 64);
    assert_eq!(p.flops, b.flops + stem_delta);
    // PaddleClas' "4.35 GFLOPs" for ResNet50_vd: within half a percent (Paddle's counter also
    // counts part of the BatchNorm, pooling and activation work, which we leave out).
    assert!(within(p.flops as f64, 4.35e9, 0.02), "flops {}", p.flops);
    assert_eq!(p.stages.iter().map(|s| s.params).sum::<u64>(), p.params);
}

#[test]
fn old_resnet_configs_load_as_v1_5_and_resnet_d_says_so() {
    let old = r#"{"name": "x", "backbone": {"kind": "resnet", "depth": 50, "base_width": 64},
        "temporal": {"kind": "none"}, "num_segments": 8, "num_classes": 400, "dropout": 0.5,
        "input_size": 224}"#;
    let config = ModelConfig::from_json(old).unwrap();
    assert_eq!(config.backbone, Backbone::resnet(50, 64));
    // The default variant stays out of the JSON: configs read by older builds are unchanged.
    assert!(!config.to_json().contains("variant"));
    let d = ModelConfig::tsm_r50_vd();
    assert!(
        d.to_json().contains("\"variant\": \"d\""),
        "{}",
        d.to_json()
    );
    assert_eq!(ModelConfig::from_json(&d.to_json()).unwrap(), d);
    assert!(matches!(
        d.backbone,
        Backbone::Resnet {
            variant: ResnetVariant::D,
            ..
        }
    ));
    let vgg = ModelConfig::tsn_vgg16();
    assert_eq!(ModelConfig::from_json(&vgg.to_json()).unwrap(), vgg);
}

#[test]
fn vgg_refuses_temporal_modules_and_resnet_d_odd_widths() {
    let mut config = ModelConfig::tsn_vgg16_tiny();
    config.temporal = ModelConfig::tsm_r18_tiny().temporal;
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("VGG runs as TSN only"), "{err}");
    config.temporal = ModelConfig::mvf_r18_tiny().temporal;
    assert!(ActionNet::new(&nn::VarStore::new(tch::Device::Cpu).root(), &config).is_err());
    let mut config = ModelConfig::tsm_r50_vd_tiny();
    config.backbone = Backbone::resnet_d(50, 15);
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("must be even"), "{err}");
}

#[test]
fn new_presets_build_and_name_their_classifiers() {
    for (name, prefix) in [
        ("tsn_vgg16_tiny", "classifier.6."),
        ("tsm_r50_vd_tiny", "fc."),
    ] {
        let config = ModelConfig::from_preset(name).unwrap();
        let (vs, net) = tiny_net(&config);
        assert_eq!(net.classifier_prefix(), prefix);
        let names = vs.variables();
        assert!(names.contains_key(&format!("{prefix}weight")), "{name}");
        let x = Tensor::randn(
            [config.num_segments, 3, config.input_size, config.input_size],
            (Kind::Float, tch::Device::Cpu),
        );
        let out = net.forward_clip(&x, true).unwrap();
        assert_eq!(out.logits.size(), [1, config.num_classes]);
    }
    let config = ModelConfig::tsn_vgg16();
    assert_eq!(
        (config.num_segments, config.num_classes, config.dropout),
        (3, 101, 0.9)
    );
    assert_eq!(ModelConfig::tsm_r50_vd().num_segments, 8);
    assert!(matches!(
        ModelConfig::tsm_r50_vd_tiny_online().temporal,
        Temporal::Shift {
            direction: ShiftDirection::Uni,
            ..
        }
    ));
}

/// Frame by frame through the recogniser (folded BatchNorm, channels-last) against the offline
/// causal model on the whole clip.
fn check_online(config: &ModelConfig) {
    tch::manual_seed(5);
    let dir = tempfile::tempdir().unwrap();
    let vs = nn::VarStore::new(tch::Device::Cpu);
    let net = ActionNet::new(&vs.root(), config).unwrap();
    common::lively(&vs, &net, config.input_size);
    // Fully connected layers (VGG's fc6, fc7 and classifier too) with He's fan-in scale, so that
    // the logits depend on the input enough for the comparison to mean something.
    tch::no_grad(|| {
        for (_, w) in vs.variables() {
            if w.dim() == 2 {
                let fan_in = w.size()[1] as f64;
                w.shallow_clone()
                    .copy_(&(w.randn_like() * (2.0 / fan_in).sqrt()));
            }
        }
    });
    let path = dir.path().join("m.safetensors");
    checkpoint::save(&vs, config, &[], &path).unwrap();
    let frames = 12;
    let side = config.input_size;
    let x = Tensor::randn([frames, 3, side, side], (Kind::Float, tch::Device::Cpu));
    let offline = tch::no_grad(|| net.forward_clip_t(&x, frames, false))
        .unwrap()
        .frame_logits;
    let spread = offline
        .std_dim(&[0i64][..], true, false)
        .mean(None)
        .double_value(&[]);
    assert!(
        spread > 1e-2,
        "{}: logits barely vary ({spread})",
        config.name
    );
    for (fold_bn, channels_last) in [(false, false), (true, false), (true, true)] {
        let options = RecognizerOptions {
            fold_bn,
            channels_last,
            ..Default::default()
        };
        let mut rec = Recognizer::from_checkpoint(&path, options).unwrap();
        let online: Vec<Tensor> = (0..frames)
            .map(|t| rec.step_tensor(&x.narrow(0, t, 1)).unwrap())
            .collect();
        let diff = (Tensor::cat(&online, 0) - &offline)
            .abs()
            .max()
            .double_value(&[]);
        eprintln!(
            "{} fold_bn={fold_bn} channels_last={channels_last}: online vs offline {diff:.2e}",
            config.name
        );
        assert!(diff <= 1e-4, "{}: online differs by {diff}", config.name);
    }
    // The same layouts through the clip path.
    let (_vs2, mut folded) = ActionNet::load(&path, tch::Device::Cpu).unwrap();
    folded.prepare_inference(InferenceLayout {
        kind: Kind::Float,
        channels_last: true,
    });
    let clip = tch::no_grad(|| folded.forward_clip_t(&x, frames, false))
        .unwrap()
        .frame_logits;
    let diff = (clip - &offline).abs().max().double_value(&[]);
    assert!(
        diff <= 1e-4,
        "{}: folded clip differs by {diff}",
        config.name
    );
}

#[test]
fn online_resnet50_d_equals_the_offline_causal_model() {
    check_online(&ModelConfig::tsm_r50_vd_tiny_online());
}

#[test]
fn online_vgg_tsn_equals_the_offline_model() {
    check_online(&ModelConfig::tsn_vgg16_tiny());
}

#[test]
fn training_presets_of_the_new_backbones_follow_their_recipes() {
    use shiftlive::model::Preset;
    use shiftlive::train::{DataSpec, TrainConfig};
    let data = || DataSpec::Ucf101 {
        root: "UCF-101".into(),
        splits: None,
        split: 1,
        frames: false,
    };
    for &preset in Preset::all() {
        let config = TrainConfig::preset(preset, data());
        config.validate().unwrap();
        assert_eq!(config.model.name, preset.name());
    }
    // GluonCV's vgg16_ucf101: 3 segments, dropout 0.9, lr 0.001 for 80 epochs, no clipping.
    let vgg = TrainConfig::preset("tsn_vgg16".parse().unwrap(), data());
    assert_eq!(vgg.model.num_segments, 3);
    assert_eq!(vgg.model.dropout, 0.9);
    assert_eq!((vgg.regimen.epochs, vgg.regimen.clip_grad), (80, None));
    // The ResNet-D presets take the ResNet-50 recipes.
    let tsm = TrainConfig::preset("tsm".parse().unwrap(), data());
    let vd = TrainConfig::preset("tsm_r50_vd".parse().unwrap(), data());
    assert_eq!(
        (vd.regimen.epochs, vd.model.dropout),
        (tsm.regimen.epochs, tsm.model.dropout)
    );
}
