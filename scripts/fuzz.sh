#!/usr/bin/env bash
# Builds the libFuzzer harnesses (clang, ASan + UBSan) and runs each for
# N seconds (default 30) on a copy of its seed corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
build=$(scripts/setup.sh --fuzz | tail -n 1)
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export LSAN_OPTIONS=suppressions=$PWD/tests/lsan.supp:print_suppressions=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
status=0
for fuzzer in "$build"/tests/fuzz_*; do
  name=$(basename "$fuzzer")
  corpus=$(mktemp -d)
  cp -r tests/fuzz/corpus/"$name"/. "$corpus"/ 2>/dev/null || true
  echo "fuzz: $name for ${seconds}s"
  if ! "$fuzzer" -max_total_time="$seconds" -max_len=4096 -print_final_stats=0 "$corpus" >"$corpus.log" 2>&1; then
    echo "fuzz: $name FAILED"; tail -n 40 "$corpus.log"; status=1
  fi
  rm -rf "$corpus" "$corpus.log"
done
exit $status
