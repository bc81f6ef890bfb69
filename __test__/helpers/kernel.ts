/**
 * The Linux kernel as a test oracle: load an object with bpftool, test-run a program
 * (BPF_PROG_TEST_RUN) and dump its maps, so that our results can be compared with the kernel's.
 * Load, test-run, unpin and close only: nothing is ever attached to an interface, cgroup or hook.
 *
 * Where the kernel refuses (not root, no bpftool, no BPF), `kernelOracle()` says why and suites skip
 * with that reason.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export type OracleStatus = { ok: true } | { ok: false; reason: string }

let status: OracleStatus | undefined
let bpffs: string | undefined

function bpftool(args: string[]): string {
  return execFileSync('bpftool', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}

/** Where a bpf filesystem is mounted, if one is (/proc/mounts). */
export function mountedBpfFs(): string | undefined {
  return readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' '))
    .find((f) => f[2] === 'bpf')?.[1]
}

/** A bpf filesystem to pin into: an existing mount, or one mounted for this process. */
function bpfFs(): string {
  if (bpffs) return bpffs
  // The run's own (bpffs-setup.ts), mounted where none was.
  if (process.env.EBPF_TEST_BPFFS) {
    bpffs = process.env.EBPF_TEST_BPFFS
    return bpffs
  }
  const existing = mountedBpfFs()
  if (existing) {
    bpffs = existing
  } else {
    const dir = mkdtempSync(join(tmpdir(), 'ebpf-bpffs-'))
    execFileSync('mount', ['-t', 'bpf', 'bpf', dir])
    bpffs = dir
    process.on('exit', () => {
      try {
        execFileSync('umount', [dir])
        rmSync(dir, { recursive: true, force: true })
      } catch {
        // Best effort at exit.
      }
    })
  }
  return bpffs
}

/** Whether the kernel can be used as an oracle here, and if not, why. */
export function kernelOracle(): OracleStatus {
  if (status) return status
  if (process.platform !== 'linux') {
    status = { ok: false, reason: 'not Linux' }
  } else if (process.getuid?.() !== 0) {
    status = { ok: false, reason: 'not root: the kernel refuses BPF_PROG_LOAD' }
  } else {
    try {
      bpftool(['version'])
      bpfFs()
      status = { ok: true }
    } catch (e) {
      status = { ok: false, reason: `bpftool or bpffs unavailable: ${(e as Error).message.split('\n')[0]}` }
    }
  }
  return status
}

export interface KernelRun {
  retval: number
  data: Uint8Array
  /** The context the test run handed back, when one was given. */
  ctx?: Uint8Array
}

export interface KernelMapEntry {
  key: Uint8Array
  /** One value, or for per-CPU maps one value per possible CPU. */
  value: Uint8Array | Uint8Array[]
}

const hexBytes = (a: string[]): Uint8Array => Uint8Array.from(a.map((h) => Number.parseInt(h, 16)))

let rawTpRun: string | undefined

/** The raw_tp test-run helper (`raw_tp_run.c`), compiled once per process. */
function rawTpRunner(): string {
  if (rawTpRun) return rawTpRun
  const exe = join(mkdtempSync(join(tmpdir(), 'ebpf-raw-tp-')), 'raw_tp_run')
  execFileSync('cc', ['-O1', '-o', exe, join(__dirname, 'raw_tp_run.c'), '-lbpf'])
  rawTpRun = exe
  return exe
}

/** An object loaded into the kernel with its programs and maps pinned under a private directory. */
export class KernelObject {
  readonly dir: string
  readonly #scratch: string

  private constructor(dir: string, scratch: string) {
    this.dir = dir
    this.#scratch = scratch
  }

  /** Loads every program of `objectPath` (bpftool prog loadall). Throws with the verifier log on failure. */
  static load(objectPath: string): KernelObject {
    const dir = join(bpfFs(), `ebpf-oracle-${process.pid}-${Math.random().toString(36).slice(2)}`)
    try {
      bpftool(['prog', 'loadall', objectPath, dir, 'pinmaps', join(dir, 'maps')])
    } catch (e) {
      rmSync(dir, { recursive: true, force: true })
      const err = e as { stderr?: string; message: string }
      throw new Error(`kernel refused ${objectPath}: ${err.stderr ?? err.message}`)
    }
    return new KernelObject(dir, mkdtempSync(join(tmpdir(), 'ebpf-oracle-')))
  }

