//! N-API binding over `ebpf-vm`. No logic of its own: it converts arguments, calls the engine and
//! returns outcomes as plain data (errors included) for the TypeScript layer to turn into typed
//! JavaScript errors. Nothing here may panic across the boundary: the engine reports errors as
//! values, and every conversion is checked.

pub mod js_helpers;
pub mod map;
pub mod program;
pub mod prototypes;

pub use map::NativeMap;
pub use program::NativeProgram;

use ebpf_vm::{LoadError, Trap};
use napi::bindgen_prelude::*;
use napi_derive::napi;

/// A load or run failure, as data.
#[napi(object)]
pub struct NativeError {
    /// Node-style errno code ('EINVAL', 'EFAULT', ...).
    pub code: String,
    pub message: String,
    /// Instruction index the error is about, when there is one.
    pub insn: Option<u32>,
    /// Trap kind ('out_of_bounds', 'budget_exhausted', ...) for run failures.
    pub kind: Option<String>,
    /// A memory trap's address relative to `region` (never a host address).
    pub addr: Option<BigInt>,
    /// The region `addr` is relative to ('stack', 'data', 'ctx', "map 'counts' value", ...).
    pub region: Option<String>,
    pub size: Option<u32>,
    pub insn_count: Option<f64>,
}

impl From<LoadError> for NativeError {
    fn from(e: LoadError) -> Self {
        NativeError {
            code: e.code.as_str().to_string(),
            message: e.to_string(),
            insn: e.insn.map(|i| i as u32),
            kind: None,
            addr: None,
            region: None,
            size: None,
            insn_count: None,
        }
    }
}

impl From<Trap> for NativeError {
    fn from(t: Trap) -> Self {
        NativeError {
            code: t.kind.code().as_str().to_string(),
            message: t.to_string(),
            insn: Some(t.pc as u32),
            kind: Some(t.kind.as_str().to_string()),
            // Host addresses never reach JavaScript: `t.addr` stays on the Rust side.
            addr: t.place.as_ref().map(|p| BigInt::from(p.offset)),
            region: t.place.map(|p| p.region),
            size: Some(t.size),
            insn_count: Some(t.insn_count as f64),
        }
    }
}

pub(crate) fn invalid(message: String) -> NativeError {
    LoadError::new(ebpf_vm::ErrorCode::Einval, message).into()
}
