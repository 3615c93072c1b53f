//! c10d through the shim, two real processes on loopback: this test binary re-runs itself as
//! rank 0 and rank 1 (the `rank_*` functions below do their work only when launched so, with
//! RANK/WORLD_SIZE/MASTER_* in the environment) and checks the numbers each rank saw.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};

use shiftlive::dist::{Backend, Launch, ProcessGroup, timeout_from_env};
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
