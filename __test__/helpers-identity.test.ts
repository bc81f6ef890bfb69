/**
 * The run inputs and outputs of the helpers Linux 6.18 offers beyond tracing programs:
 * `bpf_get_current_pid_tgid` / `_comm` (every type, from `process`), `bpf_jiffies64` (every type,
 * from `jiffies` or the clock at HZ 250), `bpf_send_signal(_thread)` (every type, recorded in
 * `signals`, never sent) and `bpf_get_socket_cookie` / `_uid` (socket_filter and tc, from `socket`).
 * Expected values: the inputs, computed by hand; -EINVAL for signal 65 as the kernel's test run of a
 * socket filter returned it (bpftool prog run, Linux 6.18). The Rust suite
 * (crates/ebpf-vm/tests/helpers_identity.rs) covers each helper's rules.
 */
import { describe, expect, it } from 'vitest'
import { assemble, LoadError, Program } from '../ts/index'

describe.each(['interpreter', 'jit'] as const)('identity helpers (%s)', (engine) => {
  it('a socket filter reads pid_tgid and comm from process, verified', () => {
    const prog = new Program({
      type: 'socket_filter',
      mode: 'verified',
      engine,
      instructions: assemble(`
        call 14
        r6 = r0
        r1 = r10
        r1 += -16
        r2 = 16
        call 16
        r0 = *(u64 *)(r10 - 16)
        r0 ^= r6
        exit`),
    })
    const { r0 } = prog.run({ data: new Uint8Array(64), process: { pid: 7, tgid: 5, comm: 'nginx' } })
    const comm = new DataView(new TextEncoder().encode('nginx\0\0\0').buffer).getBigUint64(0, true)
    expect(r0).toBe(comm ^ ((5n << 32n) | 7n))
  })

  it('xdp jiffies64 is the run option, else the clock from INITIAL_JIFFIES', () => {
    const prog = new Program({ type: 'xdp', engine, instructions: assemble('call 118\nexit') })
    expect(prog.run({ data: new Uint8Array(64), jiffies: 0x1_0000_0005n }).r0).toBe(0x1_0000_0005n)
    expect(prog.run({ data: new Uint8Array(64) }).r0).toBeGreaterThanOrEqual(2n ** 32n - 75000n)
    expect(() => prog.run({ data: new Uint8Array(64), jiffies: -1 })).toThrow(LoadError)
  })

  it('send_signal results list the signals asked for; none is sent', () => {
    const prog = new Program({
      type: 'xdp',
      engine,
      instructions: assemble('r1 = 10\ncall 109\nr1 = 12\ncall 117\nr1 = 65\ncall 109\nexit'),
    })
    const res = prog.run({ data: new Uint8Array(64) })
    expect(res.signals).toEqual([
      { signal: 10, thread: false },
      { signal: 12, thread: true },
    ])
    expect(res.r0).toBe(BigInt.asUintN(64, -22n))
    const quiet = new Program({ type: 'xdp', engine, instructions: assemble('r0 = 2\nexit') })
    expect(quiet.run({ data: new Uint8Array(64) }).signals).toBeUndefined()
  })

  it.each(['socket_filter', 'tc'] as const)('%s reads the socket cookie and uid from socket', (type) => {
    const prog = new Program({
      type,
      engine,
      instructions: assemble('r6 = r1\ncall 46\nr7 = r0\nr1 = r6\ncall 47\nr0 <<= 32\nr0 |= r7\nexit'),
    })
    const data = new Uint8Array(64)
    expect(prog.run({ data, socket: { cookie: 0x1234, uid: 1000 } }).r0).toBe((1000n << 32n) | 0x1234n)
    // No socket: cookie 0, uid 65534 (overflowuid).
    expect(prog.run({ data }).r0).toBe(65534n << 32n)
    expect(() => prog.run({ data, socket: { cookie: 1, uid: -1 } as never })).toThrow(LoadError)
  })
})
