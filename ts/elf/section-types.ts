/**
 * Program type from an ELF section name, with libbpf's matching rules (libbpf 1.x `section_defs`):
 * a pattern ending in `+` matches the bare name or `name/anything`; a pattern ending in `/` matches
 * by prefix; any other pattern matches exactly. The first match in table order wins.
 *
 * Names libbpf 1.x does not know are tried against the prefixes older loaders matched (libbpf 0.x's
 * "sloppy" prefixes, the kernel samples' bpf_load.c, iproute2's `classifier`/`action`): `socket1`,
 * `xdp_prog`, `classifier/ingress`. Anything else is `unspec`, as libbpf and cilium/ebpf leave it:
 * the program is listed and its type is for the user to set.
 */

export interface SectionType {
  /** libbpf-style program type name ('xdp', 'socket_filter', 'kprobe', 'sched_cls', ...). */
  type: string
  /** Kernel BPF_PROG_TYPE_* number. */
  typeId: number
  /** libbpf-style expected attach type name, or '' when none. */
  attachType: string
  /** The part after the pattern's '/' (e.g. the kprobe's function), '' when none. */
  target: string
  sleepable: boolean
  /** How the name matched: libbpf 1.x's table, an older loader's prefix, or nothing ('unspec'). */
  matchedBy: 'libbpf' | 'legacy' | 'none'
}

/** BPF_PROG_TYPE_* numbering from linux/bpf.h. */
export const PROG_TYPES: Record<string, number> = {
  unspec: 0,
  socket_filter: 1,
  kprobe: 2,
  sched_cls: 3,
  sched_act: 4,
  tracepoint: 5,
  xdp: 6,
  perf_event: 7,
  cgroup_skb: 8,
  cgroup_sock: 9,
  lwt_in: 10,
  lwt_out: 11,
  lwt_xmit: 12,
  sock_ops: 13,
  sk_skb: 14,
  cgroup_device: 15,
  sk_msg: 16,
  raw_tracepoint: 17,
  cgroup_sock_addr: 18,
  lwt_seg6local: 19,
  lirc_mode2: 20,
  sk_reuseport: 21,
  flow_dissector: 22,
  cgroup_sysctl: 23,
  raw_tracepoint_writable: 24,
  cgroup_sockopt: 25,
  tracing: 26,
  struct_ops: 27,
  ext: 28,
  lsm: 29,
  sk_lookup: 30,
  syscall: 31,
  netfilter: 32,
}

