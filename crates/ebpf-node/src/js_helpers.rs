//! Helpers written in JavaScript: the slower, synchronous path for embedders. The TypeScript layer
//! passes one dispatcher `(id, r1, r2, r3, r4, r5) => bigint | number | undefined`; each helper id
//! it serves is registered in the program's helper table with a closure that calls the dispatcher.
//!
//! JavaScript can only run on its own thread, so such a helper works in `run()`/`runBatch()` and
//! stops the run with a helper error when the program runs on the thread pool (`runAsync`). While
//! a JavaScript helper runs, `helperMemoryRead`/`helperMemoryWrite` reach the memory of the run that
//! called it, checked against that run's regions like any access of the program.

use std::cell::Cell;
use std::ptr;
use std::thread::{self, ThreadId};

use ebpf_vm::helpers::{HelperContext, HelperError, HelperPrototype};
use ebpf_vm::{ErrorCode, HelperTable};
use napi::bindgen_prelude::*;
use napi::sys;
use napi_derive::napi;

use crate::errors::{einval, thrown, Code};

/// The JavaScript helper dispatcher: `(id, r1, r2, r3, r4, r5) => bigint | number | undefined`.
pub type JsDispatcher<'a> =
    Function<'a, FnArgs<(u32, BigInt, BigInt, BigInt, BigInt, BigInt)>, Unknown<'a>>;

thread_local! {
    /// The `HelperContext` of the JavaScript helper call in progress on this thread, type-erased
    /// (its lifetime is the call's); null when none.
    static CURRENT: Cell<*mut ()> = const { Cell::new(ptr::null_mut()) };
}

/// A reference to the JavaScript dispatcher, usable only on the thread that created it.
struct Dispatcher {
    env: sys::napi_env,
    func: sys::napi_ref,
    thread: ThreadId,
}

// SAFETY: the napi handles are only used on `thread` (checked before every use); elsewhere the
// dispatcher is only moved and dropped, and Drop leaves the reference alone off that thread.
unsafe impl Send for Dispatcher {}
unsafe impl Sync for Dispatcher {}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        if thread::current().id() == self.thread {
            // SAFETY: on the creating thread, with the env the reference belongs to.
            unsafe { sys::napi_delete_reference(self.env, self.func) };
        }
    }
}

fn fail(message: String) -> HelperError {
    HelperError(message)
}

/// The message of the pending JavaScript exception (which it clears).
unsafe fn take_exception(env: sys::napi_env) -> String {
    let mut exc = ptr::null_mut();
    if sys::napi_get_and_clear_last_exception(env, &mut exc) != sys::Status::napi_ok
        || exc.is_null()
    {
        return "the JavaScript helper threw".into();
    }
    let mut text = ptr::null_mut();
    if sys::napi_coerce_to_string(env, exc, &mut text) != sys::Status::napi_ok {
        // A value without a string form (a symbol, an object whose toString throws): the
        // conversion left its own exception pending, which must not reach the caller of run().
        let mut ignored = ptr::null_mut();
        sys::napi_get_and_clear_last_exception(env, &mut ignored);
        return "the JavaScript helper threw a value that has no string form".into();
    }
    let mut buf = vec![0u8; 512];
    let mut len = 0usize;
    sys::napi_get_value_string_utf8(env, text, buf.as_mut_ptr().cast(), buf.len(), &mut len);
    buf.truncate(len);
    format!(
        "the JavaScript helper threw: {}",
        String::from_utf8_lossy(&buf)
    )
}

