//! Rendering one synthetic video: a periodic random texture seen through a moving camera.
//!
//! Frame t samples the texture (a torus tile, so nothing ever runs out) at
//! `q = c_t + s_t R(theta_t) p`, p the pixel's offset from the frame centre, y down. The class
//! sets which of c, s, theta moves; everything else is drawn from one distribution for all
//! classes. Better still, appearance and speed are drawn from (seed, video index) only, so video
//! i of every class shows the same texture at the same scale, angle and place in its middle
//! frame: a single frame cannot tell the classes apart, and a network has to learn motion.
//! Position (uniform on the torus) and angle (uniform on the circle) are distributed the same at
//! every frame of every class; scale is log-uniform in the middle frame and zooms run forwards
//! and backwards from it, so ZoomIn and ZoomOut span the same range (mirrored in time).
//! Per-frame Gaussian noise is keyed by (seed, class, video), so frames are never bit-equal.
//!
//! Motion, per frame: translation 1-3% of the shorter side, rotation 1.5-4.5 degrees, zoom
//! 1.5-3% in scale. Content moves as named: MoveLeft shifts the picture left, RotateClockwise
//! turns it clockwise on screen, ZoomIn magnifies it.

use std::f64::consts::PI;

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::SynthClass;
use crate::data::loader::stream;

/// What a video was made from (written to synth.json).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoParams {
    /// noise, stripes or blobs (each over smooth value noise).
    pub texture: String,
    /// Texels per frame pixel in the middle frame.
    pub scale: f64,
    /// Camera angle in the middle frame, degrees.
    pub angle_deg: f64,
    /// Texture point at the frame centre in the middle frame, in texels.
    pub centre: [f64; 2],
    /// Translation per frame, as a fraction of the shorter frame side.
    pub speed: f64,
    pub rotation_deg_per_frame: f64,
    /// Relative change of scale per frame (log).
    pub zoom_per_frame: f64,
    /// Standard deviation of the per-frame noise, in 8-bit levels.
    pub noise: f64,
}

/// A periodic RGB tile of `side` x `side` texels.
struct Texture {
    side: usize,
    rgb: Vec<[f32; 3]>,
}

const APPEARANCE: u64 = 10;
const NOISE: u64 = 11;

