# p11pki verify (use case 7): the three browser checks, each failing on its
# own with its reason: date (expired, not yet valid; --at moves the clock),
# host (mismatch, wildcards, IDN, CN only without DNS names, IP), chain
# (untrusted root, revoked by a CRL made with `openssl ca -gencrl`, a
# missing CRL, a path through a cross-certificate). Certificates and CRLs
# are made with the openssl CLI.
. "$(dirname "$0")/lib.sh"

printf '[ca]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n[leaf]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n' >"$T/ext.cnf"

root() {
	run openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/$1.key" \
		-out "$T/$1.crt" -subj "/CN=$2" -days 3650 -addext "keyUsage=critical,keyCertSign,cRLSign" >/dev/null 2>&1
}
softkey() {
	run openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/$1.key" >/dev/null
	run openssl pkey -in "$T/$1.key" -pubout -out "$T/$1.pub" >/dev/null
}
# issue NAME SUBJECT ISSUER SECTION [SAN]: NAME.key/.crt signed by ISSUER
issue() {
	local ext=$T/$1.ext
	[ -f "$T/$1.pub" ] || softkey "$1"
	{ cat "$T/ext.cnf"; [ -z "${5:-}" ] || printf 'subjectAltName=%s\n' "$5"; } >"$ext"
	run openssl x509 -new -force_pubkey "$T/$1.pub" -subj "$2" -CA "$T/$3.crt" -CAkey "$T/$3.key" \
		-extfile "$ext" -extensions "$4" -days 365 -out "$T/$1.crt" >/dev/null 2>&1
}
# An `openssl ca` directory for an existing CA key and certificate, to
# revoke, make CRLs and set explicit dates.
openssl_ca() {
	local d=$T/ca-$1
	mkdir -p "$d/new"
	: >"$d/index.txt"
	echo 1000 >"$d/serial"
	echo 01 >"$d/crlnumber"
	cat >"$d/ca.cnf" <<-EOF
	[ca]
	default_ca = this
	[this]
	database = $d/index.txt
	new_certs_dir = $d/new
	serial = $d/serial
	crlnumber = $d/crlnumber
	certificate = $T/$1.crt
	private_key = $T/$1.key
	default_md = sha256
	default_days = 365
	default_crl_days = 30
	policy = pol
	unique_subject = no
	crl_extensions = crl_ext
	[pol]
	commonName = supplied
	[crl_ext]
	authorityKeyIdentifier = keyid
	[leaf]
	basicConstraints = critical,CA:FALSE
	keyUsage = critical,digitalSignature
	subjectKeyIdentifier = hash
	authorityKeyIdentifier = keyid
	EOF
}
# ca_issue CA NAME CN [openssl ca options]: NAME.crt issued through `openssl ca`
ca_issue() {
	local ca=$1 name=$2 cn=$3
	shift 3
	softkey "$name"
	run openssl req -new -key "$T/$name.key" -subj "/CN=$cn" -out "$T/$name.csr" >/dev/null
	run openssl ca -batch -config "$T/ca-$ca/ca.cnf" -extensions leaf -notext -in "$T/$name.csr" \
		-out "$T/$name.crt" "$@" >/dev/null 2>&1
}
utc() { date -u -d "$(openssl x509 -noout "-$2" -in "$1" | cut -d= -f2)" '+%Y-%m-%d %H:%M:%S UTC'; }

# vfy ARGS...: runs p11pki verify; OUT gets stdout+stderr, RC the status
vfy() { RC=0; OUT=$(run "$P11PKI" verify "$@" 2>&1) || RC=$?; }
line() { grep -qxF -- "$1" <<<"$OUT" || fail "verify output lacks the line '$1': $OUT"; }
starts() { grep -q "^$(sed 's/[]\/$*.^[]/\\&/g' <<<"$1")" <<<"$OUT" || fail "verify output lacks a line starting '$1': $OUT"; }
rc() { [ "$RC" -eq "$1" ] || fail "verify exited $RC, want $1: $OUT"; }

root root1 "Root CA 1"
issue int1 "/CN=Issuing CA 1" root1 ca
issue www "/CN=www.example.com" int1 leaf "DNS:www.example.com,DNS:example.com"
FROM=$(utc "$T/www.crt" startdate)
UNTIL=$(utc "$T/www.crt" enddate)

# ---- all good -------------------------------------------------------------
vfy "$T/www.crt" --host www.example.com --ca "$T/root1.crt" --untrusted "$T/int1.crt"
rc 0
line "date: ok (valid from $FROM until $UNTIL)"
line "host: ok (matches dns:www.example.com)"
line "chain: ok (3 certificates: 'CN=www.example.com' <- 'CN=Issuing CA 1' <- 'CN=Root CA 1')"
[ "$(wc -l <<<"$OUT")" -eq 3 ] || fail "verify printed more than three lines: $OUT"
cat "$T/www.crt" "$T/int1.crt" >"$T/www.full.pem"
vfy "$T/www.full.pem" --host example.com --ca "$T/root1.crt"
rc 0
line "host: ok (matches dns:example.com)"
vfy "$T/www.crt" --ca "$T/root1.crt" --untrusted "$T/int1.crt"
rc 0
line "host: skipped (no --host given)"
ok "a good certificate passes all three checks (also from a fullchain file); no --host skips that check"

