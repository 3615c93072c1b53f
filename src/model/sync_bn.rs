//! Synchronised BatchNorm for data-parallel training: the batch statistics of a training pass are
//! those of the whole global batch, not of each replica's share. Each replica sums its
//! per-channel `sum(x)` and `sum(x^2)` and its element count, one all-reduce makes them global,
//! and the mean and (biased) variance follow; the all-reduce is differentiable (its backward sums
//! the gradients over the replicas), so every replica's gradient sees how its inputs moved every
//! other replica's statistics, as PyTorch's `SyncBatchNorm` does. With the same global batch on
//! one process and plain BatchNorm the step is the same (up to float rounding).
//!
//! The model knows only the [`ReplicaSum`] trait; the data-parallel code (`crate::dist`) gives an
//! implementation over c10d. The cost: one small all-reduce (2C + 1 floats) per BatchNorm in the
//! forward pass and one in the backward, each a round trip that waits for the slowest replica.

use std::fmt;

use tch::{Kind, TchError, Tensor, nn};

/// tch's BatchNorm defaults, which every BatchNorm of the models is built with.
const BN_EPS: f64 = 1e-5;
const BN_MOMENTUM: f64 = 0.1;

/// A differentiable sum over the replicas of a data-parallel job.
pub trait ReplicaSum: Send + Sync {
    /// `x` summed over every replica (the same result on each); the backward of the result sums
    /// the gradients over the replicas the same way.
    fn sum(&self, x: &Tensor) -> Result<Tensor, TchError>;
}

/// A process of one: the sum is the value itself (for tests, and runs of one rank).
#[derive(Debug, Clone, Copy, Default)]
pub struct SingleReplica;

impl ReplicaSum for SingleReplica {
    fn sum(&self, x: &Tensor) -> Result<Tensor, TchError> {
        Ok(x.shallow_clone())
    }
}

/// A shared [`ReplicaSum`], as a model holds it.
#[derive(Clone)]
pub struct SyncBn(pub std::sync::Arc<dyn ReplicaSum>);

impl fmt::Debug for SyncBn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SyncBn")
    }
}

