//! The few libtorch entry points tch does not expose, compiled from `csrc/` by build.rs: ATen's
//! multi-tensor (`_foreach_*`) ops for the optimizer, the Kineto profiler for `bench
//! --profile`, CUDA graphs, and the TF32 setting. Every call returns an error
//! ([`EngineError::Native`], with libtorch's message) instead of throwing.
//!
//! The crate denies `unsafe` code; each function here that crosses into C++ allows it for
//! itself, with a `SAFETY` comment on every call.

use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int};

use tch::Tensor;
use torch_sys::C_tensor;

use crate::engine::EngineError;

#[allow(unsafe_code)]
unsafe extern "C" {
    fn nasp_free_error(e: *mut c_char);
    fn nasp_clip_grad_norm(
        grads: *const *const C_tensor,
        n: usize,
        max_norm: f64,
        total: *mut *mut C_tensor,
    ) -> *mut c_char;
    #[allow(clippy::too_many_arguments)]
    fn nasp_sgd_step(
        params: *const *const C_tensor,
        grads: *const *const C_tensor,
        bufs: *const *const C_tensor,
        n: usize,
        weight_decay: f64,
        momentum: f64,
        lr: f64,
        first: bool,
        nesterov: bool,
    ) -> *mut c_char;
    fn nasp_set_tf32(allow: bool) -> *mut c_char;
    fn nasp_profile_begin(cuda: bool) -> *mut c_char;
    fn nasp_profile_end(trace: *const c_char, top: c_int, summary: *mut *mut c_char)
    -> *mut c_char;
}

fn ptrs(ts: &[&Tensor]) -> Vec<*const C_tensor> {
    ts.iter().map(|t| t.as_ptr()).collect()
}

/// Takes ownership of a string the C++ side allocated (null → None).
#[allow(unsafe_code)]
fn take_text(e: *mut c_char) -> Option<String> {
    if e.is_null() {
        return None;
    }
    // SAFETY: non-null results are NUL-terminated strings allocated by csrc/ for the caller.
    let text = unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned();
    // SAFETY: `e` came from csrc/, is freed once, and is not read after.
    unsafe { nasp_free_error(e) };
    Some(text)
}

/// `Err` with libtorch's message when the C++ side returned one.
fn check(e: *mut c_char) -> Result<(), EngineError> {
    take_text(e).map_or(Ok(()), |text| Err(EngineError::Native(text)))
}

/// Scales `grads` in place so that their global L2 norm is at most `max_norm`; returns the norm
/// before scaling (a 0-d device tensor; no host synchronisation).
#[allow(unsafe_code)]
pub fn clip_grad_norm(grads: &[&Tensor], max_norm: f64) -> Result<Tensor, EngineError> {
    let mut total: *mut C_tensor = std::ptr::null_mut();
    let p = ptrs(grads);
    // SAFETY: the pointers are live tch tensors for the duration of the call.
    check(unsafe { nasp_clip_grad_norm(p.as_ptr(), p.len(), max_norm, &mut total) })?;
    if total.is_null() {
        return Err(EngineError::Native("no norm returned".into()));
    }
    // SAFETY: on success the C++ side stored a new tensor that we now own.
    Ok(unsafe { Tensor::from_ptr(total) })
}

/// SGD with momentum and coupled weight decay over `lists` = [params, grads, momentum buffers]:
/// d = g + wd·p; buf = d (first) or μ·buf + d; p −= lr·buf.
#[allow(unsafe_code)]
pub fn sgd_step(
    lists: &[Vec<&Tensor>; 3],
    weight_decay: f64,
    momentum: f64,
    lr: f64,
    first: bool,
    nesterov: bool,
) -> Result<(), EngineError> {
    let n = lists[0].len();
    if lists[1].len() != n || lists[2].len() != n {
        return Err(EngineError::Native(
            "parameter, gradient and buffer lists differ in length".into(),
        ));
    }
    let (p, g, b) = (ptrs(&lists[0]), ptrs(&lists[1]), ptrs(&lists[2]));
    // SAFETY: the pointers are live tch tensors for the duration of the call, and the three
    // lists have `n` entries each.
    check(unsafe {
        nasp_sgd_step(
            p.as_ptr(),
            g.as_ptr(),
            b.as_ptr(),
            n,
            weight_decay,
            momentum,
            lr,
            first,
            nesterov,
        )
    })
}

/// Whether cuDNN convolutions and cuBLAS matrix products may use TF32 (process-wide).
#[allow(unsafe_code)]
pub fn set_tf32(allow: bool) -> Result<(), EngineError> {
    // SAFETY: no arguments to keep alive.
    check(unsafe { nasp_set_tf32(allow) })
}