/// Smooth value noise on the torus: a `grid` x `grid` lattice of random values, smoothstep
/// interpolated, sampled at `side` x `side` texels.
fn value_noise(side: usize, grid: usize, rng: &mut impl Rng) -> Vec<f32> {
    let lattice: Vec<f32> = (0..grid * grid).map(|_| rng.r#gen::<f32>()).collect();
    let axis: Vec<(usize, usize, f32)> = (0..side)
        .map(|x| {
            let u = x as f32 * grid as f32 / side as f32;
            let i = u.floor() as usize % grid;
            let f = u - u.floor();
            (i, (i + 1) % grid, f * f * (3.0 - 2.0 * f))
        })
        .collect();
    let mut out = vec![0.0; side * side];
    for (y, &(y0, y1, fy)) in axis.iter().enumerate() {
        for (x, &(x0, x1, fx)) in axis.iter().enumerate() {
            let a = lattice[y0 * grid + x0] * (1.0 - fx) + lattice[y0 * grid + x1] * fx;
            let b = lattice[y1 * grid + x0] * (1.0 - fx) + lattice[y1 * grid + x1] * fx;
            out[y * side + x] = a * (1.0 - fy) + b * fy;
        }
    }
    out
}

/// Three or four octaves of value noise, stretched to [0, 1] (mean +- 2 standard deviations,
/// clamped). The coarsest cell is 1/12 to 1/32 of the tile (8-42 px at 64 px frames, depending
/// on the scale), the finest at least 4 texels, and the finer octaves keep half to 3/4 of the
/// weight of the coarser: every part of a frame has detail, so no motion drowns in the noise.
fn fbm(side: usize, rng: &mut impl Rng) -> Vec<f32> {
    let grids = [12usize, 16, 24, 32];
    let mut grid = grids[rng.gen_range(0..grids.len())];
    let octaves = rng.gen_range(3..=4);
    let persistence = rng.gen_range(0.5..0.75f32);
    let mut field = vec![0.0f32; side * side];
    let mut amp = 1.0;
    for _ in 0..octaves {
        if side / grid < 4 {
            break;
        }
        for (f, v) in field.iter_mut().zip(value_noise(side, grid, rng)) {
            *f += amp * v;
        }
        grid *= 2;
        amp *= persistence;
    }
    let n = field.len() as f32;
    let mean = field.iter().sum::<f32>() / n;
    let std = (field.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / n)
        .sqrt()
        .max(1e-6);
    field
        .iter_mut()
        .for_each(|v| *v = ((*v - mean) / (4.0 * std) + 0.5).clamp(0.0, 1.0));
    field
}

fn colour(rng: &mut impl Rng) -> [f32; 3] {
    std::array::from_fn(|_| rng.gen_range(0.0..255.0))
}

fn lerp(a: [f32; 3], b: [f32; 3], t: f32) -> [f32; 3] {
    std::array::from_fn(|c| a[c] + (b[c] - a[c]) * t)
}

/// A random texture: smooth noise through a random two-colour palette, tinted by a second noise
/// field with a third colour, plus stripes or soft blobs for some videos.
fn texture(side: usize, rng: &mut impl Rng) -> (Texture, &'static str) {
    let kind = ["noise", "stripes", "blobs"][rng.gen_range(0..3)];
    let c0 = colour(rng);
    // A second colour far from the first, so every texture has contrast to see motion by.
    let mut c1 = colour(rng);
    while (0..3).map(|c| (c1[c] - c0[c]).powi(2)).sum::<f32>() < 120.0 * 120.0 {
        c1 = colour(rng);
    }
    let c2 = colour(rng);
    // A sigmoid of random steepness turns smooth noise into patches with edges (from soft clouds
    // to camouflage): edges at every scale are what motion is seen by.
    let steep = rng.gen_range(4.0..12.0f32);
    let mut field: Vec<f32> = fbm(side, rng)
        .into_iter()
        .map(|f| 1.0 / (1.0 + (-steep * (f - 0.5)).exp()))
        .collect();
    let tint = fbm(side, rng);
    let tint_weight = rng.gen_range(0.0..0.5f32);
    if kind == "stripes" {
        // Integer wave numbers keep the tile periodic; noise underneath keeps motion along the
        // stripes visible (no aperture problem).
        let (mut a, mut b) = (0i32, 0i32);
        while a == 0 && b == 0 {
            a = rng.gen_range(-6..=6);
            b = rng.gen_range(-6..=6);
        }
        let phase = rng.gen_range(0.0..2.0 * PI);
        let mix = rng.gen_range(0.3..0.6f32);
        for y in 0..side {
            for x in 0..side {
                let arg = 2.0 * PI * (a as f64 * x as f64 + b as f64 * y as f64) / side as f64;
                let s = 0.5 + 0.5 * (arg + phase).sin() as f32;
                let f = &mut field[y * side + x];
                *f = *f * (1.0 - mix) + s * mix;
            }
        }
    }
    let mut rgb: Vec<[f32; 3]> = field
        .iter()
        .zip(&tint)
        .map(|(f, t)| lerp(lerp(c0, c1, *f), c2, tint_weight * t))
        .collect();
    if kind == "blobs" {
        let count = rng.gen_range(40..120);
        for _ in 0..count {
            let (cx, cy) = (
                rng.gen_range(0.0..side as f32),
                rng.gen_range(0.0..side as f32),
            );
            // Small discs with soft (2 texel) rims, slightly translucent: the texture underneath
            // stays visible, so no region of a frame is flat enough to hide motion.
            let r = rng.gen_range(side as f32 / 64.0..side as f32 / 20.0);
            let col = colour(rng);
            let reach = (r + 2.0).ceil() as i64;
            for dy in -reach..=reach {
                for dx in -reach..=reach {
                    let d = ((dx * dx + dy * dy) as f32).sqrt();
                    let alpha = 0.85 * ((r + 1.0 - d) / 2.0).clamp(0.0, 1.0);
                    let x = (cx as i64 + dx).rem_euclid(side as i64) as usize;
                    let y = (cy as i64 + dy).rem_euclid(side as i64) as usize;
                    let px = &mut rgb[y * side + x];
                    *px = lerp(*px, col, alpha);
                }
            }
        }
    }
    (Texture { side, rgb }, kind)
}

impl Texture {
    /// Bilinear sample with wrap-around at texel coordinates (x, y).
    fn sample(&self, x: f64, y: f64) -> [f32; 3] {
        let n = self.side as f64;
        let (x, y) = (x.rem_euclid(n), y.rem_euclid(n));
        let (x0, y0) = (x.floor(), y.floor());
        let (fx, fy) = ((x - x0) as f32, (y - y0) as f32);
        let (x0, y0) = (x0 as usize % self.side, y0 as usize % self.side);
        let (x1, y1) = ((x0 + 1) % self.side, (y0 + 1) % self.side);
        let at = |x: usize, y: usize| self.rgb[y * self.side + x];
        let top = lerp(at(x0, y0), at(x1, y0), fx);
        let bottom = lerp(at(x0, y1), at(x1, y1), fx);
        lerp(top, bottom, fy)
    }
}

/// Renders video `index` of `class`: `frames` packed RGB frames of `width` x `height`.
pub fn render_video(
    seed: u64,
    class: SynthClass,
    index: usize,
    frames: usize,
    width: usize,
    height: usize,
) -> (VideoParams, Vec<Vec<u8>>) {
    let mut rng = stream(seed, 0, index as u64, APPEARANCE);
    // The tile is 4x the longer side: the widest view (2 texels per pixel in the middle frame,
    // x1.6 at most by zooming out) spans 3.2x the longer side, so no repeat is ever in view.
    let side = 4 * width.max(height).max(8);
    let (tex, kind) = texture(side, &mut rng);
    let short = width.min(height) as f64;
    let params = VideoParams {
        texture: kind.to_string(),
        scale: rng.gen_range(0.5f64.ln()..2.0f64.ln()).exp(),
        angle_deg: rng.gen_range(0.0..360.0),
        centre: [
            rng.gen_range(0.0..side as f64),
            rng.gen_range(0.0..side as f64),
        ],
        speed: rng.gen_range(0.01..0.03),
        rotation_deg_per_frame: rng.gen_range(1.5..4.5),
        zoom_per_frame: rng.gen_range(0.015..0.03),
        noise: rng.gen_range(2.0..8.0),
    };
    let mut noise = stream(seed, class as u64 + 1, index as u64, NOISE);
    let mid = (frames as f64 - 1.0) / 2.0;
    let theta_mid = params.angle_deg.to_radians();
    let (cx, cy) = ((width as f64 - 1.0) / 2.0, (height as f64 - 1.0) / 2.0);
    let video = (0..frames)
        .map(|t| {
            let dt = t as f64 - mid;
            let (mut c, mut s, mut theta) = (params.centre, params.scale, theta_mid);
            // Content moves by v pixels along `dir` per frame: c_t = c_mid - dt v s R(theta) dir.
            let mut shift = |dir: [f64; 2]| {
                let v = params.speed * short * params.scale * dt;
                let (sin, cos) = theta_mid.sin_cos();
                c[0] -= v * (cos * dir[0] - sin * dir[1]);
                c[1] -= v * (sin * dir[0] + cos * dir[1]);
            };
            let rot = params.rotation_deg_per_frame.to_radians() * dt;
            let zoom = params.zoom_per_frame * dt;
            match class {
                SynthClass::MoveLeft => shift([-1.0, 0.0]),
                SynthClass::MoveRight => shift([1.0, 0.0]),
                SynthClass::MoveUp => shift([0.0, -1.0]),
                SynthClass::MoveDown => shift([0.0, 1.0]),
                // y points down, so a growing angle turns the picture anticlockwise on screen.
                SynthClass::RotateClockwise => theta -= rot,
                SynthClass::RotateAnticlockwise => theta += rot,
                SynthClass::ZoomIn => s *= (-zoom).exp(),
                SynthClass::ZoomOut => s *= zoom.exp(),
                SynthClass::Still => {}
            }
            let (sin, cos) = theta.sin_cos();
            let mut frame = Vec::with_capacity(width * height * 3);
            for y in 0..height {
                for x in 0..width {
                    let (px, py) = (x as f64 - cx, y as f64 - cy);
                    let qx = c[0] + s * (cos * px - sin * py);
                    let qy = c[1] + s * (sin * px + cos * py);
                    let rgb = tex.sample(qx, qy);
                    for v in rgb {
                        let n = gaussian(&mut noise) * params.noise as f32;
                        frame.push((v + n).round().clamp(0.0, 255.0) as u8);
                    }
                }
            }
            frame
        })
        .collect();
    (params, video)
}

/// A standard normal sample (Box-Muller; one of the pair is dropped for simplicity).
fn gaussian(rng: &mut impl Rng) -> f32 {
    let u1: f32 = rng.gen_range(f32::EPSILON..1.0);
    let u2: f32 = rng.r#gen();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f32::consts::PI * u2).cos()
}
