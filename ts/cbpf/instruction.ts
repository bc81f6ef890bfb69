/**
 * Classic BPF instructions (`struct sock_filter` of linux/filter.h, `struct bpf_insn` of libpcap):
 * a 16-bit opcode, two 8-bit jump offsets and a 32-bit constant. The modules that read opcodes
 * write them as the UAPI numbers (`0x28` is `BPF_LD | BPF_H | BPF_ABS`, linux/bpf_common.h), named
 * in comments where they are not obvious; the ancillary offsets are linux/filter.h's.
 */

/** One classic BPF instruction. `k` is held unsigned (0 to 2^32-1). */
export interface ClassicInstruction {
  code: number
  jt: number
  jf: number
  k: number
}

/** Bytes of one `struct sock_filter`. */
export const SOCK_FILTER_SIZE = 8
/** `BPF_MAXINSNS`: the longest program the kernel attaches. */
export const MAX_INSNS = 4096
/** `BPF_MEMWORDS`: the scratch memory `M[]` has 16 32-bit words. */
export const MEMWORDS = 16

/** `SKF_AD_OFF`, `SKF_NET_OFF`, `SKF_LL_OFF` as the unsigned `k` of an absolute load. */
export const SKF_AD_OFF = 0xfffff000
export const SKF_NET_OFF = 0xfff00000
export const SKF_LL_OFF = 0xffe00000

/** The ancillary data at `SKF_AD_OFF + n`: the kernel's `SKF_AD_*` numbers, with libpcap's names. */
export const ANCILLARY = {
  PROTOCOL: 0,
  PKTTYPE: 4,
  IFINDEX: 8,
  NLATTR: 12,
  NLATTR_NEST: 16,
  MARK: 20,
  QUEUE: 24,
  HATYPE: 28,
  RXHASH: 32,
  CPU: 36,
  ALU_XOR_X: 40,
  VLAN_TAG: 44,
  VLAN_TAG_PRESENT: 48,
  PAY_OFFSET: 52,
  RANDOM: 56,
  VLAN_TPID: 60,
} as const
/** `SKF_AD_MAX`. */
export const ANCILLARY_END = 64

/** The names libpcap's `bpf_image` prints for ancillary loads (`ld [proto]`), by `SKF_AD_*` number. */
export const ANCILLARY_NAMES: Record<number, string> = {
  [ANCILLARY.PROTOCOL]: 'proto',
  [ANCILLARY.PKTTYPE]: 'type',
  [ANCILLARY.IFINDEX]: 'ifidx',
  [ANCILLARY.NLATTR]: 'nla',
  [ANCILLARY.NLATTR_NEST]: 'nlan',
  [ANCILLARY.MARK]: 'mark',
  [ANCILLARY.QUEUE]: 'queue',
  [ANCILLARY.HATYPE]: 'hatype',
  [ANCILLARY.RXHASH]: 'rxhash',
  [ANCILLARY.CPU]: 'cpu',
  [ANCILLARY.ALU_XOR_X]: 'xor_x',
  [ANCILLARY.VLAN_TAG]: 'vlan_tci',
  [ANCILLARY.VLAN_TAG_PRESENT]: 'vlanp',
  [ANCILLARY.PAY_OFFSET]: 'poff',
  [ANCILLARY.RANDOM]: 'random',
  [ANCILLARY.VLAN_TPID]: 'vlan_tpid',
}

/** The `SKF_AD_*` number of an absolute load's `k`, or undefined when `k` is not in the ancillary area. */
export function ancillaryOf(k: number): number | undefined {
  return k >= SKF_AD_OFF ? k - SKF_AD_OFF : undefined
}