// [pattern, program type, expected attach type, sleepable]
const TABLE: ReadonlyArray<readonly [string, string, string, boolean?]> = [
  ['socket', 'socket_filter', ''],
  ['sk_reuseport/migrate', 'sk_reuseport', 'sk_reuseport_select_or_migrate'],
  ['sk_reuseport', 'sk_reuseport', 'sk_reuseport_select'],
  ['kprobe+', 'kprobe', ''],
  ['uprobe+', 'kprobe', ''],
  ['uprobe.s+', 'kprobe', '', true],
  ['kretprobe+', 'kprobe', ''],
  ['uretprobe+', 'kprobe', ''],
  ['uretprobe.s+', 'kprobe', '', true],
  ['kprobe.multi+', 'kprobe', 'trace_kprobe_multi'],
  ['kretprobe.multi+', 'kprobe', 'trace_kprobe_multi'],
  ['kprobe.session+', 'kprobe', 'trace_kprobe_session'],
  ['uprobe.multi+', 'kprobe', 'trace_uprobe_multi'],
  ['uretprobe.multi+', 'kprobe', 'trace_uprobe_multi'],
  ['uprobe.session+', 'kprobe', 'trace_uprobe_session'],
  ['uprobe.multi.s+', 'kprobe', 'trace_uprobe_multi', true],
  ['uretprobe.multi.s+', 'kprobe', 'trace_uprobe_multi', true],
  ['uprobe.session.s+', 'kprobe', 'trace_uprobe_session', true],
  ['ksyscall+', 'kprobe', ''],
  ['kretsyscall+', 'kprobe', ''],
  ['usdt+', 'kprobe', ''],
  ['usdt.s+', 'kprobe', '', true],
  ['tc/ingress', 'sched_cls', 'tcx_ingress'],
  ['tc/egress', 'sched_cls', 'tcx_egress'],
  ['tcx/ingress', 'sched_cls', 'tcx_ingress'],
  ['tcx/egress', 'sched_cls', 'tcx_egress'],
  ['tc', 'sched_cls', ''],
  ['classifier', 'sched_cls', ''],
  ['action', 'sched_act', ''],
  ['netkit/primary', 'sched_cls', 'netkit_primary'],
  ['netkit/peer', 'sched_cls', 'netkit_peer'],
  ['tracepoint+', 'tracepoint', ''],
  ['tp+', 'tracepoint', ''],
  ['tracepoint.s+', 'tracepoint', '', true],
  ['tp.s+', 'tracepoint', '', true],
  ['raw_tracepoint+', 'raw_tracepoint', ''],
  ['raw_tp+', 'raw_tracepoint', ''],
  ['raw_tracepoint.s+', 'raw_tracepoint', '', true],
  ['raw_tp.s+', 'raw_tracepoint', '', true],
  ['raw_tracepoint.w+', 'raw_tracepoint_writable', ''],
  ['raw_tp.w+', 'raw_tracepoint_writable', ''],
  ['tp_btf+', 'tracing', 'trace_raw_tp'],
  ['tp_btf.s+', 'tracing', 'trace_raw_tp', true],
  ['fentry+', 'tracing', 'trace_fentry'],
  ['fmod_ret+', 'tracing', 'modify_return'],
  ['fexit+', 'tracing', 'trace_fexit'],
  ['fentry.s+', 'tracing', 'trace_fentry', true],
  ['fmod_ret.s+', 'tracing', 'modify_return', true],
  ['fexit.s+', 'tracing', 'trace_fexit', true],
  ['freplace+', 'ext', ''],
  ['lsm+', 'lsm', 'lsm_mac'],
  ['lsm.s+', 'lsm', 'lsm_mac', true],
  ['lsm_cgroup+', 'lsm', 'lsm_cgroup'],
  ['iter+', 'tracing', 'trace_iter'],
  ['iter.s+', 'tracing', 'trace_iter', true],
  ['syscall', 'syscall', '', true],
  ['xdp.frags/devmap', 'xdp', 'xdp_devmap'],
  ['xdp/devmap', 'xdp', 'xdp_devmap'],
  ['xdp.frags/cpumap', 'xdp', 'xdp_cpumap'],
  ['xdp/cpumap', 'xdp', 'xdp_cpumap'],
  ['xdp.frags', 'xdp', 'xdp'],
  ['xdp', 'xdp', 'xdp'],
  ['perf_event', 'perf_event', ''],
  ['lwt_in', 'lwt_in', ''],
  ['lwt_out', 'lwt_out', ''],
  ['lwt_xmit', 'lwt_xmit', ''],
  ['lwt_seg6local', 'lwt_seg6local', ''],
  ['sockops', 'sock_ops', 'cgroup_sock_ops'],
  ['sk_skb/stream_parser', 'sk_skb', 'sk_skb_stream_parser'],
  ['sk_skb/stream_verdict', 'sk_skb', 'sk_skb_stream_verdict'],
  ['sk_skb/verdict', 'sk_skb', 'sk_skb_verdict'],
  ['sk_skb', 'sk_skb', ''],
  ['sk_msg', 'sk_msg', 'sk_msg_verdict'],
  ['lirc_mode2', 'lirc_mode2', 'lirc_mode2'],
  ['flow_dissector', 'flow_dissector', 'flow_dissector'],
  ['cgroup_skb/ingress', 'cgroup_skb', 'cgroup_inet_ingress'],
  ['cgroup_skb/egress', 'cgroup_skb', 'cgroup_inet_egress'],
  ['cgroup/skb', 'cgroup_skb', ''],
  ['cgroup/sock_create', 'cgroup_sock', 'cgroup_inet_sock_create'],
  ['cgroup/sock_release', 'cgroup_sock', 'cgroup_inet_sock_release'],
  ['cgroup/sock', 'cgroup_sock', 'cgroup_inet_sock_create'],
  ['cgroup/post_bind4', 'cgroup_sock', 'cgroup_inet4_post_bind'],
  ['cgroup/post_bind6', 'cgroup_sock', 'cgroup_inet6_post_bind'],
  ['cgroup/bind4', 'cgroup_sock_addr', 'cgroup_inet4_bind'],
  ['cgroup/bind6', 'cgroup_sock_addr', 'cgroup_inet6_bind'],
  ['cgroup/connect4', 'cgroup_sock_addr', 'cgroup_inet4_connect'],
  ['cgroup/connect6', 'cgroup_sock_addr', 'cgroup_inet6_connect'],
  ['cgroup/connect_unix', 'cgroup_sock_addr', 'cgroup_unix_connect'],
  ['cgroup/sendmsg4', 'cgroup_sock_addr', 'cgroup_udp4_sendmsg'],
  ['cgroup/sendmsg6', 'cgroup_sock_addr', 'cgroup_udp6_sendmsg'],
  ['cgroup/sendmsg_unix', 'cgroup_sock_addr', 'cgroup_unix_sendmsg'],
  ['cgroup/recvmsg4', 'cgroup_sock_addr', 'cgroup_udp4_recvmsg'],
  ['cgroup/recvmsg6', 'cgroup_sock_addr', 'cgroup_udp6_recvmsg'],
  ['cgroup/recvmsg_unix', 'cgroup_sock_addr', 'cgroup_unix_recvmsg'],
  ['cgroup/getpeername4', 'cgroup_sock_addr', 'cgroup_inet4_getpeername'],
  ['cgroup/getpeername6', 'cgroup_sock_addr', 'cgroup_inet6_getpeername'],
  ['cgroup/getpeername_unix', 'cgroup_sock_addr', 'cgroup_unix_getpeername'],
  ['cgroup/getsockname4', 'cgroup_sock_addr', 'cgroup_inet4_getsockname'],
  ['cgroup/getsockname6', 'cgroup_sock_addr', 'cgroup_inet6_getsockname'],
  ['cgroup/getsockname_unix', 'cgroup_sock_addr', 'cgroup_unix_getsockname'],
  ['cgroup/sysctl', 'cgroup_sysctl', 'cgroup_sysctl'],
  ['cgroup/getsockopt', 'cgroup_sockopt', 'cgroup_getsockopt'],
  ['cgroup/setsockopt', 'cgroup_sockopt', 'cgroup_setsockopt'],
  ['cgroup/dev', 'cgroup_device', 'cgroup_device'],
  ['struct_ops+', 'struct_ops', ''],
  ['struct_ops.s+', 'struct_ops', '', true],
  ['sk_lookup', 'sk_lookup', 'sk_lookup'],
  ['netfilter', 'netfilter', 'netfilter'],
]

