//! Helper prototypes in the kernel's vocabulary: what each argument register must hold, what r0
//! holds after the call, whether only GPL-compatible programs may call the helper, and which
//! program types may. The verifier matches on these enums; `kernel_name` spells each value as
//! the kernel's `struct bpf_func_proto` does (`ARG_PTR_TO_MEM | MEM_RDONLY`), and `from_kernel_name`
//! reads that spelling back (embedders declare JavaScript helpers with it).
//!
//! The kernel composes argument types from a base type and flags (`MEM_RDONLY`, `MEM_UNINIT`,
//! `MEM_WRITE`, `PTR_MAYBE_NULL`, `OBJ_RELEASE`); here each combination a helper uses is one
//! variant, so that a `match` names every case the verifier must handle.

use std::fmt;

/// What an argument register must hold at a helper call (`enum bpf_arg_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArgType {
    /// `ARG_DONTCARE`: the helper does not read the register (it may be uninitialised).
    DontCare,
    /// `ARG_ANYTHING`: any initialised value, used as a scalar.
    Anything,
    /// `ARG_CONST_MAP_PTR`: a map, as loaded by a map `lddw`.
    ConstMapPtr,
    /// `ARG_PTR_TO_MAP_KEY`: initialised memory of the map's key size, read by the helper.
    PtrToMapKey,
    /// `ARG_PTR_TO_MAP_VALUE`: initialised memory of the map's value size, read by the helper.
    PtrToMapValue,
    /// `ARG_PTR_TO_MAP_VALUE | MEM_UNINIT | MEM_WRITE`: writable memory of the map's value size
    /// that the helper fills (it need not be initialised).
    PtrToUninitMapValue,
    /// `ARG_PTR_TO_MEM | MEM_RDONLY`: initialised memory the helper reads; its size is the next
    /// argument (`ConstSize`/`ConstSizeOrZero`).
    PtrToReadonlyMem,
    /// `ARG_PTR_TO_MEM | PTR_MAYBE_NULL | MEM_RDONLY`: as `PtrToReadonlyMem`, or NULL (then the
    /// size must be 0).
    PtrToReadonlyMemOrNull,
    /// `ARG_PTR_TO_UNINIT_MEM` (`ARG_PTR_TO_MEM | MEM_UNINIT | MEM_WRITE`): writable memory the
    /// helper fills; its size is the next argument.
    PtrToUninitMem,
    /// `ARG_PTR_TO_MEM_OR_NULL | MEM_WRITE`: writable memory the helper writes, or NULL (then
    /// the size must be 0); its size is the next argument.
    PtrToWritableMemOrNull,
    /// `ARG_PTR_TO_FIXED_SIZE_MEM | MEM_UNINIT | MEM_WRITE | MEM_ALIGNED` with `argN_size`:
    /// writable, aligned memory of exactly `size` bytes that the helper fills.
    PtrToFixedSizeUninitMem { size: u32 },
    /// `ARG_PTR_TO_FIXED_SIZE_MEM | MEM_WRITE | MEM_ALIGNED` with `argN_size`: initialised,
    /// aligned memory of exactly `size` bytes that the helper reads and writes (`bpf_check_mtu`'s
    /// `mtu_len`).
    PtrToFixedSizeMem { size: u32 },
    /// `ARG_PTR_TO_MEM | MEM_WRITE`: initialised memory the helper reads and writes; its size is
    /// the next argument (`bpf_fib_lookup`'s params).
    PtrToWritableMem,
    /// `ARG_CONST_SIZE`: the size of the memory argument before it, a known value > 0.
    ConstSize,
    /// `ARG_CONST_SIZE_OR_ZERO`: as `ConstSize`, 0 allowed.
    ConstSizeOrZero,
    /// `ARG_CONST_ALLOC_SIZE_OR_ZERO`: a known size to allocate (ring buffer records); r0 points
    /// to memory of that size.
    ConstAllocSizeOrZero,
    /// `ARG_PTR_TO_CTX`: the program's context pointer, unmodified.
    PtrToCtx,
    /// `ARG_PTR_TO_FUNC`: a function of the program, as loaded by a function `lddw` (callbacks).
    PtrToFunc,
    /// `ARG_PTR_TO_STACK_OR_NULL`: a pointer into the stack, or NULL (a callback's context).
    PtrToStackOrNull,
    /// `ARG_PTR_TO_RINGBUF_MEM | OBJ_RELEASE`: a ring buffer record from `bpf_ringbuf_reserve`,
    /// unmodified; the call releases it.
    PtrToRingbufMemRelease,
    /// `ARG_PTR_TO_SPIN_LOCK`: the `struct bpf_spin_lock` of a map value.
    PtrToSpinLock,
    /// `ARG_PTR_TO_CONST_STR`: a NUL-terminated string in a read-only map value (`.rodata`).
    PtrToConstStr,
}

