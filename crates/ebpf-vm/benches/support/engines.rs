//! One runner per engine, each owning its copy of the input memory: our interpreter and JIT through
//! the public `Program` API, rbpf 0.4's interpreter and JIT (`EbpfVmRaw`, r1 = the memory), and the
//! native build of the same C. Every benchmark program is idempotent on its memory (it rewrites
//! what it reads), so a runner reuses its buffer across iterations.

use ebpf_vm::{Engine, Mode, Program, ProgramOptions, RunInput};

use super::inputs::BenchProgram;
use super::native::NativeLib;

/// Set to false to leave our JIT column out even when `Engine::Jit` loads programs.
pub const MEASURE_OUR_JIT: bool = true;

pub struct Runner {
    /// Column name in criterion's output: `native`, `ebpf_jit`, `ebpf_jit_plain` (constants not
    /// blinded), `ebpf_interp`, `ebpf_jit_verified` and `ebpf_interp_verified` (mode verified,
    /// the programs that load so), `rbpf_jit`, `rbpf_interp`.
    pub engine: &'static str,
    run: Box<dyn FnMut() -> u64>,
}

impl Runner {
    /// One run; returns r0.
    #[inline]
    pub fn run(&mut self) -> u64 {
        (self.run)()
    }
}

/// The bytecode loaded by our engine (default options), or why not.
pub fn ours(engine: Engine, prog: &BenchProgram) -> Result<Runner, String> {
    ours_with(engine, prog, true)
}

/// As `ours`, with the JIT's constant blinding on or off (`ebpf_jit_plain` when off).
pub fn ours_with(
    engine: Engine,
    prog: &BenchProgram,
    blind_constants: bool,
) -> Result<Runner, String> {
    ours_mode(engine, prog, blind_constants, Mode::Checked)
}

/// As `ours_with`, in mode `mode`: verified loads a raw program with `dataSize` its input's
/// length (`ebpf_jit_verified`, `ebpf_interp_verified`).
pub fn ours_mode(
    engine: Engine,
    prog: &BenchProgram,
    blind_constants: bool,
    mode: Mode,
) -> Result<Runner, String> {
    let mut mem = (prog.input)();
    let options = ProgramOptions {
        engine,
        blind_constants,
        mode,
        data_size: (mode == Mode::Verified).then_some(mem.len() as u32),
        ..ProgramOptions::default()
    };
    let program = Program::load(prog.bytecode, options).map_err(|e| e.to_string())?;
    if program.engine() != engine {
        return Err(format!("asked for {engine:?}, got {:?}", program.engine()));
    }
    let name = prog.name;
    Ok(Runner {
        engine: match (engine, blind_constants, mode) {
            (Engine::Jit, _, Mode::Verified) => "ebpf_jit_verified",
            (_, _, Mode::Verified) => "ebpf_interp_verified",
            (Engine::Jit, true, _) => "ebpf_jit",
            (Engine::Jit, false, _) => "ebpf_jit_plain",
            _ => "ebpf_interp",
        },
        run: Box::new(move || {
            let mut input = RunInput {
                data: &mut mem,
                budget: None,
            };
            match program.run(&mut input) {
                Ok(out) => out.r0,
                Err(trap) => panic!("{name} trapped on {engine:?}: {trap}"),
            }
        }),
    })
}

/// A fresh `&'static mut` view of `mem` for rbpf, whose API ties the memory to the VM's lifetime.
///
/// # Safety
/// `mem` outlives every use of the slice (both live in the same closure) and no other reference to
/// it is in use while rbpf runs.
unsafe fn rbpf_view(mem: &mut [u8]) -> &'static mut [u8] {
    unsafe { std::slice::from_raw_parts_mut(mem.as_mut_ptr(), mem.len()) }
}

pub fn rbpf_interp(prog: &BenchProgram) -> Result<Runner, String> {
    let vm = rbpf::EbpfVmRaw::new(Some(prog.bytecode)).map_err(|e| e.to_string())?;
    let mut mem = (prog.input)();
    let name = prog.name;
    Ok(Runner {
        engine: "rbpf_interp",
        run: Box::new(move || {
            // SAFETY: see rbpf_view.
            let view = unsafe { rbpf_view(&mut mem) };
            vm.execute_program(view)
                .unwrap_or_else(|e| panic!("{name} failed on rbpf's interpreter: {e}"))
        }),
    })
}

