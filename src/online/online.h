/* Private to the library: the CA online (layer `online`): EST (RFC 7030),
 * OCSP (RFC 6960) and CRL download, answered by p11pki serve on bindings
 * in http mode. Each protocol is a handler from a complete request (head
 * fields, body, verified client certificate) to a complete response, with
 * no event-loop code, so it is tested and fuzzed on its own; routes.c maps
 * a binding's paths to the handlers and the proxy (src/tls/proxy.c) reads
 * the body and writes the answer.
 *
 * Handlers run on the serve worker threads, several at once: everything
 * shared below is either read-only after setup or guarded by its lock. */
#ifndef P11PKI_ONLINE_H
#define P11PKI_ONLINE_H

#include <pthread.h>
#include <stddef.h>
#include <time.h>

#include <openssl/conf.h>
#include <openssl/x509.h>

#include <p11pki/ca.h>
#include <p11pki/core.h>
#include <p11pki/tls.h>
#include <p11pki/token.h>

#include "ca/store.h"

#define ONLINE_BODY_DEFAULT_MAX 65536	/* [ online ] max_body */
#define ONLINE_MAX_CAS 16
#define ONLINE_MAX_EST_ROUTES 16

/* What a handler sees of one HTTP request. */
struct online_request {
	const char *method;		/* "GET", "POST", ... */
	const char *path;		/* target without the query, percent-encoding kept */
	const char *query;		/* after '?', or NULL */
	const char *content_type;	/* header value or NULL */
	const char *authorization;	/* header value or NULL */
	const unsigned char *body;	/* Content-Length bytes (may be NULL when 0) */
	size_t body_len;
	X509 *client_cert;		/* verified TLS client certificate, or NULL */
	int client_cert_renewal_only;	/* it lacks clientAuth (a server certificate):
					 * good for renewing itself, not for enrolling */
	const char *client_ip;		/* for logs and the store's requester */
	time_t now;
};

/* A complete answer. The handler sets status, reason and content_type
 * (static strings), adds header lines to headers ("Name: value\r\n"...,
 * NUL-terminated, may stay empty) and a malloc'd body. */
#define ONLINE_HEADERS_MAX 512
struct online_response {
	int status;
	const char *reason;
	const char *content_type;
	char headers[ONLINE_HEADERS_MAX];
	unsigned char *body;
	size_t body_len;
};

/* Fills rs with a copy of body (len bytes; a text body when len is
 * (size_t)-1 and body a C string). Returns P11PKI_OK or E_NOMEM (then rs is
 * a 500 with an empty body). */
int online_respond(struct online_response *rs, int status, const char *reason, const char *content_type,
		   const void *body, size_t len);
/* A text/plain answer with a one-line reason, e.g. 403 "policy refused: ...". */
int online_respond_text(struct online_response *rs, int status, const char *reason, const char *fmt, ...)
	P11PKI_PRINTF(4, 5);
/* Appends "name: value\r\n" to rs->headers (silently truncated never:
 * P11PKI_E_ARG if it does not fit). */
int online_add_header(struct online_response *rs, const char *name, const char *fmt, ...) P11PKI_PRINTF(3, 4);
/* Caching for an answer good until expires (RFC 5019 / RFC 9111):
 * "Cache-Control: CACHE_CONTROL, max-age=N", Last-Modified, Expires. */
int online_add_cache_headers(struct online_response *rs, const char *cache_control, time_t modified,
			     time_t expires, time_t now);
void online_response_clear(struct online_response *rs);

struct online_ocsp;	/* ocsp.c: the responder of one CA */
struct online_crl;	/* crlpub.c: the published CRL of one CA */

/* One CA served online, opened once per server start (or reload). */
struct online_ca {
	char name[64];
	p11pki_ca *ca;			/* owns the CA's key (on its token) */
	X509 *cert;			/* borrowed from ca */
	STACK_OF(X509) *chain;		/* issuers above cert, from the store; owned */
	p11pki_token *token;		/* where the CA key lives (borrowed) */
	struct online_ocsp *ocsp;	/* NULL unless a binding serves OCSP for it */
	struct online_crl *crl;		/* NULL unless a binding serves its CRL */
};

/* Everything the online handlers share. */
struct online_service {
	p11pki_store *st;		/* thread-safe (the store has its own lock) */
	CONF *conf;			/* the serve config file read as CA settings */
	struct online_ca cas[ONLINE_MAX_CAS];
	size_t n_cas;
	size_t max_body;		/* [ online ] max_body */
	char *crl_dir;			/* [ online ] crl_dir: CRLs also written here */
	int ocsp_delegated;		/* [ online ] ocsp_signer = delegated (default) | ca */
	unsigned ocsp_validity_s;	/* [ online ] ocsp_validity: nextUpdate - thisUpdate */
};

