//! The native baseline: the benchmark programs' C sources compiled for the host with clang -O2 into
//! a shared library, which the bench loads with `dlopen`. This keeps `cargo bench` free of a build
//! script: the C is compiled when the bench starts, with the first of `$BENCH_CC`, `clang-19`,
//! `clang`, `cc` that exists. Without a C compiler the native column is left out, with a note.
//!
//! Flags: `-O2 -fno-builtin -fno-strict-aliasing`, the same as the BPF build minus the target, so
//! both come from the same C with the same language rules.

use std::ffi::{c_char, c_int, c_void, CString};
use std::path::{Path, PathBuf};
use std::process::Command;

pub type NativeFn = unsafe extern "C" fn(*mut u8) -> u64;

extern "C" {
    // In glibc's libc since 2.34 (earlier in libdl, which Rust's std links anyway).
    fn dlopen(filename: *const c_char, flags: c_int) -> *mut c_void;
    fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
    fn dlerror() -> *const c_char;
}

const RTLD_NOW: c_int = 2;

pub struct NativeLib {
    handle: *mut c_void,
    /// The compiler that built it, for the report.
    pub compiler: String,
}

fn sources_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench/programs")
}

fn out_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("bench-native")
}

fn find_compiler() -> Option<String> {
    let candidates = std::env::var("BENCH_CC")
        .ok()
        .into_iter()
        .chain(["clang-19", "clang", "cc"].map(String::from));
    for cc in candidates {
        let ok = Command::new(&cc)
            .arg("--version")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if ok {
            return Some(cc);
        }
    }
    None
}

impl NativeLib {
    /// Compiles every `bench/programs/*.c` into one shared library and loads it; `Err` says why the
    /// native column cannot be measured.
    pub fn build() -> Result<NativeLib, String> {
        let cc = find_compiler().ok_or("no C compiler (tried $BENCH_CC, clang-19, clang, cc)")?;
        let mut sources: Vec<PathBuf> = std::fs::read_dir(sources_dir())
            .map_err(|e| format!("reading bench/programs: {e}"))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "c"))
            .collect();
        sources.sort();
        let out = out_dir();
        std::fs::create_dir_all(&out).map_err(|e| format!("creating {}: {e}", out.display()))?;
        // One file per process, so concurrent benches never load a half-written library.
        let lib = out.join(format!("libbenchprogs-{}.so", std::process::id()));
        let status = Command::new(&cc)
            .args([
                "-O2",
                "-fno-builtin",
                "-fno-strict-aliasing",
                "-shared",
                "-fPIC",
                "-o",
            ])
            .arg(&lib)
            .args(&sources)
            .status()
            .map_err(|e| format!("running {cc}: {e}"))?;
        if !status.success() {
            return Err(format!("{cc} failed to compile bench/programs/*.c"));
        }
        let path = CString::new(lib.to_str().ok_or("non-UTF-8 target path")?).unwrap();
        // SAFETY: loading a library we just built from our own sources; it has no initialisers.
        let handle = unsafe { dlopen(path.as_ptr(), RTLD_NOW) };
        let _ = std::fs::remove_file(&lib);
        if handle.is_null() {
            // SAFETY: dlerror returns a NUL-terminated message after a failed dlopen.
            let msg = unsafe { std::ffi::CStr::from_ptr(dlerror()) };
            return Err(format!("dlopen: {}", msg.to_string_lossy()));
        }
        Ok(NativeLib {
            handle,
            compiler: cc,
        })
    }

    /// The native function of benchmark program `name`.
    pub fn get(&self, name: &str) -> Option<NativeFn> {
        let sym = CString::new(format!("bench_{name}")).unwrap();
        // SAFETY: the handle is live (never closed); the symbol, when present, is a function of
        // that signature (see bench/programs/bench.h).
        unsafe {
            let p = dlsym(self.handle, sym.as_ptr());
            (!p.is_null()).then(|| std::mem::transmute::<*mut c_void, NativeFn>(p))
        }
    }
}
