# Recovery from a token that misbehaves, through the fault module
# (tests/fault/README.md) in front of SoftHSM2: recovery_check.c fails
# C_Sign with each recoverable code and checks that p11pki reopens the
# session, logs in again and retries once; that a persistent failure, a
# removed token and a non-recoverable code are reported naming the call and
# the code; and that signing works again afterwards. Then the CLI retries
# C_OpenSession failing with CKR_GENERAL_ERROR.
. "$(dirname "$0")/lib.sh"
init_token recovery
# keys are made through SoftHSM2 directly: the fault module only in use
uri=$(p11 key gen --token "$TOKEN" --type ec:p256 --label k)
export P11FAULT_MODULE=$SOFTHSM2_MODULE P11FAULT_CONFIG=$T/fault.conf P11FAULT_STATS=$T/stats
stat_of() { awk -v f="$1" '$1 == f { print $2 }' "$P11FAULT_STATS"; }

out=$(run "$TEST_BIN_DIR/recovery_check" "$P11FAULT" "$TOKEN" "$uri" "$P11FAULT_CONFIG") ||
	fail "recovery_check: $(grep -v '^ok:' <<<"$out")"
grep -q "^FAIL" <<<"$out" && fail "recovery_check: $(grep '^FAIL' <<<"$out")"
[ "$(grep -c '^ok:' <<<"$out")" -ge 30 ] || fail "recovery_check made too few checks: $out"
ok "recovery_check: $(grep -c '^ok:' <<<"$out") checks passed"
# recovery_check counted the calls on their way to the module; the fault
# module's own counts must agree
read -r _ _ opens _ logins _ signs < <(grep '^counted ' <<<"$out")
[ "$(stat_of C_OpenSession)" = "$opens" ] && [ "$(stat_of C_Login)" = "$logins" ] &&
	[ "$(stat_of C_Sign)" = "$signs" ] ||
	fail "P11FAULT_STATS disagrees with recovery_check's counts ($opens/$logins/$signs): $(grep -E 'C_(OpenSession|Login|Sign) ' "$P11FAULT_STATS")"
ok "P11FAULT_STATS agrees: C_OpenSession $opens, C_Login $logins, C_Sign $signs"

# CLI: two failed C_OpenSession are retried with backoff...
printf 'fail C_OpenSession CKR_GENERAL_ERROR count=2\n' >"$P11FAULT_CONFIG.new"
mv "$P11FAULT_CONFIG.new" "$P11FAULT_CONFIG"
out=$(p11 key list --token "$TOKEN" --module "$P11FAULT") || fail "key list with 2 failing C_OpenSession: exit $?"
grep -qx "$uri" <<<"$out" || fail "key list with 2 failing C_OpenSession does not list the key: $out"
[ "$(stat_of C_OpenSession)" -eq 3 ] || fail "stats: $(stat_of C_OpenSession) C_OpenSession, want 3 (2 failed, 1 retry)"
ok "key list succeeds through 2 failing C_OpenSession (CKR_GENERAL_ERROR), 3 calls"

# ...but not forever: 5 attempts, the module re-initialised (a SoftHSM2
# token read half-written stays wrong until then), 5 more, then reported.
printf 'fail C_OpenSession CKR_GENERAL_ERROR count=20\n' >"$P11FAULT_CONFIG.new"
mv "$P11FAULT_CONFIG.new" "$P11FAULT_CONFIG"
run p11 key list --token "$TOKEN" --module "$P11FAULT" >/dev/null 2>"$T/err" && fail "key list worked with 20 failing C_OpenSession"
grep -q "C_OpenSession on token '$TOKEN'.*: CKR_GENERAL_ERROR" "$T/err" || fail "failing C_OpenSession: $(cat "$T/err")"
[ "$(wc -l <"$T/err")" -eq 1 ] || fail "failing C_OpenSession: more than one line: $(cat "$T/err")"
[ "$(stat_of C_OpenSession)" -eq 10 ] || fail "stats: $(stat_of C_OpenSession) C_OpenSession, want 10"
ok "failing C_OpenSession: reported after 2 x 5 attempts around a module re-initialisation"
