//! What the context loads that the verifier allows give at run time, in both engines: sign-
//! extending loads of context fields (the kernel converts them and sign-extends, so the value
//! is the field's bytes sign-extended; by hand), the tracepoint and raw tracepoint contexts
//! (the caller's bytes zero-extended to what the verifier lets the program read, more bytes
//! refused), `__sk_buff.sk` (NULL here: no socket), and `xdp_md.egress_ifindex` for devmap
//! programs only.

mod context_support;

use context_support::*;
use ebpf_vm::isa::{encode_all, Insn};
use ebpf_vm::{AttachType, Engine, ErrorCode, Mode, ProgramOptions, ProgramType, TrapKind};

/// The engines a run is compared on (the JIT where the host has one).
fn engines() -> Vec<Engine> {
    if cfg!(target_arch = "x86_64") {
        vec![Engine::Interpreter, Engine::Jit]
    } else {
        vec![Engine::Interpreter]
    }
}

fn verified(prog_type: ProgramType, engine: Engine) -> ProgramOptions {
    ProgramOptions {
        prog_type,
        engine,
        mode: Mode::Verified,
        ..ProgramOptions::default()
    }
}

/// `LDX | MEMSX`: dst = *(s`size` *)(src + off).
fn ldsx(size: u8, dst: u8, src: u8, off: i16) -> Insn {
    Insn::new(0x81 | size, dst, src, off, 0)
}

const B: u8 = 0x10;
const H: u8 = 0x08;
const W: u8 = 0x00;
const DW: u8 = 0x18;

#[test]
fn sign_extending_loads_of_socket_filter_fields() {
    // cb[0] = 0x8001_ff80: its byte 0 is 0x80 (-128), its high half 0x8001 (-32767), the
    // whole word -2147418240; cb[1] = 0x7f (127, positive). len: 5 bytes of data.
    let mut skb = vec![0u8; 192];
    put32(&mut skb, 48, 0x8001_ff80);
    put32(&mut skb, 52, 0x7f);
    for engine in engines() {
        let cases: [(Insn, u64); 5] = [
            (ldsx(B, 0, 1, 48), -128i64 as u64),
            (ldsx(H, 0, 1, 50), -32767i64 as u64),
            (ldsx(W, 0, 1, 48), 0x8001_ff80u32 as i32 as i64 as u64),
            (ldsx(B, 0, 1, 52), 127),
            (ldsx(W, 0, 1, 0), 5),
        ];
        for (load, want) in cases {
            let p = load_with(&[load, exit()], verified(ProgramType::SocketFilter, engine))
                .expect("the kernel accepts sign-extending loads of these fields");
            let got = r0(&p, &mut [1, 2, 3, 4, 5], Some(&skb));
            assert_eq!(got, want, "{engine:?} {load:?}");
        }
    }
}

#[test]
fn sign_extending_loads_of_tracing_contexts() {
    // pt_regs word 14 (di, offset 112) = 0xffff_fff6 in its low half: s32 gives -10.
    let mut regs = vec![0u8; 168];
    put32(&mut regs, 112, 0xffff_fff6);
    // A tracepoint record whose u16 at 8 is 0xfffe (-2).
    let mut record = vec![0u8; 16];
    record[8] = 0xfe;
    record[9] = 0xff;
    for engine in engines() {
        let p = load_with(
            &[ldsx(W, 0, 1, 112), exit()],
            verified(ProgramType::Tracing, engine),
        )
        .expect("accepted");
        assert_eq!(r0(&p, &mut [], Some(&regs)), -10i64 as u64, "{engine:?}");
        let p = load_with(
            &[ldsx(H, 0, 1, 8), exit()],
            verified(ProgramType::Tracepoint, engine),
        )
        .expect("accepted");
        assert_eq!(r0(&p, &mut [], Some(&record)), -2i64 as u64, "{engine:?}");
    }
}

#[test]
fn sign_extending_loads_of_xdp_packet_pointers_are_refused() {
    let e = load_with(
        &[ldsx(W, 2, 1, 0), mov(0, 2), exit()],
        verified(ProgramType::Xdp, engine()),
    )
    .expect_err("the kernel refuses it");
    assert_eq!(e.code, ErrorCode::Eacces);
    assert_eq!(e.message, "invalid bpf_context access off=0 size=4");
}

