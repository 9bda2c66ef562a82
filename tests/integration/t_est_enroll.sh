# p11pki enroll and renew (the EST client) against `p11pki serve` with an
# est binding: from an empty "web" token to a serving binding in three
# commands (token init, enroll, serve), the key generated there and never
# leaving it; the certificate and chain stored next to it; renew skipping
# a certificate that is not due, re-enrolling over mutual TLS with the
# token key (same key, then --rekey), the served certificate swapped by
# SIGHUP; every refusal (401, 403, an untrusted server, a pending
# request) one line, exit status as documented, no key left behind.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/serve_lib.sh"
command -v jq >/dev/null || skip "jq is not installed"
init_token ca

# ---- the CA: root and issuing on the "ca" token, its TLS key there too ------
p11 ca init --name root --token ca --type ec:p384 --days 3650 --subject 'CN=EST Test Root' >/dev/null
p11 ca init --name issuing --parent root --token ca --type ec:p256 --subject 'CN=EST Test Issuing' >/dev/null
run "$P11PKI" ca cert --ca root -o "$T/root.crt"
run "$P11PKI" ca cert --ca issuing -o "$T/issuing.crt"
cat "$T/root.crt" "$T/issuing.crt" >"$T/chain.pem"
tls_uri=$(p11 key gen --token ca --type ec:p256 --label tls)
p11 csr --key "$tls_uri" --subject 'CN=localhost' --san dns:localhost -o "$T/tls.csr" >/dev/null
p11 ca sign --ca issuing --profile server --csr "$T/tls.csr" -o "$T/tls.crt" >/dev/null
cat "$T/issuing.crt" >>"$T/tls.crt" # served with its chain: clients have only the root
make_root other "Other Root"

