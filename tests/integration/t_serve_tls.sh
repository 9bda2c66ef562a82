# p11pki serve, tcp mode: openssl s_client at TLS 1.2 and 1.3 against an
# EC and an RSA key on the token (the RSA certificate itself read from the
# token), the echo backend behind; older protocols refused; sessions
# resume; every full handshake is signed on the token (the fault module,
# forwarding only, counts C_Sign); handshake and idle timeouts and the
# connection cap close what they should; SIGTERM exits 0.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/serve_lib.sh"
init_token web

make_root root "Test Root"
EC=$(token_key ec ec:p256)
RSA=$(token_key rsa rsa:2048)
issue ec "/CN=ec.test" "$T/ec.pub" root server "DNS:ec.test,DNS:localhost"
issue rsa "/CN=rsa.test" "$T/rsa.pub" root server "DNS:rsa.test"
# the RSA certificate lives on the token, next to its key
p11 cert import "$T/rsa.crt" --token web >/dev/null

start_backend echo A
export P11FAULT_MODULE=$SOFTHSM2_MODULE P11FAULT_STATS=$T/stats
cat >"$T/serve.conf" <<EOF
[ serve ]
bindings = ec, rsa, capped
bound_file = $T/bound
pid_file = $T/serve.pid
module = $P11FAULT
workers = 2
admin = 127.0.0.1:0

[ ec ]
listen = 127.0.0.1:0
cert = $T/ec.crt
key = $EC
backends = 127.0.0.1:$BACKEND_PORT
handshake_timeout = 1s
idle_timeout = 2s
session_tickets = off

[ rsa ]
listen = 127.0.0.2:0
cert = pkcs11:token=web;object=rsa;type=cert
key = $RSA
backends = 127.0.0.1:$BACKEND_PORT
session_timeout = 600

[ capped ]
listen = 127.0.0.3:0
cert = $T/ec.crt
key = $EC
backends = 127.0.0.1:$BACKEND_PORT
max_connections = 2
handshake_timeout = 5s
EOF
start_serve "$T/serve.conf"
# the allocator the build chose (CMakeLists.txt) is the one serving
[ "$($P11PKI version | awk '$1 == "allocator:" { print $2 }')" = "$P11PKI_ALLOCATOR" ] ||
	fail "p11pki version does not name the $P11PKI_ALLOCATOR allocator: $($P11PKI version)"
if [ "$P11PKI_ALLOCATOR" = jemalloc ]; then
	grep -q libjemalloc "/proc/$SERVE_PID/maps" || fail "p11pki serve runs without jemalloc"
fi
ok "allocator: $P11PKI_ALLOCATOR"
[ "$(cat "$T/serve.pid")" = "$SERVE_PID" ] || fail "pid file: $(cat "$T/serve.pid"), want $SERVE_PID"
EC_ADDR=$(bound ec)
RSA_ADDR=$(bound rsa)
ok "serve started: ec on $EC_ADDR, rsa on $RSA_ADDR, admin on $(bound admin)"

# ---- protocols and keys ----------------------------------------------------
full=0
check() { # ADDR PROTO_OPTION WANT_PROTOCOL WANT_SIGNATURE
	local out
	out=$(tls "$1" "$2" -CAfile "$T/root.crt" -verify_return_error) || fail "s_client $2 to $1 failed: $out"
	grep -q "^Protocol version: $3\$" <<<"$out" || fail "s_client $2 to $1: not $3: $out"
	grep -q "^Signature type: $4\$" <<<"$out" || fail "s_client $2 to $1: signature is not $4: $out"
	grep -q "^Verification: OK" <<<"$out" || fail "s_client $2 to $1: chain not verified: $out"
	grep -qx "A: ping" <<<"$out" || fail "s_client $2 to $1: no answer from the backend: $out"
	full=$((full + 1))
}
check "$EC_ADDR" -tls1_3 TLSv1.3 ECDSA
check "$EC_ADDR" -tls1_2 TLSv1.2 ECDSA
check "$RSA_ADDR" -tls1_3 TLSv1.3 RSA-PSS
check "$RSA_ADDR" -tls1_2 TLSv1.2 '\(RSA-PSS\|RSA\)'
out=$(tls "$EC_ADDR" -tls1_2 -CAfile "$T/root.crt")
grep -q "^Ciphersuite: ECDHE-ECDSA-AES256-GCM-SHA384\$\|^Ciphersuite: ECDHE-ECDSA-AES128-GCM-SHA256\$\|^Ciphersuite: ECDHE-ECDSA-CHACHA20-POLY1305\$" <<<"$out" ||
	fail "TLS 1.2 suite is not ECDHE with AEAD: $out"
