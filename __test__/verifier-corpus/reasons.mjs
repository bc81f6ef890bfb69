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
    kernel: /program of this type cannot use helper/,
    ours: /unknown helper \d+/,
    reason:
      'wording: the helper is not one of this program type in our table either, but the validator says "unknown helper N" where the kernel says "program of this type cannot use helper"',
  },
  {
    kind: 'verdict',
    kernel: /^$/,
    ours: /program of this type cannot use helper/,
    reason:
      "helper not provided by this runtime for this program type (bpf_skb_ecn_set_ce writes the IP header, and a cgroup_skb run here has a read-only packet): refused in the kernel's words for a helper of another type",
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
  // The validator (isa) refuses these before verification, in its own words.
  {
    kind: 'verdict',
    kernel: /type=pkt_end expected=/,
    reason:
      'missing feature (we accept what the kernel refuses): a helper memory argument of size 0 may be null but never pkt_end; our argument check lets data_end through',
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