# conf [www]: the CA's est binding, and once a key is enrolled a binding
# that serves with it
conf() {
	cat >"$T/serve.conf" <<EOF
[ serve ]
bindings = pki${1:+, www}
bound_file = $T/bound
[ pki ]
listen = 127.0.0.1:0
key = $tls_uri
cert = $T/tls.crt
mode = http
client_auth = optional
client_ca = $T/chain.pem
est = issuing/server
ocsp = issuing
crls = issuing
EOF
	[ -z "${1:-}" ] || cat >>"$T/serve.conf" <<EOF
[ www ]
listen = 127.0.0.2:0
cert = pkcs11:token=web;object=www;type=cert
key = pkcs11:token=web;object=www;type=private
EOF
}
conf
(umask 077 && run "$P11PKI" est user add web01 --ca issuing --profile server | awk '/^secret/ { print $2 }' >"$T/est.secret")
[ -s "$T/est.secret" ] || fail "est user add printed no secret"
start_serve "$T/serve.conf"
port=$(bound pki)
port=${port##*:}
SERVER=https://localhost:$port
count() { "$P11PKI" ca list --ca issuing --json | jq length; }
# the serial of the PEM certificate on stdin as p11pki prints it (no leading zeros)
serial_of() { openssl x509 -noout -serial | cut -d= -f2 | sed 's/^0*//'; }
keys() { "$P11PKI" key list --token web --json --pin-source "file:$T/user.pin" | jq length; }

# ---- 1 + 2: token init, enroll -------------------------------------------------
init_token web
enroll() { # extra options...
	p11 enroll --server "$SERVER" --ca-file "$T/root.crt" --token web --user web01 --secret-file "$T/est.secret" "$@"
}
before=$(count)
out=$(enroll --type ec:p256 --label www --subject 'CN=www.example.com' --san dns:www.example.com)
key=$(sed -n 's/^key: //p' <<<"$out")
cert=$(sed -n 's/^certificate: //p' <<<"$out")
serial1=$(sed -n 's/^serial: //p' <<<"$out")
[ -n "$key" ] && [ -n "$cert" ] && [ -n "$serial1" ] || fail "enroll printed: $out"
grep -q '^subject: CN=www.example.com$' <<<"$out" || fail "enroll subject: $out"
grep -q '^not after: ' <<<"$out" || fail "enroll printed no notAfter: $out"
[ "$(uri_id_hex "$key")" = "$(uri_id_hex "$cert")" ] || fail "certificate and key ids differ: $key $cert"
[ "$(count)" = $((before + 1)) ] || fail "the CA store did not gain one certificate"
"$P11PKI" ca list --ca issuing --json | jq -e '[.[] | select(.requester == "est:web01")] | length == 1' >/dev/null ||
	fail "the store does not say est:web01 asked"
# the key never left the token; certificate and chain verify from the token
p11 key audit "$key" | grep -q 'verdict: the private key cannot leave the token' || fail "key audit"
run "$P11PKI" cert export "$cert" --chain -o "$T/www.pem"
run openssl verify -CAfile "$T/root.crt" -untrusted "$T/www.pem" -purpose sslserver "$T/www.pem" >/dev/null
[ "$(grep -c 'BEGIN CERTIFICATE' "$T/www.pem")" = 2 ] || fail "the issuing CA is not on the token next to the leaf"
[ "$(serial_of <"$T/www.pem")" = "$serial1" ] || fail "stored serial"
ok "enroll: key generated on token web, certificate (same id) and chain stored, in the CA store as est:web01"

# ---- refusals: one line, no key left ------------------------------------------------
keys_before=$(keys)
printf 'wrong\n' >"$T/wrong.secret"
chmod 600 "$T/wrong.secret"
expect_fail "answered 401 Unauthorized" p11 enroll --server "$SERVER" --ca-file "$T/root.crt" --token web \
	--user web01 --secret-file "$T/wrong.secret" --label api --subject 'CN=api.example.com' --san dns:api.example.com
[[ $ERR == *"check --user and the secret"* && $ERR == *"was removed from token 'web'"* ]] || fail "401 message: $ERR"
[ "$RC" = 1 ] || fail "401: exit $RC"
expect_fail "answered 403 Forbidden" enroll --label api --subject 'CN=api.example.com'
[[ $ERR == *"was removed from token 'web'"* ]] || fail "403 message: $ERR"
expect_fail "its certificate is not trusted" p11 enroll --server "$SERVER" --ca-file "$T/other.crt" --token web \
	--user web01 --secret-file "$T/est.secret" --label api --subject 'CN=api.example.com' --san dns:api.example.com
expect_fail "its certificate is not for '127.0.0.1'" p11 enroll --server "https://127.0.0.1:$port" \
	--ca-file "$T/root.crt" --token web --user web01 --secret-file "$T/est.secret" --label api \
	--subject 'CN=api.example.com' --san dns:api.example.com
expect_fail "secrets are never given on the command line" "$P11PKI" enroll --server "$SERVER" --secret hunter2
[[ $ERR != *hunter2* ]] || fail "the secret was echoed: $ERR"
expect_fail "environment variable 'NO_SUCH_SECRET' is not set" p11 enroll --server "$SERVER" \
	--ca-file "$T/root.crt" --token web --user web01 --secret-env NO_SUCH_SECRET --subject 'CN=api.example.com'
expect_fail "a key with label 'www' already exists" enroll --label www --subject 'CN=www.example.com' \
	--san dns:www.example.com
[ "$(keys)" = "$keys_before" ] || fail "a failed enroll left a key behind"
kill -0 "$SERVE_PID" || fail "p11pki serve died"
ok "refusals (401, 403, untrusted server, wrong host, secret in argv, missing secret, label taken): one line each, no key left"

# ---- 3: serve with the enrolled key ---------------------------------------------------
stop_serve
conf www
start_serve "$T/serve.conf"
port=$(bound pki)
port=${port##*:}
SERVER=https://localhost:$port
served_serial() {
	timeout 10 openssl s_client -connect "$(bound www)" -CAfile "$T/root.crt" -verify_return_error </dev/null \
		2>/dev/null | serial_of
}
[ "$(served_serial)" = "$serial1" ] || fail "www does not serve the enrolled certificate"
ok "serve: the binding uses the token key and the certificate enroll stored"

# ---- renew ------------------------------------------------------------------------------
renew() { p11 renew --token web --object www --server "$SERVER" --ca-file "$T/root.crt" "$@"; }
before=$(count)
out=$(renew --within 30d)
grep -q "nothing to do" <<<"$out" || fail "renew of a new certificate: $out"
[ "$(count)" = "$before" ] || fail "a renewal that was not due reached the CA"
out=$(renew --within 3650d)
serial2=$(sed -n 's/^serial: //p' <<<"$out")
[ -n "$serial2" ] && [ "$serial2" != "$serial1" ] || fail "renew: $out"
grep -q "^replaced: serial $serial1\$" <<<"$out" || fail "renew did not name the old serial: $out"
[ "$(uri_id_hex "$(sed -n 's/^key: //p' <<<"$out")")" = "$(uri_id_hex "$key")" ] || fail "renew changed the key"
certs=$("$P11PKI" cert list --token web --json | jq '[.[] | select(.label == "www")] | length')
[ "$certs" = 1 ] || fail "after renew, $certs certificates for www"
"$P11PKI" cert list --token web --json | jq -e --arg s "$serial2" '[.[] | select(.serial == $s)] | length == 1' \
	>/dev/null || fail "the new certificate is not on the token"
kill -HUP "$SERVE_PID"
for ((i = 0; i < 100; i++)); do
	[ "$(served_serial)" = "$serial2" ] && break
	sleep 0.05
done
[ "$(served_serial)" = "$serial2" ] || fail "after SIGHUP www serves $(served_serial), want $serial2"
ok "renew: nothing due within 30d; due: simplereenroll over mutual TLS, same key, old certificate replaced, served after SIGHUP"

# a revoked certificate cannot authenticate its renewal
plain=$(p11 key gen --token web --type ec:p256 --label plain)
p11 csr --key "$plain" --subject 'CN=plain.example.com' --san dns:plain.example.com -o "$T/plain.csr" >/dev/null
p11 ca sign --ca issuing --profile server --csr "$T/plain.csr" -o "$T/plain.crt" >/dev/null
p11 cert import "$T/plain.crt" --token web >/dev/null
"$P11PKI" ca revoke --ca issuing --serial "$(serial_of <"$T/plain.crt")" --reason superseded >/dev/null
expect_fail "answered 403 Forbidden" p11 renew --token web --object plain --server "$SERVER" --ca-file "$T/root.crt" \
	--within 3650d
[[ $ERR == *"revoked"* ]] || fail "renew with a revoked certificate: $ERR"
"$P11PKI" cert list --token web --json | jq -e --arg s "$(serial_of <"$T/plain.crt")" \
	'[.[] | select(.label == "plain" and .serial == $s)] | length == 1' >/dev/null || fail "a refused renew touched plain"
ok "renew with a revoked certificate: 403 with the reason, the certificate untouched"

out=$(renew --within 3650d --rekey --type ec:p384)
serial3=$(sed -n 's/^serial: //p' <<<"$out")
newkey=$(sed -n 's/^key: //p' <<<"$out")
[ -n "$serial3" ] && [ "$(uri_id_hex "$newkey")" != "$(uri_id_hex "$key")" ] || fail "renew --rekey: $out"
[ "$(p11 key list --token web --json | jq '[.[] | select(.label == "www")] | length')" = 1 ] ||
	fail "after --rekey the old key is still there"
p11 key list --token web --json | jq -e '.[] | select(.label == "www") | .curve == "P-384"' >/dev/null ||
	fail "--rekey --type ec:p384 made another type"
run "$P11PKI" cert export "pkcs11:token=web;object=www;type=cert" -o "$T/rekeyed.pem"
[ "$(openssl x509 -in "$T/rekeyed.pem" -noout -pubkey)" = "$(p11 key pub "$newkey")" ] ||
	fail "the re-keyed certificate is not for the new key"
run openssl x509 -in "$T/rekeyed.pem" -noout -ext subjectAltName | grep -q 'DNS:www.example.com' ||
	fail "renew lost the subjectAltName"
ok "renew --rekey: new key (same label, new id, P-384) certified, old key pair and certificate removed"

# a renewal the server refuses after --rekey made its key leaves the token as it was
keys_before=$(keys)
expect_fail "was removed from token 'web'" p11 renew --token web --object plain --server "$SERVER" \
	--ca-file "$T/root.crt" --within 3650d --rekey
[ "$(keys)" = "$keys_before" ] || fail "a failed --rekey left its key behind"
left=$(p11 key list --token web --json | jq -r '.[] | select(.label == "plain") | .uri')
[ "$(uri_id_hex "$left")" = "$(uri_id_hex "$plain")" ] || fail "after a failed renew --rekey, plain is: $left"
kill -0 "$SERVE_PID" || fail "p11pki serve died"
ok "a refused renew --rekey removes its new key and keeps the current key and certificate"
