/* p11pki CA layer: certificate profiles, issuing certificates and CRLs
 * with keys on tokens, and the CA operations over the store. */
#ifndef P11PKI_CA_H
#define P11PKI_CA_H

#include <time.h>
#include <openssl/x509.h>
#include <openssl/conf.h>
#include <p11pki/core.h>
#include <p11pki/token.h>
#include <p11pki/x509.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Profiles ---------------------------------------------------------- */

#define P11PKI_PROFILE_MAX_PATTERNS 16

/* What a certificate of one kind carries and what a request for it must
 * satisfy. Built-ins: server, client, subca, ocsp; a config section
 * [ profile_NAME ] adds or overrides. */
struct p11pki_profile {
	char name[32];
	int is_ca, pathlen;	      /* pathlen -1: none */
	unsigned long key_usage;      /* KU_* bits from x509v3.h */
	int eku[4], n_eku;	      /* NIDs */
	int require_san;	      /* server: at least one subjectAltName */
	int ocsp_nocheck;	      /* ocsp: id-pkix-ocsp-nocheck */
	unsigned default_days, max_days;
	char *allowed_dns[P11PKI_PROFILE_MAX_PATTERNS];	/* owned; none: any */
	size_t n_allowed_dns;
	struct p11pki_key_rules key_rules;
};

/* Fills a built-in profile; P11PKI_E_NOTFOUND for an unknown name. */
P11PKI_API int p11pki_profile_builtin(const char *name, struct p11pki_profile *out);
/* Loads a profile: the built-in of that name (if any) overridden by the
 * config section [ profile_NAME ] (keys: default_days, max_days,
 * allowed_dns, key_types, rsa_min_bits, require_san, extended_key_usage).
 * conf may be NULL. Unknown keys are P11PKI_E_ARG naming the key. */
P11PKI_API int p11pki_profile_load(const CONF *conf, const char *name, struct p11pki_profile *out);
P11PKI_API void p11pki_profile_clear(struct p11pki_profile *p);

/* ---- Building certificates -------------------------------------------- */

struct p11pki_cert_template {
	const X509_NAME *subject;
	EVP_PKEY *public_key;		/* of the subject */
	const GENERAL_NAMES *sans;	/* may be NULL */
	X509 *issuer;			/* NULL: self-signed */
	time_t not_before, not_after;
	const struct p11pki_profile *profile;
	const char *crl_url, *ocsp_url, *issuers_url; /* may be NULL */
};

/* Builds and signs a certificate with a random positive 128-bit serial.
 * signer is the issuer's key (a token key from p11pki_key_load). */
P11PKI_API int p11pki_cert_build(const struct p11pki_cert_template *tmpl, EVP_PKEY *signer, X509 **out);
/* The digest p11pki signs with for a key: SHA-384 for P-384, else SHA-256. */
P11PKI_API const EVP_MD *p11pki_digest_for(EVP_PKEY *key);

/* Builds a PKCS#10 request signed by key (on the token). */
P11PKI_API int p11pki_csr_build(EVP_PKEY *key, const X509_NAME *subject, const GENERAL_NAMES *sans, X509_REQ **out);

/* ---- The CA ------------------------------------------------------------ */

typedef struct p11pki_ca p11pki_ca;

/* CA settings from [ ca_NAME ] of the config (conf may be NULL):
 * default_days (365), default_crl_days (30), policy (a section of
 * match/supplied/optional lines), crl_url, ocsp_url, issuers_url,
 * past_issuer = cap | refuse (cap). */
struct p11pki_ca_settings {
	unsigned default_days, default_crl_days;
	int has_default_days;	/* set in the config: wins over the profile's */
	struct p11pki_policy policy;
	int has_policy;
	char *crl_url, *ocsp_url, *issuers_url;
	int refuse_past_issuer;
};
P11PKI_API int p11pki_ca_settings_load(const CONF *conf, const char *ca_name, struct p11pki_ca_settings *out);
P11PKI_API void p11pki_ca_settings_clear(struct p11pki_ca_settings *s);

