//! A pickle machine for the pickles `torch.save` writes (protocol 2; the protocol 4 framing opcodes
//! too). It knows `OrderedDict` and the tensor rebuilders (`torch._utils._rebuild_tensor_v2`,
//! `_rebuild_parameter`); storages come from persistent ids `('storage', type, key, ...)`. Any
//! other class becomes an opaque object, so training metadata (numpy scalars, configs, optimiser
//! state) never stops an import; only tensors are used.

use std::collections::HashMap;

use tch::Kind;

/// A tensor before its storage is read: storage key, element kind, offset, size, stride.
#[derive(Debug, Clone)]
pub(super) struct TensorRef {
    pub key: String,
    pub kind: Kind,
    pub offset: i64,
    pub size: Vec<i64>,
    pub stride: Vec<i64>,
}

// Payloads of opaque values are only shown through `Debug` in error messages.
#[allow(dead_code)]
#[derive(Debug, Clone)]
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

/// A pickle machine over `data`, starting at `pos`.
pub(super) struct Unpickler<'a> {
    data: &'a [u8],
    pub pos: usize,
    stack: Vec<Value>,
    memo: HashMap<u32, Value>,
}

impl<'a> Unpickler<'a> {
    pub fn new(data: &'a [u8], pos: usize) -> Self {
        Self {
            data,
            pos,
            stack: Vec::new(),
            memo: HashMap::new(),
        }
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        let Some(end) = end else {
            return Err(format!(
                "truncated pickle: {n} bytes wanted at byte {} of {}",
                self.pos,
                self.data.len()
            ));
        };
        let out = &self.data[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    pub fn le(&mut self, n: usize) -> Result<u64, String> {
        let bytes = self.take(n)?;
        Ok(bytes
            .iter()
            .rev()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    fn line(&mut self) -> Result<String, String> {
        let rest = &self.data[self.pos.min(self.data.len())..];
        let Some(n) = rest.iter().position(|&b| b == b'\n') else {
            return Err("truncated pickle: unterminated line".into());
        };
        let text = String::from_utf8_lossy(&rest[..n]).into_owned();
        self.pos += n + 1;
        Ok(text)
    }

    fn pop(&mut self) -> Result<Value, String> {
        self.stack
            .pop()
            .ok_or_else(|| "malformed pickle: stack underflow".to_string())
    }

    /// Pops everything down to the last mark.
    fn pop_mark(&mut self) -> Result<Vec<Value>, String> {
        let Some(mark) = self.stack.iter().rposition(|v| matches!(v, Value::Mark)) else {
            return Err("malformed pickle: no mark".into());
        };
        let items = self.stack.split_off(mark + 1);
        self.stack.pop();
        Ok(items)
    }

    fn top(&mut self) -> Result<&mut Value, String> {
        self.stack
            .last_mut()
            .ok_or_else(|| "malformed pickle: stack underflow".to_string())
    }

    fn string(&mut self, n: usize) -> Result<Value, String> {
        let bytes = self.take(n)?;
        Ok(Value::Str(String::from_utf8_lossy(bytes).into_owned()))
    }

    fn memoise(&mut self, index: u32) -> Result<(), String> {
        let top = self.top()?.clone();
        self.memo.insert(index, top);
        Ok(())
    }

    fn get(&mut self, index: u32) -> Result<(), String> {
        let value = self
            .memo
            .get(&index)
            .cloned()
            .ok_or_else(|| format!("malformed pickle: memo {index} unset"))?;
        self.stack.push(value);
        Ok(())
    }

    fn reduce(callable: Value, args: Value) -> Result<Value, String> {
        let Value::Global(module, name) = callable else {
            return Ok(Value::Object("<reduce>".into()));
        };
        let items = match args {
            Value::Tuple(items) => items,
            _ => Vec::new(),
        };
        Ok(match (module.as_str(), name.as_str()) {
            ("collections", "OrderedDict") => Value::Dict(Vec::new()),
            ("torch._utils", "_rebuild_tensor_v2" | "_rebuild_tensor") => {
                let (Some(Value::Storage(key, kind)), Some(Value::Int(offset))) =
                    (items.first(), items.get(1))
                else {
                    return Err(format!("malformed {name} arguments"));
                };
                let (Some(size), Some(stride)) =
                    (items.get(2).and_then(ints), items.get(3).and_then(ints))
                else {
                    return Err(format!("malformed {name} size/stride"));
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

    fn persistent(pid: Value) -> Result<Value, String> {
        let Value::Tuple(items) = pid else {
            return Err("malformed persistent id".into());
        };
        match (items.first(), items.get(1), items.get(2)) {
            (Some(Value::Str(tag)), Some(Value::Global(_, ty)), Some(Value::Str(key)))
                if tag == "storage" =>
            {
                let kind = storage_kind(ty).ok_or_else(|| format!("unsupported storage {ty}"))?;
                Ok(Value::Storage(key.clone(), kind))
            }
            _ => Err("unsupported persistent id (not a tensor storage)".into()),
        }
    }

    /// Runs to STOP and returns the object.
    pub fn run(&mut self) -> Result<Value, String> {
        loop {
            let at = self.pos;
            let op = self.u8()?;
            match op {
                0x80 => {
                    self.u8()?;
                }
                0x95 => {
                    self.take(8)?;
                }
                b'.' => return self.pop(),
                b'}' => self.stack.push(Value::Dict(Vec::new())),
                b']' => self.stack.push(Value::List(Vec::new())),
                b')' => self.stack.push(Value::Tuple(Vec::new())),
                0x8f => self.stack.push(Value::List(Vec::new())),
                b'(' => self.stack.push(Value::Mark),
                b'N' => self.stack.push(Value::None),
                0x88 => self.stack.push(Value::Bool(true)),
                0x89 => self.stack.push(Value::Bool(false)),
                b'q' => {
                    let i = self.u8()?;
                    self.memoise(u32::from(i))?;
                }
                b'r' => {
                    let i = self.le(4)? as u32;
                    self.memoise(i)?;
                }
                0x94 => {
                    let i = self.memo.len() as u32;
                    self.memoise(i)?;
                }
                b'h' => {
                    let i = self.u8()?;
                    self.get(u32::from(i))?;
                }
                b'j' => {
                    let i = self.le(4)? as u32;
                    self.get(i)?;
                }
                b'X' | b'T' | b'B' => {
                    let n = self.le(4)? as usize;
                    let s = self.string(n)?;
                    self.stack.push(s);
                }
                0x8c | b'U' | b'C' => {
                    let n = self.u8()? as usize;
                    let s = self.string(n)?;
                    self.stack.push(s);
                }
                0x8d | 0x8e => {
                    let n = self.le(8)? as usize;
                    let bytes = self.take(n)?.to_vec();
                    self.stack.push(Value::Bytes(bytes));
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.stack.push(Value::Global(module, name));
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Value::Str(module), Value::Str(name)) = (module, name) else {
                        return Err("malformed STACK_GLOBAL".into());
                    };
                    self.stack.push(Value::Global(module, name));
                }
                b'J' => {
                    let v = self.le(4)? as u32 as i32;
                    self.stack.push(Value::Int(i64::from(v)));
                }
                b'K' => {
                    let v = self.u8()?;
                    self.stack.push(Value::Int(i64::from(v)));
                }
                b'M' => {
                    let v = self.le(2)?;
                    self.stack.push(Value::Int(v as i64));
                }
                0x8a | 0x8b => {
                    let n = if op == 0x8a {
                        self.u8()? as usize
                    } else {
                        self.le(4)? as usize
                    };
                    let bytes = self.take(n)?;
                    let value = if n <= 8 {
                        let mut v: i64 = 0;
                        for (i, &b) in bytes.iter().enumerate() {
                            v |= i64::from(b) << (8 * i);
                        }
                        // Sign-extend from n bytes.
                        if n > 0 && n < 8 && bytes[n - 1] & 0x80 != 0 {
                            v |= -1i64 << (8 * n);
                        }
                        Value::Int(v)
                    } else {
                        Value::Object("int".into()) // beyond i64: the legacy magic number
                    };
                    self.stack.push(value);
                }
                b'G' => {
                    let bytes = self.take(8)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(bytes);
                    self.stack.push(Value::Float(f64::from_be_bytes(a)));
                }
                b't' => {
                    let items = self.pop_mark()?;
                    self.stack.push(Value::Tuple(items));
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    if self.stack.len() < n {
                        return Err("malformed pickle: stack underflow".into());
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.stack.push(Value::Tuple(items));
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let storage = Self::persistent(pid)?;
                    self.stack.push(storage);
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let value = Self::reduce(callable, args)?;
                    self.stack.push(value);
                }
                0x81 => {
                    let _args = self.pop()?;
                    let cls = self.pop()?;
                    let name = match cls {
                        Value::Global(m, n) => format!("{m}.{n}"),
                        _ => "<object>".into(),
                    };
                    self.stack.push(Value::Object(name));
                }
                b'b' => {
                    // BUILD sets an object's state (e.g. a state_dict's `_metadata`): dropped.
                    self.pop()?;
                }
                b's' => {
                    let value = self.pop()?;
                    let key = self.pop()?;
                    if let Value::Dict(items) = self.top()? {
                        items.push((key, value));
                    }
                }
                b'u' => {
                    let flat = self.pop_mark()?;
                    if let Value::Dict(items) = self.top()? {
                        let mut it = flat.into_iter();
                        while let (Some(k), Some(v)) = (it.next(), it.next()) {
                            items.push((k, v));
                        }
                    }
                }
                b'a' => {
                    let value = self.pop()?;
                    if let Value::List(items) = self.top()? {
                        items.push(value);
                    }
                }
                b'e' | 0x90 => {
                    let values = self.pop_mark()?;
                    if let Value::List(items) = self.top()? {
                        items.extend(values);
                    }
                }
                0x91 => {
                    let values = self.pop_mark()?;
                    self.stack.push(Value::List(values));
                }
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let top = self.top()?.clone();
                    self.stack.push(top);
                }
                _ => {
                    return Err(format!("unsupported pickle opcode 0x{op:02x} at byte {at}"));
                }
            }
        }
    }
}
