//! The names JavaScript uses for program types, engines and safety modes, declared once here:
//! napi-rs checks every name that crosses into the binding against these enums, generates the
//! TypeScript union types from them (`native/index.d.ts`, built with `--no-const-enum`) and
//! exports their values at run time (the TypeScript layer lists them in its messages). The
//! conversions to the engine's enums are exhaustive matches, so a variant added on either side
//! fails to compile until it is named here.

use ebpf_vm::{AttachType, Engine, Mode, ProgramType};
use napi_derive::napi;

/// `ProgramOptions.type`.
#[napi(string_enum)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgramTypeName {
    #[napi(value = "raw")]
    Raw,
    #[napi(value = "socket_filter")]
    SocketFilter,
    #[napi(value = "tc")]
    Tc,
    #[napi(value = "xdp")]
    Xdp,
    #[napi(value = "cgroup_skb")]
    CgroupSkb,
    #[napi(value = "tracing")]
    Tracing,
    #[napi(value = "tracepoint")]
    Tracepoint,
    #[napi(value = "raw_tracepoint")]
    RawTracepoint,
}

/// `ProgramOptions.expectedAttachType`.
#[napi(string_enum)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachTypeName {
    #[napi(value = "xdp_devmap")]
    XdpDevmap,
    #[napi(value = "cgroup_inet_egress")]
    CgroupInetEgress,
}

impl From<AttachTypeName> for AttachType {
    fn from(a: AttachTypeName) -> Self {
        match a {
            AttachTypeName::XdpDevmap => AttachType::XdpDevmap,
            AttachTypeName::CgroupInetEgress => AttachType::CgroupInetEgress,
        }
    }
}

/// `ProgramOptions.engine`; a loaded program reports `jit` or `interpreter`.
#[napi(string_enum)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineName {
    #[napi(value = "jit")]
    Jit,
    #[napi(value = "interpreter")]
    Interpreter,
    #[napi(value = "auto")]
    Auto,
}

/// `ProgramOptions.mode`.
#[napi(string_enum)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SafetyMode {
    #[napi(value = "checked")]
    Checked,
    #[napi(value = "verified")]
    Verified,
}

impl From<ProgramTypeName> for ProgramType {
    fn from(t: ProgramTypeName) -> Self {
        match t {
            ProgramTypeName::Raw => ProgramType::Raw,
            ProgramTypeName::SocketFilter => ProgramType::SocketFilter,
            ProgramTypeName::Tc => ProgramType::Tc,
            ProgramTypeName::Xdp => ProgramType::Xdp,
            ProgramTypeName::CgroupSkb => ProgramType::CgroupSkb,
            ProgramTypeName::Tracing => ProgramType::Tracing,
            ProgramTypeName::Tracepoint => ProgramType::Tracepoint,
            ProgramTypeName::RawTracepoint => ProgramType::RawTracepoint,
        }
    }
}

impl From<EngineName> for Engine {
    fn from(e: EngineName) -> Self {
        match e {
            EngineName::Jit => Engine::Jit,
            EngineName::Interpreter => Engine::Interpreter,
            EngineName::Auto => Engine::Auto,
        }
    }
}

impl From<Engine> for EngineName {
    fn from(e: Engine) -> Self {
        match e {
            Engine::Jit => EngineName::Jit,
            Engine::Interpreter => EngineName::Interpreter,
            Engine::Auto => EngineName::Auto,
        }
    }
}

impl From<SafetyMode> for Mode {
    fn from(m: SafetyMode) -> Self {
        match m {
            SafetyMode::Checked => Mode::Checked,
            SafetyMode::Verified => Mode::Verified,
        }
    }
}