#[test]
fn a_tracepoint_reads_its_record_zero_extended_to_perf_max_trace_size() {
    // r0 = *(u64 *)(r1 + 8) + *(u64 *)(r1 + 8184): the first field and the last word the
    // verifier allows, which a 16-byte record does not have (it reads 0).
    let prog = [ldx(DW, 0, 1, 8), ldx(DW, 2, 1, 8184), addr(0, 2), exit()];
    let mut record = vec![0u8; 16];
    record[8] = 42;
    for engine in engines() {
        let p = load_with(&prog, verified(ProgramType::Tracepoint, engine)).expect("accepted");
        assert_eq!(r0(&p, &mut [], Some(&record)), 42, "{engine:?}");
        // A record of the whole size: the last word is the caller's.
        let mut full = vec![0u8; 8192];
        full[8] = 1;
        full[8184] = 2;
        assert_eq!(r0(&p, &mut [], Some(&full)), 3, "{engine:?}");
        let trap = run_ctx(&p, &mut [], Some(&vec![0u8; 8193])).expect_err("too long");
        assert_eq!(trap.kind, TrapKind::InvalidInput);
        assert!(trap.message.contains("8193 bytes"), "{}", trap.message);
    }
    // The common header is the kernel's.
    let e = load_with(
        &[ldx(DW, 0, 1, 0), exit()],
        verified(ProgramType::Tracepoint, engine()),
    )
    .expect_err("the header");
    assert_eq!(e.message, "invalid bpf_context access off=0 size=8");
}

#[test]
fn a_raw_tracepoint_reads_twelve_arguments_zero_extended() {
    // r0 = args[0] + args[11]: two arguments given, the twelfth reads 0.
    let prog = [ldx(DW, 0, 1, 0), ldx(DW, 2, 1, 88), addr(0, 2), exit()];
    let mut args = vec![0u8; 16];
    args[0] = 9;
    for engine in engines() {
        let p = load_with(&prog, verified(ProgramType::RawTracepoint, engine)).expect("accepted");
        assert_eq!(r0(&p, &mut [], Some(&args)), 9, "{engine:?}");
        let trap = run_ctx(&p, &mut [], Some(&[0u8; 104])).expect_err("13 arguments");
        assert_eq!(trap.kind, TrapKind::InvalidInput);
    }
    let e = load_with(
        &[ldx(DW, 0, 1, 96), exit()],
        verified(ProgramType::RawTracepoint, engine()),
    )
    .expect_err("a thirteenth argument");
    assert_eq!(e.message, "invalid bpf_context access off=96 size=8");
}

#[test]
fn skb_sk_is_null_here_and_the_null_branch_runs() {
    // r2 = skb->sk; if r2 == 0 goto +2; r0 = *(u32 *)(r2 + 4) (family); exit; r0 = 7; exit.
    let prog = [
        ldx(DW, 2, 1, 168),
        ji(0x15, 2, 0, 2),
        ldx(W, 0, 2, 4),
        exit(),
        mov(0, 7),
        exit(),
    ];
    for engine in engines() {
        let p = load_with(&prog, verified(ProgramType::SocketFilter, engine)).expect("accepted");
        assert_eq!(r0(&p, &mut [0u8; 20], None), 7, "{engine:?}");
    }
}

#[test]
fn egress_ifindex_is_read_by_devmap_programs_only() {
    let prog = [ldx(W, 0, 1, 20), exit()];
    let e = load_with(&prog, verified(ProgramType::Xdp, engine())).expect_err("plain xdp");
    assert_eq!(e.message, "invalid bpf_context access off=20 size=4");
    let devmap = |prog_type| ProgramOptions {
        expected_attach_type: Some(AttachType::XdpDevmap),
        ..verified(prog_type, engine())
    };
    let p = load_with(&prog, devmap(ProgramType::Xdp)).expect("a devmap program");
    // No egress device in a test run: the field reads 0.
    assert_eq!(r0(&p, &mut [0u8; 20], None), 0);
    let e = load_with(&prog, devmap(ProgramType::SocketFilter)).expect_err("not xdp");
    assert_eq!(e.code, ErrorCode::Einval);
}

// ---- The context rewrite of verified programs reads the verifier's pointer types ----------

const XDP_UDP: &[u8] = include_bytes!("context_support/fixtures/xdp_udp.bin");
const XDP_TAG: &[u8] = include_bytes!("context_support/fixtures/xdp_tag.bin");
const SKB_FIELDS: &[u8] = include_bytes!("context_support/fixtures/skb_fields.bin");

