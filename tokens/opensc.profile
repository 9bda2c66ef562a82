# Device profile: smart cards and USB tokens through OpenSC.
name = opensc
module = /usr/lib/x86_64-linux-gnu/opensc-pkcs11.so
# Quirks
# - Many cards do not offer CKM_RSA_PKCS_PSS: TLS 1.3 with RSA keys is then
#   unavailable (p11pki checks the mechanism list before offering it).
# - Many cards allow one session at a time: set the pool size to 1.
rsa_pss = depends-on-card
ec = depends-on-card
max_sessions = 1
