// Per-packet cost of a batch (`runBatchRetvals`), the set-up of a run apart from the program's own
// work: a trivial XDP and socket filter program (`r0 = 2; exit`) and the compiled `tcp port 80`
// filter over 4,096 Ethernet/IPv4 frames of 60 to 590 bytes, given packed (one buffer and a
// Uint32Array of lengths, as `filterPcap` gives them) and as an array of Uint8Arrays (concatenated
// by the call). Prints the best of repeated batches, from JavaScript and inside the engine (the
// batch's `durationNs`, one clock reading at each end).
//
//   npm run build && node bench/batch.bench.mjs [SECONDS per row, default 2]
import { compileFilter, Program } from '../dist/index.js'

const seconds = Number(process.argv[2] ?? 2)
const COUNT = 4096

function frame(i) {
  const size = 60 + ((i * 37) % 531)
  const f = new Uint8Array(size)
  const v = new DataView(f.buffer)
  f.set([2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2])
  v.setUint16(12, 0x0800)
  f[14] = 0x45
  v.setUint16(16, size - 14)
  f[22] = 64
  f[23] = i % 8 === 7 ? 17 : 6
  f.set([10, 0, 0, i & 0xff, 10, 0, 1, (i >> 2) & 0xff], 26)
  v.setUint16(34, [1234, 80, 5555, 443][i % 4])
  v.setUint16(36, [80, 40000, 22, 53][(i >> 2) % 4])
  f[46] = 0x50
  return f
}
const frames = Array.from({ length: COUNT }, (_, i) => frame(i % 64))
const packed = { bytes: Buffer.concat(frames), lengths: Uint32Array.from(frames.map((f) => f.length)) }
// r0 = 2; exit
const TRIVIAL = new Uint8Array([0xb7, 0, 0, 0, 2, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0])
const tcp80 = compileFilter('tcp port 80').instructions

function measure(program, packets) {
  let best = Number.POSITIVE_INFINITY
  let inEngine = Number.POSITIVE_INFINITY
  const end = Date.now() + seconds * 1000
  while (Date.now() < end) {
    const t = process.hrtime.bigint()
    const r = program.runBatchRetvals(packets)
    best = Math.min(best, Number(process.hrtime.bigint() - t))
    inEngine = Math.min(inEngine, r.durationNs ?? Number.NaN)
  }
  return { 'ns/packet from JS': (best / COUNT).toFixed(1), 'ns/packet in engine': (inEngine / COUNT).toFixed(1) }
}

const rows = {}
for (const engine of ['jit', 'interpreter']) {
  for (const type of ['xdp', 'socket_filter']) {
    rows[`${type} r0 = 2, ${engine}, packed`] = measure(new Program({ type, instructions: TRIVIAL, engine }), packed)
  }
  const filter = new Program({ type: 'socket_filter', instructions: tcp80, engine })
  rows[`tcp port 80, ${engine}, packed`] = measure(filter, packed)
  rows[`tcp port 80, ${engine}, array`] = measure(filter, frames)
}
console.table(rows)
