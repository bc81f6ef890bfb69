// The verifier agreement corpus: where its programs are, and how the live kernel's verdict on each
// is obtained. Shared by the recorder (scripts/verifier-corpus.mjs) and the harness
// (__test__/verifier-corpus.test.ts), so both ask the kernel in exactly the same way.
//
// Two kinds of program:
// - C: c/NAME.c, built by c/build.sh into c/NAME.bpf.o; one program per ELF section, loaded into the
//   kernel one at a time by load_object.c (libbpf, the others' autoload off).
// - Assembly: asm/*.mjs, each a list of { name, type, maps, text } in the llvm/kernel dialect that
//   `assemble` reads; loaded by crates/ebpf-vm/tests/verifier_support/kernel_load.c (raw bpf()).
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const CORPUS_DIR = dirname(fileURLToPath(import.meta.url))
export const VERDICTS_FILE = join(CORPUS_DIR, 'verdicts.json')
export const DISAGREEMENTS_FILE = join(CORPUS_DIR, 'disagreements.json')
const KERNEL_LOAD_C = join(CORPUS_DIR, '../../crates/ebpf-vm/tests/verifier_support/kernel_load.c')
const LOAD_OBJECT_C = join(CORPUS_DIR, 'load_object.c')

/**
 * The kernel's `BPF_PROG_TYPE_*` of each program type the assembly programs name; the expected
 * attach type, where one is given, in the high 16 bits (kernel_load.c): `cgroup_skb_egress` is
 * BPF_PROG_TYPE_CGROUP_SKB (8) with BPF_CGROUP_INET_EGRESS (1), `cgroup_skb` is on ingress (0).
 */
export const KERNEL_PROG_TYPE = {
  socket_filter: 1,
  kprobe: 2,
  tc: 3,
  tracepoint: 5,
  xdp: 6,
  raw_tp: 17,
  cgroup_skb: 8,
  cgroup_skb_egress: 8 | (1 << 16),
}
/** Our `ProgramOptions.type` for each: the tracing types share one context model. */
export const OUR_PROG_TYPE = {
  socket_filter: 'socket_filter',
  kprobe: 'tracing',
  tc: 'tc',
  tracepoint: 'tracepoint',
  xdp: 'xdp',
  raw_tp: 'raw_tracepoint',
  cgroup_skb: 'cgroup_skb',
  cgroup_skb_egress: 'cgroup_skb',
}
/** Our `ProgramOptions.expectedAttachType` for the types that carry one. */
export const OUR_ATTACH_TYPE = { cgroup_skb_egress: 'cgroup_inet_egress' }

/** Every assembly program, in file order: { name, type, maps: [{type,keySize,valueSize,maxEntries,flags?}], text, file }. */
export async function asmPrograms() {
  const out = []
  for (const file of readdirSync(join(CORPUS_DIR, 'asm'))
    .filter((f) => f.endsWith('.mjs') && !f.startsWith('_'))
    .sort()) {
    const mod = await import(join(CORPUS_DIR, 'asm', file))
    for (const p of mod.default) out.push({ maps: [], ...p, file: `asm/${file}` })
  }
  return out
}

/** verdicts.json's programs: name -> { kind, file, verdict, errno?, message?, processed? }. */
export function recordedVerdictsOf() {
  return JSON.parse(readFileSync(VERDICTS_FILE, 'utf8')).programs
}

/** The C objects, relative to the corpus directory. */
export function cObjects() {
  return readdirSync(join(CORPUS_DIR, 'c'))
    .filter((f) => f.endsWith('.bpf.o'))
    .sort()
    .map((f) => `c/${f}`)
}

/**
 * The kernel's rejection line: the last line the verifier wrote before its statistics
 * (`processed N insns ...`), which is where it says why it stopped.
 */
