/**
 * The run option `network` (interfaces and routes for `bpf_check_mtu`, `bpf_fib_lookup`,
 * `bpf_clone_redirect`) and what a run reports of clones, through the public API on both engines.
 * Oracles: the kernel's BPF_PROG_TEST_RUN results recorded on Linux 6.18 in
 * crates/ebpf-vm/tests/kernel_oracle/check_mtu_6.18.txt and fib_lookup_6.18.txt (their headers
 * describe the host, given here as `ORACLE_HOST`), replayed on the programs the kernel ran (built
 * from kernel_oracle/check_mtu.c and fib_lookup.c into fixtures/oracle_*.bpf.o); the forwarding
 * lookups the kernel could not be asked (the host forwards nothing) and the clones
 * (fixtures/net_helpers.c) are worked by hand from net/core/filter.c.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { Collection, loadCollectionSpec, type Network, type Program } from '../ts/index'

const ORACLES = join(__dirname, '..', 'crates', 'ebpf-vm', 'tests', 'kernel_oracle')
const ENGINES = ['interpreter', 'jit'] as const
const ETH0_MAC = '02:fc:00:00:00:01'
const GW_MAC = '02:fc:00:00:00:05'

/** The oracle host: lo 1, ifb0 2 and ifb1 3 (MTU 1500), eth0 4 (MTU 1400); its routes and neighbours. */
const ORACLE_HOST: Network = {
  interfaces: [
    { ifindex: 1, mtu: 65536 },
    { ifindex: 2, mtu: 1500, mac: 'ee:eb:a1:da:11:33' },
    { ifindex: 3, mtu: 1500, mac: '0e:e3:b7:d6:96:4c' },
    { ifindex: 4, mtu: 1400, mac: ETH0_MAC },
  ],
  routes: [
    { dst: '0.0.0.0/0', ifindex: 4, gateway: '192.0.2.1', neighbor: GW_MAC },
    { dst: '192.0.2.0/24', ifindex: 4 },
    { dst: 'fd00::/64', ifindex: 4, metric: 256 },
    { dst: '::/0', ifindex: 4, gateway: 'fd00::1', metric: 1024 },
  ],
}

/** The kernel oracle programs (mtu_xdp/_tc, fib_xdp/_tc, built from kernel_oracle/*.c) and clone_tc. */
async function programs(engine: (typeof ENGINES)[number]): Promise<Map<string, Program>> {
  const out = new Map<string, Program>()
  for (const name of ['oracle_check_mtu', 'oracle_fib_lookup', 'net_helpers']) {
    const spec = await loadCollectionSpec(join(__dirname, 'fixtures', `${name}.bpf.o`))
    for (const [n, p] of new Collection(spec, { engine }).programs) out.set(n, p)
  }
  return out
}

const oracleLines = (file: string) =>
  readFileSync(join(ORACLES, file), 'utf8')
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => l.split(' '))

function ipBytes(text: string): number[] {
  if (text.includes('.')) return text.split('.').map(Number)
  const [h, t] = text.split('::')
  const g = (s: string | undefined) => (s ? s.split(':').map((x) => Number.parseInt(x, 16)) : [])
  const words = t === undefined ? g(h) : [...g(h), ...new Array(8 - g(h).length - g(t).length).fill(0), ...g(t)]
  return words.flatMap((w) => [w >> 8, w & 0xff])
}

function fibPacket(family: number, flags: number, ifindex: number, totLen: number, dst: number[]): Uint8Array {
  const b = new Uint8Array(128)
  b[12] = 8
  b.set([family, flags, ifindex, totLen & 0xff, totLen >> 8], 14)
  b.set(dst, 20)
  return b
}

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex')

