//! The data side: UCF-101 split files and generic lists (with every bad input named by file and
//! line), the samplers, the crops against `preprocess`, the synthetic data set (layout, splits,
//! decoding, determinism, and that single frames do not tell its classes apart while frame
//! differences do), and the loader (shapes, order, determinism over worker counts, flip with a
//! label map, skipped and strict bad videos). The video parts need GStreamer (`capture`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use rand::SeedableRng;
use shiftlive::data::synth::{SynthClass, flip_label_map, render_video};
use shiftlive::data::{
    DataError, Dataset, Layout, Sampling, Subset, TestCrop, TrainChoice, render, test_views,
};
use shiftlive::preprocess::{FrameRef, Preprocessor, Transform};

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A hand-made UCF-101 split folder: three classes, CRLF line ends as the released files have.
fn ucf_lists(dir: &Path) -> PathBuf {
    let lists = dir.join("ucfTrainTestlist");
    write(
        &lists.join("classInd.txt"),
        "1 ApplyEyeMakeup\r\n2 Archery\r\n3 HandstandPushups\r\n",
    );
    write(
        &lists.join("trainlist01.txt"),
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\r\nArchery/v_Archery_g08_c01.avi 2\r\n\
         Archery/v_Archery_g09_c02.avi 2\r\nHandstandPushups/v_HandStandPushups_g10_c01.avi 3\r\n",
    );
    write(
        &lists.join("testlist01.txt"),
        "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi\r\nHandStandPushups/v_HandStandPushups_g01_c01.avi\r\n",
    );
    lists
}

fn message(err: DataError) -> String {
    err.to_string()
}

#[test]
fn ucf101_splits_give_zero_based_labels_from_classind() {
    let dir = tempfile::tempdir().unwrap();
    let lists = ucf_lists(dir.path());
    let root = dir.path().join("UCF-101");
    let train = Dataset::ucf101(&root, &lists, 1, Subset::Train, Layout::Video).unwrap();
    assert_eq!(
        train.classes,
        ["ApplyEyeMakeup", "Archery", "HandstandPushups"]
    );
    assert_eq!(train.items.len(), 4);
    let labels: Vec<usize> = train.items.iter().map(|i| i.label).collect();
    assert_eq!(labels, [0, 1, 1, 2]);
    assert_eq!(train.class_counts(), [1, 2, 1]);
    assert_eq!(
        train.items[0].path,
        root.join("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi")
    );
    assert!(train.source.contains("split 1 train"), "{}", train.source);

    // The test list has no labels: they come from the class folder (any case) through classInd.
    let test = Dataset::ucf101(&root, &lists, 1, Subset::Test, Layout::Video).unwrap();
    let labels: Vec<usize> = test.items.iter().map(|i| i.label).collect();
    assert_eq!(labels, [0, 2]);

    // Frames layout: rawframes/<Class>/<video>/ when root/rawframes exists.
    std::fs::create_dir_all(root.join("rawframes")).unwrap();
    let frames = Dataset::ucf101(&root, &lists, 1, Subset::Test, Layout::Frames).unwrap();
    assert_eq!(
        frames.items[0].path,
        root.join("rawframes/ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01")
    );
    assert_eq!(frames.items[0].layout, Layout::Frames);
}

