// Control flow: dead code, the last instruction, bounded and unbounded loops (back-edges the
// verifier can or cannot bound), the complexity limit, and bpf-to-bpf calls (frames, argument and
// return registers, call depth, the combined stack, recursion).
import { prog, TYPES } from './_lib.mjs'

const out = []
const sfx = (ok) => (ok ? '_ok' : '_rej')
const CASES = [
  ['dead_insn_after_exit', 'r0 = 0\nexit\nr0 = 1\nexit', false],
  ['dead_insn_jumped_over', 'r0 = 0\ngoto +1\nr0 = 1\nexit', false],
  ['dead_lddw_after_exit', 'r0 = 0\nexit\nr0 = 1 ll\nexit', false],
  // A function called only from dead code is dead too (the kernel names the call's slot).
  ['dead_call_of_function', 'r0 = 0\nexit\ncall f\nexit\nf:\nr0 = 0\nexit', false],
  ['last_insn_not_exit', 'r0 = 0\nif r0 == 0 goto +1\nexit\nr0 = 1', false],
  ['both_branches_exit', 'call 5\nif r0 == 0 goto +2\nr0 = 1\nexit\nr0 = 2\nexit', true],
  ['r0_set_on_one_branch_only', 'call 5\nr1 = r0\nr0 = 0\nif r1 == 0 goto +1\nexit\nr0 = r2\nexit', false],
  [
    'const_branch_dead_path_unchecked',
    'r1 = 0\nif r1 != 0 goto +1\ngoto +1\nr0 = *(u64 *)(r1 + 0)\nr0 = 0\nexit',
    true,
  ],
  ['infinite_loop_self', 'r0 = 0\nl:\ngoto l', false],
  // A loop whose state changes each time round is never seen as infinite: it runs into the limit.
  ['infinite_loop_counting_hits_1m', 'r0 = 0\nl:\nr0 += 1\ngoto l', false],
  ['loop_const_10_iterations', 'r0 = 0\nr1 = 10\nl:\nr0 += 1\nr1 += -1\nif r1 != 0 goto l', true],
  ['loop_const_1000_iterations', 'r0 = 0\nr1 = 1000\nl:\nr0 += 1\nr1 += -1\nif r1 != 0 goto l', true],
  ['loop_counter_never_changes', 'r0 = 0\nr1 = 10\nl:\nr0 += 1\nif r1 != 0 goto l', false],
  ['loop_counter_wrong_direction', 'r0 = 0\nr1 = 10\nl:\nr1 += 1\nif r1 != 0 goto l', false],
  ['loop_bounded_by_unknown_u8', 'call 5\nr1 = r0\nr1 &= 255\nr0 = 0\nl:\nr0 += 1\nif r0 < r1 goto l', true],
  ['loop_bounded_by_unknown_unbounded', 'call 5\nr1 = r0\nr0 = 0\nl:\nr0 += 1\nif r0 < r1 goto l', false],
  ['loop_jlt_const_64', 'r0 = 0\nl:\nr0 += 1\nif r0 < 64 goto l', true],
  ['loop_jmp32_const', 'w0 = 0\nl:\nw0 += 1\nif w0 < 64 goto l', true],
  [
    'loop_stack_writes_in_bounds',
    'r1 = 0\nl:\nr2 = r10\nr2 += -64\nr2 += r1\n*(u8 *)(r2 + 0) = 1\nr1 += 1\nif r1 < 64 goto l\nr0 = 0',
    true,
  ],
  [
    'loop_stack_writes_one_past',
    'r1 = 0\nl:\nr2 = r10\nr2 += -64\nr2 += r1\n*(u8 *)(r2 + 0) = 1\nr1 += 1\nif r1 < 65 goto l\nr0 = 0',
    false,
  ],
  ['loop_too_many_states_1m', 'r0 = 0\nr1 = 0\nl:\nr1 += 1\nr0 += r1\nr0 ^= r1\nr0 += 1\nif r1 < 400000 goto l', false],
  [
    'nested_loops_const',
    'r0 = 0\nr1 = 0\no:\nr2 = 0\ni:\nr0 += 1\nr2 += 1\nif r2 < 8 goto i\nr1 += 1\nif r1 < 8 goto o',
    true,
  ],
  ['backward_jump_to_start_of_program', 'l:\nr0 = 0\ncall 5\nif r0 == 1 goto l', false],
]
for (const t of TYPES) {
  for (const [name, code, ok] of CASES) {
    // The E2BIG ones walk a million instructions: once (xdp) is enough.
    if (
      name.includes('1m') ||
      name.includes('never_changes') ||
      name.includes('wrong_direction') ||
      name.includes('unknown_unbounded')
    ) {
      if (t !== 'xdp') continue
    }
    const body = /(exit|r0 = 1|(^|\n)goto l)$/.test(code) ? code : `${code}\nexit`
    out.push(prog(`${t}_cflow_${name}${sfx(ok)}`, t, body))
  }
}

