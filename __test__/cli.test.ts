/**
 * The `ebpf` command line, run as users run it (`node bin/ebpf.js ...` on the built package)
 * against the fixtures and small assembled files. Expected values come from outside the code
 * under test: instruction encodings worked out by hand from RFC 9669, bpftool's golden BTF dumps,
 * what the fixtures' C sources define, clang's own section bytes (llvm-objcopy), the layouts in
 * linux/bpf.h, and the TypeScript compiler for the generated declarations.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { nestedUnions } from './helpers/btf-builder'
import { conformanceDir, conformanceSuiteExists, loadConformanceSuite, wordsToBytes } from './helpers/conformance'
import { ipv4Packet } from './helpers/packets'

const root = join(__dirname, '..')
const bin = join(root, 'bin', 'ebpf.js')
const fixtures = join(__dirname, 'fixtures')
const FIREWALL = join(fixtures, 'xdp_firewall.bpf.o')

interface Outcome {
  status: number | null
  stdout: string
  stderr: string
}

function ebpf(args: readonly string[], input?: Uint8Array | string): Outcome {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: work, input, encoding: 'utf8', maxBuffer: 1 << 26 })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

/** The same, with stdout as bytes (for `asm -o -`). */
function ebpfBytes(args: readonly string[], input?: Uint8Array | string): { status: number | null; stdout: Buffer } {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: work, input, maxBuffer: 1 << 26 })
  return { status: r.status, stdout: r.stdout }
}

function which(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0
}

/** No JavaScript stack trace may reach the user for a user error. */
function expectNoStack(o: Outcome): void {
  expect(o.stderr).not.toMatch(/\n\s+at /)
  expect(o.stderr).not.toContain('internal error')
}

let work = ''
beforeAll(() => {
  if (!existsSync(join(root, 'dist', 'cli', 'main.js')))
    throw new Error('dist/cli/main.js is missing: run `npm run build`')
  work = mkdtempSync(join(tmpdir(), 'ebpf-cli-'))
})
afterAll(() => rmSync(work, { recursive: true, force: true }))

const file = (name: string, text: string | Uint8Array): string => {
  const p = join(work, name)
  writeFileSync(p, text)
  return p
}

// Encodings by hand (RFC 9669 section 3: opcode, dst | src << 4, off le16, imm le32):
// mov64 r0, 7 = BPF_ALU64 (0x07) | BPF_MOV (0xb0) | BPF_K = 0xb7; exit = BPF_JMP (0x05) | BPF_EXIT (0x90) = 0x95.
const MOV_R0_7_EXIT = Uint8Array.from([0xb7, 0, 0, 0, 7, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0])
// r0 = 0; L1: r0 += 1; if r0 < 10 goto L1; exit. add64 imm = 0x07 | 0x00 = 0x07, jlt imm = 0x05 | 0xa0 = 0xa5, off -2.
const LOOP = Uint8Array.from([
  0xb7, 0, 0, 0, 0, 0, 0, 0, 0x07, 0, 0, 0, 1, 0, 0, 0, 0xa5, 0, 0xfe, 0xff, 10, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0,
])

describe('top level', () => {
  it('--version prints the package version', () => {
    const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version
    const o = ebpf(['--version'])
    expect(o.status).toBe(0)
    expect(o.stdout).toBe(`ebpf ${version}\n`)
  })

  it('help lists every command; help COMMAND shows its options', () => {
    const o = ebpf(['help'])
    expect(o.status).toBe(0)
    for (const c of ['asm', 'disasm', 'prog list', 'map list', 'btf dump', 'gen-types', 'run']) {
      expect(o.stdout).toMatch(new RegExp(`^  ${c} `, 'm'))
    }
    const run = ebpf(['help', 'run'])
    expect(run.status).toBe(0)
    for (const opt of [
      '--program',
      '--type',
      '--data',
      '--hex',
      '--ctx-hex',
      '--engine',
      '--repeat',
      '--budget',
      '--set',
      '--json',
      '--dump-maps',
    ]) {
      expect(run.stdout).toContain(opt)
    }
    expect(ebpf(['prog', 'list', '--help']).stdout).toContain('Usage: ebpf prog list OBJ.o')
  })

  it('no command, an unknown command and an unknown option are usage errors (exit 1)', () => {
    expect(ebpf([]).status).toBe(1)
    const unknown = ebpf(['frobnicate'])
    expect(unknown.status).toBe(1)
    expect(unknown.stderr).toContain("unknown command 'frobnicate'")
    const opt = ebpf(['run', 'x.bin', '--frob'])
    expect(opt.status).toBe(1)
    expect(opt.stderr).toContain("unknown option '--frob'")
    expect(opt.stderr).toContain("Try 'ebpf help run'")
    expectNoStack(opt)
  })
})

