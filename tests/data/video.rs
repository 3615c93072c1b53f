//! The video half of tests/data.rs: `synth` output decoded with GStreamer, and the loader.

use std::path::Path;
use std::sync::Arc;

use shiftlive::data::synth::{SynthClass, SynthOptions, flip_label_map, generate, render_video};
use shiftlive::data::{
    Batch, Dataset, DecodeCache, Flip, Item, Layout, Loader, LoaderOptions, Mode, Sampling, Subset,
    TestCrop, decode_video, list_frames,
};
use tch::{Kind, Tensor};

/// A small synth set: 4 videos of 12 frames of 32x32 per class, with rawframes.
fn small_set(dir: &Path, classes: &[SynthClass]) -> shiftlive::data::synth::SynthReport {
    let options = SynthOptions {
        per_class: 4,
        frames: 12,
        width: 32,
        height: 32,
        seed: 11,
        classes: classes.to_vec(),
        rawframes: true,
        ..SynthOptions::new(dir)
    };
    generate(&options).unwrap()
}

fn lists(dir: &Path) -> std::path::PathBuf {
    dir.join("ucfTrainTestlist")
}

fn collect(loader: Loader) -> Vec<Batch> {
    loader.map(|b| b.unwrap()).collect()
}

fn same(a: &Tensor, b: &Tensor) -> bool {
    a.size() == b.size() && a.equal(b)
}

#[test]
fn synth_writes_ucf101_layout_with_disjoint_group_splits() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("synth");
    let report = small_set(&out, &SynthClass::ALL);
    assert_eq!(report.videos, 36);
    // Videos 0..4 go to groups 1, 7, 13, 19: split 1 tests g01 and g07, split 2 g13, split 3 g19.
    assert_eq!(report.splits, [(18, 18), (27, 9), (27, 9)]);
    let class_ind = std::fs::read_to_string(lists(&out).join("classInd.txt")).unwrap();
    assert!(class_ind.starts_with("1 MoveLeft\n2 MoveRight\n"));
    assert!(class_ind.ends_with("9 Still\n"));
    let train1 = std::fs::read_to_string(lists(&out).join("trainlist01.txt")).unwrap();
    assert!(
        train1.starts_with("MoveLeft/v_MoveLeft_g13_c01.avi 1\n"),
        "{train1}"
    );
    assert!(out.join("synth.json").is_file());
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("synth.json")).unwrap()).unwrap();
    assert_eq!(json["videos"].as_array().unwrap().len(), 36);
    assert_eq!(json["options"]["seed"], 11);

    for split in 1..=3u8 {
        let train =
            Dataset::ucf101(&out, &lists(&out), split, Subset::Train, Layout::Video).unwrap();
        let test = Dataset::ucf101(&out, &lists(&out), split, Subset::Test, Layout::Video).unwrap();
        assert_eq!(train.classes.len(), 9);
        let mut all: Vec<&Path> = train
            .items
            .iter()
            .chain(&test.items)
            .map(|i| i.path.as_path())
            .collect();
        all.sort();
        let n = all.len();
        all.dedup();
        assert_eq!(
            (n, all.len()),
            (36, 36),
            "split {split}: disjoint and covering"
        );
        // Labels follow the class folder; every class is in both subsets.
        for item in train.items.iter().chain(&test.items) {
            let class = item
                .path
                .parent()
                .unwrap()
                .file_name()
                .unwrap()
                .to_str()
                .unwrap();
            assert_eq!(train.classes[item.label], class);
            assert!(item.path.is_file(), "{}", item.path.display());
        }
        assert!(test.class_counts().iter().all(|c| *c >= 1));
    }

    // A video decodes to its frames, size and (nearly: MJPEG at quality 95) its pixels.
    let video = out.join("ZoomIn/v_ZoomIn_g07_c01.avi");
    let frames = decode_video(&video).unwrap();
    assert_eq!(frames.len(), 12);
    assert_eq!((frames[0].width, frames[0].height), (32, 32));
    let (_, rendered) = render_video(11, SynthClass::ZoomIn, 1, 12, 32, 32);
    let err: f64 = frames[5]
        .data
        .iter()
        .zip(&rendered[5])
        .map(|(a, b)| (*a as f64 - *b as f64).abs())
        .sum::<f64>()
        / rendered[5].len() as f64;
    assert!(err < 4.0, "mean abs error after MJPEG {err}");
    let raw = list_frames(&out.join("rawframes/ZoomIn/v_ZoomIn_g07_c01")).unwrap();
    assert_eq!(raw.len(), 12);
    assert!(raw[0].ends_with("img_00001.jpg") && raw[11].ends_with("img_00012.jpg"));

    // Same seed, same frames; and a folder that is not empty is refused without overwrite.
    let again = dir.path().join("again");
    small_set(&again, &[SynthClass::ZoomIn]);
    assert_eq!(
        decode_video(&again.join("ZoomIn/v_ZoomIn_g07_c01.avi")).unwrap(),
        frames
    );
    let err = generate(&SynthOptions {
        classes: vec![SynthClass::Still],
        ..SynthOptions::new(&again)
    })
    .unwrap_err()
    .to_string();
    assert!(err.contains("not empty") && err.contains("again"), "{err}");
}

