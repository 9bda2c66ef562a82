#!/usr/bin/env bash
# The CA online, measured: EST enrollments per second (simpleenroll of a
# client certificate's own identity, authenticated by that certificate:
# the CA path, not PBKDF2) and OCSP
# responses per second (POST, one serial) against `p11pki serve`, with the
# issuing CA's P-256 key on a SoftHSM2 token and with an in-memory key
# ([ online ] ca_key_issuing = file:..., the same CA record), both servers
# running at once and measured in turn, ROUNDS times; medians and the
# token/memory ratio. Clients resume TLS sessions, so requests, not
# handshakes, are measured; each enrollment commits its row to the SQLite
# store (WAL) before answering.
# Usage: bench/online.sh [SECONDS per measurement, default 3] [ROUNDS, default 5] [CLIENT THREADS, default 8]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-3}
rounds=${2:-5}
threads=${3:-8}
build=${BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null
p11pki=$PWD/$build/p11pki client=$PWD/$build/bench/bench_handshake

T=$(mktemp -d /tmp/p11pki-online.XXXXXX)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 0.3; [ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
umask 077
export P11PKI_HOME=$T/home SOFTHSM2_CONF=$T/softhsm2.conf
mkdir -p "$T/tokens" "$P11PKI_HOME"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$T" >"$SOFTHSM2_CONF"
openssl rand -hex 8 >"$T/so.pin"
openssl rand -hex 8 >"$T/user.pin"
pk() { "$p11pki" "$@" --pin-source "file:$T/user.pin"; }
"$p11pki" token init --label ca --so-pin-source "file:$T/so.pin" --pin-source "file:$T/user.pin" >/dev/null
pk ca init --name root --token ca --type ec:p256 --subject 'CN=Bench Root' >/dev/null
pk ca init --name issuing --parent root --token ca --type ec:p256 --subject 'CN=Bench Issuing' >/dev/null
"$p11pki" ca cert --ca issuing -o "$T/issuing.crt"

# the same TLS key (a file) for both servers, so only the CA key differs
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/tls.key" -out "$T/tls.crt" \
	-subj /CN=bench -days 30 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/memory-ca.key" 2>/dev/null
# the client: a certificate of the CA (client profile) authenticates EST
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/client.key" 2>/dev/null
openssl req -new -key "$T/client.key" -subj /CN=bench-client -out "$T/client.csr"
pk ca sign --ca issuing --profile client --csr "$T/client.csr" -o "$T/client.crt" >/dev/null
cat "$T/client.crt" "$T/issuing.crt" >"$T/client-chain.crt"
"$p11pki" ca cert --ca root -o "$T/root.crt"
cat "$T/root.crt" "$T/issuing.crt" >"$T/chain.pem"

# the requests
# a client certificate enrolls its own identity (another needs HTTP Basic)
openssl req -new -key "$T/client.key" -subj /CN=bench-client -outform DER -out "$T/www.der"
base64 -w 64 "$T/www.der" >"$T/www.b64"
{
	printf 'POST /.well-known/est/clients/simpleenroll HTTP/1.1\r\nHost: bench\r\nContent-Type: application/pkcs10\r\n'
	printf 'Content-Length: %d\r\nConnection: close\r\n\r\n' "$(stat -c %s "$T/www.b64")"
	cat "$T/www.b64"
} >"$T/est.req"
openssl ocsp -issuer "$T/issuing.crt" -cert "$T/client.crt" -no_nonce -reqout "$T/ocsp.der" >/dev/null 2>&1
{
	printf 'POST /ocsp HTTP/1.1\r\nHost: bench\r\nContent-Type: application/ocsp-request\r\n'
	printf 'Content-Length: %d\r\nConnection: close\r\n\r\n' "$(stat -c %s "$T/ocsp.der")"
	cat "$T/ocsp.der"
} >"$T/ocsp.req"

start() { # NAME EXTRA_ONLINE_LINE
	local d=$T/$1 i
	mkdir -p "$d"
	cat >"$d/serve.conf" <<-CONF
	[ online ]
	ocsp_signer = ca
	$2
	[ serve ]
	bindings = pki
	workers = 2
	bound_file = $d/bound
	pin_source = file:$T/user.pin
	[ pki ]
	listen = 127.0.0.1:0
	cert = $T/tls.crt
	key = file:$T/tls.key
	mode = http
	client_auth = optional
	client_ca = $T/chain.pem
	est_label_clients = issuing/client
	ocsp = issuing
	session_tickets = off
	CONF
	"$p11pki" serve -c "$d/serve.conf" 2>>"$d/log" &
	pids+=("$!")
	echo "$!" >"$d/pid"
	for ((i = 0; i < 100; i++)); do [ -s "$d/bound" ] && break; sleep 0.1; done
	awk '$1 == "pki" { sub(/.*:/, "", $2); print $2 }' "$d/bound" >"$d/port"
	[ -s "$d/port" ] || { echo "p11pki serve did not start: $(tail -1 "$d/log")" >&2; exit 1; }
}

measure() { # NAME KIND(est|ocsp)
	local d=$T/$1 out
	# EST authenticates with the client certificate; OCSP needs none (a
	# resumed session with one costs the server a certificate decode)
	if [ "$2" = est ]; then export BENCH_CERT=$T/client-chain.crt BENCH_KEY=$T/client.key; else unset BENCH_CERT BENCH_KEY; fi
	out=$(BENCH_REQUEST=$T/$2.req BENCH_RESUME=1 \
		"$client" 127.0.0.1 "$(cat "$d/port")" "$threads" "$secs" tls1.3 "$(cat "$d/pid")")
	echo "$out" | awk '{ sub("/s$", "", $4); print $4, $6, $8 }' >>"$d/$2.runs"
}

median() { # FILE COLUMN
	sort -g -k"$2" "$1" | awk -v c="$2" '{ v[NR] = $c } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

start token ""
start memory "ca_key_issuing = file:$T/memory-ca.key"
for kind in est ocsp; do
	measure token "$kind" # warm-up, not counted
	measure memory "$kind"
	rm -f "$T"/*/"$kind.runs"
done
for r in $(seq "$rounds"); do
	for n in $(printf 'token\nmemory\n' | shuf --random-source=<(yes "$r")); do
		measure "$n" est
		measure "$n" ocsp
	done
done

echo "the CA online: $threads client threads (TLS resumed), $rounds rounds of $secs s, 2 server workers, P-256 CA key"
printf '%-36s %10s %14s %9s\n' "" "answers/s" "server µs/ans" "failures"
for kind in est ocsp; do
	for n in token memory; do
		f=$T/$n/$kind.runs
		printf '%-36s %10.1f %14.1f %9s\n' "$kind, CA key $([ $n = token ] && echo on the token || echo in memory)" \
			"$(median "$f" 1)" "$(median "$f" 2)" "$(awk '{ s += $3 } END { print s + 0 }' "$f")"
	done
	awk -v t="$(median "$T/token/$kind.runs" 1)" -v m="$(median "$T/memory/$kind.runs" 1)" -v k="$kind" \
		'BEGIN { printf "  %s answers/s, token/memory: %.2f\n", k, (m > 0 ? t / m : 0) }'
done
