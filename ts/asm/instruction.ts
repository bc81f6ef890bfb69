/**
 * One instruction slot and its 8-byte little-endian encoding (RFC 9669, section 3):
 * opcode (8 bits), dst (low nibble) and src (high nibble) registers, a signed 16-bit offset and a
 * signed 32-bit immediate. `lddw` takes two slots: the second has opcode 0 and carries the high
 * half of the 64-bit immediate.
 */
import { describeValue } from '../arguments.js'
import { FormatError } from '../errors.js'

export interface Instruction {
  opcode: number
  /** 0-15 as stored; registers are r0-r10. */
  dst: number
  src: number
  /** Signed 16-bit. */
  off: number
  /** Signed 32-bit. */
  imm: number
}

/** Size of one slot in bytes. */
export const SLOT_SIZE = 8

/** Encodes slots into bytecode. Fields are truncated to their widths, as the hardware format has them. */
export function encodeInstructions(insns: readonly Instruction[]): Uint8Array {
  if (!Array.isArray(insns)) throw new FormatError(`instructions must be an array, got ${describeValue(insns)}`)
  for (let i = 0; i < insns.length; i++) {
    const insn: unknown = insns[i]
    if (insn === null || typeof insn !== 'object')
      throw new FormatError(`instructions[${i}] must be an instruction object, got ${describeValue(insn)}`)
    for (const f of ['opcode', 'dst', 'src', 'off', 'imm'] as const) {
      const v = (insn as Record<string, unknown>)[f]
      if (typeof v !== 'number' || !Number.isInteger(v))
        throw new FormatError(`instructions[${i}].${f} must be an integer, got ${describeValue(v)}`)
    }
  }
  const out = new Uint8Array(insns.length * SLOT_SIZE)
  const view = new DataView(out.buffer)
  insns.forEach((insn, i) => {
    const at = i * SLOT_SIZE
    view.setUint8(at, insn.opcode & 0xff)
    view.setUint8(at + 1, (insn.dst & 0x0f) | ((insn.src & 0x0f) << 4))
    view.setInt16(at + 2, (insn.off << 16) >> 16, true)
    view.setInt32(at + 4, insn.imm | 0, true)
  })
  return out
}

/** Splits bytecode into slots. A length that is not a multiple of 8 is a truncated program: EINVAL. */
export function decodeInstructions(bytes: Uint8Array): Instruction[] {
  if (!(bytes instanceof Uint8Array))
    throw new FormatError(`bytecode must be a Uint8Array, got ${describeValue(bytes)}`)
  if (bytes.length % SLOT_SIZE !== 0) {
    throw new FormatError(
      `bytecode length ${bytes.length} is not a multiple of 8: truncated instruction`,
      bytes.length - (bytes.length % SLOT_SIZE),
    )
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const insns: Instruction[] = []
  for (let at = 0; at < bytes.length; at += SLOT_SIZE) {
    const regs = view.getUint8(at + 1)
    insns.push({
      opcode: view.getUint8(at),
      dst: regs & 0x0f,
      src: regs >> 4,
      off: view.getInt16(at + 2, true),
      imm: view.getInt32(at + 4, true),
    })
  }
  return insns
}

/** The slot as one little-endian 64-bit word (what `.8byte` and the conformance suite's `-- raw` hold). */
export function slotWord(insn: Instruction): bigint {
  const bytes = encodeInstructions([insn])
  return new DataView(bytes.buffer).getBigUint64(0, true)
}

/** The inverse of `slotWord`. */
export function wordSlot(word: bigint): Instruction {
  const bytes = new Uint8Array(SLOT_SIZE)
  new DataView(bytes.buffer).setBigUint64(0, BigInt.asUintN(64, word), true)
  return decodeInstructions(bytes)[0]!
}
