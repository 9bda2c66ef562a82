/* The pure parts of the EST client (est_client.h): the --server address,
 * the HTTP answer (status, framing, Retry-After, the reason line), the
 * certs-only PKCS#7 and the renewal decision. No sockets here: unit tests
 * and the fuzzer drive these directly. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pkcs7.h>
#include <openssl/x509v3.h>

#include "core/text.h"
#include "online/base64.h"
#include "online/est_client.h"

/* ---- the server's address ------------------------------------------------ */

int p11pki_est_host_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

static int url_fail(const char *text, const char *why)
{
	char shown[P11PKI_SHOWN_BUF];

	return p11pki_fail(P11PKI_E_ARG, "--server '%s' %s: give https://HOST[:PORT], e.g. https://ca.example.com:8443",
			   p11pki_shown_ascii(text, shown, sizeof(shown)), why);
}

/* HOST or [V6] at p, up to the port or the end; *end is just after it. */
static int url_host(const char *text, const char *p, struct p11pki_est_url *u, const char **end)
{
	unsigned char addr[16];
	size_t n;

	if (*p == '[') {
		n = strcspn(p + 1, "]");
		if (p[1 + n] != ']' || n == 0 || n >= sizeof(u->host))
			return url_fail(text, "has a malformed [IPv6] address");
		memcpy(u->host, p + 1, n);
		u->host[n] = '\0';
		if (inet_pton(AF_INET6, u->host, addr) != 1)
			return url_fail(text, "has a malformed [IPv6] address");
		u->is_ip = 1;
		*end = p + n + 2;
		return P11PKI_OK;
	}
	for (n = 0; p11pki_est_host_char((unsigned char)p[n]); n++)
		;
	if (n == 0 || n >= sizeof(u->host))
		return url_fail(text, n == 0 ? "names no host" : "has a host name that is too long");
	memcpy(u->host, p, n);
	u->host[n] = '\0';
	u->is_ip = inet_pton(AF_INET, u->host, addr) == 1;
	*end = p + n;
	return P11PKI_OK;
}

static int url_port(const char *text, const char *p, struct p11pki_est_url *u, const char **end)
{
	unsigned long port = 0;
	size_t n;

	snprintf(u->port, sizeof(u->port), "443");
	*end = p;
	if (*p != ':')
		return P11PKI_OK;
	for (n = 1; p[n] >= '0' && p[n] <= '9' && n <= 6; n++)
		port = port * 10 + (unsigned long)(p[n] - '0');
	if (n == 1 || n > 6 || port == 0 || port > 65535)
		return url_fail(text, "has a port that is not 1 to 65535");
	snprintf(u->port, sizeof(u->port), "%lu", port);
	*end = p + n;
	return P11PKI_OK;
}

int p11pki_est_client_parse_url(const char *text, struct p11pki_est_url *out)
{
	const char *p = NULL;
	int r;

	memset(out, 0, sizeof(*out));
	if (text == NULL || *text == '\0')
		return p11pki_fail(P11PKI_E_ARG, "no EST server given: add --server https://HOST[:PORT]");
	/* not quoted: "https://user:secret@host" would show the secret */
	if (strchr(text, '@') != NULL)
		return p11pki_fail(P11PKI_E_ARG, "--server has user information: give https://HOST[:PORT], the user "
				   "with --user and the secret with --secret-env or --secret-file");
	if (strncasecmp(text, "https://", 8) != 0)
		return url_fail(text, strncasecmp(text, "http://", 7) == 0 ? "is not https (EST runs over TLS only)"
									: "does not start with https://");
	if ((r = url_host(text, text + 8, out, &p)) != 0 || (r = url_port(text, p, out, &p)) != 0)
		return r;
	if (*p == '/')
		p++;
	if (*p != '\0')
		return url_fail(text, p[-1] == '/' ? "has a path (an EST label goes in --est-label)"
						   : "has something after the host and port");
	if (out->is_ip && strchr(out->host, ':') != NULL)
		snprintf(out->authority, sizeof(out->authority), "[%s]", out->host);
	else
		snprintf(out->authority, sizeof(out->authority), "%s", out->host);
	if (strcmp(out->port, "443") != 0) {
		size_t n = strlen(out->authority);
		snprintf(out->authority + n, sizeof(out->authority) - n, ":%s", out->port);
	}
	return P11PKI_OK;
}

