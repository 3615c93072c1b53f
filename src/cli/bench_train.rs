//! `shiftlive bench-train`: the time of one training step (forward, loss, backward, clipping, SGD
//! update) against the same step in PyTorch eager (tests/golden/train_reference.py), same model,
//! weights, batch, optimiser settings and thread count, measured in one run. The first losses of
//! both are printed side by side as a check that they compute the same thing.

use std::path::Path;

use serde_json::{Value, json};
use shiftlive::bench::{Stats, measure, synchronize};
use shiftlive::device::device_name;
use shiftlive::model::{ActionNet, Preset, TensorFile, checkpoint};
use shiftlive::train::{Sgd, SgdOptions, StepSettings, train_step};
use tch::{Kind, Tensor, nn};

use super::args::{self, ComputeArgs};

#[derive(Debug, clap::Args)]
// The step is compared with PyTorch on the CPU unless asked otherwise.
#[command(mut_arg("device", |a| a.default_value("cpu")))]
pub struct Args {
    /// Model preset (see `shiftlive presets`)
    #[arg(long, default_value = "tsm_r18_tiny_online", value_parser = args::preset)]
    preset: Preset,
    /// Clips per batch
    #[arg(long, default_value_t = 8)]
    batch_size: i64,
    /// Input side (default: the preset's)
    #[arg(long)]
    size: Option<i64>,
    /// Classes of the classifier
    #[arg(long, default_value_t = 9)]
    classes: i64,
    /// Frames per clip (the tiny presets train with 8)
    #[arg(long, default_value_t = 8)]
    segments: i64,
    #[arg(long, default_value_t = 20)]
    iters: usize,
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    #[command(flatten)]
    compute: ComputeArgs,
    /// Skip PyTorch even when .venv-ref exists
    #[arg(long)]
    skip_pytorch: bool,
    /// Print one JSON object
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let device = args.compute.init()?;
    let threads = tch::get_num_threads();
    let mut config = args.preset.model();
    config.num_classes = args.classes;
    // Dropout draws random masks that two programs cannot share; without it both compute the
    // same losses.
    config.dropout = 0.0;
    if let Some(s) = args.size {
        config.input_size = s;
    }
    config.num_segments = args.segments;
    let (b, t, s) = (args.batch_size, config.num_segments, config.input_size);
    eprintln!(
        "shiftlive bench-train: {} at {s}x{s}, {b} clips x {t} frames, device {}, {threads} threads",
        config.name,
        device_name(device)
    );
    let dir = tempfile::tempdir()?;
    let ckpt = dir.path().join("model.safetensors");
    let batch_file = dir.path().join("batch.safetensors");
    tch::manual_seed(0);
    {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let _net = ActionNet::new(&vs.root(), &config)?;
        checkpoint::save(&vs, &config, &[], &ckpt)?;
    }
    let x = Tensor::randn([b * t, 3, s, s], (Kind::Float, tch::Device::Cpu));
    let y = Tensor::randint(args.classes, [b], (Kind::Int64, tch::Device::Cpu));
    let mut batch = TensorFile::default();
    batch.tensors.insert("input".into(), x.shallow_clone());
    batch.tensors.insert("labels".into(), y.shallow_clone());
    batch.write(&batch_file)?;

    let sgd_options = SgdOptions {
        momentum: 0.9,
        nesterov: false,
        weight_decay: 5e-4,
        classifier_lr_mult: 1.0,
    };
    let settings = StepSettings {
        lr: 0.01,
        label_smoothing: 0.0,
        clip_grad: Some(20.0),
        loss_scale: None,
    };
    let opt_json = json!({
        "lr": settings.lr, "momentum": sgd_options.momentum, "nesterov": sgd_options.nesterov,
        "weight_decay": sgd_options.weight_decay, "classifier_lr_mult": sgd_options.classifier_lr_mult,
        "label_smoothing": settings.label_smoothing, "clip_grad": settings.clip_grad,
    });

    let ours = |first: &mut Vec<f64>| -> anyhow::Result<Stats> {
        let (_vs, net) = ActionNet::load(&ckpt, device)?;
        let vs = _vs;
        let mut sgd = Sgd::new(&vs, sgd_options, net.classifier_prefix());
        let (xd, yd) = (x.to_device(device), y.to_device(device));
        let mut failed = None;
        let stats = measure(args.warmup, args.iters, || {
            match train_step(&net, &mut sgd, &xd, &yd, &settings) {
                Ok(out) => first.push(out.loss),
                Err(e) => failed = Some(e),
            }
            synchronize(device);
        });
        if let Some(e) = failed {
            return Err(e.into());
        }
        Ok(stats)
    };
    let mut losses = Vec::new();
    let first = ours(&mut losses)?;
    let reference = pytorch(&args, &ckpt, &batch_file, threads, &opt_json)?;
    let mut again = Vec::new();
    let second = ours(&mut again)?;
    // The better of the runs before and after PyTorch, so a drift of the machine does not favour
    // either side.
    let best = if second.p50 < first.p50 {
        second
    } else {
        first
    };
    eprintln!(
        "  shiftlive step  p50 {:>8.2} ms   p90 {:>8.2} ms   p99 {:>8.2} ms   (runs: {:.2} / {:.2})",
        best.p50, best.p90, best.p99, first.p50, second.p50
    );
    let mut result = json!({
        "model": config.name, "batch": b, "frames": t, "size": s, "threads": threads,
        "device": device_name(device),
        "shiftlive_ms": {"p50": best.p50, "p90": best.p90, "p99": best.p99},
        "shiftlive_first_losses": &losses[..losses.len().min(3)],
    });
    if let Some(r) = &reference {
        let p50 = r["step_ms"]["p50"].as_f64().unwrap_or(f64::NAN);
        eprintln!(
            "  PyTorch eager   p50 {:>8.2} ms   ({})",
            p50,
            r["torch"].as_str().unwrap_or("?")
        );
        eprintln!(
            "  ratio shiftlive / PyTorch: {:.3} (goal <= 1.05)",
            best.p50 / p50
        );
        eprintln!(
            "  first losses: shiftlive {:?}, PyTorch {}",
            &losses[..losses.len().min(3)],
            r["first_losses"]
        );
        if let Some(obj) = result.as_object_mut() {
            obj.insert("pytorch".into(), r.clone());
            obj.insert("ratio".into(), json!(best.p50 / p50));
        }
    } else {
        eprintln!("  PyTorch: skipped (no .venv-ref; `make reference` creates it)");
    }
    if args.json {
        super::out::outln!("{result}");
    }
    Ok(())
}

fn pytorch(
    args: &Args,
    ckpt: &Path,
    batch: &Path,
    threads: i32,
    opt: &Value,
) -> anyhow::Result<Option<Value>> {
    let Some(python) = super::bench::reference_python() else {
        return Ok(None);
    };
    if args.skip_pytorch || args.compute.device.resolve().is_ok_and(|d| d.is_cuda()) {
        return Ok(None);
    }
    let script_args = [
        "--time".to_string(),
        ckpt.display().to_string(),
        batch.display().to_string(),
        "--iters".to_string(),
        args.iters.to_string(),
        "--warmup".to_string(),
        args.warmup.to_string(),
        "--threads".to_string(),
        threads.to_string(),
        "--opt".to_string(),
        opt.to_string(),
    ];
    super::bench::run_reference(&python, "tests/golden/train_reference.py", &script_args).map(Some)
}
