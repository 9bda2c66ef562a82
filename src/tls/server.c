/* `p11pki serve`: start-up (tokens, contexts, listeners, workers), the
 * main thread's signal handling (SIGHUP reloads, SIGTERM drains), and
 * shutdown. The process never forks: the PKCS#11 module is initialised in
 * it and its threads sign. Each worker thread runs its own event base and
 * accepts on every listening socket (shared, non-blocking: whichever
 * worker wakes first takes the connection). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "tls/serve.h"
#include "online/online.h"
#include "tls/server.h"

#define DRAIN_CHECK_MS 50
#define DEFAULT_SIGNING_THREADS 32
#define ONLINE_TICK_S 10

struct tls_gen *tls_server_gen(struct tls_server *srv)
{
	struct tls_gen *g;

	pthread_mutex_lock(&srv->gen_lock);
	g = srv->gen;
	tls_gen_ref(g);
	pthread_mutex_unlock(&srv->gen_lock);
	return g;
}

/* ---- workers ---------------------------------------------------------- */

static void on_accept(evutil_socket_t fd, short what, void *arg)
{
	struct tls_acceptor *a = arg;

	tls_conn_accept(a->w, a->l);
}

static void stop_accepting(struct tls_worker *w)
{
	size_t i;

	if (!w->accepting)
		return;
	for (i = 0; i < w->srv->n_listeners; i++)
		if (w->acc[i].ev != NULL)
			event_del(w->acc[i].ev);
	w->accepting = 0;
	atomic_fetch_add(&w->srv->accept_stopped, 1);
}

/* Connections waiting for a signature stay until it is made (dying). */
static void free_all(struct tls_worker *w)
{
	struct tls_conn *c, *next;

	for (c = w->conns; c != NULL; c = next) {
		next = c->next;
		if (!c->dying)
			tls_conn_free(c);
	}
}

/* The main thread made this active: drain or stop. */
static void on_wake(evutil_socket_t fd, short what, void *arg)
{
	struct tls_worker *w = arg;

	if (atomic_load(&w->srv->stopping)) {
		stop_accepting(w);
		free_all(w);
		if (atomic_load(&w->n_conns) == 0)
			event_base_loopbreak(w->base);
		return;
	}
	if (atomic_load(&w->srv->draining)) {
		stop_accepting(w);
		if (atomic_load(&w->n_conns) == 0)
			event_base_loopbreak(w->base);
	}
}

static void *worker_main(void *arg)
{
	struct tls_worker *w = arg;

	event_base_dispatch(w->base);
	stop_accepting(w);
	free_all(w);
	OPENSSL_thread_stop(); /* this thread's ASYNC jobs and error queue */
	return NULL;
}

/* The changelist folds the event changes one loop pass makes for a file
 * descriptor (a handshake event deleted as it fires and added again, the
 * data phase taking the socket over) into one epoll_ctl, or none. */
static struct event_base *worker_base(void)
{
	struct event_config *cfg = event_config_new();
	struct event_base *base;

	if (cfg == NULL)
		return NULL;
	event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
	base = event_base_new_with_config(cfg);
	event_config_free(cfg);
	return base;
}

static int worker_init(struct tls_server *srv, struct tls_worker *w, unsigned id)
{
	size_t i;

	w->srv = srv;
	w->id = id;
	if ((w->base = worker_base()) == NULL || (w->wake = event_new(w->base, -1, 0, on_wake, w)) == NULL)
		return p11pki_fail(P11PKI_E_NOMEM, "cannot create the event loop of worker %u", id);
	for (i = 0; i < srv->n_listeners; i++) {
		w->acc[i].w = w;
		w->acc[i].l = &srv->listener[i];
		if ((w->acc[i].ev = event_new(w->base, srv->listener[i].fd, EV_READ | EV_PERSIST, on_accept, &w->acc[i])) ==
			    NULL ||
		    event_add(w->acc[i].ev, NULL) != 0)
			return p11pki_fail(P11PKI_E_NOMEM, "cannot watch listener %s", srv->listener[i].bound);
	}
	w->accepting = 1;
	return P11PKI_OK;
}

static void worker_clear(struct tls_worker *w)
{
	size_t i;

	for (i = 0; i < P11PKI_MAX_BINDINGS; i++)
		if (w->acc[i].ev != NULL)
			event_free(w->acc[i].ev);
	if (w->wake != NULL)
		event_free(w->wake);
	if (w->base != NULL)
		event_base_free(w->base);
}

static void wake_workers(struct tls_server *srv)
{
	unsigned i;

	for (i = 0; srv->worker != NULL && i < srv->n_workers; i++)
		if (srv->worker[i].started)
			event_active(srv->worker[i].wake, EV_READ, 0);
}

/* ---- files ------------------------------------------------------------ */

