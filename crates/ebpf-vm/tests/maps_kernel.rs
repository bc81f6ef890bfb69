//! The kernel as oracle: the same pseudo-random operation sequences run on our maps and on real
//! kernel maps (created and pinned with bpftool under /sys/fs/bpf, removed afterwards), and every
//! result (value, or errno) and the iteration order must agree. bpftool exits with 256 - errno
//! when the syscall fails, which is how the kernel's errno is read.
//!
//! Skips, saying why, where the kernel cannot be used (not root, no bpftool, no bpffs).
//! Hash maps are compared on results only: their iteration order is hash-bucket order in the
//! kernel and byte order here, by design. LRU maps are not compared: the kernel's LRU is
//! approximate.

mod rng;
use rng::{Random, XorShift as Rng};
use std::process::Command;
use std::sync::Arc;

use ebpf_vm::maps::def::flags::*;
use ebpf_vm::maps::{self, Map, MapDef, MapType};
use ebpf_vm::ErrorCode;

/// A pinned kernel map, unpinned (and so freed) on drop.
struct KernelMap {
    path: String,
}

impl Drop for KernelMap {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn hex(bytes: &[u8]) -> Vec<String> {
    bytes.iter().map(|b| b.to_string()).collect()
}

/// Runs bpftool; Ok(stdout) or Err(errno).
fn bpftool(args: &[String]) -> Result<String, i64> {
    let out = Command::new("bpftool")
        .args(args)
        .output()
        .expect("bpftool runs");
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(256 - out.status.code().unwrap_or(255) as i64)
    }
}

fn kernel_available() -> Result<(), String> {
    if Command::new("bpftool").arg("version").output().is_err() {
        return Err("bpftool is not installed".into());
    }
    if !std::path::Path::new("/sys/fs/bpf").is_dir() {
        return Err("/sys/fs/bpf (bpffs) is not mounted".into());
    }
    // SAFETY: geteuid has no preconditions; declared here to avoid a libc dependency.
    extern "C" {
        fn geteuid() -> u32;
    }
    if unsafe { geteuid() } != 0 {
        return Err("not root: the bpf syscall needs CAP_BPF".into());
    }
    bpffs_mounted()
}

/// Mounts a bpffs on /sys/fs/bpf once for all the tests where none is, as bpftool itself would.
/// Left to bpftool, the tests' concurrent `map create`s each mounted one on a fresh machine: a pin
/// made under the first mount was then hidden by the second, and the next `map update` on it
/// failed (seen in a CI run: `update ... flags 1`, kernel `Err(1)`).
fn bpffs_mounted() -> Result<(), String> {
    static MOUNTED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    MOUNTED
        .get_or_init(|| {
            let mounts = std::fs::read_to_string("/proc/mounts").map_err(|e| e.to_string())?;
            let is_bpffs = |l: &str| {
                let f: Vec<&str> = l.split(' ').collect();
                f.get(1) == Some(&"/sys/fs/bpf") && f.get(2) == Some(&"bpf")
            };
            if mounts.lines().any(is_bpffs) {
                return Ok(());
            }
            let out = Command::new("mount")
                .args(["-t", "bpf", "bpf", "/sys/fs/bpf"])
                .output()
                .map_err(|e| format!("mount: {e}"))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "no bpffs on /sys/fs/bpf, and mounting one failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ))
            }
        })
        .clone()
}

macro_rules! kernel_or_skip {
    () => {
        if let Err(why) = kernel_available() {
            eprintln!("skipped: {why}");
            return;
        }
    };
}

fn kernel_map(def: &MapDef, tag: &str) -> Option<KernelMap> {
    let path = format!("/sys/fs/bpf/ebpf_maps_test_{}_{tag}", std::process::id());
    let _ = std::fs::remove_file(&path);
    let mut args: Vec<String> = [
        "map",
        "create",
        &path,
        "type",
        def.map_type.name(),
        "key",
        &def.key_size.to_string(),
        "value",
        &def.value_size.to_string(),
        "entries",
        &def.max_entries.to_string(),
        "name",
        tag,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if def.flags != 0 {
        args.extend(["flags".to_string(), def.flags.to_string()]);
    }
    match bpftool(&args) {
        Ok(_) => Some(KernelMap { path }),
        Err(e) => {
            eprintln!("skipped: the kernel refused to create {tag} (errno {e})");
            None
        }
    }
}

fn flag_word(flags: u64) -> &'static str {
    match flags {
        BPF_NOEXIST => "noexist",
        BPF_EXIST => "exist",
        _ => "any",
    }
}

