//! `bpf_trace_printk` (6), `bpf_snprintf` (165), `bpf_strtol` (105) and `bpf_strtoul` (106).
//! Expected texts are written by hand from the kernel's format rules (kernel/bpf/helpers.c,
//! `bpf_bprintf_prepare`); the strtol/strtoul cases were also run on Linux 6.18 (XDP programs
//! under `bpftool prog run`) with the same results, including `*res = 0` on failure.

mod context_support;

use std::sync::{Arc, Mutex};

use context_support::*;
use ebpf_vm::helpers::output::TraceSink;
use ebpf_vm::isa::opcodes::*;
use ebpf_vm::isa::Insn;
use ebpf_vm::{Engine, PointerLeaks, ProgramOptions, ProgramType, Trap, TrapKind};

const EINVAL: u64 = (-22i64) as u64;
const ERANGE: u64 = (-34i64) as u64;

/// trace_printk(fmt, len + 1, a, b, c) with fmt at r10 - 128 and a string "hello" at r10 - 160.
fn printk(fmt: &str, args: [u64; 3]) -> Vec<Insn> {
    let mut v = stack_bytes(fmt.as_bytes(), -128);
    v.extend(stack_bytes(b"hello", -160));
    v.extend(prog![fp_plus(1, -128), mov(2, fmt.len() as i32 + 1)]);
    for (k, a) in args.iter().enumerate() {
        v.extend(lddw(3 + k as u8, *a));
    }
    v.extend(prog![call(6), exit()]);
    v
}

/// The value that stands for "the address of the string hello" in `printk` arguments.
const HELLO: u64 = u64::MAX - 1;

fn printed(fmt: &str, args: [u64; 3]) -> (u64, String) {
    let mut insns = printk(fmt, args);
    // Replace the HELLO placeholder loads by r = r10 - 160.
    for k in 0..insns.len() {
        if insns[k].opcode == OP_LDDW && insns[k].imm as u32 == HELLO as u32 && k + 1 < insns.len()
        {
            let d = insns[k].dst;
            insns[k] = movr(d, 10);
            insns[k + 1] = add(d, -160);
        }
    }
    let p = load(&insns, ProgramType::Raw).unwrap();
    let r = r0(&p, &mut [], None);
    (r, p.take_trace_log())
}

#[test]
fn trace_printk_formats_the_kernels_conversions() {
    let m5 = (-5i64) as u64;
    assert_eq!(
        printed("a=%d b=%u c=%x\n", [m5, m5, 255]),
        (23, "a=-5 b=4294967291 c=ff\n".into())
    );
    assert_eq!(
        printed("%ld %lu %lx", [m5, m5, m5]).1,
        "-5 18446744073709551611 fffffffffffffffb"
    );
    assert_eq!(printed("%lld %llu %llx", [m5, 7, 0xabc]).1, "-5 7 abc");
    assert_eq!(printed("%i %c %%", [42, b'A' as u64, 0]).1, "42 A %");
    // %p prints an id of the value, never the value (see `pointers_print_as_ids_...`).
    let id = printed("%p", [0x1234, 0, 0]).1;
    assert!(id.len() == 16 && id.starts_with("00000000") && id != "0000000000001234");
    assert_eq!(printed("<%s>", [HELLO, 0, 0]), (7, "<hello>".into()));
    assert_eq!(printed("%5d|%-5d|%05d", [3, 3, 3]).1, "    3|3    |00003");
    assert_eq!(printed("%+d % d %X", [3, 3, 0xbeef]).1, "+3  3 BEEF");
    // A %s pointer outside the program's memory prints nothing (the kernel prints "").
    assert_eq!(printed("[%s]", [8, 0, 0]).1, "[]");
}