describe('completion', () => {
  /** COMPREPLY of the generated bash function for a command line (the last word is completed). */
  function complete(script: string, line: readonly string[]): string[] {
    const words = line.map((w) => `'${w}'`).join(' ')
    const r = spawnSync(
      'bash',
      [
        '-c',
        `source "$1"; COMP_WORDS=(${words}); COMP_CWORD=${line.length - 1}; _ebpf; printf '%s\\n' "\${COMPREPLY[@]}"`,
        'x',
        script,
      ],
      { encoding: 'utf8', cwd: work },
    )
    expect(r.stderr).toBe('')
    return r.stdout.split('\n').filter((l) => l !== '')
  }

  it.skipIf(!which('bash'))('bash: commands, group words, options and option values from the command table', () => {
    const o = ebpf(['completion', 'bash'])
    expect(o.status).toBe(0)
    const script = file('ebpf.bash', o.stdout)
    expect(complete(script, ['ebpf', 'di'])).toEqual(['disasm'])
    expect(complete(script, ['ebpf', 'map', ''])).toEqual(['list', 'show', 'dump', 'lookup', 'update'])
    expect(complete(script, ['ebpf', 'prog', 'run', 'x.o', '--rep'])).toEqual(['--repeat'])
    expect(complete(script, ['ebpf', 'run', 'x.o', '--engine', ''])).toEqual(['jit', 'interpreter', 'auto'])
    expect(complete(script, ['ebpf', 'btf', 'dump', 'x.o', '--format', ''])).toEqual(['raw', 'c'])
    file('prog.o', new Uint8Array(0))
    expect(complete(script, ['ebpf', 'run', 'pro'])).toEqual(['prog.o'])
    // bpftool's words: prog dump's kind, then its keywords (and files) after the object; prog
    // run's keywords after the object, and a file after one that takes a value.
    expect(complete(script, ['ebpf', 'prog', 'dump', ''])).toEqual(['xlated', 'jited'])
    expect(complete(script, ['ebpf', 'prog', 'dump', 'jited', 'pro'])).toEqual(['prog.o'])
    expect(complete(script, ['ebpf', 'prog', 'dump', 'jited', 'prog.o', 'op'])).toEqual(['opcodes'])
    expect(complete(script, ['ebpf', 'prog', 'dump', 'xlated', 'prog.o', 'file', 'pro'])).toEqual(['prog.o'])
    expect(complete(script, ['ebpf', 'prog', 'run', 'prog.o', 'data_'])).toEqual([
      'data_in',
      'data_out',
      'data_size_out',
    ])
    expect(complete(script, ['ebpf', 'prog', 'run', 'prog.o', 'data_in', 'data_'])).toEqual([])
    expect(complete(script, ['ebpf', 'prog', 'run', 'prog.o', 'ctx_in', 'pro'])).toEqual(['prog.o'])
  })

  it.skipIf(!which('zsh'))('zsh: compinit registers it and it completes (bashcompinit runs it with ksharrays)', () => {
    const script = file('ebpf.zsh', ebpf(['completion', 'zsh']).stdout)
    const show = '; print -r -- "$' + '{COMPREPLY[*]}"'
    const lines = [
      'autoload -U compinit && compinit -u',
      'source "$1"',
      'print -r -- "$' + '{_comps[ebpf]}"',
      'setopt ksharrays',
      `COMP_WORDS=(ebpf map ""); COMP_CWORD=2; _ebpf${show}`,
      `COMP_WORDS=(ebpf run x.o --engine ""); COMP_CWORD=4; _ebpf${show}`,
    ]
    const r = spawnSync('zsh', ['-f', '-c', lines.join('\n'), 'x', script], { encoding: 'utf8', cwd: work })
    expect(r.stderr).toBe('')
    expect(r.stdout.split('\n')).toEqual([
      '_bash_complete -o filenames -F _ebpf',
      'list show dump lookup update',
      'jit interpreter auto',
      '',
    ])
  })

  it('zsh gets the same function through bashcompinit; other shells are a usage error', () => {
    const zsh = ebpf(['completion', 'zsh'])
    expect(zsh.stdout.startsWith('autoload -U +X bashcompinit && bashcompinit\n')).toBe(true)
    expect(zsh.stdout).toContain('complete -o filenames -F _ebpf ebpf')
    const fish = ebpf(['completion', 'fish'])
    expect(fish.status).toBe(1)
    expect(fish.stderr).toContain("the shell must be bash or zsh, got 'fish'")
  })
})

describe('asm', () => {
  it('assembles both dialects to the hand-encoded bytes, to FILE.bin by default', () => {
    const conf = file('conf.s', 'mov %r0, 7\nexit\n')
    expect(ebpf(['asm', conf]).status).toBe(0)
    expect(new Uint8Array(readFileSync(join(work, 'conf.bin')))).toEqual(MOV_R0_7_EXIT)
    const llvm = file('llvm.s', 'r0 = 0\nL1:\n  r0 += 1\n  if r0 < 10 goto L1\nexit\n')
    const out = join(work, 'loop.out')
    expect(ebpf(['asm', llvm, '-o', out]).status).toBe(0)
    expect(new Uint8Array(readFileSync(out))).toEqual(LOOP)
  })

  it('--json prints the slot count and the bytes instead of writing them', () => {
    const o = ebpf(['asm', '-', '--json'], 'r0 = 7\nexit\n')
    expect(o.status).toBe(0)
    expect(JSON.parse(o.stdout)).toEqual({ slots: 2, bytes: Buffer.from(MOV_R0_7_EXIT).toString('hex') })
  })

  it('reads standard input and writes standard output with -', () => {
    const o = ebpfBytes(['asm', '-', '-o', '-'], 'r0 = 7\nexit\n')
    expect(o.status).toBe(0)
    expect(new Uint8Array(o.stdout)).toEqual(MOV_R0_7_EXIT)
  })

  it('errors print FILE:line:col and exit 1', () => {
    // Line 2 starts with two spaces, so the mnemonic is at column 3; the register at column 3 too.
    const bad = file('bad.s', 'mov %r0, 1\n  frob %r1\nexit\n')
    const o = ebpf(['asm', bad])
    expect(o.status).toBe(1)
    expect(o.stderr).toBe(`ebpf asm: ${bad}:2:3: unknown mnemonic 'frob'\n`)
    const reg = file('reg.s', 'r0 = 1\n  r11 = 2\nexit\n')
    expect(ebpf(['asm', reg]).stderr).toMatch(new RegExp(`^ebpf asm: ${reg}:2:3: .*r11`))
    // `goto nowhere`: the label starts at column 16 of "if r0 > 2 goto nowhere".
    const label = file('label.s', 'r0 = 1\nif r0 > 2 goto nowhere\nexit\n')
    expect(ebpf(['asm', label]).stderr).toMatch(new RegExp(`^ebpf asm: ${label}:2:16: .*nowhere`))
    expect(existsSync(join(work, 'bad.bin'))).toBe(false)
  })

  it('a missing file names the file', () => {
    const o = ebpf(['asm', join(work, 'nope.s')])
    expect(o.status).toBe(1)
    expect(o.stderr).toBe(`ebpf asm: ${join(work, 'nope.s')}: cannot read: no such file\n`)
    expectNoStack(o)
  })
})

