# Device profile: SoftHSM2 (the embedded default token, and the test token).
name = softhsm2
module = /usr/lib/softhsm/libsofthsm2.so
# Mechanisms p11pki relies on; all present in SoftHSM2 2.6.
rsa_pss = yes
ec = yes
# Quirks
# - Its file store fails about one open in ten with CKR_GENERAL_ERROR when
#   several processes open one token at once: p11pki retries with backoff.
# - C_InitToken creates a new empty slot; slot ids are random per token.
max_sessions = unlimited
