//! c10d through the shim, two real processes on loopback: this test binary re-runs itself as
//! rank 0 and rank 1 (the `rank_*` functions below do their work only when launched so, with
//! RANK/WORLD_SIZE/MASTER_* in the environment) and checks the numbers each rank saw.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};

use shiftlive::dist::{Backend, Launch, ProcessGroup, timeout_from_env};
use shiftlive::model::{ActionNet, ModelConfig};
use shiftlive::train::{
    BUCKET_BYTES, GradSync, NoHook, Sgd, SgdOptions, StepHook, StepSettings, TrainError,
    broadcast_variables, buffers, train_step_with,
};
use tch::{Kind, Tensor};

/// Marks a process started by [`spawn`] (its test function then runs as a rank).
const CHILD: &str = "SHIFTLIVE_DIST_TEST_CHILD";

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Runs test `name` of this binary as `rank` of `world` with a store on `port`.
fn spawn(name: &str, rank: usize, world: usize, port: u16, env: &[(&str, &str)]) -> Child {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .env("RANK", rank.to_string())
        .env("WORLD_SIZE", world.to_string())
        .env("LOCAL_RANK", rank.to_string())
        .env("MASTER_ADDR", "127.0.0.1")
        .env("MASTER_PORT", port.to_string())
        .env("SHIFTLIVE_DIST_TIMEOUT", "10")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    c.spawn().unwrap()
}

fn wait(child: Child) -> (Output, String) {
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, text)
}

/// The group of a child process, or None in the parent run.
fn child_group() -> Option<ProcessGroup> {
    std::env::var(CHILD).ok()?;
    let launch = Launch::from_env().unwrap().unwrap();
    let pg = ProcessGroup::connect(&launch, Backend::Gloo, timeout_from_env().unwrap());
    match pg {
        Ok(pg) => Some(pg),
        Err(e) => {
            println!("ERROR: {e}");
            std::process::exit(3)
        }
    }
}

fn values(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(&t.to_kind(Kind::Double).flatten(0, -1)).unwrap()
}

#[test]
fn rank_collectives() {
    let Some(pg) = child_group() else { return };
    let r = pg.rank() as f64;
    let rf = r as f32;
    // Two float tensors in one coalesced all-reduce, a double one alone.
    let mut f = [
        Tensor::from_slice(&[1.0f32 + rf, 2.0 * (1.0 + rf), 0.25]),
        Tensor::from_slice(&[10.0f32 * (rf + 1.0); 4]).view([2, 2]),
    ];
    pg.all_reduce_sum(&mut f).unwrap();
    assert_eq!(values(&f[0]), vec![3.0, 6.0, 0.5]);
    assert_eq!(values(&f[1]), vec![30.0; 4]);
    let mut d = [Tensor::from_slice(&[1e-9 * (r + 1.0), -(r + 1.0)])];
    pg.all_reduce_sum(&mut d).unwrap();
    assert_eq!(values(&d[0]), vec![1e-9 + 2e-9, -3.0]);
    // Broadcast from rank 0 overwrites rank 1's values.
    let mut b = [Tensor::from_slice(&[7.0f32, 8.0, 9.0]) * (1.0 - r)];
    pg.broadcast(&mut b, 0).unwrap();
    assert_eq!(values(&b[0]), vec![7.0, 8.0, 9.0]);
    // The mean in buckets of 8 bytes (one tensor a bucket), dtypes mixed.
    let m = [
        Tensor::from_slice(&[r, 2.0 * r]).to_kind(Kind::Float),
        Tensor::from_slice(&[4.0 * r]).to_kind(Kind::Double),
        Tensor::from_slice(&[1.0 + r, 5.0, 6.0]).to_kind(Kind::Float),
    ];
    pg.all_reduce_mean(&m, 8).unwrap();
    assert_eq!(values(&m[0]), vec![0.5, 1.0]);
    assert_eq!(values(&m[1]), vec![2.0]);
    assert_eq!(values(&m[2]), vec![1.5, 5.0, 6.0]);
    assert_eq!(pg.sum_f64(&[r, 1.0]).unwrap(), vec![1.0, 2.0]);
    pg.barrier().unwrap();
    println!("RANK {} OK", pg.rank());
}

#[test]
fn two_processes_all_reduce_and_broadcast_exactly() {
    if std::env::var(CHILD).is_ok() {
        return;
    }
    let port = free_port();
    let children: Vec<Child> = (0..2)
        .map(|r| spawn("rank_collectives", r, 2, port, &[]))
        .collect();
    for (r, c) in children.into_iter().enumerate() {
        let (out, text) = wait(c);
        assert!(out.status.success(), "rank {r}: {text}");
        assert!(text.contains(&format!("RANK {r} OK")), "rank {r}: {text}");
    }
}