impl KernelMap {
    fn args(&self, cmd: &str) -> Vec<String> {
        vec!["map".into(), cmd.into(), "pinned".into(), self.path.clone()]
    }

    fn update(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), i64> {
        let mut a = self.args("update");
        if !key.is_empty() {
            a.push("key".into());
            a.extend(hex(key));
        }
        a.push("value".into());
        a.extend(hex(value));
        a.push(flag_word(flags).into());
        bpftool(&a).map(|_| ())
    }

    fn lookup(&self, key: &[u8]) -> Result<Vec<u8>, i64> {
        let mut a = self.args("lookup");
        a.push("key".into());
        a.extend(hex(key));
        bpftool(&a).map(|out| parse_after(&out, "value:"))
    }

    fn delete(&self, key: &[u8]) -> Result<(), i64> {
        let mut a = self.args("delete");
        a.push("key".into());
        a.extend(hex(key));
        bpftool(&a).map(|_| ())
    }

    fn pop(&self) -> Result<Vec<u8>, i64> {
        bpftool(&self.args("pop")).map(|out| parse_after(&out, "value:"))
    }

    /// Keys in the kernel's iteration order (`bpftool map dump`).
    fn keys(&self) -> Vec<Vec<u8>> {
        let out = bpftool(&self.args("dump")).expect("dump works");
        out.lines()
            .filter(|l| l.starts_with("key:"))
            .map(|l| {
                let k = &l["key:".len()..l.find("value:").unwrap_or(l.len())];
                k.split_whitespace()
                    .map(|b| u8::from_str_radix(b, 16).unwrap())
                    .collect()
            })
            .collect()
    }
}

/// The hex bytes after `label` in bpftool's plain output (up to the next label or the end).
fn parse_after(out: &str, label: &str) -> Vec<u8> {
    let rest = &out[out.find(label).expect("label present") + label.len()..];
    rest.split_whitespace()
        .take_while(|w| w.len() == 2 && w.chars().all(|c| c.is_ascii_hexdigit()))
        .map(|b| u8::from_str_radix(b, 16).unwrap())
        .collect()
}

fn ours<T>(r: Result<T, maps::MapError>) -> Result<T, i64> {
    r.map_err(|e| e.errno())
}

#[test]
fn hash_results_match_the_kernel() {
    kernel_or_skip!();
    let def = MapDef::new(MapType::Hash, 4, 4, 4);
    let Some(k) = kernel_map(&def, "hash") else {
        return;
    };
    let m: Arc<dyn Map> = maps::create(def).unwrap();
    let mut rng = Rng(0x1234_5678);
    for step in 0..150 {
        let key = (rng.below(7) as u32).to_ne_bytes();
        let value = (rng.below(1000) as u32).to_ne_bytes();
        match rng.below(4) {
            0 | 1 => {
                let flags = rng.below(3);
                assert_eq!(
                    ours(m.update(&key, &value, flags)),
                    k.update(&key, &value, flags),
                    "step {step}: update {key:?} flags {flags}"
                );
            }
            2 => assert_eq!(ours(m.delete(&key)), k.delete(&key), "step {step}: delete"),
            _ => assert_eq!(ours(m.lookup(&key)), k.lookup(&key), "step {step}: lookup"),
        }
    }
    let mut theirs = k.keys();
    theirs.sort();
    assert_eq!(m.keys().unwrap(), theirs);
}

#[test]
fn array_results_match_the_kernel() {
    kernel_or_skip!();
    let def = MapDef::new(MapType::Array, 4, 8, 3);
    let Some(k) = kernel_map(&def, "array") else {
        return;
    };
    let m = maps::create(def).unwrap();
    let mut rng = Rng(0xfeed);
    for step in 0..60 {
        let key = (rng.below(5) as u32).to_ne_bytes();
        let value = rng.next().to_ne_bytes();
        match rng.below(3) {
            0 => {
                let flags = rng.below(3);
                assert_eq!(
                    ours(m.update(&key, &value, flags)),
                    k.update(&key, &value, flags),
                    "step {step}"
                );
            }
            1 => assert_eq!(ours(m.delete(&key)), k.delete(&key), "step {step}"),
            _ => assert_eq!(ours(m.lookup(&key)), k.lookup(&key), "step {step}"),
        }
    }
    assert_eq!(m.keys().unwrap(), k.keys());
}

