/**
 * Load-time benchmarks for clang/libbpf objects: parse + link + fixup of a generated object of
 * more than 1 MB (hundreds of programs, sub-programs, maps, global data and BTF), a small fixture,
 * and the running kernel's BTF blob. Run: `npx vitest bench --run bench/load.bench.ts`.
 * The large object is generated with clang-19 into the OS temp directory on first use.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { bench, describe } from 'vitest'
import { Btf } from '../ts/btf/btf.js'
import { loadCollectionSpecSync } from '../ts/spec.js'

const PROGRAMS = 600

/** C source of the large object: PROGRAMS XDP programs, each with its own value struct and map. */
function bigSource(): string {
  const parts = [
    '#include <linux/types.h>',
    '#include <linux/bpf.h>',
    '#include <bpf/bpf_helpers.h>',
    'const volatile __u32 table[16384] = { 1, 2, 3 };',
    '__u64 hits[1024];',
    'static __noinline __u32 mix(__u32 a, __u32 b) { a ^= b; a *= 0x9e3779b1; return a ^ (a >> 16); }',
    '__noinline __u32 fold(__u32 x) { return mix(x, x >> 8) & 1023; }',
  ]
  for (let i = 0; i < PROGRAMS; i++) {
    parts.push(
      `struct value_${i} { __u64 packets; __u32 last_len; __u16 port_${i}; __u8 flags; __u8 kind; char tag[8]; };`,
    )
    parts.push(
      `struct { __uint(type, BPF_MAP_TYPE_HASH); __type(key, __u32); __type(value, struct value_${i}); __uint(max_entries, ${64 + i}); } map_${i} SEC(".maps");`,
    )
    parts.push(`SEC("xdp") int prog_${i}(struct xdp_md *ctx) {
  __u32 len = ctx->data_end - ctx->data, key = fold(len + ${i});
  struct value_${i} *v = bpf_map_lookup_elem(&map_${i}, &key);
  hits[key & 1023] += table[(len * ${i + 1}) & 16383];
  if (v) { v->packets++; v->last_len = len; return XDP_PASS; }
  struct value_${i} init = { .packets = 1, .last_len = len, .port_${i} = ${i} };
  bpf_map_update_elem(&map_${i}, &key, &init, BPF_ANY);
  return len > ${i} ? XDP_DROP : XDP_PASS;
}`)
  }
  parts.push('char LICENSE[] SEC("license") = "GPL";')
  return parts.join('\n')
}

function bigObject(): Uint8Array | undefined {
  const dir = join(tmpdir(), 'ebpf-bench')
  const obj = join(dir, `big-${PROGRAMS}.bpf.o`)
  if (!existsSync(obj)) {
    mkdirSync(dir, { recursive: true })
    const src = join(dir, `big-${PROGRAMS}.c`)
    writeFileSync(src, bigSource())
    try {
      execFileSync(
        'clang-19',
        ['-O2', '-g', '-target', 'bpf', '-mcpu=v3', '-I/usr/include/x86_64-linux-gnu', '-c', src, '-o', obj],
        { stdio: 'pipe' },
      )
    } catch (e) {
      console.warn(`skipping the large-object benchmark: clang-19 failed (${(e as Error).message})`)
      return undefined
    }
  }
  return new Uint8Array(readFileSync(obj))
}

const big = bigObject()
const small = new Uint8Array(readFileSync(join(__dirname, '..', '__test__', 'fixtures', 'xdp_firewall.bpf.o')))
const vmlinuxPath = '/sys/kernel/btf/vmlinux'
const vmlinux = existsSync(vmlinuxPath) ? new Uint8Array(readFileSync(vmlinuxPath)) : undefined

if (big) {
  const spec = loadCollectionSpecSync(big)
  console.log(
    `large object: ${(statSync(join(tmpdir(), 'ebpf-bench', `big-${PROGRAMS}.bpf.o`)).size / 1048576).toFixed(2)} MiB, ` +
      `${spec.programs.size} programs, ${spec.maps.size} maps, ${spec.types.count} BTF types`,
  )
}

describe('loadCollectionSpec', () => {
  if (big) bench(`generated object, ${PROGRAMS} programs (> 1 MB)`, () => void loadCollectionSpecSync(big))
  bench('xdp_firewall.bpf.o fixture', () => void loadCollectionSpecSync(small))
})

describe('BTF', () => {
  if (vmlinux) bench('parse /sys/kernel/btf/vmlinux', () => void Btf.parse(vmlinux))
  if (vmlinux) {
    const parsed = Btf.parse(vmlinux)
    bench('raw dump of vmlinux', () => void parsed.dump({ format: 'raw' }))
  }
})