fn train_options(workers: usize) -> LoaderOptions {
    LoaderOptions {
        batch_size: 4,
        workers,
        queue: 2,
        seed: 5,
        ..LoaderOptions::train(24, Sampling::Segments { num_segments: 4 })
    }
}

#[test]
fn loader_shapes_order_and_determinism() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("synth");
    small_set(&out, &SynthClass::ALL);
    let train =
        Arc::new(Dataset::ucf101(&out, &lists(&out), 1, Subset::Train, Layout::Video).unwrap());
    assert_eq!(train.items.len(), 18);

    // Train: [B*T, 3, S, S]; 18 items in batches of 4 with drop_last: 4 batches.
    let loader = Loader::new(train.clone(), train_options(1), 0).unwrap();
    assert_eq!((loader.len(), loader.views(), loader.frames()), (4, 1, 4));
    let one = collect(loader);
    assert_eq!(one.len(), 4);
    for b in &one {
        assert_eq!(b.input.size(), [16, 3, 24, 24]);
        assert_eq!(b.input.kind(), Kind::Float);
        assert_eq!(b.labels.size(), [4]);
        assert_eq!((b.views, b.frames, b.items.len()), (1, 4, 4));
        let labels: Vec<i64> = Vec::try_from(&b.labels).unwrap();
        let expected: Vec<i64> = b
            .items
            .iter()
            .map(|i| train.items[*i].label as i64)
            .collect();
        assert_eq!(labels, expected, "Flip::On keeps labels");
        // Normalised: ImageNet statistics put [0, 1] pixels within about [-2.2, 2.7].
        let (lo, hi) = (
            b.input.min().double_value(&[]),
            b.input.max().double_value(&[]),
        );
        assert!(lo >= -2.2 && hi <= 2.7 && hi > lo, "{lo} {hi}");
    }
    let mut seen: Vec<usize> = one.iter().flat_map(|b| b.items.clone()).collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 16, "each item once per epoch");

    // 3 workers give the same batches, in the same order, as 1; so does a fresh loader.
    let three = collect(Loader::new(train.clone(), train_options(3), 0).unwrap());
    for (a, b) in one.iter().zip(&three) {
        assert_eq!(a.items, b.items);
        assert!(same(&a.input, &b.input) && same(&a.labels, &b.labels));
    }
    // With a cache the content is the same, and the second epoch decodes nothing new.
    let cache = Arc::new(DecodeCache::new(64 << 20));
    let cached = LoaderOptions {
        cache: Some(cache.clone()),
        ..train_options(2)
    };
    let first = collect(Loader::new(train.clone(), cached.clone(), 0).unwrap());
    assert!(same(&first[0].input, &one[0].input));
    let held = cache.entries();
    assert!(held >= 16 && cache.bytes() > 0);
    let epoch1 = collect(Loader::new(train.clone(), cached, 1).unwrap());
    assert!(
        (held..=18).contains(&cache.entries()),
        "at most the 18 videos, each once"
    );
    // Another epoch shuffles and crops differently.
    assert!(epoch1[0].items != one[0].items || !same(&epoch1[0].input, &one[0].input));

    // Eval: V = clips x crops; no shuffle, nothing dropped (9 items: 4 + 4 + 1).
    let test =
        Arc::new(Dataset::ucf101(&out, &lists(&out), 2, Subset::Test, Layout::Video).unwrap());
    for (crop, clips, views) in [
        (TestCrop::Centre, 1, 1),
        (TestCrop::Three, 2, 6),
        (TestCrop::Ten, 2, 20),
    ] {
        let options = LoaderOptions {
            batch_size: 4,
            ..LoaderOptions::eval(24, Sampling::Segments { num_segments: 3 }, crop, clips)
        };
        let batches = collect(Loader::new(test.clone(), options, 0).unwrap());
        assert_eq!(batches.len(), 3);
        assert_eq!(batches[0].input.size(), [4 * views * 3, 3, 24, 24]);
        assert_eq!(batches[2].input.size(), [views * 3, 3, 24, 24]);
        assert_eq!(batches[0].views, views as usize);
        let order: Vec<usize> = batches.iter().flat_map(|b| b.items.clone()).collect();
        assert_eq!(order, (0..9).collect::<Vec<_>>());
        if crop == TestCrop::Ten {
            // View 5 of a clip is view 0 mirrored.
            let x = batches[0].input.view([8, 10, 3, 3, 24, 24]);
            let flipped = x.select(1, 5).flip([-1]);
            assert!(same(&x.select(1, 0), &flipped));
        }
    }

    // Dense clips: 8 frames 2 apart.
    let dense = LoaderOptions {
        sampling: Sampling::Dense {
            clip_len: 8,
            interval: 2,
        },
        ..train_options(2)
    };
    let b = Loader::new(train.clone(), dense, 0)
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(b.input.size(), [32, 3, 24, 24]);

    // Frames layout (the same JPEGs as the videos): the same batches.
    let frames =
        Arc::new(Dataset::ucf101(&out, &lists(&out), 1, Subset::Train, Layout::Frames).unwrap());
    let from_frames = Loader::new(frames, train_options(2), 0)
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    assert!(same(&from_frames.input, &one[0].input));
}