#[test]
fn ucf101_bad_inputs_name_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let lists = ucf_lists(dir.path());
    let root = dir.path();
    let load = |split: u8, subset: Subset| {
        message(Dataset::ucf101(root, &lists, split, subset, Layout::Video).unwrap_err())
    };

    // A split whose list is missing.
    let msg = load(2, Subset::Train);
    assert!(
        msg.contains("trainlist02.txt") && msg.contains("not found"),
        "{msg}"
    );
    let msg = load(4, Subset::Train);
    assert!(msg.contains("splits 1, 2 and 3"), "{msg}");

    // A class that classInd does not know, on line 2.
    write(
        &lists.join("testlist02.txt"),
        "Archery/v_Archery_g01_c01.avi\nBasketball/v_Basketball_g01_c01.avi\n",
    );
    let msg = load(2, Subset::Test);
    assert!(
        msg.contains("testlist02.txt:2")
            && msg.contains("'Basketball'")
            && msg.contains("classInd"),
        "{msg}"
    );

    // A malformed line and a label that disagrees with classInd.
    write(
        &lists.join("trainlist03.txt"),
        "Archery/v_Archery_g01_c01.avi 2\nArchery/a.avi 2 extra\n",
    );
    let msg = load(3, Subset::Train);
    assert!(
        msg.contains("trainlist03.txt:2") && msg.contains("expected"),
        "{msg}"
    );
    write(
        &lists.join("trainlist03.txt"),
        "Archery/v_Archery_g01_c01.avi 1\n",
    );
    let msg = load(3, Subset::Train);
    assert!(
        msg.contains("trainlist03.txt:1") && msg.contains("label 1 disagrees"),
        "{msg}"
    );
    write(
        &lists.join("trainlist03.txt"),
        "Archery/v_Archery_g01_c01.avi two\n",
    );
    let msg = load(3, Subset::Train);
    assert!(
        msg.contains("trainlist03.txt:1") && msg.contains("'two'"),
        "{msg}"
    );

    // An empty split.
    write(&lists.join("testlist03.txt"), "\r\n\r\n");
    let msg = load(3, Subset::Test);
    assert!(
        msg.contains("testlist03.txt") && msg.contains("no entries"),
        "{msg}"
    );

    // classInd: missing, gaps, duplicates, junk.
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    let msg = message(Dataset::ucf101(root, &other, 1, Subset::Train, Layout::Video).unwrap_err());
    assert!(
        msg.contains("classInd.txt") && msg.contains("not found"),
        "{msg}"
    );
    for (text, line, what) in [
        ("1 A\n3 B\n", 2, "without gaps"),
        ("1 A\n1 B\n", 2, "already given"),
        ("1 A\n2 A\n", 2, "already listed"),
        ("1 A\nB\n", 2, "expected"),
        ("0 A\n", 1, "start at 1"),
    ] {
        write(&other.join("classInd.txt"), text);
        let msg =
            message(Dataset::ucf101(root, &other, 1, Subset::Train, Layout::Video).unwrap_err());
        assert!(
            msg.contains(&format!("classInd.txt:{line}")) && msg.contains(what),
            "{text:?}: {msg}"
        );
    }
    // A missing split folder.
    let msg = message(
        Dataset::ucf101(root, &root.join("nope"), 1, Subset::Train, Layout::Video).unwrap_err(),
    );
    assert!(
        msg.contains("nope") && msg.contains("split folder"),
        "{msg}"
    );
}

#[test]
fn generic_lists_parse_and_reject_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("frames/clip3")).unwrap();
    let list = root.join("list.txt");
    write(
        &list,
        "a/clip1.mp4 0\n# a comment\nb/clip2.webm 2\nframes/clip3 120 1\n",
    );
    let data = Dataset::from_list(&list, root, None).unwrap();
    assert_eq!(data.classes, ["class_0", "class_1", "class_2"]);
    let got: Vec<(PathBuf, usize, Layout)> = data
        .items
        .iter()
        .map(|i| (i.path.clone(), i.label, i.layout))
        .collect();
    assert_eq!(
        got,
        [
            (root.join("a/clip1.mp4"), 0, Layout::Video),
            (root.join("b/clip2.webm"), 2, Layout::Video),
            (root.join("frames/clip3"), 1, Layout::Frames),
        ]
    );

    let names = root.join("names.txt");
    write(&names, "walk\nrun\njump\n");
    let data = Dataset::from_list(&list, root, Some(&names)).unwrap();
    assert_eq!(data.classes, ["walk", "run", "jump"]);
    write(&names, "1 walk\n2 run\n3 jump\n");
    assert_eq!(
        Dataset::from_list(&list, root, Some(&names))
            .unwrap()
            .classes,
        ["walk", "run", "jump"]
    );

    write(&names, "walk\nrun\n");
    let msg = message(Dataset::from_list(&list, root, Some(&names)).unwrap_err());
    assert!(
        msg.contains("list.txt:3")
            && msg.contains("label 2 is out of range 0..=1 for the 2 classes of")
            && msg.contains("names.txt (labels are 0-based)"),
        "{msg}"
    );
    write(&list, "a/clip1.mp4 0\nb/clip2.webm -1\n");
    let msg = message(Dataset::from_list(&list, root, None).unwrap_err());
    assert!(msg.contains("list.txt:2") && msg.contains("'-1'"), "{msg}");
    write(&list, "a/clip1.mp4\n");
    let msg = message(Dataset::from_list(&list, root, None).unwrap_err());
    assert!(
        msg.contains("list.txt:1") && msg.contains("expected 'path label'"),
        "{msg}"
    );
    write(&list, "\n");
    let msg = message(Dataset::from_list(&list, root, None).unwrap_err());
    assert!(
        msg.contains("list.txt") && msg.contains("no entries"),
        "{msg}"
    );
    let msg = message(Dataset::from_list(&root.join("none.txt"), root, None).unwrap_err());
    assert!(
        msg.contains("none.txt") && msg.contains("not found"),
        "{msg}"
    );
}