/* Revocation reasons by RFC 5280 name ("keyCompromise"); -1 if unknown. */
P11PKI_API int p11pki_crl_reason_parse(const char *name);
P11PKI_API const char *p11pki_crl_reason_name(int code);

/* Parses "30d", "12h", "3600s", "2w" into seconds. */
P11PKI_API int p11pki_duration_parse(const char *text, long *seconds);

/* Builds a v2 CRL: CRL number, AKI, one entry per revoked certificate
 * with its reason, nextUpdate = now + days. */
struct p11pki_revoked { const char *serial_hex; time_t when; int reason; };
P11PKI_API int p11pki_crl_build(X509 *ca_cert, EVP_PKEY *ca_key, const struct p11pki_revoked *revoked, size_t n,
				unsigned long long number, unsigned days, X509_CRL **out);

/* ---- CA operations ------------------------------------------------------ */

typedef struct p11pki_store p11pki_store; /* see src/ca/store.h */
typedef struct p11pki_ca p11pki_ca;

struct p11pki_ca_create {
	const char *name;		/* "root", "issuing" */
	const char *parent;		/* NULL: a self-signed root */
	const X509_NAME *subject;
	struct p11pki_keytype type;
	unsigned days;			/* 0: the profile's default */
};

/* Creates a CA: a key generated on token t (label = name), its
 * certificate (self-signed, or signed by the parent CA, whose key is on
 * parent_token), stored on the token next to the key and in the store.
 * Caller frees *cert_out (may be NULL). */
P11PKI_API int p11pki_ca_create(p11pki_store *st, const CONF *conf, const struct p11pki_ca_create *p,
				p11pki_token *t, p11pki_token *parent_token, X509 **cert_out);

/* The PKCS#11 URI of a CA's key, to open and log in to its token.
 * Caller frees. */
P11PKI_API int p11pki_ca_key_uri(p11pki_store *st, const char *name, char **uri);

/* Opens a CA: its certificate and chain from the store, its settings
 * from conf, its key on the (logged-in) token t. */
P11PKI_API int p11pki_ca_open(p11pki_store *st, const CONF *conf, const char *name, p11pki_token *t, p11pki_ca **out);
/* The same with a CA key already at hand (another token, or a software
 * key for comparisons); takes its own reference to key. */
P11PKI_API int p11pki_ca_open_key(p11pki_store *st, const CONF *conf, const char *name, EVP_PKEY *key,
				  p11pki_ca **out);
P11PKI_API void p11pki_ca_close(p11pki_ca *ca);
P11PKI_API X509 *p11pki_ca_cert(const p11pki_ca *ca); /* borrowed */
P11PKI_API EVP_PKEY *p11pki_ca_key(const p11pki_ca *ca); /* borrowed; NULL when opened without one */

struct p11pki_issue {
	const char *profile;	/* server, client, subca, ocsp, or a configured one */
	X509_REQ *csr;
	unsigned days;		/* 0: default */
	const char *requester;	/* recorded in the store */
};
/* Checks the request against the CA's policy and the profile, issues the
 * certificate, and commits its row before returning it. */
P11PKI_API int p11pki_ca_issue(p11pki_ca *ca, const struct p11pki_issue *req, X509 **out);
/* Signs a CRL of the CA's revoked certificates with the next CRL number. */
P11PKI_API int p11pki_ca_crl(p11pki_ca *ca, X509_CRL **out);
/* Revokes a certificate by serial (hex, colons and case ignored). */
P11PKI_API int p11pki_ca_revoke(p11pki_store *st, const char *ca_name, const char *serial, int reason);
/* Normalises a serial: uppercase hex without colons or leading zeros. */
P11PKI_API int p11pki_serial_normalize(const char *in, char *out, size_t size);
/* The serial of a certificate as normalised hex. Caller frees. */
P11PKI_API char *p11pki_cert_serial_hex(X509 *cert);

#ifdef __cplusplus
}
#endif
#endif
