//! Packet pointers beyond a single access: which program types may read and write the packet
//! directly (`may_access_direct_pkt_data`), the ranges comparisons teach (`try_match_pkt_pointers`
//! and `find_good_pkt_pointers`: `data` against `data_end`, and `data_meta` against an unmoved
//! `data`), the comparisons a marked pointer decides (`is_pkt_ptr_branch_taken`), and what a
//! helper that changes the packet does to every packet pointer (`bpf_helper_changes_pkt_data`
//! and `clear_all_pkt_pointers`: each one, in every frame and every spilled copy, becomes an
//! unknown number, as root's loads get in Linux 6.18).

use super::branch::{self, Taken};
use super::env::ProgramKind;
use super::reg::{BaseType, RegState};
use super::state::VerifierState;
use crate::analysis::{Analysis, CallKind};
use crate::isa::opcodes::{CALL_HELPER, OP_CALL};
use crate::isa::opcodes::{JMP_JGE, JMP_JGT, JMP_JLE, JMP_JLT};

/// Helpers that change packet data (`bpf_helper_changes_pkt_data`, the ones of the program
/// types verified here): skb_store_bytes (9), l3/l4_csum_replace (10, 11), clone_redirect (13), skb_vlan_push/pop (18, 19),
/// skb_change_proto (31), skb_change_tail (38), skb_pull_data (39), skb_change_head (43),
/// xdp_adjust_head (44), skb_adjust_room (50), xdp_adjust_meta (54), xdp_adjust_tail (65). Not `tail_call`: after a failed tail call 6.18.44 keeps the packet
/// pointers (its corpus verdict).
pub const CHANGES_PACKET: [i32; 14] = [9, 10, 11, 13, 18, 19, 31, 38, 39, 43, 44, 50, 54, 65];

/// Helper `id` may move or resize the packet.
pub fn changes_packet(id: i32) -> bool {
    CHANGES_PACKET.contains(&id)
}

/// The program type may read the packet through `data`/`data_end`/`data_meta`
/// (`may_access_direct_pkt_data` without a helper).
pub fn may_read_direct(kind: ProgramKind) -> bool {
    matches!(
        kind,
        ProgramKind::Xdp | ProgramKind::XdpDevmap | ProgramKind::Tc | ProgramKind::CgroupSkb { .. }
    )
}

/// The program type may also write the packet directly (cgroup_skb programs may not).
pub fn may_write_direct(kind: ProgramKind) -> bool {
    may_read_direct(kind) && !matches!(kind, ProgramKind::CgroupSkb { .. })
}

/// After a helper that changes the packet: every packet pointer (`pkt`, `pkt_meta`,
/// `pkt_end`), in registers and spilled, in every frame, becomes an unknown number
/// (`mark_reg_invalid` with `allow_ptr_leaks`, as for root).
pub fn clear_all_pkt_pointers(state: &mut VerifierState) {
    state.for_each_reg_mut(|reg| {
        if matches!(
            reg.ty.base,
            BaseType::Packet | BaseType::PacketMeta | BaseType::PacketEnd
        ) {
            *reg = RegState::unknown_scalar();
        }
    });
}

/// Function `f` calls a helper that changes the packet, itself or in a function it calls (the
/// kernel's `changes_pkt_data` of a subprogram, which a call of a global function applies to
/// its caller: the caller's walk never sees the helper).
pub fn function_changes_packet(analysis: &Analysis, f: usize) -> bool {
    let functions = &analysis.functions;
    let mut seen = vec![false; functions.funcs.len()];
    let mut todo = vec![f];
    while let Some(g) = todo.pop() {
        if std::mem::replace(&mut seen[g], true) {
            continue;
        }
        let func = &functions.funcs[g];
        let calls_changer = (func.start..func.end).any(|i| {
            let insn = analysis.program.get(i);
            insn.opcode == OP_CALL && insn.src == CALL_HELPER && changes_packet(insn.imm())
        });
        if calls_changer {
            return true;
        }
        for call in functions.calls_from(g) {
            if call.kind == CallKind::Call {
                todo.push(call.callee);
            }
        }
    }
    false
}

/// The kernel's marks for a packet pointer compared with `data_end` and found at or past it.
pub const AT_PKT_END: i32 = -1;
pub const BEYOND_PKT_END: i32 = -2;