/* Written whole through a temporary file, so a reader never sees half. */
static int write_file(const char *path, const char *text)
{
	char tmp[4096];
	FILE *fp;
	int ok;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(tmp))
		return p11pki_fail(P11PKI_E_ARG, "path too long: %s", path);
	if ((fp = fopen(tmp, "w")) == NULL)
		return p11pki_fail(P11PKI_E_IO, "cannot write %s: %s", path, strerror(errno));
	ok = fputs(text, fp) >= 0;
	ok = fclose(fp) == 0 && ok;
	if (!ok || rename(tmp, path) != 0) {
		unlink(tmp);
		return p11pki_fail(P11PKI_E_IO, "cannot write %s: %s", path, strerror(errno));
	}
	return P11PKI_OK;
}

/* "binding-name host:port" per binding, and "admin host:port". */
static int write_bound(struct tls_server *srv, struct tls_gen *g)
{
	char *text;
	size_t cap = (g->n_sites + 1) * (TLS_NAME_MAX + TLS_ADDR_MAX + 256), n = 0, i;
	int r;

	if (g->cfg->bound_file == NULL)
		return P11PKI_OK;
	if ((text = calloc(1, cap)) == NULL)
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
	for (i = 0; i < g->n_sites && n < cap; i++)
		n += (size_t)snprintf(text + n, cap - n, "%s %s\n", g->site[i].b->name,
				      srv->listener[g->view[g->site[i].view].listener].bound);
	if (srv->admin_bound[0] != '\0' && n < cap)
		snprintf(text + n, cap - n, "admin %s\n", srv->admin_bound);
	r = write_file(g->cfg->bound_file, text);
	free(text);
	return r;
}

static int write_pid(const char *path)
{
	char text[32];

	if (path == NULL)
		return P11PKI_OK;
	snprintf(text, sizeof(text), "%ld\n", (long)getpid());
	return write_file(path, text);
}

/* ---- listeners --------------------------------------------------------- */

static int open_listeners(struct tls_server *srv, struct tls_gen *g)
{
	size_t k;
	int r;

	for (k = 0; k < g->n_views; k++) {
		struct tls_listener *l = &srv->listener[k];
		l->ep = *g->view[k].ep;
		if ((r = tls_listen(&l->ep, &l->fd, l->bound, sizeof(l->bound))) != 0)
			return tls_fail_wrap(r, g->site[g->view[k].dflt].where);
		srv->n_listeners++;
		g->view[k].listener = k;
	}
	return P11PKI_OK;
}

static void close_listeners(struct tls_server *srv)
{
	size_t i;

	for (i = 0; i < srv->n_listeners; i++)
		if (srv->listener[i].fd >= 0) {
			close(srv->listener[i].fd);
			srv->listener[i].fd = -1;
		}
}

/* A reload keeps the listening sockets: each view of the new generation
 * must have its listener, and every listener its view. */
static int match_listeners(struct tls_server *srv, struct tls_gen *g)
{
	char ep[TLS_ADDR_MAX];
	size_t k, i;

	if (g->n_views != srv->n_listeners)
		return p11pki_fail(P11PKI_E_ARG, "the listen addresses changed (%zu listeners, was %zu): restart "
				   "p11pki serve to apply", g->n_views, srv->n_listeners);
	for (k = 0; k < g->n_views; k++) {
		for (i = 0; i < srv->n_listeners && !tls_endpoint_eq(&srv->listener[i].ep, g->view[k].ep); i++)
			;
		if (i == srv->n_listeners) {
			tls_endpoint_text(g->view[k].ep, ep, sizeof(ep));
			return p11pki_fail(P11PKI_E_ARG, "new listen address %s: restart p11pki serve to apply", ep);
		}
		g->view[k].listener = i;
	}
	return P11PKI_OK;
}

/* ---- the CA online ----------------------------------------------------- */

/* Published CRLs follow revocations made by other processes (`p11pki ca
 * revoke`) and are re-signed before their nextUpdate. */
static void on_online_tick(evutil_socket_t fd, short what, void *arg)
{
	struct tls_server *srv = arg;

	online_service_tick(srv->gen->online, time(NULL));
}

static int start_online_timer(struct tls_server *srv)
{
	struct timeval tv = { ONLINE_TICK_S, 0 };

	if ((srv->online_timer = event_new(srv->base, -1, EV_PERSIST, on_online_tick, srv)) == NULL ||
	    event_add(srv->online_timer, &tv) != 0)
		return p11pki_fail(P11PKI_E_NOMEM, "cannot start the CRL timer");
	return P11PKI_OK;
}

/* ---- signals ----------------------------------------------------------- */

