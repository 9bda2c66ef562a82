/* Private to the tls layer: the pieces of `p11pki serve` and how they
 * share state.
 *
 * A generation (struct tls_gen) is one loaded configuration: its sites
 * (a binding with its SSL_CTX, certificate and backends) and how the sites
 * map onto listeners. Connections hold a reference to the generation they
 * started with, so SIGHUP can swap in a new one while open connections
 * keep theirs. Listeners, workers, the token set and the counters
 * (struct tls_metrics) live as long as the server. */
#ifndef P11PKI_TLS_SERVER_H
#define P11PKI_TLS_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>

#include <openssl/ssl.h>

#include <p11pki/tls.h>
#include <p11pki/token.h>

struct event;
struct event_base;
struct bufferevent;
struct evhttp;

#define TLS_MAX_TOKENS 16
#define TLS_MAX_WORKERS 256
#define TLS_ADDR_MAX 300	/* "[v6 or host name]:port" */
#define TLS_NAME_MAX 64		/* binding names as kept in counters */
#define TLS_URI_SHOWN 260	/* a URI or path quoted in a message: 256 bytes */

/* Defaults for settings the configuration leaves at 0. */
#define TLS_DEFAULT_HANDSHAKE_MS 10000
#define TLS_DEFAULT_IDLE_MS 60000
#define TLS_DEFAULT_SESSION_S 300
#define TLS_DEFAULT_HEALTH_MS 5000
#define TLS_DEFAULT_FALL 3
#define TLS_DEFAULT_RISE 2
#define TLS_DEFAULT_MAX_CONN 10000
#define TLS_DRAIN_MS 10000

/* ---- tokens (tokens.c) ------------------------------------------------ */

/* The tokens the key URIs name, each opened and logged in once for the
 * life of the server (a reload may add tokens, never drops one). */
struct tls_tokens {
	p11pki_module *m;
	p11pki_secret *pin;	/* the PIN given at start, for tokens a reload adds */
	char *pin_source;	/* --pin-source or [ serve ] pin_source */
	int login;		/* 0: read certificates only (bindings show) */
	unsigned pool;		/* session pool size per token */
	struct {
		char *sel;	/* the selector text that opened it */
		p11pki_token *t;
		int can_rsa_pss;
	} tok[TLS_MAX_TOKENS];
	size_t n;
};

/* Loads the module (NULL: the embedded default). */
int tls_tokens_init(struct tls_tokens *tk, const char *module, const char *pin_source, int login,
		    unsigned pool);
/* The open token the URI's token attributes select, opening (and logging
 * in) when new. *can_pss (may be NULL) tells whether it signs RSA-PSS. */
int tls_tokens_get(struct tls_tokens *tk, const struct p11pki_uri *sel, p11pki_token **t, int *can_pss);
void tls_tokens_close(struct tls_tokens *tk);

/* ---- counters and backend state (metrics.c) --------------------------- */

enum tls_auth_reason {
	TLS_AUTH_OK = 0,
	TLS_AUTH_NO_CERT,
	TLS_AUTH_UNTRUSTED,
	TLS_AUTH_EXPIRED,
	TLS_AUTH_NOT_YET_VALID,
	TLS_AUTH_REVOKED,
	TLS_AUTH_CRL,
	TLS_AUTH_NOT_ALLOWED,
	TLS_AUTH_OTHER,
	TLS_AUTH_N
};
/* "no-certificate", "revoked", ...: metrics labels and X-Client-Verify. */
const char *tls_auth_reason_name(int reason);

enum tls_hs_result { TLS_HS_OK = 0, TLS_HS_RESUMED, TLS_HS_FAILED, TLS_HS_CLIENT_AUTH, TLS_HS_TIMEOUT, TLS_HS_N };

/* Per binding name, for the life of the server. */
struct tls_bstats {
	char name[TLS_NAME_MAX];
	atomic_ulong handshakes[TLS_HS_N];
	atomic_ulong auth_failures[TLS_AUTH_N];
	atomic_ulong refused;		/* over max_connections */
	atomic_ulong healthz;
	atomic_int signing_ok;		/* 0 after a token failure: log changes once */
};

/* Per (binding, backend), for the life of the server: a reload keeps a
 * backend's health. `up` is written by the health thread, read by all. */
