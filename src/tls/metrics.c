/* Counters and their admin listener: /metrics in Prometheus text format
 * (handshakes by binding and result, client-certificate failures by
 * reason, the token's signing latency, backends up/down and their
 * requests, open connections). Workers bump atomics; the admin listener
 * runs on the main thread's event base and only reads them. */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

#include "tls/server.h"

/* upper bounds of the signing-latency buckets, in seconds */
static const double sign_le[TLS_SIGN_BUCKETS] = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
						  0.1,	 0.25,	 0.5,	1,    2.5,   5 };
static const char *const hs_names[TLS_HS_N] = { "ok", "resumed", "failed", "client_auth", "timeout" };

/* The observer is a plain function: it finds the counters here. */
static struct tls_metrics *_Atomic observed;

int tls_metrics_new(struct tls_metrics **out)
{
	struct tls_metrics *mx = calloc(1, sizeof(*mx));

	*out = NULL;
	if (mx == NULL)
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
	pthread_mutex_init(&mx->lock, NULL);
	atomic_store(&observed, mx);
	*out = mx;
	return P11PKI_OK;
}

void tls_metrics_free(struct tls_metrics *mx)
{
	size_t i;

	if (mx == NULL)
		return;
	atomic_store(&observed, NULL);
	if (mx->http != NULL)
		evhttp_free(mx->http);
	for (i = 0; i < mx->n_bind; i++)
		free(mx->bind[i]);
	for (i = 0; i < mx->n_back; i++)
		free(mx->back[i]);
	pthread_mutex_destroy(&mx->lock);
	free(mx);
}

struct tls_bstats *tls_metrics_binding(struct tls_metrics *mx, const char *name)
{
	struct tls_bstats *b = NULL;
	size_t i;

	pthread_mutex_lock(&mx->lock);
	for (i = 0; i < mx->n_bind && b == NULL; i++)
		if (strncmp(mx->bind[i]->name, name, sizeof(mx->bind[i]->name) - 1) == 0)
			b = mx->bind[i];
	if (b == NULL && mx->n_bind < sizeof(mx->bind) / sizeof(mx->bind[0]) && (b = calloc(1, sizeof(*b))) != NULL) {
		snprintf(b->name, sizeof(b->name), "%s", name);
		atomic_init(&b->signing_ok, 1);
		mx->bind[mx->n_bind++] = b;
	}
	pthread_mutex_unlock(&mx->lock);
	if (b == NULL)
		p11pki_fail(P11PKI_E_NOMEM, "no room for the counters of binding %s", name);
	return b;
}

struct tls_backend_state *tls_metrics_backend(struct tls_metrics *mx, const char *binding, const char *addr)
{
	struct tls_backend_state *b = NULL;
	size_t i;

	pthread_mutex_lock(&mx->lock);
	for (i = 0; i < mx->n_back && b == NULL; i++)
		if (strncmp(mx->back[i]->binding, binding, sizeof(mx->back[i]->binding) - 1) == 0 &&
		    strcmp(mx->back[i]->addr, addr) == 0)
			b = mx->back[i];
	if (b == NULL && mx->n_back < sizeof(mx->back) / sizeof(mx->back[0]) && (b = calloc(1, sizeof(*b))) != NULL) {
		snprintf(b->binding, sizeof(b->binding), "%s", binding);
		snprintf(b->addr, sizeof(b->addr), "%s", addr);
		atomic_init(&b->up, 1); /* until a check says otherwise */
		mx->back[mx->n_back++] = b;
	}
	pthread_mutex_unlock(&mx->lock);
	if (b == NULL)
		p11pki_fail(P11PKI_E_NOMEM, "no room for the state of backend %s", addr);
	return b;
}

void tls_metrics_observe_sign(double seconds, int ok)
{
	struct tls_metrics *mx = atomic_load(&observed);
	size_t i;

	if (mx == NULL)
		return;
	for (i = 0; i < TLS_SIGN_BUCKETS && seconds > sign_le[i]; i++)
		;
	atomic_fetch_add(&mx->sign_bucket[i], 1);
	atomic_fetch_add(&mx->sign_count, 1);
	atomic_fetch_add(&mx->sign_sum_us, (unsigned long)(seconds * 1e6));
	if (!ok)
		atomic_fetch_add(&mx->sign_failed, 1);
}