/* ---- answers: the head ----------------------------------------------------- */

struct head {
	size_t len;			/* through the blank line */
	int status;
	long long content_length;	/* -1: none */
	int chunked;
};

static int ieq(const char *a, size_t n, const char *lit)
{
	return strlen(lit) == n && strncasecmp(a, lit, n) == 0;
}

static int answer_bad(const char *why)
{
	return p11pki_fail(P11PKI_E_ARG, "the answer is not valid HTTP: %s", why);
}

/* The line at pos ends at *end (its CR LF excluded; a bare LF is accepted:
 * lenient in what a client reads); *next is just after it. */
static int next_line(const unsigned char *buf, size_t len, size_t pos, size_t *end, size_t *next)
{
	const unsigned char *nl = pos < len ? memchr(buf + pos, '\n', len - pos) : NULL;

	if (nl == NULL)
		return len - pos > P11PKI_EST_CLIENT_HEAD_MAX ? answer_bad("a line is too long")
							       : P11PKI_EST_CLIENT_MORE;
	*next = (size_t)(nl - buf) + 1;
	*end = *next - 1;
	if (*end > pos && buf[*end - 1] == '\r')
		(*end)--;
	return P11PKI_OK;
}

static int status_line(const char *s, size_t n, struct head *h, struct p11pki_est_response *out)
{
	size_t i;

	if (n < 12 || strncmp(s, "HTTP/1.", 7) != 0 || s[7] < '0' || s[7] > '9' || s[8] != ' ')
		return answer_bad("the status line does not start with HTTP/1.x and a code");
	for (i = 9; i < 12; i++)
		if (s[i] < '0' || s[i] > '9')
			return answer_bad("the status code is not three digits");
	h->status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
	if (h->status < 100 || h->status > 599)
		return answer_bad("the status code is not 100 to 599");
	if (n > 12 && s[12] != ' ')
		return answer_bad("no space after the status code");
	if (n > 13)
		p11pki_shown_ascii_n(s + 13, n - 13, out->reason, sizeof(out->reason));
	else
		out->reason[0] = '\0';
	return P11PKI_OK;
}

static int content_length(const char *v, size_t n, struct head *h)
{
	long long cl = 0;
	size_t i;

	if (n == 0 || n > 10)
		return answer_bad("Content-Length is not a number");
	for (i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return answer_bad("Content-Length is not a number");
		cl = cl * 10 + (v[i] - '0');
	}
	if (cl > (long long)P11PKI_EST_CLIENT_ANSWER_MAX)
		return p11pki_fail(P11PKI_E_ARG, "the answer is larger than %u bytes",
				   P11PKI_EST_CLIENT_ANSWER_MAX);
	if (h->content_length >= 0 && h->content_length != cl)
		return answer_bad("two different Content-Length fields");
	h->content_length = cl;
	return P11PKI_OK;
}

/* "application/PKCS7-mime; smime-type=certs-only" -> "application/pkcs7-mime" */
static void media_type(const char *v, size_t n, char *buf, size_t size)
{
	size_t i, k = 0;

	for (i = 0; i < n && v[i] != ';' && k + 1 < size; i++)
		if (v[i] != ' ' && v[i] != '\t')
			buf[k++] = (char)(v[i] >= 'A' && v[i] <= 'Z' ? v[i] + 32 : v[i]);
	buf[k] = '\0';
	for (i = 0; i < k; i++)
		if ((unsigned char)buf[i] < 0x21 || (unsigned char)buf[i] > 0x7e)
			buf[i] = '?';
}

