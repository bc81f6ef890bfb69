/**
 * Objects in the conventions real-world objects were built with before (or beside) libbpf 1.x: the
 * classes that kept public objects (cilium, falco, suricata, OVS, the kernel samples) from loading.
 * Each fixture's C source says what libbpf 1.1 (bpftool 7.1) does with it; expected values come
 * from the C sources (struct initialisers, section names) and, for the made-up layouts, from the
 * byte patches the tests apply.
 */
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { readElf } from '../ts/binary/elf.js'
import { uapiContextTypes } from '../ts/btf/kernel.js'
import { BpfMap, Collection, disassemble, loadCollectionSpecSync } from '../ts/index.js'

const dir = join(__dirname, 'fixtures')
const path = (name: string) => join(dir, `${name}.bpf.o`)
const bytes = (name: string) => new Uint8Array(readFileSync(path(name)))
const load = (name: string, options = {}) => loadCollectionSpecSync(path(name), options)
const shape = (m: { typeName: string; keySize: number; valueSize: number; maxEntries: number; flags: number }) => [
  m.typeName,
  m.keySize,
  m.valueSize,
  m.maxEntries,
  m.flags,
]
let pinDirs = 0
/** Pins are process-wide: each test pins under a directory of its own. */
const pinPath = () => `/objects-legacy-test/${pinDirs++}`

