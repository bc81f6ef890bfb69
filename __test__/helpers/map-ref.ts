/** Turns `lddw rX, 0` at slot `insn` into a map reference (src 5) to `maps[index]`, as a loader would. */
export function mapRef(bytecode: Uint8Array, insn: number, index: number): Uint8Array {
  const out = bytecode.slice()
  out[insn * 8 + 1] = (out[insn * 8 + 1]! & 0x0f) | (5 << 4)
  new DataView(out.buffer).setInt32(insn * 8 + 4, index, true)
  return out
}
