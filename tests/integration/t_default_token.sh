# The embedded default token: without SOFTHSM2_CONF, p11pki writes its own
# SoftHSM2 configuration and token directory under $P11PKI_HOME and uses
# them; with SOFTHSM2_CONF set, the user's SoftHSM2 setup wins and
# $P11PKI_HOME gets no configuration of its own.
. "$(dirname "$0")/lib.sh"
command -v softhsm2-util >/dev/null || skip "softhsm2-util is not installed"
home=$T/default-home
so=file:$T/so.pin pin=file:$T/user.pin

# 1. No SOFTHSM2_CONF: everything under $P11PKI_HOME.
nosh() { run env -u SOFTHSM2_CONF P11PKI_HOME="$home" "$P11PKI" "$@"; }
[ ! -e "$home" ] || fail "$home exists before the test"
nosh token list >/dev/null
[ -f "$home/softhsm2.conf" ] || fail "token list did not create $home/softhsm2.conf"
[ -d "$home/tokens" ] || fail "token list did not create $home/tokens"
grep -qx "directories.tokendir = $home/tokens" "$home/softhsm2.conf" ||
	fail "$home/softhsm2.conf does not point at $home/tokens: $(cat "$home/softhsm2.conf")"
[ "$(stat -c %a "$home/tokens")" = 700 ] || fail "$home/tokens has mode $(stat -c %a "$home/tokens"), want 700"
ok "without SOFTHSM2_CONF, token list creates \$P11PKI_HOME/softhsm2.conf and tokens/ (mode 700)"

nosh token init --label dflt --so-pin-source "$so" --pin-source "$pin" >/dev/null
[ -n "$(ls -A "$home/tokens")" ] || fail "token init wrote nothing under $home/tokens"
nosh key gen --token dflt --type ec:p256 --label k --pin-source "$pin" >/dev/null
nosh key list --token dflt --pin-source "$pin" | grep "object=k" >/dev/null || fail "key list on the default token"
# the test's own token directory (lib.sh) was not touched
[ -z "$(ls -A "$T/tokens")" ] || fail "the default token was created in \$SOFTHSM2_CONF's directory"
SOFTHSM2_CONF=$home/softhsm2.conf run softhsm2-util --show-slots | grep -E "Label: +dflt *$" >/dev/null ||
	fail "softhsm2-util does not see token 'dflt' through $home/softhsm2.conf"
ok "token init and key gen work on the default token under \$P11PKI_HOME"

# 2. SOFTHSM2_CONF set (lib.sh's): p11pki uses it and leaves the home alone.
home2=$T/other-home
P11PKI_HOME=$home2 run "$P11PKI" token init --label mine --so-pin-source "$so" --pin-source "$pin" >/dev/null
[ ! -e "$home2/softhsm2.conf" ] || fail "p11pki wrote $home2/softhsm2.conf although SOFTHSM2_CONF is set"
run softhsm2-util --show-slots | grep -E "Label: +mine *$" >/dev/null ||
	fail "softhsm2-util does not see token 'mine' through SOFTHSM2_CONF=$SOFTHSM2_CONF"
SOFTHSM2_CONF=$home/softhsm2.conf run softhsm2-util --show-slots | grep -E "Label: +mine *$" >/dev/null &&
	fail "token 'mine' went to the default token directory"
ok "with SOFTHSM2_CONF set, p11pki uses it (softhsm2-util sees the token) and writes no config of its own"
