/**
 * Wrong arguments through every public entry point (issue #11 §6): each argument slot of each
 * function and method gets values of every wrong kind (undefined, null, a symbol, objects, NaN,
 * Infinity, negative and fractional numbers, bigints past 64 bits, huge strings, sparse arrays,
 * ...) with the other arguments valid. Every call must either succeed (some values are valid for
 * some slots) or throw an `EbpfError` with a Node-style code and a message naming the argument:
 * never a TypeError, RangeError or napi conversion error, and never a crash.
 *
 * Also the values a JavaScript helper hands back to the engine (return values out of range are
 * EINVAL, never truncated) and the map values given as numbers or bigints.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  asm,
  assemble,
  BpfMap,
  btf,
  Collection,
  disassemble,
  EbpfError,
  loadCollectionSpec,
  loadCollectionSpecSync,
  Program,
  TrapError,
} from '../ts/index.js'

const fixtures = join(__dirname, 'fixtures')
const globalsObject = new Uint8Array(readFileSync(join(fixtures, 'globals.bpf.o')))
const typesBtf = btf.parse(readFileSync(join(fixtures, 'types.bpf.o')))

/** Values of every wrong kind. */
const BAD: Array<[string, unknown]> = [
  ['undefined', undefined],
  ['null', null],
  ['a symbol', Symbol('s')],
  ['an empty object', {}],
  ['a null-prototype object', Object.create(null)],
  ['an object whose toString throws', { toString: () => assert.fail(), valueOf: () => assert.fail() }],
  ['NaN', Number.NaN],
  ['Infinity', Number.POSITIVE_INFINITY],
  ['-1', -1],
  ['1.5', 1.5],
  ['1e300', 1e300],
  ['2^64 (bigint)', 2n ** 64n],
  ['-2^70 (bigint)', -(2n ** 70n)],
  ['a string', 'abc'],
  ['a 100,000-character string', 'x'.repeat(100_000)],
  ['true', true],
  ['a function', () => 1],
  ['an empty array', []],
  ['a sparse array', new Array(3)],
  ['a wrong-length array', [1, 2, 3, 4, 5, 6, 7]],
  ['a Uint8Array of 3', new Uint8Array(3)],
  ['a DataView', new DataView(new ArrayBuffer(4))],
]

const assert = {
  fail(): never {
    throw new Error('a hostile toString or valueOf was called')
  },
}

interface Slot {
  /** What the call is, for failure messages. */
  label: string
  /** What the error message must mention when the call fails. */
  names: RegExp
  /** Calls the entry point with `v` in this slot (the other arguments valid). */
  call: (v: unknown) => unknown
}

const failures: string[] = []

function check(slot: Slot, valueName: string, e: unknown): void {
  const where = `${slot.label} with ${valueName}`
  if (!(e instanceof EbpfError)) {
    failures.push(`${where}: untyped ${(e as Error)?.constructor?.name}: ${String((e as Error)?.message)}`)
    return
  }
  if (!/^E[A-Z0-9]+$/.test(e.code)) failures.push(`${where}: code ${e.code}`)
  if (e.message.length === 0) failures.push(`${where}: empty message`)
  else if (!slot.names.test(e.message)) failures.push(`${where}: message does not name ${slot.names}: ${e.message}`)
}

/** Runs every bad value through `slot`; async calls are awaited. Returns how many were refused. */
async function run(slot: Slot): Promise<number> {
  let refused = 0
  for (const [valueName, v] of BAD) {
    try {
      const r = slot.call(v)
      if (r instanceof Promise) await r
    } catch (e) {
      refused++
      check(slot, valueName, e)
    }
  }
  return refused
}

const EXIT0 = assemble('r0 = 0\nexit')
const valid = () => new Program({ instructions: EXIT0 })
const xdp = () => new Program({ instructions: EXIT0, type: 'xdp' })
const arrayMap = () => new BpfMap({ type: 'array', keySize: 4, valueSize: 8, maxEntries: 2 })

