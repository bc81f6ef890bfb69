//! A load cut into its parts, each timed on its own beside rbpf's compile (issue #10 item 4: the
//! JIT's part within 2x rbpf's compile, the verifier's time reported apart). The parts are those
//! of `Program::load`: validation (`isa::validate_with`), the analysis (`analysis::analyse`), in
//! mode verified the verifier (`verification::verify_load`), and the JIT's part, from the
//! analysed (and verified) program to executable code and back (`JitProgram::compile_program`:
//! emission, the copy into W^X memory, and its drop), given what the load found.

use std::hint::black_box;

use ebpf_vm::analysis::{analyse, AnalysisOptions};
use ebpf_vm::isa::{validate_with, ReservedFields};
use ebpf_vm::jit::{JitOptions, JitProgram};
use ebpf_vm::verification::{verify_load, LoadFacts};
use ebpf_vm::verifier::ProgramKind;
use ebpf_vm::{Engine, HelperTable, Mode, Program, ProgramOptions, ProgramType};

use super::race::Task;

/// The options a load of `bytecode` in `mode` takes (raw; `data_size` for mode verified).
pub fn load_options(mode: Mode, data_size: usize) -> ProgramOptions {
    ProgramOptions {
        engine: Engine::Jit,
        mode,
        data_size: (mode == Mode::Verified).then_some(data_size as u32),
        ..ProgramOptions::default()
    }
}

/// One task per part of a JIT load of `bytecode` in `mode` (named `validate`, `analyse`,
/// `verify` in mode verified, `jit_part`, and `load` for the whole `Program::load`), or why it
/// does not load.
pub fn tasks(
    bytecode: &'static [u8],
    mode: Mode,
    data_size: usize,
) -> Result<Vec<Task<'static>>, String> {
    let options = load_options(mode, data_size);
    let program = Program::load(bytecode, options.clone()).map_err(|e| e.to_string())?;
    if program.engine() != Engine::Jit {
        return Err("did not load on the JIT".into());
    }
    let fields = match mode {
        Mode::Checked => ReservedFields::Strict,
        Mode::Verified => ReservedFields::Kernel,
    };
    let helpers = ebpf_vm::context::helpers_for(ProgramType::Raw, &HelperTable::default());
    let insns =
        validate_with(bytecode, &|id| helpers.contains(id), fields).map_err(|e| e.to_string())?;
    let analysis = analyse(&insns, &AnalysisOptions::default()).map_err(|e| e.to_string())?;
    let mut tasks: Vec<Task<'static>> = vec![];
    let load_opts = options.clone();
    tasks.push((
        "load",
        Box::new(move || {
            black_box(Program::load(bytecode, load_opts.clone()).unwrap());
        }),
    ));
    let validate_helpers = helpers.clone();
    tasks.push((
        "validate",
        Box::new(move || {
            black_box(
                validate_with(bytecode, &|id| validate_helpers.contains(id), fields).unwrap(),
            );
        }),
    ));
    let analyse_insns = insns.clone();
    tasks.push((
        "analyse",
        Box::new(move || {
            black_box(analyse(&analyse_insns, &AnalysisOptions::default()).unwrap());
        }),
    ));
    if mode == Mode::Verified {
        let verify_analysis = analysis.clone();
        tasks.push((
            "verify",
            Box::new(move || {
                let facts = LoadFacts {
                    kind: ProgramKind::Raw {
                        data_size: data_size as u32,
                    },
                    maps: &[],
                    helpers: &helpers,
                    gpl_compatible: options.gpl_compatible,
                    log_level: 0,
                    source_lines: &[],
                    globals: &[],
                    unprivileged: false,
                    exit_range: false,
                };
                black_box(verify_load(&verify_analysis, &facts).unwrap());
            }),
        ));
    }
    // What the load handed the JIT: its (rewritten) instructions, analysis and proof.
    let jit_insns = program.instructions().to_vec();
    let jit_analysis = program.analysis().clone();
    let proved = program.verifier_report().map(|v| v.proved.clone());
    let stack_frames = ebpf_vm::stack_reach::reachable_frames(&jit_analysis);
    let jit_options = JitOptions {
        meter: program.metered(),
        ..JitOptions::default()
    };
    tasks.push((
        "jit_part",
        Box::new(move || {
            black_box(
                JitProgram::compile_program(
                    &jit_insns,
                    &jit_analysis,
                    jit_options,
                    &[],
                    stack_frames,
                    proved.as_deref(),
                    &[],
                )
                .unwrap(),
            );
        }),
    ));
    Ok(tasks)
}
