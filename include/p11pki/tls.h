/* p11pki tls layer: the serve configuration, TLS contexts whose keys are
 * on tokens, bindings by address, port and SNI host, and the server. */
#ifndef P11PKI_TLS_H
#define P11PKI_TLS_H

#include <stddef.h>
#include <p11pki/core.h>

#ifdef __cplusplus
extern "C" {
#endif

#define P11PKI_MAX_BINDINGS 64
#define P11PKI_MAX_BACKENDS 16
#define P11PKI_MAX_ALLOW 16
#define P11PKI_MAX_EST_LABELS 15

enum p11pki_client_auth { P11PKI_CLIENT_NONE = 0, P11PKI_CLIENT_OPTIONAL, P11PKI_CLIENT_REQUIRE };
enum p11pki_mode { P11PKI_MODE_TCP = 0, P11PKI_MODE_HTTP };

struct p11pki_endpoint {
	char host[256];		/* "0.0.0.0", "::", "*", "127.0.0.1", a name */
	unsigned short port;	/* 0: pick a free port (listeners only) */
};

struct p11pki_allow_list {
	char *items[P11PKI_MAX_ALLOW];
	size_t n;		/* 0: no restriction */
};

/* est_label_NAME = CA/profile */
struct p11pki_est_label {
	char *label, *target;
};

/* One [ binding ] section. Strings are owned by the config. */
struct p11pki_binding {
	char *name;			/* section name */
	int line;			/* where the section starts, for messages */
	struct p11pki_endpoint listen;
	char *sni;			/* NULL: the listener's default */
	char *cert;			/* PKCS#11 URI, PEM file, or sha1:/sha256: thumbprint */
	char *key;			/* PKCS#11 URI */
	char *chain;			/* PEM file or comma list of URIs/files */
	enum p11pki_client_auth client_auth;
	char *client_ca, *crl;		/* PEM files */
	struct p11pki_allow_list allow_cn, allow_ou, allow_dns, allow_uri, allow_email;
	enum p11pki_mode mode;
	struct p11pki_endpoint backends[P11PKI_MAX_BACKENDS];
	size_t n_backends;
	int health_http;		/* 0: tcp connect check, 1: HTTP GET health_path */
	char *health_path;
	unsigned health_interval_ms, health_fall, health_rise;
	int min_tls12, tls13;		/* protocols: TLS 1.2 and/or 1.3 */
	char *ciphers, *ciphersuites;	/* OpenSSL syntax, already vetted */
	unsigned session_timeout_s, handshake_timeout_ms, idle_timeout_ms, max_connections;
	int session_cache;		/* session_tickets = off: sessions stay in memory */
	/* the CA online (http mode): EST, OCSP, CRLs */
	char *est;			/* "CA/profile" of /.well-known/est/ */
	struct p11pki_est_label est_labels[P11PKI_MAX_EST_LABELS];
	size_t n_est_labels;
	char *ocsp, *crls;		/* comma lists of CA names */
};

struct p11pki_serve_config {
	char *path;
	struct p11pki_binding bindings[P11PKI_MAX_BINDINGS];
	size_t n_bindings;
	int has_admin;
	struct p11pki_endpoint admin;
	unsigned workers;		/* 0: one per core */
	unsigned signing_threads;	/* token signatures in flight; 0: the default */
	char *pid_file, *bound_file;
	char *module, *pin_source;	/* token access for the keys */
};

/* Reads a serve configuration (OpenSSL config syntax: [ section ],
 * key = value, # comments). Unknown sections and keys, bad values, weak
 * protocols or ciphers (SSLv2/3, TLS 1.0/1.1, RC4, export, NULL, MD5) and
 * duplicate bindings are P11PKI_E_ARG with "FILE:LINE: ..." naming the
 * setting. Caller frees with p11pki_serve_config_free. */
P11PKI_API int p11pki_serve_config_load(const char *path, struct p11pki_serve_config **out);
/* The same from a memory buffer (name is used in messages). */
P11PKI_API int p11pki_serve_config_parse(const char *name, const char *text, size_t len,
					 struct p11pki_serve_config **out);
P11PKI_API void p11pki_serve_config_free(struct p11pki_serve_config *cfg);

#ifdef __cplusplus
}
#endif
#endif