describe('disasm', () => {
  it('raw bytecode in both dialects (the README listing of the same bytes)', () => {
    const bin = file('loop.bin', LOOP)
    expect(ebpf(['disasm', bin]).stdout).toBe('r0 = 0x0\nL1:\nr0 += 0x1\nif r0 < 0xa goto L1\nexit\n')
    expect(ebpf(['disasm', bin, '--dialect', 'conformance']).stdout).toBe(
      'mov %r0, 0\nL1:\nadd %r0, 1\njlt %r0, 10, L1\nexit\n',
    )
  })

  it('a truncated file is an error naming it', () => {
    const bin = file('trunc.bin', MOV_R0_7_EXIT.subarray(0, 12))
    const o = ebpf(['disasm', bin])
    expect(o.status).toBe(1)
    expect(o.stderr).toContain(bin)
    expect(o.stderr).toContain('not a multiple of 8')
    expectNoStack(o)
  })

  it("an object program: C source comments from the fixture, map annotations, and it assembles back to clang's bytes", () => {
    const o = ebpf(['disasm', FIREWALL, '--program', 'xdp_firewall'])
    expect(o.status).toBe(0)
    const lines = o.stdout.split('\n')
    expect(lines[0]).toBe('<xdp_firewall>:')
    // Every source comment quotes the line of xdp_firewall.c it names.
    const c = readFileSync(join(fixtures, 'xdp_firewall.c'), 'utf8').split('\n')
    const comments = lines.filter((l) => l.startsWith('; '))
    expect(comments.length).toBeGreaterThan(20)
    for (const l of comments) {
      const m = /^; (.*) {2}\[xdp_firewall\.c:(\d+):(\d+)\]$/.exec(l)
      expect(m, l).not.toBeNull()
      expect(c[Number(m![2]) - 1]!.trim()).toBe(m![1])
    }
    // The C source looks blocklist up once and counts a verdict on five paths (4 x PASS, 1 x DROP);
    // .rodata holds dry_run (u8, offset 0) and min_len (u32, aligned to offset 4).
    expect(lines.filter((l) => l.endsWith('; map blocklist'))).toHaveLength(1)
    expect(lines.filter((l) => l.endsWith('; map verdicts'))).toHaveLength(5)
    expect(lines.filter((l) => l.endsWith('; &.rodata[0]'))).toHaveLength(1)
    expect(lines.filter((l) => l.endsWith('; &.rodata[4]'))).toHaveLength(1)

    if (!which('llvm-objcopy')) return
    const section = join(work, 'xdp.sec')
    expect(spawnSync('llvm-objcopy', ['-O', 'binary', '--only-section=xdp', FIREWALL, section]).status).toBe(0)
    const back = ebpfBytes(['asm', '-', '-o', '-'], o.stdout)
    expect(back.status).toBe(0)
    expect(new Uint8Array(back.stdout)).toEqual(new Uint8Array(readFileSync(section)))
  })

  it.skipIf(!which('llvm-objcopy'))(
    "every fixture program alone in its section: the listing assembles back to clang's section bytes",
    () => {
      let compared = 0
      for (const f of readdirSync(fixtures).filter((n) => n.endsWith('.bpf.o'))) {
        const obj = join(fixtures, f)
        const list = ebpf(['prog', 'list', obj, '--json', '--kernel-btf', 'none'])
        if (list.status !== 0) continue // objects that need --kconfig / --kernel-btf / unsupported data
        const progs = JSON.parse(list.stdout) as Array<{ name: string; section: string; subprograms: string[] }>
        for (const p of progs) {
          // Sub-programs are appended from .text and sibling functions share a section: those differ from one section's bytes.
          if (p.subprograms.length > 0 || progs.filter((q) => q.section === p.section).length > 1) continue
          const section = join(work, `${f}.${p.name}.sec`)
          expect(spawnSync('llvm-objcopy', ['-O', 'binary', `--only-section=${p.section}`, obj, section]).status).toBe(
            0,
          )
          // Without kernel BTF CO-RE leaves the bytes as clang wrote them (the program is marked unsupported).
          const text = ebpf(['disasm', obj, '--program', p.name, '--kernel-btf', 'none'])
          expect(text.status).toBe(0)
          const back = ebpfBytes(['asm', '-', '-o', '-'], text.stdout)
          expect(back.status, `${f} ${p.name}`).toBe(0)
          expect(new Uint8Array(back.stdout), `${f} ${p.name}`).toEqual(new Uint8Array(readFileSync(section)))
          compared++
        }
      }
      expect(compared).toBeGreaterThanOrEqual(15)
    },
    // Some hundred disasm and llvm-objcopy processes: minutes on a busy two-core machine.
    240_000,
  )

  it.skipIf(!which('llvm-objcopy'))(
    "--json: each instruction's slot, text and clang's bytes, with C lines and maps",
    () => {
      const section = join(work, 'xdp-json.sec')
      expect(spawnSync('llvm-objcopy', ['-O', 'binary', '--only-section=xdp', FIREWALL, section]).status).toBe(0)
      const clang = new Uint8Array(readFileSync(section))
      const o = ebpf(['disasm', FIREWALL, '--json'])
      expect(o.status).toBe(0)
      const [prog] = JSON.parse(o.stdout) as Array<{
        name: string
        instructions: Array<{ insn: number; text: string; bytes: string; source?: { line: number }; map?: string }>
      }>
      expect(prog!.name).toBe('xdp_firewall')
      const joined = prog!.instructions.map((i) => i.bytes).join('')
      expect(joined).toBe(Buffer.from(clang).toString('hex'))
      // Slots count 8 bytes each; an lddw takes two.
      for (const i of prog!.instructions) expect(i.bytes.slice(0, 2) === '18' ? 32 : 16).toBe(i.bytes.length)
      expect(prog!.instructions.filter((i) => i.map === 'verdicts')).toHaveLength(5)
      expect(prog!.instructions.some((i) => i.source !== undefined)).toBe(true)
      // Raw bytecode: one unnamed program (MOV_R0_7_EXIT, encoded by hand).
      const raw = JSON.parse(ebpf(['disasm', file('seven-json.bin', MOV_R0_7_EXIT), '--json']).stdout)
      expect(raw).toEqual([
        {
          instructions: [
            { insn: 0, text: 'r0 = 0x7', bytes: 'b700000007000000' },
            { insn: 1, text: 'exit', bytes: '9500000000000000' },
          ],
        },
      ])
    },
  )

  it('an unknown program lists the ones there are', () => {
    const o = ebpf(['disasm', FIREWALL, '--program', 'nope'])
    expect(o.status).toBe(1)
    expect(o.stderr).toBe(`ebpf disasm: ${FIREWALL}: no program 'nope'; the object has: xdp_firewall\n`)
  })
})

