/**
 * `asm.Builder`: a typed, chainable instruction builder in the spirit of cilium/ebpf's `asm`
 * package. It produces exactly the bytes the text assembler produces for the same program.
 *
 * Naming: arithmetic is `<op>64` / `<op>32` (ALU64 / ALU class), conditional jumps are `<op>`
 * (64-bit compare) / `<op>32` (JMP32), loads and stores use the RFC size letters
 * (`ldxb/h/w/dw`, `ldxsb/sh/sw`, `stb...`, `stxb...`), atomics are `atomic64(op, ...)` /
 * `atomic32(op, ...)`. A second operand that is a `Register` (`asm.R0`..`asm.R10`) selects the
 * register form, a number the immediate form. Jump targets are label names (defined with
 * `label()`, before or after the jump) or slot offsets relative to the next instruction.
 *
 *   const p = new asm.Builder()
 *   p.mov64(asm.R0, 0).label('loop').add64(asm.R0, 1).jlt(asm.R0, 10, 'loop').exit()
 *   const bytes = p.assemble()
 */
import { describeValue } from '../arguments.js'
import { type ErrorCode, LoadError } from '../errors.js'
import * as E from './encode.js'
import { encodeInstructions, type Instruction } from './instruction.js'
import { Layout } from './layout.js'
import type { AluOp, AtomicOp, JumpOp, Size } from './opcodes.js'

/** A register operand. Use the constants `R0`..`R10`. */
export interface Register {
  readonly kind: 'register'
  readonly index: number
}

function reg(index: number): Register {
  return Object.freeze({ kind: 'register', index })
}

export const R0 = reg(0)
export const R1 = reg(1)
export const R2 = reg(2)
export const R3 = reg(3)
export const R4 = reg(4)
export const R5 = reg(5)
export const R6 = reg(6)
export const R7 = reg(7)
export const R8 = reg(8)
export const R9 = reg(9)
/** The read-only frame pointer. */
export const R10 = reg(10)
export const RFP = R10

/** The second operand of arithmetic and comparisons: a register or a 32-bit immediate. */
export type Source = Register | number
/** A label name, or a slot offset relative to the next instruction. */
export type JumpTarget = string | number

/** Operations of `atomic64` / `atomic32`. The `fetch_` forms, xchg and cmpxchg return the old value. */
export type AtomicOperation = AtomicOp | `fetch_${AtomicOp}` | 'xchg' | 'cmpxchg'

export class Builder {
  readonly #layout: Layout<number> = new Layout<number>((message): never => this.#fail(message, undefined, 'E2BIG'))

  // ---- plumbing ----------------------------------------------------------------------------

