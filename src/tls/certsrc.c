/* Where a binding's certificate and chain come from: a PEM file, a
 * PKCS#11 URI, or a sha1:/sha256: thumbprint among the certificates on its
 * key's token (as IIS names certificates); with no `cert` at all, the
 * certificate that shares the key's id and label. A chain is a PEM file or
 * a comma list of URIs and files; without one, a token certificate gets
 * the chain built from the token's CA certificates, and a PEM file the
 * certificates that follow the leaf. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include <p11pki/x509.h>

#include "core/text.h"
#include "tls/files.h"
#include "tls/server.h"

#define CHAIN_MAX 16

struct source {
	const struct p11pki_binding *b;
	struct tls_tokens *tk;
	struct p11pki_uri *key;		/* the binding's key URI */
	char where[200];
};

static int is_uri(const char *s)
{
	return strncmp(s, "pkcs11:", 7) == 0;
}

/* The certificates on the token sel names (or, when it names none, on the
 * key's token) that filter selects. */
static int token_certs(struct source *s, const struct p11pki_uri *sel, const struct p11pki_uri *filter,
		       struct p11pki_cert_info **certs, size_t *n)
{
	p11pki_token *t;
	int r;

	if (sel->token == NULL && sel->serial == NULL && sel->model == NULL && sel->manufacturer == NULL &&
	    !sel->has_slot_id)
		sel = s->key;
	if ((r = tls_tokens_get(s->tk, sel, &t, NULL)) != 0)
		return tls_fail_wrap(r, s->where);
	if ((r = p11pki_cert_list(t, filter, certs, n)) != 0)
		return tls_fail_wrap(r, s->where);
	return P11PKI_OK;
}

/* The one end-entity certificate among certs (a CA certificate only when
 * it is the only match). */
static int pick_one(struct source *s, struct p11pki_cert_info *certs, size_t n, const char *what, X509 **leaf)
{
	char shown[TLS_URI_SHOWN];
	size_t i, found = n, ee = 0;

	for (i = 0; i < n; i++) {
		if (!certs[i].is_ca) {
			ee++;
			found = i;
		}
	}
	if (n == 1)
		found = 0;
	else if (ee != 1)
		found = n;
	if (n == 0)
		return p11pki_fail(P11PKI_E_NOTFOUND, "%s: no certificate on the token matches %s", s->where,
				   p11pki_shown(what, shown, sizeof(shown)));
	if (found == n)
		return p11pki_fail(P11PKI_E_ARG, "%s: %zu certificates match %s; name one by id= or thumbprint",
				   s->where, n, p11pki_shown(what, shown, sizeof(shown)));
	X509_up_ref(certs[found].cert);
	*leaf = certs[found].cert;
	return P11PKI_OK;
}

static int from_uri(struct source *s, const char *text, X509 **leaf)
{
	struct p11pki_uri *u = NULL;
	struct p11pki_cert_info *certs = NULL;
	char shown[TLS_URI_SHOWN];
	size_t n = 0;
	int r;

	if ((r = p11pki_uri_parse(text, &u)) != 0) {
		r = tls_fail_wrapf(r, "%s: cert %s", s->where, p11pki_shown(text, shown, sizeof(shown)));
		goto out;
	}
	if (u->type == P11PKI_OBJ_ANY)
		u->type = P11PKI_OBJ_CERT;
	if ((r = token_certs(s, u, u, &certs, &n)) == 0)
		r = pick_one(s, certs, n, text, leaf);
out:
	p11pki_cert_info_free(certs, n);
	p11pki_uri_free(u);
	return r;
}

/* The certificate that shares the key's id and label. */
static int from_key(struct source *s, X509 **leaf)
{
	struct p11pki_uri filter;
	struct p11pki_cert_info *certs = NULL;
	size_t n = 0;
	int r;

	filter = *s->key; /* shallow: only read */
	filter.type = P11PKI_OBJ_CERT;
	if ((r = token_certs(s, s->key, &filter, &certs, &n)) == 0)
		r = pick_one(s, certs, n, s->b->key, leaf);
	p11pki_cert_info_free(certs, n);
	return r;
}

