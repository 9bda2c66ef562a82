# Threads sign at once through one token's session pool: every signature
# must succeed and verify (sign_check.c), for EC, RSA PKCS#1 v1.5 and
# RSA-PSS. Then, with C_Sign slowed down by the fault module, the threads
# must really overlap and share a few sessions rather than open one each
# time.
. "$(dirname "$0")/lib.sh"
init_token threads
ec=$(p11 key gen --token "$TOKEN" --type ec:p256 --label ec)
rsa=$(p11 key gen --token "$TOKEN" --type rsa:2048 --label rsa)
sign_check=$TEST_BIN_DIR/sign_check

sign4x200() { # WHAT URI [--pss]
	local what=$1 uri=$2 out
	shift 2
	out=$(run "$sign_check" "$@" "$SOFTHSM2_MODULE" "$TOKEN" "$uri" 4 200) || fail "$what: sign_check: $out"
	[ "$out" = "4 threads x 200 signatures ok" ] || fail "$what: sign_check: $out"
	ok "$what: 4 threads x 200 signatures at once, all verified"
}
sign4x200 "ec:p256 ECDSA" "$ec"
sign4x200 "rsa:2048 PKCS#1 v1.5" "$rsa"
sign4x200 "rsa:2048 RSA-PSS" "$rsa" --pss

# The counter-check for PSS: an EC key has no PSS padding, so --pss fails.
run "$sign_check" --pss "$SOFTHSM2_MODULE" "$TOKEN" "$ec" 1 1 >/dev/null 2>&1 && fail "--pss with an EC key succeeded"

# Overlap: 4 threads x 5 signatures with 200 ms per C_Sign take about 1 s
# in parallel, 4 s one after another.
export P11FAULT_MODULE=$SOFTHSM2_MODULE P11FAULT_CONFIG=$T/fault.conf P11FAULT_STATS=$T/stats
echo "latency C_Sign 200" >"$T/fault.conf"
start=$(date +%s%N)
out=$(run "$sign_check" "$P11FAULT" "$TOKEN" "$ec" 4 5) || fail "sign_check with latency: $out"
ms=$((($(date +%s%N) - start) / 1000000))
[ "$ms" -ge 1000 ] || fail "4 x 5 signatures with 200 ms latency took $ms ms: the latency rule did not apply"
[ "$ms" -lt 2500 ] || fail "4 x 5 signatures with 200 ms latency took $ms ms: the threads did not sign at once"
opens=$(awk '$1 == "C_OpenSession" { print $2 }' "$T/stats")
signs=$(awk '$1 == "C_Sign" { print $2 }' "$T/stats")
[ "$signs" -eq 20 ] || fail "stats: $signs C_Sign calls, want 20"
[ "$opens" -ge 2 ] && [ "$opens" -le 4 ] || fail "stats: $opens C_OpenSession for 4 threads, want 2 to 4 (pooled)"
ok "with 200 ms per C_Sign: 20 signatures in $ms ms on $opens pooled sessions"
