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

/** The program's instructions with every map reference's immediates zeroed (see above). */
function stableInstructions(prog: ProgramSpec): Uint8Array {
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
  return insns
}

const tagOf = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex').slice(0, 16)

/** The tag as 16 hex digits. */
export function programTag(prog: ProgramSpec): string {
  return tagOf(stableInstructions(prog))
}

const OP_CALL = 0x85
const PSEUDO_CALL = 1

/**
 * The tag of each function of the program (`starts`: the first slot of each, ascending, the main
 * function's 0 first), as the kernel names the image of each in its symbols
 * (`bpf_prog_TAG_NAME`): the main function's is the program's tag; a subprogram's is taken when
 * the kernel compiles the functions one by one, over the function's own instructions with each
 * bpf-to-bpf call holding the index of the function it calls in `off` and 1 in `imm` (seen on
 * Linux 6.18: the symbols of subprogs.bpf.o's functions). By then the kernel has rewritten
 * helper calls (their immediates become addresses in the kernel) and context accesses, so the
 * tag of a subprogram that calls a helper or reads its context differs from the kernel's; here it
 * is always computed from the object's instructions.
 */
export function functionTags(prog: ProgramSpec, starts: readonly number[]): string[] {
  const insns = stableInstructions(prog)
  const slots = insns.length / 8
  return starts.map((start, k) => {
    if (k === 0) return programTag(prog)
    const end = starts[k + 1] ?? slots
    const own = insns.slice(start * 8, end * 8)
    const view = new DataView(own.buffer)
    for (let at = 0; at < own.length; at += 8) {
      if (own[at] !== OP_CALL || own[at + 1]! >> 4 !== PSEUDO_CALL) continue
      const target = start + at / 8 + 1 + view.getInt32(at + 4, true)
      view.setInt16(at + 2, starts.indexOf(target), true)
      view.setInt32(at + 4, 1, true)
    }
    return tagOf(own)
  })
}
