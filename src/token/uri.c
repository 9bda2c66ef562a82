/* PKCS#11 URIs (RFC 7512): parsing into struct p11pki_uri and formatting
 * back in a canonical form. Pure string work, no PKCS#11 calls. */
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include <p11pki/token.h>

#include "core/text.h"

#define URI_SCHEME "pkcs11:"
#define URI_SCHEME_LEN 7
#define URI_MAX_LEN 4096 /* input and output bound, in characters */
#define URI_MAX_ATTRS 64 /* path and query together, vendor ones included */

enum attr_kind { K_STR, K_ID, K_TYPE, K_SLOT, K_VERSION, K_PIN };
enum attr_place { IN_PATH, IN_QUERY };

struct attr_def {
	const char *name;
	enum attr_place place;
	enum attr_kind kind;
	int allow_empty; /* RFC 7512 allows "serial=" and the like */
	size_t off;	 /* offset of the char * field for K_STR/K_VERSION */
};

#define STR_FIELD(f) offsetof(struct p11pki_uri, f)

/* In canonical output order; the formatter walks this table. */
static const struct attr_def attrs[] = {
	{ "token", IN_PATH, K_STR, 1, STR_FIELD(token) },
	{ "manufacturer", IN_PATH, K_STR, 1, STR_FIELD(manufacturer) },
	{ "serial", IN_PATH, K_STR, 1, STR_FIELD(serial) },
	{ "model", IN_PATH, K_STR, 1, STR_FIELD(model) },
	{ "slot-description", IN_PATH, K_STR, 1, STR_FIELD(slot_description) },
	{ "slot-manufacturer", IN_PATH, K_STR, 1, STR_FIELD(slot_manufacturer) },
	{ "slot-id", IN_PATH, K_SLOT, 0, 0 },
	{ "library-manufacturer", IN_PATH, K_STR, 1, STR_FIELD(library_manufacturer) },
	{ "library-description", IN_PATH, K_STR, 1, STR_FIELD(library_description) },
	{ "library-version", IN_PATH, K_VERSION, 0, STR_FIELD(library_version) },
	{ "object", IN_PATH, K_STR, 1, STR_FIELD(object) },
	{ "type", IN_PATH, K_TYPE, 0, 0 },
	{ "id", IN_PATH, K_ID, 0, 0 },
	{ "pin-source", IN_QUERY, K_STR, 0, STR_FIELD(pin_source) },
	{ "pin-value", IN_QUERY, K_PIN, 0, 0 },
	{ "module-name", IN_QUERY, K_STR, 0, STR_FIELD(module_name) },
	{ "module-path", IN_QUERY, K_STR, 0, STR_FIELD(module_path) },
};
#define N_ATTRS (sizeof(attrs) / sizeof(attrs[0]))

static const char path_names[] =
	"token, manufacturer, serial, model, object, id, type, slot-id, "
	"slot-description, slot-manufacturer, library-manufacturer, "
	"library-description, library-version";
static const char query_names[] = "pin-source, pin-value, module-name, module-path";

/* Index is the enum p11pki_obj_type value; ANY has no spelling. */
static const char *const type_names[] = {
	NULL, "private", "public", "cert", "secret-key", "data",
};
#define N_TYPES (sizeof(type_names) / sizeof(type_names[0]))

struct parse_state {
	struct p11pki_uri *uri;
	unsigned long seen; /* bit per attrs[] entry: duplicates are errors */
	unsigned count;	    /* attributes so far, to bound the work */
};

/* Output buffer that grows up to URI_MAX_LEN; the first failure sticks so
 * callers check once at the end. */
struct obuf {
	char *p;
	size_t len;
	size_t cap;
	int err;
};

static const char *part_name(enum attr_place place)
{
	return place == IN_PATH ? "path" : "query";
}

