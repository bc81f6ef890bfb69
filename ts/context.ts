/**
 * Context images of the program types, as `BPF_PROG_TEST_RUN` takes and returns them: the UAPI
 * `struct xdp_md` and `struct __sk_buff` (offsets from linux/bpf.h). A run's `ctx` may be given as
 * raw bytes or as an object of named u32 fields; results carry both.
 */
import { describeValue } from './arguments.js'
import { LoadError } from './errors.js'
import type { ProgramType } from './program.js'

/** Named u32 fields of `struct xdp_md` a caller may set (data pointers are the engine's business). */
export interface XdpContext {
  ingress_ifindex?: number
  rx_queue_index?: number
  egress_ifindex?: number
  /**
   * Bytes of metadata in front of the packet: the first `data_meta` bytes of `data` (a multiple of
   * 4, at most 216). The kernel's test run takes this number in `xdp_md.data` (its `data_meta` must
   * be 0), and so does the image this field is written to; after a run it reads back the same way.
   */
  data_meta?: number
}

/** Named u32 fields of `struct __sk_buff` a caller may set. */
export interface SkbContext {
  len?: number
  pkt_type?: number
  mark?: number
  queue_mapping?: number
  protocol?: number
  vlan_present?: number
  vlan_tci?: number
  vlan_proto?: number
  priority?: number
  ingress_ifindex?: number
  ifindex?: number
  tc_index?: number
  cb?: [number, number, number, number, number]
  hash?: number
  tc_classid?: number
  napi_id?: number
  family?: number
  remote_ip4?: number
  local_ip4?: number
  remote_port?: number
  local_port?: number
  wire_len?: number
  gso_segs?: number
  gso_size?: number
  /** tc and cgroup_skb: `u64` fields, as bigints. */
  tstamp?: bigint
  hwtstamp?: bigint
}

export type ContextValue = XdpContext | SkbContext

/** `data_meta` (the metadata size) lives in `xdp_md.data` (offset 0), as the kernel's test run wants it. */
const XDP_MD = { size: 24, fields: { data_meta: 0, ingress_ifindex: 12, rx_queue_index: 16, egress_ifindex: 20 } }

/** `struct __sk_buff` field offsets (linux/bpf.h) that a context image may name. */
export const SK_BUFF_FIELDS = {
  len: 0,
  pkt_type: 4,
  mark: 8,
  queue_mapping: 12,
  protocol: 16,
  vlan_present: 20,
  vlan_tci: 24,
  vlan_proto: 28,
  priority: 32,
  ingress_ifindex: 36,
  ifindex: 40,
  tc_index: 44,
  hash: 68,
  tc_classid: 72,
  napi_id: 84,
  family: 88,
  remote_ip4: 92,
  local_ip4: 96,
  remote_port: 132,
  local_port: 136,
  wire_len: 160,
  gso_segs: 164,
  gso_size: 176,
} as const

const SK_BUFF = {
  size: 192,
  fields: SK_BUFF_FIELDS as Record<string, number>,
  cb: 48,
}

/** `struct __sk_buff` as tc programs and their test runs use it: also the `u64` time stamps. */
const TC_SK_BUFF = { ...SK_BUFF, u64: { tstamp: 152, hwtstamp: 184 } as Record<string, number> }

/**
 * The u32 fields of each layout as two lists (names, offsets) and its u64 fields as a list, made
 * once: decoding runs for every packet of a batch.
 */
interface FieldList {
  names: string[]
  offsets: number[]
  u64: Array<[string, number]>
}

function fieldList(layout: Layout): FieldList {
  const u32 = Object.entries(layout.fields)
  return { names: u32.map(([n]) => n), offsets: u32.map(([, o]) => o), u64: Object.entries(layout.u64 ?? {}) }
}

interface Layout {
  size: number
  fields: Record<string, number>
  cb?: number
  u64?: Record<string, number>
}

function layoutOf(type: ProgramType): Layout | undefined {
  if (type === 'xdp') return XDP_MD
  if (type === 'socket_filter') return SK_BUFF
  // cgroup_skb programs may write tstamp: their context carries the u64 fields as tc's does.
  if (type === 'tc' || type === 'cgroup_skb') return TC_SK_BUFF
  return undefined
}

