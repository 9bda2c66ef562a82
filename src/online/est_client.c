/* The EST client (est_client.h): one HTTPS exchange per operation over a
 * plain TCP socket with OpenSSL (the parsers are in est_answer.c). */
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
		if (!p11pki_est_host_char((unsigned char)label[i]) && label[i] != '_' && label[i] != '~')
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
