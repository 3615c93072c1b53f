//! `shiftlive bench --live`: the online step where users get it, inside the real pipeline, beside
//! the same step in a tight loop (same checkpoint, options, backend and threads):
//!
//! - `loop`: `Recognizer::step` on one 640x480 RGB frame, back to back (what `bench` reports);
//! - `paced`: a live GStreamer test pattern at 30 fps through capture, ring and inference thread,
//!   as `live --test-pattern` runs it;
//! - `fast`: a file decoded as fast as possible, as `play FILE --headless` runs it (an H.264 clip
//!   made here with x264enc when GStreamer has it, else MJPEG; or `--live-file`).
//!
//! Each run's model time is the recogniser's own `model_ms` (as in the JSON lines), so the three
//! figures measure the same thing; `live_vs_loop` = live model p50 / loop model p50. The loop is
//! timed before, between and after the two pipeline runs, and each run is compared with the mean
//! of the two loops around it: these VMs drift by tens of percent within a minute, and a loop
//! timed once, before everything, would put that drift into the ratio.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use gstreamer::prelude::ElementExt;
use serde_json::{Value, json};
use shiftlive::backend::{Backend, BackendOptions};
use shiftlive::bench::Stats;
use shiftlive::capture::Source;
use shiftlive::online::{Recognizer, RecognizerOptions};
use shiftlive::pipeline::{Pipeline, PipelineOptions, Summary};
use shiftlive::preprocess::FrameRef;

use super::bench::report;

/// The size of the frames the sources deliver (a VGA camera).
const WIDTH: u32 = 640;
const HEIGHT: u32 = 480;
/// The paced source's rate.
const FPS: u32 = 30;

/// `bench`'s flags for the live figures.
#[derive(Debug, clap::Args)]
pub struct LiveArgs {
    /// Time only the online step inside the live pipeline (a 30 fps test pattern and a file as
    /// fast as possible) beside the same step in a tight loop
    #[arg(long)]
    pub live: bool,
    /// Skip the live-pipeline figures (`live_*`)
    #[arg(long, conflicts_with = "live")]
    pub skip_live: bool,
    /// Seconds of each live-pipeline run (frames = seconds x 30)
    #[arg(long, default_value_t = 10.0, value_parser = positive_seconds)]
    pub live_seconds: f64,
    /// The file decoded as fast as possible (default: a 640x480 clip made with GStreamer)
    #[arg(long, value_name = "FILE")]
    pub live_file: Option<PathBuf>,
}

fn positive_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 && s <= 3600.0 => Ok(s),
        _ => Err(format!("'{text}' is not a number of seconds in (0, 3600]")),
    }
}

impl LiveArgs {
    /// The live figures of `checkpoint`, as JSON fields.
    pub fn bench(
        &self,
        checkpoint: &Path,
        options: RecognizerOptions,
        backend: Backend,
        scratch: &Path,
        (warmup, iters): (usize, usize),
    ) -> anyhow::Result<Value> {
        LiveBench {
            checkpoint,
            options,
            backend,
            seconds: self.live_seconds,
            file: self.live_file.clone(),
            scratch,
            warmup,
            iters,
        }
        .run()
    }
}

/// How the live figures are measured.
pub(super) struct LiveBench<'a> {
    pub checkpoint: &'a Path,
    pub options: RecognizerOptions,
    pub backend: Backend,
    /// Length of each pipeline run.
    pub seconds: f64,
    /// The file of the fast run; None: one made in `scratch`.
    pub file: Option<PathBuf>,
    pub scratch: &'a Path,
    pub warmup: usize,
    pub iters: usize,
}