#[test]
fn samplers_pick_in_segment_centre_and_dense_frames() {
    let seg = Sampling::Segments { num_segments: 8 };
    // Test: floor(tick / 2 + tick i), tick = 100 / 8 = 12.5.
    assert_eq!(seg.test_indices(100, 0, 1), [6, 18, 31, 43, 56, 68, 81, 93]);
    // Two clips at 1/4 and 3/4 of each segment.
    assert_eq!(seg.test_indices(100, 0, 2), [3, 15, 28, 40, 53, 65, 78, 90]);
    assert_eq!(seg.test_indices(100, 1, 2), [9, 21, 34, 46, 59, 71, 84, 96]);
    // Train: one frame inside each segment [i n / N, (i + 1) n / N), all positions reached.
    let mut seen = [false; 100];
    for s in 0..200u64 {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(s);
        let idx = seg.train_indices(100, &mut rng);
        for (i, f) in idx.iter().enumerate() {
            assert!(
                (i * 100 / 8..(i + 1) * 100 / 8).contains(f),
                "segment {i}: {f}"
            );
            seen[*f] = true;
        }
    }
    assert!(seen.iter().all(|s| *s), "every frame is reachable");
    // Short videos repeat frames and never go back in time.
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    assert_eq!(seg.train_indices(5, &mut rng), [0, 0, 1, 1, 2, 3, 3, 4]);
    assert_eq!(seg.test_indices(5, 0, 1), [0, 0, 1, 2, 2, 3, 4, 4]);
    assert_eq!(seg.test_indices(0, 0, 1), [0; 8]);

    let dense = Sampling::Dense {
        clip_len: 16,
        interval: 4,
    };
    assert_eq!(dense.frames(), 16);
    // Span 61 frames; one test clip in the middle of a 100-frame video starts at 39 / 2 = 19.
    let centre = dense.test_indices(100, 0, 1);
    assert_eq!(centre[0], 19);
    assert!(centre.windows(2).all(|w| w[1] - w[0] == 4));
    let starts: Vec<usize> = (0..3).map(|c| dense.test_indices(100, c, 3)[0]).collect();
    assert_eq!(starts, [6, 19, 32]);
    for s in 0..50u64 {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(s);
        let idx = dense.train_indices(100, &mut rng);
        assert!(idx[0] <= 39 && idx[15] == idx[0] + 60, "{idx:?}");
    }
    // Shorter than the span: the last frame repeats.
    assert_eq!(
        dense.test_indices(10, 0, 1),
        [0, 4, 8, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9]
    );
}

fn pattern(width: usize, height: usize) -> Vec<u8> {
    (0..width * height * 3)
        .map(|i| ((i * 37 + (i / (width * 3)) * 11) % 251) as u8)
        .collect()
}

