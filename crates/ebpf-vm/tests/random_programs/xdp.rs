//! Random XDP programs around direct packet access: `verifier_verdicts` compares the walk's
//! verdicts on them with the kernel's, `verifier_soundness` runs the accepted ones on packets of
//! several lengths (no memory trap when checked; verified runs agree with checked ones).

use super::super::rng::{Random, Rng};
use ebpf_vm::isa::Insn;

fn i(opcode: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn::new(opcode, dst, src, off, imm)
}

/// A random XDP program of about `len` instructions around packet access: r2 = data,
/// r3 = data_end, pointers moved by constants and by bounded or unbounded numbers, compared
/// with `data_end` every way round, packet reads and writes at various offsets.
pub fn random_xdp_program(rng: &mut Rng, len: usize) -> Vec<Insn> {
    let mut p = vec![
        i(0x61, 2, 1, 0, 0),  // r2 = data
        i(0x61, 3, 1, 4, 0),  // r3 = data_end
        i(0x61, 7, 1, 12, 0), // r7 = ingress_ifindex (a number)
        i(0xb7, 0, 0, 0, 2),
    ];
    let hostile = |rng: &mut Rng| rng.chance(12);
    while p.len() < len {
        let ptr = rng.pick(&[4u8, 5]);
        match rng.below(7) {
            // A pointer into the packet.
            0 | 1 => {
                p.push(i(0xbf, ptr, 2, 0, 0));
                let off = if hostile(rng) {
                    rng.pick(&[1, 0, -1])
                } else {
                    rng.pick(&[8, 14, 20, 34])
                };
                p.push(i(0x07, ptr, 0, 0, off));
                if rng.chance(30) {
                    let mask = if hostile(rng) {
                        -1
                    } else {
                        rng.pick(&[0xf, 0x3f, 0x7])
                    };
                    p.push(i(0xbf, 6, 7, 0, 0));
                    p.push(i(0x57, 6, 0, 0, mask));
                    p.push(i(0x0f, ptr, 6, 0, 0));
                }
            }
            // A comparison with data_end, either way round, skipping an access or an exit.
            2 | 3 => {
                let op = rng.pick(&[0x2du8, 0x3d, 0xad, 0xbd]); // > >= < <= (register forms)
                let (a, b) = if rng.chance(50) { (ptr, 3) } else { (3, ptr) };
                p.push(i(op, a, b, 1, 0));
                p.push(i(0x95, 0, 0, 0, 0)); // exit on one side
                                             // Often a read just below the checked pointer right away.
                if rng.chance(60) {
                    let (size, bytes) = rng.pick(&[(0x10u8, 1i16), (0x08, 2), (0x00, 4)]);
                    p.push(i(0x61 | size, 0, ptr, -bytes, 0));
                    p.push(i(0xb7, 0, 0, 0, 2));
                }
            }
            // A read or a write through a packet pointer.
            4 | 5 => {
                let base = if hostile(rng) { 2 } else { ptr };
                let size = rng.pick(&[0x10u8, 0x08, 0x00, 0x18]);
                let off = if hostile(rng) {
                    rng.pick(&[-1i16, 40, 100])
                } else {
                    rng.pick(&[0i16, -1, -2, -4, -8, 0])
                };
                if rng.chance(70) {
                    p.push(i(0x61 | size, 0, base, off, 0));
                    p.push(i(0xb7, 0, 0, 0, 2));
                } else {
                    p.push(i(0x62 | size, base, 0, off, 1));
                }
            }
            // Pointer arithmetic the rules forbid, now and then.
            _ => {
                if hostile(rng) {
                    p.push(i(rng.pick(&[0x57u8, 0x27, 0x04]), ptr, 0, 0, 1));
                } else {
                    p.push(i(0xbf, 6, ptr, 0, 0));
                    p.push(i(0x1f, 6, 2, 0, 0)); // r6 = ptr - data: a number
                }
            }
        }
    }
    p.push(i(0xb7, 0, 0, 0, 2));
    p.push(i(0x95, 0, 0, 0, 0));
    p
}
