//! Model building blocks end to end: the profile figures against the published ones, checkpoints
//! (round trip, mismatches, corrupt files) and clear errors for bad input.

use std::path::Path;

use shiftlive::model::{ActionNet, ModelConfig, ModelError, TensorFile, checkpoint};
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
    other.backbone = shiftlive::model::Backbone::Resnet {
        depth: 34,
        base_width: 16,
    };
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
    config.backbone = shiftlive::model::Backbone::Resnet {
        depth: 42,
        base_width: 64,
    };
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
