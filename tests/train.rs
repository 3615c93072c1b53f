//! Training and evaluation end to end, through the binary, on sets made by `shiftlive synth`:
//! the motion benchmark in a bounded form (uni-directional TSM learns the motions, TSN cannot),
//! the online recogniser matching offline evaluation, exact resumption after SIGKILL, and the
//! errors of bad input.
#![cfg(feature = "capture")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;
use shiftlive::model::TensorFile;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_shiftlive"));
    c.env("RUST_LOG", "warn");
    c
}

fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("spawn shiftlive");
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn last_json(out: &Output) -> Value {
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

/// A synthetic motion set, made once per test binary.
fn synth(name: &str, per_class: u32, frames: u32, size: u32, seed: u64) -> PathBuf {
    static ROOT: OnceLock<tempfile::TempDir> = OnceLock::new();
    let root = ROOT.get_or_init(|| tempfile::tempdir().expect("tempdir"));
    let dir = root.path().join(name);
    if !dir.join("ucfTrainTestlist").exists() {
        run_ok(bin().args(["synth", "--out"]).arg(&dir).args([
            "--per-class",
            &per_class.to_string(),
            "--frames",
            &frames.to_string(),
            "--size",
            &size.to_string(),
            "--seed",
            &seed.to_string(),
        ]));
    }
    dir
}

fn small_set() -> PathBuf {
    static SET: OnceLock<PathBuf> = OnceLock::new();
    SET.get_or_init(|| synth("small", 6, 16, 32, 3)).clone()
}

/// A training run on 1 intra-op thread: the tests run two at a time on the 2-core CI machine, and
/// two runs of 2 OpenMP threads each would wait on each other at every op.
fn train_cmd(data: &Path, out: &Path, preset: &str) -> Command {
    train_cmd_threads(data, out, preset, "1")
}

fn train_cmd_threads(data: &Path, out: &Path, preset: &str, threads: &str) -> Command {
    let mut c = bin();
    c.args(["train", "--preset", preset, "--data"])
        .arg(data)
        .arg("--out")
        .arg(out)
        .args([
            "--device",
            "cpu",
            "--threads",
            threads,
            "--workers",
            "2",
            "--quiet",
        ]);
    c
}

/// The motion benchmark, bounded for CI: 9 classes that differ only by motion. The online TSM
/// must learn them; TSN, which averages single frames, must stay near chance (1/9).
#[test]
fn motion_benchmark_bounded() {
    // The set of scripts/make-model.sh and scripts/motion-benchmark.sh (seed 1).
    let data = synth("motion", 60, 32, 64, 1);
    let work = tempfile::tempdir().unwrap();
    let mut results = Vec::new();
    for (preset, epochs) in [("tsm_online_tiny", 40usize), ("tsn_tiny", 6)] {
        let out = work.path().join(preset);
        let started = Instant::now();
        // 2 threads, as the published run (the trajectory depends on the float reductions).
        let outcome = last_json(&run_ok(train_cmd_threads(&data, &out, preset, "2").args([
            "--epochs",
            &epochs.to_string(),
            "--eval-every",
            "10",
            "--seed",
            "1",
        ])));
        let seconds = started.elapsed().as_secs_f64();
        let eval = last_json(&run_ok(
            bin()
                .args(["eval", "--model"])
                .arg(out.join("checkpoint.safetensors"))
                .arg("--data")
                .arg(&data)
                .args(["--split", "1", "--device", "cpu", "--quiet", "--online"]),
        ));
        eprintln!("{preset}: {seconds:.1} s, {outcome}\n  eval {eval}");
        for file in [
            "best.safetensors",
            "checkpoint.safetensors",
            "config.json",
            "metrics.jsonl",
            "metrics.csv",
            "curves.png",
            "confusion.png",
        ] {
            assert!(out.join(file).is_file(), "{preset}: no {file}");
        }
        let records = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
        assert_eq!(records.lines().count(), epochs);
        results.push((preset, eval));
    }
    let (_, tsm) = &results[0];
    let (_, tsn) = &results[1];
    let top1 = |v: &Value| v["top1"].as_f64().unwrap();
    // How far 40 epochs from scratch get depends on the CPU's float rounding (the trajectory is
    // chaotic): 0.987 test top-1 on an AMD EPYC, 0.22 (train 0.46) on an Intel Xeon, same seed.
    // Bounded here: the TSM fits its training clips well above chance (1/9) on every machine
    // measured; the shipped model (below) carries the accuracy claim.
    let train_top1 = |preset: &str| {
        let text = std::fs::read_to_string(work.path().join(preset).join("metrics.jsonl")).unwrap();
        let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        last["train_top1"].as_f64().unwrap()
    };
    let fit = train_top1("tsm_online_tiny");
    assert!(
        fit >= 0.3,
        "online TSM train top-1 {fit} < 0.3 after 40 epochs"
    );
    assert!(
        top1(tsn) <= 0.35,
        "TSN top-1 {} is far above chance",
        top1(tsn)
    );
    // The shipped model (scripts/make-model.sh: this preset, this set, seed 1) on the test list.
    let shipped = last_json(&run_ok(
        bin()
            .args(["eval", "--model"])
            .arg(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("assets/models/motion-tsm-r18-tiny.safetensors"),
            )
            .arg("--data")
            .arg(&data)
            .args([
                "--split", "1", "--device", "cpu", "--quiet", "--online", "--out",
            ])
            .arg(work.path().join("shipped-eval")),
    ));
    eprintln!("shipped model: {shipped}");
    assert!(
        top1(&shipped) >= 0.9,
        "shipped model top-1 {} < 0.9",
        top1(&shipped)
    );
    assert!(top1(&shipped) - top1(tsn) >= 0.55);
    let diff = shipped["online"]["max_abs_diff_vs_offline"]
        .as_f64()
        .unwrap();
    assert!(
        diff <= 1e-4,
        "shipped model: online logits differ from offline by {diff}"
    );
    // The trained uni-directional model, frame by frame through the recogniser, classifies the
    // same clips as offline evaluation does.
    let online = &tsm["online"];
    let diff = online["max_abs_diff_vs_offline"].as_f64().unwrap();
    assert!(diff <= 1e-4, "online logits differ from offline by {diff}");
    let online_top1 = online["clip"]["top1"].as_f64().unwrap();
    assert!(
        (online_top1 - top1(tsm)).abs() <= 0.01,
        "online {online_top1} vs offline {}",
        top1(tsm)
    );
}

/// Checkpoint files compared tensor by tensor.
fn same_tensors(a: &Path, b: &Path) {
    let (fa, fb) = (TensorFile::read(a).unwrap(), TensorFile::read(b).unwrap());
    assert_eq!(
        fa.tensors.keys().collect::<Vec<_>>(),
        fb.tensors.keys().collect::<Vec<_>>()
    );
    for (k, ta) in &fa.tensors {
        let diff = (ta - &fb.tensors[k]).abs().max().double_value(&[]);
        assert_eq!(diff, 0.0, "{k} differs by {diff}");
    }
}

fn figures(metrics: &Path) -> Vec<(f64, f64, Option<f64>)> {
    std::fs::read_to_string(metrics)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["train_loss"].as_f64().unwrap(),
                v["train_top1"].as_f64().unwrap(),
                v["val_top1"].as_f64(),
            )
        })
        .collect()
}

