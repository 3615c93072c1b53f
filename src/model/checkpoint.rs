//! Checkpoints: safetensors files whose metadata carries the model config as JSON, so a checkpoint
//! rebuilds its own network. Loading checks every key and shape and names each missing, unexpected
//! or mis-shaped tensor; writing goes to a temporary file in the same directory, then a rename, so a
//! crash never leaves a half-written checkpoint.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use safetensors::{Dtype, SafeTensors, View};
use tch::{Kind, Tensor, nn};

use super::ModelError;
use super::config::ModelConfig;

/// Metadata key of the model config.
pub const CONFIG_KEY: &str = "shiftlive.config";

/// Named tensors and string metadata, as read from or written to a safetensors file.
#[derive(Debug, Default)]
pub struct TensorFile {
    pub tensors: BTreeMap<String, Tensor>,
    pub metadata: BTreeMap<String, String>,
}

fn kind_of(dtype: Dtype) -> Option<Kind> {
    Some(match dtype {
        Dtype::F32 => Kind::Float,
        Dtype::F64 => Kind::Double,
        Dtype::F16 => Kind::Half,
        Dtype::BF16 => Kind::BFloat16,
        Dtype::I64 => Kind::Int64,
        Dtype::I32 => Kind::Int,
        Dtype::I16 => Kind::Int16,
        Dtype::I8 => Kind::Int8,
        Dtype::U8 => Kind::Uint8,
        Dtype::BOOL => Kind::Bool,
        _ => return None,
    })
}

fn dtype_of(kind: Kind) -> Option<Dtype> {
    Some(match kind {
        Kind::Float => Dtype::F32,
        Kind::Double => Dtype::F64,
        Kind::Half => Dtype::F16,
        Kind::BFloat16 => Dtype::BF16,
        Kind::Int64 => Dtype::I64,
        Kind::Int => Dtype::I32,
        Kind::Int16 => Dtype::I16,
        Kind::Int8 => Dtype::I8,
        Kind::Uint8 => Dtype::U8,
        Kind::Bool => Dtype::BOOL,
        _ => return None,
    })
}

impl TensorFile {
    /// Reads a safetensors file into CPU tensors, refusing a path that is not a regular file, a
    /// header larger than [`MAX_HEADER`] and any tensor holding NaN or an infinity (named).
    pub fn read(path: &Path) -> Result<Self, ModelError> {
        let fail = |what: String| ModelError::Checkpoint {
            path: path.to_path_buf(),
            what,
        };
        let (mut file, len) = open_checked(path)?;
        // The length read by the check, then the rest of the file.
        let mut bytes = len.to_le_bytes().to_vec();
        std::io::Read::read_to_end(&mut file, &mut bytes)
            .map_err(|e| fail(format!("cannot read: {e}")))?;
        let (_, header) = SafeTensors::read_metadata(&bytes)
            .map_err(|e| fail(format!("not a safetensors file ({e})")))?;
        let metadata = header
            .metadata()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        let st = SafeTensors::deserialize(&bytes)
            .map_err(|e| fail(format!("corrupt safetensors data ({e})")))?;
        let mut tensors = BTreeMap::new();
        for (name, view) in st.tensors() {
            let kind = kind_of(view.dtype()).ok_or_else(|| {
                fail(format!(
                    "tensor '{name}' has unsupported dtype {:?}",
                    view.dtype()
                ))
            })?;
            let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
            let tensor = Tensor::f_from_data_size(view.data(), &shape, kind)
                .map_err(|e| fail(format!("tensor '{name}': {e}")))?;
            let bad = non_finite(&tensor)?;
            if bad > 0 {
                return Err(fail(format!(
                    "tensor '{name}' holds {bad} non-finite value(s) (NaN or infinity)"
                )));
            }
            tensors.insert(name, tensor);
        }
        Ok(Self { tensors, metadata })
    }

    /// Reads only the metadata of a safetensors file (its header), not the tensors.
    pub fn read_metadata(path: &Path) -> Result<BTreeMap<String, String>, ModelError> {
        use std::io::Read;
        let fail = |what: String| ModelError::Checkpoint {
            path: path.to_path_buf(),
            what,
        };
        let (mut file, len) = open_checked(path)?;
        let mut header = vec![0u8; len as usize];
        file.read_exact(&mut header)
            .map_err(|e| fail(format!("cannot read the header: {e}")))?;
        let header: serde_json::Value = serde_json::from_slice(&header)
            .map_err(|e| fail(format!("not a safetensors file (header: {e})")))?;
        let mut metadata = BTreeMap::new();
        if let Some(serde_json::Value::Object(map)) = header.get("__metadata__") {
            for (key, value) in map {
                let value = value
                    .as_str()
                    .ok_or_else(|| fail(format!("metadata '{key}' is not a string")))?;
                metadata.insert(key.clone(), value.to_string());
            }
        }
        Ok(metadata)
    }

