/* Checking a certificate the way browsers do: date, host and chain, each
 * on its own with the reason it fails; reading the certificates and CRLs
 * such a check needs; and building the chain a server sends, through a
 * cross-certificate when older clients must reach an older root. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <p11pki/x509.h>

#include "core/text.h"

#define READ_MAX_INPUT (16u << 20) /* no trust bundle is larger */
#define MAX_DEPTH 10

/* Appends to a NUL-terminated buffer, cutting what does not fit. */
static void append(char *buf, size_t size, const char *fmt, ...) P11PKI_PRINTF(3, 4);
static void append(char *buf, size_t size, const char *fmt, ...)
{
	size_t used = strlen(buf);
	va_list ap;

	if (used + 1 >= size)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + used, size - used, fmt, ap);
	va_end(ap);
}

/* Writes a reason, cut when it does not fit (that is intended). */
static void say(char *buf, size_t size, const char *fmt, ...) P11PKI_PRINTF(3, 4);
static void say(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, size, fmt, ap);
	va_end(ap);
}

/* ---- reading ---------------------------------------------------------- */

static int is_pem(const unsigned char *data, size_t len)
{
	return memmem(data, len, "-----BEGIN ", 11) != NULL;
}

/* After a PEM read loop: only "no more PEM blocks" is a clean end. */
static int pem_clean_end(void)
{
	unsigned long e = ERR_peek_last_error();

	return e == 0 || (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE);
}

int p11pki_certs_read(const unsigned char *data, size_t len, const char *name, STACK_OF(X509) **out)
{
	STACK_OF(X509) *sk = sk_X509_new_null();
	const unsigned char *p = data;
	BIO *b = NULL;
	X509 *x = NULL;
	int r = P11PKI_OK;

	*out = NULL;
	ERR_clear_error();
	if (sk == NULL || len > READ_MAX_INPUT) {
		r = sk == NULL ? p11pki_fail(P11PKI_E_NOMEM, "out of memory")
			       : p11pki_fail(P11PKI_E_ARG, "%s is too large for a certificate file", name);
		goto out;
	}
	if (!is_pem(data, len)) {
		if ((x = d2i_X509(NULL, &p, (long)len)) == NULL || p != data + len)
			r = p11pki_fail(P11PKI_E_ARG, "%s is not a certificate (PEM or DER)", name);
		else if (!sk_X509_push(sk, x))
			r = p11pki_fail(P11PKI_E_NOMEM, "out of memory");
		else
			x = NULL;
		goto out;
	}
	if ((b = BIO_new_mem_buf(data, (int)len)) == NULL) {
		r = p11pki_fail(P11PKI_E_NOMEM, "out of memory");
		goto out;
	}
	while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
		if (!sk_X509_push(sk, x)) {
			r = p11pki_fail(P11PKI_E_NOMEM, "out of memory");
			goto out;
		}
	}
	if (!pem_clean_end())
		r = p11pki_fail(P11PKI_E_ARG, "%s: certificate %d is damaged", name, sk_X509_num(sk) + 1);
	else if (sk_X509_num(sk) == 0)
		r = p11pki_fail(P11PKI_E_ARG, "%s holds no PEM certificate", name);
out:
	if (r == 0) {
		*out = sk;
		sk = NULL;
	}
	X509_free(x);
	sk_X509_pop_free(sk, X509_free);
	BIO_free(b);
	ERR_clear_error();
	return r;
}