describe('prog list', () => {
  it("xdp_firewall: what the C source defines; the instruction count of libbpf's linked program", () => {
    const libbpf = JSON.parse(readFileSync(join(fixtures, 'xdp_firewall.libbpf.json'), 'utf8')) as Record<
      string,
      { insns: string }
    >
    const insns = libbpf.xdp_firewall!.insns.length / 16 // hex text, 8 bytes a slot
    const o = ebpf(['prog', 'list', FIREWALL])
    expect(o.status).toBe(0)
    const pad = (s: string, n: number) => s.padEnd(n)
    expect(o.stdout).toBe(
      // The tag is what `bpftool prog show` printed for this object loaded by Linux 6.18.
      `${pad('NAME', 12)}  SECTION  TYPE  TAG               INSNS  LICENSE\n` +
        `xdp_firewall  xdp      xdp   0f063bb8abbb026e  ${pad(String(insns), 5)}  Dual MIT/GPL\n`,
    )
  })

  it('tracing.c: sections from its SEC() lines, types as the kernel recorded them (--json)', () => {
    const kernel = JSON.parse(readFileSync(join(fixtures, 'tracing.kernel.json'), 'utf8')) as {
      programs: Record<string, { type: string }>
    }
    const o = ebpf(['prog', 'list', join(fixtures, 'tracing.bpf.o'), '--json'])
    expect(o.status).toBe(0)
    const rows = JSON.parse(o.stdout) as Array<{ name: string; section: string; type: string; license: string }>
    expect(rows.map((r) => [r.name, r.section])).toEqual([
      ['trace_unlink', 'kprobe/do_unlinkat'],
      ['trace_unlink_ret', 'kretprobe/do_unlinkat'],
      ['trace_openat', 'tracepoint/syscalls/sys_enter_openat'],
      ['trace_exit', 'tp/sched/sched_process_exit'],
      ['raw_sys_enter', 'raw_tp/sys_enter'],
      ['uprobe_any', 'uprobe'],
    ])
    for (const r of rows) {
      expect(r.type).toBe(kernel.programs[r.name]!.type)
      expect(r.license).toBe('GPL')
    }
  })

  it('a file that is not an object is an error naming it', () => {
    const bin = file('notelf.bin', MOV_R0_7_EXIT)
    const o = ebpf(['prog', 'list', bin])
    expect(o.status).toBe(1)
    expect(o.stderr).toBe(`ebpf prog list: ${bin}: not an ELF object file\n`)
  })
})

describe('map list', () => {
  it('xdp_firewall: the shapes its C source declares', () => {
    // blocklist: LPM trie, key {u32 prefixlen; u8 addr[4]} = 8, value {u64; u32; u32} = 16, 1024,
    // BPF_F_NO_PREALLOC (1). verdicts: array u32 -> u64, 4. .rodata: dry_run + min_len = 8 bytes,
    // flags as libbpf sets them: BPF_F_MMAPABLE (0x400) | BPF_F_RDONLY_PROG (0x80).
    const o = ebpf(['map', 'list', FIREWALL])
    expect(o.status).toBe(0)
    expect(o.stdout).toBe(
      [
        'NAME       TYPE      KEY  VALUE  MAX_ENTRIES  FLAGS',
        'blocklist  lpm_trie  8    16     1024         0x1',
        'verdicts   array     4    8      4            0x0',
        '.rodata    array     4    8      1            0x480',
        '',
      ].join('\n'),
    )
  })

  it('--json agrees with what the kernel recorded when libbpf loaded the object', () => {
    const kernel = JSON.parse(readFileSync(join(fixtures, 'all_maps.kernel.json'), 'utf8')) as {
      maps: Array<{
        name: string
        type: string
        bytes_key: number
        bytes_value: number
        max_entries: number
        flags: number
      }>
    }
    const o = ebpf(['map', 'list', join(fixtures, 'all_maps.bpf.o'), '-j'])
    expect(o.status).toBe(0)
    const ours = JSON.parse(o.stdout) as Array<{
      name: string
      type: string
      keySize: number
      valueSize: number
      maxEntries: number
      flags: number
    }>
    // The kernel truncates names to 15 bytes and prefixes global data with the object name.
    const byName = new Map(ours.map((m) => [m.name.slice(0, 15), m]))
    let compared = 0
    for (const k of kernel.maps) {
      const m = byName.get(k.name)
      if (!m) continue
      compared++
      expect([m.type, m.keySize, m.valueSize, m.maxEntries, m.flags], k.name).toEqual([
        k.type,
        k.bytes_key,
        k.bytes_value,
        k.max_entries,
        k.flags,
      ])
    }
    expect(compared).toBeGreaterThanOrEqual(8)
  })
})