static void reload(struct tls_server *srv)
{
	struct p11pki_serve_config *cfg = NULL;
	struct tls_gen *g = NULL, *old;
	int r;

	p11pki_log(P11PKI_LOG_INFO, "SIGHUP: reloading %s", srv->config_path);
	if ((r = p11pki_serve_config_load(srv->config_path, &cfg)) != 0)
		goto out;
	if ((r = tls_gen_build(cfg, &srv->tokens, srv->mx, &g)) != 0)
		goto out;
	cfg = NULL; /* the generation has it */
	if ((r = match_listeners(srv, g)) != 0)
		goto out;
	if (g->cfg->workers != srv->gen->cfg->workers || g->cfg->has_admin != srv->gen->cfg->has_admin ||
	    (g->cfg->has_admin && !tls_endpoint_eq(&g->cfg->admin, &srv->gen->cfg->admin)))
		p11pki_log(P11PKI_LOG_WARN, "workers and admin settings apply at the next restart");
	pthread_mutex_lock(&srv->gen_lock);
	old = srv->gen;
	srv->gen = g;
	pthread_mutex_unlock(&srv->gen_lock);
	g = NULL;
	tls_health_update(srv->health);
	(void)write_bound(srv, srv->gen);
	tls_gen_unref(old); /* open connections keep it until they close */
	p11pki_log(P11PKI_LOG_INFO, "reloaded: %zu bindings; open connections keep their settings",
		   srv->gen->n_sites);
out:
	if (r != 0)
		p11pki_log(P11PKI_LOG_ERROR, "reload refused, the running configuration stays: %s", p11pki_errmsg());
	tls_gen_unref(g);
	p11pki_serve_config_free(cfg);
}

static int past(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > t->tv_sec || (now.tv_sec == t->tv_sec && now.tv_nsec >= t->tv_nsec);
}

static void on_drain_check(evutil_socket_t fd, short what, void *arg)
{
	struct tls_server *srv = arg;
	unsigned i, open = 0;

	/* once no worker accepts, new clients are refused by the kernel */
	if (atomic_load(&srv->accept_stopped) == srv->n_workers)
		close_listeners(srv);
	for (i = 0; i < srv->n_workers; i++)
		open += atomic_load(&srv->worker[i].n_conns);
	if (open == 0 || past(&srv->drain_deadline)) {
		if (open > 0)
			p11pki_log(P11PKI_LOG_WARN, "drain deadline: closing %u connections", open);
		atomic_store(&srv->stopping, 1);
		wake_workers(srv);
		event_base_loopbreak(srv->base);
	}
}

static void drain(struct tls_server *srv)
{
	struct timeval tv = { 0, DRAIN_CHECK_MS * 1000 };

	if (atomic_exchange(&srv->draining, 1)) {
		p11pki_log(P11PKI_LOG_WARN, "second stop signal: closing every connection now");
		clock_gettime(CLOCK_MONOTONIC, &srv->drain_deadline);
		return;
	}
	p11pki_log(P11PKI_LOG_INFO, "stopping: no new connections, open ones have %d s to finish", TLS_DRAIN_MS / 1000);
	clock_gettime(CLOCK_MONOTONIC, &srv->drain_deadline);
	srv->drain_deadline.tv_sec += TLS_DRAIN_MS / 1000;
	wake_workers(srv);
	if ((srv->drain_timer = event_new(srv->base, -1, EV_PERSIST, on_drain_check, srv)) == NULL ||
	    event_add(srv->drain_timer, &tv) != 0)
		event_base_loopbreak(srv->base);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	if (sig == SIGHUP)
		reload(arg);
	else
		drain(arg);
}

/* ---- start and stop ---------------------------------------------------- */

static unsigned worker_count(const struct p11pki_serve_config *cfg)
{
	long n = cfg->workers > 0 ? (long)cfg->workers : sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > TLS_MAX_WORKERS ? TLS_MAX_WORKERS : (unsigned)n;
}

