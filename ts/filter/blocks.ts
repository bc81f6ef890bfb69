/**
 * The control-flow graph the code generator builds and the classic BPF it becomes. A predicate is
 * a graph of blocks (statements, then a conditional jump) with two lists of loose exits, the
 * jumps taken when it is true and when it is false; `and`, `or` and `not` join predicates by
 * pointing exits at heads, as libpcap's code generator does. `finish` points the exits at
 * `ret #snaplen` and `ret #0`, simplifies, and lays the blocks out as classic BPF.
 *
 * The simplifications keep what every packet gets (including "an out-of-packet load rejects the
 * packet", which holds because a load is only removed where the same load already ran on every
 * path to it):
 * - jump threading: an edge into a block that reloads the value just tested and tests it again
 *   goes straight to the branch the first test decides (`ldh [12]; jeq #0x800` false, then
 *   `ldh [12]; jeq #0x800` again);
 * - statements that recompute what A, X or a scratch word already holds on every path are dropped.
 */
import type { ClassicInstruction } from '../cbpf/index.js'
import { LoadError } from '../errors.js'

/** A classic BPF statement (no jump): its opcode and constant. */
export interface Stmt {
  code: number
  k: number
}

export const OP = {
  LD_W: 0x20,
  LD_H: 0x28,
  LD_B: 0x30,
  LD_W_IND: 0x40,
  LD_H_IND: 0x48,
  LD_B_IND: 0x50,
  LD_LEN: 0x80,
  LD_IMM: 0x00,
  LD_MEM: 0x60,
  LDX_IMM: 0x01,
  LDX_MEM: 0x61,
  LDX_MSH: 0xb1,
  ST: 0x02,
  STX: 0x03,
  TAX: 0x07,
  TXA: 0x87,
  /** ALU with K (`| 0x08` for X): the operation in bits 4..7. */
  ALU: 0x04,
  NEG: 0x84,
  JA: 0x05,
  JEQ: 0x15,
  JGT: 0x25,
  JGE: 0x35,
  JSET: 0x45,
  /** `| X` on an ALU or jump opcode: the operand is X rather than K. */
  X: 0x08,
  RET: 0x06,
} as const

export const ALU_OPS: Record<string, number> = {
  '+': 0x00,
  '-': 0x10,
  '*': 0x20,
  '/': 0x30,
  '|': 0x40,
  '&': 0x50,
  '<<': 0x60,
  '>>': 0x70,
  '%': 0x90,
  '^': 0xa0,
}

let nextId = 0

export class Block {
  readonly id = nextId++
  /** Taken when the jump's condition holds / does not; both unset for a `ret` and set together otherwise. */
  jt: Block | undefined
  jf: Block | undefined
  constructor(
    public stmts: Stmt[],
    /** A conditional jump (JEQ, JGT, JGE, JSET, maybe `| X`), `JA` (target in `jt`) or `RET`. */
    public readonly jcode: number,
    public readonly k: number,
  ) {}
}

type Side = 'jt' | 'jf'
type Exit = [Block, Side]

/** A predicate: blocks with their true and false exits still loose, or a constant. */
export type Pred = { head: Block; t: Exit[]; f: Exit[] } | boolean

export function test(stmts: Stmt[], jcode: number, k: number): Pred {
  const b = new Block(stmts, jcode, k >>> 0)
  return { head: b, t: [[b, 'jt']], f: [[b, 'jf']] }
}

function patch(exits: Exit[], to: Block): void {
  for (const [b, side] of exits) b[side] = to
}

export function and(p: Pred, q: Pred): Pred {
  if (p === false) return false
  if (p === true) return q
  if (q === true) return p
  if (q === false) return { head: p.head, t: [], f: [...p.t, ...p.f] }
  patch(p.t, q.head)
  return { head: p.head, t: q.t, f: [...p.f, ...q.f] }
}

export function or(p: Pred, q: Pred): Pred {
  if (p === true) return true
  if (p === false) return q
  if (q === false) return p
  if (q === true) return { head: p.head, t: [...p.t, ...p.f], f: [] }
  patch(p.f, q.head)
  return { head: p.head, t: [...p.t, ...q.t], f: q.f }
}

export function not(p: Pred): Pred {
  if (typeof p === 'boolean') return !p
  return { head: p.head, t: p.f, f: p.t }
}

// ---------------------------------------------------------------- what A, X and M[] hold

/**
 * What is known on a path: symbolic contents of the registers (equal keys mean equal values on the
 * packet at hand), the loads done on every path here (which cannot fail again), and the outcomes of
 * the jumps taken on the way, by the key of the value they tested.
 */
