#!/usr/bin/env bash
# Runs the Rust test binaries that exercise maps, locks and callbacks under valgrind's memcheck
# (issue #11 §7: nightly Rust's AddressSanitizer is not available here). Any invalid read or
# write, use of uninitialised memory, or definitely lost block fails the run.
#
#   scripts/valgrind.sh            every suite below, each on the interpreter and, where the suite
#                                  picks its engine from EBPF_TEST_ENGINE, on the JIT too
#   scripts/valgrind.sh --short    sandbox_memory and the engine fuzzer's short form only (npm test)
#
# The JIT writes code at run time: --smc-check=all-non-file makes valgrind notice code written
# into memory it has already translated.
# One test at a time: valgrind runs one thread at a time anyway, and maps_programs with two test
# threads (tests whose own threads spin on locks, side by side) did not finish in 20 minutes,
# against about 4 minutes one test at a time.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v valgrind >/dev/null || { echo "valgrind: not installed, skipped"; exit 0; }

if [ "${1:-}" = "--short" ]; then
  suites=(sandbox_memory fuzz_engines)
else
  suites=(maps_programs helpers_callbacks helpers_locks maps_threads sandbox_memory fuzz_engines)
fi
# Suites whose engine is chosen by EBPF_TEST_ENGINE (the others run both engines themselves).
jit_by_env=" maps_programs helpers_callbacks helpers_locks "

args=()
for s in "${suites[@]}"; do args+=(--test "$s"); done
# Build once and find each suite's binary in cargo's JSON messages.
binaries=$(cargo test -p ebpf-vm "${args[@]}" --no-run --message-format=json 2>/dev/null |
  node -e '
    let out = ""
    process.stdin.on("data", (d) => (out += d)).on("end", () => {
      for (const line of out.split("\n")) {
        if (!line.startsWith("{")) continue
        const m = JSON.parse(line)
        if (m.reason === "compiler-artifact" && m.executable && m.target.kind.includes("test"))
          console.log(`${m.target.name} ${m.executable}`)
      }
    })')

# Fewer fuzz cases under valgrind (about 50 times slower than a native run).
export EBPF_FUZZ_CASES="${EBPF_FUZZ_CASES:-100}"
failed=0
run() {
  local name=$1 bin=$2 engine=$3 log out
  log=$(mktemp)
  out=$(mktemp)
  local start=$SECONDS
  if EBPF_TEST_ENGINE=$engine valgrind --error-exitcode=1 --leak-check=full \
    --errors-for-leak-kinds=definite --smc-check=all-non-file --quiet --log-file="$log" \
    "$bin" --test-threads=1 >"$out" 2>&1; then
    echo "valgrind $name ($engine): errors 0 ($((SECONDS - start)) s)"
  else
    echo "valgrind $name ($engine): FAILED ($((SECONDS - start)) s)"
    cat "$log"
    tail -n 30 "$out"
    failed=1
  fi
  rm -f "$log" "$out"
}
while read -r name bin; do
  [ -n "$name" ] || continue
  run "$name" "$bin" interpreter
  case "$jit_by_env" in *" $name "*) run "$name" "$bin" jit ;; esac
done <<<"$binaries"
exit $failed
