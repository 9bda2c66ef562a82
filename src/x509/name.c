/* Subject names: the OpenSSL slash form ("/C=US/O=Org/CN=host") and RFC
 * 4514 ("CN=host,O=Org,C=US") into an X509_NAME in certificate order,
 * and RFC 4514 text back out.
 *
 * Like `openssl req -subj` (3.x), an unescaped '+' always starts another
 * value of the same RDN, in both forms. Unlike it, attribute names are
 * case-insensitive, unescaped spaces around names and values are dropped
 * in both forms, and what it would skip with a warning is an error.
 * RFC 4514 '#' hex values, RFC 2253 quoted values and ';' as a separator
 * are refused rather than half-supported. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/objects.h>

#include <p11pki/x509.h>

#include "core/text.h"

#define NAME_IN_MAX 4096 /* bytes of subject text */
#define AVAS_MAX 64	 /* attribute values in one subject */
#define TYPE_MAX 64	 /* bytes of an attribute name */

/* The usual naming attributes: looked up case-insensitively by their
 * OpenSSL short and long names. */
static const int known_nids[] = {
	NID_countryName,
	NID_stateOrProvinceName,
	NID_localityName,
	NID_organizationName,
	NID_organizationalUnitName,
	NID_commonName,
	NID_pkcs9_emailAddress,
	NID_serialNumber,
	NID_domainComponent,
	NID_userId,
	NID_streetAddress,
	NID_title,
	NID_givenName,
	NID_surname,
	NID_initials,
	NID_generationQualifier,
	NID_dnQualifier,
	NID_pseudonym,
	NID_name,
	NID_description,
	NID_postalCode,
	NID_postOfficeBox,
	NID_businessCategory,
	NID_organizationIdentifier,
	NID_jurisdictionCountryName,
	NID_jurisdictionStateOrProvinceName,
	NID_jurisdictionLocalityName,
	NID_role,
	NID_pkcs9_unstructuredName,
	NID_rfc822Mailbox,
	NID_telephoneNumber,
};
#define N_KNOWN (sizeof(known_nids) / sizeof(known_nids[0]))

/* Other attributes OpenSSL knows are accepted (exact spelling or dotted
 * OID) when their OID is under one of these naming arcs. */
static const char *const naming_arcs[] = {
	"2.5.4.",			/* X.520 attribute types */
	"0.9.2342.19200300.100.1.",	/* RFC 4519 pilot attributes (DC, UID) */
	"1.3.6.1.4.1.311.60.2.1.",	/* EV jurisdiction attributes */
};
#define N_ARCS (sizeof(naming_arcs) / sizeof(naming_arcs[0]))

/* RFC 5280 Appendix A upper bounds, in characters. */
static const struct {
	int nid;
	size_t max;
} upper_bounds[] = {
	{ NID_commonName, 64 },		 { NID_organizationName, 64 },
	{ NID_organizationalUnitName, 64 }, { NID_localityName, 128 },
	{ NID_stateOrProvinceName, 128 },	 { NID_pkcs9_emailAddress, 255 },
	{ NID_serialNumber, 64 },		 { NID_title, 64 },
	{ NID_pseudonym, 128 },		 { NID_postalCode, 40 },
	{ NID_dnQualifier, 64 },
};
#define N_BOUNDS (sizeof(upper_bounds) / sizeof(upper_bounds[0]))

struct ava {
	int nid;
	int rdn;     /* index of its RDN in text order */
	char *value; /* decoded UTF-8, NUL-terminated */
	size_t len;
};

struct parsed {
	struct ava ava[AVAS_MAX];
	size_t n;
	int rdns;
};

/* Where the parser is and which syntax it reads. */
struct cursor {
	const char *p;
	int slash; /* OpenSSL slash form, else RFC 4514 */
	char sep;  /* RDN separator: '/' or ',' */
};

