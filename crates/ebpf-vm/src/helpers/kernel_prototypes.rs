//! The prototypes of the kernel helpers this engine implements, as Linux 6.18 declares them
//! (`struct bpf_func_proto` in kernel/bpf/helpers.c, ringbuf.c, bpf_iter.c, core.c,
//! net/core/filter.c, kernel/trace/bpf_trace.c) and which program types' `get_func_proto` offer
//! them. Facts read from the kernel source; `tests/helper_prototypes.rs` checks the program types
//! and GPL flags against what the running kernel accepts (table in
//! `tests/kernel_oracle/helper_access_6.18.txt`) and lists every argument type once more by hand;
//! `tests/helper_prototypes_live.rs` asks the kernel about return types and memory arguments.

use super::prototype::{ArgType::*, HelperPrototype, KernelProgType::*, RetType::*};
use super::{
    callbacks, locks, maps, packet, perf, probe_read, process, signal, skb, socket, stack,
    standard, strings, tail_call, trace,
};

// Helpers of `context::redirect` and `context::net` (a layer above: the numbers are repeated).
const BPF_REDIRECT_MAP: u32 = 51;
const BPF_REDIRECT_NEIGH: u32 = 152;
const BPF_REDIRECT_PEER: u32 = 155;
const BPF_CLONE_REDIRECT: u32 = 13;
const BPF_CHECK_MTU: u32 = 163;
const BPF_FIB_LOOKUP: u32 = 69;
// `context::tunnel`.
const BPF_SKB_GET_TUNNEL_KEY: u32 = 20;
const BPF_SKB_SET_TUNNEL_KEY: u32 = 21;

