# p11pki bindings show, the `netsh http show sslcert` of p11pki: for each
# binding its listener, SNI host, certificate subject, SHA-1 and SHA-256
# thumbprints (as openssl computes them), expiry, key URI, client-auth
# mode and backends, in text and JSON, whether the certificate comes from
# a file, a PKCS#11 URI or a thumbprint; no PIN is needed; an unreadable
# certificate is shown as such, with exit status 1.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/serve_lib.sh"
command -v jq >/dev/null || skip "jq is not installed"
init_token web

make_root root "Root"
A=$(token_key a ec:p256)
B=$(token_key b rsa:2048)
issue a "/CN=a.test" "$T/a.pub" root server "DNS:a.test"
issue b "/CN=b.test" "$T/b.pub" root server "DNS:b.test"
p11 cert import "$T/b.crt" --token web >/dev/null
fp() { openssl x509 -in "$1" -noout -fingerprint "-$2" | sed 's/.*=//'; }
expiry() { date -u -d "$(openssl x509 -in "$1" -noout -enddate | sed 's/.*=//')" '+%Y-%m-%d %H:%M:%S UTC'; }

cat >"$T/serve.conf" <<EOF
[ serve ]
bindings = a, b, c, d

[ a ]
listen = 0.0.0.0:8443
sni = a.test
cert = $T/a.crt
key = $A
client_auth = require
client_ca = $T/root.crt
mode = http
backends = 127.0.0.1:9001, 127.0.0.1:9002

[ b ]
listen = 127.0.0.1:9443
cert = sha1:$(fp "$T/b.crt" sha1)
key = $B

[ c ]
listen = [::1]:9443
cert = pkcs11:token=web;object=b;type=cert
key = $B

[ d ]
listen = 127.0.0.1:9444
cert = $T/missing.crt
key = $A
EOF

rc=0
"$P11PKI" bindings show -c "$T/serve.conf" --json >"$T/show.json" 2>"$T/show.err" || rc=$?
[ "$rc" = 1 ] || fail "bindings show with an unreadable certificate: exit $rc, want 1: $(cat "$T/show.err")"
jq . "$T/show.json" >/dev/null || fail "bindings show --json is not JSON: $(cat "$T/show.json")"
[ "$(jq length "$T/show.json")" = 4 ] || fail "bindings show lists $(jq length "$T/show.json") bindings"
jq -e --arg s1 "$(fp "$T/a.crt" sha1)" --arg s256 "$(fp "$T/a.crt" sha256)" --arg exp "$(expiry "$T/a.crt")" \
	--arg key "$A" '.[0] | .name == "a" and .listen == "0.0.0.0:8443" and .sni == "a.test" and
	.subject == "CN=a.test" and .issuer == "CN=Root" and .sha1 == $s1 and .sha256 == $s256 and
	.not_after == $exp and .expired == false and .key == $key and .client_auth == "require" and
	.mode == "http" and .backends == ["127.0.0.1:9001", "127.0.0.1:9002"]' "$T/show.json" >/dev/null ||
	fail "binding a: $(jq '.[0]' "$T/show.json")"
for i in 1 2; do
	jq -e --argjson i "$i" --arg s1 "$(fp "$T/b.crt" sha1)" --arg s256 "$(fp "$T/b.crt" sha256)" --arg key "$B" \
		'.[$i] | .subject == "CN=b.test" and .sha1 == $s1 and .sha256 == $s256 and .key == $key and
		.client_auth == "none" and .mode == "tcp" and .backends == [] and .sni == null' "$T/show.json" >/dev/null ||
		fail "binding $i (certificate on the token): $(jq ".[$i]" "$T/show.json")"
done
jq -e '.[2].listen == "[::1]:9443"' "$T/show.json" >/dev/null || fail "IPv6 listener: $(jq '.[2].listen' "$T/show.json")"
jq -e '.[3] | .subject == null and (.error | contains("cannot read '"$T"'/missing.crt"))' "$T/show.json" >/dev/null ||
	fail "binding d (missing file): $(jq '.[3]' "$T/show.json")"
ok "bindings show --json: thumbprints, subject, expiry, key, client auth, backends; by file, sha1 thumbprint and URI"

out=$("$P11PKI" bindings show -c "$T/serve.conf" 2>&1) || true
for want in "Binding                      : a" "Listener (IP:port)           : 0.0.0.0:8443" \
	"SNI host                     : a.test" "Certificate subject          : CN=a.test" \
	"Certificate hash (SHA-1)     : $(fp "$T/a.crt" sha1)" "Certificate hash (SHA-256)   : $(fp "$T/a.crt" sha256)" \
	"Expires                      : $(expiry "$T/a.crt")" "Key (stays on the token)     : $A" \
	"Client certificates          : require (CA: $T/root.crt)" "Backends                     : 127.0.0.1:9001, 127.0.0.1:9002" \
	"Certificate                  : cannot be read"; do
	grep -qF "$want" <<<"$out" || fail "bindings show text lacks '$want': $out"
done
ok "bindings show (text) lists the same, netsh style"