static int under_naming_arc(int nid)
{
	char oid[128];
	size_t i;
	ASN1_OBJECT *obj = OBJ_nid2obj(nid);

	if (obj == NULL || OBJ_obj2txt(oid, sizeof(oid), obj, 1) <= 0)
		return 0;
	for (i = 0; i < N_ARCS; i++)
		if (strncmp(oid, naming_arcs[i], strlen(naming_arcs[i])) == 0)
			return 1;
	return 0;
}

static int is_known(int nid)
{
	size_t i;

	for (i = 0; i < N_KNOWN; i++)
		if (known_nids[i] == nid)
			return 1;
	return 0;
}

int p11pki_name_attr_nid(const char *attr)
{
	size_t i;
	int nid;

	if (attr == NULL || attr[0] == '\0' || strlen(attr) > TYPE_MAX)
		return NID_undef;
	/* Exact OpenSSL spelling first, so what the formatter prints ("uid"
	 * is uniqueIdentifier, "UID" userId) always reads back the same. */
	ERR_set_mark();
	nid = OBJ_txt2nid(attr);
	ERR_pop_to_mark();
	if (nid != NID_undef)
		return (is_known(nid) || under_naming_arc(nid)) ? nid : NID_undef;
	for (i = 0; i < N_KNOWN; i++) {
		const char *sn = OBJ_nid2sn(known_nids[i]), *ln = OBJ_nid2ln(known_nids[i]);

		if ((sn != NULL && strcasecmp(attr, sn) == 0) ||
		    (ln != NULL && strcasecmp(attr, ln) == 0))
			return known_nids[i];
	}
	return NID_undef;
}

static void parsed_free(struct parsed *ps)
{
	size_t i;

	for (i = 0; i < ps->n; i++)
		free(ps->ava[i].value);
	free(ps);
}

/* How to write the separator c inside a value, for hints. */
static const char *escape_hint(const struct cursor *c, char sep)
{
	if (sep == '+')
		return "write a '+' inside a value as '\\+'";
	return c->slash ? "write a '/' inside a value as '\\/'"
			: "write a ',' inside a value as '\\,'";
}

/* Reads "type" up to its '=' and leaves the cursor after the '='. */
static int parse_type(struct cursor *c, char prev_sep, int *nid, char *type, size_t size)
{
	char show[P11PKI_SHOWN_BUF], elem[P11PKI_SHOWN_BUF];
	const char *start, *end;
	size_t n;

	while (*c->p == ' ')
		c->p++;
	start = c->p;
	end = start + strcspn(start, c->slash ? "=/+" : "=,+");
	if (*end != '=') {
		n = (size_t)(end - start);
		if (n >= sizeof(elem))
			n = sizeof(elem) - 1;
		memcpy(elem, start, n);
		elem[n] = '\0';
		if (n == 0)
			return p11pki_fail(P11PKI_E_ARG, "subject: an attribute is missing%s",
					   *end ? " before a separator" : " at the end");
		return p11pki_fail(P11PKI_E_ARG, "subject: '%s' is not TYPE=value%s%s%s",
				   p11pki_shown(elem, show, sizeof(show)), prev_sep ? " (" : "",
				   prev_sep ? escape_hint(c, prev_sep) : "", prev_sep ? ")" : "");
	}
	c->p = end + 1;
	while (end > start && end[-1] == ' ')
		end--;
	n = (size_t)(end - start);
	if (n == 0)
		return p11pki_fail(P11PKI_E_ARG, "subject: an attribute name is missing before '='");
	if (n >= size)
		n = size - 1;
	memcpy(type, start, n);
	type[n] = '\0';
	if ((size_t)(end - start) >= size || (*nid = p11pki_name_attr_nid(type)) == NID_undef)
		return p11pki_fail(P11PKI_E_ARG,
				   "subject: unknown attribute '%s' (known ones include C, ST, L, "
				   "O, OU, CN, emailAddress, serialNumber, DC, UID, street, title, "
				   "GN, SN)", p11pki_shown(type, show, sizeof(show)));
	return P11PKI_OK;
}

