import { describe, expect, it } from 'vitest'
import { assemble, helperPrototypes, LoadError, Program } from '../ts/index'

// Expected prototypes: Linux 6.18's `struct bpf_func_proto` definitions (kernel/bpf/helpers.c,
// net/core/filter.c), and which program types' func_proto offer them (the kernel's answers are
// recorded in crates/ebpf-vm/tests/kernel_oracle/helper_access_6.18.txt).
describe('helper prototypes', () => {
  it('lists the helpers of a program type in the kernel spelling', () => {
    const xdp = helperPrototypes('xdp')
    const lookup = xdp.find((h) => h.id === 1)
    expect(lookup).toEqual({
      id: 1,
      name: 'bpf_map_lookup_elem',
      ret: 'RET_PTR_TO_MAP_VALUE_OR_NULL',
      args: ['ARG_CONST_MAP_PTR', 'ARG_PTR_TO_MAP_KEY'],
      gplOnly: false,
      kernelProgTypes: [
        'socket_filter',
        'kprobe',
        'sched_cls',
        'tracepoint',
        'xdp',
        'perf_event',
        'raw_tracepoint',
        'cgroup_skb',
      ],
    })
    expect(xdp.find((h) => h.id === 44)).toMatchObject({
      name: 'bpf_xdp_adjust_head',
      args: ['ARG_PTR_TO_CTX', 'ARG_ANYTHING'],
      kernelProgTypes: ['xdp'],
    })
    expect(xdp.find((h) => h.id === 6)).toMatchObject({ name: 'bpf_trace_printk', gplOnly: true })
    // A socket filter has no XDP helpers, as in the kernel.
    expect(helperPrototypes('socket_filter').some((h) => h.id === 44)).toBe(false)
    expect(() => helperPrototypes('nope' as 'raw')).toThrow(LoadError)
  })

  it('a JavaScript helper may declare its prototype; an unknown spelling is an EINVAL naming it', () => {
    const prog = new Program({
      instructions: assemble('r1 = 5\ncall 1000\nexit'),
      helpers: {
        1000: { name: 'plus_one', fn: ([a]) => a + 1n, args: ['ARG_ANYTHING'], ret: 'RET_INTEGER' },
      },
    })
    expect(prog.run().r0).toBe(6n)
    const bad = () =>
      new Program({
        instructions: assemble('call 1000\nexit'),
        helpers: { 1000: { name: 'h', fn: () => 0, args: ['ARG_ANYTHING', 'ARG_PTR_TO_NOWHERE'] } },
      })
    expect(bad).toThrow(LoadError)
    expect(bad).toThrow(/helpers\[1000\]\.args\[1\]: 'ARG_PTR_TO_NOWHERE' is not an argument type/)
    expect(
      () =>
        new Program({
          instructions: assemble('call 1000\nexit'),
          helpers: { 1000: { name: 'h', fn: () => 0, gplOnly: 'yes' as unknown as boolean } },
        }),
    ).toThrow(/helpers\[1000\]\.gplOnly must be a boolean/)
  })
})
