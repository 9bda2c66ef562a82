# Several p11pki processes on one token directory at once: SoftHSM2's file
# store fails some concurrent opens with CKR_GENERAL_ERROR, which p11pki
# must retry. 4 processes x 10 rounds of `key gen` + `key list` must all
# succeed. Debug output is kept per process so that a failure names the
# PKCS#11 call and code that failed.
. "$(dirname "$0")/lib.sh"
init_token concurrent
export P11PKI_DEBUG=1

client() { # N: 10 rounds of key gen and key list
	local i
	for i in $(seq 10); do
		"$P11PKI" key gen --token "$TOKEN" --type ec:p256 --label "p$1-$i" --pin-source "file:$T/user.pin" \
			>/dev/null 2>>"$T/client$1.err" || { echo "client $1: key gen $i failed" >>"$T/client$1.err"; return 1; }
		"$P11PKI" key list --token "$TOKEN" --pin-source "file:$T/user.pin" \
			>/dev/null 2>>"$T/client$1.err" || { echo "client $1: key list $i failed" >>"$T/client$1.err"; return 1; }
	done
}

pids=()
for n in 1 2 3 4; do
	client "$n" &
	pids+=($!)
done
failed=0
for n in 1 2 3 4; do
	wait "${pids[n - 1]}" || failed=$((failed + 1))
done
# the debug lines of calls that did not return CKR_OK, and the errors
grep -hE "debug: C_[A-Za-z]+: CKR_[A-Z_0-9]+$|failed|error" "$T"/client*.err | grep -v ": CKR_OK$" |
	sort | uniq -c | sort -rn >"$T/failed-calls" || true
cat "$T/failed-calls" >>"$LOG"
[ "$failed" -eq 0 ] || fail "$failed of 4 clients failed; failed calls (count, line):
$(cat "$T/failed-calls")"
ok "4 processes x 10 rounds of key gen + key list on one token: all succeeded"
[ -s "$T/failed-calls" ] && echo "info: calls that failed and were retried:" && sed 's/^/  /' "$T/failed-calls"

unset P11PKI_DEBUG
n=$(p11 key list --json --token "$TOKEN" | jq length)
[ "$n" -eq 40 ] || fail "the token holds $n keys, want 40"
ok "the token holds all 40 keys"