describe('btf dump', () => {
  const objects = readdirSync(fixtures).filter(
    (f) => f.endsWith('.bpf.o') && existsSync(join(fixtures, f.replace('.bpf.o', '.btf.txt'))),
  )
  it('has the golden files', () => expect(objects.length).toBeGreaterThanOrEqual(12))
  for (const f of objects) {
    it(`${f}: the same bytes as bpftool btf dump file`, () => {
      const o = ebpf(['btf', 'dump', join(fixtures, f)])
      expect(o.status).toBe(0)
      expect(o.stdout === readFileSync(join(fixtures, f.replace('.bpf.o', '.btf.txt')), 'utf8')).toBe(true)
    })
  }

  it.skipIf(!which('bpftool'))(
    '--json: the same bytes as bpftool -j btf dump file, for every fixture and the running kernel (skipped without bpftool)',
    () => {
      const files = objects.map((f) => join(fixtures, f))
      if (existsSync('/sys/kernel/btf/vmlinux')) files.push('/sys/kernel/btf/vmlinux')
      for (const f of files) {
        const theirs = spawnSync('bpftool', ['-j', 'btf', 'dump', 'file', f], { encoding: 'utf8', maxBuffer: 1 << 26 })
        expect(theirs.status, f).toBe(0)
        const o = ebpf(['btf', 'dump', f, '--json'])
        expect(o.status, f).toBe(0)
        expect(o.stdout === theirs.stdout, f).toBe(true)
      }
    },
    120_000,
  )

  it("--format c declares the C source's structs", () => {
    const o = ebpf(['btf', 'dump', FIREWALL, '--format', 'c'])
    expect(o.status).toBe(0)
    expect(o.stdout).toMatch(/struct rule \{\n\s+__u64 hits;\n\s+__u32 action;\n\s+__u32 rule_id;\n\};/)
    expect(o.stdout).toMatch(/struct lpm_v4_key \{\n\s+__u32 prefixlen;\n\s+__u8 addr\[4\];\n\};/)
  })

  it('a blob whose C dump would be 3^30 declarations is an error naming it, not a hang', () => {
    const blob = file('nested.btf', nestedUnions(30))
    const o = ebpf(['btf', 'dump', blob, '--format', 'c'])
    expect(o.status).toBe(1)
    expect(o.stdout).toBe('')
    expect(o.stderr).toContain(`${blob}: BTF is too large for a C dump`)
    expectNoStack(o)
  })

  it('an object without BTF is an error naming it', () => {
    const o = ebpf(['btf', 'dump', join(fixtures, 'nobtf.bpf.o')])
    expect(o.status).toBe(1)
    expect(o.stderr).toContain(join(fixtures, 'nobtf.bpf.o'))
    expect(o.stderr).toContain('.BTF')
    expectNoStack(o)
  })
})

describe('gen-types', () => {
  it('declarations the TypeScript compiler accepts, typed as the C source says', () => {
    const dts = join(work, 'fw.d.ts')
    expect(ebpf(['gen-types', FIREWALL, '-o', dts]).status).toBe(0)
    // A user of the declarations: values shaped after the C structs must type-check, wrong ones must not.
    const ok = file(
      'use.ts',
      `import type { Maps, Variables } from './fw'\n` +
        `const rule: Maps['blocklist']['value'] = { hits: 1n, action: 1, rule_id: 7 }\n` +
        `const key: Maps['blocklist']['key'] = { prefixlen: 24, addr: [192, 168, 7, 0] }\n` +
        `const count: Maps['verdicts']['value'] = 3n\n` +
        `const v: Variables = { dry_run: 0, min_len: 34 }\n` +
        `export { rule, key, count, v }\n`,
    )
    const bad = file(
      'bad.ts',
      `import type { Maps } from './fw'\nexport const rule: Maps['blocklist']['value'] = { hits: 1, action: 1, rule_id: 7 }\n`,
    )
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
    const args = ['--noEmit', '--strict', '--target', 'ES2022', '--module', 'Node16', '--moduleResolution', 'Node16']
    // One compiler run for both files (it is the slow part): its errors name their file.
    const r = spawnSync(process.execPath, [tsc, ...args, ok, bad], { encoding: 'utf8' })
    expect(r.status).not.toBe(0)
    expect(r.stderr).toBe('')
    const errors = r.stdout.split('\n').filter((l) => l.includes('error TS'))
    expect(errors).toHaveLength(1)
    expect(errors[0]).toMatch(/^.*bad\.ts\(2,\d+\): error TS2322: .*'number' is not assignable to type 'bigint'/)
  }, 180_000)

  it('writes to standard output without -o', () => {
    const o = ebpf(['gen-types', FIREWALL])
    expect(o.status).toBe(0)
    expect(o.stdout).toContain('export interface Maps {')
  })
})

