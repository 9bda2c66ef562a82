# Sourced by every tests/integration/t_*.sh (run by ctest, see
# tests/CMakeLists.txt). Gives the test a fresh directory with its own
# SoftHSM2 configuration, token directory, P11PKI_HOME and random PINs, so
# a test never touches the user's tokens, and the helpers below.
#   $T          the test's directory, removed on success, kept on failure
#   $LOG        every command the helpers ran, with its output
#   $T/outputs  only the output (stdout, stderr) of those commands
#   $USER_PIN   the user PIN (also in $T/user.pin; the SO PIN is in $T/so.pin)
#   $TOKEN      the label init_token gave the token
set -eEuo pipefail
# Job control: each background job gets its own process group, so the
# EXIT trap can end a job together with the p11pki processes it started.
set -m

for v in P11PKI P11FAULT TEST_BIN_DIR TEST_TMP SOFTHSM2_MODULE; do
	[ -n "${!v:-}" ] || { echo "$0: $v is not set: run the test through ctest" >&2; exit 1; }
done

NAME=$(basename "$0" .sh)
T=$TEST_TMP/$NAME.$$
LOG=$T/log
rm -rf "$T"
mkdir -p "$T/tokens" "$T/home"
: >"$LOG"

# Options may come anywhere after a p11pki command (GNU getopt permutes);
# POSIXLY_CORRECT would turn that off. Nothing may come from the caller's
# environment: no other module, home, debug output or fault rules.
unset POSIXLY_CORRECT P11PKI_MODULE P11PKI_DEBUG P11FAULT_MODULE P11FAULT_CONFIG P11FAULT_STATS
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n' \
	"$T/tokens" >"$T/softhsm2.conf"
export SOFTHSM2_CONF=$T/softhsm2.conf P11PKI_HOME=$T/home

# Random PINs, in files only the owner may read (p11pki warns otherwise).
random_pin() { od -An -N12 -tx1 /dev/urandom | tr -d ' \n'; }
USER_PIN=$(random_pin)
SO_PIN=$(random_pin)
(umask 077 && printf '%s\n' "$USER_PIN" >"$T/user.pin" && printf '%s\n' "$SO_PIN" >"$T/so.pin")
export USER_PIN

cleanup() {
	local rc=$? j
	trap - EXIT ERR
	for j in $(jobs -p); do kill -- -"$j" 2>/dev/null || true; done
	wait 2>/dev/null || true
	if [ "$rc" -eq 0 ] || [ "$rc" -eq 77 ]; then
		rm -rf "$T"
	else
		{ echo "---- $NAME failed (exit $rc); log $LOG:"; cat "$LOG"; echo "---- kept $T"; } >&2
	fi
	exit "$rc"
}
trap cleanup EXIT
# An unexpected failure (set -e) names the command that failed, and where.
on_err() { # EXIT_CODE LINE COMMAND
	local i where="line $2"
	for ((i = 1; i < ${#FUNCNAME[@]} - 1; i++)); do
		where+=" in ${FUNCNAME[i]}() called from ${BASH_SOURCE[i + 1]##*/}:${BASH_LINENO[i]}"
	done
	echo "FAIL: $NAME: $where: exit $1: $3" | tee -a "$LOG" >&2
}
trap 'on_err $? $LINENO "$BASH_COMMAND"' ERR

fail() { echo "FAIL: $NAME: $*" | tee -a "$LOG" >&2; exit 1; }
skip() { echo "SKIP: $NAME: $*" | tee -a "$LOG" >&2; exit 77; }
ok() { echo "ok: $*" | tee -a "$LOG"; }

# Runs a command, logging it and its output; the output still reaches the
# caller (stdout, stderr), so $(run ...) works. Safe in background jobs.
RUN_N=0
run() {
	local o=$T/.run.$BASHPID.$((++RUN_N)) rc=0
	echo "\$ $*" >>"$LOG"
	"$@" >"$o.out" 2>"$o.err" || rc=$?
	cat "$o.out" "$o.err" | tee -a "$T/outputs" >>"$LOG"
	[ "$rc" -eq 0 ] || echo "(exit $rc)" >>"$LOG"
	cat "$o.err" >&2
	cat "$o.out"
	rm -f "$o.out" "$o.err"
	return "$rc"
}

# p11pki with the user PIN file. Appending works wherever the other options
# are, as long as the caller passes no "--".
p11() { run "$P11PKI" "$@" --pin-source "file:$T/user.pin"; }

TOKEN=
init_token() {
	TOKEN=$1
	run "$P11PKI" token init --label "$1" --so-pin-source "file:$T/so.pin" --pin-source "file:$T/user.pin" >/dev/null
}

# expect_fail SUBSTRING CMD...: CMD must fail with a one-line message on
# stderr containing SUBSTRING, and not by a signal. Sets $RC (exit code)
# and $ERR (the message) for further checks.
RC=0 ERR=
expect_fail() {
	local want=$1 e=$T/.xf.$BASHPID.$((++RUN_N)) lines
	shift
	echo "# expect failure with '$want': $*" >>"$LOG"
	RC=0
	"$@" >"$e.out" 2>"$e" || RC=$?
	cat "$e.out" "$e" >>"$T/outputs"
	ERR=$(cat "$e")
	mapfile -t lines <"$e"
	rm -f "$e" "$e.out"
	echo "# exit $RC, stderr: $ERR" >>"$LOG"
	[ "$RC" -ne 0 ] || fail "expected failure, but it succeeded: $*"
	[ "$RC" -lt 126 ] || fail "exit $RC (a crash or a signal?): $*"
	[[ $ERR == *"$want"* ]] || fail "stderr lacks '$want': $*: $ERR"
	[ "${#lines[@]}" -eq 1 ] || fail "stderr is ${#lines[@]} lines, want one: $*: $ERR"
}

# Hex digits of the id= in a p11pki URI ("...;id=%A1%B2" -> "a1b2").
uri_id_hex() { sed -n 's/.*;id=\([^;?]*\).*/\1/p' <<<"$1" | tr -d '%' | tr 'A-F' 'a-f'; }

# pkcs11-tool's --list-objects on the token; the PIN comes from the
# environment (env:), never argv.
pkcs11_objects() {
	run pkcs11-tool --module "$SOFTHSM2_MODULE" --token-label "$TOKEN" --login --pin env:USER_PIN --list-objects
}
