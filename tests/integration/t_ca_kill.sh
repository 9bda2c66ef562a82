# A CA process killed with SIGKILL in the middle of a batch never leaves a
# handed-out certificate missing from the store: p11pki commits the row
# before it writes the file. In each round two batches of `ca sign` run
# while their p11pki processes are killed at random moments; afterwards
# every complete certificate file (final name or a leftover temporary) has
# its serial in the store (rows without files are allowed), no final-named
# file is partial, the store passes PRAGMA integrity_check, and the CA
# still works.
. "$(dirname "$0")/lib.sh"
init_token ca
ROUNDS=8 PER=25 KILLS=3 # per round: two batches of PER, KILLS landed kills

p11 ca init --name root --token ca --type ec:p256 --subject 'CN=Kill Root' >/dev/null
run openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/sw.key" >/dev/null 2>&1
run openssl req -new -key "$T/sw.key" -subj /CN=k.example.com -addext subjectAltName=DNS:k.example.com \
	-out "$T/k.csr" >/dev/null 2>&1
mkdir -p "$T/out"
known_bug() { echo "KNOWN BUG: $*" | tee -a "$LOG" >&2; }
# For the known bug below: the token file as it is when nothing runs.
token_file=$(echo "$T"/tokens/*/token.object)
cp "$token_file" "$T/token.object.saved"

# batch R B: ca sign PER times, each into its own file; the pid of the
# running p11pki is in $T/pid.B, each exit status in $T/rc.B
batch() {
	local r=$1 b=$2 i p rc
	for ((i = 1; i <= PER; i++)); do
		"$P11PKI" ca sign --ca root --profile server --csr "$T/k.csr" -o "$T/out/$r-$b-$i.crt" \
			--pin-source "file:$T/user.pin" 2>>"$T/err.$b" &
		p=$!
		echo "$p" >"$T/pid.$b"
		rc=0
		wait "$p" || rc=$?
		echo "$rc" >>"$T/rc.$b"
	done
	rm -f "$T/pid.$b"
}

lost=0
for ((round = 1; round <= ROUNDS; round++)); do
	batch "$round" 1 &
	b1=$!
	batch "$round" 2 &
	b2=$!
	# Kill only the p11pki we started: the pid a batch recorded, if it is
	# still a p11pki whose parent is that batch.
	killed=0
	while ((killed < KILLS)) && { kill -0 "$b1" 2>/dev/null || kill -0 "$b2" 2>/dev/null; }; do
		sleep "0.0$((RANDOM % 9 + 1))"
		b=$((RANDOM % 2 + 1))
		bp=$([ "$b" = 1 ] && echo "$b1" || echo "$b2")
		p=$(cat "$T/pid.$b" 2>/dev/null || true)
		[ -n "$p" ] && [ "$(cat "/proc/$p/comm" 2>/dev/null)" = p11pki ] &&
			[ "$(awk '{ print $4 }' "/proc/$p/stat" 2>/dev/null)" = "$bp" ] || continue
		kill -KILL "$p" 2>/dev/null && killed=$((killed + 1))
	done
	wait "$b1" "$b2"
	# BUG: SoftHSM2's file store rewrites token.object in place on every
	# C_Login (Token::loginUser -> setTokenFlags -> ObjectFile::store:
	# truncate, then write); a SIGKILL in between leaves it empty and the
	# token is gone ("no token 'ca'"). p11pki does not guard against it
	# (see the report). Until it does this warns, and the test puts the
	# file back so the next rounds still test the store.
	if ! "$P11PKI" token list --json | jq -e 'any(.[]; .label == "ca")' >/dev/null; then
		lost=$((lost + 1))
		cp "$T/token.object.saved" "$token_file"
	fi
done
[ "$lost" -eq 0 ] || known_bug "in $lost of $ROUNDS rounds a SIGKILL broke the SoftHSM2 token.object (the CA token was gone)"
landed=$(cat "$T"/rc.* | grep -c '^137$' || true)
cat "$T"/err.* >>"$LOG" 2>/dev/null || true
[ "$landed" -ge $((ROUNDS * KILLS / 2)) ] || fail "only $landed kills landed on a running p11pki: the test proved little"

# Any failure other than SIGKILL fails the test, except the known bugs:
# the lost token above, and the C_OpenSession race of t_ca_concurrent.sh
# (two batches run at once).
race='C_OpenSession on token .ca.: CKR_(TOKEN_NOT_RECOGNIZED|SLOT_ID_INVALID)$'
known=$race
[ "$lost" -eq 0 ] || known="$known|no token 'ca'"
fails=$(cat "$T"/rc.* | grep -vc -e '^0$' -e '^137$' || true)
# Under the sanitizers a SIGKILL can land while LeakSanitizer checks the
# exiting process: its helper then says so. That is the kill, not p11pki.
lsan_kill='^==[0-9]+==Unable to get registers from thread [0-9]+\.?$'
explained=$(cat "$T"/err.* | grep -cE "$known" || true)
others=$(cat "$T"/err.* | grep -vE "$known" | grep -vE "$lsan_kill" || true)
[ -z "$others" ] && [ "$fails" -eq "$explained" ] ||
	fail "$fails ca sign failed other than by SIGKILL: $(sort "$T"/err.* | uniq -c | head -5)"
races=$(cat "$T"/err.* | grep -cE "$race" || true)
[ "$races" -eq 0 ] || known_bug "$races ca sign lost the C_OpenSession race (see t_ca_concurrent.sh)"

# every complete certificate file has its serial in the store
run "$P11PKI" ca list --ca root --json | jq -r '.[].serial' | sort >"$T/store.serials"
files=0 tmps=0
for f in "$T"/out/*; do
	if s=$(openssl x509 -in "$f" -noout -serial 2>/dev/null); then
		s=$(sed 's/^serial=0*//' <<<"$s") # the store's form: no leading zeros
		grep -qx "$s" "$T/store.serials" || fail "${f##*/} (serial $s) was written but is not in the store"
		[[ $f == *.crt ]] && files=$((files + 1)) || tmps=$((tmps + 1))
	else
		# a final name is only ever made by rename(): never partial
		[[ $f != *.crt ]] || fail "${f##*/} exists but is not a complete certificate"
	fi
done
rows=$(wc -l <"$T/store.serials")
[ "$files" -gt 0 ] || fail "no certificate was written"
[ "$rows" -ge "$files" ] || fail "$files files but $rows rows"
ok "$landed SIGKILLs landed in $ROUNDS rounds; $files certificate files (+$tmps complete temporaries), $rows store rows: none missing"

if command -v sqlite3 >/dev/null; then
	out=$(run sqlite3 "$P11PKI_HOME/ca.db" 'PRAGMA integrity_check')
	[ "$out" = ok ] || fail "integrity_check: $out"
	ok "PRAGMA integrity_check: ok"
fi

# the token and the store still serve a fresh issue and a CRL
p11 ca sign --ca root --profile server --csr "$T/k.csr" -o "$T/after.crt"
p11 ca crl --ca root -o "$T/after.crl"
[ "$(run "$P11PKI" ca list --ca root --json | jq length)" -eq $((rows + 1)) ] || fail "the issue after the kills is not in the store"
ok "after the kills the CA issues and signs a CRL"