/// Starts the libtorch profiler (host ops, and device kernels with `cuda`).
#[allow(unsafe_code)]
pub fn profile_begin(cuda: bool) -> Result<(), EngineError> {
    // SAFETY: no arguments to keep alive.
    check(unsafe { nasp_profile_begin(cuda) })
}

/// Stops the profiler: a table of the `top` kernels by device time, and a Chrome trace written
/// to `trace` when given.
#[allow(unsafe_code)]
pub fn profile_end(trace: Option<&std::path::Path>, top: usize) -> Result<String, EngineError> {
    let path = CString::new(
        trace
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default(),
    )
    .map_err(|e| EngineError::Native(e.to_string()))?;
    let mut summary: *mut c_char = std::ptr::null_mut();
    // SAFETY: `path` outlives the call; `summary` receives a string we then own.
    check(unsafe { nasp_profile_end(path.as_ptr(), top as c_int, &mut summary) })?;
    Ok(take_text(summary).unwrap_or_default())
}

#[allow(unsafe_code)]
unsafe extern "C" {
    fn nasp_graph_new(device: c_int, out: *mut *mut std::ffi::c_void) -> *mut c_char;
    fn nasp_graph_enter(h: *mut std::ffi::c_void) -> *mut c_char;
    fn nasp_graph_exit(h: *mut std::ffi::c_void) -> *mut c_char;
    fn nasp_graph_capture_begin(h: *mut std::ffi::c_void) -> *mut c_char;
    fn nasp_graph_capture_end(h: *mut std::ffi::c_void) -> *mut c_char;
    fn nasp_graph_replay(h: *mut std::ffi::c_void) -> *mut c_char;
    fn nasp_graph_leave(h: *mut std::ffi::c_void) -> *mut c_char;
    fn nasp_graph_join(h: *mut std::ffi::c_void) -> *mut c_char;
    fn nasp_graph_free(h: *mut std::ffi::c_void);
}

/// A CUDA graph (ATen's `CUDAGraph`) with the side stream it is captured on.
///
/// Use: `enter`, run the work eagerly a few times (warm-up on the side stream), `capture_begin`,
/// run it once more (recorded, not executed), `capture_end`, `exit`; then `replay` runs it,
/// reading and writing the same tensors as the captured run (`enter`, `replay`, `leave` runs it
/// on the side stream beside what follows on the main one; `join` before reading its outputs).
pub struct CudaGraph {
    h: *mut std::ffi::c_void,
}

impl CudaGraph {
    #[allow(unsafe_code)]
    pub fn new(device: usize) -> Result<CudaGraph, EngineError> {
        let mut h = std::ptr::null_mut();
        // SAFETY: `h` receives a handle owned by the new value (freed in Drop).
        check(unsafe { nasp_graph_new(device as c_int, &mut h) })?;
        if h.is_null() {
            return Err(EngineError::Native("no graph handle".into()));
        }
        Ok(CudaGraph { h })
    }
    /// One of the handle's operations, its error turned into `Err`.
    #[allow(unsafe_code)]
    fn call(
        &self,
        op: unsafe extern "C" fn(*mut std::ffi::c_void) -> *mut c_char,
    ) -> Result<(), EngineError> {
        // SAFETY: `self.h` is a live handle (freed only in Drop); `op` is one of csrc/'s
        // nasp_graph_* functions, which take exactly that handle.
        check(unsafe { op(self.h) })
    }
    /// Makes the side stream current (after the work queued on the current one).
    pub fn enter(&self) -> Result<(), EngineError> {
        self.call(nasp_graph_enter)
    }
    /// Goes back to the previous stream, which waits for the side stream's work.
    pub fn exit(&self) -> Result<(), EngineError> {
        self.call(nasp_graph_exit)
    }
    /// Goes back to the previous stream without waiting: what is queued there from now on may
    /// run beside the side stream's work, until [`CudaGraph::join`].
    pub fn leave(&self) -> Result<(), EngineError> {
        self.call(nasp_graph_leave)
    }
    /// The current stream waits for the side stream's work queued so far (no host wait).
    pub fn join(&self) -> Result<(), EngineError> {
        self.call(nasp_graph_join)
    }
    pub fn capture_begin(&self) -> Result<(), EngineError> {
        self.call(nasp_graph_capture_begin)
    }
    pub fn capture_end(&self) -> Result<(), EngineError> {
        self.call(nasp_graph_capture_end)
    }
    pub fn replay(&self) -> Result<(), EngineError> {
        self.call(nasp_graph_replay)
    }
}

impl Drop for CudaGraph {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        // SAFETY: the handle came from nasp_graph_new and is freed once.
        unsafe { nasp_graph_free(self.h) }
    }
}
