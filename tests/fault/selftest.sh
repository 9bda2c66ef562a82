#!/usr/bin/env bash
# Self-test of the p11fault module on a throw-away SoftHSM2 token.
#   tests/fault/selftest.sh /path/to/p11fault.so
# Exit 0: all checks passed; 1: a check failed; 77: a prerequisite is missing.
# The test PINs are on argv: acceptable only for this throw-away token.
set -u

usage() { echo "usage: $0 /path/to/p11fault.so" >&2; exit 2; }
fail() { echo "selftest: FAIL: $*" >&2; [ -s "$out" ] && sed 's/^/    | /' "$out" >&2; exit 1; }
ok() { echo "selftest: ok: $*"; }
skip() { echo "selftest: SKIP: $*" >&2; exit 77; }

[ $# -eq 1 ] && [ -f "$1" ] || usage
mod=$(realpath "$1")
command -v pkcs11-tool >/dev/null || skip "pkcs11-tool (opensc) is not installed"
real=${P11FAULT_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
[ -f "$real" ] || skip "real module $real not found (set P11FAULT_MODULE)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/p11fault-selftest.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
out=$tmp/out
ctl=$tmp/control
mkdir "$tmp/tokens"
printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
	"$tmp/tokens" >"$tmp/softhsm2.conf"
export SOFTHSM2_CONF=$tmp/softhsm2.conf P11FAULT_CONFIG=$ctl P11FAULT_STATS=$tmp/stats

# A sanitizer build of the module needs its runtime loaded first. Leak
# checks stay off: the hosts (pkcs11-tool, python) leak on their own.
preload=$(ldd "$mod" | awk '/lib(asan|ubsan)\.so/ { printf "%s ", $3 }')
if [ -n "$preload" ]; then
	export ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
fi
p11() { env ${preload:+LD_PRELOAD="$preload"} pkcs11-tool --module "$mod" "$@" >"$out" 2>&1; }
login=(--token-label t --login --pin 1234)
sign() { p11 "${login[@]}" --sign --mechanism ECDSA --id 01 --input-file "$tmp/data" --output-file "$tmp/sig"; }
# Replaced in one step, so that the module never reads a half-written file.
control() { printf '%s\n' "$@" >"$ctl.new" && mv "$ctl.new" "$ctl"; }
stat_of() { awk -v f="$1" '$1 == f { print $2 }' "$2"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

control '# empty'
p11 --show-info || fail "--show-info"
grep -q p11fault "$out" || fail "C_GetInfo does not name p11fault"
ok "C_GetInfo names p11fault"

p11 --init-token --label t --so-pin 1234 --init-pin --pin 1234 || fail "token init through the module"
p11 "${login[@]}" --keypairgen --key-type EC:prime256v1 --id 01 --label k || fail "key generation"
echo "data to sign" >"$tmp/data"
rm -f "$tmp/stats"
sign || fail "plain sign"
[ "$(stat_of C_Login "$tmp/stats")" = 1 ] && [ "$(stat_of C_Sign "$tmp/stats")" = 1 ] ||
	fail "stats file: want C_Login 1 and C_Sign 1, got: $(tr '\n' ' ' <"$tmp/stats")"
ok "token init, keygen, sign; stats count C_Login 1, C_Sign 1"

control 'fail C_Login CKR_PIN_LOCKED count=1'
p11 "${login[@]}" --list-objects && fail "first login passed despite 'fail C_Login ... count=1'"
grep -q CKR_PIN_LOCKED "$out" || fail "first login failed, but not with CKR_PIN_LOCKED"
p11 "${login[@]}" --list-objects || fail "second login failed: count=1 should fail only once"
ok "fail C_Login CKR_PIN_LOCKED count=1: one failure, then logins work"

control 'fail C_Login 0x30 count=1 after=1   # CKR_DEVICE_ERROR'
p11 "${login[@]}" --list-objects || fail "login 1 of 3 failed: after=1 lets one call through"
p11 "${login[@]}" --list-objects && fail "login 2 of 3 passed despite 'fail C_Login 0x30 count=1 after=1'"
grep -q CKR_DEVICE_ERROR "$out" || fail "login 2 of 3 failed, but not with CKR_DEVICE_ERROR"
p11 "${login[@]}" --list-objects || fail "login 3 of 3 failed: count=1 should fail only once"
ok "fail C_Login 0x30 count=1 after=1: pass, fail, pass across processes"

control 'bogus line' 'fail C_Nope CKR_OK' 'fail C_GenerateRandom CKR_DEVICE_ERROR'
p11 --generate-random 8 && fail "C_GenerateRandom passed after malformed lines"
[ "$(grep -cF "p11fault: $ctl:1: " "$out")" = 1 ] && [ "$(grep -cF "p11fault: $ctl:2: " "$out")" = 1 ] ||
	fail "want one 'p11fault: $ctl:<line>: ...' message each for lines 1 and 2"
ok "malformed lines reported once each and skipped; later rules still apply"

control 'latency C_Sign 200'
start=$(now_ms)
sign || fail "sign with latency"
took=$(($(now_ms) - start))
[ "$took" -ge 200 ] || fail "'latency C_Sign 200' but the sign took ${took} ms"
ok "latency C_Sign 200: sign took ${took} ms"

control remove
p11 --list-token-slots # "No slots." and a non-zero exit, in opensc 0.23
grep -q "token label" "$out" && fail "--list-token-slots shows a token while removed"
p11 --list-slots || fail "--list-slots"
grep -q "token label" "$out" && fail "--list-slots shows a token while removed"
p11 "${login[@]}" --list-objects && fail "login worked while the token was removed"
control '# token back'
p11 "${login[@]}" --list-objects || fail "login after the token came back"
ok "remove: no token listed, login fails; works again once the line is gone"

# In-process checks pkcs11-tool cannot make: a session of the removed token
# stays dead, the login is gone, delayed calls overlap across threads.
command -v python3 >/dev/null || { echo "selftest: in-process checks skipped: no python3"; exit 0; }
env ${preload:+LD_PRELOAD="$preload"} P11FAULT_STATS="$tmp/stats.py" \
	python3 - "$mod" >"$out" 2>&1 <<'PY' || fail "in-process checks"
import ctypes as C, os, sys, threading, time

ctl, stats_path = os.environ["P11FAULT_CONFIG"], os.environ["P11FAULT_STATS"]
NAMES = """Initialize Finalize GetInfo GetFunctionList GetSlotList GetSlotInfo GetTokenInfo
GetMechanismList GetMechanismInfo InitToken InitPIN SetPIN OpenSession CloseSession
CloseAllSessions GetSessionInfo GetOperationState SetOperationState Login Logout
CreateObject CopyObject DestroyObject GetObjectSize GetAttributeValue SetAttributeValue
FindObjectsInit FindObjects FindObjectsFinal EncryptInit Encrypt EncryptUpdate EncryptFinal
DecryptInit Decrypt DecryptUpdate DecryptFinal DigestInit Digest DigestUpdate DigestKey
DigestFinal SignInit Sign SignUpdate SignFinal SignRecoverInit SignRecover VerifyInit Verify
VerifyUpdate VerifyFinal VerifyRecoverInit VerifyRecover DigestEncryptUpdate
DecryptDigestUpdate SignEncryptUpdate DecryptVerifyUpdate GenerateKey GenerateKeyPair WrapKey
UnwrapKey DeriveKey SeedRandom GenerateRandom GetFunctionStatus CancelFunction
WaitForSlotEvent""".split()
assert len(NAMES) == 68
U, P = C.c_ulong, C.c_void_p
SIGS = {"Initialize": [P], "Finalize": [P], "GetSlotList": [C.c_ubyte, P, P],
        "GetTokenInfo": [U, P], "OpenSession": [U, U, P, P, P], "CloseSession": [U],
        "GetSessionInfo": [U, P], "Login": [U, U, C.c_char_p, U],
        "FindObjectsInit": [U, P, U], "FindObjects": [U, P, U, P], "FindObjectsFinal": [U],
        "SignInit": [U, P, U], "Sign": [U, P, U, P, P], "GenerateRandom": [U, P, U]}

lib = C.CDLL(sys.argv[1])
table = P()
assert lib.C_GetFunctionList(C.byref(table)) == 0
slots = C.cast(table, C.POINTER(P))  # slot 0 holds the (padded) version
f = {n: C.CFUNCTYPE(U, *a)(slots[1 + NAMES.index(n)]) for n, a in SIGS.items()}

class InitArgs(C.Structure):
    _fields_ = [("create", P), ("destroy", P), ("lock", P), ("unlock", P), ("flags", U), ("rsv", P)]
class Mech(C.Structure):
    _fields_ = [("mech", U), ("param", P), ("len", U)]
class Attr(C.Structure):
    _fields_ = [("type", U), ("value", P), ("len", U)]

failures = []
def check(what, got, want):
    print("%s %s: got %r, want %r" % ("ok  " if got == want else "FAIL", what, got, want))
    if got != want:
        failures.append(what)

def control(text):
    with open(ctl + ".new", "w") as fh:
        fh.write(text)
    os.rename(ctl + ".new", ctl)

def token_slot():
    n = U(0)
    f["GetSlotList"](1, None, C.byref(n))
    ids = (U * max(n.value, 1))()
    f["GetSlotList"](1, ids, C.byref(n))
    for s in ids[:n.value]:
        info = C.create_string_buffer(256)
        if f["GetTokenInfo"](s, info) == 0 and info.raw[:32].rstrip() == b"t":
            return s
    sys.exit("no token labelled t")

def open_session(slot):
    h = U(0)
    rv = f["OpenSession"](slot, 6, None, None, C.byref(h))  # CKF_SERIAL_SESSION|CKF_RW_SESSION
    return rv, h.value

def find_privkey(s):
    cls = U(3)  # CKO_PRIVATE_KEY
    a = Attr(0, C.cast(C.byref(cls), P), C.sizeof(cls))  # CKA_CLASS
    f["FindObjectsInit"](s, C.byref(a), 1)
    o, n = U(0), U(0)
    f["FindObjects"](s, C.byref(o), 1, C.byref(n))
    f["FindObjectsFinal"](s)
    return o.value if n.value else None

def sign(s, key):
    m = Mech(0x1041, None, 0)  # CKM_ECDSA
    rv = f["SignInit"](s, C.byref(m), key)
    if rv:
        return rv
    data, sig, n = (C.c_ubyte * 32)(), (C.c_ubyte * 128)(), U(128)
    return f["Sign"](s, data, 32, sig, C.byref(n))

def random_call(s):
    buf = (C.c_ubyte * 16)()
    return f["GenerateRandom"](s, buf, 16)

control("")
check("C_Initialize", f["Initialize"](C.byref(InitArgs(flags=2))), 0)  # CKF_OS_LOCKING_OK
slot = token_slot()
rv, s1 = open_session(slot)
check("open s1", rv, 0)
check("login on s1", f["Login"](s1, 1, b"1234", 4), 0)
key = find_privkey(s1)
check("sign before removal", sign(s1, key), 0)

control("remove\n")
check("s1 while removed (CKR_DEVICE_REMOVED)", f["GetSessionInfo"](s1, C.create_string_buffer(64)), 0x32)
check("C_OpenSession while removed (CKR_TOKEN_NOT_PRESENT)", open_session(slot)[0], 0xE0)
n = U(9)
f["GetSlotList"](1, None, C.byref(n))
check("slots with a token while removed", n.value, 0)

control("# back\n")
check("s1 after return (CKR_SESSION_HANDLE_INVALID)", sign(s1, key), 0xB3)
rv, s2 = open_session(slot)
check("open s2 after return", rv, 0)
info = (U * 4)()
f["GetSessionInfo"](s2, info)
check("s2 state: logged out (CKS_RW_PUBLIC_SESSION)", info[1], 2)
# SoftHSM2 drops private-object handles at logout.
check("old private key handle (CKR_OBJECT_HANDLE_INVALID)", sign(s2, key), 0x82)
check("private key hidden until C_Login", find_privkey(s2), None)
check("close dead s1 (forwarded)", f["CloseSession"](s1), 0)
check("login again on s2", f["Login"](s2, 1, b"1234", 4), 0)
check("sign after login", sign(s2, find_privkey(s2)), 0)

control("fail C_Sign CKR_DEVICE_ERROR count=1\n")
check("faked C_Sign failure", sign(s2, find_privkey(s2)), 0x30)
# The faked error ended the real operation too: no CKR_OPERATION_ACTIVE.
check("sign again on the same session", sign(s2, find_privkey(s2)), 0)

control("fail C_GenerateRandom CKR_DEVICE_ERROR after=1 count=2\n")
check("after=1 count=2 answers", [random_call(s2) for _ in range(4)], [0, 0x30, 0x30, 0])

control("latency C_GenerateRandom 300\n")
sessions = [open_session(slot)[1] for _ in range(4)]
results = []
t0 = time.monotonic()
threads = [threading.Thread(target=lambda s=s: results.append(random_call(s))) for s in sessions]
for t in threads:
    t.start()
for t in threads:
    t.join()
took = time.monotonic() - t0
check("4 delayed calls in 4 threads", results, [0] * 4)
check("they overlap: 0.3 s <= %.2f s < 1.0 s" % took, 0.3 <= took < 1.0, True)

control("")
check("C_Finalize", f["Finalize"](None), 0)
stats = dict(line.split() for line in open(stats_path))
check("stats C_Login", stats["C_Login"], "2")
check("stats C_GenerateRandom", stats["C_GenerateRandom"], "8")
sys.exit(1 if failures else 0)
PY
sed 's/^/    /' "$out"
ok "in-process: removal kills old sessions and the login, latency overlaps, counts"
