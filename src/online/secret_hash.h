/* Private to the library: the names and secrets of EST users (RFC 7030
 * HTTP Basic authentication). The store keeps only
 * "pbkdf2-sha256$ITERATIONS$SALT$HASH" (salt and hash in base64), so a
 * copied database does not give the secrets away. */
#ifndef P11PKI_ONLINE_SECRET_HASH_H
#define P11PKI_ONLINE_SECRET_HASH_H

#include <stddef.h>

#include <p11pki/core.h>

#define P11PKI_EST_SECRET_BYTES 24	/* random bytes of a new secret */
#define P11PKI_EST_SECRET_SIZE 40	/* its base64url text (32) and NUL fit */
#define P11PKI_EST_HASH_SIZE 128	/* a hash string and its NUL fit */

/* A new random secret: P11PKI_EST_SECRET_BYTES from the CSPRNG as
 * base64url, into buf (at least P11PKI_EST_SECRET_SIZE bytes). */
P11PKI_API int p11pki_est_secret_new(char *buf, size_t size);

/* Hashes a secret with a new random 16-byte salt into buf (at least
 * P11PKI_EST_HASH_SIZE bytes). */
P11PKI_API int p11pki_est_secret_hash(const char *secret, size_t len, char *buf, size_t size);

/* 1 when secret matches hash, 0 when it does not (compared in constant
 * time), P11PKI_E_ARG when hash is not a string p11pki_est_secret_hash
 * makes (message names the part, never the secret). A NULL hash spends
 * the time of a verification and returns 0: for unknown users, so that
 * timing does not tell which names exist. */
P11PKI_API int p11pki_est_secret_verify(const char *secret, size_t len, const char *hash);

/* A user name `p11pki est user add` accepts: 1 to 63 of A-Z a-z 0-9
 * . _ @ - (no colon: Basic credentials split on the first one). */
P11PKI_API int p11pki_est_user_name_ok(const char *name);

#endif
