# A token that also holds a key p11pki does not make (Ed25519, made with
# pkcs11-tool): p11pki still lists every key, and its RSA and EC keys still
# sign. libp11's own key enumeration fails on such a token, which is why
# p11pki enumerates keys itself (src/token/keys.c, src/token/evp.c).
. "$(dirname "$0")/lib.sh"
command -v pkcs11-tool >/dev/null || skip "pkcs11-tool (opensc) is not installed"
init_token ed25519
rsa=$(p11 key gen --token "$TOKEN" --type rsa:2048 --label rsa)
ec=$(p11 key gen --token "$TOKEN" --type ec:p256 --label ec)

# libp11 copes with the token while it holds RSA and EC keys only...
out=$(run "$TEST_BIN_DIR/libp11_enum_check" "$SOFTHSM2_MODULE" "$TOKEN") || fail "libp11 before Ed25519: $out"
[ "$out" = "PKCS11_enumerate_keys: 2 keys" ] || fail "libp11 before Ed25519: $out"

# The PIN goes to pkcs11-tool through the environment (env:), not argv.
run pkcs11-tool --module "$SOFTHSM2_MODULE" --token-label "$TOKEN" --login --pin env:USER_PIN \
	--keypairgen --key-type EC:edwards25519 --label ed --id 0e0e >/dev/null
pkcs11_objects | grep "Private Key Object; EC_EDWARDS" >/dev/null || fail "pkcs11-tool made no Ed25519 key"

p11 key list --json --token "$TOKEN" >"$T/list.json"
jq -e 'length == 3 and
	any(.[]; .label == "rsa" and .type == "rsa" and .bits == 2048) and
	any(.[]; .label == "ec" and .type == "ec" and .curve == "P-256") and
	any(.[]; .label == "ed" and .type == "ed25519" and .curve == "Ed25519" and .private and .public)' \
	"$T/list.json" >/dev/null || fail "key list: $(cat "$T/list.json")"
p11 key list --token "$TOKEN" | grep -x "  type: ed25519 Ed25519" >/dev/null || fail "key list (text) does not show the Ed25519 key"
ok "key list shows the RSA, EC and Ed25519 (type ed25519) keys"

# p11pki does not sign with Ed25519 keys: a clear refusal, not a crash
expect_fail "Ed25519" p11 key pub "pkcs11:token=$TOKEN;object=ed"

for uri in "$rsa" "$ec"; do
	out=$(run "$TEST_BIN_DIR/sign_check" "$SOFTHSM2_MODULE" "$TOKEN" "$uri" 2 20) || fail "sign_check $uri: $out"
	[ "$out" = "2 threads x 20 signatures ok" ] || fail "sign_check $uri: $out"
done
ok "RSA and EC keys sign (2 threads x 20 signatures each, all verified)"

# ...and fails once the Ed25519 key is there.
rc=0
out=$(run "$TEST_BIN_DIR/libp11_enum_check" "$SOFTHSM2_MODULE" "$TOKEN") || rc=$?
[ "$rc" -eq 1 ] && [ "$out" = "PKCS11_enumerate_keys: failed" ] || fail "libp11 with Ed25519 (exit $rc): $out"
ok "libp11's PKCS11_enumerate_keys lists 2 keys before, fails after the Ed25519 key is added"