describe("iproute2's struct bpf_elf_map and section names (iproute2_maps.c)", () => {
  it('reads id, pinning, inner_id and inner_idx', () => {
    const spec = load('iproute2_maps')
    const sha1 = createHash('sha1').update(bytes('iproute2_maps')).digest('hex')
    const maps = Object.fromEntries(
      [...spec.maps.values()].map((m) => [m.name, [...shape(m), m.pinning, m.pinName, m.unsupported]]),
    )
    expect(maps).toEqual({
      global_counts: ['array', 4, 8, 4, 0, 2, 'tc/globals/global_counts', undefined],
      object_counts: ['hash', 4, 8, 16, 0, 1, `tc/${sha1}/object_counts`, undefined],
      inner: ['array', 4, 4, 1, 0, 0, undefined, undefined],
      outer: ['array_of_maps', 4, 4, 4, 0, 0, undefined, undefined],
      custom_pinned: [
        'array',
        4,
        4,
        1,
        0,
        3,
        undefined,
        'pinning 3 is an iproute2 custom pinning (a subdirectory named in /etc/iproute2/bpf_pinning), which is not supported',
      ],
    })
    const outer = spec.maps.get('outer')!
    // inner_id 42 names `inner` (id 42); `inner` has inner_idx 3: it goes in slot 3.
    expect(shape(outer.innerMap!)).toEqual(['array', 4, 4, 1, 0])
    expect(outer.slots).toEqual([{ index: 3, target: 'inner' }])
    expect(spec.maps.get('inner')!.legacyId).toBe(42)
  })

  it('types programs from legacy names; others are unspec; a static program is listed', () => {
    const spec = load('iproute2_maps')
    const progs = Object.fromEntries([...spec.programs.values()].map((p) => [p.name, [p.section, p.type, p.typeId]]))
    expect(progs).toEqual({
      cls_main: ['classifier', 'sched_cls', 3],
      act_main: ['action', 'sched_act', 4],
      from_netdev: ['from-netdev', 'unspec', 0],
      uses_custom: ['pinned-custom', 'unspec', 0],
    })
    expect(spec.programs.get('uses_custom')!.unsupported).toMatch(/^uses map 'custom_pinned', which is unsupported/)
  })

  it('loads: pins under pinPath, fills the inner slot, runs', () => {
    const spec = load('iproute2_maps', { programTypes: { 'from-netdev': 'sched_cls' } })
    const root = pinPath()
    const coll = new Collection(spec, { programs: ['cls_main', 'act_main', 'from_netdev'], pinPath: root })
    expect([...coll.maps.keys()].sort()).toEqual(['global_counts', 'inner', 'object_counts', 'outer'])
    expect(BpfMap.fromPinned(`${root}/tc/globals/global_counts`).id).toBe(coll.maps.get('global_counts')!.id)
    const inner = coll.maps.get('inner')!
    inner.update(0, new Uint8Array([77, 0, 0, 0]))
    // cls_main: slot 3 of `outer` holds `inner`, whose entry 0 is now 77.
    expect(coll.programs.get('cls_main')!.run({ data: new Uint8Array(60) }).retval).toBe(77)
    expect(coll.programs.get('from_netdev')!.run({ data: new Uint8Array(60) }).retval).toBe(60)
    // count(0) and count(2) each added one to global_counts.
    const counts = coll.maps.get('global_counts')!
    const u64 = (v: Uint8Array) => new DataView(v.buffer, v.byteOffset, v.byteLength).getBigUint64(0, true)
    expect([0, 2].map((k) => u64(counts.lookup(k) as Uint8Array))).toEqual([1n, 1n])
    // A second collection in the same pin directory shares the pinned maps, as tc's reloads do.
    const again = new Collection(load('iproute2_maps'), { programs: ['act_main'], pinPath: root })
    expect(again.maps.get('global_counts')!.id).toBe(counts.id)
  })

  it('refuses, naming the reason, a program whose map is unsupported and an unspec program', () => {
    const spec = load('iproute2_maps')
    expect(() => new Collection(spec, { programs: ['uses_custom'], pinPath: pinPath() })).toThrow(
      expect.objectContaining({
        code: 'ENOTSUPP',
        message: expect.stringMatching(/^program 'uses_custom' cannot be loaded here: uses map 'custom_pinned'/),
      }),
    )
    expect(() => new Collection(spec, { programs: ['from_netdev'], pinPath: pinPath() })).toThrow(
      expect.objectContaining({
        code: 'ENOTSUPP',
        message: expect.stringContaining("section 'from-netdev' does not say its program type; set it"),
      }),
    )
    // Without `programs`, everything is loaded, so the first program that cannot be is the error,
    // and it names the ones that can.
    expect(() => new Collection(spec, { pinPath: pinPath() })).toThrow(/load the others with \{ programs: \[/)
  })

  it('programTypes: by program or section name; a name that matches nothing is EINVAL', () => {
    expect(
      load('iproute2_maps', { programTypes: { from_netdev: 'sched_act' } }).programs.get('from_netdev'),
    ).toMatchObject({ type: 'sched_act', typeId: 4 })
    expect(() => load('iproute2_maps', { programTypes: { from_netdv: 'xdp' } })).toThrow(
      expect.objectContaining({
        code: 'EINVAL',
        message: expect.stringContaining(
          "programTypes['from_netdv']: the object has no program or section of that name",
        ),
      }),
    )
    expect(() => load('iproute2_maps', { programTypes: { from_netdev: 'xpd' } })).toThrow(
      expect.objectContaining({ code: 'EINVAL', message: expect.stringContaining('"xpd" is not a program type') }),
    )
  })
})

describe("the kernel samples' bpf_map_def with inner_map_idx and numa_node (samples_maps.c)", () => {
  it('reads the 28-byte records the samples way for map-in-map and NUMA maps', () => {
    const spec = load('samples_maps')
    expect(shape(spec.maps.get('a_of_port_a')!)).toEqual(['array_of_maps', 4, 4, 2, 0])
    // inner_map_idx 0: port_a is the template.
    expect(shape(spec.maps.get('a_of_port_a')!.innerMap!)).toEqual(['array', 4, 4, 8, 0])
    expect(shape(spec.maps.get('numa_hash')!)).toEqual(['hash', 4, 4, 16, 4])
    expect(spec.maps.get('numa_hash')!.numaNode).toBe(1)
    expect(spec.maps.get('numa_hash')!.pinName).toBeUndefined()
    expect(spec.kernelVersion).toBe(0x040e00)
    const types = [...spec.programs.values()].map((p) => [p.name, p.section, p.type])
    expect(types).toEqual([
      ['sock_prog', 'socket1', 'socket_filter'],
      ['xdp_prog1', 'xdp_prog', 'xdp'],
    ])
  })

  it('runs: an empty outer slot, a missing hash key', () => {
    const coll = new Collection(load('samples_maps'))
    expect(coll.programs.get('sock_prog')!.run({ data: new Uint8Array(20) }).retval).toBe(0)
    expect(coll.programs.get('xdp_prog1')!.run({ data: new Uint8Array(20) }).retval).toBe(2) // XDP_PASS
  })
})

describe("cilium's BTF maps (cilium_btf_maps.c)", () => {
  it("reads value beside values, pinning 1 and cilium's 16", () => {
    const spec = load('cilium_btf_maps')
    const outer = spec.maps.get('outer_by_name')!
    expect(shape(outer)).toEqual(['hash_of_maps', 4, 4, 4, 0])
    expect([outer.pinning, outer.pinName, outer.pinReplace]).toEqual([1, 'outer_by_name', undefined])
    expect(outer.slots).toEqual([{ index: 2, target: 'inner0' }])
    const calls = spec.maps.get('calls')!
    expect([calls.pinning, calls.pinName, calls.pinReplace]).toEqual([16, 'calls', true])
    expect([...spec.programs.values()].map((p) => [p.name, p.section, p.type])).toEqual([
      ['tail_two', '2/1', 'unspec'],
      ['from_container', 'from-container', 'unspec'],
    ])
  })

  it('reuses the map pinned by name, never the CILIUM_PIN_REPLACE one', () => {
    const root = pinPath()
    // Something of another shape pinned where `calls` would be: not reused, so no conflict.
    new BpfMap({ type: 'array', keySize: 4, valueSize: 8, maxEntries: 1 }).pin(`${root}/calls`)
    const types = { programTypes: { from_container: 'sched_cls', tail_two: 'sched_cls' } }
    const first = new Collection(load('cilium_btf_maps', types), { pinPath: root })
    const second = new Collection(load('cilium_btf_maps', types), { pinPath: root })
    expect(second.maps.get('outer_by_name')!.id).toBe(first.maps.get('outer_by_name')!.id)
    expect(second.maps.get('calls')!.id).not.toBe(first.maps.get('calls')!.id)
    // from_container tail-calls slot 1 (empty), then reads inner0[0] through slot 2: 0.
    expect(first.programs.get('from_container')!.run({ data: new Uint8Array(20) }).retval).toBe(0)
    first.maps.get('calls')!.setProgram(1, first.programs.get('tail_two')!)
    expect(first.programs.get('from_container')!.run({ data: new Uint8Array(20) }).retval).toBe(2)
  })
})

describe('what cannot run is confined to what uses it (unsupported_parts.c)', () => {
  const reasons = {
    uses_kfunc:
      "program 'uses_kfunc': instruction 0 (uses_kfunc+0): call to kfunc 'bpf_rcu_read_lock' (a .ksyms extern): kernel functions are not available here",
    uses_ksym:
      "program 'uses_ksym': instruction 0 (uses_ksym+0): .ksyms extern 'init_task' (a kernel symbol's address) is not available here",
    uses_memcpy: undefined, // linked to our memcpy (libcalls.ts)
    uses_jumps: "uses map 'jumps', which is unsupported: slot 0 refers to 'helper_fn', which is a .text sub-program",
    plain: undefined,
  }

  it('the spec lists every program, with the reason where it cannot load', () => {
    const spec = load('unsupported_parts')
    expect(Object.fromEntries([...spec.programs.values()].map((p) => [p.name, p.unsupported]))).toEqual(reasons)
    expect(spec.maps.get('jumps')!.unsupported).toBe("slot 0 refers to 'helper_fn', which is a .text sub-program")
    expect(spec.maps.get('blobs')!.unsupported).toBeUndefined()
  })

  it('the others load and run', () => {
    const spec = load('unsupported_parts')
    const coll = new Collection(spec, { programs: ['plain'] })
    expect([...coll.programs.keys()]).toEqual(['plain'])
    expect(coll.maps.size).toBe(0) // plain uses no map
    expect(coll.programs.get('plain')!.run({ data: new Uint8Array(21) }).retval).toBe(42)
    // uses_memcpy: clang's call to memcpy is linked to ours; len & 63 bytes of blobs[1] go to blobs[0].
    const copy = new Collection(spec, { programs: ['uses_memcpy'] })
    const blobs = copy.maps.get('blobs')!
    blobs.update(
      1,
      new Uint8Array(64).map((_, i) => 65 + i),
    )
    expect(copy.programs.get('uses_memcpy')!.run({ data: new Uint8Array(64 + 5) }).retval).toBe(1)
    expect(blobs.lookup(0)).toEqual({ bytes: 'ABCDE' })
    expect(() => new Collection(spec, { programs: ['uses_kfunc'] })).toThrow(
      expect.objectContaining({
        code: 'ENOTSUPP',
        message: `program 'uses_kfunc' cannot be loaded here: ${reasons.uses_kfunc}`,
      }),
    )
    expect(() => new Collection(spec, { programs: ['nope'] })).toThrow(
      expect.objectContaining({ code: 'EINVAL', message: expect.stringContaining("programs[0]: no program 'nope'") }),
    )
  })

  it('maps: creates maps no chosen program uses, for tools that fill or read them', () => {
    const spec = load('unsupported_parts')
    const coll = new Collection(spec, { programs: [], maps: ['blobs'] })
    expect([...coll.programs.keys()]).toEqual([])
    expect([...coll.maps.keys()]).toEqual(['blobs'])
    coll.maps.get('blobs')!.update(0, new Uint8Array(64).fill(66))
    expect((coll.maps.get('blobs')!.lookup(0) as { bytes: string }).bytes).toBe('B'.repeat(64))
    expect(() => new Collection(spec, { programs: [], maps: ['nope'] })).toThrow(
      expect.objectContaining({ code: 'EINVAL', message: expect.stringContaining("maps[0]: no map 'nope'") }),
    )
    expect(() => new Collection(spec, { programs: [], maps: [7 as unknown as string] })).toThrow(
      expect.objectContaining({ code: 'EINVAL' }),
    )
  })
})

describe('objects made by hand where clang-19 cannot produce the old form', () => {
  /** socket_filter.bpf.o with its function symbols turned into plain labels (STT_NOTYPE), as clang before 4 wrote them. */
  function withoutFunctionSymbols(): Uint8Array {
    const b = bytes('socket_filter')
    const elf = readElf(b)
    const symtab = elf.sections.find((s) => s.type === 2)!
    for (const s of elf.symbols) {
      if (s.type !== 2 /* STT_FUNC */) continue
      const info = symtab.offset + s.index * 24 + 4
      b[info] = (b[info]! & 0xf0) | 0 // STT_NOTYPE, binding kept
    }
    return b
  }

  it('a code section without function symbols is one program named after the section', () => {
    const original = loadCollectionSpecSync(bytes('socket_filter'))
    const old = loadCollectionSpecSync(withoutFunctionSymbols())
    const [was] = [...original.programs.values()]
    const [now] = [...old.programs.values()]
    expect([...old.programs.keys()]).toEqual([was!.section])
    expect(now).toMatchObject({ name: was!.section, section: was!.section, type: was!.type })
    expect(now!.instructions).toEqual(was!.instructions)
    expect(now!.relocations).toEqual(was!.relocations)
  })
})

describe('ebpf run on old-convention objects', () => {
  const cli = join(__dirname, '..', 'bin', 'ebpf.js')
  it('--type sets an unspec program type; --program loads only that program', () => {
    const o = spawnSync(
      process.execPath,
      [cli, 'run', path('iproute2_maps'), '--program', 'from_netdev', '--type', 'sched_cls', '--hex', '00'.repeat(33)],
      { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } },
    )
    expect(o.stderr).toBe('')
    expect(o.stdout).toContain('retval: 33\n')
    // unsupported_parts: `plain` runs although its neighbours cannot load.
    const p = spawnSync(
      process.execPath,
      [cli, 'run', path('unsupported_parts'), '--program', 'plain', '--hex', '00'.repeat(5)],
      {
        encoding: 'utf8',
      },
    )
    expect(p.stdout).toContain('retval: 10\n')
  })

  it('map list and prog list say where maps are pinned and what cannot load', () => {
    const run = (args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' })
    const maps = run(['map', 'list', path('iproute2_maps')])
    expect(maps.stdout).toContain('global_counts: pinned as tc/globals/global_counts\n')
    expect(maps.stdout).toContain('custom_pinned: cannot be created here: pinning 3 is an iproute2 custom pinning')
    const json = JSON.parse(run(['map', 'list', path('cilium_btf_maps'), '--json']).stdout)
    expect(json.find((m: { name: string }) => m.name === 'calls')).toMatchObject({ pinning: 16, pinName: 'calls' })
    const progs = run(['prog', 'list', path('unsupported_parts')])
    expect(progs.stdout).toContain(
      "uses_kfunc: cannot be loaded here: program 'uses_kfunc': instruction 0 (uses_kfunc+0): call to kfunc 'bpf_rcu_read_lock'",
    )
    expect(progs.stdout).not.toContain('plain: cannot')
  })
})

describe('CO-RE against context structs without kernel BTF (core_ctx.c)', () => {
  // Offsets from linux/bpf.h (__sk_buff: len at 0, mark at 8) and x86-64's pt_regs (si at 104, di at 112).
  const expected = {
    skb_core: ['r2 = *(u32 *)(r1 + 0x8)', 'r0 = *(u32 *)(r1 + 0x0)'],
    regs_core: ['r2 = *(u64 *)(r1 + 0x68)', 'r0 = *(u64 *)(r1 + 0x70)'],
  }
  const firstTwo = (spec: ReturnType<typeof load>) =>
    Object.fromEntries(
      [...spec.programs.values()].map((p) => [p.name, disassemble(p.instructions).split('\n').slice(0, 2)]),
    )

  it('the shipped UAPI context BTF relocates them as the kernel BTF does', () => {
    expect(firstTwo(load('core_ctx', { kernelTypes: uapiContextTypes() }))).toEqual(expected)
    // The default: /sys/kernel/btf/vmlinux where readable (this machine's kernel), else the same UAPI BTF.
    expect(firstTwo(load('core_ctx'))).toEqual(expected)
  })

  it('the shipped BTF gives the instructions libbpf handed the kernel (core_ctx.libbpf.json)', () => {
    const libbpf = JSON.parse(readFileSync(join(dir, 'core_ctx.libbpf.json'), 'utf8')) as Record<
      string,
      { insns: string }
    >
    const spec = load('core_ctx', { kernelTypes: uapiContextTypes() })
    for (const [name, f] of Object.entries(libbpf)) {
      expect(Buffer.from(spec.programs.get(name)!.instructions).toString('hex'), name).toBe(f.insns)
    }
  })

  it('runs: mark + len, di - si', () => {
    const coll = new Collection(load('core_ctx', { kernelTypes: uapiContextTypes() }))
    expect(coll.programs.get('skb_core')!.run({ data: new Uint8Array(30), ctx: { mark: 12 } }).retval).toBe(42)
    const regs = new Uint8Array(168)
    const view = new DataView(regs.buffer)
    view.setBigUint64(112, 100n, true) // di
    view.setBigUint64(104, 58n, true) // si
    expect(coll.programs.get('regs_core')!.run({ ctx: regs }).retval).toBe(42)
  })
})

describe('an EM_NONE object with RELA relocations (LLVM before 3.9), built byte by byte', () => {
  /**
   * The smallest such object: section `classifier` (no function symbols) with `lddw r1, m; r0 = 0;
   * exit`, a RELA entry of type 0 against map symbol `m` in the legacy `maps` section (a 20-byte
   * bpf_map_def: array, 4-byte keys and values, 1 entry), e_machine 0.
   */
  function oldObject(): Uint8Array {
    const names = ['', 'classifier', '.relaclassifier', 'maps', '.symtab', '.strtab', '.shstrtab']
    const shstr: number[] = []
    const nameOff = names.map((n) => {
      const at = shstr.length
      shstr.push(...Buffer.from(n), 0)
      return at
    })
    const le = (n: number, size: number) => [...Array(size)].map((_, i) => Number((BigInt(n) >> BigInt(8 * i)) & 0xffn))
    const code = [0x18, 0x01, 0, 0, 0, 0, 0, 0, ...le(0, 8), 0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]
    const rela = [...le(0, 8), ...le((1n << 32n) | 0n, 8), ...le(0, 8)] // offset 0, symbol 1, type 0, addend 0
    const maps = [...le(2, 4), ...le(4, 4), ...le(4, 4), ...le(1, 4), ...le(0, 4)]
    const strtab = [0, ...Buffer.from('m'), 0]
    const sym = (name: number, info: number, shndx: number) => [
      ...le(name, 4),
      info,
      0,
      ...le(shndx, 2),
      ...le(0, 8),
      ...le(0, 8),
    ]
    const symtab = [...sym(0, 0, 0), ...sym(1, 0x10 /* GLOBAL NOTYPE */, 3)]
    const bodies = [[], code, rela, maps, symtab, strtab, shstr]
    // [type, flags, link, info, entsize] per section.
    const meta = [
      [0, 0, 0, 0, 0],
      [1, 0x6, 0, 0, 0],
      [4, 0, 4, 1, 24],
      [1, 0x3, 0, 0, 0],
      [2, 0, 5, 1, 24],
      [3, 0, 0, 0, 0],
      [3, 0, 0, 0, 0],
    ]
    const out: number[] = Array(64).fill(0)
    const offsets = bodies.map((b) => {
      while (out.length % 8) out.push(0)
      const at = out.length
      out.push(...b)
      return at
    })
    while (out.length % 8) out.push(0)
    const shoff = out.length
    bodies.forEach((b, i) => {
      const [type, flags, link, info, entsize] = meta[i]!
      out.push(
        ...le(nameOff[i]!, 4),
        ...le(type!, 4),
        ...le(flags!, 8),
        ...le(0, 8),
        ...le(i === 0 ? 0 : offsets[i]!, 8),
      )
      out.push(...le(b.length, 8), ...le(link!, 4), ...le(info!, 4), ...le(8, 8), ...le(entsize!, 8))
    })
    const header = [
      0x7f,
      0x45,
      0x4c,
      0x46,
      2,
      1,
      1,
      ...Array(9).fill(0),
      ...le(1, 2),
      ...le(0 /* EM_NONE */, 2),
      ...le(1, 4),
    ]
    header.push(...le(0, 8), ...le(0, 8), ...le(shoff, 8), ...le(0, 4), ...le(64, 2), ...le(0, 2), ...le(0, 2))
    header.push(...le(64, 2), ...le(bodies.length, 2), ...le(6, 2))
    out.splice(0, 64, ...header)
    return Uint8Array.from(out)
  }

  it('reads the RELA relocation by the instruction it patches: a map lddw', () => {
    const spec = loadCollectionSpecSync(oldObject())
    expect(shape(spec.maps.get('m')!)).toEqual(['array', 4, 4, 1, 0])
    const p = spec.programs.get('classifier')!
    expect(p).toMatchObject({ section: 'classifier', type: 'sched_cls' })
    expect(p.relocations).toEqual([{ insn: 0, kind: 'map', map: 'm', offset: 0 }])
    expect(new Collection(spec).programs.get('classifier')!.run({ data: new Uint8Array(20) }).retval).toBe(0)
  })
})
