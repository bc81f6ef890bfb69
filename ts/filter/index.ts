/**
 * `compileFilter`: the pcap-filter(7) language (tcpdump's filter expressions) compiled to an eBPF
 * socket filter, without libpcap. The expression becomes classic BPF first (the instruction set the
 * language was designed for, and what `tcpdump -d` prints, so the two can be compared
 * instruction for instruction), then eBPF through `cbpf.toEbpf`, which converts as the kernel
 * does; the result loads as a `socket_filter` and returns `snaplen` for a packet it keeps, 0 for one
 * it drops.
 */
import { type ClassicInstruction, toEbpf, validate } from '../cbpf/index.js'
import { EbpfError } from '../errors.js'
import { finish } from './blocks.js'
import { CodeGen } from './codegen.js'
import { LINK_LAYERS, linkLayer } from './link.js'
import { parseFilter } from './parser.js'

export { FilterError } from './error.js'
export { LINK_LAYERS } from './link.js'

export interface CompileFilterOptions {
  /**
   * The link layer of the packets: `EN10MB` (Ethernet, the default), `RAW` (IP packets),
   * `LINUX_SLL`, `LINUX_SLL2`, `NULL` (BSD loopback, the address family little-endian), `LOOP`
   * (the address family big-endian), or their LINKTYPE_ numbers (1, 101, 113, 276, 0, 108).
   */
  linkType?: string | number
  /** What the program returns for a packet it keeps (default 262144, tcpdump's). */
  snaplen?: number
}

export interface CompiledFilter {
  /** eBPF bytecode of a `socket_filter` program. */
  instructions: Uint8Array
  /** The classic BPF it was converted from (`cbpf.disassemble` prints it as `tcpdump -d` does). */
  classic: ClassicInstruction[]
  /** The LINKTYPE_ value the filter expects. */
  linkType: number
}

/** Compiles a filter expression; bad expressions are a `FilterError` (`EINVAL`) naming the column. */
export function compileFilter(expression: string, options: CompileFilterOptions = {}): CompiledFilter {
  if (typeof expression !== 'string') {
    throw new EbpfError('EINVAL', `a filter expression must be a string, got ${typeof expression}`)
  }
  if (typeof options !== 'object' || options === null)
    throw new EbpfError('EINVAL', 'compileFilter options must be an object')
  const link = linkLayer(options.linkType ?? 'EN10MB')
  if (link === undefined) {
    throw new EbpfError(
      'EINVAL',
      `linkType ${String(options.linkType)} is not one compileFilter supports: ${Object.values(LINK_LAYERS)
        .map((l) => `${l.name} (${l.linkType})`)
        .join(', ')}`,
    )
  }
  const snaplen = options.snaplen ?? 262144
  if (!Number.isInteger(snaplen) || snaplen < 1 || snaplen > 0xffffffff) {
    throw new EbpfError('EINVAL', `snaplen must be an integer from 1 to 2^32 - 1, got ${String(snaplen)}`)
  }
  const tree = parseFilter(expression)
  const classic = finish(new CodeGen(link).expr(tree), snaplen)
  validate(classic)
  return { instructions: toEbpf(classic), classic, linkType: link.linkType }
}
