//! Export of a network for the engines that serve video at scale: ONNX (written from shiftlive's
//! own module tree), TorchScript (the same stateless step traced through tch) and a Triton model
//! repository whose sequence batcher keeps each stream's shift cache as implicit state.
//!
//! A causal TSM (uni-directional shift) is exported as its online step: `frame` and one
//! `state_in_K` per shifted block in, `logits` and `state_out_K` out; zero states are a fresh
//! stream. Models that read future frames (bidirectional TSM, the temporal pool) and TSN are
//! exported as plain clip models (`frames` `[N, T, 3, S, S]` -> `logits`) to ONNX, and refused for
//! the stateful formats. A manifest (`OUT.json`, or `manifest.json` in a repository) says how to
//! feed what was written.
//!
//! Files: a single-file export goes through [`crate::fsio::AtomicFile`] (temporary file +
//! rename) for the model and the manifest; a repository is staged in a temporary directory and
//! renamed as a whole ([`crate::fsio::write_dir_atomic`]).

mod graph;
pub mod manifest;
pub mod onnx;
pub mod step;
mod trace;
pub mod triton;

/// The ONNX protobuf types, generated at build time from the vendored `proto/onnx.proto`.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/onnx.rs"));
}

use std::path::{Path, PathBuf};

use tch::{Device, nn};

use crate::fsio::{self, AtomicFile, WriteError};
use crate::model::checkpoint::{self, TensorFile};
use crate::model::{ActionNet, EmitError, ModelError};
use crate::preprocess::Transform;
pub use manifest::Manifest;
pub use onnx::{GraphKind, OnnxGraph, StateSpec};
pub use step::StatelessStep;

/// What to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// OUT: an ONNX file (opset 17), OUT.json its manifest
    Onnx,
    /// OUT: a TorchScript module of the online step, OUT.json its manifest
    Torchscript,
    /// OUT: a Triton model repository (config.pbtxt, 1/model.onnx, labels.txt, manifest.json)
    Triton,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("{}: {what}", path.display())]
    Refused { path: PathBuf, what: String },
    #[error("{}: cannot export model '{model}'", path.display())]
    Emit {
        path: PathBuf,
        model: String,
        #[source]
        source: EmitError,
    },
    #[error("{} exists (use --force to replace it)", .0.display())]
    Exists(PathBuf),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error("{}: cannot save the TorchScript module", path.display())]
    Save {
        path: PathBuf,
        #[source]
        source: tch::TchError,
    },
}

/// A loaded checkpoint with what its manifest needs.
pub struct Loaded {
    pub net: ActionNet,
    pub preprocess: Transform,
    pub labels: Option<Vec<String>>,
    pub stride: u32,
    // Owns the weights the network points to.
    _vs: nn::VarStore,
}

impl Loaded {
    /// Reads `path` (refusing non-finite weights, as every checkpoint read does) on the CPU.
    pub fn read(path: &Path) -> Result<Self, ExportError> {
        let file = TensorFile::read(path)?;
        let config = checkpoint::config_of(&file, path)?;
        let vs = nn::VarStore::new(Device::Cpu);
        let net = ActionNet::new(&vs.root(), &config)?;
        checkpoint::load_weights(&vs, &file.tensors, path, &config.name)?;
        let labels = checkpoint::labels_of(&file.metadata, path)?;
        let preprocess = match file.metadata.get("preprocess") {
            Some(json) => serde_json::from_str(json).map_err(|e| ExportError::Refused {
                path: path.to_path_buf(),
                what: format!("metadata 'preprocess' is not a preprocessing ({e})"),
            })?,
            None => Transform::imagenet(config.input_size as usize),
        };
        let stride = match file.metadata.get("stride") {
            Some(text) => text.trim().parse().map_err(|_| ExportError::Refused {
                path: path.to_path_buf(),
                what: format!("metadata 'stride' is '{text}', not a whole number"),
            })?,
            None => 1,
        };
        Ok(Self::new(vs, net, preprocess, labels, stride))
    }

    pub fn new(
        vs: nn::VarStore,
        net: ActionNet,
        preprocess: Transform,
        labels: Option<Vec<String>>,
        stride: u32,
    ) -> Self {
        Self {
            net,
            preprocess,
            labels,
            stride: stride.max(1),
            _vs: vs,
        }
    }

    /// The stream step for a causal network with shifted blocks, else a clip of its segments.
    pub fn graph_kind(&self) -> GraphKind {
        if self.net.config().is_causal() && self.net.shift_slots() > 0 {
            GraphKind::Stream
        } else {
            GraphKind::Clip {
                frames: self.net.config().num_segments,
            }
        }
    }
}

/// The manifest's path for a single-file export: `OUT.json` beside `OUT`.
pub fn manifest_path(out: &Path) -> PathBuf {
    let mut name = out.as_os_str().to_owned();
    name.push(".json");
    PathBuf::from(name)
}

/// Which graph to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum GraphChoice {
    /// The online step for a causal model with shifted blocks, else a clip model
    #[default]
    Auto,
    /// The online step with its state; refused for a model that reads future frames
    Stream,
    /// A clip model, [N, T, 3, S, S] -> logits (ONNX only)
    Clip,
}

/// What `shiftlive export` writes, as its flags say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Args)]
pub struct ExportOptions {
    /// What to write: an ONNX file, a TorchScript module, or a Triton model repository (a folder)
    #[arg(long, value_enum, default_value = "onnx")]
    pub format: ExportFormat,
    /// The online step (stream) or a clip model; auto: the step when the model is causal
    #[arg(long, value_enum, default_value = "auto")]
    pub graph: GraphChoice,
    /// Replace OUT (and its manifest) if it exists
    #[arg(long)]
    pub force: bool,
}