// bpf-to-bpf calls.
const CALLS = [
  ['call_returns_const', 'call f\nexit\nf:\nr0 = 1\nexit', true],
  // exit's reserved fields are checked where the walk arrives, in a function too.
  ['function_exit_with_imm_1', 'call f\nexit\nf:\nr0 = 0\n.8byte 0x0000000100000095', false],
  [
    'function_exit_with_imm_1_on_dead_branch',
    'call f\nexit\nf:\nr0 = 0\nif r0 != 0 goto +1\nexit\n.8byte 0x0000000100000095',
    true,
  ],
  ['callee_reads_r1_arg', 'r1 = 5\ncall f\nexit\nf:\nr0 = r1\nexit', true],
  ['callee_reads_r6_of_caller', 'r6 = 5\ncall f\nexit\nf:\nr0 = r6\nexit', false],
  ['caller_reads_r1_after_call', 'r1 = 5\ncall f\nr0 = r1\nexit\nf:\nr0 = 1\nexit', false],
  ['caller_r6_preserved', 'r6 = 5\ncall f\nr0 = r6\nexit\nf:\nr6 = 9\nr0 = 1\nexit', true],
  ['callee_r0_uninit', 'call f\nexit\nf:\nexit', false],
  [
    'callee_writes_caller_stack_via_ptr',
    'r1 = r10\nr1 += -8\ncall f\nr0 = *(u64 *)(r10 - 8)\nexit\nf:\n*(u64 *)(r1 + 0) = 3\nr0 = 0\nexit',
    true,
  ],
  ['callee_ptr_past_caller_stack_top', 'r1 = r10\ncall f\nr0 = 0\nexit\nf:\n*(u64 *)(r1 + 0) = 3\nr0 = 0\nexit', false],
  [
    'callee_returns_own_stack_pointer',
    'call f\nr0 = *(u64 *)(r0 + 0)\nr0 = 0\nexit\nf:\n*(u64 *)(r10 - 8) = 0\nr0 = r10\nr0 += -8\nexit',
    false,
  ],
  ['callee_reads_ctx_arg_field', 'call f\nexit\nf:\nr0 = *(u32 *)(r1 + 0)\nr0 = 0\nexit', true],
  ['recursion_direct', 'call f\nexit\nf:\ncall f\nr0 = 0\nexit', false],
  ['mutual_recursion', 'call f\nexit\nf:\ncall g\nr0 = 0\nexit\ng:\ncall f\nr0 = 0\nexit', false],
  [
    'stack_304_plus_304_over_512',
    'call f\n*(u64 *)(r10 - 304) = 0\nr0 = 0\nexit\nf:\n*(u64 *)(r10 - 304) = 0\nr0 = 0\nexit',
    false,
  ],
  [
    'stack_256_plus_256_exactly_512',
    'call f\n*(u64 *)(r10 - 256) = 0\nr0 = 0\nexit\nf:\n*(u64 *)(r10 - 256) = 0\nr0 = 0\nexit',
    true,
  ],
  ['jump_from_main_into_callee', 'r0 = 0\nif r0 == 0 goto f\ncall f\nexit\nf:\nr0 = 1\nexit', false],
  ['two_callees_sequential', 'call f\nr6 = r0\ncall g\nr0 += r6\nexit\nf:\nr0 = 1\nexit\ng:\nr0 = 2\nexit', true],
  ['callee_loop_bounded', 'r1 = 8\ncall f\nexit\nf:\nr0 = 0\nl:\nr0 += 1\nr1 += -1\nif r1 != 0 goto l\nexit', true],
  ['callee_falls_through_into_next', 'call f\nexit\nf:\nr0 = 1\ng:\nr0 += 1\nexit', true],
  ['callee_helper_call_preserves_r6', 'call f\nexit\nf:\nr6 = 7\ncall 5\nr0 = r6\nexit', true],
]
// Nested calls: depth 8 frames (main + 7) is the limit; one more is refused.
const chain = (n) => {
  let s = 'call f1\nexit\n'
  for (let i = 1; i <= n; i++) s += `f${i}:\n${i < n ? `call f${i + 1}\n` : ''}r0 = 0\nexit\n`
  return s
}
CALLS.push(['call_depth_8_frames', chain(7), true])
CALLS.push(['call_depth_9_frames', chain(8), false])
for (const t of TYPES) {
  for (const [name, code, ok] of CALLS) out.push(prog(`${t}_call_${name}${sfx(ok)}`, t, code))
}
export default out
