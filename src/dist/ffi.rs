//! The raw calls into the c10d shim (`shim.cpp`) and a handle that owns one process group: every
//! call returns `Err(message)` where the C++ side threw (nothing unwinds into Rust). The only
//! `unsafe` of data-parallel training lives here.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::ptr;

use tch::Tensor;

unsafe extern "C" {
    fn sl_pg_open(
        host: *const c_char,
        port: u16,
        rank: c_int,
        world: c_int,
        timeout_ms: i64,
        client_only: c_int,
        err: *mut *mut c_char,
    ) -> *mut c_void;
    fn sl_pg_start(g: *mut c_void, backend: *const c_char, err: *mut *mut c_char) -> c_int;
    fn sl_pg_destroy(g: *mut c_void);
    fn sl_free(s: *mut c_char);
    fn sl_pg_all_reduce_sum(
        g: *mut c_void,
        tensors: *const *const c_void,
        n: usize,
        err: *mut *mut c_char,
    ) -> c_int;
    fn sl_pg_broadcast(
        g: *mut c_void,
        tensors: *const *const c_void,
        n: usize,
        root: c_int,
        err: *mut *mut c_char,
    ) -> c_int;
    fn sl_pg_barrier(g: *mut c_void, err: *mut *mut c_char) -> c_int;
    fn sl_store_set(
        g: *mut c_void,
        key: *const c_char,
        data: *const u8,
        len: usize,
        err: *mut *mut c_char,
    ) -> c_int;
    fn sl_store_get(
        g: *mut c_void,
        key: *const c_char,
        out: *mut *mut u8,
        len: *mut usize,
        err: *mut *mut c_char,
    ) -> c_int;
    fn sl_store_add(
        g: *mut c_void,
        key: *const c_char,
        delta: i64,
        value: *mut i64,
        err: *mut *mut c_char,
    ) -> c_int;
    fn sl_replicas_new(g: *mut c_void, err: *mut *mut c_char) -> *mut c_void;
    fn sl_replicas_free(r: *mut c_void);
    fn sl_replicas_sum(
        r: *mut c_void,
        x: *const c_void,
        out: *mut *mut c_void,
        err: *mut *mut c_char,
    ) -> c_int;
    fn sl_replicas_take_error(r: *mut c_void) -> *mut c_char;
    fn sl_store_check(
        g: *mut c_void,
        key: *const c_char,
        found: *mut c_int,
        err: *mut *mut c_char,
    ) -> c_int;
}

/// Takes the shim's error message (and frees it).
fn take(err: *mut c_char) -> String {
    if err.is_null() {
        return "unknown error (no message)".into();
    }
    // SAFETY: the shim returns a NUL-terminated string from malloc, ours to free.
    let text = unsafe { CStr::from_ptr(err) }
        .to_string_lossy()
        .into_owned();
    unsafe { sl_free(err) };
    text
}

/// Runs a shim call that returns 1 on success, else sets `err`.
fn call(f: impl FnOnce(*mut *mut c_char) -> c_int) -> Result<(), String> {
    let mut err: *mut c_char = ptr::null_mut();
    if f(&mut err) == 1 {
        Ok(())
    } else {
        Err(take(err))
    }
}

fn cstring(s: &str) -> Result<CString, String> {
    CString::new(s).map_err(|_| format!("'{s}' contains a NUL byte"))
}

/// One process group and its store (destroyed on drop).
pub(super) struct Handle(*mut c_void);

impl Handle {
    /// Connects to (rank 0 without `client_only`: serves) the TCPStore at host:port.
    pub(super) fn open(
        host: &str,
        port: u16,
        rank: usize,
        world: usize,
        timeout_ms: i64,
        client_only: bool,
    ) -> Result<Self, String> {
        let host = cstring(host)?;
        let mut err: *mut c_char = ptr::null_mut();
        // SAFETY: plain values and a valid C string; the shim catches every exception.
        let g = unsafe {
            sl_pg_open(
                host.as_ptr(),
                port,
                rank as c_int,
                world as c_int,
                timeout_ms,
                c_int::from(client_only),
                &mut err,
            )
        };
        if g.is_null() {
            Err(take(err))
        } else {
            Ok(Self(g))
        }
    }

    /// The rendezvous of all ranks on `backend` (`gloo` or `nccl`).
    pub(super) fn start(&self, backend: &str) -> Result<(), String> {
        let backend = cstring(backend)?;
        // SAFETY: self.0 is a live group.
        call(|err| unsafe { sl_pg_start(self.0, backend.as_ptr(), err) })
    }

    fn pointers(tensors: &[Tensor]) -> Vec<*const c_void> {
        tensors
            .iter()
            .map(|t| t.as_ptr() as *const c_void)
            .collect()
    }

    /// Sums `tensors` (one dtype) across the ranks in place.
    pub(super) fn all_reduce_sum(&self, tensors: &mut [Tensor]) -> Result<(), String> {
        let p = Self::pointers(tensors);
        // SAFETY: each pointer is a live at::Tensor (tch's C_tensor) borrowed for the call.
        call(|err| unsafe { sl_pg_all_reduce_sum(self.0, p.as_ptr(), p.len(), err) })
    }

