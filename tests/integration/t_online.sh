# The CA online (RFC 7030 EST, RFC 6960 OCSP, CRLs) from `p11pki serve`:
# the issuing CA's key on a "ca" token; curl doing EST by hand (cacerts,
# csrattrs, simpleenroll with HTTP Basic, simplereenroll with the client
# certificate), openssl ocsp for good / revoked / unknown with the
# response signature checked against the issuer, openssl verify
# -crl_check with the published CRL; a revocation made by `p11pki ca
# revoke` in the next OCSP answer and the next CRL; every bad input gets
# the protocol's error, nothing reaches the store, and serving goes on.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/serve_lib.sh"
init_token ca

p11 ca init --name root --token ca --type ec:p384 --days 3650 --subject 'CN=Online Test Root' >/dev/null
p11 ca init --name issuing --parent root --token ca --type ec:p256 --subject 'CN=Online Test Issuing' >/dev/null
run "$P11PKI" ca cert --ca root -o "$T/root.crt"
run "$P11PKI" ca cert --ca issuing -o "$T/issuing.crt"
cat "$T/root.crt" "$T/issuing.crt" >"$T/chain.pem"

# the CA host's own TLS certificate, for a key on the same token
tls_uri=$(p11 key gen --token ca --type ec:p256 --label tls)
p11 csr --key "$tls_uri" --subject 'CN=localhost' --san dns:localhost -o "$T/tls.csr" >/dev/null
p11 ca sign --ca issuing --profile server --csr "$T/tls.csr" -o "$T/tls.crt" >/dev/null

mkdir -p "$T/crls"
cat >"$T/ca.conf" <<EOF
[ online ]
crl_dir = $T/crls
max_body = 8192
[ serve ]
bindings = pki
bound_file = $T/bound
[ pki ]
listen = 127.0.0.1:0
key = $tls_uri
cert = $T/tls.crt
mode = http
client_auth = optional
client_ca = $T/chain.pem
est = issuing/server
est_label_clients = issuing/client
ocsp = issuing
crls = issuing
EOF

# bindings show lists the online routes
"$P11PKI" bindings show -c "$T/ca.conf" --json --pin-source "file:$T/user.pin" |
	jq -e '.[0] | .est == "issuing/server" and .est_labels.clients == "issuing/client" and .ocsp == "issuing" and .crls == "issuing"' \
	>/dev/null || fail "bindings show does not list the online routes"
secret=$("$P11PKI" est user add web01 --ca issuing --profile server | awk '/^secret/ { print $2 }')
[ -n "$secret" ] || fail "est user add printed no secret"
start_serve "$T/ca.conf"
addr=$(bound pki)
port=${addr##*:}
url=https://localhost:$port
C() { curl -s --cacert "$T/chain.pem" --resolve "localhost:$port:127.0.0.1" --max-time 20 "$@"; }
count() { "$P11PKI" ca list --ca issuing --json | jq length; }

# ---- EST: cacerts and csrattrs --------------------------------------------
code=$(C -o "$T/cacerts.b64" -w '%{http_code} %{content_type}' "$url/.well-known/est/cacerts")
[ "${code%% *}" = 200 ] || fail "cacerts: $code"
case "$code" in *application/pkcs7-mime*) ;; *) fail "cacerts content type: $code" ;; esac
base64 -d "$T/cacerts.b64" >"$T/cacerts.p7" || fail "cacerts is not base64"
run openssl pkcs7 -inform DER -in "$T/cacerts.p7" -print_certs -out "$T/cacerts.pem"
grep -c 'BEGIN CERTIFICATE' "$T/cacerts.pem" | grep -qx 2 || fail "cacerts does not hold issuing and root"
run openssl verify -CAfile "$T/root.crt" "$T/issuing.crt" >/dev/null
code=$(C -o /dev/null -w '%{http_code}' "$url/.well-known/est/csrattrs")
case "$code" in 200 | 204) ;; *) fail "csrattrs: $code" ;; esac
ok "EST cacerts (PKCS#7 certs-only, issuing + root) and csrattrs"

