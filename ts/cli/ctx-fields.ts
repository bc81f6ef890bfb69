/**
 * `--ctx 'field=value,...'`: a context given by the field names of `struct __sk_buff` / `struct
 * xdp_md` (the library's `ContextValue`), so that a user need not lay out the bytes. Values are
 * numbers (decimal or 0x hex), `cb=[a,b,c,d,e]`, and bigints for tc's u64 time stamps. Which names
 * a type has is checked by the library when the context is encoded. For tracing programs (kprobe,
 * tracepoint, raw tracepoint) the names are those of the context's struct in the object's BTF.
 */
import { readFileSync } from 'node:fs'
import { btf, type CollectionSpec, type ContextValue, EbpfError } from '../index.js'
import { UsageError } from './args.js'
import { parseValue } from './object-options.js'

type Btf = btf.Btf
type BtfType = btf.BtfType

/** `a=1,cb=[1,2,3,4,5],b=0x10` split at the commas outside brackets. */
function splitTopLevel(text: string): string[] {
  const parts: string[] = []
  let depth = 0
  let start = 0
  for (let i = 0; i < text.length; i++) {
    const c = text[i]
    if (c === '[') depth++
    else if (c === ']') depth--
    else if (c === ',' && depth === 0) {
      parts.push(text.slice(start, i))
      start = i + 1
    }
  }
  parts.push(text.slice(start))
  return parts.map((p) => p.trim()).filter((p) => p !== '')
}

/** The context object `--ctx` describes; tstamp/hwtstamp become bigints (the library wants them so). */
export function parseContextFields(text: string, command: string): ContextValue {
  const out: Record<string, unknown> = {}
  for (const part of splitTopLevel(text)) {
    const eq = part.indexOf('=')
    if (eq <= 0) throw new UsageError(`--ctx takes FIELD=VALUE,... (e.g. mark=1,ifindex=2), got '${part}'`, command)
    const name = part.slice(0, eq).trim()
    const raw = part.slice(eq + 1).trim()
    if (name in out) throw new UsageError(`--ctx names field '${name}' twice`, command)
    // [a,b,...] element by element, so that each may be hex (0x...) as a lone value may.
    const value = /^\[.*\]$/s.test(raw)
      ? raw
          .slice(1, -1)
          .split(',')
          .map((x) => x.trim())
          .filter((x) => x !== '')
          .map((x) => parseValue(x))
      : parseValue(raw)
    if (name === 'tstamp' || name === 'hwtstamp') {
      if (typeof value !== 'number' && typeof value !== 'bigint')
        throw new UsageError(`--ctx ${name} must be an integer, got '${raw}'`, command)
      out[name] = BigInt(value)
    } else if (name === 'cb') {
      if (!Array.isArray(value) || value.some((v) => typeof v !== 'number'))
        throw new UsageError(`--ctx cb must be five numbers as [a,b,c,d,e], got '${raw}'`, command)
      out[name] = value
    } else {
      if (typeof value !== 'number' && typeof value !== 'bigint' && !Array.isArray(value))
        throw new UsageError(`--ctx ${name} must be an integer, got '${raw}'`, command)
      out[name] = value
    }
  }
  return out as ContextValue
}

/** x86-64 `struct pt_regs`: the kernel's member names and the UAPI header's (`<asm/ptrace.h>`), either way. */
const PT_REGS_ALIASES: Record<string, string> = {
  bp: 'rbp',
  bx: 'rbx',
  ax: 'rax',
  cx: 'rcx',
  dx: 'rdx',
  si: 'rsi',
  di: 'rdi',
  orig_ax: 'orig_rax',
  ip: 'rip',
  flags: 'eflags',
  sp: 'rsp',
}
for (const [k, u] of Object.entries(PT_REGS_ALIASES)) PT_REGS_ALIASES[u] = k

