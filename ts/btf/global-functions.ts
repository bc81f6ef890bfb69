/**
 * The global functions of a program and what the verifier takes their arguments to be, read from
 * BTF as the kernel reads them (`btf_prepare_func_args`, Linux 6.18): the kernel verifies a global
 * (BTF `FUNC` linkage global) function once, on its own, from its prototype, and checks each call's
 * arguments against that prototype; static functions are verified in the context of each call.
 *
 * A global function returns an integer or enum (6.18 refuses any other, `void` included). Per
 * argument, after typedefs and qualifiers: an integer or enum is any scalar; a pointer to the
 * program type's context struct (or tagged `arg:ctx`) is the context; any other pointer is memory
 * of the pointed-to type's size that may be NULL (`arg:nonnull` says it may not). Other shapes
 * (a struct passed by value, a pointer to void, the tags this runtime has no types for) give the
 * kernel's message instead, which refuses the program where the function is called.
 */

import type { Btf } from './btf.js'
import type { BtfType } from './types.js'

/** One argument of a global function, as the verifier types it. */
export interface GlobalFunctionArg {
  /** `scalar`: any number; `ctx`: the context pointer; `mem`/`mem_or_null`: `size` bytes of memory. */
  kind: 'scalar' | 'ctx' | 'mem' | 'mem_or_null'
  size?: number
}

/** A global function of a program (`ProgramOptions.globalFunctions`). */
export interface GlobalFunction {
  /** Its first instruction in the program's `instructions`. */
  insn: number
  name: string
  args: GlobalFunctionArg[]
  /** The kernel's message when it cannot use the prototype (the program is then refused). */
  unsupported?: string
}

/** A function of a program and its BTF `FUNC` type (what `ProgramSpec.funcInfo` holds). */
export interface FunctionEntry {
  /** Its first instruction in the program's `instructions`. */
  insn: number
  /** Its BTF `FUNC` type id. */
  typeId: number
}

/** BTF `FUNC` linkage of a global function. */
const BTF_FUNC_GLOBAL = 1
/** `MAX_BPF_FUNC_REG_ARGS` */
const MAX_ARGS = 5

/**
 * The context struct names of each program type (libbpf's names, `ProgramSpec.type`): the kernel's
 * `bpf_ctx_convert` user type and the kernel type it is a projection of (`btf_is_projection_of`).
 * Types without a struct context (tracepoint's is a u64) have none: only `arg:ctx` makes one.
 */
const CONTEXT_STRUCTS: Record<string, readonly string[]> = {
  socket_filter: ['__sk_buff', 'sk_buff'],
  sched_cls: ['__sk_buff', 'sk_buff'],
  sched_act: ['__sk_buff', 'sk_buff'],
  cgroup_skb: ['__sk_buff', 'sk_buff'],
  xdp: ['xdp_md', 'xdp_buff'],
  // bpf_user_pt_regs_t is a typedef of struct pt_regs on x86-64.
  kprobe: ['pt_regs'],
  perf_event: ['bpf_perf_event_data'],
  raw_tracepoint: ['bpf_raw_tracepoint_args'],
}

/** A DECL_TAG `arg:<tag>` on a parameter, by parameter index. */
function argTags(btf: Btf, funcId: number): Map<number, string[]> {
  const tags = new Map<number, string[]>()
  for (const t of btf.types) {
    if (t.kind !== 'DECL_TAG' || t.type !== funcId || !t.name.startsWith('arg:')) continue
    const i = t.componentIdx ?? -1
    if (i < 0) continue
    tags.set(i, [...(tags.get(i) ?? []), t.name.slice(4)])
  }
  return tags
}

const MODIFIERS = new Set(['TYPEDEF', 'CONST', 'VOLATILE', 'RESTRICT', 'TYPE_TAG'])

/** `btf_type_str`: the kind as the kernel prints it (void is UNKNOWN). */
function kindName(t: BtfType): string {
  return t.kind === 'VOID' ? 'UNKNOWN' : t.kind
}

