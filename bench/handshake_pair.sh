#!/usr/bin/env bash
# Paired handshake benchmark, for small differences: p11pki serve and a
# second server (nginx, or another p11pki binary for an A/B of a change)
# run at the same time, one worker each, both pinned to the last CPU,
# each loaded by its own bench_handshake pinned to the other CPUs. Both
# see the same machine at the same moment, so what a shared machine does
# to one round moves both sides alike: the per-round ratio of server CPU
# per handshake varies by about 0.5% here, where measuring the servers in
# turn (bench/handshake.sh) varies by 5%. Fresh servers every round (a
# process's memory layout alone moves it by a percent or so).
# Usage: bench/handshake_pair.sh CELL [ROUNDS, default 7] [SECONDS, default 3] [BASE]
#   CELL: ec-token-tls1.3, rsa-file-tls1.2, ... (key type, token|file, protocol)
#   BASE: nginx (the default; with the key through libp11's engine when
#         on the token) or the path of another p11pki binary (say, a build
#         of main before a change). Prints this build's server CPU per
#         handshake over BASE's, per round and the median.
# WORKERS=2 runs both servers with 2 workers, unpinned (with their clients
# sharing every CPU), as bench/handshake.sh does: what threads of one
# process cost each other shows only there. Noisier (about 1-2% a round).
set -euo pipefail
cd "$(dirname "$0")/.."
IFS=- read -r type key proto <<<"${1:?usage: bench/handshake_pair.sh CELL [ROUNDS] [SECONDS] [BASE]}"
rounds=${2:-7}
secs=${3:-3}
base=${4:-nginx}
[ "$(nproc)" -ge 2 ] || { echo "needs 2 CPUs" >&2; exit 1; }
last=$(($(nproc) - 1))
export WORKERS=${WORKERS:-1} PIN="taskset -c $last"
clients="taskset -c 0-$((last - 1))"
if [ "$WORKERS" -gt 1 ]; then PIN="" clients=""; fi
. bench/handshake_lib.sh
[ "$base" != nginx ] || [ $have_nginx = 1 ] || { echo "nginx or libp11's engine is not installed" >&2; exit 1; }

load() { # NAME -> "rate us_per_hs" while the other runs
	$clients "$client" 127.0.0.1 "$(cat "$T/$1/port")" 4 "$secs" "$proto" "$(cat "$T/$1/pids")" |
		awk '{ sub("/s$", "", $4); print $4, $6 }' >"$T/$1.out"
}

where="1 worker each on CPU $last"
[ -z "$PIN" ] && where="$WORKERS workers each, unpinned"
echo "paired: $type key from the $key, $proto, $where, $rounds rounds of $secs s"
printf '%-6s %10s %12s %10s %12s %7s\n' round "this hs/s" "this µs/hs" "base hs/s" "base µs/hs" ratio
for r in $(seq "$rounds"); do
	rm -rf "$T/this" "$T/base"
	start_p11pki this "$key" "$type" "$softhsm"
	if [ "$base" = nginx ]; then start_nginx base "$key" "$type" "$softhsm"; else start_p11pki base "$key" "$type" "$softhsm" "$base"; fi
	load base &
	load this
	wait $!
	stop_all
	read -r tr tu <"$T/this.out"
	read -r br bu <"$T/base.out"
	awk -v r="$r" -v tr="$tr" -v tu="$tu" -v br="$br" -v bu="$bu" \
		'BEGIN { printf "%-6s %10.1f %12.1f %10.1f %12.1f %7.3f\n", r, tr, tu, br, bu, (bu > 0 ? tu / bu : 0) }' | tee -a "$T/ratios"
done
awk -v b="$base" '{ v[++n] = $6 } END {
	for (i = 2; i <= n; i++) for (j = i; j > 1 && v[j - 1] > v[j]; j--) { x = v[j]; v[j] = v[j - 1]; v[j - 1] = x }
	printf "server CPU/hs, this p11pki build / %s: median %.3f\n", b, (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2 }' "$T/ratios"
