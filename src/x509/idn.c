/* Host names for certificates: UTS#46 mapping and IDNA2008 A-labels via
 * libidn2, plus the rules certificates add on top (LDH labels, lengths,
 * wildcards only as the whole leftmost label, no IP literals). */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <idn2.h>

#include <p11pki/x509.h>

#define HOST_IN_MAX 1024 /* input bytes; a U-label is longer than its A-label */
#define HOST_MAX 253	 /* RFC 1035 presentation length without the final dot */
#define LABEL_MAX 63
#define SHOWN_MAX 64 /* most bytes of user input echoed in errors */

/* libidn2's STD3 flag silently drops disallowed ASCII ("a_b" -> "ab"),
 * so it stays off and the LDH rule is checked on the result instead. */
#define IDN_FLAGS (IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL)

/* Length of the valid UTF-8 sequence at s (left bytes available), or 0
 * for an invalid, overlong, surrogate or truncated one. */
static size_t utf8_len(const unsigned char *s, size_t left)
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

/* Copies at most SHOWN_MAX bytes of user input for an error message:
 * valid UTF-8 is kept, control characters (C0, DEL, C1) and invalid
 * bytes become '?', so input cannot inject terminal escapes. */
static const char *shown(const char *s, char *buf, size_t size)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, o = 0, n, left = strlen(s), max = size - 4;

	while (i < left) {
		n = utf8_len(u + i, left - i);
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

static int utf8_valid(const char *s)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, n, left = strlen(s);

	while (i < left) {
		if ((n = utf8_len(u + i, left - i)) == 0)
			return 0;
		i += n;
	}
	return 1;
}

static int is_ip_literal(const char *s)
{
	unsigned char addr[16];
	char inner[64];
	size_t n = strlen(s);

	if (inet_pton(AF_INET, s, addr) == 1 || inet_pton(AF_INET6, s, addr) == 1)
		return 1;
	/* "[::1]" as in URLs */
	if (n > 2 && n - 2 < sizeof(inner) && s[0] == '[' && s[n - 1] == ']') {
		memcpy(inner, s + 1, n - 2);
		inner[n - 2] = '\0';
		return inet_pton(AF_INET6, inner, addr) == 1;
	}
	return 0;
}

static int all_of(const char *s, size_t n, const char *set)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (s[i] == '\0' || strchr(set, s[i]) == NULL)
			return 0;
	return n > 0;
}

/* True when the last label (a final dot ignored) is a number: browsers
 * parse "1.2.3" or "10.0x1" as IPv4, and no top-level domain is numeric. */
static int numeric_tld(const char *s)
{
	size_t n = strlen(s);
	const char *dot;

	if (n > 0 && s[n - 1] == '.')
		n--;
	for (dot = s + n; dot > s && dot[-1] != '.'; dot--)
		;
	n -= (size_t)(dot - s);
	if (n > 2 && dot[0] == '0' && (dot[1] == 'x' || dot[1] == 'X'))
		return all_of(dot + 2, n - 2, "0123456789abcdefABCDEF");
	return all_of(dot, n, "0123456789");
}

int p11pki_looks_like_host(const char *text)
{
	const char *p;

	if (text == NULL || strchr(text, '.') == NULL)
		return 0;
	for (p = text; *p != '\0'; p++)
		if (strchr(" \t\n\r\v\f@", *p) != NULL)
			return 0;
	return !is_ip_literal(text) && !numeric_tld(text);
}

static int check_label(const char *label, size_t n, const char *show)
{
	size_t i;

	if (n == 0)
		return p11pki_fail(P11PKI_E_ARG, "host name '%s' has an empty label", show);
	if (n > LABEL_MAX)
		return p11pki_fail(P11PKI_E_ARG,
				   "host name '%s' has a label of %zu characters: at most %d are "
				   "allowed", show, n, LABEL_MAX);
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)label[i];

		if (c == '*')
			return p11pki_fail(P11PKI_E_ARG,
					   "host name '%s': a wildcard is allowed only as the "
					   "whole leftmost label", show);
		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')
			continue;
		if (c > 0x20 && c < 0x7f)
			return p11pki_fail(P11PKI_E_ARG,
					   "host name '%s' contains '%c', which is not allowed in "
					   "a DNS name (letters, digits and '-' only)", show, c);
		return p11pki_fail(P11PKI_E_ARG,
				   "host name '%s' contains character 0x%02x, which is not "
				   "allowed in a DNS name", show, c);
	}
	if (label[0] == '-' || label[n - 1] == '-')
		return p11pki_fail(P11PKI_E_ARG,
				   "host name '%s' has a label that starts or ends with '-'", show);
	return P11PKI_OK;
}

