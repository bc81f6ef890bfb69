/**
 * `ebpf verify`, run as users run it (`node bin/ebpf.js verify ...`). The verdicts expected come from
 * the live kernel (Linux 6.18): it loads socket_filter.bpf.o (the fixture's `.kernel.json`), and it
 * rejects probe_read.bpf.o with its license section patched to "BSD" with, for task_fields,
 *   ; struct fake_task *t = (struct fake_task *)bpf_get_current_task(); @ probe_read.c:41
 *   0: (85) call bpf_get_current_task#35
 *   cannot call GPL-restricted function from non-GPL compatible program
 * (bpftool -d prog loadall of the patched object).
 */
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const root = join(__dirname, '..')
const bin = join(root, 'bin', 'ebpf.js')
const fixtures = join(__dirname, 'fixtures')

function ebpf(args: readonly string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: work, encoding: 'utf8', maxBuffer: 1 << 26 })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

let work = ''
let bsdProbeRead = ''
beforeAll(() => {
  if (!existsSync(join(root, 'dist', 'cli', 'main.js')))
    throw new Error('dist/cli/main.js is missing: run `npm run build`')
  work = mkdtempSync(join(tmpdir(), 'ebpf-verify-'))
  // The license section's "GPL\0" is the only such bytes in the object.
  const bytes = readFileSync(join(fixtures, 'probe_read.bpf.o'))
  const at = bytes.indexOf('GPL\0')
  expect(at).toBeGreaterThan(0)
  expect(bytes.indexOf('GPL\0', at + 1)).toBe(-1)
  bytes.write('BSD\0', at)
  bsdProbeRead = join(work, 'probe_read_bsd.o')
  writeFileSync(bsdProbeRead, bytes)
})
afterAll(() => rmSync(work, { recursive: true, force: true }))

describe('ebpf verify', () => {
  it('prints only the summary of an accepted program at level 1 and exits 0, as the kernel does', () => {
    const o = ebpf(['verify', join(fixtures, 'socket_filter.bpf.o')])
    expect(o.stderr).toBe('')
    expect(o.status).toBe(0)
    // The kernel's summary for the same program (bpftool -d prog loadall).
    expect(o.stdout).toBe(
      "== udp_port_filter (section 'socket')\n" +
        'processed 50 insns (limit 1000000) max_states_per_insn 0 total_states 5 peak_states 5 mark_read 0\n' +
        'udp_port_filter: accepted (50 insns processed)\n',
    )
  })

  it('prints the walk with source lines at --log-level 2', () => {
    const o = ebpf(['verify', join(fixtures, 'socket_filter.bpf.o'), '--log-level', '2'])
    expect(o.status).toBe(0)
    expect(o.stdout).toContain(
      '0: R1=ctx() R10=fp0\n; int udp_port_filter(struct __sk_buff *skb) @ socket_filter.c:19\n' +
        '0: (bf) r7 = r1                       ; R1=ctx() R7=ctx()\n1: (b7) r6 = 0                        ; R6=0\n',
    )
    expect(o.stdout).toMatch(/\nudp_port_filter: accepted \(\d+ insns processed\)\n$/)
  })

  it('exits 1 and names the rejection, its instruction and C line when a program is rejected', () => {
    const o = ebpf(['verify', bsdProbeRead, '--program', 'task_fields'])
    expect(o.status).toBe(1)
    expect(o.stdout).toContain(
      '; struct fake_task *t = (struct fake_task *)bpf_get_current_task(); @ probe_read.c:41\n' +
        '0: (85) call bpf_get_current_task#35\n' +
        'cannot call GPL-restricted function from non-GPL compatible program\n',
    )
    expect(o.stdout).toMatch(
      /\ntask_fields: rejected \(EINVAL\) at instruction 0: cannot call GPL-restricted function from non-GPL compatible program \(.*probe_read\.c:41:44: /,
    )
  })

  it('prints the state after each instruction at --log-level 2', () => {
    const o = ebpf(['verify', join(fixtures, 'socket_filter.bpf.o'), '--log-level', '2'])
    expect(o.status).toBe(0)
    // The kernel's level-2 line for the same instruction.
    expect(o.stdout).toContain('0: (bf) r7 = r1                       ; R1=ctx() R7=ctx()\n')
  })

  it('--json gives one verdict per program', () => {
    const o = ebpf(['verify', bsdProbeRead, '--json'])
    expect(o.status).toBe(1)
    const verdicts = JSON.parse(o.stdout) as {
      name: string
      verdict: string
      code?: string
      insn?: number
      source?: { line: number }
      log: string
    }[]
    expect(verdicts.map((v) => v.name).sort()).toEqual(['probe_arg', 'task_fields'])
    const t = verdicts.find((v) => v.name === 'task_fields')!
    expect(t).toMatchObject({ verdict: 'rejected', code: 'EINVAL', insn: 0, source: { line: 41 } })
    expect(t.log).toContain('cannot call GPL-restricted function from non-GPL compatible program')
  })

  it('--unprivileged: the kernel rules for loads without capabilities (Linux 6.18 as nobody agrees)', () => {
    // The kernel, loading this object as uid 65534 with every capability dropped
    // (kernel.unprivileged_bpf_disabled=0): accepted, 51 insns processed (50 as root: without
    // CAP_BPF an array lookup with a constant key may still return NULL).
    const file = join(fixtures, 'socket_filter.bpf.o')
    const u = ebpf(['verify', file, '--unprivileged'])
    expect(u.status).toBe(0)
    expect(u.stdout).toContain('udp_port_filter: accepted (51 insns processed)')
    const x = ebpf(['verify', join(fixtures, 'all_maps.bpf.o'), '--unprivileged', '--program', 'all_maps', '--json'])
    expect(x.status).toBe(1)
    expect(JSON.parse(x.stdout)).toMatchObject([{ name: 'all_maps', verdict: 'rejected', code: 'EPERM', insn: 0 }])
  })

  it('refuses a bad --log-level and an unknown program, exit 1', () => {
    const file = join(fixtures, 'socket_filter.bpf.o')
    const l = ebpf(['verify', file, '--log-level', '3'])
    expect(l.status).toBe(1)
    expect(l.stderr).toContain('--log-level must be 1 or 2')
    const p = ebpf(['verify', file, '--program', 'nope'])
    expect(p.status).toBe(1)
    expect(p.stderr).toContain("no program 'nope'; the object has: udp_port_filter")
  })

  it('--type gives a type to sections that say none, which otherwise cannot be loaded (exit 1)', () => {
    // cilium_btf_maps.c: tail_two (section '2/1') is `return 2;` (hand computation: accepted).
    const file = join(fixtures, 'cilium_btf_maps.bpf.o')
    const none = ebpf(['verify', file, '--program', 'tail_two'])
    expect(none.status).toBe(1)
    expect(none.stdout).toMatch(/\ntail_two: cannot be loaded here \(ENOTSUPP\): .*does not say its program type/)
    const typed = ebpf(['verify', file, '--program', 'tail_two', '--type', 'socket_filter', '--log-level', '2'])
    expect(typed.status).toBe(0)
    expect(typed.stdout).toContain(
      '; return 2; @ cilium_btf_maps.c:43\n0: (b4) w0 = 2                        ; R0=2\n1: (95) exit\n',
    )
    expect(typed.stdout).toMatch(/\ntail_two: accepted \(2 insns processed\)\n$/)
  })

  it('is listed by ebpf --help', () => {
    expect(ebpf(['--help']).stdout).toMatch(/\n {2}verify +prove an object's programs safe/)
  })
})