/// Starts `cmd` and SIGKILLs it once `ckpt` records a step inside an epoch after the first;
/// false when the run ended before that was seen (it is then complete, not killed).
fn killed_mid_run(cmd: &mut Command, ckpt: &Path) -> bool {
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        assert!(
            Instant::now() < deadline,
            "no checkpoint after the first epoch"
        );
        // The header only: cheap enough to look often.
        if let Ok(meta) = TensorFile::read_metadata(ckpt)
            && let Some(state) = meta.get("shiftlive.train")
        {
            let state: Value = serde_json::from_str(state).unwrap();
            if state["epoch"].as_u64().unwrap_or(0) >= 1 && state["step"].as_u64().unwrap_or(0) > 0
            {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                return true;
            }
        }
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Killed with SIGKILL mid-epoch, training resumes from the last checkpoint and ends with the
/// same weights and metrics as a run that was never interrupted.
#[test]
fn resume_after_sigkill_is_identical() {
    let data = small_set();
    let work = tempfile::tempdir().unwrap();
    let args = [
        "--epochs",
        "3",
        "--segments",
        "4",
        "--batch-size",
        "4",
        "--checkpoint-every",
        "3",
        "--seed",
        "11",
    ];
    let whole = work.path().join("whole");
    run_ok(train_cmd(&data, &whole, "tsm_online_tiny").args(args));

    // Kill a run once a mid-epoch checkpoint after the first epoch exists. An epoch of this set
    // is a few steps, so on a loaded machine the run can end between two looks: then again, in
    // a fresh folder (at most 4 runs).
    let mut broken = None;
    for attempt in 0..4 {
        let out = work.path().join(format!("broken{attempt}"));
        if killed_mid_run(
            train_cmd(&data, &out, "tsm_online_tiny")
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
            &out.join("checkpoint.safetensors"),
        ) {
            broken = Some(out);
            break;
        }
    }
    let broken = broken.expect("4 training runs ended before a mid-epoch checkpoint was seen");
    let ckpt = broken.join("checkpoint.safetensors");
    // Whatever moment the kill hit, the checkpoint on disk is whole.
    let file = TensorFile::read(&ckpt).expect("checkpoint readable after SIGKILL");
    assert!(file.metadata.contains_key("shiftlive.train"));

    run_ok(train_cmd(&data, &broken, "tsm_online_tiny").arg("--resume"));
    assert_eq!(
        figures(&whole.join("metrics.jsonl")),
        figures(&broken.join("metrics.jsonl"))
    );
    same_tensors(
        &whole.join("checkpoint.safetensors"),
        &broken.join("checkpoint.safetensors"),
    );
    same_tensors(
        &whole.join("best.safetensors"),
        &broken.join("best.safetensors"),
    );
}

/// Three and ten crops over two clips are 6 and 20 views per video; the checkpoint of a run
/// loads for evaluation with the optimiser state beside the weights.
#[test]
fn eval_crops_and_clips() {
    let data = small_set();
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("run");
    run_ok(train_cmd(&data, &out, "tsm_online_tiny").args(["--epochs", "1", "--segments", "4"]));
    // Both model files record the recipe's flip rule and its label map.
    for file in ["checkpoint.safetensors", "best.safetensors"] {
        let meta = TensorFile::read_metadata(&out.join(file)).unwrap();
        let flip: Value = serde_json::from_str(&meta["flip"]).unwrap();
        assert_eq!(flip["rule"], "mirror", "{file}: {flip}");
        assert_eq!(flip["map"], serde_json::json!([1, 0, 2, 3, 5, 4, 6, 7, 8]));
    }
    // The run's confusion of its best model, with class names; the validation loss per epoch.
    let csv = std::fs::read_to_string(out.join("confusion.csv")).unwrap();
    assert_eq!(csv.lines().count(), 10, "{csv}");
    assert!(
        csv.starts_with("true \\ predicted,MoveLeft,MoveRight,"),
        "{csv}"
    );
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("confusion.json")).unwrap())
            .unwrap();
    assert_eq!(json["per_class"].as_array().unwrap().len(), 9);
    assert_eq!(json["what"], "best model");
    let metrics = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert!(
        metrics.starts_with("epoch,lr,train_loss,train_top1,val_loss,"),
        "{metrics}"
    );
    // `eval` of a model in a run folder writes its files to RUN/eval/ by default: one line per
    // test video, its top-1 agreeing with the printed score.
    let eval = last_json(&run_ok(
        bin()
            .args(["eval", "--model"])
            .arg(out.join("best.safetensors"))
            .arg("--data")
            .arg(&data)
            .args(["--split", "1", "--quiet"]),
    ));
    let lines = std::fs::read_to_string(out.join("eval/best-split_1-predictions.csv")).unwrap();
    let rows: Vec<&str> = lines.lines().skip(1).collect();
    assert_eq!(rows.len() as u64, eval["videos"].as_u64().unwrap());
    let right = rows
        .iter()
        .filter(|r| r.split(',').nth(3) == Some("1"))
        .count();
    assert!((right as f64 / rows.len() as f64 - eval["top1"].as_f64().unwrap()).abs() < 1e-9);
    let jsonl = std::fs::read_to_string(out.join("eval/best-split_1-predictions.jsonl")).unwrap();
    let first: Value = serde_json::from_str(jsonl.lines().next().unwrap()).unwrap();
    assert_eq!(first["top"].as_array().unwrap().len(), 5);
    for ext in ["csv", "json", "png"] {
        assert!(
            out.join(format!("eval/best-split_1-confusion.{ext}"))
                .is_file()
        );
    }
    for (crop, views) in [("centre", 2), ("three", 6), ("ten", 20)] {
        let eval = last_json(&run_ok(
            bin()
                .args(["eval", "--model"])
                .arg(out.join("checkpoint.safetensors"))
                .arg("--data")
                .arg(&data)
                .args(["--split", "1", "--clips", "2", "--crop", crop, "--quiet"]),
        ));
        assert_eq!(eval["views"].as_u64(), Some(views), "{crop}: {eval}");
        let top1 = eval["top1"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&top1));
        assert!(eval["top5"].as_f64().unwrap() >= top1);
    }
    // Three splits, one model each (here the same file three times), and their mean.
    let model = out.join("best.safetensors");
    let text = run_ok(
        bin()
            .args(["eval", "--split", "1,2,3", "--quiet", "--data"])
            .arg(&data)
            .arg("--model")
            .arg(&model)
            .arg("--model")
            .arg(&model)
            .arg("--model")
            .arg(&model),
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&text.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    let mean = lines[..3]
        .iter()
        .map(|l| l["top1"].as_f64().unwrap())
        .sum::<f64>()
        / 3.0;
    assert!((lines[3]["mean"]["top1"].as_f64().unwrap() - mean).abs() < 1e-12);
}

