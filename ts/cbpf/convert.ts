/**
 * Classic BPF to an eBPF socket filter, with the kernel's semantics (`bpf_convert_filter` in
 * net/core/filter.c), written from the instruction set's definition:
 * - A is r0 and X is r7, both zeroed at entry; r6 holds the context (`struct __sk_buff`), which the
 *   legacy packet loads need; r8 is scratch for `ldxb 4*([k]&0xf)`, which must keep A.
 * - `M[k]` is the stack word at r10 - 4 * (k + 1).
 * - `ld`/`ldh`/`ldb [k]` and `[x + k]` are eBPF's `LD_ABS`/`LD_IND` (big-endian, a load outside the
 *   packet ends the program with 0, as in classic BPF); `SKF_LL_OFF + k` is byte k of the packet
 *   (it starts at the link-layer header) and `SKF_NET_OFF + k` byte `networkOffset + k`, in
 *   `[x + k]` too (the kernel adds X first: the two differ only when X carries the sum out of the area).
 * - ALU operations are 32-bit; division or modulo by X = 0 returns 0, as the kernel's conversion.
 * - Conditional jumps compare 32 bits (JMP32), a `jf` other than the next instruction adds a `ja`.
 * - Ancillary loads read the `__sk_buff` fields the run fills in (or the caller's context gives):
 *   protocol and vlan_tpid in host order as the kernel's `ntohs`, pkttype, ifindex, len, mark,
 *   queue, rxhash, vlan_tci, vlan_avail; cpu and random call `bpf_get_smp_processor_id` and
 *   `bpf_get_prandom_u32`; hatype is the `hatype` option. pay_offset and the netlink attribute loads
 *   (and hatype without the option) need kernel state a socket filter context does not hold: they
 *   are refused (`ENOTSUPP`).
 */
import { SK_BUFF_FIELDS } from '../context.js'
import { LoadError } from '../errors.js'
import {
  ANCILLARY,
  ANCILLARY_NAMES,
  ancillaryOf,
  type ClassicInstruction,
  SKF_LL_OFF,
  SKF_NET_OFF,
} from './instruction.js'
import { type ClassicInput, parse } from './parse.js'
import { validate } from './validate.js'

export interface ToEbpfOptions {
  /**
   * Where the network header starts in the packet, for loads at `SKF_NET_OFF + k`: 14 (default)
   * for an Ethernet frame, 0 for a raw IP packet.
   */
  networkOffset?: number
  /**
   * What `ld [hatype]` loads: the device's `ARPHRD_*` type (1 for Ethernet). The kernel reads it from
   * the device the packet came through, which a run does not have: without this option the load is
   * refused.
   */
  hatype?: number
}

const A = 0
const X = 7
const CTX = 6
const TMP = 8
const FP = 10

/** `struct __sk_buff` offsets of the fields the ancillary loads read. */
const SKB = SK_BUFF_FIELDS

/** Ancillary loads that read a `struct __sk_buff` field. */
const FIELD_OF_ANCILLARY: Record<number, number> = {
  [ANCILLARY.PROTOCOL]: SKB.protocol,
  [ANCILLARY.PKTTYPE]: SKB.pkt_type,
  [ANCILLARY.IFINDEX]: SKB.ifindex,
  [ANCILLARY.MARK]: SKB.mark,
  [ANCILLARY.QUEUE]: SKB.queue_mapping,
  [ANCILLARY.RXHASH]: SKB.hash,
  [ANCILLARY.VLAN_TAG]: SKB.vlan_tci,
  [ANCILLARY.VLAN_TAG_PRESENT]: SKB.vlan_present,
  [ANCILLARY.VLAN_TPID]: SKB.vlan_proto,
}

/** Ancillary loads that are a helper's result: `bpf_get_smp_processor_id` (8), `bpf_get_prandom_u32` (7). */
const HELPER_OF_ANCILLARY: Record<number, number> = { [ANCILLARY.CPU]: 8, [ANCILLARY.RANDOM]: 7 }

/** An eBPF instruction being built; `target` is a classic instruction index, resolved at the end. */
interface Slot {
  op: number
  dst: number
  src: number
  off: number
  imm: number
  target?: number
}