/** A slot for each property of an options object, plus the object itself. */
function optionSlots(
  label: string,
  base: Record<string, unknown>,
  call: (options: unknown) => unknown,
  names: Record<string, RegExp> = {},
  wholeName = 'options',
): Slot[] {
  // A wrong options object is named as a whole or by the first field it lacks.
  const whole = new RegExp([wholeName, ...Object.keys(base)].join('|'), 'i')
  const slots: Slot[] = [{ label: `${label}(options)`, names: whole, call }]
  for (const key of Object.keys(base)) {
    slots.push({
      label: `${label}({ ${key} })`,
      names: names[key] ?? new RegExp(key, 'i'),
      call: (v) => call({ ...base, [key]: v }),
    })
  }
  return slots
}

const CALL_HELPER = assemble('call 1000\nexit')
/** Runs a program whose helper 1000 is `fn`. */
type Memory = { read: (...a: unknown[]) => unknown; write: (...a: unknown[]) => unknown }
const withHelper = (fn: (args: bigint[], memory: Memory) => unknown) =>
  new Program({ instructions: CALL_HELPER, helpers: { 1000: fn as never } }).run()

// ---- Program --------------------------------------------------------------------------------

const programSlots: Slot[] = [
  ...optionSlots(
    'new Program',
    {
      instructions: EXIT0,
      type: 'raw',
      engine: 'auto',
      mode: 'checked',
      budget: 100,
      maps: [],
      lineInfo: [],
      onPerfEvent: () => {},
      helpers: {},
      logLevel: 0,
      license: 'GPL',
      dataSize: 8,
    },
    (o) => new Program(o as never),
    { maps: /maps/i, helpers: /helper/i, instructions: /instructions|bytecode/ },
  ),
  {
    label: 'new Program({ maps: [x] })',
    names: /maps\[0\]/,
    call: (v) => new Program({ instructions: EXIT0, maps: [v as never] }),
  },
  {
    label: 'new Program({ lineInfo: [x] })',
    names: /lineInfo\[0\]/,
    call: (v) => new Program({ instructions: EXIT0, lineInfo: [v as never] }),
  },
  {
    label: 'new Program({ helpers: { 1000: x } })',
    names: /helpers\[1000\]/,
    call: (v) => new Program({ instructions: EXIT0, helpers: { 1000: v as never } }),
  },
  {
    label: 'new Program({ helpers: { 1000: { name: x, fn } } })',
    names: /helpers\[1000\]\.name/,
    call: (v) => new Program({ instructions: EXIT0, helpers: { 1000: { name: v as never, fn: () => 0 } } }),
  },
  ...optionSlots('run', { data: new Uint8Array(4), repeat: 1, budget: 100, process: {} }, (o) =>
    valid().run(o as never),
  ),
  ...optionSlots('run (xdp)', { data: new Uint8Array(64), ctx: {} }, (o) => xdp().run(o as never)),
  ...optionSlots(
    'run({ process })',
    { pid: 1, tgid: 1, uid: 1, gid: 1, comm: 'x' },
    (p) => valid().run({ process: p as never }),
    {},
    'process',
  ),
  ...optionSlots('runAsync', { data: new Uint8Array(4), repeat: 1, budget: 100 }, (o) => valid().runAsync(o as never)),
  { label: 'runBatch(packets)', names: /packets/, call: (v) => valid().runBatch(v as never) },
  { label: 'runBatch([x])', names: /packets\[0\]/, call: (v) => valid().runBatch([v as never]) },
  { label: 'runBatch(packets, options)', names: /options/, call: (v) => valid().runBatch([], v as never) },
  { label: 'runBatchRetvals(packets)', names: /packets/, call: (v) => valid().runBatchRetvals(v as never) },
  { label: 'runBatchData(packets)', names: /packets/, call: (v) => valid().runBatchData(v as never) },
  { label: 'runBatchData(packets, options)', names: /options/, call: (v) => valid().runBatchData([], v as never) },
  { label: 'runBatchAsync(packets)', names: /packets/, call: (v) => valid().runBatchAsync(v as never) },
  { label: 'traceLog(options)', names: /options/, call: (v) => valid().traceLog(v as never) },
  { label: 'traceLog({ take })', names: /take/, call: (v) => valid().traceLog({ take: v as never }) },
  { label: 'dump(what)', names: /dump kind/, call: (v) => valid().dump(v as never) },
  { label: 'helper: memory.read(addr)', names: /memory\.read: addr/, call: (v) => withHelper((_, m) => m.read(v, 1)) },
  {
    label: 'helper: memory.read(addr, length)',
    names: /memory\.read: length/,
    call: (v) => withHelper(([r1], m) => m.read(r1, v)),
  },
  {
    label: 'helper: memory.write(addr)',
    names: /memory\.write: addr/,
    call: (v) => withHelper((_, m) => m.write(v, new Uint8Array(1))),
  },
  {
    label: 'helper: memory.write(addr, bytes)',
    names: /memory\.write: bytes|write of 3 bytes/,
    call: (v) => withHelper(([r1], m) => m.write(r1, v)),
  },
  { label: 'helper returning x', names: /helper 1000/, call: (v) => withHelper(() => v) },
  {
    label: 'helper throwing x',
    names: /helper 1000/,
    call: (v) =>
      withHelper(() => {
        throw v
      }),
  },
]

