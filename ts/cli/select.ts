/** Choosing programs of an object by `--program NAME`, with an error that lists the names there are. */
import type { CollectionSpec, ProgramSpec } from '../index.js'
import { CliError, displayName } from './io.js'

/** The program named `name`, or all programs when no name is given. */
export function selectPrograms(spec: CollectionSpec, name: string | undefined, file: string): ProgramSpec[] {
  if (name === undefined) return [...spec.programs.values()]
  const p = spec.programs.get(name)
  if (!p) throw new CliError(`${displayName(file)}: no program '${name}'; the object has: ${programNames(spec)}`)
  return [p]
}

/** Exactly one program: the named one, or the object's only program. */
export function selectProgram(spec: CollectionSpec, name: string | undefined, file: string): ProgramSpec {
  const all = selectPrograms(spec, name, file)
  if (all.length === 0) throw new CliError(`${displayName(file)}: the object has no programs`)
  if (all.length > 1) {
    throw new CliError(
      `${displayName(file)}: the object has ${all.length} programs; choose one with --program NAME (${programNames(spec)})`,
    )
  }
  return all[0]!
}

function programNames(spec: CollectionSpec): string {
  return [...spec.programs.keys()].join(', ') || '(none)'
}
