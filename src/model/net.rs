//! A whole action-recognition network: a 2D trunk with its temporal module (or ECO), and the TSN
//! head (Wang et al., "Temporal Segment Networks", ECCV 2016): dropout, a linear classifier per
//! frame, and the average of the per-frame scores over the clip (segment consensus).

use std::path::Path;

use tch::{Device, Tensor, nn};

use super::ModelError;
use super::body::Body;
use super::checkpoint::{self, TensorFile};
use super::config::{ModelConfig, Temporal};
use super::eco::{Eco, EcoFrames};
use super::emit::{EmitError, Emitter, Value};
use super::layers::{InferenceLayout, StageCost, linear_macs};
use super::shift::{ShiftCache, TimeAxis};
use super::trunk::Trunk;

/// Output of a clip forward pass.
#[derive(Debug)]
pub struct ClipOutput {
    /// `[N, classes]`: the consensus (mean over time) of the per-frame logits.
    pub logits: Tensor,
    /// `[N*T', classes]`: logits of every frame before the consensus (T' = T/2 after a temporal pool).
    /// ECO classifies whole clips: one row per clip, equal to `logits` (T' = 1).
    pub frame_logits: Tensor,
}

/// An action-recognition network built from a [`ModelConfig`].
#[derive(Debug)]
pub struct ActionNet {
    config: ModelConfig,
    body: Body,
    fc: nn::Linear,
    /// `<classifier>.`: the classifier's variable names start with it.
    classifier_prefix: String,
    /// Slots of a shift cache (the trunk's shift points), counted once: streams check it per frame.
    shift_slots: usize,
    /// Set by [`ActionNet::prepare_inference`]: the layout and the classifier converted to it.
    inference: Option<(InferenceLayout, Tensor, Tensor)>,
}

impl ActionNet {
    /// Builds the network under `p` (PyTorch parameter names: `conv1`, `layer1.0...`, `fc` for
    /// ResNets; `features.N...`, `classifier.1` for MobileNetV2; `features.N...`,
    /// `classifier.{0,3}` (fc6, fc7) and `classifier.6` for VGG; ECO's flat names and `new_fc`).
    pub fn new(p: &nn::Path, config: &ModelConfig) -> Result<Self, ModelError> {
        config.validate()?;
        let body = Body::new(p, config);
        let classifier = body.classifier();
        let fc_path = classifier
            .split('.')
            .fold(p.clone(), |path, part| path / part);
        let features = body.out_channels();
        // TSM initialises its new classifier with N(0, 0.001) and a zero bias.
        let fc_config = nn::LinearConfig {
            ws_init: nn::Init::Randn {
                mean: 0.0,
                stdev: 0.001,
            },
            bs_init: Some(nn::Init::Const(0.0)),
            bias: true,
        };
        let fc = nn::linear(fc_path, features, config.num_classes, fc_config);
        Ok(Self {
            config: config.clone(),
            fc,
            classifier_prefix: format!("{classifier}."),
            shift_slots: body.shift_slots(),
            body,
            inference: None,
        })
    }

    /// Readies the network for inference only: BatchNorm folded into the convolutions, weights
    /// converted to `layout` (dtype, channels-last). Training passes are refused afterwards.
    pub fn prepare_inference(&mut self, layout: InferenceLayout) {
        self.body.fold(layout);
        let weight = self.fc.ws.detach().to_kind(layout.kind);
        let bias = match &self.fc.bs {
            Some(b) => b.detach().to_kind(layout.kind),
            None => Tensor::zeros(
                [self.config.num_classes],
                (layout.kind, self.fc.ws.device()),
            ),
        };
        self.inference = Some((layout, weight, bias));
    }