// ---- BpfMap ---------------------------------------------------------------------------------

const mapDef = { type: 'array', keySize: 4, valueSize: 8, maxEntries: 2, flags: 0, name: 'm' }
const innerDef = { type: 'array', keySize: 4, valueSize: 4, maxEntries: 1 }
const OUTPUT_RECORD = assemble(`
  *(u64 *)(r10 - 8) = 0
  r1 = map[0] ll
  r2 = r10
  r2 += -8
  r3 = 8
  r4 = 0
  call 130
  exit`)
/** A ring buffer holding one record, so that `records()` yields at once. */
const ringWithRecord = () => {
  const ring = new BpfMap({ type: 'ringbuf', keySize: 0, valueSize: 0, maxEntries: 4096 })
  new Program({ instructions: OUTPUT_RECORD, maps: [ring] }).run()
  return ring
}
const recordsOnce = async (ring: BpfMap, options: unknown) => {
  const gen = ring.records(options as never)
  await gen.next()
  await gen.return(undefined)
}

const mapSlots: Slot[] = [
  ...optionSlots('new BpfMap', mapDef, (d) => new BpfMap(d as never), { type: /type/ }, 'map definition'),
  ...optionSlots(
    'new BpfMap (bloom filter)',
    { type: 'bloom_filter', keySize: 0, valueSize: 4, maxEntries: 2, mapExtra: 3n },
    (d) => new BpfMap(d as never),
    {},
    'map definition',
  ),
  ...optionSlots(
    'new BpfMap({ innerMap })',
    innerDef,
    (inner) => new BpfMap({ type: 'array_of_maps', keySize: 4, valueSize: 4, maxEntries: 1, innerMap: inner as never }),
    Object.fromEntries(Object.keys(innerDef).map((k) => [k, new RegExp(`innerMap(\\.${k})?|inner map`)])),
    'innerMap|inner map',
  ),
  { label: 'new BpfMap(def, codecs)', names: /codecs/, call: (v) => new BpfMap(mapDef as never, v as never) },
  {
    label: 'new BpfMap(def, { key })',
    names: /codecs\.key/,
    call: (v) => new BpfMap(mapDef as never, { key: v as never }),
  },
  { label: 'BpfMap.fromId(id)', names: /id/, call: (v) => BpfMap.fromId(v as never) },
  { label: 'BpfMap.fromPinned(path)', names: /path|pinned/, call: (v) => BpfMap.fromPinned(v as never) },
  { label: 'pin(path)', names: /path/, call: (v) => arrayMap().pin(v as never) },
  { label: 'encodeKey(key)', names: /key/, call: (v) => arrayMap().encodeKey(v) },
  { label: 'encodeValue(value)', names: /value/, call: (v) => arrayMap().encodeValue(v) },
  { label: 'decodeKey(bytes)', names: /key bytes/, call: (v) => arrayMap().decodeKey(v as never) },
  { label: 'decodeValue(bytes)', names: /value bytes/, call: (v) => arrayMap().decodeValue(v as never) },
  { label: 'lookup(key)', names: /key/, call: (v) => arrayMap().lookup(v) },
  { label: 'has(key)', names: /key/, call: (v) => arrayMap().has(v) },
  { label: 'update(key)', names: /key/, call: (v) => arrayMap().update(v, 1n) },
  { label: 'update(key, value)', names: /value/, call: (v) => arrayMap().update(0, v) },
  { label: 'update(key, value, flags)', names: /flags/, call: (v) => arrayMap().update(0, 1n, v as never) },
  { label: 'delete(key)', names: /key/, call: (v) => arrayMap().delete(v) },
  { label: 'nextKey(key)', names: /key/, call: (v) => arrayMap().nextKey(v) },
  ...optionSlots(
    'lookupBatch',
    { cursor: new Uint8Array(4), max: 2, delete: false },
    (o) => arrayMap().lookupBatch(o as never),
    { cursor: /cursor|key of 3 bytes/ },
  ),
  { label: 'updateBatch(entries)', names: /entries/, call: (v) => arrayMap().updateBatch(v as never) },
  { label: 'updateBatch([x])', names: /entries\[0\]|key|value/, call: (v) => arrayMap().updateBatch([v as never]) },
  { label: 'updateBatch(entries, flags)', names: /flags/, call: (v) => arrayMap().updateBatch([], v as never) },
  // A string is iterable: its characters are keys.
  { label: 'deleteBatch(keys)', names: /keys?|elements/, call: (v) => arrayMap().deleteBatch(v as never) },
  {
    label: 'push(value)',
    names: /value/,
    call: (v) => new BpfMap({ type: 'queue', keySize: 0, valueSize: 4, maxEntries: 2 }).push(v),
  },
  {
    label: 'push(value, flags)',
    names: /flags/,
    call: (v) => new BpfMap({ type: 'queue', keySize: 0, valueSize: 4, maxEntries: 2 }).push(1, v as never),
  },
  {
    label: 'mayContain(value)',
    names: /value/,
    call: (v) =>
      new BpfMap({ type: 'bloom_filter', keySize: 0, valueSize: 4, maxEntries: 2, mapExtra: 3n }).mayContain(v),
  },
  {
    label: 'setProgram(index)',
    names: /index/,
    call: (v) =>
      new BpfMap({ type: 'prog_array', keySize: 4, valueSize: 4, maxEntries: 2 }).setProgram(v as never, valid()),
  },
  {
    label: 'setProgram(index, program)',
    names: /program/,
    call: (v) => new BpfMap({ type: 'prog_array', keySize: 4, valueSize: 4, maxEntries: 2 }).setProgram(0, v as never),
  },
  { label: 'records(options)', names: /options/, call: (v) => recordsOnce(ringWithRecord(), v) },
  { label: 'records({ pollMs })', names: /pollMs/, call: (v) => recordsOnce(ringWithRecord(), { pollMs: v }) },
  { label: 'records({ signal })', names: /signal/, call: (v) => recordsOnce(ringWithRecord(), { signal: v }) },
  {
    label: 'onRecord(fn)',
    names: /fn/,
    call: (v) => ringWithRecord().onRecord(v as never)(),
  },
  {
    label: 'onRecord(fn, options)',
    names: /options|pollMs/,
    call: (v) => ringWithRecord().onRecord(() => {}, v as never)(),
  },
]

