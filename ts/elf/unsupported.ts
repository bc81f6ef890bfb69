/**
 * What makes one program (or map) of an object unusable here without making the object unreadable:
 * an `ENOTSUPP` raised while linking it (an extern, a kfunc, CO-RE without the kernel's BTF). The
 * loader lists such a program with this reason instead of failing the whole object, as libbpf
 * lets a program with `autoload` off be skipped. Malformed input (`EINVAL`) still fails the object.
 */
import { EbpfError } from '../errors.js'

/** The reason to record for `e`, or undefined when `e` must fail the whole object. */
export function unsupportedReason(e: unknown): string | undefined {
  return e instanceof EbpfError && e.code === 'ENOTSUPP' ? e.message : undefined
}

/**
 * Why a reference to the undefined symbol `name` cannot be linked, in words for the program's
 * `unsupported` reason: a kfunc or `.ksyms` variable (kernel functions and addresses), or another
 * extern. (C library calls clang emitted are linked to our own: libcalls.ts.) `sectionOf` names the DATASEC that declares it, if any.
 */
export function externProblem(name: string, sectionOf: (name: string) => string | undefined, isCall: boolean): string {
  const section = sectionOf(name)
  if (isCall)
    return `call to kfunc '${name}'${section ? ` (a ${section} extern)` : ''}: kernel functions are not available here`
  if (section === '.ksyms') return `.ksyms extern '${name}' (a kernel symbol's address) is not available here`
  return `${section ? `${section} ` : ''}extern '${name}' is not supported (externs need the target kernel)`
}
