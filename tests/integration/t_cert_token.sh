# Certificates on the token (use case 3): a CA-issued certificate lands
# next to its key (same CKA_ID and label, as pkcs11-tool sees it), a
# certificate for no key is refused, CA and chain certificates are stored,
# cert list gives the thumbprints OpenSSL computes, and cert export --chain
# builds the chain a server sends, through a cross-certificate with
# --cross so that clients trusting only the older root accept it.
. "$(dirname "$0")/lib.sh"
command -v pkcs11-tool >/dev/null || skip "pkcs11-tool (opensc) is not installed"
init_token web

# ---- a small PKI made with the openssl CLI --------------------------------
printf '[ca]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n[leaf]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' >"$T/ext.cnf"

# root NAME CN: a self-signed CA
root() {
	run openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/$1.key" \
		-out "$T/$1.crt" -subj "/CN=$2" -days 3650 -addext "keyUsage=critical,keyCertSign,cRLSign" >/dev/null 2>&1
}
# issue NAME CN PUBKEY ISSUER SECTION [SAN]: a certificate for PUBKEY signed by ISSUER
issue() {
	local ext=$T/$1.ext
	{ cat "$T/ext.cnf"; [ -z "${6:-}" ] || printf 'subjectAltName=%s\n' "$6"; } >"$ext"
	run openssl x509 -new -force_pubkey "$3" -subj "/CN=$2" -CA "$T/$4.crt" -CAkey "$T/$4.key" \
		-extfile "$ext" -extensions "$5" -days 365 -out "$T/$1.crt" >/dev/null 2>&1
}
# softkey NAME: a software key pair (NAME.key, NAME.pub)
softkey() {
	run openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/$1.key" >/dev/null
	run openssl pkey -in "$T/$1.key" -pubout -out "$T/$1.pub" >/dev/null
}
fingerprint() { openssl x509 -in "$1" -noout -fingerprint "-$2" | sed 's/.*=//'; }
count_certs() { grep -c -- '-----BEGIN CERTIFICATE-----' "$1" || true; }

# The label and ID of every certificate object, as pkcs11-tool lists them:
# "label<TAB>id" lines.
cert_objects() {
	pkcs11_objects | awk '
		/^[A-Z][A-Za-z ]* Object/ { cert = index($0, "Certificate Object") == 1 }
		cert && $1 == "label:" { l = $0; sub(/^ *label: */, "", l) }
		cert && $1 == "ID:" { print l "\t" $2; cert = 0 }'
}

root root1 "Root CA 1"
softkey int1
issue int1 "Issuing CA 1" "$T/int1.pub" root1 ca

# ---- the key on the token and its certificate -----------------------------
KEY=$(p11 key gen --token web --type ec:p256 --label www)
KEY_ID=$(uri_id_hex "$KEY")
[ -n "$KEY_ID" ] || fail "key gen printed no id: $KEY"
p11 key pub "$KEY" -o "$T/www.pub"
issue www "www.example.com" "$T/www.pub" int1 leaf "DNS:www.example.com"

out=$(p11 cert import "$T/www.crt" --token web --chain "$T/int1.crt")
mapfile -t uris <<<"$out"
[ "${#uris[@]}" -eq 2 ] || fail "cert import printed ${#uris[@]} URIs, want 2: $out"
[[ ${uris[0]} == "pkcs11:token=web;object=www;type=cert;id=%"* ]] || fail "leaf URI: ${uris[0]}"
[ "$(uri_id_hex "${uris[0]}")" = "$KEY_ID" ] || fail "leaf URI id $(uri_id_hex "${uris[0]}") is not the key's $KEY_ID"
[[ ${uris[1]} == "pkcs11:token=web;object=Issuing%20CA%201;type=cert;id=%"* ]] || fail "chain URI: ${uris[1]}"
want_ski=$(openssl x509 -in "$T/int1.crt" -noout -ext subjectKeyIdentifier | tail -1 | tr -d ' :' | tr 'A-F' 'a-f')
[ "$(uri_id_hex "${uris[1]}")" = "$want_ski" ] || fail "intermediate id is not its SKI $want_ski: ${uris[1]}"
ok "cert import: leaf URI has the key's id, the intermediate's id is its SKI"

# independently of p11pki: pkcs11-tool sees the certificate with the key's label and id
objs=$(cert_objects)
grep -qxF "www	$KEY_ID" <<<"$objs" || fail "pkcs11-tool: no certificate 'www' with id $KEY_ID: $objs"
grep -qxF "Issuing CA 1	$want_ski" <<<"$objs" || fail "pkcs11-tool: no certificate 'Issuing CA 1': $objs"
ok "pkcs11-tool lists the certificate with the key's label and CKA_ID"

