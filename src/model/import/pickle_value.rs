//! The values of the pickle machine (`pickle.rs`) and what it makes of the callables that
//! `torch.save` pickles name: `OrderedDict`, the tensor rebuilders (`torch._utils.
//! _rebuild_tensor_v2`, `_rebuild_parameter`) and storages from persistent ids
//! `('storage', type, key, ...)`. Any other class becomes an opaque object, so training metadata
//! (numpy scalars, configs, optimiser state) never stops an import; only tensors are used.
//! Globals that only a malicious pickle names (`os.system`, `builtins.eval`, ...) are refused.

use tch::Kind;

/// Why a pickle could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PickleError {
    #[error("truncated pickle: {wanted} bytes wanted at byte {at} of {len}")]
    Truncated {
        wanted: usize,
        at: usize,
        len: usize,
    },
    #[error("truncated pickle: unterminated line at byte {at}")]
    UnterminatedLine { at: usize },
    #[error("malformed pickle: stack underflow")]
    StackUnderflow,
    #[error("malformed pickle: no mark")]
    NoMark,
    #[error("malformed pickle: memo {0} unset")]
    MemoUnset(u32),
    #[error("malformed pickle: STACK_GLOBAL without two strings")]
    StackGlobal,
    #[error("malformed {name} arguments: {what}")]
    RebuildArgs { name: String, what: &'static str },
    #[error("unsupported storage {0}")]
    Storage(String),
    #[error("unsupported persistent id (not a tensor storage)")]
    PersistentId,
    #[error("unsupported pickle opcode 0x{op:02x} at byte {at}")]
    Opcode { op: u8, at: usize },
    #[error(
        "malformed pickle: values nested or copied beyond its bounds ({limit}; a checkpoint \
         holds a few levels)"
    )]
    TooDeep { limit: &'static str },
    #[error(
        "refused global {module}.{name}: loading this file in Python would run code, it is not \
         a checkpoint"
    )]
    Refused { module: String, name: String },
}

/// A tensor before its storage is read: storage key, element kind, offset, size, stride.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct TensorRef {
    pub key: String,
    pub kind: Kind,
    pub offset: i64,
    pub size: Vec<i64>,
    pub stride: Vec<i64>,
}

// Payloads of opaque values are only shown through `Debug` in error messages.
#[allow(dead_code)]
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<Value>),
    Tuple(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    Global(String, String),
    Storage(String, Kind),
    Tensor(TensorRef),
    /// Any other object: its class name.
    Object(String),
    Mark,
}

impl Value {
    /// Whether the value nests deeper than `depth` containers or holds more than `nodes` values,
    /// walked without recursion (a hostile pickle cannot overflow the stack here) and stopping
    /// at the first excess (nor exhaust the time: copies can double a value's size each time).
    pub fn exceeds(&self, depth: usize, nodes: usize) -> bool {
        let mut seen = 0;
        let mut todo = vec![(self, 0usize)];
        while let Some((value, level)) = todo.pop() {
            seen += 1;
            if level > depth || seen > nodes {
                return true;
            }
            match value {
                Self::List(items) | Self::Tuple(items) => {
                    todo.extend(items.iter().map(|v| (v, level + 1)));
                }
                Self::Dict(pairs) => {
                    for (k, v) in pairs {
                        todo.push((k, level + 1));
                        todo.push((v, level + 1));
                    }
                }
                _ => {}
            }
        }
        false
    }
}

/// Modules whose globals run code or touch the system when a pickle calls them.
const REFUSED_MODULES: [&str; 14] = [
    "os",
    "posix",
    "nt",
    "subprocess",
    "sys",
    "shutil",
    "socket",
    "runpy",
    "pty",
    "importlib",
    "code",
    "ctypes",
    "webbrowser",
    "pickle",
];

/// Builtins that evaluate code, open files or reach arbitrary attributes.
const REFUSED_BUILTINS: [&str; 10] = [
    "eval",
    "exec",
    "compile",
    "open",
    "__import__",
    "getattr",
    "setattr",
    "globals",
    "breakpoint",
    "execfile",
];

/// A global, unless only a malicious pickle would name it. This machine never calls anything,
/// but such a file is not a checkpoint, and saying so beats importing what it holds.
pub(super) fn global(module: String, name: String) -> Result<Value, PickleError> {
    let root = module
        .split_once('.')
        .map_or(module.as_str(), |(root, _)| root);
    let builtin = matches!(module.as_str(), "builtins" | "__builtin__");
    if REFUSED_MODULES.contains(&root) || (builtin && REFUSED_BUILTINS.contains(&name.as_str())) {
        return Err(PickleError::Refused { module, name });
    }
    Ok(Value::Global(module, name))
}

fn storage_kind(name: &str) -> Option<Kind> {
    Some(match name {
        "FloatStorage" => Kind::Float,
        "DoubleStorage" => Kind::Double,
        "HalfStorage" => Kind::Half,
        "BFloat16Storage" => Kind::BFloat16,
        "LongStorage" => Kind::Int64,
        "IntStorage" => Kind::Int,
        "ShortStorage" => Kind::Int16,
        "CharStorage" => Kind::Int8,
        "ByteStorage" => Kind::Uint8,
        "BoolStorage" => Kind::Bool,
        _ => return None,
    })
}

fn ints(v: &Value) -> Option<Vec<i64>> {
    match v {
        Value::Tuple(items) | Value::List(items) => items
            .iter()
            .map(|i| match i {
                Value::Int(n) => Some(*n),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

/// REDUCE: what calling `callable` on `args` gives, for the callables we know.
pub(super) fn reduce(callable: Value, args: Value) -> Result<Value, PickleError> {
    let Value::Global(module, name) = callable else {
        return Ok(Value::Object("<reduce>".into()));
    };
    let items = match args {
        Value::Tuple(items) => items,
        _ => Vec::new(),
    };
    let malformed = |what| PickleError::RebuildArgs {
        name: name.clone(),
        what,
    };
    Ok(match (module.as_str(), name.as_str()) {
        ("collections", "OrderedDict") => Value::Dict(Vec::new()),
        ("torch._utils", "_rebuild_tensor_v2" | "_rebuild_tensor") => {
            let (Some(Value::Storage(key, kind)), Some(Value::Int(offset))) =
                (items.first(), items.get(1))
            else {
                return Err(malformed("storage and offset"));
            };
            let (Some(size), Some(stride)) =
                (items.get(2).and_then(ints), items.get(3).and_then(ints))
            else {
                return Err(malformed("size and stride"));
            };
            Value::Tensor(TensorRef {
                key: key.clone(),
                kind: *kind,
                offset: *offset,
                size,
                stride,
            })
        }
        ("torch._utils", "_rebuild_parameter" | "_rebuild_parameter_with_state") => {
            items.into_iter().next().unwrap_or(Value::None)
        }
        _ => Value::Object(format!("{module}.{name}")),
    })
}

/// BINPERSID: the storage a persistent id `('storage', type, key, location, numel)` names.
pub(super) fn persistent(pid: Value) -> Result<Value, PickleError> {
    let Value::Tuple(items) = pid else {
        return Err(PickleError::PersistentId);
    };
    match (items.first(), items.get(1), items.get(2)) {
        (Some(Value::Str(tag)), Some(Value::Global(_, ty)), Some(Value::Str(key)))
            if tag == "storage" =>
        {
            let kind = storage_kind(ty).ok_or_else(|| PickleError::Storage(ty.clone()))?;
            Ok(Value::Storage(key.clone(), kind))
        }
        _ => Err(PickleError::PersistentId),
    }
}