interface State {
  a: string | undefined
  x: string | undefined
  m: Array<string | undefined>
  done: ReadonlySet<string>
  facts: ReadonlyMap<string, readonly Fact[]>
}

interface Fact {
  code: number
  k: number
  taken: boolean
}

const UNKNOWN = (): State => ({
  a: undefined,
  x: undefined,
  m: new Array<string | undefined>(16).fill(undefined),
  done: new Set(),
  facts: new Map(),
})

/** The key of the packet load `code`/`k` with X holding `x`; undefined for other statements. */
function loadKey(code: number, k: number, x: string | undefined): string | undefined {
  if ((code & 0x07) === 0x00 && (code & 0xe0) === 0x20) return `${code}[${k}]`
  if ((code & 0x07) === 0x00 && (code & 0xe0) === 0x40) return x === undefined ? undefined : `${code}[x=${x}+${k}]`
  if (code === OP.LDX_MSH) return `msh[${k}]`
  return undefined
}

function step(s: State, { code, k }: Stmt): State {
  const r: State = { ...s }
  const cls = code & 0x07
  const key = loadKey(code, k, s.x)
  if (key !== undefined && !s.done.has(key)) r.done = new Set(s.done).add(key)
  if (cls === 0x00) {
    const mode = code & 0xe0
    if (mode === 0x20 || mode === 0x40) r.a = key
    else if (mode === 0x80) r.a = 'len'
    else if (mode === 0x00) r.a = `#${k}`
    else if (mode === 0x60) r.a = s.m[k]
  } else if (cls === 0x01) {
    if (code === OP.LDX_IMM) r.x = `#${k}`
    else if (code === OP.LDX_MSH) r.x = key
    else if (code === OP.LDX_MEM) r.x = s.m[k]
    else r.x = 'len'
  } else if (cls === 0x02 || cls === 0x03) {
    r.m = [...s.m]
    r.m[k] = cls === 0x02 ? s.a : s.x
  } else if (cls === 0x04) {
    const operand = code & OP.X ? (s.x === undefined ? undefined : `x=${s.x}`) : `#${k}`
    r.a = s.a === undefined || operand === undefined ? undefined : `(${s.a})${code}${operand}`
  } else if (code === OP.TAX) r.x = s.a
  else if (code === OP.TXA) r.a = s.x
  return r
}

function run(s: State, stmts: readonly Stmt[]): State {
  return stmts.reduce(step, s)
}

function sameRegisters(p: State, q: State): boolean {
  return p.a === q.a && p.x === q.x && p.m.every((v, i) => v === q.m[i])
}

const factId = (f: Fact): string => `${f.code}:${f.k}:${f.taken}`

function meet(p: State, q: State): State {
  const facts = new Map<string, Fact[]>()
  for (const [key, fs] of p.facts) {
    const other = q.facts.get(key)
    if (other === undefined) continue
    const ids = new Set(other.map(factId))
    const both = fs.filter((f) => ids.has(factId(f)))
    if (both.length > 0) facts.set(key, both)
  }
  return {
    a: p.a === q.a ? p.a : undefined,
    x: p.x === q.x ? p.x : undefined,
    m: p.m.map((v, i) => (v === q.m[i] ? v : undefined)),
    done: new Set([...p.done].filter((d) => q.done.has(d))),
    facts,
  }
}

/** The state on the edge `side` of `b`, given the state at its exit: the jump's outcome is known there. */
function along(b: Block, side: Side, exit: State): State {
  if (!isCond(b) || (b.jcode & OP.X) !== 0 || exit.a === undefined) return exit
  const facts = new Map(exit.facts)
  facts.set(exit.a, [...(exit.facts.get(exit.a) ?? []), { code: b.jcode, k: b.k, taken: side === 'jt' }])
  return { ...exit, facts }
}

/** The blocks reachable from `root`, each after all its predecessors (the graph has no cycle). */
function topological(root: Block): Block[] {
  const preds = new Map<Block, number>()
  const seen = new Set<Block>([root])
  const stack = [root]
  while (stack.length > 0) {
    const b = stack.pop()!
    for (const s of successors(b)) {
      preds.set(s, (preds.get(s) ?? 0) + 1)
      if (!seen.has(s)) {
        seen.add(s)
        stack.push(s)
      }
    }
  }
  // Kahn's algorithm, lowest id first: blocks come out close to the order they were made in.
  const ready = [root]
  const out: Block[] = []
  while (ready.length > 0) {
    ready.sort((a, b) => b.id - a.id)
    const b = ready.pop()!
    out.push(b)
    for (const s of successors(b)) {
      const n = preds.get(s)! - 1
      preds.set(s, n)
      if (n === 0) ready.push(s)
    }
  }
  return out
}