# the certificate libp11 pairs with the key is the one we imported
p11 cert export "pkcs11:token=web;object=www" -o "$T/www.out.pem"
cmp <(openssl x509 -in "$T/www.crt" -outform DER) <(openssl x509 -in "$T/www.out.pem" -outform DER) ||
	fail "cert export returns another certificate"
ok "cert export returns the imported certificate"

# ---- refusals -------------------------------------------------------------
softkey stray
issue stray "stray.example.com" "$T/stray.pub" int1 leaf "DNS:stray.example.com"
expect_fail "certificate 'CN=stray.example.com' matches no private key on token 'web'" \
	p11 cert import "$T/stray.crt" --token web
[[ $ERR == *"--is-ca"* ]] || fail "the refusal does not say how to import a CA certificate: $ERR"
expect_fail "already on token 'web'" p11 cert import "$T/www.crt" --token web
[[ $ERR == *"CN=www.example.com"* ]] || fail "the duplicate refusal does not name the subject: $ERR"
expect_fail "--label goes with --is-ca" p11 cert import "$T/www.crt" --token web --label other
! cert_objects | grep -q '^stray' || fail "the refused certificate was stored"
ok "a certificate for no key, the same certificate twice and --label without --is-ca are refused"

# ---- CA certificates, DER input -------------------------------------------
openssl x509 -in "$T/root1.crt" -outform DER -out "$T/root1.der"
out=$(p11 cert import "$T/root1.der" --token web --is-ca)
[[ $out == "pkcs11:token=web;object=Root%20CA%201;type=cert;id=%"* ]] || fail "--is-ca import printed '$out'"
expect_fail "already on token" p11 cert import "$T/root1.crt" --token web --is-ca
ok "cert import --is-ca stores a root (DER input), labelled with its CN"

# ---- cert list: thumbprints as OpenSSL computes them ----------------------
p11 cert list --token web --json >"$T/list.json"
[ "$(jq length "$T/list.json")" -eq 3 ] || fail "cert list shows $(jq length "$T/list.json") certificates, want 3"
for name in www int1 root1; do
	sha1=$(fingerprint "$T/$name.crt" sha1)
	sha256=$(fingerprint "$T/$name.crt" sha256)
	serial=$(openssl x509 -in "$T/$name.crt" -noout -serial | sed 's/.*=//')
	ca=$([ "$name" = www ] && echo false || echo true)
	jq -e --arg s1 "$sha1" --arg s256 "$sha256" --arg serial "$serial" \
		"[.[] | select(.sha1 == \$s1)] | length == 1 and (.[0] | .sha256 == \$s256 and .serial == \$serial and .ca == $ca)" \
		"$T/list.json" >/dev/null || fail "$name: cert list has no entry with sha1 $sha1 sha256 $sha256 serial $serial ca $ca: $(cat "$T/list.json")"
done
jq -e '[.[] | select(.label == "www")][0] | .subject == "CN=www.example.com" and .issuer == "CN=Issuing CA 1"' \
	"$T/list.json" >/dev/null || fail "cert list: subject/issuer of www: $(cat "$T/list.json")"
text=$(p11 cert list --token web)
grep -qF "sha1: $(fingerprint "$T/www.crt" sha1)" <<<"$text" || fail "cert list text lacks the SHA-1 thumbprint: $text"
grep -qF "sha256: $(fingerprint "$T/www.crt" sha256)" <<<"$text" || fail "cert list text lacks the SHA-256 thumbprint"
ok "cert list: SHA-1/SHA-256 thumbprints and serials equal openssl's, CA flags right"

# ---- export --chain --------------------------------------------------------
p11 cert export "pkcs11:token=web;object=www" --chain -o "$T/full.pem"
[ "$(count_certs "$T/full.pem")" -eq 2 ] || fail "export --chain gave $(count_certs "$T/full.pem") certificates, want leaf + intermediate"
grep -qF "$(fingerprint "$T/root1.crt" sha256)" <(openssl crl2pkcs7 -nocrl -certfile "$T/full.pem" |
	openssl pkcs7 -print_certs | openssl x509 -noout -fingerprint -sha256) && fail "the root is in the served chain"
run openssl verify -x509_strict -CAfile "$T/root1.crt" -untrusted "$T/full.pem" "$T/www.out.pem" >/dev/null ||
	fail "openssl verify rejects the exported chain"
ok "cert export --chain: leaf + intermediate, accepted by openssl verify"