/* Decodes one escape after a '\'; RFC 4514 has hex pairs, the slash
 * form (like OpenSSL) only takes the next character literally. */
static int parse_escape(struct cursor *c, const char *type, char *dst, size_t *len)
{
	int hi, lo;

	if (*c->p == '\0')
		return p11pki_fail(P11PKI_E_ARG, "subject: the value of %s ends with a lone '\\'",
				   type);
	if (!c->slash && (hi = p11pki_hexval((unsigned char)c->p[0])) >= 0 &&
	    (lo = p11pki_hexval((unsigned char)c->p[1])) >= 0) {
		dst[(*len)++] = (char)(hi << 4 | lo);
		c->p += 2;
		return P11PKI_OK;
	}
	dst[(*len)++] = *c->p++;
	return P11PKI_OK;
}

/* Reads a value up to the next unescaped separator into dst (big enough
 * for the rest of the input). Unescaped spaces at either end are
 * dropped; escaped ones ("\ ") are kept, as RFC 4514 says. */
static int parse_value(struct cursor *c, const char *type, char *dst, size_t *out_len)
{
	size_t len = 0, keep = 0;
	int rc;

	while (*c->p == ' ')
		c->p++;
	/* A lone "#" is no hex string; OpenSSL prints it so, unescaped. */
	if (!c->slash && c->p[0] == '#' && c->p[1] != '\0' && c->p[1] != c->sep && c->p[1] != '+')
		return p11pki_fail(P11PKI_E_ARG,
				   "subject: the value of %s is hex-encoded BER ('#...'), which is "
				   "not supported: write it as text (a leading '#' as '\\#')", type);
	while (*c->p != '\0' && *c->p != c->sep && *c->p != '+') {
		if (*c->p == '\\') {
			c->p++;
			if ((rc = parse_escape(c, type, dst, &len)) != 0)
				return rc;
			keep = len;
			continue;
		}
		if (!c->slash && *c->p == '"')
			return p11pki_fail(P11PKI_E_ARG,
					   "subject: the value of %s has a '\"': quoted values are "
					   "not supported, escape characters with '\\' instead", type);
		dst[len++] = *c->p++;
		if (dst[len - 1] != ' ')
			keep = len;
	}
	dst[keep] = '\0';
	*out_len = keep;
	return P11PKI_OK;
}

static size_t upper_bound(int nid)
{
	size_t i;

	for (i = 0; i < N_BOUNDS; i++)
		if (upper_bounds[i].nid == nid)
			return upper_bounds[i].max;
	return 0;
}

static int check_country(struct ava *a, const char *type)
{
	char show[P11PKI_SHOWN_BUF];
	size_t i;

	for (i = 0; i < a->len; i++) {
		char ch = a->value[i];

		if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z')))
			break;
	}
	if (a->len != 2 || i != 2)
		return p11pki_fail(P11PKI_E_ARG,
				   "subject: %s must be a two-letter country code such as US, not "
				   "'%s'", type, p11pki_shown(a->value, show, sizeof(show)));
	for (i = 0; i < 2; i++)
		if (a->value[i] >= 'a')
			a->value[i] = (char)(a->value[i] - 'a' + 'A');
	return P11PKI_OK;
}

/* A CN that looks like a host name is stored as its A-label form. */
static int convert_host(struct ava *a)
{
	char msg[512], *ascii = NULL;
	int rc;

	if (!p11pki_looks_like_host(a->value))
		return P11PKI_OK;
	if ((rc = p11pki_host_to_ascii(a->value, &ascii)) != 0) {
		snprintf(msg, sizeof(msg), "%s", p11pki_errmsg());
		return p11pki_fail(rc, "subject: CN: %s", msg);
	}
	free(a->value);
	a->value = ascii;
	a->len = strlen(ascii);
	return P11PKI_OK;
}