# ---- EST: simpleenroll with HTTP Basic --------------------------------------
csr_b64() { # KEYFILE SUBJECT [SAN] -> base64 DER PKCS#10 on stdout
	run openssl req -new -key "$1" -subj "$2" ${3:+-addext "subjectAltName=$3"} -outform DER -out "$T/req.der"
	base64 "$T/req.der"
}
run openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/web.key"
csr_b64 "$T/web.key" /CN=www.example.com DNS:www.example.com >"$T/web.csr.b64"
before=$(count)
code=$(C -o "$T/web.p7.b64" -w '%{http_code}' -u "web01:$secret" -H 'Content-Type: application/pkcs10' \
	--data-binary @"$T/web.csr.b64" "$url/.well-known/est/simpleenroll")
[ "$code" = 200 ] || fail "simpleenroll: $code $(cat "$T/web.p7.b64")"
base64 -d "$T/web.p7.b64" | openssl pkcs7 -inform DER -print_certs -out "$T/web.crt" || fail "simpleenroll answer is not a PKCS#7"
run openssl verify -CAfile "$T/root.crt" -untrusted "$T/issuing.crt" -purpose sslserver "$T/web.crt" >/dev/null
[ "$(count)" = $((before + 1)) ] || fail "the store did not gain the enrolled certificate"
"$P11PKI" ca list --ca issuing --json | jq -e '[.[] | select(.requester == "est:web01")] | length == 1' >/dev/null ||
	fail "the store does not say est:web01 asked: $("$P11PKI" ca list --ca issuing --json)"
ok "EST simpleenroll with Basic: a server certificate chaining to the root, in the store as est:web01"

# ---- EST: simplereenroll with the client certificate -----------------------
# the client profile through its label, then re-enrolled with that certificate
client_secret=$("$P11PKI" est user add alice --ca issuing --profile client | awk '/^secret/ { print $2 }')
run openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/alice.key"
csr_b64 "$T/alice.key" /CN=alice >"$T/alice.csr.b64"
code=$(C -o "$T/alice.p7.b64" -w '%{http_code}' -u "alice:$client_secret" -H 'Content-Type: application/pkcs10' \
	--data-binary @"$T/alice.csr.b64" "$url/.well-known/est/clients/simpleenroll")
[ "$code" = 200 ] || fail "simpleenroll (clients label): $code $(cat "$T/alice.p7.b64")"
base64 -d "$T/alice.p7.b64" | openssl pkcs7 -inform DER -print_certs -out "$T/alice.crt"
run openssl x509 -in "$T/alice.crt" -noout -ext extendedKeyUsage | grep -q 'TLS Web Client Authentication' ||
	fail "the clients label did not issue with the client profile"
run openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/alice2.key"
csr_b64 "$T/alice2.key" /CN=alice >"$T/alice2.csr.b64"
code=$(C -o "$T/alice2.p7.b64" -w '%{http_code}' --cert "$T/alice.crt" --key "$T/alice.key" \
	-H 'Content-Type: application/pkcs10' --data-binary @"$T/alice2.csr.b64" "$url/.well-known/est/clients/simplereenroll")
[ "$code" = 200 ] || fail "simplereenroll: $code $(cat "$T/alice2.p7.b64")"
base64 -d "$T/alice2.p7.b64" | openssl pkcs7 -inform DER -print_certs -out "$T/alice2.crt"
[ "$(openssl x509 -in "$T/alice2.crt" -noout -pubkey)" = "$(openssl pkey -in "$T/alice2.key" -pubout)" ] ||
	fail "the re-enrolled certificate is not for the new key"
# another subject with the same certificate is refused
csr_b64 "$T/alice2.key" /CN=mallory >"$T/mallory.csr.b64"
code=$(C -o "$T/out" -w '%{http_code}' --cert "$T/alice.crt" --key "$T/alice.key" \
	-H 'Content-Type: application/pkcs10' --data-binary @"$T/mallory.csr.b64" "$url/.well-known/est/clients/simplereenroll")
[ "$code" = 403 ] || fail "simplereenroll for another subject: $code, want 403"
# re-enrolment without a client certificate is refused
code=$(C -o "$T/out" -w '%{http_code}' -H 'Content-Type: application/pkcs10' --data-binary @"$T/alice2.csr.b64" \
	"$url/.well-known/est/clients/simplereenroll")
case "$code" in 401 | 403) ;; *) fail "simplereenroll without a certificate: $code" ;; esac
ok "EST label 'clients' (client profile) and simplereenroll with the client certificate; other subjects and no certificate refused"