// ---- Collection and specs -------------------------------------------------------------------

const spec = () => loadCollectionSpecSync(globalsObject)
const collectionSlots: Slot[] = [
  { label: 'new Collection(spec)', names: /CollectionSpec/, call: (v) => new Collection(v as never) },
  ...optionSlots(
    'new Collection',
    { engine: 'auto', mode: 'checked', logLevel: 0, budget: 100, mapReplacements: {}, pinPath: '/sys/fs/bpf' },
    (o) => new Collection(spec(), o as never),
  ),
  {
    label: 'new Collection({ mapReplacements: { x } })',
    names: /mapReplacements/,
    call: (v) => new Collection(spec(), { mapReplacements: { '.data': v as never } }),
  },
  { label: 'collection.variable(name)', names: /variable/, call: (v) => new Collection(spec()).variable(v as never) },
  {
    label: 'loadCollectionSpec(path)',
    names: /loadCollectionSpec|object|ELF/,
    call: (v) => loadCollectionSpec(v as never),
  },
  ...optionSlots('loadCollectionSpec', { kernelTypes: typesBtf, kconfig: {} }, (o) =>
    loadCollectionSpec(globalsObject, o as never),
  ),
  {
    label: 'loadCollectionSpecSync(bytes)',
    names: /object|bytes|ELF/,
    call: (v) => loadCollectionSpecSync(v as never),
  },
  ...optionSlots('loadCollectionSpecSync', { kernelTypes: typesBtf, kconfig: {} }, (o) =>
    loadCollectionSpecSync(globalsObject, o as never),
  ),
  {
    label: 'VariableSpec.set(value)',
    names: /value|expected|out of range|member|variable/,
    call: (v) => {
      for (const s of spec().variables.values()) s.set(v)
    },
  },
]

