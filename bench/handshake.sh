#!/usr/bin/env bash
# Handshake benchmark (TLS serving): full handshakes plus one tiny HTTP
# request (GET /healthz) per connection, from bench_handshake's threads,
# against p11pki serve with the key on a SoftHSM2 token and with the same
# key from a file, and nginx with the key in a file and on the same token
# through libp11's engine. All four servers of a cell run at once and are
# measured in turn, ROUNDS times, each round in a new order; the figures
# are medians over the rounds, so a burst of other work on this small
# machine spoils a round, not a server. Prints handshakes/s and the
# server's own CPU time per handshake (from /proc, user + system). Then
# the slow-token case: 20 ms per C_Sign through the fault-injection
# module, p11pki serve against nginx with the engine.
# Usage: bench/handshake.sh [SECONDS per measurement, default 3] [ROUNDS, default 5] [CLIENT THREADS, default 8]
# CELLS="ec-tls1.3 rsa-tls1.3 rsa-tls1.2 slow" (the default) picks what runs.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-3}
rounds=${2:-5}
threads=${3:-8}
cells=${CELLS:-ec-tls1.3 rsa-tls1.3 rsa-tls1.2 slow}
. bench/handshake_lib.sh

measure() { # NAME PROTO THREADS -> appends "rate us_per_hs" to NAME.runs
	local d=$T/$1 out
	out=$("$client" 127.0.0.1 "$(cat "$d/port")" "$3" "$secs" "$2" "$(cat "$d/pids")")
	echo "$out" | awk '{ sub("/s$", "", $4); print $4, $6, $8 }' >>"$d/runs"
}

median() { # NAME COLUMN -> median of that column over the rounds
	sort -g -k"$2" "$T/$1/runs" | awk -v c="$2" '{ v[NR] = $c } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

failures() { awk '{ f += $3 } END { print f + 0 }' "$T/$1/runs"; }

report() { # NAME LABEL
	printf '%-40s %9.1f %12.1f %9s\n' "$2" "$(median "$1" 1)" "$(median "$1" 2)" "$(failures "$1")"
}

ratio() { # LABEL NAME_A NAME_B TARGET_MAX -> CPU per handshake A/B
	# each round measures every server within seconds of the others, so
	# the ratio is taken per round and its median reported: a slow spell
	# of the machine moves both sides of a round's ratio alike
	paste "$T/$2/runs" "$T/$3/runs" | awk -v l="$1" -v t="$4" '
		{ if ($5 > 0) v[++n] = $2 / $5 }
		END {
			for (i = 2; i <= n; i++) for (j = i; j > 1 && v[j - 1] > v[j]; j--) { x = v[j]; v[j] = v[j - 1]; v[j - 1] = x }
			r = n == 0 ? 0 : (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
			printf "  %-52s %5.2f (target <= %s: %s)\n", l, r, t, (r > 0 && r <= t ? "PASS" : "MISS")
		}'
}

echo "handshakes: $threads client threads, $rounds rounds of $secs s per server, 2 server workers, no resumption"
[ $have_nginx = 1 ] || echo "(nginx or libp11's engine not installed: nginx is left out)"
printf '%-40s %9s %12s %9s\n' "server, key, protocol" "hs/s" "server µs/hs" "failures"
for cell in ec-tls1.3 rsa-tls1.3 rsa-tls1.2; do
	[[ " $cells " == *" $cell "* ]] || continue
	set -- ${cell/-/ }
	c=$1-${2/./}
	names=("p-$c-token" "p-$c-file")
	start_p11pki "p-$c-token" token "$1" "$softhsm"
	start_p11pki "p-$c-file" file "$1" "$softhsm"
	if [ $have_nginx = 1 ]; then
		start_nginx "n-$c-token" token "$1" "$softhsm"
		start_nginx "n-$c-file" file "$1" "$softhsm"
		names+=("n-$c-token" "n-$c-file")
	fi
	for r in $(seq "$rounds"); do
		for n in $(printf '%s\n' "${names[@]}" | shuf --random-source=<(yes "$r")); do
			measure "$n" "$2" "$threads"
		done
	done
	stop_all
	report "p-$c-token" "p11pki serve, $1 on the token, $2"
	report "p-$c-file" "p11pki serve, $1 from a file, $2"
	if [ $have_nginx = 1 ]; then
		report "n-$c-token" "nginx, $1 on the token (engine), $2"
		report "n-$c-file" "nginx, $1 from a file, $2"
		ratio "server CPU/hs, p11pki/nginx, key on the token" "p-$c-token" "n-$c-token" 1.00
		ratio "server CPU/hs, p11pki/nginx, key from a file" "p-$c-file" "n-$c-file" 1.00
	fi
done

[[ " $cells " == *" slow "* ]] || exit 0
echo
echo "slow token: 20 ms per C_Sign (fault-injection module), ec key, tls1.3, 64 client threads"
export P11FAULT_MODULE=$softhsm P11FAULT_CONFIG=$T/fault.conf
echo "latency C_Sign 20" >"$T/fault.conf"
start_p11pki slow-p token ec "$fault"
[ $have_nginx = 1 ] && start_nginx slow-n token ec "$fault"
for r in 1 2 3; do
	measure slow-p tls1.3 64
	[ $have_nginx = 1 ] && measure slow-n tls1.3 64
done
stop_all
report slow-p "p11pki serve, token behind 20 ms"
if [ $have_nginx = 1 ]; then
	report slow-n "nginx + engine, token behind 20 ms"
	awk -v p="$(median slow-p 1)" -v n="$(median slow-n 1)" \
		'BEGIN { r = n > 0 ? p / n : 0; printf "  handshakes/s, p11pki/nginx+engine: %.1fx (target >= 10x: %s)\n", r, (r >= 10 ? "PASS" : "MISS") }'
fi
