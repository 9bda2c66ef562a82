# Signing off the event loop: one thread keeps many signatures in flight
# through OpenSSL ASYNC jobs and p11pki's signing threads (what `p11pki
# serve` does with SSL_MODE_ASYNC). With 100 ms per C_Sign, 32 jobs on 32
# signing threads take about 100 ms; on the caller's thread alone
# (0 signing threads) they take 3.2 s.
. "$(dirname "$0")/lib.sh"
init_token async
ec=$(p11 key gen --token "$TOKEN" --type ec:p256 --label ec)
rsa=$(p11 key gen --token "$TOKEN" --type rsa:2048 --label rsa)
check=$TEST_BIN_DIR/async_check

for uri in "$ec" "$rsa"; do
	out=$(run "$check" "$SOFTHSM2_MODULE" "$TOKEN" "$uri" 64 8) || fail "async_check: $out"
	[[ "$out" == "64 jobs ok in "* ]] || fail "async_check: $out"
done
ok "64 ASYNC jobs signing with EC and RSA token keys on 8 signing threads: all verified"

export P11FAULT_MODULE=$SOFTHSM2_MODULE P11FAULT_CONFIG=$T/fault.conf
echo "latency C_Sign 100" >"$T/fault.conf"
out=$(run "$check" "$P11FAULT" "$TOKEN" "$ec" 32 32) || fail "async_check with latency: $out"
ms=$(awk '{ print $5 }' <<<"$out")
[ "$ms" -lt 1000 ] || fail "32 jobs at 100 ms per C_Sign took $ms ms on 32 signing threads: not in flight together"
ok "32 signatures at 100 ms each, one event thread, 32 signing threads: $ms ms"
out=$(run "$check" "$P11FAULT" "$TOKEN" "$ec" 8 0) || fail "async_check inline: $out"
ms=$(awk '{ print $5 }' <<<"$out")
[ "$ms" -ge 800 ] || fail "8 inline signatures at 100 ms each took $ms ms: the latency rule did not apply"
ok "the same inline (no signing threads): 8 signatures take $ms ms, one after another"