/** The bytes of a context given as bytes or named fields. */
export function encodeContext(type: ProgramType, ctx: Uint8Array | ContextValue | undefined): Uint8Array | undefined {
  if (ctx === undefined || ctx instanceof Uint8Array) return ctx
  const layout = layoutOf(type)
  if (!layout)
    throw new LoadError('EINVAL', `ctx of a '${type}' program must be a Uint8Array, got ${describeValue(ctx)}`)
  if (typeof ctx !== 'object' || ctx === null || Array.isArray(ctx)) {
    throw new LoadError(
      'EINVAL',
      `ctx of a '${type}' program must be a Uint8Array or an object of named fields, got ${describeValue(ctx)}`,
    )
  }
  const out = new Uint8Array(layout.size)
  const view = new DataView(out.buffer)
  for (const [name, value] of Object.entries(ctx)) {
    if (name === 'cb' && layout.cb !== undefined) {
      if (!Array.isArray(value) || value.length !== 5)
        throw new LoadError('EINVAL', 'ctx.cb must be an array of 5 numbers')
      value.forEach((v, i) => {
        view.setUint32(layout.cb! + 4 * i, u32(`ctx.cb[${i}]`, v), true)
      })
      continue
    }
    const wide = layout.u64?.[name]
    if (wide !== undefined) {
      if (typeof value !== 'bigint' || value < 0n || value >= 1n << 64n)
        throw new LoadError('EINVAL', `ctx.${name} must be a bigint from 0 to 2^64-1, got ${describeValue(value)}`)
      view.setBigUint64(wide, value, true)
      continue
    }
    const off = layout.fields[name]
    if (off === undefined) throw new LoadError('EINVAL', `'${name}' is not a settable field of the ${type} context`)
    view.setUint32(off, u32(`ctx.${name}`, value), true)
  }
  return out
}

const FIELD_LISTS = new Map<Layout, FieldList>([
  [XDP_MD, fieldList(XDP_MD)],
  [SK_BUFF, fieldList(SK_BUFF)],
  [TC_SK_BUFF, fieldList(TC_SK_BUFF)],
])

/** Named fields of a context image the engine returned. */
export function decodeContext(type: ProgramType, bytes: Uint8Array): ContextValue | undefined {
  return decodeContextAt(type, new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), 0, bytes.byteLength)
}

/**
 * `decodeContext` of the `size` bytes at `at` in `view`: a batch reads all its images through one
 * DataView (one made per packet costs more than the decoding).
 */
export function decodeContextAt(type: ProgramType, view: DataView, at: number, size: number): ContextValue | undefined {
  const layout = layoutOf(type)
  if (!layout || size < layout.size) return undefined
  if (layout === XDP_MD) return decodeXdpMd(view, at)
  const { names, offsets, u64 } = FIELD_LISTS.get(layout)!
  const out: Record<string, unknown> = {}
  for (let i = 0; i < names.length; i++) out[names[i]!] = view.getUint32(at + offsets[i]!, true)
  const cb = layout.cb
  if (cb !== undefined) out.cb = Array.from({ length: 5 }, (_, i) => view.getUint32(at + cb + 4 * i, true))
  for (const [name, off] of u64) out[name] = view.getBigUint64(at + off, true)
  return out as ContextValue
}

/**
 * XDP's fields as one object literal, in the order of `XDP_MD.fields`: the batches' common case,
 * a fifth of the generic loop's time (whose stores by computed name V8 cannot specialize).
 */
function decodeXdpMd(view: DataView, at: number): XdpContext {
  const f = XDP_MD.fields
  return {
    data_meta: view.getUint32(at + f.data_meta, true),
    ingress_ifindex: view.getUint32(at + f.ingress_ifindex, true),
    rx_queue_index: view.getUint32(at + f.rx_queue_index, true),
    egress_ifindex: view.getUint32(at + f.egress_ifindex, true),
  } satisfies Record<keyof typeof f, number>
}

function u32(what: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffffffff) {
    throw new LoadError('EINVAL', `${what} must be an integer from 0 to 2^32-1, got ${describeValue(v)}`)
  }
  return v
}
