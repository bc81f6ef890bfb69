/**
 * Statements both dialects spell the same way: `exit`, the forms of `call`, and the raw slot
 * directive `.8byte` (which the disassembler prints for encodings that have no mnemonic).
 */
import * as E from './encode.js'
import { wordSlot } from './instruction.js'
import type { Cursor, Token } from './lexer.js'
import { imm32, looksLikeRegister, register64, signedNumber, skipAnnotation, target } from './operands.js'
import type { Output } from './output.js'

/** Parses a statement that starts with `head` if it is one of the common ones; false otherwise. */
export function commonStatement(head: Token, cur: Cursor, out: Output): boolean {
  switch (head.text) {
    case 'exit':
      out.noteExit()
      out.emit(E.exit())
      return true
    case 'call':
      callStatement(cur, out)
      return true
    case 'callx':
      out.emit(E.callx(register64(cur, 'the callx target').index))
      return true
    case '.8byte': {
      const { value, token } = signedNumber(cur, 'a 64-bit slot value')
      if (value < 0n || value > 2n ** 64n - 1n) cur.fail(`slot value ${value} does not fit in 64 bits`, token)
      out.emit(wordSlot(value))
      return true
    }
    default:
      return false
  }
}

/**
 * `call N` calls helper N. A local call is `call label`, `call local label|±N`, `call pc±N`, or a
 * signed number (`call -0x1` is how llvm-objdump prints an unrelocated local call; helper ids
 * are never negative). `call %rN` / `call rN` is callx; `call runtime N` / `call kfunc N` a kfunc;
 * `call name#N` (the kernel's verifier log) is helper N.
 */
function callStatement(cur: Cursor, out: Output): void {
  const mode = cur.peek()
  if (
    mode?.kind === 'ident' &&
    (mode.text === 'local' || mode.text === 'helper' || mode.text === 'runtime' || mode.text === 'kfunc')
  ) {
    cur.next('call mode')
    if (mode.text === 'local') {
      out.emitTo(E.callLocal(0), 'imm', target(cur, 32))
    } else if (mode.text === 'helper') {
      if (looksLikeRegister(cur.peek())) out.emit(E.callx(register64(cur, 'the callx target').index))
      else out.emit(E.call(imm32(cur, 'a helper id')))
    } else {
      out.emit(E.callKfunc(imm32(cur, 'a kfunc id')))
    }
    skipAnnotation(cur)
    return
  }
  const named = mode?.kind === 'ident' ? /#([0-9]+)$/.exec(mode.text) : null
  if (named) {
    // The kernel's `call bpf_map_lookup_elem#1`: the number is the helper id.
    cur.next('helper')
    const id = BigInt(named[1]!)
    if (id > 0xffffffffn) cur.fail(`helper id ${id} does not fit in 32 bits`, mode)
    out.emit(E.call(Number(BigInt.asIntN(32, id))))
    return
  }
  if (looksLikeRegister(mode)) {
    out.emit(E.callx(register64(cur, 'the callx target').index))
    return
  }
  if (cur.peek()?.kind === 'number') {
    out.emit(E.call(imm32(cur, 'a helper id')))
    skipAnnotation(cur)
    return
  }
  out.emitTo(E.callLocal(0), 'imm', target(cur, 32))
}
