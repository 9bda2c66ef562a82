# p11pki ca (use case 4): a root (P-384) and an issuing CA (P-256) whose
# keys live on a "ca" token, plus an RSA-3072 pair; server, client, OCSP
# and sub-CA certificates for keys on a "web" token or in software; chains
# accepted by OpenSSL (-x509_strict), GnuTLS certtool and NSS certutil for
# their usage; the extensions each profile gives; revocation and v2 CRLs;
# ca list / ca cert; and every refusal, each leaving no row in the store
# and no output file.
. "$(dirname "$0")/lib.sh"
command -v certtool >/dev/null || skip "certtool (gnutls-bin) is not installed"
command -v certutil >/dev/null || skip "certutil (libnss3-tools) is not installed"
init_token web
init_token ca

pk() { run "$P11PKI" "$@"; } # commands that do not use a CA key take no PIN
# The URLs go into what the issuing CA signs; default_crl_days is checked
# on the CRL.
cat >"$P11PKI_HOME/p11pki.conf" <<'EOF'
[ ca_issuing ]
default_crl_days = 10
crl_url = http://pki.example.com/issuing.crl
ocsp_url = http://ocsp.example.com/
issuers_url = http://pki.example.com/issuing.crt
EOF

# ---- helpers -------------------------------------------------------------
x() { local f=$1; shift; run openssl x509 -in "$f" -noout "$@"; }
# ext FILE NAME: the text of one extension, "critical" on its first line
ext() { x "$1" -ext "$2"; }
days_of() {
	local s e
	s=$(date -d "$(x "$1" -startdate | cut -d= -f2)" +%s)
	e=$(date -d "$(x "$1" -enddate | cut -d= -f2)" +%s)
	echo $(((e - s) / 86400))
}
serial_of() { x "$1" -serial | cut -d= -f2; }
ski_of() { ext "$1" subjectKeyIdentifier | sed -n 2p | tr -d ' '; }
aki_of() { ext "$1" authorityKeyIdentifier | sed -n 2p | tr -d ' ' | sed 's/^keyid://'; }
has() { # FILE EXTENSION TEXT...: each TEXT is a line of the extension
	local f=$1 e=$2 text t
	shift 2
	text=$(ext "$f" "$e")
	for t in "$@"; do
		grep -qxF -- "$t" <<<"$(sed 's/^ *//;s/ *$//' <<<"$text")" || fail "${f##*/}: $e lacks '$t': $text"
	done
}
rows() { pk ca list --ca "$1" --json | jq length; }
# token_csr NAME TYPE ARGS...: a key on the web token and a CSR for it
token_csr() {
	local name=$1 type=$2 uri
	shift 2
	uri=$(p11 key gen --token web --type "$type" --label "$name")
	p11 csr --key "$uri" "$@" -o "$T/$name.csr"
}
# soft_csr NAME OPENSSL-REQ-ARGS...: a CSR for a software key (sw.key)
run openssl genrsa -out "$T/sw.key" 2048 >/dev/null 2>&1
soft_csr() { local n=$1; shift; run openssl req -new -key "$T/sw.key" -out "$T/$n.csr" "$@" >/dev/null 2>&1; }

