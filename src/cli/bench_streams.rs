//! `shiftlive bench --streams 1,2,4,8`: the batched online step of N streams (one new frame each,
//! model only, random weights) for each N: latency of the step and per frame, aggregate frames/s;
//! and `streams8_vs_sequential`: the 8-stream batch's frames/s over that of 8 single-stream
//! recognisers stepped one after another (each with its own cache), as 8 separate pipelines would.
//! The same for the ResNet-50 preset unless skipped.

use serde_json::{Value, json};
use shiftlive::backend::{Backend, BackendOptions};
use shiftlive::bench::{OnlineCase, Stats, measure, synchronize};
use shiftlive::device::device_name;
use shiftlive::model::ModelConfig;
use shiftlive::online::RecognizerOptions;

/// How the streams are timed.
pub struct StreamsBench<'a> {
    pub counts: &'a [u32],
    pub options: RecognizerOptions,
    /// The engine of every recogniser timed (as `live` would pick it).
    pub backend: Backend,
    pub warmup: usize,
    pub iters: usize,
}

impl StreamsBench<'_> {
    /// A recogniser of `options` on random weights, on the bench's backend.
    fn case(&self, config: &ModelConfig, options: RecognizerOptions) -> anyhow::Result<OnlineCase> {
        let mut case = OnlineCase::new(config, options)?;
        case.recognizer
            .set_backend(self.backend, &BackendOptions::from_env())?;
        Ok(case)
    }

    fn time(&self, iters: usize, mut step: impl FnMut()) -> Stats {
        let device = self.options.device;
        measure(self.warmup, iters, || {
            step();
            synchronize(device);
        })
    }

    /// One model's figures: per N, and batched 8 vs 8 sequential.
    fn model(&self, config: &ModelConfig, iters: usize) -> anyhow::Result<Value> {
        let mut rows = Vec::new();
        for &n in self.counts {
            let streams = n as usize;
            let mut case = self.case(
                config,
                RecognizerOptions {
                    streams,
                    ..self.options
                },
            )?;
            let s = self.time(iters, || case.step());
            let fps = streams as f64 * 1e3 / s.p50;
            eprintln!(
                "  {:<24} {n:>3} streams: step p50 {:>8.2} ms  p99 {:>8.2} ms  per frame {:>7.2} ms  {:>8.1} frames/s",
                config.name,
                s.p50,
                s.p99,
                s.p50 / streams as f64,
                fps
            );
            rows.push(json!({
                "streams": n,
                "step_ms_p50": s.p50,
                "step_ms_p90": s.p90,
                "step_ms_p99": s.p99,
                "per_frame_ms_p50": s.p50 / streams as f64,
                "fps_aggregate": fps,
            }));
        }
        // Eight single-stream recognisers, one frame each per tick, one after another.
        let single = RecognizerOptions {
            streams: 1,
            ..self.options
        };
        let mut cases = (0..8)
            .map(|_| self.case(config, single))
            .collect::<Result<Vec<_>, _>>()?;
        let seq = self.time((iters / 2).max(3), || {
            cases.iter_mut().for_each(OnlineCase::step)
        });
        let seq_fps = 8e3 / seq.p50;
        let mut batch8 = self.case(
            config,
            RecognizerOptions {
                streams: 8,
                ..self.options
            },
        )?;
        let b8 = self.time(iters, || batch8.step());
        let b8_fps = 8e3 / b8.p50;
        eprintln!(
            "  {:<24} 8 streams batched {b8_fps:.1} frames/s vs 8 sequential {seq_fps:.1} frames/s: x{:.2}",
            config.name,
            b8_fps / seq_fps
        );
        Ok(json!({
            "model": config.name,
            "input_size": config.input_size,
            "streams": rows,
            "sequential8_tick_ms_p50": seq.p50,
            "sequential8_fps": seq_fps,
            "batched8_fps": b8_fps,
            "streams8_vs_sequential": b8_fps / seq_fps,
        }))
    }

    /// The figures of `config` and, when given, of the ResNet-50 preset (fewer iterations).
    pub fn run(&self, config: &ModelConfig, r50: Option<&ModelConfig>) -> anyhow::Result<Value> {
        eprintln!(
            "shiftlive bench --streams: model-only online step, device {}, {} threads, {:?}, backend {}",
            device_name(self.options.device),
            tch::get_num_threads(),
            self.options.precision,
            self.backend.name()
        );
        let main = self.model(config, self.iters)?;
        let r50 = r50
            .map(|c| self.model(c, (self.iters / 4).max(3)))
            .transpose()?;
        let mut result = main;
        result["device"] = json!(device_name(self.options.device));
        result["threads"] = json!(tch::get_num_threads());
        result["precision"] = json!(self.options.precision);
        result["backend"] = json!(self.backend);
        result["r50"] = r50.unwrap_or(Value::Null);
        Ok(result)
    }
}
