//! The training step against PyTorch (tests/golden/train_reference.py): same network, weights and
//! batch; three SGD steps (Nesterov momentum, weight decay on conv/linear weights, 5x learning
//! rate on the classifier, label smoothing, gradient clipping, BatchNorm in training mode). The
//! losses of each step and every tensor afterwards (weights and BatchNorm statistics) must agree.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;

use shiftlive::model::{ActionNet, ModelConfig, TensorFile, checkpoint};
use shiftlive::train::{Sgd, SgdOptions, StepSettings, train_step};
use tch::{Tensor, nn};

#[test]
fn three_sgd_steps_match_pytorch() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/train_step.safetensors");
    let file = TensorFile::read(&path).unwrap_or_else(|e| panic!("{e}"));
    let config = ModelConfig::from_json(&file.metadata["shiftlive.config"]).unwrap();
    let opt: serde_json::Value = serde_json::from_str(&file.metadata["optimizer"]).unwrap();
    let vs = nn::VarStore::new(tch::Device::Cpu);
    let net = ActionNet::new(&vs.root(), &config).unwrap();
    let part = |prefix: &str| -> BTreeMap<String, Tensor> {
        file.tensors
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix(prefix)
                    .map(|k| (k.to_string(), v.shallow_clone()))
            })
            .collect()
    };
    checkpoint::load_weights(&vs, &part("init."), &path, "init").unwrap_or_else(|e| panic!("{e}"));
    let mut sgd = Sgd::new(
        &vs,
        SgdOptions {
            momentum: opt["momentum"].as_f64().unwrap(),
            nesterov: opt["nesterov"].as_bool().unwrap(),
            weight_decay: opt["weight_decay"].as_f64().unwrap(),
            classifier_lr_mult: opt["classifier_lr_mult"].as_f64().unwrap(),
        },
        net.classifier_prefix(),
    );
    let settings = StepSettings {
        lr: opt["lr"].as_f64().unwrap(),
        label_smoothing: opt["label_smoothing"].as_f64().unwrap(),
        clip_grad: opt["clip_grad"].as_f64(),
        loss_scale: None,
    };
    let expected: Vec<f64> = Vec::try_from(&file.tensors["losses"]).unwrap();
    let x = &file.tensors["input"];
    let y = &file.tensors["labels"];
    for (i, want) in expected.iter().enumerate() {
        let out = train_step(&net, &mut sgd, x, y, &settings).unwrap();
        eprintln!(
            "step {i}: loss {} (PyTorch {want}), grad norm {:?}",
            out.loss, out.grad_norm
        );
        assert!(
            (out.loss - want).abs() <= 1e-5,
            "step {i}: loss {} vs PyTorch {want}",
            out.loss
        );
        assert!(out.stepped);
        // Clipping was active: every norm exceeds the 1.0 limit of the golden settings.
        assert!(
            out.grad_norm.is_some_and(|n| n > 1.0),
            "{:?}",
            out.grad_norm
        );
    }
    let vars = vs.variables();
    let mut worst = (String::new(), 0f64);
    for (name, want) in part("final.") {
        let got = vars
            .get(&name)
            .unwrap_or_else(|| panic!("no variable {name}"));
        let diff = (got - &want).abs().max().double_value(&[]);
        if diff > worst.1 {
            worst = (name, diff);
        }
    }
    eprintln!(
        "largest difference after 3 steps: {} in {}",
        worst.1, worst.0
    );
    assert!(worst.1 <= 1e-5, "{} differs by {}", worst.0, worst.1);
    // And the weights did move: the test would catch an optimiser that does nothing.
    let moved = (&vars["fc.weight"] - &part("init.")["fc.weight"])
        .abs()
        .max()
        .double_value(&[]);
    assert!(moved > 1e-3, "fc.weight moved only {moved}");
}
