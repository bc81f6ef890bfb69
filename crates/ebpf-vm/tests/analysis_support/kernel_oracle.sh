#!/usr/bin/env bash
# Rebuilds kernel_oracle.txt: what the Linux verifier says about the shape of the fixture programs
# (__test__/fixtures/*.bpf.o, loaded with `bpftool prog loadall`) and of the benchmark programs
# (bench/programs/bpf/*.o, loaded as socket filters: the kernel rejects most of them, but its log
# has printed what is needed here before it does). Needs root, a bpffs at /sys/fs/bpf and a kernel
# whose level-2 verifier log lists "Live regs before insn" with strongly connected components
# (Linux 6.18 wrote the committed file).
# Nothing is attached; every pin is removed again.
#
#   crates/ebpf-vm/tests/analysis_support/kernel_oracle.sh
#
# Output, per program: `program <fixture> <name>`, `funcs <slot>...` (func#N @slot),
# `stack <bytes>...` (the "stack depth A+B" line, only for programs the kernel accepted), one line
# `<slot> <scc> <live>` per instruction (its strongly connected component, 0 for none, and the
# registers r0-r9 live before it, '.' for dead), then `end`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$here/../../../.."
BPFTOOL=${BPFTOOL:-bpftool}
out="$here/kernel_oracle.txt"
pin=/sys/fs/bpf/ebpf_analysis_oracle_$$ # bpffs names take no dots
log=$(mktemp)
trap 'rm -rf "$pin" "$log"' EXIT

extract() { # fixture-label < bpftool -d log
	awk -v fx="$1" '
		match($0, /prog .([A-Za-z0-9_]+).: -- BEGIN PROG LOAD LOG --/) {
			name = substr($0, RSTART + 6); sub(/.: -- BEGIN.*/, "", name)
			print "program " fx " " name; funcs = "funcs"; inlive = 0; next
		}
		/^-- END PROG LOAD LOG --/ { if (name != "") { print "end" }; name = ""; next }
		name == "" { next }
		/^func#[0-9]+ @[0-9]+/ { split($2, a, "@"); printf "funcs %s\n", a[2]; next }
		/^Live regs before insn:/ { inlive = 1; next }
		inlive && / [0-9]+: [.0-9][.0-9][.0-9][.0-9][.0-9][.0-9][.0-9][.0-9][.0-9][.0-9] \(/ {
			if ($2 ~ /:$/) { scc = $1; slot = $2; live = $3 } else { scc = 0; slot = $1; live = $2 }
			sub(/:$/, "", slot); print slot " " scc " " live; next
		}
		{ inlive = 0 }
		/^stack depth / && accepted { s = $3; gsub(/\+/, " ", s); print "stack " s }
	' accepted="$2" "$log"
}

{
	echo "# Written by tests/analysis_support/kernel_oracle.sh on Linux $(uname -r) ($($BPFTOOL version | head -1))."
	echo "# The kernel's verifier log (bpftool -d): function entries, stack depth per function,"
	echo "# and per instruction: slot, strongly connected component, registers live before it."
	for obj in "$root"/__test__/fixtures/*.bpf.o; do
		fx=$(basename "$obj" .bpf.o)
		[ -f "$root/__test__/fixtures/$fx.libbpf.json" ] || continue
		mkdir -p "$pin"
		if "$BPFTOOL" -d prog loadall "$obj" "$pin" >"$log" 2>&1; then
			extract "$fx" 1
		else
			echo "kernel refused $fx; left out" >&2
		fi
		rm -rf "$pin"
	done
	for obj in "$root"/bench/programs/bpf/*.o; do
		name=$(basename "$obj" .o)
		"$BPFTOOL" -d prog load "$obj" "$pin" type socket >"$log" 2>&1 || true
		rm -f "$pin"
		extract bench 0
	done
} >"$out"
# Each program's funcs lines are one per function: fold them into one line.
awk '/^funcs / { f = f " " $2; next } f != "" { print "funcs" f; f = "" } { print }' "$out" >"$log"
cp "$log" "$out"
echo "wrote $out" >&2