/// `data` through a copy of the context pointer moved by 0 (`r2 = r1; r2 += 0`), then the packet
/// byte at 13, masked to an XDP action. The provenance pass of checked mode loses the context at
/// the `+= 0` (an ALU result); the verifier keeps `ctx()` (offset 0), so the load is rewritten.
fn xdp_data_through_ctx_plus_zero() -> Vec<Insn> {
    vec![
        movr(2, 1),
        add(2, 0),
        ldx(W, 3, 2, 0), // data
        ldx(W, 4, 1, 4), // data_end
        movr(5, 3),
        add(5, 14),
        mov(0, 0),
        jr(0x20, 5, 4, 2), // if r5 > r4 goto +2
        ldx(B, 0, 3, 13),
        Insn::new(0x57, 0, 0, 0, 3), // r0 &= 3
        exit(),
    ]
}

#[test]
fn a_context_pointer_moved_by_zero_still_reads_data_in_verified_mode() {
    // Linux 6.18 accepts the program (`r2 += 0` keeps a context pointer at offset 0) and
    // `BPF_PROG_TEST_RUN` returned 3 for the first packet (byte 13 is 0x07) and 2 for the second
    // (0x06), loaded through the bpf() syscall as an XDP program.
    let code = xdp_data_through_ctx_plus_zero();
    for engine in engines() {
        let p = load_with(&code, verified(ProgramType::Xdp, engine)).expect("verified");
        let mut seven: Vec<u8> = (1..=13).chain([7]).collect();
        let mut six: Vec<u8> = (1..=13).chain([6, 0]).collect();
        assert_eq!(r0(&p, &mut seven, None), 3, "{engine:?}");
        assert_eq!(r0(&p, &mut six, None), 2, "{engine:?}");
    }
}

/// The rewritten instructions and the context fields recorded in the side table.
fn rewritten(p: &ebpf_vm::Program) -> (Vec<u8>, Vec<Option<u16>>) {
    let fields = p.analysis().aux.iter().map(|a| a.ctx_field).collect();
    (p.xlated(), fields)
}

#[test]
fn verified_and_checked_loads_rewrite_the_same_context_accesses() {
    // Where both ways of finding the context pointer see it (clang's objects; copies, spills and
    // fills; a call passing it on), the verifier's pointer types and checked mode's provenance
    // pass must give the same program.
    let copies_and_spills = encode_all(&[
        movr(6, 1),
        stx(DW, 10, 6, -8),
        ldx(DW, 7, 10, -8),
        ldx(W, 8, 7, 0), // data
        ldx(W, 9, 6, 4), // data_end
        movr(1, 7),
        call_local(1),
        exit(),
        // The callee reads `ingress_ifindex` through its r1, then returns XDP_PASS.
        ldx(W, 0, 1, 12),
        mov(0, 2),
        exit(),
    ]);
    let cases: [(&str, &[u8], ProgramType); 4] = [
        ("xdp_udp", XDP_UDP, ProgramType::Xdp),
        ("xdp_tag", XDP_TAG, ProgramType::Xdp),
        ("skb_fields", SKB_FIELDS, ProgramType::Tc),
        ("copies_and_spills", &copies_and_spills, ProgramType::Xdp),
    ];
    for (name, code, prog_type) in cases {
        let checked = ebpf_vm::Program::load(code, options(prog_type)).expect("checked");
        let verified = ebpf_vm::Program::load(code, verified(prog_type, engine()))
            .unwrap_or_else(|e| panic!("{name}: the verifier refused: {e}"));
        let fields = rewritten(&checked).1;
        assert!(
            fields.iter().any(Option::is_some),
            "{name}: a context access"
        );
        assert_eq!(rewritten(&checked), rewritten(&verified), "{name}");
    }
    // Where only the verifier sees the context, only the verified load is rewritten.
    let code = encode_all(&xdp_data_through_ctx_plus_zero());
    let checked = ebpf_vm::Program::load(&code, options(ProgramType::Xdp)).expect("checked");
    let verified =
        ebpf_vm::Program::load(&code, verified(ProgramType::Xdp, engine())).expect("verified");
    assert_eq!(rewritten(&checked).1[2], None);
    assert_eq!(rewritten(&verified).1[2], Some(0));
}
