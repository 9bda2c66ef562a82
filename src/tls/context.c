/* One binding's SSL_CTX: the key stays on the token (every handshake
 * signature is made there, through the session pool), the certificate and
 * chain come from a file or the token, and start-up refuses what would
 * fail later: a key URI that matches no key, a certificate for another
 * key, an expired certificate, an SNI host the certificate does not
 * carry, an RSA key on a token that cannot sign RSA-PSS asked to serve
 * TLS 1.3 only. */
#include <string.h>

#include <openssl/pem.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "core/text.h"
#include "tls/server.h"

/* ECDHE with AEAD only; TLS 1.3 suites are all AEAD already. */
static const char default_ciphers[] = "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
				      "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
				      "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256";
static const char default_suites[] = "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256";
static const char groups[] = "X25519:P-256:P-384";
/* PKCS#1 v1.5 signatures only: the token cannot make PSS ones */
static const char rsa_pkcs1_sigalgs[] = "RSA+SHA256:RSA+SHA384:RSA+SHA512";

/* key = file:PATH, for comparisons with a software key (benchmarks) and
 * migrations: the key is in memory, so the start-up log says so. */
static int load_file_key(const char *path, const char *where, EVP_PKEY **out)
{
	FILE *fp = fopen(path, "r");

	if (fp == NULL)
		return p11pki_fail(P11PKI_E_IO, "%s: cannot read key file %s", where, path);
	*out = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
	fclose(fp);
	if (*out == NULL)
		return p11pki_fail(P11PKI_E_ARG, "%s: %s is not an unencrypted PEM private key", where, path);
	p11pki_log(P11PKI_LOG_WARN, "%s: the key comes from the file %s, not from a token", where, path);
	return P11PKI_OK;
}

static int load_key(struct tls_site *s, struct tls_tokens *tk, const char *where, int *can_pss)
{
	struct p11pki_uri *u = NULL;
	p11pki_token *t = NULL;
	char shown[TLS_URI_SHOWN];
	int r;

	p11pki_shown(s->b->key != NULL ? s->b->key : "", shown, sizeof(shown));
	if (s->b->key == NULL) {
		r = p11pki_fail(P11PKI_E_ARG, "%s: no key", where);
		goto out;
	}
	if (strncmp(s->b->key, "file:", 5) == 0) {
		*can_pss = 1;
		r = load_file_key(s->b->key + 5, where, &s->key);
		goto out;
	}
	if ((r = p11pki_uri_parse(s->b->key, &u)) != 0) {
		r = tls_fail_wrapf(r, "%s: key %s", where, shown);
		goto out;
	}
	if ((r = tls_tokens_get(tk, u, &t, can_pss)) != 0) {
		r = tls_fail_wrapf(r, "%s: key %s", where, shown);
		goto out;
	}
	s->signer = t;
	if ((r = p11pki_key_load(t, u, &s->key)) == P11PKI_E_NOTFOUND)
		r = p11pki_fail(r, "%s: key %s matches no key on token '%s'", where, shown, p11pki_token_label(t));
	else if (r != 0)
		r = tls_fail_wrapf(r, "%s: key %s", where, shown);
out:
	p11pki_uri_free(u);
	return r;
}