  #fail(message: string, insn = this.#layout.pc, code: ErrorCode = 'EINVAL'): never {
    throw new LoadError(code, `asm.Builder: ${message}`, insn)
  }

  #reg(r: Register, what: string): number {
    if (
      r === null ||
      typeof r !== 'object' ||
      r.kind !== 'register' ||
      !Number.isInteger(r.index) ||
      r.index < 0 ||
      r.index > 10
    ) {
      this.#fail(`${what} must be a register (asm.R0..asm.R10), got ${describeValue(r)}`)
    }
    return r.index
  }

  #int(v: unknown, min: number, max: number, what: string): number {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      this.#fail(`${what} must be an integer from ${min} to ${max}, got ${describeValue(v)}`)
    }
    return v
  }

  /** Immediates accept signed and unsigned 32-bit spellings (0xffffffff is -1). */
  #imm(v: unknown, what = 'immediate'): number {
    return this.#int(v, -0x80000000, 0xffffffff, what) | 0
  }

  #size(v: unknown): Size {
    if (v !== 'b' && v !== 'h' && v !== 'w' && v !== 'dw')
      this.#fail(`size must be 'b', 'h', 'w' or 'dw', got ${describeValue(v)}`)
    return v
  }

  #off(v: unknown): number {
    return this.#int(v, -0x8000, 0x7fff, 'offset')
  }

  #source(s: Source): E.Operand {
    return typeof s === 'number' ? { imm: this.#imm(s) } : { reg: this.#reg(s, 'source') }
  }

  #emitTo(insn: Instruction, field: 'off' | 'imm', target: JumpTarget): this {
    if (typeof target === 'string') {
      if (target.length === 0) this.#fail('label names must not be empty')
      this.#layout.refer(field, target, this.#layout.pc)
    } else if (field === 'off') {
      insn.off = this.#off(target)
    } else {
      insn.imm = this.#imm(target, 'jump offset')
    }
    this.#layout.emit(insn)
    return this
  }

  #emit(...insns: Instruction[]): this {
    this.#layout.emitAll(insns)
    return this
  }

  #alu(wide: boolean, op: AluOp, dst: Register, src: Source): this {
    return this.#emit(E.alu(wide, op, this.#reg(dst, 'dst'), this.#source(src)))
  }

  #jump(wide: boolean, op: JumpOp, dst: Register, src: Source, target: JumpTarget): this {
    return this.#emitTo(E.jump(wide, op, this.#reg(dst, 'dst'), this.#source(src), 0), 'off', target)
  }

  #ldx(size: Size, signed: boolean, dst: Register, src: Register, off: number): this {
    return this.#emit(E.ldx(size, this.#reg(dst, 'dst'), this.#reg(src, 'src'), this.#off(off), signed))
  }

  #st(size: Size, dst: Register, off: number, imm: number): this {
    return this.#emit(E.st(size, this.#reg(dst, 'dst'), this.#off(off), this.#imm(imm)))
  }

  #stx(size: Size, dst: Register, off: number, src: Register): this {
    return this.#emit(E.stx(size, this.#reg(dst, 'dst'), this.#off(off), this.#reg(src, 'src')))
  }

  // ---- labels and output -------------------------------------------------------------------

  /** Defines `name` at the next instruction. */
  label(name: string): this {
    if (typeof name !== 'string' || name.length === 0)
      this.#fail(`label names must be non-empty strings, got ${describeValue(name)}`)
    if (!this.#layout.define(name)) this.#fail(`duplicate label ${describeValue(name)}`)
    return this
  }

  /** Appends instruction slots as they are (e.g. from `decodeInstructions`). */
  raw(...insns: Instruction[]): this {
    const copies = insns.map((insn, i) => {
      const what = `raw instruction ${i}`
      if (insn === null || typeof insn !== 'object') this.#fail(`${what} must be an object, got ${describeValue(insn)}`)
      return {
        opcode: this.#int(insn.opcode, 0, 0xff, `${what}: opcode`),
        dst: this.#int(insn.dst, 0, 15, `${what}: dst`),
        src: this.#int(insn.src, 0, 15, `${what}: src`),
        off: this.#int(insn.off, -0x8000, 0x7fff, `${what}: off`),
        imm: this.#int(insn.imm, -0x80000000, 0x7fffffff, `${what}: imm`),
      }
    })
    return this.#emit(...copies)
  }

  /** Number of slots so far (`lddw` counts two). */
  get length(): number {
    return this.#layout.pc
  }

  /** The program's slots, labels resolved. */
  instructions(): Instruction[] {
    const copy = new Layout<number>((message) => this.#fail(message, this.#layout.pc, 'E2BIG'))
    copy.emitAll(this.#layout.insns.map((i) => ({ ...i })))
    for (const [k, v] of this.#layout.labels) copy.labels.set(k, v)
    for (const f of this.#layout.fixups) copy.fixups.push(f)
    return copy.resolve((insn, message) => this.#fail(message, insn))
  }

  /** The bytecode: 8-byte little-endian slots, as `Program` takes it. */
  assemble(): Uint8Array {
    return encodeInstructions(this.instructions())
  }

  // ---- 64-bit arithmetic (ALU64) -----------------------------------------------------------

  add64(dst: Register, src: Source): this {
    return this.#alu(true, 'add', dst, src)
  }
  sub64(dst: Register, src: Source): this {
    return this.#alu(true, 'sub', dst, src)
  }
  mul64(dst: Register, src: Source): this {
    return this.#alu(true, 'mul', dst, src)
  }
  /** Unsigned division; x / 0 = 0. */
  div64(dst: Register, src: Source): this {
    return this.#alu(true, 'div', dst, src)
  }
  /** Signed division (offset 1). */
  sdiv64(dst: Register, src: Source): this {
    return this.#alu(true, 'sdiv', dst, src)
  }
  mod64(dst: Register, src: Source): this {
    return this.#alu(true, 'mod', dst, src)
  }
  smod64(dst: Register, src: Source): this {
    return this.#alu(true, 'smod', dst, src)
  }
  or64(dst: Register, src: Source): this {
    return this.#alu(true, 'or', dst, src)
  }
  and64(dst: Register, src: Source): this {
    return this.#alu(true, 'and', dst, src)
  }
  xor64(dst: Register, src: Source): this {
    return this.#alu(true, 'xor', dst, src)
  }
  lsh64(dst: Register, src: Source): this {
    return this.#alu(true, 'lsh', dst, src)
  }
  rsh64(dst: Register, src: Source): this {
    return this.#alu(true, 'rsh', dst, src)
  }
  arsh64(dst: Register, src: Source): this {
    return this.#alu(true, 'arsh', dst, src)
  }
  mov64(dst: Register, src: Source): this {
    return this.#alu(true, 'mov', dst, src)
  }
  neg64(dst: Register): this {
    return this.#emit(E.neg(true, this.#reg(dst, 'dst')))
  }
  /** dst = sign extension of the low `bits` of src. */
  movsx64(dst: Register, src: Register, bits: 8 | 16 | 32): this {
    if (bits !== 8 && bits !== 16 && bits !== 32)
      this.#fail(`movsx64 takes 8, 16 or 32 bits, got ${describeValue(bits)}`)
    return this.#emit(E.movsx(true, this.#reg(dst, 'dst'), this.#reg(src, 'src'), bits))
  }

  // ---- 32-bit arithmetic (ALU; results are zero-extended) ---------------------------------

  add32(dst: Register, src: Source): this {
    return this.#alu(false, 'add', dst, src)
  }
  sub32(dst: Register, src: Source): this {
    return this.#alu(false, 'sub', dst, src)
  }
  mul32(dst: Register, src: Source): this {
    return this.#alu(false, 'mul', dst, src)
  }
  div32(dst: Register, src: Source): this {
    return this.#alu(false, 'div', dst, src)
  }
  sdiv32(dst: Register, src: Source): this {
    return this.#alu(false, 'sdiv', dst, src)
  }
  mod32(dst: Register, src: Source): this {
    return this.#alu(false, 'mod', dst, src)
  }
  smod32(dst: Register, src: Source): this {
    return this.#alu(false, 'smod', dst, src)
  }
  or32(dst: Register, src: Source): this {
    return this.#alu(false, 'or', dst, src)
  }
  and32(dst: Register, src: Source): this {
    return this.#alu(false, 'and', dst, src)
  }
  xor32(dst: Register, src: Source): this {
    return this.#alu(false, 'xor', dst, src)
  }
  lsh32(dst: Register, src: Source): this {
    return this.#alu(false, 'lsh', dst, src)
  }
  rsh32(dst: Register, src: Source): this {
    return this.#alu(false, 'rsh', dst, src)
  }
  arsh32(dst: Register, src: Source): this {
    return this.#alu(false, 'arsh', dst, src)
  }
  mov32(dst: Register, src: Source): this {
    return this.#alu(false, 'mov', dst, src)
  }
  neg32(dst: Register): this {
    return this.#emit(E.neg(false, this.#reg(dst, 'dst')))
  }
  movsx32(dst: Register, src: Register, bits: 8 | 16): this {
    if (bits !== 8 && bits !== 16) this.#fail(`movsx32 takes 8 or 16 bits, got ${describeValue(bits)}`)
    return this.#emit(E.movsx(false, this.#reg(dst, 'dst'), this.#reg(src, 'src'), bits))
  }

  // ---- byte order --------------------------------------------------------------------------

  #endian(op: 'le' | 'be' | 'bswap', dst: Register, bits: 16 | 32 | 64): this {
    if (bits !== 16 && bits !== 32 && bits !== 64)
      this.#fail(`${op} takes 16, 32 or 64 bits, got ${describeValue(bits)}`)
    return this.#emit(E.endian(op, this.#reg(dst, 'dst'), bits))
  }
  /** Host (little-endian) to little-endian: truncates to `bits`. */
  le(dst: Register, bits: 16 | 32 | 64): this {
    return this.#endian('le', dst, bits)
  }
  /** Host to big-endian: swaps the low `bits` and truncates. */
  be(dst: Register, bits: 16 | 32 | 64): this {
    return this.#endian('be', dst, bits)
  }
  /** Unconditional byte swap of the low `bits` (ALU64 class). */
  bswap(dst: Register, bits: 16 | 32 | 64): this {
    return this.#endian('bswap', dst, bits)
  }

  // ---- loads and stores --------------------------------------------------------------------

  /** dst = 64-bit constant (two slots). */
  lddw(dst: Register, value: bigint | number): this {
    let v: bigint
    if (typeof value === 'bigint') v = value
    else if (typeof value === 'number' && Number.isSafeInteger(value)) v = BigInt(value)
    else this.#fail(`lddw takes a bigint or a safe integer, got ${describeValue(value)}`)
    if (v < -(2n ** 63n) || v > 2n ** 64n - 1n) this.#fail(`lddw value ${v} does not fit in 64 bits`)
    return this.#emit(...E.lddw(this.#reg(dst, 'dst'), v))
  }
  ldxb(dst: Register, src: Register, off = 0): this {
    return this.#ldx('b', false, dst, src, off)
  }
  ldxh(dst: Register, src: Register, off = 0): this {
    return this.#ldx('h', false, dst, src, off)
  }
  ldxw(dst: Register, src: Register, off = 0): this {
    return this.#ldx('w', false, dst, src, off)
  }
  ldxdw(dst: Register, src: Register, off = 0): this {
    return this.#ldx('dw', false, dst, src, off)
  }
  /** Sign-extending loads (MEMSX). */
  ldxsb(dst: Register, src: Register, off = 0): this {
    return this.#ldx('b', true, dst, src, off)
  }
  ldxsh(dst: Register, src: Register, off = 0): this {
    return this.#ldx('h', true, dst, src, off)
  }
  ldxsw(dst: Register, src: Register, off = 0): this {
    return this.#ldx('w', true, dst, src, off)
  }
  /** *(u8 *)(dst + off) = imm */
  stb(dst: Register, off: number, imm: number): this {
    return this.#st('b', dst, off, imm)
  }
  sth(dst: Register, off: number, imm: number): this {
    return this.#st('h', dst, off, imm)
  }
  stw(dst: Register, off: number, imm: number): this {
    return this.#st('w', dst, off, imm)
  }
  stdw(dst: Register, off: number, imm: number): this {
    return this.#st('dw', dst, off, imm)
  }
  /** *(u8 *)(dst + off) = src */
  stxb(dst: Register, off: number, src: Register): this {
    return this.#stx('b', dst, off, src)
  }
  stxh(dst: Register, off: number, src: Register): this {
    return this.#stx('h', dst, off, src)
  }
  stxw(dst: Register, off: number, src: Register): this {
    return this.#stx('w', dst, off, src)
  }
  stxdw(dst: Register, off: number, src: Register): this {
    return this.#stx('dw', dst, off, src)
  }

  #atomic(wide: boolean, op: AtomicOperation, dst: Register, off: number, src: Register): this {
    const m = typeof op === 'string' ? /^(fetch_)?(add|or|and|xor)$/.exec(op) : null
    if (m === null && op !== 'xchg' && op !== 'cmpxchg') this.#fail(`unknown atomic operation ${describeValue(op)}`)
    const base = m ? (m[2] as AtomicOp) : (op as 'xchg' | 'cmpxchg')
    return this.#emit(
      E.atomic(wide, base, m ? m[1] !== undefined : true, this.#reg(dst, 'dst'), this.#off(off), this.#reg(src, 'src')),
    )
  }
  /**
   * Atomic read-modify-write of the 64-bit word at dst + off with src. `fetch_*` and `xchg` put
   * the old value in src; `cmpxchg` compares with r0 and puts the old value in r0.
   */
  atomic64(op: AtomicOperation, dst: Register, off: number, src: Register): this {
    return this.#atomic(true, op, dst, off, src)
  }
  /** The same on the 32-bit word at dst + off. */
  atomic32(op: AtomicOperation, dst: Register, off: number, src: Register): this {
    return this.#atomic(false, op, dst, off, src)
  }

  /**
   * dst = load_acquire((size *)(src + off)): a zero-extending load that later accesses cannot
   * move before (cpu v4; the kernel accepts it since 6.15).
   */
  loadAcquire(size: Size, dst: Register, src: Register, off = 0): this {
    return this.#emit(E.loadAcquire(this.#size(size), this.#reg(dst, 'dst'), this.#reg(src, 'src'), this.#off(off)))
  }
  /** store_release((size *)(dst + off), src): a store that earlier accesses cannot move after. */
  storeRelease(size: Size, dst: Register, off: number, src: Register): this {
    return this.#emit(E.storeRelease(this.#size(size), this.#reg(dst, 'dst'), this.#off(off), this.#reg(src, 'src')))
  }

  /** Legacy packet loads: r0 = packet[imm] (LD_ABS) and r0 = packet[src + imm] (LD_IND). */
  ldabsb(imm: number): this {
    return this.#emit(E.ldabs('b', this.#imm(imm)))
  }
  ldabsh(imm: number): this {
    return this.#emit(E.ldabs('h', this.#imm(imm)))
  }
  ldabsw(imm: number): this {
    return this.#emit(E.ldabs('w', this.#imm(imm)))
  }
  ldindb(src: Register, imm: number): this {
    return this.#emit(E.ldind('b', this.#reg(src, 'src'), this.#imm(imm)))
  }
  ldindh(src: Register, imm: number): this {
    return this.#emit(E.ldind('h', this.#reg(src, 'src'), this.#imm(imm)))
  }
  ldindw(src: Register, imm: number): this {
    return this.#emit(E.ldind('w', this.#reg(src, 'src'), this.#imm(imm)))
  }

  // ---- jumps (64-bit compares) ---------------------------------------------------------------

  jeq(dst: Register, src: Source, target: JumpTarget): this {
    return this.#jump(true, 'jeq', dst, src, target)
  }
  jne(dst: Register, src: Source, target: JumpTarget): this {
    return this.#jump(true, 'jne', dst, src, target)
  }
  jgt(dst: Register, src: Source, target: JumpTarget): this {
    return this.#jump(true, 'jgt', dst, src, target)
  }
  jge(dst: Register, src: Source, target: JumpTarget): this {
    return this.#jump(true, 'jge', dst, src, target)
  }
  jlt(dst: Register, src: Source, target: JumpTarget): this {
    return this.#jump(true, 'jlt', dst, src, target)
  }
  jle(dst: Register, src: Source, target: JumpTarget): this {
    return this.#jump(true, 'jle', dst, src, target)
  }
  jsgt(dst: Register, src: Source, target: JumpTarget): this {
    return this.#jump(true, 'jsgt', dst, src, target)
  }
  jsge(dst: Register, src: Source, target: JumpTarget): this {
    return this.#jump(true, 'jsge', dst, src, target)
  }
  jslt(dst: Register, src: Source, target: JumpTarget): this {
    return this.#jump(true, 'jslt', dst, src, target)
  }
  jsle(dst: Register, src: Source, target: JumpTarget): this {
    return this.#jump(true, 'jsle', dst, src, target)
  }
  /** Jumps if dst & src is non-zero. */
  jset(dst: Register, src: Source, target: JumpTarget): this {
    return this.#jump(true, 'jset', dst, src, target)
  }

  // ---- jumps (32-bit compares, JMP32) --------------------------------------------------------

  jeq32(dst: Register, src: Source, target: JumpTarget): this {
    return this.#jump(false, 'jeq', dst, src, target)
  }
  jne32(dst: Register, src: Source, target: JumpTarget): this {
    return this.#jump(false, 'jne', dst, src, target)
  }
  jgt32(dst: Register, src: Source, target: JumpTarget): this {
    return this.#jump(false, 'jgt', dst, src, target)
  }
  jge32(dst: Register, src: Source, target: JumpTarget): this {
    return this.#jump(false, 'jge', dst, src, target)
  }
  jlt32(dst: Register, src: Source, target: JumpTarget): this {
    return this.#jump(false, 'jlt', dst, src, target)
  }
  jle32(dst: Register, src: Source, target: JumpTarget): this {
    return this.#jump(false, 'jle', dst, src, target)
  }
  jsgt32(dst: Register, src: Source, target: JumpTarget): this {
    return this.#jump(false, 'jsgt', dst, src, target)
  }
  jsge32(dst: Register, src: Source, target: JumpTarget): this {
    return this.#jump(false, 'jsge', dst, src, target)
  }
  jslt32(dst: Register, src: Source, target: JumpTarget): this {
    return this.#jump(false, 'jslt', dst, src, target)
  }
  jsle32(dst: Register, src: Source, target: JumpTarget): this {
    return this.#jump(false, 'jsle', dst, src, target)
  }
  jset32(dst: Register, src: Source, target: JumpTarget): this {
    return this.#jump(false, 'jset', dst, src, target)
  }

  // ---- unconditional control flow ------------------------------------------------------------

  /** `goto`: 16-bit offset. */
  ja(target: JumpTarget): this {
    return this.#emitTo(E.ja(0), 'off', target)
  }
  /** `gotol`: 32-bit offset in the immediate. */
  ja32(target: JumpTarget): this {
    return this.#emitTo(E.ja32(0), 'imm', target)
  }
  /** Calls helper `id` (kernel numbering, e.g. 1 = bpf_map_lookup_elem). */
  call(id: number): this {
    return this.#emit(E.call(this.#int(id, 0, 0xffffffff, 'helper id') | 0))
  }
  /** bpf-to-bpf call of the function at `target`. */
  callLocal(target: JumpTarget): this {
    return this.#emitTo(E.callLocal(0), 'imm', target)
  }
  /** Calls the helper whose id is in `reg`. */
  callx(reg: Register): this {
    return this.#emit(E.callx(this.#reg(reg, 'callx register')))
  }
  /** Calls kernel function (BTF id) `id`; the engine refuses these (ENOTSUPP). */
  callKfunc(id: number): this {
    return this.#emit(E.callKfunc(this.#imm(id, 'kfunc id')))
  }
  exit(): this {
    return this.#emit(E.exit())
  }
}