describe('run: raw bytecode and assembly', () => {
  it('prints retval, r0 and the instruction count', () => {
    const o = ebpf(['run', file('seven.bin', MOV_R0_7_EXIT)])
    expect(o.status).toBe(0)
    expect(o.stdout).toMatch(/^retval: 7\nr0: 7 \(0x7\)\ninsns: 2\nduration: \d+ ns\nengine: (jit|interpreter)\n$/)
  })

  it('the loop of LOOP runs 1 + 10 x 2 + 1 instructions on both engines (--json)', () => {
    const bin = file('loop2.bin', LOOP)
    for (const engine of ['interpreter', 'jit']) {
      const o = ebpf(['run', bin, '--engine', engine, '--json'])
      expect(o.status).toBe(0)
      const r = JSON.parse(o.stdout) as Record<string, unknown>
      expect(r.retval).toBe(10)
      expect(r.insnCount).toBe(22)
      expect(r.dataChanged).toBe(false)
    }
  })

  it('data from --hex and --data; changed data is printed as hex', () => {
    // r0 = data[0]; data[1] = r0: aa bb cc -> aa aa cc, retval 0xaa = 170.
    const s = file('copy.s', 'r0 = *(u8 *)(r1 + 0)\n*(u8 *)(r1 + 1) = r0\nexit\n')
    const o = ebpf(['run', s, '--hex', 'aa bb cc'])
    expect(o.status).toBe(0)
    expect(o.stdout).toContain('retval: 170\n')
    expect(o.stdout).toContain('data: aaaacc\n')
    const d = file('in.dat', Uint8Array.of(5, 6))
    expect(ebpf(['run', s, '--data', d]).stdout).toContain('data: 0505\n')
    // The input length arrives in r2 (the raw type's convention).
    expect(ebpf(['run', file('len.s', 'r0 = r2\nexit\n'), '--hex', '0102030405']).stdout).toContain('retval: 5\n')
  })

  it('prints what bpf_trace_printk wrote', () => {
    // "hi\n\0" on the stack (little-endian 0x000a6968), bpf_trace_printk(fmt, 4) is helper 6.
    const s = file(
      'printk.s',
      'r1 = 0xa6968\n*(u32 *)(r10 - 4) = r1\nr1 = r10\nr1 += -4\nr2 = 4\ncall 6\nr0 = 0\nexit\n',
    )
    const o = ebpf(['run', s])
    expect(o.status).toBe(0)
    expect(o.stdout).toContain('trace:\n  hi\n')
    expect((JSON.parse(ebpf(['run', s, '--json']).stdout) as { trace: string[] }).trace).toEqual(['hi'])
  })

  it('--type tracing reads --ctx-hex; --type socket_filter sees skb->len (offset 0 of __sk_buff)', () => {
    const load32 = file('ctx.s', 'r0 = *(u32 *)(r1 + 0)\nexit\n')
    // Verified (the default for a kernel type), a kprobe's context is a whole struct pt_regs.
    const short = ebpf(['run', load32, '--type', 'tracing', '--ctx-hex', '78563412'])
    expect(short.status).toBe(2)
    expect(short.stderr).toContain('struct pt_regs of 168 bytes, and was given 4 bytes')
    expect(ebpf(['run', load32, '--type', 'tracing', '--mode', 'checked', '--ctx-hex', '78563412']).stdout).toContain(
      `retval: ${0x12345678}\n`,
    )
    const pkt = Buffer.from(ipv4Packet()).toString('hex') // 14 + 20 + 8 = 42 bytes
    expect(ebpf(['run', load32, '--type', 'socket_filter', '--hex', pkt]).stdout).toContain('retval: 42\n')
  })

  it('--type tc names the tc action and reports a redirect (bpf_redirect(3, BPF_F_INGRESS))', () => {
    const redirect = file('redirect.s', 'r1 = 3\nr2 = 1\ncall 23\nexit\n')
    const pkt = Buffer.from(ipv4Packet()).toString('hex')
    const o = ebpf(['run', redirect, '--type', 'tc', '--hex', pkt])
    expect(o.stdout).toContain('retval: 7 (TC_ACT_REDIRECT)\n')
    expect(o.stdout).toContain('redirect: ifindex 3 (ingress)\n')
    const j = JSON.parse(ebpf(['run', redirect, '--type', 'tc', '--hex', pkt, '--json']).stdout)
    expect([j.action, j.redirect]).toEqual(['TC_ACT_REDIRECT', { ifindex: 3, flags: 1 }])
  })

  it('--repeat reports the mean', () => {
    expect(ebpf(['run', file('r.bin', MOV_R0_7_EXIT), '--repeat', '5']).stdout).toMatch(
      /duration: \d+ ns \(mean of 5 runs\)/,
    )
  })

  it('a trap exits 2 with its kind and instruction; --json carries it', () => {
    const s = file('oob.s', 'r0 = 0\nr0 = *(u64 *)(r1 + 100)\nexit\n')
    const o = ebpf(['run', s, '--hex', '00112233'])
    expect(o.status).toBe(2)
    expect(o.stdout).toBe('')
    expect(o.stderr).toMatch(new RegExp(`^ebpf run: ${s}: trap out_of_bounds \\(EFAULT\\): `))
    expect(o.stderr).toContain('trapped at instruction 1 after executing 1 instructions')
    expectNoStack(o)
    const j = ebpf(['run', s, '--hex', '00', '--json'])
    expect(j.status).toBe(2)
    expect((JSON.parse(j.stdout) as { error: unknown }).error).toMatchObject({
      code: 'EFAULT',
      kind: 'out_of_bounds',
      insn: 1,
      size: 8,
    })
    const loop = file('forever.s', 'l: goto l\nexit\n')
    const b = ebpf(['run', loop, '--budget', '1000'])
    expect(b.status).toBe(2)
    expect(b.stderr).toContain('trap budget_exhausted (ETIME)')
  })

  it('usage and load errors exit 1 and name the file', () => {
    const seven = file('s.bin', MOV_R0_7_EXIT)
    const both = ebpf(['run', seven, '--hex', '00', '--data', seven])
    expect(both.status).toBe(1)
    expect(both.stderr).toContain('not both')
    // A capture file is refused as --data (its magic, 0xa1b2c3d4 little-endian, from pcap-savefile(5)).
    const capture = file('c.pcap', Uint8Array.of(0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, ...new Array(16).fill(0)))
    const refused = ebpf(['run', seven, '--data', capture])
    expect(refused.status).toBe(1)
    expect(refused.stderr).toContain(`${capture}: is a pcap capture file, not one packet's bytes`)
    expectNoStack(refused)
    const hex = ebpf(['run', seven, '--hex', '0g'])
    expect(hex.status).toBe(1)
    expect(hex.stderr).toContain("'g' is not a hex digit")
    const set = ebpf(['run', seven, '--set', 'x=1'])
    expect(set.status).toBe(1)
    expect(set.stderr).toContain(`--set needs an ELF object; ${seven} is not one`)
    const bad = file('bad.bin', Uint8Array.of(0xff, 0, 0, 0, 0, 0, 0, 0))
    const load = ebpf(['run', bad])
    expect(load.status).toBe(1)
    expect(load.stderr).toBe(`ebpf run: ${bad}: instruction 0: unknown opcode 0xff\n`)
    const asm = ebpf(['run', file('oops.s', 'r0 = \nexit\n')])
    expect(asm.status).toBe(1)
    expect(asm.stderr).toMatch(/oops\.s:1:\d+: /)
    const missing = ebpf(['run', join(work, 'missing.bin')])
    expect(missing.status).toBe(1)
    expect(missing.stderr).toBe(`ebpf run: ${join(work, 'missing.bin')}: cannot read: no such file\n`)
    for (const o of [both, hex, set, load, asm, missing]) expectNoStack(o)
  })
})