/** `btf_is_prog_ctx_type`: whether pointer `ptr` points to the context struct of `progType`. */
function isContextPointer(btf: Btf, ptr: BtfType, progType: string): boolean {
  const names = CONTEXT_STRUCTS[progType]
  if (names === undefined) return false
  let t = btf.typeById(ptr.type!)
  if (progType === 'kprobe') {
    // The typedef bpf_user_pt_regs_t is checked before typedefs are skipped.
    while (MODIFIERS.has(t.kind) && t.kind !== 'TYPEDEF') t = btf.typeById(t.type!)
    if (t.kind === 'TYPEDEF' && t.name === 'bpf_user_pt_regs_t') return true
  }
  t = btf.resolve(t.id)
  return t.kind === 'STRUCT' && names.includes(t.name)
}

/** One argument's type, or the kernel's message for it. */
function argOf(
  btf: Btf,
  typeId: number,
  i: number,
  tags: string[],
  fn: string,
  progType: string,
): GlobalFunctionArg | string {
  const known = ['ctx', 'nonnull', 'nullable', 'trusted', 'untrusted', 'arena']
  if (tags.some((tag) => !known.includes(tag))) return `arg#${i} has unsupported set of tags`
  const t = btf.resolve(typeId)
  if (t.kind !== 'PTR') {
    if (tags.length > 0) return `arg#${i} has pointer tag, but is not a pointer type`
    if (t.kind === 'INT' || t.kind === 'ENUM' || t.kind === 'ENUM64') return { kind: 'scalar' }
    return `Arg#${i} type ${kindName(t)} in ${fn}() is not supported yet.`
  }
  if (tags.includes('ctx') || isContextPointer(btf, t, progType)) {
    if (tags.some((tag) => tag !== 'ctx')) return `arg#${i} has invalid combination of tags`
    return { kind: 'ctx' }
  }
  const other = tags.find((tag) => tag === 'trusted' || tag === 'untrusted' || tag === 'arena')
  if (other !== undefined)
    return `arg#${i} tagged arg:${other}: kernel object pointers are not supported by this verifier`
  if (tags.includes('nullable')) return `arg#${i} has invalid combination of tags`
  const pointee = btf.resolve(t.type!)
  let size: number
  try {
    size = btf.sizeOf(pointee.id)
  } catch {
    return `arg#${i} reference type('${kindName(pointee)} ${pointee.id === 0 ? '' : pointee.name}') size cannot be determined: -22`
  }
  return { kind: tags.includes('nonnull') ? 'mem' : 'mem_or_null', size }
}

/**
 * The global functions among `funcInfo` (the program's own function, at instruction 0, is never
 * one), with their arguments as a program of libbpf type `progType` sees them.
 */
export function globalFunctionsOf(btf: Btf, funcInfo: readonly FunctionEntry[], progType: string): GlobalFunction[] {
  const out: GlobalFunction[] = []
  for (const f of funcInfo) {
    const func = btf.typeById(f.typeId)
    if (f.insn === 0 || func.kind !== 'FUNC' || func.linkage !== BTF_FUNC_GLOBAL) continue
    const proto = btf.typeById(func.type!)
    const g: GlobalFunction = { insn: f.insn, name: func.name, args: [] }
    out.push(g)
    if (proto.kind !== 'FUNC_PROTO') {
      g.unsupported = `Invalid type of function ${func.name}()`
      continue
    }
    const params = proto.params ?? []
    if (params.length > MAX_ARGS) {
      g.unsupported = `Global function ${func.name}() with ${params.length} > ${MAX_ARGS} args. Buggy compiler.`
      continue
    }
    const ret = btf.resolve(proto.type!)
    if (ret.kind !== 'INT' && ret.kind !== 'ENUM' && ret.kind !== 'ENUM64') {
      g.unsupported = `Global function ${func.name}() doesn't return scalar. Only those are supported.`
      continue
    }
    const tags = argTags(btf, func.id)
    for (const [i, p] of params.entries()) {
      const arg = argOf(btf, p.type, i, tags.get(i) ?? [], func.name, progType)
      if (typeof arg === 'string') {
        g.unsupported = arg
        g.args = []
        break
      }
      g.args.push(arg)
    }
  }
  return out
}