fn fails_with(cmd: &mut Command, needles: &[&str]) -> String {
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "{cmd:?} succeeded");
    assert!(!err.contains("panicked"), "{err}");
    for n in needles {
        assert!(err.contains(n), "error lacks '{n}':\n{err}");
    }
    err
}

#[test]
fn non_finite_loss_stops_naming_the_step() {
    let data = small_set();
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("nan");
    let err = fails_with(
        train_cmd(&data, &out, "tsm_online_tiny").args([
            "--epochs",
            "2",
            "--segments",
            "4",
            "--lr",
            "1e12",
            "--clip-grad",
            "0",
        ]),
        &["loss is", "step", "batch of"],
    );
    eprintln!("{err}");
}

#[test]
fn bad_data_is_named() {
    let data = small_set();
    let work = tempfile::tempdir().unwrap();
    // No split files.
    let empty = work.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    fails_with(
        &mut train_cmd(&empty, &work.path().join("o1"), "tsm_online_tiny"),
        &["ucfTrainTestlist", "not found"],
    );
    // A training list naming a class that classInd does not have.
    let copy = work.path().join("copy");
    std::fs::create_dir_all(copy.join("ucfTrainTestlist")).unwrap();
    for f in ["classInd.txt", "testlist01.txt"] {
        std::fs::copy(
            data.join("ucfTrainTestlist").join(f),
            copy.join("ucfTrainTestlist").join(f),
        )
        .unwrap();
    }
    std::fs::write(
        copy.join("ucfTrainTestlist/trainlist01.txt"),
        "Juggling/v_Juggling_g01_c01.avi 1\n",
    )
    .unwrap();
    fails_with(
        train_cmd(&copy, &work.path().join("o2"), "tsm_online_tiny")
            .arg("--splits")
            .arg(copy.join("ucfTrainTestlist")),
        &["trainlist01.txt", "Juggling"],
    );
    // A checkpoint that is not one.
    let bogus = work.path().join("bogus.safetensors");
    std::fs::write(&bogus, b"not a checkpoint").unwrap();
    fails_with(
        bin()
            .args(["eval", "--model"])
            .arg(&bogus)
            .arg("--data")
            .arg(&data),
        &["bogus.safetensors"],
    );
    // Nothing was written for the failed runs but their (empty) output folders.
    assert!(!work.path().join("o1/checkpoint.safetensors").exists());
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// An unreadable training video is skipped, counted and listed in skipped.txt; with --strict it
/// stops the run with its name.
#[test]
fn unreadable_videos_are_skipped_and_listed_or_fatal_when_strict() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    copy_dir(&small_set(), &data);
    let list = std::fs::read_to_string(data.join("ucfTrainTestlist/trainlist01.txt")).unwrap();
    let victim = list
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    std::fs::write(data.join(&victim), b"RIFF\0\0\0\0AVI garbage").unwrap();

    let out = work.path().join("lenient");
    let outcome = last_json(&run_ok(train_cmd(&data, &out, "tsm_online_tiny").args([
        "--epochs",
        "1",
        "--segments",
        "4",
    ])));
    assert_eq!(
        outcome["final_record"]["skipped_videos"].as_u64(),
        Some(1),
        "{outcome}"
    );
    let skipped = std::fs::read_to_string(out.join("skipped.txt")).unwrap();
    assert_eq!(skipped.lines().count(), 1);
    assert!(skipped.contains(&victim), "{skipped}");

    fails_with(
        train_cmd(&data, &work.path().join("strict"), "tsm_online_tiny").args([
            "--epochs",
            "1",
            "--segments",
            "4",
            "--strict",
        ]),
        &[victim.rsplit('/').next().unwrap()],
    );
}