/// BatchNorm of a training pass over `x` (`[N, C, ...]`) with the statistics of all replicas:
/// normalises with the global mean and biased variance, and moves the running statistics as
/// `nn::BatchNorm` does (momentum, unbiased variance over the global count). The statistics are
/// taken in fp32 whatever `x`'s dtype (autocast).
pub fn batch_norm(
    x: &Tensor,
    bn: &nn::BatchNorm,
    sum: &dyn ReplicaSum,
) -> Result<Tensor, TchError> {
    let c = x.size().get(1).copied().unwrap_or(0);
    let dims: Vec<i64> = (0..x.dim() as i64).filter(|&d| d != 1).collect();
    let xf = x.f_to_kind(Kind::Float)?;
    let count = (x.numel() as i64 / c.max(1)) as f64;
    let device = x.device();
    let local = Tensor::f_cat(
        &[
            xf.f_sum_dim_intlist(dims.as_slice(), false, Kind::Float)?,
            xf.f_square()?
                .f_sum_dim_intlist(dims.as_slice(), false, Kind::Float)?,
            Tensor::from_slice(&[count as f32]).to_device(device),
        ],
        0,
    )?;
    let global = sum.sum(&local)?;
    let n = global.f_narrow(0, 2 * c, 1)?;
    let mean = global.f_narrow(0, 0, c)?.f_div(&n)?;
    // One pass (E[x^2] - mean^2, clamped at 0) so one all-reduce carries everything; in fp32 it
    // agrees with nn::BatchNorm within 1e-5 on activations of the scale BatchNorm sees (test below).
    let var = global
        .f_narrow(0, c, c)?
        .f_div(&n)?
        .f_sub(&mean.f_square()?)?
        .f_clamp_min(0.0)?;
    let total = n.double_value(&[0]);
    tch::no_grad(|| -> Result<(), TchError> {
        let unbiased = var.f_mul_scalar(total / (total - 1.0).max(1.0))?;
        let momentum = BN_MOMENTUM;
        let rm = &bn.running_mean;
        let rv = &bn.running_var;
        let new_mean = rm
            .f_mul_scalar(1.0 - momentum)?
            .f_add(&mean.f_mul_scalar(momentum)?.f_to_kind(rm.kind())?)?;
        let new_var = rv
            .f_mul_scalar(1.0 - momentum)?
            .f_add(&unbiased.f_mul_scalar(momentum)?.f_to_kind(rv.kind())?)?;
        rm.shallow_clone().f_copy_(&new_mean)?;
        rv.shallow_clone().f_copy_(&new_var)?;
        Ok(())
    })?;
    let mut scale = var.f_add_scalar(BN_EPS)?.f_rsqrt()?;
    if let Some(w) = &bn.ws {
        scale = scale.f_mul(&w.f_to_kind(Kind::Float)?)?;
    }
    let mut shift = mean.f_mul(&scale)?.f_neg()?;
    if let Some(b) = &bn.bs {
        shift = shift.f_add(&b.f_to_kind(Kind::Float)?)?;
    }
    let mut shape = vec![1i64; x.dim()];
    shape[1] = c;
    let y = xf
        .f_mul(&scale.f_view(shape.as_slice())?)?
        .f_add(&shift.f_view(shape.as_slice())?)?;
    y.f_to_kind(x.kind())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tch::Device;

    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a - b).abs().max().double_value(&[])
    }

    /// On one replica the synchronised BatchNorm is BatchNorm: output, input gradient, the
    /// gradients of its scale and shift, and the running statistics.
    #[test]
    fn one_replica_equals_batch_norm() {
        tch::manual_seed(3);
        for shape in [[6i64, 4, 5, 7].as_slice(), [3, 4, 2, 5, 5].as_slice()] {
            let vs = nn::VarStore::new(Device::Cpu);
            let mk = |name: &str| {
                let p = vs.root() / name;
                let bn = if shape.len() == 4 {
                    nn::batch_norm2d(p, 4, Default::default())
                } else {
                    nn::batch_norm3d(p, 4, Default::default())
                };
                tch::no_grad(|| {
                    bn.ws
                        .as_ref()
                        .unwrap()
                        .shallow_clone()
                        .copy_(&Tensor::from_slice(&[0.5f32, 1.5, -1.0, 2.0]));
                    bn.bs
                        .as_ref()
                        .unwrap()
                        .shallow_clone()
                        .copy_(&Tensor::from_slice(&[0.1f32, -0.2, 0.3, 0.0]));
                });
                bn
            };
            let (plain, synced) = (mk("plain"), mk("synced"));
            let x = (Tensor::randn(shape, (Kind::Float, Device::Cpu)) * 3.0 + 1.5)
                .set_requires_grad(true);
            let w = Tensor::randn(shape, (Kind::Float, Device::Cpu));
            let y1 = x.apply_t(&plain, true);
            let g1 = Tensor::run_backward(
                &[(&y1 * &w).sum(Kind::Float)],
                &[&x, plain.ws.as_ref().unwrap(), plain.bs.as_ref().unwrap()],
                false,
                false,
            );
            let y2 = batch_norm(&x, &synced, &SingleReplica).unwrap();
            let g2 = Tensor::run_backward(
                &[(&y2 * &w).sum(Kind::Float)],
                &[&x, synced.ws.as_ref().unwrap(), synced.bs.as_ref().unwrap()],
                false,
                false,
            );
            assert!(max_diff(&y1, &y2) < 1e-5, "output {}", max_diff(&y1, &y2));
            for (a, b) in g1.iter().zip(&g2) {
                assert!(max_diff(a, b) < 1e-4, "gradient {}", max_diff(a, b));
            }
            assert!(max_diff(&plain.running_mean, &synced.running_mean) < 1e-6);
            assert!(max_diff(&plain.running_var, &synced.running_var) < 1e-5);
            assert!(
                max_diff(
                    &plain.running_mean,
                    &Tensor::zeros([4], (Kind::Float, Device::Cpu))
                ) > 1e-2
            );
        }
    }
}