struct tls_backend_state {
	char binding[TLS_NAME_MAX];
	char addr[TLS_ADDR_MAX];
	atomic_int up;
	atomic_ulong requests, connect_failures;
	unsigned fails, oks;		/* health thread only */
};

#define TLS_SIGN_BUCKETS 12
struct tls_metrics {
	pthread_mutex_t lock;		/* guards the registries' growth */
	struct tls_bstats *bind[2 * P11PKI_MAX_BINDINGS];
	size_t n_bind;
	struct tls_backend_state *back[4 * P11PKI_MAX_BACKENDS * 8];
	size_t n_back;
	atomic_ulong sign_bucket[TLS_SIGN_BUCKETS + 1]; /* last: +Inf */
	atomic_ulong sign_count, sign_failed, sign_sum_us;
	struct evhttp *http;		/* the admin listener, on the main base */
};

int tls_metrics_new(struct tls_metrics **out);
void tls_metrics_free(struct tls_metrics *mx);
/* Find-or-create; NULL only when full or out of memory (message set). */
struct tls_bstats *tls_metrics_binding(struct tls_metrics *mx, const char *name);
struct tls_backend_state *tls_metrics_backend(struct tls_metrics *mx, const char *binding, const char *addr);
/* Feeds the signing-latency histogram (p11pki_sign_observer_set). */
void tls_metrics_observe_sign(double seconds, int ok);
/* Serves /metrics on ep from base; *bound gets "host:port". */
struct tls_server;
int tls_metrics_listen(struct tls_server *srv, struct event_base *base, const struct p11pki_endpoint *ep,
		       char *bound, size_t bound_size);

/* ---- sites, listeners, generations (context.c, bindings.c) ----------- */

struct tls_backend {
	const struct p11pki_endpoint *ep;
	struct sockaddr_storage sa;
	socklen_t sa_len;
	char addr[TLS_ADDR_MAX];
	struct tls_backend_state *st;
};

/* One binding at run time. */
struct tls_site {
	const struct p11pki_binding *b;	/* in the generation's cfg */
	char where[200];		/* tls_binding_where */
	SSL_CTX *ctx;
	EVP_PKEY *key;
	p11pki_token *signer;		/* the key's token; NULL: key = file: */
	X509 *cert;
	STACK_OF(X509) *chain;
	X509_STORE *client_store;	/* client CAs and CRL (owned by ctx); NULL: none */
	int tls13;			/* offered (RSA keys need RSA-PSS on the token) */
	/* what SNI must copy onto a connection that switches to this site */
	int min_proto, max_proto;
	const char *ciphers, *ciphersuites, *sigalgs; /* sigalgs NULL: OpenSSL's */
	size_t view;			/* index of its listener view */
	unsigned gen_serial;		/* its generation (reload) */
	struct tls_backend backends[P11PKI_MAX_BACKENDS];
	size_t n_backends;
	atomic_uint rr;			/* round-robin position */
	struct tls_bstats *stats;
	struct online_routes *routes;	/* EST/OCSP/CRL paths; NULL: none */
};

/* The sites of one listen address: SNI picks among them, dflt answers
 * clients that send no or an unknown host name. */
struct tls_view {
	const struct p11pki_endpoint *ep;
	size_t site[P11PKI_MAX_BINDINGS];
	size_t n_sites;
	size_t dflt;			/* a site index */
	size_t listener;		/* index in the server's listeners */
};

struct online_service;
struct online_routes;

struct tls_gen {
	atomic_int refs;
	struct p11pki_serve_config *cfg;	/* owned */
	struct online_service *online;		/* EST/OCSP/CRLs; NULL: none */
	struct tls_site site[P11PKI_MAX_BINDINGS];
	size_t n_sites;
	struct tls_view view[P11PKI_MAX_BINDINGS];
	size_t n_views;
};

/* Loads the certificate (and chain) a binding names: PEM file, PKCS#11
 * URI or sha1:/sha256: thumbprint among its key's token's certificates. */
int tls_site_cert(const struct p11pki_binding *b, const char *where, struct tls_tokens *tk, X509 **leaf,
		  STACK_OF(X509) **chain);
/* Sessions of every binding in one cache the workers share, serialized
 * (sesscache.c), the oldest of TLS_SESSION_SLOTS replaced first; _free at
 * exit. */
