/* HTTP/1.x request heads for the proxy's http mode (http.h). Parsing is
 * strict on purpose: the body is forwarded as it is, so the proxy and the
 * backend must agree on where a request ends, and anything ambiguous
 * (RFC 9112 sections 2.2, 5, 6.3) is refused rather than repaired. */
#include <stdlib.h>
#include <string.h>

#include "core/text.h"
#include "tls/http.h"

#define SHOWN(s, n, buf) p11pki_shown_ascii_n((s), (n), (buf), sizeof(buf))
#define REASON_MAX 256
#define BODY_MAX 65536

/* A piece of the input, as offsets: the head is copied once complete. */
struct span {
	size_t off, len;
};

struct field_span {
	struct span name, value;
};

/* What the scan of a complete head found. */
struct scan {
	struct span method, target;
	int version;			/* 0 until the request line is read */
	struct field_span fields[P11PKI_HTTP_MAX_HEADERS];
	size_t n;
	size_t end;			/* bytes of the head */
};

/* Builds output twice: first with p NULL to measure, then for real, so
 * the result is allocated once at its exact size. */
struct writer {
	char *p;
	size_t len;
};

typedef void (*emit_fn)(struct writer *w, const void *arg);

static int lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static int is_ows(int c)
{
	return c == ' ' || c == '\t';
}

