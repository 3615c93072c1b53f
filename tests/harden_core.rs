//! Hardening of the core commands against hostile or mistaken inputs: each class of bad input
//! (generated here, never committed) is refused with one clear stderr line naming the thing, a
//! non-zero exit, no panic, and nothing written or replaced.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use shiftlive::model::TensorFile;
use shiftlive::model::checkpoint::CONFIG_KEY;
use shiftlive::model::import::{ImportFormat, ImportOptions, import};

fn golden(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/import")
        .join(name)
}

fn shiftlive(args: &[&str], paths: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shiftlive"))
        .args(args)
        .args(paths)
        .env("SHIFTLIVE_LOG", "error")
        .output()
        .expect("run shiftlive")
}

/// Asserts a refusal: exit code 1, one stderr line holding every `needle`, no panic.
fn refused(out: &Output, needles: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line wanted: {stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "'{needle}' not in: {stderr}");
    }
    stderr
}

/// A small shiftlive checkpoint (mmaction2's TSN ResNet-18 imported at 64 px) in `dir`.
fn checkpoint(dir: &Path) -> PathBuf {
    let out = dir.join("tsn.safetensors");
    let options = ImportOptions {
        input_size: Some(64),
        ..Default::default()
    };
    import(
        ImportFormat::Mmaction2,
        &golden("mmaction2_tsn_r18.pth"),
        &out,
        &options,
    )
    .expect("import");
    out
}

#[test]
fn import_refuses_to_replace_its_input_or_a_non_regular_output() {
    let dir = tempfile::tempdir().expect("temp dir");
    let x = dir.path().join("x.pth");
    std::fs::copy(golden("mmaction2_tsn_r18.pth"), &x).expect("copy");
    let before = std::fs::read(&x).expect("read");
    let out = shiftlive(&["import", "--format", "mmaction2"], &[&x, &x]);
    refused(&out, &["x.pth", "input file"]);
    assert_eq!(std::fs::read(&x).expect("read"), before, "input changed");

    // The labels file is an input too.
    let labels = dir.path().join("labels.txt");
    std::fs::write(&labels, "a\nb\n").expect("labels");
    let out = shiftlive(
        &["import", "--format", "mmaction2", "--labels"],
        &[&labels, &x, &labels],
    );
    refused(&out, &["labels.txt", "input file"]);
    assert_eq!(std::fs::read(&labels).expect("read"), b"a\nb\n");

    // A symlink, a fifo and a device stay what they are.
    let real = dir.path().join("real.safetensors");
    std::fs::write(&real, b"keep").expect("write");
    let link = dir.path().join("link.safetensors");
    std::os::unix::fs::symlink(&real, &link).expect("symlink");
    let out = shiftlive(&["import", "--format", "mmaction2"], &[&x, &link]);
    refused(&out, &["link.safetensors", "symbolic link"]);
    assert!(
        link.symlink_metadata()
            .expect("meta")
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read(&real).expect("read"), b"keep");
    let fifo = dir.path().join("fifo.safetensors");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(made.success());
    let out = shiftlive(&["import", "--format", "mmaction2"], &[&x, &fifo]);
    refused(&out, &["fifo.safetensors", "fifo"]);
    let out = shiftlive(
        &["import", "--format", "mmaction2"],
        &[&x, Path::new("/dev/null")],
    );
    refused(&out, &["/dev/null", "device"]);
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .expect("read dir")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left.len(), 5, "files left: {left:?}");
}

#[test]
fn a_checkpoint_with_a_nan_weight_is_refused_naming_the_tensor() {
    let dir = tempfile::tempdir().expect("temp dir");
    let good = checkpoint(dir.path());
    let mut file = TensorFile::read(&good).expect("read");
    let name = "layer1.0.conv1.weight";
    let weight = file.tensors.get_mut(name).expect("conv weight");
    let _ = weight.view(-1).get(3).fill_(f64::NAN);
    let bad = dir.path().join("nan.safetensors");
    file.write(&bad).expect("write");
    let missing = dir.path().join("video.avi");
    let out = shiftlive(&["predict", "--model"], &[&bad, &missing]);
    refused(&out, &["nan.safetensors", name, "non-finite"]);
    let out = shiftlive(&["profile", "--model"], &[&bad]);
    refused(&out, &[name, "non-finite"]);
}

