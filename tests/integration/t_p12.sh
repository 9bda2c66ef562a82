# PKCS#12 (use cases 4 and 6): p12 import restores a backup made by
# `openssl pkcs12 -export` (AES, 3DES and, when OpenSSL's legacy provider
# is there, RC2) onto the token as a sensitive, non-extractable key (local
# false: it was not generated there) with its certificate next to it and
# the chain as CA certificates; the token then signs with it (checked by
# openssl against the software key). Wrong passwords, files without a key
# and repeated imports are refused. p12 bundle makes browser bundles that
# openssl opens: AES-256-CBC/PBKDF2 by default, 3DES with --legacy.
. "$(dirname "$0")/lib.sh"
command -v pkcs11-tool >/dev/null || skip "pkcs11-tool (opensc) is not installed"
init_token web

printf '[ca]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n[leaf]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth,serverAuth\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' >"$T/ext.cnf"
run openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/root.key" -out "$T/root.crt" \
	-subj "/CN=Client Root" -days 3650 -addext "keyUsage=critical,keyCertSign,cRLSign" >/dev/null 2>&1
# cert NAME CN SECTION ISSUER: NAME.crt for NAME.key
cert() {
	run openssl pkey -in "$T/$1.key" -pubout -out "$T/$1.pub" >/dev/null
	run openssl x509 -new -force_pubkey "$T/$1.pub" -subj "/CN=$2" -CA "$T/$4.crt" -CAkey "$T/$4.key" \
		-extfile "$T/ext.cnf" -extensions "$3" -days 365 -out "$T/$1.crt" >/dev/null 2>&1
}
run openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/int.key" >/dev/null
cert int "Client Issuing CA" ca root
run openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/alice.key" >/dev/null
cert alice "alice@example.com" leaf int
run openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$T/bob.key" >/dev/null
cert bob "bob@example.com" leaf int
(umask 077 && printf 'correct horse\n' >"$T/pw" && printf 'wrong horse\n' >"$T/bad.pw" && : >"$T/empty.pw")

# sign_verify KEY_URI rsa|ec SOFTWARE_PUB: the token signs a SHA-256 digest
# with pkcs11-tool (SoftHSM2 has no ECDSA-SHA256: EC signs the digest),
# openssl checks the signature with the software key's public half
sign_verify() {
	local id
	id=$(uri_id_hex "$1")
	head -c 1000 /dev/urandom >"$T/data"
	if [ "$2" = rsa ]; then
		run pkcs11-tool --module "$SOFTHSM2_MODULE" --token-label web --login --pin env:USER_PIN --sign --id "$id" \
			-m SHA256-RSA-PKCS -i "$T/data" -o "$T/sig" >/dev/null 2>&1 || fail "pkcs11-tool cannot sign with $1"
		run openssl dgst -sha256 -verify "$3" -signature "$T/sig" "$T/data" >/dev/null ||
			fail "the token's signature does not verify with the software key: the imported key differs"
		return
	fi
	openssl dgst -sha256 -binary "$T/data" >"$T/digest"
	run pkcs11-tool --module "$SOFTHSM2_MODULE" --token-label web --login --pin env:USER_PIN --sign --id "$id" \
		-m ECDSA --signature-format openssl -i "$T/digest" -o "$T/sig" >/dev/null 2>&1 || fail "pkcs11-tool cannot sign with $1"
	run openssl pkeyutl -verify -pubin -inkey "$3" -in "$T/digest" -sigfile "$T/sig" >/dev/null ||
		fail "the token's signature does not verify with the software key: the imported key differs"
}

# ---- import: default (AES) backup with a chain ----------------------------
run openssl pkcs12 -export -inkey "$T/alice.key" -in "$T/alice.crt" -certfile "$T/int.crt" -name alice-backup \
	-passout "file:$T/pw" -out "$T/alice.pfx" >/dev/null
out=$(p11 p12 import "$T/alice.pfx" --token web --password-source "file:$T/pw" 2>"$T/import.err")
mapfile -t uris <<<"$out"
[ "${#uris[@]}" -eq 3 ] || fail "p12 import printed ${#uris[@]} URIs, want key, certificate and chain: $out"
[[ ${uris[0]} == "pkcs11:token=web;object=alice-backup;id=%"* ]] || fail "key URI (label from friendlyName): ${uris[0]}"
[[ ${uris[1]} == "pkcs11:token=web;object=alice-backup;type=cert;id=%"* ]] || fail "certificate URI: ${uris[1]}"
[ "$(uri_id_hex "${uris[0]}")" = "$(uri_id_hex "${uris[1]}")" ] || fail "certificate and key have different ids: $out"
[ "$(uri_id_hex "${uris[0]}" | wc -c)" -eq 33 ] || fail "the key id is not 16 bytes: ${uris[0]}"
[[ ${uris[2]} == "pkcs11:token=web;object=Client%20Issuing%20CA;type=cert;id=%"* ]] || fail "chain URI: ${uris[2]}"
grep -qF "was not generated there (CKA_LOCAL is false)" "$T/import.err" || fail "import does not say the key was imported: $(cat "$T/import.err")"
ALICE=${uris[0]}
ok "p12 import: key, certificate (same id and label) and intermediate land on the token"

