//! Refusing pointer leaks at run time (`ProgramOptions::pointer_leaks`). A program in checked
//! mode holds real host addresses (r10, r1, map values, map handles); returning one, or handing
//! one to a helper that copies it somewhere the embedder or another program can read, would tell
//! untrusted code's audience where the host's memory is. With `PointerLeaks::Refuse` the run stops
//! with a `pointer_leak` trap instead:
//! - r0 at the program's exit (`Program::run`);
//! - the 8-byte words (at multiples of 8 from the start of the buffer) that map updates and pushes,
//!   `bpf_perf_event_output`, `bpf_ringbuf_output` and `bpf_ringbuf_submit` copy out;
//! - the arguments that `bpf_trace_printk` / `bpf_snprintf` print as numbers or characters
//!   (those printed through `%s` or a `%p` form are pointers by design and print no address).
//!
//! "An address" is any value inside, or one past the end of, a region of the run, the stack area,
//! or a map object whose handle the run may use. This catches a pointer copied as it is, not one
//! the program has transformed (shifted, masked, split, or stored unaligned) nor one the program
//! stores itself into a map value or the packet: ruling those out needs the verifier's pointer
//! tracking (the kernel's `allow_ptr_leaks`), not a run-time check.

use std::sync::Arc;

use crate::context::{places, RunState};
use crate::error::{Trap, TrapKind};
use crate::helpers::{HelperContext, HelperError};
use crate::maps::{Map, RunMaps};
use crate::memory::Regions;

/// What a run does when the program lets a host address out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PointerLeaks {
    /// Addresses may be returned and copied out (trusted bytecode, debugging).
    Allow,
    /// A `pointer_leak` trap (EACCES), as the kernel refuses programs of unprivileged users that
    /// leak pointers (there at load time, by the verifier).
    #[default]
    Refuse,
}

/// Values below this are never host addresses: page zero is mapped on no supported host, so the
/// common small return values and counters cost one comparison.
pub(crate) const FIRST_PAGE: u64 = 4096;

/// Whether `v` is an address of this run: inside or one past the end of a region, the stack area
/// or a map object the run may name.
pub fn is_host_address(v: u64, regions: &Regions, state: &RunState, maps: &RunMaps) -> bool {
    if v < FIRST_PAGE {
        return false;
    }
    let in_region = |a: u64| regions.check(a, 1, false).is_ok();
    if in_region(v) || in_region(v - 1) {
        return true;
    }
    let (stack, stack_len) = state.stack;
    if stack_len != 0 && v >= stack && v - stack <= stack_len {
        return true;
    }
    map_object_at(v, maps).is_some()
}

/// The map whose object (from its handle to one past its end) holds `v`.
fn map_object_at(v: u64, maps: &RunMaps) -> Option<&Arc<dyn Map>> {
    maps.all().find(|m| {
        let start = crate::maps::handle(m);
        v >= start && v - start <= std::mem::size_of_val(&***m) as u64
    })
}

/// The first 8-byte word of `bytes` (at multiples of 8) that is an address of the run: its offset
/// and value.
fn leaked_word(cx: &HelperContext<'_>, bytes: &[u8]) -> Option<(usize, u64)> {
    bytes.chunks_exact(8).enumerate().find_map(|(k, w)| {
        let v = u64::from_le_bytes(w.try_into().expect("8 bytes"));
        is_host_address(v, cx.regions, cx.state, cx.maps).then_some((8 * k, v))
    })
}

impl HelperContext<'_> {
    /// Whether this run refuses pointer leaks.
    pub fn refuses_pointer_leaks(&self) -> bool {
        self.state.refuse_pointer_leaks
    }

    /// Stops the run with a `pointer_leak` trap at the calling instruction if `bytes` (what the
    /// helper is about to copy out as `what`) holds an address of the run in one of its 8-byte
    /// words. Nothing is checked when the program allows leaks.
    pub fn refuse_leaked_words(&mut self, what: &str, bytes: &[u8]) -> Result<(), HelperError> {
        if !self.refuses_pointer_leaks() {
            return Ok(());
        }
        match leaked_word(self, bytes) {
            None => Ok(()),
            Some((at, v)) => Err(self.leak_trap(v, format!("{what} word at +{at}"))),
        }
    }

    /// As `refuse_leaked_words`, for one value (`what` names it).
    pub fn refuse_leaked_value(&mut self, what: &str, v: u64) -> Result<(), HelperError> {
        if self.refuses_pointer_leaks() && is_host_address(v, self.regions, self.state, self.maps) {
            return Err(self.leak_trap(v, what.to_string()));
        }
        Ok(())
    }

    /// As `refuse_leaked_words`, for the printf arguments of `helper` that `scalar_args` (bit k:
    /// argument k) says were printed as numbers or characters.
    pub fn refuse_leaked_args(
        &mut self,
        helper: &str,
        args: &[u64],
        scalar_args: u32,
    ) -> Result<(), HelperError> {
        if !self.refuses_pointer_leaks() {
            return Ok(());
        }
        for (k, &v) in args.iter().enumerate() {
            if scalar_args & (1 << k) != 0
                && is_host_address(v, self.regions, self.state, self.maps)
            {
                let what = format!("{helper}: argument {} (printed as a number)", k + 1);
                return Err(self.leak_trap(v, what));
            }
        }
        Ok(())
    }

    /// Records the trap for a leaked address `v` (re-raised as is by the helper's caller).
    fn leak_trap(&mut self, v: u64, what: String) -> HelperError {
        let trap = leak(
            v,
            self.caller.pc,
            self.caller.insn_base.saturating_sub(1),
            &what,
            self.state,
            self.maps,
        );
        let message = trap.message.clone();
        self.state.pending_trap = Some(trap);
        HelperError(message)
    }
}

/// The `pointer_leak` trap for `what` holding the address `v`, at instruction `pc`.
pub fn leak(
    v: u64,
    pc: usize,
    insn_count: u64,
    what: &str,
    state: &RunState,
    maps: &RunMaps,
) -> Trap {
    let (at, place) = match map_object_at(v, maps) {
        Some(m) => (format!("a map handle, map '{}'", m.common().def.name), None),
        None => {
            let place = places::locate(v, state, maps);
            (places::describe(v, state, maps), place)
        }
    };
    Trap {
        kind: TrapKind::PointerLeak,
        pc,
        addr: v,
        size: 0,
        insn_count,
        message: format!("{what} holds an address ({at}), and this program refuses pointer leaks"),
        place,
    }
}