// ---- BTF ------------------------------------------------------------------------------------

const btfSlots: Slot[] = [
  { label: 'btf.parse(bytes)', names: /BTF input|bytes/, call: (v) => btf.parse(v as never) },
  { label: 'btf.parse(bytes, options)', names: /options/, call: (v) => btf.parse(globalsObject, v as never) },
  { label: 'btf.parse({ fixup })', names: /fixup/, call: (v) => btf.parse(globalsObject, { fixup: v as never }) },
  { label: 'new btf.Btf(types)', names: /types/, call: (v) => new btf.Btf(v as never) },
  { label: 'new btf.Btf([void, x])', names: /types\[1\]/, call: (v) => new btf.Btf([typesBtf.types[0]!, v as never]) },
  { label: 'typeById(id)', names: /id/, call: (v) => typesBtf.typeById(v as never) },
  { label: 'resolve(id)', names: /id/, call: (v) => typesBtf.resolve(v as never) },
  { label: 'sizeOf(id)', names: /id/, call: (v) => typesBtf.sizeOf(v as never) },
  { label: 'alignOf(id)', names: /id/, call: (v) => typesBtf.alignOf(v as never) },
  { label: 'typesByName(name)', names: /name/, call: (v) => typesBtf.typesByName(v as never) },
  { label: 'typesByName(name, kind)', names: /kind/, call: (v) => typesBtf.typesByName('flow_info', v as never) },
  { label: 'typeByName(name)', names: /name/, call: (v) => typesBtf.typeByName(v as never) },
  {
    label: 'memberOffset(id, path)',
    names: /path|member/,
    call: (v) => typesBtf.memberOffset(typesBtf.typeByName('flow_info')!.id, v as never),
  },
  { label: 'dump(options)', names: /options|format/, call: (v) => typesBtf.dump(v as never) },
  { label: 'dump({ format })', names: /format/, call: (v) => typesBtf.dump({ format: v as never }) },
  { label: 'withTypes(replacements)', names: /replacements/, call: (v) => typesBtf.withTypes(v as never) },
  { label: 'btf.codec(types)', names: /types/, call: (v) => btf.codec(v as never, 1) },
  { label: 'btf.codec(types, type)', names: /type/, call: (v) => btf.codec(typesBtf, v as never) },
  {
    label: 'codec.encode(value)',
    names: /value|expected|member|flow_info/,
    call: (v) => btf.codec(typesBtf, typesBtf.typeByName('flow_info')!).encode(v),
  },
  {
    label: 'codec.decode(bytes)',
    names: /Uint8Array|bytes/,
    call: (v) => btf.codec(typesBtf, typesBtf.typeByName('flow_info')!).decode(v as never),
  },
  {
    label: 'codec.read(view)',
    names: /DataView|offset/,
    call: (v) => btf.codec(typesBtf, typesBtf.typeByName('flow_info')!).read(v as never, 0),
  },
  {
    label: 'codec.read(view, offset)',
    names: /offset/,
    call: (v) =>
      btf.codec(typesBtf, typesBtf.typeByName('flow_info')!).read(new DataView(new ArrayBuffer(256)), v as never),
  },
  {
    label: 'codec.write(view, offset)',
    names: /offset/,
    call: (v) =>
      btf.codec(typesBtf, typesBtf.typeByName('flow_info')!).write(new DataView(new ArrayBuffer(256)), v as never, {}),
  },
  { label: 'btf.generateDeclarations(btf)', names: /btf/, call: (v) => btf.generateDeclarations(v as never) },
  {
    label: 'btf.generateDeclarations(btf, extras)',
    names: /extras/,
    call: (v) => btf.generateDeclarations(typesBtf, v as never),
  },
  {
    label: 'btf.generateDeclarations(btf, { maps: [x] })',
    names: /extras\.maps/,
    call: (v) => btf.generateDeclarations(typesBtf, { maps: [v as never] }),
  },
  { label: 'btf.tsTypeOf(btf)', names: /btf/, call: (v) => btf.tsTypeOf(v as never, 1) },
  { label: 'btf.tsTypeOf(btf, id)', names: /id/, call: (v) => btf.tsTypeOf(typesBtf, v as never) },
]

