/* The data phase: forwarding a client to a backend.
 *
 * tcp mode: connect to the next healthy backend (round robin; one that
 * refuses is skipped for the next), then copy both ways with a bound on
 * what waits in memory. No healthy backend: the client is closed.
 *
 * http mode: read the request head (http.c), answer GET /healthz here,
 * else forward the head rewritten (X-Client-* from the TLS layer, the
 * client's own stripped, Connection: close) and exactly the body it
 * announces, then copy the answer back and close. One request per
 * connection keeps a second, pipelined request from reaching a backend
 * unrewritten. No healthy backend: 503.
 *
 * An idle timer closes connections on which nothing moves. */
#include <limits.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include <p11pki/x509.h>

#include "tls/http.h"
#include "tls/server.h"

#define PIPE_MAX (256 * 1024) /* bytes waiting for a slow reader before we stop reading */

enum { P_HEAD, P_CONNECTING, P_PIPE, P_ONLINE };

static void arm_idle(struct tls_conn *c)
{
	unsigned ms = c->site->b->idle_timeout_ms ? c->site->b->idle_timeout_ms : TLS_DEFAULT_IDLE_MS;
	struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };

	if (c->timer != NULL)
		evtimer_add(c->timer, &tv);
}

/* Sends close_notify when it can and frees everything. */
static void close_now(struct tls_conn *c)
{
	SSL *ssl = c->bev != NULL ? bufferevent_openssl_get_ssl(c->bev) : NULL;

	if (ssl != NULL && !c->client_eof)
		(void)SSL_shutdown(ssl);
	tls_conn_free(c);
}

/* Closes the client once what is queued for it has been sent: in its
 * write callback, which runs deferred even when nothing is queued (a reply
 * written at once), since the caller may still use c. */
static void close_after_flush(struct tls_conn *c)
{
	if (c->back != NULL) {
		bufferevent_free(c->back);
		c->back = NULL;
	}
	c->closing = 1;
	bufferevent_disable(c->bev, EV_READ);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		bufferevent_trigger(c->bev, EV_WRITE, BEV_TRIG_IGNORE_WATERMARKS);
}

void tls_client_send(struct tls_conn *c, const void *data, size_t len)
{
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
	int n = 0;

	/* At once when nothing waits before it, as nginx writes: the
	 * bufferevent would first wait for the socket to be writable (one more
	 * loop pass and epoll change). What the socket does not take now is
	 * queued; after a WANT_WRITE OpenSSL holds the start of it in a sealed
	 * record, and the bufferevent's retry starts with the same bytes. */
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0 && ssl != NULL && len > 0 && len <= INT_MAX) {
		ERR_clear_error();
		if ((n = SSL_write(ssl, data, (int)len)) < 0)
			n = 0;
		ERR_clear_error();
	}
	if ((size_t)n < len)
		bufferevent_write(c->bev, (const char *)data + n, len - (size_t)n);
}

static void local_answer(struct tls_conn *c, int status, const char *reason, const char *body)
{
	char *text = NULL;
	size_t len = 0;

	if (p11pki_http_simple_response(status, reason, "text/plain", body, &text, &len) == 0)
		tls_client_send(c, text, len);
	free(text);
	close_after_flush(c);
}

/* The /healthz answer never changes: built once, not per request. */
static char *healthz_text;
static size_t healthz_len;
static pthread_once_t healthz_once = PTHREAD_ONCE_INIT;

static void build_healthz(void)
{
	if (p11pki_http_simple_response(200, "OK", "text/plain", "ok\n", &healthz_text, &healthz_len) != 0)
		healthz_text = NULL;
}

static void healthz_answer(struct tls_conn *c)
{
	pthread_once(&healthz_once, build_healthz);
	if (healthz_text == NULL) {
		local_answer(c, 200, "OK", "ok\n");
		return;
	}
	tls_client_send(c, healthz_text, healthz_len);
	close_after_flush(c);
}

void tls_proxy_reply(struct tls_conn *c, const char *data, size_t len)
{
	tls_client_send(c, data, len);
	close_after_flush(c);
}

static void no_backend(struct tls_conn *c)
{
	p11pki_log(P11PKI_LOG_DEBUG, "binding %s: no backend for %s", c->site->b->name, c->client_ip);
	if (c->site->b->mode == P11PKI_MODE_HTTP)
		local_answer(c, 503, "Service Unavailable", "no backend is available\n");
	else
		tls_conn_free(c);
}

/* ---- copying ---------------------------------------------------------- */

/* Moves what from has read to to's output; stops reading from when to
 * falls behind (its write callback resumes it). */