#[test]
fn a_model_that_is_a_device_fifo_or_huge_header_is_refused_at_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let video = dir.path().join("video.avi");
    let out = shiftlive(&["predict", "--model", "/dev/zero"], &[&video]);
    refused(&out, &["/dev/zero", "not a regular file"]);
    let fifo = dir.path().join("model.safetensors");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo")
            .success()
    );
    let out = shiftlive(&["profile", "--model"], &[&fifo]);
    refused(&out, &["model.safetensors", "not a regular file"]);
    let huge = dir.path().join("huge.safetensors");
    let mut bytes = (1u64 << 40).to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{}");
    std::fs::write(&huge, &bytes).expect("write");
    for command in ["predict", "profile"] {
        let mut args = vec![command, "--model"];
        let huge = huge.to_str().expect("utf-8 path");
        args.push(huge);
        let paths: &[&Path] = if command == "predict" { &[&video] } else { &[] };
        let out = shiftlive(&args, paths);
        refused(&out, &["huge.safetensors", "header of 1099511627776 bytes"]);
    }
}

#[test]
fn configs_and_flags_beyond_their_bounds_are_refused_before_allocating() {
    let dir = tempfile::tempdir().expect("temp dir");
    let good = checkpoint(dir.path());
    let video = dir.path().join("video.avi");
    for (field, value, edit) in [
        ("input_size", "64000", "\"input_size\": 64"),
        ("base_width", "100000", "\"base_width\": 16"),
    ] {
        let mut file = TensorFile::read(&good).expect("read");
        let config = file.metadata.get(CONFIG_KEY).expect("config").clone();
        assert!(config.contains(edit), "{config}");
        let config = config.replace(edit, &format!("\"{field}\": {value}"));
        file.metadata.insert(CONFIG_KEY.to_string(), config);
        let bad = dir.path().join(format!("{field}.safetensors"));
        file.write(&bad).expect("write");
        let out = shiftlive(&["predict", "--model"], &[&bad, &video]);
        refused(&out, &[field, value, "allowed maximum"]);
    }
    let out = shiftlive(&["profile", "--classes", "4000000000"], &[]);
    refused(&out, &["num_classes 4000000000", "allowed maximum"]);
    let out = shiftlive(&["profile", "--size", "64000"], &[]);
    refused(&out, &["input_size 64000", "allowed maximum"]);
    let out = shiftlive(&["profile", "--frames", "1000000"], &[]);
    refused(&out, &["--frames", "1000000"]);
    let out = shiftlive(
        &["predict", "--clips", "100000", "--model"],
        &[&good, &video],
    );
    refused(&out, &["--clips", "100000"]);
    let out = shiftlive(
        &["predict", "--segments", "100000", "--model"],
        &[&good, &video],
    );
    refused(&out, &["--segments", "100000"]);
}

/// A legacy `torch.save` file (three small pickles, then the object) whose object is 200,000
/// nested lists: 400 KB that would overflow the stack of a recursive reader.
#[test]
fn a_deeply_nested_pickle_is_refused_without_overflowing_the_stack() {
    const DEPTH: usize = 200_000;
    let dir = tempfile::tempdir().expect("temp dir");
    let small = b"\x80\x02K\x01.";
    let mut bytes = Vec::new();
    for _ in 0..3 {
        bytes.extend_from_slice(small);
    }
    bytes.extend_from_slice(b"\x80\x02");
    bytes.extend(std::iter::repeat_n(b']', DEPTH));
    bytes.extend(std::iter::repeat_n(b'a', DEPTH - 1));
    bytes.push(b'.');
    let deep = dir.path().join("deep.pth");
    std::fs::write(&deep, &bytes).expect("write");
    let output = dir.path().join("deep.safetensors");
    let out = shiftlive(&["import", "--format", "torchvision"], &[&deep, &output]);
    refused(&out, &["deep.pth", "nested"]);
    assert!(!output.exists());
    // Deepened without growing the stack: each DUP and APPEND nests the list once more.
    let mut bytes = small.repeat(3);
    bytes.extend_from_slice(b"\x80\x02]");
    for _ in 0..DEPTH {
        bytes.extend_from_slice(b"2a");
    }
    bytes.push(b'.');
    std::fs::write(&deep, &bytes).expect("write");
    let out = shiftlive(&["import", "--format", "torchvision"], &[&deep, &output]);
    refused(&out, &["deep.pth", "nested"]);
    assert!(!output.exists());
}

#[test]
fn predict_names_a_missing_video_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let good = checkpoint(dir.path());
    let video = dir.path().join("x.avi");
    let out = shiftlive(&["predict", "--quiet", "--model"], &[&good, &video]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let first = stderr.lines().next().unwrap_or_default();
    assert_eq!(first.matches("x.avi").count(), 1, "{stderr}");
}