/// What r0 holds after a helper call (`enum bpf_return_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RetType {
    /// `RET_INTEGER`: a scalar.
    Integer,
    /// `RET_VOID`: nothing the program may read.
    Void,
    /// `RET_PTR_TO_MAP_VALUE_OR_NULL`: a value of the map argument, or NULL.
    PtrToMapValueOrNull,
    /// `RET_PTR_TO_RINGBUF_MEM_OR_NULL`: a ring buffer record of the size argument, or NULL;
    /// the program must submit or discard it.
    PtrToRingbufMemOrNull,
    /// `RET_PTR_TO_BTF_ID_TRUSTED`: a trusted pointer to a kernel object of a BTF type (the
    /// current task); the kernel lets programs load its fields directly.
    PtrToBtfIdTrusted,
}

const ARG_NAMES: &[(ArgType, &str)] = &[
    (ArgType::DontCare, "ARG_DONTCARE"),
    (ArgType::Anything, "ARG_ANYTHING"),
    (ArgType::ConstMapPtr, "ARG_CONST_MAP_PTR"),
    (ArgType::PtrToMapKey, "ARG_PTR_TO_MAP_KEY"),
    (ArgType::PtrToMapValue, "ARG_PTR_TO_MAP_VALUE"),
    (
        ArgType::PtrToUninitMapValue,
        "ARG_PTR_TO_MAP_VALUE | MEM_UNINIT | MEM_WRITE",
    ),
    (ArgType::PtrToReadonlyMem, "ARG_PTR_TO_MEM | MEM_RDONLY"),
    (
        ArgType::PtrToReadonlyMemOrNull,
        "ARG_PTR_TO_MEM | PTR_MAYBE_NULL | MEM_RDONLY",
    ),
    (ArgType::PtrToUninitMem, "ARG_PTR_TO_UNINIT_MEM"),
    (
        ArgType::PtrToWritableMemOrNull,
        "ARG_PTR_TO_MEM_OR_NULL | MEM_WRITE",
    ),
    (ArgType::PtrToWritableMem, "ARG_PTR_TO_MEM | MEM_WRITE"),
    (ArgType::ConstSize, "ARG_CONST_SIZE"),
    (ArgType::ConstSizeOrZero, "ARG_CONST_SIZE_OR_ZERO"),
    (
        ArgType::ConstAllocSizeOrZero,
        "ARG_CONST_ALLOC_SIZE_OR_ZERO",
    ),
    (ArgType::PtrToCtx, "ARG_PTR_TO_CTX"),
    (ArgType::PtrToFunc, "ARG_PTR_TO_FUNC"),
    (ArgType::PtrToStackOrNull, "ARG_PTR_TO_STACK_OR_NULL"),
    (
        ArgType::PtrToRingbufMemRelease,
        "ARG_PTR_TO_RINGBUF_MEM | OBJ_RELEASE",
    ),
    (ArgType::PtrToSpinLock, "ARG_PTR_TO_SPIN_LOCK"),
    (ArgType::PtrToConstStr, "ARG_PTR_TO_CONST_STR"),
];