full=$((full + 1))
ok "s_client: TLS 1.3 and 1.2 with the EC and the RSA token key (RSA-PSS in 1.3), ECDHE+AEAD, echo through"

out=$(tls "$RSA_ADDR" -CAfile "$T/root.crt" -showcerts)
grep -q "CN *= *rsa.test" <<<"$out" || fail "the RSA binding does not serve the token's certificate: $out"
full=$((full + 1))
for p in -tls1_1 -tls1; do
	out=$(tls "$EC_ADDR" "$p" -CAfile "$T/root.crt") && fail "s_client $p succeeded: $out"
done
ok "TLS 1.0 and 1.1 are refused; the RSA certificate comes from the token"

# ---- session resumption --------------------------------------------------------
printf 'ping\n' | timeout 10 openssl s_client -connect "$RSA_ADDR" -tls1_3 -CAfile "$T/root.crt" -ign_eof \
	-sess_out "$T/sess" >"$T/s1.out" 2>&1 || fail "first connection for resumption: $(cat "$T/s1.out")"
full=$((full + 1))
printf 'ping\n' | timeout 10 openssl s_client -connect "$RSA_ADDR" -tls1_3 -CAfile "$T/root.crt" -ign_eof \
	-sess_in "$T/sess" >"$T/s2.out" 2>&1 || fail "resumed connection: $(cat "$T/s2.out")"
grep -q "^Reused, TLSv1.3" "$T/s2.out" || fail "TLS 1.3 session not resumed: $(cat "$T/s2.out")"
printf 'ping\n' | timeout 10 openssl s_client -connect "$EC_ADDR" -tls1_2 -CAfile "$T/root.crt" -ign_eof \
	-no_ticket -sess_out "$T/sess12" >"$T/s3.out" 2>&1 || fail "TLS 1.2 first connection: $(cat "$T/s3.out")"
full=$((full + 1))
printf 'ping\n' | timeout 10 openssl s_client -connect "$EC_ADDR" -tls1_2 -CAfile "$T/root.crt" -ign_eof \
	-no_ticket -sess_in "$T/sess12" >"$T/s4.out" 2>&1 || fail "TLS 1.2 resumed connection: $(cat "$T/s4.out")"
grep -q "^Reused, TLSv1.2" "$T/s4.out" || fail "TLS 1.2 session (cache, no ticket) not resumed: $(cat "$T/s4.out")"
# a TLS 1.2 ticket, sealed and opened with the binding's keys (tickets.c)
printf 'ping\n' | timeout 10 openssl s_client -connect "$RSA_ADDR" -tls1_2 -CAfile "$T/root.crt" -ign_eof \
	-sess_out "$T/sess12t" >"$T/s7.out" 2>&1 || fail "TLS 1.2 first connection (ticket): $(cat "$T/s7.out")"
full=$((full + 1))
printf 'ping\n' | timeout 10 openssl s_client -connect "$RSA_ADDR" -tls1_2 -CAfile "$T/root.crt" -ign_eof \
	-sess_in "$T/sess12t" >"$T/s8.out" 2>&1 || fail "TLS 1.2 resumed connection (ticket): $(cat "$T/s8.out")"
