/**
 * What the parser fuzzers do with one input, written once for both ways they run: in the vitest
 * process against the TypeScript sources (`npm test`), and in a worker thread against the built
 * package with a per-case time limit (the long runs, `npm run fuzz:long`). `lib` is the library
 * (`ts/index` or `dist`). Each function throws a plain Error when the library misbehaves (an
 * untyped error, an unexpected code, a round trip that changes the bytes, output over its limit),
 * and otherwise returns a short outcome for the run's statistics.
 */

/** Codes a malformed or over-limit input may get. */
const ALLOWED = new Set(['EINVAL', 'E2BIG', 'ENOENT', 'ENOTSUPP'])
/** The largest text any dump or declaration may produce (the largest of the library's limits). */
const MAX_TEXT = 128 * 1024 * 1024

/** Runs `step`; an error must be one of the library's, with an allowed code and a message. */
function typed(lib, what, step) {
  const t0 = process.env.EBPF_FUZZ_PROFILE ? performance.now() : 0
  try {
    step()
    return undefined
  } catch (e) {
    if (!(e instanceof lib.EbpfError)) {
      throw new Error(
        `${what}: untyped ${e?.constructor?.name ?? typeof e}: ${e?.message ?? String(e)}\n${e?.stack ?? ''}`,
      )
    }
    if (!ALLOWED.has(e.code) || e.message.length < 10) throw new Error(`${what}: ${e.code} '${e.message}'`)
    return e.code
  } finally {
    if (t0 && performance.now() - t0 > 50) console.log(`slow: ${what} ${Math.round(performance.now() - t0)} ms`)
  }
}

function bounded(what, text) {
  if (typeof text !== 'string' || text.length > MAX_TEXT) throw new Error(`${what}: ${text?.length} characters`)
}

/** Every query, dump and codec of a parsed BTF. */
function everyBtfOperation(lib, b, codes) {
  const note = (code) => code && codes.push(code)
  note(typed(lib, 'raw dump', () => bounded('raw dump', b.dump({ format: 'raw' }))))
  note(typed(lib, 'C dump', () => bounded('C dump', b.dump({ format: 'c' }))))
  note(typed(lib, 'declarations', () => bounded('declarations', lib.btf.generateDeclarations(b))))
  // At most 200 types per input, spread over the ids.
  const step = Math.max(1, Math.floor(b.count / 200))
  for (let id = 0; id < b.count; id += step) {
    note(typed(lib, `sizeOf(${id})`, () => b.sizeOf(id)))
    note(typed(lib, `alignOf(${id})`, () => b.alignOf(id)))
    note(typed(lib, `resolve(${id})`, () => b.resolve(id)))
    note(typed(lib, `memberOffset(${id})`, () => b.memberOffset(id, 'a.b[1]')))
    note(typed(lib, `tsTypeOf(${id})`, () => bounded('tsTypeOf', lib.btf.tsTypeOf(b, id))))
    note(
      typed(lib, `codec(${id})`, () => {
        const c = lib.btf.codec(b, id)
        if (c.size <= 1 << 16) c.decode(new Uint8Array(c.size))
        if (c.size <= 1 << 16) c.encode({})
      }),
    )
  }
}

/** A BTF blob (or an ELF object holding one): parse, then everything a user can do with it. */
export function exerciseBtf(lib, bytes) {
  const codes = []
  let b
  const code = typed(lib, 'parse', () => {
    b = lib.btf.parse(bytes)
  })
  if (code) return { parsed: false, codes: [code] }
  everyBtfOperation(lib, b, codes)
  return { parsed: true, codes }
}

const sameBytes = (a, b) => a.length === b.length && a.every((x, i) => x === b[i])

/** Assembly text: an AssembleError, or bytes that print and read back unchanged in both dialects. */
export function exerciseAsm(lib, text) {
  let bytes
  try {
    bytes = lib.assemble(text)
  } catch (e) {
    if (!(e instanceof lib.AssembleError) || !['EINVAL', 'E2BIG'].includes(e.code) || e.message.length < 5) {
      throw new Error(`assemble: ${e?.constructor?.name}: ${e?.message}\n${e?.stack ?? ''}`)
    }
    return { parsed: false, codes: [e.code] }
  }
  for (const dialect of ['llvm', 'conformance']) {
    const printed = lib.disassemble(bytes, { dialect })
    const again = lib.assemble(printed)
    if (!sameBytes(again, bytes)) throw new Error(`${dialect} round trip changed the bytes:\n${printed}`)
  }
  return { parsed: true, codes: [] }
}

/** Bytes as bytecode: a FormatError for a partial slot, else text that reads back to the same bytes. */
export function exerciseDisasm(lib, bytes) {
  let printed
  const code = typed(lib, 'disassemble', () => {
    printed = lib.disassemble(bytes)
  })
  if (code) {
    if (bytes.length % 8 === 0) throw new Error(`disassemble refused ${bytes.length} bytes: ${code}`)
    return { parsed: false, codes: [code] }
  }
  if (bytes.length % 8 !== 0) throw new Error(`disassemble accepted ${bytes.length} bytes`)
  for (const dialect of ['llvm', 'conformance']) {
    const text = dialect === 'llvm' ? printed : lib.disassemble(bytes, { dialect })
    if (!sameBytes(lib.assemble(text), bytes)) throw new Error(`${dialect} text does not read back:\n${text}`)
  }
  return { parsed: true, codes: [] }
}

/**
 * An ELF object: its BTF as in the file and fixed up, the collection spec with and without a
 * kernel BTF for CO-RE (`coreTarget`), and what a user does with the spec: dump, declare, read
 * and write variables, decode map keys and values.
 */
export function exerciseElf(lib, bytes, coreTarget) {
  const codes = []
  const note = (code) => code && codes.push(code)
  note(
    typed(lib, 'btf.parse', () => {
      const b = lib.btf.parse(bytes)
      bounded('raw dump', b.dump({ format: 'raw' }))
      bounded('C dump', b.dump({ format: 'c' }))
    }),
  )
  note(
    typed(lib, 'btf.parse fixup', () =>
      bounded('raw dump', lib.btf.parse(bytes, { fixup: true }).dump({ format: 'raw' })),
    ),
  )
  note(
    typed(lib, 'CO-RE', () =>
      lib.loadCollectionSpecSync(bytes, { kernelTypes: coreTarget, kconfig: { LINUX_KERNEL_VERSION: 1 } }),
    ),
  )
  let parsed = false
  note(
    typed(lib, 'spec', () => {
      const spec = lib.loadCollectionSpecSync(bytes)
      parsed = true
      bounded('C dump', spec.types.dump({ format: 'c' }))
      bounded('declarations', spec.declarations())
      for (const v of spec.variables.values()) v.set(v.get())
      for (const m of spec.maps.values()) {
        for (const t of [m.key, m.value]) if (t) lib.btf.codec(spec.types, t.id).decode(new Uint8Array(1 << 16))
      }
    }),
  )
  return { parsed, codes }
}