#define TLS_SESSION_SLOTS 20480
void tls_session_cache_use(SSL_CTX *ctx);
void tls_session_cache_free(void);
/* Gives ctx its own random session ticket keys, the ticket cipher fetched
 * once (tickets.c); 0 on failure. */
int tls_tickets_use(SSL_CTX *ctx);

/* Loads key, certificate and chain, runs the start-up checks and builds
 * the SSL_CTX. A refusal is one line naming the binding. */
int tls_site_build(struct tls_site *s, struct tls_tokens *tk);
void tls_site_clear(struct tls_site *s);
/* Whether cert passes the binding's allow-lists; *why says which not. */
int tls_site_allowed(const struct p11pki_binding *b, X509 *cert, char *why, size_t why_size);
/* The reason for an X509_V_ERR_* code. */
int tls_auth_reason_of(long verify_error);
/* How the client's certificate fared (TLS_AUTH_OK without one): what
 * the verify callback saw, or for a resumed session the stored result
 * and the allow-lists again. */
struct tls_conn;
int tls_client_auth_result(struct tls_conn *c, SSL *ssl, X509 *peer);
/* Client CAs, CRL, verify mode and callback of a site's context. */
int tls_client_auth_setup(struct tls_site *s, const char *where);
/* The ClientHello callback of every site's context: SNI picks the site
 * (sni.c), before the protocol version is chosen. */
int tls_sni_client_hello(SSL *ssl, int *alert, void *arg);

/* Groups the bindings into listener views and builds every site. With
 * mx NULL no counters are attached (bindings check). Takes cfg on
 * success. */
int tls_gen_build(struct p11pki_serve_config *cfg, struct tls_tokens *tk, struct tls_metrics *mx,
		  struct tls_gen **out);
/* The first steps of tls_gen_build: views from the bindings (refusing
 * duplicates), then a site's backends resolved (counters from mx, which
 * may be NULL). */
int tls_gen_group(struct tls_gen *g);
int tls_site_backends(struct tls_site *s, struct tls_metrics *mx);
void tls_gen_ref(struct tls_gen *g);
void tls_gen_unref(struct tls_gen *g);
/* "p11pki.conf:12: binding www", how messages about a binding start. */
const char *tls_binding_where(const char *file, const struct p11pki_binding *b, char *buf, size_t size);
/* p11pki_fail with "PREFIX: <the message already recorded>". */
int tls_fail_wrap(int code, const char *prefix);
int tls_fail_wrapf(int code, const char *fmt, ...) P11PKI_PRINTF(2, 3);
/* "2026-01-01 00:00:00 UTC". */
void tls_time_text(const ASN1_TIME *t, char *buf, size_t size);

/* ---- sockets (listen.c) ----------------------------------------------- */

/* "host:port" of a socket address ("[::1]:443" for IPv6). */
void tls_addr_text(const struct sockaddr *sa, socklen_t len, char *buf, size_t size);
/* Resolves an endpoint ("*" is every IPv4 address). */
int tls_resolve(const struct p11pki_endpoint *ep, int passive, struct sockaddr_storage *sa, socklen_t *len);
/* A non-blocking listening socket on ep; *bound gets its address. */
int tls_listen(const struct p11pki_endpoint *ep, int *fd, char *bound, size_t bound_size);
/* "host:port" as configured. */
void tls_endpoint_text(const struct p11pki_endpoint *ep, char *buf, size_t size);
int tls_endpoint_eq(const struct p11pki_endpoint *a, const struct p11pki_endpoint *b);

/* ---- the server (server.c) -------------------------------------------- */

struct tls_listener {
	struct p11pki_endpoint ep;
	int fd;
	char bound[TLS_ADDR_MAX];
	atomic_uint conns;
};

struct tls_conn;

struct tls_worker;
struct tls_acceptor {
	struct tls_worker *w;
	struct tls_listener *l;
	struct event *ev;
};

struct tls_worker {
	struct tls_server *srv;
	unsigned id;
	pthread_t thread;
	int started;
	struct event_base *base;
	struct tls_acceptor acc[P11PKI_MAX_BINDINGS];
	struct event *wake;		/* made active by the main thread */
	struct tls_conn *conns;		/* doubly linked, this worker's */
	atomic_uint n_conns;
	int accepting;
};