# validate LEAF ROOT ISSUING USAGE(server|client): the three validators
validate() {
	local leaf=$1 root=$2 iss=$3 usage=$4 out db purpose oid nss
	case $usage in
	server) purpose=sslserver oid=1.3.6.1.5.5.7.3.1 nss=V ;;
	client) purpose=sslclient oid=1.3.6.1.5.5.7.3.2 nss=C ;;
	esac
	out=$(run openssl verify -x509_strict -purpose "$purpose" -CAfile "$root" -untrusted "$iss" "$leaf" 2>&1) ||
		fail "openssl verify -x509_strict -purpose $purpose ${leaf##*/}: $out"
	# GnuTLS: the whole chain in one file (leaf, issuing, root), and the
	# leaf against the root as the only trust anchor for the purpose.
	# (certtool 3.7 refuses --verify-chain with --load-ca-certificate.)
	cat "$leaf" "$iss" "$root" >"$T/gnutls.pem"
	out=$(run certtool --verify-chain --infile "$T/gnutls.pem" 2>&1) ||
		fail "certtool --verify-chain ${leaf##*/}: $out"
	grep -q 'Chain verification output: Verified' <<<"$out" || fail "certtool --verify-chain ${leaf##*/}: $out"
	cat "$leaf" "$iss" >"$T/gnutls.pem"
	out=$(run certtool --verify --load-ca-certificate "$root" --verify-purpose "$oid" --infile "$T/gnutls.pem" 2>&1) ||
		fail "certtool --verify --verify-purpose $oid ${leaf##*/}: $out"
	# NSS: a fresh database trusting the root for TLS only: C for server
	# certificates, T for client ones (both, so the cross-usage check
	# below fails on the EKU, not on trust)
	db=$(mktemp -d "$T/nss.XXXXXX")
	run certutil -N --empty-password -d "sql:$db" >/dev/null
	run certutil -A -d "sql:$db" -n root -t 'CT,,' -i "$root" >/dev/null
	run certutil -A -d "sql:$db" -n issuing -t ',,' -i "$iss" >/dev/null
	run certutil -A -d "sql:$db" -n leaf -t ',,' -i "$leaf" >/dev/null
	out=$(run certutil -V -d "sql:$db" -n leaf -u "$nss" 2>&1) || fail "certutil -V -u $nss ${leaf##*/}: $out"
	grep -q 'certificate is valid' <<<"$out" || fail "certutil -V -u $nss ${leaf##*/}: $out"
	# the other usage is refused by all three: the checks above can fail
	case $usage in server) purpose=sslclient oid=1.3.6.1.5.5.7.3.2 nss=C ;; client) purpose=sslserver oid=1.3.6.1.5.5.7.3.1 nss=V ;; esac
	run openssl verify -x509_strict -purpose "$purpose" -CAfile "$root" -untrusted "$iss" "$leaf" >/dev/null 2>&1 &&
		fail "openssl accepts ${leaf##*/} for $purpose"
	run certtool --verify --load-ca-certificate "$root" --verify-purpose "$oid" --infile "$T/gnutls.pem" >/dev/null 2>&1 &&
		fail "certtool accepts ${leaf##*/} for $oid"
	run certutil -V -d "sql:$db" -n leaf -u "$nss" >/dev/null 2>&1 && fail "certutil accepts ${leaf##*/} for -u $nss"
	return 0
}

# ---- CA creation -----------------------------------------------------------
out=$(p11 ca init --name root --token ca --type ec:p384 --days 3650 \
	--subject '/C=HK/ST=Hong Kong/O=Example/OU=PKI/CN=Example Root CA')
[ "$out" = "created CA 'root' (self-signed root)" ] || fail "ca init root: $out"
p11 ca init --name issuing --parent root --token ca --type ec:p256 \
	--subject 'CN=Example Issuing CA,OU=PKI,O=Example,ST=Hong Kong,C=HK' -o "$T/issuing-init.crt" >/dev/null
pk ca cert --ca root -o "$T/root.crt"
pk ca cert --ca issuing -o "$T/issuing.crt"
cmp -s "$T/issuing.crt" "$T/issuing-init.crt" || fail "ca init -o and ca cert differ"

has "$T/root.crt" basicConstraints 'X509v3 Basic Constraints: critical' 'CA:TRUE'
has "$T/root.crt" keyUsage 'X509v3 Key Usage: critical' 'Digital Signature, Certificate Sign, CRL Sign'
has "$T/issuing.crt" basicConstraints 'X509v3 Basic Constraints: critical' 'CA:TRUE, pathlen:0'
has "$T/issuing.crt" keyUsage 'X509v3 Key Usage: critical' 'Digital Signature, Certificate Sign, CRL Sign'
[ "$(days_of "$T/root.crt")" -eq 3650 ] || fail "root: $(days_of "$T/root.crt") days, want 3650"
x "$T/root.crt" -text | grep -q 'NIST CURVE: P-384' || fail "root key is not P-384"
x "$T/issuing.crt" -text | grep -q 'NIST CURVE: P-256' || fail "issuing key is not P-256"
x "$T/issuing.crt" -text | grep -q 'Signature Algorithm: ecdsa-with-SHA384' || fail "root did not sign with SHA-384"
[ "$(aki_of "$T/issuing.crt")" = "$(ski_of "$T/root.crt")" ] || fail "issuing AKI is not the root SKI"
[ "$(aki_of "$T/root.crt")" = "$(ski_of "$T/root.crt")" ] || fail "root AKI is not its own SKI"
# the CA certificates sit on the token next to their keys
certs=$(p11 cert list --token ca --json)
for n in root issuing; do
	jq -e --arg n "$n" '[.[] | select(.label == $n and .ca == true)] | length == 1' <<<"$certs" >/dev/null ||
		fail "no CA certificate '$n' on the ca token: $certs"
