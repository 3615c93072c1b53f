//! `shiftlive bench` against the runtimes a deploying team would pick instead of us: the same
//! weights exported to ONNX and run by ONNX Runtime and OpenVINO from their PyPI wheels
//! (`tests/export/ort.py serve`, in `.venv-export`), same threads, batch 1, states fed back.
//!
//! Our step and theirs are timed in alternating rounds (ours, theirs, theirs, ours, ...), each
//! round a p50 over its iterations, and a ratio is the median of the rounds' ratios: these VMs
//! drift by up to 40% within a minute, which falls on both sides of a round alike, where two
//! measurements a minute apart would compare the drift.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};
use shiftlive::backend::{Backend, BackendOptions};
use shiftlive::bench::{Stats, measure};
use shiftlive::online::{Precision, Recognizer, RecognizerOptions, cpu_has_native_bf16};

/// The peer process: the exported model loaded by `ort.py serve`, timing the set-up asked.
pub(super) struct Peers {
    child: Child,
    /// None once closed (the peer ends at end of input).
    input: Option<ChildStdin>,
    output: BufReader<ChildStdout>,
    /// Its first line: the thread count and the runtimes' versions.
    pub ready: Value,
}

impl Peers {
    /// Starts the peer on `onnx` with `threads`; `None` when the export venv is absent.
    pub fn start(onnx: &Path, threads: i32) -> anyhow::Result<Option<Self>> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let python = root.join(".venv-export/bin/python");
        if !python.exists() {
            return Ok(None);
        }
        let script = root.join("tests/export/ort.py");
        // Its own process group: a thread of one of its libraries forks short-lived children
        // (seen with strace), which a kill of the peer alone would leave behind, stuck, holding
        // our standard error.
        let mut child = Command::new(&python)
            .process_group(0)
            .arg(&script)
            .arg("serve")
            .arg(onnx)
            .arg(threads.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", script.display()))?;
        let (Some(input), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            anyhow::bail!("{}: no pipes to the peer process", script.display());
        };
        let mut peers = Self {
            child,
            input: Some(input),
            output: BufReader::new(stdout),
            ready: Value::Null,
        };
        peers.ready = peers.answer()?;
        Ok(Some(peers))
    }

    fn answer(&mut self) -> anyhow::Result<Value> {
        let mut line = String::new();
        let n = self.output.read_line(&mut line)?;
        anyhow::ensure!(
            n > 0,
            "tests/export/ort.py serve ended early (its error is above)"
        );
        serde_json::from_str(&line).with_context(|| format!("the peer's answer '{}'", line.trim()))
    }

    /// `iters` timed steps of `setup` after `warmup`; `None` when this machine lacks it.
    pub fn time(
        &mut self,
        setup: &str,
        warmup: usize,
        iters: usize,
    ) -> anyhow::Result<Option<Stats>> {
        let input = self.input.as_mut().context("the peer's input is closed")?;
        writeln!(input, "{setup} {warmup} {iters}")?;
        input.flush()?;
        let answer = self.answer()?;
        if answer["unavailable"].as_bool() == Some(true) {
            return Ok(None);
        }
        let ms: Vec<f64> = serde_json::from_value(answer["ms"].clone())
            .with_context(|| format!("the peer's times for {setup}"))?;
        anyhow::ensure!(!ms.is_empty(), "the peer timed no step of {setup}");
        Ok(Some(Stats::of(&ms)))
    }
}

impl Drop for Peers {
    /// Closes the peer's input (it ends there), waits for it up to 5 s, then kills its whole
    /// process group, so nothing of it outlives the bench.
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        self.input = None;
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Ok(group) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: a plain system call on the group this peer leads (created at spawn).
            unsafe {
                libc::killpg(group, libc::SIGKILL);
            }
        }
        let _ = self.child.wait();
    }
}

/// Rounds of each comparison, and the iterations of each round.
#[derive(Debug, Clone, Copy)]
pub(super) struct Rounds {
    pub rounds: usize,
    pub warmup: usize,
    pub iters: usize,
}

impl Rounds {
    /// 11 rounds of `iters / 5` steps (at least 10), 3 untimed steps before each.
    pub fn over(iters: usize) -> Self {
        Self {
            rounds: 11,
            warmup: 3,
            iters: (iters / 5).max(10),
        }
    }
}

/// One comparison: our step and the peer's set-up in alternating rounds.
pub(super) struct Versus {
    /// Medians over the rounds of each side's p50.
    pub ours_ms: f64,
    pub theirs_ms: f64,
    /// Each round's ours / theirs, in order.
    pub ratios: Vec<f64>,
}

impl Versus {
    /// The median (p50, as every figure of `bench`) of the rounds' ratios.
    pub fn ratio(&self) -> f64 {
        Stats::of(&self.ratios).p50
    }
}