/**
 * Prefixes older loaders matched (libbpf 0.x marked them SEC_SLOPPY_PFX; the kernel samples'
 * bpf_load.c and iproute2 matched the same way), with what they meant. Tried in this order after
 * libbpf 1.x's table, so `xdp.frags` and `classifier` keep their exact meaning.
 */
const LEGACY_PREFIXES: ReadonlyArray<readonly [string, string, string]> = [
  ['socket', 'socket_filter', ''],
  ['sk_reuseport/migrate', 'sk_reuseport', 'sk_reuseport_select_or_migrate'],
  ['sk_reuseport', 'sk_reuseport', 'sk_reuseport_select'],
  ['classifier', 'sched_cls', ''],
  ['action', 'sched_act', ''],
  ['xdp_devmap/', 'xdp', 'xdp_devmap'],
  ['xdp_cpumap/', 'xdp', 'xdp_cpumap'],
  ['xdp', 'xdp', 'xdp'],
  ['perf_event', 'perf_event', ''],
  ['lwt_in', 'lwt_in', ''],
  ['lwt_out', 'lwt_out', ''],
  ['lwt_xmit', 'lwt_xmit', ''],
  ['lwt_seg6local', 'lwt_seg6local', ''],
  ['cgroup_skb/ingress', 'cgroup_skb', 'cgroup_inet_ingress'],
  ['cgroup_skb/egress', 'cgroup_skb', 'cgroup_inet_egress'],
  ['cgroup/skb', 'cgroup_skb', ''],
  ['cgroup/sock', 'cgroup_sock', 'cgroup_inet_sock_create'],
  ['cgroup/dev', 'cgroup_device', 'cgroup_device'],
  ['sockops', 'sock_ops', 'cgroup_sock_ops'],
  ['sk_skb/stream_parser', 'sk_skb', 'sk_skb_stream_parser'],
  ['sk_skb/stream_verdict', 'sk_skb', 'sk_skb_stream_verdict'],
  ['sk_skb', 'sk_skb', ''],
  ['sk_msg', 'sk_msg', 'sk_msg_verdict'],
  ['lirc_mode2', 'lirc_mode2', 'lirc_mode2'],
  ['flow_dissector', 'flow_dissector', 'flow_dissector'],
]

/** The program type of a section name: libbpf 1.x's, an older loader's, or 'unspec'. */
export function sectionType(section: string): SectionType {
  const modern = libbpfSectionType(section)
  if (modern) return modern
  for (const [prefix, type, attachType] of LEGACY_PREFIXES) {
    if (!section.startsWith(prefix)) continue
    const target = prefix.endsWith('/') ? section.slice(prefix.length) : ''
    return { type, typeId: PROG_TYPES[type]!, attachType, target, sleepable: false, matchedBy: 'legacy' }
  }
  return { type: 'unspec', typeId: 0, attachType: '', target: '', sleepable: false, matchedBy: 'none' }
}

/** The program type for a section name, or undefined when libbpf 1.x would not recognise it. */
export function libbpfSectionType(section: string): SectionType | undefined {
  for (const [pattern, type, attachType, sleepable] of TABLE) {
    let target: string | undefined
    if (pattern.endsWith('+')) {
      const base = pattern.slice(0, -1)
      if (section === base) target = ''
      else if (section.startsWith(`${base}/`)) target = section.slice(base.length + 1)
    } else if (section === pattern) {
      target = ''
    }
    if (target !== undefined) {
      return { type, typeId: PROG_TYPES[type]!, attachType, target, sleepable: sleepable ?? false, matchedBy: 'libbpf' }
    }
  }
  return undefined
}
