//! The full-size ResNet-50 TSM (8 frames, 224x224, 400 classes) against the PyTorch reference.
//! Its weights are regenerated from a seed with the global libtorch generator rather than stored
//! (they would be 100 MB), so this test lives in its own binary: no other test in the process
//! may draw random numbers while it does.

use std::collections::BTreeMap;
use std::path::Path;

use shiftlive::model::{ActionNet, ModelConfig, TensorFile};
use tch::{Kind, Tensor, nn};

const TOLERANCE: f64 = 1e-4;

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    (a - b).abs().max().double_value(&[])
}

/// Fills the variables with the seeded recipe of tests/golden/SPEC.md (the same libtorch generator
/// as Python's torch), returning per-parameter (sum, abs-sum) in sorted-name order.
fn seeded_init(vs: &nn::VarStore, seed: i64) -> Vec<(f64, f64)> {
    tch::manual_seed(seed);
    let vars: BTreeMap<String, Tensor> = vs.variables().into_iter().collect();
    let mut fingerprint = Vec::new();
    tch::no_grad(|| {
        for (name, var) in &vars {
            let shape = var.size();
            let r = Tensor::randn(&shape, (Kind::Float, tch::Device::Cpu));
            let value = if name.ends_with("running_var") {
                r.abs() * 0.1 + 1.0
            } else if name.ends_with("running_mean") {
                r * 0.1
            } else if shape.len() == 1 && name.ends_with("weight") {
                r * 0.1 + 1.0
            } else if shape.len() == 1 {
                r * 0.1
            } else {
                let fan_in: i64 = shape[1..].iter().product();
                r * (1.0 / fan_in as f64).sqrt()
            };
            var.shallow_clone().copy_(&value);
            let v = value.to_kind(Kind::Double);
            fingerprint.push((
                v.sum(None).double_value(&[]),
                v.abs().sum(None).double_value(&[]),
            ));
        }
    });
    fingerprint
}

/// The full-size ResNet-50 TSM, 8 frames at 224x224, 400 classes; its weights are regenerated from
/// the seed rather than stored (they would be 100 MB).
#[test]
fn tsm_r50_full() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/tsm_r50_full.safetensors");
    let file = TensorFile::read(&path).unwrap_or_else(|e| panic!("{e}"));
    let config = ModelConfig::from_json(&file.metadata["config"]).unwrap();
    let seed: i64 = file.metadata["seed"].parse().unwrap();
    let vs = nn::VarStore::new(tch::Device::Cpu);
    let net = ActionNet::new(&vs.root(), &config).unwrap();
    let fingerprint = seeded_init(&vs, seed);
    let expected = &file.tensors["__fingerprint__"];
    assert_eq!(
        expected.size(),
        [fingerprint.len() as i64, 2],
        "parameter count differs from the reference"
    );
    for (i, (sum, abs_sum)) in fingerprint.iter().enumerate() {
        let (es, ea) = (
            expected.double_value(&[i as i64, 0]),
            expected.double_value(&[i as i64, 1]),
        );
        assert!(
            (abs_sum - ea).abs() <= 1e-6 * ea.max(1.0) && (sum - es).abs() <= 1e-6 * ea.max(1.0),
            "parameter {i}: generator differs from the reference ({sum}, {abs_sum}) vs ({es}, {ea})"
        );
    }
    let t = config.num_segments;
    let size = config.input_size;
    let x = Tensor::randn([t, 3, size, size], (Kind::Float, tch::Device::Cpu));
    let input_fp = &file.tensors["__input_fingerprint__"];
    let x_abs = x.to_kind(Kind::Double).abs().sum(None).double_value(&[]);
    assert!(
        (x_abs - input_fp.double_value(&[1])).abs() <= 1e-6 * x_abs,
        "input generator differs"
    );
    let out = tch::no_grad(|| net.forward_clip(&x, false)).unwrap();
    let logits = max_abs_diff(&out.logits, &file.tensors["__logits__"]);
    let frames = max_abs_diff(&out.frame_logits, &file.tensors["__frame_logits__"]);
    let scale = file.tensors["__logits__"].abs().max().double_value(&[]);
    eprintln!(
        "tsm_r50_full: max |logit| {scale:.3}, max abs diff logits {logits:.2e}, per frame {frames:.2e}"
    );
    assert!(
        logits <= TOLERANCE && frames <= TOLERANCE,
        "logits differ by {logits}, frame logits by {frames}"
    );
}
