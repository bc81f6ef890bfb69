//! A loaded program: validated instructions, the helpers it may call, its program type, engine and
//! safety mode; and one run of it against input memory.

use crate::error::{ErrorCode, LoadError, Trap};
use crate::helpers::HelperTable;
use crate::interpreter::{self, RunEnv, RunOutput, STACK_SIZE};
use crate::isa::opcodes::OP_LDDW;
use crate::isa::{encode_all, validate, Insn};
use crate::memory::{Region, Regions};

/// Which engine runs the program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Engine {
    Interpreter,
    Jit,
    /// The JIT where the host supports it, else the interpreter.
    #[default]
    Auto,
}

/// How safety is ensured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    /// No proof needed: every access is checked at run time and an instruction budget bounds the run.
    #[default]
    Checked,
}

/// What r1 (and r2) hold at entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ProgramType {
    /// r1 = address of the input data, r2 = its length (the conformance suite's convention).
    #[default]
    Raw,
}

/// The default instruction budget of a run in checked mode.
pub const DEFAULT_BUDGET: u64 = 10_000_000;

#[derive(Clone, Debug)]
pub struct ProgramOptions {
    pub prog_type: ProgramType,
    pub engine: Engine,
    pub mode: Mode,
    /// Instructions a run may execute (checked mode); a run may lower or raise it.
    pub budget: u64,
    pub helpers: HelperTable,
    /// The program's maps: `lddw` map relocations (pseudo sources 1, 2, 5, 6) index this list.
    pub maps: Vec<std::sync::Arc<dyn crate::maps::Map>>,
}

impl Default for ProgramOptions {
    fn default() -> Self {
        ProgramOptions {
            prog_type: ProgramType::Raw,
            engine: Engine::Auto,
            mode: Mode::Checked,
            budget: DEFAULT_BUDGET,
            helpers: HelperTable::standard(),
            maps: Vec::new(),
        }
    }
}

/// Input of one run.
#[derive(Debug, Default)]
pub struct RunInput<'a> {
    /// The packet or data buffer; the program may change it in place.
    pub data: &'a mut [u8],
    /// Overrides the program's instruction budget for this run.
    pub budget: Option<u64>,
}

#[derive(Debug)]
pub struct Program {
    insns: Vec<Insn>,
    options: ProgramOptions,
    engine: Engine,
    /// The maps of the program and the global-data regions of its runs.
    maps: crate::maps::ProgramMaps,
    /// The compiled code when `engine` is `Jit`.
    #[cfg(target_arch = "x86_64")]
    jit: Option<crate::jit::JitProgram>,
}

impl Program {
    /// Validates `bytecode` and prepares it for the chosen engine.
    pub fn load(bytecode: &[u8], options: ProgramOptions) -> Result<Program, LoadError> {
        let mut insns = validate(bytecode, &|id| options.helpers.contains(id))?;
        let maps = crate::maps::reloc::relocate(&mut insns, &options.maps)?;
        if let Some(pc) = insns.iter().position(|i| i.opcode == OP_LDDW && i.src != 0) {
            return Err(LoadError::at(
                ErrorCode::Einval,
                pc,
                format!(
                    "lddw with pseudo source {} needs a map or object relocation, and none was given",
                    insns[pc].src
                ),
            ));
        }
        #[cfg(target_arch = "x86_64")]
        {
            // Compiled at load time, so that a run never pays for it.
            let (engine, jit) = match options.engine {
                Engine::Interpreter => (Engine::Interpreter, None),
                Engine::Jit => (Engine::Jit, Some(crate::jit::JitProgram::compile(&insns)?)),
                // Auto: the JIT, unless it cannot take this program (then the interpreter).
                Engine::Auto => match crate::jit::JitProgram::compile(&insns) {
                    Ok(j) => (Engine::Jit, Some(j)),
                    Err(_) => (Engine::Interpreter, None),
                },
            };
            Ok(Program {
                insns,
                options,
                engine,
                maps,
                jit,
            })
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let engine = match options.engine {
                Engine::Interpreter | Engine::Auto => Engine::Interpreter,
                Engine::Jit => {
                    return Err(LoadError::new(
                        ErrorCode::Enotsupp,
                        "the JIT engine needs an x86-64 host",
                    ))
                }
            };
            Ok(Program {
                insns,
                options,
                engine,
                maps,
            })
        }
    }

    /// The engine that actually runs this program (`Auto` resolved).
    pub fn engine(&self) -> Engine {
        self.engine
    }

    pub fn mode(&self) -> Mode {
        self.options.mode
    }

    pub fn instructions(&self) -> &[Insn] {
        &self.insns
    }

    /// The bytecode as loaded (after any rewriting), for `dump('xlated')`.
    pub fn xlated(&self) -> Vec<u8> {
        encode_all(&self.insns)
    }

    /// The machine code as Intel-syntax assembly, for `dump('jited')`; a one-line note when the
    /// program runs on the interpreter.
    pub fn jited_disassembly(&self) -> String {
        #[cfg(target_arch = "x86_64")]
        if let Some(jit) = &self.jit {
            return jit.disassembly();
        }
        "; not compiled: this program runs on the interpreter\n".to_string()
    }

    pub fn run(&self, input: &mut RunInput<'_>) -> Result<RunOutput, Trap> {
        // The stack lives in this Rust frame for the duration of the run; u64 for alignment.
        let mut stack = [0u64; STACK_SIZE / 8];
        let stack_bytes = stack.as_mut_ptr() as u64;
        let mut regions = Regions::new();
        regions.push(Region::new(stack_bytes, STACK_SIZE as u64, true));
        regions.push(Region::from_mut_slice(input.data));
        for r in &self.maps.regions {
            regions.push(*r);
        }
        let data_addr = if input.data.is_empty() {
            0
        } else {
            input.data.as_mut_ptr() as u64
        };
        let mut env = RunEnv {
            helpers: &self.options.helpers,
            regions,
            stack_top: stack_bytes + STACK_SIZE as u64,
            budget: input.budget.unwrap_or(self.options.budget),
            packet: (data_addr, input.data.len() as u64),
            maps: self.maps.run(),
        };
        let args = match self.options.prog_type {
            ProgramType::Raw => [data_addr, input.data.len() as u64, 0, 0, 0],
        };
        #[cfg(target_arch = "x86_64")]
        if let Some(jit) = &self.jit {
            return jit.run(&self.insns, &mut env, args);
        }
        interpreter::run(&self.insns, &mut env, args)
    }
}
