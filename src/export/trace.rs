//! The Rust face of `trace.cpp`: ends a tch trace with one tuple output (see `export::step`).
#![allow(unsafe_code)]

use std::ffi::{CStr, c_char, c_void};

use tch::{TchError, Tensor};

use crate::model::EmitError;

unsafe extern "C" {
    fn sl_trace_return_tuple(tensors: *const *const c_void, n: i32) -> *mut c_char;
    fn sl_trace_free(s: *mut c_char);
}

/// Inside a trace: makes the tuple of `outputs` the traced function's one return value.
pub(super) fn return_tuple(outputs: &[Tensor]) -> Result<(), EmitError> {
    let n = i32::try_from(outputs.len())
        .map_err(|_| EmitError::Unsupported("too many outputs to trace".into()))?;
    let pointers: Vec<*const c_void> = outputs.iter().map(|t| t.as_ptr().cast()).collect();
    // SAFETY: each pointer is a live at::Tensor owned by `outputs` for the whole call; the
    // returned message is malloc'd by the callee, copied, then freed by it.
    let err = unsafe { sl_trace_return_tuple(pointers.as_ptr(), n) };
    if err.is_null() {
        return Ok(());
    }
    let message = unsafe { CStr::from_ptr(err) }
        .to_string_lossy()
        .into_owned();
    unsafe { sl_trace_free(err) };
    Err(EmitError::Tch(TchError::Torch(format!(
        "ending the TorchScript trace: {message}"
    ))))
}
