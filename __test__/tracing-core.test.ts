/**
 * A kprobe written as libbpf's tools write one (fixtures/kprobe_core.c: vmlinux.h, BPF_KPROBE,
 * PT_REGS_PARM*, BPF_CORE_READ of task_struct and filename fields, bpf_probe_read_kernel_str),
 * loaded with CO-RE relocations against a kernel BTF and run with a caller-supplied pt_regs and
 * memory images, on both engines. The kernel cannot test-run kprobes (BPF_PROG_TEST_RUN refuses
 * them), so the expected values are worked by hand from the images. The field offsets the images
 * are laid out by come from outside the code under test: for the hand-written target
 * (fixtures/kprobe_core_target.c) from its C declarations, by hand; for the running kernel's BTF
 * from `bpftool btf dump file /sys/kernel/btf/vmlinux` (skipped, saying why, where either is
 * missing).
 */
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { Btf } from '../ts/btf/btf.js'
import { Collection, loadCollectionSpec, type MemoryImage } from '../ts/index'

const dir = join(__dirname, 'fixtures')
const ENGINES = ['interpreter', 'jit'] as const
const VMLINUX = '/sys/kernel/btf/vmlinux'

/** Where the fields the program reads lie, in bytes. */
interface Layout {
  pid: number
  tgid: number
  realParent: number
  comm: number
  taskSize: number
  filenameName: number
}

/** kprobe_core_target.c by hand: flags 0, tgid 4, pid 8, real_parent 16, comm 24 (40 bytes); filename.name 8. */
const TARGET: Layout = { pid: 8, tgid: 4, realParent: 16, comm: 24, taskSize: 40, filenameName: 8 }

/** The running kernel's offsets, from bpftool's raw dump of its BTF; undefined when unavailable. */
function kernelLayout(): Layout | string {
  if (!existsSync(VMLINUX)) return `${VMLINUX} is missing`
  const r = spawnSync('bpftool', ['btf', 'dump', 'file', VMLINUX, 'format', 'raw'], {
    encoding: 'utf8',
    maxBuffer: 1 << 30,
  })
  if (r.status !== 0) return `bpftool btf dump failed: ${r.error?.message ?? r.stderr}`
  const members = (struct: string): { size: number; at: Map<string, number> } => {
    const lines = r.stdout.split('\n')
    const start = lines.findIndex((l) => new RegExp(`^\\[\\d+\\] STRUCT '${struct}' size=`).test(l))
    const size = Number(/size=(\d+)/.exec(lines[start]!)![1])
    const at = new Map<string, number>()
    for (let i = start + 1; i < lines.length && lines[i]!.startsWith('\t'); i++) {
      const m = /^\t'(\w+)' type_id=\d+ bits_offset=(\d+)/.exec(lines[i]!)
      if (m) at.set(m[1]!, Number(m[2]) / 8)
    }
    return { size, at }
  }
  const task = members('task_struct')
  const filename = members('filename')
  return {
    pid: task.at.get('pid')!,
    tgid: task.at.get('tgid')!,
    realParent: task.at.get('real_parent')!,
    comm: task.at.get('comm')!,
    taskSize: task.size,
    filenameName: filename.at.get('name')!,
  }
}

const TASK = 0xffff_8880_0010_0000n
const PARENT = 0xffff_8880_0020_0000n
const FILENAME = 0xffff_8880_0030_0000n
const PATH = 0xffff_8880_0040_0000n

function task(l: Layout, pid: number, tgid: number, parent: bigint, comm: string): Uint8Array {
  const b = new Uint8Array(l.taskSize)
  const v = new DataView(b.buffer)
  v.setInt32(l.pid, pid, true)
  v.setInt32(l.tgid, tgid, true)
  v.setBigUint64(l.realParent, parent, true)
  b.set(new TextEncoder().encode(comm), l.comm)
  return b
}

function memoryFor(l: Layout): MemoryImage[] {
  const filename = new Uint8Array(l.filenameName + 8)
  new DataView(filename.buffer).setBigUint64(l.filenameName, PATH, true)
  return [
    { address: TASK, bytes: task(l, 4242, 4200, PARENT, 'rm') },
    { address: PARENT, bytes: task(l, 100, 99, 0n, 'bash') },
    { address: FILENAME, bytes: filename },
    { address: PATH, bytes: new TextEncoder().encode('/tmp/some-file\0') },
  ]
}

/** x86-64 `struct pt_regs` (168 bytes): di (the first argument) at 112, si (the second) at 104. */
function ptRegs(di: bigint, si: bigint): Uint8Array {
  const b = new Uint8Array(168)
  const v = new DataView(b.buffer)
  v.setBigUint64(112, di, true)
  v.setBigUint64(104, si, true)
  return b
}

async function runWith(kernelTypes: Btf, layout: Layout, engine: (typeof ENGINES)[number]) {
  const spec = await loadCollectionSpec(join(dir, 'kprobe_core.bpf.o'), { kernelTypes })
  const coll = new Collection(spec, { engine })
  const prog = coll.programs.get('kp_unlinkat')!
  // dfd = AT_FDCWD (-100), name = the struct filename.
  const r = prog.run({
    ctx: ptRegs(BigInt.asUintN(64, -100n), FILENAME),
    memory: memoryFor(layout),
    process: { task: TASK },
  })
  return { r, results: coll.variable('results') as bigint[], comm: coll.variable('comm'), path: coll.variable('path') }
}

/** What the program computes, by hand from the images. */
function expectHandValues({ r, results, comm, path }: Awaited<ReturnType<typeof runWith>>): void {
  expect(r.retval).toBe(4242)
  expect(results).toEqual([
    BigInt.asUintN(64, -100n), // dfd, sign-extended from PT_REGS_PARM1's int
    4242n, // task->pid
    4200n, // task->tgid
    99n, // task->real_parent->tgid
    3n, // "rm" and its NUL
    15n, // "/tmp/some-file" and its NUL
    1n, // real_parent exists
    FILENAME, // PT_REGS_PARM2
  ])
  expect(comm).toBe('rm')
  expect(path).toBe('/tmp/some-file')
}

describe('a BPF_KPROBE with CO-RE reads (fixtures/kprobe_core.c)', () => {
  for (const engine of ENGINES) {
    it(`against a hand-written kernel BTF (${engine})`, async () => {
      const target = Btf.parse(readFileSync(join(dir, 'kprobe_core_target.bpf.o')))
      expectHandValues(await runWith(target, TARGET, engine))
    })
  }

  const layout = kernelLayout()
  for (const engine of ENGINES) {
    it.skipIf(typeof layout === 'string')(`against the running kernel's BTF (${engine})`, async (ctx) => {
      if (typeof layout === 'string') return ctx.skip(layout)
      const kernel = Btf.parse(new Uint8Array(readFileSync(VMLINUX)))
      expectHandValues(await runWith(kernel, layout, engine))
    })
  }

  it('without kernel BTF the CO-RE reads cannot load, and say so', async () => {
    const spec = await loadCollectionSpec(join(dir, 'kprobe_core.bpf.o'), { kernelTypes: null })
    expect(spec.programs.get('kp_unlinkat')!.unsupported).toMatch(/CO-RE relocation .* needs the target kernel's BTF/)
  })
})