done
ok "root (P-384, 3650 days) and issuing (P-256, pathlen 0) CAs: CA:TRUE and keyUsage critical, SKI/AKI linked, on the token"

# ---- a server certificate for a token key, with IDN and wildcard names ----
token_csr www rsa:2048 --subject 'CN=www.example.com,O=Example,C=HK' --san dns:www.example.com \
	--san 'dns:*.example.com' --san 'dns:www.我的伺服器.com' --san ip:192.0.2.10
p11 ca sign --ca issuing --profile server --csr "$T/www.csr" -o "$T/www.crt"
validate "$T/www.crt" "$T/root.crt" "$T/issuing.crt" server
# the names, as a browser checks them
for h in www.example.com shop.example.com www.xn--3pqw8o2pk43espw.com; do
	run openssl verify -x509_strict -purpose sslserver -verify_hostname "$h" -CAfile "$T/root.crt" \
		-untrusted "$T/issuing.crt" "$T/www.crt" >/dev/null 2>&1 || fail "www.crt does not cover $h"
done
run openssl verify -purpose sslserver -verify_hostname a.b.example.com -CAfile "$T/root.crt" \
	-untrusted "$T/issuing.crt" "$T/www.crt" >/dev/null 2>&1 && fail "*.example.com covers a.b.example.com"
ok "server certificate: OpenSSL -x509_strict, GnuTLS, NSS -u V accept it (not as a client); IDN and wildcard names match"

serial=$(serial_of "$T/www.crt")
[[ $serial =~ ^[0-7][0-9A-F]{31}$ ]] || fail "serial $serial is not a positive 16-byte number"
has "$T/www.crt" basicConstraints 'X509v3 Basic Constraints: critical' 'CA:FALSE'
has "$T/www.crt" keyUsage 'X509v3 Key Usage: critical' 'Digital Signature, Key Encipherment'
has "$T/www.crt" extendedKeyUsage 'TLS Web Server Authentication'
has "$T/www.crt" subjectAltName 'DNS:www.example.com, DNS:*.example.com, DNS:www.xn--3pqw8o2pk43espw.com, IP Address:192.0.2.10'
has "$T/www.crt" crlDistributionPoints 'URI:http://pki.example.com/issuing.crl'
has "$T/www.crt" authorityInfoAccess 'OCSP - URI:http://ocsp.example.com/' 'CA Issuers - URI:http://pki.example.com/issuing.crt'
[ -n "$(ski_of "$T/www.crt")" ] || fail "www.crt has no SKI"
[ "$(aki_of "$T/www.crt")" = "$(ski_of "$T/issuing.crt")" ] || fail "www.crt AKI is not the issuing SKI"
[ "$(days_of "$T/www.crt")" -eq 365 ] || fail "server default: $(days_of "$T/www.crt") days, want 365"
x "$T/www.crt" -text | grep -q 'Signature Algorithm: ecdsa-with-SHA256' || fail "issuing did not sign with SHA-256"
cmp -s <(x "$T/www.crt" -pubkey) <(p11 key pub pkcs11:token=web\;object=www) || fail "www.crt is not for the token key"
ok "server extensions: serial $serial, CA:FALSE, KU, serverAuth, SANs, CRL DP, AIA (OCSP + caIssuers), SKI/AKI, 365 days"

# ---- a client certificate (mutual TLS) -------------------------------------
token_csr alice ec:p256 --subject 'CN=alice,O=Example,C=HK'
p11 ca sign --ca issuing --profile client --csr "$T/alice.csr" --days 730 -o "$T/alice.crt"
validate "$T/alice.crt" "$T/root.crt" "$T/issuing.crt" client
has "$T/alice.crt" extendedKeyUsage 'TLS Web Client Authentication'
has "$T/alice.crt" keyUsage 'X509v3 Key Usage: critical' 'Digital Signature' # EC: no keyEncipherment
[ "$(days_of "$T/alice.crt")" -eq 730 ] || fail "client --days 730: $(days_of "$T/alice.crt") days"
ok "client certificate: all three validators accept it for client auth (not server), EKU clientAuth, --days 730"