/// rbpf's JIT, or why not. Its code buffer is one 4 KiB page, and a larger program makes
/// `jit_compile` panic rather than fail; that panic is caught and reported as a reason.
pub fn rbpf_jit(prog: &BenchProgram) -> Result<Runner, String> {
    let vm = compile_rbpf_jit(prog.bytecode)?;
    let mut mem = (prog.input)();
    let name = prog.name;
    Ok(Runner {
        engine: "rbpf_jit",
        run: Box::new(move || {
            // SAFETY: rbpf's JIT does no memory checks; every program first ran to the same r0 on
            // the checked interpreters (see `all`), so its accesses stay inside `mem` and the stack.
            unsafe {
                vm.execute_program_jit(rbpf_view(&mut mem))
                    .unwrap_or_else(|e| panic!("{name} failed on rbpf's JIT: {e}"))
            }
        }),
    })
}

/// `EbpfVmRaw::new` + `jit_compile`, with a panic inside rbpf turned into an error (and kept off
/// stderr).
pub fn compile_rbpf_jit(bytecode: &'static [u8]) -> Result<rbpf::EbpfVmRaw<'static>, String> {
    let mut vm = rbpf::EbpfVmRaw::new(Some(bytecode)).map_err(|e| e.to_string())?;
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let compiled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| vm.jit_compile()));
    std::panic::set_hook(hook);
    match compiled {
        Ok(Ok(())) => Ok(vm),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!(
            "rbpf's jit_compile panicked ({} instructions overflow its one-page code buffer)",
            bytecode.len() / 8
        )),
    }
}

pub fn native(lib: &NativeLib, prog: &BenchProgram) -> Result<Runner, String> {
    let f = lib
        .get(prog.name)
        .ok_or_else(|| format!("bench_{} not in the native library", prog.name))?;
    let mut mem = (prog.input)();
    Ok(Runner {
        engine: "native",
        // SAFETY: the C function reads and writes only inside the buffer its header describes,
        // which the input builder sized for it.
        run: Box::new(move || unsafe { f(mem.as_mut_ptr()) }),
    })
}

/// Every engine that can run `prog`, checked to agree on r0 (our interpreter being the reference);
/// an engine that cannot run it is reported on stderr and left out.
pub fn all(prog: &BenchProgram, native_lib: Option<&NativeLib>) -> Vec<Runner> {
    let mut reference = ours(Engine::Interpreter, prog)
        .unwrap_or_else(|e| panic!("{}: our interpreter cannot load it: {e}", prog.name));
    let expected = reference.run();
    // Checked interpreters first: rbpf's JIT runs unchecked, so it runs only after them.
    let mut candidates: Vec<Result<Runner, String>> = vec![rbpf_interp(prog)];
    if MEASURE_OUR_JIT {
        candidates.push(ours(Engine::Jit, prog).map_err(|e| format!("ebpf_jit: {e}")));
        candidates
            .push(ours_with(Engine::Jit, prog, false).map_err(|e| format!("ebpf_jit_plain: {e}")));
        if prog.verifiable {
            candidates.push(
                ours_mode(Engine::Jit, prog, true, Mode::Verified)
                    .map_err(|e| format!("ebpf_jit_verified: {e}")),
            );
        }
    }
    if prog.verifiable {
        candidates.push(
            ours_mode(Engine::Interpreter, prog, true, Mode::Verified)
                .map_err(|e| format!("ebpf_interp_verified: {e}")),
        );
    }
    if let Some(lib) = native_lib {
        candidates.push(native(lib, prog));
    }
    let mut runners = vec![reference];
    let mut agree = true;
    for c in candidates {
        match c {
            Ok(mut r) => {
                let got = r.run();
                if got != expected {
                    eprintln!(
                        "{}: {} returned {got:#x}, our interpreter {expected:#x}",
                        prog.name, r.engine
                    );
                    agree = false;
                }
                runners.push(r);
            }
            Err(e) => eprintln!("{}: engine left out: {e}", prog.name),
        }
    }
    assert!(agree, "{}: engines disagree on r0", prog.name);
    match rbpf_jit(prog) {
        Ok(mut r) => {
            assert_eq!(r.run(), expected, "{}: rbpf_jit disagrees on r0", prog.name);
            runners.push(r);
        }
        Err(e) => eprintln!("{}: engine left out: rbpf_jit: {e}", prog.name),
    }
    runners
}