static void pipe_data(struct bufferevent *from, struct bufferevent *to, int *paused)
{
	struct evbuffer *out = bufferevent_get_output(to);

	evbuffer_add_buffer(out, bufferevent_get_input(from));
	if (evbuffer_get_length(out) >= PIPE_MAX) {
		bufferevent_disable(from, EV_READ);
		bufferevent_setwatermark(to, EV_WRITE, PIPE_MAX / 2, 0);
		*paused = 1;
	}
}

#define SCAN_MAX 65536 /* bytes of a chunked body looked at per step */

/* How much of the input is chunked body; 0 once it ended, -1 when broken. */
static long long chunked_part(struct tls_conn *c, struct evbuffer *in)
{
	size_t len = evbuffer_get_length(in), n;
	const unsigned char *p;
	long long k, total = 0;

	while (len > (size_t)total && !tls_chunked_done(&c->chunk)) {
		n = len - (size_t)total < SCAN_MAX ? len - (size_t)total : SCAN_MAX;
		p = evbuffer_pullup(in, (ev_ssize_t)((size_t)total + n));
		if (p == NULL || (k = tls_chunked_scan(&c->chunk, p + total, n)) < 0)
			return -1;
		total += k;
	}
	return total;
}

/* http: exactly the body the head announced, nothing after it. Returns
 * 0 when it closed the connection (broken chunking). */
static int pipe_body(struct tls_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev), *out = bufferevent_get_output(c->back);
	size_t n = evbuffer_get_length(in);
	long long k;

	if (c->chunked) {
		if ((k = chunked_part(c, in)) < 0) {
			p11pki_log(P11PKI_LOG_DEBUG, "binding %s: broken chunked body from %s", c->site->b->name,
				   c->client_ip);
			tls_conn_free(c);
			return 0;
		}
		n = (size_t)k;
		if (tls_chunked_done(&c->chunk))
			c->body_left = (long long)n; /* the rest below ends it */
	}
	if (c->body_left < 0) {
		evbuffer_remove_buffer(in, out, n);
		if (evbuffer_get_length(out) >= PIPE_MAX) {
			bufferevent_disable(c->bev, EV_READ);
			bufferevent_setwatermark(c->back, EV_WRITE, PIPE_MAX / 2, 0);
			c->client_paused = 1;
		}
		return 1;
	}
	if ((long long)n > c->body_left)
		n = (size_t)c->body_left;
	evbuffer_remove_buffer(in, out, n);
	c->body_left -= (long long)n;
	if (c->body_left == 0) {
		bufferevent_disable(c->bev, EV_READ);
		evbuffer_drain(in, evbuffer_get_length(in));
	} else if (evbuffer_get_length(out) >= PIPE_MAX) {
		bufferevent_disable(c->bev, EV_READ);
		bufferevent_setwatermark(c->back, EV_WRITE, PIPE_MAX / 2, 0);
		c->client_paused = 1;
	}
	return 1;
}

/* Returns 0 when the connection is gone. */
static int client_to_back(struct tls_conn *c)
{
	if (c->site->b->mode == P11PKI_MODE_HTTP)
		return pipe_body(c);
	pipe_data(c->bev, c->back, &c->client_paused);
	return 1;
}

/* The client will send nothing more: pass the half-close on once the
 * backend has everything. */
static void shutdown_back_if_sent(struct tls_conn *c)
{
	if (c->client_eof && c->back != NULL && c->state == P_PIPE &&
	    evbuffer_get_length(bufferevent_get_output(c->back)) == 0)
		shutdown(bufferevent_getfd(c->back), SHUT_WR);
}

/* ---- the backend side ------------------------------------------------- */

static void connect_next(struct tls_conn *c);
static void on_head(struct tls_conn *c);

static void back_read(struct bufferevent *bev, void *arg)
{
	struct tls_conn *c = arg;

	arm_idle(c);
	pipe_data(c->back, c->bev, &c->back_paused);
}

static void back_write(struct bufferevent *bev, void *arg)
{
	struct tls_conn *c = arg;

	arm_idle(c);
	if (c->client_paused) {
		c->client_paused = 0;
		bufferevent_setwatermark(c->back, EV_WRITE, 0, 0);
		if (!c->client_eof && c->body_left != 0)
			bufferevent_enable(c->bev, EV_READ);
	}
	shutdown_back_if_sent(c);
}

