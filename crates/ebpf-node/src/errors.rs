//! Errors the binding hands to JavaScript, one way: every error carries its Node-style `code`
//! (`EINVAL`, `ENOENT`, `EFAULT`, ...) as a property, never inside its message text.
//! - A call that fails throws a `Thrown`: napi-rs makes its status string (the `Code`) the
//!   JavaScript error's `code`, and its reason the message.
//! - A load or run outcome that carries structured details (instruction, trap kind, address,
//!   region) returns them as data, a `NativeError` with the same `code` field, because a batch
//!   reports one per packet and a thrown N-API error cannot carry them.
//!
//! The TypeScript layer turns both into its error classes (`fromCodedError`, `fromNative`).

use ebpf_vm::{ErrorCode, LoadError, Trap};
use napi::bindgen_prelude::*;
use napi_derive::napi;

/// The `code` of a thrown error: an errno name of `ErrorCode`, or the N-API status name of a
/// failure of N-API itself (`GenericFailure`, ...).
#[derive(Debug)]
pub struct Code(String);

impl AsRef<str> for Code {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// An error thrown to JavaScript with its `code`. A `#[napi]` function that throws one returns
/// `napi::Result<T, Code>` (spelled `Result<..>`: the macro recognises results by that name).
pub type Thrown = napi::Error<Code>;

/// An error with `code` and `message`.
pub fn thrown(code: ErrorCode, message: impl Into<String>) -> Thrown {
    napi::Error::new(Code(code.as_str().to_string()), message.into())
}

/// `EINVAL`: an argument the engine refuses.
pub fn einval(message: impl Into<String>) -> Thrown {
    thrown(ErrorCode::Einval, message)
}

/// A failure of N-API itself (an allocation, a reference), its status name as the code.
pub fn napi_failure(e: napi::Error) -> Thrown {
    napi::Error::new(Code(e.status.as_ref().to_string()), e.reason.clone())
}

/// A map operation's error, thrown with its code.
pub fn map_error(e: ebpf_vm::maps::MapError) -> Thrown {
    thrown(e.code, e.message)
}

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
    /// The verifier's whole log, for a rejection by the verifier (mode 'verified').
    pub log: Option<String>,
}

impl From<LoadError> for NativeError {
    fn from(e: LoadError) -> Self {
        NativeError {
            code: e.code.as_str().to_string(),
            // A verifier's rejection is its kernel-style line as it is (`insn` says where).
            message: match e.log {
                Some(_) => e.message.clone(),
                None => e.to_string(),
            },
            insn: e.insn.map(|i| i as u32),
            kind: None,
            addr: None,
            region: None,
            size: None,
            insn_count: None,
            log: e.log,
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
            log: None,
        }
    }
}

/// An `EINVAL` load error, as data.
pub(crate) fn invalid(message: String) -> NativeError {
    LoadError::new(ErrorCode::Einval, message).into()
}

/// A failed system call on a file the caller gave (`what` says which and how), thrown with the
/// errno's name as its code (`EIO` for one without a name here).
pub fn io_error(what: &str, e: std::io::Error) -> Thrown {
    let code = match e.raw_os_error() {
        Some(libc::EBADF) => "EBADF",
        Some(libc::ENOSPC) => "ENOSPC",
        Some(libc::EFBIG) => "EFBIG",
        Some(libc::EPIPE) => "EPIPE",
        Some(libc::EDQUOT) => "EDQUOT",
        Some(libc::EISDIR) => "EISDIR",
        Some(libc::EINVAL) => "EINVAL",
        Some(libc::ENOMEM) => "ENOMEM",
        Some(libc::EACCES) => "EACCES",
        _ => "EIO",
    };
    napi::Error::new(Code(code.to_string()), format!("{what}: {e}"))
}
