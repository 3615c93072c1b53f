//! Reading PyTorch checkpoints (`torch.save`, `.pth` / `.pth.tar`) without Python.
//!
//! libtorch's readers that tch wraps do not take these files: `Tensor::load_multi` wants a C++
//! `OutputArchive` (it looks for `constants.pkl`) and `Tensor::loadz_multi` (libtorch's mobile
//! `_load_parameters`) fails on a Python-pickled dict ("Expected GenericDict but got None"), and
//! `torch::pickle_load` is not exposed. So this module reads the two formats itself:
//!
//! - the zip format of `torch.save` since PyTorch 1.6: `<name>/data.pkl` (a pickle whose
//!   persistent ids name storages) and `<name>/data/<key>` (raw little-endian storage bytes);
//! - the legacy format before it (any file saved with PyTorch < 1.6, such as releases from 2019,
//!   or with `_use_new_zipfile_serialization=False`): a magic-number pickle, a protocol pickle, a sys-info pickle, the object pickle, a pickle of
//!   the storage keys, then each storage as an i64 element count and its bytes.
//!
//! Both go through the pickle machine of `pickle.rs`; tensors are built from the storage bytes
//! with libtorch (`from_data_size`, `as_strided`).

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::Path;

use tch::{Kind, TchError, Tensor};

use super::pickle::Unpickler;
use super::pickle_value::{PickleError, TensorRef, Value};

/// Why a file is not a readable PyTorch checkpoint.
#[derive(Debug, thiserror::Error)]
pub enum PthError {
    #[error("cannot read")]
    Read(#[source] std::io::Error),
    #[error("not a PyTorch checkpoint: neither a torch.save zip archive nor a pickle")]
    NotPth,
    #[error("corrupt zip archive (truncated file?)")]
    Zip(#[source] zip::result::ZipError),
    #[error("zip archive without data.pkl: not a torch.save file")]
    NoDataPkl,
    #[error("zip entry {name}")]
    ZipEntry {
        name: String,
        #[source]
        source: zip::result::ZipError,
    },
    #[error("zip entry {name}")]
    ZipRead {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("big-endian checkpoints are not supported")]
    BigEndian,
    #[error(transparent)]
    Pickle(#[from] PickleError),
    #[error("legacy checkpoint without its storage key list")]
    NoStorageKeys,
    #[error("legacy checkpoint: storage key is not a string")]
    StorageKey,
    #[error("storage {key} cut short ({numel} elements): truncated file")]
    StorageCut {
        key: String,
        numel: usize,
        #[source]
        source: PickleError,
    },
    #[error(
        "the pickled object is not a dict (a whole pickled model? save its state_dict() instead)"
    )]
    NotDict,
    #[error("no state_dict found: top-level keys are [{}], none a dict of tensors", .keys.join(", "))]
    NoStateDict { keys: Vec<String> },
    #[error("tensor '{name}': storage {key} missing")]
    StorageMissing { name: String, key: String },
    #[error(
        "tensor '{name}' reaches past its storage ({needed} > {have} elements): truncated file?"
    )]
    PastStorage {
        name: String,
        needed: i64,
        have: i64,
    },
    #[error("tensor '{name}'")]
    Tensor {
        name: String,
        #[source]
        source: TchError,
    },
}

/// A checkpoint's tensors (the state_dict, found inside a dict if need be) and where they were.
#[derive(Debug)]
pub struct PthFile {
    pub tensors: BTreeMap<String, Tensor>,
    /// `""` for a bare state_dict, else the key of the dict that held it (`state_dict`, `model`).
    pub found_under: String,
    /// The top-level keys when the file held a dict of more than tensors.
    pub top_keys: Vec<String>,
}

/// Reads a `torch.save`d state_dict, or a dict holding one under `state_dict`, `model` or `net`.
pub fn read_pth(path: &Path) -> Result<PthFile, PthError> {
    let bytes = std::fs::read(path).map_err(PthError::Read)?;
    let (root, storages) = if bytes.starts_with(b"PK\x03\x04") {
        read_zip(&bytes)?
    } else if bytes.starts_with(&[0x80, 0x02]) {
        read_legacy(&bytes)?
    } else {
        return Err(PthError::NotPth);
    };
    let (refs, found_under, top_keys) = state_dict_of(root)?;
    let mut tensors = BTreeMap::new();
    for (name, r) in refs {
        let Some(storage) = storages.get(&r.key) else {
            return Err(PthError::StorageMissing { name, key: r.key });
        };
        let tensor = build_tensor(&name, storage, &r)?;
        tensors.insert(name, tensor);
    }
    Ok(PthFile {
        tensors,
        found_under,
        top_keys,
    })
}

/// The tensor `name`, as `r` describes it, copied out of the storage bytes.
fn build_tensor(name: &str, storage: &[u8], r: &TensorRef) -> Result<Tensor, PthError> {
    let torch = |source| PthError::Tensor {
        name: name.to_string(),
        source,
    };
    let elt = r.kind.elt_size_in_bytes();
    let flat = Tensor::f_from_data_size(storage, &[(storage.len() / elt) as i64], r.kind)
        .map_err(torch)?;
    let needed = r.offset
        + r.size
            .iter()
            .zip(&r.stride)
            .map(|(s, st)| (s - 1).max(0) * st)
            .sum::<i64>()
        + 1;
    let have = flat.numel() as i64;
    if r.size.iter().all(|&s| s > 0) && needed > have {
        return Err(PthError::PastStorage {
            name: name.to_string(),
            needed,
            have,
        });
    }
    let tensor = flat
        .f_as_strided(r.size.as_slice(), r.stride.as_slice(), r.offset)
        .and_then(|t| t.f_contiguous())
        .map_err(torch)?;
    Ok(tensor.copy())
}

