/**
 * `ebpf run --ctx FIELD=VALUE` for tracing programs (the names of the context struct in the
 * object's BTF), and `--json` of the commands that generate text (gen-types, gen skeleton,
 * completion). Expected values: the fixture's C source worked out by hand (tracing.c), member
 * offsets as bpftool prints them (tracing.btf.txt), and for raw tracepoints the kernel's
 * BPF_PROG_TEST_RUN (root and bpftool; skipped otherwise).
 */
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { btfContextBytes } from '../ts/cli/ctx-fields'
import { loadCollectionSpecSync } from '../ts/index'
import { KernelObject, kernelOracle } from './helpers/kernel'

const root = join(__dirname, '..')
const bin = join(root, 'bin', 'ebpf.js')
const tracing = join(__dirname, 'fixtures', 'tracing.bpf.o')
let work = ''

function ebpf(args: readonly string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: work, encoding: 'utf8' })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}
const retval = (program: string, ctx: string): number => {
  const r = ebpf(['run', tracing, '--program', program, '--ctx', ctx, '--json'])
  expect(r.status, r.stderr).toBe(0)
  return JSON.parse(r.stdout).retval
}

beforeAll(() => {
  if (!existsSync(join(root, 'dist', 'cli', 'main.js')))
    throw new Error('dist/cli/main.js is missing: run `npm run build`')
  work = mkdtempSync(join(tmpdir(), 'ebpf-cli-ctx-'))
})
afterAll(() => rmSync(work, { recursive: true, force: true }))

describe('--ctx by BTF names for tracing contexts', () => {
  it("a kprobe's struct pt_regs: the kernel's names (di) and the UAPI header's (rdi)", () => {
    // BPF_KPROBE(trace_unlink, int dfd) returns dfd < 0, dfd = (int)PT_REGS_PARM1 = (int)di.
    expect(retval('trace_unlink', 'di=5')).toBe(0)
    expect(retval('trace_unlink', 'di=0xffffffff')).toBe(1)
    expect(retval('trace_unlink', 'rdi=0x80000000,si=7')).toBe(1)
    expect(retval('trace_unlink', 'di=0x7fffffff')).toBe(0)
    // rdi is at bits_offset=896 (byte 112), rsi at 832 (byte 104): tracing.btf.txt.
    const spec = loadCollectionSpecSync(tracing)
    const bytes = btfContextBytes(spec, 'trace_unlink', 'kprobe', { di: 0x0102, si: 9 } as never, 'run')
    expect(bytes.length).toBe(168)
    const want = new Uint8Array(168)
    want[112] = 0x02
    want[113] = 0x01
    want[104] = 9
    expect(bytes).toEqual(want)
  })

  it("a tracepoint's record fields (struct openat_args)", () => {
    // trace_openat returns args->flags & 1.
    expect(retval('trace_openat', 'flags=3')).toBe(1)
    expect(retval('trace_openat', 'flags=2,dfd=-100,mode=0x1ff')).toBe(0)
    const spec = loadCollectionSpecSync(tracing)
    // struct openat_args: common u64 @0, syscall_nr s32 @8, pad @12, dfd s64 @16, filename @24, flags @32, mode @40.
    const bytes = btfContextBytes(spec, 'trace_openat', 'tracepoint', { dfd: -100, flags: 3 } as never, 'run')
    const v = new DataView(bytes.buffer)
    expect(bytes.length).toBe(48)
    expect(v.getBigInt64(16, true)).toBe(-100n)
    expect(v.getBigInt64(32, true)).toBe(3n)
    expect(
      v.getBigUint64(0, true) | v.getBigUint64(8, true) | v.getBigUint64(24, true) | v.getBigUint64(40, true),
    ).toBe(0n)
  })

  const oracle = kernelOracle()
  it.skipIf(!oracle.ok)('a raw tracepoint takes args=[...], as the kernel runs it', () => {
    const kernel = KernelObject.load(tracing)
    try {
      for (const args of [
        [1n, 0n],
        [1n, 2n],
        [0n, 0xffffffffffffffffn],
      ]) {
        const ours = retval('raw_sys_enter', `args=[${args.map((a) => `0x${a.toString(16)}`).join(',')}]`)
        expect(ours, String(args)).toBe(kernel.runRawTp('raw_sys_enter', args))
      }
    } finally {
      kernel.close()
    }
  })

  it('unknown names list the struct members; a context without BTF type says to give bytes', () => {
    let r = ebpf(['run', tracing, '--program', 'trace_unlink', '--ctx', 'bogus=1'])
    expect(r.status).toBe(1)
    expect(r.stderr).toContain("struct pt_regs has no member 'bogus'; it has: r15, r14")
    r = ebpf(['run', tracing, '--program', 'trace_exit', '--ctx', 'x=1'])
    expect(r.status).toBe(1)
    expect(r.stderr).toContain('--ctx-hex or --ctx-in')
    r = ebpf(['run', tracing, '--program', 'raw_sys_enter', '--ctx', 'a=1'])
    expect(r.status).toBe(1)
    expect(r.stderr).toContain('args=[a,b,...]')
  })
})

describe('--json of the generating commands', () => {
  it('gen-types, gen skeleton and completion: {kind, language, output, bytes, text}', () => {
    const plain = ebpf(['gen-types', tracing]).stdout
    let r = ebpf(['gen-types', tracing, '--json'])
    expect(r.status, r.stderr).toBe(0)
    expect(JSON.parse(r.stdout)).toEqual({
      kind: 'declarations',
      language: 'typescript',
      output: '-',
      bytes: Buffer.byteLength(plain),
      text: plain,
    })
    r = ebpf(['gen', 'skeleton', tracing, '-o', 'skel.ts', '--json'])
    expect(r.status, r.stderr).toBe(0)
    const written = readFileSync(join(work, 'skel.ts'), 'utf8')
    expect(JSON.parse(r.stdout)).toEqual({
      kind: 'skeleton',
      language: 'typescript',
      output: 'skel.ts',
      bytes: Buffer.byteLength(written),
    })
    for (const shell of ['bash', 'zsh']) {
      const text = ebpf(['completion', shell]).stdout
      r = ebpf(['completion', shell, '--json'])
      expect(JSON.parse(r.stdout)).toEqual({
        kind: 'completion',
        language: shell,
        output: '-',
        bytes: text.length,
        text,
      })
    }
  })
})