/// The largest offset into a packet the ranges reason about (`MAX_PACKET_OFF`).
const MAX_PACKET_OFF: u64 = 0xffff;

/// `data` as loaded from the context and not moved since (`reg_is_init_pkt_pointer`): the
/// bound a `data_meta` pointer is compared against.
fn is_init_data(r: &RegState) -> bool {
    r.ty.base == BaseType::Packet && r.id == 0 && r.off == 0 && r.bounds.var_off.is_const() && {
        r.bounds.var_off.value == 0
    }
}

/// Comparisons of packet pointers (`try_match_pkt_pointers`): `pkt` against `data_end`, or
/// `pkt_meta` against `data` as loaded. On the side where `ptr <= bound` holds, every copy of
/// the pointer (same type, same id) may read `off` bytes (`find_good_pkt_pointers`); on the
/// other side a `pkt` pointer is marked at or beyond `data_end` (`mark_pkt_end`), which decides
/// later comparisons of it. `taken`/`fall` receive the two sides when the comparison teaches
/// something.
pub fn compare(
    state: &VerifierState,
    taken: &mut VerifierState,
    fall: &mut Option<VerifierState>,
    (a, a_reg): (&RegState, u8),
    (b, b_reg): (&RegState, u8),
    op: u8,
) {
    // `x` is the pointer whose range is learned, `y` its bound.
    let lower = |x: &RegState, y: &RegState| {
        (x.ty.base == BaseType::Packet && y.ty.base == BaseType::PacketEnd)
            || (x.ty.base == BaseType::PacketMeta && is_init_data(y))
    };
    // (the pointer and its register, whether the range is open on the right, whether it holds
    // on the jump side)
    let matched = match op {
        JMP_JGT if lower(a, b) => Some((a, a_reg, false, false)),
        JMP_JGT if lower(b, a) => Some((b, b_reg, true, true)),
        JMP_JLT if lower(a, b) => Some((a, a_reg, true, true)),
        JMP_JLT if lower(b, a) => Some((b, b_reg, false, false)),
        JMP_JGE if lower(a, b) => Some((a, a_reg, true, false)),
        JMP_JGE if lower(b, a) => Some((b, b_reg, false, true)),
        JMP_JLE if lower(a, b) => Some((a, a_reg, false, true)),
        JMP_JLE if lower(b, a) => Some((b, b_reg, true, false)),
        _ => None,
    };
    let Some((ptr, regno, open, on_jump)) = matched else {
        return;
    };
    let mut jump_side = std::mem::replace(taken, state.clone());
    let mut fall_side = fall.take().unwrap_or_else(|| state.clone());
    let (good, end_side) = if on_jump {
        (&mut jump_side, &mut fall_side)
    } else {
        (&mut fall_side, &mut jump_side)
    };
    let usable = !(ptr.off < 0 || (ptr.off == 0 && open))
        && ptr.bounds.umax <= MAX_PACKET_OFF
        && ptr.bounds.umax + ptr.off.max(0) as u64 <= MAX_PACKET_OFF;
    if usable {
        let range = ptr.off + open as i32;
        let ty = ptr.ty.base;
        good.for_each_reg_mut(|reg: &mut RegState| {
            if reg.ty.base == ty && reg.id == ptr.id {
                reg.range = reg.range.max(range);
            }
        });
    }
    // The other side: this pointer is past data_end (`>`) or at least at it (`>=`); only
    // `pkt` pointers are marked (6.18 leaves `pkt_meta` alone).
    let reg = &mut end_side.frame_mut().regs[regno as usize];
    if reg.ty.base == BaseType::Packet {
        reg.range = if open { AT_PKT_END } else { BEYOND_PKT_END };
    }
    *taken = jump_side;
    *fall = Some(fall_side);
}

