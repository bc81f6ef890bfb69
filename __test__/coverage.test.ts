/**
 * Coverage (`coverage: true`, `program.coverage`, `collection.coverage`, `toLcov`, `ebpf run
 * --coverage`, `examples/xdp-coverage.js`). Expected counts and the lcov text are worked out by
 * hand from small programs (the comments say how); the fixture's figures must agree between the
 * two engines, and genhtml (Debian package lcov) must render the example's tracefile.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { assemble, Collection, LoadError, loadCollectionSpecSync, Program } from '../ts/index'
import { ipv4Packet } from './helpers/packets'

/**
 * r0 = 0; r2 = 0; loop: r0 += r2; r2 += 1; if r2 < 3 goto loop; if r0 == 3 goto +1; r0 = 100;
 * exit. Per run: the loop body runs 3 times (r2 = 0, 1, 2), its jump is taken twice and falls
 * through once; r0 = 0 + 1 + 2 = 3, so the second jump is taken and slot 6 never runs.
 */
const LOOP = `r0 = 0
r2 = 0
loop:
r0 += r2
r2 += 1
if r2 < 3 goto loop
if r0 == 3 goto +1
r0 = 100
exit`

/** Made-up line info for LOOP: slots 0-1 on line 1, 2-4 on line 2, 5, 6 and 7 on lines 3, 4, 5. */
const line = (insn: number, l: number) => ({ insn, file: 'loop.c', line: l, column: 1, text: `line ${l}` })
const LOOP_LINES = [line(0, 1), line(2, 2), line(5, 3), line(6, 4), line(7, 5)]

describe('program coverage', () => {
  for (const engine of ['interpreter', 'jit'] as const) {
    it(`counts hits and branches over runs and writes them as lcov (${engine})`, () => {
      const p = new Program({
        instructions: assemble(LOOP),
        engine,
        coverage: true,
        lineInfo: LOOP_LINES,
        funcInfo: [{ insn: 0, typeId: 1, name: 'main' }],
      })
      expect(p.run().r0).toBe(3n)
      expect(p.run({ data: new Uint8Array(1) }).r0).toBe(3n)
      const c = p.coverage!
      expect(c.programs[0]!.hits).toEqual([2, 2, 6, 6, 6, 2, 0, 2])
      expect(c.programs[0]!.branches.map(({ insn, taken, notTaken }) => ({ insn, taken, notTaken }))).toEqual([
        { insn: 4, taken: 4, notTaken: 2 },
        { insn: 5, taken: 2, notTaken: 0 },
      ])
      // Lines: the most any of their instructions ran. Branches: the jump on line 2 taken 4 times
      // and not 2, the one on line 3 taken twice and never not.
      expect(c.toLcov({ testName: 't' })).toBe(
        [
          'TN:t',
          'SF:loop.c',
          'FN:1,main',
          'FNDA:2,main',
          'FNF:1',
          'FNH:1',
          'BRDA:2,0,0,4',
          'BRDA:2,0,1,2',
          'BRDA:3,0,0,2',
          'BRDA:3,0,1,0',
          'BRF:4',
          'BRH:3',
          'DA:1,2',
          'DA:2,6',
          'DA:3,2',
          'DA:4,0',
          'DA:5,2',
          'LF:5',
          'LH:4',
          'end_of_record',
          '',
        ].join('\n'),
      )
      p.resetCoverage()
      expect(p.coverage!.programs[0]!.hits).toEqual([0, 0, 0, 0, 0, 0, 0, 0])
      // A jump never reached has no counts ('-') in lcov.
      expect(p.coverage!.toLcov()).toContain('BRDA:2,0,0,-\n')
    })
  }

  it('is undefined without coverage: true, and traced runs are not counted', () => {
    expect(new Program({ instructions: assemble(LOOP) }).coverage).toBeUndefined()
    const p = new Program({ instructions: assemble(LOOP), coverage: true })
    p.run({ trace: true })
    expect(p.coverage!.programs[0]!.hits.every((h) => h === 0)).toBe(true)
    expect(() => new Program({ instructions: assemble(LOOP), coverage: 1 as unknown as boolean })).toThrow(LoadError)
  })

  it("gives the same figures on both engines for the XDP firewall fixture's C lines", () => {
    const spec = () => loadCollectionSpecSync(readFileSync(join(__dirname, 'fixtures', 'xdp_firewall.bpf.o')))
    const reports = (['interpreter', 'jit'] as const).map((engine) => {
      const coll = new Collection(spec(), { engine, coverage: true })
      coll.maps.get('blocklist')!.update({ prefixlen: 24, addr: [192, 168, 7, 0] }, { hits: 0n, action: 1, rule_id: 7 })
      const fw = coll.programs.get('xdp_firewall')!
      for (const src of [
        [192, 168, 7, 9],
        [192, 168, 8, 1],
      ] as const)
        fw.run({ data: ipv4Packet({ src: [...src] }) })
      fw.run({ data: ipv4Packet({ ethType: 0x86dd }) })
      fw.run({ data: new Uint8Array(20) })
      return coll.coverage!
    })
    const [interp, jit] = reports
    expect(jit!.toLcov()).toBe(interp!.toLcov())
    // Four runs enter the function once each.
    expect(interp!.toLcov()).toContain('FNDA:4,xdp_firewall\n')
    // The line that tests the EtherType ran for the three packets longer than min_len (34).
    const source = readFileSync(join(__dirname, 'fixtures', 'xdp_firewall.c'), 'utf8').split('\n')
    const proto = source.findIndex((l) => l.includes('eth->h_proto != bpf_htons(ETH_P_IP)')) + 1
    expect(interp!.lines().find((l) => l.line === proto)?.hits).toBe(3)
  })
})

