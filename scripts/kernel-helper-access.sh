#!/bin/sh
# Regenerates crates/ebpf-vm/tests/kernel_oracle/helper_access_<kernel>.txt: which program types
# of the running kernel may call each helper, and which helpers are GPL-only, as the kernel's
# verifier answers (see helper_access.c). Loads only, nothing attached; needs root and cc.
# Usage: sh scripts/kernel-helper-access.sh   (writes the file for `uname -r`'s major.minor)
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
dir="$here/crates/ebpf-vm/tests/kernel_oracle"
version=$(uname -r | cut -d. -f1,2)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cc -O1 -Wall -o "$tmp/helper_access" "$dir/helper_access.c"
{
  echo "# Linux $(uname -r): 'ok' callable, 'gpl' callable by GPL-compatible programs only,"
  echo "# '-' not offered to the type. Regenerate with: sh scripts/kernel-helper-access.sh"
  "$tmp/helper_access"
} > "$dir/helper_access_$version.txt"
echo "wrote $dir/helper_access_$version.txt"