static int check_cert(struct tls_site *s, const char *where)
{
	const struct p11pki_binding *b = s->b;
	char subject[256], date[64], sni[P11PKI_SHOWN_BUF], key[TLS_URI_SHOWN];
	EVP_PKEY *pub = X509_get0_pubkey(s->cert);

	p11pki_name_text(X509_get_subject_name(s->cert), subject, sizeof(subject));
	if (pub == NULL || EVP_PKEY_eq(pub, s->key) != 1) {
		ERR_clear_error();
		return p11pki_fail(P11PKI_E_ARG, "%s: certificate '%s' does not match key %s", where, subject,
				   p11pki_shown(b->key, key, sizeof(key)));
	}
	if (X509_cmp_current_time(X509_get0_notAfter(s->cert)) <= 0) {
		tls_time_text(X509_get0_notAfter(s->cert), date, sizeof(date));
		return p11pki_fail(P11PKI_E_ARG, "%s: certificate '%s' expired on %s", where, subject, date);
	}
	if (X509_cmp_current_time(X509_get0_notBefore(s->cert)) >= 0) {
		tls_time_text(X509_get0_notBefore(s->cert), date, sizeof(date));
		return p11pki_fail(P11PKI_E_ARG, "%s: certificate '%s' is not valid before %s", where, subject, date);
	}
	if (b->sni != NULL && X509_check_host(s->cert, b->sni, 0, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, NULL) != 1 &&
	    !(strncmp(b->sni, "*.", 2) == 0 && X509_check_host(s->cert, b->sni + 1, 0, 0, NULL) == 1))
		return p11pki_fail(P11PKI_E_ARG, "%s: SNI host '%s' is not in certificate '%s'", where,
				   p11pki_shown(b->sni, sni, sizeof(sni)), subject);
	return P11PKI_OK;
}

/* TLS 1.3 signs with RSA-PSS only: without it on the token an RSA key is
 * served over TLS 1.2 with PKCS#1 v1.5 signatures. */
static int choose_protocols(struct tls_site *s, const char *where, int can_pss, p11pki_token *t)
{
	const struct p11pki_binding *b = s->b;
	int want12 = b->min_tls12 || !b->tls13, want13 = b->tls13 || !b->min_tls12;

	s->tls13 = want13;
	if (EVP_PKEY_get_base_id(s->key) == EVP_PKEY_RSA && !can_pss) {
		if (!want12)
			return p11pki_fail(P11PKI_E_UNSUPPORTED,
					   "%s: TLS 1.3 needs RSA-PSS, which token '%s' cannot do; allow TLS 1.2 or use an EC key",
					   where, t != NULL ? p11pki_token_label(t) : "?");
		if (want13)
			p11pki_log(P11PKI_LOG_WARN,
				   "%s: token '%s' cannot sign RSA-PSS: TLS 1.3 is not offered with this RSA key, TLS 1.2 only",
				   where, t != NULL ? p11pki_token_label(t) : "?");
		s->tls13 = 0;
		s->sigalgs = rsa_pkcs1_sigalgs;
	}
	s->min_proto = want12 ? TLS1_2_VERSION : TLS1_3_VERSION;
	s->max_proto = s->tls13 ? TLS1_3_VERSION : TLS1_2_VERSION;
	return P11PKI_OK;
}

static int session_setup(struct tls_site *s)
{
	unsigned char sid[SSL_MAX_SID_CTX_LENGTH];
	unsigned len = 0;
	unsigned timeout = s->b->session_timeout_s ? s->b->session_timeout_s : TLS_DEFAULT_SESSION_S;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int ok;

	/* sessions resume only on the binding that made them, and not
	 * across a reload (which may change what a client must show) */
	ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
	     EVP_DigestUpdate(md, &s->gen_serial, sizeof(s->gen_serial)) == 1 &&
	     EVP_DigestUpdate(md, s->b->name, strlen(s->b->name)) == 1 && EVP_DigestFinal_ex(md, sid, &len) == 1 &&
	     len <= sizeof(sid);
	EVP_MD_CTX_free(md);
	if (!ok)
		return 0;
	/* Tickets (the default, as nginx and OpenSSL do it) keep no state
	 * here: a full handshake leaves nothing behind. With session_tickets
	 * = off, sessions stay in the cache the worker threads share
	 * (sesscache.c) and a TLS 1.3 ticket only names one: resuming decodes
	 * it without decrypting it, but every full handshake stores two. TLS
	 * 1.2 clients without tickets resume from the cache either way. */
	if (s->b->session_cache)
		SSL_CTX_set_options(s->ctx, SSL_OP_NO_TICKET);
	/* keys either way: SNI may bring a ticket here from the default */
	if (!tls_tickets_use(s->ctx))
		return 0;
	tls_session_cache_use(s->ctx);
	SSL_CTX_set_timeout(s->ctx, (long)timeout);
	return SSL_CTX_set_session_id_context(s->ctx, sid, len) == 1;
}

