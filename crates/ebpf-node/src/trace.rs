//! A run's instruction trace (`ebpf_vm::run_trace`) as plain data for JavaScript: steps with the
//! slot, the registers written and the memory touched. Pointers stay places (`stack-8`), never
//! host addresses.

use ebpf_vm::run_trace::{RunTrace, TraceValue};
use napi::bindgen_prelude::BigInt;
use napi_derive::napi;

/// A value: `value` for a scalar, `place` (`stack-8`, `data+14`) for an address of the run.
#[napi(object)]
pub struct NativeTraceValue {
    pub value: Option<BigInt>,
    pub place: Option<String>,
}

#[napi(object)]
pub struct NativeTraceReg {
    pub reg: u32,
    pub value: NativeTraceValue,
}

#[napi(object)]
pub struct NativeTraceAccess {
    pub write: bool,
    pub size: u32,
    /// Where (absent for an address far from every region).
    pub place: Option<String>,
    /// The value loaded or stored (absent when the access trapped).
    pub value: Option<NativeTraceValue>,
}

#[napi(object)]
pub struct NativeTraceStep {
    pub pc: u32,
    pub regs: Vec<NativeTraceReg>,
    pub mem: Option<NativeTraceAccess>,
}

#[napi(object)]
pub struct NativeTrace {
    pub steps: Vec<NativeTraceStep>,
    /// Steps executed before the first one kept.
    pub dropped: f64,
    pub limit: u32,
}

fn value(v: &TraceValue) -> NativeTraceValue {
    match v {
        TraceValue::Scalar(n) => NativeTraceValue {
            value: Some(BigInt::from(*n)),
            place: None,
        },
        TraceValue::Pointer(p) => NativeTraceValue {
            value: None,
            place: Some(p.to_string()),
        },
    }
}

pub fn to_js(trace: &RunTrace) -> NativeTrace {
    let steps = trace
        .steps()
        .map(|s| NativeTraceStep {
            pc: s.pc as u32,
            regs: (s.regs.iter())
                .map(|(r, v)| NativeTraceReg {
                    reg: *r as u32,
                    value: value(v),
                })
                .collect(),
            mem: s.access.as_ref().map(|a| NativeTraceAccess {
                write: a.write,
                size: a.size,
                place: a.place.as_ref().map(|p| p.to_string()),
                value: a.value.as_ref().map(value),
            }),
        })
        .collect();
    NativeTrace {
        steps,
        dropped: trace.dropped() as f64,
        limit: trace.limit() as u32,
    }
}