describe('run: the XDP firewall object (verdicts worked out from xdp_firewall.c)', () => {
  const XDP_ABORTED = 0
  const XDP_DROP = 1
  const XDP_PASS = 2
  const hex = (b: Uint8Array) => Buffer.from(b).toString('hex')
  const blocked = hex(ipv4Packet({ src: [192, 168, 7, 9] }))
  // 192.168.7.0/24 -> { action: XDP_DROP, rule_id: 7 }
  const rule = 'blocklist=[{"prefixlen":24,"addr":[192,168,7,0]},{"hits":0,"action":1,"rule_id":7}]'

  interface Json {
    retval: number
    action: string
    maps: Record<string, { entries?: Array<{ key: unknown; value: unknown }>; variables?: Record<string, unknown> }>
  }
  const run = (...args: string[]): Json => {
    const o = ebpf(['run', FIREWALL, '--json', '--dump-maps', ...args])
    expect(o.stderr).toBe('')
    expect(o.status).toBe(0)
    return JSON.parse(o.stdout) as Json
  }
  const verdicts = (j: Json) => j.maps.verdicts!.entries!.map((e) => e.value)

  for (const engine of ['interpreter', 'jit']) {
    it(`${engine}: a source in a DROP rule's prefix is dropped, the rule's hits and the DROP counter go to 1`, () => {
      const j = run('--engine', engine, '--hex', blocked, '--map-update', rule)
      expect([j.retval, j.action]).toEqual([XDP_DROP, 'XDP_DROP'])
      expect(j.maps.blocklist!.entries).toEqual([
        { key: { prefixlen: 24, addr: [192, 168, 7, 0] }, value: { hits: 1, action: 1, rule_id: 7 } },
      ])
      expect(verdicts(j)).toEqual([0, 1, 0, 0])
    })

    it(`${engine}: no matching rule passes; dry_run=1 (--set) passes a matching packet but counts the hit`, () => {
      const none = run('--engine', engine, '--hex', blocked)
      expect([none.retval, none.action]).toEqual([XDP_PASS, 'XDP_PASS'])
      expect(verdicts(none)).toEqual([0, 0, 1, 0])
      const dry = run('--engine', engine, '--hex', blocked, '--map-update', rule, '--set', 'dry_run=1')
      expect(dry.retval).toBe(XDP_PASS)
      expect(dry.maps['.rodata']!.variables).toEqual({ dry_run: 1, min_len: 34 })
      expect((dry.maps.blocklist!.entries![0]!.value as { hits: number }).hits).toBe(1)
    })

    it(`${engine}: min_len=14 (--set) lets a 20-byte IPv4 frame reach the IP header check: XDP_ABORTED`, () => {
      const runt = hex(ipv4Packet({ src: [192, 168, 7, 9] }).subarray(0, 20))
      expect(run('--engine', engine, '--hex', runt).retval).toBe(XDP_PASS) // shorter than min_len 34
      const j = run('--engine', engine, '--hex', runt, '--set', 'min_len=14')
      expect(j.retval).toBe(XDP_ABORTED)
      expect(verdicts(j)).toEqual([0, 0, 0, 0])
    })
  }

  it('text output names the action and lists maps and variables', () => {
    const o = ebpf(['run', FIREWALL, '--hex', blocked, '--map-update', rule, '--dump-maps'])
    expect(o.status).toBe(0)
    expect(o.stdout).toContain('retval: 1 (XDP_DROP)\n')
    expect(o.stdout).toContain(
      'map blocklist (lpm_trie):\n  { prefixlen: 24, addr: [192, 168, 7, 0] }: { hits: 1, action: 1, rule_id: 7 }\n',
    )
    expect(o.stdout).toContain('map verdicts (array):\n  0: 0\n  1: 1\n  2: 0\n  3: 0\n')
    expect(o.stdout).toContain('map .rodata (array):\n  dry_run = 0\n  min_len = 34\n')
  })

  it('a trap inside the object names the C source line', () => {
    const o = ebpf(['run', FIREWALL, '--hex', blocked, '--budget', '3'])
    expect(o.status).toBe(2)
    expect(o.stderr).toContain('trap budget_exhausted (ETIME)')
    const m = /\n {2}source: (.*xdp_firewall\.c):(\d+):(\d+): (.*)\n/.exec(o.stderr)
    expect(m).not.toBeNull()
    const c = readFileSync(join(fixtures, 'xdp_firewall.c'), 'utf8').split('\n')
    expect(c[Number(m![2]) - 1]!.trim()).toBe(m![4])
  })

  it('errors: unknown program, unknown variable, unknown map, a program choice needed', () => {
    const prog = ebpf(['run', FIREWALL, '--program', 'nope'])
    expect(prog.status).toBe(1)
    expect(prog.stderr).toBe(`ebpf run: ${FIREWALL}: no program 'nope'; the object has: xdp_firewall\n`)
    const v = ebpf(['run', FIREWALL, '--set', 'nope=1'])
    expect(v.status).toBe(1)
    expect(v.stderr).toBe(`ebpf run: ${FIREWALL}: no global variable 'nope'; the object has: dry_run, min_len\n`)
    const badValue = ebpf(['run', FIREWALL, '--set', 'dry_run=300'])
    expect(badValue.status).toBe(1)
    expect(badValue.stderr).toContain('--set dry_run: ')
    const map = ebpf(['run', FIREWALL, '--map-update', 'nope=[1,2]'])
    expect(map.status).toBe(1)
    expect(map.stderr).toContain("no map 'nope'")
    const tracing = join(fixtures, 'tracing.bpf.o')
    const many = ebpf(['run', tracing])
    expect(many.status).toBe(1)
    expect(many.stderr).toContain('has 6 programs; choose one with --program NAME')
    for (const o of [prog, v, badValue, map, many]) expectNoStack(o)
  })
})