#[test]
fn trace_printk_refuses_what_the_kernel_refuses() {
    for fmt in ["%d %d %d %d", "%f", "%.2d", "%hd", "%o", "tab\x01"] {
        assert_eq!(printed(fmt, [1, 2, 3]), (EINVAL, String::new()), "{fmt:?}");
    }
    // fmt_size that does not reach the NUL: -EINVAL.
    let mut insns = stack_bytes(b"abcdefgh", -16);
    insns.extend(prog![fp_plus(1, -16), mov(2, 8), call(6), exit()]);
    let p = load(&insns, ProgramType::Raw).unwrap();
    assert_eq!(r0(&p, &mut [], None), EINVAL);
    // fmt outside the program's memory: the run stops.
    let bad = load(
        &prog![mov(1, 64), mov(2, 4), call(6), exit()],
        ProgramType::Raw,
    )
    .unwrap();
    let t = run_ctx(&bad, &mut [], None).unwrap_err();
    assert_eq!((t.kind, t.pc), (TrapKind::HelperError, 2));
}

#[test]
fn trace_output_accumulates_per_program_or_goes_to_a_sink() {
    let insns = printk("n=%d\n", [1, 0, 0]);
    let p = load(&insns, ProgramType::Raw).unwrap();
    for _ in 0..3 {
        r0(&p, &mut [], None);
    }
    assert_eq!(p.trace_log(), "n=1\nn=1\nn=1\n");
    assert_eq!(p.take_trace_log(), "n=1\nn=1\nn=1\n");
    assert_eq!(p.trace_log(), "");
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let s = seen.clone();
    let with_sink = load_with(
        &insns,
        ProgramOptions {
            trace_sink: Some(TraceSink::new(move |t| {
                s.lock().unwrap().push(t.to_string())
            })),
            ..options(ProgramType::Tracing)
        },
    )
    .unwrap();
    r0(&with_sink, &mut [], None);
    assert_eq!(*seen.lock().unwrap(), vec!["n=1\n".to_string()]);
    assert_eq!(with_sink.trace_log(), "");
}

/// snprintf(out at r10 - 64, size, fmt at r10 - 128, data at r10 - 32 = [7, &"hello"], len);
/// r0 = return value; the output buffer's first 16 bytes come back in the data (16 bytes).
fn snprintf(fmt: &str, size: i32, data_len: i32) -> (u64, Vec<u8>) {
    let mut v = stack_bytes(fmt.as_bytes(), -128);
    v.extend(stack_bytes(b"hello", -160));
    v.extend(prog![
        st(SIZE_DW, 10, -32, 7),
        fp_plus(2, -160),
        stx(SIZE_DW, 10, 2, -24),
        st(SIZE_DW, 10, -64, 0x2a2a2a2a),
        st(SIZE_DW, 10, -56, 0x2a2a2a2a),
        fp_plus(1, -64),
        mov(2, size),
        fp_plus(3, -128),
        fp_plus(4, -32),
        mov(5, data_len),
        call(165),
        ldx(SIZE_DW, 2, 10, -64),
        ldx(SIZE_DW, 3, 10, -56),
        // data: the caller's 16-byte buffer (Raw: r1 of the program was saved in r6).
        stx(SIZE_DW, 6, 2, 0),
        stx(SIZE_DW, 6, 3, 8),
        exit(),
    ]);
    let mut insns = prog![movr(6, 1)];
    insns.extend(v);
    let p = load(&insns, ProgramType::Raw).unwrap();
    let mut data = vec![0u8; 16];
    let r = r0(&p, &mut data, None);
    (r, data)
}

#[test]
fn snprintf_writes_a_truncated_nul_terminated_string_and_returns_the_full_size() {
    // "x=7 y=hello" is 11 characters: 12 with the NUL.
    let (r, out) = snprintf("x=%d y=%s", 64, 16);
    assert_eq!(r, 12);
    assert_eq!(&out[..12], b"x=7 y=hello\0");
    let (r, out) = snprintf("x=%d y=%s", 8, 16);
    assert_eq!(r, 12);
    assert_eq!(&out[..8], b"x=7 y=h\0");
    // Size 0 writes nothing (the 0x2a filler stays).
    let (r, out) = snprintf("x=%d y=%s", 0, 16);
    assert_eq!(r, 12);
    assert_eq!(&out[..4], b"****");
    // data_len not a multiple of 8, or over 12 arguments; more conversions than arguments.
    assert_eq!(snprintf("x=%d", 64, 12).0, EINVAL);
    assert_eq!(snprintf("x=%d", 64, 13 * 8).0, EINVAL);
    assert_eq!(snprintf("%d %s %d", 64, 16).0, EINVAL);
}

