/**
 * loadCollectionSpec on every fixture: the exact programs, maps, variables and relocations, with
 * expectations derived by hand from the C sources, and cross-checked against what the kernel
 * recorded when libbpf loaded the same objects (`*.kernel.json`, written by fixtures/build.sh).
 */
import { createHash } from 'node:crypto'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { Btf } from '../ts/btf/btf.js'
import { Collection } from '../ts/collection.js'
import { EbpfError } from '../ts/errors.js'
import {
  type CollectionSpec,
  loadCollectionSpec,
  loadCollectionSpecSync,
  type MapSpec,
  type ProgramSpec,
} from '../ts/spec.js'

const dir = join(__dirname, 'fixtures')
const load = (name: string) => loadCollectionSpec(join(dir, `${name}.bpf.o`))

interface KernelFacts {
  programs: Record<string, { type: string; functions: string[] }>
  maps: Array<{
    name: string
    type: string
    bytes_key: number
    bytes_value: number
    max_entries: number
    flags: number
  }>
}

/** The shape of a map as the tests state it: [type name, key size, value size, max entries, flags]. */
function shape(m: MapSpec): [string, number, number, number, number] {
  return [m.typeName, m.keySize, m.valueSize, m.maxEntries, m.flags]
}

function programSummary(p: ProgramSpec) {
  return { section: p.section, type: p.type, subprograms: p.subprograms.map((s) => s.name) }
}

const u32 = (b: Uint8Array, o: number) => new DataView(b.buffer, b.byteOffset).getUint32(o, true)
const i32 = (b: Uint8Array, o: number) => new DataView(b.buffer, b.byteOffset).getInt32(o, true)

describe('every loadable fixture agrees with the kernel', () => {
  const names = readdirSync(dir)
    .filter((f) => f.endsWith('.kernel.json'))
    .map((f) => f.replace('.kernel.json', ''))
    .filter((n) => n !== 'kconfig' && n !== 'core' && n !== 'core_full')
  it('has the kernel facts', () => expect(names.length).toBeGreaterThanOrEqual(12))
  for (const name of names) {
    it(name, async () => {
      const spec = await load(name)
      const kernel = JSON.parse(readFileSync(join(dir, `${name}.kernel.json`), 'utf8')) as KernelFacts
      expect([...spec.programs.keys()].sort()).toEqual(Object.keys(kernel.programs).sort())
      for (const [pname, facts] of Object.entries(kernel.programs)) {
        const p = spec.programs.get(pname)!
        expect(p.type).toBe(facts.type)
        // libbpf appends sub-programs depth-first; the kernel's xlated dump lists them in that order.
        expect([p.name, ...p.subprograms.map((s) => s.name)]).toEqual(facts.functions)
        expect(p.funcInfo.map((f) => f.name)).toEqual(facts.functions)
        expect(p.funcInfo.map((f) => f.insn)).toEqual([0, ...p.subprograms.map((s) => s.insn)])
      }
      // Maps the programs reference, as the kernel created them. Global data maps are named
      // '<object>.rodata' etc. in the kernel and after their section here.
      for (const km of kernel.maps) {
        const m =
          spec.maps.get(km.name) ??
          [...spec.maps.values()].find((x) => x.name.startsWith('.') && km.name.endsWith(x.name))
        expect(m, km.name).toBeDefined()
        // The kernel itself adds BPF_F_RDONLY_PROG (0x80) to device maps (dev_map_init_map):
        // the object did not ask for it.
        const flags = km.type === 'devmap' || km.type === 'devmap_hash' ? km.flags & ~0x80 : km.flags
        expect(shape(m!)).toEqual([km.type, km.bytes_key, km.bytes_value, km.max_entries, flags])
      }
      checkInstructions(spec)
      checkLineInfo(spec, name)
    })
  }
})