int p11pki_crls_read(const unsigned char *data, size_t len, const char *name, STACK_OF(X509_CRL) **out)
{
	STACK_OF(X509_CRL) *sk = sk_X509_CRL_new_null();
	const unsigned char *p = data;
	X509_CRL *crl = NULL;
	BIO *b = NULL;
	int r = P11PKI_OK;

	*out = NULL;
	ERR_clear_error();
	if (sk == NULL || len > READ_MAX_INPUT) {
		r = sk == NULL ? p11pki_fail(P11PKI_E_NOMEM, "out of memory")
			       : p11pki_fail(P11PKI_E_ARG, "%s is too large for a CRL file", name);
		goto out;
	}
	if (!is_pem(data, len)) {
		if ((crl = d2i_X509_CRL(NULL, &p, (long)len)) == NULL || p != data + len)
			r = p11pki_fail(P11PKI_E_ARG, "%s is not a CRL (PEM or DER)", name);
		else if (!sk_X509_CRL_push(sk, crl))
			r = p11pki_fail(P11PKI_E_NOMEM, "out of memory");
		else
			crl = NULL;
		goto out;
	}
	if ((b = BIO_new_mem_buf(data, (int)len)) == NULL) {
		r = p11pki_fail(P11PKI_E_NOMEM, "out of memory");
		goto out;
	}
	while ((crl = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL)) != NULL) {
		if (!sk_X509_CRL_push(sk, crl)) {
			r = p11pki_fail(P11PKI_E_NOMEM, "out of memory");
			goto out;
		}
	}
	if (!pem_clean_end())
		r = p11pki_fail(P11PKI_E_ARG, "%s: CRL %d is damaged", name, sk_X509_CRL_num(sk) + 1);
	else if (sk_X509_CRL_num(sk) == 0)
		r = p11pki_fail(P11PKI_E_ARG, "%s holds no PEM CRL", name);
out:
	if (r == 0) {
		*out = sk;
		sk = NULL;
	}
	X509_CRL_free(crl);
	sk_X509_CRL_pop_free(sk, X509_CRL_free);
	BIO_free(b);
	ERR_clear_error();
	return r;
}

/* ---- date ------------------------------------------------------------- */

static void time_text(const ASN1_TIME *t, char *buf, size_t size)
{
	struct tm tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1 || strftime(buf, size, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(buf, size, "(malformed time)");
}

static void check_date(X509 *cert, time_t at, struct p11pki_verify_result *r)
{
	const ASN1_TIME *from = X509_get0_notBefore(cert), *until = X509_get0_notAfter(cert);
	char from_s[40], until_s[40], at_s[40];
	time_t now = at != 0 ? at : time(NULL);
	struct tm tm;
	int before, after;

	time_text(from, from_s, sizeof(from_s));
	time_text(until, until_s, sizeof(until_s));
	at_s[0] = '\0';
	if (at != 0 && gmtime_r(&at, &tm) != NULL)
		strftime(at_s, sizeof(at_s), ", checked at %Y-%m-%d %H:%M:%S UTC", &tm);
	before = X509_cmp_time(from, &now); /* > 0: starts after now */
	after = X509_cmp_time(until, &now); /* < 0: ended before now */
	r->date_ok = 0;
	if (before == 0 || after == 0)
		say(r->date_reason, sizeof(r->date_reason), "the validity dates are malformed");
	else if (before > 0)
		say(r->date_reason, sizeof(r->date_reason), "not yet valid: valid from %s until %s%s", from_s,
			 until_s, at_s);
	else if (after < 0)
		say(r->date_reason, sizeof(r->date_reason), "expired on %s (valid from %s)%s", until_s, from_s,
			 at_s);
	else {
		r->date_ok = 1;
		say(r->date_reason, sizeof(r->date_reason), "valid from %s until %s%s", from_s, until_s, at_s);
	}
}

/* ---- host ------------------------------------------------------------- */

/* "dns:a, dns:b, ip:192.0.2.1", and with with_cn the CNs when there is
 * no DNS name (then they name the host); *has_dns tells which. */
static void names_text(X509 *cert, int with_cn, char *buf, size_t size, int *has_dns)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	const X509_NAME *subject = X509_get_subject_name(cert);
	char ip[INET6_ADDRSTRLEN];
	int i;

	buf[0] = '\0';
	*has_dns = 0;
	for (i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(gens, i);
		const ASN1_STRING *s = gn->d.ia5;
		if (gn->type == GEN_DNS) {
			*has_dns = 1;
			append(buf, size, "%sdns:%.*s", buf[0] ? ", " : "", ASN1_STRING_length(s),
			       (const char *)ASN1_STRING_get0_data(s));
		} else if (gn->type == GEN_IPADD && (ASN1_STRING_length(s) == 4 || ASN1_STRING_length(s) == 16) &&
			   inet_ntop(ASN1_STRING_length(s) == 16 ? AF_INET6 : AF_INET, ASN1_STRING_get0_data(s), ip,
				     sizeof(ip)) != NULL) {
			append(buf, size, "%sip:%s", buf[0] ? ", " : "", ip);
		}
	}
	GENERAL_NAMES_free(gens);
	for (i = -1; with_cn && !*has_dns && (i = X509_NAME_get_index_by_NID(subject, NID_commonName, i)) >= 0;) {
		unsigned char *cn = NULL;
		if (ASN1_STRING_to_UTF8(&cn, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i))) >= 0)
			append(buf, size, "%sCN=%s", buf[0] ? ", " : "", (char *)cn);
		OPENSSL_free(cn);
	}
	if (buf[0] == '\0')
		snprintf(buf, size, "none");
}