#[test]
fn centre_crop_equals_preprocess_and_ten_crop_flips_mirror() {
    let (w, h, s) = (90, 70, 32);
    let data = pattern(w, h);
    let frame = FrameRef::rgb(&data, w, h);
    let t = Transform::imagenet(s);
    let expected = Preprocessor::new(t.clone()).run(&frame).unwrap().to_vec();
    let views = test_views(w, h, s, TestCrop::Centre);
    assert_eq!(views.len(), 1);
    let mut out = vec![0.0; 3 * s * s];
    render(&frame, &views[0], s, t.mean, t.std, &mut out);
    assert_eq!(
        out, expected,
        "centre view is preprocess's transform, bit for bit"
    );

    // Three: shorter side to S (70 -> 32, 90 -> 41), squares at x = 0, 4, 8 (steps of (41-32)/2).
    let three = test_views(w, h, s, TestCrop::Three);
    let offsets: Vec<usize> = three.iter().map(|v| v.x.offset).collect();
    assert_eq!(offsets, [0, 4, 8]);
    assert!(three.iter().all(|v| v.y.offset == 0 && !v.flip));

    // Ten: 4 corners + centre after resizing to 36 (x 46), then the same flipped.
    let ten = test_views(w, h, s, TestCrop::Ten);
    let pos: Vec<(usize, usize, bool)> = ten
        .iter()
        .map(|v| (v.x.offset, v.y.offset, v.flip))
        .collect();
    assert_eq!(
        &pos[..5],
        [
            (0, 0, false),
            (12, 0, false),
            (0, 4, false),
            (12, 4, false),
            (6, 2, false)
        ]
    );
    for k in 0..5 {
        let (mut a, mut b) = (vec![0.0; 3 * s * s], vec![0.0; 3 * s * s]);
        render(&frame, &ten[k], s, t.mean, t.std, &mut a);
        render(&frame, &ten[k + 5], s, t.mean, t.std, &mut b);
        for c in 0..3 {
            for y in 0..s {
                for x in 0..s {
                    let i = (c * s + y) * s;
                    assert_eq!(a[i + x], b[i + s - 1 - x]);
                }
            }
        }
    }
}

#[test]
fn train_crops_follow_tsn_multiscale_rule() {
    let scales = [1.0, 0.875, 0.75, 0.66];
    let (w, h, s) = (320, 240, 224);
    // base 240: sides 240, 210, 180, 158 (224 is not within 3 of any, so none snaps).
    let sides = [240, 210, 180, 158];
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
    let mut pairs = std::collections::BTreeSet::new();
    for _ in 0..2000 {
        let choice = TrainChoice::draw(scales.len(), true, &mut rng);
        let (x, y, cw, ch) = choice.rect(w, h, s, &scales);
        let (i, j) = (
            sides.iter().position(|v| *v == cw).unwrap(),
            sides.iter().position(|v| *v == ch).unwrap(),
        );
        assert!(i.abs_diff(j) <= 1, "distortion at most one step: {cw}x{ch}");
        let (sx, sy) = ((w - cw) / 4, (h - ch) / 4);
        assert!(
            x % sx.max(1) == 0 && x <= 4 * sx && y <= 4 * sy,
            "grid position ({x},{y})"
        );
        pairs.insert((cw, ch));
    }
    assert_eq!(pairs.len(), 10, "4 + 3 + 3 width/height pairs");
    // Near the input size a crop side snaps to it.
    let choice = TrainChoice {
        pair: 0,
        position: 4,
        flip: false,
    };
    assert_eq!(choice.rect(70, 64, 64, &scales), (2, 0, 64, 64));
}

#[test]
fn flip_label_map_swaps_mirrored_classes() {
    let all: Vec<String> = SynthClass::ALL
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    assert_eq!(flip_label_map(&all), [1, 0, 2, 3, 5, 4, 6, 7, 8]);
    let some: Vec<String> = ["Still", "MoveRight", "Archery", "MoveLeft"]
        .map(String::from)
        .to_vec();
    assert_eq!(flip_label_map(&some), [0, 3, 2, 1]);
}

fn gray(frame: &[u8]) -> Vec<f32> {
    frame
        .chunks_exact(3)
        .map(|p| 0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32)
        .collect()
}

