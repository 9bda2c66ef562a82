/* Active health checks of backends, on a thread of their own: every
 * health_interval a TCP connect, or an HTTP GET of health_path expecting
 * 2xx or 3xx. After health_fall failures in a row a backend is down, after
 * health_rise successes up again; workers read that state atomically and
 * the change is logged once. The state lives in the counters registry,
 * so a reload keeps it. */
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "tls/http.h"
#include "tls/server.h"

#define CHECK_TIMEOUT_MS 5000
#define STATUS_LINE_MAX 1024

struct check {
	struct tls_health *h;
	struct tls_backend_state *st;
	const struct tls_backend *be;
	const struct p11pki_binding *b;
	struct event *timer;
	struct bufferevent *bev;
};

struct tls_health {
	struct tls_server *srv;
	pthread_t thread;
	int started;
	struct event_base *base;
	struct event *wake;
	atomic_int stop, update;
	struct tls_gen *gen;		/* referenced: the backends checked */
	struct check *checks;
	size_t n;
};

static void ms_tv(unsigned ms, struct timeval *tv)
{
	tv->tv_sec = (time_t)(ms / 1000);
	tv->tv_usec = (suseconds_t)(ms % 1000) * 1000;
}

static unsigned interval_of(const struct p11pki_binding *b)
{
	return b->health_interval_ms ? b->health_interval_ms : TLS_DEFAULT_HEALTH_MS;
}

static void schedule(struct check *ck, unsigned ms)
{
	struct timeval tv;

	ms_tv(ms, &tv);
	evtimer_add(ck->timer, &tv);
}

