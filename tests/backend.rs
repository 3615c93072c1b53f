//! Inference backends: the online step on ONNX Runtime (in-process, the library from
//! scripts/setup.sh) gives the libtorch recogniser's logits frame by frame, for the shipped model
//! and a MobileNetV2-TSM; reset starts a stream afresh; a missing or broken library is one clear
//! error naming its path, and `auto` falls back to libtorch. The scenarios are in
//! common/backends.rs, shared with OpenVINO's tests (backend_openvino.rs). And on both runtimes:
//! the TSM authors' online MobileNetV2, imported, gives their own frame-by-frame logits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;

use common::backends::{self, runtimes, shipped_model};
use shiftlive::backend::{Backend, BackendError, BackendOptions, OrtOptions};
use shiftlive::model::import::{ImportFormat, ImportOptions, import};
use shiftlive::online::{Recognizer, RecognizerOptions};
use tch::{Device, Kind, Tensor};

#[test]
fn onnxruntime_equals_libtorch_on_the_shipped_model() {
    let mut reference =
        Recognizer::from_checkpoint(&shipped_model(), RecognizerOptions::default()).unwrap();
    backends::equals_libtorch(&mut reference, "motion-tsm-r18-tiny", Backend::Onnxruntime);
}

#[test]
fn onnxruntime_equals_libtorch_on_mobilenet_v2_tsm() {
    let dir = tempfile::tempdir().unwrap();
    let path = backends::mobilenet_v2_tsm(dir.path());
    let mut reference = Recognizer::from_checkpoint(&path, RecognizerOptions::default()).unwrap();
    let name = reference.config().name.clone();
    backends::equals_libtorch(&mut reference, &name, Backend::Onnxruntime);
}

#[test]
fn onnxruntime_step_tensor_and_reset() {
    backends::step_tensor_and_reset(Backend::Onnxruntime);
}

#[test]
fn missing_library_is_an_error_and_auto_falls_back() {
    let missing = PathBuf::from("/nonexistent/h22/libonnxruntime.so");
    let options = BackendOptions {
        onnxruntime: OrtOptions {
            library: missing.clone(),
            threads: 1,
            spin: false,
        },
        ..BackendOptions::from_env()
    };
    let mut rec =
        Recognizer::from_checkpoint(&shipped_model(), RecognizerOptions::default()).unwrap();
    let err = rec.set_backend(Backend::Onnxruntime, &options).unwrap_err();
    assert!(matches!(err, BackendError::Missing { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("/nonexistent/h22/libonnxruntime.so") && !text.contains('\n'),
        "{text}"
    );
    assert_eq!(rec.backend(), Backend::Libtorch);
    // The order `auto` would take once ONNX Runtime is measured faster: it falls back.
    let chosen = rec
        .set_first_available(&[Backend::Onnxruntime, Backend::Libtorch], true, &options)
        .unwrap();
    assert_eq!(chosen, Backend::Libtorch);
    let side = rec.config().input_size;
    let logits = rec
        .step_tensor(&Tensor::zeros(
            [1, 3, side, side],
            (Kind::Float, Device::Cpu),
        ))
        .unwrap();
    assert!(logits.isfinite().all().int64_value(&[]) == 1);
    // bf16 is not for ONNX Runtime: refused when asked, never chosen by auto (OpenVINO's bf16
    // where the CPU computes bf16 natively, else libtorch).
    let mut bf16 = Recognizer::from_checkpoint(
        &shipped_model(),
        RecognizerOptions {
            precision: shiftlive::online::Precision::Bf16,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(bf16.set_backend(Backend::Onnxruntime, &runtimes()).is_err());
    let chosen = bf16.set_backend(Backend::Auto, &runtimes()).unwrap();
    let expected = if shiftlive::online::cpu_has_native_bf16() {
        Backend::Openvino
    } else {
        Backend::Libtorch
    };
    assert_eq!(chosen, expected, "bf16 auto");
}

#[test]
fn play_on_onnxruntime_matches_libtorch_and_a_broken_library_is_one_line() {
    backends::play_matches_libtorch_and_a_broken_library_is_one_line(
        Backend::Onnxruntime,
        shiftlive::backend::ORT_DYLIB_ENV,
        "libonnxruntime.so",
        true,
    );
}

#[test]
fn onnxruntime_advances_several_streams_as_libtorch_does() {
    backends::several_streams_as_libtorch(Backend::Onnxruntime);
}

/// The batched pipeline's pattern: 3 streams, each tick only some of them have a frame, and one
/// stream is reset mid-run.
#[test]
fn onnxruntime_steps_some_streams_and_resets_one_as_libtorch_does() {
    backends::some_streams_and_a_reset_as_libtorch(Backend::Onnxruntime);
}

/// The TSM authors' online MobileNetV2 (Jester, their module names, random weights and BatchNorm
/// statistics; tests/golden/make_import.py), imported and stepped frame by frame from zero state
/// on each runtime and on libtorch (printed beside them): the logits of their own online
/// reference within 1e-4, as tests/import.rs asks of libtorch.
#[test]
fn imported_tsm_authors_online_model_on_each_runtime_gives_their_logits() {
    let golden = backends::root().join("tests/golden/import");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("online.safetensors");
    let options = ImportOptions {
        input_size: Some(64),
        ..Default::default()
    };
    import(
        ImportFormat::MitOnline,
        &golden.join("mobilenetv2_jester_online.pth.tar"),
        &out,
        &options,
    )
    .unwrap();
    let reference =
        shiftlive::model::TensorFile::read(&golden.join("mit_online_ref.safetensors")).unwrap();
    let (x, want) = (&reference.tensors["x"], &reference.tensors["frame_logits"]);
    for backend in [Backend::Libtorch, Backend::Onnxruntime, Backend::Openvino] {
        let mut rec = Recognizer::from_checkpoint(&out, RecognizerOptions::default()).unwrap();
        assert_eq!(rec.set_backend(backend, &runtimes()).unwrap(), backend);
        let steps: Vec<Tensor> = (0..x.size()[0])
            .map(|i| rec.step_tensor(&x.narrow(0, i, 1)).unwrap())
            .collect();
        let got = Tensor::cat(&steps, 0);
        assert_eq!(got.size(), want.size());
        let diff = (&got - want).abs().max().double_value(&[]);
        let scale = want.abs().max().double_value(&[]);
        println!(
            "TSM authors' online MobileNetV2 on {}: {} frames, max |logit| {scale:.3}, max abs diff {diff:.2e}",
            backend.name(),
            x.size()[0]
        );
        assert!(scale > 1e-3);
        assert!(diff <= f64::from(backends::TOLERANCE), "{diff}");
    }
}
