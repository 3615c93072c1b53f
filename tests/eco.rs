//! ECO: the networks against the plain-PyTorch reference in tests/golden/make_eco.py (same
//! weights, same input, logits within 1e-4), the profile against the seed measurement, training
//! passes, and the online runner against the offline network on its working memory.

use std::collections::BTreeMap;
use std::path::Path;

use shiftlive::model::{ActionNet, ModelConfig, TensorFile, checkpoint};
use shiftlive::online::{
    Averaging, EcoOptions, EcoRunner, MemorySampling, Precision, RecognizerOptions,
};
use shiftlive::profile::Profile;
use tch::{Kind, Tensor, nn};

const TOLERANCE: f64 = 1e-4;

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    (a - b).abs().max().double_value(&[])
}

/// Loads a golden case into a network; returns it with the file.
fn load(case: &str) -> (nn::VarStore, ActionNet, TensorFile) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{case}.safetensors"));
    let file = TensorFile::read(&path).unwrap_or_else(|e| panic!("{e}"));
    let config = ModelConfig::from_json(&file.metadata["config"]).unwrap();
    let vs = nn::VarStore::new(tch::Device::Cpu);
    let net = ActionNet::new(&vs.root(), &config).unwrap();
    let weights: BTreeMap<String, Tensor> = file
        .tensors
        .iter()
        .filter(|(k, _)| !k.starts_with("__"))
        .map(|(k, v)| (k.clone(), v.shallow_clone()))
        .collect();
    checkpoint::load_weights(&vs, &weights, &path, case).unwrap_or_else(|e| panic!("{e}"));
    (vs, net, file)
}

fn parity(case: &str) {
    let (_vs, net, file) = load(case);
    let out = tch::no_grad(|| net.forward_clip(&file.tensors["__input__"], false)).unwrap();
    let logits = max_abs_diff(&out.logits, &file.tensors["__logits__"]);
    let frames = max_abs_diff(&out.frame_logits, &file.tensors["__frame_logits__"]);
    let scale = file.tensors["__logits__"].abs().max().double_value(&[]);
    eprintln!("{case}: max |logit| {scale:.3}, max abs diff {logits:.2e} (per clip {frames:.2e})");
    assert!(logits <= TOLERANCE, "{case}: logits differ by {logits}");
    assert!(
        frames <= TOLERANCE,
        "{case}: frame logits differ by {frames}"
    );
}

#[test]
fn eco_lite_tiny_matches_pytorch() {
    parity("eco_lite_tiny");
}

#[test]
fn eco_full_tiny_matches_pytorch() {
    parity("eco_full_tiny");
}

#[test]
fn folded_eco_matches_the_reference() {
    for case in ["eco_lite_tiny", "eco_full_tiny"] {
        let (_vs, mut net, file) = load(case);
        net.prepare_inference(shiftlive::model::InferenceLayout {
            kind: Kind::Float,
            channels_last: true,
        });
        let out = tch::no_grad(|| net.forward_clip(&file.tensors["__input__"], false)).unwrap();
        let diff = max_abs_diff(&out.logits, &file.tensors["__logits__"]);
        eprintln!("{case} folded, channels-last: max abs diff {diff:.2e}");
        assert!(diff <= TOLERANCE, "{case}: folded logits differ by {diff}");
    }
}

fn within(value: f64, target: f64, tolerance: f64) -> bool {
    ((value - target) / target).abs() <= tolerance
}

#[test]
fn eco_lite_profile_matches_the_seed_measurement() {
    // Seed document: ECO at 16 frames, 46.68 G and 37.5 M (thop). That is ECO-Lite with 400
    // classes at 224 px: thop 0.1.1 counts conv and linear multiply-adds (46.486 G, conv biases
    // not counted) plus 4 operations per BatchNorm input element (0.189 G) = 46.676 G, and
    // 37,503,856 parameters. The profile counts conv and fc multiply-adds only.
    let p = Profile::of(&ModelConfig::eco_lite(), 16).unwrap();
    eprintln!("{}", p.table());
    assert_eq!(p.params, 37_503_856, "params");
    assert!(within(p.params as f64, 37.5e6, 0.02), "params {}", p.params);
    assert!(within(p.flops as f64, 46.68e9, 0.02), "flops {}", p.flops);
    assert_eq!(
        p.flops, 46_486_462_464,
        "conv + fc multiply-adds as the reference counts them"
    );
    assert_eq!(p.stages.iter().map(|s| s.params).sum::<u64>(), p.params);
    // ECO-Full: the whole BN-Inception per frame on top (47.5 M, 64.4 G).
    let full = Profile::of(&ModelConfig::eco_full(), 16).unwrap();
    eprintln!("{}", full.table());
    assert_eq!(full.params, 47_502_128);
    assert_eq!(
        full.stages.iter().map(|s| s.params).sum::<u64>(),
        full.params
    );
    assert!(
        within(full.flops as f64, 64.413e9, 0.001),
        "flops {}",
        full.flops
    );
}