// ---- Assembler, disassembler, builder -------------------------------------------------------

const asmSlots: Slot[] = [
  { label: 'assemble(text)', names: /text|mnemonic|line is/, call: (v) => assemble(v as never) },
  {
    label: 'asm.assembleInstructions(text)',
    names: /text|mnemonic|line is/,
    call: (v) => asm.assembleInstructions(v as never),
  },
  { label: 'disassemble(bytes)', names: /bytecode/, call: (v) => disassemble(v as never) },
  { label: 'disassemble(bytes, options)', names: /options/, call: (v) => disassemble(EXIT0, v as never) },
  { label: 'disassemble({ dialect })', names: /dialect/, call: (v) => disassemble(EXIT0, { dialect: v as never }) },
  { label: 'asm.encodeInstructions(insns)', names: /instructions/, call: (v) => asm.encodeInstructions(v as never) },
  {
    label: 'asm.encodeInstructions([x])',
    names: /instructions\[0\]/,
    call: (v) => asm.encodeInstructions([v as never]),
  },
  { label: 'asm.decodeInstructions(bytes)', names: /bytecode/, call: (v) => asm.decodeInstructions(v as never) },
  { label: 'asm.opcodes.accessBytes(bits)', names: /size bits/, call: (v) => asm.opcodes.accessBytes(v as never) },
  { label: 'asm.opcodes.invert(record)', names: /record/, call: (v) => asm.opcodes.invert(v as never) },
]

