/**
 * What a dialect parser writes to: instructions, and label references placed at the token that
 * named them (so an undefined label is reported at its use).
 */
import { AssembleError } from '../errors.js'
import type { Instruction } from './instruction.js'
import { Layout } from './layout.js'
import type { Target } from './operands.js'

/** A source position, 1-based. */
export interface Site {
  line: number
  col: number
}

export class Output {
  readonly layout = new Layout<Site>((message) => {
    throw new AssembleError(message, this.line, 1, 'E2BIG')
  })
  /** Slot of the first `exit`, which the conformance dialect makes an implicit label `exit`. */
  firstExit: number | undefined

  constructor(public line = 0) {}

  emit(...insns: Instruction[]): void {
    this.layout.emit(...insns)
  }

  /** Emits a jump or call whose `field` holds the distance to `target`. */
  emitTo(insn: Instruction, field: 'off' | 'imm', target: Target): void {
    if ('label' in target) {
      this.layout.refer(field, target.label, { line: this.line, col: target.token.col })
    } else {
      insn[field] = target.offset
    }
    this.layout.emit(insn)
  }

  noteExit(): void {
    this.firstExit ??= this.layout.pc
  }
}