/* ---- the text format -------------------------------------------------- */

/* A label value: backslash, quote and newline escaped. */
static void label(struct evbuffer *o, const char *v)
{
	for (; *v != '\0'; v++) {
		if (*v == '\\' || *v == '"')
			evbuffer_add_printf(o, "\\%c", *v);
		else if (*v == '\n')
			evbuffer_add(o, "\\n", 2);
		else
			evbuffer_add(o, v, 1);
	}
}

static void head(struct evbuffer *o, const char *name, const char *type, const char *help)
{
	evbuffer_add_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void binding_counters(struct evbuffer *o, struct tls_metrics *mx)
{
	size_t i, k;

	head(o, "p11pki_handshakes_total", "counter", "TLS handshakes by binding and result.");
	for (i = 0; i < mx->n_bind; i++)
		for (k = 0; k < TLS_HS_N; k++) {
			evbuffer_add_printf(o, "p11pki_handshakes_total{binding=\"");
			label(o, mx->bind[i]->name);
			evbuffer_add_printf(o, "\",result=\"%s\"} %lu\n", hs_names[k],
					    atomic_load(&mx->bind[i]->handshakes[k]));
		}
	head(o, "p11pki_client_auth_failures_total", "counter", "Client certificates refused or failed, by reason.");
	for (i = 0; i < mx->n_bind; i++)
		for (k = 1; k < TLS_AUTH_N; k++) {
			evbuffer_add_printf(o, "p11pki_client_auth_failures_total{binding=\"");
			label(o, mx->bind[i]->name);
			evbuffer_add_printf(o, "\",reason=\"%s\"} %lu\n", tls_auth_reason_name((int)k),
					    atomic_load(&mx->bind[i]->auth_failures[k]));
		}
	head(o, "p11pki_connections_refused_total", "counter", "Connections closed at once: max_connections reached.");
	for (i = 0; i < mx->n_bind; i++) {
		evbuffer_add_printf(o, "p11pki_connections_refused_total{binding=\"");
		label(o, mx->bind[i]->name);
		evbuffer_add_printf(o, "\"} %lu\n", atomic_load(&mx->bind[i]->refused));
	}
}

static void sign_histogram(struct evbuffer *o, struct tls_metrics *mx)
{
	unsigned long cumulative = 0;
	size_t i;

	head(o, "p11pki_token_sign_seconds", "histogram", "Time the token takes to sign, per signature.");
	for (i = 0; i <= TLS_SIGN_BUCKETS; i++) {
		cumulative += atomic_load(&mx->sign_bucket[i]);
		if (i < TLS_SIGN_BUCKETS)
			evbuffer_add_printf(o, "p11pki_token_sign_seconds_bucket{le=\"%g\"} %lu\n", sign_le[i], cumulative);
		else
			evbuffer_add_printf(o, "p11pki_token_sign_seconds_bucket{le=\"+Inf\"} %lu\n", cumulative);
	}
	evbuffer_add_printf(o, "p11pki_token_sign_seconds_sum %.6f\n", (double)atomic_load(&mx->sign_sum_us) / 1e6);
	evbuffer_add_printf(o, "p11pki_token_sign_seconds_count %lu\n", atomic_load(&mx->sign_count));
	head(o, "p11pki_token_sign_failures_total", "counter", "Signatures the token did not make.");
	evbuffer_add_printf(o, "p11pki_token_sign_failures_total %lu\n", atomic_load(&mx->sign_failed));
}

static void backend_line(struct evbuffer *o, const char *name, const struct tls_backend_state *b, unsigned long v)
{
	evbuffer_add_printf(o, "%s{binding=\"", name);
	label(o, b->binding);
	evbuffer_add_printf(o, "\",backend=\"");
	label(o, b->addr);
	evbuffer_add_printf(o, "\"} %lu\n", v);
}

static void backends(struct evbuffer *o, struct tls_metrics *mx)
{
	size_t i;

	head(o, "p11pki_backend_up", "gauge", "1 when the health checks find the backend up.");
	for (i = 0; i < mx->n_back; i++)
		backend_line(o, "p11pki_backend_up", mx->back[i], (unsigned long)atomic_load(&mx->back[i]->up));
	head(o, "p11pki_backend_requests_total", "counter", "Connections and requests forwarded to the backend.");
	for (i = 0; i < mx->n_back; i++)
		backend_line(o, "p11pki_backend_requests_total", mx->back[i], atomic_load(&mx->back[i]->requests));
	head(o, "p11pki_backend_connect_failures_total", "counter", "Connections to the backend that failed.");
	for (i = 0; i < mx->n_back; i++)
		backend_line(o, "p11pki_backend_connect_failures_total", mx->back[i],
			     atomic_load(&mx->back[i]->connect_failures));
}

static void connections(struct evbuffer *o, struct tls_server *srv)
{
	size_t i;

	head(o, "p11pki_connections", "gauge", "Open client connections by listener.");
	for (i = 0; i < srv->n_listeners; i++) {
		evbuffer_add_printf(o, "p11pki_connections{listener=\"");
		label(o, srv->listener[i].bound);
		evbuffer_add_printf(o, "\"} %u\n", atomic_load(&srv->listener[i].conns));
	}
}

static void admin_request(struct evhttp_request *req, void *arg)
{
	struct tls_server *srv = arg;
	struct tls_metrics *mx = srv->mx;
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	struct evbuffer *o = evbuffer_new();

	if (o == NULL) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	if (path != NULL && strcmp(path, "/metrics") == 0) {
		/* the registries only grow, under the lock */
		pthread_mutex_lock(&mx->lock);
		binding_counters(o, mx);
		backends(o, mx);
		pthread_mutex_unlock(&mx->lock);
		sign_histogram(o, mx);
		connections(o, srv);
		evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
				  "text/plain; version=0.0.4; charset=utf-8");
		evhttp_send_reply(req, HTTP_OK, "OK", o);
	} else if (path != NULL && strcmp(path, "/healthz") == 0) {
		evbuffer_add_printf(o, "ok\n");
		evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "text/plain");
		evhttp_send_reply(req, HTTP_OK, "OK", o);
	} else {
		evhttp_send_error(req, HTTP_NOTFOUND, NULL);
	}
	evbuffer_free(o);
}

