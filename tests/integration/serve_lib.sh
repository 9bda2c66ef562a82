# Sourced by the t_serve_*.sh tests after lib.sh: a small PKI made with
# the openssl CLI around keys on the test token, backends, and `p11pki
# serve` started in the background (it writes the addresses it bound to
# $T/bound, so nothing guesses ports). The EXIT trap of lib.sh ends every
# process started here.
command -v openssl >/dev/null || skip "openssl is not installed"
command -v curl >/dev/null || skip "curl is not installed"

printf '[ca]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n[server]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n[client]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' >"$T/ext.cnf"

# make_root NAME CN: a self-signed EC CA ($T/NAME.crt, $T/NAME.key)
make_root() {
	run openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/$1.key" \
		-out "$T/$1.crt" -subj "/CN=$2" -days 3650 -addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" >/dev/null 2>&1
}

# issue NAME SUBJECT PUBKEY CA SECTION [SAN]: a certificate for PUBKEY
# signed by CA ($T/CA.crt, $T/CA.key), valid for a year
issue() {
	local ext=$T/$1.ext
	{ cat "$T/ext.cnf"; [ -z "${6:-}" ] || printf '[%s]\nsubjectAltName=%s\n' "$5" "$6"; } >"$ext"
	run openssl x509 -new -force_pubkey "$3" -subj "$2" -CA "$T/$4.crt" -CAkey "$T/$4.key" \
		-extfile "$ext" -extensions "$5" -days 365 -out "$T/$1.crt" >/dev/null 2>&1
}

# issue_dated NAME KEY_URI SUBJECT CA START END: a server certificate for a
# token key (through a CSR the token signs) with the given validity
# (YYYYMMDDHHMMSSZ), by `openssl ca`, which takes any dates
issue_dated() {
	local db=$T/cadb.$1
	mkdir -p "$db"
	: >"$db/index.txt"
	echo 1000 >"$db/serial"
	printf '[ca]\ndefault_ca=d\n[d]\ndatabase=%s/index.txt\nnew_certs_dir=%s\nserial=%s/serial\ndefault_md=sha256\npolicy=p\n[p]\ncommonName=supplied\n' \
		"$db" "$db" "$db" >"$db/ca.cnf"
	p11 csr --key "$2" --subject "$3" -o "$db/req.csr" >/dev/null
	run openssl ca -batch -config "$db/ca.cnf" -cert "$T/$4.crt" -keyfile "$T/$4.key" -in "$db/req.csr" \
		-out "$T/$1.crt" -startdate "$5" -enddate "$6" -extfile "$T/ext.cnf" -extensions server -notext \
		>/dev/null 2>&1
}

# token_key LABEL TYPE: a key pair on the token; prints its URI and
# leaves the public key in $T/LABEL.pub
token_key() {
	local uri
	uri=$(p11 key gen --token "$TOKEN" --type "$2" --label "$1")
	p11 key pub "$uri" -o "$T/$1.pub" >/dev/null
	echo "$uri"
}

# client_cert NAME SUBJECT CA [SAN]: a software client key and certificate
client_cert() {
	run openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/$1.key" >/dev/null
	run openssl pkey -in "$T/$1.key" -pubout -out "$T/$1.pub" >/dev/null
	issue "$1" "$2" "$T/$1.pub" "$3" client "${4:-}"
}

# start_backend MODE NAME [PORT]: serve_backend in the background; sets
# BACKEND_PORT and BACKEND_PID
start_backend() {
	local pf=$T/backend.$2.port i
	rm -f "$pf"
	"$TEST_BIN_DIR/serve_backend" "$1" "$2" "$pf" ${3:+"$3"} >>"$T/backend.$2.log" 2>&1 &
	BACKEND_PID=$!
	for ((i = 0; i < 100; i++)); do
		[ -s "$pf" ] && break
		kill -0 "$BACKEND_PID" 2>/dev/null || fail "backend $2 did not start: $(cat "$T/backend.$2.log")"
		sleep 0.05
	done
	[ -s "$pf" ] || fail "backend $2 wrote no port"
	BACKEND_PORT=$(cat "$pf")
}

# start_serve CONF: `p11pki serve` in the background; waits for the bound
# file; sets SERVE_PID. Its stderr is $T/serve.err.
start_serve() {
	local i
	rm -f "$T/bound"
	echo "\$ p11pki serve -c $1 (background)" >>"$LOG"
	"$P11PKI" serve -c "$1" --pin-source "file:$T/user.pin" >>"$T/serve.out" 2>>"$T/serve.err" &
	SERVE_PID=$!
	for ((i = 0; i < 200; i++)); do
		[ -s "$T/bound" ] && return 0
		kill -0 "$SERVE_PID" 2>/dev/null || fail "p11pki serve exited at start: $(cat "$T/serve.err")"
		sleep 0.05
	done
	fail "p11pki serve wrote no bound file in 10 s: $(cat "$T/serve.err")"
}

# stop_serve: SIGTERM; serve must exit 0 within 15 s
stop_serve() {
	local rc=0 i
	kill -TERM "$SERVE_PID"
	for ((i = 0; i < 300; i++)); do
		kill -0 "$SERVE_PID" 2>/dev/null || break
		sleep 0.05
	done
	kill -0 "$SERVE_PID" 2>/dev/null && fail "p11pki serve still runs 15 s after SIGTERM"
	wait "$SERVE_PID" || rc=$?
	cat "$T/serve.err" >>"$LOG"
	[ "$rc" -eq 0 ] || fail "p11pki serve exited $rc after SIGTERM: $(tail -5 "$T/serve.err")"
}

# bound NAME: the host:port binding NAME listens on
bound() {
	local a
	a=$(awk -v n="$1" '$1 == n { print $2 }' "$T/bound")
	[ -n "$a" ] || fail "no '$1' in the bound file: $(cat "$T/bound")"
	echo "$a"
}

# tls ADDR [s_client options...]: one connection with openssl s_client
# that sends "ping" and prints everything (-brief details on stderr are
# folded into stdout)
tls() {
	local addr=$1
	shift
	printf 'ping\n' | timeout 10 openssl s_client -connect "$addr" -ign_eof -brief "$@" 2>&1
}

# metric NAME_AND_LABELS: its value from the admin listener
metric() {
	curl -s --max-time 5 "http://$(bound admin)/metrics" | awk -v m="$1" '$1 == m { print $2 }'
}

# ticket_bytes SESSION_FILE: bytes of its TLS session ticket (0: none)
ticket_bytes() { ticket_hex "$1" | awk '{ print length($0) / 2 }'; }
# ticket_name SESSION_FILE: the key name that opens the ticket (its first 16 bytes)
ticket_name() { ticket_hex "$1" | cut -c1-32; }
ticket_hex() {
	openssl sess_id -in "$1" -noout -text | awk '/TLS session ticket:/ { t = 1; next }
		t && / - / { h = substr($0, index($0, " - ") + 3, 48); gsub(/[^0-9a-f]/, "", h); x = x h }
		t && !/ - / { t = 0 } END { print x }'
}
