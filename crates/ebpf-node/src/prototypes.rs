//! Helper prototypes across the boundary, spelled as the kernel spells them
//! (`ARG_PTR_TO_MEM | MEM_RDONLY`): the listing of the helpers a program type has, and the
//! prototypes JavaScript helpers declare.

use ebpf_vm::helpers::{ArgType, HelperPrototype, RetType};
use ebpf_vm::HelperTable;
use napi_derive::napi;

use crate::names::ProgramTypeName;
use crate::{invalid, NativeError};

/// One helper of a program type, with its prototype.
#[napi(object)]
pub struct NativeHelperInfo {
    pub id: u32,
    pub name: String,
    /// `RET_INTEGER`, `RET_PTR_TO_MAP_VALUE_OR_NULL`, ...
    pub ret: String,
    /// The arguments the helper takes, r1 first (`ARG_CONST_MAP_PTR`, ...).
    pub args: Vec<String>,
    pub gpl_only: bool,
    /// The kernel program types that offer it (`socket_filter`, `xdp`, `kprobe`, ...).
    pub kernel_prog_types: Vec<String>,
}

/// A prototype a JavaScript helper declares; what it leaves out is "scalars in, scalar out".
#[napi(object)]
pub struct NativeHelperDeclaration {
    pub ret: Option<String>,
    pub args: Option<Vec<String>>,
    pub gpl_only: Option<bool>,
}

/// The helpers a program of `prog_type` has by default (no embedder helpers), by id.
#[napi(catch_unwind)]
pub fn helper_prototypes(prog_type: ProgramTypeName) -> Vec<NativeHelperInfo> {
    let table = ebpf_vm::context::helpers_for(prog_type.into(), &HelperTable::standard());
    table
        .iter()
        .map(|h| {
            let p = &h.prototype;
            NativeHelperInfo {
                id: h.id,
                name: h.name.clone(),
                ret: p.ret.kernel_name().to_string(),
                args: p.args[..p.arg_count()]
                    .iter()
                    .map(|a| a.kernel_name())
                    .collect(),
                gpl_only: p.gpl_only,
                kernel_prog_types: p.prog_types.iter().map(|t| t.name().to_string()).collect(),
            }
        })
        .collect()
}

/// The prototype `d` declares for helper `id`, or an `EINVAL` naming what is not a kernel type.
pub(crate) fn declared(
    id: u32,
    d: Option<&NativeHelperDeclaration>,
) -> Result<HelperPrototype, Box<NativeError>> {
    let Some(d) = d else {
        return Ok(HelperPrototype::SCALARS);
    };
    let mut p = HelperPrototype::SCALARS;
    if let Some(ret) = &d.ret {
        p.ret = RetType::from_kernel_name(ret).ok_or_else(|| {
            Box::new(invalid(format!(
                "helpers[{id}].ret: '{ret}' is not a return type the engine knows (RET_INTEGER, RET_VOID, ...)"
            )))
        })?;
    }
    if let Some(args) = &d.args {
        if args.len() > 5 {
            return Err(Box::new(invalid(format!(
                "helpers[{id}].args: a helper takes at most 5 arguments, got {}",
                args.len()
            ))));
        }
        p.args = [ArgType::DontCare; 5];
        for (i, a) in args.iter().enumerate() {
            p.args[i] = ArgType::from_kernel_name(a).ok_or_else(|| {
                Box::new(invalid(format!(
                    "helpers[{id}].args[{i}]: '{a}' is not an argument type the engine knows (ARG_ANYTHING, ARG_PTR_TO_MEM | MEM_RDONLY, ...)"
                )))
            })?;
        }
    }
    p.gpl_only = d.gpl_only.unwrap_or(false);
    Ok(p)
}