grep -q "^Reused, TLSv1.2" "$T/s8.out" || fail "TLS 1.2 session (ticket) not resumed: $(cat "$T/s8.out")"
[ "$(ticket_bytes "$T/sess12t")" -gt 100 ] || fail "TLS 1.2: no ticket issued"
# every binding has keys of its own: a ticket names them
[ "$(ticket_name "$T/sess12t")" = "$(ticket_name "$T/sess")" ] || fail "one binding, two ticket key names"
# session_tickets = off (ec): the TLS 1.3 ticket names a session kept in
# the server (32 bytes), where a real ticket (rsa) carries the whole
# session, encrypted (hundreds of bytes)
printf 'ping\n' | timeout 10 openssl s_client -connect "$EC_ADDR" -tls1_3 -CAfile "$T/root.crt" -ign_eof \
	-sess_out "$T/sess-ec" >"$T/s5.out" 2>&1 || fail "ec first connection for resumption: $(cat "$T/s5.out")"
full=$((full + 1))
printf 'ping\n' | timeout 10 openssl s_client -connect "$EC_ADDR" -tls1_3 -CAfile "$T/root.crt" -ign_eof \
	-sess_in "$T/sess-ec" >"$T/s6.out" 2>&1 || fail "ec resumed connection: $(cat "$T/s6.out")"
grep -q "^Reused, TLSv1.3" "$T/s6.out" || fail "TLS 1.3 session (session_tickets = off) not resumed: $(cat "$T/s6.out")"
ec_ticket=$(ticket_bytes "$T/sess-ec") rsa_ticket=$(ticket_bytes "$T/sess")
[ "$ec_ticket" -gt 0 ] && [ "$ec_ticket" -le 64 ] || fail "session_tickets = off: a ticket of $ec_ticket bytes, want a session ID"
[ "$rsa_ticket" -gt 100 ] || fail "session tickets: a ticket of $rsa_ticket bytes, want the encrypted session"
[ "$(metric 'p11pki_handshakes_total{binding="ec",result="resumed"}')" = 2 ] ||
	fail "metrics: resumed handshakes of ec: $(metric 'p11pki_handshakes_total{binding="ec",result="resumed"}')"
ok "sessions resume: TLS 1.3 ticket ($rsa_ticket bytes), in the server with session_tickets = off ($ec_ticket), TLS 1.2 ticket and session cache; metrics count them"

# ---- timeouts and the cap ----------------------------------------------------
elapsed() { # HOST PORT: seconds until the server closes a silent TCP connection
	python3 -c '
import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
t = time.time()
s.settimeout(10)
try:
    while s.recv(4096): pass
except socket.timeout:
    print("timeout"); sys.exit(0)
except ConnectionResetError:
    pass
print("%.1f" % (time.time() - t))' "$1" "$2"
}
t=$(elapsed "${EC_ADDR%:*}" "${EC_ADDR##*:}")
[ "$t" != timeout ] && awk -v t="$t" 'BEGIN { exit !(t >= 0.8 && t < 3) }' ||
	fail "a client that sends nothing was closed after $t s, handshake_timeout is 1 s"
[ "$(metric 'p11pki_handshakes_total{binding="ec",result="timeout"}')" = 1 ] || fail "metrics: no handshake timeout counted"
# after the handshake, nothing moves: idle_timeout (2 s) closes it
t2=$(python3 - "${EC_ADDR%:*}" "${EC_ADDR##*:}" "$T/root.crt" <<'PY'
import socket, ssl, sys, time
ctx = ssl.create_default_context(cafile=sys.argv[3])
s = ctx.wrap_socket(socket.create_connection((sys.argv[1], int(sys.argv[2]))), server_hostname="ec.test")
t = time.time()
s.settimeout(10)
try:
    while s.recv(4096): pass
except socket.timeout:
    print("timeout"); sys.exit(0)
except (ConnectionResetError, ssl.SSLError):
    pass
print("%.1f" % (time.time() - t))
PY
)
full=$((full + 1))
[ "$t2" != timeout ] && awk -v t="$t2" 'BEGIN { exit !(t >= 1.8 && t < 4) }' ||
	fail "an idle client was closed after $t2 s, idle_timeout is 2 s"