/// strtol/strtoul(buf = s at r10 - 64, len(s), flags, &res at r10 - 8 preset to 7);
/// returns (r0, res).
fn strto(helper: i32, s: &str, flags: i32) -> (u64, u64) {
    let mut insns = prog![movr(6, 1)];
    insns.extend(stack_bytes(s.as_bytes(), -64));
    insns.extend(prog![
        st(SIZE_DW, 10, -8, 7),
        fp_plus(1, -64),
        mov(2, s.len() as i32),
        mov(3, flags),
        fp_plus(4, -8),
        call(helper),
        ldx(SIZE_DW, 2, 10, -8),
        stx(SIZE_DW, 6, 2, 0),
        exit(),
    ]);
    let p = load(&insns, ProgramType::Raw).unwrap();
    let mut data = [0u8; 8];
    let r = r0(&p, &mut data, None);
    (r, u64::from_le_bytes(data))
}

#[test]
fn strtol_and_strtoul_as_on_linux() {
    let neg = |v: i64| v as u64;
    assert_eq!(strto(105, "  -42xyz", 0), (5, neg(-42)));
    assert_eq!(strto(105, "0x1f", 0), (4, 31));
    assert_eq!(strto(105, "0x", 0), (1, 0));
    assert_eq!(strto(105, "0x", 16), (EINVAL, 0));
    assert_eq!(strto(105, "017", 0), (3, 15));
    assert_eq!(strto(105, "9223372036854775808", 10), (ERANGE, 0));
    assert_eq!(strto(105, "-9223372036854775808", 10), (20, neg(i64::MIN)));
    assert_eq!(strto(105, "zz", 10), (EINVAL, 0));
    assert_eq!(strto(105, "12", 7), (EINVAL, 0));
    assert_eq!(strto(106, "-1", 10), (EINVAL, 0));
    assert_eq!(strto(106, "0X1fG", 16), (4, 31));
    assert_eq!(strto(106, "18446744073709551615", 0), (20, u64::MAX));
    assert_eq!(strto(106, "18446744073709551616", 0), (ERANGE, 0));
}

enum Arg {
    Num(u64),
    /// The address of "hello" on the stack.
    Hello,
}

/// bpf_snprintf(out (128 bytes on the stack), size, fmt, args, 8 * args.len()); returns r0 and
/// the output buffer.
fn snprintf_case(fmt: &str, args: &[Arg], size: i32) -> (u64, Vec<u8>) {
    let options = options(ProgramType::Raw);
    snprintf_with(options, fmt, args, size, b"hello").expect("program runs")
}

/// `snprintf_case` on `engine`, with `blob` (at most 16 bytes) where "hello" was.
fn snprintf_on(engine: Engine, fmt: &str, args: &[Arg], size: i32, blob: &[u8]) -> (u64, Vec<u8>) {
    let options = ProgramOptions {
        engine,
        ..options(ProgramType::Raw)
    };
    snprintf_with(options, fmt, args, size, blob).expect("program runs")
}

/// `snprintf_on` with `options`; the trap if the run stops.
fn snprintf_with(
    options: ProgramOptions,
    fmt: &str,
    args: &[Arg],
    size: i32,
    blob: &[u8],
) -> Result<(u64, Vec<u8>), Trap> {
    let mut v = prog![movr(6, 1)];
    v.extend(stack_bytes(fmt.as_bytes(), -256));
    v.extend(stack_bytes(blob, -400));
    for (k, a) in args.iter().enumerate() {
        match a {
            Arg::Num(n) => v.extend(lddw(9, *n)),
            Arg::Hello => v.extend(fp_plus(9, -400)),
        }
        v.push(stx(SIZE_DW, 10, 9, -352 + 8 * k as i16));
    }
    v.extend(lddw(9, 0x2a2a_2a2a_2a2a_2a2a));
    for k in 0..16 {
        v.push(stx(SIZE_DW, 10, 9, -128 + 8 * k));
    }
    v.extend(prog![
        fp_plus(1, -128),
        mov(2, size),
        fp_plus(3, -256),
        fp_plus(4, -352),
        mov(5, 8 * args.len() as i32),
        call(165),
        movr(7, 0),
    ]);
    for k in 0..16 {
        v.push(ldx(SIZE_DW, 2, 10, -128 + 8 * k));
        v.push(stx(SIZE_DW, 6, 2, 8 * k));
    }
    v.extend(prog![movr(0, 7), exit()]);
    let p = load_with(&v, options).unwrap();
    let mut out = vec![0u8; 128];
    let r = run_ctx(&p, &mut out, None)?.0.r0;
    Ok((r, out))
}