struct tls_health;

struct tls_server {
	struct tls_tokens tokens;
	char *config_path;
	struct tls_listener listener[P11PKI_MAX_BINDINGS];
	size_t n_listeners;
	struct tls_worker *worker;
	unsigned n_workers, signing_threads;
	pthread_mutex_t gen_lock;
	struct tls_gen *gen;		/* current; guarded by gen_lock */
	struct tls_metrics *mx;
	struct tls_health *health;
	struct event_base *base;	/* main thread: signals, admin, drain */
	atomic_int draining, stopping;
	atomic_uint accept_stopped;
	struct timespec drain_deadline;
	struct event *drain_timer;	/* checks the drain's progress */
	struct event *online_timer;	/* keeps published CRLs fresh */
	char admin_bound[TLS_ADDR_MAX];
};

/* The current generation with a reference for the caller. */
struct tls_gen *tls_server_gen(struct tls_server *srv);

/* ---- chunked request bodies (chunked.c) ------------------------------- */

struct tls_chunked {
	int state;
	unsigned digits, line;
	unsigned long long left;	/* bytes of the current chunk */
};
/* How many of the n bytes at p belong to the body (all of them until it
 * ends), or -1 when the framing is broken. Start from a zeroed struct. */
long long tls_chunked_scan(struct tls_chunked *st, const unsigned char *p, size_t n);
/* The last chunk and the trailer have been seen. */
int tls_chunked_done(const struct tls_chunked *st);

/* ---- connections (conn.c, proxy.c) ------------------------------------ */

#define TLS_CONN_MAGIC 0x7c0115a1U

struct tls_conn {
	unsigned magic;
	struct tls_worker *w;
	struct tls_conn *prev, *next;
	struct tls_listener *l;
	struct tls_gen *gen;		/* referenced */
	struct tls_site *site;		/* the default, then the SNI choice */
	int fd;
	SSL *ssl;			/* until the bufferevent owns it */
	struct event *rd, *wr, *async, *retry, *timer;
	struct bufferevent *bev;	/* client, after the handshake */
	struct bufferevent *back;	/* backend */
	char client_ip[64];
	int auth_reason;		/* first client-certificate failure */
	double started;
	/* proxy state */
	struct tls_backend *backend;
	size_t tried;			/* backends tried for this connection */
	unsigned rr_start;
	int state;
	long long body_left;		/* request body bytes still to copy, -1: all */
	int chunked;			/* http: the body is chunked, chunk finds its end */
	struct tls_chunked chunk;
	int dying;			/* freed once its paused ASYNC job has ended */
	int closing;			/* closed once the client's output is sent */
	int client_eof, back_eof;
	int client_paused, back_paused;	/* reading stopped: the other side is full */
	char *head_out;			/* http: the rewritten head */
	size_t head_out_len;
	struct tls_online_req *online;	/* http: an EST/OCSP/CRL request */
};

/* Accepts what waits on listener l (its fd is readable). */
void tls_conn_accept(struct tls_worker *w, struct tls_listener *l);
/* Frees a connection in any state. */
void tls_conn_free(struct tls_conn *c);

/* http mode, the CA online (online_conn.c): takes over a request for
 * one of the site's online paths (returns 1; answered or reading its
 * body), or returns 0 to proxy it. */
struct p11pki_http_head;
int tls_online_begin(struct tls_conn *c, const struct p11pki_http_head *h);
/* More of the body arrived. */
void tls_online_read(struct tls_conn *c);
void tls_online_free(struct tls_conn *c);
/* Queues data for the client and closes once it is sent (proxy.c). */
void tls_proxy_reply(struct tls_conn *c, const char *data, size_t len);
/* Sends data to the client: written at once when nothing is queued before
 * it, else (and whatever the socket does not take) queued. */
void tls_client_send(struct tls_conn *c, const void *data, size_t len);

/* After the handshake: tcp or http proxying on c->bev. */
void tls_proxy_start(struct tls_conn *c);

/* ---- health checks (health.c) ----------------------------------------- */

int tls_health_start(struct tls_server *srv, struct tls_health **out);
/* Takes up the server's current generation (after a reload). */
void tls_health_update(struct tls_health *h);
void tls_health_stop(struct tls_health *h);

#endif
