//! N-API binding over `ebpf-vm`. No logic of its own: it converts arguments, calls the engine and
//! returns outcomes as plain data (errors included) for the TypeScript layer to turn into typed
//! JavaScript errors. Nothing here may panic across the boundary: the engine reports errors as
//! values, and every conversion is checked.

use std::sync::Arc;

mod map;

use ebpf_vm::{
    Engine, LoadError, Mode, Program, ProgramOptions, ProgramType, TestRunInput, TestRunOutput,
    Trap,
};
use napi::bindgen_prelude::*;
use napi_derive::napi;

/// Options of `loadProgram`, already checked by the TypeScript layer.
#[napi(object)]
pub struct NativeProgramOptions {
    /// 'raw'
    pub prog_type: String,
    /// 'interpreter' | 'jit' | 'auto'
    pub engine: String,
    /// 'checked'
    pub mode: String,
    /// Instruction budget of a run (checked mode).
    pub budget: Option<f64>,
    /// Ids of the maps the program refers to: `lddw` with src 5 (map) or 6 (map value) and
    /// `imm = i` means `mapIds[i]`.
    pub map_ids: Option<Vec<u32>>,
}

/// A load or run failure, as data.
#[napi(object)]
pub struct NativeError {
    /// Node-style errno code ('EINVAL', 'EFAULT', ...).
    pub code: String,
    pub message: String,
    /// Instruction index the error is about, when there is one.
    pub insn: Option<u32>,
    /// Trap kind ('out_of_bounds', 'budget_exhausted', ...) for run failures.
    pub kind: Option<String>,
    pub addr: Option<BigInt>,
    pub size: Option<u32>,
    pub insn_count: Option<f64>,
}

impl From<LoadError> for NativeError {
    fn from(e: LoadError) -> Self {
        NativeError {
            code: e.code.as_str().to_string(),
            message: e.to_string(),
            insn: e.insn.map(|i| i as u32),
            kind: None,
            addr: None,
            size: None,
            insn_count: None,
        }
    }
}

impl From<Trap> for NativeError {
    fn from(t: Trap) -> Self {
        NativeError {
            code: t.kind.code().as_str().to_string(),
            message: t.to_string(),
            insn: Some(t.pc as u32),
            kind: Some(t.kind.as_str().to_string()),
            addr: Some(BigInt::from(t.addr)),
            size: Some(t.size),
            insn_count: Some(t.insn_count as f64),
        }
    }
}

#[napi(object)]
pub struct NativeRunResult {
    pub r0: BigInt,
    pub insn_count: f64,
    /// The data buffer as the program left it.
    pub data: Buffer,
    pub duration_ns: f64,
    pub error: Option<NativeError>,
}

fn invalid(message: String) -> NativeError {
    LoadError::new(ebpf_vm::ErrorCode::Einval, message).into()
}

fn parse_options(o: &NativeProgramOptions) -> std::result::Result<ProgramOptions, NativeError> {
    let prog_type = match o.prog_type.as_str() {
        "raw" => ProgramType::Raw,
        other => return Err(invalid(format!("unknown program type '{other}'"))),
    };
    let engine = match o.engine.as_str() {
        "interpreter" => Engine::Interpreter,
        "jit" => Engine::Jit,
        "auto" => Engine::Auto,
        other => return Err(invalid(format!("unknown engine '{other}'"))),
    };
    let mode = match o.mode.as_str() {
        "checked" => Mode::Checked,
        other => return Err(invalid(format!("unknown mode '{other}'"))),
    };
    let mut options = ProgramOptions {
        prog_type,
        engine,
        mode,
        ..ProgramOptions::default()
    };
    if let Some(b) = o.budget {
        if !(b.is_finite() && b >= 1.0) {
            return Err(invalid(format!(
                "budget must be a positive integer, got {b}"
            )));
        }
        options.budget = b as u64;
    }
    for id in o.map_ids.iter().flatten() {
        let map = ebpf_vm::maps::registry::by_id(*id)
            .ok_or_else(|| invalid(format!("no map with id {id}")))?;
        options.maps.push(map);
    }
    Ok(options)
}

#[napi]
pub struct NativeProgram {
    pub(crate) inner: Arc<Program>,
    /// Process-unique id, as the kernel's program id (what a prog_array lookup returns).
    pub(crate) id: u32,
}

fn next_program_id() -> u32 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

#[napi]
impl NativeProgram {
    #[napi(getter)]
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The engine that runs the program: 'interpreter' or 'jit'.
    #[napi(getter)]
    pub fn engine(&self) -> String {
        match self.inner.engine() {
            Engine::Jit => "jit".into(),
            _ => "interpreter".into(),
        }
    }

