# Sourced by bench/handshake.sh and bench/handshake_pair.sh: builds
# p11pki, makes a throwaway SoftHSM2 token holding an EC P-256 and an RSA
# key (the same keys also in files), and starts servers on them:
# start_p11pki / start_nginx NAME token|file ec|rsa MODULE. WORKERS (default
# 2) sets their workers, PIN (e.g. "taskset -c 1") pins them to CPUs,
# P11PKI_BIN picks another p11pki binary. Each server gets $T/NAME with
# its port and pids.
build=${BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null
p11pki=${P11PKI_BIN:-$PWD/$build/p11pki} client=$PWD/$build/bench/bench_handshake fault=$PWD/$build/tests/p11fault.so
softhsm=/usr/lib/softhsm/libsofthsm2.so engine=$(find /usr/lib -name pkcs11.so -path '*engines-3*' | head -1)
have_nginx=1
command -v nginx >/dev/null && [ -n "$engine" ] || have_nginx=0

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

wait_port() { # FILE -> port from a bound_file
	for _ in $(seq 100); do [ -s "$1" ] && break; sleep 0.1; done
	awk '$1 == "b" { sub(/.*:/, "", $2); print $2 }' "$1"
}

# Each server gets a name (its directory under $T): NAME.port, NAME.pids.
start_p11pki() { # NAME KEY(token|file) TYPE MODULE [BINARY]
	local d=$T/$1 key=pkcs11:token=bench\;object=$3\;type=private
	[ "$2" = file ] && key=file:$T/$3.key
	mkdir -p "$d"
	cat >"$d/serve.conf" <<-CONF
	[ serve ]
	bindings = b
	workers = ${WORKERS:-2}
	bound_file = $d/bound
	module = $4
	pin_source = file:$T/user.pin
	[ b ]
	listen = 127.0.0.1:0
	cert = $T/$3.crt
	key = $key
	mode = http
	backends = 127.0.0.1:9
	CONF
	${PIN:-} "${5:-$p11pki}" serve -c "$d/serve.conf" 2>>"$d/log" &
	pids+=("$!")
	echo "$!" >"$d/pids"
	wait_port "$d/bound" >"$d/port"
	[ -s "$d/port" ] || { echo "p11pki serve did not start: $(tail -1 "$d/log")" >&2; exit 1; }
}

nport=18443
start_nginx() { # NAME KEY(token|file) TYPE MODULE
	local d=$T/$1 key=$T/$3.key m
	[ "$2" = token ] && key="engine:pkcs11:pkcs11:token=bench;object=$3;type=private;pin-value=$pin"
	mkdir -p "$d"
	nport=$((nport + 1))
	cat >"$d/openssl.cnf" <<-CONF
	openssl_conf = init
	[ init ]
	engines = engines
	[ engines ]
	pkcs11 = pkcs11
	[ pkcs11 ]
	engine_id = pkcs11
	dynamic_path = $engine
	MODULE_PATH = $4
	init = 1
	CONF
	# like p11pki's defaults: a session cache and tickets, 2 workers
	cat >"$d/nginx.conf" <<-CONF
	user root;
	worker_processes ${WORKERS:-2};
	daemon off;
	pid $d/nginx.pid;
	error_log $d/log;
	env OPENSSL_CONF; env SOFTHSM2_CONF; env P11FAULT_MODULE; env P11FAULT_CONFIG;
	events { worker_connections 4096; }
	http {
		access_log off;
		server {
			listen 127.0.0.1:$nport ssl;
			ssl_certificate $T/$3.crt;
			ssl_certificate_key "$key";
			ssl_protocols TLSv1.2 TLSv1.3;
			ssl_session_cache shared:SSL:10m;
			location /healthz { return 200 "ok\n"; }
		}
	}
	CONF
	OPENSSL_CONF=$d/openssl.cnf ${PIN:-} nginx -c "$d/nginx.conf" 2>>"$d/log" &
	pids+=("$!")
	for _ in $(seq 100); do [ -s "$d/nginx.pid" ] && break; sleep 0.1; done
	sleep 0.5
	m=$(cat "$d/nginx.pid")
	echo "$m,$(pgrep -d, -P "$m")" >"$d/pids"
	echo "$nport" >"$d/port"
}

stop_all() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	sleep 0.5
	pids=()
}

