# p11pki serve, client certificates and SNI, with curl and s_client as
# clients and an HTTP backend that echoes the request it received:
#   none      no certificate asked; spoofed X-Client-* headers are stripped
#   optional  every outcome reaches the backend as X-Client-Verify
#             (SUCCESS / NONE / FAILED:reason) with subject, serial and
#             the URL-encoded certificate
#   require   a missing, untrusted, expired, revoked (CRL) or not-allowed
#             certificate fails the handshake; the metrics count each reason
#   SNI       one listener, two bindings: the host name picks the
#             certificate; an unknown or absent one gets the default.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/serve_lib.sh"
init_token web

make_root root "Server Root"
WWW=$(token_key www ec:p256)
SHOP=$(token_key shop ec:p384)
issue www "/CN=www.test" "$T/www.pub" root server "DNS:www.test"
issue shop "/CN=shop.test" "$T/shop.pub" root server "DNS:shop.test"

# ---- client CA with an `openssl ca` database (dates, revocation, CRL) ------
make_root clientca "Client CA"
make_root other "Other CA"
mkdir -p "$T/cadb"
: >"$T/cadb/index.txt"
echo 1000 >"$T/cadb/serial"
echo 1000 >"$T/cadb/crlnumber"
printf '[ca]\ndefault_ca=d\n[d]\ndatabase=%s/index.txt\nnew_certs_dir=%s\nserial=%s/serial\ncrlnumber=%s/crlnumber\ndefault_md=sha256\ndefault_days=365\ndefault_crl_days=30\npolicy=p\nunique_subject=no\n[p]\ncommonName=supplied\norganizationalUnitName=optional\n' \
	"$T/cadb" "$T/cadb" "$T/cadb" "$T/cadb" >"$T/cadb/ca.cnf"
# client NAME SUBJECT [CA [START END]]
client() {
	local ca=${3:-clientca}
	run openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/$1.key" -subj "$2" \
		-out "$T/$1.csr" >/dev/null 2>&1
	run openssl ca -batch -config "$T/cadb/ca.cnf" -cert "$T/$ca.crt" -keyfile "$T/$ca.key" -in "$T/$1.csr" \
		-out "$T/$1.crt" -extfile "$T/ext.cnf" -extensions client -notext ${4:+-startdate "$4" -enddate "$5"} \
		>/dev/null 2>&1
}
client alice "/OU=eng/CN=alice"
client bob "/OU=eng/CN=bob"
client carol "/OU=eng/CN=carol"
client dave "/OU=eng/CN=dave" clientca 20200101000000Z 20210101000000Z
client eve "/OU=eng/CN=eve" other
run openssl ca -batch -config "$T/cadb/ca.cnf" -cert "$T/clientca.crt" -keyfile "$T/clientca.key" \
	-revoke "$T/carol.crt" >/dev/null 2>&1
run openssl ca -batch -config "$T/cadb/ca.cnf" -cert "$T/clientca.crt" -keyfile "$T/clientca.key" -gencrl \
	-out "$T/client.crl" >/dev/null 2>&1
ok "client certificates: alice (allowed), bob (not allowed), carol (revoked), dave (expired), eve (other CA)"

start_backend http H
BACKEND=127.0.0.1:$BACKEND_PORT
auth() { # the client-auth settings of a binding
	printf 'client_auth = %s\nclient_ca = %s\ncrl = %s\nallow_cn = alice, carol, dave, eve\nallow_ou = eng\n' \
		"$1" "$T/clientca.crt" "$T/client.crl"
}
cat >"$T/serve.conf" <<EOF
[ serve ]
bindings = none, opt, req, www, shop
bound_file = $T/bound
admin = 127.0.0.1:0

[ none ]
listen = 127.0.0.1:0
cert = $T/www.crt
key = $WWW
mode = http
backends = $BACKEND

[ opt ]
listen = 127.0.0.2:0
cert = $T/www.crt
key = $WWW
mode = http
backends = $BACKEND
$(auth optional)

[ req ]
listen = 127.0.0.3:0
cert = $T/www.crt
key = $WWW
mode = http
backends = $BACKEND
$(auth require)

[ www ]
listen = 127.0.0.4:0
sni = www.test
cert = $T/www.crt
key = $WWW
mode = http
backends = $BACKEND

[ shop ]
listen = 127.0.0.4:0
sni = shop.test
cert = $T/shop.crt
key = $SHOP
mode = http
backends = $BACKEND
client_auth = require
client_ca = $T/clientca.crt
session_tickets = off
EOF
start_serve "$T/serve.conf"