static int check_value(struct ava *a, const char *type)
{
	size_t i, chars, max;

	if (a->len == 0)
		return p11pki_fail(P11PKI_E_ARG, "subject: %s has an empty value", type);
	if (strlen(a->value) != a->len)
		return p11pki_fail(P11PKI_E_ARG, "subject: the value of %s contains a NUL character",
				   type);
	if ((chars = p11pki_utf8_chars(a->value, a->len)) == (size_t)-1)
		return p11pki_fail(P11PKI_E_ARG, "subject: the value of %s is not valid UTF-8",
				   type);
	for (i = 0; i < a->len; i++) {
		unsigned char ch = (unsigned char)a->value[i];

		/* C0, DEL and C1 (U+0080..U+009F, UTF-8 C2 80..C2 9F) */
		if (ch < 0x20 || ch == 0x7f ||
		    (ch == 0xc2 && (unsigned char)a->value[i + 1] < 0xa0))
			return p11pki_fail(P11PKI_E_ARG,
					   "subject: the value of %s contains a control character",
					   type);
	}
	if ((max = upper_bound(a->nid)) != 0 && chars > max)
		return p11pki_fail(P11PKI_E_ARG,
				   "subject: %s is %zu characters long: at most %zu are allowed",
				   type, chars, max);
	if (a->nid == NID_countryName)
		return check_country(a, type);
	if (a->nid == NID_pkcs9_emailAddress && chars != a->len)
		return p11pki_fail(P11PKI_E_ARG, "subject: %s must be ASCII", type);
	if (a->nid == NID_commonName)
		return convert_host(a);
	return P11PKI_OK;
}

/* Reads one TYPE=value into ps->ava[ps->n]. */
static int parse_ava(struct cursor *c, char prev_sep, struct parsed *ps, char *buf)
{
	char type[TYPE_MAX + 1];
	struct ava *a = &ps->ava[ps->n];
	int rc;

	if (ps->n == AVAS_MAX)
		return p11pki_fail(P11PKI_E_ARG, "subject: more than %d attributes", AVAS_MAX);
	if ((rc = parse_type(c, prev_sep, &a->nid, type, sizeof(type))) != 0)
		return rc;
	if ((rc = parse_value(c, type, buf, &a->len)) != 0)
		return rc;
	if ((a->value = malloc(a->len + 1)) == NULL)
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
	memcpy(a->value, buf, a->len + 1);
	a->rdn = ps->rdns;
	ps->n++;
	return check_value(a, type);
}

static int parse_text(const char *text, int slash, struct parsed *ps)
{
	struct cursor c = { text + (slash ? 1 : 0), slash, slash ? '/' : ',' };
	char *buf = NULL, prev = 0;
	int rc;

	if ((buf = malloc(strlen(text) + 1)) == NULL)
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
	for (;;) {
		if ((rc = parse_ava(&c, prev, ps, buf)) != 0)
			goto out;
		if ((prev = *c.p) == '\0')
			break;
		c.p++;
		if (prev == c.sep) {
			/* OpenSSL accepts a final '/' */
			if (slash && *c.p == '\0')
				break;
			ps->rdns++;
		}
	}
	ps->rdns++;
out:
	free(buf);
	return rc;
}

static int add_ava(X509_NAME *name, const struct ava *a, int set)
{
	char show[P11PKI_SHOWN_BUF];
	unsigned long err;
	/* OpenSSL caps emailAddress at 128; RFC 5280 allows 255 (checked). */
	int type = a->nid == NID_pkcs9_emailAddress ? V_ASN1_IA5STRING : MBSTRING_UTF8;

	ERR_set_mark();
	if (X509_NAME_add_entry_by_NID(name, a->nid, type, (const unsigned char *)a->value,
				       (int)a->len, -1, set) == 1) {
		ERR_pop_to_mark();
		return P11PKI_OK;
	}
	err = ERR_peek_last_error();
	ERR_pop_to_mark();
	return p11pki_fail(P11PKI_E_ARG, "subject: %s '%s' cannot be encoded: %s",
			   OBJ_nid2sn(a->nid), p11pki_shown(a->value, show, sizeof(show)),
			   ERR_reason_error_string(err) ? ERR_reason_error_string(err) : "unknown");
}

