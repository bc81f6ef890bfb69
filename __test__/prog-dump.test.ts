/**
 * `ebpf prog dump xlated|jited`: bpftool's layout for a fixture. Expected text comes from the C
 * source (the prototype, the source lines), RFC 9669 encodings worked out by hand, and, where the
 * kernel can be used (root, bpftool), from `bpftool prog dump xlated` of the same object loaded by
 * the kernel: the same prototype line, source lines and instruction opcodes up to the first place
 * where the kernel's own rewriting (inlined map lookups) makes the programs differ; and, on every
 * fixture the kernel loads, every program's prototype lines and source lines. The jited text is
 * checked against GNU objdump (libopcodes, what bpftool built with libbfd prints) disassembling
 * the same bytes, section by section (one per function, as bpftool disassembles each of the
 * kernel's images). The cut into functions is checked against the kernel's own: for every program
 * of the fixtures with subprograms, a small libbpf loader (helpers/jited_funcs.c) prints the
 * kernel's image symbols (jited_ksyms looked up in /proc/kallsyms, in the kernel's order) and
 * which image each line info record landed in (jited_line_info).
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadCollectionSpecSync } from '../ts/spec.js'
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
    protos: lines.filter((l) => /^\S.*\):$/.test(l)),
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

  it("lists jited code in bpftool's layout: prototype, symbol, source lines, `%4x:\\t` and the instruction", () => {
    const r = ebpf('prog', 'dump', 'jited', FIREWALL)
    expect(r.status).toBe(0)
    const lines = r.stdout.split('\n')
    expect(lines.slice(0, 3)).toEqual([
      'int xdp_firewall(struct xdp_md * ctx):',
      // The kernel's symbol: bpf_prog_TAG_NAME, the tag `bpftool prog show` gave for this object (Linux 6.18).
      'bpf_prog_0f063bb8abbb026e_xdp_firewall:',
      '; void *data_end = (void *)(long)ctx->data_end;',
    ])
    expect(lines[3]).toMatch(/^ {3}0:\t\S/)
    // bpftool ends each function with an empty line. After the one function, the code it shares
    // with none (out of line here) under the function's symbol with `.cold`, again from 0.
    expect(r.stdout.endsWith('\n\n')).toBe(true)
    const cold = lines.indexOf('bpf_prog_0f063bb8abbb026e_xdp_firewall.cold:')
    expect(lines[cold - 1]).toBe('')
    expect(lines[cold + 1]).toMatch(/^ {3}0:\t\S/)
    const j = JSON.parse(ebpf('prog', 'dump', 'jited', FIREWALL, 'linum', 'opcodes', '--json').stdout)
    expect(j.map((f: { name: string }) => f.name)).toEqual([
      'bpf_prog_0f063bb8abbb026e_xdp_firewall',
      'bpf_prog_0f063bb8abbb026e_xdp_firewall.cold',
    ])
    expect(j[1].proto).toBeUndefined()
    expect(j[0].proto).toBe('int xdp_firewall(struct xdp_md * ctx)')
    expect(j[0].name).toBe('bpf_prog_0f063bb8abbb026e_xdp_firewall')
    expect(j[0].insns[0]).toMatchObject({
      src: 'void *data_end = (void *)(long)ctx->data_end;',
      file: expect.stringMatching(/xdp_firewall\.c$/),
      line_num: 47,
      pc: '0x0',
    })
    // Every eBPF instruction slot but an lddw's second starts some x86-64 instruction.
    const starts = j[0].insns
      .filter((i: { insn?: number }) => i.insn !== undefined)
      .map((i: { insn: number }) => i.insn)
    expect(starts[0]).toBe(0)
    expect(new Set(starts).size).toBe(starts.length)
  })

  it('jited text is what GNU objdump prints for the same bytes (bpftool built with libbfd)', () => {
    if (spawnSync('sh', ['-c', 'command -v objdump']).status !== 0) {
      console.warn('objdump not installed (binutils): the jited text is not compared')
      return
    }
    for (const [fixture, program] of [
      ['xdp_firewall.bpf.o', 'xdp_firewall'],
      ['subprogs.bpf.o', 'xdp_bucket'],
      ['tc_skb.bpf.o', 'tc_nat'],
      ['bpf_loop.bpf.o', 'xdp_loop_sum'],
      ['types.bpf.o', 'flow_track'],
      ['all_maps.bpf.o', 'all_maps'],
    ] as const) {
      // One run: the code is JIT-compiled afresh (new blinding keys) each time.
      const path = join(__dirname, 'fixtures', fixture)
      const text = ebpf('prog', 'dump', 'jited', path, '--program', program, 'opcodes').stdout
      // Each function (and the shared code) is its own section, from offset 0, which bpftool
      // disassembles on its own: so does objdump here.
      const sections = text.split('\n\n').filter((t) => t !== '')
      expect(sections.length, fixture).toBeGreaterThan(1)
      let total = 0
      for (const section of sections) {
        const lines = section.split('\n')
        const ours: string[] = []
        const bytes: number[] = []
        for (let i = 0; i < lines.length; i++) {
          if (!/^ *[0-9a-f]+:\t/.test(lines[i]!)) continue
          ours.push(lines[i]!)
          // opcodes: the bytes on the next line, `\t` and `%02x ` each, as bpftool prints them.
          expect(lines[i + 1]).toMatch(/^\t([0-9a-f]{2} )+$/)
          bytes.push(
            ...lines[i + 1]!.trim()
              .split(' ')
              .map((b) => Number.parseInt(b, 16)),
          )
        }
        expect(ours[0], `${fixture}: ${lines.find((l) => l.startsWith('bpf_prog_'))}`).toMatch(/^ {3}0:\t/)
        const file = join(mkdtempSync(join(tmpdir(), 'ebpf-jited-')), 'code.bin')
        writeFileSync(file, Uint8Array.from(bytes))
        const od = execFileSync('objdump', ['-D', '-b', 'binary', '-m', 'i386:x86-64', file], { encoding: 'utf8' })
        // objdump: `   0:\t53                   \tpush   %rbx`; long instructions continue their bytes on a
        // line of their own (no text), which is left out.
        const theirs = od.split('\n').flatMap((l) => {
          const p = l.split('\t')
          if (!/^ *[0-9a-f]+:$/.test(p[0]!) || p.length < 3) return []
          return [`${p[0]!.trim().padStart(5)}\t${p[2]!.trimEnd()}`]
        })
        expect(ours, fixture).toEqual(theirs)
        total += ours.length
      }
      expect(total, fixture).toBeGreaterThan(100)
    }
  })

  it("names called functions and callbacks as bpftool's xlated dump does", () => {
    // subprogs.c: xdp_bucket calls bucket_of (slot 14 in the linked program) and record (slot
    // 29); bucket_of calls mix (18) and fold (24); fold calls mix. Callees by their symbols (the
    // kernel's, Linux 6.18, but for record's: it calls a helper, see the section above).
    const calls = (path: string, program: string) =>
      ebpf('prog', 'dump', 'xlated', path, '--program', program)
        .stdout.split('\n')
        .filter((l) => l.includes('call pc'))
        .map((l) => l.trim())
    const subprogs = join(__dirname, 'fixtures', 'subprogs.bpf.o')
    const record = ebpf('prog', 'dump', 'jited', subprogs, '--program', 'xdp_bucket')
      .stdout.split('\n')
      .find((l) => l.endsWith('_record:'))!
      .slice(0, -1)
    expect(calls(subprogs, 'xdp_bucket')).toEqual([
      '5: (85) call pc+8#bpf_prog_314f7e841836cddd_bucket_of',
      `7: (85) call pc+21#${record}`,
      '14: (85) call pc+3#bpf_prog_9eae40c2ab9b6fa9_mix',
      '16: (85) call pc+7#bpf_prog_7464cb99fd8c1ab1_fold',
      '26: (85) call pc-9#bpf_prog_9eae40c2ab9b6fa9_mix',
    ])
    // bpf_loop.c: the callback add_byte's address; add_byte starts at slot 22 (its function
    // info), the lddw is at 9: 22 - (9 + 1) = +12. (The kernel prints +30: it inlines bpf_loop
    // before it, Linux 6.18.)
    const loop = ebpf(
      'prog',
      'dump',
      'xlated',
      join(__dirname, 'fixtures', 'bpf_loop.bpf.o'),
      '--program',
      'xdp_loop_sum',
    )
    expect(loop.stdout.split('\n')).toContain('   9: (18) r2 = subprog[+12]')
  })

  it("file FILE writes the raw bytes, as bpftool's file", () => {
    const dir = mkdtempSync(join(tmpdir(), 'ebpf-dump-file-'))
    try {
      // xlated: the bytes `opcodes` lists (an lddw's two slots on one line).
      const out = join(dir, 'xlated.bin')
      expect(ebpf('prog', 'dump', 'xlated', FIREWALL, 'file', out).status).toBe(0)
      const listed = ebpf('prog', 'dump', 'xlated', FIREWALL, 'opcodes')
        .stdout.split('\n')
        .filter((l) => /^ {7}[0-9a-f]{2}( [0-9a-f]{2})+$/.test(l))
        .flatMap((l) => l.trim().split(' '))
      expect(readFileSync(out).toString('hex')).toBe(listed.join(''))
      // jited: every section's code, one after the other; the same size as the listing's (each
      // run compiles afresh, with new blinding keys, but the same instructions).
      const code = join(dir, 'jited.bin')
      const r = ebpf('prog', 'dump', 'jited', FIREWALL, 'file', code, '--json')
      expect(r.status).toBe(0)
      expect(JSON.parse(r.stdout)).toBe(null)
      const sizes = JSON.parse(ebpf('prog', 'dump', 'jited', FIREWALL, 'opcodes', '--json').stdout).flatMap(
        (f: { insns: { opcodes: string[] }[] }) => f.insns.map((i) => i.opcodes.length),
      )
      expect(readFileSync(code).length).toBe(sizes.reduce((a: number, b: number) => a + b, 0))
      expect(ebpf('prog', 'dump', 'jited', FIREWALL, 'file', code, 'opcodes').stderr).toContain(
        "'file' is not compatible with 'opcodes' or 'linum'",
      )
      expect(ebpf('prog', 'dump', 'jited', FIREWALL, 'file').stderr).toContain('file needs a path')
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
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

  it.skipIf(!oracle.ok)(
    `every program of every fixture the kernel loads: the same prototype and source lines and tag as bpftool (${oracle.ok ? 'root, bpftool' : oracle.reason})`,
    () => {
      const dir = join(__dirname, 'fixtures')
      let compared = 0
      let tagged = 0
      for (const f of readdirSync(dir).filter((x) => x.endsWith('.bpf.o'))) {
        let kernel: KernelObject
        try {
          kernel = KernelObject.load(join(dir, f))
        } catch {
          continue // objects the kernel refuses (no BTF, legacy maps, missing targets)
        }
        try {
          const list = ebpf('prog', 'list', join(dir, f), '--json')
          const tags = new Map<string, string>(
            list.status === 0
              ? JSON.parse(list.stdout).map((x: { name: string; tag: string }) => [x.name, x.tag] as const)
              : [],
          )
          for (const p of readdirSync(kernel.dir).filter((x) => x !== 'maps')) {
            const shown = JSON.parse(
              execFileSync('bpftool', ['-j', 'prog', 'show', 'pinned', join(kernel.dir, p)], { encoding: 'utf8' }),
            )
            if (tags.has(p)) {
              expect(tags.get(p), `${f} ${p}: tag`).toBe(shown.tag)
              tagged++
            }
            const r = ebpf('prog', 'dump', 'xlated', join(dir, f), '--program', p)
            // core_full needs the BTF of a kernel with its fields, kconfig a value for LINUX_KERNEL_VERSION.
            if (r.status !== 0 && /unknown helper|has no value/.test(r.stderr)) continue
            expect(r.status, `${f} ${p}: ${r.stderr}`).toBe(0)
            const theirs = shape(
              execFileSync('bpftool', ['prog', 'dump', 'xlated', 'pinned', join(kernel.dir, p)], { encoding: 'utf8' }),
            )
            const ours = shape(r.stdout)
            expect(ours.protos, `${f} ${p}`).toEqual(theirs.protos)
            expect(ours.sources, `${f} ${p}`).toEqual(theirs.sources)
            compared++
          }
        } finally {
          kernel.close()
        }
      }
      expect(compared).toBeGreaterThan(40)
      expect(tagged).toBeGreaterThan(40)
    },
    120_000,
  )

  const loader = ((): { exe: string } | { reason: string } => {
    if (!oracle.ok) return { reason: oracle.reason }
    const exe = join(mkdtempSync(join(tmpdir(), 'ebpf-jited-funcs-')), 'jited_funcs')
    try {
      execFileSync('cc', ['-O1', '-o', exe, join(__dirname, 'helpers', 'jited_funcs.c'), '-lbpf'], { stdio: 'pipe' })
    } catch (e) {
      return { reason: `cannot build helpers/jited_funcs.c with cc and libbpf: ${(e as Error).message}` }
    }
    return { exe }
  })()

  /** What the kernel made of each program of `fixture`: its images' symbols, line records per image, xlated code. */
  function kernelImages(exe: string, fixture: string) {
    const progs = new Map<string, { funcs: string[]; lines: string[][]; xlated: Buffer; starts: number[] }>()
    let cur: { funcs: string[]; lines: string[][]; xlated: Buffer; starts: number[] } | undefined
    for (const l of execFileSync(exe, [fixture], { encoding: 'utf8' }).trim().split('\n')) {
      const [what, ...rest] = l.split(' ')
      if (what === 'prog') {
        cur = { funcs: [], lines: [], xlated: Buffer.alloc(0), starts: [] }
        progs.set(rest[0]!, cur)
      } else if (what === 'func') {
        cur!.funcs.push(rest[0]!)
        cur!.lines.push([])
      } else if (what === 'line') {
        const [func, , line, col] = rest.map(Number)
        cur!.lines[func!]!.push(`${line}:${col}`)
      } else if (what === 'xlated') cur!.xlated = Buffer.from(rest[0]!, 'hex')
      else if (what === 'finfo') cur!.starts.push(Number(rest[0]))
    }
    return progs
  }

  /**
   * A function's instructions with what neither side fixes at load blanked: calls to functions
   * (their offsets and function indices) and map references (fds, ids, handles).
   */
  function comparable(bytes: Uint8Array, from: number, to: number): string {
    const b = Buffer.from(bytes.subarray(from * 8, to * 8))
    for (let at = 0; at < b.length; at += 8) {
      const src = b[at + 1]! >> 4
      if (b[at] === 0x85 && src === 1) b.fill(0, at + 2, at + 8)
      if (b[at] === 0x18 && (src === 1 || src === 2)) {
        b.fill(0, at + 4, at + 8)
        b.fill(0, at + 12, at + 16)
        b[at + 1] = b[at + 1]! & 0x0f
      }
    }
    return b.toString('hex')
  }

  it.skipIf(!('exe' in loader))(
    `cuts programs with subprograms into the kernel's functions: names, order, line records (${'exe' in loader ? 'root, libbpf' : (loader as { reason: string }).reason})`,
    () => {
      const exe = (loader as { exe: string }).exe
      let functions = 0
      let sameTag = 0
      try {
        // map_in_map: one function, whose name (16 characters) the symbol keeps whole.
        for (const fixture of ['subprogs', 'bpf_loop', 'pkt_counter', 'linked', 'types', 'v4_ops', 'map_in_map']) {
          const path = join(__dirname, 'fixtures', `${fixture}.bpf.o`)
          for (const [program, kernel] of kernelImages(exe, path)) {
            const at = `${fixture} ${program}`
            const r = ebpf('prog', 'dump', 'jited', path, '--program', program, 'linum', '--json')
            expect(r.status, `${at}: ${r.stderr}`).toBe(0)
            const sections: { name: string; insns: { pc: string; line_num?: number; line_col?: number }[] }[] =
              JSON.parse(r.stdout)
            const ours = sections.filter((s) => !s.name.endsWith('.cold'))
            expect(sections.at(-1)!.name, at).toBe(`${ours[0]!.name}.cold`)
            expect(ours.length, at).toBe(kernel.funcs.length)
            const spec = loadCollectionSpecSync(path).programs.get(program)!
            const starts = spec.funcInfo.map((f) => f.insn)
            for (let k = 0; k < ours.length; k++) {
              const name = ours[k]!.name
              const theirs = kernel.funcs[k]!
              // bpf_prog_TAG_NAME: the same function name in the same place, offsets from 0, and
              // the same line info records (line and column, in order) in it.
              expect(name.replace(/^bpf_prog_[0-9a-f]{16}_/, ''), at).toBe(
                theirs.replace(/^bpf_prog_[0-9a-f]{16}_/, ''),
              )
              expect(ours[k]!.insns[0]!.pc, at).toBe('0x0')
              const lines = ours[k]!.insns.flatMap((i) =>
                i.line_num === undefined ? [] : [`${i.line_num}:${i.line_col}`],
              )
              expect(lines, `${at} ${name}`).toEqual(kernel.lines[k])
              // The tag: the main function's is the program's (taken at load); a subprogram's is
              // the kernel's when the kernel compiled the function's instructions as the object
              // has them (no helper call, division or context access it rewrote first).
              const end = (list: number[], bytes: Uint8Array) => list[k + 1] ?? bytes.length / 8
              const unchanged =
                comparable(spec.instructions, starts[k]!, end(starts, spec.instructions)) ===
                comparable(kernel.xlated, kernel.starts[k]!, end(kernel.starts, kernel.xlated))
              if (k === 0 || unchanged) {
                expect(name, at).toBe(theirs)
                sameTag++
              }
              functions++
            }
          }
        }
      } finally {
        rmSync(join(exe, '..'), { recursive: true, force: true })
      }
      // 9 programs, 21 functions; the same symbol for the 9 main functions and 8 of the 12
      // subprograms (Linux 6.18: record, account twice, signed_math call helpers or divide).
      expect(functions).toBe(21)
      expect(sameTag).toBe(17)
    },
    120_000,
  )
})
