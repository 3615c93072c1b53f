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

use tch::{Kind, Tensor};

use super::pickle::{TensorRef, Unpickler, Value};
use crate::model::ModelError;

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
pub fn read_pth(path: &Path) -> Result<PthFile, ModelError> {
    let fail = |what: String| ModelError::Checkpoint {
        path: path.to_path_buf(),
        what,
    };
    let bytes = std::fs::read(path).map_err(|e| fail(format!("cannot read: {e}")))?;
    let (root, storages) = if bytes.starts_with(b"PK\x03\x04") {
        read_zip(&bytes).map_err(fail)?
    } else if bytes.starts_with(&[0x80, 0x02]) {
        read_legacy(&bytes).map_err(fail)?
    } else {
        return Err(fail(
            "not a PyTorch checkpoint: neither a torch.save zip archive nor a pickle".into(),
        ));
    };
    let (refs, found_under, top_keys) = state_dict_of(root).map_err(fail)?;
    let mut tensors = BTreeMap::new();
    for (name, r) in refs {
        let storage = storages
            .get(&r.key)
            .ok_or_else(|| fail(format!("tensor '{name}': storage {} missing", r.key)))?;
        let bytes = storage.as_slice();
        let elt = r.kind.elt_size_in_bytes();
        let flat = Tensor::f_from_data_size(bytes, &[(bytes.len() / elt) as i64], r.kind)
            .map_err(|e| fail(format!("tensor '{name}': {e}")))?;
        let needed = r.offset
            + r.size
                .iter()
                .zip(&r.stride)
                .map(|(s, st)| (s - 1).max(0) * st)
                .sum::<i64>()
            + 1;
        if r.size.iter().all(|&s| s > 0) && needed > flat.numel() as i64 {
            return Err(fail(format!(
                "tensor '{name}' reaches past its storage ({needed} > {} elements): truncated file?",
                flat.numel()
            )));
        }
        let tensor = flat
            .f_as_strided(r.size.as_slice(), r.stride.as_slice(), r.offset)
            .and_then(|t| t.f_contiguous())
            .map_err(|e| fail(format!("tensor '{name}': {e}")))?;
        tensors.insert(name, tensor.copy());
    }
    Ok(PthFile {
        tensors,
        found_under,
        top_keys,
    })
}

type Parsed = (Value, HashMap<String, Vec<u8>>);

fn read_zip(bytes: &[u8]) -> Result<Parsed, String> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| format!("corrupt zip archive (truncated file?): {e}"))?;
    let pkl = archive
        .file_names()
        .find(|n| n.ends_with("data.pkl"))
        .map(str::to_string)
        .ok_or("zip archive without data.pkl: not a torch.save file")?;
    let prefix = pkl.trim_end_matches("data.pkl").to_string();
    let read = |archive: &mut zip::ZipArchive<std::io::Cursor<&[u8]>>, name: &str| {
        let mut entry = archive
            .by_name(name)
            .map_err(|e| format!("zip entry {name}: {e}"))?;
        let mut out = Vec::new();
        entry
            .read_to_end(&mut out)
            .map_err(|e| format!("zip entry {name}: {e}"))?;
        Ok::<_, String>(out)
    };
    if let Ok(order) = read(&mut archive, &format!("{prefix}byteorder"))
        && order != b"little"
    {
        return Err("big-endian checkpoints are not supported".into());
    }
    let pickle = read(&mut archive, &pkl)?;
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
        let data = read(&mut archive, &format!("{prefix}data/{key}"))?;
        storages.insert(key, data);
    }
    Ok((root, storages))
}

fn read_legacy(bytes: &[u8]) -> Result<Parsed, String> {
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
        return Err("legacy checkpoint without its storage key list".into());
    };
    // The kinds of the storages, from the tensors that use them.
    let mut kinds = HashMap::new();
    collect_storages(&root, &mut kinds);
    let mut storages = HashMap::new();
    let mut u = Unpickler::new(bytes, pos);
    for key in keys {
        let Value::Str(key) = key else {
            return Err("legacy checkpoint: storage key is not a string".into());
        };
        let numel = u.le(8)? as usize;
        let elt = kinds.get(&key).map_or(1, |k: &Kind| k.elt_size_in_bytes());
        let data = u
            .take(numel.saturating_mul(elt))
            .map_err(|_| format!("storage {key} cut short ({numel} elements): truncated file"))?;
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
fn state_dict_of(root: Value) -> Result<StateDict, String> {
    let Value::Dict(items) = root else {
        return Err(
            "the pickled object is not a dict (a whole pickled model? save its \
                    state_dict() instead)"
                .into(),
        );
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
    Err(format!(
        "no state_dict found: top-level keys are [{}], none a dict of tensors",
        top_keys.join(", ")
    ))
}