    /// Partial BN (TSN, Wang et al. 2016): every BatchNorm of the trunk but the first keeps its
    /// statistics and its scale and shift, which helps fine-tuning on small data sets. VGG has
    /// no BatchNorm: nothing changes. ECO's 3D BatchNorms keep training.
    pub fn set_partial_bn(&mut self, on: bool) {
        for (i, conv) in self.body.conv_bns_mut().into_iter().enumerate() {
            conv.freeze_bn(on && i > 0);
        }
    }

    /// Synchronised BatchNorm for data-parallel training (None: per-replica statistics, DDP's
    /// default): every training pass of the trunk's 2D BatchNorms takes the statistics of the
    /// global batch through `sync`. ECO's 3D BatchNorms keep per-replica statistics; frozen ones
    /// (partial BN) are not touched.
    pub fn sync_batch_norm(&mut self, sync: Option<crate::model::sync_bn::SyncBn>) {
        for conv in self.body.conv_bns_mut() {
            conv.sync_bn(sync.clone());
        }
    }

    /// Re-initialises the classifier as PyTorch's `nn.Linear` does (uniform in +-1/sqrt(fan_in)),
    /// for training from scratch: TSM's N(0, 0.001) suits a pretrained trunk, but from scratch
    /// its tiny weights starve the trunk of gradient for many epochs.
    pub fn reset_classifier_default(&mut self) {
        let bound = 1.0 / (self.feature_dim() as f64).sqrt();
        tch::no_grad(|| {
            let _ = self.fc.ws.uniform_(-bound, bound);
            if let Some(b) = self.fc.bs.as_mut() {
                let _ = b.uniform_(-bound, bound);
            }
        });
    }

    /// Re-initialises every convolution as PyTorch's `nn.Conv2d`/`nn.Conv3d` do by default
    /// (uniform in +-1/sqrt(fan_in)), for training from scratch. The torchvision ResNet init
    /// (Kaiming normal, fan-out) gives weights about 2.5x larger; with BatchNorm after each conv
    /// that divides the effective learning rate by about 6, and on the synthetic motion set the
    /// networks then sit on the chance plateau for many more epochs.
    pub fn reset_convs_default(vs: &nn::VarStore) {
        tch::no_grad(|| {
            // In name order: the same seed gives the same weights.
            let vars: std::collections::BTreeMap<String, Tensor> =
                vs.variables().into_iter().collect();
            for (name, mut w) in vars {
                if name.ends_with("weight") && w.dim() >= 4 {
                    let fan_in: i64 = w.size()[1..].iter().product();
                    let bound = 1.0 / (fan_in as f64).sqrt();
                    let _ = w.uniform_(-bound, bound);
                }
            }
        });
    }

    /// The device the weights live on.
    pub fn device(&self) -> Device {
        self.fc.ws.device()
    }

    /// The start of the classifier's variable names (`fc.`, `classifier.1.`, for VGG
    /// `classifier.6.`, for ECO `new_fc.`), replaced when a checkpoint of another class count
    /// initialises training.
    pub fn classifier_prefix(&self) -> &str {
        &self.classifier_prefix
    }

    /// The inference layout, once prepared.
    pub fn inference_layout(&self) -> Option<InferenceLayout> {
        self.inference.as_ref().map(|(layout, _, _)| *layout)
    }

