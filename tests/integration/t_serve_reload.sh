# p11pki serve, SIGHUP and SIGTERM: a reload swaps the certificate while
# a long download continues on the old settings to its last byte; new
# connections get the new certificate. A configuration that would not
# start, or that moves a listener, is refused and the running one stays.
# SIGTERM stops accepting at once, lets a download in progress finish,
# then exits 0.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/serve_lib.sh"
init_token web

make_root root "Root"
KEY=$(token_key www ec:p256)
issue one "/CN=one.test" "$T/www.pub" root server "DNS:www.test"
issue two "/CN=two.test" "$T/www.pub" root server "DNS:www.test"
cp "$T/one.crt" "$T/www.crt"
start_backend http B

# conf CERT_KEY_URI [LISTEN]
conf() {
	cat >"$T/serve.conf" <<EOF
[ serve ]
bindings = web
bound_file = $T/bound
workers = 2
module = $P11FAULT

[ web ]
listen = ${2:-127.0.0.1:0}
cert = $T/www.crt
key = $1
mode = http
backends = 127.0.0.1:$BACKEND_PORT
EOF
}
# the fault module only forwards here, and counts the calls
export P11FAULT_MODULE=$SOFTHSM2_MODULE P11FAULT_STATS=$T/stats
conf "$KEY"
start_serve "$T/serve.conf"
WEB=$(bound web)
peer() { tls "$WEB" -CAfile "$T/root.crt" | sed -n 's/^Peer certificate: //p'; }
url() { echo "--resolve www.test:${WEB##*:}:${WEB%:*} https://www.test:${WEB##*:}$1"; }
[ "$(peer)" = "CN = one.test" ] || fail "before the reload: $(peer)"
# s12 in|out FILE: a TLS 1.2 connection without tickets (sessions from the cache)
s12() { printf 'ping\n' | timeout 10 openssl s_client -connect "$WEB" -tls1_2 -CAfile "$T/root.crt" -ign_eof -no_ticket \
	-sess_"$1" "$2" 2>&1; }
s12 out "$T/sess12" >/dev/null || fail "TLS 1.2 connection for the session"
s12 in "$T/sess12" | grep -q "^Reused, TLSv1.2" || fail "before the reload, the cached session does not resume"
# s13 FILE: a TLS 1.3 connection; its session (with the ticket) in FILE
s13() { printf 'ping\n' | timeout 10 openssl s_client -connect "$WEB" -tls1_3 -CAfile "$T/root.crt" -ign_eof \
	-sess_out "$1" >/dev/null 2>&1 || fail "TLS 1.3 connection for a ticket"; }
s13 "$T/sess13"

# ---- a download across a reload ---------------------------------------------
# 3 MiB in 16 KiB pieces 20 ms apart: about 4 s
curl -sS --max-time 30 --cacert "$T/root.crt" -o "$T/big" -w '%{http_code} %{size_download}\n' $(url /slow/3072) \
	>"$T/big.result" 2>&1 &
DL=$!
sleep 1
cp "$T/two.crt" "$T/www.crt"
kill -HUP "$SERVE_PID"
for ((i = 0; i < 100; i++)); do
	grep -q "reloaded" "$T/serve.err" && break
	sleep 0.05
done
grep -q "reloaded: 1 bindings" "$T/serve.err" || fail "no reload logged: $(cat "$T/serve.err")"
[ "$(peer)" = "CN = two.test" ] || fail "after the reload, new connections get: $(peer)"
out=$(s12 in "$T/sess12")
grep -q "^New, TLSv1.2" <<<"$out" || fail "a session from before the reload resumed: $(grep -E '^(New|Reused)' <<<"$out")"
# the ticket keys are new with the reload, as the contexts are
s13 "$T/sess13b"
[ -n "$(ticket_name "$T/sess13")" ] && [ "$(ticket_name "$T/sess13")" != "$(ticket_name "$T/sess13b")" ] ||
	fail "the ticket key name is the same before and after the reload: $(ticket_name "$T/sess13")"
kill -0 "$DL" 2>/dev/null || fail "the download ended before the reload was checked: $(cat "$T/big.result")"
wait "$DL" || fail "the download failed across the reload: $(cat "$T/big.result")"
[ "$(cat "$T/big.result")" = "200 3145728" ] || fail "download across the reload: $(cat "$T/big.result")"
ok "SIGHUP swapped the certificate for new connections (sessions from before do a full handshake, tickets come from new keys); a 3 MiB download in progress finished whole"

# ---- refused reloads -------------------------------------------------------------
conf "pkcs11:token=web;object=nothing"
kill -HUP "$SERVE_PID"
for ((i = 0; i < 100; i++)); do
	grep -q "reload refused" "$T/serve.err" && break
	sleep 0.05
done
grep -q "reload refused, the running configuration stays: .*binding web: key pkcs11:token=web;object=nothing matches no key" \
	"$T/serve.err" || fail "a reload with a missing key: $(cat "$T/serve.err")"
[ "$(peer)" = "CN = two.test" ] || fail "after a refused reload: $(peer)"
conf "$KEY" 127.0.0.5:0
kill -HUP "$SERVE_PID"
for ((i = 0; i < 100; i++)); do
	[ "$(grep -c "reload refused" "$T/serve.err")" = 2 ] && break
	sleep 0.05
done
grep -q "reload refused.*new listen address 127.0.0.5:0: restart p11pki serve to apply" "$T/serve.err" ||
	fail "a reload that moves the listener: $(cat "$T/serve.err")"
[ "$(peer)" = "CN = two.test" ] || fail "after a refused reload: $(peer)"
ok "reloads with a missing key or a new listen address are refused with the reason; the server keeps serving"

# ---- drain ---------------------------------------------------------------------------
curl -sS --max-time 30 --cacert "$T/root.crt" -o "$T/big2" -w '%{http_code} %{size_download}\n' $(url /slow/2048) \
	>"$T/big2.result" 2>&1 &
DL=$!
sleep 0.5
start=$(date +%s%N)
kill -TERM "$SERVE_PID"
sleep 0.3
out=$(tls "$WEB" -CAfile "$T/root.crt" 2>&1) && fail "a new connection was served while draining: $out"
kill -0 "$SERVE_PID" 2>/dev/null || fail "serve exited before the download finished"
wait "$DL" || fail "the download failed during the drain: $(cat "$T/big2.result")"
[ "$(cat "$T/big2.result")" = "200 2097152" ] || fail "download during the drain: $(cat "$T/big2.result")"
rc=0
wait "$SERVE_PID" || rc=$?
ms=$((($(date +%s%N) - start) / 1000000))
[ "$rc" = 0 ] || fail "serve exited $rc after draining"
[ "$ms" -ge 1500 ] || fail "serve exited $ms ms after SIGTERM, before the download could finish"
ok "SIGTERM: new connections refused, the download in progress finished whole, exit 0 after $ms ms"

# each generation signed with a session copy of the key, destroyed with it
calls() { awk -v f="$1" '$1 == f { print $2 }' "$T/stats"; }
[ "$(calls C_CopyObject)" -ge 2 ] && [ "$(calls C_DestroyObject)" = "$(calls C_CopyObject)" ] ||
	fail "session copies of the key: $(calls C_CopyObject) made, $(calls C_DestroyObject) destroyed"
ok "a session copy of the key per generation ($(calls C_CopyObject)), each destroyed with its generation"