# ---- EST: bad input --------------------------------------------------------
before=$(count)
est() { # EXPECTED_CODE WHAT CURL_ARGS... (a POST to simpleenroll)
	local want=$1 what=$2 code
	shift 2
	code=$(C -o "$T/out" -D "$T/headers" -w '%{http_code}' -H 'Content-Type: application/pkcs10' "$@" \
		"$url/.well-known/est/simpleenroll")
	[ "$code" = "$want" ] || fail "EST $what: $code, want $want: $(cat "$T/out")"
}
est 401 "without credentials" --data-binary @"$T/web.csr.b64"
grep -qi '^WWW-Authenticate: Basic' "$T/headers" || fail "401 without WWW-Authenticate: Basic"
est 401 "with a wrong secret" -u web01:wrong --data-binary @"$T/web.csr.b64"
est 401 "for an unknown user" -u nobody:x --data-binary @"$T/web.csr.b64"
est 400 "with malformed base64" -u "web01:$secret" --data-binary 'not base64 at all!'
est 400 "with base64 that is not a PKCS#10" -u "web01:$secret" --data-binary "$(printf 'hello' | base64)"
# a request whose signature does not verify: flip a byte of the signature
cp "$T/req.der" "$T/bad.der"
printf '\x55' | dd of="$T/bad.der" bs=1 seek=$(($(stat -c %s "$T/bad.der") - 3)) conv=notrunc 2>/dev/null
est 400 "with a bad signature" -u "web01:$secret" --data-binary "$(base64 "$T/bad.der")"
csr_b64 "$T/web.key" /CN=www.example.com >"$T/nosan.b64"
est 403 "refused by policy (server without a DNS name)" -u "web01:$secret" --data-binary @"$T/nosan.b64"
[ -s "$T/out" ] && [ "$(wc -l <"$T/out")" -le 1 ] || fail "the 403 has no one-line reason"
head -c 20000 /dev/zero | tr '\0' A >"$T/big"
est 413 "larger than max_body" -u "web01:$secret" --data-binary @"$T/big"
code=$(C -o /dev/null -w '%{http_code}' "$url/.well-known/est/nolabel/cacerts")
[ "$code" = 404 ] || fail "an unknown EST label: $code, want 404"
[ "$(count)" = "$before" ] || fail "a refused enrolment reached the store"
kill -0 "$SERVE_PID" || fail "p11pki serve died on bad EST input"
ok "EST bad input: 401 (+WWW-Authenticate), 400 (base64, DER, signature), 403 (policy), 413, 404; nothing stored"

# ---- OCSP -----------------------------------------------------------------
ocsp() { # -cert FILE | -serial N -> the status openssl ocsp reports (response verified)
	openssl ocsp -issuer "$T/issuing.crt" "$@" -reqout "$T/ocsp.req" >/dev/null 2>&1 || fail "openssl ocsp -reqout $*"
	C -o "$T/ocsp.resp" -H 'Content-Type: application/ocsp-request' --data-binary @"$T/ocsp.req" "$url/ocsp" ||
		fail "OCSP POST failed"
	# (-cert builds a request of its own: the nonce is compared below)
	openssl ocsp -issuer "$T/issuing.crt" "$@" -no_nonce -respin "$T/ocsp.resp" \
		-CAfile "$T/chain.pem" 2>"$T/ocsp.err" | sed -n 's/^[^:]*: //p' | head -1
	grep -q 'Response verify OK' "$T/ocsp.err" || fail "the OCSP response does not verify: $(cat "$T/ocsp.err")"
	[ "$(nonce_of -reqin "$T/ocsp.req" -req_text)" = "$(nonce_of -respin "$T/ocsp.resp" -resp_text -noverify)" ] ||
		fail "the OCSP answer does not echo the request's nonce"
}
nonce_of() { openssl ocsp "$@" 2>/dev/null | grep -A1 'OCSP Nonce' | tail -1 | tr -d ' '; }
[ "$(ocsp -cert "$T/web.crt")" = good ] || fail "OCSP for the enrolled certificate is not good"
serial=$(openssl x509 -in "$T/web.crt" -noout -serial | cut -d= -f2)
"$P11PKI" ca revoke --ca issuing --serial "$serial" --reason keyCompromise >/dev/null
[ "$(ocsp -cert "$T/web.crt")" = revoked ] || fail "OCSP right after ca revoke is not revoked"
openssl ocsp -respin "$T/ocsp.resp" -resp_text -noverify 2>/dev/null | grep -q 'Revocation Reason: keyCompromise' ||
	fail "the OCSP answer lacks the revocation reason"