static int bad_escape(const char *name, int secret, const char *at, size_t left)
{
	char show[8];

	/* Never echo any part of a PIN. */
	if (secret)
		return p11pki_fail(P11PKI_E_ARG,
				   "PKCS#11 URI: bad percent-escape in attribute '%s'", name);
	return p11pki_fail(P11PKI_E_ARG,
			   "PKCS#11 URI: bad percent-escape '%s' in attribute '%s'",
			   p11pki_shown_ascii_n(at, left < 3 ? left : 3, show, sizeof(show)), name);
}

/* Percent-decodes src[0..n) into dst, which has room for n + 1 bytes, and
 * NUL-terminates it. Raw spaces, controls and 8-bit bytes are refused:
 * RFC 7512 wants them escaped, and accepting them would hide typos. */
static int decode(const char *name, int secret, const char *src, size_t n, char *dst,
		  size_t *dlen)
{
	size_t i = 0, o = 0;

	while (i < n) {
		unsigned char c = (unsigned char)src[i];
		int hi, lo;

		if (c == '%') {
			if (n - i < 3 || (hi = p11pki_hexval((unsigned char)src[i + 1])) < 0 ||
			    (lo = p11pki_hexval((unsigned char)src[i + 2])) < 0)
				return bad_escape(name, secret, src + i, n - i);
			dst[o++] = (char)(hi << 4 | lo);
			i += 3;
			continue;
		}
		if (c <= 0x20 || c >= 0x7f) {
			if (secret)
				return p11pki_fail(P11PKI_E_ARG,
						   "PKCS#11 URI: a character in attribute '%s' "
						   "must be percent-encoded", name);
			return p11pki_fail(P11PKI_E_ARG,
					   "PKCS#11 URI: character 0x%02X in attribute '%s' "
					   "must be percent-encoded as %%%02X", c, name, c);
		}
		dst[o++] = (char)c;
		i++;
	}
	dst[o] = '\0';
	*dlen = o;
	return P11PKI_OK;
}

static int parse_type(const char *s, enum p11pki_obj_type *type)
{
	size_t i;

	/* ABNF literals are case-insensitive (RFC 5234 section 2.3). */
	for (i = 1; i < N_TYPES; i++) {
		if (strcasecmp(s, type_names[i]) == 0) {
			*type = (enum p11pki_obj_type)i;
			return 1;
		}
	}
	return 0;
}

/* Strict unsigned decimal: no sign, no spaces, no overflow. */
static int parse_ulong(const char *s, size_t len, unsigned long *v)
{
	size_t i;

	*v = 0;
	if (len == 0)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned d;

		if (s[i] < '0' || s[i] > '9')
			return 0;
		d = (unsigned)(s[i] - '0');
		if (*v > (ULONG_MAX - d) / 10)
			return 0;
		*v = *v * 10 + d;
	}
	return 1;
}

/* library-version = 1*DIGIT [ "." 1*DIGIT ] */
static int version_ok(const char *s, size_t len)
{
	size_t i, digits = 0;
	int dot = 0;

	for (i = 0; i < len; i++) {
		if (s[i] >= '0' && s[i] <= '9') {
			digits++;
		} else if (s[i] == '.' && !dot && digits > 0) {
			dot = 1;
			digits = 0;
		} else {
			return 0;
		}
	}
	return digits > 0;
}

/* Checks a decoded value against its attribute's rules; shared by the
 * parser and the formatter so that whatever is printed parses again.
 * *num receives the slot id or the object type. */