/// The spelling of `PtrToFixedSizeUninitMem` before its size (`argN_size` in the kernel).
const FIXED_SIZE_MEM: &str = "ARG_PTR_TO_FIXED_SIZE_MEM | MEM_UNINIT | MEM_WRITE | MEM_ALIGNED";
/// The spelling of `PtrToFixedSizeMem` before its size.
const FIXED_SIZE_INIT_MEM: &str = "ARG_PTR_TO_FIXED_SIZE_MEM | MEM_WRITE | MEM_ALIGNED";

const RET_NAMES: &[(RetType, &str)] = &[
    (RetType::Integer, "RET_INTEGER"),
    (RetType::Void, "RET_VOID"),
    (RetType::PtrToMapValueOrNull, "RET_PTR_TO_MAP_VALUE_OR_NULL"),
    (
        RetType::PtrToRingbufMemOrNull,
        "RET_PTR_TO_RINGBUF_MEM_OR_NULL",
    ),
    (RetType::PtrToBtfIdTrusted, "RET_PTR_TO_BTF_ID_TRUSTED"),
];

/// Flags in any order, separated by `|` and spaces: the canonical order of the kernel's
/// spelling is not something an embedder should have to remember.
fn same_flags(a: &str, b: &str) -> bool {
    let mut a: Vec<&str> = a.split('|').map(str::trim).collect();
    let mut b: Vec<&str> = b.split('|').map(str::trim).collect();
    a.sort_unstable();
    b.sort_unstable();
    a == b
}

impl ArgType {
    /// The kernel's spelling; `PtrToFixedSizeUninitMem` adds its size as `(size N)`.
    pub fn kernel_name(self) -> String {
        if let ArgType::PtrToFixedSizeUninitMem { size } = self {
            return format!("{FIXED_SIZE_MEM} (size {size})");
        }
        if let ArgType::PtrToFixedSizeMem { size } = self {
            return format!("{FIXED_SIZE_INIT_MEM} (size {size})");
        }
        let (_, name) = ARG_NAMES
            .iter()
            .find(|(t, _)| *t == self)
            .expect("every other variant is in ARG_NAMES");
        (*name).to_string()
    }

    /// Reads `kernel_name`'s spelling back (flags in any order); `None` for anything else.
    pub fn from_kernel_name(text: &str) -> Option<ArgType> {
        let text = text.trim();
        if let Some(open) = text.find("(size ") {
            let size = text[open + 6..].strip_suffix(')')?.trim().parse().ok()?;
            let flags = &text[..open];
            if same_flags(flags, FIXED_SIZE_INIT_MEM) {
                return Some(ArgType::PtrToFixedSizeMem { size });
            }
            return same_flags(flags, FIXED_SIZE_MEM)
                .then_some(ArgType::PtrToFixedSizeUninitMem { size });
        }
        ARG_NAMES
            .iter()
            .find(|(_, name)| same_flags(name, text))
            .map(|(t, _)| *t)
    }

    /// Whether the argument is a pointer whose size is the next argument.
    pub fn is_sized_mem(self) -> bool {
        matches!(
            self,
            ArgType::PtrToReadonlyMem
                | ArgType::PtrToReadonlyMemOrNull
                | ArgType::PtrToUninitMem
                | ArgType::PtrToWritableMemOrNull
                | ArgType::PtrToWritableMem
        )
    }
}

impl RetType {
    pub fn kernel_name(self) -> &'static str {
        RET_NAMES
            .iter()
            .find(|(t, _)| *t == self)
            .map(|(_, n)| *n)
            .expect("every variant is in RET_NAMES")
    }

    pub fn from_kernel_name(text: &str) -> Option<RetType> {
        RET_NAMES
            .iter()
            .find(|(_, name)| *name == text.trim())
            .map(|(t, _)| *t)
    }
}

impl fmt::Display for ArgType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.kernel_name())
    }
}

impl fmt::Display for RetType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kernel_name())
    }
}

