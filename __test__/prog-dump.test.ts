/**
 * `ebpf prog dump xlated|jited`: bpftool's layout for a fixture. Expected text comes from the C
 * source (the prototype, the source lines), RFC 9669 encodings worked out by hand, and, where the
 * kernel can be used (root, bpftool), from `bpftool prog dump xlated` of the same object loaded by
 * the kernel: the same prototype line, source lines and instruction opcodes up to the first place
 * where the kernel's own rewriting (inlined map lookups) makes the programs differ.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { KernelObject, kernelOracle } from './helpers/kernel'

const bin = join(__dirname, '..', 'bin', 'ebpf.js')
const FIREWALL = join(__dirname, 'fixtures', 'xdp_firewall.bpf.o')

function ebpf(...args: string[]) {
  return spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' })
}

/** (slot, opcode) of each instruction line and the source lines, from either tool's text. */
function shape(text: string) {
  const lines = text.split('\n')
  return {
    proto: lines[0],
    insns: lines.flatMap((l) => {
      const m = /^\s*(\d+): \(([0-9a-f]{2})\) /.exec(l)
      return m ? [[Number(m[1]), m[2]] as const] : []
    }),
    sources: lines.filter((l) => l.startsWith('; ')),
  }
}

describe('ebpf prog dump', () => {
  it('lists xlated instructions with the prototype and source lines, as bpftool does', () => {
    const r = ebpf('prog', 'dump', 'xlated', FIREWALL, 'opcodes')
    expect(r.status).toBe(0)
    const lines = r.stdout.split('\n')
    // xdp_firewall.c: `int xdp_firewall(struct xdp_md *ctx)`, written as bpftool writes prototypes.
    expect(lines[0]).toBe('int xdp_firewall(struct xdp_md * ctx):')
    // Its first statement (line 46-47 of the C source) loads data_end, then data.
    expect(lines[1]).toBe('; void *data_end = (void *)(long)ctx->data_end;')
    // `r4 = r1`: mov64 register (0xbf), dst 4 and src 1 in one byte (src << 4 | dst = 0x14).
    const at = lines.indexOf('   5: (bf) r4 = r1')
    expect(at).toBeGreaterThan(0)
    expect(lines[at + 1]).toBe('       bf 14 00 00 00 00 00 00')
    // An lddw of a map value: two slots on one line, slot 3 never listed.
    expect(lines).toContain('   2: (18) r3 = map[idx:0]+4')
    expect(lines.some((l) => /^\s+3: /.test(l))).toBe(false)
    const linum = ebpf('prog', 'dump', 'xlated', FIREWALL, 'linum')
    expect(linum.stdout.split('\n')[1]).toMatch(
      /^; void \*data_end = .* \[file:.*xdp_firewall\.c line_num:47 line_col:\d+\]$/,
    )
    const j = JSON.parse(ebpf('prog', 'dump', 'xlated', FIREWALL, '--json').stdout)
    expect(j[0]).toEqual({
      proto: 'int xdp_firewall(struct xdp_md * ctx)',
      src: 'void *data_end = (void *)(long)ctx->data_end;',
      disasm: j[0].disasm,
    })
    // Entries are instructions (the lddw at slot 2 is one): the fifth is slot 5, where a line
    // info record of line 53 starts again; the sixth has none.
    expect(j[4]).toEqual({
      src: 'if (data + min_len > data_end || (void *)(eth + 1) > data_end) {',
      disasm: '(bf) r4 = r1',
    })
    expect(j[5]).toEqual({ disasm: '(0f) r4 += r3' })
  })

  it('lists jited code with the source lines at instruction boundaries', () => {
    const r = ebpf('prog', 'dump', 'jited', FIREWALL)
    expect(r.status).toBe(0)
    expect(r.stdout).toMatch(/int xdp_firewall\(struct xdp_md \* ctx\):\n; void \*data_end = .*\n; insn 0\n/)
  })

  it('names what is wrong with its arguments', () => {
    expect(ebpf('prog', 'dump', 'xlatd', FIREWALL).stderr).toContain("xlated or jited, not 'xlatd'")
    expect(ebpf('prog', 'dump', 'xlated', FIREWALL, 'linenum').stderr).toContain("unknown word 'linenum'")
  })

  const oracle = kernelOracle()
  it.skipIf(!oracle.ok)(
    `agrees with bpftool on the kernel's load (${oracle.ok ? 'root, bpftool' : oracle.reason})`,
    () => {
      const kernel = KernelObject.load(FIREWALL)
      try {
        const theirs = shape(
          execFileSync('bpftool', ['prog', 'dump', 'xlated', 'pinned', join(kernel.dir, 'xdp_firewall')], {
            encoding: 'utf8',
          }),
        )
        const ours = shape(ebpf('prog', 'dump', 'xlated', FIREWALL).stdout)
        expect(ours.proto).toBe(theirs.proto)
        // Up to the first helper call: the kernel inlines array map lookups after it.
        const firstCall = ours.insns.findIndex(([, op]) => op === '85')
        expect(firstCall).toBeGreaterThan(5)
        expect(ours.insns.slice(0, firstCall)).toEqual(theirs.insns.slice(0, firstCall))
        expect(ours.sources.slice(0, 6)).toEqual(theirs.sources.slice(0, 6))
      } finally {
        kernel.close()
      }
    },
  )
})
