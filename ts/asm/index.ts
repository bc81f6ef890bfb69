/**
 * `ebpf/asm`: the instruction builder, the text assembler (bpf_conformance and llvm-objdump
 * dialects), the disassembler and the instruction encoding they share.
 */
export { assemble, assembleInstructions } from './assembler.js'
export * from './builder.js'
export { type Dialect, type DisassembleOptions, disassemble } from './disassembler.js'
export { decodeInstructions, encodeInstructions, type Instruction, SLOT_SIZE } from './instruction.js'
export * as opcodes from './opcodes.js'