function successors(b: Block): Block[] {
  if (b.jt === undefined) return []
  return b.jf === undefined || b.jf === b.jt ? [b.jt] : [b.jt, b.jf]
}

/** States at the entry of every block (the meet over the edges into it). */
function entryStates(order: Block[]): Map<Block, State> {
  const entry = new Map<Block, State>([[order[0]!, UNKNOWN()]])
  for (const b of order) {
    const out = run(entry.get(b)!, b.stmts)
    const sides: Side[] = b.jt === undefined ? [] : b.jf === undefined || b.jf === b.jt ? ['jt'] : ['jt', 'jf']
    for (const side of sides) {
      const s = b[side]!
      const edge = b.jf === b.jt ? out : along(b, side, out)
      const prev = entry.get(s)
      entry.set(s, prev === undefined ? edge : meet(prev, edge))
    }
  }
  return entry
}

const isCond = (b: Block): boolean => b.jcode !== OP.RET && b.jcode !== OP.JA

/**
 * The outcome of testing A with `code`/`k2` when the jump `fact`/`k` on the same value went to
 * `taken` (true: its jt); undefined when it does not follow.
 */
function decide(fact: number, k: number, taken: boolean, code: number, k2: number): boolean | undefined {
  if (fact === OP.JEQ && taken) {
    if (code === OP.JEQ) return k === k2
    if (code === OP.JGT) return k > k2
    if (code === OP.JGE) return k >= k2
    if (code === OP.JSET) return (k & k2) !== 0
  }
  if (fact === OP.JEQ && !taken && code === OP.JEQ && k === k2) return false
  if (fact === OP.JGT) {
    // taken: A > k; not: A <= k.
    if (taken && code === OP.JGT && k2 <= k) return true
    if (taken && code === OP.JGE && k2 <= k + 1) return true
    if (taken && code === OP.JEQ && k2 <= k) return false
    if (!taken && code === OP.JGT && k2 >= k) return false
    if (!taken && code === OP.JGE && k2 > k) return false
    if (!taken && code === OP.JEQ && k2 > k) return false
  }
  if (fact === OP.JGE) {
    if (taken && code === OP.JGE && k2 <= k) return true
    if (taken && code === OP.JGT && k2 < k) return true
    if (taken && code === OP.JEQ && k2 < k) return false
    if (!taken && code === OP.JGE && k2 >= k) return false
    if (!taken && code === OP.JGT && k2 + 1 >= k) return false
    if (!taken && code === OP.JEQ && k2 >= k) return false
  }
  if (fact === OP.JSET) {
    if (taken && code === OP.JSET && (k & ~k2) === 0) return true
    if (taken && code === OP.JEQ && k2 === 0) return false
    if (!taken && code === OP.JSET && (k2 & ~k) === 0) return false
    if (!taken && code === OP.JEQ && (k2 & k) !== 0) return false
  }
  return undefined
}

/**
 * Where an edge into `t`, with `edge` known on it, can go instead without changing the outcome;
 * undefined for nowhere else. `t` can be passed when what it computes is not needed after it: its
 * statements leave the registers as they were, or change only A from loads already done on every
 * path (they cannot fail) and the block it leads to loads A afresh.
 */
function thread(t: Block, edge: State): Block | undefined {
  if (!isCond(t)) return undefined
  const after = run(edge, t.stmts)
  const transparent = sameRegisters(after, edge)
  let to: Block | undefined
  if (t.jt === t.jf) to = t.jt
  else if ((t.jcode & OP.X) === 0 && after.a !== undefined) {
    for (const f of edge.facts.get(after.a) ?? []) {
      const outcome = decide(f.code, f.k, f.taken, t.jcode, t.k)
      if (outcome !== undefined) {
        to = outcome ? t.jt : t.jf
        break
      }
    }
  }
  if (to === undefined || transparent) return to
  const onlyA = after.x === edge.x && after.m.every((v, i) => v === edge.m[i]) && after.done.size === edge.done.size
  const reloads = to.jcode === OP.RET || (to.stmts.length > 0 && isALoad(to.stmts[0]!.code))
  return onlyA && reloads ? to : undefined
}

function simplify(root: Block): void {
  for (let round = 0; round < 64; round++) {
    const order = topological(root)
    const entry = entryStates(order)
    let changed = false
    for (const b of order) {
      if (!isCond(b)) continue
      const exit = run(entry.get(b)!, b.stmts)
      for (const side of ['jt', 'jf'] as const) {
        const edge = along(b, side, exit)
        let to = b[side]!
        for (let hops = 0; hops < 64; hops++) {
          const next = thread(to, edge)
          if (next === undefined) break
          to = next
          changed = true
        }
        b[side] = to
      }
    }
    if (!changed) break
  }
  const order = topological(root)
  const entry = entryStates(order)
  for (const b of order) b.stmts = withoutRecomputation(b.stmts, entry.get(b)!)
}

