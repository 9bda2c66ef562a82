/* The store of what a CA issued: an interface, so that a PostgreSQL
 * backend can serve several CA nodes later; SQLite (store_sqlite.c) is the
 * embedded default. Every write is one transaction; a certificate is
 * handed out only after p11pki_store_cert_add has committed its row. */
#ifndef P11PKI_CA_STORE_H
#define P11PKI_CA_STORE_H

#include <stddef.h>
#include <time.h>

#include <p11pki/core.h>

#define P11PKI_STORE_SCHEMA_VERSION 2

typedef struct p11pki_store p11pki_store;

/* A CA known to the store. Strings are owned by the record. */
struct p11pki_store_ca {
	char *name;	  /* "issuing" */
	char *parent;	  /* name of the issuing CA, NULL for a root */
	char *key_uri;	  /* PKCS#11 URI of the CA key */
	char *cert_pem;	  /* the CA's certificate */
	char *chain_pem;  /* its issuers up to the root, PEM, may be NULL */
	char *config;	  /* CA settings as "key = value" lines, may be NULL */
	time_t created;
};

enum p11pki_cert_status { P11PKI_CERT_VALID = 0, P11PKI_CERT_REVOKED = 1 };

/* An issued certificate. */
struct p11pki_store_cert {
	char *ca;		/* issuing CA name */
	char *serial;		/* uppercase hex, no leading zeros */
	char *subject;		/* RFC 4514 */
	char *sans;		/* "dns:a, dns:b" */
	char *profile;		/* server, client, subca, ocsp */
	char *requester;	/* who asked (CLI user, EST user, ...) */
	char *pem;
	time_t not_before, not_after, issued;
	enum p11pki_cert_status status;
	time_t revoked;		/* 0 unless revoked */
	int reason;		/* CRL reason code (RFC 5280), -1 none */
};

/* Opens (creating if needed, mode 0600) and migrates the database; WAL
 * mode and a busy timeout let several processes issue at once. */
P11PKI_API int p11pki_store_open(const char *path, p11pki_store **out);
/* Opens the store at the first of: explicit_path (a setting naming it for
 * this program, may be NULL), $P11PKI_STORE, configured (`store` of
 * [ p11pki ], may be NULL), $P11PKI_HOME/ca.db. */
P11PKI_API int p11pki_store_open_default(const char *explicit_path, const char *configured, p11pki_store **st);
P11PKI_API void p11pki_store_close(p11pki_store *st);
/* Schema version found in the file (after migration: the current one). */
P11PKI_API int p11pki_store_schema_version(p11pki_store *st);

/* CAs. add fails with P11PKI_E_EXISTS for a taken name. get fills *out
 * (caller frees with p11pki_store_ca_clear) or P11PKI_E_NOTFOUND. */
P11PKI_API int p11pki_store_ca_add(p11pki_store *st, const struct p11pki_store_ca *ca);
P11PKI_API int p11pki_store_ca_get(p11pki_store *st, const char *name, struct p11pki_store_ca *out);
P11PKI_API int p11pki_store_ca_update_cert(p11pki_store *st, const char *name, const char *cert_pem, const char *chain_pem);
P11PKI_API int p11pki_store_ca_names(p11pki_store *st, char ***names, size_t *n); /* free each + array */
P11PKI_API void p11pki_store_ca_clear(struct p11pki_store_ca *ca);

/* Certificates. add commits one row in its own transaction; a serial
 * already used by that CA is P11PKI_E_EXISTS (the caller draws another). */
P11PKI_API int p11pki_store_cert_add(p11pki_store *st, const struct p11pki_store_cert *c);
P11PKI_API int p11pki_store_cert_get(p11pki_store *st, const char *ca, const char *serial, struct p11pki_store_cert *out);
/* Marks a certificate revoked at `when` with an RFC 5280 reason code.
 * P11PKI_E_NOTFOUND for an unknown serial, P11PKI_E_EXISTS if already
 * revoked. */
P11PKI_API int p11pki_store_cert_revoke(p11pki_store *st, const char *ca, const char *serial, time_t when, int reason);

struct p11pki_store_filter {
	int revoked_only;	/* only revoked */
	time_t expiring_before;	/* 0: any; else valid ones with not_after < this */
	int include_expired;	/* with revoked_only: keep expired revoked ones */
};
/* Lists a CA's certificates, oldest first. Caller frees with
 * p11pki_store_cert_list_free. */
P11PKI_API int p11pki_store_cert_list(p11pki_store *st, const char *ca, const struct p11pki_store_filter *f,
			   struct p11pki_store_cert **out, size_t *n);
P11PKI_API void p11pki_store_cert_list_free(struct p11pki_store_cert *certs, size_t n);
P11PKI_API void p11pki_store_cert_clear(struct p11pki_store_cert *c);
/* Number of certificates a CA issued. */
P11PKI_API int p11pki_store_cert_count(p11pki_store *st, const char *ca, size_t *n);

/* CRL numbers: returns the next number (1, 2, ...) for a CA, atomically. */
P11PKI_API int p11pki_store_next_crl_number(p11pki_store *st, const char *ca, unsigned long long *out);

/* An EST enrollment user (schema 2): who may enroll at the EST labels
 * serving CA `ca` with profile `profile`. Only a hash of the secret is
 * kept (src/online/secret_hash.h). Strings are owned by the record. */
struct p11pki_store_est_user {
	char *name;
	char *ca;
	char *profile;
	char *secret_hash;
	time_t created;
	int disabled;
};

/* add fails with P11PKI_E_EXISTS for a taken name and P11PKI_E_NOTFOUND
 * for an unknown CA; get and delete with P11PKI_E_NOTFOUND for an
 * unknown user. get fills *out (free with p11pki_store_est_user_clear). */
P11PKI_API int p11pki_store_est_user_add(p11pki_store *st, const struct p11pki_store_est_user *u);
P11PKI_API int p11pki_store_est_user_get(p11pki_store *st, const char *name, struct p11pki_store_est_user *out);
P11PKI_API int p11pki_store_est_user_delete(p11pki_store *st, const char *name);
/* Every user, by name. Free with p11pki_store_est_user_list_free. */
P11PKI_API int p11pki_store_est_user_list(p11pki_store *st, struct p11pki_store_est_user **out, size_t *n);
P11PKI_API void p11pki_store_est_user_list_free(struct p11pki_store_est_user *users, size_t n);
P11PKI_API void p11pki_store_est_user_clear(struct p11pki_store_est_user *u);

#endif
