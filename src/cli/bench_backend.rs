//! `shiftlive bench`: the online step on each inference backend (libtorch, ONNX Runtime
//! in-process), same weights, same threads, fp32, one stream, each timed alone (see `compare`). A
//! backend that cannot start is reported with its reason, not fatal.

use std::path::Path;

use serde_json::{Value, json};
use shiftlive::backend::{Backend, OrtOptions};
use shiftlive::bench::Stats;
use shiftlive::online::{Precision, Recognizer, RecognizerOptions};
use tch::Tensor;

use super::bench::report;

/// Times the step of `ckpt` on libtorch and on ONNX Runtime (when it starts); the JSON fields
/// `backend_libtorch_ms_p50`, `backend_onnxruntime_ms_p50`, `onnxruntime_vs_libtorch`,
/// `backend_onnxruntime_spin_ms_p50` (ONNX Runtime's spinning thread pool, timed alone) and
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
    eprintln!("the online step by backend (fp32, one stream, each timed alone):");
    let started = ort.set_backend(Backend::Onnxruntime, &OrtOptions::from_env());
    // Timed one after the other, not in alternation: two runtimes' thread pools in alternation
    // slow each other (libtorch's OpenMP workers spin after a step while ONNX Runtime's start;
    // 2-3x on 2 cores), which would measure the pairing, not either backend.
    let libtorch_stats = shiftlive::bench::measure(warmup, iters, || {
        let _ = libtorch.step_tensor(frame);
    });
    let mut stats = vec![libtorch_stats];
    let error = match started {
        Ok(_) => {
            stats.push(shiftlive::bench::measure(warmup, iters, || {
                let _ = ort.step_tensor(frame);
            }));
            None
        }
        Err(e) => Some(shiftlive::errors::chain(&e)),
    };
    report("libtorch", &stats[0]);
    let ort_stats: Option<Stats> = stats.get(1).copied();
    match (&ort_stats, &error) {
        (Some(s), _) => report("onnxruntime (in-process)", s),
        (None, Some(e)) => eprintln!("  {:<44} skipped: {e}", "onnxruntime (in-process)"),
        (None, None) => {}
    }
    // ONNX Runtime's own default (idle threads spin), timed alone: spinning threads would take
    // the cores from libtorch in alternation, and from capture and preprocessing in a live run.
    let spin = match ort_stats {
        Some(_) => {
            let mut spinning = Recognizer::from_checkpoint(ckpt, options)?;
            spinning.set_backend(
                Backend::Onnxruntime,
                &OrtOptions {
                    spin: true,
                    ..OrtOptions::from_env()
                },
            )?;
            let s = shiftlive::bench::measure(warmup, iters, || {
                let _ = spinning.step_tensor(frame);
            });
            report("onnxruntime (in-process, spinning)", &s);
            Some(s)
        }
        None => None,
    };
    Ok(json!({
        "backend_libtorch_ms_p50": stats[0].p50,
        "backend_onnxruntime_ms_p50": ort_stats.map(|s| s.p50),
        "onnxruntime_vs_libtorch": ort_stats.map(|s| s.p50 / stats[0].p50),
        "backend_onnxruntime_spin_ms_p50": spin.map(|s| s.p50),
        "backend_onnxruntime_error": error,
    }))
}
