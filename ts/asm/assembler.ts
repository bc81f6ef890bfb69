/**
 * `assemble(text)`: bytecode from assembly text in either dialect, even both mixed in one text.
 * Each statement is recognised by its first token: a mnemonic of the bpf_conformance dialect
 * (`mov`, `ldxdw`, `jeq32`, `lock fetch add`, ...), or the shape of the llvm-objdump / kernel
 * dialect (`r0 = ...`, `*(u32 *)... =`, `if ... goto`, `lock *(...)`). `exit`, `call` and
 * `.8byte` are common to both.
 *
 * Labels are `name:` or `<name>:` (llvm-objdump's symbol lines, with or without the address in
 * front), alone on a line or before a statement. As in the conformance suite, the first `exit`
 * defines the label `exit` unless the text defines it itself. Comments start with `#`, `//` or
 * `;`. Lines pasted from `llvm-objdump -d` keep working: the leading `N:` and the byte columns are
 * skipped, and so are the listing's headers and `<sym+0x10>` annotations after jump offsets; so
 * are the `12: (b7) ` prefixes of the kernel's verifier log, which also names helper calls
 * `call bpf_map_lookup_elem#1`.
 */
import { describeValue } from '../arguments.js'
import { AssembleError } from '../errors.js'
import { commonStatement } from './dialect-common.js'
import { conformanceStatement, isConformanceMnemonic } from './dialect-conformance.js'
import { isLlvmStart, llvmStatement } from './dialect-llvm.js'
import { encodeInstructions, type Instruction } from './instruction.js'
import { Cursor, commentStart, type Token, tokenize } from './lexer.js'
import { looksLikeRegister } from './operands.js'
import { Output } from './output.js'

const COMMON = new Set(['exit', 'call', 'callx', '.8byte'])

// `      5:\t18 02 00 00 ... \t` in front of an llvm-objdump instruction line.
const OBJDUMP_PREFIX = /^\s*\d+:\s+(?:[0-9a-f]{2} ){7,15}[0-9a-f]{2}\s+/
// `0000000000000000 <prog>:`: a symbol line, i.e. a label.
const OBJDUMP_SYMBOL = /^\s*[0-9a-f]{8,}\s+(?=<)/
// `  12: (b7) r0 = 0`: an instruction line of the kernel's verifier log or `bpftool prog dump xlated`.
const KERNEL_PREFIX = /^\s*\d+: \(([0-9a-f]{2})\) /
// The headers of a listing: `prog.o:\tfile format elf64-bpf`, `Disassembly of section xdp:`.
const OBJDUMP_HEADER = /^(?:\S+:\s+file format \S+|Disassembly of section \S+:)\s*$/

/**
 * Characters a line may have. Listings, verifier logs and hand-written text stay far below; the
 * limit bounds the tokens one line makes.
 */
export const MAX_LINE_LENGTH = 64 * 1024

/**
 * Assembles `text` into 8-byte little-endian instruction slots. Throws AssembleError: `EINVAL` for
 * text it cannot read, `E2BIG` past a limit (1,000,000 slots, as the engine; as many labels; lines
 * of 64 KiB), raised at the line that crosses it.
 */
export function assemble(text: string): Uint8Array {
  return encodeInstructions(assembleInstructions(text))
}

/** The same as `assemble`, as decoded slots. */
export function assembleInstructions(text: string): Instruction[] {
  if (typeof text !== 'string')
    throw new AssembleError(`assembly text must be a string, got ${describeValue(text)}`, 1, 1)
  const out = new Output()
  // One line at a time: splitting the whole text first would hold every line at once.
  const newline = /\r?\n|\r/g
  let start = 0
  for (let lineNo = 1; ; lineNo++) {
    const m = newline.exec(text)
    const end = m ? m.index : text.length
    out.line = lineNo
    if (end - start > MAX_LINE_LENGTH) {
      throw new AssembleError(
        `line is ${end - start} characters long, more than ${MAX_LINE_LENGTH}`,
        lineNo,
        1,
        'E2BIG',
      )
    }
    if (end > start) statementLine(text.slice(start, end), out)
    if (!m) break
    start = newline.lastIndex
  }
  if (out.firstExit !== undefined && !out.layout.labels.has('exit')) out.layout.labels.set('exit', out.firstExit)
  return out.layout.resolve((site, message) => {
    throw new AssembleError(message, site.line, site.col)
  })
}

function statementLine(raw: string, out: Output): void {
  if (OBJDUMP_HEADER.test(raw)) return
  let line = raw.slice(0, commentStart(raw))
  let start = 0
  const kernel = KERNEL_PREFIX.exec(line)
  const prefix = kernel ?? OBJDUMP_PREFIX.exec(line) ?? OBJDUMP_SYMBOL.exec(line)
  if (prefix) start = prefix[0].length
  line = line.trimEnd()
  const tokens = tokenize(line, out.line, start)
  // The kernel prints `(18) r1 = 0x1122334455667788` without llvm's `ll`; the opcode says lddw.
  if (kernel?.[1] === '18' && tokens.at(-1)?.text !== 'll')
    tokens.push({ kind: 'ident', text: 'll', col: line.length + 1 })
  const cur = new Cursor(tokens, out.line, line.length + 1)
  labels(cur, out)
  if (cur.done) return
  const head = cur.peek()!
  if (head.kind === 'ident' && COMMON.has(head.text)) {
    cur.next(head.text)
    commonStatement(head, cur, out)
  } else if (isLlvmStart(head, cur.peek(1)) || looksLikeRegister(head)) {
    llvmStatement(cur, out)
  } else if (head.kind === 'ident' && isConformanceMnemonic(head.text)) {
    cur.next(head.text)
    conformanceStatement(head, cur, out)
  } else if (head.kind === 'ident') {
    cur.fail(`unknown mnemonic '${head.text}'`, head)
  } else {
    cur.fail(`expected an instruction, found '${head.text}'`, head)
  }
  cur.end()
}

/** Reads the labels at the start of a line: `name:` and `<name>:`, any number of them. */
function labels(cur: Cursor, out: Output): void {
  for (;;) {
    const t = cur.peek()
    let name: Token | undefined
    if (t?.kind === 'ident' && cur.peek(1)?.text === ':') {
      name = t
      cur.next('label')
      cur.next(':')
    } else if (
      t?.text === '<' &&
      cur.peek(1)?.kind === 'ident' &&
      cur.peek(2)?.text === '>' &&
      cur.peek(3)?.text === ':'
    ) {
      name = cur.peek(1)!
      for (let k = 0; k < 4; k++) cur.next('label')
    } else {
      return
    }
    if (!out.layout.define(name.text)) cur.fail(`duplicate label ${describeValue(name.text)}`, name)
  }
}
