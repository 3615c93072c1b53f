//! Capture runs below the inference thread: GStreamer's streaming threads (source, decoder and the
//! threads a decoder starts, converter) and the capture thread get a higher nice value, so on a
//! machine with few cores the model's intra-op threads are not preempted by decoding in the middle
//! of a step (an OpenMP step waits at every barrier for its slowest thread).
//!
//! Measured with `bench --live` on a quiet 2-core AMD EPYC (AVX2), 2 threads, MobileNetV2-TSM
//! online, a 640x480 H.264 file decoded as fast as possible: nice 10 against 0 took the step in the
//! pipeline from 6.9 to 6.1 ms on ONNX Runtime (1.27x to 1.15x its tight loop) and from 14.6 to
//! 14.3 ms on libtorch; on a loaded machine (other builds) the gain was larger (11.6 to 9.2 ms).
//! A 30 fps source is unchanged (the model idles most of each frame period) and lost no frame.
//! `SHIFTLIVE_CAPTURE_NICE` sets the value (0 to 19; 0 leaves capture at the inference thread's
//! priority).

// One libc call, setpriority on the calling thread: no crate wraps the per-thread nice value.
#![allow(unsafe_code)]

use gstreamer as gst;
use gstreamer::prelude::*;

/// The nice value added to capture threads, unless `SHIFTLIVE_CAPTURE_NICE` says otherwise.
const DEFAULT_NICE: i32 = 10;

fn nice() -> i32 {
    std::env::var("SHIFTLIVE_CAPTURE_NICE")
        .ok()
        .and_then(|v| v.trim().parse::<i32>().ok())
        .map_or(DEFAULT_NICE, |n| n.clamp(0, 19))
}

/// Lowers the calling thread's priority (Linux: the nice value is per thread; threads it starts
/// inherit it).
pub fn lower_this_thread() {
    let n = nice();
    if n == 0 {
        return;
    }
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority on the calling thread (who = 0) only changes its scheduling priority.
    unsafe {
        let current = libc::getpriority(libc::PRIO_PROCESS, 0);
        if libc::setpriority(libc::PRIO_PROCESS, 0, (current + n).min(19)) != 0 {
            tracing::debug!("could not lower the capture thread's priority");
        }
    }
}

/// Lowers every streaming thread of `pipeline` as it starts: GStreamer posts a stream-status
/// message from the new thread itself, which a sync handler sees on that thread.
pub fn lower_streaming_threads(pipeline: &gst::Pipeline) {
    if nice() == 0 {
        return;
    }
    let Some(bus) = pipeline.bus() else {
        return;
    };
    bus.set_sync_handler(|_, msg| {
        if let gst::MessageView::StreamStatus(status) = msg.view()
            && status.get().0 == gst::StreamStatusType::Enter
        {
            lower_this_thread();
        }
        gst::BusSyncReply::Pass
    });
}