static void connected(struct tls_conn *c)
{
	c->state = P_PIPE;
	atomic_fetch_add(&c->backend->st->requests, 1);
	bufferevent_enable(c->back, EV_READ | EV_WRITE);
	if (c->head_out != NULL) {
		bufferevent_write(c->back, c->head_out, c->head_out_len);
		free(c->head_out);
		c->head_out = NULL;
	}
	if (c->body_left != 0 && !c->client_eof)
		bufferevent_enable(c->bev, EV_READ);
	if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0 && !client_to_back(c))
		return;
	shutdown_back_if_sent(c);
}

static void back_event(struct bufferevent *bev, short what, void *arg)
{
	struct tls_conn *c = arg;

	if (what & BEV_EVENT_CONNECTED) {
		connected(c);
		return;
	}
	if (c->state == P_CONNECTING) {
		/* refused or unreachable: the next backend gets the client */
		atomic_fetch_add(&c->backend->st->connect_failures, 1);
		p11pki_log(P11PKI_LOG_DEBUG, "binding %s: backend %s: %s", c->site->b->name, c->backend->addr,
			   evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		bufferevent_free(c->back);
		c->back = NULL;
		connect_next(c);
		return;
	}
	/* the answer is complete (EOF) or the backend failed: the client
	 * gets what came, then the connection closes */
	if (what & BEV_EVENT_EOF)
		pipe_data(c->back, c->bev, &c->back_paused);
	c->back_eof = 1;
	close_after_flush(c);
}

static void connect_next(struct tls_conn *c)
{
	struct tls_site *s = c->site;
	struct tls_backend *be;

	if (c->tried == 0)
		c->rr_start = atomic_fetch_add(&s->rr, 1);
	while (c->tried < s->n_backends) {
		be = &s->backends[(c->rr_start + c->tried) % s->n_backends];
		c->tried++;
		if (!atomic_load(&be->st->up))
			continue;
		c->backend = be;
		c->state = P_CONNECTING;
		if ((c->back = bufferevent_socket_new(c->w->base, -1, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS)) ==
		    NULL) {
			tls_conn_free(c);
			return;
		}
		bufferevent_setcb(c->back, back_read, back_write, back_event, c);
		if (bufferevent_socket_connect(c->back, (struct sockaddr *)&be->sa, (int)be->sa_len) != 0) {
			atomic_fetch_add(&be->st->connect_failures, 1);
			bufferevent_free(c->back);
			c->back = NULL;
			continue;
		}
		return;
	}
	no_backend(c);
}

/* ---- the client side -------------------------------------------------- */

static void client_read(struct bufferevent *bev, void *arg)
{
	struct tls_conn *c = arg;

	if (c->state == P_HEAD) {
		on_head(c);
		return;
	}
	if (c->state == P_ONLINE) {
		if (c->online != NULL)
			tls_online_read(c);
		return;
	}
	arm_idle(c);
	if (c->state == P_PIPE && c->back != NULL)
		client_to_back(c);
}

static void client_write(struct bufferevent *bev, void *arg)
{
	struct tls_conn *c = arg;

	if (c->closing) {
		if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
			close_now(c);
		return;
	}
	arm_idle(c);
	if (c->back_paused && c->back != NULL) {
		c->back_paused = 0;
		bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
		bufferevent_enable(c->back, EV_READ);
	}
}

static void client_event(struct bufferevent *bev, short what, void *arg)
{
	struct tls_conn *c = arg;

	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) && c->state == P_PIPE && !c->closing) {
		c->client_eof = 1;
		if (c->back != NULL && !client_to_back(c))
			return;
		bufferevent_disable(c->bev, EV_READ);
		shutdown_back_if_sent(c);
		return;
	}
	c->client_eof = 1;
	tls_conn_free(c);
}

static void on_idle(evutil_socket_t fd, short what, void *arg)
{
	struct tls_conn *c = arg;

	p11pki_log(P11PKI_LOG_DEBUG, "binding %s: %s idle, closed", c->site->b->name, c->client_ip);
	tls_conn_free(c);
}

/* ---- http: the request head ------------------------------------------ */

/* "SUCCESS", "NONE" or "FAILED:reason". */
static void client_verify(struct tls_conn *c, SSL *ssl, X509 *peer, char *buf, size_t size)
{
	int reason = tls_client_auth_result(c, ssl, peer);

	if (peer == NULL)
		snprintf(buf, size, "NONE");
	else if (reason == TLS_AUTH_OK)
		snprintf(buf, size, "SUCCESS");
	else
		snprintf(buf, size, "FAILED:%s", tls_auth_reason_name(reason));
}

