//! The window's figures: latency of the last results per stage (rolling, for the panel and the
//! plot) and the report printed when the window closes.

use std::collections::VecDeque;

use crate::bench::Stats;
use crate::pipeline::Latency;

/// Results kept for the rolling percentiles, the fps and the plot (10 s at 30 fps).
pub const ROLLING: usize = 300;
/// Window latency samples kept for the figure reported at exit.
pub(super) const WINDOW_SAMPLES: usize = 100_000;

/// Latency of the last `ROLLING` results, per stage, milliseconds.
#[derive(Debug, Default, Clone)]
pub struct Rolling {
    pub capture_to_ring: VecDeque<f64>,
    pub preprocess: VecDeque<f64>,
    pub model: VecDeque<f64>,
    pub total: VecDeque<f64>,
    /// From the result leaving the inference thread to the end of the paint that showed it.
    pub window: VecDeque<f64>,
}

pub(super) fn push_capped<T>(queue: &mut VecDeque<T>, value: T, cap: usize) {
    if queue.len() >= cap {
        queue.pop_front();
    }
    queue.push_back(value);
}

/// Events per second over the instants kept (first to last); 0 with fewer than two.
pub(super) fn rate(arrivals: &VecDeque<std::time::Instant>) -> f64 {
    match (arrivals.front(), arrivals.back()) {
        (Some(first), Some(last)) if arrivals.len() > 1 && last > first => {
            (arrivals.len() - 1) as f64 / last.duration_since(*first).as_secs_f64()
        }
        _ => 0.0,
    }
}

impl Rolling {
    /// One result's latencies.
    pub fn push(&mut self, latency: &Latency) {
        push_capped(&mut self.capture_to_ring, latency.capture_to_ring, ROLLING);
        push_capped(&mut self.preprocess, latency.preprocess, ROLLING);
        push_capped(&mut self.model, latency.model, ROLLING);
        push_capped(&mut self.total, latency.total, ROLLING);
    }

    /// (stage name, p50/p99) rows as the panel lists them.
    pub fn rows(&self) -> [(&'static str, Stats); 5] {
        let stats = |q: &VecDeque<f64>| Stats::of(&q.iter().copied().collect::<Vec<_>>());
        [
            ("capture->ring", stats(&self.capture_to_ring)),
            ("preprocess", stats(&self.preprocess)),
            ("model", stats(&self.model)),
            ("total", stats(&self.total)),
            ("window", stats(&self.window)),
        ]
    }
}

/// What the window did, printed as `{"window": {...}}` when it closes.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WindowReport {
    pub frames_received: u64,
    /// Frames the stride left out, received to be shown (the picture moves at the source's rate).
    pub pictures_received: u64,
    pub frames_shown: u64,
    pub frames_lost: u64,
    /// The label on screen when the window closed.
    pub last_label: Option<String>,
    /// From a result leaving the inference thread to the end of the paint that showed its frame.
    pub latency_ms: Stats,
    /// Of which drawing the frame (input, ui, tessellation, paint; the vsync wait excluded).
    pub frame_time_ms: Stats,
}