for (const engine of ENGINES) {
  describe(`network (${engine})`, () => {
    it("bpf_check_mtu returns and writes what the kernel's test runs did (216 cases per program type)", async () => {
      const progs = await programs(engine)
      const lines = oracleLines('check_mtu_6.18.txt')
      expect(lines.length).toBe(216 * 2)
      for (const [type, len, ifindex, mtuIn, lenDiff, flags, retval] of lines) {
        const pkt = new Uint8Array(Number(len))
        pkt[12] = 8
        pkt[14] = Number(ifindex)
        pkt[15] = Number(mtuIn) & 0xff
        pkt[16] = Number(mtuIn) >> 8
        pkt[17] = Number(lenDiff) & 0xff
        pkt[18] = Number(flags)
        const r = progs.get(`mtu_${type}`)!.run({ data: pkt, network: ORACLE_HOST })
        expect(r.retval, `${type} ${len} ${ifindex} ${mtuIn} ${lenDiff} ${flags}`).toBe(Number(retval))
      }
    })

    it("bpf_fib_lookup checks its arguments and forwarding as the kernel's test runs did (192 cases per program type)", async () => {
      const progs = await programs(engine)
      const lines = oracleLines('fib_lookup_6.18.txt')
      expect(lines.length).toBe(192 * 2)
      for (const [type, family, flags, ifindex, totLen, dst, retval, after] of lines) {
        const pkt = fibPacket(Number(family), Number(flags), Number(ifindex), Number(totLen), ipBytes(dst!))
        const r = progs.get(`fib_${type}`)!.run({ data: pkt, network: ORACLE_HOST })
        const what = `${type} ${family} ${flags} ${ifindex} ${totLen} ${dst}`
        expect(r.retval, what).toBe(Number(retval))
        expect(hex(r.data.subarray(64, 128)), what).toBe(after)
      }
    })

    it('without a network: the loopback only, and no table (NOT_FWDED)', async () => {
      const progs = await programs(engine)
      const pkt = new Uint8Array(64)
      // ifindex 0 (the packet's device): MTU 65536 written, success; ifindex 4: -ENODEV (0xed).
      expect(progs.get('mtu_xdp')!.run({ data: pkt }).retval).toBe(65536 << 8)
      pkt[14] = 4
      expect(progs.get('mtu_xdp')!.run({ data: pkt }).retval).toBe(0xed)
      const fib = progs.get('fib_xdp')!
      expect(fib.run({ data: fibPacket(2, 0, 4, 0, [8, 8, 8, 8]) }).retval).toBe(4)
      // A network without routes is no table either; `routes: []` is an empty one (eth0 forwarding:
      // nothing matches, NOT_FWDED too).
      const noTable = { interfaces: [{ ifindex: 4, mtu: 1400, forwarding: true }] }
      expect(fib.run({ data: fibPacket(2, 0, 4, 0, [8, 8, 8, 8]), network: noTable }).retval).toBe(4)
      const empty = { ...noTable, routes: [] }
      expect(fib.run({ data: fibPacket(2, 0, 4, 0, [8, 8, 8, 8]), network: empty }).retval).toBe(4)
    })

    it('bpf_fib_lookup forwards through the routes given (worked by hand from bpf_ipv4_fib_lookup)', async () => {
      const progs = await programs(engine)
      const network: Network = {
        interfaces: ORACLE_HOST.interfaces.map((i) => ({ ...i, forwarding: true })),
        routes: [
          ...ORACLE_HOST.routes!,
          { dst: '10.0.0.0/8', kind: 'blackhole' },
          { dst: '10.1.0.0/16', kind: 'unreachable' },
          { dst: '198.51.100.0/24', kind: 'prohibit' },
        ],
      }
      for (const type of ['xdp', 'tc']) {
        const fib = progs.get(`fib_${type}`)!
        const look = (flags: number, totLen: number, dst: number[]) => {
          const r = fib.run({ data: fibPacket(2, flags, 4, totLen, dst), network })
          const p = Buffer.from(r.data.subarray(64, 128))
          return {
            rc: r.retval,
            ifindex: p.readUInt32LE(8),
            metric: p.readUInt32LE(12),
            mtu: p.readUInt16LE(6),
            dst: [...p.subarray(32, 36)],
            smac: hex(p.subarray(52, 58)),
            dmac: hex(p.subarray(58, 64)),
          }
        }
        // 8.8.8.8: the default route; the destination becomes the gateway, whose MAC is known.
        expect(look(0, 100, [8, 8, 8, 8])).toEqual({
          rc: 0,
          ifindex: 4,
          metric: 0,
          mtu: 1400,
          dst: [192, 0, 2, 1],
          smac: '02fc00000001',
          dmac: '02fc00000005',
        })
        // On link without a neighbour entry: NO_NEIGH (7); BPF_FIB_LOOKUP_SKIP_NEIGH (4): success, no MACs.
        expect(look(0, 100, [192, 0, 2, 7]).rc).toBe(7)
        expect(look(4, 100, [192, 0, 2, 7])).toMatchObject({ rc: 0, smac: '000000000000', dmac: '000000000000' })
        // tot_len over the route's MTU: FRAG_NEEDED (8), mtu_result 1400.
        expect(look(0, 1401, [8, 8, 8, 8])).toMatchObject({ rc: 8, mtu: 1400 })
        // The longest prefix wins: blackhole 1, unreachable 2, prohibit 3.
        expect(
          [
            [10, 9, 9, 9],
            [10, 1, 2, 3],
            [198, 51, 100, 1],
          ].map((d) => look(0, 0, d).rc),
        ).toEqual([1, 2, 3])
      }
    })

    it('bpf_clone_redirect: each clone is reported with the packet as it was at the call', async () => {
      const clone = (await programs(engine)).get('clone_tc')!
      const pkt = new Uint8Array(60).fill(0xaa)
      pkt.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 8, 0])
      const send = (ifindex: number, flags: number, network?: Network) => {
        const data = pkt.slice()
        data[14] = ifindex
        data[15] = flags
        return { data, r: clone.run({ data, network }) }
      }
      // To the loopback, to its ingress (BPF_F_INGRESS): 0, one copy without the later write.
      const { data, r } = send(1, 1)
      expect(r.retval).toBe(0)
      expect(r.clones).toEqual([{ ifindex: 1, flags: 1, packet: data }])
      expect(r.data[0]).toBe(0x55)
      // The kernel's test runs: flags 2 or an ifindex it lacks: -EINVAL (4294967274), nothing sent.
      for (const [ifindex, flags] of [
        [1, 2],
        [9, 0],
      ] as const) {
        const { r } = send(ifindex, flags)
        expect([r.retval, r.clones]).toEqual([4294967274, undefined])
      }
      // The caller's interfaces: eth0 (4) exists there, and the loopback does not.
      expect(send(4, 0, ORACLE_HOST).r.clones?.map((c) => c.ifindex)).toEqual([4])
      expect(send(1, 0, { interfaces: [{ ifindex: 4, mtu: 1400 }] }).r.retval).toBe(4294967274)
    })
  })
}