export function rejectionLine(log) {
  // A few messages lack their newline, so the statistics follow them on the same line.
  const lines = log.split('\n').map((l) => l.replace(/processed \d+ insns \(limit.*$/, '').trimEnd())
  let end = log.split('\n').findIndex((l) => /^processed \d+ insns/.test(l))
  if (end < 0) end = lines.length
  for (let i = end - 1; i >= 0; i--) {
    // After some messages the kernel prints the states it compared (`infinite loop detected`).
    if (lines[i] === '' || lines[i].startsWith('verification time') || /^(cur|old) state: /.test(lines[i])) continue
    return lines[i]
  }
  return ''
}

/** `processed N insns` from a log, or null. */
function processedInsns(log) {
  const m = /^processed (\d+) insns/m.exec(log)
  return m ? Number(m[1]) : null
}

/** Why the kernel cannot be asked here, or null when it can (root, cc, libbpf headers, bpf()). */
export function kernelUnavailable() {
  if (process.platform !== 'linux') return 'not Linux'
  if (typeof process.getuid === 'function' && process.getuid() !== 0)
    return 'not root (loading needs CAP_BPF and CAP_SYS_ADMIN)'
  try {
    loaders()
  } catch (e) {
    return `cannot build the loaders: ${e.message}`
  }
  return null
}

let built
/** Builds kernel_load and load_object once per process into a temporary directory. */
function loaders() {
  if (built) return built
  const dir = mkdtempSync(join(tmpdir(), 'ebpf-vcorpus-'))
  const kernelLoad = join(dir, 'kernel_load')
  const loadObject = join(dir, 'load_object')
  execFileSync('cc', ['-O2', '-o', kernelLoad, KERNEL_LOAD_C], { stdio: 'pipe' })
  execFileSync('cc', ['-O2', '-o', loadObject, LOAD_OBJECT_C, '-lbpf'], { stdio: 'pipe' })
  built = { dir, kernelLoad, loadObject }
  return built
}

/** The verdict record kept for one program. */
function verdict(base, accepted, errno, log) {
  const v = { ...base, verdict: accepted ? 'accepted' : 'rejected' }
  if (!accepted) {
    v.errno = errno
    v.message = rejectionLine(log)
  }
  const n = processedInsns(log)
  if (n !== null) v.processed = n
  return v
}

/**
 * Our assembler writes a map reference as lddw with source 5 (`map[i]`) and a map value's address
 * with source 6 (`map_value[i] + off`); the kernel wants BPF_PSEUDO_MAP_FD (1) and
 * BPF_PSEUDO_MAP_VALUE (2), whose imm kernel_load replaces with the fd of its i-th map.
 */
export function kernelBytes(bytes) {
  const out = Uint8Array.from(bytes)
  const kernelSource = { 5: 1, 6: 2 }
  for (let i = 0; i + 8 <= out.length; i += 8) {
    const src = kernelSource[out[i + 1] >> 4]
    if (out[i] === 0x18 && src !== undefined) {
      out[i + 1] = (out[i + 1] & 0x0f) | (src << 4)
      i += 8
    }
  }
  return out
}

/** The kernel's verdict on one assembled program (bytes as `assemble` produced them). */
export function kernelAsmVerdict(program, bytes) {
  const { dir, kernelLoad } = loaders()
  const file = join(dir, 'prog.bin')
  writeFileSync(file, kernelBytes(bytes))
  // `/FLAGS`: the map's creation flags (BPF_F_RDONLY_PROG and the like), when it has any.
  const maps = program.maps.map(
    (m) => `${m.type}:${m.keySize}:${m.valueSize}:${m.maxEntries}${m.flags ? `/${m.flags}` : ''}`,
  )
  const r = spawnSync(kernelLoad, [String(KERNEL_PROG_TYPE[program.type]), '1', file, ...maps], {
    encoding: 'utf8',
    maxBuffer: 256 << 20,
  })
  if (r.status !== 0) throw new Error(`kernel_load failed on ${program.name}: ${r.stderr}`)
  const nl = r.stdout.indexOf('\n')
  const head = r.stdout.slice(0, nl).split(' ')
  const log = r.stdout.slice(nl + 1)
  const base = { kind: 'asm', file: program.file, type: program.type }
  return verdict(base, head[1] === 'accepted', head[2], log)
}

/** The kernel's verdicts on every program of one C object: name -> record. */
export function kernelObjectVerdicts(object) {
  const { loadObject } = loaders()
  const r = spawnSync(loadObject, [join(CORPUS_DIR, object)], { encoding: 'utf8', maxBuffer: 256 << 20 })
  if (r.status !== 0) throw new Error(`load_object failed on ${object}: ${r.stderr}`)
  const out = new Map()
  let current
  const flush = () => {
    if (!current) return
    const { name, section, state, errno, log } = current
    if (state === 'libbpf') throw new Error(`libbpf refused ${object} ${name} before the kernel saw it:\n${log}`)
    out.set(name, verdict({ kind: 'c', file: object, section }, state === 'accepted', errno, log))
  }
  for (const line of r.stdout.split('\n')) {
    if (line.startsWith('\t| ')) {
      current.log += `${line.slice(3)}\n`
    } else if (line !== '') {
      flush()
      const [name, section, state, errno] = line.split('\t')
      current = { name, section, state, errno, log: '' }
    }
  }
  flush()
  return out
}