static int field(const char *s, size_t n, time_t now, struct head *h, struct p11pki_est_response *out)
{
	const char *colon = memchr(s, ':', n), *v;
	size_t name_len, vn;
	char value[64];

	if (colon == NULL || colon == s)
		return answer_bad("a header field has no name");
	name_len = (size_t)(colon - s);
	if (memchr(s, ' ', name_len) != NULL || memchr(s, '\t', name_len) != NULL)
		return answer_bad("a header field name holds white space");
	v = colon + 1;
	vn = n - name_len - 1;
	while (vn > 0 && (*v == ' ' || *v == '\t'))
		v++, vn--;
	while (vn > 0 && (v[vn - 1] == ' ' || v[vn - 1] == '\t'))
		vn--;
	if (ieq(s, name_len, "Content-Length"))
		return content_length(v, vn, h);
	if (ieq(s, name_len, "Transfer-Encoding")) {
		if (!ieq(v, vn, "chunked"))
			return answer_bad("a transfer coding other than chunked");
		h->chunked = 1;
	} else if (ieq(s, name_len, "Content-Type")) {
		media_type(v, vn, out->content_type, sizeof(out->content_type));
	} else if (ieq(s, name_len, "Retry-After") && vn < sizeof(value)) {
		memcpy(value, v, vn);
		value[vn] = '\0';
		if (p11pki_est_client_retry_after(value, now, &out->retry_after) != 0)
			out->retry_after = -1; /* unreadable: the answer stands */
		p11pki_error_clear();
	}
	return P11PKI_OK;
}

/* One head (status line and fields) from pos. */
static int scan_head(const unsigned char *buf, size_t len, size_t pos, time_t now, struct head *h,
		     struct p11pki_est_response *out)
{
	size_t start = pos, end, next;
	unsigned fields = 0;
	int r;

	memset(h, 0, sizeof(*h));
	h->content_length = -1;
	out->content_type[0] = '\0';
	out->retry_after = -1;
	if ((r = next_line(buf, len, pos, &end, &next)) != 0)
		return r;
	if ((r = status_line((const char *)buf + pos, end - pos, h, out)) != 0)
		return r;
	for (pos = next;; pos = next) {
		if (pos - start > P11PKI_EST_CLIENT_HEAD_MAX)
			return p11pki_fail(P11PKI_E_ARG, "the answer has a head over %d bytes",
					   P11PKI_EST_CLIENT_HEAD_MAX);
		if ((r = next_line(buf, len, pos, &end, &next)) != 0)
			return r;
		if (end == pos)
			break;
		if (buf[pos] == ' ' || buf[pos] == '\t')
			return answer_bad("a folded header line");
		if (memchr(buf + pos, '\0', end - pos) != NULL)
			return answer_bad("a NUL byte in the head");
		if (++fields > 100)
			return answer_bad("more than 100 header fields");
		if ((r = field((const char *)buf + pos, end - pos, now, h, out)) != 0)
			return r;
	}
	if (next - start > P11PKI_EST_CLIENT_HEAD_MAX)
		return p11pki_fail(P11PKI_E_ARG, "the answer has a head over %d bytes",
				   P11PKI_EST_CLIENT_HEAD_MAX);
	if (h->chunked && h->content_length >= 0)
		return answer_bad("both Content-Length and chunked coding");
	h->len = next - start;
	return P11PKI_OK;
}

/* ---- answers: the body ------------------------------------------------------ */

static int chunk_size(const unsigned char *s, size_t n, size_t *size)
{
	size_t i, v = 0;
	int d;

	for (i = 0; i < n && (d = p11pki_hexval(s[i])) >= 0; i++) {
		if (i >= 8)
			return answer_bad("a chunk size is too large");
		v = v * 16 + (size_t)d;
	}
	if (i == 0 || (i < n && s[i] != ';' && s[i] != ' ' && s[i] != '\t'))
		return answer_bad("a chunk size is not hexadecimal");
	*size = v;
	return P11PKI_OK;
}