# ---- cross-certificate (Root CA 3 cross-signed by the older Root CA 1) ----
root root3 "Root CA 3"
openssl pkey -in "$T/root3.key" -pubout -out "$T/root3.pub"
issue cross3 "Root CA 3" "$T/root3.pub" root1 ca
softkey int3
issue int3 "e-Cert SSL CA 3 - 17" "$T/int3.pub" root3 ca
KEY2=$(p11 key gen --token web --type ec:p256 --label shop)
p11 key pub "$KEY2" -o "$T/shop.pub"
issue shop "shop.example.com" "$T/shop.pub" int3 leaf "DNS:shop.example.com"
# a fullchain.pem in one file: leaf first, then the chain
cat "$T/shop.crt" "$T/int3.crt" "$T/root3.crt" >"$T/shop.full.pem"
out=$(p11 cert import "$T/shop.full.pem" --token web --chain "$T/cross3.crt")
[ "$(wc -l <<<"$out")" -eq 4 ] || fail "fullchain + cross import printed: $out"
[ "$(uri_id_hex "$(head -1 <<<"$out")")" = "$(uri_id_hex "$KEY2")" ] || fail "shop certificate is not next to its key"
openssl x509 -in "$T/shop.crt" -out "$T/shop.only.pem"

p11 cert export "pkcs11:token=web;object=shop" --chain -o "$T/shop.chain.pem"
[ "$(count_certs "$T/shop.chain.pem")" -eq 2 ] || fail "export --chain without --cross: $(count_certs "$T/shop.chain.pem") certificates, want 2"
run openssl verify -x509_strict -CAfile "$T/root3.crt" -untrusted "$T/shop.chain.pem" "$T/shop.only.pem" >/dev/null ||
	fail "the plain chain does not verify against Root CA 3"
run openssl verify -x509_strict -CAfile "$T/root1.crt" -untrusted "$T/shop.chain.pem" "$T/shop.only.pem" >/dev/null 2>&1 &&
	fail "the plain chain verifies against Root CA 1 alone: the test proves nothing"
ok "export --chain: leaf + intermediate; trusted by Root CA 3 clients, not by Root CA 1-only clients"

p11 cert export "pkcs11:token=web;object=shop" --chain --cross -o "$T/shop.cross.pem"
[ "$(count_certs "$T/shop.cross.pem")" -eq 3 ] || fail "export --cross: $(count_certs "$T/shop.cross.pem") certificates, want 3"
sha_cross=$(fingerprint "$T/cross3.crt" sha256)
openssl crl2pkcs7 -nocrl -certfile "$T/shop.cross.pem" | openssl pkcs7 -print_certs |
	awk '/BEGIN/{n++} {print > "'"$T"'/part" n ".pem"}'
[ "$(fingerprint "$T/part3.pem" sha256)" = "$sha_cross" ] || fail "the third certificate is not the cross-certificate"
run openssl verify -x509_strict -CAfile "$T/root1.crt" -untrusted "$T/shop.cross.pem" "$T/shop.only.pem" >/dev/null ||
	fail "openssl verify with only Root CA 1 trusted rejects the cross chain"
run openssl verify -x509_strict -CAfile "$T/root3.crt" -untrusted "$T/shop.cross.pem" "$T/shop.only.pem" >/dev/null ||
	fail "the cross chain no longer verifies against Root CA 3"
ok "export --chain --cross: leaf + intermediate + cross-certificate, accepted with only the older Root CA 1"

# an incomplete chain is served with a warning, not silently
p11 key gen --token web --type ec:p256 --label lonely >/dev/null
p11 key pub "pkcs11:token=web;object=lonely" -o "$T/lonely.pub"
softkey int9
root root9 "Root CA 9"
issue int9 "Issuing CA 9" "$T/int9.pub" root9 ca
issue lonely "lonely.example.com" "$T/lonely.pub" int9 leaf "DNS:lonely.example.com"
p11 cert import "$T/lonely.crt" --token web >/dev/null
p11 cert export "pkcs11:token=web;object=lonely" --chain -o "$T/lonely.chain.pem" 2>"$T/warn.txt"
grep -qF "issuer 'CN=Issuing CA 9' is not on token 'web'" "$T/warn.txt" || fail "no warning for an incomplete chain: $(cat "$T/warn.txt")"
[ "$(count_certs "$T/lonely.chain.pem")" -eq 1 ] || fail "incomplete chain export"
expect_fail "no certificate 'nothing' on token 'web'" p11 cert export "pkcs11:token=web;object=nothing"
ok "an incomplete chain is exported with a warning naming the missing issuer; unknown objects are refused"