/* Rules on the converted (lowercase ASCII, no final dot) name. */
static int check_ascii(const char *a, int wildcard, const char *show)
{
	const char *p = a, *dot;
	size_t total = strlen(a) + (wildcard ? 2 : 0);
	int rc;

	if (a[0] == '\0')
		return p11pki_fail(P11PKI_E_ARG, "host name '%s' is empty", show);
	for (;;) {
		dot = strchr(p, '.');
		if ((rc = check_label(p, dot ? (size_t)(dot - p) : strlen(p), show)) != 0)
			return rc;
		if (dot == NULL)
			break;
		p = dot + 1;
	}
	if (total > HOST_MAX)
		return p11pki_fail(P11PKI_E_ARG,
				   "host name '%s' is %zu characters long: at most %d are allowed",
				   show, total, HOST_MAX);
	if (numeric_tld(a))
		return p11pki_fail(P11PKI_E_ARG,
				   "'%s' looks like an IP address, not a DNS name: write an address "
				   "as ip:ADDRESS", show);
	if (wildcard && strchr(a, '.') == NULL)
		return p11pki_fail(P11PKI_E_ARG,
				   "host name '%s' puts a wildcard over a whole top-level domain",
				   show);
	return P11PKI_OK;
}

/* Runs libidn2 on host (without its "*." if any) and lowercases. */
static int to_alabels(const char *host, const char *show, char **out)
{
	char *a = NULL, *p;
	size_t n;
	int r;

	r = idn2_to_ascii_8z(host, &a, IDN_FLAGS);
	/* libidn2 counts the wire form (255); say it in presentation terms */
	if (r == IDN2_TOO_BIG_DOMAIN)
		return p11pki_fail(P11PKI_E_ARG, "host name '%s' is too long: at most %d "
				   "characters are allowed", show, HOST_MAX);
	if (r == IDN2_TOO_BIG_LABEL)
		return p11pki_fail(P11PKI_E_ARG, "host name '%s' has a label longer than %d "
				   "characters", show, LABEL_MAX);
	if (r != IDN2_OK)
		return p11pki_fail(P11PKI_E_ARG, "host name '%s': %s", show, idn2_strerror(r));
	for (p = a; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	/* UTS#46 maps "。" and the like to '.', so a final dot may appear only now */
	n = strlen(a);
	if (n > 1 && a[n - 1] == '.')
		a[n - 1] = '\0';
	*out = a;
	return P11PKI_OK;
}

int p11pki_host_to_ascii(const char *host, char **out)
{
	char show[SHOWN_MAX + 4], *in = NULL, *a = NULL, *res = NULL;
	size_t n;
	int rc, wildcard;

	if (out == NULL)
		return p11pki_fail(P11PKI_E_ARG, "p11pki_host_to_ascii: no output pointer");
	*out = NULL;
	if (host == NULL || host[0] == '\0')
		return p11pki_fail(P11PKI_E_ARG, "empty host name");
	n = strlen(host);
	if (n > HOST_IN_MAX)
		return p11pki_fail(P11PKI_E_ARG,
				   "host name of %zu bytes is too long: at most %d characters are "
				   "allowed", n, HOST_MAX);
	shown(host, show, sizeof(show));
	if (!utf8_valid(host))
		return p11pki_fail(P11PKI_E_ARG, "host name '%s' is not valid UTF-8", show);
	if (is_ip_literal(host))
		return p11pki_fail(P11PKI_E_ARG,
				   "'%s' is an IP address, not a DNS name: write it as ip:%s", show,
				   show);
	if ((in = strdup(host)) == NULL)
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
	/* "www.example.com." is the same name, but certificates omit the dot */
	if (n > 1 && in[n - 1] == '.')
		in[n - 1] = '\0';
	wildcard = strncmp(in, "*.", 2) == 0;
	if ((rc = to_alabels(in + (wildcard ? 2 : 0), show, &a)) != 0)
		goto out;
	if ((rc = check_ascii(a, wildcard, show)) != 0)
		goto out;
	n = strlen(a) + 3;
	if ((res = malloc(n)) == NULL) {
		rc = p11pki_fail(P11PKI_E_NOMEM, "out of memory");
		goto out;
	}
	snprintf(res, n, "%s%s", wildcard ? "*." : "", a);
	*out = res;
	res = NULL;
out:
	free(res);
	idn2_free(a);
	free(in);
	return rc;
}