    /// Overwrites `tensors` with rank `root`'s.
    pub(super) fn broadcast(&self, tensors: &mut [Tensor], root: usize) -> Result<(), String> {
        let p = Self::pointers(tensors);
        // SAFETY: as in all_reduce_sum.
        call(|err| unsafe { sl_pg_broadcast(self.0, p.as_ptr(), p.len(), root as c_int, err) })
    }

    pub(super) fn barrier(&self) -> Result<(), String> {
        // SAFETY: self.0 is a live group.
        call(|err| unsafe { sl_pg_barrier(self.0, err) })
    }

    pub(super) fn set(&self, key: &str, value: &[u8]) -> Result<(), String> {
        let key = cstring(key)?;
        // SAFETY: key and value outlive the call.
        call(|err| unsafe { sl_store_set(self.0, key.as_ptr(), value.as_ptr(), value.len(), err) })
    }

    /// The value of `key`, waiting for it up to the timeout.
    pub(super) fn get(&self, key: &str) -> Result<Vec<u8>, String> {
        let key = cstring(key)?;
        let (mut out, mut len): (*mut u8, usize) = (ptr::null_mut(), 0);
        // SAFETY: out and len are written by the shim on success.
        call(|err| unsafe { sl_store_get(self.0, key.as_ptr(), &mut out, &mut len, err) })?;
        // SAFETY: out holds len bytes from malloc, ours to free.
        let bytes = unsafe { std::slice::from_raw_parts(out, len) }.to_vec();
        unsafe { sl_free(out.cast()) };
        Ok(bytes)
    }

    /// Adds `delta` to the counter at `key`; its new value.
    pub(super) fn add(&self, key: &str, delta: i64) -> Result<i64, String> {
        let key = cstring(key)?;
        let mut value = 0i64;
        // SAFETY: value is written by the shim on success.
        call(|err| unsafe { sl_store_add(self.0, key.as_ptr(), delta, &mut value, err) })?;
        Ok(value)
    }

    /// Whether `key` is set, without waiting.
    pub(super) fn check(&self, key: &str) -> Result<bool, String> {
        let key = cstring(key)?;
        let mut found: c_int = 0;
        // SAFETY: found is written by the shim on success.
        call(|err| unsafe { sl_store_check(self.0, key.as_ptr(), &mut found, err) })?;
        Ok(found == 1)
    }
}

/// The shim's handle for synchronised BatchNorm: its own reference to the started backend, so
/// it lives as long as the model holding it, whatever happens to the [`Handle`].
pub(super) struct Replicas(*mut c_void);

// SAFETY: the handle is a c10d backend reference and a mutex-guarded message; c10d backends are
// meant to be called from any thread, and a model (its only user) runs its passes on one thread
// at a time, so the collectives keep one order on every rank.
unsafe impl Send for Replicas {}
unsafe impl Sync for Replicas {}

impl Handle {
    /// A synchronised-BatchNorm handle on this (started) group.
    pub(super) fn replicas(&self) -> Result<Replicas, String> {
        let mut err: *mut c_char = ptr::null_mut();
        // SAFETY: self.0 is a live group; the shim catches every exception.
        let r = unsafe { sl_replicas_new(self.0, &mut err) };
        if r.is_null() {
            Err(take(err))
        } else {
            Ok(Replicas(r))
        }
    }
}

impl Replicas {
    /// The sum over the ranks of `x`, differentiable (its backward sums the gradients so). A
    /// collective that fails inside it leaves the local value and keeps the message for
    /// [`Replicas::take_error`].
    pub(super) fn all_sum(&self, x: &Tensor) -> Result<Tensor, String> {
        let mut out: *mut c_void = ptr::null_mut();
        // SAFETY: x is a live at::Tensor borrowed for the call; on success `out` is a new
        // at::Tensor allocated with `new`, which tch owns and frees as its own tensors.
        call(|err| unsafe { sl_replicas_sum(self.0, x.as_ptr() as *const c_void, &mut out, err) })?;
        Ok(unsafe { Tensor::from_ptr(out.cast()) })
    }

    /// The first collective failure inside a pass since the last call.
    pub(super) fn take_error(&self) -> Option<String> {
        // SAFETY: self.0 is live; the message is malloc'd, taken (and freed) by `take`.
        let e = unsafe { sl_replicas_take_error(self.0) };
        (!e.is_null()).then(|| take(e))
    }
}

impl crate::model::sync_bn::ReplicaSum for Replicas {
    fn sum(&self, x: &Tensor) -> Result<Tensor, tch::TchError> {
        self.all_sum(x).map_err(tch::TchError::Torch)
    }
}

impl Drop for Replicas {
    fn drop(&mut self) {
        // SAFETY: made by sl_replicas_new, freed once.
        unsafe { sl_replicas_free(self.0) }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the group was made by sl_pg_open and is destroyed once.
        unsafe { sl_pg_destroy(self.0) }
    }
}