int tls_metrics_listen(struct tls_server *srv, struct event_base *base, const struct p11pki_endpoint *ep,
		       char *bound, size_t bound_size)
{
	struct tls_metrics *mx = srv->mx;
	struct evhttp_bound_socket *sock;
	struct sockaddr_storage sa;
	socklen_t len = sizeof(sa);
	char where[TLS_ADDR_MAX];
	int fd, r;

	/* bound the way the TLS listeners are, for the same messages */
	if ((r = tls_listen(ep, &fd, bound, bound_size)) != 0)
		return tls_fail_wrap(r, "admin");
	if ((mx->http = evhttp_new(base)) == NULL || (sock = evhttp_accept_socket_with_handle(mx->http, fd)) == NULL) {
		tls_endpoint_text(ep, where, sizeof(where));
		evutil_closesocket(fd);
		return p11pki_fail(P11PKI_E_IO, "admin: cannot serve on %s", where);
	}
	if (getsockname(evhttp_bound_socket_get_fd(sock), (struct sockaddr *)&sa, &len) == 0)
		tls_addr_text((struct sockaddr *)&sa, len, bound, bound_size);
	evhttp_set_allowed_methods(mx->http, EVHTTP_REQ_GET);
	evhttp_set_max_headers_size(mx->http, 16384);
	evhttp_set_max_body_size(mx->http, 0);
	evhttp_set_timeout(mx->http, 10);
	evhttp_set_gencb(mx->http, admin_request, srv);
	return P11PKI_OK;
}