# ---- date -----------------------------------------------------------------
vfy "$T/www.crt" --host www.example.com --ca "$T/root1.crt" --untrusted "$T/int1.crt" --at 2040-01-01
rc 1
line "date: FAILED: expired on $UNTIL (valid from $FROM), checked at 2040-01-01 00:00:00 UTC"
line "host: ok (matches dns:www.example.com)"
starts "chain: FAILED: certificate has expired (depth "
vfy "$T/www.crt" --host www.example.com --ca "$T/root1.crt" --untrusted "$T/int1.crt" --at 2020-06-30T12:00:00Z
rc 1
line "date: FAILED: not yet valid: valid from $FROM until $UNTIL, checked at 2020-06-30 12:00:00 UTC"
starts "chain: FAILED: certificate is not yet valid (depth "
openssl_ca int1
ca_issue int1 old "old.example.com" -startdate 20240101000000Z -enddate 20250101000000Z
vfy "$T/old.crt" --ca "$T/root1.crt" --untrusted "$T/int1.crt"
rc 1
line "date: FAILED: expired on 2025-01-01 00:00:00 UTC (valid from 2024-01-01 00:00:00 UTC)"
line "chain: FAILED: certificate has expired (depth 0: CN=old.example.com)"
vfy "$T/old.crt" --ca "$T/root1.crt" --untrusted "$T/int1.crt" --at 2024-06-01
rc 1
line "date: ok (valid from 2024-01-01 00:00:00 UTC until 2025-01-01 00:00:00 UTC, checked at 2024-06-01 00:00:00 UTC)"
line "chain: FAILED: certificate is not yet valid (depth 2: CN=Root CA 1)"
expect_fail "--at '2027-02-30' is not a date" "$P11PKI" verify "$T/www.crt" --at 2027-02-30
expect_fail "--at 'tomorrow' is not a date" "$P11PKI" verify "$T/www.crt" --at tomorrow
ok "date: expired and not yet valid, with the dates; --at moves the clock; bad --at refused"

# ---- host -----------------------------------------------------------------
vfy "$T/www.crt" --host www.example.net --ca "$T/root1.crt" --untrusted "$T/int1.crt"
rc 1
line "date: ok (valid from $FROM until $UNTIL)"
line "host: FAILED: www.example.net is not among the certificate's names (dns:www.example.com, dns:example.com)"
starts "chain: ok (3 certificates"

issue wild "/CN=*.example.org" int1 leaf "DNS:*.example.org"
vfy "$T/wild.crt" --host shop.example.org --ca "$T/root1.crt" --untrusted "$T/int1.crt"
rc 0
line "host: ok (matches dns:*.example.org)"
for h in a.shop.example.org example.org; do
	vfy "$T/wild.crt" --host "$h" --ca "$T/root1.crt" --untrusted "$T/int1.crt"
	rc 1
	line "host: FAILED: $h is not among the certificate's names (dns:*.example.org)"
done

# IDN: the SAN holds the A-label (python3: 'www.我的伺服器.com'.encode('idna'))
issue idn "/CN=www.xn--3pqw8o2pk43espw.com" int1 leaf "DNS:www.xn--3pqw8o2pk43espw.com"
vfy "$T/idn.crt" --host "www.我的伺服器.com" --ca "$T/root1.crt" --untrusted "$T/int1.crt"
rc 0
line "host: ok (matches dns:www.xn--3pqw8o2pk43espw.com)"
vfy "$T/idn.crt" --host "www.我的服务器.com" --ca "$T/root1.crt" --untrusted "$T/int1.crt"
rc 1
starts "host: FAILED: www.我的服务器.com (www.xn--"

# the CN counts only when there is no DNS subjectAltName
issue cnonly "/CN=legacy.example.com" int1 leaf
vfy "$T/cnonly.crt" --host legacy.example.com --ca "$T/root1.crt" --untrusted "$T/int1.crt"
rc 0
line "host: ok (matches CN=legacy.example.com)"
issue cnsan "/CN=cn.example.com" int1 leaf "DNS:san.example.com"
vfy "$T/cnsan.crt" --host cn.example.com --ca "$T/root1.crt" --untrusted "$T/int1.crt"
rc 1
line "host: FAILED: cn.example.com is not among the certificate's names (dns:san.example.com)"

issue ip "/CN=device" int1 leaf "IP:192.0.2.10"
vfy "$T/ip.crt" --host 192.0.2.10 --ca "$T/root1.crt" --untrusted "$T/int1.crt"
rc 0
line "host: ok (matches ip:192.0.2.10)"
vfy "$T/ip.crt" --host 192.0.2.11 --ca "$T/root1.crt" --untrusted "$T/int1.crt"
rc 1
line "host: FAILED: 192.0.2.11 is not among the certificate's names (ip:192.0.2.10)"
ok "host: mismatch, wildcard (one label only), IDN, CN only without DNS names, IP addresses"