impl LiveBench<'_> {
    fn recognizer(&self) -> anyhow::Result<(Recognizer, Backend)> {
        let mut rec = Recognizer::from_checkpoint(self.checkpoint, self.options)?;
        let backend = rec.set_backend(self.backend, &BackendOptions::from_env())?;
        Ok((rec, backend))
    }

    /// The backend as `live` sets it up for a paced source, or as `play` for a file.
    fn pace(&self, rec: &mut Recognizer, paced: bool) -> anyhow::Result<()> {
        rec.set_backend(self.backend, &BackendOptions::from_env().paced(paced))?;
        Ok(())
    }

    /// The step on one VGA frame, back to back: the recogniser's own model time per step.
    fn tight_loop(&self, rec: &mut Recognizer) -> anyhow::Result<Stats> {
        let bytes: Vec<u8> = (0..(WIDTH * HEIGHT * 3) as usize)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let frame = FrameRef::rgb(&bytes, WIDTH as usize, HEIGHT as usize);
        let mut model = Vec::with_capacity(self.iters);
        for i in 0..self.warmup + self.iters {
            let (_, timing) = rec.step(&frame)?;
            if i >= self.warmup {
                model.push(timing.model_ms);
            }
        }
        rec.reset();
        Ok(Stats::of(&model))
    }

    /// One pipeline run of `frames` processed frames; hands the recogniser back with the summary.
    fn pipeline(
        &self,
        rec: Recognizer,
        source: Source,
        frames: u64,
    ) -> anyhow::Result<(Recognizer, Summary)> {
        let name = source.describe();
        let options = PipelineOptions {
            max_frames: Some(frames),
            ..PipelineOptions::new(source)
        };
        let pipeline = Pipeline::start(rec, options).with_context(|| format!("starting {name}"))?;
        // Drain the events so the inference thread never waits on a full channel.
        for _ in pipeline.events().iter() {}
        let inferred = pipeline
            .join()
            .with_context(|| format!("the inference thread of {name} panicked"))?;
        if let Some(error) = &inferred.summary.error {
            anyhow::bail!("{name}: {error}");
        }
        Ok((inferred.recognizer, inferred.summary))
    }

    /// The fast run's file: `--live-file`, else a VGA clip of `frames` frames made here.
    fn fast_file(&self, frames: u64) -> anyhow::Result<PathBuf> {
        if let Some(file) = &self.file {
            return Ok(file.clone());
        }
        let make = |encoder: &str, mux: &str, name: &str| -> anyhow::Result<PathBuf> {
            let path = self.scratch.join(name);
            let line = format!(
                "videotestsrc num-buffers={frames} pattern=ball ! \
                 video/x-raw,width={WIDTH},height={HEIGHT},framerate={FPS}/1 ! videoconvert ! \
                 {encoder} ! {mux} ! filesink location={}",
                path.display()
            );
            let pipeline = shiftlive::media::launch(&line)?;
            shiftlive::media::set_state(&pipeline, gstreamer::State::Playing)?;
            let bus = pipeline.bus().context("a pipeline without a bus")?;
            let ended = shiftlive::media::wait_for_eos(&bus, Duration::from_secs(300));
            let _ = pipeline.set_state(gstreamer::State::Null);
            anyhow::ensure!(ended?, "no end of stream writing {}", path.display());
            Ok(path)
        };
        make("x264enc speed-preset=fast", "mp4mux", "vga-h264.mp4")
            .or_else(|_| make("jpegenc", "avimux", "vga-mjpeg.avi"))
    }

    pub fn run(&self) -> anyhow::Result<Value> {
        let (mut rec, backend) = self.recognizer()?;
        let threads = tch::get_num_threads();
        eprintln!(
            "the online step in the live pipeline ({} threads, {} backend, {WIDTH}x{HEIGHT} sources):",
            threads,
            backend.name()
        );
        let setup = rec.setup();
        let before = self.tight_loop(&mut rec)?;
        report("tight loop (model), before", &before);
        let frames = ((self.seconds * FPS as f64).round() as u64).max(10);
        let pattern = Source::TestPattern {
            pattern: "ball".into(),
            width: WIDTH,
            height: HEIGHT,
            fps: FPS,
            frames: None,
        };
        self.pace(&mut rec, true)?;
        let (mut rec, paced) = self.pipeline(rec, pattern, frames)?;
        self.pace(&mut rec, false)?;
        report(
            &format!("live test pattern at {FPS} fps (model)"),
            &paced.latency_ms.model,
        );
        report("  capture to label", &paced.latency_ms.total);
        let between = self.tight_loop(&mut rec)?;
        report("tight loop (model), between", &between);
        let file = self.fast_file(frames)?;
        let (mut rec, fast) = self.pipeline(rec, Source::File(file.clone()), frames)?;
        // The pipeline hands back the recogniser it ran: its set-up is the loop's.
        anyhow::ensure!(
            rec.setup() == setup,
            "the live pipeline ran {:?}, the loop {setup:?}",
            rec.setup()
        );
        report("file as fast as possible (model)", &fast.latency_ms.model);
        report("  capture to label", &fast.latency_ms.total);
        let after = self.tight_loop(&mut rec)?;
        report("tight loop (model), after", &after);
        // Each run against the loops around it.
        let paced_loop = (before.p50 + between.p50) / 2.0;
        let fast_loop = (between.p50 + after.p50) / 2.0;
        let loops = [before.p50, between.p50, after.p50];
        let looped_p50 = loops.iter().sum::<f64>() / 3.0;
        let looped_p99 = before.p99.max(between.p99).max(after.p99);
        let paced_ratio = paced.latency_ms.model.p50 / paced_loop;
        let figures = |s: &Summary, looped: f64| {
            json!({
                "model_ms_p50": s.latency_ms.model.p50,
                "model_ms_p99": s.latency_ms.model.p99,
                "preprocess_ms_p50": s.latency_ms.preprocess.p50,
                "capture_to_label_ms_p50": s.latency_ms.total.p50,
                "capture_to_label_ms_p99": s.latency_ms.total.p99,
                "fps": s.fps,
                "frames_processed": s.frames_processed,
                "frames_dropped": s.frames_dropped,
                "loop_model_ms_p50": looped,
                "live_vs_loop": s.latency_ms.model.p50 / looped,
            })
        };
        eprintln!(
            "  live_vs_loop: paced {:.2}, fast {:.2} (loops {:.2} / {:.2} / {:.2} ms); paced drops {} of {}",
            paced_ratio,
            fast.latency_ms.model.p50 / fast_loop,
            loops[0],
            loops[1],
            loops[2],
            paced.frames_dropped,
            paced.frames_captured
        );
        Ok(json!({
            "live_threads": threads,
            "live_setup": setup,
            "live_backend": backend,
            "loop_model_ms_p50": looped_p50,
            "loop_model_ms_p99": looped_p99,
            "loop_model_ms_p50_runs": loops,
            "live_model_ms_p50": paced.latency_ms.model.p50,
            "live_model_ms_p99": paced.latency_ms.model.p99,
            "live_capture_to_label_ms_p50": paced.latency_ms.total.p50,
            "live_capture_to_label_ms_p99": paced.latency_ms.total.p99,
            "live_vs_loop": paced_ratio,
            "live_paced": figures(&paced, paced_loop),
            "live_fast": figures(&fast, fast_loop),
            "live_fast_file": file.display().to_string(),
        }))
    }
}