/// The tiny TSM of the data-parallel checks: 4 segments, 32 px, no dropout, 5 classes.
fn tiny_tsm(seed: i64) -> (tch::nn::VarStore, ActionNet, Sgd) {
    let mut config = ModelConfig::tsm_r18_tiny();
    (
        config.num_segments,
        config.input_size,
        config.dropout,
        config.num_classes,
    ) = (4, 32, 0.0, 5);
    tch::manual_seed(seed);
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let net = ActionNet::new(&vs.root(), &config).unwrap();
    ActionNet::reset_convs_default(&vs);
    let sgd = Sgd::new(&vs, SgdOptions::default(), net.classifier_prefix());
    (vs, net, sgd)
}

/// Clips and labels of step `step`'s global batch of 2 x 3 clips; half `h` is rank h's.
fn half_batch(step: i64, h: i64) -> (Tensor, Tensor) {
    tch::manual_seed(1000 + step);
    let x = Tensor::randn([6 * 4, 3, 32, 32], (Kind::Float, tch::Device::Cpu));
    let y = Tensor::randint(5, [6], (Kind::Int64, tch::Device::Cpu));
    (x.narrow(0, h * 12, 12), y.narrow(0, h * 3, 3))
}

const STEPS: i64 = 3;

/// Held while a test of this binary draws from libtorch's one global generator in this process:
/// the reference runs reseed it and must see the draws the ranks saw, which a concurrent test
/// reseeding it between two draws would change (cargo runs the tests on several threads).
static GENERATOR: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn generator() -> std::sync::MutexGuard<'static, ()> {
    GENERATOR
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
/// Set for ranks that train with synchronised BatchNorm.
const SYNC_BN: &str = "SHIFTLIVE_DIST_TEST_SYNC_BN";
const SETTINGS: StepSettings = StepSettings {
    lr: 0.05,
    label_smoothing: 0.0,
    clip_grad: None,
    loss_scale: None,
};

#[test]
fn rank_sgd_steps() {
    let Some(pg) = child_group() else { return };
    tch::set_num_threads(1);
    // Different starting weights on each rank: rank 0's broadcast must make them equal.
    let (vs, mut net, mut sgd) = tiny_tsm(42 + pg.rank() as i64);
    if std::env::var(SYNC_BN).is_ok() {
        net.sync_batch_norm(Some(pg.replica_sum().unwrap()));
    }
    broadcast_variables(&pg, &vs).unwrap();
    for step in 0..STEPS {
        let (x, y) = half_batch(step, pg.rank() as i64);
        let mut hook = GradSync {
            pg: &pg,
            bucket_bytes: BUCKET_BYTES,
            buffers: buffers(&vs),
        };
        train_step_with(&net, &mut sgd, &x, &y, None, &SETTINGS, &mut hook).unwrap();
    }
    let out = std::env::var("SHIFTLIVE_DIST_TEST_OUT").unwrap();
    vs.save(format!("{out}/rank{}.safetensors", pg.rank()))
        .unwrap();
    println!("RANK {} OK", pg.rank());
}

/// Averages the gradients kept from the first half-batch with those of the second.
struct AverageWith(Vec<Tensor>);

impl StepHook for AverageWith {
    fn after_backward(&mut self, sgd: &mut Sgd) -> Result<(), TrainError> {
        for (g, first) in sgd.grads().iter().zip(&self.0) {
            g.shallow_clone().copy_(&((first + g) / 2.0));
        }
        Ok(())
    }
}

/// Each rank's variables after [`rank_sgd_steps`] (with synchronised BatchNorm or not).
fn two_ranks_sgd(sync_bn: bool) -> (Vec<(String, Tensor)>, Vec<(String, Tensor)>) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let out = dir.path().to_str().unwrap();
    let mut env = vec![("SHIFTLIVE_DIST_TEST_OUT", out)];
    if sync_bn {
        env.push((SYNC_BN, "1"));
    }
    let children: Vec<Child> = (0..2)
        .map(|r| spawn("rank_sgd_steps", r, 2, port, &env))
        .collect();
    for (r, c) in children.into_iter().enumerate() {
        let (o, text) = wait(c);
        assert!(o.status.success(), "rank {r}: {text}");
    }
    (
        weights(&dir.path().join("rank0.safetensors")),
        weights(&dir.path().join("rank1.safetensors")),
    )
}

fn weights(path: &std::path::Path) -> Vec<(String, Tensor)> {
    let mut w = Tensor::read_safetensors(path).unwrap();
    w.sort_by(|a, b| a.0.cmp(&b.0));
    w
}

