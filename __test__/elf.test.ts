/**
 * ELF reader and loader edge cases: what is not a little-endian ELF64 BPF object is EINVAL with a
 * message saying what and where; section names map to program types by libbpf's rules; relocation
 * counts agree with llvm-readelf's listing of the same objects.
 */
import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { readElf } from '../ts/binary/elf.js'
import { sectionType } from '../ts/elf/section-types.js'
import { FormatError } from '../ts/errors.js'
import { loadCollectionSpecSync } from '../ts/spec.js'

const dir = join(__dirname, 'fixtures')
const fixture = (name: string) => new Uint8Array(readFileSync(join(dir, `${name}.bpf.o`)))

function errorOf(f: () => unknown): { code: string; message: string; offset?: number } {
  try {
    f()
  } catch (e) {
    return e as { code: string; message: string; offset?: number }
  }
  throw new Error('no error')
}

describe('not a BPF object', () => {
  it('empty, short and non-ELF input', () => {
    expect(errorOf(() => loadCollectionSpecSync(new Uint8Array(0)))).toMatchObject({
      code: 'EINVAL',
      message: 'not an ELF file (bad magic) (at byte offset 0)',
    })
    expect(errorOf(() => loadCollectionSpecSync(new TextEncoder().encode('#!/bin/sh\necho hi\n'))).code).toBe('EINVAL')
    const head = fixture('socket_filter').slice(0, 40)
    expect(errorOf(() => loadCollectionSpecSync(head)).message).toMatch(/ELF64 header needs 64 bytes at offset 0/)
  })

  it('32-bit, big-endian, non-BPF and non-relocatable objects', () => {
    const patched = (off: number, bytes: number[]) => {
      const b = fixture('socket_filter')
      b.set(bytes, off)
      return errorOf(() => loadCollectionSpecSync(b))
    }
    expect(patched(4, [1])).toMatchObject({ code: 'EINVAL', offset: 4 })
    expect(patched(4, [1]).message).toMatch(/not a 64-bit ELF object/)
    expect(patched(5, [2]).message).toMatch(/big-endian ELF object/)
    // EM_X86_64 = 62
    expect(patched(18, [62, 0]).message).toMatch(/ELF machine 62 is not BPF \(EM_BPF=247, or EM_NONE=0 from old LLVM\)/)
    // ET_EXEC = 2
    expect(patched(16, [2, 0]).message).toMatch(/ELF type 2 is not a relocatable object/)
  })

  it('a section table past the end of the file', () => {
    const b = fixture('socket_filter')
    const err = errorOf(() => loadCollectionSpecSync(b.slice(0, b.length - 100)))
    expect(err).toBeInstanceOf(FormatError)
    expect(err.message).toMatch(/section headers needs \d+ bytes at offset \d+/)
  })

  it('a program in a section libbpf does not know is listed with type unspec', () => {
    const b = fixture('socket_filter')
    const text = Buffer.from(b)
    // Rename the executable section "socket" to "sockex" in the section name table, where the
    // linker stores it as the tail of ".relsocket". libbpf 0.x matched "socket" as a prefix, so
    // use a name no loader knows: "zzcket".
    const at = text.indexOf(Buffer.from('.relsocket\0')) + 4
    expect(at).toBeGreaterThan(3)
    b.set(Buffer.from('zzcket'), at)
    const spec = loadCollectionSpecSync(b)
    const [p] = [...spec.programs.values()]
    expect(p).toMatchObject({ section: 'zzcket', type: 'unspec', typeId: 0, attachType: '' })
    expect(p!.unsupported).toBeUndefined()
  })

  it('EM_NONE (LLVM before 3.9) is read as BPF, as libbpf reads it', () => {
    const b = fixture('socket_filter')
    b.set([0, 0], 18)
    expect([...loadCollectionSpecSync(b).programs.keys()]).toEqual([
      ...loadCollectionSpecSync(fixture('socket_filter')).programs.keys(),
    ])
  })
})