const { R1, R2 } = asm
const RAW = { opcode: 0x95, dst: 0, src: 0, off: 0, imm: 0 }
/** Valid arguments and the names an error must use, per builder method (by name). */
const BUILDER_ARGS: Array<[RegExp, unknown[], RegExp[]]> = [
  [/^(add|sub|mul|div|sdiv|mod|smod|or|and|xor|lsh|rsh|arsh|mov)(64|32)$/, [R1, 1], [/dst/, /source|immediate/]],
  [/^neg(64|32)$/, [R1], [/dst/]],
  [/^movsx(64|32)$/, [R1, R2, 8], [/dst/, /src/, /bits/]],
  [/^(le|be|bswap)$/, [R1, 16], [/dst/, /bits/]],
  [/^lddw$/, [R1, 1n], [/dst/, /lddw/]],
  [/^ldx(b|h|w|dw|sb|sh|sw)$/, [R1, R2, 0], [/dst/, /src/, /offset/]],
  [/^st(b|h|w|dw)$/, [R1, 0, 1], [/dst/, /offset/, /immediate/]],
  [/^stx(b|h|w|dw)$/, [R1, 0, R2], [/dst/, /offset/, /src/]],
  [/^atomic(64|32)$/, ['add', R1, 0, R2], [/atomic operation/, /dst/, /offset/, /src/]],
  [/^loadAcquire$/, ['w', R1, R2, 0], [/size/, /dst/, /src/, /offset/]],
  [/^storeRelease$/, ['w', R1, 0, R2], [/size/, /dst/, /offset/, /src/]],
  [/^ldabs[bhw]$/, [1], [/immediate/]],
  [/^ldind[bhw]$/, [R1, 1], [/src/, /immediate/]],
  [/^j(eq|ne|gt|ge|lt|le|sgt|sge|slt|sle|set)(32)?$/, [R1, 1, 0], [/dst/, /source|immediate/, /offset|label/]],
  [/^ja(32)?$/, [0], [/offset|label/]],
  [/^(call|callKfunc)$/, [1], [/id|immediate/]],
  [/^callLocal$/, [0], [/offset|label/]],
  [/^callx$/, [R1], [/reg/]],
  [/^label$/, ['l'], [/label/]],
  [/^raw$/, [RAW], [/raw instruction 0/]],
  [/^(exit|instructions|assemble)$/, [], []],
]

const builderMethods = Object.getOwnPropertyNames(asm.Builder.prototype).filter(
  (n) => n !== 'constructor' && typeof Object.getOwnPropertyDescriptor(asm.Builder.prototype, n)!.value === 'function',
)
const builderSlots: Slot[] = builderMethods.flatMap((method) => {
  const entry = BUILDER_ARGS.find(([re]) => re.test(method))
  if (!entry) return [{ label: `asm.Builder#${method}: no argument table`, names: /^$/, call: () => 0 }]
  const [, args, names] = entry
  return args.map((_, i) => ({
    label: `asm.Builder#${method} argument ${i}`,
    names: names[i]!,
    call: (v: unknown) => {
      const b = new asm.Builder() as unknown as Record<string, (...a: unknown[]) => unknown>
      return b[method]!(...args.map((a, j) => (j === i ? v : a)))
    },
  }))
})

describe('wrong arguments give EbpfErrors that name them', () => {
  const groups: Array<[string, Slot[]]> = [
    ['Program', programSlots],
    ['BpfMap', mapSlots],
    ['Collection and specs', collectionSlots],
    ['BTF', btfSlots],
    ['assembler and disassembler', asmSlots],
    ['asm.Builder', builderSlots],
  ]
  for (const [group, slots] of groups) {
    it(`${group}: ${slots.length} argument slots x ${BAD.length} values`, async () => {
      failures.length = 0
      let refused = 0
      for (const slot of slots) {
        const n = await run(slot)
        refused += n
        // Every slot refuses most wrong values: a slot that takes everything is not checked at all.
        if (n < BAD.length / 3) failures.push(`${slot.label}: only ${n} of ${BAD.length} values refused`)
      }
      expect(failures).toEqual([])
      expect(refused).toBeGreaterThan(slots.length * 5)
    })
  }

  it('every builder method has an argument table', () => {
    expect(builderMethods.filter((m) => !BUILDER_ARGS.some(([re]) => re.test(m)))).toEqual([])
  })
})