# a serial of this issuer the store does not know: unknown
[ "$(ocsp -serial 0x123456789)" = unknown ] || fail "OCSP for an unknown serial is not unknown"
openssl ocsp -issuer "$T/issuing.crt" -cert "$T/web.crt" -reqout "$T/ocsp.req" >/dev/null 2>&1
# GET with the request in the path (RFC 6960 appendix A)
req_b64=$(base64 -w0 "$T/ocsp.req" | sed 's|+|%2B|g; s|/|%2F|g; s|=|%3D|g')
code=$(C -o "$T/ocsp.get" -D "$T/headers" -w '%{http_code}' "$url/ocsp/$req_b64")
[ "$code" = 200 ] || fail "OCSP GET: $code"
grep -qi '^Cache-Control: .*max-age' "$T/headers" || fail "OCSP GET answer without Cache-Control max-age"
# an issuer this server does not serve: unauthorized
run openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/other.key" -subj /CN=Other \
	-days 1 -out "$T/other.crt" >/dev/null 2>&1
openssl ocsp -issuer "$T/other.crt" -cert "$T/web.crt" -reqout "$T/other.req" >/dev/null 2>&1
C -o "$T/other.resp" -H 'Content-Type: application/ocsp-request' --data-binary @"$T/other.req" "$url/ocsp"
out=$(openssl ocsp -respin "$T/other.resp" -resp_text -noverify 2>&1 || true)
[[ $out == *"unauthorized"* ]] ||
	fail "OCSP for a foreign issuer is not unauthorized"
C -o "$T/bad.resp" -H 'Content-Type: application/ocsp-request' --data-binary 'garbage' "$url/ocsp"
out=$(openssl ocsp -respin "$T/bad.resp" -resp_text -noverify 2>&1 || true)
[[ ${out,,} == *"malformedrequest"* ]] ||
	fail "a garbage OCSP request is not answered malformedRequest"
kill -0 "$SERVE_PID" || fail "p11pki serve died on bad OCSP input"
ok "OCSP: good, revoked (keyCompromise) right after ca revoke, unknown; signature verified; GET cached; unauthorized; malformedRequest"

# ---- CRLs -----------------------------------------------------------------
code=$(C -o "$T/issuing.crl" -D "$T/headers" -w '%{http_code} %{content_type}' "$url/crl/issuing.crl")
[ "$code" = "200 application/pkix-crl" ] || fail "CRL download: $code"
run openssl crl -inform DER -in "$T/issuing.crl" -out "$T/issuing.crl.pem"
run openssl crl -in "$T/issuing.crl.pem" -noout -CAfile "$T/chain.pem" 2>&1 | grep -q 'verify OK' ||
	fail "the CRL signature does not verify"
out=$(openssl verify -crl_check -CAfile "$T/chain.pem" -CRLfile "$T/issuing.crl.pem" "$T/web.crt" 2>&1 || true)
case "$out" in *"certificate revoked"*) ;; *) fail "openssl verify -crl_check does not see the revocation: $out" ;; esac
run openssl verify -crl_check -CAfile "$T/chain.pem" -CRLfile "$T/issuing.crl.pem" "$T/alice2.crt" >/dev/null
[ -s "$T/crls/issuing.crl" ] || fail "no CRL written to crl_dir"
cmp -s "$T/crls/issuing.crl" "$T/issuing.crl" || fail "the CRL in crl_dir is not the one served"
# another revocation shows up in the next CRL
serial2=$(openssl x509 -in "$T/alice2.crt" -noout -serial | cut -d= -f2)
"$P11PKI" ca revoke --ca issuing --serial "$serial2" --reason superseded >/dev/null
C -o "$T/issuing2.crl" "$url/crl/issuing.crl"
openssl crl -inform DER -in "$T/issuing2.crl" -noout -text | grep -q "$serial2" || fail "the next CRL lacks the new revocation"
code=$(C -o /dev/null -w '%{http_code}' "$url/crl/root.crl")
[ "$code" = 404 ] || fail "a CRL this binding does not serve: $code, want 404"
ok "CRL: DER application/pkix-crl, signature verified, openssl verify -crl_check, crl_dir copy, next revocation included"

stop_serve
