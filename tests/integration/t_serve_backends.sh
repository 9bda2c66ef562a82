# p11pki serve, backends: round robin across healthy backends (http and
# tcp mode), a backend that refuses is retried on the next one, active
# health checks take a killed backend out after health_fall failures and
# put it back after health_rise successes once it is restarted (logged
# once per change), and with no backend left http answers 503 and tcp
# closes. The metrics follow.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/serve_lib.sh"
init_token web

make_root root "Root"
KEY=$(token_key www ec:p256)
issue www "/CN=www.test" "$T/www.pub" root server "DNS:www.test"

start_backend http B1
B1=$BACKEND_PORT
B1_PID=$BACKEND_PID
start_backend http B2
B2=$BACKEND_PORT
B2_PID=$BACKEND_PID
start_backend echo E1
E1=$BACKEND_PORT
E1_PID=$BACKEND_PID
# a port nobody listens on
DEAD=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

cat >"$T/serve.conf" <<EOF
[ serve ]
bindings = web, raw
bound_file = $T/bound
admin = 127.0.0.1:0

[ web ]
listen = 127.0.0.1:0
cert = $T/www.crt
key = $KEY
mode = http
backends = 127.0.0.1:$B1, 127.0.0.1:$B2
health_check = http:/status/204
health_interval = 200ms
health_fall = 2
health_rise = 3

[ raw ]
listen = 127.0.0.2:0
cert = $T/www.crt
key = $KEY
backends = 127.0.0.1:$DEAD, 127.0.0.1:$E1
health_check = tcp
health_interval = 1h
EOF
start_serve "$T/serve.conf"
WEB=$(bound web)

# who N: N requests; prints the backend that answered each
who() {
	local i
	for ((i = 0; i < $1; i++)); do
		curl -sS --max-time 10 --cacert "$T/root.crt" --resolve "www.test:${WEB##*:}:${WEB%:*}" \
			"https://www.test:${WEB##*:}/r$i" | sed -n 's/^backend //p'
	done
}
# wait_metric NAME VALUE: up to 10 s
wait_metric() {
	local i
	for ((i = 0; i < 100; i++)); do
		[ "$(metric "$1")" = "$2" ] && return 0
		sleep 0.1
	done
	fail "$1 is $(metric "$1"), want $2"
}
up() { echo "p11pki_backend_up{binding=\"web\",backend=\"127.0.0.1:$1\"}"; }

out=$(who 10 | sort | uniq -c | awk '{ print $2 "=" $1 }' | tr '\n' ' ')
[ "$out" = "B1=5 B2=5 " ] || fail "10 requests over two backends: $out"
n1=$(metric "p11pki_backend_requests_total{binding=\"web\",backend=\"127.0.0.1:$B1\"}")
[ "$n1" = 5 ] || fail "metrics: requests of B1: $n1"
ok "round robin: 10 requests, 5 to each backend (metrics agree)"

# a chunked body is forwarded whole, and nothing after it: a second
# request behind it would reach the backend without its head rewritten
raw() { { printf "$1" | timeout 10 openssl s_client -connect "$WEB" -CAfile "$T/root.crt" -quiet -ign_eof 2>/dev/null || true; } | tr -d '\r'; }
out=$(raw 'POST /upload HTTP/1.1\r\nHost: www.test\r\nX-Test-Linger: 1\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n6\r\n world\r\n0\r\nT: 1\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: www.test\r\nX-Client-Verify: SUCCESS\r\n\r\n')
grep -q "^hello$" <<<"$out" && grep -q "^ world$" <<<"$out" && grep -q "^T: 1$" <<<"$out" || fail "the chunked body did not arrive whole: $out"
grep -q "smuggled\|X-Client-Verify: SUCCESS" <<<"$out" && fail "bytes after the chunked body reached the backend: $out"
out=$(raw 'POST /upload HTTP/1.1\r\nHost: www.test\r\nX-Test-Linger: 1\r\nContent-Length: 5\r\n\r\nhelloGET /smuggled HTTP/1.1\r\nHost: www.test\r\n\r\n')
grep -q "^hello$" <<<"$out" || fail "the Content-Length body did not arrive: $out"
grep -q "smuggled" <<<"$out" && fail "bytes after the Content-Length body reached the backend: $out"
out=$(raw 'POST /upload HTTP/1.1\r\nHost: www.test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n')
grep -q "backend" <<<"$out" && fail "a broken chunked body was answered by a backend: $out"
ok "request bodies: chunked and Content-Length forwarded whole, nothing after them; broken chunking closes"