/* The CA named name, or NULL. */
struct online_ca *online_find_ca(struct online_service *svc, const char *name);

/* ---- EST (est.c) -------------------------------------------------------- */

/* One EST label: "" is /.well-known/est/<op>, "x" is /.well-known/est/x/<op>. */
struct online_est_route {
	char label[64];
	char ca[64];
	char profile[32];
};

/* Answers a request whose path starts with /.well-known/est/. */
void online_est_answer(struct online_service *svc, const struct online_est_route *routes, size_t n_routes,
		       const struct online_request *rq, struct online_response *rs);

/* ---- OCSP (ocsp.c) ------------------------------------------------------ */

/* Prepares the responder of oc: with ocsp_delegated, finds in the store
 * a valid OCSP signing certificate of this CA whose key is on oc->token
 * (label "<ca>-ocsp"), or generates that key and issues one (profile
 * ocsp, id-pkix-ocsp-nocheck); renews it when a third of its life is
 * left. Otherwise signs with the CA key. */
int online_ocsp_setup(struct online_service *svc, struct online_ca *oc);
void online_ocsp_free(struct online_ocsp *o);
/* Answers GET /ocsp/<base64 request> and POST /ocsp for the CAs named in
 * cas (a binding's `ocsp` list): good / revoked / unknown from the store,
 * `unauthorized` for other issuers, malformedRequest for garbage. */
void online_ocsp_answer(struct online_service *svc, char *const *cas, size_t n_cas,
			const struct online_request *rq, struct online_response *rs);

/* ---- CRLs (crlpub.c) ---------------------------------------------------- */

int online_crl_setup(struct online_service *svc, struct online_ca *oc);
void online_crl_free(struct online_crl *c);
/* Re-signs the CA's CRL when the store has a revocation the current one
 * lacks or nextUpdate is near, and writes it to crl_dir (atomically).
 * Called before answering and from a timer. */
int online_crl_refresh(struct online_service *svc, struct online_ca *oc, time_t now);
/* Answers GET /crl/<ca>.crl for the CAs named in cas (DER,
 * application/pkix-crl, Cache-Control/Expires up to nextUpdate). */
void online_crl_answer(struct online_service *svc, char *const *cas, size_t n_cas,
		       const struct online_request *rq, struct online_response *rs);

/* ---- setup and routing (service.c, routes.c) ---------------------------- */

/* What one binding serves online (from its est / est_label_* / ocsp /
 * crls keys). */
struct online_routes {
	struct online_est_route est[ONLINE_MAX_EST_ROUTES];
	size_t n_est;
	char **ocsp, **crls;		/* CA names */
	size_t n_ocsp, n_crls;
};

/* Opens the token that the URI's token attributes select (logged in);
 * serve passes its own token set, tests a fixed token. */
typedef int (*online_token_fn)(void *ctx, const struct p11pki_uri *sel, p11pki_token **t);

/* Reads [ online ] of the config file at path (NULL: defaults), opens the
 * store and the n CAs named in names with their keys on their tokens,
 * and sets up OCSP for those in ocsp_cas and CRLs for those in crl_cas.
 * A refusal is one line naming the CA or setting. */
int online_service_open(const char *path, char *const *names, size_t n, char *const *ocsp_cas, size_t n_ocsp,
			char *const *crl_cas, size_t n_crl, online_token_fn token, void *token_ctx,
			struct online_service **out);
void online_service_close(struct online_service *svc);
/* Keeps the published CRLs fresh (a revocation made by `p11pki ca
 * revoke` in another process, nextUpdate coming): called from a timer. */
void online_service_tick(struct online_service *svc, time_t now);

/* Splits a binding's est / est_label_* / ocsp / crls settings; every CA
 * named must be open in svc. */
int online_routes_build(const struct p11pki_binding *b, struct online_service *svc, struct online_routes **out);
void online_routes_free(struct online_routes *r);
/* The CA names a binding uses (est targets, ocsp, crls), appended to
 * names[*n] (up to max, no duplicates), and those of ocsp and crls
 * separately: what online_service_open needs. */
int online_binding_cas(const struct p11pki_binding *b, char **names, size_t *n, char **ocsp, size_t *n_ocsp,
		       char **crls, size_t *n_crls, size_t max);

/* Returns 1 and fills rs when rq is for one of the routes (the caller
 * writes rs), 0 when the path is not an online one (proxy it). */
int online_route(struct online_service *svc, const struct online_routes *r, const struct online_request *rq,
		 struct online_response *rs);
/* Whether path belongs to the online routes of r (to read the body first). */
int online_route_match(const struct online_routes *r, const char *path);

#endif
