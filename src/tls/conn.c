/* A client connection from accept to close: the handshake runs as our own
 * state machine on libevent events, because a handshake with
 * SSL_MODE_ASYNC pauses while a signing thread talks to the token (the
 * event loop meanwhile serves other connections) and resumes when the
 * job's wait fd becomes readable. After the handshake a bufferevent_openssl
 * takes the connection over for the data phase (proxy.c). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/async.h>
#include <openssl/err.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include "tls/server.h"

/* One connection per wake, as nginx does: the loop then serves handshakes
 * already under way before the next accept, and a wake does not end in an
 * accept that finds nothing (the listener stays readable while more wait). */
#define ACCEPT_BATCH 1
#define ASYNC_FDS_MAX 4
#define JOB_RETRY_MS 5	/* no free ASYNC job: try again shortly */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void ms_to_tv(unsigned ms, struct timeval *tv)
{
	tv->tv_sec = (time_t)(ms / 1000);
	tv->tv_usec = (suseconds_t)(ms % 1000) * 1000;
}

static void link_conn(struct tls_worker *w, struct tls_conn *c)
{
	c->next = w->conns;
	if (w->conns != NULL)
		w->conns->prev = c;
	w->conns = c;
	atomic_fetch_add(&w->n_conns, 1);
}

static void unlink_conn(struct tls_worker *w, struct tls_conn *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	atomic_fetch_sub(&w->n_conns, 1);
}

static void free_event(struct event **ev)
{
	if (*ev != NULL) {
		event_free(*ev);
		*ev = NULL;
	}
}

void tls_conn_free(struct tls_conn *c)
{
	struct tls_worker *w;

	if (c == NULL)
		return;
	if (c->magic != TLS_CONN_MAGIC)
		abort(); /* a use after free must not go unnoticed */
	w = c->w;
	if (c->async != NULL && event_pending(c->async, EV_READ, NULL)) {
		/* a signing thread still works for this handshake's paused
		 * job: the SSL (the job, its wait fd) must outlive it */
		c->dying = 1;
		free_event(&c->rd);
		free_event(&c->wr);
		free_event(&c->retry);
		free_event(&c->timer);
		return;
	}
	unlink_conn(w, c);
	/* events on the async fd go before SSL_free closes it */
	free_event(&c->rd);
	free_event(&c->wr);
	free_event(&c->async);
	free_event(&c->retry);
	free_event(&c->timer);
	if (c->back != NULL)
		bufferevent_free(c->back);
	if (c->bev != NULL) {
		bufferevent_free(c->bev); /* frees the SSL, closes the socket */
	} else {
		SSL_free(c->ssl);
		if (c->fd >= 0)
			close(c->fd);
	}
	atomic_fetch_sub(&c->l->conns, 1);
	tls_gen_unref(c->gen);
	free(c->head_out);
	tls_online_free(c);
	c->magic = 0;
	free(c);
	if ((atomic_load(&w->srv->draining) || atomic_load(&w->srv->stopping)) && atomic_load(&w->n_conns) == 0)
		event_active(w->wake, EV_READ, 0);
}

/* ---- the end of a handshake ------------------------------------------ */

/* What went wrong, from OpenSSL's error queue: a token failure (evp.c
 * raises ERR_LIB_USER with the token's message), a missing client
 * certificate, or something else. */
static void failure_reason(struct tls_conn *c, char *token_msg, size_t size, char *other, size_t other_size)
{
	const char *data = NULL;
	unsigned long e;
	int flags = 0;

	token_msg[0] = other[0] = '\0';
	while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
		if (ERR_GET_LIB(e) == ERR_LIB_USER && (flags & ERR_TXT_STRING) && data != NULL)
			snprintf(token_msg, size, "%s", data);
		else if (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE &&
			 c->auth_reason == TLS_AUTH_OK)
			c->auth_reason = TLS_AUTH_NO_CERT;
		else if (other[0] == '\0')
			snprintf(other, other_size, "%s",
				 ERR_reason_error_string(e) != NULL ? ERR_reason_error_string(e) : "unknown");
	}
}