/// A comparison of a packet pointer marked at or beyond `data_end` with `data_end`
/// (`is_pkt_ptr_branch_taken`).
pub fn branch_taken(a: &RegState, b: &RegState, op: u8) -> Taken {
    let (pkt, op) = if b.ty.base == BaseType::PacketEnd {
        (a, op)
    } else if a.ty.base == BaseType::PacketEnd {
        (b, branch::flip(op))
    } else {
        return Taken::Unknown;
    };
    if pkt.ty.base != BaseType::Packet || pkt.range >= 0 {
        return Taken::Unknown;
    }
    let decided = |yes: bool| if yes { Taken::Always } else { Taken::Never };
    match op {
        JMP_JLE | JMP_JGT if pkt.range == BEYOND_PKT_END => decided(op == JMP_JGT),
        JMP_JLT | JMP_JGE => decided(op == JMP_JGE),
        _ => Taken::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isa::opcodes::JMP_JEQ;
    use crate::verifier::reg::RegType;
    use crate::verifier::state::FuncState;

    fn ptr(base: BaseType, off: i32, range: i32) -> RegState {
        RegState {
            off,
            range,
            ..RegState::pointer(RegType::of(base))
        }
    }

    #[test]
    fn changing_helpers_are_the_kernels_list() {
        // bpf_helper_changes_pkt_data for the helpers of socket filters, tc and xdp.
        for id in [9, 10, 11, 13, 18, 19, 31, 38, 39, 43, 44, 50, 54, 65] {
            assert!(changes_packet(id), "{id}");
        }
        // map lookup, tail_call, redirect, csum_diff, skb_change_type, xdp_load_bytes.
        for id in [1, 12, 23, 28, 32, 189] {
            assert!(!changes_packet(id), "{id}");
        }
    }

    #[test]
    fn clearing_reaches_every_frame_and_spill_and_only_packet_pointers() {
        let mut state = VerifierState::entry();
        state.frames.push(FuncState::new(1, Some(3)));
        state.frames[0].regs[6] = ptr(BaseType::Packet, 14, 14);
        state.frames[0].regs[7] = ptr(BaseType::PacketEnd, 0, 0);
        state.frames[0].regs[8] = ptr(BaseType::Ctx, 0, 0);
        state.frames[0].spill(-8, 8, &ptr(BaseType::PacketMeta, 4, 4));
        state.frames[1].regs[2] = ptr(BaseType::Packet, 0, 20);
        state.frames[1].spill(-16, 8, &ptr(BaseType::Stack, -8, 0));
        clear_all_pkt_pointers(&mut state);
        let unknown = RegState::unknown_scalar();
        assert_eq!(state.frames[0].regs[6], unknown);
        assert_eq!(state.frames[0].regs[7], unknown);
        assert_eq!(state.frames[0].regs[8].ty.base, BaseType::Ctx);
        assert_eq!(state.frames[0].slot(-8).unwrap().spilled, unknown);
        assert_eq!(state.frames[1].regs[2], unknown);
        assert_eq!(
            state.frames[1].slot(-16).unwrap().spilled.ty.base,
            BaseType::Stack
        );
    }

    /// `if meta + 8 > data goto`: the fall-through may read 8 bytes of metadata; the jump side
    /// learns nothing (a meta pointer is never marked past the end).
    #[test]
    fn meta_learns_its_range_from_data_as_loaded() {
        let mut state = VerifierState::entry();
        let meta = ptr(BaseType::PacketMeta, 8, 0);
        let data = ptr(BaseType::Packet, 0, 0);
        state.frames[0].regs[4] = meta.clone();
        state.frames[0].regs[3] = data.clone();
        let mut taken = state.clone();
        let mut fall = None;
        compare(
            &state,
            &mut taken,
            &mut fall,
            (&meta, 4),
            (&data, 3),
            JMP_JGT,
        );
        assert_eq!(fall.unwrap().frames[0].regs[4].range, 8);
        assert_eq!(taken.frames[0].regs[4].range, 0);

        // data moved by 1: no longer the bound (`reg_is_init_pkt_pointer`).
        let moved = ptr(BaseType::Packet, 1, 0);
        let mut taken = state.clone();
        let mut fall = None;
        compare(
            &state,
            &mut taken,
            &mut fall,
            (&meta, 4),
            (&moved, 3),
            JMP_JGT,
        );
        assert!(fall.is_none());

        // `data + 8 > data_end` on the jump side marks data past the end: then `==` is open
        // but `>` is decided.
        let past = ptr(BaseType::Packet, 8, BEYOND_PKT_END);
        let end = ptr(BaseType::PacketEnd, 0, 0);
        assert_eq!(branch_taken(&past, &end, JMP_JGT), Taken::Always);
        assert_eq!(branch_taken(&past, &end, JMP_JEQ), Taken::Unknown);
        assert_eq!(branch_taken(&meta, &end, JMP_JGT), Taken::Unknown);
    }
}
