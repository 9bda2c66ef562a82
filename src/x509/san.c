/* subjectAltName entries as text: "dns:NAME", "ip:ADDRESS", "email:ADDR"
 * and "uri:URI", to and from GENERAL_NAME. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <p11pki/x509.h>

#include "core/text.h"

#define SPEC_MAX 4096	/* bytes of one entry */
#define LOCAL_MAX 64	/* RFC 5321 local-part length */

enum san_kind { SAN_DNS, SAN_IP, SAN_EMAIL, SAN_URI };

static const struct {
	const char *prefix; /* without the ':' */
	enum san_kind kind;
	int gen_type;
} kinds[] = {
	{ "dns", SAN_DNS, GEN_DNS },
	{ "ip", SAN_IP, GEN_IPADD },
	{ "email", SAN_EMAIL, GEN_EMAIL },
	{ "uri", SAN_URI, GEN_URI },
};
#define N_KINDS (sizeof(kinds) / sizeof(kinds[0]))

/* Re-records the current message prefixed with the entry it concerns. */
static int fail_in(int rc, const char *spec)
{
	char msg[512], show[P11PKI_SHOWN_BUF];

	snprintf(msg, sizeof(msg), "%s", p11pki_errmsg());
	return p11pki_fail(rc, "subjectAltName '%s': %s", p11pki_shown(spec, show, sizeof(show)), msg);
}

static int visible_ascii(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
			return 0;
	return 1;
}

static int new_gn(int type, const unsigned char *data, size_t len, GENERAL_NAME **out)
{
	ASN1_STRING *str = NULL;
	GENERAL_NAME *gn = NULL;
	int rc = P11PKI_OK;

	str = type == GEN_IPADD ? ASN1_OCTET_STRING_new() : ASN1_IA5STRING_new();
	if (str == NULL || (gn = GENERAL_NAME_new()) == NULL ||
	    ASN1_STRING_set(str, data, (int)len) != 1) {
		rc = p11pki_fail(P11PKI_E_NOMEM, "out of memory");
		goto out;
	}
	GENERAL_NAME_set0_value(gn, type, str);
	str = NULL;
	*out = gn;
	gn = NULL;
out:
	ASN1_STRING_free(str);
	GENERAL_NAME_free(gn);
	return rc;
}

static int parse_dns(const char *value, GENERAL_NAME **out)
{
	char *ascii = NULL;
	int rc;

	if ((rc = p11pki_host_to_ascii(value, &ascii)) != 0)
		return rc;
	rc = new_gn(GEN_DNS, (const unsigned char *)ascii, strlen(ascii), out);
	free(ascii);
	return rc;
}

static int parse_ip(const char *value, GENERAL_NAME **out)
{
	unsigned char addr[16];
	char inner[64];
	size_t n = strlen(value);

	if (inet_pton(AF_INET, value, addr) == 1)
		return new_gn(GEN_IPADD, addr, 4, out);
	if (inet_pton(AF_INET6, value, addr) == 1)
		return new_gn(GEN_IPADD, addr, 16, out);
	/* "[2001:db8::1]" as in URLs */
	if (n > 2 && n - 2 < sizeof(inner) && value[0] == '[' && value[n - 1] == ']') {
		memcpy(inner, value + 1, n - 2);
		inner[n - 2] = '\0';
		if (inet_pton(AF_INET6, inner, addr) == 1)
			return new_gn(GEN_IPADD, addr, 16, out);
	}
	return p11pki_fail(P11PKI_E_ARG, "not an IPv4 or IPv6 address");
}