static void handshake_failed(struct tls_conn *c, int ssl_error)
{
	struct tls_bstats *st = c->site->stats;
	char token_msg[512], other[160];

	failure_reason(c, token_msg, sizeof(token_msg), other, sizeof(other));
	if (token_msg[0] != '\0') {
		atomic_fetch_add(&st->handshakes[TLS_HS_FAILED], 1);
		/* once per change of state, not once per connection */
		if (atomic_exchange(&st->signing_ok, 0) == 1)
			p11pki_log(P11PKI_LOG_ERROR, "binding %s: handshakes fail, the token does not sign: %s",
				   st->name, token_msg);
	} else if (c->auth_reason != TLS_AUTH_OK) {
		atomic_fetch_add(&st->handshakes[TLS_HS_CLIENT_AUTH], 1);
		atomic_fetch_add(&st->auth_failures[c->auth_reason], 1);
		p11pki_log(P11PKI_LOG_DEBUG, "binding %s: client %s refused: %s", st->name, c->client_ip,
			   tls_auth_reason_name(c->auth_reason));
	} else {
		atomic_fetch_add(&st->handshakes[TLS_HS_FAILED], 1);
		p11pki_log(P11PKI_LOG_DEBUG, "binding %s: handshake with %s failed: %s", st->name, c->client_ip,
			   other[0] != '\0' ? other : ssl_error == SSL_ERROR_SYSCALL ? "connection closed" : "error");
	}
	tls_conn_free(c);
}

/* The handshake reads ahead (a flight in one read instead of two per
 * record), so what the client sent after its Finished may already sit in
 * the SSL's buffer, where the data phase's bufferevent, which reads only
 * when the socket is readable, would never look. It is read out here
 * into the bufferevent's input; the data phase reads record by record.
 * Stops at a partial record (its rest is still to come on the socket) and
 * at a close_notify (the client's FIN then wakes the bufferevent, which
 * finds the SSL shut down: EOF, as before). */
static int drain_read_ahead(SSL *ssl, struct evbuffer *in)
{
	unsigned char buf[4096];
	int n;

	SSL_set_read_ahead(ssl, 0);
	while (SSL_has_pending(ssl)) {
		ERR_clear_error();
		if ((n = SSL_read(ssl, buf, sizeof(buf))) <= 0)
			break;
		if (evbuffer_add(in, buf, (size_t)n) != 0)
			return 0;
	}
	ERR_clear_error();
	return 1;
}