#[test]
fn flip_with_a_label_map_mirrors_and_relabels() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("synth");
    small_set(
        &out,
        &[
            SynthClass::MoveLeft,
            SynthClass::MoveRight,
            SynthClass::Still,
        ],
    );
    let data =
        Arc::new(Dataset::ucf101(&out, &lists(&out), 1, Subset::Train, Layout::Video).unwrap());
    let map = flip_label_map(&data.classes);
    assert_eq!(map, [1, 0, 2]);
    let options = |flip: Flip| LoaderOptions {
        batch_size: 6,
        mode: Mode::Train {
            scales: vec![1.0, 0.875],
            flip,
        },
        ..train_options(2)
    };
    let mapped = collect(Loader::new(data.clone(), options(Flip::Mapped(map.clone())), 3).unwrap());
    let plain = collect(Loader::new(data.clone(), options(Flip::Off), 3).unwrap());
    let mut flipped = 0;
    for (a, b) in mapped.iter().zip(&plain) {
        assert_eq!(a.items, b.items);
        let labels: Vec<i64> = Vec::try_from(&a.labels).unwrap();
        for (k, &item) in a.items.iter().enumerate() {
            let original = data.items[item].label;
            let x = a.input.narrow(0, 4 * k as i64, 4);
            let y = b.input.narrow(0, 4 * k as i64, 4);
            if same(&x, &y) {
                assert_eq!(labels[k] as usize, original);
            } else {
                assert!(
                    same(&x, &y.flip([-1])),
                    "a flipped clip is the mirror image"
                );
                assert_eq!(labels[k] as usize, map[original]);
                flipped += 1;
            }
        }
    }
    assert!(
        (1..6).contains(&flipped),
        "about half of 6 clips flipped: {flipped}"
    );
}

#[test]
fn bad_videos_are_skipped_and_listed_or_fail_when_strict() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("synth");
    small_set(&out, &[SynthClass::Still]);
    let good = out.join("Still/v_Still_g01_c01.avi");
    let truncated = dir.path().join("truncated.avi");
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(&truncated, &bytes[..300]).unwrap();
    let text = dir.path().join("notes.avi");
    std::fs::write(&text, "not a video at all\n".repeat(20)).unwrap();
    let missing = dir.path().join("missing.avi");
    let item = |path: &Path| Item {
        path: path.to_path_buf(),
        label: 0,
        layout: Layout::Video,
    };
    let data = Arc::new(Dataset {
        classes: vec!["Still".into()],
        items: vec![
            item(&good),
            item(&truncated),
            item(&text),
            item(&missing),
            item(&good),
        ],
        source: "bad video test".into(),
    });
    let options = LoaderOptions {
        batch_size: 5,
        shuffle: false,
        ..train_options(1)
    };
    let mut loader = Loader::new(data.clone(), options.clone(), 0).unwrap();
    let batch = loader.next().unwrap().unwrap();
    assert_eq!(batch.items, [0, 4]);
    assert_eq!(batch.input.size(), [8, 3, 24, 24]);
    let skipped = loader.skipped();
    let paths: Vec<&Path> = skipped.iter().map(|s| s.path.as_path()).collect();
    assert_eq!(
        paths,
        [missing.as_path(), text.as_path(), truncated.as_path()]
    );
    assert!(
        skipped[0].reason.contains("not found"),
        "{}",
        skipped[0].reason
    );
    assert!(
        skipped
            .iter()
            .all(|s| s.reason.contains(&*s.path.to_string_lossy()))
    );
    let list = dir.path().join("skipped.txt");
    shiftlive::data::write_skipped(&list, &skipped).unwrap();
    assert_eq!(std::fs::read_to_string(&list).unwrap().lines().count(), 3);

    let strict = LoaderOptions {
        strict: true,
        ..options
    };
    let mut loader = Loader::new(data, strict, 0).unwrap();
    let err = loader.next().unwrap().unwrap_err().to_string();
    assert!(
        err.contains("truncated.avi") && err.contains("cannot decode"),
        "{err}"
    );
    assert!(loader.next().is_none(), "a strict error ends the epoch");
}