static int check_value(const struct attr_def *d, const char *v, size_t len, unsigned long *num)
{
	char show[P11PKI_SHOWN_BUF];
	enum p11pki_obj_type type;

	*num = 0;
	if (d->kind == K_ID) {
		if (len == 0)
			return p11pki_fail(P11PKI_E_ARG, "PKCS#11 URI: attribute 'id' is empty");
		return P11PKI_OK;
	}
	if (memchr(v, '\0', len) != NULL)
		return p11pki_fail(P11PKI_E_ARG,
				   "PKCS#11 URI: attribute '%s' contains a NUL byte (%%00)",
				   d->name);
	if (len == 0 && !d->allow_empty)
		return p11pki_fail(P11PKI_E_ARG, "PKCS#11 URI: attribute '%s' is empty", d->name);
	switch (d->kind) {
	case K_TYPE:
		if (!parse_type(v, &type))
			return p11pki_fail(P11PKI_E_ARG,
					   "PKCS#11 URI: bad value '%s' for attribute 'type'; "
					   "valid ones are private, public, cert, secret-key, data",
					   p11pki_shown_ascii_n(v, len, show, sizeof(show)));
		*num = (unsigned long)type;
		break;
	case K_SLOT:
		if (!parse_ulong(v, len, num))
			return p11pki_fail(P11PKI_E_ARG,
					   "PKCS#11 URI: bad value '%s' for attribute 'slot-id'; "
					   "it must be a decimal number that fits an unsigned long",
					   p11pki_shown_ascii_n(v, len, show, sizeof(show)));
		break;
	case K_VERSION:
		if (!version_ok(v, len))
			return p11pki_fail(P11PKI_E_ARG,
					   "PKCS#11 URI: bad value '%s' for attribute "
					   "'library-version'; it must look like 1 or 1.23",
					   p11pki_shown_ascii_n(v, len, show, sizeof(show)));
		break;
	default:
		break;
	}
	return P11PKI_OK;
}

static char **str_field(struct p11pki_uri *u, const struct attr_def *d)
{
	return (char **)(void *)((char *)u + d->off);
}

static const char *str_value(const struct p11pki_uri *u, const struct attr_def *d)
{
	return *(char *const *)(const void *)((const char *)u + d->off);
}

/* Moves a checked value into the struct; *buf and *sec are taken (set to
 * NULL) when the struct keeps them. */
static void store(struct p11pki_uri *u, const struct attr_def *d, char **buf, size_t len,
		  unsigned long num, p11pki_secret **sec)
{
	switch (d->kind) {
	case K_STR:
	case K_VERSION:
		*str_field(u, d) = *buf;
		*buf = NULL;
		break;
	case K_ID:
		u->id = (unsigned char *)*buf;
		u->id_len = len;
		*buf = NULL;
		break;
	case K_TYPE:
		u->type = (enum p11pki_obj_type)num;
		break;
	case K_SLOT:
		u->has_slot_id = 1;
		u->slot_id = num;
		break;
	case K_PIN:
		(*sec)->len = len;
		u->pin_value = *sec;
		*sec = NULL;
		break;
	}
}

static int set_attr(struct parse_state *ps, const struct attr_def *d, const char *v, size_t n)
{
	p11pki_secret *sec = NULL;
	char *buf = NULL;
	unsigned long num;
	size_t len = 0;
	int r;

	/* A PIN is decoded straight into locked memory, never the heap. */
	if (d->kind == K_PIN) {
		if ((r = p11pki_secret_new(n + 1, &sec)) != 0)
			goto out;
		buf = sec->data;
	} else if ((buf = malloc(n + 1)) == NULL) {
		r = p11pki_fail(P11PKI_E_NOMEM, "out of memory parsing a PKCS#11 URI");
		goto out;
	}
	if ((r = decode(d->name, d->kind == K_PIN, v, n, buf, &len)) != 0)
		goto out;
	if ((r = check_value(d, buf, len, &num)) != 0)
		goto out;
	store(ps->uri, d, &buf, len, num, &sec);
out:
	/* For a PIN, buf is sec's memory, not a heap block of its own. */
	if (d->kind == K_PIN)
		p11pki_secret_free(sec);
	else
		free(buf);
	return r;
}

static const struct attr_def *find_attr(const char *name, size_t len)
{
	size_t i;

	/* Attribute names are ABNF literals, so case-insensitive. */
	for (i = 0; i < N_ATTRS; i++) {
		if (strlen(attrs[i].name) == len && strncasecmp(attrs[i].name, name, len) == 0)
			return &attrs[i];
	}
	return NULL;
}