type Parsed = (Value, HashMap<String, Vec<u8>>);

type Archive<'a> = zip::ZipArchive<std::io::Cursor<&'a [u8]>>;

/// The bytes of one zip entry.
fn entry(archive: &mut Archive, name: &str) -> Result<Vec<u8>, PthError> {
    let mut entry = archive.by_name(name).map_err(|source| PthError::ZipEntry {
        name: name.to_string(),
        source,
    })?;
    let mut out = Vec::new();
    entry
        .read_to_end(&mut out)
        .map_err(|source| PthError::ZipRead {
            name: name.to_string(),
            source,
        })?;
    Ok(out)
}

fn read_zip(bytes: &[u8]) -> Result<Parsed, PthError> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(PthError::Zip)?;
    let pkl = archive
        .file_names()
        .find(|n| n.ends_with("data.pkl"))
        .map(str::to_string)
        .ok_or(PthError::NoDataPkl)?;
    let prefix = pkl.trim_end_matches("data.pkl").to_string();
    // Files without a byteorder entry (PyTorch < 1.10) are little-endian.
    if let Ok(order) = entry(&mut archive, &format!("{prefix}byteorder"))
        && order != b"little"
    {
        return Err(PthError::BigEndian);
    }
    let pickle = entry(&mut archive, &pkl)?;
    let root = Unpickler::new(&pickle, 0).run()?;
    let mut storages = HashMap::new();
    let keys: Vec<String> = archive
        .file_names()
        .filter_map(|n| {
            n.strip_prefix(&format!("{prefix}data/"))
                .map(str::to_string)
        })
        .collect();
    for key in keys {
        let data = entry(&mut archive, &format!("{prefix}data/{key}"))?;
        storages.insert(key, data);
    }
    Ok((root, storages))
}

fn read_legacy(bytes: &[u8]) -> Result<Parsed, PthError> {
    let mut pos = 0;
    let mut next = || {
        let mut u = Unpickler::new(bytes, pos);
        let value = u.run();
        pos = u.pos;
        value
    };
    let _magic = next()?;
    let _protocol = next()?;
    let _sys_info = next()?;
    let root = next()?;
    let Value::List(keys) = next()? else {
        return Err(PthError::NoStorageKeys);
    };
    // The kinds of the storages, from the tensors that use them.
    let mut kinds = HashMap::new();
    collect_storages(&root, &mut kinds);
    let mut storages = HashMap::new();
    let mut u = Unpickler::new(bytes, pos);
    for key in keys {
        let Value::Str(key) = key else {
            return Err(PthError::StorageKey);
        };
        let numel = u.le(8)? as usize;
        let elt = kinds.get(&key).map_or(1, |k: &Kind| k.elt_size_in_bytes());
        let data = match u.take(numel.saturating_mul(elt)) {
            Ok(data) => data,
            Err(source) => return Err(PthError::StorageCut { key, numel, source }),
        };
        storages.insert(key, data.to_vec());
    }
    Ok((root, storages))
}
fn collect_storages(v: &Value, kinds: &mut HashMap<String, Kind>) {
    match v {
        Value::Tensor(r) => {
            kinds.insert(r.key.clone(), r.kind);
        }
        Value::Dict(items) => items.iter().for_each(|(_, v)| collect_storages(v, kinds)),
        Value::List(items) | Value::Tuple(items) => {
            items.iter().for_each(|v| collect_storages(v, kinds))
        }
        _ => {}
    }
}

type StateDict = (Vec<(String, TensorRef)>, String, Vec<String>);

/// The state_dict: the root if it is a dict of tensors, else the dict under a known key.
fn state_dict_of(root: Value) -> Result<StateDict, PthError> {
    let Value::Dict(items) = root else {
        return Err(PthError::NotDict);
    };
    let as_tensors = |items: &[(Value, Value)]| -> Option<Vec<(String, TensorRef)>> {
        let out: Vec<(String, TensorRef)> = items
            .iter()
            .filter_map(|(k, v)| match (k, v) {
                (Value::Str(k), Value::Tensor(t)) => Some((k.clone(), t.clone())),
                _ => None,
            })
            .collect();
        (!out.is_empty() && out.len() == items.len()).then_some(out)
    };
    if let Some(t) = as_tensors(&items) {
        return Ok((t, String::new(), Vec::new()));
    }
    let top_keys: Vec<String> = items
        .iter()
        .map(|(k, _)| match k {
            Value::Str(s) => s.clone(),
            other => format!("{other:?}"),
        })
        .collect();
    for wanted in ["state_dict", "model", "net"] {
        let found = items.iter().find_map(|(k, v)| match (k, v) {
            (Value::Str(k), Value::Dict(inner)) if k == wanted => Some(inner),
            _ => None,
        });
        if let Some(t) = found.and_then(|inner| as_tensors(inner)) {
            return Ok((t, wanted.to_string(), top_keys));
        }
    }
    Err(PthError::NoStateDict { keys: top_keys })
}