/// The shipped default model (64 px, nine motion classes, dense clips of 8 frames 4 apart).
fn default_model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/models/motion-tsm-r18-tiny.safetensors")
}

/// A fresh motion set (another seed than the default model's training set), 64 px like it.
fn predict_set() -> PathBuf {
    static SET: OnceLock<PathBuf> = OnceLock::new();
    SET.get_or_init(|| synth("predict", 4, 32, 64, 5)).clone()
}

/// `predict` on the test clips of split 1 classifies them as `eval` does: same top-1 over the
/// same clips, with the protocol the model carries and with explicit clips and crops; the
/// trained model's metadata carries its dense-clip protocol.
#[test]
fn predict_agrees_with_eval_on_the_same_clips() {
    let data = predict_set();
    let list = std::fs::read_to_string(data.join("ucfTrainTestlist/testlist01.txt")).unwrap();
    let videos: Vec<(String, PathBuf)> = list
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let rel = l.split_whitespace().next().unwrap();
            (rel.split('/').next().unwrap().to_string(), data.join(rel))
        })
        .collect();
    assert!(videos.len() >= 9, "{} test videos", videos.len());
    // The model's own protocol, more views, and frames 1 apart (motion 4x slower than the
    // model learnt: some videos are then misread, and both must misread the same ones).
    for extra in [
        &[][..],
        &["--clips", "2", "--crop", "three"][..],
        &["--interval", "1"][..],
    ] {
        let eval = last_json(&run_ok(
            bin()
                .args(["eval", "--model"])
                .arg(default_model())
                .arg("--data")
                .arg(&data)
                .args(["--split", "1", "--device", "cpu", "--quiet"])
                .args(extra),
        ));
        let out = run_ok(
            bin()
                .args(["predict", "--json", "--quiet", "--device", "cpu", "--model"])
                .arg(default_model())
                .args(extra)
                .args(videos.iter().map(|(_, p)| p)),
        );
        let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            lines.len(),
            videos.len() + 1,
            "a line per video and a summary"
        );
        let right = lines
            .iter()
            .zip(&videos)
            .filter(|(line, (class, path))| {
                assert_eq!(line["input"].as_str(), Some(path.to_str().unwrap()));
                let top = line["top"].as_array().unwrap();
                assert_eq!(top.len(), 5);
                let scores: Vec<f64> = top.iter().map(|t| t["score"].as_f64().unwrap()).collect();
                assert!(scores.windows(2).all(|w| w[0] >= w[1]) && scores[0] <= 1.0);
                line["label"].as_str() == Some(class.as_str())
            })
            .count();
        let top1 = right as f64 / videos.len() as f64;
        let protocol = &lines[videos.len()]["summary"]["protocol"];
        eprintln!("predict {extra:?}: top-1 {top1:.4} ({protocol}); eval {eval}");
        assert!((top1 - eval["top1"].as_f64().unwrap()).abs() < 1e-9);
        // Dense clips of 8 frames, 4 apart, from the model's metadata.
        assert_eq!(protocol["frames"].as_u64(), Some(8));
        let interval = if extra.contains(&"--interval") { 1 } else { 4 };
        assert_eq!(protocol["interval"].as_u64(), Some(interval));
        assert_eq!(eval["interval"].as_u64(), Some(interval));
        if interval == 4 {
            assert!(top1 >= 0.8, "the default model should know these motions");
        }
        let views = if extra.contains(&"three") { 6 } else { 1 };
        assert_eq!(eval["views"].as_u64(), Some(views));
    }
}