#[test]
fn two_ranks_step_like_one_process_averaging_the_half_batches() {
    if std::env::var(CHILD).is_ok() {
        return;
    }
    let (w0, w1) = two_ranks_sgd(false);
    // One process: each half-batch's gradient (BatchNorm statistics per half), averaged.
    let _generator = generator();
    tch::set_num_threads(1);
    let (vs, net, mut sgd) = tiny_tsm(42);
    for step in 0..STEPS {
        let (x0, y0) = half_batch(step, 0);
        sgd.zero_grad();
        let logits = net.forward_clip(&x0, true).unwrap().logits;
        logits.cross_entropy_for_logits(&y0).backward();
        let first: Vec<Tensor> = sgd.grads().iter().map(Tensor::copy).collect();
        let (x1, y1) = half_batch(step, 1);
        train_step_with(
            &net,
            &mut sgd,
            &x1,
            &y1,
            None,
            &SETTINGS,
            &mut AverageWith(first),
        )
        .unwrap();
    }
    let trained: std::collections::BTreeMap<String, Tensor> = vs.variables().into_iter().collect();
    let mut worst = 0f64;
    let mut compared = 0;
    for ((n0, t0), (n1, t1)) in w0.iter().zip(&w1) {
        assert_eq!(n0, n1);
        assert!(t0.equal(t1), "{n0} differs between the ranks");
        let Some(reference) = trained.get(n0) else {
            continue;
        };
        if !reference.requires_grad() {
            continue; // BatchNorm statistics: per replica, not comparable to one process
        }
        worst = worst.max((t0 - reference).abs().max().double_value(&[]));
        compared += 1;
    }
    assert!(
        compared > 20 && w0.len() == w1.len(),
        "{compared} of {} compared",
        w0.len()
    );
    eprintln!("max abs difference to one process: {worst:e} over {compared} tensors");
    assert!(worst <= 1e-6, "max abs difference to one process {worst:e}");
    // And the steps moved the weights: the comparison is not between untouched copies.
    let (fresh, _, _) = tiny_tsm(42);
    let moved: f64 = fresh
        .variables()
        .iter()
        .map(|(n, t)| (t - &trained[n]).abs().max().double_value(&[]))
        .fold(0.0, f64::max);
    assert!(moved > 1e-3, "weights moved by {moved}");
}

/// Synchronised BatchNorm: two ranks on half-batches step as one process on the whole batch with
/// plain BatchNorm (statistics over both halves, the loss averaged over all clips), weights and
/// running statistics alike.
#[test]
fn two_ranks_with_sync_bn_step_like_one_process_on_the_whole_batch() {
    if std::env::var(CHILD).is_ok() {
        return;
    }
    let (w0, w1) = two_ranks_sgd(true);
    let generator_guard = generator();
    tch::set_num_threads(1);
    let (vs, net, mut sgd) = tiny_tsm(42);
    for step in 0..STEPS {
        let (x0, y0) = half_batch(step, 0);
        let (x1, y1) = half_batch(step, 1);
        let (x, y) = (Tensor::cat(&[x0, x1], 0), Tensor::cat(&[y0, y1], 0));
        train_step_with(&net, &mut sgd, &x, &y, None, &SETTINGS, &mut NoHook).unwrap();
    }
    let trained: std::collections::BTreeMap<String, Tensor> = vs.variables().into_iter().collect();
    drop(generator_guard);
    let (mut worst, mut worst_stats) = (0f64, 0f64);
    for ((n0, t0), (n1, t1)) in w0.iter().zip(&w1) {
        assert_eq!(n0, n1);
        assert!(t0.equal(t1), "{n0} differs between the ranks");
        let d = (t0 - &trained[n0]).abs().max().double_value(&[]);
        if trained[n0].requires_grad() {
            worst = worst.max(d);
        } else {
            worst_stats = worst_stats.max(d);
        }
    }
    assert_eq!(w0.len(), trained.len());
    eprintln!(
        "sync BN: max abs difference to one process {worst:e} (weights), {worst_stats:e} (running statistics)"
    );
    assert!(
        worst <= 1e-5,
        "weights differ from one process by {worst:e}"
    );
    assert!(
        worst_stats <= 1e-5,
        "running statistics differ by {worst_stats:e}"
    );
    // Without synchronisation the same steps differ (the test can tell the two apart).
    let (p0, _) = two_ranks_sgd(false);
    let apart = p0
        .iter()
        .filter(|(n, _)| trained[n].requires_grad())
        .map(|(n, t)| (t - &trained[n]).abs().max().double_value(&[]))
        .fold(0.0, f64::max);
    eprintln!("per-replica BatchNorm: {apart:e} from one process");
    assert!(
        apart > 100.0 * worst.max(1e-7),
        "per-replica BatchNorm is as close: {apart:e}"
    );
}