#[test]
fn queue_and_stack_match_the_kernel() {
    kernel_or_skip!();
    for t in [MapType::Queue, MapType::Stack] {
        let def = MapDef::new(t, 0, 4, 3);
        let Some(k) = kernel_map(&def, t.name()) else {
            return;
        };
        let m = maps::create(def).unwrap();
        let mut rng = Rng(0xabc + t as u64);
        for step in 0..80 {
            if rng.below(2) == 0 {
                let value = (rng.below(100) as u32).to_ne_bytes();
                let flags = if rng.below(2) == 0 {
                    BPF_ANY
                } else {
                    BPF_EXIST
                };
                assert_eq!(
                    ours(m.update(&[], &value, flags)),
                    k.update(&[], &value, flags),
                    "{t:?} step {step}: push"
                );
            } else {
                assert_eq!(ours(m.pop()), k.pop(), "{t:?} step {step}: pop");
            }
        }
    }
}

fn lpm_key(plen: u32, ip: [u8; 4]) -> Vec<u8> {
    let mut k = plen.to_ne_bytes().to_vec();
    k.extend_from_slice(&ip);
    k
}

#[test]
fn lpm_trie_matches_the_kernel() {
    kernel_or_skip!();
    let def = MapDef::new(MapType::LpmTrie, 8, 4, 64).with_flags(BPF_F_NO_PREALLOC);
    let Some(k) = kernel_map(&def, "lpm") else {
        return;
    };
    let m = maps::create(def).unwrap();
    let mut rng = Rng(0x5eed_1e55);
    // Addresses from a few overlapping ranges, so prefixes nest and collide often; random bits
    // past the prefix are kept (both sides store the key as written).
    let addr = |rng: &mut Rng| {
        let a = [10u8, 192, 172][rng.below(3) as usize];
        let b = [0u8, 1, 168, 255][rng.below(4) as usize];
        [a, b, rng.below(4) as u8 * 64, rng.next() as u8]
    };
    for step in 0..80 {
        let plen = [0u32, 4, 8, 12, 16, 20, 24, 26, 32][rng.below(9) as usize];
        let key = lpm_key(plen, addr(&mut rng));
        let value = (step as u32).to_ne_bytes();
        match rng.below(5) {
            0..=2 => {
                let flags = rng.below(3);
                assert_eq!(
                    ours(m.update(&key, &value, flags)),
                    k.update(&key, &value, flags),
                    "step {step}: update {key:?} flags {flags}"
                );
            }
            3 => assert_eq!(ours(m.delete(&key)), k.delete(&key), "step {step}: delete"),
            _ => {
                let probe = lpm_key(32, addr(&mut rng));
                assert_eq!(
                    ours(m.lookup(&probe)),
                    k.lookup(&probe),
                    "step {step}: lookup"
                );
            }
        }
    }
    // Same elements, same post-order, same stored key bytes.
    let keys = m.keys().unwrap();
    assert!(
        keys.len() >= 10,
        "the sequence should leave a populated trie"
    );
    assert_eq!(keys, k.keys());
    for _ in 0..60 {
        let plen = rng.below(33) as u32;
        let probe = lpm_key(plen, addr(&mut rng));
        assert_eq!(ours(m.lookup(&probe)), k.lookup(&probe), "lookup {probe:?}");
    }
}

#[test]
fn errno_mapping_matches_the_kernel_codes() {
    // Independent of the kernel: the numbers helpers return, from asm-generic/errno*.h.
    assert_eq!(maps::errno(ErrorCode::Enoent), 2);
    assert_eq!(maps::errno(ErrorCode::E2big), 7);
    assert_eq!(maps::errno(ErrorCode::Eexist), 17);
    assert_eq!(maps::errno(ErrorCode::Einval), 22);
    assert_eq!(maps::errno(ErrorCode::Enospc), 28);
    assert_eq!(maps::errno(ErrorCode::Eperm), 1);
}
