//! `shiftlive bench`: per-frame latency of the online step and the ratios that justify it, all
//! measured in one run: online vs the same backbone without shift (plain 2D), re-running an
//! 8-frame window per new frame vs online, ResNet-50 online, ECO's online mode (working memory
//! refreshed every N frames: its cost per frame, amortised), and, when the reference venv exists,
//! the same model and weights in PyTorch (scripts/bench_reference.py); when the export venv
//! exists, the same weights exported to ONNX and timed in ONNX Runtime and OpenVINO against our
//! step in alternating rounds (bench_peers).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;
use serde_json::{Value, json};
use shiftlive::backend::{Backend, BackendOptions};
use shiftlive::bench::{
    OnlineCase, Stats, WindowCase, measure, measure_interleaved, plain_2d, synchronize,
};
use shiftlive::device::device_name;
use shiftlive::model::{ActionNet, Preset, checkpoint};
use shiftlive::online::{
    EcoOptions, EcoRunner, Precision, Recognizer, RecognizerOptions, cpu_has_native_bf16,
};
use shiftlive::preprocess::{FrameRef, Preprocessor, Transform};
use tch::nn;

use super::args::{self, ComputeArgs};
use super::bench_peers;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Online model to time (a preset with a uni-directional shift)
    #[arg(long, default_value = "tsm_mobilenet_v2_online", value_parser = args::preset)]
    preset: Preset,
    /// The ResNet model timed for `fps_r50`
    #[arg(long, default_value = "tsm_r50_online", value_parser = args::preset)]
    r50_preset: Preset,
    /// Timed iterations per measurement
    #[arg(long, default_value_t = 100)]
    iters: usize,
    /// Untimed iterations before each measurement
    #[arg(long, default_value_t = 10)]
    warmup: usize,
    #[command(flatten)]
    compute: ComputeArgs,
    /// Compute precision of the timed online step
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    precision: Precision,
    /// Channels-last layout
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    channels_last: bool,
    /// Fold BatchNorm into the convolutions
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    fold_bn: bool,
    /// Skip the ResNet-50 measurement
    #[arg(long)]
    skip_r50: bool,
    /// The ECO model timed in its online mode (`eco_*` in the JSON)
    #[arg(long, default_value = "eco_lite", value_parser = args::preset)]
    eco_preset: Preset,
    /// Memory refreshes timed for ECO (each covers N = num_segments frames), after one untimed
    #[arg(long, default_value_t = 2)]
    eco_periods: usize,
    /// Skip the ECO measurement
    #[arg(long)]
    skip_eco: bool,
    /// Skip the PyTorch reference even when .venv-ref exists
    #[arg(long)]
    skip_pytorch: bool,
    /// Skip ONNX Runtime / OpenVINO even when .venv-export exists
    #[arg(long)]
    skip_onnxruntime: bool,
    /// Engine of the timed online step (the `online_*` figures); every backend is also timed side by
    /// side (`backend_*`)
    #[arg(long, value_enum, default_value_t = Backend::Auto)]
    backend: Backend,
    /// Time only the batched step of N streams, for each N given (e.g. 1,2,4,8), and 8 batched
    /// against 8 sequential streams
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..=256))]
    streams: Vec<u32>,
    #[cfg(feature = "capture")]
    #[command(flatten)]
    live: super::bench_live::LiveArgs,
    /// Print one JSON object instead of the report
    #[arg(long)]
    json: bool,
}

pub(super) fn report(name: &str, s: &Stats) {
    eprintln!(
        "  {name:<44} p50 {:>8.2} ms   p90 {:>8.2} ms   p99 {:>8.2} ms",
        s.p50, s.p90, s.p99
    );
}

/// The reference venv's Python, when `make reference` created it.
pub(super) fn reference_python() -> Option<PathBuf> {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-ref/bin/python");
    python.exists().then_some(python)
}

