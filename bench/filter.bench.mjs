/**
 * Throughput of a compiled `tcp port 80` filter over a capture, against libpcap's interpreter
 * (`tcpdump -r FILE -w /dev/null 'tcp port 80'`) in the same run. Needs the built package
 * (`npm run build`) and tcpdump. Usage: node bench/filter.bench.mjs [PACKETS] (default 1,000,000).
 *
 * Rows: end to end (`program.filterPcap(file, OUT)`: read, filter, write the kept packets, against
 * `tcpdump -r FILE -w OUT` doing the same, OUT /dev/null and then a file, taking turns for ROUNDS
 * rounds: the best wall time and the least CPU time of each; a path takes filterPcap's fast road,
 * the same file as a stream its general one), the reading alone (`pcap.readBatches`, and
 * `tcpdump -r` with no filter), and the filter alone (`runBatchRetvals` over batches already in
 * memory: the engine's packets per second, on one core). Needs bash to time tcpdump.
 */
import { spawnSync } from 'node:child_process'
import { createReadStream, mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { compileFilter, Program, pcap } from '../dist/index.js'

const root = join(fileURLToPath(import.meta.url), '..', '..')
const bin = join(root, 'bin', 'ebpf.js')

const count = Number(process.argv[2] ?? 1_000_000)
/** Rounds of the end-to-end comparison (ROUNDS in the environment, default 5). */
const ROUNDS = Number(process.env.ROUNDS ?? 5)
const EXPR = 'tcp port 80'
const dir = mkdtempSync(join(tmpdir(), 'ebpf-filter-bench-'))
const file = join(dir, 'bench.pcap')

/** 64 frames: IPv4 TCP to and from ports 80, 443, 22 and UDP 53, 60 to 590 bytes; a quarter match. */
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
const frames = Array.from({ length: 64 }, (_, i) => frame(i))

function* packets() {
  for (let i = 0; i < count; i++) yield { timestamp: BigInt(i) * 1000n, data: frames[i % 64] }
}

/** Runs the command after it and prints its wall, user and system times in seconds (bash's `time`, from the kernel's rusage, to the millisecond). */
const CHILD_TIME = 'TIMEFORMAT="%3R %3U %3S"; time "$@" >/dev/null 2>/dev/null'
const mps = (n, ns) => `${((n / ns) * 1e3).toFixed(2)} M/s`
function time(fn) {
  const t = process.hrtime.bigint()
  const r = fn()
  return [r, Number(process.hrtime.bigint() - t)]
}
async function timeAsync(fn) {
  const t = process.hrtime.bigint()
  const r = await fn()
  return [r, Number(process.hrtime.bigint() - t)]
}

const rows = []
try {
  await pcap.write(file, packets())
  const size = statSync(file).size
  const compiled = compileFilter(EXPR)
  const tcpdumpInsns = spawnSync('tcpdump', ['-d', EXPR], { encoding: 'utf8' }).stdout.trim().split('\n').length
  console.log(
    `${count} packets, ${(size / 2 ** 20).toFixed(0)} MiB; '${EXPR}': ${compiled.classic.length} classic instructions ` +
      `(tcpdump -d: ${tcpdumpInsns}), ${compiled.instructions.length / 8} eBPF instructions`,
  )
  // End to end, tcpdump and the fast road taking turns for ROUNDS rounds, both reading FILE from
  // the page cache and writing the kept packets to /dev/null, then both to a file: the best wall
  // time of each, and the least CPU time (user + system: ours from process.cpuUsage, which counts
  // every thread of this process; tcpdump's from the kernel's accounting of the child, through
  // bash's `time`, to the millisecond). tcpdump's figures include its start-up (about 2 ms of
  // CPU here), ours do not (the command row below has them).
  const programs = Object.fromEntries(
    ['jit', 'interpreter'].map((engine) => [
      engine,
      new Program({ type: 'socket_filter', instructions: compiled.instructions, engine }),
    ]),
  )
  const outFile = join(dir, 'kept.pcap')
  const sides = {
    'tcpdump /dev/null': [Infinity, Infinity],
    'jit /dev/null': [Infinity, Infinity],
    'interpreter /dev/null': [Infinity, Infinity],
    'tcpdump file': [Infinity, Infinity],
    'jit file': [Infinity, Infinity],
  }
  const tcpdump = (out) => {
    const r = spawnSync('bash', ['-c', CHILD_TIME, 'bash', 'tcpdump', '-r', file, '-w', out, EXPR], {
      encoding: 'utf8',
    })
    if (r.status !== 0) throw new Error(`tcpdump: ${r.stderr}`)
    const [wall, user, system] = r.stderr.trim().split('\n').pop().split(' ').map(Number)
    return [wall * 1e9, (user + system) * 1e9]
  }
  const ours = async (engine, out) => {
    const cpu = process.cpuUsage()
    const [summary, ns] = await timeAsync(() => programs[engine].filterPcap(file, out))
    const used = process.cpuUsage(cpu)
    return [summary, ns, (used.user + used.system) * 1e3]
  }
  const keep = (side, ns, cpuNs) => {
    sides[side] = [Math.min(sides[side][0], ns), Math.min(sides[side][1], cpuNs)]
  }
  let kept = 0
  for (let round = 0; round < ROUNDS; round++) {
    keep('tcpdump /dev/null', ...tcpdump('/dev/null'))
    for (const engine of ['jit', 'interpreter']) {
      const [summary, ns, cpuNs] = await ours(engine, '/dev/null')
      kept = summary.kept
      keep(`${engine} /dev/null`, ns, cpuNs)
    }
    keep('tcpdump file', ...tcpdump(outFile))
    const tdSize = statSync(outFile).size
    const [, ns, cpuNs] = await ours('jit', outFile)
    keep('jit file', ns, cpuNs)
    if (statSync(outFile).size !== tdSize)
      throw new Error(`filterPcap wrote ${statSync(outFile).size} bytes, tcpdump ${tdSize}`)
  }
  const tdFilter = sides['tcpdump /dev/null'][0]
  for (const [engine, out, peer] of [
    ['jit', '/dev/null', 'tcpdump /dev/null'],
    ['interpreter', '/dev/null', 'tcpdump /dev/null'],
    ['jit', 'file', 'tcpdump file'],
  ]) {
    const [ns, cpuNs] = sides[`${engine} ${out}`]
    const [tdNs, tdCpu] = sides[peer]
    const to = out === 'file' ? 'to a file' : 'to /dev/null'
    rows.push([
      `filterPcap end to end ${to} (${engine}), best wall time of ${ROUNDS}`,
      mps(count, ns),
      mps(count, tdNs),
      (tdNs / ns).toFixed(2),
    ])
    rows.push([
      `filterPcap end to end ${to} (${engine}): packets per CPU second, least CPU time of ${ROUNDS}`,
      mps(count, cpuNs),
      mps(count, tdCpu),
      (tdCpu / cpuNs).toFixed(2),
    ])
  }
  const [, tdRead] = time(() => spawnSync('tcpdump', ['-r', file, '-w', '/dev/null'], { stdio: 'ignore' }))
  for (const engine of ['jit', 'interpreter']) {
    const program = programs[engine]
    // The same file as a stream: the general path (readBatches + writeBatches), for comparison with the fast one.
    const [general, gns] = await timeAsync(() =>
      program.filterPcap(createReadStream(file, { highWaterMark: 1 << 16 }), '/dev/null'),
    )
    if (general.kept !== kept) throw new Error(`general path kept ${general.kept}, fast ${kept}`)
    rows.push([
      `filterPcap end to end, general path (input as a stream) (${engine})`,
      mps(count, gns),
      mps(count, tdFilter),
      (tdFilter / gns).toFixed(2),
    ])
  }
  const batches = []
  const [, readNs] = await timeAsync(async () => {
    for await (const b of pcap.readBatches(file)) batches.push(b.map((p) => p.data))
  })
  rows.push([
    'reading only: pcap.readBatches vs tcpdump -r -w /dev/null, no filter',
    mps(count, readNs),
    mps(count, tdRead),
    (tdRead / readNs).toFixed(2),
  ])
  for (const engine of ['jit', 'interpreter']) {
    const program = new Program({ type: 'socket_filter', instructions: compiled.instructions, engine })
    let inEngine = 0
    const [n, ns] = time(() => {
      let k = 0
      for (const b of batches) {
        const { retvals, durationNs } = program.runBatchRetvals(b)
        inEngine += durationNs ?? Number.NaN
        for (let i = 0; i < retvals.length; i++) if (retvals[i] !== 0) k++
      }
      return k
    })
    if (n !== kept) throw new Error(`runBatchRetvals kept ${n}, filterPcap ${kept}`)
    rows.push([`filter only: runBatchRetvals on batches in memory (${engine})`, mps(count, ns), '', ''])
    rows.push([`filter only: inside the engine (${engine}, the batches' durationNs)`, mps(count, inEngine), '', ''])
  }
  const cli = (args) => {
    const r = spawnSync(process.execPath, [bin, 'filter', ...args, '--json'], { encoding: 'utf8', maxBuffer: 1 << 24 })
    if (r.status !== 0) throw new Error(`ebpf filter ${args.join(' ')}: ${r.stderr}`)
    return JSON.parse(r.stdout)
  }
  const [expr, exprNs] = time(() => cli([EXPR, file, '-w', '/dev/null']))
  if (expr.kept !== kept) throw new Error(`ebpf filter kept ${expr.kept}, filterPcap ${kept}`)
  rows.push([
    `ebpf filter '${EXPR}' FILE -w /dev/null (process, start-up included)`,
    mps(count, exprNs),
    mps(count, tdFilter),
    (tdFilter / exprNs).toFixed(2),
  ])
  const object = join(root, '__test__', 'fixtures', 'pcap_verdicts.bpf.o')
  const [xdp, xdpNs] = time(() =>
    cli([object, '--program', 'xdp_sort', file, '--out-pass', '/dev/null', '--out-tx', '/dev/null']),
  )
  rows.push([
    `ebpf filter XDP xdp_sort FILE --out-pass/--out-tx /dev/null (${Object.entries(xdp.verdicts)
      .map(([v, n]) => `${v} ${n}`)
      .join(', ')})`,
    mps(count, xdpNs),
    '',
    '',
  ])
  console.log(`kept ${kept} of ${count}`)
} finally {
  rmSync(dir, { recursive: true, force: true })
}
console.log('| what | ebpf (packets/s) | tcpdump (packets/s) | ebpf / tcpdump |')
console.log('| --- | --- | --- | --- |')
for (const r of rows) console.log(`| ${r.join(' | ')} |`)