/// The default model was trained with the tiny recipe's `--flip mirror` (a flipped MoveLeft clip
/// labelled MoveRight). Ten crops (five of them mirrored) score as the centre crop once the
/// mirrored views' logits are swapped by the recorded map; without the record (the asset as it
/// is, an older checkpoint) they are averaged as before, which swaps the mirrored pairs.
#[test]
fn ten_crop_of_a_mirror_trained_model_scores_as_the_centre_crop() {
    use shiftlive::train::{FLIP_KEY, FlipRecord, FlipSpec};
    let data = synth("mirror", 12, 32, 64, 7);
    let work = tempfile::tempdir().unwrap();
    let recorded = work.path().join("recorded.safetensors");
    let mut file = TensorFile::read(&default_model()).unwrap();
    let labels: Vec<String> = serde_json::from_str(&file.metadata["labels"]).unwrap();
    let record = FlipRecord::new(FlipSpec::Mirror, &labels);
    assert_eq!(record.map, [1, 0, 2, 3, 5, 4, 6, 7, 8]);
    file.metadata.insert(FLIP_KEY.into(), record.to_json());
    file.write(&recorded).unwrap();
    let eval = |model: &Path, crop: &str| {
        let out = run_ok(
            bin()
                .args(["eval", "--model"])
                .arg(model)
                .arg("--data")
                .arg(&data)
                .args(["--split", "1", "--device", "cpu", "--quiet", "--crop", crop]),
        );
        (
            last_json(&out)["top1"].as_f64().unwrap(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (centre, _) = eval(&recorded, "centre");
    let (ten, _) = eval(&recorded, "ten");
    let (old_ten, warning) = eval(&default_model(), "ten");
    eprintln!("centre {centre:.4}, ten {ten:.4}, ten without the record {old_ten:.4}");
    assert!(centre >= 0.9, "centre crop top-1 {centre}");
    // 36 test videos: one video is 0.028; the views may move a video or two.
    assert!((ten - centre).abs() <= 0.06, "ten {ten} vs centre {centre}");
    assert!(
        warning.contains("does not record its training flip rule"),
        "{warning}"
    );
    assert!(
        old_ten < ten - 0.1,
        "without the map, ten crops {old_ten} vs {ten}"
    );
}

/// Ten crops with the label map are mirror-equivariant for any network: a video's mirror image
/// scores as the video with its logits swapped by the map (the mirrored half of one is the plain
/// half of the other, pixel for pixel at this frame size). Without the map they are not.
#[cfg(feature = "ui")]
#[test]
fn ten_crop_logits_of_a_mirror_image_are_the_swapped_logits() {
    use shiftlive::data::TestCrop;
    use shiftlive::model::{ActionNet, ModelConfig};
    use shiftlive::train::{EvalOptions, TestProtocol, mirror_label_map, predict};
    let work = tempfile::tempdir().unwrap();
    // 76 x 73: ten crops resize the shorter side to 73 (64 x 256 / 224), so the frames are
    // cropped unscaled, and the corner crops lie symmetrically (76 - 64 = 12 = 4 x 3).
    let (w, h) = (76u32, 73u32);
    let (plain, mirror) = (work.path().join("plain"), work.path().join("mirror"));
    for f in 0..32u32 {
        let frame = image::RgbImage::from_fn(w, h, |x, y| {
            let v = (x * 7 + y * 13 + f * 29) ^ (x * y + f);
            image::Rgb([(v % 251) as u8, (v * 3 % 241) as u8, (x * 3 + f * 5) as u8])
        });
        let mirrored = image::imageops::flip_horizontal(&frame);
        for (dir, img) in [(&plain, &frame), (&mirror, &mirrored)] {
            std::fs::create_dir_all(dir).unwrap();
            img.save(dir.join(format!("img_{:05}.png", f + 1))).unwrap();
        }
    }
    let classes: Vec<String> = [
        "MoveLeft",
        "MoveRight",
        "RotateClockwise",
        "RotateAnticlockwise",
        "Still",
    ]
    .map(String::from)
    .to_vec();
    let map = mirror_label_map(&classes);
    let mut config = ModelConfig::from_preset("tsm_online_tiny").unwrap();
    config.num_classes = classes.len() as i64;
    tch::manual_seed(3);
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let net = ActionNet::new(&vs.root(), &config).unwrap();
    let mut protocol = TestProtocol::default_for(&config);
    protocol.crop = TestCrop::Ten;
    let logits = |mirror_map: Option<Vec<usize>>| {
        let options = EvalOptions {
            mirror_map,
            ..protocol.eval_options(2, 1)
        };
        let out = predict(
            &net,
            &[plain.clone(), mirror.clone()],
            &options,
            tch::Device::Cpu,
        )
        .unwrap();
        let get = |i: usize| out[i].logits.clone().unwrap();
        (get(0), get(1))
    };
    let gap = |(a, b): (Vec<f32>, Vec<f32>)| {
        map.iter()
            .enumerate()
            .map(|(k, &m)| (a[k] - b[m]).abs())
            .fold(0f32, f32::max)
    };
    let (a, b) = logits(Some(map.clone()));
    let spread = a.iter().fold(0f32, |m, v| m.max(v.abs()));
    let swapped = gap((a, b));
    let unswapped = gap(logits(None));
    eprintln!(
        "max |logit| {spread:.4}; max diff with the map {swapped:.2e}, without {unswapped:.2e}"
    );
    // Relative to the logits' size (a random network's are small).
    assert!(
        swapped <= 1e-4 * spread,
        "swapped views differ by {swapped}"
    );
    assert!(unswapped >= 0.1 * spread, "without the map: {unswapped}");
}

/// A mix of good and broken inputs: a result for each good one, an error naming each broken
/// one, and a non-zero exit.
#[test]
fn predict_reports_each_broken_input_and_fails() {
    let data = predict_set();
    let work = tempfile::tempdir().unwrap();
    let good = std::fs::read_dir(data.join("MoveLeft"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "avi"))
        .unwrap();
    let corrupt = work.path().join("corrupt.avi");
    std::fs::write(&corrupt, b"RIFF\x00\x00\x00\x00AVI not really a video").unwrap();
    let missing = work.path().join("missing.avi");
    let frames = work.path().join("frames");
    std::fs::create_dir(&frames).unwrap();
    let out = bin()
        .args(["predict", "--json", "--quiet", "--device", "cpu", "--model"])
        .arg(default_model())
        .arg(&corrupt)
        .arg(&good)
        .arg(&missing)
        .arg(&frames)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[1]["label"].as_str(), Some("MoveLeft"), "{}", lines[1]);
    for (i, path) in [(0, &corrupt), (2, &missing), (3, &frames)] {
        assert!(lines[i]["error"].is_string(), "{}", lines[i]);
        assert!(err.contains(&path.display().to_string()), "{err}");
    }
    assert!(err.contains("3 of 4 inputs"), "{err}");
    assert_eq!(lines[4]["summary"]["failed"].as_u64(), Some(3));
}

/// Distillation runs from a teacher checkpoint (the default model) and refuses one that does not
/// fit the student, naming the teacher.
#[test]
fn distillation_trains_from_a_teacher_and_checks_it() {
    let data = small_set();
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("student");
    let outcome = last_json(&run_ok(
        train_cmd(&data, &out, "tsm_online_tiny")
            .args(["--epochs", "1", "--segments", "4", "--teacher"])
            .arg(default_model())
            .args(["--distill-temperature", "2", "--distill-weight", "0.7"]),
    ));
    eprintln!("{outcome}");
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["distill"]["temperature"].as_f64(), Some(2.0));
    assert_eq!(config["distill"]["weight"].as_f64(), Some(0.7));
    let loss = figures(&out.join("metrics.jsonl"))[0].0;
    assert!(loss.is_finite() && loss > 0.0);
    let err = fails_with(
        train_cmd(&data, &work.path().join("bad"), "tsm_online_tiny")
            .args(["--epochs", "1", "--input-size", "32", "--teacher"])
            .arg(default_model()),
        &["motion-tsm-r18-tiny.safetensors", "64 px", "32 px"],
    );
    assert!(
        !work.path().join("bad/checkpoint.safetensors").exists(),
        "{err}"
    );
}

/// `train --out OUT --resume` alone continues the run as OUT/config.json says; a finished run
/// says so. A new run into a folder that holds one is refused, as is a second training into a
/// locked folder; a lock whose process is dead is taken over. Resume refuses changing flags.
#[test]
fn resume_only_form_refusals_and_lock() {
    let data = small_set();
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("run");
    let args = ["--epochs", "1", "--segments", "4", "--batch-size", "4"];
    run_ok(train_cmd(&data, &out, "tsm_online_tiny").args(args));
    fails_with(
        train_cmd(&data, &out, "tsm_online_tiny").args(args),
        &["holds a run", "--resume", "--force"],
    );
    let resume = || {
        let mut c = bin();
        c.args(["train", "--out"]).arg(&out).args([
            "--resume",
            "--device",
            "cpu",
            "--threads",
            "2",
            "--quiet",
        ]);
        c
    };
    let lock = out.join(".lock");
    std::fs::write(&lock, format!("{}\n", std::process::id())).unwrap();
    fails_with(&mut resume(), &["in use by another training", "pid"]);
    // A pid that has exited: the lock is stale.
    let mut gone = Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    std::fs::write(&lock, format!("{pid}\n")).unwrap();
    let done = run_ok(resume().env("SHIFTLIVE_LOG", "warn"));
    let err = String::from_utf8_lossy(&done.stderr);
    assert!(err.contains("taking over the lock"), "{err}");
    assert!(err.contains("is finished (1 of 1 epochs)"), "{err}");
    assert!(!lock.exists(), "the lock outlived the run");
    fails_with(resume().args(["--lr", "0.5"]), &["--lr would change it"]);
    // --force replaces the run.
    run_ok(
        train_cmd(&data, &out, "tsm_online_tiny")
            .args(args)
            .arg("--force"),
    );
    assert_eq!(figures(&out.join("metrics.jsonl")).len(), 1);
}

/// Interrupted by SIGINT or SIGTERM mid-run, training checkpoints at the step, names the
/// resume command and exits non-zero; resuming ends as the uninterrupted run does.
#[test]
fn resume_after_sigint_and_sigterm_is_identical() {
    let data = small_set();
    let work = tempfile::tempdir().unwrap();
    let args = [
        "--epochs",
        "2",
        "--segments",
        "4",
        "--batch-size",
        "4",
        "--seed",
        "5",
    ];
    let whole = work.path().join("whole");
    run_ok(train_cmd(&data, &whole, "tsm_online_tiny").args(args));
    for signal in ["INT", "TERM"] {
        let broken = work.path().join(signal);
        let child = train_cmd(&data, &broken, "tsm_online_tiny")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Signal it once the first epoch's checkpoint exists.
        let ckpt = broken.join("checkpoint.safetensors");
        let deadline = Instant::now() + Duration::from_secs(300);
        while !TensorFile::read(&ckpt).is_ok_and(|f| f.metadata.contains_key("shiftlive.train")) {
            assert!(Instant::now() < deadline, "no checkpoint after epoch 1");
            std::thread::sleep(Duration::from_millis(20));
        }
        let pid = child.id().to_string();
        run_ok(Command::new("kill").args([&format!("-{signal}"), &pid]));
        let output = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&output.stderr);
        if output.status.success() {
            // The run ended before the signal reached it: nothing to resume.
            eprintln!("SIG{signal} came after the end");
        } else {
            assert!(err.contains("interrupted at epoch"), "{err}");
            assert!(err.contains("--resume"), "{err}");
            run_ok(train_cmd(&data, &broken, "tsm_online_tiny").arg("--resume"));
        }
        assert!(!broken.join(".lock").exists());
        assert_eq!(
            figures(&whole.join("metrics.jsonl")),
            figures(&broken.join("metrics.jsonl"))
        );
        same_tensors(
            &whole.join("checkpoint.safetensors"),
            &broken.join("checkpoint.safetensors"),
        );
    }
}