/* Removes the chunked coding of p[0..n) into out (at least n bytes). */
static int dechunk(const unsigned char *p, size_t n, unsigned char *out, size_t *out_len)
{
	size_t pos = 0, end, next, size = 0;
	int r;

	*out_len = 0;
	for (;;) {
		if ((r = next_line(p, n, pos, &end, &next)) != 0 || (r = chunk_size(p + pos, end - pos, &size)) != 0)
			return r;
		pos = next;
		if (size == 0)
			break;
		if (n - pos < size)
			return P11PKI_EST_CLIENT_MORE;
		memcpy(out + *out_len, p + pos, size);
		*out_len += size;
		pos += size;
		if ((r = next_line(p, n, pos, &end, &next)) != 0)
			return r;
		if (end != pos)
			return answer_bad("a chunk is longer than its size");
		pos = next;
	}
	/* trailer fields, up to the blank line */
	for (;;) {
		if ((r = next_line(p, n, pos, &end, &next)) != 0)
			return r;
		if (end == pos)
			return P11PKI_OK;
		pos = next;
	}
}

static int take_body(const unsigned char *p, size_t n, int chunked, struct p11pki_est_response *out)
{
	int r = P11PKI_OK;

	if ((out->body = malloc(n + 1)) == NULL)
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory reading the answer");
	if (chunked) {
		r = dechunk(p, n, out->body, &out->body_len);
	} else {
		memcpy(out->body, p, n);
		out->body_len = n;
	}
	if (r != 0) {
		free(out->body);
		out->body = NULL;
		out->body_len = 0;
		return r;
	}
	out->body[out->body_len] = '\0';
	return P11PKI_OK;
}

int p11pki_est_client_parse_response(const unsigned char *buf, size_t len, int eof, time_t now,
				     struct p11pki_est_response *out)
{
	struct head h;
	size_t pos = 0, rest;
	int r;

	memset(out, 0, sizeof(*out));
	out->retry_after = -1;
	if (len > P11PKI_EST_CLIENT_ANSWER_MAX) {
		r = p11pki_fail(P11PKI_E_ARG, "the answer is larger than %u bytes",
				P11PKI_EST_CLIENT_ANSWER_MAX);
		goto out;
	}
	/* interim 1xx answers come before the real one */
	for (;;) {
		if ((r = scan_head(buf, len, pos, now, &h, out)) != 0)
			goto out;
		pos += h.len;
		if (h.status >= 200)
			break;
		if (h.status == 101) {
			r = answer_bad("101 Switching Protocols");
			goto out;
		}
	}
	out->status = h.status;
	rest = len - pos;
	if (h.status == 204 || h.status == 304)
		rest = 0;
	else if (h.content_length >= 0 && rest < (size_t)h.content_length)
		r = P11PKI_EST_CLIENT_MORE;
	else if (h.content_length >= 0)
		rest = (size_t)h.content_length;
	else if (!h.chunked && !eof)
		r = P11PKI_EST_CLIENT_MORE; /* the body runs to the close */
	if (r == 0)
		r = take_body(buf + pos, rest, h.chunked, out);
out:
	if (r == P11PKI_EST_CLIENT_MORE && eof)
		r = p11pki_fail(P11PKI_E_ARG, "the connection closed before the answer was complete");
	if (r != 0)
		p11pki_est_client_response_clear(out);
	return r;
}

void p11pki_est_client_response_clear(struct p11pki_est_response *r)
{
	free(r->body);
	memset(r, 0, sizeof(*r));
	r->retry_after = -1;
}

