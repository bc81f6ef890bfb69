#!/bin/sh
# The unprivileged policy against the live kernel: N random socket filters (default 10000) loaded
# into the kernel as `nobody` with every capability dropped (setpriv) and verified here with
# `unprivileged: true`; the verdicts and rejection messages must agree
# (crates/ebpf-vm/tests/verifier_verdicts.rs, verdicts_agree_with_the_kernel_unprivileged_...),
# then the recorded hand-written cases are checked against the same kernel
# (crates/ebpf-vm/tests/verifier_unprivileged.rs). Loads only, nothing attached; needs root.
#
# Unprivileged loads need kernel.unprivileged_bpf_disabled = 0. The script sets it for the run and
# puts the old value back on exit. From 2 (the usual default) that is reversible; from 1 it is not
# (1 can only be changed by a reboot), so the script refuses to run then.
# Usage: sh scripts/verifier-unprivileged.sh [N] [SEED]
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
old=$(sysctl -n kernel.unprivileged_bpf_disabled)
if [ "$old" = 1 ]; then
  echo "kernel.unprivileged_bpf_disabled is 1 (one-way until reboot): cannot load unprivileged" >&2
  exit 1
fi
restore() { sysctl -q -w kernel.unprivileged_bpf_disabled="$old"; }
trap restore EXIT INT TERM
sysctl -q -w kernel.unprivileged_bpf_disabled=0
cd "$here"
VERIFIER_VERDICT_PROGRAMS="${1:-10000}" VERIFIER_VERDICT_SEED="${2:-168889486}" \
  cargo test -p ebpf-vm --test verifier_verdicts -- --nocapture unprivileged
cargo test -p ebpf-vm --test verifier_unprivileged -- --nocapture the_recordings_are_the_live_kernels
