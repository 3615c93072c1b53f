//! `shiftlive bench`: the online step on each inference backend (libtorch, ONNX Runtime
//! in-process), same weights, same threads, fp32, one stream, timed in alternation so the machine's
//! drift falls on both alike. A backend that cannot start is reported with its reason, not fatal.

use std::path::Path;

use serde_json::{Value, json};
use shiftlive::backend::{Backend, OrtOptions};
use shiftlive::bench::{Stats, measure_interleaved};
use shiftlive::online::{Precision, Recognizer, RecognizerOptions};
use tch::Tensor;

use super::bench::report;

/// Times the step of `ckpt` on libtorch and on ONNX Runtime (when it starts); the JSON fields
/// `backend_libtorch_ms_p50`, `backend_onnxruntime_ms_p50`, `onnxruntime_vs_libtorch` and
/// `backend_onnxruntime_error`.
pub(super) fn compare(
    ckpt: &Path,
    frame: &Tensor,
    options: RecognizerOptions,
    warmup: usize,
    iters: usize,
) -> anyhow::Result<Value> {
    let options = RecognizerOptions {
        precision: Precision::F32,
        ..options
    };
    let mut libtorch = Recognizer::from_checkpoint(ckpt, options)?;
    let mut ort = Recognizer::from_checkpoint(ckpt, options)?;
    eprintln!("the online step by backend (fp32, one stream, timed in alternation):");
    let started = ort.set_backend(Backend::Onnxruntime, &OrtOptions::from_env());
    let (stats, error) = match started {
        Ok(_) => {
            let stats = measure_interleaved(
                warmup,
                iters,
                &mut [
                    &mut || {
                        let _ = libtorch.step_tensor(frame);
                    },
                    &mut || {
                        let _ = ort.step_tensor(frame);
                    },
                ],
            );
            (stats, None)
        }
        Err(e) => {
            let stats = vec![shiftlive::bench::measure(warmup, iters, || {
                let _ = libtorch.step_tensor(frame);
            })];
            (stats, Some(shiftlive::errors::chain(&e)))
        }
    };
    report("libtorch", &stats[0]);
    let ort_stats: Option<Stats> = stats.get(1).copied();
    match (&ort_stats, &error) {
        (Some(s), _) => report("onnxruntime (in-process)", s),
        (None, Some(e)) => eprintln!("  {:<44} skipped: {e}", "onnxruntime (in-process)"),
        (None, None) => {}
    }
    Ok(json!({
        "backend_libtorch_ms_p50": stats[0].p50,
        "backend_onnxruntime_ms_p50": ort_stats.map(|s| s.p50),
        "onnxruntime_vs_libtorch": ort_stats.map(|s| s.p50 / stats[0].p50),
        "backend_onnxruntime_error": error,
    }))
}