describe("section names to program types (libbpf 1.x rules, then older loaders' prefixes)", () => {
  const cases: Array<[string, string | undefined, string?, string?]> = [
    ['socket', 'socket_filter'],
    ['socket/extra', 'socket_filter'], // libbpf 0.x's prefix "socket"
    ['socket1', 'socket_filter'],
    ['xdp', 'xdp', 'xdp'],
    ['xdp.frags', 'xdp', 'xdp'],
    ['xdp/devmap', 'xdp', 'xdp_devmap'],
    ['xdp/other', 'xdp', 'xdp'], // libbpf 0.x's prefix "xdp"
    ['xdp_prog', 'xdp', 'xdp'],
    ['xdp_devmap/x', 'xdp', 'xdp_devmap', 'x'],
    ['classifier/ingress', 'sched_cls'], // iproute2 and libbpf 0.x
    ['action/police', 'sched_act'],
    ['cgroup/skb_egress', 'cgroup_skb'],
    ['from-container', 'unspec', ''], // cilium's names: for the user to type
    ['test', 'unspec'],
    ['tc', 'sched_cls'],
    ['classifier', 'sched_cls'],
    ['tc/ingress', 'sched_cls', 'tcx_ingress'],
    ['action', 'sched_act'],
    ['kprobe/do_unlinkat', 'kprobe', '', 'do_unlinkat'],
    ['kprobe', 'kprobe', '', ''],
    ['kprobex', 'unspec'],
    ['kretprobe/vfs_read', 'kprobe', '', 'vfs_read'],
    ['uprobe//bin/sh:main', 'kprobe', '', '/bin/sh:main'],
    ['tracepoint/syscalls/sys_enter_openat', 'tracepoint', '', 'syscalls/sys_enter_openat'],
    ['tp/sched/sched_switch', 'tracepoint'],
    ['raw_tp/sys_enter', 'raw_tracepoint', '', 'sys_enter'],
    ['raw_tracepoint.w/x', 'raw_tracepoint_writable'],
    ['fentry/do_unlinkat', 'tracing', 'trace_fentry', 'do_unlinkat'],
    ['fexit/do_unlinkat', 'tracing', 'trace_fexit'],
    ['tp_btf/sched_switch', 'tracing', 'trace_raw_tp'],
    ['lsm/file_open', 'lsm', 'lsm_mac'],
    ['cgroup_skb/ingress', 'cgroup_skb', 'cgroup_inet_ingress'],
    ['cgroup_skb/egress', 'cgroup_skb', 'cgroup_inet_egress'],
    ['cgroup/connect4', 'cgroup_sock_addr', 'cgroup_inet4_connect'],
    ['sk_skb/stream_verdict', 'sk_skb', 'sk_skb_stream_verdict'],
    ['perf_event', 'perf_event'],
    ['struct_ops/init', 'struct_ops'],
    ['iter/task', 'tracing', 'trace_iter'],
    ['syscall', 'syscall'],
    ['.text', 'unspec'],
  ]
  for (const [section, type, attach, target] of cases) {
    it(section, () => {
      const st = sectionType(section)
      expect(st?.type).toBe(type)
      if (attach !== undefined) expect(st?.attachType).toBe(attach)
      if (target !== undefined) expect(st?.target).toBe(target)
    })
  }
  it('sleepable variants', () => {
    expect(sectionType('uprobe.s/x')).toMatchObject({ type: 'kprobe', sleepable: true })
    expect(sectionType('fentry.s/x')).toMatchObject({ type: 'tracing', sleepable: true })
    expect(sectionType('fentry/x')!.sleepable).toBe(false)
  })
  it('kernel program type numbers', () => {
    expect(sectionType('socket')!.typeId).toBe(1)
    expect(sectionType('kprobe/x')!.typeId).toBe(2)
    expect(sectionType('tc')!.typeId).toBe(3)
    expect(sectionType('tracepoint/a/b')!.typeId).toBe(5)
    expect(sectionType('xdp')!.typeId).toBe(6)
    expect(sectionType('cgroup_skb/ingress')!.typeId).toBe(8)
    expect(sectionType('raw_tp/x')!.typeId).toBe(17)
    expect(sectionType('fentry/x')!.typeId).toBe(26)
  })
})