describe('linked instructions equal what libbpf handed the kernel (fixtures/*.libbpf.json)', () => {
  const names = readdirSync(dir)
    .filter((f) => f.endsWith('.libbpf.json'))
    .map((f) => f.replace('.libbpf.json', ''))
    .filter((n) => n !== 'kconfig' && n !== 'core' && n !== 'core_full')
  // kconfig, core and core_full need load options: they are compared in their own tests.
  it('has the libbpf facts', () => expect(names.length).toBeGreaterThanOrEqual(12))
  for (const name of names) {
    it(name, async () => {
      const spec = await load(name)
      const facts = JSON.parse(readFileSync(join(dir, `${name}.libbpf.json`), 'utf8')) as Record<
        string,
        { insns: string; relocations: Array<{ insn: number; kind: string; map: string; offset: number }> }
      >
      expect([...spec.programs.keys()].sort()).toEqual(Object.keys(facts).sort())
      for (const [pname, f] of Object.entries(facts)) {
        const p = spec.programs.get(pname)!
        expect(Buffer.from(p.instructions).toString('hex'), pname).toBe(f.insns)
        // libbpf names global data maps '<object prefix>.rodata'; ours are named after the section.
        const theirs = f.relocations.map((r) => ({
          ...r,
          map: spec.maps.has(r.map) ? r.map : [...spec.maps.keys()].find((m) => m.startsWith('.') && r.map.endsWith(m)),
        }))
        expect(p.relocations).toEqual(theirs)
      }
    })
  }
})

describe('CO-RE relocations with kernelTypes', () => {
  const core = () => new Uint8Array(readFileSync(join(dir, 'core.bpf.o')))
  const insn = (p: ProgramSpec, i: number) => {
    const v = new DataView(p.instructions.buffer, p.instructions.byteOffset)
    return { op: p.instructions[i * 8], off: v.getInt16(i * 8 + 2, true), imm: v.getInt32(i * 8 + 4, true) }
  }

  it('against a hand-written target: pid at 12, tgid exists', async () => {
    const target = Btf.parse(readFileSync(join(dir, 'core_target.bpf.o')))
    const spec = await loadCollectionSpec(core(), { kernelTypes: target })
    const p = spec.programs.get('core_switch')!
    // insn 0: r2 = <offset of pid> (clang wrote the local offset 0); insn 7: r1 = <tgid exists>.
    expect(insn(p, 0)).toEqual({ op: 0xb7, off: 0, imm: 12 })
    expect(insn(p, 7)).toEqual({ op: 0xb7, off: 0, imm: 1 })
  })

  it('against a target without the type: the read is poisoned, the existence test is 0', async () => {
    const target = Btf.parse(readFileSync(join(dir, 'globals.bpf.o')))
    const p = (await loadCollectionSpec(core(), { kernelTypes: target })).programs.get('core_switch')!
    expect(insn(p, 0)).toEqual({ op: 0x85, off: 0, imm: 0xbad2310 })
    expect(insn(p, 7)).toEqual({ op: 0xb7, off: 0, imm: 0 })
  })

  const vmlinux = '/sys/kernel/btf/vmlinux'
  const recorded = readFileSync(join(dir, 'vmlinux.sha256'), 'utf8').trim()
  const sameKernel =
    existsSync(vmlinux) && createHash('sha256').update(readFileSync(vmlinux)).digest('hex') === recorded
  describe.skipIf(!sameKernel)('equal to libbpf against the kernel the oracle was recorded on (vmlinux.sha256)', () => {
    for (const name of ['core', 'core_full']) {
      it(name, async () => {
        const kernelTypes = Btf.parse(new Uint8Array(readFileSync(vmlinux)))
        const spec = await loadCollectionSpec(join(dir, `${name}.bpf.o`), { kernelTypes })
        const facts = JSON.parse(readFileSync(join(dir, `${name}.libbpf.json`), 'utf8')) as Record<
          string,
          { insns: string; relocations: Array<{ insn: number; map: string }> }
        >
        for (const [pname, f] of Object.entries(facts)) {
          const p = spec.programs.get(pname)!
          expect(Buffer.from(p.instructions).toString('hex')).toBe(f.insns)
          expect(p.relocations.map((r) => r.insn)).toEqual(f.relocations.map((r) => r.insn))
        }
      })
    }
  })

  it('kernelTypes must be a Btf', async () => {
    await expect(loadCollectionSpec(core(), { kernelTypes: {} as Btf })).rejects.toMatchObject({ code: 'EINVAL' })
  })
})

