#!/usr/bin/env bash
# The main job: sets up, builds, and shows p11pki on the embedded default
# token and database ($P11PKI_HOME, default ~/.local/share/p11pki): a
# token, keys generated on it, listed, proof that the private key cannot
# be read; a CA whose keys live on the token and its store; then the CA
# online: p11pki serve answering EST, OCSP and CRLs over TLS with a token
# key, a key provisioned by `p11pki enroll`, revoked, seen revoked.
set -euo pipefail
cd "$(dirname "$0")/.."
build=$(scripts/setup.sh | tail -n 1)
p11pki="$PWD/$build/p11pki"

home=${P11PKI_HOME:-$HOME/.local/share/p11pki}
mkdir -p "$home/demo" && chmod 700 "$home" "$home/demo"
umask 077
# PINs live in files readable only by this user; never on the command line.
for f in so.pin user.pin; do
  [ -s "$home/demo/$f" ] || openssl rand -hex 8 > "$home/demo/$f"
done
pin="--pin-source file:$home/demo/user.pin"

run() { echo; echo "\$ p11pki $*"; "$p11pki" "$@"; }

if ! "$p11pki" token list | grep -q '^  token: demo$'; then
  run token init --label demo --so-pin-source "file:$home/demo/so.pin" $pin
fi
run token list
stamp=$(date +%s)
run key gen --token demo --type ec:p256 --label "www-$stamp" $pin
run key gen --token demo --type rsa:2048 --label "legacy-$stamp" $pin
run key list --token demo $pin
run key pub "pkcs11:token=demo;object=www-$stamp" $pin
run key audit "pkcs11:token=demo;object=www-$stamp" $pin
run key audit "pkcs11:token=demo;object=legacy-$stamp" $pin
echo
echo "\$ p11pki key gen --token demo --type rsa:1024 ...   (refused)"
"$p11pki" key gen --token demo --type rsa:1024 --label weak $pin || true
# ---- a CA on the token, and the store of what it issued ($home/ca.db) ----
d=$home/demo
if ! "$p11pki" ca cert --ca demo-issuing -o "$d/issuing.crt" >/dev/null 2>&1; then
  run ca init --name demo-root --token demo --type ec:p384 --days 3650 --subject 'CN=p11pki Demo Root' $pin
  run ca init --name demo-issuing --parent demo-root --token demo --type ec:p256 --subject 'CN=p11pki Demo Issuing' $pin
  "$p11pki" ca cert --ca demo-issuing -o "$d/issuing.crt"
fi
"$p11pki" ca cert --ca demo-root -o "$d/root.crt"
cat "$d/root.crt" "$d/issuing.crt" > "$d/chain.pem"
run csr --key "pkcs11:token=demo;object=www-$stamp" --subject CN=localhost --san dns:localhost -o "$d/www.csr" $pin
run ca sign --ca demo-issuing --profile server --csr "$d/www.csr" -o "$d/www.crt" $pin

# ---- the CA online: EST, OCSP and CRLs from p11pki serve -----------------
mkdir -p "$d/crl"
cat > "$d/serve.conf" <<CONF
[ online ]
crl_dir = $d/crl
[ serve ]
bindings = pki
bound_file = $d/bound
pin_source = file:$d/user.pin
[ pki ]
listen = 127.0.0.1:0
key = pkcs11:token=demo;object=www-$stamp;type=private
cert = $d/www.crt
chain = $d/issuing.crt
mode = http
client_auth = optional
client_ca = $d/chain.pem
est = demo-issuing/server
ocsp = demo-issuing
crls = demo-issuing
CONF
rm -f "$d/bound"
echo; echo "\$ p11pki serve -c $d/serve.conf   (in the background)"
"$p11pki" serve -c "$d/serve.conf" 2> "$d/serve.log" &
serve_pid=$!
trap 'kill "$serve_pid" 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s "$d/bound" ] && break; sleep 0.1; done
port=$(awk '$1 == "pki" { sub(/.*:/, "", $2); print $2 }' "$d/bound")
url=https://localhost:$port
echo; echo "\$ p11pki est user add app-$stamp --ca demo-issuing --profile server   (secret kept in EST_SECRET)"
EST_SECRET=$("$p11pki" est user add "app-$stamp" --ca demo-issuing --profile server | awk '/^secret/ { print $2 }')
export EST_SECRET
run enroll --server "$url" --ca-file "$d/root.crt" --token demo --type ec:p256 --label "app-$stamp" \
  --subject "CN=app-$stamp.demo.test" --san "dns:app-$stamp.demo.test" --user "app-$stamp" --secret-env EST_SECRET $pin
"$p11pki" cert export "pkcs11:token=demo;object=app-$stamp;type=cert" -o "$d/app.crt" $pin >/dev/null
ocsp_status() {
  openssl ocsp -issuer "$d/issuing.crt" -cert "$d/app.crt" -no_nonce -reqout "$d/ocsp.req" >/dev/null 2>&1
  curl -s --cacert "$d/chain.pem" -H 'Content-Type: application/ocsp-request' --data-binary @"$d/ocsp.req" \
    "$url/ocsp" -o "$d/ocsp.resp"
  openssl ocsp -issuer "$d/issuing.crt" -cert "$d/app.crt" -respin "$d/ocsp.resp" -CAfile "$d/chain.pem" 2>&1 |
    grep -E 'verify|app.crt' || true
}
echo; echo "\$ openssl ocsp ... (POST $url/ocsp)"; ocsp_status
serial=$(openssl x509 -in "$d/app.crt" -noout -serial | cut -d= -f2)
run ca revoke --ca demo-issuing --serial "$serial" --reason keyCompromise
echo; echo "\$ openssl ocsp ... (again)"; ocsp_status
echo; echo "\$ curl $url/crl/demo-issuing.crl | openssl crl -inform DER -noout -text"
curl -s --cacert "$d/chain.pem" "$url/crl/demo-issuing.crl" | openssl crl -inform DER -noout -text |
  grep -E 'Issuer|Next Update|Serial Number|Compromise' | sed -n 1,8p || true
echo; echo "\$ openssl verify -crl_check -CRLfile $d/crl/demo-issuing.crl.pem ... app.crt   (refused: revoked)"
openssl verify -crl_check -CAfile "$d/chain.pem" -CRLfile "$d/crl/demo-issuing.crl.pem" "$d/app.crt" 2>&1 | tail -2 || true
kill -TERM "$serve_pid"; wait "$serve_pid" || true

echo
echo "demo: done. Token files are under $home/tokens; the CA store is $home/ca.db; PINs and files in $home/demo."
