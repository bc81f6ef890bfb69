/**
 * `bpf_probe_write_user` (36) and `bpf_get_func_ip` (173) from a kprobe written with libbpf's
 * `BPF_KPROBE` (fixtures/write_user.c), on both engines: the probe overwrites the user buffer its
 * function received (`RunOptions.memory` images marked `writable`), and the run hands the images
 * back as it left them (`RunResult.memory`).
 *
 * Oracle: kernel/trace/bpf_trace.c and mm/maccess.c read by hand (6.18:
 * `copy_to_user_nofault` is -EFAULT unless `access_ok` and every byte is copied; the copy stops
 * at the faulting byte). The kernel here cannot be asked: it is locked down (integrity), which
 * withholds bpf_probe_write_user from every program, and kprobes have no test run. What
 * `bpf_get_func_ip` returns for a kprobe is the probed function's entry address: the caller's
 * `funcIp`.
 */
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { Collection, loadCollectionSpec } from '../ts/index'

const fixture = join(__dirname, 'fixtures', 'write_user.bpf.o')
const BUF = 0x7f00_0000_2000n
const KSYS_WRITE = 0xffff_ffff_8140_1230n

/** x86-64 pt_regs (168 bytes) of a call `ksys_write(1, buf, count)`: di 112, si 104, dx 96. */
function regs(buf: bigint, count: bigint): Uint8Array {
  const b = new Uint8Array(168)
  const v = new DataView(b.buffer)
  v.setBigUint64(112, 1n, true)
  v.setBigUint64(104, buf, true)
  v.setBigUint64(96, count, true)
  return b
}

const text = (s: string) => new TextEncoder().encode(s)

describe('bpf_probe_write_user and bpf_get_func_ip from a BPF_KPROBE program', () => {
  for (const engine of ['interpreter', 'jit'] as const) {
    it(engine, async () => {
      const coll = new Collection(await loadCollectionSpec(fixture), { engine })
      const prog = coll.programs.get('patch_write')!
      const user = text('xxxxxxxxxxxxxxxx')
      const writable = [{ address: BUF, bytes: user, writable: true }]

      // count 16: the second write starts 4 bytes before the end, writes those 4 and faults.
      let r = prog.run({ ctx: regs(BUF, 16n), memory: writable, funcIp: KSYS_WRITE })
      expect(coll.variable('seen')).toEqual({ func_ip: KSYS_WRITE, first: 0n, second: -14n })
      expect(r.memory).toEqual([{ address: BUF, bytes: text('patched\0xxxxpatc') }])
      expect(user, "the caller's bytes are not changed").toEqual(text('xxxxxxxxxxxxxxxx'))

      // count 8: both writes inside the image.
      r = prog.run({ ctx: regs(BUF, 8n), memory: writable })
      expect(coll.variable('seen')).toEqual({ func_ip: 0n, first: 0n, second: 0n })
      expect(r.memory).toEqual([{ address: BUF, bytes: text('patcpatched\0xxxx') }])

      // Not writable, not mapped, a kernel address: -EFAULT, nothing written, no images back.
      for (const memory of [
        [{ address: BUF, bytes: user }],
        [],
        [{ address: 0xffff_8880_0000_2000n, bytes: user, writable: true }],
      ]) {
        const buf = memory[0]?.address ?? BUF
        r = prog.run({ ctx: regs(buf, 8n), memory })
        expect(coll.variable('seen')).toMatchObject({ first: -14n, second: -14n })
        expect(r.memory?.map((m) => m.bytes)).toEqual(memory[0]?.writable ? [user] : undefined)
      }
    })
  }

  it('checks the new options', async () => {
    const prog = new Collection(await loadCollectionSpec(fixture)).programs.get('patch_write')!
    const ctx = regs(BUF, 8n)
    expect(() => prog.run({ ctx, funcIp: -1 })).toThrow(
      expect.objectContaining({ message: expect.stringMatching(/funcIp/) }),
    )
    expect(() => prog.run({ ctx, memory: [{ address: BUF, bytes: text('x'), writable: 1 as never }] })).toThrow(
      expect.objectContaining({ code: 'EINVAL', message: expect.stringMatching(/memory\[0\]\.writable/) }),
    )
  })
})
