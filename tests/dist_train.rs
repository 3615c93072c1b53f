//! `shiftlive train` as a data-parallel job of two processes on loopback (Gloo), launched with
//! torchrun's environment: only rank 0 writes; a lost rank, a wrong port, a half-set
//! environment, a duplicate rank and ranks that disagree all end in one clear error, never a hang.
#![cfg(feature = "capture")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use shiftlive::model::TensorFile;

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// One job at a time: the machine has two cores, and the timing checks need them.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The synthetic motion set (9 classes, 36 training and 18 validation videos), made once.
fn data() -> PathBuf {
    static MADE: Mutex<()> = Mutex::new(());
    let _made = MADE.lock().unwrap_or_else(|e| e.into_inner());
    static ROOT: OnceLock<tempfile::TempDir> = OnceLock::new();
    let root = ROOT.get_or_init(|| tempfile::tempdir().unwrap());
    let dir = root.path().join("set");
    if !dir.join("ucfTrainTestlist").exists() {
        let out = Command::new(env!("CARGO_BIN_EXE_shiftlive"))
            .args([
                "synth",
                "--per-class",
                "6",
                "--frames",
                "16",
                "--size",
                "32",
                "--seed",
                "3",
                "--out",
            ])
            .arg(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    dir
}

/// `shiftlive train` as `rank` of `world` (store on `port`), writing into `out`.
fn rank(rank: &str, world: usize, port: u16, out: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_shiftlive"));
    c.args(["train", "--preset", "tsm_r18_tiny", "--data"])
        .arg(data())
        .arg("--out")
        .arg(out)
        .args([
            "--device",
            "cpu",
            "--threads",
            "1",
            "--workers",
            "1",
            "--quiet",
        ])
        .args(["--batch-size", "4"])
        .args(extra)
        .env("RUST_LOG", "warn")
        .env("RANK", rank)
        .env("WORLD_SIZE", world.to_string())
        .env("LOCAL_RANK", rank)
        .env("MASTER_ADDR", "127.0.0.1")
        .env("MASTER_PORT", port.to_string())
        .env("SHIFTLIVE_DIST_TIMEOUT", "15")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Waits for `child` (at most `limit` after `started`): its exit success, its stderr and the time
/// since `started` when it ended.
fn finish(child: Child, started: Instant, limit: Duration) -> (bool, String, Duration) {
    let mut child = child;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            let text = String::from_utf8_lossy(&out.stderr).into_owned();
            return (status.success(), text, started.elapsed());
        }
        if started.elapsed() > limit {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "still running after {limit:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn files(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn two_ranks_train_and_only_rank_0_writes() {
    let _serial = serial();
    let t0 = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let (out0, out1) = (dir.path().join("rank0"), dir.path().join("rank1"));
    let port = free_port();
    // With synchronised BatchNorm: the flag's way through the trainer (its numbers are checked
    // in tests/dist.rs).
    let args = ["--epochs", "2", "--sync-bn"];
    let r0 = rank("0", 2, port, &out0, &args).spawn().unwrap();
    let r1 = rank("1", 2, port, &out1, &args).spawn().unwrap();
    let limit = Duration::from_secs(240);
    let ((ok0, e0, _), (ok1, e1, _)) = (finish(r0, t0, limit), finish(r1, t0, limit));
    assert!(ok0 && ok1, "rank 0: {e0}\nrank 1: {e1}");
    assert_eq!(files(&out1), Vec::<String>::new(), "rank 1 wrote files");
    let written = files(&out0);
    for f in [
        "best.safetensors",
        "checkpoint.safetensors",
        "config.json",
        "metrics.jsonl",
    ] {
        assert!(written.contains(&f.to_string()), "{f} missing: {written:?}");
    }
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out0.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["sync_bn"], true, "{config}");
    // Rank 0's records are the job's: both ranks' 16 clips a step count, all 18 videos validated.
    let metrics = std::fs::read_to_string(out0.join("metrics.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(metrics.lines().last().unwrap()).unwrap();
    assert_eq!(last["epoch"], 2);
    let top1 = last["val_top1"].as_f64().unwrap();
    assert!(
        (top1 * 18.0 - (top1 * 18.0).round()).abs() < 1e-9,
        "val top-1 {top1} is not k/18"
    );
    let train_top1 = last["train_top1"].as_f64().unwrap();
    assert!(
        (train_top1 * 32.0 - (train_top1 * 32.0).round()).abs() < 1e-9,
        "train top-1 {train_top1} is not k/32"
    );
}

#[test]
fn a_killed_rank_stops_the_other_naming_it_and_the_checkpoint_survives() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let port = free_port();
    let r0 = rank("0", 2, port, &out, &["--epochs", "100"])
        .spawn()
        .unwrap();
    let mut r1 = rank("1", 2, port, &out, &["--epochs", "100"])
        .spawn()
        .unwrap();
    let ckpt = out.join("checkpoint.safetensors");
    let started = Instant::now();
    while !ckpt.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "no checkpoint after 180 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(700)); // into the next epoch
    r1.kill().unwrap();
    r1.wait().unwrap();
    let killed = Instant::now();
    // Within the 15 s timeout (a lost peer is seen at once), plus start-up slack.
    let (ok, text, took) = finish(r0, killed, Duration::from_secs(40));
    assert!(!ok, "rank 0 succeeded without rank 1");
    assert!(text.contains("rank 1 is gone"), "{text}");
    assert!(took < Duration::from_secs(20), "took {took:?}");
    let file = TensorFile::read(&ckpt).expect("checkpoint readable after the loss of a rank");
    assert!(file.metadata.contains_key("shiftlive.train"));
}

#[test]
fn a_wrong_port_fails_on_both_sides_after_the_timeout() {
    let _serial = serial();
    let t0 = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    // Two different free ports (both held while asked for).
    let (a, b) = (
        TcpListener::bind("127.0.0.1:0").unwrap(),
        TcpListener::bind("127.0.0.1:0").unwrap(),
    );
    let (p0, p1) = (
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    );
    drop((a, b));
    let r0 = rank("0", 2, p0, &out, &["--dist-timeout", "3"])
        .spawn()
        .unwrap();
    let r1 = rank("1", 2, p1, &out, &["--dist-timeout", "3"])
        .spawn()
        .unwrap();
    let ((ok0, e0, t0), (ok1, e1, t1)) = (
        finish(r0, t0, Duration::from_secs(60)),
        finish(r1, t0, Duration::from_secs(60)),
    );
    assert!(!ok0 && !ok1);
    assert!(e0.contains("missing rank(s) 1"), "rank 0: {e0}");
    assert!(
        e1.contains("could not reach the store at 127.0.0.1"),
        "rank 1: {e1}"
    );
    assert!(
        t0 >= Duration::from_secs(3) && t0 < Duration::from_secs(20),
        "rank 0 took {t0:?}"
    );
    assert!(
        t1 >= Duration::from_secs(3) && t1 < Duration::from_secs(20),
        "rank 1 took {t1:?}: {e1}"
    );
    assert!(!out.join("checkpoint.safetensors").exists());
}

#[test]
fn bad_launch_environments_are_refused_before_any_work() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let cases: [(&[(&str, &str)], &str); 3] = [
        (&[("RANK", "1")], "RANK set but WORLD_SIZE missing"),
        (
            &[
                ("RANK", "2"),
                ("WORLD_SIZE", "2"),
                ("MASTER_ADDR", "127.0.0.1"),
                ("MASTER_PORT", "29500"),
            ],
            "rank 2 is outside a world of 2",
        ),
        (&[("SLURM_PROCID", "0")], "SLURM_NTASKS missing"),
    ];
    for (env, want) in cases {
        let mut c = Command::new(env!("CARGO_BIN_EXE_shiftlive"));
        c.args(["train", "--preset", "tsm_r18_tiny", "--data"])
            .arg(data())
            .arg("--out")
            .arg(&out);
        c.args(["--device", "cpu", "--quiet"]);
        for (k, v) in env {
            c.env(k, v);
        }
        let started = Instant::now();
        let o = c.output().unwrap();
        let text = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{env:?} accepted");
        assert!(text.contains(want), "{env:?}: {text}");
        assert_eq!(text.trim().lines().count(), 1, "one line: {text}");
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(!out.exists(), "{env:?}: the output folder was made");
    }
}

#[test]
fn a_duplicate_rank_is_refused_on_every_rank() {
    let _serial = serial();
    let t0 = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let procs: Vec<Child> = ["0", "1", "1"]
        .iter()
        .enumerate()
        .map(|(i, r)| {
            rank(r, 3, port, &dir.path().join(format!("p{i}")), &[])
                .spawn()
                .unwrap()
        })
        .collect();
    for p in procs {
        let (ok, text, took) = finish(p, t0, Duration::from_secs(60));
        assert!(!ok);
        assert!(text.contains("2 processes claim rank 1"), "{text}");
        assert!(took < Duration::from_secs(15), "took {took:?}");
    }
    for i in 0..3 {
        assert!(
            !dir.path()
                .join(format!("p{i}/checkpoint.safetensors"))
                .exists()
        );
    }
}

#[test]
fn ranks_that_disagree_on_the_config_are_refused_naming_the_difference() {
    let _serial = serial();
    let t0 = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let port = free_port();
    let r0 = rank("0", 2, port, &out, &["--lr", "0.01"]).spawn().unwrap();
    let r1 = rank("1", 2, port, &out, &["--lr", "0.02"]).spawn().unwrap();
    for (r, p) in [(0, r0), (1, r1)] {
        let (ok, text, _) = finish(p, t0, Duration::from_secs(60));
        assert!(!ok, "rank {r} started");
        assert!(
            text.contains("the ranks disagree on config field 'schedule'"),
            "rank {r}: {text}"
        );
        assert!(
            text.contains("0.01") && text.contains("0.02"),
            "rank {r}: {text}"
        );
    }
    assert!(!out.join("checkpoint.safetensors").exists());
}

/// Runs a 2-rank job into `out` (both ranks there), asserting success.
fn job(out: &Path, extra: &[&str]) {
    let t0 = Instant::now();
    let port = free_port();
    let r0 = rank("0", 2, port, out, extra).spawn().unwrap();
    let r1 = rank("1", 2, port, out, extra).spawn().unwrap();
    let limit = Duration::from_secs(240);
    let ((ok0, e0, _), (ok1, e1, _)) = (finish(r0, t0, limit), finish(r1, t0, limit));
    assert!(ok0 && ok1, "{extra:?}\nrank 0: {e0}\nrank 1: {e1}");
}

#[test]
fn a_resumed_two_rank_run_equals_an_uninterrupted_one() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (whole, parts) = (dir.path().join("whole"), dir.path().join("parts"));
    job(&whole, &["--epochs", "3"]);
    // Interrupt both ranks (SIGTERM, as a scheduler's preemption) once the first epoch is done:
    // they stop at the same step, rank 0 checkpoints there; then resume.
    let t0 = Instant::now();
    let port = free_port();
    let extra = ["--epochs", "3"];
    let ranks = [
        rank("0", 2, port, &parts, &extra).spawn().unwrap(),
        rank("1", 2, port, &parts, &extra).spawn().unwrap(),
    ];
    while !parts.join("metrics.jsonl").exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(180),
            "no epoch after 180 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    for r in &ranks {
        let pid = r.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
    }
    for r in ranks {
        let (ok, text, _) = finish(r, t0, Duration::from_secs(60));
        assert!(!ok, "an interrupted rank succeeded: {text}");
    }
    job(&parts, &["--epochs", "3", "--resume"]);
    let a = TensorFile::read(&whole.join("checkpoint.safetensors")).unwrap();
    let b = TensorFile::read(&parts.join("checkpoint.safetensors")).unwrap();
    assert_eq!(a.tensors.len(), b.tensors.len());
    for (name, t) in &a.tensors {
        assert!(t.equal(&b.tensors[name]), "{name} differs after the resume");
    }
}
