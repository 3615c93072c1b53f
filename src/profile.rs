//! Parameters and multiply-adds of a network, per stage and in total, counted from the model itself
//! (each layer's own geometry), as `shiftlive profile` prints them.

use std::fmt::Write;

use serde::Serialize;
use tch::nn;

use crate::model::{ActionNet, ModelConfig, ModelError, StageCost};

/// What `shiftlive profile` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    pub model: String,
    pub frames: i64,
    pub input_size: i64,
    pub classes: i64,
    /// Trainable parameters (BatchNorm scale and shift included, running statistics not).
    pub params: u64,
    /// Multiply-adds of convolutions and fully connected layers for the whole clip, the count the
    /// model zoos call FLOPs.
    pub flops: u64,
    pub flops_unit: &'static str,
    pub stages: Vec<StageCost>,
}

impl Profile {
    /// Builds the model on the CPU (random weights) and counts.
    pub fn of(config: &ModelConfig, frames: i64) -> Result<Self, ModelError> {
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let net = ActionNet::new(&vs.root(), config)?;
        let stages = net.stage_costs(frames, config.input_size);
        let params = vs
            .trainable_variables()
            .iter()
            .map(|t| t.numel() as u64)
            .sum();
        let flops = stages.iter().map(|s| s.macs).sum();
        Ok(Self {
            model: config.name.clone(),
            frames,
            input_size: config.input_size,
            classes: config.num_classes,
            params,
            flops,
            flops_unit: "multiply-adds",
            stages,
        })
    }

    /// A plain-text table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{}: {} frames of {}x{}, {} classes (FLOPs = multiply-adds of conv and fc layers)",
            self.model, self.frames, self.input_size, self.input_size, self.classes
        );
        let _ = writeln!(out, "{:<28} {:>14} {:>16}", "stage", "params", "GFLOPs");
        for s in &self.stages {
            let _ = writeln!(
                out,
                "{:<28} {:>14} {:>16.4}",
                s.name,
                group(s.params),
                s.macs as f64 / 1e9
            );
        }
        let _ = writeln!(
            out,
            "{:<28} {:>14} {:>16.4}",
            "total",
            group(self.params),
            self.flops as f64 / 1e9
        );
        let _ = writeln!(
            out,
            "{:<28} {:>14} {:>16.4}",
            "per frame",
            format!("{:.3} M", self.params as f64 / 1e6),
            self.flops as f64 / 1e9 / self.frames as f64
        );
        out
    }
}

/// 24328976 -> "24,328,976".
fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}