static int make_ctx(struct tls_site *s, const char *where)
{
	const struct p11pki_binding *b = s->b;
	SSL_CTX *ctx;

	s->ciphers = b->ciphers != NULL ? b->ciphers : default_ciphers;
	s->ciphersuites = b->ciphersuites != NULL ? b->ciphersuites : default_suites;
	if ((ctx = s->ctx = SSL_CTX_new(TLS_server_method())) == NULL)
		goto fail;
	SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
	/* SSL_MODE_ASYNC is set per connection when a token waits (conn.c) */
	/* a client's flight in one read; conn.c stops it after the handshake */
	SSL_CTX_set_read_ahead(ctx, 1);
	SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE |
				      SSL_MODE_NO_AUTO_CHAIN);
	if (!SSL_CTX_set_min_proto_version(ctx, s->min_proto) || !SSL_CTX_set_max_proto_version(ctx, s->max_proto))
		goto fail;
	if (!SSL_CTX_set_cipher_list(ctx, s->ciphers))
		return p11pki_fail(P11PKI_E_ARG, "%s: no usable cipher in '%s'", where, s->ciphers);
	if (!SSL_CTX_set_ciphersuites(ctx, s->ciphersuites))
		return p11pki_fail(P11PKI_E_ARG, "%s: no usable TLS 1.3 suite in '%s'", where, s->ciphersuites);
	if (!SSL_CTX_set1_groups_list(ctx, groups) || (s->sigalgs != NULL && !SSL_CTX_set1_sigalgs_list(ctx, s->sigalgs)))
		goto fail;
	if (SSL_CTX_use_certificate(ctx, s->cert) != 1 || SSL_CTX_use_PrivateKey(ctx, s->key) != 1 ||
	    SSL_CTX_set1_chain(ctx, s->chain) != 1)
		goto fail;
	if (SSL_CTX_check_private_key(ctx) != 1)
		return p11pki_fail(P11PKI_E_ARG, "%s: the certificate does not match the key", where);
	if (!session_setup(s))
		goto fail;
	SSL_CTX_set_client_hello_cb(ctx, tls_sni_client_hello, NULL);
	return P11PKI_OK;
fail:
	return p11pki_fail(P11PKI_E_CRYPTO, "%s: cannot set up TLS: %s", where,
			   ERR_reason_error_string(ERR_peek_last_error()) != NULL
				   ? ERR_reason_error_string(ERR_peek_last_error()) : "OpenSSL failure");
}

int tls_site_build(struct tls_site *s, struct tls_tokens *tk)
{
	struct p11pki_uri *u = NULL;
	p11pki_token *t = NULL;
	const char *where = s->where;
	int r, can_pss = 0;

	if ((r = load_key(s, tk, where, &can_pss)) != 0)
		goto out;
	if ((r = tls_site_cert(s->b, where, tk, &s->cert, &s->chain)) != 0 || (r = check_cert(s, where)) != 0)
		goto out;
	if (p11pki_uri_parse(s->b->key, &u) == 0)
		(void)tls_tokens_get(tk, u, &t, NULL);
	if ((r = choose_protocols(s, where, can_pss, t)) != 0 || (r = make_ctx(s, where)) != 0 ||
	    (r = tls_client_auth_setup(s, where)) != 0)
		goto out;
out:
	ERR_clear_error();
	p11pki_uri_free(u);
	return r;
}

void tls_site_clear(struct tls_site *s)
{
	SSL_CTX_free(s->ctx);
	EVP_PKEY_free(s->key);
	X509_free(s->cert);
	sk_X509_pop_free(s->chain, X509_free);
	s->ctx = NULL;
	s->key = NULL;
	s->cert = NULL;
	s->chain = NULL;
	s->client_store = NULL;
	s->signer = NULL;
}