/** eBPF bytecode (8-byte slots) for a classic program, after the kernel's checks (`validate`). */
export function toEbpf(program: ClassicInput | readonly ClassicInstruction[], options: ToEbpfOptions = {}): Uint8Array {
  const insns = parse(program as ClassicInput)
  validate(insns)
  const networkOffset = options.networkOffset ?? 14
  if (!Number.isInteger(networkOffset) || networkOffset < 0 || networkOffset > 0xffff) {
    throw new LoadError('EINVAL', `networkOffset must be an integer from 0 to 65535, got ${String(networkOffset)}`)
  }
  const { hatype } = options
  if (hatype !== undefined && (!Number.isInteger(hatype) || hatype < 0 || hatype > 0xffff)) {
    throw new LoadError('EINVAL', `hatype must be an integer from 0 to 65535, got ${String(hatype)}`)
  }
  const out: Slot[] = []
  const emit = (op: number, dst: number, src: number, off: number, imm: number, target?: number): void => {
    out.push(target === undefined ? { op, dst, src, off, imm } : { op, dst, src, off, imm, target })
  }
  const mov64 = (dst: number, src: number): void => emit(0xbf, dst, src, 0, 0)
  const mov32Imm = (dst: number, imm: number): void => emit(0xb4, dst, 0, 0, imm | 0)
  const ldxw = (dst: number, base: number, off: number): void => emit(0x61, dst, base, off, 0)
  const be16 = (): void => emit(0xdc, A, 0, 0, 16)
  const scratch = (k: number): number => -4 * (k + 1)
  const exit = (): void => emit(0x95, 0, 0, 0, 0)

  mov64(CTX, 1)
  mov32Imm(A, 0)
  mov32Imm(X, 0)
  const start: number[] = []
  insns.forEach((p, pc) => {
    start.push(out.length)
    const { code, k } = p
    const cls = code & 0x07
    switch (cls) {
      case 0x04: {
        const op = code & 0xf0
        const byX = (code & 0x08) !== 0
        if (byX && (op === 0x30 || op === 0x90)) {
          // Division or modulo by X = 0: the program returns 0.
          emit(0x55, X, 0, 2, 0)
          mov32Imm(A, 0)
          exit()
        }
        emit(code, A, byX ? X : 0, 0, byX ? 0 : k | 0)
        return
      }
      case 0x00:
      case 0x01: {
        const dst = cls === 0x00 ? A : X
        const mode = code & 0xe0
        if (mode === 0x00) mov32Imm(dst, k)
        else if (mode === 0x60) ldxw(dst, FP, scratch(k))
        else if (mode === 0x80) ldxw(dst, CTX, SKB.len)
        else if (mode === 0xa0) {
          // X = 4 * (P[k] & 0xf), A kept.
          mov64(TMP, A)
          packetLoad(0x30, k)
          emit(0x54, A, 0, 0, 0xf)
          emit(0x64, A, 0, 0, 2)
          mov64(X, A)
          mov64(A, TMP)
        } else if (mode === 0x40) emit(code, 0, X, 0, packetOffset(k) | 0)
        else if (ancillaryOf(k) !== undefined) ancillary(ancillaryOf(k)!, pc)
        else packetLoad(code, k)
        return
      }
      case 0x02:
      case 0x03:
        emit(0x63, FP, cls === 0x02 ? A : X, scratch(k), 0)
        return
      case 0x05:
        jump(p, pc)
        return
      case 0x06:
        if (code === 0x06) mov32Imm(A, k)
        exit()
        return
      default:
        if (code === 0x07) mov64(X, A)
        else mov64(A, X)
    }
  })

  /**
   * The packet offset of a load's `k`: `SKF_NET_OFF + n` and `SKF_LL_OFF + n` rebased on the frame.
   * Any other `k` at or above 2^31 is negative for the kernel too: the load fails, r0 = 0.
   */
  function packetOffset(k: number): number {
    if (k >= SKF_NET_OFF) return k - SKF_NET_OFF + networkOffset
    if (k >= SKF_LL_OFF) return k - SKF_LL_OFF
    return k
  }

  function packetLoad(code: number, k: number): void {
    emit(code, 0, 0, 0, packetOffset(k) | 0)
  }

  function ancillary(anc: number, pc: number): void {
    const field = FIELD_OF_ANCILLARY[anc]
    const helper = HELPER_OF_ANCILLARY[anc]
    if (field !== undefined) {
      ldxw(A, CTX, field)
      // skb->protocol and skb->vlan_proto are big-endian; classic BPF sees them in host order.
      if (anc === ANCILLARY.PROTOCOL || anc === ANCILLARY.VLAN_TPID) be16()
    } else if (helper !== undefined) emit(0x85, 0, 0, 0, helper)
    else if (anc === ANCILLARY.ALU_XOR_X) emit(0xac, A, X, 0, 0)
    else if (anc === ANCILLARY.HATYPE && hatype !== undefined) mov32Imm(A, hatype)
    else {
      throw new LoadError(
        'ENOTSUPP',
        `instruction ${pc}: the ancillary load [${ANCILLARY_NAMES[anc]}] needs kernel state a socket filter run does not have` +
          (anc === ANCILLARY.HATYPE ? ' (the hatype option gives the device type)' : ''),
        pc,
      )
    }
  }

  function jump(p: ClassicInstruction, pc: number): void {
    const { code, jt, jf, k } = p
    const op = code & 0xf0
    if (op === 0x00) {
      emit(0x05, 0, 0, 0, 0, pc + 1 + k)
      return
    }
    const byX = (code & 0x08) !== 0
    const cond = (jop: number, target: number): void =>
      emit(0x06 | jop | (byX ? 0x08 : 0), A, byX ? X : 0, 0, byX ? 0 : k | 0, target)
    // JEQ -> JNE, JGT -> JLE, JGE -> JLT: a jump on the false branch when jt is the next instruction.
    const inverse: Record<number, number> = { 16: 0x50, 32: 0xb0, 48: 0xa0 }
    if (jt === jf) {
      if (jt !== 0) emit(0x05, 0, 0, 0, 0, pc + 1 + jt)
    } else if (jf === 0) cond(op, pc + 1 + jt)
    else if (jt === 0 && inverse[op] !== undefined) cond(inverse[op]!, pc + 1 + jf)
    else {
      cond(op, pc + 1 + jt)
      emit(0x05, 0, 0, 0, 0, pc + 1 + jf)
    }
  }

  const bytes = new Uint8Array(out.length * 8)
  const view = new DataView(bytes.buffer)
  out.forEach((s, i) => {
    const off = s.target === undefined ? s.off : start[s.target]! - (i + 1)
    if (off > 0x7fff) throw new LoadError('E2BIG', `a jump of ${off} instructions does not fit eBPF's 16-bit offset`)
    view.setUint8(i * 8, s.op)
    view.setUint8(i * 8 + 1, (s.src << 4) | s.dst)
    view.setInt16(i * 8 + 2, off, true)
    view.setInt32(i * 8 + 4, s.imm, true)
  })
  return bytes
}
