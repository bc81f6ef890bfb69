#!/usr/bin/env bash
# Rebuilds the C half of the verifier corpus with Debian's clang-19: each NAME.c -> NAME.bpf.o,
# one program per section. Then record the kernel's verdicts: node scripts/verifier-corpus.mjs --record
set -euo pipefail
cd "$(dirname "$0")"
CLANG=${CLANG:-clang-19}
CFLAGS=(-O2 -g -target bpf -mcpu=v3 -Wall -Werror -Wno-unused-function -I. -I/usr/include/x86_64-linux-gnu)
for src in *.c; do
  "$CLANG" "${CFLAGS[@]}" -c "$src" -o "${src%.c}.bpf.o"
  echo "built ${src%.c}.bpf.o"
done