/// The kernel's program types whose helper sets the prototypes record (`enum bpf_prog_type`,
/// with its numbers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u32)]
pub enum KernelProgType {
    SocketFilter = 1,
    Kprobe = 2,
    SchedCls = 3,
    Tracepoint = 5,
    Xdp = 6,
    PerfEvent = 7,
    CgroupSkb = 8,
    RawTracepoint = 17,
}

impl KernelProgType {
    pub const ALL: [KernelProgType; 8] = [
        KernelProgType::SocketFilter,
        KernelProgType::Kprobe,
        KernelProgType::SchedCls,
        KernelProgType::Tracepoint,
        KernelProgType::Xdp,
        KernelProgType::PerfEvent,
        KernelProgType::RawTracepoint,
        KernelProgType::CgroupSkb,
    ];

    /// The name bpftool and libbpf use (`sched_cls` is tc's classifier type).
    pub fn name(self) -> &'static str {
        match self {
            KernelProgType::SocketFilter => "socket_filter",
            KernelProgType::Kprobe => "kprobe",
            KernelProgType::SchedCls => "sched_cls",
            KernelProgType::Tracepoint => "tracepoint",
            KernelProgType::Xdp => "xdp",
            KernelProgType::PerfEvent => "perf_event",
            KernelProgType::RawTracepoint => "raw_tracepoint",
            KernelProgType::CgroupSkb => "cgroup_skb",
        }
    }

    pub fn from_name(name: &str) -> Option<KernelProgType> {
        KernelProgType::ALL.into_iter().find(|t| t.name() == name)
    }

    fn bit(self) -> u16 {
        1 << KernelProgType::ALL
            .iter()
            .position(|t| *t == self)
            .expect("ALL lists every type")
    }
}

/// A set of `KernelProgType`s.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ProgTypes(u16);

impl ProgTypes {
    pub const NONE: ProgTypes = ProgTypes(0);
    pub const ALL: ProgTypes = ProgTypes((1 << KernelProgType::ALL.len()) - 1);

    pub fn of(types: &[KernelProgType]) -> ProgTypes {
        ProgTypes(types.iter().fold(0, |set, t| set | t.bit()))
    }

    pub fn contains(self, t: KernelProgType) -> bool {
        self.0 & t.bit() != 0
    }

    /// The set without `t`.
    pub fn without(self, t: KernelProgType) -> ProgTypes {
        ProgTypes(self.0 & !t.bit())
    }

    pub fn iter(self) -> impl Iterator<Item = KernelProgType> {
        KernelProgType::ALL
            .into_iter()
            .filter(move |t| self.contains(*t))
    }
}

impl fmt::Debug for ProgTypes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.iter().map(|t| t.name()))
            .finish()
    }
}

/// A helper's prototype (`struct bpf_func_proto` without the function).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HelperPrototype {
    pub ret: RetType,
    /// r1-r5; trailing `DontCare`s are arguments the helper does not take.
    pub args: [ArgType; 5],
    /// Only programs under a GPL-compatible license may call it (`gpl_only`).
    pub gpl_only: bool,
    /// Types for which the kernel offers a variant of a `gpl_only` helper that is not (perf_event
    /// programs' `bpf_get_stackid`).
    pub gpl_free: ProgTypes,
    /// The kernel program types that may call it.
    pub prog_types: ProgTypes,
    /// Packet pointers may be its memory and key arguments (`pkt_access`); without it a packet
    /// pointer argument is "helper access to the packet is not allowed".
    pub pkt_access: bool,
}

impl HelperPrototype {
    /// The prototype of an embedder's helper that declares none: five scalars in, a scalar out,
    /// callable from every program type under any license.
    pub const SCALARS: HelperPrototype = HelperPrototype {
        ret: RetType::Integer,
        args: [ArgType::Anything; 5],
        gpl_only: false,
        gpl_free: ProgTypes::NONE,
        prog_types: ProgTypes::ALL,
        pkt_access: false,
    };