# get BINDING [curl options...]: GET / through the binding as www.test
get() {
	local addr
	addr=$(bound "$1")
	shift
	curl -sS --max-time 10 --cacert "$T/root.crt" --resolve "www.test:${addr##*:}:${addr%:*}" \
		"$@" "https://www.test:${addr##*:}/hello" | tr -d '\r'
}
header() { grep -i "^$1:" | sed 's/^[^:]*: //'; }

# ---- none: what the backend hears, spoofing stripped -----------------------
out=$(get none -H "X-Client-Verify: SUCCESS" -H "X-Client-Subject: CN=admin" -H "x_client_cert: forged" \
	-H "X-Client-Serial: 01") || fail "GET through 'none': $out"
grep -qx "backend H" <<<"$out" || fail "no answer from the backend: $out"
[ "$(header X-Client-Verify <<<"$out")" = NONE ] || fail "X-Client-Verify is not exactly NONE: $out"
grep -qi "admin\|forged\|^X-Client-Serial\|^X-Client-Subject\|^x.client.cert" <<<"$out" &&
	fail "spoofed X-Client-* headers reached the backend: $out"
grep -q "^X-Forwarded-For: 127.0.0.1$" <<<"$out" || fail "no X-Forwarded-For: $out"
ok "client_auth none: X-Client-Verify: NONE; spoofed X-Client-* (also x_client_cert) stripped"

addr=$(bound none)
accepted=$(grep -c accepted "$T/backend.H.log")
code=$(curl -sS --max-time 10 --cacert "$T/root.crt" --resolve "www.test:${addr##*:}:${addr%:*}" \
	-o "$T/healthz" -w '%{http_code}' "https://www.test:${addr##*:}/healthz")
[ "$code" = 200 ] && [ "$(cat "$T/healthz")" = ok ] || fail "/healthz: $code $(cat "$T/healthz")"
[ "$(grep -c accepted "$T/backend.H.log")" = "$accepted" ] || fail "/healthz went to the backend"
ok "/healthz is answered by the listener itself"

