/* base64 for the online protocols (base64.h): written here rather than
 * with EVP_DecodeBlock, which accepts stray bytes and keeps the padding
 * zeros in its length. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <p11pki/core.h>

#include "online/base64.h"

#define LINE_CHARS 64

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t online_base64_encoded_len(size_t len, int lines)
{
	size_t chars = (len + 2) / 3 * 4;

	return lines ? chars + (chars + LINE_CHARS - 1) / LINE_CHARS : chars;
}

/* The four characters of one group of up to three bytes. */
static void encode_group(const unsigned char *in, size_t n, char *out)
{
	unsigned long v = (unsigned long)in[0] << 16;

	if (n > 1)
		v |= (unsigned long)in[1] << 8;
	if (n > 2)
		v |= in[2];
	out[0] = alphabet[(v >> 18) & 63];
	out[1] = alphabet[(v >> 12) & 63];
	out[2] = n > 1 ? alphabet[(v >> 6) & 63] : '=';
	out[3] = n > 2 ? alphabet[v & 63] : '=';
}

int online_base64_encode(const unsigned char *in, size_t len, int lines, char **out, size_t *out_len)
{
	size_t i, o = 0, col = 0;
	char *s;

	*out = NULL;
	*out_len = 0;
	if (len > (SIZE_MAX - 16) / 2 || (s = malloc(online_base64_encoded_len(len, lines) + 1)) == NULL)
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory encoding %zu bytes as base64", len);
	for (i = 0; i < len; i += 3) {
		encode_group(in + i, len - i < 3 ? len - i : 3, s + o);
		o += 4;
		col += 4;
		if (lines && (col == LINE_CHARS || i + 3 >= len)) {
			s[o++] = '\n';
			col = 0;
		}
	}
	s[o] = '\0';
	*out = s;
	*out_len = o;
	return P11PKI_OK;
}

static int value_of(unsigned char c)
{
	const char *p = c != '\0' ? strchr(alphabet, c) : NULL;

	return p != NULL ? (int)(p - alphabet) : -1;
}

static int is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Appends the bytes of one complete group of four characters (pad is how
 * many of them are '='). */
static size_t decode_group(const int v[4], int pad, unsigned char *out)
{
	unsigned long bits = (unsigned long)v[0] << 18 | (unsigned long)v[1] << 12 | (unsigned long)v[2] << 6 |
			     (unsigned long)v[3];

	out[0] = (unsigned char)(bits >> 16);
	out[1] = (unsigned char)(bits >> 8);
	out[2] = (unsigned char)bits;
	return (size_t)(3 - pad);
}

static int bad_input(unsigned char *buf, const char *why)
{
	free(buf);
	return p11pki_fail(P11PKI_E_ARG, "not valid base64: %s", why);
}

int online_base64_decode(const char *in, size_t len, int skip_space, unsigned char **out, size_t *out_len)
{
	unsigned char *buf;
	size_t i, o = 0;
	int v[4], n = 0, pad = 0, x;

	*out = NULL;
	*out_len = 0;
	if ((buf = malloc(len / 4 * 3 + 3)) == NULL)
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory decoding %zu bytes of base64", len);
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		if (skip_space && is_space(c))
			continue;
		if (pad > 0 && n == 0)
			return bad_input(buf, "data after the '=' padding");
		if (c == '=') {
			/* only the last one or two characters of a group */
			if (n < 2)
				return bad_input(buf, "misplaced '=' padding");
			pad++;
			x = 0;
		} else if (pad > 0) {
			return bad_input(buf, "data after the '=' padding");
		} else if ((x = value_of(c)) < 0) {
			return bad_input(buf, "a character outside the base64 alphabet");
		}
		v[n++] = x;
		if (n == 4) {
			o += decode_group(v, pad, buf + o);
			n = 0;
		}
	}
	if (n != 0)
		return bad_input(buf, "its length is not a multiple of four");
	*out = buf;
	*out_len = o;
	return P11PKI_OK;
}

int online_base64url_encode(const unsigned char *in, size_t len, char *buf, size_t size)
{
	size_t i, o = 0;
	char group[4];
	int k, keep;

	if (size == 0 || len > size / 4 * 3 || (len + 2) / 3 * 4 >= size)
		return p11pki_fail(P11PKI_E_ARG, "no room for the base64url form of %zu bytes", len);
	for (i = 0; i < len; i += 3) {
		encode_group(in + i, len - i < 3 ? len - i : 3, group);
		keep = len - i >= 3 ? 4 : (int)(len - i) + 1;
		for (k = 0; k < keep; k++)
			buf[o++] = group[k] == '+' ? '-' : group[k] == '/' ? '_' : group[k];
	}
	buf[o] = '\0';
	return P11PKI_OK;
}
