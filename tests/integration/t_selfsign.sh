# p11pki cert selfsign (use case 1): a self-signed server certificate made
# with a key on the token and, with --store, kept on the token next to the
# key (same CKA_ID and label). The CN and a subjectAltName carry the host
# name, the EKU is serverAuth (IIS: "for server authentication"), OpenSSL
# accepts it as its own trust anchor; no --san is refused.
. "$(dirname "$0")/lib.sh"
command -v pkcs11-tool >/dev/null || skip "pkcs11-tool (opensc) is not installed"
init_token srv

KEY=$(p11 key gen --token srv --type rsa:2048 --label test)
KEY_ID=$(uri_id_hex "$KEY")
SUBJECT='/C=US/ST=GuangDong/L=GuangZhou/O=Your Company Name/OU=imdst.com/CN=test.imdst.com'
cert_count() { p11 cert list --token srv --json | jq length; }

# ---- use case 1, with the key on the token -------------------------------
p11 cert selfsign --key "$KEY" --subject "$SUBJECT" --san dns:test.imdst.com --days 3650 --store -o "$T/self.crt" >/dev/null
x() { run openssl x509 -in "$T/self.crt" -noout "$@"; }
[ "$(x -subject -nameopt RFC2253)" = 'subject=CN=test.imdst.com,OU=imdst.com,O=Your Company Name,L=GuangZhou,ST=GuangDong,C=US' ] ||
	fail "subject: $(x -subject -nameopt RFC2253)"
[ "$(x -issuer -nameopt RFC2253 | sed 's/^issuer=//')" = "$(x -subject -nameopt RFC2253 | sed 's/^subject=//')" ] ||
	fail "issuer is not the subject"
ext=$(x -ext subjectAltName,extendedKeyUsage,basicConstraints,keyUsage)
for want in 'DNS:test.imdst.com' 'TLS Web Server Authentication' 'CA:FALSE' 'Digital Signature, Key Encipherment'; do
	grep -qF "$want" <<<"$ext" || fail "extensions lack '$want': $ext"
done
start=$(date -d "$(x -startdate | cut -d= -f2)" +%s)
end=$(date -d "$(x -enddate | cut -d= -f2)" +%s)
[ $(((end - start) / 86400)) -eq 3650 ] || fail "--days 3650 gave $(((end - start) / 86400)) days"
cmp -s <(x -pubkey) <(p11 key pub "$KEY") || fail "the certificate's key is not the token key"
ok "CN and SAN carry test.imdst.com, EKU serverAuth, CA:FALSE, 3650 days, the token key"

out=$(run openssl verify -CAfile "$T/self.crt" "$T/self.crt" 2>&1) || fail "openssl verify: $out"
[ "$out" = "$T/self.crt: OK" ] || fail "openssl verify: $out"
# a different certificate does not pass as its own anchor: the check can fail
p11 cert selfsign --key "$KEY" --subject CN=other.imdst.com --san dns:other.imdst.com -o "$T/other.crt" >/dev/null
run openssl verify -CAfile "$T/other.crt" "$T/self.crt" >/dev/null 2>&1 && fail "self.crt verifies against another certificate"
ok "openssl verify -CAfile self.crt self.crt: OK (and not against another certificate)"

# ---- --store: on the token next to the key ------------------------------
# (other.crt above had no --store: still exactly one certificate)
list=$(p11 cert list --token srv --json)
jq -e --arg id "$KEY_ID" 'length == 1 and .[0].label == "test" and (.[0].uri | test(";type=cert"))' <<<"$list" >/dev/null ||
	fail "cert list: $list"
[ "$(uri_id_hex "$(jq -r '.[0].uri' <<<"$list")")" = "$KEY_ID" ] || fail "cert id differs from key id $KEY_ID: $list"
[ "$(jq -r '.[0].serial' <<<"$list")" = "$(x -serial | cut -d= -f2)" ] || fail "cert list serial differs from self.crt"
objs=$(run pkcs11-tool --module "$SOFTHSM2_MODULE" --token-label srv --list-objects --type cert)
grep -qE "^ *label: +test\$" <<<"$objs" && grep -qE "^ *ID: +$KEY_ID\$" <<<"$objs" ||
	fail "pkcs11-tool does not show the certificate with label test and ID $KEY_ID: $objs"
ok "--store: one certificate on the token, label 'test' and the key's id (p11pki and pkcs11-tool agree)"

# ---- RFC 4514 subject, an EC key, IDN host: the CN is the A-label ---------
EC=$(p11 key gen --token srv --type ec:p256 --label idn)
p11 cert selfsign --key "$EC" --subject 'CN=www.我的伺服器.com,O=My Org,C=HK' --san 'dns:www.我的伺服器.com' -o "$T/idn.crt"
y=$(run openssl x509 -in "$T/idn.crt" -noout -subject -ext subjectAltName -nameopt RFC2253)
grep -qF 'subject=CN=www.xn--3pqw8o2pk43espw.com,O=My Org,C=HK' <<<"$y" && grep -qF 'DNS:www.xn--3pqw8o2pk43espw.com' <<<"$y" ||
	fail "IDN: $y"
[ "$(cert_count)" -eq 1 ] || fail "selfsign without --store stored a certificate"
ok "RFC 4514 subject with an IDN host: CN and SAN are the xn-- form; no --store, nothing stored"

# ---- refusal: a server certificate needs a subjectAltName -----------------
echo keep >"$T/nosan.crt"
expect_fail "subjectAltName" p11 cert selfsign --key "$KEY" --subject CN=test.imdst.com --store -o "$T/nosan.crt"
[ "$(cat "$T/nosan.crt")" = keep ] || fail "a refused selfsign wrote -o"
[ "$(cert_count)" -eq 1 ] || fail "a refused selfsign stored a certificate"
ok "without --san: refused in one line, nothing written or stored"
