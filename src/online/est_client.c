/* The EST client (est_client.h): the --server address, the HTTP answer
 * and certs-only parsers, the renewal decision, and one HTTPS exchange per
 * operation over a plain TCP socket with OpenSSL. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pkcs7.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "build_config.h"
#include "core/text.h"
#include "online/base64.h"
#include "online/est_client.h"

#define EST_PATH "/.well-known/est/"
#define LABEL_MAX 63		/* the server keeps labels in 64 bytes */
#define USER_MAX 128
#define READ_CHUNK 16384

/* Puts "prefix: " before the current message (which p11pki_fail cannot
 * take as an argument: it writes the same buffer). */
static int with_prefix(int r, const char *prefix)
{
	char msg[512];

	snprintf(msg, sizeof(msg), "%s", p11pki_errmsg());
	return p11pki_fail(r, "%s: %s", prefix, msg);
}

/* ---- the server's address ------------------------------------------------ */

static int is_host_char(unsigned char c)
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
	for (n = 0; is_host_char((unsigned char)p[n]); n++)
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
	unsigned char *der = NULL;
	const unsigned char *p;
	size_t der_len = 0;
	PKCS7 *p7 = NULL;
	int r;

	*out = NULL;
	if (len == 0)
		return p11pki_fail(P11PKI_E_ARG, "the answer has no body");
	if (is_b64_text(body, len)) {
		if ((r = online_base64_decode((const char *)body, len, 1, &der, &der_len)) != 0)
			return with_prefix(r, "the answer is not a base64 PKCS#7");
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

/* ---- the connection ------------------------------------------------------------ */

struct conn {
	const struct p11pki_est_client *c;
	struct p11pki_est_url url;
	char where[300];	/* "server https://ca.example.com:8443", for messages */
	unsigned timeout_ms;
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	int answered;		/* the whole answer was read: close_notify is due */
};

static void conn_close(struct conn *k)
{
	/* close_notify, without waiting for the peer's; never after a failure
	 * (OpenSSL forbids it, and the socket may be gone) */
	if (k->ssl != NULL && k->answered)
		(void)SSL_shutdown(k->ssl);
	SSL_free(k->ssl);
	SSL_CTX_free(k->ctx);
	if (k->fd >= 0)
		close(k->fd);
	k->ssl = NULL;
	k->ctx = NULL;
	k->fd = -1;
	ERR_clear_error();
}

/* Waits for a non-blocking connect; 0 or an errno value. */
static int connect_wait(int fd, unsigned timeout_ms)
{
	struct pollfd pfd = { fd, POLLOUT, 0 };
	socklen_t len = sizeof(int);
	int n, err = 0;

	while ((n = poll(&pfd, 1, (int)timeout_ms)) < 0 && errno == EINTR)
		;
	if (n == 0)
		return ETIMEDOUT;
	if (n < 0)
		return errno;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		return errno;
	return err;
}

/* Blocking again, with a timeout on every read and write. */
static int set_blocking_timeouts(int fd, unsigned timeout_ms)
{
	struct timeval tv = { (time_t)(timeout_ms / 1000), (suseconds_t)(timeout_ms % 1000) * 1000 };
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0)
		return errno != 0 ? errno : EINVAL;
	return 0;
}

static int try_address(const struct addrinfo *ai, unsigned timeout_ms, int *fd_out)
{
	int fd, err = 0;

	*fd_out = -1;
	if ((fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol)) < 0)
		return errno;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0)
		err = errno == EINPROGRESS ? connect_wait(fd, timeout_ms) : errno;
	if (err == 0)
		err = set_blocking_timeouts(fd, timeout_ms);
	if (err != 0) {
		close(fd);
		return err;
	}
	*fd_out = fd;
	return 0;
}

