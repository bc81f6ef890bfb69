/**
 * `--json` on every command, against the schemas the README documents ("Command line", the table
 * after `<!-- json-schemas`): every command of the command table has a row, runs with `--json`
 * on a fixture, prints one JSON document, and each object it prints at the top (or each element
 * of the array it prints) has the required keys of one of its row's shapes and no key that row
 * does not name. The README is the contract here; the values are checked by each command's own
 * suite against the oracles (bpftool, tcpdump, the C sources).
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import type { Command } from '../ts/cli/command'
import { COMMANDS, GROUPS } from '../ts/cli/commands'
import { pcap } from '../ts/index'

const root = join(__dirname, '..')
const bin = join(root, 'bin', 'ebpf.js')
const FIREWALL = join(__dirname, 'fixtures', 'xdp_firewall.bpf.o')
const SOCKET = join(__dirname, 'fixtures', 'socket_filter.bpf.o')

/** One shape of a row: its keys at any depth, and those required at the top. */
interface Shape {
  keys: Set<string>
  required: Set<string>
}

/**
 * `{ a, b?, c: [{ d }] }` -> keys a, b, c, d; required at depth `top` (1): a, c. `{ MAP: { ... } }`
 * (map dump, map update: one key per map) is read at depth 2.
 */
function shapeOf(span: string, top: number): Shape {
  const keys = new Set<string>()
  const required = new Set<string>()
  let depth = 0
  const re = /[{,]\s*([A-Za-z_][A-Za-z0-9_]*)(\?)?|[{}]/g
  for (let m = re.exec(span); m; m = re.exec(span)) {
    if (m[0] === '{') depth++
    else if (m[0] === '}') depth--
    else {
      if (m[0].startsWith('{')) depth++
      keys.add(m[1]!)
      if (depth === top && !m[2]) required.add(m[1]!)
    }
  }
  return { keys, required }
}

/** The README's table: command name -> the shapes its `--json` row gives. */
function documented(): Map<string, Shape[]> {
  const readme = readFileSync(join(root, 'README.md'), 'utf8')
  const at = readme.indexOf('<!-- json-schemas')
  expect(at).toBeGreaterThan(0)
  const rows = readme.slice(at).split('\n').slice(1)
  const out = new Map<string, Shape[]>()
  for (const row of rows.slice(2)) {
    if (!row.startsWith('|')) break
    const [, names, schema] = row.split(/ \| |^\| | \|$/)
    const top = /\{ MAP: /.test(schema ?? '') ? 2 : 1
    const shapes = [...(schema ?? '').matchAll(/`(\[?\{[^`]*)`/g)].map((m) => shapeOf(m[1]!, top))
    for (const n of (names ?? '').matchAll(/`([^`]+)`/g)) out.set(n[1]!, shapes)
  }
  return out
}

let work: string
const invocations: Record<string, string[][]> = {}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'ebpf-cli-json-'))
  const asm = join(work, 'a.s')
  writeFileSync(asm, 'r0 = 1\nexit\n')
  const bytes = join(work, 'a.bin')
  writeFileSync(bytes, Buffer.from('b7000000010000009500000000000000', 'hex'))
  // An IPv4/UDP frame from 192.168.7.9 (the firewall fixture's test frame), 60 bytes.
  const frame = Buffer.alloc(60)
  Buffer.from('0200000000020200000000010800450000220000000040110000c0a807090a00000204d2005000080000', 'hex').copy(frame)
  const packet = join(work, 'packet.bin')
  writeFileSync(packet, frame)
  const capture = join(work, 'in.pcap')
  await pcap.write(
    capture,
    [frame, frame.subarray(0, 20)].map((data, i) => ({ data, originalLength: data.length, timestamp: BigInt(i) })),
  )
  Object.assign(invocations, {
    asm: [['asm', asm, '-o', '-']],
    disasm: [
      ['disasm', FIREWALL],
      ['disasm', bytes],
    ],
    'prog list': [['prog', 'list', FIREWALL]],
    'prog dump': [
      ['prog', 'dump', 'xlated', FIREWALL, 'linum', 'opcodes'],
      ['prog', 'dump', 'jited', FIREWALL, 'linum', 'opcodes'],
    ],
    'prog run': [['prog', 'run', FIREWALL, 'data_in', packet, 'data_out', '-']],
    'map list': [['map', 'list', FIREWALL]],
    'map dump': [['map', 'dump', FIREWALL]],
    'map lookup': [['map', 'lookup', FIREWALL, '--map', 'verdicts', '--key', '1']],
    'map update': [['map', 'update', FIREWALL, '--map', 'verdicts', '--key', '1', '--value', '7']],
    'btf dump': [['btf', 'dump', FIREWALL]],
    'gen-types': [['gen-types', FIREWALL]],
    'gen skeleton': [
      ['gen', 'skeleton', FIREWALL],
      ['gen', 'skeleton', FIREWALL, '-o', join(work, 'skel.ts')],
    ],
    completion: [['completion', 'bash']],
    verify: [['verify', FIREWALL]],
    run: [
      ['run', FIREWALL, '--data', packet, '--dump-maps', '--trace-limit', '2'],
      ['run', FIREWALL, '--pcap', capture],
    ],
    filter: [
      ['filter', 'udp', capture, '-w', join(work, 'udp.pcap')],
      ['filter', SOCKET, capture, '-w', join(work, 'sock.pcap')],
      ['filter', FIREWALL, capture, '--out-pass', join(work, 'pass.pcap')],
    ],
  })
})