static void result(struct check *ck, int ok, const char *why)
{
	struct tls_backend_state *st = ck->st;
	unsigned fall = ck->b->health_fall ? ck->b->health_fall : TLS_DEFAULT_FALL;
	unsigned rise = ck->b->health_rise ? ck->b->health_rise : TLS_DEFAULT_RISE;

	if (ck->bev != NULL) {
		bufferevent_free(ck->bev);
		ck->bev = NULL;
	}
	if (ok) {
		st->fails = 0;
		if (st->oks < rise)
			st->oks++;
		if (!atomic_load(&st->up) && st->oks >= rise) {
			atomic_store(&st->up, 1);
			p11pki_log(P11PKI_LOG_INFO, "binding %s: backend %s is up again", ck->b->name, ck->be->addr);
		}
	} else {
		st->oks = 0;
		if (st->fails < fall)
			st->fails++;
		if (atomic_load(&st->up) && st->fails >= fall) {
			atomic_store(&st->up, 0);
			p11pki_log(P11PKI_LOG_WARN, "binding %s: backend %s is down after %u failed checks: %s", ck->b->name,
				   ck->be->addr, st->fails, why);
		}
	}
	schedule(ck, interval_of(ck->b));
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct check *ck = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t len = evbuffer_get_length(in);
	const char *buf = (const char *)evbuffer_pullup(in, (ev_ssize_t)(len < STATUS_LINE_MAX ? len : STATUS_LINE_MAX));
	char why[64];
	int status = 0, r;

	r = p11pki_http_status_parse(buf, len < STATUS_LINE_MAX ? len : STATUS_LINE_MAX, &status);
	if (r == P11PKI_HTTP_MORE && len < STATUS_LINE_MAX)
		return;
	if (r != P11PKI_OK) {
		result(ck, 0, "the answer is not HTTP");
		return;
	}
	snprintf(why, sizeof(why), "HTTP status %d", status);
	result(ck, status >= 200 && status < 400, why);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct check *ck = arg;
	char req[1536];
	int n;

	if (what & BEV_EVENT_CONNECTED) {
		if (!ck->b->health_http) {
			result(ck, 1, "connected");
			return;
		}
		n = snprintf(req, sizeof(req),
			     "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: p11pki-health\r\nConnection: close\r\n\r\n",
			     ck->b->health_path != NULL ? ck->b->health_path : "/", ck->be->addr);
		if (n < 0 || (size_t)n >= sizeof(req)) {
			result(ck, 0, "health_path too long");
			return;
		}
		bufferevent_write(bev, req, (size_t)n);
		bufferevent_enable(bev, EV_READ);
		return;
	}
	if (what & BEV_EVENT_TIMEOUT)
		result(ck, 0, "no answer in time");
	else if (what & BEV_EVENT_EOF)
		result(ck, 0, "closed without an answer");
	else
		result(ck, 0, evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

static void run_check(evutil_socket_t fd, short what, void *arg)
{
	struct check *ck = arg;
	unsigned ms = interval_of(ck->b) < CHECK_TIMEOUT_MS ? interval_of(ck->b) : CHECK_TIMEOUT_MS;
	struct timeval tv;

	ms_tv(ms, &tv);
	if ((ck->bev = bufferevent_socket_new(ck->h->base, -1, BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		result(ck, 0, "out of memory");
		return;
	}
	bufferevent_setcb(ck->bev, on_read, NULL, on_event, ck);
	bufferevent_set_timeouts(ck->bev, &tv, &tv);
	if (bufferevent_socket_connect(ck->bev, (const struct sockaddr *)&ck->be->sa, (int)ck->be->sa_len) != 0)
		result(ck, 0, "cannot connect");
}

static void clear_checks(struct tls_health *h)
{
	size_t i;

	for (i = 0; i < h->n; i++) {
		if (h->checks[i].timer != NULL)
			event_free(h->checks[i].timer);
		if (h->checks[i].bev != NULL)
			bufferevent_free(h->checks[i].bev);
	}
	free(h->checks);
	h->checks = NULL;
	h->n = 0;
	tls_gen_unref(h->gen);
	h->gen = NULL;
}

/* Checks for every backend of the server's current generation. */
static void take_generation(struct tls_health *h)
{
	struct tls_gen *g = tls_server_gen(h->srv);
	size_t i, j, n = 0;

	clear_checks(h);
	h->gen = g;
	for (i = 0; i < g->n_sites; i++)
		n += g->site[i].n_backends;
	if (n == 0 || (h->checks = calloc(n, sizeof(*h->checks))) == NULL)
		return;
	for (i = 0; i < g->n_sites; i++) {
		for (j = 0; j < g->site[i].n_backends; j++) {
			struct check *ck = &h->checks[h->n];
			ck->h = h;
			ck->b = g->site[i].b;
			ck->be = &g->site[i].backends[j];
			ck->st = ck->be->st;
			if ((ck->timer = evtimer_new(h->base, run_check, ck)) == NULL)
				continue;
			h->n++;
			schedule(ck, 0);
		}
	}
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
	struct tls_health *h = arg;

	if (atomic_load(&h->stop)) {
		event_base_loopbreak(h->base);
		return;
	}
	if (atomic_exchange(&h->update, 0))
		take_generation(h);
}

static void *health_main(void *arg)
{
	struct tls_health *h = arg;

	take_generation(h);
	event_base_loop(h->base, EVLOOP_NO_EXIT_ON_EMPTY);
	clear_checks(h);
	return NULL;
}

int tls_health_start(struct tls_server *srv, struct tls_health **out)
{
	struct tls_health *h = calloc(1, sizeof(*h));

	*out = NULL;
	if (h == NULL)
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
	h->srv = srv;
	*out = h;
	if ((h->base = event_base_new()) == NULL || (h->wake = event_new(h->base, -1, 0, on_wake, h)) == NULL)
		return p11pki_fail(P11PKI_E_NOMEM, "cannot create the health-check loop");
	if (pthread_create(&h->thread, NULL, health_main, h) != 0)
		return p11pki_fail(P11PKI_E_NOMEM, "cannot start the health-check thread");
	h->started = 1;
	return P11PKI_OK;
}

void tls_health_update(struct tls_health *h)
{
	if (h == NULL || !h->started)
		return;
	atomic_store(&h->update, 1);
	event_active(h->wake, EV_READ, 0);
}

void tls_health_stop(struct tls_health *h)
{
	if (h == NULL)
		return;
	if (h->started) {
		atomic_store(&h->stop, 1);
		event_active(h->wake, EV_READ, 0);
		pthread_join(h->thread, NULL);
	}
	if (h->wake != NULL)
		event_free(h->wake);
	if (h->base != NULL)
		event_base_free(h->base);
	free(h);
}