impl Dispatcher {
    fn call(
        &self,
        cx: &mut HelperContext<'_>,
        id: u32,
        args: [u64; 5],
    ) -> std::result::Result<u64, HelperError> {
        if thread::current().id() != self.thread {
            return Err(fail(format!(
                "helper {id} is written in JavaScript and cannot run off the JavaScript thread (use run() instead of runAsync())"
            )));
        }
        let env = self.env;
        // Publish the context for helperMemoryRead/Write during the call; restore the outer one
        // after (a JavaScript helper may run another program).
        let outer = CURRENT.with(|c| c.replace(cx as *mut HelperContext<'_> as *mut ()));
        // SAFETY: on the creating thread, inside a napi call of that env (the run() that led here).
        let result = unsafe {
            let mut func = ptr::null_mut();
            let mut global = ptr::null_mut();
            sys::napi_get_reference_value(env, self.func, &mut func);
            sys::napi_get_global(env, &mut global);
            let mut argv = [ptr::null_mut(); 6];
            sys::napi_create_uint32(env, id, &mut argv[0]);
            for (slot, v) in argv[1..].iter_mut().zip(args) {
                sys::napi_create_bigint_uint64(env, v, slot);
            }
            let mut ret = ptr::null_mut();
            if sys::napi_call_function(env, global, func, argv.len(), argv.as_ptr(), &mut ret)
                != sys::Status::napi_ok
            {
                Err(fail(take_exception(env)))
            } else {
                let mut kind = 0;
                sys::napi_typeof(env, ret, &mut kind);
                match kind {
                    sys::ValueType::napi_bigint => {
                        let (mut v, mut lossless) = (0u64, false);
                        sys::napi_get_value_bigint_uint64(env, ret, &mut v, &mut lossless);
                        if lossless {
                            Ok(v)
                        } else {
                            // Negative values wrap as the kernel's helpers return -errno; values
                            // that fit neither u64 nor i64 would be truncated: refused.
                            let mut s = 0i64;
                            sys::napi_get_value_bigint_int64(env, ret, &mut s, &mut lossless);
                            if lossless {
                                Ok(s as u64)
                            } else {
                                Err(fail(format!(
                                    "helper {id} returned a bigint outside -2^63..2^64-1"
                                )))
                            }
                        }
                    }
                    sys::ValueType::napi_number => {
                        let mut v = 0f64;
                        sys::napi_get_value_double(env, ret, &mut v);
                        safe_integer(v).ok_or_else(|| {
                            fail(format!("helper {id} returned {}, not a safe integer (use a bigint for 64-bit values)", number_text(v)))
                        })
                    }
                    sys::ValueType::napi_undefined => Ok(0),
                    _ => Err(fail(format!(
                        "helper {id} returned something other than a bigint, a number or undefined"
                    ))),
                }
            }
        };
        CURRENT.with(|c| c.set(outer));
        result
    }
}

/// Largest integer a JavaScript number holds exactly (`Number.MAX_SAFE_INTEGER`).
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// `v` as a 64-bit word (negative values two's complement) when it is a safe integer; beyond
/// 2^53 a number is already rounded, so it is refused rather than converted.
fn safe_integer(v: f64) -> Option<u64> {
    (v.fract() == 0.0 && v.abs() <= MAX_SAFE_INTEGER).then_some(v as i64 as u64)
}

/// A number as JavaScript would print it closely enough for a message (1e300 rather than 301 digits).
fn number_text(v: f64) -> String {
    if v.is_finite() && v.abs() >= 1e21 {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

/// Registers `ids` in `table` with their `prototypes`, each calling `dispatcher` with its id.
pub(crate) fn register(
    env: &Env,
    table: &mut HelperTable,
    dispatcher: &JsDispatcher<'_>,
    ids: &[u32],
    names: &[String],
    prototypes: &[HelperPrototype],
) -> Result<()> {
    let mut func = ptr::null_mut();
    // SAFETY: a reference to a live function value of this env.
    let status = unsafe { sys::napi_create_reference(env.raw(), dispatcher.raw(), 1, &mut func) };
    if status != sys::Status::napi_ok {
        return Err(Error::new(
            Status::GenericFailure,
            "cannot keep a reference to the helper dispatcher",
        ));
    }
    let dispatcher = std::sync::Arc::new(Dispatcher {
        env: env.raw(),
        func,
        thread: thread::current().id(),
    });
    for (i, &id) in ids.iter().enumerate() {
        let d = dispatcher.clone();
        let name = names
            .get(i)
            .cloned()
            .unwrap_or_else(|| format!("js_helper_{id}"));
        let prototype = prototypes.get(i).copied().unwrap_or_default();
        table.register_with_prototype(id, &name, prototype, move |cx, args| d.call(cx, id, args));
    }
    Ok(())
}

fn with_current<T>(f: impl FnOnce(&mut HelperContext<'_>) -> Result<T, Code>) -> Result<T, Code> {
    let cx = CURRENT.with(|c| c.get());
    if cx.is_null() {
        return Err(einval(
            "helper memory is only reachable while a JavaScript helper runs",
        ));
    }
    // SAFETY: set by `Dispatcher::call` for the duration of the JavaScript call on this thread;
    // the run that owns it is suspended in that call.
    f(unsafe { &mut *(cx as *mut HelperContext<'_>) })
}

fn address(addr: BigInt) -> Result<u64, Code> {
    let (negative, v, lossless) = addr.get_u64();
    if negative || !lossless {
        return Err(einval("address must be an unsigned 64-bit value"));
    }
    Ok(v)
}

/// Reads `len` bytes of the calling run's memory (checked against its regions).
#[napi(catch_unwind)]
pub fn helper_memory_read(addr: BigInt, len: u32) -> Result<Buffer, Code> {
    let addr = address(addr)?;
    with_current(|cx| {
        cx.regions
            .slice(addr, len as u64)
            .map(|s| Buffer::from(s.to_vec()))
            .map_err(|k| {
                thrown(
                    ErrorCode::Efault,
                    format!(
                        "read of {len} bytes at {}: {}",
                        cx.describe(addr),
                        k.as_str()
                    ),
                )
            })
    })
}

/// Writes `data` into the calling run's memory (checked against its writable regions).
#[napi(catch_unwind)]
pub fn helper_memory_write(addr: BigInt, data: &[u8]) -> Result<(), Code> {
    let addr = address(addr)?;
    with_current(|cx| {
        let dst = cx.regions.slice_mut(addr, data.len() as u64).map_err(|k| {
            thrown(
                ErrorCode::Efault,
                format!(
                    "write of {} bytes at {}: {}",
                    data.len(),
                    cx.describe(addr),
                    k.as_str()
                ),
            )
        })?;
        dst.copy_from_slice(data);
        Ok(())
    })
}