/** The objects a document holds at its top: an array's elements, or the object itself. */
function tops(name: string, doc: unknown): Record<string, unknown>[] {
  const list = Array.isArray(doc) ? doc : [doc]
  // map dump / update: one key per map; their values have the shape.
  if (name === 'map dump' || name === 'map update') return list.flatMap((d) => Object.values(d as object))
  return list as Record<string, unknown>[]
}

/** The keys of `o` and of the objects in its arrays of objects (one level down), as the rows list them. */
function keysOf(o: Record<string, unknown>): string[] {
  const out = Object.keys(o)
  for (const v of Object.values(o)) {
    if (Array.isArray(v) && v.length > 0 && typeof v[0] === 'object' && v[0] !== null && !Array.isArray(v[0])) {
      for (const e of v) out.push(...Object.keys(e as object))
    }
  }
  return out
}

describe('--json on every command, as the README documents it', () => {
  const table = documented()
  const names = new Set<string>(COMMANDS.map((c: Command) => c.name))
  for (const sub of Object.values(GROUPS)) for (const c of Object.values(sub)) names.add(c.name)

  it('every command offers --json and has a row', () => {
    for (const name of names) {
      const c = COMMANDS.find((x) => x.name === name)!
      expect(Object.keys(c.options), name).toContain('json')
      expect(table.has(name), `README json-schemas row for ${name}`).toBe(true)
      expect(table.get(name)!.length, name).toBeGreaterThan(0)
    }
  })

  for (const name of names) {
    it(`${name} --json prints the documented shape`, () => {
      const runs = invocations[name]
      expect(runs, `an invocation of ${name} in this test`).toBeDefined()
      // btf dump's keys are bpftool's (checked byte for byte in cli.test.ts); only its top is checked here.
      const shapes = table.get(name)!
      for (const argv of runs!) {
        const r = spawnSync(process.execPath, [bin, ...argv, '--json'], { encoding: 'utf8', cwd: work })
        expect(r.status, `${argv.join(' ')}: ${r.stderr}`).toBe(0)
        // prog run's data_out - goes to stdout before bpftool's one-line object, as bpftool does.
        const doc = JSON.parse(name === 'prog run' ? r.stdout.trim().split('\n').at(-1)! : r.stdout)
        for (const o of tops(name, doc)) {
          const keys = name === 'btf dump' ? Object.keys(o) : keysOf(o)
          const fits = shapes.some(
            (s) => [...s.required].every((k) => k in o) && keys.every((k) => s.keys.has(k) || name === 'btf dump'),
          )
          expect(fits, `${argv.join(' ')}: keys ${JSON.stringify(keys)} fit no documented shape`).toBe(true)
        }
      }
    })
  }
})