static int tcp_connect(struct conn *k)
{
	struct addrinfo hints, *res = NULL, *ai;
	int rc, err = ECONNREFUSED;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	if ((rc = getaddrinfo(k->url.host, k->url.port, &hints, &res)) != 0)
		return p11pki_fail(P11PKI_E_IO, "cannot resolve the host of %s: %s", k->where,
				   rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
	for (ai = res; ai != NULL && k->fd < 0; ai = ai->ai_next)
		err = try_address(ai, k->timeout_ms, &k->fd);
	freeaddrinfo(res);
	if (k->fd >= 0)
		return P11PKI_OK;
	if (err == ETIMEDOUT)
		return p11pki_fail(P11PKI_E_IO, "cannot connect to %s: no answer within %u s", k->where,
				   k->timeout_ms / 1000);
	return p11pki_fail(P11PKI_E_IO, "cannot connect to %s: %s", k->where, strerror(err));
}

/* The reason of the last OpenSSL error ("certificate verify failed"), or
 * what errno says. */
static const char *ssl_reason(char *buf, size_t size)
{
	unsigned long e = ERR_peek_last_error();
	const char *reason = e != 0 ? ERR_reason_error_string(e) : NULL;

	if (reason != NULL)
		snprintf(buf, size, "%s", reason);
	else if (e != 0)
		snprintf(buf, size, "OpenSSL error %lx", e);
	else if (errno == EAGAIN || errno == EWOULDBLOCK)
		snprintf(buf, size, "timed out");
	else
		snprintf(buf, size, "%s", errno != 0 ? strerror(errno) : "the connection was closed");
	return buf;
}

static int tls_context(struct conn *k)
{
	const struct p11pki_est_client *c = k->c;
	char why[256], shown[P11PKI_SHOWN_SIZE(120)];
	FILE *fp;
	int i, r;

	if ((k->ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		return p11pki_fail(P11PKI_E_CRYPTO, "cannot make a TLS context");
	SSL_CTX_set_min_proto_version(k->ctx, TLS1_2_VERSION);
	/* a body that runs to the close is framed by the parser, not TLS */
	SSL_CTX_set_options(k->ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_verify(k->ctx, SSL_VERIFY_PEER, NULL);
	if (c->ca_file == NULL)
		return p11pki_fail(P11PKI_E_ARG, "no CA certificates to check %s with: add --ca-file", k->where);
	p11pki_shown(c->ca_file, shown, sizeof(shown));
	if ((fp = fopen(c->ca_file, "r")) == NULL)
		return p11pki_fail(P11PKI_E_ARG, "cannot read --ca-file '%s': %s", shown, strerror(errno));
	fclose(fp);
	if (SSL_CTX_load_verify_locations(k->ctx, c->ca_file, NULL) != 1) {
		r = p11pki_fail(P11PKI_E_ARG, "--ca-file '%s' holds no PEM certificates OpenSSL can read (%s)", shown,
				ssl_reason(why, sizeof(why)));
		ERR_clear_error();
		return r;
	}
	if (c->key == NULL)
		return P11PKI_OK;
	if (c->cert == NULL || SSL_CTX_use_certificate(k->ctx, c->cert) != 1 ||
	    SSL_CTX_use_PrivateKey(k->ctx, c->key) != 1 || SSL_CTX_check_private_key(k->ctx) != 1) {
		ERR_clear_error();
		return p11pki_fail(P11PKI_E_CRYPTO, "the TLS client certificate does not match its key");
	}
	for (i = 0; i < sk_X509_num(c->chain); i++)
		if (SSL_CTX_add1_chain_cert(k->ctx, sk_X509_value(c->chain, i)) != 1) {
			ERR_clear_error();
			return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
		}
	return P11PKI_OK;
}

/* Why the handshake failed, in words a user can act on. */
static int handshake_failed(struct conn *k)
{
	long v = SSL_get_verify_result(k->ssl);
	char why[256], prefix[340];
	int r;

	if (v == X509_V_ERR_HOSTNAME_MISMATCH || v == X509_V_ERR_IP_ADDRESS_MISMATCH) {
		r = p11pki_fail(P11PKI_E_CRYPTO, "%s: its certificate is not for '%s'", k->where, k->url.host);
	} else if (v != X509_V_OK) {
		r = p11pki_fail(P11PKI_E_CRYPTO, "%s: its certificate is not trusted (%s): check --ca-file", k->where,
				X509_verify_cert_error_string(v));
	} else if (strstr(p11pki_errmsg(), "CKR_") != NULL) {
		/* the token could not sign for the client certificate */
		snprintf(prefix, sizeof(prefix), "TLS handshake with %s", k->where);
		r = with_prefix(P11PKI_E_TOKEN, prefix);
	} else {
		r = p11pki_fail(P11PKI_E_CRYPTO, "TLS handshake with %s failed: %s", k->where,
				ssl_reason(why, sizeof(why)));
	}
	ERR_clear_error();
	return r;
}

static int tls_connect(struct conn *k)
{
	int r;

	if ((r = tls_context(k)) != 0)
		return r;
	if ((k->ssl = SSL_new(k->ctx)) == NULL || SSL_set_fd(k->ssl, k->fd) != 1 ||
	    SSL_set1_host(k->ssl, k->url.host) != 1 ||
	    (!k->url.is_ip && SSL_set_tlsext_host_name(k->ssl, k->url.host) != 1)) {
		ERR_clear_error();
		return p11pki_fail(P11PKI_E_CRYPTO, "cannot set up TLS to %s", k->where);
	}
	ERR_clear_error();
	p11pki_error_clear();
	errno = 0;
	if (SSL_connect(k->ssl) != 1)
		return handshake_failed(k);
	return P11PKI_OK;
}

/* With TLS 1.3 the server checks a client certificate after the client
 * considers the handshake done: a refusal shows as a failed write or read. */
static const char *refusal_hint(const struct conn *k)
{
	return k->c->key != NULL ? " (did the server refuse the client certificate?)" : "";
}

static int send_all(struct conn *k, const char *data, size_t len)
{
	char why[256];
	int n, r;

	while (len > 0) {
		errno = 0;
		if ((n = SSL_write(k->ssl, data, len > INT_MAX ? INT_MAX : (int)len)) <= 0) {
			r = p11pki_fail(P11PKI_E_IO, "sending the request to %s failed: %s%s", k->where,
					ssl_reason(why, sizeof(why)), refusal_hint(k));
			ERR_clear_error();
			return r;
		}
		data += n;
		len -= (size_t)n;
	}
	return P11PKI_OK;
}

/* A read that returned n <= 0: a close sets *eof, the rest are failures
 * (a server that refuses a TLS 1.3 client certificate says so only now). */
static int read_failed(struct conn *k, int n, int *eof)
{
	int e = SSL_get_error(k->ssl, n), r;
	char why[256];

	if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && errno == 0 && ERR_peek_error() == 0)) {
		*eof = 1;
		return P11PKI_OK;
	}
	if (e == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK))
		r = p11pki_fail(P11PKI_E_IO, "%s did not answer within %u s", k->where, k->timeout_ms / 1000);
	else
		r = p11pki_fail(P11PKI_E_IO, "reading the answer of %s failed: %s%s", k->where,
				ssl_reason(why, sizeof(why)), refusal_hint(k));
	ERR_clear_error();
	return r;
}

/* Reads until the parser has a whole answer, the peer closes, or the cap. */
static int read_answer(struct conn *k, struct p11pki_est_response *out)
{
	unsigned char *buf = NULL, *bigger;
	size_t len = 0, cap = 0, want;
	time_t deadline = time(NULL) + (time_t)(k->timeout_ms / 1000) * 4;
	int n, eof = 0, r = P11PKI_EST_CLIENT_MORE;

	/* each read waits at most the timeout; the whole answer four times it,
	 * so a server dripping bytes cannot hold us */
	while (r == P11PKI_EST_CLIENT_MORE) {
		if (time(NULL) > deadline) {
			r = p11pki_fail(P11PKI_E_IO, "%s did not finish its answer within %u s", k->where,
					k->timeout_ms / 1000 * 4);
			break;
		}
		if (cap - len < READ_CHUNK / 4) {
			want = cap == 0 ? READ_CHUNK : cap * 2;
			if (want > P11PKI_EST_CLIENT_ANSWER_MAX + 1)
				want = P11PKI_EST_CLIENT_ANSWER_MAX + 1;
			if (want <= len) {
				r = p11pki_fail(P11PKI_E_IO, "%s sent an answer larger than %u bytes", k->where,
						P11PKI_EST_CLIENT_ANSWER_MAX);
				break;
			}
			if ((bigger = realloc(buf, want)) == NULL) {
				r = p11pki_fail(P11PKI_E_NOMEM, "out of memory reading the answer of %s", k->where);
				break;
			}
			buf = bigger;
			cap = want;
		}
		errno = 0;
		if ((n = SSL_read(k->ssl, buf + len, (int)(cap - len))) > 0)
			len += (size_t)n;
		else if ((r = read_failed(k, n, &eof)) != 0)
			break;
		if ((r = p11pki_est_client_parse_response(buf, len, eof, time(NULL), out)) < 0)
			r = with_prefix(r, k->where);
	}
	k->answered = r == 0 && !eof;
	free(buf);
	return r;
}

/* ---- requests ------------------------------------------------------------------- */

static int label_ok(const char *label)
{
	size_t i, n = strlen(label);

	if (n == 0 || n > LABEL_MAX)
		return 0;
	for (i = 0; i < n; i++)
		if (!is_host_char((unsigned char)label[i]) && label[i] != '_' && label[i] != '~')
			return 0;
	return 1;
}

/* "Basic base64(user:secret)" in locked memory. */
static int basic_credentials(const char *user, const p11pki_secret *secret, p11pki_secret **out)
{
	p11pki_secret *plain = NULL, *enc = NULL;
	size_t ulen = strlen(user), i;
	int r;

	*out = NULL;
	if (ulen == 0 || ulen > USER_MAX)
		return p11pki_fail(P11PKI_E_ARG, "--user must be 1 to %d characters", USER_MAX);
	for (i = 0; i < ulen; i++)
		if ((unsigned char)user[i] < 0x20 || user[i] == 0x7f || user[i] == ':')
			return p11pki_fail(P11PKI_E_ARG, "--user cannot hold ':' or control characters");
	if (secret == NULL || secret->len == 0)
		return p11pki_fail(P11PKI_E_ARG, "the EST user '%s' needs a secret", user);
	if ((r = p11pki_secret_new(ulen + 1 + secret->len + 1, &plain)) != 0 ||
	    (r = p11pki_secret_new(6 + (ulen + 1 + secret->len + 2) / 3 * 4 + 1, &enc)) != 0)
		goto out;
	memcpy(plain->data, user, ulen);
	plain->data[ulen] = ':';
	memcpy(plain->data + ulen + 1, secret->data, secret->len);
	plain->len = ulen + 1 + secret->len;
	memcpy(enc->data, "Basic ", 6);
	enc->len = 6 + (size_t)EVP_EncodeBlock((unsigned char *)enc->data + 6, (const unsigned char *)plain->data,
					       (int)plain->len);
	enc->data[enc->len] = '\0';
	*out = enc;
	enc = NULL;
out:
	p11pki_secret_free(plain);
	p11pki_secret_free(enc);
	return r;
}

/* The request head and body; it may hold credentials, so the caller
 * frees it with OPENSSL_clear_free(*out, *out_len). */
static int build_request(struct conn *k, const char *method, const char *op, const char *body, size_t body_len,
			 char **out, size_t *out_len)
{
	const struct p11pki_est_client *c = k->c;
	p11pki_secret *auth = NULL;
	char head_fmt[1024];
	size_t size;
	char *buf;
	int n, r;

	*out = NULL;
	*out_len = 0;
	if (c->user != NULL && (r = basic_credentials(c->user, c->secret, &auth)) != 0)
		return r;
	n = snprintf(head_fmt, sizeof(head_fmt),
		     "%s %s%s%s%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: p11pki/%s\r\nAccept: */*\r\n"
		     "Connection: close\r\n",
		     method, EST_PATH, c->label != NULL ? c->label : "", c->label != NULL ? "/" : "", op,
		     k->url.authority, P11PKI_VERSION);
	if (n < 0 || (size_t)n >= sizeof(head_fmt)) {
		p11pki_secret_free(auth);
		return p11pki_fail(P11PKI_E_ARG, "the request to %s is too long", k->where);
	}
	size = (size_t)n + (auth != NULL ? auth->len + 32 : 0) + 160 + body_len;
	if ((buf = malloc(size)) == NULL) {
		p11pki_secret_free(auth);
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
	}
	n = snprintf(buf, size, "%s%s%s%s", head_fmt, auth != NULL ? "Authorization: " : "",
		     auth != NULL ? auth->data : "", auth != NULL ? "\r\n" : "");
	if (body != NULL)
		n += snprintf(buf + n, size - (size_t)n,
			      "Content-Type: application/pkcs10\r\nContent-Transfer-Encoding: base64\r\n"
			      "Content-Length: %zu\r\n",
			      body_len);
	n += snprintf(buf + n, size - (size_t)n, "\r\n");
	if (body != NULL) {
		memcpy(buf + n, body, body_len);
		n += (int)body_len;
	}
	p11pki_secret_free(auth);
	*out = buf;
	*out_len = (size_t)n;
	return P11PKI_OK;
}

static int conn_open(struct conn *k, const struct p11pki_est_client *c)
{
	int r;

	memset(k, 0, sizeof(*k));
	k->fd = -1;
	k->c = c;
	k->timeout_ms = c->timeout_ms != 0 ? c->timeout_ms : P11PKI_EST_CLIENT_TIMEOUT_MS;
	if ((r = p11pki_est_client_parse_url(c->server, &k->url)) != 0)
		return r;
	snprintf(k->where, sizeof(k->where), "server https://%s", k->url.authority);
	if (c->label != NULL && !label_ok(c->label))
		return p11pki_fail(P11PKI_E_ARG, "--est-label must be 1 to %d letters, digits, '-', '.', '_' or '~'",
				   LABEL_MAX);
	if (c->key != NULL && c->cert == NULL)
		return p11pki_fail(P11PKI_E_ARG, "a TLS client key needs its certificate");
	if ((r = tcp_connect(k)) != 0 || (r = tls_connect(k)) != 0)
		conn_close(k);
	return r;
}

/* One request, one answer, on a connection of its own. */
static int exchange(const struct p11pki_est_client *c, const char *method, const char *op, const char *body,
		    size_t body_len, struct p11pki_est_response *resp, char *where, size_t where_size)
{
	struct conn k;
	char *req = NULL;
	size_t req_len = 0;
	int r;

	memset(resp, 0, sizeof(*resp));
	resp->retry_after = -1;
	if ((r = conn_open(&k, c)) != 0)
		return r;
	snprintf(where, where_size, "%s", k.where);
	if ((r = build_request(&k, method, op, body, body_len, &req, &req_len)) == 0 &&
	    (r = send_all(&k, req, req_len)) == 0)
		r = read_answer(&k, resp);
	OPENSSL_clear_free(req, req_len);
	conn_close(&k);
	return r;
}

/* A failure for an answer other than 200, quoting the server's reason. */
static int status_failed(const struct p11pki_est_response *resp, const char *where)
{
	char reason[200], wait[64] = "";
	int code = resp->status == 400 || resp->status == 401 || resp->status == 403 ? P11PKI_E_POLICY : P11PKI_E_IO;

	p11pki_est_client_reason(resp, reason, sizeof(reason));
	if (resp->retry_after >= 0)
		snprintf(wait, sizeof(wait), " (retry after %ld s)", resp->retry_after);
	if (resp->status == 202)
		return p11pki_fail(code, "%s answered 202 Accepted: the request waits for approval%s", where, wait);
	return p11pki_fail(code, "%s answered %d %s: %s%s", where, resp->status, resp->reason, reason, wait);
}

static void set_reply(struct p11pki_est_reply *reply, const struct p11pki_est_response *resp)
{
	if (reply == NULL)
		return;
	reply->status = resp->status;
	reply->retry_after = resp->retry_after;
}

/* The certificates of a 200 answer. */
static int answer_certs(const struct p11pki_est_response *resp, const char *where, STACK_OF(X509) **out)
{
	char prefix[400], type[P11PKI_SHOWN_BUF];
	int r;

	if (resp->status != 200)
		return status_failed(resp, where);
	if ((r = p11pki_est_client_decode_certs(resp->body, resp->body_len, out)) == 0)
		return P11PKI_OK;
	snprintf(prefix, sizeof(prefix), "%s answered 200 with %s%s", where,
		 resp->content_type[0] != '\0' ? "Content-Type " : "no Content-Type",
		 p11pki_shown_ascii(resp->content_type, type, sizeof(type)));
	return with_prefix(r, prefix);
}

int p11pki_est_client_cacerts(const struct p11pki_est_client *c, STACK_OF(X509) **out, struct p11pki_est_reply *reply)
{
	struct p11pki_est_response resp;
	char where[300] = "server";
	int r;

	*out = NULL;
	if (reply != NULL) {
		reply->status = 0;
		reply->retry_after = -1;
	}
	if ((r = exchange(c, "GET", "cacerts", NULL, 0, &resp, where, sizeof(where))) == 0) {
		set_reply(reply, &resp);
		r = answer_certs(&resp, where, out);
	}
	p11pki_est_client_response_clear(&resp);
	return r;
}

int p11pki_est_client_enroll(const struct p11pki_est_client *c, X509_REQ *req, int reenroll, STACK_OF(X509) **out,
			     struct p11pki_est_reply *reply)
{
	struct p11pki_est_response resp;
	unsigned char *der = NULL;
	char *b64 = NULL, where[300] = "server";
	size_t b64_len = 0;
	int der_len, r;

	*out = NULL;
	memset(&resp, 0, sizeof(resp));
	if (reply != NULL) {
		reply->status = 0;
		reply->retry_after = -1;
	}
	if ((der_len = i2d_X509_REQ(req, &der)) <= 0) {
		ERR_clear_error();
		return p11pki_fail(P11PKI_E_CRYPTO, "cannot encode the request");
	}
	if ((r = online_base64_encode(der, (size_t)der_len, 1, &b64, &b64_len)) != 0)
		goto out;
	if ((r = exchange(c, "POST", reenroll ? "simplereenroll" : "simpleenroll", b64, b64_len, &resp, where,
			  sizeof(where))) != 0)
		goto out;
	set_reply(reply, &resp);
	r = answer_certs(&resp, where, out);
out:
	p11pki_est_client_response_clear(&resp);
	OPENSSL_free(der);
	free(b64);
	return r;
}