/** The struct a program's first argument points to, from the object's BTF (`int prog(struct X *ctx)`). */
function contextStruct(types: Btf, program: string): BtfType | undefined {
  const func = types.typesByName(program, 'FUNC')[0]
  if (!func?.type) return undefined
  const proto = types.typeById(func.type)
  const param = proto.params?.[0]
  if (!param) return undefined
  const ptr = types.resolve(param.type)
  if (ptr.kind !== 'PTR' || !ptr.type) return undefined
  const target = types.resolve(ptr.type)
  return target.kind === 'STRUCT' && (target.members?.length ?? 0) > 0 ? target : undefined
}

/** The running kernel's BTF (for `struct pt_regs` when the object has none), or undefined. */
function kernelBtf(): Btf | undefined {
  try {
    return btf.parse(readFileSync('/sys/kernel/btf/vmlinux'))
  } catch {
    return undefined
  }
}

/**
 * `--ctx` for the program types without a fixed context (kprobe, tracepoint, raw tracepoint...):
 * the bytes of the struct the program's context argument points to, by the BTF names of its
 * members (a kprobe's `struct pt_regs`: di, si, dx... or rdi, rsi, rdx...; a tracepoint's record
 * fields), members not named are zero. A kprobe whose context is `void *` takes the running
 * kernel's `struct pt_regs`; a raw tracepoint takes `args=[a,b,...]` (u64 each).
 */
export function btfContextBytes(
  spec: CollectionSpec,
  program: string,
  type: string,
  fields: ContextValue,
  command: string,
): Uint8Array {
  const given = fields as Record<string, unknown>
  if (type === 'raw_tracepoint') {
    const names = Object.keys(given)
    if (names.length !== 1 || names[0] !== 'args' || !Array.isArray(given.args)) {
      throw new UsageError(
        "--ctx of a raw tracepoint is args=[a,b,...] (u64 each, the tracepoint's arguments)",
        command,
      )
    }
    const args = given.args as unknown[]
    const out = new Uint8Array(8 * args.length)
    const view = new DataView(out.buffer)
    args.forEach((a, i) => {
      if (typeof a !== 'number' && typeof a !== 'bigint')
        throw new UsageError(`--ctx args[${i}] must be an integer`, command)
      view.setBigUint64(8 * i, BigInt.asUintN(64, BigInt(a)), true)
    })
    return out
  }
  let types: Btf = spec.types
  let struct = contextStruct(types, program)
  if (!struct && type === 'kprobe') {
    const kernel = kernelBtf()
    const regs = kernel?.typeByName('pt_regs', 'STRUCT')
    if (kernel && regs) {
      types = kernel
      struct = regs
    }
  }
  if (!struct) {
    throw new UsageError(
      `--ctx FIELD=VALUE needs the type of program '${program}'s context from BTF (int ${program}(struct X *ctx)); ` +
        'it has none: give the bytes with --ctx-hex or --ctx-in',
      command,
    )
  }
  const members = new Map((struct.members ?? []).filter((m) => m.name !== '').map((m) => [m.name, m]))
  const value: Record<string, unknown> = {}
  for (const [name, v] of Object.entries(given)) {
    const alias = struct.name === 'pt_regs' ? PT_REGS_ALIASES[name] : undefined
    const member = members.get(name) ?? (alias === undefined ? undefined : members.get(alias))
    if (!member) {
      throw new UsageError(
        `--ctx: struct ${struct.name} has no member '${name}'; it has: ${[...members.keys()].join(', ')}`,
        command,
      )
    }
    // Integers wider than 32 bits take bigints in the codec; the command line gives numbers.
    const size = types.resolve(member.type).kind === 'INT' ? types.sizeOf(member.type) : 0
    value[member.name] = typeof v === 'number' && size > 4 ? BigInt(v) : v
  }
  try {
    return btf.codec(types, struct.id).encode(value)
  } catch (e) {
    if (e instanceof EbpfError) throw new UsageError(`--ctx: ${e.message}`, command)
    throw e
  }
}