static int start(struct tls_server *srv, struct p11pki_serve_config *cfg, const char *pin_source)
{
	unsigned i;
	int r;

	srv->n_workers = worker_count(cfg);
	/* a slow token (network HSM, USB) keeps many signatures in flight while
	 * the event loops go on serving; idle signing threads cost nothing */
	srv->signing_threads = cfg->signing_threads > 0 ? cfg->signing_threads : DEFAULT_SIGNING_THREADS;
	if ((srv->config_path = strdup(cfg->path != NULL ? cfg->path : "")) == NULL)
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
	if ((r = tls_tokens_init(&srv->tokens, cfg->module, pin_source != NULL ? pin_source : cfg->pin_source, 1,
				 srv->signing_threads + srv->n_workers + 2)) != 0 ||
	    (r = tls_metrics_new(&srv->mx)) != 0)
		return r;
	p11pki_sign_observer_set(tls_metrics_observe_sign);
	if ((r = tls_gen_build(cfg, &srv->tokens, srv->mx, &srv->gen)) != 0)
		return r;
	if ((r = open_listeners(srv, srv->gen)) != 0)
		return r;
	if ((srv->base = event_base_new()) == NULL)
		return p11pki_fail(P11PKI_E_NOMEM, "cannot create the main event loop");
	if (cfg->has_admin && (r = tls_metrics_listen(srv, srv->base, &cfg->admin, srv->admin_bound,
						      sizeof(srv->admin_bound))) != 0)
		return r;
	if ((r = p11pki_async_signing_start(srv->signing_threads)) != 0)
		return r;
	if ((srv->worker = calloc(srv->n_workers, sizeof(*srv->worker))) == NULL)
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
	for (i = 0; i < srv->n_workers; i++) {
		if ((r = worker_init(srv, &srv->worker[i], i)) != 0)
			return r;
		if (pthread_create(&srv->worker[i].thread, NULL, worker_main, &srv->worker[i]) != 0)
			return p11pki_fail(P11PKI_E_NOMEM, "cannot start worker %u", i);
		srv->worker[i].started = 1;
	}
	if ((r = tls_health_start(srv, &srv->health)) != 0)
		return r;
	if ((r = write_pid(cfg->pid_file)) != 0 || (r = write_bound(srv, srv->gen)) != 0)
		return r;
	return P11PKI_OK;
}

static void stop(struct tls_server *srv)
{
	unsigned i;

	atomic_store(&srv->stopping, 1);
	wake_workers(srv);
	for (i = 0; srv->worker != NULL && i < srv->n_workers; i++)
		if (srv->worker[i].started)
			pthread_join(srv->worker[i].thread, NULL);
	tls_health_stop(srv->health);
	p11pki_async_signing_stop();
	tls_session_cache_free();
	p11pki_sign_observer_set(NULL);
	for (i = 0; srv->worker != NULL && i < srv->n_workers; i++)
		worker_clear(&srv->worker[i]);
	free(srv->worker);
	close_listeners(srv);
	if (srv->drain_timer != NULL)
		event_free(srv->drain_timer);
	if (srv->online_timer != NULL)
		event_free(srv->online_timer);
	tls_metrics_free(srv->mx); /* its admin listener uses the main base */
	if (srv->base != NULL)
		event_base_free(srv->base);
	if (srv->gen != NULL && srv->gen->cfg->pid_file != NULL)
		unlink(srv->gen->cfg->pid_file);
	tls_gen_unref(srv->gen);
	tls_tokens_close(&srv->tokens);
	pthread_mutex_destroy(&srv->gen_lock);
	free(srv->config_path);
}

int p11pki_serve_run(struct p11pki_serve_config *cfg, const char *pin_source)
{
	static const int sigs[] = { SIGHUP, SIGTERM, SIGINT };
	struct event *sig_ev[3] = { NULL, NULL, NULL };
	struct tls_server *srv;
	sigset_t set, old;
	size_t i;
	int r;

	if ((srv = calloc(1, sizeof(*srv))) == NULL) {
		p11pki_serve_config_free(cfg);
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
	}
	pthread_mutex_init(&srv->gen_lock, NULL);
	for (i = 0; i < P11PKI_MAX_BINDINGS; i++)
		srv->listener[i].fd = -1;
	/* threads started from here on leave these signals to this one */
	sigemptyset(&set);
	for (i = 0; i < 3; i++)
		sigaddset(&set, sigs[i]);
	pthread_sigmask(SIG_BLOCK, &set, &old);
	signal(SIGPIPE, SIG_IGN);
	if (evthread_use_pthreads() != 0) {
		r = p11pki_fail(P11PKI_E_NOMEM, "libevent has no thread support");
		p11pki_serve_config_free(cfg);
		goto out;
	}
	if ((r = start(srv, cfg, pin_source)) != 0) {
		if (srv->gen == NULL)
			p11pki_serve_config_free(cfg);
		goto out;
	}
	if ((r = start_online_timer(srv)) != 0)
		goto out;
	for (i = 0; i < 3; i++)
		if ((sig_ev[i] = evsignal_new(srv->base, sigs[i], on_signal, srv)) == NULL || event_add(sig_ev[i], NULL) != 0) {
			r = p11pki_fail(P11PKI_E_NOMEM, "cannot watch signals");
			goto out;
		}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	p11pki_log(P11PKI_LOG_INFO, "serving %zu bindings on %zu listeners with %u workers and %u signing threads",
		   srv->gen->n_sites, srv->n_listeners, srv->n_workers, srv->signing_threads);
	event_base_dispatch(srv->base);
	p11pki_log(P11PKI_LOG_INFO, "stopped");
out:
	for (i = 0; i < 3; i++)
		if (sig_ev[i] != NULL)
			event_free(sig_ev[i]);
	stop(srv);
	free(srv);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return r;
}