/* Adds the RDNs in certificate order: RFC 4514 text lists them most
 * significant last, so it is read backwards; values inside one RDN keep
 * their order. */
static int build(const struct parsed *ps, int reverse, X509_NAME *name)
{
	int r, rdn, first, rc;
	size_t i;

	for (r = 0; r < ps->rdns; r++) {
		rdn = reverse ? ps->rdns - 1 - r : r;
		first = 1;
		for (i = 0; i < ps->n; i++) {
			if (ps->ava[i].rdn != rdn)
				continue;
			if ((rc = add_ava(name, &ps->ava[i], first ? 0 : -1)) != 0)
				return rc;
			first = 0;
		}
	}
	return P11PKI_OK;
}

int p11pki_name_parse(const char *text, X509_NAME **out)
{
	struct parsed *ps = NULL;
	X509_NAME *name = NULL;
	size_t len;
	int rc, slash;

	if (out == NULL)
		return p11pki_fail(P11PKI_E_ARG, "p11pki_name_parse: no output pointer");
	*out = NULL;
	if (text == NULL)
		return p11pki_fail(P11PKI_E_ARG, "subject: empty name");
	while (*text == ' ' || *text == '\t')
		text++;
	if ((len = strlen(text)) > NAME_IN_MAX)
		return p11pki_fail(P11PKI_E_ARG, "subject of %zu bytes is too long: at most %d",
				   len, NAME_IN_MAX);
	slash = text[0] == '/';
	if (len == 0 || (slash && len == 1))
		return p11pki_fail(P11PKI_E_ARG, "subject: empty name");
	if ((ps = calloc(1, sizeof(*ps))) == NULL || (name = X509_NAME_new()) == NULL) {
		rc = p11pki_fail(P11PKI_E_NOMEM, "out of memory");
		goto out;
	}
	if ((rc = parse_text(text, slash, ps)) != 0 || (rc = build(ps, !slash, name)) != 0)
		goto out;
	*out = name;
	name = NULL;
out:
	X509_NAME_free(name);
	if (ps != NULL)
		parsed_free(ps);
	return rc;
}

int p11pki_name_format(const X509_NAME *name, char **out)
{
	BIO *bio = NULL;
	char *data, *res;
	long len;
	int rc;

	if (out == NULL)
		return p11pki_fail(P11PKI_E_ARG, "p11pki_name_format: no output pointer");
	*out = NULL;
	if (name == NULL)
		return p11pki_fail(P11PKI_E_ARG, "p11pki_name_format: no name");
	if ((bio = BIO_new(BIO_s_mem())) == NULL) {
		rc = p11pki_fail(P11PKI_E_NOMEM, "out of memory");
		goto out;
	}
	/* RFC 4514 order and escapes, but UTF-8 kept rather than \XX-escaped */
	if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) < 0) {
		rc = p11pki_fail(P11PKI_E_CRYPTO, "cannot print the name");
		goto out;
	}
	if ((len = BIO_get_mem_data(bio, &data)) < 0 || (res = malloc((size_t)len + 1)) == NULL) {
		rc = p11pki_fail(P11PKI_E_NOMEM, "out of memory");
		goto out;
	}
	if (len > 0) /* an empty name leaves data NULL */
		memcpy(res, data, (size_t)len);
	res[len] = '\0';
	*out = res;
	rc = P11PKI_OK;
out:
	BIO_free(bio);
	return rc;
}