describe('objects that need load options', () => {
  const KCONFIG = join(fixtures, 'kconfig.bpf.o')
  const packet = Buffer.from(ipv4Packet()).toString('hex') // 42 bytes

  it('--kconfig gives .kconfig externs their values (kconfig.c: version > 0x050000 ? skb->len + CONFIG_HZ : 0)', () => {
    const run = (...kconfig: string[]) =>
      ebpf(['run', KCONFIG, '--hex', packet, ...kconfig.flatMap((k) => ['--kconfig', k])])
    expect(run('LINUX_KERNEL_VERSION=0x060c00', 'CONFIG_HZ=250').stdout).toContain('retval: 292\n')
    expect(run('LINUX_KERNEL_VERSION=0x040000', 'CONFIG_HZ=250').stdout).toContain('retval: 0\n')
    // CONFIG_HZ is __weak: left out, it is 0.
    expect(run('LINUX_KERNEL_VERSION=0x060c00').stdout).toContain('retval: 42\n')
    const missing = run()
    expect(missing.status).toBe(1)
    expect(missing.stderr).toContain("'LINUX_KERNEL_VERSION'")
    expect(missing.stderr).toContain('--kconfig NAME=VALUE')
    expectNoStack(missing)
  })

  const vmlinux = '/sys/kernel/btf/vmlinux'
  it.skipIf(!existsSync(vmlinux))(`--kernel-btf applies CO-RE relocations (skipped without ${vmlinux})`, () => {
    const core = join(fixtures, 'core.bpf.o')
    // Without kernel BTF the object is listed, its CO-RE program marked unsupported with the reason.
    const without = ebpf(['prog', 'list', core, '--kernel-btf', 'none'])
    expect(without.status).toBe(0)
    expect(without.stdout).toContain("core_switch: cannot be loaded here: program 'core_switch': CO-RE relocation")
    expect(without.stdout).toContain('--kernel-btf FILE')
    // core.c: SEC("raw_tp/sched_switch") int core_switch(...), GPL. With vmlinux given, and by
    // default (the running kernel's BTF), it is relocated.
    for (const args of [['--kernel-btf', vmlinux], []]) {
      const o = ebpf(['prog', 'list', core, ...args, '--json'])
      expect(o.status).toBe(0)
      const [p] = JSON.parse(o.stdout)
      expect(p).toMatchObject({
        name: 'core_switch',
        section: 'raw_tp/sched_switch',
        type: 'raw_tracepoint',
        license: 'GPL',
      })
      expect(p.unsupported).toBeUndefined()
    }
  })
})

describe('run --dump-maps: every map type of all_maps.c after one packet', () => {
  it('values worked out from the C source for a 42-byte UDP packet from 10.0.0.1', () => {
    const packet = Buffer.from(ipv4Packet({ src: [10, 0, 0, 1] })).toString('hex')
    const o = ebpf([
      'run',
      join(fixtures, 'all_maps.bpf.o'),
      '--program',
      'all_maps',
      '--hex',
      packet,
      '--dump-maps',
      '--json',
    ])
    expect(o.status).toBe(0)
    const j = JSON.parse(o.stdout) as { retval: number; maps: Record<string, Record<string, unknown>> }
    // The prog_array slot is empty, so bpf_tail_call falls through to `return XDP_DROP`.
    expect(j.retval).toBe(1)
    // saddr is read as a host (little-endian) u32: bytes 0a 00 00 01 -> 0x0100000a.
    const saddr = 0x0100000a
    expect(j.maps.by_source!.entries).toEqual([{ key: saddr, value: 1 }])
    expect(j.maps.recent!.entries).toEqual([{ key: saddr, value: 42 }])
    expect(j.maps.packets!.entries).toEqual([
      { key: 0, value: 1 },
      { key: 1, value: 0 },
      { key: 2, value: 0 },
      { key: 3, value: 0 },
    ])
    // len (u32 42) into the ring buffer and the queue, proto (u32 17, UDP) onto the stack.
    expect(j.maps.lengths).toEqual({ type: 'ringbuf', values: ['2a000000'] })
    expect(j.maps.arrivals).toEqual({ type: 'queue', values: ['2a000000'] })
    expect(j.maps.protos).toEqual({ type: 'stack', values: ['11000000'] })
    const perCpu = j.maps.proto_bytes!.entries as Array<{ key: number; value: number[] }>
    expect(perCpu.map((e) => [e.key, e.value.reduce((a, b) => a + b, 0)])).toEqual([[17, 42]])
    expect(j.maps['.bss']!.variables).toEqual({ last_flags: 0 })
  })
})

describe('run: a trap after output', () => {
  it('keeps what the program printed before it trapped', () => {
    // bpf_trace_printk("hi\n") as above, then a load from r1 + 100: r1 still points at the string
    // (helpers leave r1-r5 unchanged), 4 bytes below the stack top, so the load is past the stack.
    const s = file(
      'printk-trap.s',
      'r1 = 0xa6968\n*(u32 *)(r10 - 4) = r1\nr1 = r10\nr1 += -4\nr2 = 4\ncall 6\nr0 = *(u64 *)(r1 + 100)\nexit\n',
    )
    const o = ebpf(['run', s])
    expect(o.status).toBe(2)
    expect(o.stdout).toBe('trace:\n  hi\n')
    expect(o.stderr).toContain('trap out_of_bounds (EFAULT)')
    const j = ebpf(['run', s, '--json'])
    expect(j.status).toBe(2)
    expect((JSON.parse(j.stdout) as { trace: string[] }).trace).toEqual(['hi'])
  })
})

describe('run: a sample of the bpf_conformance suite through the command line', () => {
  const present = conformanceSuiteExists()
  const ci = process.env.CI !== undefined && !['', '0', 'false'].includes(process.env.CI)
  it('the suite is present (required under CI)', () => {
    if (!present && ci) throw new Error(`conformance suite not found at ${conformanceDir()} (set BPF_CONFORMANCE_DIR)`)
  })
  // Every 13th case (24 of 313): a process per case is slow, and the suite runs in full elsewhere.
  const sample = present ? loadConformanceSuite().filter((_, i) => i % 13 === 0) : []
  for (const c of sample) {
    it.skipIf(!present)(`${c.name}: r0 is the suite's expected result`, () => {
      const input = c.raw ? file(`${c.name}.bin`, wordsToBytes(c.raw)) : file(`${c.name}.s`, c.asm)
      const o = ebpf(['run', input, '--hex', Buffer.from(c.mem).toString('hex'), '--json'])
      expect(o.stderr).toBe('')
      expect(o.status).toBe(0)
      const r0 = (JSON.parse(o.stdout) as { r0: number | string }).r0
      expect(BigInt.asUintN(64, BigInt(r0))).toBe(c.expected)
    })
  }
})