# ---- OCSP responder and sub-CA profiles --------------------------------
soft_csr ocsp -subj /CN=ocsp.example.com
p11 ca sign --ca issuing --profile ocsp --csr "$T/ocsp.csr" -o "$T/ocsp.crt"
has "$T/ocsp.crt" extendedKeyUsage 'OCSP Signing'
has "$T/ocsp.crt" keyUsage 'X509v3 Key Usage: critical' 'Digital Signature'
x "$T/ocsp.crt" -text | grep -q 'OCSP No Check' || fail "ocsp.crt lacks id-pkix-ocsp-nocheck"
[ "$(days_of "$T/ocsp.crt")" -eq 30 ] || fail "ocsp default: $(days_of "$T/ocsp.crt") days, want 30"
soft_csr sub -subj '/CN=Example Sub CA'
p11 ca sign --ca root --profile subca --csr "$T/sub.csr" -o "$T/sub.crt"
has "$T/sub.crt" basicConstraints 'X509v3 Basic Constraints: critical' 'CA:TRUE, pathlen:0'
run openssl verify -x509_strict -CAfile "$T/root.crt" "$T/sub.crt" >/dev/null || fail "sub.crt does not verify"
ok "ocsp: OCSP Signing + ocsp nocheck, 30 days; subca from root: CA:TRUE pathlen 0"

