/* Shared includes of the C corpus: UAPI types, libbpf's helper macros, pt_regs for kprobes.
 * Every program's name ends in _ok (the kernel accepts it) or _rej (it rejects it). */
#ifndef VERIFIER_CORPUS_H
#define VERIFIER_CORPUS_H
#define __TARGET_ARCH_x86
#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <linux/tcp.h>
#include <asm/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_tracing.h>

/* Hides a value from clang's optimiser, so that the check the verifier must see is not folded. */
#define opaque(x) ({ __typeof__(x) __v = (x); asm volatile("" : "+r"(__v)); __v; })
#endif