/// The same calls as XDP programs on Linux 6.18 (`bpftool prog run`, output copied to the
/// packet): return values and texts are the kernel's.
#[test]
fn snprintf_output_matches_linux() {
    use Arg::*;
    let m5 = (-5i64) as u64;
    let (r, out) = snprintf_case(
        "a=%d b=%u c=%x|%5d|%-5d|%05d|%+d|% d|%X|%ld|%lu|%lx",
        &[
            Num(m5),
            Num(m5),
            Num(255),
            Num(3),
            Num(3),
            Num(3),
            Num(3),
            Num(3),
            Num(0xbeef),
            Num(m5),
            Num(m5),
            Num(m5),
        ],
        128,
    );
    let want = "a=-5 b=4294967291 c=ff|    3|3    |00003|+3| 3|BEEF|-5|18446744073709551611|fffffffffffffffb";
    assert_eq!(r, 93);
    assert_eq!(&out[..93], format!("{want}\0").as_bytes());
    let m7 = (-7i64) as u64;
    let (r, out) = snprintf_case(
        "%c|%s|%%|%i|%lld|%llu|%llx|%3s|%-4c|",
        &[
            Num(b'A' as u64),
            Hello,
            Num(42),
            Num(m7),
            Num(m7),
            Num(0xabc),
            Hello,
            Num(b'z' as u64),
        ],
        128,
    );
    assert_eq!(r, 53);
    assert_eq!(
        &out[..53],
        b"A|hello|%|42|-7|18446744073709551609|abc|hello|z   |\0"
    );
    let (r, out) = snprintf_case("n=%d!", &[Num(12345)], 4);
    assert_eq!(r, 9);
    assert_eq!(&out[..8], b"n=1\0****");
}

/// The text and return value of `bpf_snprintf` into a 128-byte buffer on `engine`.
fn snprintf_text(engine: Engine, fmt: &str, args: &[Arg], blob: &[u8]) -> (u64, String) {
    let (r, out) = snprintf_on(engine, fmt, args, 128, blob);
    let end = out.iter().position(|&b| b == 0).unwrap_or(out.len());
    (r, String::from_utf8_lossy(&out[..end]).into_owned())
}