impl ExportOptions {
    pub fn new(format: ExportFormat) -> Self {
        Self {
            format,
            graph: GraphChoice::Auto,
            force: false,
        }
    }
}

/// Exports the checkpoint `input` to `out`; refuses an existing `out` unless `options.force`.
pub fn export(input: &Path, out: &Path, options: &ExportOptions) -> Result<Manifest, ExportError> {
    let format = options.format;
    let targets = match format {
        ExportFormat::Triton => vec![out.to_path_buf()],
        _ => vec![out.to_path_buf(), manifest_path(out)],
    };
    for target in &targets {
        if !options.force && std::fs::symlink_metadata(target).is_ok() {
            return Err(ExportError::Exists(target.clone()));
        }
        // Links, devices and the input file are refused before any work (fsio checks again).
        if format != ExportFormat::Triton {
            fsio::check_target(target, &[input])?;
        }
    }
    let loaded = Loaded::read(input)?;
    write_export(&loaded, input, out, options)
}

/// The graph to write for `options`, or why there is none.
fn choose_graph(loaded: &Loaded, options: &ExportOptions) -> Result<GraphKind, String> {
    let config = loaded.net.config();
    let flag = match options.format {
        ExportFormat::Onnx => "--graph stream",
        ExportFormat::Torchscript => "--format torchscript",
        ExportFormat::Triton => "--format triton",
    };
    let auto = loaded.graph_kind();
    let stateful = options.format != ExportFormat::Onnx || options.graph == GraphChoice::Stream;
    if options.graph == GraphChoice::Clip {
        if options.format != ExportFormat::Onnx {
            return Err(format!(
                "--graph clip is written as ONNX only, not with {flag}"
            ));
        }
        return Ok(GraphKind::Clip {
            frames: config.num_segments,
        });
    }
    if stateful && auto != GraphKind::Stream {
        let why = match config.check_causal() {
            Err(e) => e.to_string(),
            Ok(()) => format!("model '{}' has no temporal shift, so no state", config.name),
        };
        return Err(format!(
            "{why}; {flag} writes the online step with its state: export it with --format onnx \
             as a clip model ([N, T, 3, S, S] -> logits)"
        ));
    }
    Ok(auto)
}

/// Writes `loaded` (read from `input`, never overwritten) to `out`.
pub fn write_export(
    loaded: &Loaded,
    input: &Path,
    out: &Path,
    options: &ExportOptions,
) -> Result<Manifest, ExportError> {
    let config = loaded.net.config();
    let format = options.format;
    let kind = choose_graph(loaded, options).map_err(|what| ExportError::Refused {
        path: input.to_path_buf(),
        what,
    })?;
    let emit_error = |source| ExportError::Emit {
        path: input.to_path_buf(),
        model: config.name.clone(),
        source,
    };
    let name = sanitize(&config.name);
    let graph = onnx::build(&loaded.net, kind, &name).map_err(emit_error)?;
    let file_name = |p: &Path| {
        p.file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    };
    let manifest = |file: String| {
        Manifest::new(
            &graph,
            &config.name,
            file,
            loaded.preprocess.clone(),
            loaded.labels.clone(),
            loaded.stride,
        )
    };
    match format {
        ExportFormat::Onnx => {
            fsio::write_atomic_checked(out, &graph.to_bytes(), &[input])?;
            write_manifest(manifest(file_name(out)), out, input)
        }
        ExportFormat::Torchscript => {
            let manifest = manifest(file_name(out)).with_torchscript_names();
            let module = StatelessStep::new(&loaded.net)
                .and_then(|mut step| step.trace(1))
                .map_err(emit_error)?;
            let file = AtomicFile::create(out, &[input])?;
            module
                .save(file.temp_path())
                .map_err(|source| ExportError::Save {
                    path: out.to_path_buf(),
                    source,
                })?;
            // torch wrote the temporary file by its path; commit syncs and renames it.
            file.commit()?;
            write_manifest(manifest, out, input)
        }
        ExportFormat::Triton => {
            let manifest = manifest(format!("{name}/1/model.onnx"));
            let labels_file = loaded.labels.as_ref().map(|_| "labels.txt");
            let mut files = vec![
                (
                    PathBuf::from(&name).join("config.pbtxt"),
                    triton::config_pbtxt(&graph, &name, labels_file).into_bytes(),
                ),
                (PathBuf::from(&name).join("1/model.onnx"), graph.to_bytes()),
                (
                    PathBuf::from("manifest.json"),
                    manifest.to_json().into_bytes(),
                ),
            ];
            if let Some(labels) = &loaded.labels {
                let text = labels.join("\n") + "\n";
                files.push((PathBuf::from(&name).join("labels.txt"), text.into_bytes()));
            }
            fsio::write_dir_atomic(out, &files, &[input])?;
            Ok(manifest)
        }
    }
}

/// Writes the manifest of the single-file export `out` beside it (`OUT.json`).
fn write_manifest(manifest: Manifest, out: &Path, input: &Path) -> Result<Manifest, ExportError> {
    let json = manifest.to_json();
    fsio::write_atomic_checked(&manifest_path(out), json.as_bytes(), &[input])?;
    Ok(manifest)
}

/// A model name usable as a Triton model directory: letters, digits, `-` and `_`.
fn sanitize(name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.is_empty() {
        "model".into()
    } else {
        clean
    }
}
