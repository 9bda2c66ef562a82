# p11pki serve with the token going away (tests/fault: `remove`, `fail
# C_Sign CKR_DEVICE_REMOVED`): handshakes fail cleanly, the server keeps
# running, the failure and the recovery are each logged once, and it
# serves again on its own when the token comes back. With a slow token
# (`latency C_Sign`), one worker keeps several signatures in flight and a
# resumed handshake (no signature) is not held up by them; the signing
# latency histogram of /metrics sees it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/serve_lib.sh"
init_token web

make_root root "Root"
KEY=$(token_key www ec:p256)
issue www "/CN=www.test" "$T/www.pub" root server "DNS:www.test"
start_backend echo E
export P11FAULT_MODULE=$SOFTHSM2_MODULE P11FAULT_CONFIG=$T/fault.conf
control() { printf '%s\n' "$@" >"$P11FAULT_CONFIG.new" && mv "$P11FAULT_CONFIG.new" "$P11FAULT_CONFIG"; }
control '# nothing'

cat >"$T/serve.conf" <<EOF
[ serve ]
bindings = web
bound_file = $T/bound
module = $P11FAULT
workers = 1
admin = 127.0.0.1:0

[ web ]
listen = 127.0.0.1:0
cert = $T/www.crt
key = $KEY
backends = 127.0.0.1:$BACKEND_PORT
EOF
start_serve "$T/serve.conf"
WEB=$(bound web)
served() { tls "$WEB" -CAfile "$T/root.crt" "$@" | grep -qx "E: ping"; }
served || fail "before any fault: $(tls "$WEB" -CAfile "$T/root.crt")"
[ "$(metric p11pki_token_sign_seconds_count)" -ge 1 ] || fail "the signing histogram counted nothing: $(metric p11pki_token_sign_seconds_count)"
ok "served through the fault module; the signing latency histogram counts"

# ---- the token is pulled ------------------------------------------------------
control remove
for i in 1 2 3 4 5; do
	served && fail "handshake $i succeeded with the token removed"
	served -tls1_2 && fail "TLS 1.2 handshake $i succeeded with the token removed"
done
kill -0 "$SERVE_PID" 2>/dev/null || fail "serve died when the token went away: $(tail -5 "$T/serve.err")"
[ "$(grep -c "handshakes fail, the token does not sign" "$T/serve.err")" = 1 ] ||
	fail "the failure is not logged exactly once: $(cat "$T/serve.err")"
grep -q "binding web: handshakes fail, the token does not sign: .*CKR_\(DEVICE_REMOVED\|SESSION_HANDLE_INVALID\|TOKEN_NOT_PRESENT\)" "$T/serve.err" ||
	fail "the failure does not name the token's answer: $(grep 'does not sign' "$T/serve.err")"
[ "$(metric 'p11pki_handshakes_total{binding="web",result="failed"}')" -ge 10 ] || fail "failed handshakes not counted"
[ "$(metric p11pki_token_sign_failures_total)" -ge 10 ] || fail "failed signatures not counted"
ok "token removed: 10 handshakes fail cleanly, serve keeps running, one log line naming the cause"

control '# plugged in again'
for ((i = 0; i < 20; i++)); do
	served && break
	sleep 0.2
done
[ "$i" -lt 20 ] || fail "not serving again 4 s after the token came back: $(tail -3 "$T/serve.err")"
[ "$i" -eq 0 ] || echo "note: $i failed handshakes after the token came back" >>"$LOG"
for i in 1 2 3; do served || fail "handshake $i after the recovery failed"; done
[ "$(grep -c "the token signs again" "$T/serve.err")" = 1 ] || fail "the recovery is not logged exactly once: $(cat "$T/serve.err")"
ok "token back: serving again without a restart, recovery logged once"

# ---- C_Sign fails as if the device went away mid-operation ----------------------
control 'fail C_Sign CKR_DEVICE_REMOVED'
served && fail "a handshake succeeded while every C_Sign fails"
kill -0 "$SERVE_PID" 2>/dev/null || fail "serve died on a failing C_Sign"
control '# fine again'
for ((i = 0; i < 10; i++)); do
	served && break
	sleep 0.2
done
[ "$i" -lt 10 ] || fail "not serving again after C_Sign stopped failing"
[ "$(grep -c "handshakes fail, the token does not sign" "$T/serve.err")" = 2 ] &&
	[ "$(grep -c "the token signs again" "$T/serve.err")" = 2 ] || fail "second outage not logged once each: $(cat "$T/serve.err")"
ok "fail C_Sign CKR_DEVICE_REMOVED: handshakes fail, then recover; logged once per change"

# ---- a slow token ---------------------------------------------------------------------
printf 'ping\n' | timeout 10 openssl s_client -connect "$WEB" -CAfile "$T/root.crt" -tls1_2 -no_ticket -ign_eof \
	-sess_out "$T/sess" >/dev/null 2>&1 || fail "session for the resumption check"
control 'latency C_Sign 1000'
start=$(date +%s%N)
pids=()
for i in 1 2 3 4; do
	(served && echo ok >"$T/slow.$i") &
	pids+=($!)
done
sleep 0.2
rstart=$(date +%s%N)
printf 'ping\n' | timeout 10 openssl s_client -connect "$WEB" -CAfile "$T/root.crt" -tls1_2 -no_ticket -ign_eof \
	-sess_in "$T/sess" >"$T/resumed.out" 2>&1 || fail "resumed handshake during slow signing: $(cat "$T/resumed.out")"
resumed_ms=$((($(date +%s%N) - rstart) / 1000000))
grep -q "^Reused" "$T/resumed.out" || fail "the session was not resumed: $(cat "$T/resumed.out")"
wait "${pids[@]}" || true
ms=$((($(date +%s%N) - start) / 1000000))
for i in 1 2 3 4; do [ -e "$T/slow.$i" ] || fail "slow handshake $i failed"; done
[ "$ms" -lt 2500 ] || fail "4 handshakes at 1 s per signature took $ms ms on one worker: not in flight together"
[ "$resumed_ms" -lt 600 ] || fail "a resumed handshake waited $resumed_ms ms behind the slow signatures"
slow=$(metric 'p11pki_token_sign_seconds_bucket{le="2.5"}')
fast=$(metric 'p11pki_token_sign_seconds_bucket{le="0.5"}')
[ $((slow - fast)) -ge 4 ] || fail "the histogram has $((slow - fast)) signatures between 0.5 and 2.5 s, want 4"
ok "slow token (1 s per C_Sign): 4 handshakes on one worker in $ms ms, a resumed one meanwhile in $resumed_ms ms; histogram buckets them"
control '# done'
stop_serve