static void check_ip(X509 *cert, const char *host, struct p11pki_verify_result *r)
{
	char names[128];
	int has_dns;

	names_text(cert, 0, names, sizeof(names), &has_dns);
	r->host_ok = X509_check_ip_asc(cert, host, 0) == 1;
	if (r->host_ok)
		say(r->host_reason, sizeof(r->host_reason), "matches ip:%s", host);
	else
		say(r->host_reason, sizeof(r->host_reason), "%s is not among the certificate's names (%s)", host,
			 names);
}

static void check_host(X509 *cert, const char *host, struct p11pki_verify_result *r)
{
	unsigned char ip[16];
	char names[128], *ascii = NULL, *peer = NULL;
	int has_dns, rc;

	r->host_ok = 0;
	if (inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1) {
		check_ip(cert, host, r);
		return;
	}
	names_text(cert, 1, names, sizeof(names), &has_dns);
	if (p11pki_host_to_ascii(host, &ascii) != 0) {
		say(r->host_reason, sizeof(r->host_reason), "%s", p11pki_errmsg());
		goto out;
	}
	if (ascii[0] == '*') {
		say(r->host_reason, sizeof(r->host_reason), "'%s' is a pattern: give the host name a client uses",
			 host);
		goto out;
	}
	/* browsers never accept "w*.example.com"; OpenSSL uses the CN only
	 * when there is no DNS subjectAltName */
	rc = X509_check_host(cert, ascii, 0, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, &peer);
	r->host_ok = rc == 1;
	if (rc == 1)
		say(r->host_reason, sizeof(r->host_reason), "matches %s%s", has_dns ? "dns:" : "CN=", peer);
	else if (rc == 0 && strcmp(ascii, host) != 0)
		say(r->host_reason, sizeof(r->host_reason), "%s (%s) is not among the certificate's names (%s)",
			 host, ascii, names);
	else if (rc == 0)
		say(r->host_reason, sizeof(r->host_reason), "%s is not among the certificate's names (%s)", host,
			 names);
	else
		say(r->host_reason, sizeof(r->host_reason), "the certificate's names are malformed");
out:
	OPENSSL_free(peer);
	free(ascii);
}

/* ---- chain ------------------------------------------------------------ */

struct attempt {
	int ok, err, depth;
	char subject[128], issuer[128];
	STACK_OF(X509) *chain;
};

static int make_store(const struct p11pki_verify_opts *o, X509_STORE **out)
{
	X509_STORE *store = X509_STORE_new();
	int i, ok;

	*out = NULL;
	if (store == NULL)
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
	if (o->trusted == NULL)
		ok = X509_STORE_set_default_paths(store) == 1;
	else
		for (i = 0, ok = 1; ok && i < sk_X509_num(o->trusted); i++)
			ok = X509_STORE_add_cert(store, sk_X509_value(o->trusted, i)) == 1;
	if (!ok) {
		X509_STORE_free(store);
		return p11pki_fail(P11PKI_E_CRYPTO, "cannot load the trusted certificates");
	}
	*out = store;
	return P11PKI_OK;
}

