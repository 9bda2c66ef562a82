# p11pki serve refuses to start, with one clear line each, on: a key URI
# that matches no key, a certificate that does not match its key, an
# expired certificate, an SNI host the certificate does not carry, a port
# already in use, a duplicate binding, a thumbprint no token certificate
# has, an unreadable client CA; `bindings check` finds the same problems
# without serving and says so with exit status 1. (The config parser's own
# tests cover the syntax of every setting.)
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/serve_lib.sh"
init_token web

make_root root "Root"
A=$(token_key a ec:p256)
B=$(token_key b ec:p256)
issue a "/CN=a.test" "$T/a.pub" root server "DNS:a.test"
issue_dated old "$A" "/CN=old.test" root 20200101000000Z 20200201000000Z
[ -s "$T/old.crt" ] || fail "the expired certificate was not made"
start_backend echo E
BUSY=$BACKEND_PORT

# conf NAME [LINES...]: a one-binding configuration; the lines replace or
# add to the defaults (listen, cert, key, backends)
conf() {
	local name=$1 line
	shift
	{
		printf '[ serve ]\nbindings = %s\nbound_file = %s/bound.%s\n\n[ %s ]\n' "$name" "$T" "$name" "$name"
		printf 'listen = 127.0.0.1:0\ncert = %s/a.crt\nkey = %s\nbackends = 127.0.0.1:%s\n' "$T" "$A" "$BUSY" |
			while read -r line; do
				local k=${line%% =*} skip=0 l
				for l in "$@"; do [ "${l%% =*}" = "$k" ] && skip=1; done
				[ "$skip" = 1 ] || echo "$line"
			done
		for line in "$@"; do echo "$line"; done
	} >"$T/$name.conf"
}
# refused NAME MESSAGE: serve and bindings check both refuse with MESSAGE
refused() {
	expect_fail "$2" "$P11PKI" serve -c "$T/$1.conf" --pin-source "file:$T/user.pin"
	[ ! -e "$T/bound.$1" ] || fail "$1: serve wrote a bound file although it refused to start"
	expect_fail "$2" "$P11PKI" bindings check -c "$T/$1.conf" --pin-source "file:$T/user.pin"
	[ "$RC" = 1 ] || fail "bindings check exit $RC for $1, want 1"
}

conf nokey "key = pkcs11:token=web;object=nothing"
refused nokey "binding nokey: key pkcs11:token=web;object=nothing matches no key on token 'web'"
[[ $ERR == "p11pki: $T/nokey.conf:5: "* ]] || fail "the refusal does not start with FILE:LINE: $ERR"
ok "a key URI that matches no key: '$ERR'"

conf mismatch "key = $B"
refused mismatch "binding mismatch: certificate 'CN=a.test' does not match key $B"
ok "a certificate for another key is refused"

conf expired "cert = $T/old.crt"
refused expired "binding expired: certificate 'CN=old.test' expired on 2020-02-01 00:00:00 UTC"
ok "an expired certificate is refused, naming the date"

conf sni "sni = other.test"
refused sni "binding sni: SNI host 'other.test' is not in certificate 'CN=a.test'"
ok "an SNI host the certificate does not carry is refused"

conf busy "listen = 127.0.0.1:$BUSY"
refused busy "binding busy: cannot listen on 127.0.0.1:$BUSY: Address already in use"
ok "a port in use is refused"

conf thumb "cert = sha256:$(printf '00%.0s' {1..32})"
refused thumb "binding thumb: no certificate on token 'web' has thumbprint sha256:00000000"
ok "a thumbprint no certificate on the token has is refused"

conf noca "client_auth = require" "client_ca = $T/missing.pem"
refused noca "binding noca: client_ca: cannot read $T/missing.pem: No such file or directory"
ok "an unreadable client CA file is refused"

conf notoken "key = pkcs11:token=elsewhere;object=a"
expect_fail "binding notoken: key pkcs11:token=elsewhere;object=a" "$P11PKI" serve -c "$T/notoken.conf" \
	--pin-source "file:$T/user.pin"
ok "a key on a token that is not there: '$ERR'"

# duplicates: the config parser's message, through serve
{
	printf '[ serve ]\nbindings = one, two\n\n'
	for n in one two; do
		printf '[ %s ]\nlisten = 127.0.0.1:8443\ncert = %s/a.crt\nkey = %s\n\n' "$n" "$T" "$A"
	done
} >"$T/dup.conf"
expect_fail "are both the default binding (no sni) of 127.0.0.1:8443" "$P11PKI" serve -c "$T/dup.conf" \
	--pin-source "file:$T/user.pin"
expect_fail "are both the default binding" "$P11PKI" bindings check -c "$T/dup.conf" --pin-source "file:$T/user.pin"
ok "a duplicate binding is refused"

# bindings check reports every problem, one line each, and the good bindings
{
	printf '[ serve ]\nbindings = good, bad1, bad2\n\n'
	printf '[ good ]\nlisten = 127.0.0.1:0\ncert = %s/a.crt\nkey = %s\n\n' "$T" "$A"
	printf '[ bad1 ]\nlisten = 127.0.0.2:0\ncert = %s/old.crt\nkey = %s\n\n' "$T" "$A"
	printf '[ bad2 ]\nlisten = 127.0.0.1:%s\ncert = %s/a.crt\nkey = %s\n' "$BUSY" "$T" "$A"
} >"$T/many.conf"
rc=0
"$P11PKI" bindings check -c "$T/many.conf" --pin-source "file:$T/user.pin" >"$T/check.out" 2>"$T/check.err" || rc=$?
[ "$rc" = 1 ] || fail "bindings check with two bad bindings: exit $rc"
[ "$(cat "$T/check.out")" = "good: ok" ] || fail "bindings check stdout: $(cat "$T/check.out")"
[ "$(wc -l <"$T/check.err")" = 2 ] && grep -q "binding bad1: certificate 'CN=old.test' expired" "$T/check.err" &&
	grep -q "binding bad2: cannot listen on 127.0.0.1:$BUSY" "$T/check.err" || fail "bindings check stderr: $(cat "$T/check.err")"
sed 's/, bad1, bad2//' "$T/many.conf" | sed '/^\[ bad1 \]/,$d' >"$T/good.conf"
out=$(run "$P11PKI" bindings check -c "$T/good.conf" --pin-source "file:$T/user.pin") || fail "bindings check of a good config: $out"
[ "$out" = "good: ok" ] || fail "bindings check of a good config: $out"
ok "bindings check: one line per problem, exit 1; a good configuration: exit 0"

# a second serve on the port a running one holds is refused, not shared
printf '[ serve ]\nbindings = first\nworkers = 2\nbound_file = %s/bound\n\n[ first ]\nlisten = 127.0.0.1:0\ncert = %s/a.crt\nkey = %s\n' \
	"$T" "$T" "$A" >"$T/first.conf"
start_serve "$T/first.conf"
port=$(bound first)
port=${port##*:}
sed "s/^bindings = first/bindings = second/; s/^\[ first \]/[ second ]/; s/127.0.0.1:0/127.0.0.1:$port/; s|/bound$|/bound.second|" \
	"$T/first.conf" >"$T/second.conf"
expect_fail "binding second: cannot listen on 127.0.0.1:$port: Address already in use" \
	"$P11PKI" serve -c "$T/second.conf" --pin-source "file:$T/user.pin"
out=$(tls "127.0.0.1:$port" || true)
[[ $out == *"a.test"* ]] || fail "the first serve stopped answering: $out"
stop_serve
ok "a second serve on a port the first holds is refused; the first goes on answering"
