//! One optimisation step and its losses: forward in training mode, cross-entropy (or the
//! distillation mix of [`distillation_loss`]), backward, loss-scale removal, clipping, update.
//!
//! The seam between backward and the update is [`StepHook::after_backward`]: a data-parallel run
//! all-reduces (averages) the gradients of its ranks there, so the finiteness check, clipping and
//! the SGD update that follow see the same gradients on every rank. A single-process run passes
//! [`NoHook`].

use tch::{Device, Kind, Reduction, Tensor, nn};

use super::TrainError;
use super::config::Distill;
use super::optim::Sgd;
use crate::model::{ActionNet, ModelConfig};

/// Called once per step between the backward pass and the optimiser's update, with the
/// gradients (still multiplied by the loss scale under mixed precision) in `sgd`'s parameters.
pub trait StepHook {
    fn after_backward(&mut self, sgd: &mut Sgd) -> Result<(), TrainError>;
}

/// The hook of a single-process run: nothing to exchange.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHook;

impl StepHook for NoHook {
    fn after_backward(&mut self, _sgd: &mut Sgd) -> Result<(), TrainError> {
        Ok(())
    }
}

/// How one optimisation step runs.
#[derive(Debug, Clone, Copy)]
pub struct StepSettings {
    pub lr: f64,
    pub label_smoothing: f64,
    pub clip_grad: Option<f64>,
    /// Mixed precision with this loss scale (CUDA); None: fp32.
    pub loss_scale: Option<f64>,
}

/// What one step computed.
pub struct StepOutput {
    /// The batch's mean loss before the update.
    pub loss: f64,
    /// `[N, classes]` logits before the update (fp32, no gradient).
    pub logits: Tensor,
    /// The gradient norm before clipping.
    pub grad_norm: Option<f64>,
    /// False when mixed precision overflowed and the update was skipped (or the loss was not
    /// finite, in which case nothing was touched).
    pub stepped: bool,
}

/// One SGD step of `net` on the clips `x` `[N*T, 3, H, W]` with labels `y` `[N]`: forward in
/// training mode, cross-entropy, backward, clipping, update. A non-finite loss returns before the
/// backward pass, leaving the weights as they were.
pub fn train_step(
    net: &ActionNet,
    sgd: &mut Sgd,
    x: &Tensor,
    y: &Tensor,
    s: &StepSettings,
) -> Result<StepOutput, TrainError> {
    train_step_with(net, sgd, x, y, None, s, &mut NoHook)
}

/// A teacher's logits for a batch and how to mix them into the loss (see [`Distill`]).
pub struct SoftTargets<'a> {
    /// `[N, classes]`, no gradient.
    pub logits: &'a Tensor,
    pub temperature: f64,
    pub weight: f64,
}

/// The distillation loss of `student` logits `[N, K]`: the labels' cross-entropy and the soft
/// targets' `T^2 * KL(teacher || student)` mixed by the soft weight (see [`Distill`]).
pub fn distillation_loss(
    student: &Tensor,
    y: &Tensor,
    soft: &SoftTargets<'_>,
    label_smoothing: f64,
) -> Tensor {
    let hard =
        student.cross_entropy_loss::<Tensor>(y, None, Reduction::Mean, -100, label_smoothing);
    let t = soft.temperature;
    let log_p_student = (student / t).log_softmax(1, Kind::Float);
    let log_p_teacher = (soft.logits / t).log_softmax(1, Kind::Float);
    let kl = (log_p_teacher.exp() * (&log_p_teacher - &log_p_student))
        .sum_dim_intlist(1, false, Kind::Float)
        .mean(Kind::Float);
    hard * (1.0 - soft.weight) + kl * (soft.weight * t * t)
}

/// [`train_step`] with an optional teacher's soft targets mixed into the loss and a hook between
/// backward and the update.
pub fn train_step_with(
    net: &ActionNet,
    sgd: &mut Sgd,
    x: &Tensor,
    y: &Tensor,
    soft: Option<&SoftTargets<'_>>,
    s: &StepSettings,
    hook: &mut dyn StepHook,
) -> Result<StepOutput, TrainError> {
    let out = tch::autocast(s.loss_scale.is_some(), || net.forward_clip(x, true))?;
    let logits = out.logits.to_kind(Kind::Float);
    let loss = match soft {
        Some(soft) => distillation_loss(&logits, y, soft, s.label_smoothing),
        None => {
            logits.cross_entropy_loss::<Tensor>(y, None, Reduction::Mean, -100, s.label_smoothing)
        }
    };
    let loss_value = loss.double_value(&[]);
    let detached = logits.detach();
    // Nothing updated: a non-finite loss (before backward) or an fp16 overflow.
    let skipped = |logits| StepOutput {
        loss: loss_value,
        logits,
        grad_norm: None,
        stepped: false,
    };
    if !loss_value.is_finite() {
        return Ok(skipped(detached));
    }
    sgd.zero_grad();
    match s.loss_scale {
        Some(scale) => (&loss * scale).backward(),
        None => loss.backward(),
    }
    hook.after_backward(sgd)?;
    if let Some(scale) = s.loss_scale {
        sgd.scale_grads(1.0 / scale);
        if !sgd.grads_finite() {
            return Ok(skipped(detached));
        }
    }
    let grad_norm = s.clip_grad.map(|max| sgd.clip_grad_norm(max));
    sgd.step(s.lr);
    Ok(StepOutput {
        loss: loss_value,
        logits: detached,
        grad_norm,
        stepped: true,
    })
}

