/**
 * tc programs through the JavaScript API: `type: 'tc'`, objects whose sections say `tc` load as
 * tc, and what a run hands back besides the packet (the kernel's ctx view, the whole skb, the
 * redirect, also XDP's), alike in `run` and `runBatch`. Values kernel
 * behaviour gives are checked against the kernel in kernel-diff-tc.test.ts; here they are the
 * rules of linux/bpf.h and net/bpf/test_run.c worked by hand.
 */
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { assemble, Collection, loadCollectionSpec, Program } from '../ts/index'
import { ipv4Packet } from './helpers/packets'

describe('tc programs', () => {
  it('a classifier sets tc_classid and mark, visible in skb and (mark only) in ctx, as the kernel hands them back', () => {
    // skb->tc_classid = 0x10002; skb->mark = 7; return TC_ACT_OK
    const prog = new Program({
      type: 'tc',
      instructions: assemble('*(u32 *)(r1 + 72) = 0x10002\n*(u32 *)(r1 + 8) = 7\nr0 = 0\nexit\n'),
    })
    const r = prog.run({ data: ipv4Packet(), ctx: { priority: 3 } })
    expect(r.retval).toBe(0)
    // tc_classid is a u16 in the kernel's qdisc_skb_cb: the low half stays.
    expect(r.skb).toMatchObject({ tc_classid: 2, mark: 7, priority: 3, len: 42, protocol: 0x0008, ifindex: 1 })
    expect(r.ctxFields).toMatchObject({ tc_classid: 0, mark: 7, priority: 3, len: 0, wire_len: 42 })
    expect(r.redirect).toBeUndefined()
  })

  it('runBatch reports each packet redirect and skb as run does', () => {
    // bpf_redirect(skb->len, 0): a target that differs from packet to packet
    const prog = new Program({
      type: 'tc',
      instructions: assemble('r1 = *(u32 *)(r1 + 0)\nr2 = 0\ncall 23\nexit\n'),
    })
    const packets = [ipv4Packet(), ipv4Packet({ payload: 5 })]
    const batch = prog.runBatch(packets)
    expect(batch.map((b) => b.ok && b.redirect)).toEqual([
      { ifindex: 42, flags: 0 },
      { ifindex: 47, flags: 0 },
    ])
    expect(batch.map((b) => b.ok && b.skb?.len)).toEqual([42, 47])
    expect(prog.run({ data: packets[1]! }).redirect).toEqual({ ifindex: 47, flags: 0 })
  })

  it('tc fixtures load as tc, and a direct packet write lands in the data', async () => {
    const spec = await loadCollectionSpec(join(__dirname, 'fixtures', 'tc_skb.bpf.o'))
    const coll = new Collection(spec)
    const prog = coll.programs.get('tc_fields')!
    expect(prog.type).toBe('tc')
    const pkt = ipv4Packet()
    const r = prog.run({ data: pkt })
    // The MAC addresses swapped (the source also XORed with the selector byte).
    expect(Array.from(r.data.subarray(0, 6))).toEqual(Array.from(pkt.subarray(6, 12)))
  })

  it('XDP: bpf_redirect(9, 0) ends in XDP_REDIRECT with the target; a flag is XDP_ABORTED, no target', () => {
    const xdp = (flags: number) =>
      new Program({ type: 'xdp', instructions: assemble(`r1 = 9\nr2 = ${flags}\ncall 23\nexit\n`) })
    const r = xdp(0).run({ data: ipv4Packet() })
    expect([r.retval, r.redirect]).toEqual([4, { ifindex: 9, flags: 0 }])
    const refused = xdp(1).run({ data: ipv4Packet() })
    expect([refused.retval, refused.redirect]).toEqual([0, undefined])
  })

  it('a packet shorter than an Ethernet header is refused, as the kernel test run refuses it', () => {
    const prog = new Program({ type: 'tc', instructions: assemble('r0 = 0\nexit\n') })
    expect(() => prog.run({ data: new Uint8Array(13) })).toThrow(expect.objectContaining({ code: 'EINVAL' }))
  })
})
