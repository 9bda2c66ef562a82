# Private keys cannot leave the token: asked directly through the raw
# PKCS#11 API (p11_extract_check.c, independent of libp11pki), the token
# refuses both to read the value and to wrap the key; `p11pki key audit`
# gives the same verdict. An --extractable key is the counter-check: it can
# be wrapped off, and both the helper and the audit must say so.
. "$(dirname "$0")/lib.sh"
init_token unextractable
check=$TEST_BIN_DIR/p11_extract_check

for type in rsa:2048 ec:p256; do
	label=${type/:/-}
	uri=$(p11 key gen --token "$TOKEN" --type "$type" --label "$label")
	out=$(run "$check" "$SOFTHSM2_MODULE" "$TOKEN" "$label") || fail "$type: p11_extract_check: $out"
	value=$([ "$type" = rsa:2048 ] && echo CKA_PRIVATE_EXPONENT || echo CKA_VALUE)
	grep -qx "C_GetAttributeValue($value): CKR_ATTRIBUTE_SENSITIVE" <<<"$out" || fail "$type: read: $out"
	grep -qx "C_WrapKey(CKM_AES_KEY_WRAP_PAD): CKR_KEY_UNEXTRACTABLE" <<<"$out" || fail "$type: wrap: $out"
	ok "$type: raw PKCS#11: $value is CKR_ATTRIBUTE_SENSITIVE, C_WrapKey is CKR_KEY_UNEXTRACTABLE"

	out=$(p11 key audit "$uri") || fail "$type: key audit exit $?: $out"
	grep -qx "verdict: the private key cannot leave the token" <<<"$out" || fail "$type: key audit: $out"
	grep -q "CKR_ATTRIBUTE_SENSITIVE" <<<"$out" && grep -q "CKR_KEY_UNEXTRACTABLE" <<<"$out" ||
		fail "$type: key audit does not show the codes: $out"
	ok "$type: key audit: 'cannot leave the token', exit 0"
done

# The counter-check: an extractable key is wrapped (CKR_OK).
uri=$(p11 key gen --token "$TOKEN" --type ec:p256 --label exportable --extractable 2>/dev/null)
rc=0
out=$(run "$check" "$SOFTHSM2_MODULE" "$TOKEN" exportable) || rc=$?
[ "$rc" -eq 1 ] || fail "extractable key: p11_extract_check exit $rc, want 1: $out"
grep -qx "C_WrapKey(CKM_AES_KEY_WRAP_PAD): CKR_OK" <<<"$out" || fail "extractable key: wrap: $out"
rc=0
out=$(p11 key audit "$uri") || rc=$?
[ "$rc" -eq 3 ] || fail "extractable key: key audit exit $rc, want 3: $out"
grep -qx "verdict: WARNING: the private key can leave the token" <<<"$out" || fail "extractable key: key audit: $out"
ok "extractable key: C_WrapKey gives CKR_OK; key audit exits 3 with a WARNING verdict"
