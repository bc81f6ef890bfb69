/**
 * A program under construction: slots, label definitions and the jump/call fields that wait for a
 * label. Shared by the text assembler and the builder so that both resolve labels the same way:
 * offsets count slots from the instruction after the jump, and `lddw` counts as two.
 */
import type { Instruction } from './instruction.js'

/** Instruction slots a program may have: the engine's limit (`isa::MAX_INSNS`, the kernel's 1M). */
export const MAX_SLOTS = 1_000_000
/** Labels a program may define: at most one per slot on average. */
export const MAX_LABELS = MAX_SLOTS

/** What a layout reports when it would go over a limit; must throw. */
export type LimitReport = (message: string) => never

/** Where a label is used: `off` for 16-bit jump offsets, `imm` for `ja32` and local calls. */
export interface Fixup<Site> {
  slot: number
  field: 'off' | 'imm'
  label: string
  site: Site
}

export class Layout<Site> {
  readonly insns: Instruction[] = []
  readonly labels = new Map<string, number>()
  readonly fixups: Fixup<Site>[] = []

  /** `overLimit` is called (and throws) when the program would exceed MAX_SLOTS or MAX_LABELS. */
  constructor(private readonly overLimit: LimitReport) {}

  /** Index of the next slot. */
  get pc(): number {
    return this.insns.length
  }

  emit(...insns: Instruction[]): void {
    this.emitAll(insns)
  }

  /** Appends slots from an array of any length (no argument spreading). */
  emitAll(insns: readonly Instruction[]): void {
    if (this.insns.length + insns.length > MAX_SLOTS) {
      this.overLimit(`program has more than ${MAX_SLOTS} instruction slots, the limit of the engine`)
    }
    for (const insn of insns) this.insns.push(insn)
  }

  /** Defines `label` at the next slot; returns false if it is already defined. */
  define(label: string): boolean {
    if (this.labels.has(label)) return false
    if (this.labels.size >= MAX_LABELS) this.overLimit(`program defines more than ${MAX_LABELS} labels`)
    this.labels.set(label, this.pc)
    return true
  }

  /** Makes `field` of the slot about to be emitted refer to `label`. */
  refer(field: 'off' | 'imm', label: string, site: Site): void {
    this.fixups.push({ slot: this.pc, field, label, site })
  }

  /**
   * Fills in every label reference. `fail` reports an undefined label or an offset that does not
   * fit its field, and must throw.
   */
  resolve(fail: (site: Site, message: string) => never): Instruction[] {
    for (const f of this.fixups) {
      const target = this.labels.get(f.label)
      if (target === undefined) fail(f.site, `undefined label '${f.label}'`)
      const delta = target - (f.slot + 1)
      const insn = this.insns[f.slot]!
      if (f.field === 'off') {
        if (delta < -0x8000 || delta > 0x7fff) {
          fail(f.site, `jump to '${f.label}' is ${delta} slots away, outside the 16-bit offset range (use ja32/gotol)`)
        }
        insn.off = delta
      } else {
        insn.imm = delta
      }
    }
    return this.insns
  }
}
