// Stack: bounds of fixed-offset access, alignment-free reads and writes of each size, spill/fill of
// pointers and scalars, uninitialised reads, r10 being read-only.
import { prog, TYPES } from './_lib.mjs'

const out = []
const SIZES = { u8: 1, u16: 2, u32: 4, u64: 8 }

for (const t of TYPES) {
  // Writes then reads at the lowest legal slot and just below the 512-byte stack.
  out.push(
    prog(`${t}_stack_write_read_fp_minus_512_ok`, t, `*(u64 *)(r10 - 512) = 1\nr0 = *(u64 *)(r10 - 512)\nr0 = 0\nexit`),
  )
  out.push(prog(`${t}_stack_write_fp_minus_520_rej`, t, `*(u64 *)(r10 - 520) = 1\nr0 = 0\nexit`))
  out.push(prog(`${t}_stack_write_fp_plus_0_rej`, t, `*(u64 *)(r10 + 0) = 1\nr0 = 0\nexit`))
  out.push(prog(`${t}_stack_write_straddles_fp_rej`, t, `*(u64 *)(r10 - 4) = 1\nr0 = 0\nexit`))
  out.push(prog(`${t}_stack_read_uninit_u64_privileged_ok`, t, `r0 = *(u64 *)(r10 - 8)\nexit`))
  out.push(prog(`${t}_stack_read_partly_init_privileged_ok`, t, `*(u32 *)(r10 - 8) = 1\nr0 = *(u64 *)(r10 - 8)\nexit`))
  out.push(
    prog(`${t}_stack_read_other_half_init_privileged_ok`, t, `*(u32 *)(r10 - 4) = 1\nr0 = *(u64 *)(r10 - 8)\nexit`),
  )
  out.push(prog(`${t}_stack_write_r10_rej`, t, `r10 = 0\nr0 = 0\nexit`))
  out.push(prog(`${t}_stack_add_to_r10_rej`, t, `r10 += -8\nr0 = 0\nexit`))
  out.push(prog(`${t}_stack_spill_ctx_fill_ok`, t, `*(u64 *)(r10 - 8) = r1\nr2 = *(u64 *)(r10 - 8)\nr0 = 0\nexit`))
  out.push(
    prog(`${t}_stack_spill_ctx_partial_fill_rej`, t, `*(u64 *)(r10 - 8) = r1\nr2 = *(u32 *)(r10 - 8)\nr0 = r2\nexit`),
  )
  out.push(
    prog(
      `${t}_stack_spill_fp_fill_deref_ok`,
      t,
      `r2 = r10\nr2 += -16\n*(u64 *)(r10 - 8) = r2\nr3 = *(u64 *)(r10 - 8)\n*(u64 *)(r3 + 0) = 7\nr0 = *(u64 *)(r10 - 16)\nexit`,
    ),
  )
  out.push(
    prog(
      `${t}_stack_spill_fp_overwrite_byte_then_deref_rej`,
      t,
      `r2 = r10\nr2 += -16\n*(u64 *)(r10 - 8) = r2\n*(u8 *)(r10 - 8) = 0\nr3 = *(u64 *)(r10 - 8)\n*(u64 *)(r3 + 0) = 7\nr0 = 0\nexit`,
    ),
  )
  out.push(
    prog(
      `${t}_stack_spill_scalar_fill_keeps_const_ok`,
      t,
      `r2 = 8\n*(u64 *)(r10 - 8) = r2\nr3 = *(u64 *)(r10 - 8)\nr4 = r10\nr4 += -16\nr4 += r3\n*(u64 *)(r4 - 8) = 0\nr0 = 0\nexit`,
    ),
  )
  out.push(
    prog(
      `${t}_stack_spill_scalar_fill_const_out_of_bounds_rej`,
      t,
      `r2 = 24\n*(u64 *)(r10 - 8) = r2\nr3 = *(u64 *)(r10 - 8)\nr4 = r10\nr4 += -16\nr4 += r3\n*(u64 *)(r4 - 8) = 0\nr0 = 0\nexit`,
    ),
  )
  out.push(prog(`${t}_stack_read_u32_after_u32_store_ok`, t, `*(u32 *)(r10 - 4) = 5\nr0 = *(u32 *)(r10 - 4)\nexit`))
  for (const [cast, size] of Object.entries(SIZES)) {
    out.push(prog(`${t}_stack_${cast}_store_load_ok`, t, `*(${cast} *)(r10 - 8) = 3\nr0 = *(${cast} *)(r10 - 8)\nexit`))
    out.push(
      prog(
        `${t}_stack_${cast}_store_odd_offset_${size === 1 ? 'ok' : 'rej'}`,
        t,
        `*(${cast} *)(r10 - ${8 + 1 + size}) = 3\nr0 = 0\nexit`,
      ),
    )
    out.push(prog(`${t}_stack_${cast}_load_uninit_privileged_ok`, t, `r0 = *(${cast} *)(r10 - 16)\nexit`))
  }
  // Reads through a pointer into the stack that was moved by a constant.
  out.push(
    prog(
      `${t}_stack_ptr_plus_const_read_init_ok`,
      t,
      `*(u64 *)(r10 - 24) = 9\nr1 = r10\nr1 += -32\nr0 = *(u64 *)(r1 + 8)\nexit`,
    ),
  )
  out.push(
    prog(
      `${t}_stack_ptr_plus_const_read_uninit_privileged_ok`,
      t,
      `*(u64 *)(r10 - 24) = 9\nr1 = r10\nr1 += -32\nr0 = *(u64 *)(r1 + 0)\nexit`,
    ),
  )
  out.push(prog(`${t}_stack_ptr_minus_600_then_plus_read_rej`, t, `r1 = r10\nr1 += -600\nr0 = *(u64 *)(r1 + 0)\nexit`))
  // A register never written.
  out.push(prog(`${t}_reg_read_uninit_r2_rej`, t, `r0 = r2\nexit`))
  out.push(prog(`${t}_reg_exit_without_r0_rej`, t, `exit`))
  out.push(prog(`${t}_reg_read_uninit_r9_in_alu_rej`, t, `r0 = 1\nr0 += r9\nexit`))
  out.push(prog(`${t}_reg_r1_ctx_copied_to_r6_ok`, t, `r6 = r1\nr0 = 0\nexit`))
}
export default out