p11 key list --json --token web >"$T/keys.json"
jq -e '[.[] | select(.label == "alice-backup")] | length == 1 and (.[0] | .type == "rsa" and .bits == 2048 and
	.private and .public and .sensitive == true and .extractable == false and .local == false)' \
	"$T/keys.json" >/dev/null || fail "key list: $(jq -c '.[] | select(.label == "alice-backup")' "$T/keys.json")"
audit=$(p11 key audit "$ALICE") || fail "key audit says the imported key can leave the token: $audit"
grep -qxF "verdict: the private key cannot leave the token" <<<"$audit" || fail "key audit: $audit"
grep -qF "CKR_ATTRIBUTE_SENSITIVE" <<<"$audit" || fail "key audit: the private exponent is readable: $audit"
pkcs11_objects >"$T/objects.txt"
grep -qF "Usage:      sign" "$T/objects.txt" || fail "pkcs11-tool: the private key cannot sign: $(cat "$T/objects.txt")"
ok "the imported key is sensitive, not extractable, local=false; key audit verdict: it cannot leave the token"

p11 key pub "$ALICE" -o "$T/alice.token.pub"
cmp <(openssl pkey -pubin -in "$T/alice.token.pub" -outform DER) <(openssl pkey -in "$T/alice.key" -pubout -outform DER) ||
	fail "the public key on the token is not alice's"
sign_verify "$ALICE" rsa "$T/alice.pub"
ok "the token signs with the restored RSA key (checked by openssl with the software public key)"

expect_fail "this key is already on token 'web' as 'alice-backup'" \
	p11 p12 import "$T/alice.pfx" --token web --password-source "file:$T/pw" --label again
expect_fail "wrong password for $T/alice.pfx (PKCS#12 MAC verification failed)" \
	p11 p12 import "$T/alice.pfx" --token web --password-source "file:$T/bad.pw" --label other
run openssl pkcs12 -export -nokeys -in "$T/alice.crt" -passout "file:$T/pw" -out "$T/nokey.pfx" >/dev/null
expect_fail "$T/nokey.pfx holds no private key" \
	p11 p12 import "$T/nokey.pfx" --token web --password-source "file:$T/pw"
printf 'not a pfx' >"$T/junk.pfx"
expect_fail "is not a PKCS#12" p11 p12 import "$T/junk.pfx" --token web --password-source "file:$T/pw"
[ "$(p11 key list --json --token web | jq length)" -eq 1 ] || fail "a refused import left a key behind"
ok "refused: the same key twice, a wrong password, a file without a key, a file that is no PKCS#12"

# ---- import: 3DES (old Windows) EC backup, --label ------------------------
run openssl pkcs12 -export -keypbe PBE-SHA1-3DES -certpbe PBE-SHA1-3DES -macalg sha1 -inkey "$T/bob.key" \
	-in "$T/bob.crt" -passout "file:$T/pw" -out "$T/bob.pfx" >/dev/null
out=$(p11 p12 import "$T/bob.pfx" --token web --label bob --password-source "file:$T/pw" 2>/dev/null)
[ "$(wc -l <<<"$out")" -eq 2 ] || fail "3DES import printed: $out"
BOB=$(head -1 <<<"$out")
[[ $BOB == "pkcs11:token=web;object=bob;id=%"* ]] || fail "--label not used: $BOB"
p11 key list --json --token web | jq -e '[.[] | select(.label == "bob")][0] | .type == "ec" and .curve == "P-384" and
	.sensitive == true and .extractable == false and .local == false' >/dev/null || fail "bob: $(p11 key list --token web)"
openssl pkey -in "$T/bob.key" -pubout -out "$T/bob.pub"
sign_verify "$BOB" ec "$T/bob.pub"
ok "p12 import of a 3DES/SHA-1 backup with an EC P-384 key: non-extractable, signs like the original"

