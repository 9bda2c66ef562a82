/* Client certificates: the trust store (client CAs and CRL), the verify
 * callback with the allow-lists, and the reasons a certificate fails,
 * which name metrics and reach the backend in X-Client-Verify. */
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <p11pki/x509.h>

#include "core/text.h"
#include "tls/files.h"
#include "tls/server.h"

#define VERIFY_DEPTH 8

static const char *const reason_names[TLS_AUTH_N] = {
	"ok", "no-certificate", "untrusted", "expired", "not-yet-valid", "revoked", "crl-problem",
	"not-allowed", "other",
};

const char *tls_auth_reason_name(int reason)
{
	return reason >= 0 && reason < TLS_AUTH_N ? reason_names[reason] : "other";
}

int tls_auth_reason_of(long e)
{
	switch (e) {
	case X509_V_OK: return TLS_AUTH_OK;
	case X509_V_ERR_CERT_HAS_EXPIRED: return TLS_AUTH_EXPIRED;
	case X509_V_ERR_CERT_NOT_YET_VALID: return TLS_AUTH_NOT_YET_VALID;
	case X509_V_ERR_CERT_REVOKED: return TLS_AUTH_REVOKED;
	case X509_V_ERR_UNABLE_TO_GET_CRL:
	case X509_V_ERR_CRL_HAS_EXPIRED:
	case X509_V_ERR_CRL_NOT_YET_VALID:
	case X509_V_ERR_CRL_SIGNATURE_FAILURE:
	case X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE:
	case X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER:
		return TLS_AUTH_CRL;
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_CERT_UNTRUSTED:
	case X509_V_ERR_CERT_SIGNATURE_FAILURE:
	case X509_V_ERR_CERT_CHAIN_TOO_LONG:
	case X509_V_ERR_INVALID_CA:
		return TLS_AUTH_UNTRUSTED;
	case X509_V_ERR_APPLICATION_VERIFICATION: return TLS_AUTH_NOT_ALLOWED;
	default: return TLS_AUTH_OTHER;
	}
}

/* ---- allow-lists ------------------------------------------------------ */

/* The n-th value of a name attribute as UTF-8 in buf; 0 past the end. */
static int name_value(X509_NAME *name, int nid, int *pos, char *buf, size_t size)
{
	unsigned char *utf8 = NULL;
	int len;

	*pos = X509_NAME_get_index_by_NID(name, nid, *pos);
	if (*pos < 0)
		return 0;
	len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, *pos)));
	buf[0] = '\0';
	/* an embedded NUL or an oversize value never matches */
	if (len >= 0 && (size_t)len < size && memchr(utf8, 0, (size_t)len) == NULL) {
		memcpy(buf, utf8, (size_t)len);
		buf[len] = '\0';
	}
	OPENSSL_free(utf8);
	return 1;
}

static int in_list(const struct p11pki_allow_list *l, const char *v, int host)
{
	size_t i;

	for (i = 0; i < l->n; i++) {
		if (host ? p11pki_host_pattern_match(l->items[i], v) : strcasecmp(l->items[i], v) == 0)
			return 1;
	}
	return 0;
}

static int name_matches(X509 *cert, int nid, const struct p11pki_allow_list *l)
{
	char v[1024];
	int pos = -1;

	while (name_value(X509_get_subject_name(cert), nid, &pos, v, sizeof(v)))
		if (v[0] != '\0' && in_list(l, v, 0))
			return 1;
	return 0;
}

static int san_matches(X509 *cert, int type, const struct p11pki_allow_list *l)
{
	GENERAL_NAMES *sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	char v[1024];
	int i, found = 0;

	for (i = 0; i < sk_GENERAL_NAME_num(sans) && !found; i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
		const ASN1_STRING *s;
		int len;

		if (gn->type != type)
			continue;
		s = gn->d.ia5;
		len = ASN1_STRING_length(s);
		if (len <= 0 || (size_t)len >= sizeof(v) || memchr(ASN1_STRING_get0_data(s), 0, (size_t)len) != NULL)
			continue;
		memcpy(v, ASN1_STRING_get0_data(s), (size_t)len);
		v[len] = '\0';
		found = in_list(l, v, type == GEN_DNS);
	}
	GENERAL_NAMES_free(sans);
	return found;
}

int tls_site_allowed(const struct p11pki_binding *b, X509 *cert, char *why, size_t why_size)
{
	why[0] = '\0';
	if (b->allow_cn.n > 0 && !name_matches(cert, NID_commonName, &b->allow_cn))
		return snprintf(why, why_size, "its CN is not in allow_cn"), 0;
	if (b->allow_ou.n > 0 && !name_matches(cert, NID_organizationalUnitName, &b->allow_ou))
		return snprintf(why, why_size, "its OU is not in allow_ou"), 0;
	if (b->allow_dns.n > 0 && !san_matches(cert, GEN_DNS, &b->allow_dns))
		return snprintf(why, why_size, "no DNS name of it is in allow_dns"), 0;
	if (b->allow_uri.n > 0 && !san_matches(cert, GEN_URI, &b->allow_uri))
		return snprintf(why, why_size, "no URI of it is in allow_uri"), 0;
	if (b->allow_email.n > 0 && !san_matches(cert, GEN_EMAIL, &b->allow_email) &&
	    !name_matches(cert, NID_pkcs9_emailAddress, &b->allow_email))
		return snprintf(why, why_size, "no e-mail address of it is in allow_email"), 0;
	return 1;
}