    /// Builds the network on `device` and loads a checkpoint, whose metadata gives the config.
    pub fn load(path: &Path, device: Device) -> Result<(nn::VarStore, Self), ModelError> {
        let file = TensorFile::read(path)?;
        let config = checkpoint::config_of(&file, path)?;
        let vs = nn::VarStore::new(device);
        let net = Self::new(&vs.root(), &config)?;
        checkpoint::load_weights(&vs, &file.tensors, path, &config.name)?;
        Ok((vs, net))
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// Number of shifted blocks, each one slot of a [`ShiftCache`].
    pub fn shift_slots(&self) -> usize {
        self.shift_slots
    }

    /// The per-frame trunk, whose layers and shift points a visitor can walk (`None` for ECO).
    pub fn trunk(&self) -> Option<&dyn Trunk> {
        self.body.trunk()
    }

    /// Emits the per-frame network, `[B, 3, H, W]` -> logits `[B, classes]`, in inference mode
    /// (BatchNorm folded, no dropout) into `e`: what an export writes. ECO has no per-frame trunk.
    pub fn emit(&self, e: &mut dyn Emitter, x: Value) -> Result<Value, EmitError> {
        let trunk = self.body.trunk().ok_or_else(|| {
            EmitError::Unsupported(
                "ECO reasons over whole clips with 3D convolutions: it has no per-frame graph to \
                 export"
                    .into(),
            )
        })?;
        let features = trunk.emit(e, x)?; // [B, C]
        e.linear(&self.fc.ws, self.fc.bs.as_ref(), features) // [B, classes]
    }

    /// Features per frame before the classifier.
    pub fn feature_dim(&self) -> i64 {
        self.fc.ws.size()[1]
    }

    /// Checks a `[B, 3, H, W]` float batch; returns B.
    fn check_frames(&self, x: &Tensor) -> Result<i64, ModelError> {
        let bad = |expected: &str, got: String| ModelError::Input {
            model: self.config.name.clone(),
            expected: expected.to_string(),
            got,
        };
        let size = x.size();
        let [b, c, h, w] = size[..] else {
            return Err(bad(
                "a 4-D batch [frames, 3, H, W]",
                format!("shape {size:?}"),
            ));
        };
        if c != 3 {
            return Err(bad(
                "3 colour channels",
                format!("{c} channels (shape {size:?})"),
            ));
        }
        if b == 0 || h < 32 || w < 32 {
            return Err(bad(
                "at least one frame of at least 32x32",
                format!("shape {size:?}"),
            ));
        }
        if !x.is_floating_point() {
            return Err(bad("a floating-point tensor", format!("{:?}", x.kind())));
        }
        Ok(b)
    }

    /// The input in the inference layout, once prepared.
    fn inference_input(&self, x: &Tensor) -> Tensor {
        match &self.inference {
            Some((layout, _, _)) => layout.apply(x),
            None => x.shallow_clone(),
        }
    }

    /// ECO's per-frame 2D part on `[B, 3, H, W]` frames (evaluation mode, no gradients): what
    /// the online runner keeps in its working memory. Errors for other networks.
    pub fn eco_frames(&self, x: &Tensor) -> Result<EcoFrames, ModelError> {
        let eco = self.eco()?;
        self.check_frames(x)?;
        Ok(tch::no_grad(|| {
            eco.frames_t(&self.inference_input(x), false)
        }))
    }

    /// ECO's clip part on the 2D outputs of `N*t` frames: logits `[N, classes]` (evaluation
    /// mode, no gradients). `forward_clip_t` is `eco_frames` followed by this.
    pub fn eco_logits(&self, frames: &EcoFrames, t: i64) -> Result<Tensor, ModelError> {
        let eco = self.eco()?;
        let count = frames.len();
        if t < 1 || count % t != 0 {
            return Err(ModelError::Input {
                model: self.config.name.clone(),
                expected: format!("a frame count divisible by the {t} frames of a clip"),
                got: format!("{count} frames"),
            });
        }
        let features = tch::no_grad(|| eco.clip_t(frames, t, false))?;
        Ok(tch::no_grad(|| self.head(&features, false)))
    }

    fn eco(&self) -> Result<&Eco, ModelError> {
        self.body.eco().ok_or_else(|| ModelError::Input {
            model: self.config.name.clone(),
            expected: "an ECO network".into(),
            got: format!("backbone {:?}", self.config.backbone),
        })
    }

    /// Dropout and the classifier, per frame. For VGG this dropout is the one after fc7.
    fn head(&self, features: &Tensor, train: bool) -> Tensor {
        match &self.inference {
            Some((_, weight, bias)) => features
                .linear(weight, Some(bias))
                .to_kind(tch::Kind::Float),
            None => features.dropout(self.config.dropout, train).apply(&self.fc),
        }
    }

    /// Clips of the configured `num_segments` frames: `[N*T, 3, H, W]` -> logits `[N, classes]`.
    pub fn forward_clip(&self, x: &Tensor, train: bool) -> Result<ClipOutput, ModelError> {
        self.forward_clip_t(x, self.config.num_segments, train)
    }

    /// Clips of `t` frames each, `[N*T, 3, H, W]`; `t` may differ from the training segments
    /// (a longer clip for evaluation, or a whole stream for the causal model).
    pub fn forward_clip_t(
        &self,
        x: &Tensor,
        t: i64,
        train: bool,
    ) -> Result<ClipOutput, ModelError> {
        let frames = self.check_frames(x)?;
        if train && self.inference.is_some() {
            return Err(ModelError::Input {
                model: self.config.name.clone(),
                expected: "an evaluation pass (this network was folded for inference)".into(),
                got: "a training pass".into(),
            });
        }
        if t < 1 || frames % t != 0 {
            return Err(ModelError::Input {
                model: self.config.name.clone(),
                expected: format!("a frame count divisible by the {t} frames of a clip"),
                got: format!("{frames} frames"),
            });
        }
        if matches!(
            self.config.temporal,
            Temporal::Shift {
                temporal_pool: true,
                ..
            }
        ) && t % 2 != 0
        {
            return Err(ModelError::Input {
                model: self.config.name.clone(),
                expected: "an even number of frames per clip (the temporal pool halves it)".into(),
                got: format!("{t} frames per clip"),
            });
        }
        let n = frames / t;
        let mut time = TimeAxis::Clip { t };
        let features = self
            .body
            .forward_t(&self.inference_input(x), &mut time, train)?; // [N*T', C]
        let frame_logits = self.head(&features, train); // [N*T', classes]
        let t_out = time.frames();
        let logits = frame_logits.view([n, t_out, -1]).mean_dim(1, false, None); // [N, classes]
        Ok(ClipOutput {
            logits,
            frame_logits,
        })
    }

    /// Refuses networks that would need future frames (see [`ModelConfig::check_causal`]).
    pub fn check_causal(&self) -> Result<(), ModelError> {
        self.config.check_causal()
    }

    /// An empty streaming state for this network.
    pub fn new_cache(&self) -> ShiftCache {
        ShiftCache::new(self.shift_slots())
    }

    /// One new frame for each of S streams: `[S, 3, H, W]` -> per-frame logits `[S, classes]`.
    /// The cache holds each stream's past (row s of every slot belongs to stream s).
    pub fn forward_stream(&self, x: &Tensor, cache: &mut ShiftCache) -> Result<Tensor, ModelError> {
        self.check_causal()?;
        self.check_frames(x)?;
        if cache.len() != self.shift_slots() {
            return Err(ModelError::Input {
                model: self.config.name.clone(),
                expected: format!("a shift cache of {} slots", self.shift_slots()),
                got: format!("one of {} slots (made for another network?)", cache.len()),
            });
        }
        let x = self.inference_input(x);
        // The stream shift works in place on activations: never under autograd.
        let features =
            tch::no_grad(|| self.body.forward_t(&x, &mut TimeAxis::Stream(cache), false))?; // [S, C]
        Ok(self.head(&features, false))
    }

    /// Parameters and multiply-adds per stage for `frames` frames of `size` x `size`, the
    /// classifier last (under its module path).
    pub fn stage_costs(&self, frames: i64, size: i64) -> Vec<StageCost> {
        let (mut rows, head_frames) = self.body.stage_costs(frames, size);
        let (classes, features) = (self.config.num_classes, self.feature_dim());
        rows.push(StageCost {
            name: self.body.classifier().into(),
            params: (classes * features + classes) as u64,
            macs: linear_macs(head_frames, features, classes),
        });
        rows
    }
}