describe('no silent truncation (issue #11 §6)', () => {
  const ret = (v: unknown) => withHelper(() => v)

  it('a helper return is a bigint from -2^63 to 2^64-1, a safe integer or undefined', () => {
    // Inside the range, r0 is the value as 64 bits (negative ones as two's complement).
    expect(ret(2n ** 64n - 1n).r0).toBe(2n ** 64n - 1n)
    expect(ret(-(2n ** 63n)).r0).toBe(2n ** 63n)
    expect(ret(-1n).r0).toBe(2n ** 64n - 1n)
    expect(ret(-5).r0).toBe(2n ** 64n - 5n)
    expect(ret(2 ** 53 - 1).r0).toBe(2n ** 53n - 1n)
    expect(ret(undefined).r0).toBe(0n)
    // Outside it, the run stops with the helper's error: before, 2^64+5 gave 5, 2^70 gave 0 and
    // 1e300 gave 0x7fffffffffffffff.
    for (const [v, message] of [
      [2n ** 64n + 5n, /returned a bigint outside -2\^63\.\.2\^64-1/],
      [2n ** 70n, /returned a bigint outside/],
      [-(2n ** 63n) - 1n, /returned a bigint outside/],
      [1e300, /returned 1e300, not a safe integer/],
      [2 ** 53, /returned 9007199254740992, not a safe integer/],
      [1.5, /returned 1.5, not a safe integer/],
      [Number.NaN, /returned NaN/],
      ['5', /something other than a bigint/],
    ] as const) {
      let e: unknown
      try {
        ret(v)
      } catch (x) {
        e = x
      }
      expect(e).toBeInstanceOf(TrapError)
      expect((e as TrapError).code).toBe('EINVAL')
      expect((e as TrapError).kind).toBe('helper_error')
      expect((e as TrapError).message).toMatch(message)
    }
  })

  it('a helper that throws a symbol or an object without a string form stops the run with a TrapError', () => {
    for (const [thrown, text] of [
      [Symbol('boom'), /threw: Symbol\(boom\)/],
      [Object.create(null), /threw: an object/],
      [new RangeError('too far'), /threw: RangeError: too far/],
    ] as const) {
      expect(() =>
        withHelper(() => {
          throw thrown
        }),
      ).toThrow(text)
    }
  })

  it('an 8-byte map value or key given as a number or bigint must fit 64 bits', () => {
    const m = new BpfMap({ type: 'hash', keySize: 8, valueSize: 8, maxEntries: 4 })
    m.update(1n, 2n ** 64n - 1n)
    m.update(2, -1)
    const u64 = (b: unknown) =>
      new DataView((b as Uint8Array).buffer, (b as Uint8Array).byteOffset).getBigUint64(0, true)
    expect(u64(m.lookup(1n))).toBe(2n ** 64n - 1n)
    expect(u64(m.lookup(2))).toBe(2n ** 64n - 1n)
    // Before: stored as 5, 0 and a RangeError.
    expect(() => m.update(3, 2n ** 64n + 5n)).toThrow(/value must be a bigint from -2\^63 to 2\^64-1/)
    expect(() => m.update(3, 2n ** 70n)).toThrow(EbpfError)
    expect(() => m.update(3, 1.5)).toThrow(/value must be a bigint/)
    expect(() => m.update(2n ** 64n, 1)).toThrow(/key must be a bigint/)
    expect(m.size).toBe(2)
    const a = new BpfMap({ type: 'array', keySize: 4, valueSize: 4, maxEntries: 2 })
    a.update(1n, 0xffffffffn)
    expect(() => a.update(0, 2 ** 32)).toThrow(/value must be an integer from 0 to 2\^32-1/)
    expect(() => a.update(0, -1n)).toThrow(/value must be an integer from 0 to 2\^32-1/)
  })

  it('map_extra may be a number; out of range is EINVAL', () => {
    expect(new BpfMap({ type: 'bloom_filter', keySize: 0, valueSize: 4, maxEntries: 2, mapExtra: 3 }).type).toBe(30)
    expect(
      () => new BpfMap({ type: 'bloom_filter', keySize: 0, valueSize: 4, maxEntries: 2, mapExtra: 2n ** 64n }),
    ).toThrow(/mapExtra must be a bigint or safe integer from 0 to 2\^64-1/)
  })
})