/* ---- the verify callback --------------------------------------------- */

/* Require mode rejects at the handshake; optional mode lets it through
 * and remembers the first reason, which the backend then hears. */
static int verify_cb(int ok, X509_STORE_CTX *x)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct tls_conn *c = ssl != NULL ? SSL_get_app_data(ssl) : NULL;
	const struct p11pki_binding *b;
	char why[128];
	int optional;

	if (c == NULL || c->magic != TLS_CONN_MAGIC || c->site == NULL)
		return ok;
	b = c->site->b;
	optional = b->client_auth == P11PKI_CLIENT_OPTIONAL;
	if (!ok) {
		if (c->auth_reason == TLS_AUTH_OK)
			c->auth_reason = tls_auth_reason_of(X509_STORE_CTX_get_error(x));
		return optional;
	}
	if (X509_STORE_CTX_get_error_depth(x) == 0 &&
	    !tls_site_allowed(b, X509_STORE_CTX_get_current_cert(x), why, sizeof(why))) {
		if (c->auth_reason == TLS_AUTH_OK)
			c->auth_reason = TLS_AUTH_NOT_ALLOWED;
		X509_STORE_CTX_set_error(x, X509_V_ERR_APPLICATION_VERIFICATION);
		p11pki_log(P11PKI_LOG_DEBUG, "client %s: certificate refused: %s", c->client_ip, why);
		return optional;
	}
	return ok;
}

/* ---- set-up ------------------------------------------------------------ */

int tls_client_auth_setup(struct tls_site *s, const char *where)
{
	const struct p11pki_binding *b = s->b;
	STACK_OF(X509) *cas = NULL;
	STACK_OF(X509_CRL) *crls = NULL;
	X509_STORE *store = NULL;
	int i, r = P11PKI_OK;

	if (b->client_auth == P11PKI_CLIENT_NONE) {
		SSL_CTX_set_verify(s->ctx, SSL_VERIFY_NONE, NULL);
		return P11PKI_OK;
	}
	if (b->client_ca == NULL)
		return p11pki_fail(P11PKI_E_ARG, "%s: client_auth %s needs client_ca", where,
				   b->client_auth == P11PKI_CLIENT_REQUIRE ? "require" : "optional");
	if ((r = tls_read_certs(b->client_ca, &cas)) != 0) {
		r = tls_fail_wrapf(r, "%s: client_ca", where);
		goto out;
	}
	if (b->crl != NULL && (r = tls_read_crls(b->crl, &crls)) != 0) {
		r = tls_fail_wrapf(r, "%s: crl", where);
		goto out;
	}
	if ((store = X509_STORE_new()) == NULL) {
		r = p11pki_fail(P11PKI_E_NOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < sk_X509_num(cas); i++) {
		if (!X509_STORE_add_cert(store, sk_X509_value(cas, i)) ||
		    !SSL_CTX_add_client_CA(s->ctx, sk_X509_value(cas, i))) {
			r = p11pki_fail(P11PKI_E_CRYPTO, "%s: cannot use client_ca %s", where, b->client_ca);
			goto out;
		}
	}
	for (i = 0; i < sk_X509_CRL_num(crls); i++) {
		const ASN1_TIME *next = X509_CRL_get0_nextUpdate(sk_X509_CRL_value(crls, i));
		if (!X509_STORE_add_crl(store, sk_X509_CRL_value(crls, i))) {
			r = p11pki_fail(P11PKI_E_CRYPTO, "%s: cannot use crl %s", where, b->crl);
			goto out;
		}
		if (next != NULL && X509_cmp_current_time(next) < 0)
			p11pki_log(P11PKI_LOG_WARN, "%s: crl %s is past its next update: clients will be refused",
				   where, b->crl);
	}
	if (crls != NULL)
		X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
	/* the context owns the store from here */
	SSL_CTX_set_cert_store(s->ctx, store);
	s->client_store = store;
	store = NULL;
	SSL_CTX_set_verify(s->ctx,
			   SSL_VERIFY_PEER | (b->client_auth == P11PKI_CLIENT_REQUIRE ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
			   verify_cb);
	SSL_CTX_set_verify_depth(s->ctx, VERIFY_DEPTH);
out:
	if (r != 0)
		ERR_clear_error();
	X509_STORE_free(store);
	sk_X509_pop_free(cas, X509_free);
	sk_X509_CRL_pop_free(crls, X509_CRL_free);
	return r;
}

int tls_client_auth_result(struct tls_conn *c, SSL *ssl, X509 *peer)
{
	char why[128];
	int reason = c->auth_reason;

	if (peer == NULL)
		return TLS_AUTH_OK;
	if (reason == TLS_AUTH_OK)
		reason = tls_auth_reason_of(SSL_get_verify_result(ssl));
	/* a resumed session skipped the verify callback */
	if (reason == TLS_AUTH_OK && !tls_site_allowed(c->site->b, peer, why, sizeof(why)))
		reason = TLS_AUTH_NOT_ALLOWED;
	return reason;
}