describe('network is checked', () => {
  it('malformed networks are EINVAL naming the field', async () => {
    const prog = (await programs('interpreter')).get('mtu_xdp')!
    const cases: Array<[unknown, RegExp]> = [
      ['lo', /network must be an object/],
      [{}, /network.interfaces must be an array/],
      [{ interfaces: [{ ifindex: 0, mtu: 1 }] }, /interfaces\[0\]\.ifindex must not be 0/],
      [{ interfaces: [{ ifindex: 1, mtu: -1 }] }, /interfaces\[0\]\.mtu must be an integer/],
      [{ interfaces: [{ ifindex: 1, mtu: 1, mac: '02:00' }] }, /interfaces\[0\]\.mac must be a MAC address/],
      [
        {
          interfaces: [
            { ifindex: 1, mtu: 1 },
            { ifindex: 1, mtu: 2 },
          ],
        },
        /ifindex 1 is listed twice/,
      ],
      [{ interfaces: [], routes: [{ dst: '10.0.0.0/33', kind: 'blackhole' }] }, /prefix length must be from 0 to 32/],
      [{ interfaces: [], routes: [{ dst: 'example.com' }] }, /routes\[0\]\.dst must be an IPv4 or IPv6 address/],
      [{ interfaces: [], routes: [{ dst: '10.0.0.0/8' }] }, /a unicast route needs the ifindex/],
      [{ interfaces: [], routes: [{ dst: '10.0.0.0/8', kind: 'nat' }] }, /routes\[0\]\.kind must be one of/],
      [
        { interfaces: [{ ifindex: 1, mtu: 1 }], routes: [{ dst: '::/0', ifindex: 1, gateway: '10.0.0.1' }] },
        /gateway is not of the family/,
      ],
    ]
    for (const [network, message] of cases) {
      expect(() => prog.run({ data: new Uint8Array(64), network: network as Network })).toThrow(
        expect.objectContaining({ code: 'EINVAL', message: expect.stringMatching(message) }),
      )
    }
  })

  it('IPv6 routes in every spelling match the same destinations', async () => {
    const fib = (await programs('interpreter')).get('fib_xdp')!
    for (const dst of ['2001:db8::/32', '2001:0db8:0:0::/32', '2001:db8::0.0.0.0/32']) {
      const network: Network = {
        interfaces: [{ ifindex: 4, mtu: 1400, forwarding: true }],
        routes: [{ dst, kind: 'prohibit' }],
      }
      const r = fib.run({ data: fibPacket(10, 0, 4, 0, ipBytes('2001:db8:1:2:3:4:5:6')), network })
      expect(r.retval, dst).toBe(3)
    }
  })
})