static int parse_email(const char *value, GENERAL_NAME **out)
{
	const char *at = strchr(value, '@');
	char *local = NULL, *domain = NULL, *addr = NULL;
	size_t llen, alen;
	int rc;

	if (at == NULL || strchr(at + 1, '@') != NULL)
		return p11pki_fail(P11PKI_E_ARG, "an email address has exactly one '@'");
	llen = (size_t)(at - value);
	if (llen == 0 || at[1] == '\0')
		return p11pki_fail(P11PKI_E_ARG, "both sides of the '@' must be non-empty");
	if (llen > LOCAL_MAX)
		return p11pki_fail(P11PKI_E_ARG, "the part before '@' is longer than %d characters",
				   LOCAL_MAX);
	if (at[1] == '*')
		return p11pki_fail(P11PKI_E_ARG, "the domain of an email address cannot be a "
						 "wildcard");
	if ((local = strndup(value, llen)) == NULL) {
		rc = p11pki_fail(P11PKI_E_NOMEM, "out of memory");
		goto out;
	}
	/* rfc822Name is IA5String: internationalised mailboxes need SmtpUTF8Mailbox */
	if (!visible_ascii(local)) {
		rc = p11pki_fail(P11PKI_E_ARG, "the part before '@' must be ASCII without spaces");
		goto out;
	}
	if ((rc = p11pki_host_to_ascii(at + 1, &domain)) != 0)
		goto out;
	alen = llen + 1 + strlen(domain) + 1;
	if ((addr = malloc(alen)) == NULL) {
		rc = p11pki_fail(P11PKI_E_NOMEM, "out of memory");
		goto out;
	}
	snprintf(addr, alen, "%s@%s", local, domain);
	rc = new_gn(GEN_EMAIL, (const unsigned char *)addr, strlen(addr), out);
out:
	free(addr);
	free(domain);
	free(local);
	return rc;
}

/* RFC 5280 wants a scheme and a scheme-specific part (RFC 3986 syntax). */
static int parse_uri(const char *value, GENERAL_NAME **out)
{
	size_t n = strspn(value, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				 "0123456789+-.");

	if (n == 0 || value[n] != ':' || !((value[0] | 0x20) >= 'a' && (value[0] | 0x20) <= 'z'))
		return p11pki_fail(P11PKI_E_ARG, "a URI must start with a scheme such as https:");
	if (value[n + 1] == '\0')
		return p11pki_fail(P11PKI_E_ARG, "the URI has nothing after its scheme");
	if (!visible_ascii(value))
		return p11pki_fail(P11PKI_E_ARG, "a URI must be ASCII without spaces: "
						 "percent-encode other characters");
	return new_gn(GEN_URI, (const unsigned char *)value, strlen(value), out);
}

static int parse_kind(enum san_kind kind, const char *value, GENERAL_NAME **out)
{
	switch (kind) {
	case SAN_DNS: return parse_dns(value, out);
	case SAN_IP: return parse_ip(value, out);
	case SAN_EMAIL: return parse_email(value, out);
	case SAN_URI: return parse_uri(value, out);
	}
	return p11pki_fail(P11PKI_E_ARG, "unknown kind");
}

int p11pki_san_parse(const char *spec, GENERAL_NAME **out)
{
	char show[P11PKI_SHOWN_BUF], *value = NULL;
	const char *colon;
	size_t i, plen, n;
	int rc;

	if (out == NULL)
		return p11pki_fail(P11PKI_E_ARG, "p11pki_san_parse: no output pointer");
	*out = NULL;
	if (spec == NULL || spec[0] == '\0')
		return p11pki_fail(P11PKI_E_ARG, "empty subjectAltName");
	if (strlen(spec) > SPEC_MAX)
		return p11pki_fail(P11PKI_E_ARG, "subjectAltName longer than %d bytes", SPEC_MAX);
	p11pki_shown(spec, show, sizeof(show));
	colon = strchr(spec, ':');
	plen = colon ? (size_t)(colon - spec) : 0;
	for (i = 0; colon != NULL && i < N_KINDS; i++)
		if (strlen(kinds[i].prefix) == plen &&
		    strncasecmp(spec, kinds[i].prefix, plen) == 0)
			break;
	if (colon == NULL || i == N_KINDS)
		return p11pki_fail(P11PKI_E_ARG,
				   "subjectAltName '%s' must start with dns:, ip:, email: or uri:",
				   show);
	/* spaces around the name are a typing accident, not part of it */
	colon += 1 + strspn(colon + 1, " \t");
	for (n = strlen(colon); n > 0 && (colon[n - 1] == ' ' || colon[n - 1] == '\t'); n--)
		;
	if (n == 0)
		return p11pki_fail(P11PKI_E_ARG, "subjectAltName '%s' has an empty name", show);
	if ((value = strndup(colon, n)) == NULL)
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
	if ((rc = parse_kind(kinds[i].kind, value, out)) != 0 && rc != P11PKI_E_NOMEM)
		rc = fail_in(rc, spec);
	free(value);
	return rc;
}