ok "handshake_timeout closes a silent client after ${t} s, idle_timeout an idle one after $t2 s"

CAP=$(bound capped)
python3 - "${CAP%:*}" "${CAP##*:}" >"$T/cap.out" <<'PY' || fail "cap check: $(cat "$T/cap.out")"
import socket, sys, time
host, port = sys.argv[1], int(sys.argv[2])
held = [socket.create_connection((host, port)) for _ in range(2)]
time.sleep(0.5)
third = socket.create_connection((host, port))
third.settimeout(3)
try:
    data = third.recv(10)
    print("third closed" if data == b"" else "third got data")
except socket.timeout:
    print("third kept open")
except ConnectionResetError:
    print("third closed")
for s in held: s.close()
PY
grep -qx "third closed" "$T/cap.out" || fail "max_connections = 2: the third connection: $(cat "$T/cap.out")"
sleep 0.3
out=$(tls "$CAP" -CAfile "$T/root.crt") || fail "after the held connections closed, capped refuses: $out"
grep -qx "A: ping" <<<"$out" || fail "capped: no answer: $out"
full=$((full + 1))
[ "$(metric 'p11pki_connections_refused_total{binding="capped"}')" -ge 1 ] || fail "metrics: refused connection not counted"
ok "max_connections = 2: a third connection is closed at once, and served once the others left"

# ---- stop --------------------------------------------------------------------
# a client that never finishes (rsa: idle_timeout 60 s) holds the drain to
# its 10 s deadline, then it is closed and serve exits 0
python3 - "${RSA_ADDR%:*}" "${RSA_ADDR##*:}" "$T/root.crt" >"$T/held.out" 2>&1 <<'PY' &
import socket, ssl, sys, time
ctx = ssl.create_default_context(cafile=sys.argv[3])
ctx.check_hostname = False
s = ctx.wrap_socket(socket.create_connection((sys.argv[1], int(sys.argv[2]))))
print("connected", flush=True)
time.sleep(30)
PY
HELD=$!
for ((i = 0; i < 100; i++)); do grep -q connected "$T/held.out" && break; sleep 0.05; done
grep -q connected "$T/held.out" || fail "the held connection: $(cat "$T/held.out")"
full=$((full + 1))
start=$(date +%s%N)
stop_serve
ms=$((($(date +%s%N) - start) / 1000000))
[ "$ms" -ge 9500 ] && [ "$ms" -lt 13000 ] || fail "with a connection that never ends, serve exited $ms ms after SIGTERM, want the 10 s deadline"
grep -q "drain deadline: closing 1 connections" "$T/serve.err" || fail "the forced close is not logged: $(tail -3 "$T/serve.err")"
kill "$HELD" 2>/dev/null || true
[ ! -e "$T/serve.pid" ] || fail "the pid file is left behind"
signs=$(awk '$1 == "C_Sign" { print $2 }' "$T/stats")
[ -n "$signs" ] && [ "$signs" -ge "$full" ] || fail "C_Sign was called ${signs:-0} times for $full full handshakes"
# serve signs with a session copy of each key (made once, not per
# signature: SoftHSM2 would read a token object's file back every time)
copies=$(awk '$1 == "C_CopyObject" { print $2 }' "$T/stats")
[ -n "$copies" ] && [ "$copies" -ge 2 ] && [ "$copies" -le 6 ] ||
	fail "C_CopyObject was called ${copies:-0} times: want one copy per loaded key (ec, rsa, capped), two at most in a race"
ok "SIGTERM: a never-ending connection closed at the 10 s deadline ($ms ms), exit 0, pid file removed; $signs C_Sign calls for $full full handshakes, with $copies session copies of the keys"