describe('coverage from the command line and the example', () => {
  const work = mkdtempSync(join(tmpdir(), 'ebpf-coverage-'))
  afterAll(() => rmSync(work, { recursive: true, force: true }))
  const root = join(__dirname, '..')

  it('ebpf run --coverage writes an lcov tracefile', () => {
    const out = join(work, 'run.lcov')
    const pkt = Buffer.from(ipv4Packet({ src: [10, 0, 0, 1] })).toString('hex')
    const r = spawnSync(
      process.execPath,
      [join(root, 'bin', 'ebpf.js'), 'run', join(__dirname, 'fixtures', 'xdp_firewall.bpf.o'), '--hex', pkt],
      { encoding: 'utf8' },
    )
    expect(r.status).toBe(0)
    const withCoverage = spawnSync(
      process.execPath,
      [
        join(root, 'bin', 'ebpf.js'),
        'run',
        join(__dirname, 'fixtures', 'xdp_firewall.bpf.o'),
        '--hex',
        pkt,
        '--repeat',
        '2',
        '--coverage',
        out,
      ],
      { encoding: 'utf8' },
    )
    expect(withCoverage.status).toBe(0)
    const lcov = readFileSync(out, 'utf8')
    expect(lcov).toMatch(/^TN:ebpf_run\nSF:.*xdp_firewall\.c\n/)
    expect(lcov).toContain('FNDA:2,xdp_firewall\n')
    // Raw bytecode has no line info: an empty tracefile, and a note saying why.
    const raw = join(work, 'loop.s')
    writeFileSync(raw, `${LOOP}\n`)
    const bare = spawnSync(
      process.execPath,
      [join(root, 'bin', 'ebpf.js'), 'run', raw, '--coverage', join(work, 'raw.lcov')],
      {
        encoding: 'utf8',
      },
    )
    expect(bare.status).toBe(0)
    expect(bare.stderr).toContain('no source lines')
    expect(readFileSync(join(work, 'raw.lcov'), 'utf8')).toBe('')
  })

  it('examples/xdp-coverage.js passes its tests and writes an lcov file that genhtml renders', () => {
    const out = join(work, 'xdp-firewall.lcov')
    const r = spawnSync(process.execPath, [join(root, 'examples', 'xdp-coverage.js'), out], { encoding: 'utf8' })
    expect(r.stderr).toBe('')
    expect(r.status).toBe(0)
    expect(r.stdout).toContain('ok - drops a blocked source and counts the hit')
    const lcov = readFileSync(out, 'utf8')
    expect(lcov).toContain(`SF:${join(__dirname, 'fixtures', 'xdp_firewall.c')}\n`)
    if (spawnSync('sh', ['-c', 'command -v genhtml']).status !== 0) {
      console.warn('genhtml not installed (Debian package lcov): the lcov file is not rendered')
      return
    }
    const html = join(work, 'html')
    const g = spawnSync('genhtml', ['--branch-coverage', '--quiet', '-o', html, out], { encoding: 'utf8' })
    expect(g.stderr).toBe('')
    expect(g.status).toBe(0)
    expect(existsSync(join(html, 'index.html'))).toBe(true)
    // One page per source file, under its directory's name, with the source lines in it.
    const page = readFileSync(join(html, 'fixtures', 'xdp_firewall.c.gcov.html'), 'utf8')
    expect(page).toContain('bpf_map_lookup_elem(&amp;blocklist, &amp;key)')
  })

  it('the vitest example (examples/xdp-coverage.test.mjs) passes and its lcov renders with genhtml', () => {
    const out = join(work, 'vitest-example.lcov')
    const vitest = join(root, 'node_modules', 'vitest', 'vitest.mjs')
    const r = spawnSync(process.execPath, [vitest, 'run', '--config', join(root, 'examples', 'vitest.config.mjs')], {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, LCOV_OUT: out, NO_COLOR: '1' },
    })
    expect(r.status, r.stdout + r.stderr).toBe(0)
    expect(r.stdout).toMatch(/Tests\s+4 passed \(4\)/)
    const lcov = readFileSync(out, 'utf8')
    // Four tests, one run each: the function entered 4 times; every line with instructions ran.
    expect(lcov).toContain('FNDA:4,xdp_firewall\n')
    expect(lcov).toContain('LF:15\nLH:15\n')
    if (spawnSync('sh', ['-c', 'command -v genhtml']).status !== 0) {
      console.warn('genhtml not installed (Debian package lcov): the lcov file is not rendered')
      return
    }
    const html = join(work, 'vitest-html')
    const g = spawnSync('genhtml', ['--branch-coverage', '-o', html, out], { encoding: 'utf8' })
    expect(g.status, g.stderr).toBe(0)
    expect(g.stdout).toContain('lines......: 100.0% (15 of 15 lines)')
    expect(existsSync(join(html, 'fixtures', 'xdp_firewall.c.gcov.html'))).toBe(true)
  })
})
