/* UTF-8 checks and text for error messages (text.h). */
#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>

#include "core/text.h"

size_t p11pki_utf8_len(const unsigned char *s, size_t left)
{
	unsigned long cp;
	size_t n, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (left < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

size_t p11pki_utf8_chars(const char *s, size_t len)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, n, chars = 0;

	while (i < len) {
		if ((n = p11pki_utf8_len(u + i, len - i)) == 0)
			return (size_t)-1;
		i += n;
		chars++;
	}
	return chars;
}

/* The one copy behind the p11pki_shown*() functions: with utf8 unset
 * every byte from 0x80 up counts as invalid, so only printable ASCII is
 * kept, byte for byte. */
static const char *shown(const char *s, size_t left, int utf8, char *buf, size_t size)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, o = 0, n, max = size - 4;

	while (i < left) {
		n = utf8 ? p11pki_utf8_len(u + i, left - i) : (size_t)(u[i] < 0x80);
		if (o + (n ? n : 1) > max)
			break;
		if (n == 0 || u[i] < 0x20 || u[i] == 0x7f || (u[i] == 0xc2 && u[i + 1] < 0xa0)) {
			buf[o++] = '?';
			i += n ? n : 1;
			continue;
		}
		memcpy(buf + o, u + i, n);
		o += n;
		i += n;
	}
	if (i < left) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
	return buf;
}

const char *p11pki_shown(const char *s, char *buf, size_t size)
{
	return shown(s, strlen(s), 1, buf, size);
}

const char *p11pki_shown_ascii(const char *s, char *buf, size_t size)
{
	return shown(s, strlen(s), 0, buf, size);
}

const char *p11pki_shown_ascii_n(const char *s, size_t n, char *buf, size_t size)
{
	return shown(s, n, 0, buf, size);
}

int p11pki_hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

void p11pki_name_text(const X509_NAME *name, char *buf, size_t size)
{
	BIO *b = BIO_new(BIO_s_mem());
	int n;

	snprintf(buf, size, "(unprintable name)");
	if (b != NULL && X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0 &&
	    (n = BIO_read(b, buf, (int)size - 1)) >= 0)
		buf[n] = '\0';
	BIO_free(b);
}
