/* Private to the library: base64 (RFC 4648) as the online protocols use
 * it: EST bodies (RFC 7030, line breaks allowed), HTTP Basic credentials
 * and the stored secret hashes (one line, strict). */
#ifndef P11PKI_ONLINE_BASE64_H
#define P11PKI_ONLINE_BASE64_H

#include <stddef.h>

/* Characters online_base64_encode writes for len bytes (NUL excluded). */
size_t online_base64_encoded_len(size_t len, int lines);

/* Encodes len bytes with padding into a new NUL-terminated string; with
 * lines set, a "\n" after every 64 characters and at the end (RFC 2045
 * style, as EST clients expect). Caller frees *out with free(). */
int online_base64_encode(const unsigned char *in, size_t len, int lines, char **out, size_t *out_len);

/* Decodes padded base64. With skip_space, spaces, tabs, CR and LF
 * anywhere are ignored; any other byte outside the alphabet, padding
 * other than one or two '=' at the end, or a length that is not a
 * multiple of four is P11PKI_E_ARG. Caller frees *out with free(); an
 * empty input gives *out_len 0 and a non-NULL *out. */
int online_base64_decode(const char *in, size_t len, int skip_space, unsigned char **out, size_t *out_len);

/* Writes the base64url form (RFC 4648 section 5, no padding) of len bytes
 * into buf; P11PKI_E_ARG if buf (with its NUL) is too small. */
int online_base64url_encode(const unsigned char *in, size_t len, char *buf, size_t size);

#endif
