//! Every model family against the plain-PyTorch reference in tests/golden/make_golden.py: same
//! weights, same input, logits within 1e-4 (fp32, BatchNorm in eval mode).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use shiftlive::model::{ActionNet, ModelConfig, TensorFile, checkpoint};
use tch::{Tensor, nn};

const TOLERANCE: f64 = 1e-4;

fn golden(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{case}.safetensors"))
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    (a - b).abs().max().double_value(&[])
}

/// Loads a golden case, runs the Rust model on its input and compares both outputs.
fn check(case: &str) {
    let path = golden(case);
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
    let out = tch::no_grad(|| net.forward_clip(&file.tensors["__input__"], false)).unwrap();
    let logits = max_abs_diff(&out.logits, &file.tensors["__logits__"]);
    let frames = max_abs_diff(&out.frame_logits, &file.tensors["__frame_logits__"]);
    let scale = file.tensors["__logits__"].abs().max().double_value(&[]);
    eprintln!(
        "{case}: max |logit| {scale:.3}, max abs diff logits {logits:.2e}, per frame {frames:.2e}"
    );
    assert!(logits <= TOLERANCE, "{case}: logits differ by {logits}");
    assert!(
        frames <= TOLERANCE,
        "{case}: frame logits differ by {frames}"
    );
}

macro_rules! parity {
    ($($case:ident),* $(,)?) => {$(
        #[test]
        fn $case() {
            check(stringify!($case));
        }
    )*};
}

parity!(
    tsn_r18_tiny,
    tsm_r18_tiny_bi,
    tsm_r34_tiny_uni_block,
    tsm_r50_tiny_bi,
    tsm_r50_tiny_uni,
    tsm_r50_tiny_pool,
    tsm_r101_tiny_bi,
    mvf_r50_tiny_thw,
    mvf_r50_tiny_t,
    mvf_r18_tiny_th,
    tsn_mbv2_tiny,
    tsm_mbv2_tiny_bi,
    tsm_mbv2_tiny_uni,
    tsm_mbv2_uni_w1,
    tsn_vgg16_tiny,
    tsn_r50vd_tiny,
    tsm_r50vd_tiny_bi,
    tsm_r50vd_tiny_uni,
    tsm_r34vd_tiny_uni_block,
    mvf_r50vd_tiny_thw,
);