/// The displacement d (|d| <= 8, sub-pixel by a parabola through the best SSD and its
/// neighbours) that moves a 16x16 block of `a` centred at (cx, cy) onto `b`: content at p in `a`
/// is at p + d in `b`.
fn block_motion(a: &[f32], b: &[f32], side: usize, cx: usize, cy: usize) -> (f32, f32) {
    const R: i64 = 8;
    let n = (2 * R + 1) as usize;
    let mut ssd = vec![0.0f32; n * n];
    for dy in -R..=R {
        for dx in -R..=R {
            let mut sum = 0.0;
            for y in cy - 8..cy + 8 {
                for x in cx - 8..cx + 8 {
                    let (xb, yb) = (x as i64 + dx, y as i64 + dy);
                    let d = a[y * side + x] - b[yb as usize * side + xb as usize];
                    sum += d * d;
                }
            }
            ssd[(dy + R) as usize * n + (dx + R) as usize] = sum;
        }
    }
    let best = (0..n * n)
        .min_by(|i, j| ssd[*i].total_cmp(&ssd[*j]))
        .unwrap();
    let (bx, by) = (best % n, best / n);
    let refine = |m: f32, l: f32, r: f32| {
        let den = l - 2.0 * m + r;
        if den > 0.0 {
            (0.5 * (l - r) / den).clamp(-0.5, 0.5)
        } else {
            0.0
        }
    };
    let fx = if bx > 0 && bx < n - 1 {
        refine(ssd[best], ssd[best - 1], ssd[best + 1])
    } else {
        0.0
    };
    let fy = if by > 0 && by < n - 1 {
        refine(ssd[best], ssd[best - n], ssd[best + n])
    } else {
        0.0
    };
    (bx as f32 - R as f32 + fx, by as f32 - R as f32 + fy)
}

/// A similarity motion `d = t + [a -b; b a] p` (p from the frame centre, y down) fitted by least
/// squares to the block motion of the 5 most textured of 9 blocks (a flat block's match means
/// nothing). Returns [tx, ty, b, a]: b > 0 for a clockwise turn on screen, a > 0 for a zoom in.
fn motion_features(a: &[u8], b: &[u8], side: usize) -> [f32; 4] {
    let (ga, gb) = (gray(a), gray(b));
    let c = (side as f32 - 1.0) / 2.0;
    let mut blocks = Vec::new();
    for y in [side / 4, side / 2, 3 * side / 4] {
        for x in [side / 4, side / 2, 3 * side / 4] {
            let mut texture = 0.0;
            for yy in y - 8..y + 8 {
                for xx in x - 8..x + 8 {
                    let gx = ga[yy * side + xx + 1] - ga[yy * side + xx - 1];
                    let gy = ga[(yy + 1) * side + xx] - ga[(yy - 1) * side + xx];
                    texture += gx * gx + gy * gy;
                }
            }
            let d = block_motion(&ga, &gb, side, x, y);
            blocks.push((texture, [x as f32 - c, y as f32 - c], [d.0, d.1]));
        }
    }
    blocks.sort_by(|p, q| q.0.total_cmp(&p.0));
    blocks.truncate(5);
    let n = blocks.len() as f32;
    // Means of the positions p and the displacements d.
    let (mut px, mut py, mut dx, mut dy) = (0.0, 0.0, 0.0, 0.0);
    for (_, p, d) in &blocks {
        (px, py, dx, dy) = (px + p[0] / n, py + p[1] / n, dx + d[0] / n, dy + d[1] / n);
    }
    let (mut dot, mut cross, mut norm) = (0.0, 0.0, 0.0);
    for (_, p, d) in &blocks {
        let (qx, qy, ex, ey) = (p[0] - px, p[1] - py, d[0] - dx, d[1] - dy);
        dot += qx * ex + qy * ey;
        cross += qx * ey - qy * ex;
        norm += qx * qx + qy * qy;
    }
    let (za, rb) = (dot / norm, cross / norm);
    [dx - (za * px - rb * py), dy - (rb * px + za * py), rb, za]
}