/* RFC 7512 section 2.3 allows vendor attributes; we accept the "x-"
 * convention and the "vendor-" spelling of the RFC's own examples. */
static int is_vendor(const char *name, size_t len)
{
	size_t i, pre;

	if (len > 2 && strncasecmp(name, "x-", 2) == 0)
		pre = 2;
	else if (len > 7 && strncasecmp(name, "vendor-", 7) == 0)
		pre = 7;
	else
		return 0;
	for (i = pre; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (!(c == '-' || c == '_' || (c >= '0' && c <= '9') ||
		      ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')))
			return 0;
	}
	return 1;
}

/* A vendor attribute is ignored, but its value must still be well formed. */
static int skip_vendor(const char *name, size_t nlen, const char *v, size_t n)
{
	char label[P11PKI_SHOWN_BUF];
	char *buf = NULL;
	size_t len;
	int r;

	if ((buf = malloc(n + 1)) == NULL) {
		r = p11pki_fail(P11PKI_E_NOMEM, "out of memory parsing a PKCS#11 URI");
		goto out;
	}
	r = decode(p11pki_shown_ascii_n(name, nlen, label, sizeof(label)), 0, v, n, buf, &len);
out:
	free(buf);
	return r;
}

static int unknown_attr(const char *name, size_t nlen, enum attr_place place)
{
	char show[P11PKI_SHOWN_BUF];
	const struct attr_def *d = find_attr(name, nlen);

	p11pki_shown_ascii_n(name, nlen, show, sizeof(show));
	if (d != NULL && d->place == IN_QUERY)
		return p11pki_fail(P11PKI_E_ARG,
				   "PKCS#11 URI: attribute '%s' belongs in the query (after '?'), "
				   "not the path", show);
	if (d != NULL)
		return p11pki_fail(P11PKI_E_ARG,
				   "PKCS#11 URI: attribute '%s' belongs in the path, not the query "
				   "(after '?')", show);
	return p11pki_fail(P11PKI_E_ARG,
			   "PKCS#11 URI: unknown attribute '%s' in %s; valid ones are %s", show,
			   part_name(place), place == IN_PATH ? path_names : query_names);
}

static int parse_attr(struct parse_state *ps, const char *s, size_t n, enum attr_place place)
{
	char show[P11PKI_SHOWN_BUF];
	const char *eq = memchr(s, '=', n);
	const struct attr_def *d;
	size_t nlen, bit;

	if (eq == NULL)
		return p11pki_fail(P11PKI_E_ARG,
				   "PKCS#11 URI: attribute '%s' in %s has no '=' (expected name=value)",
				   p11pki_shown_ascii_n(s, n, show, sizeof(show)), part_name(place));
	nlen = (size_t)(eq - s);
	if (nlen == 0)
		return p11pki_fail(P11PKI_E_ARG,
				   "PKCS#11 URI: attribute '%s' in %s has no name",
				   p11pki_shown_ascii_n(s, n, show, sizeof(show)), part_name(place));
	d = find_attr(s, nlen);
	if (d == NULL || d->place != place) {
		if (d == NULL && is_vendor(s, nlen))
			return skip_vendor(s, nlen, eq + 1, n - nlen - 1);
		return unknown_attr(s, nlen, place);
	}
	bit = (size_t)(d - attrs);
	if (ps->seen & (1UL << bit))
		return p11pki_fail(P11PKI_E_ARG, "PKCS#11 URI: attribute '%s' appears twice",
				   d->name);
	ps->seen |= 1UL << bit;
	return set_attr(ps, d, eq + 1, n - nlen - 1);
}

/* Splits the path on ';' or the query on '&'. An empty part is fine
 * ("pkcs11:" and "pkcs11:?"), an empty attribute inside one is not. */
static int parse_part(struct parse_state *ps, const char *s, size_t n, enum attr_place place)
{
	char sep = place == IN_PATH ? ';' : '&';
	const char *end = s + n;
	int r;

	if (n == 0)
		return P11PKI_OK;
	for (;;) {
		const char *next = memchr(s, sep, (size_t)(end - s));
		size_t len = (size_t)((next != NULL ? next : end) - s);

		if (len == 0)
			return p11pki_fail(P11PKI_E_ARG,
					   "PKCS#11 URI: empty attribute in %s (stray '%c')",
					   part_name(place), sep);
		if (++ps->count > URI_MAX_ATTRS)
			return p11pki_fail(P11PKI_E_ARG,
					   "PKCS#11 URI has more than %d attributes", URI_MAX_ATTRS);
		if ((r = parse_attr(ps, s, len, place)) != 0)
			return r;
		if (next == NULL)
			return P11PKI_OK;
		s = next + 1;
	}
}

int p11pki_uri_new(struct p11pki_uri **out)
{
	*out = calloc(1, sizeof(**out));
	if (*out == NULL)
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory for a PKCS#11 URI");
	return P11PKI_OK;
}

void p11pki_uri_free(struct p11pki_uri *uri)
{
	size_t i;

	if (uri == NULL)
		return;
	for (i = 0; i < N_ATTRS; i++) {
		if (attrs[i].kind == K_STR || attrs[i].kind == K_VERSION)
			free(*str_field(uri, &attrs[i]));
	}
	free(uri->id);
	p11pki_secret_free(uri->pin_value);
	free(uri);
}

int p11pki_uri_parse(const char *text, struct p11pki_uri **out)
{
	struct parse_state ps = { NULL, 0, 0 };
	const char *body, *q;
	size_t len;
	int r;

	*out = NULL;
	if (text == NULL)
		return p11pki_fail(P11PKI_E_ARG, "no PKCS#11 URI given");
	len = strnlen(text, URI_MAX_LEN + 1);
	if (len > URI_MAX_LEN)
		return p11pki_fail(P11PKI_E_ARG, "PKCS#11 URI is longer than %d characters",
				   URI_MAX_LEN);
	if (len < URI_SCHEME_LEN || strncasecmp(text, URI_SCHEME, URI_SCHEME_LEN) != 0)
		return p11pki_fail(P11PKI_E_ARG, "PKCS#11 URI must start with 'pkcs11:'");
	if ((r = p11pki_uri_new(&ps.uri)) != 0)
		goto out;
	body = text + URI_SCHEME_LEN;
	len -= URI_SCHEME_LEN;
	q = memchr(body, '?', len);
	if ((r = parse_part(&ps, body, q != NULL ? (size_t)(q - body) : len, IN_PATH)) != 0)
		goto out;
	if (q != NULL &&
	    (r = parse_part(&ps, q + 1, len - (size_t)(q - body) - 1, IN_QUERY)) != 0)
		goto out;
	/* Two PIN sources would leave it to chance which one is used. */
	if (ps.uri->pin_source != NULL && ps.uri->pin_value != NULL) {
		r = p11pki_fail(P11PKI_E_ARG,
				"PKCS#11 URI: give either 'pin-source' or 'pin-value', not both");
		goto out;
	}
	*out = ps.uri;
	ps.uri = NULL;
out:
	p11pki_uri_free(ps.uri);
	return r;
}

/* ---- formatting ---- */

static void ob_put(struct obuf *b, const char *s, size_t n)
{
	size_t want, cap;
	char *np;

	if (b->err != 0)
		return;
	/* The parser refuses longer input, so the output must stay within it. */
	if (n > URI_MAX_LEN - b->len) {
		b->err = p11pki_fail(P11PKI_E_ARG, "PKCS#11 URI would be longer than %d characters",
				     URI_MAX_LEN);
		return;
	}
	want = b->len + n + 1;
	if (want > b->cap) {
		for (cap = b->cap != 0 ? b->cap : 128; cap < want; cap *= 2)
			;
		if ((np = realloc(b->p, cap)) == NULL) {
			b->err = p11pki_fail(P11PKI_E_NOMEM, "out of memory formatting a PKCS#11 URI");
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void ob_puts(struct obuf *b, const char *s)
{
	ob_put(b, s, strlen(s));
}

/* Unreserved characters and the pchar extras RFC 7512 leaves literal; '/'
 * only in the query, where module paths and file: sources use it. */
static int literal_ok(unsigned char c, enum attr_place place)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return 1;
	if (c == '/')
		return place == IN_QUERY;
	return c != '\0' && strchr("-._~:[]@!$'()*+,=", c) != NULL;
}

static void ob_put_encoded(struct obuf *b, const unsigned char *s, size_t n,
			   enum attr_place place, int escape_all)
{
	static const char hex[] = "0123456789ABCDEF";
	char esc[3] = { '%', 0, 0 };
	size_t i;

	for (i = 0; i < n; i++) {
		if (!escape_all && literal_ok(s[i], place)) {
			ob_put(b, (const char *)&s[i], 1);
			continue;
		}
		esc[1] = hex[s[i] >> 4];
		esc[2] = hex[s[i] & 15];
		ob_put(b, esc, 3);
	}
}

/* Writes "name=" preceded by the separator the position needs. */
static void ob_put_name(struct obuf *b, const struct attr_def *d, unsigned *n_path,
			unsigned *n_query)
{
	if (d->place == IN_PATH)
		ob_puts(b, (*n_path)++ > 0 ? ";" : "");
	else
		ob_puts(b, (*n_query)++ > 0 ? "&" : "?");
	ob_puts(b, d->name);
	ob_puts(b, "=");
}

static int format_attr(struct obuf *b, const struct p11pki_uri *u, const struct attr_def *d,
		       unsigned *n_path, unsigned *n_query)
{
	const char *s;
	char num[32];
	unsigned long dummy;
	int r;

	switch (d->kind) {
	case K_PIN:
		return P11PKI_OK; /* a PIN is never printed */
	case K_ID:
		/* An empty id cannot be written in a form that parses back. */
		if (u->id == NULL || u->id_len == 0)
			return P11PKI_OK;
		ob_put_name(b, d, n_path, n_query);
		ob_put_encoded(b, u->id, u->id_len, d->place, 1);
		return P11PKI_OK;
	case K_TYPE:
		if (u->type == P11PKI_OBJ_ANY)
			return P11PKI_OK;
		if ((unsigned)u->type >= N_TYPES)
			return p11pki_fail(P11PKI_E_ARG, "PKCS#11 URI: object type %d is not valid",
					   (int)u->type);
		ob_put_name(b, d, n_path, n_query);
		ob_puts(b, type_names[u->type]);
		return P11PKI_OK;
	case K_SLOT:
		if (!u->has_slot_id)
			return P11PKI_OK;
		snprintf(num, sizeof(num), "%lu", u->slot_id);
		ob_put_name(b, d, n_path, n_query);
		ob_puts(b, num);
		return P11PKI_OK;
	default:
		break;
	}
	if ((s = str_value(u, d)) == NULL)
		return P11PKI_OK;
	if ((r = check_value(d, s, strlen(s), &dummy)) != 0)
		return r;
	ob_put_name(b, d, n_path, n_query);
	ob_put_encoded(b, (const unsigned char *)s, strlen(s), d->place, 0);
	return P11PKI_OK;
}

int p11pki_uri_format(const struct p11pki_uri *uri, char **out)
{
	struct obuf b = { NULL, 0, 0, 0 };
	unsigned n_path = 0, n_query = 0;
	size_t i;
	int r = P11PKI_OK;

	*out = NULL;
	if (uri == NULL)
		return p11pki_fail(P11PKI_E_ARG, "no PKCS#11 URI to format");
	ob_puts(&b, URI_SCHEME);
	for (i = 0; i < N_ATTRS && r == 0 && b.err == 0; i++)
		r = format_attr(&b, uri, &attrs[i], &n_path, &n_query);
	if (r == 0)
		r = b.err;
	if (r != 0)
		goto out;
	*out = b.p;
	b.p = NULL;
out:
	free(b.p);
	return r;
}