/* prefix then the bytes, anything outside printable ASCII as \xNN so a
 * hostile certificate cannot inject control characters. */
static int format_string(const char *prefix, const ASN1_STRING *s, char **out)
{
	const unsigned char *d = s ? ASN1_STRING_get0_data(s) : NULL;
	size_t i, o, n = s ? (size_t)ASN1_STRING_length(s) : 0, cap = strlen(prefix) + 4 * n + 1;
	char *res;

	if (s == NULL || (d == NULL && n > 0))
		return p11pki_fail(P11PKI_E_ARG, "subjectAltName without a value");
	if ((res = malloc(cap)) == NULL)
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
	o = (size_t)snprintf(res, cap, "%s", prefix);
	for (i = 0; i < n; i++) {
		if (d[i] >= 0x20 && d[i] < 0x7f)
			res[o++] = (char)d[i];
		else
			o += (size_t)snprintf(res + o, cap - o, "\\x%02x", d[i]);
	}
	res[o] = '\0';
	*out = res;
	return P11PKI_OK;
}

static int format_ip(const ASN1_OCTET_STRING *ip, char **out)
{
	char text[INET6_ADDRSTRLEN + 4];
	int len = ip ? ASN1_STRING_length(ip) : 0;
	const unsigned char *d = ip ? ASN1_STRING_get0_data(ip) : NULL;

	if (d == NULL || (len != 4 && len != 16) ||
	    inet_ntop(len == 4 ? AF_INET : AF_INET6, d, text + 3, sizeof(text) - 3) == NULL)
		return p11pki_fail(P11PKI_E_ARG,
				   "subjectAltName IP address of %d bytes: only 4 (IPv4) or 16 "
				   "(IPv6) are addresses", len);
	memcpy(text, "ip:", 3);
	if ((*out = strdup(text)) == NULL)
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
	return P11PKI_OK;
}

static const char *gen_type_name(int type)
{
	switch (type) {
	case GEN_OTHERNAME: return "otherName";
	case GEN_X400: return "x400Address";
	case GEN_DIRNAME: return "directoryName";
	case GEN_EDIPARTY: return "ediPartyName";
	case GEN_RID: return "registeredID";
	default: return "unknown";
	}
}

int p11pki_san_format(const GENERAL_NAME *gn, char **out)
{
	if (out == NULL)
		return p11pki_fail(P11PKI_E_ARG, "p11pki_san_format: no output pointer");
	*out = NULL;
	if (gn == NULL)
		return p11pki_fail(P11PKI_E_ARG, "p11pki_san_format: no name");
	switch (gn->type) {
	case GEN_DNS: return format_string("dns:", gn->d.dNSName, out);
	case GEN_EMAIL: return format_string("email:", gn->d.rfc822Name, out);
	case GEN_URI: return format_string("uri:", gn->d.uniformResourceIdentifier, out);
	case GEN_IPADD: return format_ip(gn->d.iPAddress, out);
	default:
		return p11pki_fail(P11PKI_E_UNSUPPORTED,
				   "subjectAltName of type %s has no text form here",
				   gen_type_name(gn->type));
	}
}