/// Pointer conversions as Linux 6.18 prints them: the same calls as an XDP program under
/// `bpftool prog run` (the output copied to the packet) gave these texts and return values. Values
/// that are not NULL or an error pointer are hashed there with a boot-time key, so these cases
/// print NULL (zeros), an error pointer (-14) or what lies behind the pointer.
#[test]
fn pointer_conversions_match_linux() {
    use Arg::*;
    let efault = (-14i64) as u64;
    let ip = [10, 0, 2, 15];
    // (format, arguments, the bytes behind `Hello`, return value, text)
    type Case<'a> = (&'a str, Vec<Arg>, &'a [u8], u64, &'a str);
    let cases: [Case; 11] = [
        (
            "%p|%p|%px",
            vec![Num(0), Num(efault), Num(0)],
            b"hello",
            51,
            "0000000000000000|fffffffffffffff2|0000000000000000",
        ),
        (
            "%pI4|%pi4",
            vec![Hello, Hello],
            b"hello",
            32,
            "104.101.108.108|104.101.108.108",
        ),
        (
            "%pI6",
            vec![Hello],
            b"hello",
            40,
            "6865:6c6c:6f00:0000:0000:0000:0000:0000",
        ),
        (
            "%pi6",
            vec![Hello],
            b"hello",
            33,
            "68656c6c6f0000000000000000000000",
        ),
        // Letters and digits right after a pointer conversion belong to it; punctuation does not.
        (
            "%pI4h,%pI4xy!",
            vec![Hello, Hello],
            b"hello",
            33,
            "104.101.108.108,104.101.108.108!",
        ),
        (
            "[%20p][%-4p][%020p]",
            vec![Num(0), Num(0), Num(0)],
            b"hello",
            51,
            "[                   0][0   ][00000000000000000000]",
        ),
        // %pus reads user memory, and no address of the program is one: an empty string.
        ("%pks|%pus|", vec![Hello, Hello], b"hello", 8, "hello||"),
        ("%pI4", vec![Num(8)], b"hello", 8, "0.0.0.0"),
        (
            "%p,%px.",
            vec![Num(0), Num(0)],
            b"hello",
            35,
            "0000000000000000,0000000000000000.",
        ),
        (
            "%pKabc|%pxyz|",
            vec![Num(0), Num(0)],
            b"hello",
            35,
            "0000000000000000|0000000000000000|",
        ),
        (
            "%pI4|%pi4|",
            vec![Hello, Hello],
            &ip,
            27,
            "10.0.2.15|010.000.002.015|",
        ),
    ];
    for engine in [Engine::Interpreter, Engine::Jit] {
        for (fmt, args, blob, r, text) in &cases {
            assert_eq!(
                snprintf_text(engine, fmt, args, blob),
                (*r, text.to_string()),
                "{fmt:?} on {engine:?}"
            );
        }
        // The kernel's verifier refuses these formats ("Invalid format string"); at run time the
        // helper's answer is -EINVAL.
        for fmt in ["%pd", "%p1", "%pa", "%pk", "%pI5"] {
            assert_eq!(
                snprintf_text(engine, fmt, &[Num(0)], b"").0,
                EINVAL,
                "{fmt:?}"
            );
        }
    }
}

/// What the kernel shows a reader without privileges, and what this runtime always shows: `%p`
/// (and `%px`, `%ps`, `%pS`, `%pB`) a 32-bit id, `%pK` zeros, never the address.
#[test]
fn pointers_print_as_ids_or_zeros_never_as_addresses() {
    use Arg::*;
    let id = |engine, v: u64| snprintf_text(engine, "%p", &[Num(v)], b"").1;
    let all = "%lx|%p|%px|%ps|%pS|%pB|%pK";
    let args = [Hello, Hello, Hello, Hello, Hello, Hello, Hello];
    for engine in [Engine::Interpreter, Engine::Jit] {
        // %lx prints the address itself: only a program allowed to leak pointers may do that.
        let options = ProgramOptions {
            engine,
            ..options(ProgramType::Raw)
        };
        let t = snprintf_with(options.clone(), all, &args, 128, b"hello").unwrap_err();
        // The call is slot 63: 1 + 12 (format) + 3 ("hello") + 21 (arguments) + 18 (filler) + 8.
        assert_eq!((t.kind, t.pc), (TrapKind::PointerLeak, 63));
        assert_eq!(
            t.message,
            "bpf_snprintf: argument 1 (printed as a number) holds an address (stack-400), \
             and this program refuses pointer leaks"
        );
        let allowed = ProgramOptions {
            pointer_leaks: PointerLeaks::Allow,
            ..options
        };
        let (_, out) = snprintf_with(allowed, all, &args, 128, b"hello").unwrap();
        let text =
            String::from_utf8_lossy(&out[..out.iter().position(|&b| b == 0).unwrap()]).into_owned();
        let parts: Vec<&str> = text.split('|').collect();
        let addr = u64::from_str_radix(parts[0], 16).unwrap();
        let hashed = parts[1];
        assert_eq!(hashed.len(), 16);
        assert!(hashed.starts_with("00000000"), "{hashed}: 32 bits");
        assert_ne!(u64::from_str_radix(hashed, 16).unwrap(), addr);
        assert_ne!(&hashed[8..], &format!("{addr:016x}")[8..]);
        assert_eq!(&parts[2..6], [hashed; 4]);
        assert_eq!(parts[6], "0000000000000000");
        // Ids are stable within the process (both engines, every run) and tell values apart.
        assert_eq!(id(engine, 0x1234), id(Engine::Interpreter, 0x1234));
        assert_ne!(id(engine, 0x1234), id(engine, 0x1235));
        assert_ne!(id(engine, 0x1234), "0000000000001234");
    }
}
