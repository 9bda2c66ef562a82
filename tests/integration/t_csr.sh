# p11pki csr (use case 2): a PKCS#10 request signed by a key on the token.
# Both subject forms (OpenSSL slash form and RFC 4514) give the same name;
# IDN host names become their xn-- A-label in the CN and the SAN; wildcard
# and IP SANs; the signature matches the key (SHA-256 for RSA, SHA-384 for
# P-384); bad subjects and SANs are refused in one line, writing nothing.
. "$(dirname "$0")/lib.sh"
init_token web

RSA=$(p11 key gen --token web --type rsa:2048 --label www)
P384=$(p11 key gen --token web --type ec:p384 --label www384)
IDN='www.我的伺服器.com'
IDN_ASCII='www.xn--3pqw8o2pk43espw.com' # Python's idna codec gives the same

# subject_of FILE: the request's subject as RFC 2253 text (OpenSSL's view)
subject_of() { run openssl req -in "$1" -noout -subject -nameopt RFC2253 | sed 's/^subject=//'; }

# ---- both subject forms of use cases 1 and 2 give one subject --------------
declare -A SLASH=(
	[uc1]='/C=US/ST=GuangDong/L=GuangZhou/O=Your Company Name/OU=imdst.com/CN=test.imdst.com'
	[uc2]="/C=HK/ST=Hong Kong/L=Hong Kong/O=My Org/OU=IT/CN=$IDN"
)
declare -A RFC4514=(
	[uc1]='CN=test.imdst.com,OU=imdst.com,O=Your Company Name,L=GuangZhou,ST=GuangDong,C=US'
	[uc2]="CN=$IDN,OU=IT,O=My Org,L=Hong Kong,ST=Hong Kong,C=HK"
)
declare -A WANT=(
	[uc1]='CN=test.imdst.com,OU=imdst.com,O=Your Company Name,L=GuangZhou,ST=GuangDong,C=US'
	[uc2]="CN=$IDN_ASCII,OU=IT,O=My Org,L=Hong Kong,ST=Hong Kong,C=HK"
)
for uc in uc1 uc2; do
	p11 csr --key "$RSA" --subject "${SLASH[$uc]}" --san dns:test.imdst.com -o "$T/$uc-slash.csr"
	p11 csr --key "$RSA" --subject "${RFC4514[$uc]}" --san dns:test.imdst.com -o "$T/$uc-rfc.csr"
	a=$(subject_of "$T/$uc-slash.csr")
	b=$(subject_of "$T/$uc-rfc.csr")
	[ "$a" = "${WANT[$uc]}" ] || fail "$uc slash form: subject '$a', want '${WANT[$uc]}'"
	[ "$b" = "${WANT[$uc]}" ] || fail "$uc RFC 4514 form: subject '$b', want '${WANT[$uc]}'"
done
ok "slash and RFC 4514 subjects of use cases 1 and 2 give the same subject; the IDN CN is $IDN_ASCII"

# ---- SANs: IDN, wildcard (use case 2's *.myserver.com), IPv4, IPv6 --------
p11 csr --key "$RSA" --subject "CN=$IDN,O=My Org,C=HK" --san "dns:$IDN" --san 'dns:*.myserver.com' \
	--san ip:192.0.2.10 --san ip:2001:db8::1 -o "$T/san.csr"
text=$(run openssl req -in "$T/san.csr" -noout -text)
want="DNS:$IDN_ASCII, DNS:*.myserver.com, IP Address:192.0.2.10, IP Address:2001:DB8:0:0:0:0:0:1"
grep -qF "$want" <<<"$text" || fail "SANs: want '$want' in: $text"
grep -q '[^[:print:][:space:]]' <<<"$text" && fail "the request still holds non-ASCII bytes: $text"
ok "SANs in order: IDN as $IDN_ASCII, wildcard, IPv4, IPv6"

# ---- the signature verifies, with the key's digest, by the token key ------
for k in RSA P384; do
	f=$T/$k.csr
	p11 csr --key "${!k}" --subject "CN=$k.example.com" --san "dns:$k.example.com" -o "$f"
	out=$(run openssl req -in "$f" -noout -verify 2>&1)
	grep -q 'self-signature verify OK' <<<"$out" || fail "$k: openssl req -verify: $out"
	# PEM on stdout when -o is absent, for pasting into a CA's web form
	out=$(p11 csr --key "${!k}" --subject "CN=$k.example.com")
	[[ $out == "-----BEGIN CERTIFICATE REQUEST-----"* ]] || fail "$k: csr without -o does not print a PEM request"
	# the request carries the token key's public key
	cmp -s <(run openssl req -in "$f" -noout -pubkey) <(p11 key pub "${!k}") ||
		fail "$k: the request's public key is not the token key's"
done
alg() { run openssl req -in "$1" -noout -text | sed -n 's/^ *Signature Algorithm: //p' | head -1; }
[ "$(alg "$T/RSA.csr")" = sha256WithRSAEncryption ] || fail "RSA-2048: signed with $(alg "$T/RSA.csr")"
[ "$(alg "$T/P384.csr")" = ecdsa-with-SHA384 ] || fail "P-384: signed with $(alg "$T/P384.csr")"
ok "openssl req -verify OK; RSA-2048 -> sha256WithRSAEncryption, P-384 -> ecdsa-with-SHA384; the token key's public key"

# A request whose bytes were altered no longer verifies: the check above
# could fail.
# (the CN is rsa.example.com: host names are lowercased by the UTS#46 mapping)
openssl req -in "$T/RSA.csr" -outform DER | sed 's/rsa\.example/rsb.example/' >"$T/bad.der"
cmp -s "$T/bad.der" <(openssl req -in "$T/RSA.csr" -outform DER) && fail "the altered request is not altered"
# (OpenSSL 3.0's req -verify exits 0 either way: its message is what tells)
out=$(openssl req -inform DER -in "$T/bad.der" -noout -verify 2>&1 || true)
grep -q 'verify failure' <<<"$out" || fail "openssl req -verify accepts an altered request: $out"

ok "an altered request fails openssl req -verify"

# ---- refusals: one line, exit 2, and the -o file untouched -----------------
echo keep >"$T/out.csr"
refuse() { # SUBSTRING ARGS...
	local want=$1
	shift
	expect_fail "$want" p11 csr --key "$RSA" "$@" -o "$T/out.csr"
	[ "$RC" -eq 2 ] || fail "exit $RC, want 2: $*"
	[ "$(cat "$T/out.csr")" = keep ] || fail "the -o file changed after a refusal: $*"
	! compgen -G "$T/out.csr.*" >/dev/null || fail "a temporary file is left next to -o: $*"
}
refuse "unknown attribute 'XX'" --subject '/XX=foo/CN=a.example.com' --san dns:a.example.com
refuse "unknown attribute 'FOO'" --subject 'CN=a.example.com,FOO=bar' --san dns:a.example.com
refuse "w*.example.com" --subject CN=a.example.com --san 'dns:w*.example.com'
refuse "'dns:*'" --subject CN=a.example.com --san 'dns:*'
refuse "'*.com'" --subject 'CN=*.com' --san dns:a.example.com
refuse "'foo:bar'" --subject CN=a.example.com --san foo:bar
refuse "300.1.1.1" --subject CN=a.example.com --san ip:300.1.1.1
refuse "--subject" --san dns:a.example.com
ok "unknown attributes, w*/lone */*.com wildcards, foo:bar, a bad IP and a missing subject: refused in one line, -o untouched"