static char *cert_pem(X509 *x)
{
	BIO *mem = BIO_new(BIO_s_mem());
	char *data, *out = NULL;
	long len;

	if (mem != NULL && PEM_write_bio_X509(mem, x) == 1 && (len = BIO_get_mem_data(mem, &data)) > 0 &&
	    (out = malloc((size_t)len + 1)) != NULL) {
		memcpy(out, data, (size_t)len);
		out[len] = '\0';
	}
	BIO_free(mem);
	return out;
}

static char *serial_hex(X509 *x)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	char *hex = bn != NULL ? BN_bn2hex(bn) : NULL, *out = NULL;

	if (hex != NULL)
		out = strdup(hex[0] == '-' ? hex + 1 : hex);
	OPENSSL_free(hex);
	BN_free(bn);
	return out;
}

/* The head for the backend, with what the TLS layer knows. */
static int rewrite(struct tls_conn *c, const struct p11pki_http_head *h)
{
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
	X509 *peer = SSL_get0_peer_certificate(ssl);
	struct p11pki_client_info ci;
	char verify[64], *subject = NULL, *serial = NULL, *pem = NULL;
	int r;

	client_verify(c, ssl, peer, verify, sizeof(verify));
	memset(&ci, 0, sizeof(ci));
	ci.verify = verify;
	ci.client_ip = c->client_ip;
	if (peer != NULL) {
		if (p11pki_name_format(X509_get_subject_name(peer), &subject) != 0)
			subject = NULL;
		serial = serial_hex(peer);
		pem = cert_pem(peer);
		ci.subject = subject;
		ci.serial = serial;
		ci.cert_pem = pem;
	}
	r = p11pki_http_head_rewrite(h, &ci, &c->head_out, &c->head_out_len);
	free(subject);
	free(serial);
	free(pem);
	return r;
}

static void on_head(struct tls_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct p11pki_http_head h;
	size_t len = evbuffer_get_length(in), n = len < P11PKI_HTTP_HEAD_MAX ? len : P11PKI_HTTP_HEAD_MAX, used = 0;
	const char *buf = (const char *)evbuffer_pullup(in, (ev_ssize_t)n);
	int r;

	memset(&h, 0, sizeof(h));
	r = p11pki_http_head_parse(buf, n, &used, &h);
	if (r == P11PKI_HTTP_MORE && n < P11PKI_HTTP_HEAD_MAX)
		return;
	if (r != P11PKI_OK) {
		p11pki_log(P11PKI_LOG_DEBUG, "binding %s: bad request from %s: %s", c->site->b->name, c->client_ip,
			   r == P11PKI_HTTP_MORE ? "head too large" : p11pki_errmsg());
		if (r == P11PKI_HTTP_MORE)
			local_answer(c, 431, "Request Header Fields Too Large", "request head too large\n");
		else
			local_answer(c, 400, "Bad Request", "bad request\n");
		return;
	}
	evbuffer_drain(in, used);
	if (p11pki_http_is_healthz(&h)) {
		p11pki_http_head_clear(&h);
		atomic_fetch_add(&c->site->stats->healthz, 1);
		healthz_answer(c);
		return;
	}
	if (c->gen->online != NULL) {
		c->state = P_ONLINE;
		if (tls_online_begin(c, &h)) {
			p11pki_http_head_clear(&h);
			return;
		}
		c->state = P_HEAD;
	}
	c->chunked = h.chunked;
	c->body_left = h.chunked ? -1 : h.content_length > 0 ? h.content_length : 0;
	r = rewrite(c, &h);
	p11pki_http_head_clear(&h);
	if (r != 0) {
		p11pki_log(P11PKI_LOG_WARN, "binding %s: cannot forward a request of %s: %s", c->site->b->name,
			   c->client_ip, p11pki_errmsg());
		local_answer(c, 502, "Bad Gateway", "bad gateway\n");
		return;
	}
	/* the body waits in the input buffer until a backend answers */
	bufferevent_disable(c->bev, EV_READ);
	connect_next(c);
}

void tls_proxy_start(struct tls_conn *c)
{
	if ((c->timer = evtimer_new(c->w->base, on_idle, c)) == NULL) {
		tls_conn_free(c);
		return;
	}
	arm_idle(c);
	bufferevent_setcb(c->bev, client_read, client_write, client_event, c);
	bufferevent_enable(c->bev, EV_WRITE);
	if (c->site->b->mode == P11PKI_MODE_HTTP) {
		/* the head must arrive within one idle period: not re-armed */
		c->state = P_HEAD;
		bufferevent_enable(c->bev, EV_READ);
		/* a request read with the handshake (conn.c) */
		if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
			bufferevent_trigger(c->bev, EV_READ, 0);
		return;
	}
	c->body_left = -1;
	connect_next(c);
}