# ---- optional ----------------------------------------------------------------
out=$(get opt) || fail "optional without a certificate: $out"
[ "$(header X-Client-Verify <<<"$out")" = NONE ] || fail "optional, no certificate: $out"
out=$(get opt --cert "$T/alice.crt" --key "$T/alice.key") || fail "optional with alice: $out"
[ "$(header X-Client-Verify <<<"$out")" = SUCCESS ] || fail "optional, alice: $out"
subject=$(openssl x509 -in "$T/alice.crt" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')
[ "$(header X-Client-Subject <<<"$out")" = "$subject" ] || fail "X-Client-Subject is not $subject: $out"
serial=$(openssl x509 -in "$T/alice.crt" -noout -serial | sed 's/.*=//')
[ "$(header X-Client-Serial <<<"$out" | tr a-f A-F)" = "$serial" ] || fail "X-Client-Serial is not $serial: $out"
header X-Client-Cert <<<"$out" | python3 -c 'import sys, urllib.parse; sys.stdout.write(urllib.parse.unquote(sys.stdin.read().strip()))' >"$T/got.pem"
cmp <(openssl x509 -in "$T/got.pem" -outform DER) <(openssl x509 -in "$T/alice.crt" -outform DER) ||
	fail "X-Client-Cert does not decode to alice's certificate: $(header X-Client-Cert <<<"$out")"
header X-Client-Cert <<<"$out" | grep -q '%0A' || fail "X-Client-Cert newlines are not %0A"
for who in bob:not-allowed carol:revoked dave:expired eve:untrusted; do
	out=$(get opt --cert "$T/${who%%:*}.crt" --key "$T/${who%%:*}.key") || fail "optional with ${who%%:*}: $out"
	[ "$(header X-Client-Verify <<<"$out")" = "FAILED:${who#*:}" ] ||
		fail "optional, ${who%%:*}: want FAILED:${who#*:}: $(header X-Client-Verify <<<"$out")"
done
for r in not-allowed revoked expired untrusted; do
	[ "$(metric "p11pki_client_auth_failures_total{binding=\"opt\",reason=\"$r\"}")" = 1 ] ||
		fail "metrics: optional-mode $r failures: $(metric "p11pki_client_auth_failures_total{binding=\"opt\",reason=\"$r\"}")"
done
ok "client_auth optional: NONE, SUCCESS (subject, serial, URL-encoded PEM), FAILED:not-allowed/revoked/expired/untrusted"

# ---- require -----------------------------------------------------------------
out=$(get req --cert "$T/alice.crt" --key "$T/alice.key") || fail "require with alice: $out"
[ "$(header X-Client-Verify <<<"$out")" = SUCCESS ] || fail "require, alice: $out"
out=$(get req --tls-max 1.2 --cert "$T/alice.crt" --key "$T/alice.key") || fail "require with alice, TLS 1.2: $out"
for who in none bob carol dave eve; do
	opts=()
	[ "$who" = none ] || opts=(--cert "$T/$who.crt" --key "$T/$who.key")
	out=$(get req "${opts[@]}" 2>&1) && fail "require let $who through: $out"
	grep -q "backend H" <<<"$out" && fail "require: the backend answered $who: $out"
	out=$(get req --tls-max 1.2 "${opts[@]}" 2>&1) && fail "require let $who through over TLS 1.2: $out"
done
for r in no-certificate not-allowed revoked expired untrusted; do
	n=$(metric "p11pki_client_auth_failures_total{binding=\"req\",reason=\"$r\"}")
	[ "$n" = 2 ] || fail "metrics: $r failures of 'req': ${n:-none}, want 2"
done
[ "$(metric 'p11pki_handshakes_total{binding="req",result="client_auth"}')" = 10 ] ||
	fail "metrics: client_auth handshake failures of 'req': $(metric 'p11pki_handshakes_total{binding="req",result="client_auth"}')"
ok "client_auth require: alice passes (TLS 1.3, 1.2); no certificate, bob, carol, dave, eve fail the handshake; metrics by reason"

# ---- SNI ----------------------------------------------------------------------
SNI=$(bound www)
[ "$(bound shop)" = "$SNI" ] || fail "www and shop do not share their listener: $(cat "$T/bound")"
peer() { tls "$SNI" -CAfile "$T/root.crt" "$@" | sed -n 's/^Peer certificate: //p'; }
[ "$(peer -servername shop.test -cert "$T/alice.crt" -key "$T/alice.key")" = "CN = shop.test" ] || fail "SNI shop.test: $(peer -servername shop.test)"
[ "$(peer -servername www.test)" = "CN = www.test" ] || fail "SNI www.test: $(peer -servername www.test)"
[ "$(peer -servername other.test)" = "CN = www.test" ] || fail "unknown SNI: $(peer -servername other.test)"
[ "$(peer -noservername)" = "CN = www.test" ] || fail "no SNI: $(peer -noservername)"
code=$(curl -sS --max-time 10 --cacert "$T/root.crt" --resolve "shop.test:${SNI##*:}:${SNI%:*}" -o /dev/null \
	-w '%{http_code}' --cert "$T/alice.crt" --key "$T/alice.key" "https://shop.test:${SNI##*:}/")
[ "$code" = 200 ] || fail "curl to shop.test with its host name checked: $code"
out=$(curl -sS --max-time 10 --cacert "$T/root.crt" --resolve "shop.test:${SNI##*:}:${SNI%:*}" \
	"https://shop.test:${SNI##*:}/" 2>&1) && fail "shop (require) let a client without certificate through: $out"
out=$(get www) || fail "www through SNI: $out"
# session_tickets is per binding behind one listener: shop keeps its
# sessions (a ticket that names one), www seals them in tickets
sess() { # HOST FILE [options]
	local h=$1 f=$2
	shift 2
	printf 'ping\n' | timeout 10 openssl s_client -connect "$SNI" -tls1_3 -CAfile "$T/root.crt" -servername "$h" \
		-ign_eof -sess_out "$f" "$@" >/dev/null 2>&1 || fail "TLS 1.3 to $h for a session"
}
sess shop.test "$T/shop.sess" -cert "$T/alice.crt" -key "$T/alice.key"
sess www.test "$T/www.sess"
[ "$(ticket_bytes "$T/shop.sess")" -gt 0 ] && [ "$(ticket_bytes "$T/shop.sess")" -le 64 ] ||
	fail "shop (session_tickets = off) behind SNI: a ticket of $(ticket_bytes "$T/shop.sess") bytes"
[ "$(ticket_bytes "$T/www.sess")" -gt 100 ] || fail "www behind SNI: a ticket of $(ticket_bytes "$T/www.sess") bytes"
ok "SNI: shop.test and www.test get their own certificate, client-auth and session-ticket settings; unknown or no name gets the default"
stop_serve
