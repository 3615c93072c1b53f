//! The OpenVINO backend: the online step on OpenVINO (in-process, the libraries from
//! scripts/setup.sh) gives the libtorch recogniser's logits frame by frame, for the shipped model
//! and a MobileNetV2-TSM; subsets of streams and resets as libtorch; a missing or broken library
//! is one clear error naming its path, and `auto` falls back to libtorch; bf16 runs where the CPU
//! has it (top-1 agreement with fp32 reported) and is refused clearly where it does not.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::backends::{self, runtimes, shipped_model};
use shiftlive::backend::{
    Backend, BackendError, BackendOptions, OPENVINO_LIB_DIR_ENV, OpenvinoOptions,
};
use shiftlive::online::{Precision, Recognizer, RecognizerOptions, cpu_has_native_bf16};
use tch::{Device, Kind, Tensor};

#[test]
fn openvino_equals_libtorch_on_the_shipped_model() {
    let mut reference =
        Recognizer::from_checkpoint(&shipped_model(), RecognizerOptions::default()).unwrap();
    backends::equals_libtorch(&mut reference, "motion-tsm-r18-tiny", Backend::Openvino);
}

#[test]
fn openvino_equals_libtorch_on_mobilenet_v2_tsm() {
    let dir = tempfile::tempdir().unwrap();
    let path = backends::mobilenet_v2_tsm(dir.path());
    let mut reference = Recognizer::from_checkpoint(&path, RecognizerOptions::default()).unwrap();
    let name = reference.config().name.clone();
    backends::equals_libtorch(&mut reference, &name, Backend::Openvino);
}

#[test]
fn openvino_step_tensor_and_reset() {
    backends::step_tensor_and_reset(Backend::Openvino);
}

#[test]
fn openvino_advances_several_streams_as_libtorch_does() {
    backends::several_streams_as_libtorch(Backend::Openvino);
}

/// The batched pipeline's pattern: 3 streams, each tick only some of them have a frame (a batch
/// of 1 or 2 compiled on first use, the full batch of 3 otherwise), and one stream is reset.
#[test]
fn openvino_steps_some_streams_and_resets_one_as_libtorch_does() {
    backends::some_streams_and_a_reset_as_libtorch(Backend::Openvino);
}

#[test]
fn play_on_openvino_matches_libtorch_and_a_broken_library_is_one_line() {
    backends::play_matches_libtorch_and_a_broken_library_is_one_line(
        Backend::Openvino,
        OPENVINO_LIB_DIR_ENV,
        "libopenvino_c.so",
        false,
    );
}

#[test]
fn missing_openvino_is_an_error_and_auto_falls_back() {
    let dir = tempfile::tempdir().unwrap();
    let options = BackendOptions {
        openvino: OpenvinoOptions {
            lib_dir: dir.path().join("no-openvino"),
            threads: 1,
        },
        ..BackendOptions::from_env()
    };
    let mut rec =
        Recognizer::from_checkpoint(&shipped_model(), RecognizerOptions::default()).unwrap();
    let err = rec.set_backend(Backend::Openvino, &options).unwrap_err();
    assert!(matches!(err, BackendError::Missing { .. }), "{err:?}");
    let text = err.to_string();
    println!("missing: {text}");
    let expected = dir.path().join("no-openvino/libopenvino_c.so");
    assert!(
        text.contains(&*expected.to_string_lossy())
            && text.contains("OpenVINO")
            && text.contains(OPENVINO_LIB_DIR_ENV)
            && !text.contains('\n'),
        "{text}"
    );
    assert_eq!(rec.backend(), Backend::Libtorch);
    // The order `auto` would take once OpenVINO is measured faster: it falls back.
    let chosen = rec
        .set_first_available(&[Backend::Openvino, Backend::Libtorch], true, &options)
        .unwrap();
    assert_eq!(chosen, Backend::Libtorch);
    let side = rec.config().input_size;
    let logits = rec
        .step_tensor(&Tensor::zeros(
            [1, 3, side, side],
            (Kind::Float, Device::Cpu),
        ))
        .unwrap();
    assert_eq!(logits.size(), [1, rec.config().num_classes]);
    assert!(logits.isfinite().all().int64_value(&[]) == 1);
}

/// bf16: on a CPU with AVX512-BF16 or AMX, OpenVINO's bf16 step agrees with its fp32 step on the
/// top-1 class of the shipped (trained) model over 64 random-walk frames (the agreement printed,
/// at least 90% asserted); elsewhere `--backend openvino --precision bf16` is refused with one
/// clear line, and `auto` takes libtorch.
#[test]
fn openvino_bf16_agrees_with_fp32_or_is_refused_without_native_bf16() {
    let bf16_options = RecognizerOptions {
        precision: Precision::Bf16,
        ..Default::default()
    };
    let mut bf16 = Recognizer::from_checkpoint(&shipped_model(), bf16_options).unwrap();
    if !cpu_has_native_bf16() {
        let err = bf16
            .set_backend(Backend::Openvino, &runtimes())
            .unwrap_err();
        let text = err.to_string();
        println!("no native bf16 on this CPU: {text}");
        assert!(matches!(err, BackendError::Unsupported { .. }), "{err:?}");
        assert!(
            text.contains("--backend openvino") && text.contains("bf16") && !text.contains('\n'),
            "{text}"
        );
        assert_eq!(bf16.backend(), Backend::Libtorch);
        assert_eq!(
            bf16.set_backend(Backend::Auto, &runtimes()).unwrap(),
            Backend::Libtorch
        );
        return;
    }
    assert_eq!(
        bf16.set_backend(Backend::Openvino, &runtimes()).unwrap(),
        Backend::Openvino
    );
    let mut f32 =
        Recognizer::from_checkpoint(&shipped_model(), RecognizerOptions::default()).unwrap();
    f32.set_backend(Backend::Openvino, &runtimes()).unwrap();
    let (w, h) = (160, 120);
    let clip = backends::rgb_clip(backends::FRAMES, w, h);
    let a = backends::logits_of(&mut f32, &clip, w, h);
    let b = backends::logits_of(&mut bf16, &clip, w, h);
    let top1 = |v: &Vec<f32>| {
        v.iter()
            .enumerate()
            .fold((0, f32::MIN), |m, (i, &x)| if x > m.1 { (i, x) } else { m })
            .0
    };
    let agree = a.iter().zip(&b).filter(|(x, y)| top1(x) == top1(y)).count();
    let diff = backends::max_abs_diff(&a, &b);
    let share = agree as f64 / a.len() as f64;
    println!(
        "OpenVINO bf16 vs fp32 over {} frames: top-1 agreement {agree}/{} ({:.1}%), max abs logit diff {diff:.3e}",
        a.len(),
        a.len(),
        100.0 * share
    );
    assert!(
        diff > 0.0,
        "bf16 gave fp32's exact logits: the hint was not applied"
    );
    assert!(share >= 0.9, "top-1 agreement {share}");
}
