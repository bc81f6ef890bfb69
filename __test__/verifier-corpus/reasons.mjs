// Why our verdict differs from the kernel's, by kind of difference: the first rule that matches a
// disagreement gives the reason written into disagreements.json by
// `node scripts/verifier-corpus.mjs --disagreements` (an entry already listed keeps its reason).
// `kernel` and `ours` match the rejection lines (empty when accepted), `name` the program name,
// `kind` the kind of difference (difference() in ours.mjs).
export const REASONS = [
  // Features other helpers are adding to the verifier now (vcalls: calls, refs, locks, callbacks).
  {
    ours: /bpf-to-bpf calls and kfuncs: not supported/,
    reason: 'missing feature: bpf-to-bpf calls (static and global functions) are not verified yet',
  },
  {
    ours: /ARG_PTR_TO_FUNC/,
    reason: 'missing feature: callbacks (bpf_loop, bpf_for_each_map_elem) are not verified yet',
  },
  {
    ours: /ARG_CONST_ALLOC_SIZE_OR_ZERO|ARG_PTR_TO_RINGBUF_MEM/,
    reason: 'missing feature: bpf_ringbuf_reserve and reference tracking of its record are not verified yet',
  },
  {
    ours: /ARG_PTR_TO_SPIN_LOCK/,
    reason:
      'missing feature: bpf_spin_lock/unlock are not verified yet (lock state, calls while held, types that may not lock)',
  },
  {
    ours: /which changes packet data/,
    reason:
      'missing feature: helpers that move the packet (bpf_xdp_adjust_head/tail/meta) and the invalidation of packet ranges they cause',
  },
  {
    kernel: /bpf_spin_lock cannot be accessed directly/,
    reason:
      'missing feature: the bpf_spin_lock word of a map value is not yet protected from loads and stores (needs the lock offset from the map BTF)',
  },
  {
    kind: 'verdict',
    name: /_global_/,
    reason:
      'known difference: global functions are verified in the context of each call, like static ones; the kernel verifies a global function once against its BTF argument types (a pointer argument may be NULL, of the size its type says), so it refuses bodies that only a proof independent of the callers catches. Each call here is proved with its real arguments, so runs stay safe',
  },
  // What this runtime deliberately does not provide.
  {
    ours: /map type \d+ \((perf_event_array|stack_trace)\) is not supported/,
    reason:
      'deliberate: perf_event_array and stack_trace maps need perf events and kernel stacks, which this runtime does not provide; the load fails before verification',
  },
  {
    kernel: /program of this type cannot use helper/,
    ours: /unknown helper \d+/,
    reason:
      'wording: the helper is not one of this program type in our table either, but the validator says "unknown helper N" where the kernel says "program of this type cannot use helper"',
  },
  {
    ours: /unknown helper (0|999)\b/,
    reason:
      'wording: our validator refuses an unknown helper id before verification ("unknown helper N"); the kernel says "invalid func unknown#N"',
  },
  {
    ours: /unknown helper \d+/,
    reason:
      'helper not provided by this runtime for this program type: the validator refuses the call before the verifier reaches the rule the kernel names',
  },
  {
    kernel: /^write into map forbidden/,
    reason:
      'missing feature (we accept what the kernel refuses): stores into a map that programs may only read (BPF_F_RDONLY_PROG, as .rodata is) are not refused by our verifier',
  },
  // The validator (isa) refuses these before verification, in its own words.
  {
    kind: 'verdict',
    kernel: /type=pkt_end expected=/,
    reason:
      'missing feature (we accept what the kernel refuses): a helper memory argument of size 0 may be null but never pkt_end; our argument check lets data_end through',
  },
  {
    name: /_enc_exit_with_.*_on_dead_branch_ok$/,
    reason:
      'validator stricter than the kernel: ours checks the reserved fields of every instruction up front; 6.18 checks them only on instructions its walk reaches, so a malformed exit on a branch it knows is never taken passes',
  },
  {
    kind: 'verdict',
    name: /^socket_filter_ctx_write_cb_.*_rej$/,
    reason:
      'missing feature (we accept what the kernel refuses): stores into __sk_buff cb are not checked for alignment to their size or for staying inside one word (u64 only at the 8-aligned words)',
  },
  {
    name: /_enc_exit_with_offset_/,
    reason:
      'validator stricter than the kernel: ours requires the offset field of exit to be zero (RFC 9669 reserves it); 6.18 does not look at it',
  },
  {
    kind: 'message',
    name: /_enc_/,
    ours: /^instruction \d+: /,
    reason:
      'wording: our validator refuses a malformed encoding before verification with a message naming the field and the value; the kernel says "<class> uses reserved fields", "unknown opcode", "invalid bpf_ld_imm64 insn"',
  },
  {
    ours: /last instruction must be exit/,
    reason:
      'wording: our validator refuses a program that does not end in exit or ja, before verification, in its own words',
  },
  {
    ours: /jump out of range from insn/,
    reason:
      'wording: our validator refuses a jump out of its function before verification, in its own words (the kernel says the same first part)',
  },
  {
    ours: /dst register r10 is read-only/,
    reason:
      'validator: writes to r10 are refused by our validator (EINVAL) before verification; the kernel verifier says EACCES "frame pointer is read only"',
  },
  // Verifier rules not implemented yet.
  {
    kernel: /unreachable insn/,
    reason:
      'missing feature: dead code is not refused yet (the kernel refuses unreachable instructions while checking the CFG, with EINVAL)',
  },
  {
    kernel: /infinite loop detected/,
    reason:
      'missing feature: infinite-loop detection (a state equal to an earlier one at the same instruction on the path); ours walks on into the 1,000,000-instruction limit (E2BIG)',
  },
  {
    kind: 'errno',
    kernel: /^invalid variable-offset (read from|write to) stack/,
    reason:
      'errno: a variable-offset stack access that can reach past the top of the stack (offset >= 0) is EINVAL in 6.18 (EACCES below fp-512, as ours); ours says EACCES',
  },
  {
    kind: 'errno',
    kernel: /^invalid (read from|write to) stack R[1-9]/,
    reason: 'errno: a helper memory argument on the stack that runs past its top is EINVAL in 6.18; ours says EACCES',
  },
  {
    kind: 'message',
    kernel: /^invalid zero-sized read$/,
    reason:
      'wording: a map with no key (ringbuf, queue) given to a key-taking helper is reported as a zero-size stack read; the kernel says "invalid zero-sized read"',
  },
  {
    kind: 'message',
    kernel: /^expected prog array map for tail call$/,
    reason:
      'wording: bpf_tail_call on another map type gets the generic "cannot pass map_type" message; the kernel has a specific one',
  },
  {
    name: /^socket_filter_ctx_read_cb([02]_as_u64|_u64_off_(48|56))_ok$/,
    reason:
      'missing feature: 8-byte reads of the 8-aligned __sk_buff cb words are allowed by 6.18, not by our context table',
  },
  {
    name: /^socket_filter_ctx_read_sk_ok$/,
    reason: 'missing feature: __sk_buff.sk (a sock_common pointer or null) is not readable in our context table',
  },
  {
    name: /^(tracepoint|raw_tp)_/,
    reason:
      'deliberate for now: our tracing type has one context model (kprobe pt_regs, 168 bytes), so tracepoint and raw_tp context bounds are not told apart',
  },
  {
    name: /egress_ifindex/,
    reason:
      'missing feature: xdp_md.egress_ifindex is readable only by devmap programs (expected attach type) in 6.18; our context table allows it to every xdp program',
  },
  {
    name: /_v4_ldsx_ctx_/,
    reason: 'missing feature: sign-extending loads (ldsx) of context fields, which 6.18 allows and converts',
  },
  {
    name: /^xdp_pkt_meta_checked_read_ok$/,
    reason: 'missing feature: the data_meta range learned from comparing meta + N with data',
  },
  {
    name: /_map_ptr_read_ops_pointer_ok$/,
    reason:
      'missing feature (refused with a message that says so): pointer members of struct bpf_map (ops, inner_map_meta, btf, ...), which 6.18 reads as BTF pointers; this runtime has no kernel objects for them to point to, and answers only the scalar fields (verifier/map_fields.rs)',
  },
]

/** The reason for one disagreement, or null when no rule explains it. */
export function reasonFor(name, kind, kernel, ours) {
  for (const r of REASONS) {
    if (r.kind && r.kind !== kind) continue
    if (r.name && !r.name.test(name)) continue
    if (r.kernel && !r.kernel.test(kernel.message ?? '')) continue
    if (r.ours && !r.ours.test(ours.message ?? '')) continue
    return r.reason
  }
  return null
}
