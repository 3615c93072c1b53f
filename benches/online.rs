//! Per-frame latency of the online step against its alternatives, and of preprocessing.
//! CPU, fp32, channels-last, folded BatchNorm (the recogniser's defaults), batch of one frame;
//! MobileNetV2-TSM at 224x224 in release builds, 112x112 in debug builds (`cargo test` runs each
//! bench once to check it works).

use criterion::{Criterion, criterion_group, criterion_main};
use shiftlive::bench::{OnlineCase, WindowCase, plain_2d};
use shiftlive::model::ModelConfig;
use shiftlive::online::RecognizerOptions;
use shiftlive::preprocess::{FrameRef, Preprocessor, Transform};

fn config() -> ModelConfig {
    let mut config = ModelConfig::tsm_mobilenet_v2_online();
    if cfg!(debug_assertions) {
        config.input_size = 112;
    }
    config
}

fn online(c: &mut Criterion) {
    let config = config();
    let options = RecognizerOptions::default();
    let name = format!(
        "{} {}x{} cpu fp32",
        config.name, config.input_size, config.input_size
    );
    let mut group = c.benchmark_group(name);
    group.sample_size(20);
    let mut online = OnlineCase::new(&config, options).expect("online model");
    group.bench_function("online step (shift cache)", |b| b.iter(|| online.step()));
    let mut plain = OnlineCase::new(&plain_2d(&config), options).expect("plain model");
    group.bench_function("plain 2D per frame", |b| b.iter(|| plain.step()));
    let mut window = WindowCase::new(&config, options, 8).expect("window model");
    group.bench_function("8-frame window per frame", |b| b.iter(|| window.step()));
    group.finish();
}

fn preprocess(c: &mut Criterion) {
    let side = config().input_size as usize;
    let mut prep = Preprocessor::new(Transform::imagenet(side));
    let bytes = vec![100u8; 640 * 480 * 3];
    let frame = FrameRef::rgb(&bytes, 640, 480);
    c.bench_function(&format!("preprocess 640x480 -> {side}x{side}"), |b| {
        b.iter(|| prep.run(&frame).map(|out| out[0]))
    });
}

/// The capture path without decoding: copy a GStreamer RGB buffer (rows padded to 4 bytes) into a
/// frame, pass it through the ring, preprocess it. Goal: under 1 ms per 640x480 frame.
#[cfg(feature = "capture")]
fn capture_path(c: &mut Criterion) {
    use shiftlive::capture::packed_rgb;
    use shiftlive::ring::{DropPolicy, Popped, ring};
    let side = config().input_size as usize;
    let (width, height, stride) = (640, 480, 1920);
    let plane = vec![90u8; stride * height];
    let mut prep = Preprocessor::new(Transform::imagenet(side));
    let (mut producer, mut consumer) = ring::<Vec<u8>>(4, DropPolicy::Latest);
    c.bench_function(
        &format!("capture path 640x480: copy + ring + preprocess -> {side}x{side}"),
        |b| {
            b.iter(|| {
                producer.push(packed_rgb(&plane, stride, width, height));
                let Popped::Item(data) = consumer.pop(std::time::Duration::ZERO) else {
                    return 0.0;
                };
                prep.run(&FrameRef::rgb(&data, width, height))
                    .map_or(0.0, |out| out[0])
            })
        },
    );
}

#[cfg(not(feature = "capture"))]
fn capture_path(_: &mut Criterion) {}

criterion_group!(benches, online, preprocess, capture_path);
criterion_main!(benches);