/** Relocated lddw slots are cleared for the collection loader; every local call lands on a function start. */
function checkInstructions(spec: CollectionSpec): void {
  for (const p of spec.programs.values()) {
    const n = p.instructions.length / 8
    expect(Number.isInteger(n)).toBe(true)
    for (const r of p.relocations) {
      expect(p.instructions[r.insn * 8]).toBe(0x18)
      expect(p.instructions[r.insn * 8 + 1]! >> 4).toBe(0)
      expect(i32(p.instructions, r.insn * 8 + 4)).toBe(0)
      expect(i32(p.instructions, r.insn * 8 + 12)).toBe(0)
      expect(spec.maps.has(r.map)).toBe(true)
    }
    const starts = new Set([0, ...p.subprograms.map((s) => s.insn)])
    for (let i = 0; i < n; i++) {
      const op = p.instructions[i * 8]!
      const src = p.instructions[i * 8 + 1]! >> 4
      if ((op === 0x85 && src === 1) || (op === 0x18 && src === 4)) {
        const target = i + i32(p.instructions, i * 8 + 4) + 1
        expect(starts.has(target), `${p.name} insn ${i} -> ${target}`).toBe(true)
      }
    }
  }
}

/** Each line_info record's text is the C source line it names, read from the fixture's own files. */
function checkLineInfo(spec: CollectionSpec, _name: string): void {
  const files = new Map<string, string[]>()
  const lines = (file: string) => {
    const base = file.split('/').pop()!
    if (!files.has(base)) files.set(base, readFileSync(join(dir, base), 'utf8').split('\n'))
    return files.get(base)!
  }
  for (const p of spec.programs.values()) {
    expect(p.lineInfo.length).toBeGreaterThan(0)
    for (const li of p.lineInfo) {
      expect(li.insn).toBeLessThan(p.instructions.length / 8)
      // Lines from system headers (bpf_helpers.h inlines) are not checked.
      if (existsSync(join(dir, li.file.split('/').pop()!))) expect(lines(li.file)[li.line - 1]).toBe(li.text)
    }
  }
}

