//! `shiftlive bench`: the online step on each inference backend (libtorch, ONNX Runtime and
//! OpenVINO in-process), same weights, same threads, one stream, each timed alone (see
//! `compare`): fp32, and bf16 where the CPU computes it natively. A backend that cannot start is
//! reported with its reason, not fatal.

use std::path::Path;

use serde_json::{Value, json};
use shiftlive::backend::{Backend, BackendOptions, OrtOptions};
use shiftlive::bench::Stats;
use shiftlive::online::{Precision, Recognizer, RecognizerOptions, cpu_has_native_bf16};
use tch::Tensor;

use super::bench::report;

/// One timed set-up: what it is called in the report and the JSON, and how it runs.
struct Setup {
    label: &'static str,
    key: &'static str,
    backend: Backend,
    precision: Precision,
    runtimes: BackendOptions,
}

/// The step of `ckpt` on one set-up, timed alone (its recogniser dropped afterwards, so no idle
/// thread pool of one runtime sits beside the next); the reason when it cannot start.
fn time(
    ckpt: &Path,
    setup: &Setup,
    options: RecognizerOptions,
    frame: &Tensor,
    (warmup, iters): (usize, usize),
) -> anyhow::Result<Result<Stats, String>> {
    let options = RecognizerOptions {
        precision: setup.precision,
        ..options
    };
    let mut rec = Recognizer::from_checkpoint(ckpt, options)?;
    if let Err(e) = rec.set_backend(setup.backend, &setup.runtimes) {
        let reason = shiftlive::errors::chain(&e);
        eprintln!("  {:<44} skipped: {reason}", setup.label);
        return Ok(Err(reason));
    }
    let stats = shiftlive::bench::measure(warmup, iters, || {
        let _ = rec.step_tensor(frame);
    });
    report(setup.label, &stats);
    Ok(Ok(stats))
}

/// Times the step of `ckpt` on every backend, one after the other: two runtimes' thread pools in
/// alternation slow each other (libtorch's OpenMP workers spin after a step while the other's
/// start; 2-3x on 2 cores), which would measure the pairing, not either backend. JSON fields, for
/// each set-up KEY: `backend_KEY_ms_p50` (null when it could not start), `backend_KEY_error`; and
/// `onnxruntime_vs_libtorch`, `openvino_vs_libtorch` (fp32, theirs / ours) and, where the CPU has
/// bf16, `openvino_bf16_vs_libtorch_bf16`. `onnxruntime_spin` is ONNX Runtime's own default (idle
/// threads spin), which would take the cores from capture and preprocessing in a live run.
pub(super) fn compare(
    ckpt: &Path,
    frame: &Tensor,
    options: RecognizerOptions,
    warmup: usize,
    iters: usize,
) -> anyhow::Result<Value> {
    let runtimes = BackendOptions::from_env();
    let setup = |label, key, backend, precision| Setup {
        label,
        key,
        backend,
        precision,
        runtimes: runtimes.clone(),
    };
    let mut setups = vec![
        setup("libtorch", "libtorch", Backend::Libtorch, Precision::F32),
        setup(
            "onnxruntime (in-process)",
            "onnxruntime",
            Backend::Onnxruntime,
            Precision::F32,
        ),
        Setup {
            runtimes: BackendOptions {
                onnxruntime: OrtOptions {
                    spin: true,
                    ..runtimes.onnxruntime.clone()
                },
                ..runtimes.clone()
            },
            ..setup(
                "onnxruntime (in-process, spinning)",
                "onnxruntime_spin",
                Backend::Onnxruntime,
                Precision::F32,
            )
        },
        setup(
            "openvino (in-process)",
            "openvino",
            Backend::Openvino,
            Precision::F32,
        ),
    ];
    if cpu_has_native_bf16() {
        setups.push(setup(
            "libtorch bf16",
            "libtorch_bf16",
            Backend::Libtorch,
            Precision::Bf16,
        ));
        setups.push(setup(
            "openvino bf16 (in-process)",
            "openvino_bf16",
            Backend::Openvino,
            Precision::Bf16,
        ));
        // What `--precision bf16` runs by default (Backend::AUTO_CPU_BF16).
        setups.push(setup(
            "auto bf16",
            "auto_bf16",
            Backend::Auto,
            Precision::Bf16,
        ));
    }
    eprintln!("the online step by backend (one stream, each timed alone):");
    let mut fields = serde_json::Map::new();
    let mut p50 = std::collections::HashMap::new();
    for setup in &setups {
        let timed = time(ckpt, setup, options, frame, (warmup, iters))?;
        let (ms, error) = match timed {
            Ok(stats) => (Some(stats.p50), None),
            Err(reason) => (None, Some(reason)),
        };
        if let Some(ms) = ms {
            p50.insert(setup.key, ms);
        }
        fields.insert(format!("backend_{}_ms_p50", setup.key), json!(ms));
        fields.insert(format!("backend_{}_error", setup.key), json!(error));
    }
    let ratio = |theirs: &str, ours: &str| match (p50.get(theirs), p50.get(ours)) {
        (Some(t), Some(o)) => json!(t / o),
        _ => Value::Null,
    };
    fields.insert(
        "onnxruntime_vs_libtorch".into(),
        ratio("onnxruntime", "libtorch"),
    );
    fields.insert("openvino_vs_libtorch".into(), ratio("openvino", "libtorch"));
    fields.insert(
        "openvino_bf16_vs_libtorch_bf16".into(),
        ratio("openvino_bf16", "libtorch_bf16"),
    );
    if !cpu_has_native_bf16() {
        fields.insert(
            "backend_openvino_bf16_error".into(),
            json!("this CPU has neither AVX512-BF16 nor AMX"),
        );
    }
    Ok(Value::Object(fields))
}