/* "sha1:AB:CD..." or "sha256:abcd..." to lower-case hex; 0 when malformed. */
static int thumbprint_hex(const char *text, const EVP_MD **md, char *hex, size_t size)
{
	const char *p;
	size_t n = 0, want;

	if (strncmp(text, "sha1:", 5) == 0) {
		*md = EVP_sha1();
		p = text + 5;
	} else if (strncmp(text, "sha256:", 7) == 0) {
		*md = EVP_sha256();
		p = text + 7;
	} else
		return 0;
	want = 2 * (size_t)EVP_MD_get_size(*md);
	for (; *p != '\0'; p++) {
		if (*p == ':' || *p == ' ')
			continue;
		if (p11pki_hexval((unsigned char)*p) < 0 || n + 1 >= size)
			return 0;
		hex[n++] = (char)tolower((unsigned char)*p);
	}
	hex[n] = '\0';
	return n == want;
}

static void digest_hex(X509 *cert, const EVP_MD *md, char *hex, size_t size)
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned len = 0, i;

	hex[0] = '\0';
	if (X509_digest(cert, md, d, &len) != 1 || size < 2 * (size_t)len + 1)
		return;
	for (i = 0; i < len; i++)
		snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

static int from_thumbprint(struct source *s, const char *text, X509 **leaf)
{
	struct p11pki_cert_info *certs = NULL;
	const EVP_MD *md = NULL;
	char want[2 * EVP_MAX_MD_SIZE + 1], got[2 * EVP_MAX_MD_SIZE + 1], shown[TLS_URI_SHOWN];
	size_t n = 0, i;
	int r;

	if (!thumbprint_hex(text, &md, want, sizeof(want)))
		return p11pki_fail(P11PKI_E_ARG, "%s: cert %s is not a file, a pkcs11: URI or a sha1:/sha256: thumbprint",
				   s->where, p11pki_shown(text, shown, sizeof(shown)));
	if ((r = token_certs(s, s->key, NULL, &certs, &n)) != 0)
		goto out;
	r = p11pki_fail(P11PKI_E_NOTFOUND, "%s: no certificate on token '%s' has thumbprint %s", s->where,
			s->key->token != NULL ? s->key->token : "", p11pki_shown(text, shown, sizeof(shown)));
	for (i = 0; i < n; i++) {
		digest_hex(certs[i].cert, md, got, sizeof(got));
		if (strcmp(got, want) == 0) {
			X509_up_ref(certs[i].cert);
			*leaf = certs[i].cert;
			p11pki_error_clear();
			r = P11PKI_OK;
			break;
		}
	}
out:
	p11pki_cert_info_free(certs, n);
	return r;
}

static int from_file(struct source *s, const char *path, X509 **leaf, STACK_OF(X509) **rest)
{
	STACK_OF(X509) *all = NULL;
	int r;

	if ((r = tls_read_certs(path, &all)) != 0)
		return tls_fail_wrap(r, s->where);
	*leaf = sk_X509_shift(all);
	*rest = all;
	return P11PKI_OK;
}

static int push_all(STACK_OF(X509) *into, STACK_OF(X509) *from, int up_ref)
{
	int i;

	for (i = 0; i < sk_X509_num(from); i++) {
		X509 *x = sk_X509_value(from, i);
		if (sk_X509_num(into) >= CHAIN_MAX || !sk_X509_push(into, x))
			return 0;
		if (up_ref)
			X509_up_ref(x);
	}
	return 1;
}

/* One item of `chain`: a URI (every certificate it selects) or a file. */
static int chain_item(struct source *s, const char *item, STACK_OF(X509) *chain)
{
	struct p11pki_uri *u = NULL;
	struct p11pki_cert_info *certs = NULL;
	STACK_OF(X509) *file = NULL;
	char shown[TLS_URI_SHOWN];
	size_t n = 0, i;
	int r = P11PKI_OK;

	if (is_uri(item)) {
		if ((r = p11pki_uri_parse(item, &u)) != 0) {
			r = tls_fail_wrapf(r, "%s: chain %s", s->where, p11pki_shown(item, shown, sizeof(shown)));
			goto out;
		}
		u->type = P11PKI_OBJ_CERT;
		if ((r = token_certs(s, u, u, &certs, &n)) != 0)
			goto out;
		if (n == 0) {
			r = p11pki_fail(P11PKI_E_NOTFOUND, "%s: no certificate on the token matches chain %s", s->where,
					p11pki_shown(item, shown, sizeof(shown)));
			goto out;
		}
		for (i = 0; i < n && r == 0; i++) {
			if (sk_X509_num(chain) >= CHAIN_MAX || !sk_X509_push(chain, certs[i].cert))
				r = p11pki_fail(P11PKI_E_ARG, "%s: chain longer than %d certificates", s->where, CHAIN_MAX);
			else
				X509_up_ref(certs[i].cert);
		}
	} else {
		if ((r = tls_read_certs(item, &file)) != 0) {
			r = tls_fail_wrap(r, s->where);
			goto out;
		}
		if (!push_all(chain, file, 1))
			r = p11pki_fail(P11PKI_E_ARG, "%s: chain longer than %d certificates", s->where, CHAIN_MAX);
	}
out:
	sk_X509_pop_free(file, X509_free);
	p11pki_cert_info_free(certs, n);
	p11pki_uri_free(u);
	return r;
}