/* One X509_verify_cert run with the given untrusted certificates. */
static int chain_try(X509 *cert, const struct p11pki_verify_opts *o, STACK_OF(X509) *untrusted, struct attempt *a)
{
	X509_STORE *store = NULL;
	X509_STORE_CTX *ctx = NULL;
	X509_VERIFY_PARAM *param;
	unsigned long flags = X509_V_FLAG_X509_STRICT;
	X509 *bad;
	int r;

	memset(a, 0, sizeof(*a));
	if ((r = make_store(o, &store)) != 0)
		goto out;
	if ((ctx = X509_STORE_CTX_new()) == NULL || X509_STORE_CTX_init(ctx, store, cert, untrusted) != 1) {
		r = p11pki_fail(P11PKI_E_NOMEM, "out of memory");
		goto out;
	}
	param = X509_STORE_CTX_get0_param(ctx);
	if (o->crls != NULL && sk_X509_CRL_num(o->crls) > 0) {
		flags |= X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL;
		X509_STORE_CTX_set0_crls(ctx, o->crls);
	}
	X509_VERIFY_PARAM_set_flags(param, flags);
	if (o->at != 0)
		X509_VERIFY_PARAM_set_time(param, o->at);
	a->ok = X509_verify_cert(ctx) == 1;
	if (a->ok) {
		a->chain = X509_STORE_CTX_get1_chain(ctx);
		goto out;
	}
	a->err = X509_STORE_CTX_get_error(ctx);
	a->depth = X509_STORE_CTX_get_error_depth(ctx);
	if ((bad = X509_STORE_CTX_get_current_cert(ctx)) == NULL)
		bad = cert;
	p11pki_name_text(X509_get_subject_name(bad), a->subject, sizeof(a->subject));
	p11pki_name_text(X509_get_issuer_name(bad), a->issuer, sizeof(a->issuer));
out:
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	ERR_clear_error();
	return r;
}

/* The untrusted certificates without self-signed ones (an untrusted root
 * can only end a path in failure), in the given or reverse order:
 * OpenSSL takes the first issuer that fits, so when both a new root and
 * its cross-certificate are offered, the order decides. */
static STACK_OF(X509) *alternative(STACK_OF(X509) *untrusted, int reverse)
{
	STACK_OF(X509) *sk = sk_X509_new_null();
	int i, n = sk_X509_num(untrusted);

	for (i = 0; sk != NULL && i < n; i++) {
		X509 *x = sk_X509_value(untrusted, reverse ? n - 1 - i : i);
		if (X509_self_signed(x, 0) != 1 && !sk_X509_push(sk, x)) {
			sk_X509_free(sk);
			return NULL;
		}
	}
	return sk;
}

static void chain_ok_text(STACK_OF(X509) *chain, char *buf, size_t size)
{
	char name[128];
	int i;

	snprintf(buf, size, "%d certificates: ", sk_X509_num(chain));
	for (i = 0; i < sk_X509_num(chain); i++) {
		p11pki_name_text(X509_get_subject_name(sk_X509_value(chain, i)), name, sizeof(name));
		append(buf, size, "%s'%s'", i ? " <- " : "", name);
	}
}

static void chain_fail_text(const struct attempt *a, char *buf, size_t size)
{
	snprintf(buf, size, "%s (depth %d: %s)", X509_verify_cert_error_string(a->err), a->depth, a->subject);
	if (a->err == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY || a->err == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT)
		append(buf, size, ": its issuer '%s' is neither trusted nor among the untrusted certificates",
		       a->issuer);
}

static int check_chain(X509 *cert, const struct p11pki_verify_opts *o, struct p11pki_verify_result *r)
{
	struct attempt first, alt;
	STACK_OF(X509) *sk;
	int i, rc;

	if ((rc = chain_try(cert, o, o->untrusted, &first)) != 0)
		return rc;
	for (i = 0; !first.ok && i < 2 && sk_X509_num(o->untrusted) > 0; i++) {
		if ((sk = alternative(o->untrusted, i)) == NULL)
			return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
		rc = chain_try(cert, o, sk, &alt);
		sk_X509_free(sk);
		if (rc != 0)
			return rc;
		if (alt.ok)
			first = alt;
	}
	r->chain_ok = first.ok;
	if (first.ok) {
		r->chain = first.chain;
		chain_ok_text(r->chain, r->chain_reason, sizeof(r->chain_reason));
	} else {
		chain_fail_text(&first, r->chain_reason, sizeof(r->chain_reason));
	}
	return P11PKI_OK;
}

