/* Private to p11pki: what the `serve` and `bindings` commands call. Kept
 * out of <p11pki/tls.h> until the server's interface settles. */
#ifndef P11PKI_TLS_SERVE_H
#define P11PKI_TLS_SERVE_H

#include <stddef.h>

#include <p11pki/tls.h>

/* Runs the server in the foreground until SIGTERM or SIGINT (drain, then
 * return 0). Takes cfg. pin_source (may be NULL) overrides [ serve ]
 * pin_source; with neither, the PIN is prompted for on the terminal.
 * Start-up refusals return a negative code with one line in
 * p11pki_errmsg(). Logs through p11pki_log. */
P11PKI_API int p11pki_serve_run(struct p11pki_serve_config *cfg, const char *pin_source);

/* What `bindings show` prints for one binding. */
struct p11pki_binding_view {
	const struct p11pki_binding *b;	/* in the config passed in */
	char listener[300];		/* "host:port" as configured */
	char *subject;			/* RFC 4514; NULL when the certificate is unreadable */
	char *issuer;
	char sha1[64], sha256[100];	/* "AB:CD:..." as openssl x509 -fingerprint */
	char not_after[40];		/* "2026-01-01 00:00:00 UTC" */
	int expired;
	int chain_len;			/* certificates sent after the leaf */
	char error[512];		/* why the certificate could not be read */
};

/* Reads every binding's certificate (no private key is touched; the
 * token is logged in only when a PIN source is given). Caller frees
 * *views with p11pki_binding_views_free. */
P11PKI_API int p11pki_bindings_show(const struct p11pki_serve_config *cfg, const char *pin_source,
				    struct p11pki_binding_view **views, size_t *n);
P11PKI_API void p11pki_binding_views_free(struct p11pki_binding_view *views, size_t n);

/* Everything serve checks before it starts: duplicate bindings, keys,
 * certificates, key/certificate match, expiry, SNI names, free ports.
 * report is called once per binding (msg NULL: fine) and once per
 * problem not tied to one binding (name NULL). Returns 0 when all is
 * well, P11PKI_E_ARG when something would stop serve, another negative
 * code when the checks could not run. */
typedef void (*p11pki_check_report)(const char *binding, const char *msg, void *arg);
P11PKI_API int p11pki_bindings_check(const struct p11pki_serve_config *cfg, const char *pin_source,
				     p11pki_check_report report, void *arg);

#endif
