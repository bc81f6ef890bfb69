/**
 * The helpers a program type has and their prototypes, in the kernel's spelling
 * (`bpf_func_proto`: `RET_PTR_TO_MAP_VALUE_OR_NULL`, `ARG_CONST_MAP_PTR`, ...), as Linux 6.18
 * declares them; `kernelProgTypes` are the kernel program types that offer each helper.
 */
import { fromCodedError, LoadError } from './errors.js'
import { native } from './native.js'
import type { ProgramType } from './program.js'

/** One helper a program can call. */
export interface HelperPrototype {
  /** The kernel's helper number (what `call N` names). */
  id: number
  name: string
  ret: string
  /** The arguments it takes, r1 first. */
  args: string[]
  /** Only programs under a GPL-compatible license may call it. */
  gplOnly: boolean
  /** The kernel's program types that offer it (`socket_filter`, `sched_cls`, `xdp`, `kprobe`, ...). */
  kernelProgTypes: string[]
}

/** The helpers a program of `type` has when no JavaScript helpers replace or add any, by id. */
export function helperPrototypes(type: ProgramType = 'raw'): HelperPrototype[] {
  try {
    return native.helperPrototypes(type)
  } catch (e) {
    throw fromCodedError(e, LoadError, 'program type')
  }
}