#[test]
fn synth_single_frames_do_not_tell_classes_apart_but_motion_does() {
    let (frames, side, videos) = (16usize, 64usize, 6usize);
    // Per video: single-frame features (mean and a colour histogram, 8 bins per channel) of a
    // frame at the same varied position for every class, and the class.
    let mut singles: Vec<(usize, usize, Vec<f64>)> = Vec::new();
    for (label, class) in SynthClass::ALL.into_iter().enumerate() {
        for i in 0..videos {
            let (params, clip) = render_video(7, class, i, frames, side, side);
            assert_eq!(clip.len(), frames);
            assert!(clip.iter().all(|f| f.len() == side * side * 3));
            // Deterministic: the same seed renders the same bytes.
            if i == 0 {
                assert_eq!(render_video(7, class, i, frames, side, side).1, clip);
                assert_eq!(render_video(7, class, i, frames, side, side).0, params);
            }
            let f = &clip[(i * 5) % frames];
            let mut features = vec![0.0f64; 25];
            features[24] = f.iter().map(|v| *v as f64).sum::<f64>() / f.len() as f64 / 255.0;
            for px in f.chunks_exact(3) {
                for c in 0..3 {
                    features[c * 8 + px[c] as usize / 32] += 1.0 / (side * side) as f64;
                }
            }
            singles.push((label, i, features));

            // Motion between frames 4 apart around the middle separates every video's class.
            let [tx, ty, curl, div] =
                motion_features(&clip[frames / 2 - 2], &clip[frames / 2 + 2], side);
            let still = |v: f32| v.abs() < 1.0;
            let ok = match class {
                SynthClass::MoveLeft => tx < -1.0 && still(ty),
                SynthClass::MoveRight => tx > 1.0 && still(ty),
                SynthClass::MoveUp => ty < -1.0 && still(tx),
                SynthClass::MoveDown => ty > 1.0 && still(tx),
                SynthClass::RotateClockwise => curl > 0.03 && still(tx) && still(ty),
                SynthClass::RotateAnticlockwise => curl < -0.03 && still(tx) && still(ty),
                SynthClass::ZoomIn => div > 0.02 && curl.abs() < 0.03,
                SynthClass::ZoomOut => div < -0.02 && curl.abs() < 0.03,
                SynthClass::Still => {
                    tx.abs() < 0.75 && ty.abs() < 0.75 && curl.abs() < 0.02 && div.abs() < 0.02
                }
            };
            assert!(
                ok,
                "{class:?} video {i}: t=({tx},{ty}) curl={curl} div={div} {params:?}"
            );
        }
    }
    // Videos differ in appearance...
    let means: Vec<f64> = singles.iter().map(|(_, _, f)| f[24]).collect();
    let grand = means.iter().sum::<f64>() / means.len() as f64;
    let spread =
        (means.iter().map(|m| (m - grand).powi(2)).sum::<f64>() / means.len() as f64).sqrt();
    assert!(spread > 0.04, "videos vary in brightness: {spread}");
    // ...but a nearest-class-mean classifier on single-frame features is at chance (1/9): 54
    // frames, at most 12 right (chance gives 6 +- 2.3). Video i of every class shares its
    // texture, so the class means leave out every video with the tested one's index.
    let mut right = 0;
    for (label, index, features) in &singles {
        let mut best = (f64::MAX, usize::MAX);
        for class in 0..9 {
            let others: Vec<&Vec<f64>> = singles
                .iter()
                .filter(|(l, i, _)| *l == class && i != index)
                .map(|(_, _, f)| f)
                .collect();
            let dist: f64 = (0..25)
                .map(|d| {
                    let m = others.iter().map(|f| f[d]).sum::<f64>() / others.len() as f64;
                    (features[d] - m).abs()
                })
                .sum();
            if dist < best.0 {
                best = (dist, class);
            }
        }
        right += usize::from(best.1 == *label);
    }
    assert!(right <= 12, "single frames classified {right} of 54 right");
}

#[cfg(feature = "capture")]
#[path = "data/video.rs"]
mod video;

/// Lists without `--classes`: the training list's labels set the classes; a validation list
/// without the last class still matches, a label beyond them is named with its line.
#[test]
fn a_validation_label_beyond_the_training_classes_names_its_line() {
    use shiftlive::train::DataSpec;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (train, val) = (root.join("train.txt"), root.join("val.txt"));
    write(&train, "a.mp4 0\nb.mp4 1\nc.mp4 2\n");
    write(&val, "a.mp4 0\nb.mp4 1\n");
    let spec = DataSpec::List {
        root: root.to_path_buf(),
        train: train.clone(),
        val: val.clone(),
        classes: None,
    };
    let (t, v) = spec.training_sets().unwrap();
    assert_eq!((t.classes.len(), v.classes.len()), (3, 3));
    write(&val, "a.mp4 0\r\n\r\nb.mp4 9\r\n");
    let msg = spec.training_sets().unwrap_err().to_string();
    assert!(
        msg.contains("val.txt line 3: label 9 is out of range 0..=2 for the 3 classes"),
        "{msg}"
    );
}