  /** BPF_PROG_TEST_RUN of one program on `data`, with a context image `ctx` (then `ctx` out too). */
  run(program: string, data: Uint8Array, repeat = 1, ctx?: Uint8Array): KernelRun {
    const input = join(this.#scratch, 'in.bin')
    const output = join(this.#scratch, 'out.bin')
    const ctxIn = join(this.#scratch, 'ctx-in.bin')
    const ctxOut = join(this.#scratch, 'ctx-out.bin')
    writeFileSync(input, data)
    rmSync(output, { force: true })
    rmSync(ctxOut, { force: true })
    const pin = join(this.dir, program)
    const args = ['prog', 'run', 'pinned', pin, 'data_in', input, 'data_out', output, 'repeat', String(repeat)]
    if (ctx) {
      writeFileSync(ctxIn, ctx)
      args.push('ctx_in', ctxIn, 'ctx_out', ctxOut)
    }
    const out = bpftool(args)
    const m = /Return value: (\d+)/.exec(out)
    if (!m) throw new Error(`unexpected bpftool output: ${out}`)
    const run: KernelRun = {
      retval: Number(m[1]),
      data: existsSync(output) ? new Uint8Array(readFileSync(output)) : new Uint8Array(0),
    }
    if (ctx && existsSync(ctxOut)) run.ctx = new Uint8Array(readFileSync(ctxOut))
    return run
  }

  /** What `bpftool [-j] prog run pinned PROG ARGS...` prints (stdout), for comparing output formats. */
  runText(program: string, args: readonly string[], jsonOutput = false): string {
    return bpftool([...(jsonOutput ? ['-j'] : []), 'prog', 'run', 'pinned', join(this.dir, program), ...args])
  }

  /**
   * BPF_PROG_TEST_RUN of a raw tracepoint program with `args` as its context (u64 each): its
   * return value. Builds `raw_tp_run.c` (cc, libbpf) on first use.
   */
  runRawTp(program: string, args: readonly bigint[]): number {
    const out = execFileSync(rawTpRunner(), [join(this.dir, program), ...args.map((a) => `0x${a.toString(16)}`)], {
      encoding: 'utf8',
    })
    return Number(out.trim())
  }

  /** All entries of a map, in the kernel's iteration order. */
  dumpMap(name: string): KernelMapEntry[] {
    const rows = JSON.parse(bpftool(['map', 'dump', 'pinned', join(this.dir, 'maps', name), '-j'])) as Array<{
      key: string[]
      value?: string[]
      values?: Array<{ value: string[] }>
    }>
    return rows.map((r) => ({
      key: hexBytes(r.key),
      value: r.values ? r.values.map((v) => hexBytes(v.value)) : hexBytes(r.value ?? []),
    }))
  }

  /** Sets one map element (bpftool map update). */
  updateMap(name: string, key: Uint8Array, value: Uint8Array): void {
    const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString())
    bpftool(['map', 'update', 'pinned', join(this.dir, 'maps', name), 'key', ...hex(key), 'value', ...hex(value)])
  }

  /** Unpins everything, which lets the kernel free the programs and maps. */
  close(): void {
    rmSync(this.dir, { recursive: true, force: true })
    rmSync(this.#scratch, { recursive: true, force: true })
  }
}

/**
 * The kernel verifier's log of every program of `objectPath`, by program name, from
 * `bpftool -d prog loadall` (log level 1|2|4: the walk, `stack depth A+B` and the summary line).
 * The programs are pinned into a fresh directory of the bpf filesystem, removed at once.
 */
export function kernelVerifierLogs(objectPath: string): Map<string, string> {
  const dir = mkdtempSync(join(bpfFs(), 'ebpf-verifier-log-'))
  let out: string
  try {
    // libbpf's debug output, the logs included, goes to stderr.
    const r = spawnSync('bpftool', ['-d', 'prog', 'loadall', objectPath, join(dir, 'progs')], {
      encoding: 'utf8',
      maxBuffer: 1 << 28,
    })
    out = `${r.stdout ?? ''}${r.stderr ?? ''}`
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  const logs = new Map<string, string>()
  for (const m of out.matchAll(/prog '([^']+)': -- BEGIN PROG LOAD LOG --\n([\s\S]*?)-- END PROG LOAD LOG --/g)) {
    logs.set(m[1]!, m[2]!)
  }
  return logs
}
