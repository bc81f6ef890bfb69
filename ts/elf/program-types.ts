/**
 * The `programTypes` load option: program types the user gives by program or section name, for
 * sections whose name says none (`unspec`: cilium's `from-netdev`, PREVAIL's `test`) or the wrong
 * one. Values are libbpf's type names; a name that matches nothing is a typo, and an error.
 */
import { EbpfError } from '../errors.js'
import { PROG_TYPES } from './section-types.js'
import type { ProgramSpec } from './specs.js'

/** The option checked: type names by program or section name. */
export function checkProgramTypes(types: unknown): Map<string, string> {
  const out = new Map<string, string>()
  if (types === undefined) return out
  if (types === null || typeof types !== 'object' || Array.isArray(types)) {
    throw new EbpfError('EINVAL', 'programTypes must be an object of program (or section) names to program types')
  }
  for (const [name, type] of Object.entries(types)) {
    if (typeof type !== 'string' || !Object.hasOwn(PROG_TYPES, type) || type === 'unspec') {
      throw new EbpfError(
        'EINVAL',
        `programTypes['${name}']: ${JSON.stringify(type)} is not a program type; one of ${Object.keys(PROG_TYPES)
          .filter((t) => t !== 'unspec')
          .join(', ')}`,
      )
    }
    out.set(name, type)
  }
  return out
}

/** Sets the types `programTypes` names (by program name, else by section); a name matching nothing is a typo. */
export function applyProgramTypes(programs: Map<string, ProgramSpec>, types: Map<string, string>): void {
  for (const [name, type] of types) {
    const byName = programs.get(name)
    const targets = byName ? [byName] : [...programs.values()].filter((p) => p.section === name)
    if (targets.length === 0) {
      throw new EbpfError(
        'EINVAL',
        `programTypes['${name}']: the object has no program or section of that name; programs: ${[...programs.keys()].join(', ')}`,
      )
    }
    for (const p of targets) {
      p.type = type
      p.typeId = PROG_TYPES[type]!
    }
  }
}
