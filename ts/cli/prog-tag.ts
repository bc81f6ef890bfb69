/**
 * The program tag the kernel gives a program at load (`bpftool prog show`'s `tag`, and the middle
 * of its JIT symbol `bpf_prog_TAG_NAME`): the first 8 bytes of the SHA-256 of its instructions as
 * the loader hands them over, with the map references made stable first. A loader writes a map's
 * file descriptor (and a map value's offset) into an `lddw` and marks it in the source register
 * (1 a map, 2 a map value); the kernel zeroes both immediates of such an `lddw` before hashing,
 * so the tag depends only on which kind of reference each one is.
 */
import { createHash } from 'node:crypto'
import type { ProgramSpec } from '../index.js'

const PSEUDO_MAP_FD = 1
const PSEUDO_MAP_VALUE = 2

/** The tag as 16 hex digits. */
export function programTag(prog: ProgramSpec): string {
  const insns = new Uint8Array(prog.instructions)
  const view = new DataView(insns.buffer)
  for (const r of prog.relocations) {
    const at = r.insn * 8
    if (insns[at] !== 0x18 || at + 16 > insns.length) continue
    const src = r.kind === 'map_value' ? PSEUDO_MAP_VALUE : PSEUDO_MAP_FD
    insns[at + 1] = (insns[at + 1]! & 0x0f) | (src << 4)
    view.setInt32(at + 4, 0, true)
    view.setInt32(at + 12, 0, true)
  }
  return createHash('sha256').update(insns).digest('hex').slice(0, 16)
}