# ---- chain ----------------------------------------------------------------
root other "Other Root"
vfy "$T/www.crt" --host www.example.com --ca "$T/other.crt" --untrusted "$T/int1.crt"
rc 1
line "date: ok (valid from $FROM until $UNTIL)"
line "host: ok (matches dns:www.example.com)"
line "chain: FAILED: unable to get local issuer certificate (depth 1: CN=Issuing CA 1): its issuer 'CN=Root CA 1' is neither trusted nor among the untrusted certificates"
vfy "$T/www.crt" --host www.example.com --ca "$T/root1.crt"
rc 1
starts "chain: FAILED: unable to get local issuer certificate (depth 0: CN=www.example.com): its issuer 'CN=Issuing CA 1'"
# no partial chains: a trusted intermediate is not a trust anchor
vfy "$T/www.crt" --ca "$T/int1.crt"
rc 1
line "chain: FAILED: unable to get issuer certificate (depth 1: CN=Issuing CA 1): its issuer 'CN=Root CA 1' is neither trusted nor among the untrusted certificates"
ok "chain: an untrusted root or a missing intermediate names the certificate whose issuer is missing; no partial chains"

# revocation: CRLs from `openssl ca -gencrl` for the issuing CA and the root
openssl_ca root1
ca_issue int1 revoked "revoked.example.com"
run openssl ca -config "$T/ca-int1/ca.cnf" -revoke "$T/revoked.crt" -crl_reason keyCompromise >/dev/null 2>&1
run openssl ca -config "$T/ca-int1/ca.cnf" -gencrl -out "$T/int1.crl" >/dev/null 2>&1
run openssl ca -config "$T/ca-root1/ca.cnf" -gencrl -out "$T/root1.crl" >/dev/null 2>&1
openssl crl -in "$T/int1.crl" -outform DER -out "$T/int1.crl.der"
vfy "$T/revoked.crt" --ca "$T/root1.crt" --untrusted "$T/int1.crt" --crl "$T/int1.crl,$T/root1.crl"
rc 1
line "date: ok (valid from $(utc "$T/revoked.crt" startdate) until $(utc "$T/revoked.crt" enddate))"
line "chain: FAILED: certificate revoked (depth 0: CN=revoked.example.com)"
vfy "$T/revoked.crt" --ca "$T/root1.crt" --untrusted "$T/int1.crt"
rc 0
vfy "$T/www.crt" --ca "$T/root1.crt" --untrusted "$T/int1.crt" --crl "$T/int1.crl.der,$T/root1.crl"
rc 0
line "chain: ok (3 certificates: 'CN=www.example.com' <- 'CN=Issuing CA 1' <- 'CN=Root CA 1')"
vfy "$T/www.crt" --ca "$T/root1.crt" --untrusted "$T/int1.crt" --crl "$T/int1.crl"
rc 1
line "chain: FAILED: unable to get certificate CRL (depth 1: CN=Issuing CA 1)"
vfy "$T/revoked.crt" --ca "$T/root1.crt" --untrusted "$T/int1.crt" --crl "$T/int1.crl,$T/root1.crl" --at 2040-01-01
rc 1
ok "chain: revoked via a CRL (PEM or DER), good certificates pass, a missing CRL is named"

# ---- cross-certificate: only the old Root CA 1 is trusted ------------------
root root3 "Root CA 3"
openssl pkey -in "$T/root3.key" -pubout -out "$T/cross3.pub"
issue cross3 "/CN=Root CA 3" root1 ca
issue int3 "/CN=e-Cert SSL CA 3 - 17" root3 ca
issue shop "/CN=shop.example.com" int3 leaf "DNS:shop.example.com"
cross_ok="chain: ok (4 certificates: 'CN=shop.example.com' <- 'CN=e-Cert SSL CA 3 - 17' <- 'CN=Root CA 3' <- 'CN=Root CA 1')"
for order in "int3 root3 cross3" "int3 cross3 root3" "root3 cross3 int3" "cross3 root3 int3"; do
	set -- $order
	vfy "$T/shop.crt" --host shop.example.com --ca "$T/root1.crt" --untrusted "$T/$1.crt,$T/$2.crt,$T/$3.crt"
	rc 0
	line "$cross_ok"
done
vfy "$T/shop.crt" --host shop.example.com --ca "$T/root1.crt" --untrusted "$T/int3.crt,$T/root3.crt"
rc 1
starts "chain: FAILED: "
vfy "$T/shop.crt" --host shop.example.com --ca "$T/root3.crt" --untrusted "$T/int3.crt,$T/cross3.crt"
rc 0
line "chain: ok (3 certificates: 'CN=shop.example.com' <- 'CN=e-Cert SSL CA 3 - 17' <- 'CN=Root CA 3')"
ok "chain: the cross path to Root CA 1 is found whatever the order of the untrusted certificates"
