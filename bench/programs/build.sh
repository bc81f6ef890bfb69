#!/bin/sh
# Rebuilds the BPF bytecode of the benchmark programs from their C sources.
#
#   bench/programs/build.sh            (needs clang-19 and llvm-objcopy-19; Debian: clang-19 llvm-19)
#
# For each <name>.c it writes bpf/<name>.o (the object clang built) and bpf/<name>.bin (the raw
# instructions of its "bench" section, what the criterion bench loads with include_bytes!). The
# objects are committed, so `cargo bench` needs no clang; the native baseline is compiled from the
# same sources by the bench itself (see crates/ebpf-vm/benches/native.rs).
#
# -mcpu=v3: ALU32 and JMP32 but no v4 instructions, which rbpf 0.4 does not run. -fno-builtin: no
# memcpy/memset calls invented from loops (BPF cannot call them). The programs must have no
# relocations (no maps, no global data, no jump tables); the script checks.
set -eu
cd "$(dirname "$0")"
CLANG=${CLANG:-clang-19}
OBJCOPY=${OBJCOPY:-llvm-objcopy-19}
OBJDUMP=${OBJDUMP:-llvm-objdump-19}
CFLAGS="-O2 -target bpf -mcpu=v3 -fno-builtin -fno-strict-aliasing"
mkdir -p bpf
for src in *.c; do
	name=${src%.c}
	$CLANG $CFLAGS -c "$src" -o "bpf/$name.o"
	if [ -n "$($OBJDUMP -r "bpf/$name.o" | grep -E '^[0-9a-f]{16} ' || true)" ]; then
		echo "$src: has relocations, which the bench cannot resolve" >&2
		$OBJDUMP -r "bpf/$name.o" >&2
		exit 1
	fi
	if [ -n "$($OBJDUMP -h "bpf/$name.o" | awk '$2 == ".text" && $3 != "00000000"')" ]; then
		echo "$src: code outside the bench section (a bpf-to-bpf call?)" >&2
		exit 1
	fi
	$OBJCOPY -O binary --only-section=bench "bpf/$name.o" "bpf/$name.bin"
	echo "$name: $(($(wc -c <"bpf/$name.bin") / 8)) instructions"
done
