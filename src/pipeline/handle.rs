//! The pipeline handle: it opens the source, starts the capture and inference threads, and stops
//! and joins them (the inference thread owns the source's stream and joins the capture thread).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, bounded};

use super::capture::CaptureLoop;
use super::infer::{InferLoop, Inferred};
use super::inference::Inference;
use super::stream::SourceStream;
use super::{Control, Event, PipelineError, PipelineOptions};
use crate::capture::{Capture, Frame};
use crate::online::Recognizer;
use crate::ring::{DropPolicy, RingConsumer, RingProducer, ring_with};

/// Frames the ring between the threads holds.
const RING_FRAMES: usize = 4;
/// Events waiting for the caller.
const EVENTS: usize = 256;
/// Controls waiting for the inference thread.
const CONTROLS: usize = 16;

/// A running pipeline.
pub struct Pipeline {
    events: Receiver<Event>,
    controls: Sender<Control>,
    stop: Arc<AtomicBool>,
    /// Mirrors the pause for the capture thread (a file replayed in real time is held).
    hold: Arc<AtomicBool>,
    /// The inference thread gives the recogniser back when it ends.
    infer: Option<JoinHandle<Inferred>>,
}

impl Pipeline {
    /// Opens the source (a source that cannot start fails here, with its reason), then starts the
    /// capture and inference threads.
    pub fn start(recognizer: Recognizer, options: PipelineOptions) -> Result<Self, PipelineError> {
        Self::try_start(recognizer, options).map_err(|(e, _)| e)
    }

    /// As `start`, but a failure hands the recogniser back (unless the inference thread could not
    /// be spawned), so the caller can try another source with the same model.
    // The large Err carries the model back; it happens once per failed start, never per frame.
    #[allow(clippy::result_large_err)]
    pub fn try_start(
        recognizer: Recognizer,
        options: PipelineOptions,
    ) -> Result<Self, (PipelineError, Option<Recognizer>)> {
        let (tx, events) = bounded(EVENTS);
        let (controls, control_rx) = bounded::<Control>(CONTROLS);
        let stop = Arc::new(AtomicBool::new(false));
        let hold = Arc::new(AtomicBool::new(false));
        let stream = match open_stream(&options, stop.clone(), hold.clone(), tx.clone()) {
            Ok(stream) => stream,
            Err(e) => return Err((e, Some(recognizer))),
        };
        let live = stream.is_live();
        let infer_loop = InferLoop {
            stream,
            inference: Inference::new(recognizer, &options, live),
            controls: control_rx,
            events: tx,
            stop: stop.clone(),
            max_frames: options.max_frames,
        };
        let infer = std::thread::Builder::new()
            .name("shiftlive-infer".into())
            .spawn(move || infer_loop.run());
        match infer {
            Ok(handle) => Ok(Self {
                events,
                controls,
                stop,
                hold,
                infer: Some(handle),
            }),
            // The loop (its stream, and with it the capture thread) was dropped and joined; the
            // recogniser went with it.
            Err(e) => Err((e.into(), None)),
        }
    }

    /// Sends a change to the inference thread, which applies it before its next frame. False when
    /// the pipeline has ended or 16 changes are already waiting.
    pub fn control(&self, control: Control) -> bool {
        if let Control::Pause(paused) = control {
            self.hold.store(paused, Ordering::Relaxed);
        }
        self.controls.try_send(control).is_ok()
    }

    /// Stops the pipeline, joins its threads and returns the recogniser (None if the inference
    /// thread panicked).
    pub fn finish(self) -> Option<Recognizer> {
        self.join().map(|inferred| inferred.recognizer)
    }

    /// As `finish`, with the run's summary (also sent as the last event).
    pub fn join(mut self) -> Option<Inferred> {
        self.shutdown()
    }

    /// Stops both threads and joins them: the inference thread joins the capture thread.
    fn shutdown(&mut self) -> Option<Inferred> {
        self.stop();
        // Unblock an inference thread waiting to send: after the stop it sends at most one more
        // result and the summary, which fit.
        while self.events.try_recv().is_ok() {}
        self.infer.take().and_then(|t| t.join().ok())
    }

    /// The events, ending with one `Event::Summary`; the channel closes after it.
    pub fn events(&self) -> &Receiver<Event> {
        &self.events
    }

    /// A handle that stops the pipeline from anywhere (a Ctrl-C handler, a window).
    pub fn stop_handle(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Opens `options.source` (a source that cannot start fails here, with its reason) and starts its
/// capture thread, which sends its warnings to `events`; the stream owns the thread from then on.
pub(super) fn open_stream(
    options: &PipelineOptions,
    stop: Arc<AtomicBool>,
    hold: Arc<AtomicBool>,
    events: Sender<Event>,
) -> Result<SourceStream, PipelineError> {
    let capture = Capture::open(&options.source, options.realtime)?;
    let live = capture.is_live();
    let name = options.source.describe();
    // Live sources keep the newest frame (drops counted); files wait (nothing lost) unless
    // replayed in real time.
    let policy = if live || options.realtime {
        DropPolicy::Latest
    } else {
        DropPolicy::Backpressure
    };
    tracing::info!(
        "{name}: {} source, ring policy {policy:?}",
        if live { "live" } else { "non-live" }
    );
    let (producer, consumer) = frame_ring(policy);
    let capture_loop = CaptureLoop::new(options.clone(), producer, stop, hold, events, live);
    let thread = std::thread::Builder::new()
        .name("shiftlive-capture".into())
        .spawn(move || capture_loop.run(capture))?;
    Ok(SourceStream::new(name, live, consumer, thread))
}

/// The ring between a capture thread and the inference thread: a frame dropped for a newer one
/// passes its discontinuity mark on, so the stream's cache still resets after a reopening.
fn frame_ring(policy: DropPolicy) -> (RingProducer<Frame>, RingConsumer<Frame>) {
    ring_with::<Frame>(RING_FRAMES, policy, Frame::inherit_mark)
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::Popped;
    use std::time::{Duration, Instant};

    fn frame(index: u64, discontinuity: bool) -> Frame {
        Frame {
            data: vec![0; 3],
            width: 1,
            height: 1,
            index,
            pts_ms: None,
            captured: Instant::now(),
            discontinuity,
        }
    }

    #[test]
    fn a_dropped_frame_passes_its_discontinuity_to_the_frame_that_replaced_it() {
        // A live ring: the first frame after a reopening is held, then replaced by a newer one
        // before the inference thread asks (a busy model); the newer one must carry the mark, or
        // the stream's cache rows are never reset.
        let (mut producer, mut consumer) = frame_ring(DropPolicy::Latest);
        producer.push(frame(7, true));
        producer.push(frame(8, false));
        producer.push(frame(9, false));
        let mut take = |producer: &mut RingProducer<Frame>| {
            // The consumer asks (the capture thread's flush hands the held frame over), then takes.
            if let Popped::Item(frame) = consumer.pop(Duration::ZERO) {
                return frame;
            }
            producer.flush();
            match consumer.pop(Duration::from_millis(100)) {
                Popped::Item(frame) => frame,
                _ => panic!("no frame"),
            }
        };
        let taken = take(&mut producer);
        assert_eq!(taken.index, 9);
        assert_eq!(producer.counters().dropped(), 2);
        assert!(taken.discontinuity, "the mark of frame 7 was lost");
        // The mark passes once: the next frame continues the new stream.
        producer.push(frame(10, false));
        let next = take(&mut producer);
        assert_eq!(next.index, 10);
        assert!(!next.discontinuity);
    }
}