const readelf = ['llvm-readelf-19', 'llvm-readelf'].find((c) => {
  try {
    execFileSync('sh', ['-c', `command -v ${c}`], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
})

describe.skipIf(!readelf)('relocations agree with llvm-readelf', () => {
  const objects = readdirSync(dir)
    .filter((f) => f.endsWith('.bpf.o'))
    .filter(
      (f) =>
        !['kconfig.bpf.o', 'core.bpf.o', 'core_full.bpf.o', 'data_pointers.bpf.o', 'unsupported_parts.bpf.o'].includes(
          f,
        ),
    )
  for (const f of objects) {
    it(f, () => {
      const out = execFileSync(readelf!, ['-r', join(dir, f)], { encoding: 'utf8' })
      // Count R_BPF_64_64 relocations per executable section, from llvm-readelf's listing.
      const perSection = new Map<string, number>()
      let current = ''
      for (const line of out.split('\n')) {
        const m = line.match(/^Relocation section '\.rel(.*)' at offset/)
        if (m) current = m[1]!
        else if (/R_BPF_64_64\s/.test(line)) perSection.set(current, (perSection.get(current) ?? 0) + 1)
      }
      const bytes = new Uint8Array(readFileSync(join(dir, f)))
      const spec = loadCollectionSpecSync(bytes)
      const elf = readElf(bytes)
      // Each program carries its own function's relocations plus those of the .text functions it
      // links; a .text function linked into several programs is counted once per program.
      const ours = new Map<string, number>()
      const textUses = new Map<string, number>()
      for (const p of spec.programs.values()) {
        const funcs = [p.name, ...p.subprograms.map((s) => s.name)]
        let n = 0
        for (let i = 0; i < p.instructions.length / 8; i++) {
          const op = p.instructions[i * 8]
          const src = p.instructions[i * 8 + 1]! >> 4
          if (op === 0x18 && src === 4) n++ // function address (relocated against .text)
        }
        n += p.relocations.length
        for (const s of p.subprograms) textUses.set(s.name, (textUses.get(s.name) ?? 0) + 1)
        ours.set(p.section, (ours.get(p.section) ?? 0) + n)
        expect(funcs.length).toBeGreaterThan(0)
      }
      // Relocations found in .text, counted per use by llvm-readelf's own numbers: subtract them
      // so that both sides describe the program sections alone.
      const textSyms = elf.symbols.filter((s) => s.type === 2 && elf.sections[s.shndx]?.name === '.text')
      const textRelocs = (elf.relocations.get(elf.sectionByName('.text')?.index ?? -1) ?? []).filter(
        (r) => r.type === 1,
      )
      let textTotal = 0
      for (const s of textSyms) {
        const inside = textRelocs.filter((r) => r.offset >= s.value && r.offset < s.value + s.size).length
        textTotal += inside * (textUses.get(s.name) ?? 0)
      }
      expect(textRelocs.length).toBe(perSection.get('.text') ?? 0)
      let sumOurs = 0
      let sumTheirs = 0
      for (const n of ours.values()) sumOurs += n
      for (const [sec, n] of perSection) if (sec !== '.text' && sec !== '.maps') sumTheirs += n
      expect(sumOurs).toBe(sumTheirs + textTotal)
    })
  }
})

describe('an object given as a Node Buffer', () => {
  // Buffer#slice is a view where Uint8Array#slice copies: the loader must not link into the
  // caller's bytes. subprogs.c's two programs share `fold` and `mix` in .text, so linking the
  // first into the file's own bytes broke the second (its call offsets were already rewritten).
  it('loads as its bytes copied into a Uint8Array do, and leaves the Buffer as it was', () => {
    const file = readFileSync(join(dir, 'subprogs.bpf.o'))
    const before = Buffer.from(file)
    const spec = loadCollectionSpecSync(file)
    expect([...spec.programs.keys()]).toEqual(['xdp_bucket', 'xdp_fold_only'])
    const copy = loadCollectionSpecSync(fixture('subprogs'))
    for (const name of ['xdp_bucket', 'xdp_fold_only']) {
      expect(spec.programs.get(name)!.instructions).toEqual(copy.programs.get(name)!.instructions)
    }
    expect(file.equals(before)).toBe(true)
  })
})
