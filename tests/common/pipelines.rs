//! Running pipelines in tests: one source alone or several batched, to their end with a
//! deadline (a hang fails the test instead of blocking CI); the clips and frames they read; and
//! the comparison of two logit rows.

use std::path::Path;
use std::time::{Duration, Instant};

use shiftlive::online::Recognizer;
use shiftlive::pipeline::{
    BatchPipeline, Event, FrameResult, Pipeline, PipelineOptions, StreamSource, StreamsEvent,
    StreamsSummary, Summary,
};
use tch::{Device, Kind, Tensor};

/// The largest difference between two logit rows.
pub fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// An RGB frame of random bytes.
pub fn noise(width: usize, height: usize) -> Vec<u8> {
    let t = Tensor::randint(
        256,
        [(width * height * 3) as i64],
        (Kind::Uint8, Device::Cpu),
    );
    Vec::<u8>::try_from(&t).unwrap()
}

/// Encodes `frames` frames of a moving test pattern as MJPEG in AVI.
pub fn encode_pattern(path: &Path, frames: u32, width: u32, height: u32, fps: u32, pattern: &str) {
    let line = format!(
        "videotestsrc num-buffers={frames} pattern={pattern} ! video/x-raw,format=I420,width={width},height={height},framerate={fps}/1 \
         ! jpegenc quality=90 ! avimux ! filesink location={}",
        path.display()
    );
    super::gst_run(&line).unwrap_or_else(|e| panic!("encoding {}: {e}", path.display()));
}

/// One source through the single-stream pipeline to its end: each result, and the summary.
pub fn run_alone(recognizer: Recognizer, options: PipelineOptions) -> (Vec<FrameResult>, Summary) {
    let pipeline = Pipeline::start(recognizer, options).unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut results = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match pipeline.events().recv_timeout(left) {
            Ok(Event::Frame(r)) => results.push(*r),
            Ok(Event::Summary(s)) => return (results, *s),
            Ok(_) => {}
            Err(e) => panic!("pipeline hung: {e}"),
        }
    }
}

/// Several sources batched in one recogniser to their end: each stream's results, and the
/// summary.
pub fn run_batched(
    recognizer: Recognizer,
    base: &PipelineOptions,
    sources: Vec<StreamSource>,
) -> (Vec<Vec<FrameResult>>, StreamsSummary) {
    let n = sources.len();
    let pipeline = BatchPipeline::start(recognizer, base, sources).unwrap();
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut results = vec![Vec::new(); n];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match pipeline.events().recv_timeout(left) {
            Ok(StreamsEvent::Stream {
                stream,
                event: Event::Frame(r),
            }) => results[stream].push(*r),
            Ok(StreamsEvent::Stream { .. }) => {}
            Ok(StreamsEvent::Summary(s)) => return (results, *s),
            Err(e) => panic!("batched pipeline hung: {e}"),
        }
    }
}
