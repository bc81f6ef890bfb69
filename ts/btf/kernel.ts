/**
 * The kernel BTF CO-RE relocates against when the caller gives none: the running kernel's
 * `/sys/kernel/btf/vmlinux` when it is readable, as libbpf does. Read and parsed once per process
 * (about a second for a distribution kernel's 125,000 types), and only for objects that have
 * CO-RE relocations.
 */
import { readFileSync } from 'node:fs'
import { Btf } from './btf.js'

export const VMLINUX_BTF = '/sys/kernel/btf/vmlinux'

let cached: { types: Btf | undefined } | undefined

/** The running kernel's BTF, or undefined where it cannot be read (not Linux, no BTF, no permission). */
export function runningKernelTypes(): Btf | undefined {
  if (cached === undefined) {
    let types: Btf | undefined
    try {
      types = Btf.parse(new Uint8Array(readFileSync(VMLINUX_BTF)))
    } catch {
      // Unreadable or unparsable: CO-RE then needs the caller's kernelTypes, and says so.
      types = undefined
    }
    cached = { types }
  }
  return cached.types
}
