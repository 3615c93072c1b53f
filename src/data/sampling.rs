//! Which frames of a video make a clip.
//!
//! - TSN segments (Wang et al., ECCV 2016): the video is cut into N equal segments; training takes
//!   a random frame in each, testing the centre one (`floor(tick / 2 + tick * i)`, tick = n / N,
//!   as TSN and TSM do). With C test clips, clip c takes the point `(c + 1/2) / C` of each segment,
//!   so the clips spread evenly and C = 1 is the centre.
//! - Dense clips (MVF's 16x4): `clip_len` frames `interval` apart; training starts at a random
//!   frame, C test clips start evenly spread over the video.
//!
//! Videos shorter than a clip never run backwards: segments repeat frames (`floor(i * n / N)`),
//! dense clips repeat the last frame. Looping (mmaction2's default) would jump back in time, which
//! reverses the motion the direction classes of `synth` are about.

use rand::Rng;

/// How frames are picked.
#[derive(Debug, Clone, PartialEq)]
pub enum Sampling {
    Segments { num_segments: usize },
    Dense { clip_len: usize, interval: usize },
}

impl Sampling {
    /// Frames per clip (T).
    pub fn frames(&self) -> usize {
        match self {
            Sampling::Segments { num_segments } => *num_segments,
            Sampling::Dense { clip_len, .. } => *clip_len,
        }
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        match self {
            Sampling::Segments { num_segments: 0 } => Err("num_segments must be at least 1".into()),
            Sampling::Dense { clip_len, interval } if *clip_len == 0 || *interval == 0 => Err(
                format!("dense clips need clip_len and interval >= 1, got {clip_len}x{interval}"),
            ),
            _ => Ok(()),
        }
    }

    /// Training indices into a video of `n` frames, random from `rng` (n = 0 reads as 1).
    pub fn train_indices(&self, n: usize, rng: &mut impl Rng) -> Vec<usize> {
        let n = n.max(1);
        match self {
            Sampling::Segments { num_segments } => {
                let segs = *num_segments;
                if n < segs {
                    return (0..segs).map(|i| i * n / segs).collect();
                }
                // Segment i covers [i n / N, (i + 1) n / N): never empty when n >= N.
                (0..segs)
                    .map(|i| {
                        let (lo, hi) = (i * n / segs, (i + 1) * n / segs);
                        rng.gen_range(lo..hi)
                    })
                    .collect()
            }
            Sampling::Dense { clip_len, interval } => {
                let span = (clip_len - 1) * interval + 1;
                let start = if n > span {
                    rng.gen_range(0..=n - span)
                } else {
                    0
                };
                dense(start, *clip_len, *interval, n)
            }
        }
    }

    /// Test indices of clip `clip` of `clips` (evenly spread; one clip is the centre).
    pub fn test_indices(&self, n: usize, clip: usize, clips: usize) -> Vec<usize> {
        let (n, clips) = (n.max(1), clips.max(1));
        match self {
            Sampling::Segments { num_segments } => {
                let tick = n as f64 / *num_segments as f64;
                let within = tick * (clip as f64 + 0.5) / clips as f64;
                (0..*num_segments)
                    .map(|i| ((tick * i as f64 + within) as usize).min(n - 1))
                    .collect()
            }
            Sampling::Dense { clip_len, interval } => {
                let span = (clip_len - 1) * interval + 1;
                let free = n.saturating_sub(span);
                let start = (free as f64 * (clip as f64 + 0.5) / clips as f64) as usize;
                dense(start.min(free), *clip_len, *interval, n)
            }
        }
    }
}

fn dense(start: usize, clip_len: usize, interval: usize, n: usize) -> Vec<usize> {
    (0..clip_len)
        .map(|j| (start + j * interval).min(n - 1))
        .collect()
}
