/* Private to the library: the parsers of the EST handler (est.c), apart
 * so that they are tested and fuzzed on their own. online.h declares the
 * handler itself. */
#ifndef P11PKI_ONLINE_EST_H
#define P11PKI_ONLINE_EST_H

#include <stddef.h>

#include <openssl/x509.h>

#include "online/online.h"

#define EST_USER_MAX 64		/* bytes of a user name, NUL included */
#define EST_SECRET_MAX 128	/* bytes of a secret, NUL included */
#define EST_REALM "p11pki EST"

/* Parses an Authorization header "Basic base64(user:secret)" (RFC 7617;
 * scheme case-insensitive) into user and secret, NUL-terminated. Refuses
 * another scheme, bad base64, no colon, an empty user, control characters
 * and values that do not fit; the message never holds the secret, and
 * secret is zeroed on failure. */
int est_parse_basic(const char *authorization, char *user, size_t user_size, char *secret, size_t secret_size);

/* Decodes an EST request body: base64 (line breaks allowed) of one DER
 * PKCS#10 request with nothing after it. Does not check the signature.
 * P11PKI_E_ARG with a one-line reason; caller frees *out. */
int est_decode_pkcs10(const unsigned char *body, size_t len, X509_REQ **out);

/* The DER of a degenerate PKCS#7 SignedData holding certs (RFC 7030
 * certs-only), base64 with line breaks. Caller frees *out. */
int est_certs_only(STACK_OF(X509) *certs, char **out, size_t *out_len);

#endif