static void handshake_done(struct tls_conn *c)
{
	struct tls_bstats *st = c->site->stats;
	struct bufferevent *bev;
	int resumed = SSL_session_reused(c->ssl);

	free_event(&c->rd);
	free_event(&c->wr);
	free_event(&c->async);
	free_event(&c->retry);
	free_event(&c->timer);
	/* nothing after the handshake signs: no ASYNC job per read and write */
	SSL_clear_mode(c->ssl, SSL_MODE_ASYNC);
	atomic_fetch_add(&st->handshakes[resumed ? TLS_HS_RESUMED : TLS_HS_OK], 1);
	if (!resumed && atomic_exchange(&st->signing_ok, 1) == 0)
		p11pki_log(P11PKI_LOG_INFO, "binding %s: the token signs again, handshakes work", st->name);
	/* optional mode lets a failed certificate through: count it too */
	if (c->site->b->client_auth == P11PKI_CLIENT_OPTIONAL &&
	    (c->auth_reason = tls_client_auth_result(c, c->ssl, SSL_get0_peer_certificate(c->ssl))) != TLS_AUTH_OK)
		atomic_fetch_add(&st->auth_failures[c->auth_reason], 1);
	bev = bufferevent_openssl_socket_new(c->w->base, c->fd, c->ssl, BUFFEREVENT_SSL_OPEN,
					     BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (bev != NULL) {
		c->bev = bev;
		c->ssl = NULL;
		c->fd = -1;
	}
	if (bev == NULL || !drain_read_ahead(bufferevent_openssl_get_ssl(bev), bufferevent_get_input(bev))) {
		p11pki_log(P11PKI_LOG_ERROR, "binding %s: out of memory for a connection", st->name);
		tls_conn_free(c);
		return;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	tls_proxy_start(c);
}

/* ---- the handshake state machine -------------------------------------- */

static void step(struct tls_conn *c);

static void on_event(evutil_socket_t fd, short what, void *arg)
{
	step(arg);
}

static int wait_async(struct tls_conn *c)
{
	OSSL_ASYNC_FD fds[ASYNC_FDS_MAX];
	size_t n = 0;

	if (!SSL_get_all_async_fds(c->ssl, NULL, &n) || n == 0 || n > ASYNC_FDS_MAX ||
	    !SSL_get_all_async_fds(c->ssl, fds, &n))
		return 0;
	/* the job's fd stays the same for the life of the SSL */
	if (c->async != NULL && event_get_fd(c->async) != fds[0])
		free_event(&c->async);
	if (c->async == NULL && (c->async = event_new(c->w->base, fds[0], EV_READ, on_event, c)) == NULL)
		return 0;
	return event_add(c->async, NULL) == 0;
}

static int wait_io(struct tls_conn *c, struct event **ev, short what)
{
	if (*ev == NULL && (*ev = event_new(c->w->base, c->fd, what, on_event, c)) == NULL)
		return 0;
	return event_add(*ev, NULL) == 0;
}

static int wait_job(struct tls_conn *c)
{
	struct timeval tv;

	ms_to_tv(JOB_RETRY_MS, &tv);
	if (c->retry == NULL && (c->retry = evtimer_new(c->w->base, on_event, c)) == NULL)
		return 0;
	return evtimer_add(c->retry, &tv) == 0;
}

/* The job of a connection already given up has ended, or pauses again. */
static void finish_dying(struct tls_conn *c)
{
	int r;

	ERR_clear_error();
	r = SSL_do_handshake(c->ssl);
	if (r != 1 && SSL_get_error(c->ssl, r) == SSL_ERROR_WANT_ASYNC && wait_async(c))
		return;
	ERR_clear_error();
	free_event(&c->async);
	tls_conn_free(c);
}

/* An ASYNC job per handshake step costs CPU (a stack switch and an
 * allocation each) and pays only when a signature may go to the signing
 * threads: while a token of the listener waits. SNI may move the
 * handshake to any binding of the listener, so each of them counts. Asked
 * before every step, so a handshake accepted before its token turned slow
 * still pauses rather than stall the worker. */
static int wants_async(const struct tls_conn *c)
{
	const struct tls_view *v = &c->gen->view[c->site->view];
	size_t i;

	for (i = 0; i < v->n_sites; i++)
		if (p11pki_async_wanted(c->gen->site[v->site[i]].signer))
			return 1;
	return 0;
}

static void step(struct tls_conn *c)
{
	int r, e, ok;

	if (c->dying) {
		finish_dying(c);
		return;
	}
	if (wants_async(c))
		SSL_set_mode(c->ssl, SSL_MODE_ASYNC);
	ERR_clear_error();
	if ((r = SSL_do_handshake(c->ssl)) == 1) {
		handshake_done(c);
		return;
	}
	switch ((e = SSL_get_error(c->ssl, r))) {
	case SSL_ERROR_WANT_READ: ok = wait_io(c, &c->rd, EV_READ); break;
	case SSL_ERROR_WANT_WRITE: ok = wait_io(c, &c->wr, EV_WRITE); break;
	case SSL_ERROR_WANT_ASYNC: ok = wait_async(c); break;
	case SSL_ERROR_WANT_ASYNC_JOB: ok = wait_job(c); break;
	default: handshake_failed(c, e); return;
	}
	if (!ok)
		handshake_failed(c, SSL_ERROR_SSL);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct tls_conn *c = arg;

	atomic_fetch_add(&c->site->stats->handshakes[TLS_HS_TIMEOUT], 1);
	p11pki_log(P11PKI_LOG_DEBUG, "binding %s: handshake with %s timed out", c->site->b->name, c->client_ip);
	tls_conn_free(c);
}

/* ---- accepting -------------------------------------------------------- */

static void peer_ip(const struct sockaddr_storage *sa, char *buf, size_t size)
{
	if (sa->ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, (socklen_t)size);
	else if (sa->ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buf, (socklen_t)size);
	else
		snprintf(buf, size, "0.0.0.0");
}

static struct tls_site *default_site(struct tls_gen *g, size_t listener)
{
	size_t k;

	for (k = 0; k < g->n_views; k++)
		if (g->view[k].listener == listener)
			return &g->site[g->view[k].dflt];
	return NULL;
}

/* Takes the generation reference and the socket. */
static void start(struct tls_worker *w, struct tls_listener *l, struct tls_gen *g, struct tls_site *site, int fd,
		  const struct sockaddr_storage *sa)
{
	struct tls_conn *c = calloc(1, sizeof(*c));
	unsigned ms = site->b->handshake_timeout_ms ? site->b->handshake_timeout_ms : TLS_DEFAULT_HANDSHAKE_MS;
	struct timeval tv;
	int one = 1;

	if (c == NULL) {
		atomic_fetch_sub(&l->conns, 1);
		tls_gen_unref(g);
		close(fd);
		return;
	}
	c->magic = TLS_CONN_MAGIC;
	c->w = w;
	c->l = l;
	c->gen = g;
	c->site = site;
	c->fd = fd;
	c->started = now_s();
	peer_ip(sa, c->client_ip, sizeof(c->client_ip));
	link_conn(w, c);
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	ms_to_tv(ms, &tv);
	if ((c->ssl = SSL_new(site->ctx)) == NULL || SSL_set_fd(c->ssl, fd) != 1 ||
	    (c->timer = evtimer_new(w->base, on_timeout, c)) == NULL || evtimer_add(c->timer, &tv) != 0) {
		ERR_clear_error();
		tls_conn_free(c);
		return;
	}
	SSL_set_accept_state(c->ssl);
	SSL_set_app_data(c->ssl, c);
	step(c);
}

void tls_conn_accept(struct tls_worker *w, struct tls_listener *l)
{
	struct tls_server *srv = w->srv;
	struct sockaddr_storage sa;
	struct tls_gen *g;
	struct tls_site *site;
	socklen_t len;
	unsigned max;
	int i, fd;

	for (i = 0; i < ACCEPT_BATCH; i++) {
		len = sizeof(sa);
		if ((fd = accept4(l->fd, (struct sockaddr *)&sa, &len, SOCK_NONBLOCK | SOCK_CLOEXEC)) < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE)
				p11pki_log(P11PKI_LOG_WARN, "listener %s: out of file descriptors", l->bound);
			return; /* EAGAIN: another worker took it */
		}
		if (atomic_load(&srv->draining)) {
			close(fd);
			continue;
		}
		g = tls_server_gen(srv);
		if ((site = default_site(g, (size_t)(l - srv->listener))) == NULL) {
			tls_gen_unref(g);
			close(fd);
			continue;
		}
		max = site->b->max_connections ? site->b->max_connections : TLS_DEFAULT_MAX_CONN;
		if (atomic_fetch_add(&l->conns, 1) >= max) {
			/* over the cap: close at once rather than queue */
			atomic_fetch_sub(&l->conns, 1);
			atomic_fetch_add(&site->stats->refused, 1);
			tls_gen_unref(g);
			close(fd);
			continue;
		}
		start(w, l, g, site, fd, &sa);
	}
}