const isALoad = (code: number): boolean => (code & 0x07) === 0x00 || code === OP.TXA
const isAluK = (code: number): boolean => (code & 0x07) === 0x04 && (code & OP.X) === 0

/** The register or scratch word the first statement of `group` writes, as a key of `s`. */
function written(group: readonly Stmt[], s: State): string | undefined {
  const { code, k } = group[0]!
  const cls = code & 0x07
  if (isALoad(code)) return s.a
  if (cls === 0x01 || code === OP.TAX) return s.x
  if (cls === 0x02 || cls === 0x03) return s.m[k]
  return undefined
}

/**
 * `stmts` without the groups (a load of A and the ALU operations on it that follow, or one load of
 * X or one store) that leave A, X and M[] holding the known values they held before.
 */
function withoutRecomputation(stmts: readonly Stmt[], entry: State): Stmt[] {
  const out: Stmt[] = []
  let s = entry
  let i = 0
  while (i < stmts.length) {
    let j = i + 1
    if (isALoad(stmts[i]!.code)) while (j < stmts.length && isAluK(stmts[j]!.code)) j++
    const group = stmts.slice(i, j)
    const after = run(s, group)
    if (!(sameRegisters(after, s) && written(group, after) !== undefined)) out.push(...group)
    s = after
    i = j
  }
  return out
}

/** Classic BPF for `pred`: accepted packets return `snaplen`, the others 0. */
export function finish(pred: Pred, snaplen: number): ClassicInstruction[] {
  const accept = new Block([], OP.RET, snaplen)
  const reject = new Block([], OP.RET, 0)
  if (typeof pred === 'boolean') return [{ code: OP.RET, jt: 0, jf: 0, k: pred ? snaplen : 0 }]
  patch(pred.t, accept)
  patch(pred.f, reject)
  simplify(pred.head)
  return layout(merged(pred.head))
}

/**
 * The graph with identical blocks (same statements, same jump, same targets) made one, from the
 * returns up: the same code with the same continuation gives the same outcome on every path.
 */
function merged(root: Block): Block {
  const canonical = new Map<string, Block>()
  const replaced = new Map<Block, Block>()
  for (const b of topological(root).reverse()) {
    if (b.jt !== undefined) b.jt = replaced.get(b.jt) ?? b.jt
    if (b.jf !== undefined) b.jf = replaced.get(b.jf) ?? b.jf
    const key = `${b.stmts.map((s) => `${s.code}/${s.k}`).join(',')}|${b.jcode}/${b.k}|${b.jt?.id}|${b.jf?.id}`
    const same = canonical.get(key)
    if (same === undefined) canonical.set(key, b)
    else replaced.set(b, same)
  }
  return replaced.get(root) ?? root
}

/** Places the blocks and resolves jumps; a conditional jump farther than 255 goes through a `ja`. */
function layout(root: Block): ClassicInstruction[] {
  const order = topological(root)
  for (let round = 0; ; round++) {
    const at = new Map<Block, number>()
    let n = 0
    for (const b of order) {
      at.set(b, n)
      n += b.stmts.length + 1
    }
    let far: [number, Side] | undefined
    const out: ClassicInstruction[] = []
    order.forEach((b, i) => {
      for (const s of b.stmts) out.push({ code: s.code, jt: 0, jf: 0, k: s.k >>> 0 })
      const next = out.length + 1
      if (b.jcode === OP.RET) out.push({ code: OP.RET, jt: 0, jf: 0, k: b.k })
      else if (b.jcode === OP.JA) out.push({ code: OP.JA, jt: 0, jf: 0, k: at.get(b.jt!)! - next })
      else {
        const jt = at.get(b.jt!)! - next
        const jf = at.get(b.jf!)! - next
        if (far === undefined && jt > 255) far = [i, 'jt']
        else if (far === undefined && jf > 255) far = [i, 'jf']
        out.push({ code: b.jcode, jt: Math.min(jt, 255), jf: Math.min(jf, 255), k: b.k })
      }
    })
    if (far === undefined) return out
    if (round > 4096) throw new LoadError('E2BIG', 'the filter is too large to lay out as classic BPF')
    const [i, side] = far
    const b = order[i]!
    const hop = new Block([], OP.JA, 0)
    hop.jt = b[side]
    b[side] = hop
    order.splice(i + 1, 0, hop)
  }
}
