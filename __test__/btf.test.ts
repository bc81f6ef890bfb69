/**
 * BTF queries, .BTF.ext records, typed value codecs and generated TypeScript declarations.
 * Expected layouts and bytes are worked out by hand from the C declarations in fixtures/types.c
 * and the SysV/BPF layout rules (natural alignment, little-endian, bitfields from bit 0 upwards).
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { btf, EbpfError } from '../ts/index.js'

const dir = join(__dirname, 'fixtures')
const types = btf.parse(readFileSync(join(dir, 'types.bpf.o')))
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex')

describe('queries', () => {
  it('finds types by name and kind, and resolves sizes', () => {
    const info = types.typeByName('flow_info', 'STRUCT')!
    expect(info.size).toBe(96)
    expect(types.sizeOf(info.id)).toBe(96)
    expect(types.sizeOf(types.typeByName('flow_key', 'STRUCT')!.id)).toBe(16)
    expect(types.sizeOf(types.typeByName('flow_id_t', 'TYPEDEF')!.id)).toBe(4)
    expect(types.resolve(types.typeByName('flow_id_t')!.id).name).toBe('unsigned int')
    expect(types.typeByName('big_marks')!.kind).toBe('ENUM64')
    expect(types.typeByName('flow_state')!.values!.map((v) => [v.name, v.value])).toEqual([
      ['FLOW_NEW', 0n],
      ['FLOW_ESTABLISHED', 1n],
      ['FLOW_CLOSING', 2n],
      ['FLOW_CLOSED', -1n],
    ])
    expect(types.typeByName('nope')).toBeUndefined()
    expect(() => types.typeById(100000)).toThrow(EbpfError)
  })

  it('locates members, through nesting, arrays and bitfields', () => {
    const info = types.typeByName('flow_info', 'STRUCT')!.id
    // id 0, state 4, bitfields from byte 8, mss 12, comm 14, bytes 32, mark 48, times 56, ratio 72,
    // generation 76, user_ptr 80, self 88.
    expect(types.memberOffset(info, 'mss')).toMatchObject({ bitOffset: 96, bitfieldSize: 0 })
    expect(types.memberOffset(info, 'window_scale')).toMatchObject({ bitOffset: 68, bitfieldSize: 4 })
    expect(types.memberOffset(info, 'delta')).toMatchObject({ bitOffset: 72, bitfieldSize: 12 })
    expect(types.memberOffset(info, 'bytes[1]').bitOffset).toBe(40 * 8)
    expect(types.memberOffset(info, 'times.last_ns').bitOffset).toBe(64 * 8)
    expect(types.memberOffset(info, 'self').bitOffset).toBe(88 * 8)
    const key = types.typeByName('flow_key', 'STRUCT')!.id
    expect(types.memberOffset(key, 'ports.tcp.dport').bitOffset).toBe(8 * 8 + 16)
    expect(() => types.memberOffset(info, 'nope')).toThrow(/no member 'nope'/)
    expect(() => types.memberOffset(info, 'bytes[2]')).toThrow(/out of bounds/)
  })

  it('parses every kind the fixture declares', () => {
    const kinds = new Set(types.types.map((t) => t.kind))
    for (const k of ['INT', 'PTR', 'ARRAY', 'STRUCT', 'UNION', 'ENUM', 'ENUM64', 'TYPEDEF', 'VOLATILE', 'CONST']) {
      expect(kinds.has(k as never), k).toBe(true)
    }
    for (const k of ['RESTRICT', 'FUNC', 'FUNC_PROTO', 'VAR', 'DATASEC', 'FLOAT', 'DECL_TAG', 'TYPE_TAG']) {
      expect(kinds.has(k as never), k).toBe(true)
    }
    const tag = types.types.find((t) => t.kind === 'DECL_TAG' && t.name === 'flow-id')!
    expect(types.typeById(tag.type!).name).toBe('flow_info')
    expect(tag.componentIdx).toBe(0)
    expect(types.types.find((t) => t.kind === 'TYPE_TAG')!.name).toBe('user')
  })
})

describe('.BTF.ext', () => {
  it('func_info and line_info per section', () => {
    const ext = types.ext!
    expect(ext.funcInfo.map((s) => [s.section, s.records.length])).toEqual([
      ['cgroup_skb/ingress', 1],
      ['.text', 1],
    ])
    const li = ext.lineInfo.find((s) => s.section === 'cgroup_skb/ingress')!.records
    expect(li[0]!.insnOff).toBe(0)
    expect(li.every((r) => r.file.endsWith('types.c'))).toBe(true)
    const src = readFileSync(join(dir, 'types.c'), 'utf8').split('\n')
    for (const r of li) expect(src[r.line - 1]).toBe(r.text)
  })

  it('CO-RE relocation records', () => {
    const core = btf.parse(readFileSync(join(dir, 'core.bpf.o')))
    const relos = core.ext!.coreRelos
    expect(relos.map((s) => s.section)).toEqual(['raw_tp/sched_switch'])
    // BPF_CORE_READ(prev, pid) reads field 0; bpf_core_field_exists(prev->tgid) asks about field 1.
    const recs = relos[0]!.records.map((r) => [core.typeById(r.typeId).name, r.access, r.kindName])
    expect(recs).toEqual([
      ['task_struct', '0:0', 'field_byte_offset'],
      ['task_struct', '0:1', 'field_exists'],
    ])
  })
})

describe('codec', () => {
  const info = btf.codec(types, types.typeByName('flow_info', 'STRUCT')!)
  const value = {
    id: 7,
    state: 'FLOW_ESTABLISHED',
    syn: 1,
    ack: 1,
    fin: 0,
    rst: 0,
    window_scale: 5,
    delta: -3,
    mss: 1460,
    comm: 'curl',
    bytes: [100n, 200n],
    mark: 'MARK_HIGH',
    times: { first_ns: 1n, last_ns: -2n },
    ratio: 0.5,
    generation: 9,
    user_ptr: 0n,
    self: 0x1122334455667788n,
  }
  // By hand: syn/ack in bits 0-1 and window_scale 5 in bits 4-7 of byte 8 = 0x53; delta -3 as
  // 12 bits = 0xffd at bit 72: byte 9 = 0xfd, byte 10 = 0x0f; mss 1460 = 0x05b4; 0.5f = 0x3f000000.
  const expected =
    '07000000' +
    '01000000' +
    '53fd0f00' +
    'b405' +
    `6375726c${'00'.repeat(12)}` +
    '0000' +
    '6400000000000000' +
    'c800000000000000' +
    '0000000000000080' +
    '0100000000000000' +
    'feffffffffffffff' +
    '0000003f' +
    '09000000' +
    '0000000000000000' +
    '8877665544332211'

  it('encodes a struct with bitfields, enums, strings, arrays and a float byte for byte', () => {
    expect(info.size).toBe(96)
    expect(hex(info.encode(value))).toBe(expected)
  })

  it('decodes back to the same value', () => {
    expect(info.decode(Buffer.from(expected, 'hex'))).toEqual(value)
  })

  it('flattens anonymous members and reads every view of a union', () => {
    const key = btf.codec(types, types.typeByName('flow_key', 'STRUCT')!.id)
    const bytes = key.encode({
      addrs: { src: 0x0100000a, dst: 2 },
      ports: { tcp: { sport: 80, dport: 443 } },
      protocol: 6,
    })
    expect(hex(bytes)).toBe('0a000001' + '02000000' + '5000bb01' + '06000000')
    expect(key.decode(bytes)).toEqual({
      addrs: { src: 0x0100000a, dst: 2 },
      ports: { tcp: { sport: 80, dport: 443 }, icmp_id_seq: 0x01bb0050, raw: [0x50, 0, 0xbb, 0x01] },
      protocol: 6,
      pad: [0, 0, 0],
    })
  })

  it('unknown enum values decode as numbers; 64-bit values as bigints', () => {
    const bytes = info.encode({ state: 42, mark: 5n })
    const v = info.decode(bytes) as Record<string, unknown>
    expect(v.state).toBe(42)
    expect(v.mark).toBe(5n)
  })

  it('rejects bad values with EINVAL naming the member', () => {
    const bad = (v: unknown) => {
      try {
        info.encode(v)
      } catch (e) {
        expect(e).toBeInstanceOf(EbpfError)
        expect((e as EbpfError).code).toBe('EINVAL')
        return (e as Error).message
      }
      throw new Error('accepted')
    }
    expect(bad({ id: -1 })).toMatch(/^id: -1 is out of range for u32/)
    expect(bad({ id: 1.5 })).toMatch(/^id: expected an integer/)
    expect(bad({ window_scale: 16 })).toMatch(/^window_scale: 16 does not fit an unsigned 4-bit field/)
    expect(bad({ delta: 2048 })).toMatch(/^delta: 2048 does not fit a signed 12-bit field/)
    expect(bad({ comm: 'x'.repeat(17) })).toMatch(/^comm: string of 17 bytes does not fit char\[16\]/)
    expect(bad({ state: 'FLOW_BOGUS' })).toMatch(/^state: 'FLOW_BOGUS' is not an enumerator/)
    expect(bad({ times: { first_ns: 'soon' } })).toMatch(/^times\.first_ns: expected a number or bigint/)
    expect(bad({ bytes: [1n, 2n, 3n] })).toMatch(/^bytes: 3 elements do not fit an array of 2/)
    expect(bad({ extra: 1 })).toMatch(/has no member 'extra'/)
    expect(bad(7)).toMatch(/expected an object/)
    expect(() => info.decode(new Uint8Array(10))).toThrow(/need 96 bytes/)
  })
})

describe('TypeScript declarations', () => {
  it('compile with tsc and type map values the way the codec produces them', async () => {
    const { loadCollectionSpec } = await import('../ts/index.js')
    const spec = await loadCollectionSpec(join(dir, 'types.bpf.o'))
    const d = spec.declarations()
    expect(d).toContain(
      'export type flow_state = "FLOW_NEW" | "FLOW_ESTABLISHED" | "FLOW_CLOSING" | "FLOW_CLOSED" | number',
    )
    expect(d).toContain('  flows: { key: flow_key; value: flow_info }')
    const tmp = mkdtempSync(join(tmpdir(), 'btf-ts-'))
    try {
      writeFileSync(join(tmp, 'types.ts'), d)
      // A value decoded from the map must be assignable to the declared type.
      const sample = JSON.stringify(info_sample, (_k, v) => (typeof v === 'bigint' ? `__BIG${v}__` : v)).replace(
        /"__BIG(-?\d+)__"/g,
        '$1n',
      )
      writeFileSync(
        join(tmp, 'use.ts'),
        `import type { Maps, flow_info } from './types'\nconst v: flow_info = ${sample}\nconst k: Maps['flows']['key'] = { addrs: { src: 1, dst: 2 }, tcp: undefined as never, sport: 1, dport: 2, icmp_id_seq: 3, raw: [], protocol: 6, pad: [] } as never\n// @ts-expect-error comm is a string, not a number\nconst w: flow_info = { ...v, comm: 5 }\n// @ts-expect-error bytes are bigints\nconst x: flow_info = { ...v, bytes: [1, 2] }\nexport { v, k, w, x }\n`,
      )
      writeFileSync(
        join(tmp, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: { strict: true, noEmit: true, target: 'ES2022', module: 'commonjs', types: [] },
          files: ['use.ts'],
        }),
      )
      const tsc = join(__dirname, '..', 'node_modules', 'typescript', 'bin', 'tsc')
      const run = () => execFileSync(process.execPath, [tsc, '-p', tmp], { stdio: 'pipe', encoding: 'utf8' })
      try {
        run()
      } catch (e) {
        throw new Error(`tsc: ${(e as { stdout?: string }).stdout}`)
      }
    } finally {
      rmSync(tmp, { recursive: true, force: true })
    }
  })
})

const info_sample = {
  id: 7,
  state: 'FLOW_ESTABLISHED',
  syn: 1,
  ack: 1,
  fin: 0,
  rst: 0,
  window_scale: 5,
  delta: -3,
  mss: 1460,
  comm: 'curl',
  bytes: [100n, 200n],
  mark: 'MARK_HIGH',
  times: { first_ns: 1n, last_ns: -2n },
  ratio: 0.5,
  generation: 9,
  user_ptr: 0n,
  self: 0n,
}