    /// The bytecode as loaded.
    #[napi]
    pub fn xlated(&self) -> Buffer {
        self.inner.xlated().into()
    }

    /// The machine code as Intel-syntax assembly (a one-line note for interpreted programs).
    #[napi]
    pub fn jited(&self) -> String {
        self.inner.jited_disassembly()
    }

    /// Runs `repeat` times (default 1) over copies of `data`, on the calling thread.
    #[napi]
    pub fn run(&self, data: &[u8], repeat: Option<u32>, budget: Option<f64>) -> NativeRunResult {
        to_js(self.inner.test_run(&test_input(data, repeat, budget)))
    }

    /// One run per packet, in order, on the calling thread.
    #[napi]
    pub fn run_batch(&self, packets: Vec<Buffer>, budget: Option<f64>) -> Vec<NativeRunResult> {
        batch_inputs(&packets, budget)
            .iter()
            .map(|i| to_js(self.inner.test_run(i)))
            .collect()
    }

    /// `run_batch` on the libuv thread pool.
    #[napi(ts_return_type = "Promise<NativeRunResult[]>")]
    pub fn run_batch_async(
        &self,
        packets: Vec<Buffer>,
        budget: Option<f64>,
    ) -> AsyncTask<BatchTask> {
        AsyncTask::new(BatchTask {
            program: self.inner.clone(),
            inputs: batch_inputs(&packets, budget),
        })
    }

    /// The same as `run`, on the libuv thread pool: the JavaScript thread stays free.
    #[napi(ts_return_type = "Promise<NativeRunResult>")]
    pub fn run_async(
        &self,
        data: &[u8],
        repeat: Option<u32>,
        budget: Option<f64>,
    ) -> AsyncTask<RunTask> {
        AsyncTask::new(RunTask {
            program: self.inner.clone(),
            input: test_input(data, repeat, budget),
        })
    }
}

/// Many packets on the thread pool, one test run each.
pub struct BatchTask {
    program: Arc<Program>,
    inputs: Vec<TestRunInput>,
}

impl Task for BatchTask {
    type Output = Vec<TestRunOutput>;
    type JsValue = Vec<NativeRunResult>;

    fn compute(&mut self) -> Result<Self::Output> {
        Ok(self
            .inputs
            .iter()
            .map(|i| self.program.test_run(i))
            .collect())
    }

    fn resolve(&mut self, _env: Env, output: Self::Output) -> Result<Self::JsValue> {
        Ok(output.into_iter().map(to_js).collect())
    }
}

fn batch_inputs(packets: &[Buffer], budget: Option<f64>) -> Vec<TestRunInput> {
    packets
        .iter()
        .map(|p| test_input(p, None, budget))
        .collect()
}

fn test_input(data: &[u8], repeat: Option<u32>, budget: Option<f64>) -> TestRunInput {
    TestRunInput {
        data: data.to_vec(),
        repeat: repeat.unwrap_or(1),
        budget: budget
            .filter(|b| b.is_finite() && *b >= 1.0)
            .map(|b| b as u64),
    }
}

fn to_js(out: TestRunOutput) -> NativeRunResult {
    let (r0, error) = match out.result {
        Ok(r0) => (r0, None),
        Err(trap) => (0, Some(trap.into())),
    };
    NativeRunResult {
        r0: BigInt::from(r0),
        insn_count: out.insn_count as f64,
        data: out.data.into(),
        duration_ns: out.duration_ns,
        error,
    }
}

/// A test run on the thread pool; the program is shared, the input owned.
pub struct RunTask {
    program: Arc<Program>,
    input: TestRunInput,
}

impl Task for RunTask {
    type Output = TestRunOutput;
    type JsValue = NativeRunResult;

    fn compute(&mut self) -> Result<Self::Output> {
        Ok(self.program.test_run(&self.input))
    }

    fn resolve(&mut self, _env: Env, output: Self::Output) -> Result<Self::JsValue> {
        Ok(to_js(output))
    }
}

#[napi(object)]
pub struct NativeLoadResult {
    pub error: Option<NativeError>,
}

/// Validates and prepares a program. On failure the program is `null` and the error is set.
#[napi]
pub fn load_program(
    bytecode: &[u8],
    options: NativeProgramOptions,
) -> Either<NativeProgram, NativeLoadResult> {
    let loaded = parse_options(&options)
        .and_then(|opts| Program::load(bytecode, opts).map_err(NativeError::from));
    match loaded {
        Ok(inner) => Either::A(NativeProgram {
            inner: Arc::new(inner),
            id: next_program_id(),
        }),
        Err(e) => Either::B(NativeLoadResult { error: Some(e) }),
    }
}