int p11pki_est_client_retry_after(const char *value, time_t now, long *seconds)
{
	struct tm tm;
	const char *end;
	time_t when;
	long v = 0;
	size_t i;

	*seconds = -1;
	if (value[0] >= '0' && value[0] <= '9') {
		for (i = 0; value[i] >= '0' && value[i] <= '9'; i++) {
			if (i >= 9)
				return p11pki_fail(P11PKI_E_ARG, "Retry-After is too large");
			v = v * 10 + (value[i] - '0');
		}
		if (value[i] != '\0')
			return p11pki_fail(P11PKI_E_ARG, "Retry-After is neither seconds nor a date");
		*seconds = v;
		return P11PKI_OK;
	}
	memset(&tm, 0, sizeof(tm));
	end = strptime(value, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	if (end == NULL || *end != '\0' || (when = timegm(&tm)) == (time_t)-1)
		return p11pki_fail(P11PKI_E_ARG, "Retry-After is neither seconds nor a date");
	*seconds = when <= now ? 0 : (when - now > 999999999 ? 999999999 : (long)(when - now));
	return P11PKI_OK;
}

void p11pki_est_client_reason(const struct p11pki_est_response *r, char *buf, size_t size)
{
	const char *body = (const char *)r->body;
	size_t n;

	if (size < 4) {
		if (size > 0)
			buf[0] = '\0';
		return;
	}
	if (body != NULL && strncmp(r->content_type, "text/", 5) == 0) {
		body += strspn(body, " \t\r\n");
		if ((n = strcspn(body, "\r\n")) > 0) {
			p11pki_shown_ascii_n(body, n, buf, size);
			return;
		}
	}
	snprintf(buf, size, "%s", r->reason[0] != '\0' ? r->reason : "no reason given");
}

/* ---- certs-only -------------------------------------------------------------- */

static int is_b64_text(const unsigned char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] >= 0x80 || (p[i] < 0x20 && p[i] != '\r' && p[i] != '\n' && p[i] != '\t'))
			return 0;
	return 1;
}

static int certs_of(PKCS7 *p7, STACK_OF(X509) **out)
{
	STACK_OF(X509) *certs;
	int i;

	if (OBJ_obj2nid(p7->type) != NID_pkcs7_signed || p7->d.sign == NULL || p7->d.sign->cert == NULL ||
	    sk_X509_num(p7->d.sign->cert) == 0)
		return p11pki_fail(P11PKI_E_ARG, "the PKCS#7 answer holds no certificates");
	if ((certs = sk_X509_new_null()) == NULL)
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
	for (i = 0; i < sk_X509_num(p7->d.sign->cert); i++) {
		X509 *x = sk_X509_value(p7->d.sign->cert, i);
		if (!sk_X509_push(certs, x)) {
			sk_X509_pop_free(certs, X509_free);
			return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
		}
		X509_up_ref(x);
	}
	*out = certs;
	return P11PKI_OK;
}

int p11pki_est_client_decode_certs(const unsigned char *body, size_t len, STACK_OF(X509) **out)
{
	char why[256];
	unsigned char *der = NULL;
	const unsigned char *p;
	size_t der_len = 0;
	PKCS7 *p7 = NULL;
	int r;

	*out = NULL;
	if (len == 0)
		return p11pki_fail(P11PKI_E_ARG, "the answer has no body");
	if (is_b64_text(body, len)) {
		if ((r = online_base64_decode((const char *)body, len, 1, &der, &der_len)) != 0) {
			snprintf(why, sizeof(why), "%s", p11pki_errmsg()); /* p11pki_fail writes that buffer */
			return p11pki_fail(r, "the answer is not a base64 PKCS#7: %s", why);
		}
		p = der;
	} else {
		/* some servers send binary DER despite RFC 8951 */
		p = body;
		der_len = len;
	}
	if (der_len > LONG_MAX || (p7 = d2i_PKCS7(NULL, &p, (long)der_len)) == NULL) {
		ERR_clear_error();
		r = p11pki_fail(P11PKI_E_ARG, "the answer is not a PKCS#7 certs-only message");
		goto out;
	}
	r = certs_of(p7, out);
out:
	PKCS7_free(p7);
	free(der);
	return r;
}

/* ---- renewal decision ------------------------------------------------------- */

int p11pki_est_client_due(time_t not_after, time_t now, long within)
{
	if (within < 0)
		within = 0;
	return not_after <= now || not_after - now <= (time_t)within;
}

int p11pki_est_client_not_after(X509 *cert, time_t *out)
{
	struct tm tm;

	memset(&tm, 0, sizeof(tm));
	if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) != 1 || (*out = timegm(&tm)) == (time_t)-1)
		return p11pki_fail(P11PKI_E_ARG, "the certificate's notAfter cannot be read");
	return P11PKI_OK;
}
