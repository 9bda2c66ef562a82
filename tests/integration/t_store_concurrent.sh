#!/bin/bash
# The SQLite store under several processes: four issuers writing one file
# at once lose nothing and never share a serial; an issuer killed with
# SIGKILL loses no certificate it had reported as committed.
set -euo pipefail

: "${TEST_BIN_DIR:?TEST_BIN_DIR must name the directory of the test helpers}"
: "${TEST_TMP:?TEST_TMP must name a scratch directory}"
helper="$TEST_BIN_DIR/store_stress"
[ -x "$helper" ] || { echo "missing $helper: build the store_stress target" >&2; exit 1; }

mkdir -p "$TEST_TMP"
dir=$(mktemp -d "$TEST_TMP/store.XXXXXX")
pids=()

cleanup() {
	local rc=$?
	local pid
	for pid in "${pids[@]}"; do
		kill -KILL "$pid" 2>/dev/null || true
	done
	# Kept after a failure, for the output files and the database.
	if [ "$rc" -eq 0 ]; then rm -rf "$dir"; else echo "files kept in $dir" >&2; fi
}
trap cleanup EXIT

# Waits (at most 60 s) until FILE has at least N lines matching PATTERN.
wait_lines() {
	local file=$1 n=$2 pattern=$3 i
	for ((i = 0; i < 6000; i++)); do
		if [ "$(grep -c "$pattern" "$file" 2>/dev/null || true)" -ge "$n" ]; then
			return 0
		fi
		sleep 0.01
	done
	echo "timed out waiting for $n lines '$pattern' in $file" >&2
	return 1
}

echo "# 4 processes x 250 certificates into one new store"
db="$dir/concurrent.db"
for i in 1 2 3 4; do
	"$helper" insert "$db" 250 "$dir/go" >"$dir/out$i" 2>"$dir/err$i" &
	pids+=($!)
done
# All have opened (and raced to create and migrate the file); start them together.
for i in 1 2 3 4; do
	wait_lines "$dir/out$i" 1 '^ready$' || { cat "$dir/err$i" >&2; exit 1; }
done
touch "$dir/go"
for i in 1 2 3 4; do
	if ! wait "${pids[$((i - 1))]}"; then
		echo "issuer $i failed:" >&2
		cat "$dir/err$i" >&2
		exit 1
	fi
done
pids=()
"$helper" check -n 1000 "$db" "$dir"/out1 "$dir"/out2 "$dir"/out3 "$dir"/out4

echo "# issuers killed with SIGKILL while inserting"
db="$dir/crash.db"
rounds=3
outs=()
for ((round = 1; round <= rounds; round++)); do
	# Two at a time, so a kill can also land while one waits for the lock.
	for i in a b; do
		out="$dir/crash$round$i"
		outs+=("$out")
		"$helper" insert "$db" 0 >"$out" 2>"$out.err" &
		pids+=($!)
	done
	wait_lines "$dir/crash${round}a" 20 '^committed ' || { cat "$dir/crash${round}a.err" >&2; exit 1; }
	sleep "0.$((RANDOM % 3))$((RANDOM % 10))"
	for pid in "${pids[@]}"; do
		if ! kill -KILL "$pid" 2>/dev/null; then
			echo "an issuer of round $round ended before it was killed:" >&2
			cat "$dir/crash$round"?.err >&2
			exit 1
		fi
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	pids=()
	# Each killed issuer may have committed one row it did not print.
	"$helper" check -s $((2 * round)) "$db" "${outs[@]}"
done
echo "ok"
