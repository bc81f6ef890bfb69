//! Hosts without the JIT (anything but x86-64): `auto` falls back to the interpreter and asking for
//! the JIT is a load error with code ENOTSUPP.
#![cfg(not(target_arch = "x86_64"))]

mod common;

use common::*;
use ebpf_vm::{Engine, ErrorCode};

#[test]
fn auto_interprets_and_jit_is_not_supported() {
    let p = [mov64_imm(0, 3), exit()];
    let prog = load(&p, Engine::Auto).unwrap();
    assert_eq!(prog.engine(), Engine::Interpreter);
    assert!(prog.jited_disassembly().contains("interpreter"));
    let err = load(&p, Engine::Jit).unwrap_err();
    assert_eq!(err.code, ErrorCode::Enotsupp);
}