int p11pki_verify(X509 *cert, const struct p11pki_verify_opts *o, struct p11pki_verify_result *r)
{
	memset(r, 0, sizeof(*r));
	if (cert == NULL || o == NULL)
		return p11pki_fail(P11PKI_E_ARG, "p11pki_verify: no certificate or options");
	check_date(cert, o->at, r);
	if (o->host != NULL) {
		check_host(cert, o->host, r);
	} else {
		r->host_ok = -1;
		say(r->host_reason, sizeof(r->host_reason), "no host name given");
	}
	return check_chain(cert, o, r);
}

void p11pki_verify_result_clear(struct p11pki_verify_result *r)
{
	if (r == NULL)
		return;
	sk_X509_pop_free(r->chain, X509_free);
	r->chain = NULL;
}

/* ---- the chain a server sends ----------------------------------------- */

static int issued_by(X509 *issuer, X509 *x)
{
	EVP_PKEY *key = X509_get0_pubkey(issuer);
	int ok = X509_check_issued(issuer, x) == X509_V_OK && key != NULL && X509_verify(x, key) == 1;

	ERR_clear_error();
	return ok;
}

static int holds(STACK_OF(X509) *sk, X509 *x)
{
	int i;

	for (i = 0; i < sk_X509_num(sk); i++)
		if (X509_cmp(sk_X509_value(sk, i), x) == 0)
			return 1;
	return 0;
}

/* Whether candidate a beats b: with CROSS a cross-certificate beats the
 * self-signed root of the same name and key, without it the root wins
 * (the chain then ends); otherwise the one valid the longest. */
static int better(X509 *a, X509 *b, unsigned flags)
{
	int root_a = X509_self_signed(a, 0) == 1, root_b = X509_self_signed(b, 0) == 1;

	if (root_a != root_b)
		return (flags & P11PKI_CHAIN_CROSS) ? !root_a : root_a;
	return ASN1_TIME_compare(X509_get0_notAfter(a), X509_get0_notAfter(b)) > 0;
}

static X509 *pick_issuer(X509 *x, X509 *leaf, STACK_OF(X509) *pool, STACK_OF(X509) *chain, unsigned flags)
{
	X509 *best = NULL, *c;
	int i;

	for (i = 0; i < sk_X509_num(pool); i++) {
		c = sk_X509_value(pool, i);
		if (X509_cmp(c, x) == 0 || X509_cmp(c, leaf) == 0 || holds(chain, c) || !issued_by(c, x))
			continue;
		if (best == NULL || better(c, best, flags))
			best = c;
	}
	return best;
}

int p11pki_chain_build(X509 *leaf, STACK_OF(X509) *pool, unsigned flags, STACK_OF(X509) **out, int *complete)
{
	STACK_OF(X509) *chain = sk_X509_new_null();
	X509 *cur = leaf, *next;
	int depth, root = X509_self_signed(leaf, 1) == 1, r = P11PKI_OK;

	*out = NULL;
	if (complete != NULL)
		*complete = 0;
	if (chain == NULL)
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
	for (depth = 0; !root && depth < MAX_DEPTH; depth++) {
		if ((next = pick_issuer(cur, leaf, pool, chain, flags)) == NULL)
			break;
		root = X509_self_signed(next, 0) == 1;
		if (root && !(flags & P11PKI_CHAIN_ROOT))
			break; /* clients have the root: servers do not send it */
		if (!sk_X509_push(chain, next)) {
			r = p11pki_fail(P11PKI_E_NOMEM, "out of memory");
			goto out;
		}
		X509_up_ref(next);
		cur = next;
	}
	*out = chain;
	chain = NULL;
out:
	if (complete != NULL)
		*complete = root;
	sk_X509_pop_free(chain, X509_free);
	ERR_clear_error();
	return r;
}