# ---- revocation and CRLs ---------------------------------------------------
p11 ca crl --ca issuing -o "$T/crl1.pem"
out=$(pk ca revoke --ca issuing --serial "$serial" --reason keyCompromise)
[[ $out == "revoked $serial (keyCompromise)"* ]] || fail "ca revoke: $out"
p11 ca crl --ca issuing -o "$T/crl2.pem"
crl() { run openssl crl -in "$1" -noout "${@:2}"; }
num() { crl "$1" -crlnumber | sed 's/^crlNumber=0x//'; }
[ $((16#$(num "$T/crl2.pem"))) -eq $((16#$(num "$T/crl1.pem") + 1)) ] ||
	fail "CRL numbers $(num "$T/crl1.pem") then $(num "$T/crl2.pem")"
text=$(crl "$T/crl2.pem" -text)
for want in 'Version 2 (0x1)' "Serial Number: $serial" 'Key Compromise' "$(ext "$T/issuing.crt" subjectKeyIdentifier | sed -n '2s/^ *//p')"; do
	grep -qF "$want" <<<"$text" || fail "CRL lacks '$want': $text"
done
grep -q "Serial Number: $(serial_of "$T/alice.crt")" <<<"$text" && fail "the CRL lists a certificate never revoked"
last=$(date -d "$(crl "$T/crl2.pem" -lastupdate | cut -d= -f2)" +%s)
next=$(date -d "$(crl "$T/crl2.pem" -nextupdate | cut -d= -f2)" +%s)
[ $(((next - last) / 86400)) -eq 10 ] || fail "nextUpdate is $(((next - last) / 86400)) days out, want default_crl_days 10"
out=$(run openssl crl -in "$T/crl2.pem" -CAfile "$T/issuing.crt" -noout 2>&1)
[[ $out == *"verify OK"* ]] || fail "the CRL signature does not verify: $out"

out=$(run openssl verify -crl_check -CAfile "$T/root.crt" -untrusted "$T/issuing.crt" -CRLfile "$T/crl2.pem" "$T/www.crt" 2>&1) &&
	fail "openssl verify -crl_check accepts the revoked certificate: $out"
grep -q 'certificate revoked' <<<"$out" || fail "openssl verify -crl_check: $out"
run openssl verify -crl_check -CAfile "$T/root.crt" -untrusted "$T/issuing.crt" -CRLfile "$T/crl2.pem" "$T/alice.crt" >/dev/null ||
	fail "openssl verify -crl_check rejects a certificate that was not revoked"
ok "revoke + crl: v2 CRL, number +1, AKI, keyCompromise, nextUpdate 10 days; -crl_check says 'certificate revoked' (only for it)"

# ---- ca list, ca cert --------------------------------------------------------
json=$(pk ca list --ca issuing --json)
[ "$(jq length <<<"$json")" -eq 3 ] || fail "ca list --json: want 3 (www, alice, ocsp): $json"
[ "$(jq '[.[].serial] | unique | length' <<<"$json")" -eq 3 ] || fail "serials repeat: $json"
jq -e --arg s "$serial" '.[] | select(.serial == $s) | .status == "revoked" and .reason == "keyCompromise" and .profile == "server"' \
	<<<"$json" >/dev/null || fail "ca list --json: www is not revoked/keyCompromise: $json"
rev=$(pk ca list --ca issuing --revoked --json)
[ "$(jq -r 'map(.serial) | join(" ")' <<<"$rev")" = "$serial" ] || fail "ca list --revoked: $rev"
text=$(pk ca list --ca issuing)
grep -q "^$serial  revoked server" <<<"$text" && grep -q "^$(serial_of "$T/alice.crt")  valid   client" <<<"$text" ||
	fail "ca list text: $text"
# --expiring: valid ones ending within the window (alice 730 days, ocsp 30)
[ "$(pk ca list --ca issuing --expiring 400d --json | jq -r 'map(.profile) | join(" ")')" = ocsp ] ||
	fail "--expiring 400d: $(pk ca list --ca issuing --expiring 400d --json)"
[ "$(pk ca list --ca issuing --expiring 1d --json | jq length)" -eq 0 ] || fail "--expiring 1d is not empty"
[ "$(pk ca list --ca root --json | jq -r 'map(.profile) | join(" ")')" = "subca subca" ] ||
	fail "root's list lacks the issuing CA and sub CA: $(pk ca list --ca root --json)"
pk ca cert --ca issuing --chain -o "$T/chain.pem"
cmp -s "$T/chain.pem" <(cat "$T/issuing.crt" "$T/root.crt") || fail "ca cert --chain is not issuing + root"
[ "$(grep -c 'BEGIN CERTIFICATE' < <(pk ca cert --ca root --chain))" -eq 1 ] || fail "root --chain is not one certificate"
ok "ca list (text, --json, --revoked, --expiring 400d/1d), ca cert --chain"

# revoking with the serial as openssl prints it with colons, lowercase
a=$(serial_of "$T/alice.crt")
pk ca revoke --ca issuing --serial "$(tr 'A-F' 'a-f' <<<"$a" | sed 's/../&:/g;s/:$//')" --reason superseded >/dev/null
pk ca list --ca issuing --revoked --json | jq -e --arg s "$a" 'any(.serial == $s and .reason == "superseded")' >/dev/null ||
	fail "revoking aa:bb:.. did not revoke $a"
ok "ca revoke accepts a lowercase, colon-separated serial"

# ---- refusals: one line, no new row, no output file -------------------------
soft_csr ok -subj /CN=ok.example.com -addext subjectAltName=DNS:ok.example.com
soft_csr md5 -subj /CN=md5.example.com -addext subjectAltName=DNS:md5.example.com -md5
soft_csr sha1 -subj /CN=sha1.example.com -addext subjectAltName=DNS:sha1.example.com -sha1
run openssl genrsa -out "$T/weak.key" 1024 >/dev/null 2>&1
run openssl req -new -key "$T/weak.key" -subj /CN=weak.example.com -addext subjectAltName=DNS:weak.example.com -out "$T/weak.csr" >/dev/null 2>&1
soft_csr catrue -subj /CN=ca.example.com -addext subjectAltName=DNS:ca.example.com -addext basicConstraints=critical,CA:TRUE
soft_csr nosan -subj /CN=nosan.example.com
soft_csr outside -subj /CN=www.example.net -addext subjectAltName=DNS:www.example.net
# tampered: the CN changed after signing
openssl req -in "$T/ok.csr" -outform DER | sed 's/ok\.example/ko.example/' >"$T/tampered.der"
openssl req -inform DER -in "$T/tampered.der" -out "$T/tampered.csr"
grep -q 'ko.example' <(openssl req -in "$T/tampered.csr" -noout -subject) || fail "the tampered CSR is not tampered"
printf '[ profile_server ]\nallowed_dns = .example.com, *.example.org\n' >"$T/allowed.conf"
printf 'wrong-pin\n' >"$T/wrong.pin"
chmod 600 "$T/wrong.pin"

refuse() { # SUBSTRING COMMAND...: refused, no row added, no output file
	local want=$1 before
	shift
	before=$(rows issuing)
	rm -f "$T/refused.crt"
	expect_fail "$want" "$@" -o "$T/refused.crt"
	[ ! -e "$T/refused.crt" ] || fail "a refusal wrote its output: $*"
	[ "$(rows issuing)" -eq "$before" ] || fail "a refusal added a row to the store: $*"
}
sign() { p11 ca sign --ca issuing "$@"; }
refuse "md5WithRSAEncryption" sign --csr "$T/md5.csr"
refuse "sha1WithRSAEncryption" sign --csr "$T/sha1.csr"
refuse "1024 bits" sign --csr "$T/weak.csr"
refuse "self-signature does not verify" sign --csr "$T/tampered.csr"
refuse "CA:TRUE" sign --profile server --csr "$T/catrue.csr"
refuse "subjectAltName" sign --profile server --csr "$T/nosan.csr"
refuse "398 days" sign --profile server --csr "$T/ok.csr" --days 399
refuse "'www.example.net' is outside" sign -c "$T/allowed.conf" --csr "$T/outside.csr"
refuse "unknown profile 'nope'" sign --profile nope --csr "$T/ok.csr"
refuse "no CA named 'nope'" p11 ca sign --ca nope --csr "$T/ok.csr"
refuse "pathlen 0" sign --profile subca --csr "$T/sub.csr"
refuse "CKR_PIN_INCORRECT" pk ca sign --ca issuing --csr "$T/ok.csr" --pin-source "file:$T/wrong.pin"
refuse "CKR_PIN_INCORRECT" pk ca crl --ca issuing --pin-source "file:$T/wrong.pin"
# the same requests pass where they should: the refusals are about them
sign -c "$T/allowed.conf" --csr "$T/ok.csr" -o "$T/ok.crt"
sign --profile server --csr "$T/ok.csr" --days 398 -o "$T/ok.crt"
ok "refused: MD5, SHA-1, RSA-1024, tampered, CA:TRUE, no SAN, 399 days, outside allowed_dns, unknown profile/CA, pathlen 0, wrong PIN"

before=$(rows issuing)
expect_fail "no certificate with serial 1 " pk ca revoke --ca issuing --serial 01 --reason keyCompromise
expect_fail "already revoked" pk ca revoke --ca issuing --serial "$serial" --reason keyCompromise
expect_fail "unknown --reason 'bogus'" pk ca revoke --ca issuing --serial "$(serial_of "$T/ok.crt")" --reason bogus
[ "$RC" -eq 2 ] || fail "unknown --reason: exit $RC, want 2"
[ "$(pk ca list --ca issuing --revoked --json | jq length)" -eq 2 ] || fail "a refused revoke revoked something"
keys=$(p11 key list --token ca --json | jq length)
expect_fail "already exists" p11 ca init --name root --token ca --type ec:p384 --subject CN=Another
[ "$(p11 key list --token ca --json | jq length)" -eq "$keys" ] || fail "a refused ca init left a key on the token"
[ "$(rows issuing)" -eq "$before" ] || fail "refused revokes or init changed the store"
ok "refused: revoke of an unknown serial, twice, unknown reason (exit 2); ca init with an existing name (no key left)"

# ---- names and reasons a CA must not accept ----------------------------
known_bug() { echo "KNOWN BUG: $*" | tee -a "$LOG" >&2; }
# removeFromCRL (8) belongs in delta CRLs only (RFC 5280 5.3.1)
expect_fail "not an RFC 5280 reason" pk ca revoke --ca issuing --serial "$(serial_of "$T/ok.crt")" --reason removeFromCRL
before=$(rows issuing)
for san in 'DNS:*' 'DNS:*.com' 'DNS:w*.example.com'; do
	soft_csr badsan -subj /CN=a.example.com -addext "subjectAltName=$san"
	expect_fail "not a valid host name" p11 ca sign --ca issuing --csr "$T/badsan.csr" -o "$T/badsan.crt"
done
soft_csr rawidn -utf8 -subj '/CN=www.example.com' -addext 'subjectAltName=DNS:www.我的伺服器.com'
expect_fail "subjectAltName" p11 ca sign --ca issuing --csr "$T/rawidn.csr" -o "$T/rawidn.crt"
[ ! -e "$T/badsan.crt" ] && [ ! -e "$T/rawidn.crt" ] && [ "$(rows issuing)" -eq "$before" ] ||
	fail "a refused DNS name left a certificate or a row"
ok "refused: removeFromCRL on a full CRL; DNS names *, *.com, w*.example.com and raw UTF-8"
# a host-name CN must be one of the DNS SANs (so allowed_dns covers it too)
soft_csr cnout -subj /CN=www.example.net -addext subjectAltName=DNS:ok.example.com
expect_fail "is not one of its DNS subjectAltNames" p11 ca sign -c "$T/allowed.conf" --ca issuing --csr "$T/cnout.csr" -o "$T/cnout.crt"
ok "refused: a host-name CN that is not among the DNS subjectAltNames"

# ---- validity past the issuer's notAfter: capped, or refused ---------------
p11 ca init --name short --parent root --token ca --type ec:p256 --subject 'CN=Short CA,O=Example' --days 10 >/dev/null
pk ca cert --ca short -o "$T/short.crt"
p11 ca sign --ca short --csr "$T/ok.csr" --days 30 -o "$T/capped.crt" 2>"$T/capped.err"
grep -q 'capped' "$T/capped.err" || fail "no warning about the capped validity: $(cat "$T/capped.err")"
[ "$(x "$T/capped.crt" -enddate)" = "$(x "$T/short.crt" -enddate)" ] ||
	fail "capped notAfter $(x "$T/capped.crt" -enddate), CA $(x "$T/short.crt" -enddate)"
printf '[ ca_short ]\npast_issuer = refuse\n' >"$T/refuse.conf"
before=$(rows short)
expect_fail "outlive" p11 ca sign -c "$T/refuse.conf" --ca short --csr "$T/ok.csr" --days 30 -o "$T/refused.crt"
[ ! -e "$T/refused.crt" ] && [ "$(rows short)" -eq "$before" ] || fail "the refused past-issuer request left a trace"
p11 ca sign -c "$T/refuse.conf" --ca short --csr "$T/ok.csr" --days 5 -o "$T/inside.crt"
ok "past the issuer's notAfter: capped with a warning; refused with past_issuer = refuse; inside it is issued"

# ---- an RSA-3072 root and issuing CA ---------------------------------------
p11 ca init --name rsaroot --token ca --type rsa:3072 --subject 'CN=Example RSA Root,O=Example' >/dev/null
p11 ca init --name rsaissuing --parent rsaroot --token ca --type rsa:3072 --subject 'CN=Example RSA Issuing,O=Example' >/dev/null
pk ca cert --ca rsaroot -o "$T/rsaroot.crt"
pk ca cert --ca rsaissuing -o "$T/rsaissuing.crt"
p11 ca sign --ca rsaissuing --profile server --csr "$T/www.csr" -o "$T/rsawww.crt"
p11 ca sign --ca rsaissuing --profile client --csr "$T/alice.csr" -o "$T/rsaalice.crt"
validate "$T/rsawww.crt" "$T/rsaroot.crt" "$T/rsaissuing.crt" server
validate "$T/rsaalice.crt" "$T/rsaroot.crt" "$T/rsaissuing.crt" client
x "$T/rsaissuing.crt" -text | grep -q 'Public-Key: (3072 bit)' || fail "rsaissuing is not RSA-3072"
x "$T/rsawww.crt" -text | grep -q 'Signature Algorithm: sha256WithRSAEncryption' || fail "RSA CA did not sign with sha256WithRSAEncryption"
# no [ ca_rsaissuing ] section: no CRL DP or AIA
[[ $(x "$T/rsawww.crt" -ext crlDistributionPoints,authorityInfoAccess 2>&1) != *URI:* ]] ||
	fail "rsawww.crt has URLs no config asked for"
[ "$(days_of "$T/rsaroot.crt")" -eq 3650 ] || fail "root default: $(days_of "$T/rsaroot.crt") days, want 3650"
[ "$(days_of "$T/rsaissuing.crt")" -eq 1825 ] || fail "subca default: $(days_of "$T/rsaissuing.crt") days, want 1825"
ok "RSA-3072 root and issuing CA (defaults 3650 and 1825 days): server and client chains pass all three validators; no URLs unless configured"
