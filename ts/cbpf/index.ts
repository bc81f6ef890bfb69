/**
 * `ebpf`'s classic BPF (cBPF) support: read tcpdump's `-dd`/`-ddd` output, `struct sock_filter`
 * bytes or arrays (`parse`), print `tcpdump -d` listings (`disassemble`), check programs as the kernel
 * does (`validate`) and convert them to eBPF socket filters (`toEbpf`; `Program.fromClassic` loads one).
 */

export { type ToEbpfOptions, toEbpf } from './convert.js'
export { disassemble, disassembleInstruction } from './disassemble.js'
export { ANCILLARY, type ClassicInstruction, MAX_INSNS, SKF_AD_OFF, SKF_LL_OFF, SKF_NET_OFF } from './instruction.js'
export { type ClassicInput, isDdText, parse, toBytes } from './parse.js'
export { validate } from './validate.js'