# a request in 512-byte records sent in one write with the client's
# Finished (TLS 1.3; TLS 1.2 sends it after the server's Finished): the
# handshake reads ahead, and what it read past the handshake must reach
# the proxy whole and in order
body=$(head -c 3000 /dev/zero | tr '\0' a)
for v in tls1.3 tls1.2; do
	out=$(printf 'POST /frag HTTP/1.1\r\nHost: www.test\r\nContent-Length: 3000\r\n\r\n%s' "$body" |
		timeout 10 "$TEST_BIN_DIR/tls_burst" "$WEB" www.test "$T/root.crt" $v | tr -d '\r') || fail "tls_burst $v failed"
	grep -q "^POST /frag HTTP/1.1$" <<<"$out" && grep -q "$body" <<<"$out" ||
		fail "a request in 512-byte records with the handshake ($v) did not arrive whole: $(head -c 300 <<<"$out")"
done
ok "a request in 512-byte records in the same read as the client's Finished (TLS 1.3) and after it (TLS 1.2): forwarded whole"

kill "$B2_PID"
wait "$B2_PID" 2>/dev/null || true
out=$(who 4 | sort | uniq -c | awk '{ print $2 "=" $1 }' | tr '\n' ' ')
[ "$out" = "B1=4 " ] || fail "with B2 killed (maybe not yet marked down): $out"
wait_metric "$(up "$B2")" 0
grep -q "backend 127.0.0.1:$B2 is down after 2 failed checks" "$T/serve.err" || fail "no log line for B2 going down: $(cat "$T/serve.err")"
out=$(who 4 | sort | uniq -c | awk '{ print $2 "=" $1 }' | tr '\n' ' ')
[ "$out" = "B1=4 " ] || fail "with B2 down: $out"
ok "B2 killed: its refusals are retried on B1, health checks mark it down (logged), B1 takes everything"

start_backend http B2 "$B2"
B2_PID=$BACKEND_PID
wait_metric "$(up "$B2")" 1
grep -q "backend 127.0.0.1:$B2 is up again" "$T/serve.err" || fail "no log line for B2 coming back"
out=$(who 10 | sort | uniq -c | awk '{ print $2 "=" $1 }' | tr '\n' ' ')
[ "$out" = "B1=5 B2=5 " ] || fail "B2 back: $out"
[ "$(grep -c "127.0.0.1:$B2 is down" "$T/serve.err")" = 1 ] && [ "$(grep -c "127.0.0.1:$B2 is up again" "$T/serve.err")" = 1 ] ||
	fail "state changes are not logged exactly once: $(cat "$T/serve.err")"
ok "B2 restarted: back after 3 good checks, round robin again; each change logged once"

kill "$B1_PID" "$B2_PID"
wait_metric "$(up "$B1")" 0
wait_metric "$(up "$B2")" 0
code=$(curl -sS --max-time 10 --cacert "$T/root.crt" --resolve "www.test:${WEB##*:}:${WEB%:*}" -o "$T/503" \
	-w '%{http_code}' "https://www.test:${WEB##*:}/")
[ "$code" = 503 ] || fail "no healthy backend: HTTP $code, want 503"
ok "no healthy backend in http mode: 503"

# ---- tcp mode ------------------------------------------------------------------
RAW=$(bound raw)
for i in 1 2 3 4; do
	out=$(tls "$RAW" -CAfile "$T/root.crt") || fail "tcp mode, connection $i: $out"
	grep -qx "E1: ping" <<<"$out" || fail "tcp mode, connection $i: no echo: $out"
done
f=$(metric "p11pki_backend_connect_failures_total{binding=\"raw\",backend=\"127.0.0.1:$DEAD\"}")
[ "$f" -ge 2 ] || fail "metrics: connect failures to the dead backend: $f"
ok "tcp mode: a backend that refuses is skipped for the next one ($f refusals), every client served"

kill "$E1_PID"
sleep 0.2
out=$(tls "$RAW" -CAfile "$T/root.crt" 2>&1) || true
grep -q "ping" <<<"$out" && fail "tcp mode without backends answered: $out"
grep -q "CONNECTION ESTABLISHED" <<<"$out" || fail "tcp mode without backends: no handshake: $out"
ok "tcp mode with every backend refusing: the client is closed after the handshake"
stop_serve