/// Runs a reference script of the repository (path relative to it) and parses the last line it
/// prints as JSON.
pub(super) fn run_reference(python: &Path, script: &str, args: &[String]) -> anyhow::Result<Value> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(script);
    let out = Command::new(python)
        .arg(&script)
        .args(args)
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    anyhow::ensure!(
        out.status.success(),
        "{} failed: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().unwrap_or_default();
    serde_json::from_str(last).with_context(|| format!("parsing the reference output '{last}'"))
}

/// Runs the PyTorch reference on the same checkpoint; `None` when the venv is absent.
fn pytorch_reference(
    checkpoint: &Path,
    threads: i32,
    args: &Args,
) -> anyhow::Result<Option<Value>> {
    let Some(python) = reference_python().filter(|_| !args.skip_pytorch) else {
        return Ok(None);
    };
    let script_args = [
        "--checkpoint".to_string(),
        checkpoint.display().to_string(),
        "--threads".to_string(),
        threads.to_string(),
        "--iters".to_string(),
        args.iters.to_string(),
        "--warmup".to_string(),
        args.warmup.to_string(),
    ];
    run_reference(&python, "scripts/bench_reference.py", &script_args).map(Some)
}

/// A checkpoint of `config` with random weights in `dir`, so every set-up timed runs the same
/// weights.
fn random_checkpoint(
    config: &shiftlive::model::ModelConfig,
    dir: &Path,
) -> anyhow::Result<PathBuf> {
    let ckpt = dir.join(format!("{}.safetensors", config.name));
    let vs = nn::VarStore::new(tch::Device::Cpu);
    let _net = ActionNet::new(&vs.root(), config)?;
    checkpoint::save(&vs, config, &[], &ckpt)?;
    Ok(ckpt)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let device = args.compute.init()?;
    let threads = tch::get_num_threads();
    let config = args.preset.model();
    let options = RecognizerOptions {
        device,
        precision: args.precision,
        channels_last: args.channels_last,
        fold_bn: args.fold_bn,
        streams: 1,
    };
    eprintln!(
        "shiftlive bench: {} at {}x{}, device {}, {} threads, {:?}, channels_last {}, fold_bn {}",
        config.name,
        config.input_size,
        config.input_size,
        device_name(device),
        threads,
        args.precision,
        args.channels_last,
        args.fold_bn
    );
    if !args.streams.is_empty() {
        let bench = super::bench_streams::StreamsBench {
            counts: &args.streams,
            options,
            backend: args.backend,
            warmup: args.warmup,
            iters: args.iters,
        };
        let r50 = (!args.skip_r50).then(|| args.r50_preset.model());
        let result = bench.run(&config, r50.as_ref())?;
        super::out::outln!("{result}");
        return Ok(());
    }
    #[cfg(feature = "capture")]
    if args.live.live {
        let dir = tempfile::tempdir()?;
        let ckpt = random_checkpoint(&config, dir.path())?;
        let result = args.live.bench(
            &ckpt,
            options,
            args.backend,
            dir.path(),
            (args.warmup, args.iters),
        )?;
        super::out::outln!("{result}");
        return Ok(());
    }
    let time = |case: &mut dyn FnMut()| {
        measure(args.warmup, args.iters, || {
            case();
            synchronize(device);
        })
    };

    // One checkpoint, so the layout variants and PyTorch run the same weights.
    let dir = tempfile::tempdir()?;
    let ckpt = random_checkpoint(&config, dir.path())?;
    let frame = tch::Tensor::randn(
        [1, 3, config.input_size, config.input_size],
        (tch::Kind::Float, device),
    );
    let online_of = |options: RecognizerOptions| -> anyhow::Result<Stats> {
        let mut rec = Recognizer::from_checkpoint(&ckpt, options)?;
        Ok(time(&mut || {
            let _ = rec.step_tensor(&frame);
        }))
    };

    eprintln!("online step, by layout (model only, one stream):");
    let mut variants = Vec::new();
    let layouts = [
        ("fp32", Precision::F32, false, false),
        ("fp32 + folded BN", Precision::F32, true, false),
        (
            "fp32 + folded BN + channels-last",
            Precision::F32,
            true,
            true,
        ),
        (
            "bf16 + folded BN + channels-last",
            Precision::Bf16,
            true,
            true,
        ),
    ];
    let native_bf16 = device.is_cuda() || cpu_has_native_bf16();
    for (name, precision, fold_bn, channels_last) in layouts {
        if precision == Precision::Bf16 && !native_bf16 {
            eprintln!(
                "  {name:<44} skipped: this CPU has no AVX512-BF16/AMX (fallback kernels take seconds)"
            );
            variants.push(json!({"layout": name, "skipped": "no native bf16 on this CPU"}));
            continue;
        }
        let s = online_of(RecognizerOptions {
            precision,
            fold_bn,
            channels_last,
            ..options
        })?;
        report(name, &s);
        variants.push(json!({"layout": name, "ms_p50": s.p50, "ms_p90": s.p90, "ms_p99": s.p99}));
    }

    let mut online_rec = Recognizer::from_checkpoint(&ckpt, options)?;
    let backend = online_rec.set_backend(args.backend, &BackendOptions::from_env())?;
    let mut plain_case = OnlineCase::new(&plain_2d(&config), options)?;
    let mut online_step = || {
        let _ = online_rec.step_tensor(&frame);
        synchronize(device);
    };
    let mut plain_step = || {
        plain_case.step();
        synchronize(device);
    };
    // Both on libtorch: in alternation, so a drift of the machine touches both alike. A runtime's
    // step is timed alone, as its peers are: alternating it with libtorch's plain 2D step would
    // hand it cores where libtorch's OpenMP threads still spin after their step (measured: a
    // ResNet-50 ONNX Runtime step 42 ms in alternation against 27 ms alone, same run).
    let (online, plain) = if backend == Backend::Libtorch {
        eprintln!(
            "the compared set-ups (the options above; online and plain 2D timed in alternation):"
        );
        let stats = measure_interleaved(
            args.warmup,
            args.iters,
            &mut [&mut online_step, &mut plain_step],
        );
        (stats[0], stats[1])
    } else {
        eprintln!("the compared set-ups (the options above; each timed alone):");
        (time(&mut online_step), time(&mut plain_step))
    };
    eprintln!("  (online step on {})", backend.name());
    report("online step (TSM, shift cache)", &online);
    report("plain 2D per frame (no shift)", &plain);
    let online_f32 = if args.precision == Precision::F32 {
        online
    } else {
        online_of(RecognizerOptions {
            precision: Precision::F32,
            ..options
        })?
    };
    let mut window = WindowCase::new(&config, options, 8)?;
    let window = time(&mut || window.step());
    report("8-frame offline window per new frame", &window);

    let transform = Transform::imagenet(config.input_size as usize);
    let mut prep = Preprocessor::new(transform);
    let bytes = vec![128u8; 640 * 480 * 3];
    let vga = FrameRef::rgb(&bytes, 640, 480);
    let preprocess = measure(args.warmup, args.iters, || {
        let _ = prep.run(&vga);
    });
    report("preprocess 640x480 RGB -> input", &preprocess);

    let r50 = if args.skip_r50 {
        None
    } else {
        let r50_config = args.r50_preset.model();
        let mut case = OnlineCase::new(&r50_config, options)?;
        let iters = (args.iters / 2).max(5);
        let s = measure(args.warmup.min(5), iters, || {
            case.step();
            synchronize(device);
        });
        report(&format!("{} online step", r50_config.name), &s);
        Some(s)
    };

    // ECO online: every pushed frame is timed; most cost one 2D pass up to inception-3c or
    // nothing, every N-th also runs the 3D net on the memory. The mean is the cost per frame.
    let eco = if args.skip_eco {
        None
    } else {
        let eco_config = args.eco_preset.model();
        let mut runner = EcoRunner::random(&eco_config, options, EcoOptions::default())?;
        let n = eco_config.num_segments as usize;
        let side = eco_config.input_size;
        let eco_frame = tch::Tensor::randn([1, 3, side, side], (tch::Kind::Float, device));
        // The first period fills the whole memory (N 2D passes): untimed.
        let s = measure(n, args.eco_periods.max(1) * n, || {
            let _ = runner.push(&eco_frame);
            synchronize(device);
        });
        report(
            &format!("{} online, mean per frame (N = {n})", eco_config.name),
            &Stats { p50: s.mean, ..s },
        );
        eprintln!(
            "  {:<44} {:>8.2} ms every {n} frames",
            "  of which the refresh frame (max)", s.p99
        );
        Some((s, n))
    };

    let backends = if !device.is_cuda() {
        Some(super::bench_backend::compare(
            &ckpt,
            &frame,
            options,
            args.warmup,
            args.iters,
        )?)
    } else {
        None
    };

    let reference = pytorch_reference(&ckpt, threads, &args)?;
    let ref_ms = |key: &str| reference.as_ref().and_then(|r| r[key]["p50"].as_f64());
    if let Some(r) = &reference {
        eprintln!("PyTorch reference (same weights, {threads} threads): {r}");
    } else {
        eprintln!("PyTorch reference: skipped (make reference creates .venv-ref)");
    }
    // Our step's (online_rec) thread pool is dropped first: no idle pool beside the peers'.
    drop(online_rec);
    let peers = if device.is_cuda() || args.skip_onnxruntime {
        None
    } else {
        bench_peers::compare(
            &ckpt,
            dir.path(),
            threads,
            (options, args.backend),
            &frame,
            args.iters,
        )?
    };
    if peers.is_none() {
        eprintln!(
            "ONNX Runtime / OpenVINO: skipped (--skip-onnxruntime, or no .venv-export: scripts/setup.sh --export creates it)"
        );
    }
    let result = json!({
        "model": config.name,
        "input_size": config.input_size,
        "device": device_name(device),
        "threads": threads,
        "precision": args.precision,
        "backend": backend,
        "channels_last": args.channels_last,
        "fold_bn": args.fold_bn,
        "online_ms_p50": online.p50,
        "online_ms_p90": online.p90,
        "online_ms_p99": online.p99,
        "online_fp32_ms_p50": online_f32.p50,
        "plain2d_ms_p50": plain.p50,
        "window8_ms_p50": window.p50,
        "online_vs_plain2d": online.p50 / plain.p50,
        "window8_vs_online": window.p50 / online.p50,
        "fps": 1e3 / online.p50,
        "fps_r50": r50.map(|s| 1e3 / s.p50),
        "r50_ms_p50": r50.map(|s| s.p50),
        "preprocess_640x480_ms_p50": preprocess.p50,
        "eco_model": eco.map(|_| args.eco_preset.name()),
        "eco_memory_frames": eco.map(|(_, n)| n),
        "eco_ms_mean_per_frame": eco.map(|(s, _)| s.mean),
        "eco_ms_p50": eco.map(|(s, _)| s.p50),
        "eco_refresh_ms": eco.map(|(s, _)| s.p99),
        "eco_vs_online": eco.map(|(s, _)| s.mean / online.p50),
        "pytorch_eager_ms_p50": ref_ms("eager"),
        "pytorch_best_ms_p50": ref_ms("best"),
        "pytorch_best_setup": reference.as_ref().map(|r| r["best"]["setup"].clone()),
        "vs_pytorch_eager": ref_ms("eager").map(|e| online.p50 / e),
        "vs_pytorch_eager_fp32": ref_ms("eager").map(|e| online_f32.p50 / e),
        "vs_pytorch_best": ref_ms("best").map(|b| online.p50 / b),
        "variants": variants,
    });
    let mut result = result;
    if let Value::Object(out) = &mut result {
        if let Some(Value::Object(fields)) = backends {
            out.extend(fields);
        }
        out.extend(peers.into_iter().flatten());
    }
    #[cfg(feature = "capture")]
    if !args.live.skip_live
        && let Value::Object(fields) = args.live.bench(
            &ckpt,
            options,
            args.backend,
            dir.path(),
            (args.warmup, args.iters),
        )?
        && let Value::Object(out) = &mut result
    {
        out.extend(fields);
    }
    if args.json {
        super::out::outln!("{result}");
    } else {
        super::out::outln!("{}", serde_json::to_string_pretty(&result)?);
    }
    Ok(())
}