# ---- import: RC2 (openssl -legacy), only when the legacy provider exists ---
run openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/carol.key" >/dev/null
cert carol "carol@example.com" leaf int
if run openssl pkcs12 -export -legacy -inkey "$T/carol.key" -in "$T/carol.crt" -passout "file:$T/pw" \
	-out "$T/carol.pfx" >/dev/null 2>&1; then
	out=$(p11 p12 import "$T/carol.pfx" --token web --label carol --password-source "file:$T/pw" 2>/dev/null)
	sign_verify "$(head -1 <<<"$out")" ec "$T/carol.pub"
	ok "p12 import of an RC2 (openssl pkcs12 -legacy) backup"
else
	echo "note: OpenSSL's legacy provider is not available: the RC2 (-legacy) import case is not run" | tee -a "$LOG"
fi

# ---- bundle ---------------------------------------------------------------
out=$(run "$P11PKI" p12 bundle --key "$T/alice.key" --cert "$T/alice.crt" --chain "$T/int.crt" -o "$T/client.p12" \
	--password-source "file:$T/pw")
[ "$out" = "$T/client.p12: AES-256-CBC with PBKDF2, SHA-256 MAC" ] || fail "bundle printed: $out"
[ "$(stat -c %a "$T/client.p12")" = 600 ] || fail "client.p12 has mode $(stat -c %a "$T/client.p12"), want 600"
info=$(run openssl pkcs12 -info -noout -in "$T/client.p12" -passin "file:$T/pw" 2>&1)
grep -qF "Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC" <<<"$info" || fail "the key is not AES-256-CBC/PBKDF2: $info"
grep -qF "PKCS7 Encrypted data: PBES2, PBKDF2, AES-256-CBC" <<<"$info" || fail "the certificates are not AES-256-CBC: $info"
grep -q "^MAC: sha256" <<<"$info" || fail "the MAC is not SHA-256: $info"
run openssl pkcs12 -in "$T/client.p12" -passin "file:$T/pw" -nokeys -out "$T/client.certs.pem" >/dev/null 2>&1
[ "$(grep -c 'BEGIN CERTIFICATE' "$T/client.certs.pem")" -eq 2 ] || fail "the bundle does not hold certificate + chain"
openssl pkcs12 -in "$T/client.p12" -passin "file:$T/pw" -nocerts -nodes 2>/dev/null | openssl pkey -pubout -outform DER >"$T/b.pub.der"
cmp "$T/b.pub.der" <(openssl pkey -in "$T/alice.key" -pubout -outform DER) || fail "the bundled key is not alice's"
expect_fail "MAC verification failed" p11 p12 import "$T/client.p12" --token web --password-source "file:$T/bad.pw"
ok "p12 bundle: mode 0600, AES-256-CBC/PBKDF2 with a SHA-256 MAC, key + certificate + chain, as openssl reads it"

run "$P11PKI" p12 bundle --key "$T/bob.key" --cert "$T/bob.crt" -o "$T/old.p12" --password-source "file:$T/pw" --legacy >/dev/null
info=$(run openssl pkcs12 -info -noout -in "$T/old.p12" -passin "file:$T/pw" 2>&1)
grep -qF "Shrouded Keybag: pbeWithSHA1And3-KeyTripleDES-CBC" <<<"$info" || fail "--legacy key is not 3DES: $info"
grep -qF "PKCS7 Encrypted data: pbeWithSHA1And3-KeyTripleDES-CBC" <<<"$info" || fail "--legacy certificates are not 3DES: $info"
grep -q "^MAC: sha1" <<<"$info" || fail "--legacy MAC is not SHA-1: $info"
! grep -qi "RC2" <<<"$info" || fail "--legacy uses RC2: $info"
ok "p12 bundle --legacy: 3DES for key and certificates, SHA-1 MAC (no RC2, no legacy provider)"

expect_fail "$T/bob.key does not belong to $T/alice.crt" \
	"$P11PKI" p12 bundle --key "$T/bob.key" --cert "$T/alice.crt" -o "$T/mix.p12" --password-source "file:$T/pw"
expect_fail "is empty" \
	"$P11PKI" p12 bundle --key "$T/alice.key" --cert "$T/alice.crt" -o "$T/nopw.p12" --password-source "file:$T/empty.pw"
[ ! -e "$T/mix.p12" ] && [ ! -e "$T/nopw.p12" ] || fail "a refused bundle left a file"
expect_fail "PINs and passwords are never given on the command line" \
	"$P11PKI" p12 bundle --key "$T/alice.key" --cert "$T/alice.crt" -o "$T/x.p12" --password secret
ok "p12 bundle refuses a key that does not match the certificate, an empty password file, a password in argv"
