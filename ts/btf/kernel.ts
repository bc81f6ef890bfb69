/**
 * The kernel BTF CO-RE relocates against when the caller gives none: the running kernel's
 * `/sys/kernel/btf/vmlinux` when it is readable, as libbpf does; elsewhere (not Linux, no BTF, no
 * permission) the BTF of the UAPI context structs we ship, so that CO-RE against `__sk_buff`,
 * `xdp_md`, `pt_regs` and the like works on any machine. Read and parsed once per process (about
 * a second for a distribution kernel's 125,000 types), and only for objects with CO-RE relocations.
 */
import { readFileSync } from 'node:fs'
import { Btf } from './btf.js'
import { UAPI_CONTEXT_BTF } from './uapi-context.js'

export const VMLINUX_BTF = '/sys/kernel/btf/vmlinux'

/** What CO-RE relocates against by default, and a name for it in error messages. */
export interface DefaultKernelTypes {
  types: Btf
  source: string
}

let fallback: Btf | undefined

/** The shipped BTF of the UAPI context structs (scripts/uapi-context/context.c). */
export function uapiContextTypes(): Btf {
  fallback ??= Btf.parse(new Uint8Array(Buffer.from(UAPI_CONTEXT_BTF, 'base64')))
  return fallback
}

/** The running kernel's BTF where readable, else the UAPI context structs. */
export function defaultKernelTypes(): DefaultKernelTypes {
  const running = runningKernelTypes()
  if (running) return { types: running, source: VMLINUX_BTF }
  return {
    types: uapiContextTypes(),
    source: `the UAPI context types shipped with ebpf (${VMLINUX_BTF} is not readable here)`,
  }
}

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