/// Times `ours` against the peer's `setup` in alternating rounds; `None` when the peer lacks it.
pub(super) fn versus(
    peers: &mut Peers,
    setup: &str,
    ours: &mut dyn FnMut(),
    rounds: Rounds,
) -> anyhow::Result<Option<Versus>> {
    let mine = |ours: &mut dyn FnMut()| measure(rounds.warmup, rounds.iters, ours).p50;
    let (mut us, mut them, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds.rounds {
        // ABBA: whichever goes second in one round goes first in the next.
        let first = (round % 2 == 0).then(|| mine(ours));
        let Some(theirs) = peers.time(setup, rounds.warmup, rounds.iters)? else {
            return Ok(None);
        };
        let a = first.unwrap_or_else(|| mine(ours));
        us.push(a);
        them.push(theirs.p50);
        ratios.push(a / theirs.p50);
    }
    Ok(Some(Versus {
        ours_ms: Stats::of(&us).p50,
        theirs_ms: Stats::of(&them).p50,
        ratios,
    }))
}

/// JSON fields of one comparison: `{peer_key}_ms_p50` (when given), `{ratio_key}` (median of
/// the rounds), `{ratio_key}_rounds`, and `{ratio_key}_ours_ms_p50` (our step in those rounds);
/// nulls when the peer lacks the set-up.
pub(super) fn fields(
    peer_key: Option<&str>,
    ratio_key: &str,
    v: Option<&Versus>,
) -> Vec<(String, Value)> {
    let mut out = vec![
        (ratio_key.to_string(), json!(v.map(Versus::ratio))),
        (format!("{ratio_key}_rounds"), json!(v.map(|v| &v.ratios))),
        (
            format!("{ratio_key}_ours_ms_p50"),
            json!(v.map(|v| v.ours_ms)),
        ),
    ];
    if let Some(key) = peer_key {
        out.push((format!("{key}_ms_p50"), json!(v.map(|v| v.theirs_ms))));
    }
    out
}

/// Our step against the peers' (bench_peers): ONNX Runtime (its default and without spinning)
/// and OpenVINO on fp32 against our default fp32 step, OpenVINO's bf16 against our default bf16
/// step where the CPU computes bf16 natively. `None` without the export venv.
pub(super) fn compare(
    checkpoint: &Path,
    dir: &Path,
    threads: i32,
    (options, backend): (RecognizerOptions, Backend),
    frame: &tch::Tensor,
    iters: usize,
) -> anyhow::Result<Option<Vec<(String, Value)>>> {
    let onnx = dir.join("step.onnx");
    let export = shiftlive::export::ExportOptions {
        force: true,
        ..shiftlive::export::ExportOptions::new(shiftlive::export::ExportFormat::Onnx)
    };
    shiftlive::export::export(checkpoint, &onnx, &export)?;
    let Some(mut peers) = Peers::start(&onnx, threads)? else {
        return Ok(None);
    };
    let rounds = Rounds::over(iters);
    let runtimes = BackendOptions::from_env();
    let mut out = vec![("peer_versions".to_string(), peers.ready.clone())];
    eprintln!(
        "against the peers ({} rounds of {} steps, ours and theirs alternating; ratio = median of the rounds):",
        rounds.rounds, rounds.iters
    );
    let recognizer = |precision, backend, runtimes: &BackendOptions| {
        let mut rec = Recognizer::from_checkpoint(
            checkpoint,
            RecognizerOptions {
                precision,
                ..options
            },
        )?;
        rec.set_backend(backend, runtimes)?;
        anyhow::Ok(rec)
    };
    let mut ours = recognizer(Precision::F32, backend, &runtimes)?;
    let mut step = || {
        let _ = ours.step_tensor(frame);
    };
    for (setup, peer_key, ratio_key) in [
        ("ort", "ort", "vs_onnxruntime"),
        ("ort_nospin", "ort_nospin", "vs_onnxruntime_nospin"),
        ("openvino", "openvino", "vs_openvino"),
    ] {
        let v = versus(&mut peers, setup, &mut step, rounds)?;
        print_versus(setup, v.as_ref());
        out.extend(fields(Some(peer_key), ratio_key, v.as_ref()));
    }
    drop(ours);
    // Our step as `live` runs it from a paced source: ONNX Runtime's threads spin between
    // frames, as theirs do by default (the tight loop above stops them at each step's end, as
    // `play` does for frames that come as fast as they are decoded).
    let mut paced = recognizer(Precision::F32, backend, &runtimes.clone().paced(true))?;
    let v = versus(
        &mut peers,
        "ort",
        &mut || {
            let _ = paced.step_tensor(frame);
        },
        rounds,
    )?;
    print_versus("ort (ours paced)", v.as_ref());
    out.extend(fields(None, "vs_onnxruntime_paced", v.as_ref()));
    drop(paced);
    let bf16 = if cpu_has_native_bf16() {
        // What `--precision bf16` runs by default.
        let mut ours = recognizer(Precision::Bf16, Backend::Auto, &runtimes)?;
        let v = versus(
            &mut peers,
            "openvino_bf16",
            &mut || {
                let _ = ours.step_tensor(frame);
            },
            rounds,
        )?;
        print_versus("openvino_bf16", v.as_ref());
        v
    } else {
        None
    };
    out.extend(fields(
        Some("openvino_bf16"),
        "vs_openvino_bf16",
        bf16.as_ref(),
    ));
    Ok(Some(out))
}

fn print_versus(setup: &str, v: Option<&Versus>) {
    match v {
        Some(v) => eprintln!(
            "  {setup:<20} theirs {:>7.2} ms   ours {:>7.2} ms   ours/theirs {:.2} (rounds {})",
            v.theirs_ms,
            v.ours_ms,
            v.ratio(),
            v.ratios
                .iter()
                .map(|r| format!("{r:.2}"))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        None => eprintln!("  {setup:<20} not on this machine"),
    }
}