    /// A prototype of `ret` and `args` (the rest `DontCare`), not GPL-only, for every type.
    pub fn new(ret: RetType, args: &[ArgType]) -> HelperPrototype {
        let mut all = [ArgType::DontCare; 5];
        all[..args.len()].copy_from_slice(args);
        HelperPrototype {
            ret,
            args: all,
            gpl_only: false,
            gpl_free: ProgTypes::NONE,
            prog_types: ProgTypes::ALL,
            pkt_access: false,
        }
    }

    /// Whether a program of type `t` (`None`: a type the kernel does not have) needs a
    /// GPL-compatible license to call it.
    pub fn needs_gpl(&self, t: Option<KernelProgType>) -> bool {
        self.gpl_only && !t.is_some_and(|t| self.gpl_free.contains(t))
    }

    /// The kernel's variant of the helper for these types is not GPL-only.
    pub fn gpl_free_for(mut self, types: &[KernelProgType]) -> HelperPrototype {
        self.gpl_free = ProgTypes::of(types);
        self
    }

    pub fn gpl_only(mut self) -> HelperPrototype {
        self.gpl_only = true;
        self
    }

    /// Packet pointers may be passed as its memory (`.pkt_access = true`).
    pub fn pkt_access(mut self) -> HelperPrototype {
        self.pkt_access = true;
        self
    }

    pub fn for_types(mut self, types: &[KernelProgType]) -> HelperPrototype {
        self.prog_types = ProgTypes::of(types);
        self
    }

    /// How many of r1-r5 the helper reads: up to the last argument that is not `DontCare`.
    pub fn arg_count(&self) -> usize {
        self.args
            .iter()
            .rposition(|a| *a != ArgType::DontCare)
            .map_or(0, |i| i + 1)
    }
}

impl Default for HelperPrototype {
    fn default() -> Self {
        HelperPrototype::SCALARS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kernel_name_reads_back_to_its_type_in_any_flag_order() {
        for (t, name) in ARG_NAMES {
            assert_eq!(ArgType::from_kernel_name(name), Some(*t), "{name}");
            assert_eq!(t.kernel_name(), *name);
        }
        let fixed = ArgType::PtrToFixedSizeUninitMem { size: 8 };
        assert_eq!(ArgType::from_kernel_name(&fixed.kernel_name()), Some(fixed));
        assert_eq!(
            ArgType::from_kernel_name("MEM_RDONLY|ARG_PTR_TO_MEM"),
            Some(ArgType::PtrToReadonlyMem)
        );
        assert_eq!(ArgType::from_kernel_name("ARG_PTR_TO_MEM"), None);
        assert_eq!(ArgType::from_kernel_name(""), None);
        for (t, name) in RET_NAMES {
            assert_eq!(RetType::from_kernel_name(name), Some(*t));
        }
        assert_eq!(RetType::from_kernel_name("RET_PTR_TO_SOCKET"), None);
    }

    #[test]
    fn arg_count_stops_at_the_last_declared_argument() {
        assert_eq!(HelperPrototype::SCALARS.arg_count(), 5);
        assert_eq!(HelperPrototype::new(RetType::Integer, &[]).arg_count(), 0);
        let p = HelperPrototype::new(
            RetType::Void,
            &[ArgType::PtrToCtx, ArgType::ConstMapPtr, ArgType::Anything],
        );
        assert_eq!(p.arg_count(), 3);
    }

    #[test]
    fn prog_type_sets() {
        let s = ProgTypes::of(&[KernelProgType::Xdp, KernelProgType::SchedCls]);
        assert!(s.contains(KernelProgType::Xdp) && !s.contains(KernelProgType::Kprobe));
        assert_eq!(format!("{s:?}"), r#"{"sched_cls", "xdp"}"#);
        // socket_filter, kprobe, sched_cls, tracepoint, xdp, perf_event, raw_tracepoint, cgroup_skb.
        assert_eq!(ProgTypes::ALL.iter().count(), 8);
        assert_eq!(
            format!("{:?}", s.without(KernelProgType::Xdp)),
            r#"{"sched_cls"}"#
        );
        assert_eq!(
            KernelProgType::from_name("raw_tracepoint"),
            Some(KernelProgType::RawTracepoint)
        );
    }
}
