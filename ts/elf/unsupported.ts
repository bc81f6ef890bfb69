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

/** C library functions clang calls when it does not inline a copy or fill (no kernel provides them). */
const LIBCALLS = new Set(['memcpy', 'memset', 'memmove', 'memcmp', 'bcmp'])

/** What an undefined symbol is, in words for an error: a .ksyms or .kconfig extern, a kfunc, a libcall. */
export function externKind(name: string, sectionOf: (name: string) => string | undefined, isFunc: boolean): string {
  const section = sectionOf(name)
  if (section !== undefined) return `${section} extern '${name}'`
  if (LIBCALLS.has(name)) {
    return `'${name}', a C library function clang called instead of inlining it (no kernel provides it; use __builtin_${name} with a constant size)`
  }
  return isFunc ? `kfunc extern '${name}'` : `extern '${name}'`
}
