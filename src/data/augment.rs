//! Crops, flips and normalisation: a source frame becomes a `[3, S, S]` float view.
//!
//! Train (TSN/TSM `GroupMultiScaleCrop`, the same for every frame of a clip): base = shorter side;
//! crop sides base * s for s in `scales` (snapped to S when within 3 px, as TSN does), width and
//! height picked independently with at most one step of distortion between them; the crop sits at
//! one of TSN's 13 fixed positions (`more_fix_crop`: 4 corners, centre, 4 edge middles and 4
//! quarter points, on a grid of quarter steps), drawn at random; it is resized to S x S (bilinear),
//! then flipped with probability 1/2 when flipping is on.
//!
//! Test (mmaction2's rules):
//! - Centre: shorter side to S * 256 / 224, centre crop S: exactly `preprocess::Transform::imagenet`.
//! - Three: shorter side to S, three S x S squares along the longer side: start, centre, end
//!   (steps of (L - S) / 2, mmaction2 `ThreeCrop`, TSM's `GroupFullResSample`).
//! - Ten: shorter side to S * 256 / 224, the 4 corners and the centre (quarter steps, mmaction2
//!   `TenCrop`), then the same five flipped.
//!
//! Sampling is bilinear with half-pixel centres (torch `align_corners=False`), as in `preprocess`.

use rand::Rng;

use crate::preprocess::FrameRef;

/// Horizontal flip in training.
#[derive(Debug, Clone, PartialEq)]
pub enum Flip {
    Off,
    /// Flip half the clips; labels stay.
    On,
    /// Flip half the clips and relabel them: `map[label]` is the label of the mirrored clip
    /// (MoveLeft <-> MoveRight), for classes a mirror changes.
    Mapped(Vec<usize>),
}

/// The test views of a clip: the centre crop, three crops along the longer side, or the four
/// corners and the centre, each also flipped (ten).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TestCrop {
    #[serde(alias = "center")]
    Centre,
    Three,
    Ten,
}

impl TestCrop {
    /// Views per clip.
    pub fn count(&self) -> usize {
        match self {
            TestCrop::Centre => 1,
            TestCrop::Three => 3,
            TestCrop::Ten => 10,
        }
    }

    /// Whether view `c` (0-based, of [`TestCrop::count`]) is a mirror image: the last five of
    /// ten crops, as [`test_views`] orders them.
    pub fn mirrored(&self, c: usize) -> bool {
        matches!(self, TestCrop::Ten) && c >= 5
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    Train { scales: Vec<f32>, flip: Flip },
    Eval { crop: TestCrop, clips: usize },
}

impl Mode {
    /// TSM's training augmentation: scales (1, .875, .75, .66), flip on.
    pub fn train_default() -> Self {
        Mode::Train {
            scales: vec![1.0, 0.875, 0.75, 0.66],
            flip: Flip::On,
        }
    }

    /// Views per item (clips x crops; 1 in training).
    pub fn views(&self) -> usize {
        match self {
            Mode::Train { .. } => 1,
            Mode::Eval { crop, clips } => crop.count() * clips.max(&1),
        }
    }
}

/// One axis of a view: output sample `o` reads the source at
/// `origin + ((o + offset) + 1/2) scale - 1/2`, clamped to `[lo, hi]` (for a test view this is
/// `preprocess`'s expression term for term, so the centre crop matches it bit for bit).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Axis {
    pub origin: f64,
    pub offset: usize,
    pub scale: f64,
    pub lo: f64,
    pub hi: f64,
}

impl Axis {
    /// A crop `[offset, offset + len)` of the source resampled to `out` samples (train).
    fn crop(offset: usize, len: usize, out: usize) -> Self {
        Axis {
            origin: offset as f64,
            offset: 0,
            scale: len as f64 / out as f64,
            lo: offset as f64,
            hi: (offset + len) as f64 - 1.0,
        }
    }

    /// The source of `src` samples resized to `resized`, read from `offset` on (test, preprocess).
    fn resized(src: usize, resized: usize, offset: usize) -> Self {
        Axis {
            origin: 0.0,
            offset,
            scale: src as f64 / resized as f64,
            lo: 0.0,
            hi: src as f64 - 1.0,
        }
    }

    fn taps(&self, out: usize) -> Vec<(usize, usize, f32)> {
        let hi = self.hi.max(self.lo);
        (0..out)
            .map(|o| {
                let pos = self.origin + ((o + self.offset) as f64 + 0.5) * self.scale - 0.5;
                let pos = pos.clamp(self.lo, hi);
                let i0 = pos.floor() as usize;
                let i1 = (i0 + 1).min(hi as usize);
                (i0, i1, (pos - i0 as f64) as f32)
            })
            .collect()
    }
}

/// Where one view of a frame comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct View {
    pub x: Axis,
    pub y: Axis,
    pub flip: bool,
}

/// A training crop as TSN draws it: indices into the (w, h) pairs and the 13 positions, and the
/// flip. Drawn once per clip, applied to each frame at its own size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrainChoice {
    pub pair: usize,
    pub position: usize,
    pub flip: bool,
}

/// The (scale index for width, scale index for height) pairs with at most one step between them.
fn scale_pairs(n: usize) -> Vec<(usize, usize)> {
    let mut pairs = Vec::new();
    for i in 0..n {
        for j in 0..n {
            if i.abs_diff(j) <= 1 {
                pairs.push((j, i));
            }
        }
    }
    pairs
}

/// TSN's `fill_fix_offset(more_fix_crop=True)`: 13 positions in quarter steps.
const POSITIONS: [(usize, usize); 13] = [
    (0, 0),
    (4, 0),
    (0, 4),
    (4, 4),
    (2, 2),
    (0, 2),
    (4, 2),
    (2, 4),
    (2, 0),
    (1, 1),
    (3, 1),
    (1, 3),
    (3, 3),
];