/// The kernel's prototype of helper `id`, for the helpers this engine implements.
pub fn kernel_prototype(id: u32) -> Option<HelperPrototype> {
    let p = HelperPrototype::new;
    Some(match id {
        // These and csum_diff take packet memory (`.pkt_access = true`).
        maps::BPF_MAP_LOOKUP_ELEM => {
            p(PtrToMapValueOrNull, &[ConstMapPtr, PtrToMapKey]).pkt_access()
        }
        maps::BPF_MAP_UPDATE_ELEM => p(
            Integer,
            &[ConstMapPtr, PtrToMapKey, PtrToMapValue, Anything],
        )
        .pkt_access(),
        maps::BPF_MAP_DELETE_ELEM => p(Integer, &[ConstMapPtr, PtrToMapKey]).pkt_access(),
        maps::BPF_MAP_PUSH_ELEM => p(Integer, &[ConstMapPtr, PtrToMapValue, Anything]).pkt_access(),
        maps::BPF_MAP_POP_ELEM | maps::BPF_MAP_PEEK_ELEM => {
            p(Integer, &[ConstMapPtr, PtrToUninitMapValue])
        }
        maps::BPF_MAP_LOOKUP_PERCPU_ELEM => {
            p(PtrToMapValueOrNull, &[ConstMapPtr, PtrToMapKey, Anything]).pkt_access()
        }
        maps::BPF_FOR_EACH_MAP_ELEM => p(
            Integer,
            &[ConstMapPtr, PtrToFunc, PtrToStackOrNull, Anything],
        ),
        maps::BPF_RINGBUF_OUTPUT => p(
            Integer,
            &[ConstMapPtr, PtrToReadonlyMem, ConstSizeOrZero, Anything],
        ),
        maps::BPF_RINGBUF_RESERVE => p(
            PtrToRingbufMemOrNull,
            &[ConstMapPtr, ConstAllocSizeOrZero, Anything],
        ),
        maps::BPF_RINGBUF_SUBMIT | maps::BPF_RINGBUF_DISCARD => {
            p(Void, &[PtrToRingbufMemRelease, Anything])
        }
        maps::BPF_RINGBUF_QUERY => p(Integer, &[ConstMapPtr, Anything]),
        standard::BPF_KTIME_GET_NS
        | standard::BPF_KTIME_GET_BOOT_NS
        | standard::BPF_GET_PRANDOM_U32
        | standard::BPF_GET_SMP_PROCESSOR_ID
        | process::BPF_GET_CURRENT_PID_TGID
        | process::BPF_GET_CURRENT_UID_GID
        | standard::BPF_JIFFIES64 => p(Integer, &[]),
        // bpf_base_func_proto offers both to every type, GPL or not.
        signal::BPF_SEND_SIGNAL | signal::BPF_SEND_SIGNAL_THREAD => p(Integer, &[Anything]),
        // sk_filter_func_proto (which cg_skb_func_proto falls back to) and tc_cls_act_func_proto
        // (bpf_get_socket_cookie_proto, bpf_get_socket_uid_proto).
        socket::BPF_GET_SOCKET_COOKIE | socket::BPF_GET_SOCKET_UID => {
            p(Integer, &[PtrToCtx]).for_types(&[SocketFilter, SchedCls, CgroupSkb])
        }
        // Tracing programs do not get the coarse clock (bpf_tracing_func_proto refuses it).
        standard::BPF_KTIME_GET_COARSE_NS => {
            p(Integer, &[]).for_types(&[SocketFilter, SchedCls, Xdp, CgroupSkb])
        }
        process::BPF_GET_CURRENT_COMM => p(Integer, &[PtrToUninitMem, ConstSize]),
        // r3-r5 are the format's arguments: the prototype leaves them undeclared.
        trace::BPF_TRACE_PRINTK => p(Integer, &[PtrToReadonlyMem, ConstSize]).gpl_only(),
        tail_call::BPF_TAIL_CALL => p(Void, &[PtrToCtx, ConstMapPtr, Anything]),
        // One prototype per program type in the kernel (skb, xdp, tracing), all alike.
        perf::BPF_PERF_EVENT_OUTPUT => p(
            Integer,
            &[
                PtrToCtx,
                ConstMapPtr,
                Anything,
                PtrToReadonlyMem,
                ConstSizeOrZero,
            ],
        )
        .gpl_only(),
        // kernel/bpf/stackmap.c via bpf_tracing_func_proto: GPL-only, except perf_event programs'
        // variant of get_stackid (bpf_get_stackid_proto_pe).
        stack::BPF_GET_STACKID => p(Integer, &[PtrToCtx, ConstMapPtr, Anything])
            .gpl_only()
            .gpl_free_for(&[PerfEvent])
            .for_types(&[Kprobe, Tracepoint, PerfEvent, RawTracepoint]),
        stack::BPF_GET_STACK => p(
            Integer,
            &[PtrToCtx, PtrToUninitMem, ConstSizeOrZero, Anything],
        )
        .gpl_only()
        .for_types(&[Kprobe, Tracepoint, PerfEvent, RawTracepoint]),
        packet::BPF_SKB_LOAD_BYTES => p(Integer, &[PtrToCtx, Anything, PtrToUninitMem, ConstSize])
            .for_types(&[SocketFilter, SchedCls, CgroupSkb]),
        packet::BPF_CSUM_DIFF => p(
            Integer,
            &[
                PtrToReadonlyMemOrNull,
                ConstSizeOrZero,
                PtrToReadonlyMemOrNull,
                ConstSizeOrZero,
                Anything,
            ],
        )
        .pkt_access()
        .for_types(&[SchedCls, Xdp]),
        packet::BPF_XDP_ADJUST_HEAD | packet::BPF_XDP_ADJUST_META | packet::BPF_XDP_ADJUST_TAIL => {
            p(Integer, &[PtrToCtx, Anything]).for_types(&[Xdp])
        }
        packet::BPF_XDP_GET_BUFF_LEN => p(Integer, &[PtrToCtx]).for_types(&[Xdp]),
        packet::BPF_XDP_LOAD_BYTES => {
            p(Integer, &[PtrToCtx, Anything, PtrToUninitMem, ConstSize]).for_types(&[Xdp])
        }
        // The buffer is read: ARG_PTR_TO_MEM | MEM_RDONLY since a fix that 6.18's stable updates
        // carry (6.18.44 refuses uninitialised stack there once CAP_PERFMON is dropped;
        // tests/helper_prototypes_live.rs). The release was ARG_PTR_TO_UNINIT_MEM.
        packet::BPF_XDP_STORE_BYTES => {
            p(Integer, &[PtrToCtx, Anything, PtrToReadonlyMem, ConstSize]).for_types(&[Xdp])
        }
        // net/core/filter.c: the tc (sched_cls) helpers this engine implements.
        skb::BPF_SKB_STORE_BYTES => p(
            Integer,
            &[PtrToCtx, Anything, PtrToReadonlyMem, ConstSize, Anything],
        )
        .for_types(&[SchedCls]),
        skb::BPF_L3_CSUM_REPLACE | skb::BPF_L4_CSUM_REPLACE => {
            p(Integer, &[PtrToCtx, Anything, Anything, Anything, Anything]).for_types(&[SchedCls])
        }
        skb::BPF_SKB_VLAN_PUSH
        | skb::BPF_SKB_CHANGE_PROTO
        | skb::BPF_SKB_CHANGE_TAIL
        | skb::BPF_SKB_CHANGE_HEAD => {
            p(Integer, &[PtrToCtx, Anything, Anything]).for_types(&[SchedCls])
        }
        // bpf_set_hash_invalid returns 0 (RET_INTEGER: tests/helper_prototypes_live.rs).
        skb::BPF_SKB_VLAN_POP | skb::BPF_GET_HASH_RECALC | skb::BPF_SET_HASH_INVALID => {
            p(Integer, &[PtrToCtx]).for_types(&[SchedCls])
        }
        // cg_skb_func_proto offers it too.
        skb::BPF_SKB_ECN_SET_CE => p(Integer, &[PtrToCtx]).for_types(&[SchedCls, CgroupSkb]),
        skb::BPF_SKB_CHANGE_TYPE
        | skb::BPF_SKB_PULL_DATA
        | skb::BPF_SET_HASH
        | skb::BPF_CSUM_UPDATE => p(Integer, &[PtrToCtx, Anything]).for_types(&[SchedCls]),
        skb::BPF_SKB_ADJUST_ROOM => {
            p(Integer, &[PtrToCtx, Anything, Anything, Anything]).for_types(&[SchedCls])
        }
        // bpf_redirect_proto (tc) and bpf_xdp_redirect_proto, alike.
        skb::BPF_REDIRECT => p(Integer, &[Anything, Anything]).for_types(&[SchedCls, Xdp]),
        // bpf_xdp_redirect_map_proto.
        BPF_REDIRECT_MAP => p(Integer, &[ConstMapPtr, Anything, Anything]).for_types(&[Xdp]),
        // bpf_redirect_neigh_proto, bpf_redirect_peer_proto, bpf_clone_redirect_proto (tc).
        BPF_REDIRECT_NEIGH => p(
            Integer,
            &[Anything, PtrToReadonlyMemOrNull, ConstSizeOrZero, Anything],
        )
        .for_types(&[SchedCls]),
        BPF_REDIRECT_PEER => p(Integer, &[Anything, Anything]).for_types(&[SchedCls]),
        BPF_CLONE_REDIRECT => p(Integer, &[PtrToCtx, Anything, Anything]).for_types(&[SchedCls]),
        // bpf_skb_check_mtu_proto and bpf_xdp_check_mtu_proto, alike (GPL).
        BPF_CHECK_MTU => p(
            Integer,
            &[
                PtrToCtx,
                Anything,
                PtrToFixedSizeMem { size: 4 },
                Anything,
                Anything,
            ],
        )
        .gpl_only()
        .for_types(&[SchedCls, Xdp]),
        // bpf_skb_fib_lookup_proto and bpf_xdp_fib_lookup_proto, alike (GPL).
        BPF_FIB_LOOKUP => p(Integer, &[PtrToCtx, PtrToWritableMem, ConstSize, Anything])
            .gpl_only()
            .for_types(&[SchedCls, Xdp]),
        // bpf_skb_get_tunnel_key_proto, bpf_skb_set_tunnel_key_proto (tc; lwt_xmit, which has
        // them too, is no type here).
        BPF_SKB_GET_TUNNEL_KEY => {
            p(Integer, &[PtrToCtx, PtrToUninitMem, ConstSize, Anything]).for_types(&[SchedCls])
        }
        BPF_SKB_SET_TUNNEL_KEY => {
            p(Integer, &[PtrToCtx, PtrToReadonlyMem, ConstSize, Anything]).for_types(&[SchedCls])
        }
        locks::BPF_SPIN_LOCK | locks::BPF_SPIN_UNLOCK => p(Void, &[PtrToSpinLock]),
        strings::BPF_STRTOL | strings::BPF_STRTOUL => p(
            Integer,
            &[
                PtrToReadonlyMem,
                ConstSize,
                Anything,
                PtrToFixedSizeUninitMem { size: 8 },
            ],
        ),
        strings::BPF_SNPRINTF => p(
            Integer,
            &[
                PtrToWritableMemOrNull,
                ConstSizeOrZero,
                PtrToConstStr,
                PtrToReadonlyMemOrNull,
                ConstSizeOrZero,
            ],
        )
        .gpl_only(),
        // kernel/trace/bpf_trace.c: every probe-read form is GPL-only and fills `dst` whatever
        // happens (zeroed on a fault). The compat forms are offered to the classic tracing types
        // only (bpf_tracing_func_proto), the others to every type (bpf_base_func_proto).
        probe_read::BPF_PROBE_READ_USER
        | probe_read::BPF_PROBE_READ_KERNEL
        | probe_read::BPF_PROBE_READ_USER_STR
        | probe_read::BPF_PROBE_READ_KERNEL_STR => {
            p(Integer, &[PtrToUninitMem, ConstSizeOrZero, Anything]).gpl_only()
        }
        probe_read::BPF_PROBE_READ | probe_read::BPF_PROBE_READ_STR => {
            p(Integer, &[PtrToUninitMem, ConstSizeOrZero, Anything])
                .gpl_only()
                .for_types(&[Kprobe, Tracepoint, PerfEvent, RawTracepoint])
        }
        probe_read::BPF_GET_CURRENT_TASK => p(Integer, &[]).gpl_only(),
        // bpf_get_func_ip_proto_kprobe (and the tracing form), GPL-only: every tracing type gets
        // the prototype, the verifier's check_get_func_ip refuses all but kprobes
        // (verifier/call.rs).
        probe_read::BPF_GET_FUNC_IP => p(Integer, &[PtrToCtx]).gpl_only().for_types(&[
            Kprobe,
            Tracepoint,
            PerfEvent,
            RawTracepoint,
        ]),
        // bpf_probe_write_user_proto, through bpf_tracing_func_proto (GPL-only), unless the
        // kernel is locked down (LOCKDOWN_BPF_WRITE_USER), as the oracle host is.
        probe_read::BPF_PROBE_WRITE_USER => p(Integer, &[Anything, PtrToReadonlyMem, ConstSize])
            .gpl_only()
            .for_types(&[Kprobe, Tracepoint, PerfEvent, RawTracepoint]),
        probe_read::BPF_GET_ATTACH_COOKIE => {
            p(Integer, &[PtrToCtx]).for_types(&[Kprobe, Tracepoint, PerfEvent, RawTracepoint])
        }
        probe_read::BPF_GET_CURRENT_TASK_BTF => p(PtrToBtfIdTrusted, &[]).gpl_only(),
        callbacks::BPF_LOOP => p(Integer, &[Anything, PtrToFunc, PtrToStackOrNull, Anything]),
        _ => return None,
    })
}
