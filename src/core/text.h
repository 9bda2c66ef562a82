/* Private to the library: UTF-8 checks and the text of user input and
 * names as quoted in error messages, shared by the token, x509 and CA
 * layers (one copy, so every message escapes input the same way). */
#ifndef P11PKI_CORE_TEXT_H
#define P11PKI_CORE_TEXT_H

#include <stddef.h>

#include <openssl/x509.h>

/* Most bytes of user input a message quotes, unless a caller has a reason
 * for another bound. The p11pki_shown*() functions copy at most size - 4
 * bytes of input (room for "..." and the NUL), so a buffer of
 * P11PKI_SHOWN_SIZE(max) bytes quotes at most max bytes. */
#define P11PKI_SHOWN_MAX 64
#define P11PKI_SHOWN_SIZE(max) ((max) + 4)
#define P11PKI_SHOWN_BUF P11PKI_SHOWN_SIZE(P11PKI_SHOWN_MAX)

/* Length of the valid UTF-8 sequence at s (left >= 1 bytes available), or
 * 0 for an invalid, overlong, surrogate or truncated one. */
size_t p11pki_utf8_len(const unsigned char *s, size_t left);

/* Counts the characters of the valid UTF-8 s[0..len), or returns
 * (size_t)-1 when it is not valid UTF-8. */
size_t p11pki_utf8_chars(const char *s, size_t len);

/* Copies the NUL-terminated s into buf (size >= 4) for an error message:
 * at most size - 4 bytes, then "..." when s was cut. Valid UTF-8 is kept;
 * control characters (C0, DEL, C1) and invalid bytes become '?', so input
 * cannot inject terminal escapes. Returns buf. */
const char *p11pki_shown(const char *s, char *buf, size_t size);

/* The same for input that must read as plain ASCII: every byte outside
 * 0x20..0x7e, UTF-8 included, becomes '?'. */
const char *p11pki_shown_ascii(const char *s, char *buf, size_t size);
/* p11pki_shown_ascii of the n bytes at s (NUL bytes among them become
 * '?'): for input that is not NUL-terminated. */
const char *p11pki_shown_ascii_n(const char *s, size_t n, char *buf, size_t size);

/* Value of the hexadecimal digit c (either case), or -1. */
int p11pki_hexval(unsigned char c);

/* RFC 4514 text of a name for messages (UTF-8, not escaped), cut to fit
 * buf, or "(unprintable name)". */
void p11pki_name_text(const X509_NAME *name, char *buf, size_t size);

#endif
