/**
 * Tracing programs reading memory that is not theirs: `RunOptions.memory` images and
 * `process.task`, read by a clang-built object (fixtures/probe_read.c) with plain
 * bpf_probe_read_kernel / _str calls, on both engines. Expected values are worked out by hand from
 * the images; the helpers' error returns for unmapped addresses are compared with the kernel's
 * raw_tp test runs where it can be used (and with what Linux 6.18 x86-64 returned when this test
 * was written: -ERANGE for the kernel forms at user-half addresses, else -EFAULT).
 */
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { Collection, LoadError, loadCollectionSpec, type MemoryImage } from '../ts/index'
import { KernelObject, kernelOracle } from './helpers/kernel'

const fixture = join(__dirname, 'fixtures', 'probe_read.bpf.o')
const ENGINES = ['interpreter', 'jit'] as const
const oracle = kernelOracle()
/**
 * The kernel forms' answer for a user-half address: x86-64 kernels refuse it before reading
 * (-ERANGE, as the engine does on x86-64 hosts); elsewhere the read faults (-EFAULT).
 */
const USER_HALF = process.arch === 'x64' ? -34 : -14

const TASK = 0xffff_8880_0000_1000n
const PARENT = 0xffff_8880_0000_2000n
const NAME = 0xffff_8880_0000_3000n

/** struct fake_task { u32 pid; u32 tgid; const char *name; char comm[16]; struct fake_task *parent; } (40 bytes). */
function fakeTask(pid: number, tgid: number, name: bigint, comm: string, parent: bigint): Uint8Array {
  const b = new Uint8Array(40)
  const v = new DataView(b.buffer)
  v.setUint32(0, pid, true)
  v.setUint32(4, tgid, true)
  v.setBigUint64(8, name, true)
  b.set(new TextEncoder().encode(comm), 16)
  v.setBigUint64(32, parent, true)
  return b
}

const memory: MemoryImage[] = [
  { address: TASK, bytes: fakeTask(4242, 4200, NAME, 'bash', PARENT) },
  { address: PARENT, bytes: fakeTask(1, 1, 0n, 'init', 0n) },
  // 11 characters and a NUL: the program's buffer has 8 bytes, so 7 characters and a NUL.
  { address: NAME, bytes: new TextEncoder().encode('hello world\0') },
]

describe('fake task read with bpf_probe_read_kernel (fixtures/probe_read.c)', () => {
  for (const engine of ENGINES) {
    it(engine, async () => {
      const coll = new Collection(await loadCollectionSpec(fixture), { engine })
      const prog = coll.programs.get('task_fields')!
      expect(prog.run({ ctx: new Uint8Array(8), memory, process: { task: TASK } }).retval).toBe(0)
      const out = coll.maps.get('result')!.lookup(new Uint8Array(4)) as Record<string, unknown>
      expect(out.pid).toBe(4242)
      expect(out.ppid).toBe(1)
      // "hello w" and the NUL: the buffer's size, truncated (char arrays decode up to the NUL).
      expect(out.name_len).toBe(8n)
      expect(out.name).toBe('hello w')
      // "bash" and its NUL: 5.
      expect(out.comm_ret).toBe(5n)
      expect(out.comm).toBe('bash')
      // init's parent is NULL: reading NULL->tgid (address 4) is refused, the destination zeroed.
      expect(out.missing_ret).toBe(BigInt(USER_HALF))
      expect(out.missing).toBe(0n)
    })
  }
})

describe('error returns for unmapped addresses, as the kernel', () => {
  // One byte per helper: probe_read_kernel, _user, _kernel_str, _user_str (0xde = -34, 0xf2 = -14).
  const k = USER_HALF & 0xff
  const CASES: Array<[address: bigint, expected: number]> = [
    [0n, (0xf200f200 | k | (k << 16)) >>> 0],
    [0x1000n, (0xf200f200 | k | (k << 16)) >>> 0],
    [0xffff_8000_0000_1000n, 0xf2f2f2f2],
    [0xffff_ffff_ff60_0000n, (0xf200f200 | k | (k << 16)) >>> 0],
  ]
  const ctxOf = (a: bigint) => {
    const b = new Uint8Array(8)
    new DataView(b.buffer).setBigUint64(0, a, true)
    return b
  }
  for (const engine of ENGINES) {
    it(engine, async () => {
      const coll = new Collection(await loadCollectionSpec(fixture), { engine })
      const prog = coll.programs.get('probe_arg')!
      for (const [address, expected] of CASES) {
        expect(prog.run({ ctx: ctxOf(address) }).retval, `0x${address.toString(16)}`).toBe(expected)
      }
      // The same addresses mapped by the caller: every read succeeds (8 bytes read, strings of
      // 16 bytes truncated to 15 characters and a NUL: 16).
      for (const [address] of CASES) {
        const mapped = [{ address, bytes: new Uint8Array(16).fill(0x41) }]
        expect(prog.run({ ctx: ctxOf(address), memory: mapped }).retval).toBe(0x10100000)
      }
    })
  }
  it.skipIf(!oracle.ok || process.arch !== 'x64')(
    `the kernel's raw_tp test runs (${oracle.ok ? 'root, bpftool, cc' : oracle.reason})`,
    () => {
      const kernel = KernelObject.load(fixture)
      try {
        for (const [address, expected] of CASES) {
          expect(kernel.runRawTp('probe_arg', [address]), `0x${address.toString(16)}`).toBe(expected)
        }
      } finally {
        kernel.close()
      }
    },
  )
})

describe('memory and process.task are checked', () => {
  it('names what is wrong', async () => {
    const coll = new Collection(await loadCollectionSpec(fixture), { engine: 'interpreter' })
    const prog = coll.programs.get('probe_arg')!
    const bad: Array<[unknown, RegExp]> = [
      [{ memory: 'x' }, /memory must be an array/],
      [{ memory: [{ address: -1n, bytes: new Uint8Array(1) }] }, /memory\[0\]\.address must be/],
      [{ memory: [{ address: 0n, bytes: [1] }] }, /memory\[0\]\.bytes must be a Uint8Array/],
      [{ memory: [{ address: (1n << 64n) - 1n, bytes: new Uint8Array(2) }] }, /memory\[0\] runs past the end/],
      [{ process: { task: 1.5 } }, /process\.task must be/],
    ]
    for (const [options, message] of bad) {
      expect(() => prog.run({ ctx: new Uint8Array(8), ...(options as object) })).toThrow(LoadError)
      expect(() => prog.run({ ctx: new Uint8Array(8), ...(options as object) })).toThrow(message)
    }
  })
})