static int chain_list(struct source *s, const char *list, STACK_OF(X509) *chain)
{
	char *copy = strdup(list), *save = NULL, *item;
	int r = P11PKI_OK;

	if (copy == NULL)
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
	for (item = strtok_r(copy, ",", &save); item != NULL && r == 0; item = strtok_r(NULL, ",", &save)) {
		while (*item == ' ' || *item == '\t')
			item++;
		if (*item != '\0')
			r = chain_item(s, item, chain);
	}
	free(copy);
	return r;
}

/* The issuers of leaf among the certificates on the key's token. */
static int chain_from_token(struct source *s, X509 *leaf, STACK_OF(X509) **chain)
{
	struct p11pki_cert_info *certs = NULL;
	STACK_OF(X509) *pool = sk_X509_new_null();
	size_t n = 0, i;
	int r;

	if (pool == NULL)
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
	if ((r = token_certs(s, s->key, NULL, &certs, &n)) != 0)
		goto out;
	for (i = 0; i < n; i++)
		if (!sk_X509_push(pool, certs[i].cert)) {
			r = p11pki_fail(P11PKI_E_NOMEM, "out of memory");
			goto out;
		}
	if ((r = p11pki_chain_build(leaf, pool, 0, chain, NULL)) != 0)
		r = tls_fail_wrap(r, s->where);
out:
	sk_X509_free(pool); /* the certificates belong to certs */
	p11pki_cert_info_free(certs, n);
	return r;
}

int tls_site_cert(const struct p11pki_binding *b, const char *where, struct tls_tokens *tk, X509 **leaf,
		  STACK_OF(X509) **chain)
{
	struct source s;
	STACK_OF(X509) *rest = NULL;
	char shown[TLS_URI_SHOWN];
	int r, on_token = 0;

	*leaf = NULL;
	*chain = NULL;
	memset(&s, 0, sizeof(s));
	s.b = b;
	s.tk = tk;
	snprintf(s.where, sizeof(s.where), "%s", where);
	if (b->key == NULL) {
		r = p11pki_fail(P11PKI_E_ARG, "%s: no key", s.where);
		goto out;
	}
	if (strncmp(b->key, "file:", 5) == 0) {
		/* a key from a file goes with a certificate from a file */
		if (b->cert == NULL || is_uri(b->cert) || strncmp(b->cert, "sha1:", 5) == 0 ||
		    strncmp(b->cert, "sha256:", 7) == 0) {
			r = p11pki_fail(P11PKI_E_ARG, "%s: key = file:... needs cert = PATH of a PEM file", s.where);
			goto out;
		}
	} else if ((r = p11pki_uri_parse(b->key, &s.key)) != 0) {
		r = tls_fail_wrapf(r, "%s: key %s", s.where, p11pki_shown(b->key, shown, sizeof(shown)));
		goto out;
	}
	if (b->cert == NULL)
		r = from_key(&s, leaf), on_token = 1;
	else if (is_uri(b->cert))
		r = from_uri(&s, b->cert, leaf), on_token = 1;
	else if (strncmp(b->cert, "sha1:", 5) == 0 || strncmp(b->cert, "sha256:", 7) == 0)
		r = from_thumbprint(&s, b->cert, leaf), on_token = 1;
	else
		r = from_file(&s, b->cert, leaf, &rest);
	if (r != 0)
		goto out;
	if (b->chain != NULL) {
		if ((*chain = sk_X509_new_null()) == NULL) {
			r = p11pki_fail(P11PKI_E_NOMEM, "out of memory");
			goto out;
		}
		r = chain_list(&s, b->chain, *chain);
	} else if (on_token) {
		r = chain_from_token(&s, *leaf, chain);
	} else {
		*chain = rest;
		rest = NULL;
	}
out:
	if (r != 0) {
		X509_free(*leaf);
		sk_X509_pop_free(*chain, X509_free);
		*leaf = NULL;
		*chain = NULL;
	}
	sk_X509_pop_free(rest, X509_free);
	p11pki_uri_free(s.key);
	return r;
}
