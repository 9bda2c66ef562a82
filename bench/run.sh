#!/usr/bin/env bash
# Builds the signing benchmark (RelWithDebInfo) and runs it; arguments go
# to bench_sign (--seconds N, --rounds N, --module PATH).
# BUILD_DIR overrides the build directory (default: build).
set -euo pipefail

cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >&2
cmake --build "$build" --target bench_sign -j"$(nproc)" >&2
exec "$build/bench/bench_sign" "$@"
