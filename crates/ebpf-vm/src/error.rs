//! Errors of loading and running programs, as data. Every error carries a Node-style errno `code`
//! (what the binding exposes as `err.code`), a human message and, where one applies, the index of
//! the instruction it is about.

use std::fmt;

/// Errno-style codes, in the kernel's vocabulary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// Malformed input: bytecode, arguments, sizes.
    Einval,
    /// Rejected by the verifier.
    Eacces,
    /// Over a limit (program size, map full, call depth).
    E2big,
    /// No such key or object.
    Enoent,
    /// Key already present.
    Eexist,
    /// No space left (queue/ringbuf full).
    Enospc,
    /// Operation not supported by this object or host.
    Enotsupp,
    /// A bad memory access at run time.
    Efault,
    /// Run stopped: instruction budget exhausted, or its wall-clock limit passed.
    Etime,
    /// Permission denied (for example writing a read-only map from a program).
    Eperm,
    /// The object is in use (freezing a map while a writable view of it exists).
    Ebusy,
    /// Run cancelled by its caller (Node's `AbortError` code).
    AbortErr,
    /// No such device (a cpumap entry for a CPU the process does not have).
    Enodev,
    /// A value over its type's limit (a cpumap queue size over 16384).
    Eoverflow,
}

impl ErrorCode {
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Einval => "EINVAL",
            ErrorCode::Eacces => "EACCES",
            ErrorCode::E2big => "E2BIG",
            ErrorCode::Enoent => "ENOENT",
            ErrorCode::Eexist => "EEXIST",
            ErrorCode::Enospc => "ENOSPC",
            ErrorCode::Enotsupp => "ENOTSUPP",
            ErrorCode::Efault => "EFAULT",
            ErrorCode::Etime => "ETIME",
            ErrorCode::Eperm => "EPERM",
            ErrorCode::Ebusy => "EBUSY",
            ErrorCode::AbortErr => "ABORT_ERR",
            ErrorCode::Enodev => "ENODEV",
            ErrorCode::Eoverflow => "EOVERFLOW",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A program (or object) that cannot be loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadError {
    pub code: ErrorCode,
    /// Index of the offending instruction slot, when the error is about one.
    pub insn: Option<usize>,
    pub message: String,
    /// The verifier's whole log, when the verifier rejected the program (mode `Verified`);
    /// `None` for every other load error.
    pub log: Option<String>,
}

impl LoadError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        LoadError {
            code,
            insn: None,
            message: message.into(),
            log: None,
        }
    }

    pub fn at(code: ErrorCode, insn: usize, message: impl Into<String>) -> Self {
        LoadError {
            code,
            insn: Some(insn),
            message: message.into(),
            log: None,
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.insn {
            Some(i) => write!(f, "instruction {i}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for LoadError {}

/// Why a run stopped before `exit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TrapKind {
    /// A load or store outside every memory region of the run (checked mode).
    OutOfBounds,
    /// A store to a region that is read-only.
    ReadOnly,
    /// An atomic operation on an address that is not a multiple of its size.
    Misaligned,
    /// The instruction budget ran out.
    BudgetExhausted,
    /// Too many nested bpf-to-bpf calls.
    CallDepth,
    /// `callx` (or a tail call) to something that is not a function.
    BadCallTarget,
    /// A helper reported an error the program cannot continue from.
    HelperError,
    /// More than the allowed number of tail calls.
    TailCallLimit,
    /// The program let a host address out (r0 at exit, or a word a helper copies out) while
    /// pointer leaks are refused (`ProgramOptions::pointer_leaks`).
    PointerLeak,
    /// The run's input does not fit the program type (a context image of the wrong size, an
    /// `xdp_md` the kernel's test run would refuse, ...).
    InvalidInput,
    /// The run went past its wall-clock limit (`RunLimits::deadline`).
    Timeout,
    /// The run was cancelled (`RunLimits::cancel`).
    Aborted,
}

impl TrapKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            TrapKind::OutOfBounds => "out_of_bounds",
            TrapKind::ReadOnly => "read_only",
            TrapKind::Misaligned => "misaligned",
            TrapKind::BudgetExhausted => "budget_exhausted",
            TrapKind::CallDepth => "call_depth",
            TrapKind::BadCallTarget => "bad_call_target",
            TrapKind::HelperError => "helper_error",
            TrapKind::TailCallLimit => "tail_call_limit",
            TrapKind::InvalidInput => "invalid_input",
            TrapKind::PointerLeak => "pointer_leak",
            TrapKind::Timeout => "timeout",
            TrapKind::Aborted => "aborted",
        }
    }

    pub const fn code(self) -> ErrorCode {
        match self {
            TrapKind::OutOfBounds | TrapKind::ReadOnly | TrapKind::Misaligned => ErrorCode::Efault,
            TrapKind::BudgetExhausted | TrapKind::Timeout => ErrorCode::Etime,
            TrapKind::PointerLeak => ErrorCode::Eacces,
            TrapKind::Aborted => ErrorCode::AbortErr,
            TrapKind::CallDepth | TrapKind::TailCallLimit => ErrorCode::E2big,
            TrapKind::BadCallTarget | TrapKind::HelperError | TrapKind::InvalidInput => {
                ErrorCode::Einval
            }
        }
    }
}

/// A run that stopped abnormally. Both engines produce identical traps for the same program and
/// input: the kind, the instruction index and, for memory traps, the address and access size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trap {
    pub kind: TrapKind,
    /// Index of the instruction slot that trapped.
    pub pc: usize,
    /// The faulting host address (memory traps), otherwise 0. For the embedder's debugging only:
    /// `message` and `place` give the address relative to the run's regions instead, and the
    /// Node binding never hands host addresses to JavaScript.
    pub addr: u64,
    /// The access size in bytes (memory traps), otherwise 0.
    pub size: u32,
    /// Instructions executed before the trap (the trapping one not included).
    pub insn_count: u64,
    pub message: String,
    /// Where the faulting address lies relative to the run's regions (memory traps; `None` for
    /// other traps and for an address far from every region).
    pub place: Option<Place>,
}

impl Trap {
    /// A run refused before its first instruction because of its input (`InvalidInput`).
    pub fn invalid_input(message: impl Into<String>) -> Trap {
        Trap {
            kind: TrapKind::InvalidInput,
            pc: 0,
            addr: 0,
            size: 0,
            insn_count: 0,
            message: message.into(),
            place: None,
        }
    }
}

/// An address as an offset from a named point of the run, so that messages and what the Node
/// binding hands to JavaScript never carry a host address (`context::places` finds it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    /// `stack` (offset from the top of the stack: r10 of the main frame), `callback stack`,
    /// `data` (the input or packet data; for XDP, where `data` points now), `ctx`,
    /// `map 'NAME' value`, `map 'NAME' key`, `ringbuf 'NAME' record`, or `null`.
    pub region: String,
    pub offset: i64,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{:+}", self.region, self.offset)
    }
}

impl fmt::Display for Trap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "instruction {}: {}", self.pc, self.message)
    }
}

impl std::error::Error for Trap {}