    /// Writes the file atomically: a temporary file in the same directory, then a rename.
    pub fn write(&self, path: &Path) -> Result<(), ModelError> {
        self.write_checked(path, &[])
    }

    /// [`TensorFile::write`], refusing to replace any of `inputs` (the files the command read).
    pub fn write_checked(&self, path: &Path, inputs: &[&Path]) -> Result<(), ModelError> {
        let mut views = Vec::with_capacity(self.tensors.len());
        for (name, tensor) in &self.tensors {
            views.push((name.as_str(), OwnedView::new(name, tensor, path)?));
        }
        let metadata: HashMap<String, String> = self.metadata.clone().into_iter().collect();
        let bytes =
            safetensors::serialize(views, Some(metadata)).map_err(|e| ModelError::Checkpoint {
                path: path.to_path_buf(),
                what: format!("cannot serialise: {e}"),
            })?;
        crate::fsio::write_atomic_checked(path, &bytes, inputs)?;
        Ok(())
    }
}

/// The largest safetensors header (JSON of names, shapes and metadata) a checkpoint may have.
pub const MAX_HEADER: u64 = 100_000_000;

/// Opens a checkpoint for reading: a regular file (not a device, fifo or directory, which could
/// be read forever or block) whose header length fits [`MAX_HEADER`] and the file. Returns the
/// file, positioned after the length, and the header length.
fn open_checked(path: &Path) -> Result<(std::fs::File, u64), ModelError> {
    use std::io::Read;
    let fail = |what: String| ModelError::Checkpoint {
        path: path.to_path_buf(),
        what,
    };
    let meta = std::fs::metadata(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    if !meta.is_file() {
        return Err(fail("not a regular file".into()));
    }
    let mut file = std::fs::File::open(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    let mut len = [0u8; 8];
    file.read_exact(&mut len)
        .map_err(|e| fail(format!("not a safetensors file (no header: {e})")))?;
    let len = u64::from_le_bytes(len);
    let size = meta.len();
    if len > MAX_HEADER || len.saturating_add(8) > size {
        return Err(fail(format!(
            "not a safetensors file (header of {len} bytes in a file of {size})"
        )));
    }
    Ok((file, len))
}

/// How many values of a floating-point tensor are NaN or infinite (0 for other kinds).
fn non_finite(tensor: &Tensor) -> Result<i64, ModelError> {
    if !tensor.is_floating_point() {
        return Ok(0);
    }
    let finite = tensor.f_isfinite()?.f_sum(Kind::Int64)?;
    Ok(tensor.numel() as i64 - i64::try_from(&finite)?)
}

/// A tensor copied to host bytes for serialisation.
struct OwnedView {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl OwnedView {
    fn new(name: &str, tensor: &Tensor, path: &Path) -> Result<Self, ModelError> {
        let dtype = dtype_of(tensor.kind()).ok_or_else(|| ModelError::Checkpoint {
            path: path.to_path_buf(),
            what: format!("tensor '{name}' has unsupported kind {:?}", tensor.kind()),
        })?;
        let host = tensor.to_device(tch::Device::Cpu).contiguous();
        let numel = host.numel();
        let mut bytes = vec![0u8; numel * tensor.kind().elt_size_in_bytes()];
        host.f_copy_data_u8(&mut bytes, numel)?;
        let shape = host.size().iter().map(|&d| d as usize).collect();
        Ok(Self {
            dtype,
            shape,
            bytes,
        })
    }
}

impl View for OwnedView {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// Keys a PyTorch state_dict carries that are not weights of ours.
fn ignored(name: &str) -> bool {
    // BatchNorm step counters, private entries, and the optimiser state that a training
    // checkpoint carries beside the weights.
    name.ends_with("num_batches_tracked")
        || name.starts_with("__")
        || name.starts_with("optimizer.")
}

/// The `preprocess` metadata of a checkpoint: what its frames must go through (resize of the
/// shorter side, centre crop, mean and std on values in [0, 1]).
pub fn preprocess_metadata(transform: &crate::preprocess::Transform) -> String {
    serde_json::to_string(transform).unwrap_or_default()
}

/// Lists at most a few names, then how many more.
pub(crate) fn summarise(names: &[String]) -> String {
    const SHOWN: usize = 12;
    let mut out = names
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        out.push_str(&format!(", ... and {} more", names.len() - SHOWN));
    }
    out
}

/// Copies `tensors` into the variables of `vs`, requiring an exact match of names and shapes.
pub fn load_weights(
    vs: &nn::VarStore,
    tensors: &BTreeMap<String, Tensor>,
    path: &Path,
    model: &str,
) -> Result<(), ModelError> {
    let vars = vs.variables();
    let mut missing: Vec<String> = vars
        .keys()
        .filter(|k| !tensors.contains_key(*k))
        .cloned()
        .collect();
    missing.sort();
    let unexpected: Vec<String> = tensors
        .keys()
        .filter(|k| !ignored(k) && !vars.contains_key(*k))
        .cloned()
        .collect();
    let mut misshaped = Vec::new();
    for (name, src) in tensors {
        if let Some(var) = vars.get(name)
            && var.size() != src.size()
        {
            misshaped.push(format!(
                "{name}: model has {:?}, file has {:?}",
                var.size(),
                src.size()
            ));
        }
    }
    if !(missing.is_empty() && unexpected.is_empty() && misshaped.is_empty()) {
        let mut report = Vec::new();
        if !missing.is_empty() {
            report.push(format!(
                "  missing ({}): {}",
                missing.len(),
                summarise(&missing)
            ));
        }
        if !unexpected.is_empty() {
            report.push(format!(
                "  unexpected ({}): {}",
                unexpected.len(),
                summarise(&unexpected)
            ));
        }
        if !misshaped.is_empty() {
            report.push(format!(
                "  wrong shape ({}): {}",
                misshaped.len(),
                summarise(&misshaped)
            ));
        }
        return Err(ModelError::CheckpointMismatch {
            path: path.to_path_buf(),
            model: model.to_string(),
            report: report.join("\n"),
        });
    }
    tch::no_grad(|| {
        for (name, var) in &vars {
            // Every variable has a source: checked above.
            if let Some(src) = tensors.get(name) {
                let mut var = var.shallow_clone();
                var.f_copy_(&src.to_kind(var.kind()))?;
            }
        }
        Ok::<(), tch::TchError>(())
    })?;
    Ok(())
}

/// Class names from a labels file's text: one per line, trimmed, blank lines skipped.
pub fn label_lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

/// Reads the model config stored in a checkpoint's metadata.
/// The class names a checkpoint carries (metadata `labels`, a JSON list), if any.
pub fn labels_of(
    metadata: &BTreeMap<String, String>,
    path: &Path,
) -> Result<Option<Vec<String>>, ModelError> {
    let Some(json) = metadata.get("labels") else {
        return Ok(None);
    };
    serde_json::from_str(json)
        .map(Some)
        .map_err(|e| ModelError::Checkpoint {
            path: path.to_path_buf(),
            what: format!("metadata 'labels' is not a list of names ({e})"),
        })
}

pub fn config_of(file: &TensorFile, path: &Path) -> Result<ModelConfig, ModelError> {
    let text = file.metadata.get(CONFIG_KEY).ok_or_else(|| ModelError::Checkpoint {
        path: path.to_path_buf(),
        what: format!("no '{CONFIG_KEY}' in its metadata: not a shiftlive checkpoint (use `shiftlive import`)"),
    })?;
    ModelConfig::from_json(text).map_err(|e| ModelError::Checkpoint {
        path: path.to_path_buf(),
        what: e.to_string(),
    })
}

/// Metadata key and value of the format tag every shiftlive checkpoint carries.
const FORMAT_KEY: &str = "format";
const FORMAT: &str = "shiftlive/1";

/// The weights of `vs` with the config, the format tag and `extra` in the metadata: a model
/// checkpoint, to write as it is or with more (a training checkpoint adds its optimiser state).
pub fn model_file(vs: &nn::VarStore, config: &ModelConfig, extra: &[(&str, String)]) -> TensorFile {
    let mut file = TensorFile::default();
    for (name, tensor) in vs.variables() {
        file.tensors.insert(name, tensor.detach());
    }
    file.metadata
        .insert(CONFIG_KEY.to_string(), config.to_json());
    file.metadata
        .insert(FORMAT_KEY.to_string(), FORMAT.to_string());
    for (key, value) in extra {
        file.metadata.insert((*key).to_string(), value.clone());
    }
    file
}

/// Saves the weights of `vs` with the config in the metadata.
pub fn save(
    vs: &nn::VarStore,
    config: &ModelConfig,
    extra: &[(&str, String)],
    path: &Path,
) -> Result<(), ModelError> {
    save_checked(vs, config, extra, path, &[])
}

/// [`save`], refusing to replace any of `inputs` (the files the command read).
pub fn save_checked(
    vs: &nn::VarStore,
    config: &ModelConfig,
    extra: &[(&str, String)],
    path: &Path,
    inputs: &[&Path],
) -> Result<(), ModelError> {
    model_file(vs, config, extra).write_checked(path, inputs)
}
