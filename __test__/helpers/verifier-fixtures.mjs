// The fixture objects (`__test__/fixtures/NAME.bpf.o`) whose programs both the kernel's verifier
// and ours accept, each loading in the kernel as a whole: `verifier-stats.test.ts` compares their
// summary figures with the kernel's, `bench/verify.bench.mjs` their verification times.
export const VERIFIED_FIXTURES = [
  'socket_filter',
  'core',
  'core_ctx',
  'percpu',
  'pinned',
  'probe_read',
  'prog_array_init',
  'redirect',
  'ringbuf',
  'linked',
  'pkt_counter',
  'globals',
  'bpf_loop',
  'types',
]
