# The `openssl ca` setup of use case 4 moved to p11pki: its openssl.conf
# settings (default_days, default_crl_days, unique_subject, default_md) and
# its match/supplied/optional policy in a p11pki config file, for a CA on a
# token whose subject has C/ST/L/O/OU. Matching slash-form requests are
# issued with exactly the policy's fields in policy order; a mismatch or a
# missing field is refused naming it; default_md = md5 is refused.
. "$(dirname "$0")/lib.sh"
init_token ca

pk() { run "$P11PKI" "$@"; }
CONF=$T/p11pki.conf
# As in the use case's openssl.conf, except default_md: md5 is refused
# (below), so it says sha256.
cat >"$CONF" <<'EOF'
[ ca_clients ]
default_days = 200
default_crl_days = 3
default_md = sha256
unique_subject = no
policy = policy_match

[ policy_match ]
countryName = match
stateOrProvinceName = match
localityName = optional
organizationName = match
organizationalUnitName = match
commonName = supplied
emailAddress = optional
EOF
p11 ca init -c "$CONF" --name clients --token ca --type ec:p256 \
	--subject '/C=US/ST=GuangDong/L=GuangZhou/O=Your Company Name/OU=imdst.com/CN=Client CA' >/dev/null
run openssl genrsa -out "$T/client.key" 2048 >/dev/null 2>&1
csr() { run openssl req -new -key "$T/client.key" -subj "$2" -out "$T/$1.csr" "${@:3}" >/dev/null 2>&1; }
sign() { p11 ca sign -c "$CONF" --ca clients --profile client "$@"; }
subject() { run openssl x509 -in "$1" -noout -subject -nameopt RFC2253 | sed 's/^subject=//'; }
rows() { pk ca list --ca clients --json | jq length; }
days_of() {
	local s e
	s=$(date -d "$(run openssl x509 -in "$1" -noout -startdate | cut -d= -f2)" +%s)
	e=$(date -d "$(run openssl x509 -in "$1" -noout -enddate | cut -d= -f2)" +%s)
	echo $(((e - s) / 86400))
}
known_bug() { echo "KNOWN BUG: $*" | tee -a "$LOG" >&2; }

# ---- matching requests --------------------------------------------------
# Slash form with fields in another order and a title the policy does not
# name: the result has the policy's fields, in policy order, title dropped.
csr alice '/CN=alice/title=Boss/O=Your Company Name/emailAddress=alice@imdst.com/OU=imdst.com/L=GuangZhou/ST=GuangDong/C=US'
sign --csr "$T/alice.csr" -o "$T/alice.crt"
want='emailAddress=alice@imdst.com,CN=alice,OU=imdst.com,O=Your Company Name,L=GuangZhou,ST=GuangDong,C=US'
[ "$(subject "$T/alice.crt")" = "$want" ] || fail "issued subject '$(subject "$T/alice.crt")', want '$want'"
pk ca list --ca clients --json | jq -e --arg s "$want" 'any(.subject == $s)' >/dev/null ||
	fail "the store does not record the issued subject"
# optional fields may be absent
csr bob '/C=US/ST=GuangDong/O=Your Company Name/OU=imdst.com/CN=bob'
sign --csr "$T/bob.csr" -o "$T/bob.crt"
[ "$(subject "$T/bob.crt")" = 'CN=bob,OU=imdst.com,O=Your Company Name,ST=GuangDong,C=US' ] ||
	fail "bob: $(subject "$T/bob.crt")"
# PrintableString in the request, UTF8String in the CA: the same text
# matches (`openssl ca` famously says "field needed to be the same")
printf '[ req ]\ndistinguished_name = dn\nstring_mask = nombstr\n[ dn ]\n' >"$T/printable.cnf"
csr carol '/C=US/ST=GuangDong/O=Your Company Name/OU=imdst.com/CN=carol' -config "$T/printable.cnf"
run openssl asn1parse -in "$T/carol.csr" | grep -q 'PRINTABLESTRING *:Your Company Name' ||
	fail "carol's O is not a PrintableString: the check below would prove nothing"
sign --csr "$T/carol.csr" -o "$T/carol.crt"
ok "policy: fields in policy order, unnamed ones dropped, optional ones optional, string types do not matter"

# ---- refusals name the field (and both values), leave no row ------------
refuse() { # SUBSTRING CSR-NAME
	local before
	before=$(rows)
	expect_fail "$1" sign --csr "$T/$2.csr" -o "$T/refused.crt"
	[ ! -e "$T/refused.crt" ] && [ "$(rows)" -eq "$before" ] || fail "refused $2 left a trace"
}
csr other '/C=US/ST=GuangDong/O=Other Company/OU=imdst.com/CN=mallory'
refuse "organizationName 'Other Company' does not match the CA's 'Your Company Name'" other
csr nocn '/C=US/ST=GuangDong/O=Your Company Name/OU=imdst.com/emailAddress=x@imdst.com'
refuse "no commonName" nocn
csr nost '/C=US/O=Your Company Name/OU=imdst.com/CN=dave'
refuse "no stateOrProvinceName" nost
csr country '/C=HK/ST=GuangDong/O=Your Company Name/OU=imdst.com/CN=erin'
refuse "countryName 'HK' does not match the CA's 'US'" country
ok "refused: a different O (both values named), no CN, no ST, a different C"

# ---- default_days, default_crl_days ---------------------------------------
[ "$(days_of "$T/alice.crt")" -eq 200 ] || fail "default_days = 200 gave $(days_of "$T/alice.crt") days"
sign --csr "$T/bob.csr" --days 100 -o "$T/bob100.crt"
[ "$(days_of "$T/bob100.crt")" -eq 100 ] || fail "--days 100 gave $(days_of "$T/bob100.crt") days"
p11 ca crl -c "$CONF" --ca clients -o "$T/clients.crl"
last=$(date -d "$(run openssl crl -in "$T/clients.crl" -noout -lastupdate | cut -d= -f2)" +%s)
next=$(date -d "$(run openssl crl -in "$T/clients.crl" -noout -nextupdate | cut -d= -f2)" +%s)
[ $(((next - last) / 86400)) -eq 3 ] || fail "default_crl_days = 3 gave nextUpdate $(((next - last) / 86400)) days out"
ok "--days overrides; default_crl_days = 3 sets nextUpdate"

# ---- default_md = md5 from the old openssl.conf is refused ---------------
sed 's/^default_md = sha256$/default_md = md5/' "$CONF" >"$T/md5.conf"
grep -q 'default_md = md5' "$T/md5.conf" || fail "md5.conf lacks default_md = md5"
before=$(rows)
expect_fail "default_md = md5: only sha256 and sha384" p11 ca sign -c "$T/md5.conf" --ca clients --profile client \
	--csr "$T/bob.csr" -o "$T/refused.crt"
expect_fail "default_md = md5" p11 ca crl -c "$T/md5.conf" --ca clients -o "$T/refused.crl"
[ ! -e "$T/refused.crt" ] && [ ! -e "$T/refused.crl" ] && [ "$(rows)" -eq "$before" ] || fail "md5 config left a trace"
ok "default_md = md5 is refused when the config is loaded, naming the setting"