/// A distillation teacher in evaluation mode, with its settings.
pub(super) struct Teacher {
    /// Owns the teacher's weights.
    _vs: nn::VarStore,
    net: ActionNet,
    pub temperature: f64,
    pub weight: f64,
}

impl Teacher {
    /// The distillation teacher, in evaluation mode: it must know the same classes and take the
    /// same input size as the student.
    pub(super) fn load(
        d: &Distill,
        student: &ModelConfig,
        device: Device,
    ) -> Result<Self, TrainError> {
        let (vs, net) = ActionNet::load(&d.teacher, device)?;
        let t = net.config();
        let mismatch = if t.num_classes != student.num_classes {
            Some(format!(
                "has {} classes, the data set {}",
                t.num_classes, student.num_classes
            ))
        } else if t.input_size != student.input_size {
            Some(format!(
                "takes {} px input, the student {} px",
                t.input_size, student.input_size
            ))
        } else {
            None
        };
        if let Some(mismatch) = mismatch {
            return Err(TrainError::TeacherMismatch {
                path: d.teacher.clone(),
                student: student.name.clone(),
                mismatch,
            });
        }
        tracing::info!("distilling from {} ({})", d.teacher.display(), t.name);
        Ok(Self {
            _vs: vs,
            net,
            temperature: d.temperature,
            weight: d.weight,
        })
    }

    /// `[N, classes]` logits of the clips `x` of `y.len()` videos, no gradient.
    pub(super) fn logits(&self, x: &Tensor, y: &Tensor) -> Result<Tensor, TrainError> {
        let frames = x.size()[0] / y.size()[0];
        let out = tch::no_grad(|| self.net.forward_clip_t(x, frames, false))?;
        Ok(out.logits.to_kind(Kind::Float))
    }
}

/// A seed for the random numbers of (a, b) in a run seeded with `seed`.
pub(super) fn mix(seed: u64, a: u64, b: u64) -> i64 {
    // SplitMix64 of the three, so nearby (epoch, step) give unrelated seeds.
    let mut z = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(a.wrapping_mul(0xBF58_476D_1CE4_E5B9))
        .wrapping_add(b.wrapping_mul(0x94D0_49BB_1331_11EB));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((z ^ (z >> 31)) >> 1) as i64
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The distillation loss against the formula evaluated by hand in f64.
    #[test]
    fn distillation_loss_is_the_mixed_cross_entropy_and_kl() {
        let student = [[1.0f64, -0.5, 2.0], [0.3, 0.2, -1.0]];
        let teacher = [[0.5f64, 0.0, 3.0], [-1.0, 2.0, 0.0]];
        let labels = [2i64, 0];
        let (t, w) = (3.0f64, 0.6f64);
        let log_softmax = |v: &[f64], t: f64| -> Vec<f64> {
            let m = v.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b / t));
            let z = v.iter().map(|x| (x / t - m).exp()).sum::<f64>().ln() + m;
            v.iter().map(|x| x / t - z).collect()
        };
        let mut want = 0.0;
        for i in 0..2 {
            let ce = -log_softmax(&student[i], 1.0)[labels[i] as usize];
            let (ls, lt) = (log_softmax(&student[i], t), log_softmax(&teacher[i], t));
            let kl: f64 = (0..3).map(|k| lt[k].exp() * (lt[k] - ls[k])).sum();
            want += ((1.0 - w) * ce + w * t * t * kl) / 2.0;
        }
        let tensor = |v: &[[f64; 3]; 2]| {
            Tensor::from_slice(&v.iter().flatten().map(|&x| x as f32).collect::<Vec<_>>())
                .view([2, 3])
        };
        let teacher_logits = tensor(&teacher);
        let soft = SoftTargets {
            logits: &teacher_logits,
            temperature: t,
            weight: w,
        };
        let got = distillation_loss(&tensor(&student), &Tensor::from_slice(&labels), &soft, 0.0)
            .double_value(&[]);
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
        // Weight 0 is plain cross-entropy; a teacher equal to the student adds nothing.
        let same = tensor(&student);
        let none = SoftTargets {
            logits: &same,
            temperature: t,
            weight: 0.5,
        };
        let plain = tensor(&student)
            .cross_entropy_loss::<Tensor>(
                &Tensor::from_slice(&labels),
                None,
                Reduction::Mean,
                -100,
                0.0,
            )
            .double_value(&[]);
        let mixed =
            distillation_loss(&same, &Tensor::from_slice(&labels), &none, 0.0).double_value(&[]);
        assert!((mixed - 0.5 * plain).abs() < 1e-6, "{mixed} vs {plain}");
    }
}
