//! Stochastic gradient descent with momentum, as PyTorch's `torch.optim.SGD` computes it, with a
//! state that a checkpoint can carry (tch's own optimiser keeps its momentum out of reach, so an
//! interrupted run could not resume exactly).
//!
//! For each parameter `p` with gradient `g`, weight decay `wd`, momentum `m`, learning rate `lr`:
//! `g += wd * p`; `b = g` on the first step, else `b = m * b + g`; `g = g + m * b` (Nesterov) or
//! `g = b`; `p -= lr * g`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor, nn};

/// Settings of the optimiser.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SgdOptions {
    pub momentum: f64,
    pub nesterov: bool,
    pub weight_decay: f64,
    /// Multiplier of the learning rate of the classifier (TSM fine-tunes with 5x on `fc`).
    pub classifier_lr_mult: f64,
}

impl Default for SgdOptions {
    fn default() -> Self {
        Self {
            momentum: 0.9,
            nesterov: false,
            weight_decay: 5e-4,
            classifier_lr_mult: 1.0,
        }
    }
}

/// One trained tensor and how it is updated.
#[derive(Debug)]
struct Param {
    name: String,
    tensor: Tensor,
    /// Weight decay applies to convolution and linear weights, not to BatchNorm or biases
    /// (the TSN/TSM policy).
    decay: bool,
    lr_mult: f64,
    momentum: Option<Tensor>,
}

/// SGD over the trainable variables of a [`nn::VarStore`].
#[derive(Debug)]
pub struct Sgd {
    options: SgdOptions,
    params: Vec<Param>,
}

/// Prefix of the momentum buffers in a checkpoint.
pub const MOMENTUM_PREFIX: &str = "optimizer.momentum.";

/// Momentum buffers of a checkpoint that do not fit the parameters.
#[derive(Debug, thiserror::Error)]
pub enum OptimError {
    #[error("momentum of '{name}' has shape {saved:?}, the parameter {param:?}")]
    Shape {
        name: String,
        saved: Vec<i64>,
        param: Vec<i64>,
    },
    #[error("momentum '{key}' belongs to no trained parameter")]
    Orphan { key: String },
}

impl Sgd {
    /// Takes every variable of `vs` that requires a gradient; names starting with
    /// `classifier_prefix` get `classifier_lr_mult`.
    pub fn new(vs: &nn::VarStore, options: SgdOptions, classifier_prefix: &str) -> Self {
        let vars: BTreeMap<String, Tensor> = vs.variables().into_iter().collect();
        let params = vars
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .map(|(name, tensor)| Param {
                decay: tensor.dim() > 1,
                lr_mult: if name.starts_with(classifier_prefix) {
                    options.classifier_lr_mult
                } else {
                    1.0
                },
                name,
                tensor,
                momentum: None,
            })
            .collect();
        Self { options, params }
    }

    pub fn options(&self) -> &SgdOptions {
        &self.options
    }

    /// Names of the trained tensors.
    pub fn param_names(&self) -> impl Iterator<Item = &str> {
        self.params.iter().map(|p| p.name.as_str())
    }

    /// The gradients of the parameters that have one, in the parameters' (name) order: handles
    /// to the gradients themselves, so changing them in place changes what `step` applies.
    pub fn grads(&self) -> Vec<Tensor> {
        self.params
            .iter()
            .map(|p| p.tensor.grad())
            .filter(Tensor::defined)
            .collect()
    }

    pub fn zero_grad(&mut self) {
        for p in &mut self.params {
            p.tensor.zero_grad();
        }
    }

    /// The L2 norm of all gradients together.
    pub fn grad_norm(&self) -> f64 {
        tch::no_grad(|| {
            let mut total = 0f64;
            for p in &self.params {
                let g = p.tensor.grad();
                if g.defined() {
                    total += g
                        .to_kind(Kind::Double)
                        .square()
                        .sum(Kind::Double)
                        .double_value(&[]);
                }
            }
            total.sqrt()
        })
    }

    /// Scales all gradients so their joint norm is at most `max_norm`; returns the norm before.
    pub fn clip_grad_norm(&mut self, max_norm: f64) -> f64 {
        let norm = self.grad_norm();
        if norm.is_finite() && norm > max_norm {
            let scale = max_norm / (norm + 1e-6);
            self.scale_grads(scale);
        }
        norm
    }

    /// Multiplies every gradient by `scale` (loss-scale removal, clipping).
    pub fn scale_grads(&mut self, scale: f64) {
        tch::no_grad(|| {
            for p in &mut self.params {
                let mut g = p.tensor.grad();
                if g.defined() {
                    let _ = g.g_mul_scalar_(scale);
                }
            }
        });
    }

    /// Whether every gradient is finite.
    pub fn grads_finite(&self) -> bool {
        tch::no_grad(|| {
            self.params.iter().all(|p| {
                let g = p.tensor.grad();
                !g.defined() || g.isfinite().all().int64_value(&[]) != 0
            })
        })
    }

    /// One update with learning rate `lr`.
    pub fn step(&mut self, lr: f64) {
        let o = self.options;
        tch::no_grad(|| {
            for p in &mut self.params {
                let grad = p.tensor.grad();
                if !grad.defined() {
                    continue;
                }
                let mut g = if p.decay && o.weight_decay != 0.0 {
                    &grad + &p.tensor * o.weight_decay
                } else {
                    grad.shallow_clone()
                };
                if o.momentum != 0.0 {
                    let buf = match p.momentum.take() {
                        None => g.detach().copy(),
                        Some(mut b) => {
                            let _ = b.g_mul_scalar_(o.momentum).g_add_(&g);
                            b
                        }
                    };
                    g = if o.nesterov {
                        &g + &buf * o.momentum
                    } else {
                        buf.shallow_clone()
                    };
                    p.momentum = Some(buf);
                }
                let _ = p.tensor.g_add_(&(g * (-lr * p.lr_mult)));
            }
        });
    }

    /// The momentum buffers, keyed `optimizer.momentum.<param>`, for a checkpoint.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        self.params
            .iter()
            .filter_map(|p| {
                p.momentum
                    .as_ref()
                    .map(|b| (format!("{MOMENTUM_PREFIX}{}", p.name), b.detach().copy()))
            })
            .collect()
    }

    /// Restores the momentum buffers from a checkpoint's tensors; buffers of unknown parameters
    /// or of the wrong shape are an error naming them.
    pub fn load_state(&mut self, tensors: &BTreeMap<String, Tensor>) -> Result<usize, OptimError> {
        let mut loaded = 0;
        for p in &mut self.params {
            if let Some(t) = tensors.get(&format!("{MOMENTUM_PREFIX}{}", p.name)) {
                if t.size() != p.tensor.size() {
                    return Err(OptimError::Shape {
                        name: p.name.clone(),
                        saved: t.size(),
                        param: p.tensor.size(),
                    });
                }
                p.momentum = Some(t.to_device(p.tensor.device()).to_kind(p.tensor.kind()));
                loaded += 1;
            }
        }
        let known: std::collections::HashSet<String> = self
            .params
            .iter()
            .map(|p| format!("{MOMENTUM_PREFIX}{}", p.name))
            .collect();
        if let Some(extra) = tensors
            .keys()
            .find(|k| k.starts_with(MOMENTUM_PREFIX) && !known.contains(*k))
        {
            return Err(OptimError::Orphan { key: extra.clone() });
        }
        Ok(loaded)
    }
}