impl TrainChoice {
    pub fn draw(scales: usize, flip: bool, rng: &mut impl Rng) -> Self {
        let pairs = scale_pairs(scales.max(1)).len();
        TrainChoice {
            pair: rng.gen_range(0..pairs),
            position: rng.gen_range(0..POSITIONS.len()),
            flip: flip && rng.gen_bool(0.5),
        }
    }

    /// The crop rectangle `(x, y, w, h)` in a `width` x `height` frame.
    pub fn rect(
        &self,
        width: usize,
        height: usize,
        size: usize,
        scales: &[f32],
    ) -> (usize, usize, usize, usize) {
        let base = width.min(height);
        let side = |s: f32| {
            let c = (base as f64 * s as f64) as usize;
            if c.abs_diff(size) < 3 { size } else { c }
        };
        let pairs = scale_pairs(scales.len().max(1));
        let (wi, hi) = pairs[self.pair.min(pairs.len() - 1)];
        let scale = |i: usize| scales.get(i).copied().unwrap_or(1.0);
        let cw = side(scale(wi)).clamp(1, width);
        let ch = side(scale(hi)).clamp(1, height);
        let (px, py) = POSITIONS[self.position % POSITIONS.len()];
        let (wstep, hstep) = ((width - cw) / 4, (height - ch) / 4);
        (px * wstep, py * hstep, cw, ch)
    }

    pub fn view(&self, width: usize, height: usize, size: usize, scales: &[f32]) -> View {
        let (x, y, w, h) = self.rect(width, height, size, scales);
        View {
            x: Axis::crop(x, w, size),
            y: Axis::crop(y, h, size),
            flip: self.flip,
        }
    }
}

/// Size of a `width` x `height` frame whose shorter side is resized to `short` (as `preprocess`).
fn resized_size(width: usize, height: usize, short: usize) -> (usize, usize) {
    if width <= height {
        (
            short,
            (short as f64 * height as f64 / width as f64) as usize,
        )
    } else {
        (
            (short as f64 * width as f64 / height as f64) as usize,
            short,
        )
    }
}

/// The test views of a `width` x `height` frame for a crop of side `size`.
pub fn test_views(width: usize, height: usize, size: usize, crop: TestCrop) -> Vec<View> {
    let view = |rw: usize, rh: usize, ox: usize, oy: usize, flip: bool| View {
        x: Axis::resized(width, rw, ox),
        y: Axis::resized(height, rh, oy),
        flip,
    };
    match crop {
        TestCrop::Centre => {
            let (rw, rh) = resized_size(width, height, (size * 256 / 224).max(size));
            // torchvision's CenterCrop rounds half offsets to even, as preprocess does.
            let ox = ((rw - size) as f64 / 2.0).round_ties_even() as usize;
            let oy = ((rh - size) as f64 / 2.0).round_ties_even() as usize;
            vec![view(rw, rh, ox, oy, false)]
        }
        TestCrop::Three => {
            let (rw, rh) = resized_size(width, height, size);
            let (sx, sy) = ((rw - size) / 2, (rh - size) / 2);
            (0..3)
                .map(|k| view(rw, rh, k * sx, k * sy, false))
                .collect()
        }
        TestCrop::Ten => {
            let (rw, rh) = resized_size(width, height, (size * 256 / 224).max(size));
            let (sx, sy) = ((rw - size) / 4, (rh - size) / 4);
            let five = [(0, 0), (4, 0), (0, 4), (4, 4), (2, 2)];
            [false, true]
                .into_iter()
                .flat_map(|flip| five.map(|(px, py)| view(rw, rh, px * sx, py * sy, flip)))
                .collect()
        }
    }
}

/// Samples `view` of `frame` into `out` (`[3, size, size]`, CHW), scaled to [0, 1] and normalised
/// with `mean` and `std`. The frame must have passed `Preprocessor::check`.
pub fn render(
    frame: &FrameRef,
    view: &View,
    size: usize,
    mean: [f32; 3],
    std: [f32; 3],
    out: &mut [f32],
) {
    let cols = view.x.taps(size);
    let rows = view.y.taps(size);
    let scale: [f32; 3] = std::array::from_fn(|c| 1.0 / (255.0 * std[c]));
    let shift: [f32; 3] = std::array::from_fn(|c| mean[c] / std[c]);
    let plane = size * size;
    let (r_plane, rest) = out.split_at_mut(plane);
    let (g_plane, b_plane) = rest.split_at_mut(plane);
    let last = frame.height - 1;
    let last_col = frame.width - 1;
    for (y, &(r0, r1, wy)) in rows.iter().enumerate() {
        let top = &frame.data[r0.min(last) * frame.stride..];
        let bottom = &frame.data[r1.min(last) * frame.stride..];
        for (x, &(c0, c1, wx)) in cols.iter().enumerate() {
            let (a, b) = (c0.min(last_col) * 3, c1.min(last_col) * 3);
            let mut px = [0f32; 3];
            for (c, v) in px.iter_mut().enumerate() {
                let t = top[a + c] as f32 * (1.0 - wx) + top[b + c] as f32 * wx;
                let u = bottom[a + c] as f32 * (1.0 - wx) + bottom[b + c] as f32 * wx;
                *v = (t * (1.0 - wy) + u * wy) * scale[c] - shift[c];
            }
            let xo = if view.flip { size - 1 - x } else { x };
            let i = y * size + xo;
            r_plane[i] = px[0];
            g_plane[i] = px[1];
            b_plane[i] = px[2];
        }
    }
}
