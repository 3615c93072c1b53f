//! A pickle machine for the pickles `torch.save` writes (protocol 2; the protocol 4 framing opcodes
//! too). It builds plain values (`pickle_value.rs`) and calls nothing: the few callables it
//! knows (`OrderedDict`, the tensor rebuilders) it interprets itself.

use std::collections::HashMap;

use super::pickle_value::{PickleError, Value, global, persistent, reduce};

/// The most values the machine's stack may hold. `torch.save` batches dict items by 1000 and
/// nests a few levels; the bound keeps a hostile pickle (200,000 nested lists in 400 KB) from
/// overflowing the call stack when its values are cloned or dropped, which recurses per level.
pub(super) const MAX_VALUES: usize = 10_000;

/// The deepest nesting and the most values a value copied by the memo or DUP may have (copies
/// are what could deepen a value without growing the stack, or double its size each time).
const MAX_DEPTH: usize = 1_000;
const MAX_COPY: usize = 1_000_000;

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

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], PickleError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        let Some(end) = end else {
            return Err(PickleError::Truncated {
                wanted: n,
                at: self.pos,
                len: self.data.len(),
            });
        };
        let out = &self.data[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, PickleError> {
        Ok(self.take(1)?[0])
    }

    pub fn le(&mut self, n: usize) -> Result<u64, PickleError> {
        let bytes = self.take(n)?;
        Ok(bytes
            .iter()
            .rev()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    fn line(&mut self) -> Result<String, PickleError> {
        let rest = &self.data[self.pos.min(self.data.len())..];
        let Some(n) = rest.iter().position(|&b| b == b'\n') else {
            return Err(PickleError::UnterminatedLine { at: self.pos });
        };
        let text = String::from_utf8_lossy(&rest[..n]).into_owned();
        self.pos += n + 1;
        Ok(text)
    }

    fn pop(&mut self) -> Result<Value, PickleError> {
        self.stack.pop().ok_or(PickleError::StackUnderflow)
    }

    /// Pops everything down to the last mark.
    fn pop_mark(&mut self) -> Result<Vec<Value>, PickleError> {
        let Some(mark) = self.stack.iter().rposition(|v| matches!(v, Value::Mark)) else {
            return Err(PickleError::NoMark);
        };
        let items = self.stack.split_off(mark + 1);
        self.stack.pop();
        Ok(items)
    }

    fn top(&mut self) -> Result<&mut Value, PickleError> {
        self.stack.last_mut().ok_or(PickleError::StackUnderflow)
    }

    fn string(&mut self, n: usize) -> Result<Value, PickleError> {
        let bytes = self.take(n)?;
        Ok(Value::Str(String::from_utf8_lossy(bytes).into_owned()))
    }

    fn memoise(&mut self, index: u32) -> Result<(), PickleError> {
        let top = self.copy_top()?;
        self.memo.insert(index, top);
        Ok(())
    }

    /// A copy of the top of the stack, refused if it nests deeper than [`MAX_DEPTH`].
    fn copy_top(&mut self) -> Result<Value, PickleError> {
        let top = self.top()?;
        if top.exceeds(MAX_DEPTH, MAX_COPY) {
            return Err(PickleError::TooDeep {
                limit: "a copy of at most 1,000 levels and 1,000,000 values",
            });
        }
        Ok(top.clone())
    }

    fn get(&mut self, index: u32) -> Result<(), PickleError> {
        let value = self
            .memo
            .get(&index)
            .cloned()
            .ok_or(PickleError::MemoUnset(index))?;
        self.stack.push(value);
        Ok(())
    }

    /// Runs to STOP and returns the object.
    pub fn run(&mut self) -> Result<Value, PickleError> {
        loop {
            if self.stack.len() > MAX_VALUES {
                return Err(PickleError::TooDeep {
                    limit: "at most 10,000 values on the stack",
                });
            }
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
                    self.stack.push(global(module, name)?);
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Value::Str(module), Value::Str(name)) = (module, name) else {
                        return Err(PickleError::StackGlobal);
                    };
                    self.stack.push(global(module, name)?);
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
                        return Err(PickleError::StackUnderflow);
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.stack.push(Value::Tuple(items));
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let storage = persistent(pid)?;
                    self.stack.push(storage);
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let value = reduce(callable, args)?;
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
                    let top = self.copy_top()?;
                    self.stack.push(top);
                }
                _ => {
                    return Err(PickleError::Opcode { op, at });
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "pickle_tests.rs"]
mod tests;
