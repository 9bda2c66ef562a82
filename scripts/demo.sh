#!/usr/bin/env bash
# The main job: sets up, builds, and shows p11pki on the embedded default
# token ($P11PKI_HOME, default ~/.local/share/p11pki): a token, keys
# generated on it, listed, and proof that the private key cannot be read.
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
echo
echo "demo: done. Token files are under $home/tokens; PINs in $home/demo."
