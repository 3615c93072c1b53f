//! Preprocessing against torch's own ops: bilinear resize of the shorter side (half-pixel centres,
//! no antialias), centre crop with torchvision's rounding, scale and normalise; any size and stride.

use shiftlive::preprocess::{FrameRef, Preprocessor, Transform};
use tch::{Device, Kind, Tensor};

fn frame_bytes(width: usize, height: usize, stride: usize) -> Vec<u8> {
    let mut data = vec![0xAAu8; stride * height]; // padding bytes must never be read
    for y in 0..height {
        for x in 0..width {
            for c in 0..3 {
                data[y * stride + x * 3 + c] = ((x * 7 + y * 13 + c * 50) % 256) as u8;
            }
        }
    }
    data
}

/// The same transform written with torch ops.
fn reference(
    data: &[u8],
    width: usize,
    height: usize,
    stride: usize,
    t: &Transform,
    resized: (usize, usize),
) -> Tensor {
    let rows = Tensor::from_slice(data).view([height as i64, stride as i64]);
    let img = rows
        .narrow(1, 0, (width * 3) as i64)
        .view([height as i64, width as i64, 3]);
    let img = img.permute([2, 0, 1]).unsqueeze(0).to_kind(Kind::Float); // [1, 3, H, W]
    let (rw, rh) = resized;
    let up = img.upsample_bilinear2d([rh as i64, rw as i64], false, None, None);
    let left = ((rw - t.crop) as f64 / 2.0).round_ties_even() as i64;
    let top = ((rh - t.crop) as f64 / 2.0).round_ties_even() as i64;
    let crop = up
        .narrow(2, top, t.crop as i64)
        .narrow(3, left, t.crop as i64)
        / 255.0;
    let mean = Tensor::from_slice(&t.mean).view([1, 3, 1, 1]);
    let std = Tensor::from_slice(&t.std).view([1, 3, 1, 1]);
    ((crop - mean) / std).squeeze_dim(0)
}

#[test]
fn preprocessing_matches_torch_bilinear_resize_and_crop() {
    // Odd sizes, padded rows, landscape and portrait, up- and down-scaling.
    for (width, height, stride, crop) in [
        (322, 242, 968, 224),
        (640, 480, 1920, 224),
        (241, 323, 724, 112),
        (100, 60, 300, 112),
        (64, 64, 192, 64),
    ] {
        let data = frame_bytes(width, height, stride);
        let transform = Transform::imagenet(crop);
        let mut prep = Preprocessor::new(transform.clone());
        let resized = prep.resized_size(width, height);
        let frame = FrameRef {
            data: &data,
            width,
            height,
            stride,
            channels: 3,
            bgr: false,
        };
        let ours =
            Tensor::from_slice(prep.run(&frame).unwrap()).view([3, crop as i64, crop as i64]);
        let theirs = reference(&data, width, height, stride, &transform, resized);
        let diff = (&ours - &theirs).abs().max().double_value(&[]);
        eprintln!(
            "{width}x{height} (stride {stride}) -> {resized:?} crop {crop}: max abs diff {diff:.2e}"
        );
        assert!(
            diff < 1e-4,
            "{width}x{height}: differs from torch by {diff}"
        );
    }
}

#[test]
fn the_shorter_side_becomes_the_resize_target() {
    let prep = Preprocessor::new(Transform::imagenet(224));
    assert_eq!(prep.transform().resize, 256);
    assert_eq!(prep.resized_size(320, 240), (341, 256)); // torchvision Resize(256) on UCF-101 frames
    assert_eq!(prep.resized_size(240, 320), (256, 341));
    assert_eq!(prep.resized_size(256, 256), (256, 256));
    let _ = Device::Cpu;
}

#[test]
fn rgbx_and_bgrx_frames_give_the_numbers_of_the_rgb_frame() {
    let (width, height, stride) = (101, 67, 304);
    let rgb = frame_bytes(width, height, stride);
    // The same pixels as 4-byte RGBx and BGRx, rows padded, the fourth byte garbage.
    let stride4 = width * 4 + 12;
    let mut rgbx = vec![0x55u8; stride4 * height];
    let mut bgrx = vec![0x55u8; stride4 * height];
    for y in 0..height {
        for x in 0..width {
            for c in 0..3 {
                let v = rgb[y * stride + x * 3 + c];
                rgbx[y * stride4 + x * 4 + c] = v;
                bgrx[y * stride4 + x * 4 + 2 - c] = v;
            }
        }
    }
    let mut prep = Preprocessor::new(Transform::imagenet(64));
    // FrameRef::rgb assumes packed rows: the padded stride is given explicitly.
    let expected = prep
        .run(&FrameRef {
            stride,
            ..FrameRef::rgb(&rgb, width, height)
        })
        .unwrap()
        .to_vec();
    for (data, bgr) in [(&rgbx, false), (&bgrx, true)] {
        let frame = FrameRef {
            data,
            width,
            height,
            stride: stride4,
            channels: 4,
            bgr,
        };
        let got = prep.run(&frame).unwrap();
        assert_eq!(
            got,
            &expected[..],
            "bgr={bgr}: must equal the RGB frame bit for bit"
        );
    }
    let five = FrameRef {
        channels: 5,
        ..FrameRef::rgb(&rgb, width, height)
    };
    let err = prep.run(&five).unwrap_err().to_string();
    assert!(err.contains("expected 3 (RGB/BGR) or 4"), "{err}");
}
