# Key generation: every supported type, the attributes that keep private
# keys on the token (seen by p11pki and, independently, by pkcs11-tool),
# --id, refusals, --extractable and deletion.
. "$(dirname "$0")/lib.sh"
command -v pkcs11-tool >/dev/null || skip "pkcs11-tool (opensc) is not installed"
init_token keygen

# The block pkcs11-tool prints for the object of a class ("Private Key",
# "Public Key") with a label.
object_block() {
	awk -v cls="$1 Object" -v label="$2" '
		/^[A-Z][A-Za-z ]* Object/ { if (hit) printf "%s", block; block = ""; hit = 0; want = index($0, cls) == 1 }
		{ block = block $0 "\n" }
		want && $1 == "label:" { v = $0; sub(/^ *label: */, "", v); if (v == label) hit = 1 }
		END { if (hit) printf "%s", block }'
}

declare -A URI
for type in rsa:2048 rsa:3072 rsa:4096 ec:p256 ec:p384; do
	label=${type/:/-}
	URI[$label]=$(p11 key gen --token "$TOKEN" --type "$type" --label "$label" 2>"$T/gen.err")
	[[ ${URI[$label]} == "pkcs11:token=$TOKEN;object=$label;id=%"* ]] || fail "$type: key gen printed '${URI[$label]}'"
	[ ! -s "$T/gen.err" ] || fail "$type: key gen wrote to stderr: $(cat "$T/gen.err")"

	# the printed URI is accepted by key pub; the PEM is the right key type
	p11 key pub "${URI[$label]}" >"$T/$label.pem"
	text=$(run openssl pkey -pubin -in "$T/$label.pem" -text -noout)
	case $type in
	rsa:*) want=("Public-Key: (${type#rsa:} bit)" "Modulus:") ;;
	ec:p256) want=("Public-Key: (256 bit)" "NIST CURVE: P-256") ;;
	ec:p384) want=("Public-Key: (384 bit)" "NIST CURVE: P-384") ;;
	esac
	for w in "${want[@]}"; do
		grep -qF "$w" <<<"$text" || fail "$type: 'openssl pkey -text' lacks '$w': $text"
	done
	ok "$type: generated, key pub gives a $type public key"
done

# key list --json: type and size, and the attributes that keep the private
# key on the token
p11 key list --json --token "$TOKEN" >"$T/list.json"
for type in rsa:2048 rsa:3072 rsa:4096 ec:p256 ec:p384; do
	label=${type/:/-}
	case $type in
	rsa:*) kind=rsa bits=${type#rsa:} curve=null ;;
	ec:p256) kind=ec bits=256 curve='"P-256"' ;;
	ec:p384) kind=ec bits=384 curve='"P-384"' ;;
	esac
	jq -e --arg l "$label" --arg uri "${URI[$label]}" "[.[] | select(.label == \$l)] | length == 1 and
		(.[0] | .uri == \$uri and .type == \"$kind\" and .bits == $bits and .curve == $curve and
		 .private and .public and .sensitive == true and .extractable == false and
		 .always_sensitive == true and .never_extractable == true and .local == true)" \
		"$T/list.json" >/dev/null || fail "$type: key list --json: $(jq -c ".[] | select(.label == \"$label\")" "$T/list.json")"
done
ok "key list --json: types, sizes, curves; sensitive, not extractable, always sensitive, never extractable, local"

# pkcs11-tool, independently of p11pki: label, the id of our URI, access flags
pkcs11_objects >"$T/objects.txt"
for label in "${!URI[@]}"; do
	id=$(uri_id_hex "${URI[$label]}")
	[ ${#id} -eq 32 ] || fail "$label: URI id is not 16 bytes: ${URI[$label]}"
	priv=$(object_block "Private Key" "$label" <"$T/objects.txt")
	pub=$(object_block "Public Key" "$label" <"$T/objects.txt")
	grep -qE "^ *ID: +$id\$" <<<"$priv" || fail "$label: pkcs11-tool private key lacks ID $id: $priv"
	grep -qE "^ *Access: +sensitive, always sensitive, never extractable, local\$" <<<"$priv" ||
		fail "$label: pkcs11-tool private key access flags: $priv"
	grep -qE "^ *ID: +$id\$" <<<"$pub" || fail "$label: pkcs11-tool public key lacks ID $id: $pub"
done
ok "pkcs11-tool sees every private key with its label, id and 'sensitive, always sensitive, never extractable, local'"

# --id in hex (either case) is the CKA_ID
uri=$(p11 key gen --type ec:p256 --token "$TOKEN" --label with-id --id A1b2C3d4)
[[ $uri == *";id=%A1%B2%C3%D4" ]] || fail "--id A1b2C3d4: URI $uri"
pkcs11_objects | object_block "Private Key" with-id | grep -E "^ *ID: +a1b2c3d4\$" >/dev/null ||
	fail "--id A1b2C3d4: pkcs11-tool does not show ID a1b2c3d4"
ok "--id in hex is honoured"

# refusals, and none of them leaves a key behind
count() { p11 key list --json --token "$TOKEN" | jq length; }
before=$(count)
expect_fail "already exists" p11 key gen --token "$TOKEN" --type ec:p256 --label ec-p256
expect_fail "already exists" p11 key gen --token "$TOKEN" --type ec:p256 --label other --id a1b2c3d4
expect_fail "2048" p11 key gen --token "$TOKEN" --type rsa:1024 --label weak
expect_fail "unknown key type 'dsa:2048'" p11 key gen --token "$TOKEN" --type dsa:2048 --label dsa
[ "$RC" -eq 2 ] || fail "unknown key type: exit $RC, want 2 (usage)"
[ "$(count)" -eq "$before" ] || fail "a refused key gen left a key behind"
ok "same label or id twice, rsa:1024 (message names 2048) and unknown types are refused"

# --extractable is an explicit opt-in, warned about and visible
uri=$(p11 key gen --token "$TOKEN" --type ec:p256 --label exportable --extractable 2>"$T/gen.err")
grep -q EXTRACTABLE "$T/gen.err" || fail "--extractable: no EXTRACTABLE warning: $(cat "$T/gen.err")"
p11 key list --json "$uri" | jq -e 'length == 1 and .[0].extractable == true and .[0].never_extractable == false' \
	>/dev/null || fail "--extractable: key list does not show extractable=true"
ok "--extractable warns (EXTRACTABLE) and key list shows extractable=true"

# deletion needs --yes, then removes both halves
uri=${URI[ec-p384]}
expect_fail "--yes" p11 key delete "$uri"
pkcs11_objects | object_block "Private Key" ec-p384 | grep . >/dev/null || fail "key delete without --yes deleted the key"
[ "$(p11 key delete "$uri" --yes)" = "deleted 2 objects" ] || fail "key delete --yes did not delete 2 objects"
pkcs11_objects | grep -E "^ *label: +ec-p384\$" >/dev/null && fail "pkcs11-tool still lists ec-p384 after key delete"
[ "$(p11 key list --json "$uri" | jq length)" -eq 0 ] || fail "key list still shows ec-p384"
ok "key delete refuses without --yes; with --yes both halves are gone"
