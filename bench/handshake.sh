#!/usr/bin/env bash
# Handshake benchmark (TLS serving): full handshakes plus one tiny HTTP
# request (GET /healthz) per connection, from bench_handshake's threads,
# against p11pki serve with the key on a SoftHSM2 token and with the same
# key from a file, and nginx with the key in a file and on the same token
# through libp11's engine, all in one run. Prints handshakes/s and the
# server's own CPU time per handshake (from its /proc rusage). Then the
# slow-token case: 20 ms per C_Sign through the fault-injection module,
# p11pki serve versus nginx with the engine.
# Usage: bench/handshake.sh [SECONDS per cell, default 5] [CLIENT THREADS, default 8]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
threads=${2:-8}
build=${BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null
p11pki=$PWD/$build/p11pki client=$PWD/$build/bench/bench_handshake fault=$PWD/$build/tests/p11fault.so
softhsm=/usr/lib/softhsm/libsofthsm2.so engine=$(find /usr/lib -name pkcs11.so -path '*engines-3*' | head -1)

T=$(mktemp -d /tmp/p11pki-hs.XXXXXX)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 0.3; [ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
umask 077
export P11PKI_HOME=$T/home SOFTHSM2_CONF=$T/softhsm2.conf
mkdir -p "$T/tokens" "$P11PKI_HOME"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' "$T" >"$SOFTHSM2_CONF"
openssl rand -hex 8 >"$T/so.pin"
openssl rand -hex 8 >"$T/user.pin"
openssl rand -hex 8 >"$T/p12.pass"
pin=$(cat "$T/user.pin")
"$p11pki" token init --label bench --so-pin-source "file:$T/so.pin" --pin-source "file:$T/user.pin" >/dev/null

# One software key per type, its certificate, and the same key imported
# onto the token (non-extractable) so file and token hold one key.
for k in ec rsa; do
	if [ $k = ec ]; then openssl genpkey -quiet -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/$k.key"
	else openssl genpkey -quiet -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/$k.key"; fi
	openssl req -x509 -new -key "$T/$k.key" -subj /CN=bench -addext subjectAltName=DNS:bench -days 30 -out "$T/$k.crt" 2>/dev/null
	openssl pkcs12 -export -inkey "$T/$k.key" -in "$T/$k.crt" -passout "file:$T/p12.pass" -out "$T/$k.p12"
	"$p11pki" p12 import "$T/$k.p12" --token bench --label $k --password-source "file:$T/p12.pass" \
		--pin-source "file:$T/user.pin" >/dev/null 2>&1
done

wait_port() { # FILE -> port from a bound_file or nginx's fixed port
	for _ in $(seq 100); do [ -s "$1" ] && break; sleep 0.1; done
	awk '$1 == "b" { sub(/.*:/, "", $2); print $2 }' "$1"
}

start_p11pki() { # KEY(token|file) TYPE MODULE -> sets port, spid
	local key=pkcs11:token=bench\;object=$2\;type=private
	[ "$1" = file ] && key=file:$T/$2.key
	rm -f "$T/bound"
	cat >"$T/serve.conf" <<-CONF
	[ serve ]
	bindings = b
	workers = 2
	bound_file = $T/bound
	module = $3
	pin_source = file:$T/user.pin
	[ b ]
	listen = 127.0.0.1:0
	cert = $T/$2.crt
	key = $key
	mode = http
	backends = 127.0.0.1:9
	CONF
	"$p11pki" serve -c "$T/serve.conf" 2>>"$T/serve.log" &
	spid=$!
	pids+=("$spid")
	port=$(wait_port "$T/bound")
}

nport=18443
start_nginx() { # KEY(token|file) TYPE MODULE -> sets port, spid (comma list)
	local key=$T/$2.key
	[ "$1" = token ] && key="engine:pkcs11:pkcs11:token=bench;object=$2;type=private;pin-value=$pin"
	nport=$((nport + 1))
	cat >"$T/openssl.cnf" <<-CONF
	openssl_conf = init
	[ init ]
	engines = engines
	[ engines ]
	pkcs11 = pkcs11
	[ pkcs11 ]
	engine_id = pkcs11
	dynamic_path = $engine
	MODULE_PATH = $3
	init = 1
	CONF
	cat >"$T/nginx.conf" <<-CONF
	user root;
	worker_processes 2;
	daemon off;
	pid $T/nginx.pid;
	error_log $T/nginx.err;
	env OPENSSL_CONF; env SOFTHSM2_CONF; env P11FAULT_MODULE; env P11FAULT_CONFIG;
	events { worker_connections 4096; }
	http {
		access_log off;
		server {
			listen 127.0.0.1:$nport ssl;
			ssl_certificate $T/$2.crt;
			ssl_certificate_key "$key";
			ssl_protocols TLSv1.2 TLSv1.3;
			ssl_session_tickets off;
			location /healthz { return 200 "ok\n"; }
		}
	}
	CONF
	OPENSSL_CONF=$T/openssl.cnf nginx -c "$T/nginx.conf" 2>>"$T/nginx.err" &
	pids+=("$!")
	for _ in $(seq 100); do [ -s "$T/nginx.pid" ] && break; sleep 0.1; done
	sleep 0.5
	spid=$(pgrep -d, -f "nginx.*$T/nginx.conf")
	port=$nport
}

stop() { # PIDS (comma list)
	local p
	for p in ${1//,/ }; do kill "$p" 2>/dev/null || true; done
	sleep 0.5
	rm -f "$T/nginx.pid"
}

measure() { # LABEL PROTO
	local out
	out=$("$client" 127.0.0.1 "$port" "$threads" "$secs" "$2" "$spid")
	printf '%-44s %s\n' "$1" "$out"
	echo "$out" >"$T/last"
}

command -v nginx >/dev/null || echo "(nginx not installed: its rows are skipped)"
echo "handshakes: $threads client threads, $secs s per cell, 2 server workers, no resumption"
for cell in "ec tls1.3" "rsa tls1.3" "rsa tls1.2"; do
	set -- $cell
	for key in token file; do
		start_p11pki $key "$1" "$softhsm"; measure "p11pki serve, $1 key in $key, $2" "$2"; stop "$spid"
		if command -v nginx >/dev/null; then
			start_nginx $key "$1" "$softhsm"; measure "nginx, $1 key in $key, $2" "$2"; stop "$spid"
		fi
	done
done

echo
echo "slow token: 20 ms per C_Sign (fault-injection module), ec key, tls1.3, 64 client threads"
export P11FAULT_MODULE=$softhsm P11FAULT_CONFIG=$T/fault.conf
echo "latency C_Sign 20" >"$T/fault.conf"
threads=64
start_p11pki token ec "$fault"; measure "p11pki serve, token behind 20 ms latency" tls1.3; stop "$spid"
p=$(awk '{ print $4 }' "$T/last")
if command -v nginx >/dev/null; then
	start_nginx token ec "$fault"; measure "nginx + engine, token behind 20 ms latency" tls1.3; stop "$spid"
	n=$(awk '{ print $4 }' "$T/last")
	awk -v p="$p" -v n="$n" 'BEGIN { r = n > 0 ? p / n : 0; printf "p11pki / nginx+engine: %.1fx (target >= 10x: %s)\n", r, r >= 10 ? "PASS" : "MISS" }'
fi
