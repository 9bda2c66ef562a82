/* Host names for certificates: UTS#46 mapping and IDNA2008 A-labels via
 * libidn2, plus the rules certificates add on top (LDH labels, lengths,
 * wildcards only as the whole leftmost label, no IP literals). */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <idn2.h>

#include <p11pki/x509.h>

#include "core/text.h"

#define HOST_IN_MAX 1024 /* input bytes; a U-label is longer than its A-label */
#define HOST_MAX 253	 /* RFC 1035 presentation length without the final dot */
#define LABEL_MAX 63

/* libidn2's STD3 flag silently drops disallowed ASCII ("a_b" -> "ab"),
 * so it stays off and the LDH rule is checked on the result instead. */
#define IDN_FLAGS (IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL)

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
	char show[P11PKI_SHOWN_BUF], *in = NULL, *a = NULL, *res = NULL;
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
	p11pki_shown(host, show, sizeof(show));
	if (p11pki_utf8_chars(host, strlen(host)) == (size_t)-1)
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