static int is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static int is_alnum(int c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* RFC 9110 section 5.6.2 */
static int is_tchar(int c)
{
	return is_alnum(c) || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int is_token(const char *s, size_t n)
{
	size_t i;

	if (n == 0)
		return 0;
	for (i = 0; i < n; i++)
		if (!is_tchar((unsigned char)s[i]))
			return 0;
	return 1;
}

/* ASCII case-insensitive: s[0..n) equals the whole of lit. */
static int ieq_n(const char *s, size_t n, const char *lit)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (lit[i] == '\0' || lower((unsigned char)s[i]) != lower((unsigned char)lit[i]))
			return 0;
	return lit[n] == '\0';
}

static int ieq(const char *s, const char *lit)
{
	return ieq_n(s, strlen(s), lit);
}

/* Finds the CRLF ending the line at buf[pos], checking each byte on the
 * way so that garbage is refused before the head is complete. */
static int find_line(const char *buf, size_t pos, size_t limit, int first, size_t *eol)
{
	const unsigned char *u = (const unsigned char *)buf;
	size_t i;

	for (i = pos; i < limit; i++) {
		if (u[i] == '\r') {
			if (i + 1 == limit)
				break;
			if (u[i + 1] != '\n')
				return p11pki_fail(P11PKI_E_ARG, "bare CR in request head");
			*eol = i;
			return P11PKI_OK;
		}
		if (u[i] == '\n')
			return p11pki_fail(P11PKI_E_ARG, "bare LF in request head (lines end in CRLF)");
		if (u[i] == '\0')
			return p11pki_fail(P11PKI_E_ARG, "NUL byte in request head");
		if ((u[i] < 0x20 && u[i] != '\t') || u[i] == 0x7f)
			return p11pki_fail(P11PKI_E_ARG, "control character 0x%02x in request head", u[i]);
		if (i - pos >= P11PKI_HTTP_LINE_MAX)
			return p11pki_fail(P11PKI_E_ARG, "%s longer than %d bytes",
					   first ? "request line" : "header line", P11PKI_HTTP_LINE_MAX);
	}
	return P11PKI_HTTP_MORE;
}

static int parse_version(const char *v, size_t n, int *version)
{
	char shown[P11PKI_SHOWN_BUF];

	if (n == 8 && memcmp(v, "HTTP/1.1", 8) == 0) {
		*version = 11;
		return P11PKI_OK;
	}
	if (n == 8 && memcmp(v, "HTTP/1.0", 8) == 0) {
		*version = 10;
		return P11PKI_OK;
	}
	if (n >= 6 && (memcmp(v, "HTTP/2", 6) == 0 || memcmp(v, "HTTP/3", 6) == 0))
		return p11pki_fail(P11PKI_E_ARG, "%s is not supported: only HTTP/1.0 and HTTP/1.1",
				   SHOWN(v, n, shown));
	return p11pki_fail(P11PKI_E_ARG, "unsupported HTTP version '%s'", SHOWN(v, n, shown));
}

/* Only origin-form ("/path?query") and "*" for OPTIONS: this is a reverse
 * proxy, so absolute-form and CONNECT have no meaning here. */
static int check_target(const char *m, size_t mn, const char *t, size_t tn)
{
	char shown[P11PKI_SHOWN_BUF];
	size_t i;

	for (i = 0; i < tn; i++)
		if ((unsigned char)t[i] <= 0x20 || (unsigned char)t[i] >= 0x7f)
			return p11pki_fail(P11PKI_E_ARG, "request target contains byte 0x%02x",
					   (unsigned char)t[i]);
	if (t[0] == '/' || (tn == 1 && t[0] == '*' && mn == 7 && memcmp(m, "OPTIONS", 7) == 0))
		return P11PKI_OK;
	if (mn == 7 && memcmp(m, "CONNECT", 7) == 0)
		return p11pki_fail(P11PKI_E_ARG, "CONNECT is not supported by this proxy");
	return p11pki_fail(P11PKI_E_ARG, "request target '%s' must start with '/'",
			   SHOWN(t, tn, shown));
}

/* method SP request-target SP HTTP-version (RFC 9112 section 3) */
static int request_line(const char *buf, const struct span *line, struct scan *sc)
{
	const char *s = buf + line->off, *t, *sp1, *sp2;
	char shown[P11PKI_SHOWN_BUF];
	size_t n = line->len, mn, tn;
	int r;

	if (n == 14 && memcmp(s, "PRI * HTTP/2.0", 14) == 0)
		return p11pki_fail(P11PKI_E_ARG, "HTTP/2 connection preface received: only "
				   "HTTP/1.0 and HTTP/1.1 are served");
	if ((sp1 = memchr(s, ' ', n)) == NULL)
		return p11pki_fail(P11PKI_E_ARG, "malformed request line '%s'", SHOWN(s, n, shown));
	mn = (size_t)(sp1 - s);
	if (!is_token(s, mn))
		return p11pki_fail(P11PKI_E_ARG, "request method '%s' is not a token",
				   SHOWN(s, mn, shown));
	t = sp1 + 1;
	if ((sp2 = memchr(t, ' ', n - mn - 1)) == NULL)
		return p11pki_fail(P11PKI_E_ARG, "HTTP/0.9 request (no HTTP version) is not supported");
	tn = (size_t)(sp2 - t);
	if (tn == 0)
		return p11pki_fail(P11PKI_E_ARG, "malformed request line: empty target");
	/* exactly two SPs: extra spaces are how parsers disagree */
	if (memchr(sp2 + 1, ' ', n - mn - tn - 2) != NULL)
		return p11pki_fail(P11PKI_E_ARG, "malformed request line '%s' (more than two spaces)",
				   SHOWN(s, n, shown));
	if ((r = parse_version(sp2 + 1, n - mn - tn - 2, &sc->version)) != P11PKI_OK ||
	    (r = check_target(s, mn, t, tn)) != P11PKI_OK)
		return r;
	sc->method = (struct span){ line->off, mn };
	sc->target = (struct span){ line->off + mn + 1, tn };
	return P11PKI_OK;
}

/* field-name ":" OWS field-value OWS (RFC 9112 section 5) */
static int field_line(const char *buf, const struct span *line, struct scan *sc)
{
	const char *s = buf + line->off, *colon;
	char shown[P11PKI_SHOWN_BUF];
	size_t n = line->len, nl, v, e;
	struct field_span *f;

	if (is_ows(s[0]))
		return p11pki_fail(P11PKI_E_ARG, "obsolete line folding (header line starting "
				   "with whitespace) is not allowed");
	if (sc->n == P11PKI_HTTP_MAX_HEADERS)
		return p11pki_fail(P11PKI_E_ARG, "more than %d header fields", P11PKI_HTTP_MAX_HEADERS);
	if ((colon = memchr(s, ':', n)) == NULL)
		return p11pki_fail(P11PKI_E_ARG, "header line '%s' has no ':'", SHOWN(s, n, shown));
	nl = (size_t)(colon - s);
	if (nl == 0)
		return p11pki_fail(P11PKI_E_ARG, "empty header name");
	if (is_ows(s[nl - 1]))
		return p11pki_fail(P11PKI_E_ARG, "whitespace before ':' in header '%s'",
				   SHOWN(s, nl, shown));
	if (!is_token(s, nl))
		return p11pki_fail(P11PKI_E_ARG, "header name '%s' is not a token",
				   SHOWN(s, nl, shown));
	for (v = nl + 1; v < n && is_ows(s[v]); v++)
		;
	for (e = n; e > v && is_ows(s[e - 1]); e--)
		;
	f = &sc->fields[sc->n++];
	f->name = (struct span){ line->off, nl };
	f->value = (struct span){ line->off + v, e - v };
	return P11PKI_OK;
}

static int scan_head(const char *buf, size_t len, struct scan *sc)
{
	size_t limit = len < P11PKI_HTTP_HEAD_MAX ? len : P11PKI_HTTP_HEAD_MAX, pos = 0, eol = 0;
	struct span line;
	int r;

	/* RFC 9112 section 2.2: empty lines before a request are ignored */
	while (pos + 1 < limit && buf[pos] == '\r' && buf[pos + 1] == '\n')
		pos += 2;
	for (;;) {
		r = find_line(buf, pos, limit, sc->version == 0, &eol);
		if (r == P11PKI_HTTP_MORE && limit == P11PKI_HTTP_HEAD_MAX)
			return p11pki_fail(P11PKI_E_ARG, "request head larger than %d bytes",
					   P11PKI_HTTP_HEAD_MAX);
		if (r != P11PKI_OK)
			return r;
		line = (struct span){ pos, eol - pos };
		pos = eol + 2;
		if (sc->version == 0)
			r = request_line(buf, &line, sc);
		else if (line.len == 0)
			break;
		else
			r = field_line(buf, &line, sc);
		if (r != P11PKI_OK)
			return r;
	}
	sc->end = pos;
	return P11PKI_OK;
}

/* Each span is followed by a delimiter (SP, ':', OWS or CR) in the copy,
 * which becomes its NUL. */
static const char *terminate(char *storage, const struct span *s)
{
	storage[s->off + s->len] = '\0';
	return storage + s->off;
}

static int build(const char *buf, const struct scan *sc, struct p11pki_http_head *h)
{
	size_t i;

	if ((h->storage = malloc(sc->end + 1)) == NULL ||
	    (h->headers = calloc(sc->n ? sc->n : 1, sizeof(*h->headers))) == NULL)
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory for a request head");
	memcpy(h->storage, buf, sc->end);
	h->storage[sc->end] = '\0';
	h->method = terminate(h->storage, &sc->method);
	h->target = terminate(h->storage, &sc->target);
	h->version = sc->version;
	for (i = 0; i < sc->n; i++) {
		h->headers[i].name = terminate(h->storage, &sc->fields[i].name);
		h->headers[i].value = terminate(h->storage, &sc->fields[i].value);
	}
	h->n_headers = sc->n;
	return P11PKI_OK;
}

/* 1*DIGIT, or a list of equal ones ("5, 5"), which RFC 9110 section 8.6
 * lets a recipient take as one value. */
static int parse_content_length(const char *v, long long *out)
{
	char shown[P11PKI_SHOWN_BUF];
	const char *p = v;
	long long n, first = -1;
	size_t digits;

	for (;;) {
		while (is_ows(*p))
			p++;
		for (n = 0, digits = 0; is_digit(*p); p++) {
			if (++digits > 18)
				return p11pki_fail(P11PKI_E_ARG, "Content-Length '%s' is too large",
						   p11pki_shown_ascii(v, shown, sizeof(shown)));
			n = n * 10 + (*p - '0');
		}
		while (is_ows(*p))
			p++;
		if (digits == 0 || (*p != ',' && *p != '\0'))
			return p11pki_fail(P11PKI_E_ARG, "invalid Content-Length '%s'",
					   p11pki_shown_ascii(v, shown, sizeof(shown)));
		if (first >= 0 && n != first)
			return p11pki_fail(P11PKI_E_ARG, "differing Content-Length values in '%s'",
					   p11pki_shown_ascii(v, shown, sizeof(shown)));
		first = n;
		if (*p == '\0')
			break;
		p++;
	}
	*out = first;
	return P11PKI_OK;
}

/* uri-host [ ":" port ]: the characters of RFC 3986 reg-name, IP-literal
 * and port; empty is allowed (RFC 9112 section 3.2). */
static int valid_host(const char *v)
{
	for (; *v != '\0'; v++)
		if (!is_alnum((unsigned char)*v) && strchr("-._~!$&'()*+,;=:[]%", *v) == NULL)
			return 0;
	return 1;
}

static int check_host(struct p11pki_http_head *h, const char *v)
{
	char shown[P11PKI_SHOWN_BUF];

	if (h->host != NULL)
		return p11pki_fail(P11PKI_E_ARG, "more than one Host header");
	if (!valid_host(v))
		return p11pki_fail(P11PKI_E_ARG, "invalid Host header '%s'",
				   p11pki_shown_ascii(v, shown, sizeof(shown)));
	h->host = v;
	return P11PKI_OK;
}

static int check_content_length(struct p11pki_http_head *h, const char *v)
{
	long long n = -1;
	int r;

	if ((r = parse_content_length(v, &n)) != P11PKI_OK)
		return r;
	if (h->content_length >= 0 && n != h->content_length)
		return p11pki_fail(P11PKI_E_ARG, "differing Content-Length values %lld and %lld",
				   h->content_length, n);
	h->content_length = n;
	return P11PKI_OK;
}

/* Framing (RFC 9112 section 6.3) and Host (section 3.2). */
static int check_fields(struct p11pki_http_head *h)
{
	char shown[P11PKI_SHOWN_BUF];
	const char *te = NULL;
	const struct p11pki_http_header *f;
	size_t i;
	int r = P11PKI_OK;

	for (i = 0; i < h->n_headers && r == P11PKI_OK; i++) {
		f = &h->headers[i];
		if (ieq(f->name, "host"))
			r = check_host(h, f->value);
		else if (ieq(f->name, "content-length"))
			r = check_content_length(h, f->value);
		else if (ieq(f->name, "transfer-encoding") && te != NULL)
			r = p11pki_fail(P11PKI_E_ARG, "more than one Transfer-Encoding header");
		else if (ieq(f->name, "transfer-encoding"))
			te = f->value;
	}
	if (r != P11PKI_OK)
		return r;
	if (te != NULL && h->content_length >= 0)
		return p11pki_fail(P11PKI_E_ARG, "both Content-Length and Transfer-Encoding in a "
				   "request (request smuggling)");
	if (te != NULL && h->version == 10)
		return p11pki_fail(P11PKI_E_ARG, "Transfer-Encoding in an HTTP/1.0 request");
	if (te != NULL && !ieq(te, "chunked"))
		return p11pki_fail(P11PKI_E_ARG, "unsupported Transfer-Encoding '%s' (only chunked)",
				   p11pki_shown_ascii(te, shown, sizeof(shown)));
	if (h->version == 11 && h->host == NULL)
		return p11pki_fail(P11PKI_E_ARG, "HTTP/1.1 request without Host header");
	h->chunked = te != NULL;
	return P11PKI_OK;
}

int p11pki_http_head_parse(const char *buf, size_t len, size_t *consumed,
			   struct p11pki_http_head *out)
{
	struct scan sc;
	int r;

	if (consumed != NULL)
		*consumed = 0;
	if (out != NULL) {
		memset(out, 0, sizeof(*out));
		out->content_length = -1;
	}
	if (consumed == NULL || out == NULL || (buf == NULL && len > 0))
		return p11pki_fail(P11PKI_E_ARG, "p11pki_http_head_parse: missing argument");
	memset(&sc, 0, sizeof(sc));
	if ((r = scan_head(buf, len, &sc)) != P11PKI_OK)
		goto out;
	if ((r = build(buf, &sc, out)) != P11PKI_OK || (r = check_fields(out)) != P11PKI_OK)
		goto out;
	*consumed = sc.end;
out:
	if (r != P11PKI_OK)
		p11pki_http_head_clear(out);
	return r;
}

void p11pki_http_head_clear(struct p11pki_http_head *h)
{
	if (h == NULL)
		return;
	free(h->headers);
	free(h->storage);
	memset(h, 0, sizeof(*h));
	h->content_length = -1;
}

const char *p11pki_http_head_find(const struct p11pki_http_head *h, const char *name)
{
	size_t i;

	if (h == NULL || name == NULL)
		return NULL;
	for (i = 0; i < h->n_headers; i++)
		if (ieq(h->headers[i].name, name))
			return h->headers[i].value;
	return NULL;
}

int p11pki_http_is_healthz(const struct p11pki_http_head *h)
{
	if (h == NULL || h->method == NULL || h->target == NULL || strcmp(h->method, "GET") != 0)
		return 0;
	return strcmp(h->target, "/healthz") == 0 || strncmp(h->target, "/healthz?", 9) == 0;
}

/* ---- building heads and answers ---- */

static const char hexdigits[] = "0123456789ABCDEF";

static void put(struct writer *w, const char *s, size_t n)
{
	if (w->p != NULL)
		memcpy(w->p + w->len, s, n);
	w->len += n;
}

static void put_str(struct writer *w, const char *s)
{
	put(w, s, strlen(s));
}

static void put_num(struct writer *w, long long v)
{
	char d[24];
	size_t i = sizeof(d);

	do {
		d[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0 && i > 0);
	put(w, d + i, sizeof(d) - i);
}

static void put_hex(struct writer *w, char lead, unsigned char c)
{
	char e[3] = { lead, hexdigits[c >> 4], hexdigits[c & 15] };

	put(w, e, sizeof(e));
}

/* RFC 3986 percent-encoding of everything but unreserved characters. */
static void put_pct(struct writer *w, const char *s)
{
	const unsigned char *u = (const unsigned char *)s;

	for (; *u != '\0'; u++) {
		if (is_alnum(*u) || *u == '-' || *u == '.' || *u == '_' || *u == '~')
			put(w, (const char *)u, 1);
		else
			put_hex(w, '%', *u);
	}
}

/* Control bytes, and spaces at either end (which a header parser trims),
 * become RFC 4514 "\XX" escapes, so a value can never split the head. */
static void put_escaped(struct writer *w, const char *s)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i, n = strlen(s);

	for (i = 0; i < n; i++) {
		if (u[i] < 0x20 || u[i] == 0x7f || (u[i] == ' ' && (i == 0 || i + 1 == n)))
			put_hex(w, '\\', u[i]);
		else
			put(w, s + i, 1);
	}
}

static void put_field(struct writer *w, const char *name, const char *value)
{
	put_str(w, name);
	put(w, ": ", 2);
	put_str(w, value);
	put(w, "\r\n", 2);
}

/* Runs emit once to measure and once to write into an exact allocation. */
static int build_output(emit_fn emit, const void *arg, const char *what, char **out,
			size_t *out_len)
{
	struct writer w = { NULL, 0 };
	char *buf = NULL;
	int r = P11PKI_OK;

	emit(&w, arg);
	if (w.len > P11PKI_HTTP_OUT_MAX) {
		r = p11pki_fail(P11PKI_E_ARG, "%s larger than %d bytes", what, P11PKI_HTTP_OUT_MAX);
		goto out;
	}
	if ((buf = malloc(w.len + 1)) == NULL) {
		r = p11pki_fail(P11PKI_E_NOMEM, "out of memory for %s", what);
		goto out;
	}
	w = (struct writer){ buf, 0 };
	emit(&w, arg);
	buf[w.len] = '\0';
	*out = buf;
	*out_len = w.len;
	buf = NULL;
out:
	free(buf);
	return r;
}

/* ASCII case-insensitive prefix test where '_' matches '-': CGI-style
 * backends turn both into '_', so X_Client_Verify would pass as ours. */
static int folded_prefix(const char *name, const char *prefix)
{
	int c;

	for (; *prefix != '\0'; name++, prefix++) {
		c = *name == '_' ? '-' : lower((unsigned char)*name);
		if (c != *prefix)
			return 0;
	}
	return 1;
}

static int folded_eq(const char *name, const char *lit)
{
	return folded_prefix(name, lit) && name[strlen(lit)] == '\0';
}

/* Headers only the proxy may set; "Proxy" also (httpoxy, CVE-2016-5385). */
static int is_reserved(const char *name)
{
	return folded_prefix(name, "x-client-") || folded_prefix(name, "x-forwarded-") ||
	       folded_eq(name, "forwarded") || folded_eq(name, "x-real-ip") ||
	       folded_eq(name, "proxy");
}

/* 1 when the comma-separated list holds name (ASCII case-insensitive). */
static int list_has(const char *list, const char *name)
{
	const char *p = list, *e;
	size_t n;

	for (;;) {
		while (is_ows(*p) || *p == ',')
			p++;
		if (*p == '\0')
			return 0;
		for (e = p; *e != '\0' && *e != ','; e++)
			;
		for (n = (size_t)(e - p); n > 0 && is_ows(p[n - 1]); n--)
			;
		if (ieq_n(p, n, name))
			return 1;
		p = e;
	}
}

/* Hop-by-hop (RFC 9110 section 7.6.1): the connection headers and what
 * Connection names, except the framing and routing the backend needs.
 * "Close" is a reserved field name, as our "Connection: close" names it. */
static int is_hop_by_hop(const struct p11pki_http_head *h, const char *name)
{
	size_t i;

	if (ieq(name, "connection") || ieq(name, "keep-alive") || ieq(name, "proxy-connection") ||
	    ieq(name, "close"))
		return 1;
	if (ieq(name, "host") || ieq(name, "content-length") || ieq(name, "transfer-encoding"))
		return 0;
	for (i = 0; i < h->n_headers; i++)
		if (ieq(h->headers[i].name, "connection") && list_has(h->headers[i].value, name))
			return 1;
	return 0;
}

struct rewrite_arg {
	const struct p11pki_http_head *h;
	const struct p11pki_client_info *ci;
};

static void emit_client_fields(struct writer *w, const struct p11pki_http_head *h)
{
	const struct p11pki_http_header *f;
	int cl_done = 0;
	size_t i;

	for (i = 0; i < h->n_headers; i++) {
		f = &h->headers[i];
		if (is_reserved(f->name) || is_hop_by_hop(h, f->name))
			continue;
		if (!ieq(f->name, "content-length")) {
			put_field(w, f->name, f->value);
			continue;
		}
		/* one normalized Content-Length, whatever equal copies came */
		if (cl_done++)
			continue;
		put_str(w, f->name);
		put(w, ": ", 2);
		put_num(w, h->content_length);
		put(w, "\r\n", 2);
	}
}

static void emit_rewrite(struct writer *w, const void *arg)
{
	const struct rewrite_arg *a = arg;
	const struct p11pki_client_info *ci = a->ci;

	put_str(w, a->h->method);
	put(w, " ", 1);
	put_str(w, a->h->target);
	put_str(w, a->h->version == 10 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n");
	emit_client_fields(w, a->h);
	put_str(w, "Connection: close\r\n");
	put_field(w, "X-Forwarded-For", ci->client_ip);
	put_str(w, "X-Forwarded-Proto: https\r\n");
	put_str(w, "X-Client-Verify: ");
	put_escaped(w, ci->verify);
	put(w, "\r\n", 2);
	if (ci->subject != NULL) {
		put_str(w, "X-Client-Subject: ");
		put_escaped(w, ci->subject);
		put(w, "\r\n", 2);
	}
	if (ci->serial != NULL)
		put_field(w, "X-Client-Serial", ci->serial);
	if (ci->cert_pem != NULL) {
		put_str(w, "X-Client-Cert: ");
		put_pct(w, ci->cert_pem);
		put(w, "\r\n", 2);
	}
	put(w, "\r\n", 2);
}

/* strlen bounded by max, as a check. */
static int bounded(const char *s, size_t max, const char *what)
{
	if (s != NULL && strnlen(s, max + 1) > max)
		return p11pki_fail(P11PKI_E_ARG, "%s longer than %zu bytes", what, max);
	return P11PKI_OK;
}

static int all_of(const char *s, const char *set)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (!is_alnum((unsigned char)*s) && strchr(set, *s) == NULL)
			return 0;
	return 1;
}

static int is_hex(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (p11pki_hexval((unsigned char)*s) < 0)
			return 0;
	return 1;
}

static int check_client_info(const struct p11pki_client_info *ci)
{
	int r;

	if (ci == NULL || ci->verify == NULL || ci->client_ip == NULL)
		return p11pki_fail(P11PKI_E_ARG, "client info without verify result or address");
	if ((r = bounded(ci->verify, P11PKI_HTTP_VERIFY_MAX, "verify result")) != P11PKI_OK ||
	    (r = bounded(ci->subject, P11PKI_HTTP_SUBJECT_MAX, "client subject")) != P11PKI_OK ||
	    (r = bounded(ci->serial, P11PKI_HTTP_SERIAL_MAX, "client serial")) != P11PKI_OK ||
	    (r = bounded(ci->cert_pem, P11PKI_HTTP_CERT_MAX, "client certificate PEM")) != P11PKI_OK ||
	    (r = bounded(ci->client_ip, P11PKI_HTTP_IP_MAX, "client address")) != P11PKI_OK)
		return r;
	if (strcmp(ci->verify, "SUCCESS") != 0 && strcmp(ci->verify, "NONE") != 0 &&
	    strncmp(ci->verify, "FAILED:", 7) != 0)
		return p11pki_fail(P11PKI_E_ARG, "verify result must be SUCCESS, NONE or FAILED:reason");
	if (ci->serial != NULL && !is_hex(ci->serial))
		return p11pki_fail(P11PKI_E_ARG, "client serial is not hexadecimal");
	/* IPv4, IPv6 and a zone ("fe80::1%eth0") */
	if (!all_of(ci->client_ip, ".:%_-"))
		return p11pki_fail(P11PKI_E_ARG, "client address is not an IP address");
	return P11PKI_OK;
}

int p11pki_http_head_rewrite(const struct p11pki_http_head *h,
			     const struct p11pki_client_info *ci, char **out, size_t *out_len)
{
	struct rewrite_arg a = { h, ci };
	int r;

	if (out != NULL)
		*out = NULL;
	if (out_len != NULL)
		*out_len = 0;
	if (h == NULL || h->method == NULL || h->target == NULL || out == NULL || out_len == NULL)
		return p11pki_fail(P11PKI_E_ARG, "p11pki_http_head_rewrite: missing argument");
	if ((r = check_client_info(ci)) != P11PKI_OK)
		return r;
	return build_output(emit_rewrite, &a, "backend request head", out, out_len);
}

struct response_arg {
	int status;
	const char *reason, *content_type, *body;
	size_t body_len;
};

static void emit_response(struct writer *w, const void *arg)
{
	const struct response_arg *a = arg;

	put_str(w, "HTTP/1.1 ");
	put_num(w, a->status);
	put(w, " ", 1);
	put_str(w, a->reason);
	put(w, "\r\n", 2);
	if (a->content_type != NULL)
		put_field(w, "Content-Type", a->content_type);
	put_str(w, "Content-Length: ");
	put_num(w, (long long)a->body_len);
	put_str(w, "\r\nConnection: close\r\n\r\n");
	put(w, a->body, a->body_len);
}

/* Printable ASCII only: these go into a head verbatim. */
static int printable(const char *s, size_t max)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (i == max || (unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return 0;
	return 1;
}

int p11pki_http_simple_response(int status, const char *reason, const char *content_type,
				const char *body, char **out, size_t *out_len)
{
	struct response_arg a = { status, reason, content_type, body ? body : "", 0 };

	if (out != NULL)
		*out = NULL;
	if (out_len != NULL)
		*out_len = 0;
	if (reason == NULL || out == NULL || out_len == NULL)
		return p11pki_fail(P11PKI_E_ARG, "p11pki_http_simple_response: missing argument");
	if (status < 100 || status > 599)
		return p11pki_fail(P11PKI_E_ARG, "HTTP status %d is not in 100..599", status);
	if (!printable(reason, REASON_MAX) ||
	    (content_type != NULL && !printable(content_type, REASON_MAX)))
		return p11pki_fail(P11PKI_E_ARG, "reason or content type is not printable ASCII "
				   "of at most %d bytes", REASON_MAX);
	if ((a.body_len = strnlen(a.body, BODY_MAX + 1)) > BODY_MAX)
		return p11pki_fail(P11PKI_E_ARG, "response body longer than %d bytes", BODY_MAX);
	return build_output(emit_response, &a, "response", out, out_len);
}

/* "HTTP/1." DIGIT SP 3DIGIT [ SP reason ], the prefix already checked;
 * the SP before an empty reason is optional, as many servers omit it. */
static int status_line(const char *s, size_t n, int *status)
{
	char shown[P11PKI_SHOWN_BUF];
	size_t i;
	int code;

	if (n < 12 || !is_digit(s[7]) || s[8] != ' ' || !is_digit(s[9]) || !is_digit(s[10]) ||
	    !is_digit(s[11]) || (n > 12 && s[12] != ' '))
		return p11pki_fail(P11PKI_E_ARG, "malformed status line '%s'", SHOWN(s, n, shown));
	for (i = 13; i < n; i++)
		if (((unsigned char)s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f)
			return p11pki_fail(P11PKI_E_ARG, "control character 0x%02x in status line",
					   (unsigned char)s[i]);
	code = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
	if (code < 100 || code > 599)
		return p11pki_fail(P11PKI_E_ARG, "status code %d is not in 100..599", code);
	*status = code;
	return P11PKI_OK;
}

int p11pki_http_status_parse(const char *buf, size_t len, int *status)
{
	static const char prefix[] = "HTTP/1.";
	char shown[P11PKI_SHOWN_BUF];
	size_t lim = len < P11PKI_HTTP_LINE_MAX + 2 ? len : P11PKI_HTTP_LINE_MAX + 2, eol;
	const char *lf;

	if (status != NULL)
		*status = 0;
	if (status == NULL || (buf == NULL && len > 0))
		return p11pki_fail(P11PKI_E_ARG, "p11pki_http_status_parse: missing argument");
	if (len == 0)
		return P11PKI_HTTP_MORE;
	if (memcmp(buf, prefix, len < 7 ? len : 7) != 0)
		return p11pki_fail(P11PKI_E_ARG, "backend answer does not start with 'HTTP/1.': '%s'",
				   SHOWN(buf, len < 16 ? len : 16, shown));
	if ((lf = memchr(buf, '\n', lim)) == NULL) {
		if (len >= P11PKI_HTTP_LINE_MAX + 2)
			return p11pki_fail(P11PKI_E_ARG, "status line longer than %d bytes",
					   P11PKI_HTTP_LINE_MAX);
		return P11PKI_HTTP_MORE;
	}
	eol = (size_t)(lf - buf);
	if (eol > 0 && buf[eol - 1] == '\r')
		eol--;
	return status_line(buf, eol, status);
}