describe('fixture contents, from the C sources', () => {
  it('xdp_firewall: LPM trie, verdict array and the .rodata switches', async () => {
    const spec = await load('xdp_firewall')
    expect(spec.license).toBe('Dual MIT/GPL')
    expect(programSummary(spec.programs.get('xdp_firewall')!)).toEqual({ section: 'xdp', type: 'xdp', subprograms: [] })
    expect([...spec.maps.keys()]).toEqual(['blocklist', 'verdicts', '.rodata'])
    // struct lpm_v4_key { u32; u8[4] } = 8; struct rule { u64; u32; u32 } = 16; BPF_F_NO_PREALLOC = 1.
    expect(shape(spec.maps.get('blocklist')!)).toEqual(['lpm_trie', 8, 16, 1024, 1])
    expect(spec.maps.get('blocklist')!.key!.name).toBe('lpm_v4_key')
    expect(spec.maps.get('blocklist')!.value!.name).toBe('rule')
    expect(shape(spec.maps.get('verdicts')!)).toEqual(['array', 4, 8, 4, 0])
    // u8 dry_run at 0, u32 min_len at 4: 8 bytes; read-only to programs (0x80) and mmapable (0x400).
    const ro = spec.maps.get('.rodata')!
    expect(shape(ro)).toEqual(['array', 4, 8, 1, 0x480])
    expect(ro.readonly).toBe(true)
    expect([...ro.contents!]).toEqual([0, 0, 0, 0, 34, 0, 0, 0])
    expect([...spec.variables.keys()]).toEqual(['dry_run', 'min_len'])
    expect(spec.variables.get('min_len')!.get()).toBe(34)
    expect(spec.variables.get('dry_run')!.get()).toBe(0)
    const p = spec.programs.get('xdp_firewall')!
    expect(new Set(p.relocations.map((r) => `${r.kind}:${r.map}:${r.offset}`))).toEqual(
      new Set(['map:verdicts:0', 'map:blocklist:0', 'map_value:.rodata:0', 'map_value:.rodata:4']),
    )
    expect(p.lineInfo[0]!.insn).toBe(0)
    expect(p.lineInfo[0]!.file).toMatch(/xdp_firewall\.c$/)
    expect(p.lineInfo.find((l) => l.line === 65)).toMatchObject({ text: '\tkey.prefixlen = 32;', column: 16 })
  })

  it('pkt_counter: one .text sub-program linked into an XDP and a tc program', async () => {
    const spec = await load('pkt_counter')
    expect(programSummary(spec.programs.get('xdp_count')!)).toEqual({
      section: 'xdp',
      type: 'xdp',
      subprograms: ['account'],
    })
    expect(programSummary(spec.programs.get('tc_count')!)).toEqual({
      section: 'tc',
      type: 'sched_cls',
      subprograms: ['account'],
    })
    expect(shape(spec.maps.get('counts')!)).toEqual(['hash', 4, 16, 4096, 0])
    expect(spec.maps.get('counts')!.value!.name).toBe('counter')
    for (const p of spec.programs.values()) {
      // account() does one lookup and one update of `counts`: both inside the appended copy.
      const sub = p.subprograms[0]!.insn
      expect(p.relocations.map((r) => r.map)).toEqual(['counts', 'counts'])
      expect(p.relocations.every((r) => r.insn >= sub)).toBe(true)
    }
  })

  it('socket_filter, percpu, ringbuf: map shapes', async () => {
    const sf = await load('socket_filter')
    expect(programSummary(sf.programs.get('udp_port_filter')!)).toEqual({
      section: 'socket',
      type: 'socket_filter',
      subprograms: [],
    })
    expect(shape(sf.maps.get('config')!)).toEqual(['array', 4, 8, 1, 0])
    const pc = await load('percpu')
    expect(shape(pc.maps.get('proto_stats')!)).toEqual(['percpu_array', 4, 16, 256, 0])
    expect(shape(pc.maps.get('port_bytes')!)).toEqual(['percpu_hash', 2, 8, 1024, 0])
    const rb = await load('ringbuf')
    expect([...rb.programs.keys()]).toEqual(['xdp_sample', 'xdp_sample_copy'])
    expect(shape(rb.maps.get('events')!)).toEqual(['ringbuf', 0, 0, 256 * 1024, 0])
    expect(rb.maps.get('events')!.type).toBe(27)
  })

  it('tail_calls: four programs in one section and a prog_array', async () => {
    const spec = await load('tail_calls')
    expect([...spec.programs.keys()]).toEqual(['dispatch', 'handle_tcp', 'handle_udp', 'handle_other'])
    for (const p of spec.programs.values()) expect([p.section, p.type]).toEqual(['xdp', 'xdp'])
    expect(shape(spec.maps.get('jump_table')!)).toEqual(['prog_array', 4, 4, 3, 0])
    expect(spec.maps.get('jump_table')!.type).toBe(3)
    // clang shares one lddw between the TCP and UDP tail calls (llvm-readelf: 2 relocations in dispatch).
    expect(spec.programs.get('dispatch')!.relocations.map((r) => [r.insn, r.map])).toEqual([
      [11, 'jump_table'],
      [15, 'jump_table'],
    ])
  })

  it('bpf_loop: the callback is appended and addressed with a BPF_PSEUDO_FUNC lddw', async () => {
    const spec = await load('bpf_loop')
    const p = spec.programs.get('xdp_loop_sum')!
    expect(p.subprograms.map((s) => s.name)).toEqual(['add_byte'])
    const cb = p.subprograms[0]!.insn
    const funcs: number[] = []
    for (let i = 0; i < p.instructions.length / 8; i++) {
      if (p.instructions[i * 8] === 0x18 && p.instructions[i * 8 + 1]! >> 4 === 4)
        funcs.push(i + i32(p.instructions, i * 8 + 4) + 1)
    }
    expect(funcs).toEqual([cb])
    // last_sum and iterations are zero-initialised, so clang put them in .bss.
    expect([...spec.variables.values()].map((v) => [v.name, v.section, v.offset, v.size])).toEqual([
      ['last_sum', '.bss', 0, 4],
      ['iterations', '.bss', 4, 4],
    ])
    expect(p.relocations).toEqual([
      { insn: p.relocations[0]!.insn, kind: 'map_value', map: '.bss', offset: 4 },
      { insn: p.relocations[1]!.insn, kind: 'map_value', map: '.bss', offset: 0 },
    ])
  })

  it('map_in_map: inner map templates and a static slot', async () => {
    const spec = await load('map_in_map')
    expect([...spec.maps.keys()]).toEqual(['tenant0', 'tenants', 'per_port'])
    const tenants = spec.maps.get('tenants')!
    expect(shape(tenants)).toEqual(['array_of_maps', 4, 4, 8, 0])
    expect(shape(tenants.innerMap!)).toEqual(['hash', 4, 8, 128, 0])
    expect(tenants.slots).toEqual([{ index: 0, target: 'tenant0' }])
    const perPort = spec.maps.get('per_port')!
    expect(shape(perPort)).toEqual(['hash_of_maps', 4, 4, 16, 0])
    expect(shape(perPort.innerMap!)).toEqual(['array', 4, 4, 4, 0])
    expect(perPort.slots).toBeUndefined()
  })

  it('legacy_maps: struct bpf_map_def records and the version section', async () => {
    const spec = await load('legacy_maps')
    expect(spec.kernelVersion).toBe(0x060000)
    expect(spec.programs.get('legacy_filter')!.kernelVersion).toBe(0x060000)
    expect(spec.license).toBe('GPL')
    expect(shape(spec.maps.get('legacy_counts')!)).toEqual(['hash', 4, 8, 64, 0])
    expect(shape(spec.maps.get('legacy_flags')!)).toEqual(['array', 4, 4, 2, 0x80])
    expect(spec.maps.get('legacy_counts')!.section).toBe('maps')
    expect(new Set(spec.programs.get('legacy_filter')!.relocations.map((r) => r.map))).toEqual(
      new Set(['legacy_counts', 'legacy_flags']),
    )
  })

  it('globals: every data section is a map; variables have their C initial values', async () => {
    const spec = await load('globals')
    expect([...spec.maps.keys()].sort()).toEqual(['.bss', '.data', '.data.stats', '.rodata', '.rodata.tables'])
    expect(shape(spec.maps.get('.rodata')!)).toEqual(['array', 4, 32, 1, 0x480])
    expect(shape(spec.maps.get('.data')!)).toEqual(['array', 4, 20, 1, 0x400])
    expect(shape(spec.maps.get('.bss')!)).toEqual(['array', 4, 40, 1, 0x400])
    expect(shape(spec.maps.get('.data.stats')!)).toEqual(['array', 4, 16, 1, 0x400])
    expect(shape(spec.maps.get('.rodata.tables')!)).toEqual(['array', 4, 4, 1, 0x480])
    const vars = Object.fromEntries(
      [...spec.variables.values()].map((v) => [v.name, [v.section, v.offset, v.size, v.get()]]),
    )
    expect(vars).toEqual({
      limits: ['.rodata', 0, 8, { max_packets: 1000, max_len: 1500, enabled: 1, level: 2 }],
      magic: ['.rodata', 8, 8, 0xfeedfacecafebeefn],
      banner: ['.rodata', 16, 16, 'ebpf-fixture'],
      packets_seen: ['.data', 0, 8, 7n],
      last_delta: ['.data', 8, 4, -1],
      last_tag: ['.data', 12, 8, 'none'],
      drops: ['.data.stats', 0, 8, 0n],
      passes: ['.data.stats', 8, 8, 0n],
      weights: ['.rodata.tables', 0, 4, [1, 2, 4, 8]],
      bytes_seen: ['.bss', 0, 8, 0n],
      histogram: ['.bss', 8, 32, [0, 0, 0, 0, 0, 0, 0, 0]],
    })
    // Every map_value relocation points at the start of one of the variables the C code uses.
    const starts = new Set([...spec.variables.values()].map((v) => `${v.section}:${v.offset}`))
    const relocs = spec.programs.get('xdp_globals')!.relocations
    expect(relocs.length).toBe(13)
    for (const r of relocs) {
      expect(r.kind).toBe('map_value')
      // histogram[(len >> 8) & 7] is indexed from its start.
      expect(starts.has(`${r.map}:${r.offset}`), `${r.map}:${r.offset}`).toBe(true)
    }
  })

  it('globals: set() rewrites the section contents before load', async () => {
    const spec = await load('globals')
    const limits = spec.variables.get('limits')!
    limits.set({ max_packets: 5, max_len: 100, enabled: 0, level: 3 })
    expect([...spec.maps.get('.rodata')!.contents!.subarray(0, 8)]).toEqual([5, 0, 0, 0, 100, 0, 0, 3])
    spec.variables.get('banner')!.set('hi')
    expect([...spec.maps.get('.rodata')!.contents!.subarray(16, 20)]).toEqual([0x68, 0x69, 0, 0])
    spec.variables.get('last_delta')!.set(-2)
    expect(u32(spec.maps.get('.data')!.contents!, 8)).toBe(0xfffffffe)
    spec.variables.get('histogram')!.set([1, 2])
    expect(u32(spec.maps.get('.bss')!.contents!, 8)).toBe(1)
    expect(u32(spec.maps.get('.bss')!.contents!, 12)).toBe(2)
    expect(u32(spec.maps.get('.bss')!.contents!, 16)).toBe(0)
    expect(() => spec.variables.get('banner')!.set('x'.repeat(17))).toThrow(/does not fit char\[16\]/)
    expect(() => limits.set({ max_packets: -1 })).toThrow(EbpfError)
    expect(() => limits.set({ bogus: 1 })).toThrow(/no member 'bogus'/)
    expect(spec.variables.get('limits')!.readonly).toBe(true)
    expect(spec.variables.get('packets_seen')!.readonly).toBe(false)
  })

  it('tracing: program types and attach targets from the section names', async () => {
    const spec = await load('tracing')
    const got = [...spec.programs.values()].map((p) => [p.name, p.section, p.type, p.attachTo])
    expect(got).toEqual([
      ['trace_unlink', 'kprobe/do_unlinkat', 'kprobe', 'do_unlinkat'],
      ['trace_unlink_ret', 'kretprobe/do_unlinkat', 'kprobe', 'do_unlinkat'],
      ['trace_openat', 'tracepoint/syscalls/sys_enter_openat', 'tracepoint', 'syscalls/sys_enter_openat'],
      ['trace_exit', 'tp/sched/sched_process_exit', 'tracepoint', 'sched/sched_process_exit'],
      ['raw_sys_enter', 'raw_tp/sys_enter', 'raw_tracepoint', 'sys_enter'],
      ['uprobe_any', 'uprobe', 'kprobe', ''],
    ])
    expect(shape(spec.maps.get('calls')!)).toEqual(['hash', 4, 8, 10240, 0])
  })

  it('types: cgroup_skb program, LRU map with the rich value type', async () => {
    const spec = await load('types')
    const p = spec.programs.get('flow_track')!
    expect([p.type, p.attachType, p.subprograms.map((s) => s.name)]).toEqual([
      'cgroup_skb',
      'cgroup_inet_ingress',
      ['classify'],
    ])
    // flow_key: addr_pair (8) + union l4_ports (4) + u8 + u8[3] = 16; flow_info laid out by hand = 96.
    expect(shape(spec.maps.get('flows')!)).toEqual(['lru_hash', 16, 96, 2048, 0])
    expect(spec.variables.get('flows_seen')!.section).toBe('.bss')
  })

  it('v4_ops and subprogs: -mcpu=v4 objects and nested sub-program calls', async () => {
    const v4 = await load('v4_ops')
    expect(programSummary(v4.programs.get('v4_filter')!)).toEqual({
      section: 'socket',
      type: 'socket_filter',
      subprograms: ['signed_math'],
    })
    // signed_math's a / b is v4's sdiv (ALU64 DIV with off = 1); clang computes a % b from it.
    const p = v4.programs.get('v4_filter')!
    const ops: string[] = []
    for (let i = p.subprograms[0]!.insn; i < p.instructions.length / 8; i++) {
      const off = new DataView(p.instructions.buffer).getInt16(i * 8 + 2, true)
      const op = p.instructions[i * 8]! & 0xf7
      if (op === 0x37 && off === 1) ops.push('sdiv')
      if (op === 0x97 && off === 1) ops.push('smod')
    }
    expect(ops).toEqual(['sdiv'])
    const sp = await load('subprogs')
    expect(sp.programs.get('xdp_bucket')!.subprograms.map((s) => s.name)).toEqual([
      'bucket_of',
      'mix',
      'fold',
      'record',
    ])
    expect(sp.programs.get('xdp_fold_only')!.subprograms.map((s) => s.name)).toEqual(['fold', 'mix'])
    // record() is the only user of `scratch`, so the relocation lives in its appended copy.
    const rec = sp.programs.get('xdp_bucket')!.subprograms.find((s) => s.name === 'record')!.insn
    expect(sp.programs.get('xdp_bucket')!.relocations.map((r) => [r.map, r.insn >= rec])).toEqual([['scratch', true]])
  })

  it('kconfig: externs read a .kconfig map laid out as libbpf does, values from the caller', async () => {
    const bytes = new Uint8Array(readFileSync(join(dir, 'kconfig.bpf.o')))
    const spec = await loadCollectionSpec(bytes, { kconfig: { LINUX_KERNEL_VERSION: 0x060c00 } })
    const m = spec.maps.get('.kconfig')!
    // Both are 4-byte ints: by libbpf's order (alignment, size, then name) CONFIG_HZ is at 0.
    expect(shape(m)).toEqual(['array', 4, 8, 1, 0x480])
    expect([...m.contents!]).toEqual([0, 0, 0, 0, 0x00, 0x0c, 0x06, 0])
    expect(spec.variables.get('CONFIG_HZ')!.get()).toBe(0) // weak and not given: 0
    expect(spec.variables.get('LINUX_KERNEL_VERSION')!.get()).toBe(0x060c00)
    // Same instructions and relocations as libbpf produced for this object (kconfig.libbpf.json).
    const facts = JSON.parse(readFileSync(join(dir, 'kconfig.libbpf.json'), 'utf8'))
    const p = spec.programs.get('kconfig_filter')!
    expect(Buffer.from(p.instructions).toString('hex')).toBe(facts.kconfig_filter.insns)
    expect(p.relocations).toEqual([
      { insn: 1, kind: 'map_value', map: '.kconfig', offset: 4 },
      { insn: 6, kind: 'map_value', map: '.kconfig', offset: 0 },
    ])
    expect(facts.kconfig_filter.relocations.map((r: { insn: number; offset: number }) => [r.insn, r.offset])).toEqual([
      [1, 4],
      [6, 0],
    ])
    const hz = await loadCollectionSpec(bytes, { kconfig: { LINUX_KERNEL_VERSION: 1, CONFIG_HZ: 250 } })
    expect([...hz.maps.get('.kconfig')!.contents!.subarray(0, 4)]).toEqual([250, 0, 0, 0])
    await expect(loadCollectionSpec(bytes, { kconfig: { LINUX_KERNEL_VERSION: -1 } })).rejects.toMatchObject({
      code: 'EINVAL',
      message: expect.stringMatching(/^\.kconfig extern 'LINUX_KERNEL_VERSION': .*out of range/),
    })
  })

  it('linked: an object from the BPF static linker (two compilation units)', async () => {
    const spec = await load('linked')
    const p = spec.programs.get('linked_filter')!
    expect(p.subprograms.map((x) => x.name)).toEqual(['scale'])
    expect(shape(spec.maps.get('shared_counts')!)).toEqual(['array', 4, 8, 2, 0])
    // The linker already sized the DATASEC: calls_a from linked_a.c, then calls_b from linked_b.c.
    expect([...spec.variables.values()].map((v) => [v.name, v.section, v.offset])).toEqual([
      ['calls_a', '.bss', 0],
      ['calls_b', '.bss', 8],
    ])
    expect(new Set(p.lineInfo.map((l) => l.file.split('/').pop()))).toEqual(new Set(['linked_a.c', 'linked_b.c']))
  })

  it('prog_array_init: a prog_array with statically initialised slots', async () => {
    const spec = await load('prog_array_init')
    const m = spec.maps.get('by_parity')!
    expect(shape(m)).toEqual(['prog_array', 4, 4, 4, 0])
    expect(m.slots).toEqual([
      { index: 0, target: 'count_even' },
      { index: 1, target: 'count_odd' },
    ])
    expect([...spec.programs.keys()]).toEqual(['count_even', 'count_odd', 'parity_dispatch'])
  })

  it('more_maps: keyless maps, map_extra, numa_node', async () => {
    const spec = await load('more_maps')
    const got = Object.fromEntries([...spec.maps.values()].map((m) => [m.name, shape(m)]))
    expect(got).toEqual({
      recent: ['queue', 0, 4, 16, 0],
      undo: ['stack', 0, 8, 8, 0],
      seen: ['bloom_filter', 0, 4, 1000, 0],
      per_cpu_lru: ['lru_percpu_hash', 4, 8, 512, 0],
      ports: ['devmap', 4, 4, 4, 0],
      local_numa: ['hash', 4, 4, 64, 4], // BPF_F_NUMA_NODE = 1 << 2
    })
    expect(spec.maps.get('seen')!.mapExtra).toBe(3n)
    expect(spec.maps.get('recent')!.key).toBeUndefined()
    expect(spec.maps.get('local_numa')!.numaNode).toBe(0)
  })

  it('pinned: LIBBPF_PIN_BY_NAME', async () => {
    const spec = await load('pinned')
    expect(spec.maps.get('shared_total')!.pinning).toBe(1)
    expect(shape(spec.maps.get('shared_total')!)).toEqual(['array', 4, 8, 1, 0])
  })

  it('nobtf: an object without BTF still loads its legacy map and global data', async () => {
    const spec = await load('nobtf')
    expect(spec.types.count).toBe(1)
    expect(shape(spec.maps.get('lengths')!)).toEqual(['array', 4, 8, 4, 0])
    // __u32 threshold = 100 in .data; no BTF, so no typed variable and no mmapable flag.
    expect(shape(spec.maps.get('.data')!)).toEqual(['array', 4, 4, 1, 0])
    expect([...spec.maps.get('.data')!.contents!]).toEqual([100, 0, 0, 0])
    expect(spec.variables.size).toBe(0)
    const p = spec.programs.get('nobtf_filter')!
    expect([p.lineInfo, p.funcInfo]).toEqual([[], []])
    expect(p.relocations.map((r) => [r.kind, r.map, r.offset])).toEqual([
      ['map_value', '.data', 0],
      ['map', 'lengths', 0],
    ])
  })

  it('unsupported features are clear errors naming the symbol', async () => {
    await expect(load('kconfig')).rejects.toMatchObject({
      code: 'ENOTSUPP',
      message: expect.stringMatching(/^\.kconfig extern 'LINUX_KERNEL_VERSION' has no value/),
    })
  })

  it('what cannot run here is marked on its map or program, and the object still parses', async () => {
    // libbpf skips .rel.data ("skipping relo section"), and the kernel then rejects the program.
    const data = await load('data_pointers')
    const reason =
      "section '.data': global data initialised with the address of '.rodata.str1.1' (offset 0) is not supported"
    expect(data.maps.get('.data')!.unsupported).toBe(reason)
    expect(data.programs.get('pick_name')!.unsupported).toBe(`uses map '.data', which is unsupported: ${reason}`)
    expect(() => new Collection(data)).toThrow(
      expect.objectContaining({
        code: 'ENOTSUPP',
        message: expect.stringContaining("program 'pick_name' cannot be loaded here"),
      }),
    )
    // CO-RE with no kernel BTF (null: not even the running kernel's).
    const core = await loadCollectionSpec(join(dir, 'core.bpf.o'), { kernelTypes: null })
    expect(core.programs.get('core_switch')!.unsupported).toMatch(
      /^program 'core_switch': CO-RE relocation .* struct task_struct .*needs the target kernel's BTF \(pass kernelTypes; kernelTypes was null\)/,
    )
  })

  it('declarations() type the maps and variables', async () => {
    const spec = await load('xdp_firewall')
    const d = spec.declarations()
    expect(d).toContain('export interface rule {\n  hits: __u64\n  action: __u32\n  rule_id: __u32\n}')
    expect(d).toContain('export type __u64 = bigint')
    expect(d).toContain('export type __u32 = number')
    expect(d).toContain('  blocklist: { key: lpm_v4_key; value: rule }')
    expect(d).toContain('  min_len: __u32')
    expect(d).toContain('  dry_run: __u8')
  })

  it('reads a path or bytes; a missing file is ENOENT', async () => {
    const bytes = readFileSync(join(dir, 'socket_filter.bpf.o'))
    const a = await loadCollectionSpec(new Uint8Array(bytes))
    expect([...a.programs.keys()]).toEqual(['udp_port_filter'])
    expect(existsSync(join(dir, 'nope.o'))).toBe(false)
    await expect(loadCollectionSpec(join(dir, 'nope.o'))).rejects.toMatchObject({ code: 'ENOENT' })
    await expect(loadCollectionSpec(42 as unknown as string)).rejects.toMatchObject({ code: 'EINVAL' })
  })

  it('loadCollectionSpecSync reads a path or bytes as the async form does', () => {
    const path = join(dir, 'socket_filter.bpf.o')
    const fromPath = loadCollectionSpecSync(path)
    const fromBytes = loadCollectionSpecSync(new Uint8Array(readFileSync(path)))
    expect([...fromPath.programs.keys()]).toEqual(['udp_port_filter'])
    expect(fromPath.programs.get('udp_port_filter')!.instructions).toEqual(
      fromBytes.programs.get('udp_port_filter')!.instructions,
    )
    expect(() => loadCollectionSpecSync(join(dir, 'nope.o'))).toThrow(
      expect.objectContaining({ code: 'ENOENT', message: expect.stringContaining('nope.o') }),
    )
    expect(() => loadCollectionSpecSync(42 as unknown as string)).toThrow(expect.objectContaining({ code: 'EINVAL' }))
  })
})