#[test]
fn eco_trains_and_gives_one_prediction_per_clip() {
    for config in [ModelConfig::eco_lite_tiny(), ModelConfig::eco_full_tiny()] {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let mut net = ActionNet::new(&vs.root(), &config).unwrap();
        net.set_partial_bn(true);
        let t = config.num_segments;
        let side = config.input_size;
        let x = Tensor::randn([2 * t, 3, side, side], (Kind::Float, tch::Device::Cpu));
        let out = net.forward_clip(&x, true).unwrap();
        assert_eq!(out.logits.size(), [2, config.num_classes]);
        assert_eq!(out.frame_logits.size(), [2, config.num_classes]);
        let loss = out
            .logits
            .cross_entropy_for_logits(&Tensor::from_slice(&[0i64, 1]));
        loss.backward();
        let vars = vs.variables();
        let grad = vars["new_fc.weight"].grad();
        assert!(grad.abs().sum(Kind::Float).double_value(&[]) > 0.0);
        let res = vars["res3a_2.weight"].grad();
        assert!(res.abs().sum(Kind::Float).double_value(&[]) > 0.0);
        assert_eq!(net.classifier_prefix(), "new_fc.");
        // A different clip length works too (the 3D pool is global).
        let out = tch::no_grad(|| net.forward_clip_t(&x, 2 * t, false)).unwrap();
        assert_eq!(out.logits.size(), [1, config.num_classes]);
        // ECO is not run frame by frame.
        assert!(net.check_causal().is_err());
        assert!(!config.is_causal());
    }
}

#[test]
fn online_runner_equals_the_network_on_its_working_memory() {
    for (config, sampling, averaging) in [
        (
            ModelConfig::eco_lite_tiny(),
            MemorySampling::Uniform,
            Averaging::Pairwise,
        ),
        (
            ModelConfig::eco_full_tiny(),
            MemorySampling::Random { seed: 7 },
            Averaging::Cumulative,
        ),
    ] {
        let layout = RecognizerOptions {
            precision: Precision::F32,
            channels_last: false,
            fold_bn: false,
            ..Default::default()
        };
        let mut runner = EcoRunner::random(
            &config,
            layout,
            EcoOptions {
                sampling,
                averaging,
            },
        )
        .unwrap();
        let n = config.num_segments as usize;
        let side = config.input_size;
        let frames: Vec<Tensor> = (0..4 * n)
            .map(|_| Tensor::randn([1, 3, side, side], (Kind::Float, tch::Device::Cpu)))
            .collect();
        let mut averages = Vec::new();
        let mut all_probs = Vec::new();
        for (i, frame) in frames.iter().enumerate() {
            let update = runner.push(frame).unwrap();
            assert_eq!(update.is_some(), (i + 1) % n == 0, "frame {i}");
            let Some(update) = update else { continue };
            // The memory: N frames in time order; after the first update half of them new.
            assert_eq!(update.memory.len(), n);
            assert!(update.memory.windows(2).all(|w| w[0] < w[1]));
            let newest = (i + 1 - n) as u64;
            let new = update.memory.iter().filter(|&&m| m >= newest).count();
            assert_eq!(new, if averages.is_empty() { n } else { n / 2 });
            let clip: Vec<Tensor> = update
                .memory
                .iter()
                .map(|&m| frames[m as usize].shallow_clone())
                .collect();
            let offline = tch::no_grad(|| runner.net().forward_clip(&Tensor::cat(&clip, 0), false))
                .unwrap()
                .logits
                .softmax(-1, Kind::Float)
                .view([-1]);
            let diff = max_abs_diff(&update.probs, &offline);
            assert!(diff <= 1e-5, "online vs offline {diff}");
            all_probs.push(update.probs.shallow_clone());
            averages.push(update.average.shallow_clone());
        }
        assert_eq!(runner.updates(), 4);
        // The running average as documented.
        let expected = match averaging {
            Averaging::Pairwise => all_probs[1..]
                .iter()
                .fold(all_probs[0].shallow_clone(), |a, p| (a + p) / 2.0),
            Averaging::Cumulative => Tensor::stack(&all_probs, 0).mean_dim(0, false, None),
        };
        assert!(max_abs_diff(&averages[3], &expected) <= 1e-6);
        runner.reset();
        assert_eq!(runner.updates(), 0);
    }
}
