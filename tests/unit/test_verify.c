/* p11pki_verify: the date, host and chain checks each pass or fail on
 * their own with the reason; CRLs, cross-certificates in any order, the
 * chain a server sends, and reading certificates and CRLs. Certificates
 * are made in memory with fixed dates, so the checks use --at times. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <p11pki/x509.h>

#define AT_2035 2051222400 /* 2035-01-01 00:00:00 UTC */
#define AT_2029 1874966400 /* 2029-06-01 00:00:00 UTC */

struct ca {
	EVP_PKEY *key;
	X509 *cert;
};

static struct ca root1, int1, root3, int3, other;
static X509 *cross3, *www, *shop, *short_lived;

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *e;

	X509V3_set_ctx(&ctx, issuer != NULL ? issuer : x, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	assert_non_null(e);
	assert_int_equal(X509_add_ext(x, e, -1), 1);
	X509_EXTENSION_free(e);
}

static void set_time(X509 *x, int not_after, const char *when)
{
	ASN1_TIME *t = ASN1_TIME_new();

	assert_int_equal(ASN1_TIME_set_string_X509(t, when), 1);
	assert_int_equal(not_after ? X509_set1_notAfter(x, t) : X509_set1_notBefore(x, t), 1);
	ASN1_TIME_free(t);
}

/* A certificate for key named CN, signed by issuer (NULL: self-signed). */
static X509 *make_cert(const char *cn, EVP_PKEY *key, const struct ca *issuer, int ca, const char *from,
		       const char *until, const char *san)
{
	static long serial = 1000;
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();

	assert_non_null(x);
	assert_int_equal(X509_set_version(x, 2), 1);
	assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), serial++), 1);
	assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0), 1);
	assert_int_equal(X509_set_subject_name(x, name), 1);
	assert_int_equal(X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer->cert) : name), 1);
	X509_NAME_free(name);
	set_time(x, 0, from);
	set_time(x, 1, until);
	assert_int_equal(X509_set_pubkey(x, key), 1);
	add_ext(x, NULL, NID_subject_key_identifier, "hash");
	add_ext(x, issuer != NULL ? issuer->cert : NULL, NID_authority_key_identifier, "keyid");
	add_ext(x, NULL, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
	add_ext(x, NULL, NID_key_usage, ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
	if (san != NULL)
		add_ext(x, NULL, NID_subject_alt_name, san);
	assert_true(X509_sign(x, issuer != NULL ? issuer->key : key, EVP_sha256()) > 0);
	return x;
}

static void make_ca(struct ca *ca, const char *cn, const struct ca *issuer)
{
	ca->key = EVP_EC_gen("P-256");
	assert_non_null(ca->key);
	ca->cert = make_cert(cn, ca->key, issuer, 1, "20200101000000Z", "20491231000000Z", NULL);
}

static X509 *make_leaf(const char *cn, const struct ca *issuer, const char *from, const char *until, const char *san)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x;

	assert_non_null(key);
	x = make_cert(cn, key, issuer, 0, from, until, san);
	EVP_PKEY_free(key);
	return x;
}

static int setup(void **state)
{
	make_ca(&root1, "Root CA 1", NULL);
	make_ca(&int1, "Issuing CA 1", &root1);
	make_ca(&root3, "Root CA 3", NULL);
	make_ca(&int3, "e-Cert SSL CA 3 - 17", &root3);
	make_ca(&other, "Other Root", NULL);
	cross3 = make_cert("Root CA 3", root3.key, &root1, 1, "20200101000000Z", "20491231000000Z", NULL);
	www = make_leaf("www.example.com", &int1, "20200101000000Z", "20491231000000Z",
			"DNS:www.example.com,DNS:example.com");
	shop = make_leaf("shop.example.com", &int3, "20200101000000Z", "20491231000000Z", "DNS:shop.example.com");
	short_lived = make_leaf("short.example.com", &int1, "20300101000000Z", "20310101000000Z", "DNS:short.example.com");
	return 0;
}

static void ca_free(struct ca *ca)
{
	EVP_PKEY_free(ca->key);
	X509_free(ca->cert);
}

static int teardown(void **state)
{
	ca_free(&root1);
	ca_free(&int1);
	ca_free(&root3);
	ca_free(&int3);
	ca_free(&other);
	X509_free(cross3);
	X509_free(www);
	X509_free(shop);
	X509_free(short_lived);
	return 0;
}

/* A stack of the given certificates (NULL-terminated), not owning them. */
static STACK_OF(X509) *stack(X509 *first, ...)
{
	STACK_OF(X509) *sk = sk_X509_new_null();
	va_list ap;
	X509 *x;

	assert_non_null(sk);
	va_start(ap, first);
	for (x = first; x != NULL; x = va_arg(ap, X509 *))
		assert_true(sk_X509_push(sk, x) > 0);
	va_end(ap);
	return sk;
}

/* Runs p11pki_verify with trusted and untrusted stacks (freed here). */
static void verify(X509 *cert, const char *host, STACK_OF(X509) *trusted, STACK_OF(X509) *untrusted,
		   STACK_OF(X509_CRL) *crls, time_t at, struct p11pki_verify_result *r)
{
	struct p11pki_verify_opts o = { host, trusted, untrusted, crls, at };

	assert_int_equal(p11pki_verify(cert, &o, r), P11PKI_OK);
	sk_X509_free(trusted);
	sk_X509_free(untrusted);
}

static void verify_www(const char *host, time_t at, struct p11pki_verify_result *r)
{
	verify(www, host, stack(root1.cert, NULL), stack(int1.cert, NULL), NULL, at, r);
}

static void reason_is(const char *got, const char *want)
{
	if (strcmp(got, want) != 0)
		print_error("reason '%s'\n  want '%s'\n", got, want);
	assert_string_equal(got, want);
}

/* ---- all three checks pass -------------------------------------------- */

static void test_good(void **state)
{
	struct p11pki_verify_result r;

	verify_www("www.example.com", AT_2035, &r);
	assert_int_equal(r.date_ok, 1);
	assert_int_equal(r.host_ok, 1);
	assert_int_equal(r.chain_ok, 1);
	reason_is(r.date_reason, "valid from 2020-01-01 00:00:00 UTC until 2049-12-31 00:00:00 UTC, checked at "
				 "2035-01-01 00:00:00 UTC");
	reason_is(r.host_reason, "matches dns:www.example.com");
	reason_is(r.chain_reason, "3 certificates: 'CN=www.example.com' <- 'CN=Issuing CA 1' <- 'CN=Root CA 1'");
	assert_int_equal(sk_X509_num(r.chain), 3);
	assert_int_equal(X509_cmp(sk_X509_value(r.chain, 0), www), 0);
	assert_int_equal(X509_cmp(sk_X509_value(r.chain, 2), root1.cert), 0);
	p11pki_verify_result_clear(&r);
	assert_null(r.chain);
}

static void test_now_is_default(void **state)
{
	struct p11pki_verify_result r;

	verify_www("example.com", 0, &r);
	assert_int_equal(r.date_ok, 1);
	assert_null(strstr(r.date_reason, "checked at"));
	assert_int_equal(r.chain_ok, 1);
	reason_is(r.host_reason, "matches dns:example.com");
	p11pki_verify_result_clear(&r);
}

/* ---- date ------------------------------------------------------------- */

static void test_expired(void **state)
{
	struct p11pki_verify_result r;

	verify(short_lived, "short.example.com", stack(root1.cert, NULL), stack(int1.cert, NULL), NULL, AT_2035, &r);
	assert_int_equal(r.date_ok, 0);
	reason_is(r.date_reason, "expired on 2031-01-01 00:00:00 UTC (valid from 2030-01-01 00:00:00 UTC), checked at "
				 "2035-01-01 00:00:00 UTC");
	assert_int_equal(r.host_ok, 1);
	assert_int_equal(r.chain_ok, 0);
	reason_is(r.chain_reason, "certificate has expired (depth 0: CN=short.example.com)");
	assert_null(r.chain);
	p11pki_verify_result_clear(&r);
}

static void test_not_yet_valid(void **state)
{
	struct p11pki_verify_result r;

	verify(short_lived, NULL, stack(root1.cert, NULL), stack(int1.cert, NULL), NULL, AT_2029, &r);
	assert_int_equal(r.date_ok, 0);
	reason_is(r.date_reason, "not yet valid: valid from 2030-01-01 00:00:00 UTC until 2031-01-01 00:00:00 UTC, "
				 "checked at 2029-06-01 00:00:00 UTC");
	reason_is(r.chain_reason, "certificate is not yet valid (depth 0: CN=short.example.com)");
	p11pki_verify_result_clear(&r);
}

/* ---- host ------------------------------------------------------------- */

static void host_check(X509 *cert, const char *host, int ok, const char *reason)
{
	struct p11pki_verify_result r;
	STACK_OF(X509) *issuer = stack(int1.cert, NULL);

	verify(cert, host, stack(root1.cert, NULL), issuer, NULL, AT_2035, &r);
	assert_int_equal(r.date_ok, 1);
	assert_int_equal(r.chain_ok, 1);
	if (r.host_ok != ok)
		print_error("host '%s': host_ok %d, want %d (%s)\n", host, r.host_ok, ok, r.host_reason);
	assert_int_equal(r.host_ok, ok);
	reason_is(r.host_reason, reason);
	p11pki_verify_result_clear(&r);
}

static void test_host_mismatch(void **state)
{
	host_check(www, "www.example.net", 0,
		   "www.example.net is not among the certificate's names (dns:www.example.com, dns:example.com)");
	host_check(www, "WWW.Example.COM", 1, "matches dns:www.example.com");
	host_check(www, "www.example.com.", 1, "matches dns:www.example.com");
}

static void test_bad_host(void **state)
{
	struct p11pki_verify_result r;

	verify_www("exa mple.com", AT_2035, &r);
	assert_int_equal(r.host_ok, 0);
	assert_non_null(strstr(r.host_reason, "host name 'exa mple.com'"));
	assert_int_equal(r.date_ok, 1);
	assert_int_equal(r.chain_ok, 1);
	p11pki_verify_result_clear(&r);
}

static void test_no_host(void **state)
{
	struct p11pki_verify_result r;

	verify_www(NULL, AT_2035, &r);
	assert_int_equal(r.host_ok, -1);
	reason_is(r.host_reason, "no host name given");
	assert_int_equal(r.date_ok, 1);
	assert_int_equal(r.chain_ok, 1);
	p11pki_verify_result_clear(&r);
}

static void test_wildcard(void **state)
{
	X509 *wild = make_leaf("*.example.org", &int1, "20200101000000Z", "20491231000000Z", "DNS:*.example.org");
	X509 *partial = make_leaf("partial", &int1, "20200101000000Z", "20491231000000Z", "DNS:w*.example.com");

	host_check(wild, "shop.example.org", 1, "matches dns:*.example.org");
	host_check(wild, "a.shop.example.org", 0, "a.shop.example.org is not among the certificate's names (dns:*.example.org)");
	host_check(wild, "example.org", 0, "example.org is not among the certificate's names (dns:*.example.org)");
	host_check(wild, "*.example.org", 0, "'*.example.org' is a pattern: give the host name a client uses");
	host_check(partial, "www.example.com", 0, "www.example.com is not among the certificate's names (dns:w*.example.com)");
	X509_free(wild);
	X509_free(partial);
}

static void test_idn(void **state)
{
	/* the A-label of www.我的伺服器.com, as Python's idna codec gives it */
	X509 *idn = make_leaf("www.xn--3pqw8o2pk43espw.com", &int1, "20200101000000Z", "20491231000000Z",
			      "DNS:www.xn--3pqw8o2pk43espw.com");

	host_check(idn, "www.我的伺服器.com", 1, "matches dns:www.xn--3pqw8o2pk43espw.com");
	host_check(idn, "www.xn--3pqw8o2pk43espw.com", 1, "matches dns:www.xn--3pqw8o2pk43espw.com");
	host_check(idn, "www.我的服务器.com", 0,
		   "www.我的服务器.com (www.xn--zfru1g2vn33etpw.com) is not among the certificate's names "
		   "(dns:www.xn--3pqw8o2pk43espw.com)");
	X509_free(idn);
}

static void test_cn_only_without_dns(void **state)
{
	X509 *cn_only = make_leaf("legacy.example.com", &int1, "20200101000000Z", "20491231000000Z", NULL);
	X509 *cn_and_san = make_leaf("cn.example.com", &int1, "20200101000000Z", "20491231000000Z", "DNS:san.example.com");
	X509 *ip = make_leaf("device", &int1, "20200101000000Z", "20491231000000Z", "IP:192.0.2.10,IP:2001:db8::1");

	host_check(cn_only, "legacy.example.com", 1, "matches CN=legacy.example.com");
	host_check(cn_only, "other.example.com", 0, "other.example.com is not among the certificate's names (CN=legacy.example.com)");
	host_check(cn_and_san, "cn.example.com", 0, "cn.example.com is not among the certificate's names (dns:san.example.com)");
	host_check(ip, "192.0.2.10", 1, "matches ip:192.0.2.10");
	host_check(ip, "2001:db8::1", 1, "matches ip:2001:db8::1");
	host_check(ip, "192.0.2.11", 0, "192.0.2.11 is not among the certificate's names (ip:192.0.2.10, ip:2001:db8::1)");
	X509_free(cn_only);
	X509_free(cn_and_san);
	X509_free(ip);
}

/* ---- chain ------------------------------------------------------------ */

static void test_untrusted_root(void **state)
{
	struct p11pki_verify_result r;

	verify(www, "www.example.com", stack(other.cert, NULL), stack(int1.cert, NULL), NULL, AT_2035, &r);
	assert_int_equal(r.date_ok, 1);
	assert_int_equal(r.host_ok, 1);
	assert_int_equal(r.chain_ok, 0);
	reason_is(r.chain_reason, "unable to get local issuer certificate (depth 1: CN=Issuing CA 1): its issuer "
				  "'CN=Root CA 1' is neither trusted nor among the untrusted certificates");
	p11pki_verify_result_clear(&r);

	/* an intermediate is no trust anchor: partial chains are not allowed */
	verify(www, "www.example.com", stack(int1.cert, NULL), NULL, NULL, AT_2035, &r);
	assert_int_equal(r.chain_ok, 0);
	assert_non_null(strstr(r.chain_reason, "(depth 1: CN=Issuing CA 1)"));
	p11pki_verify_result_clear(&r);

	/* an untrusted self-signed root does not help */
	verify(www, "www.example.com", stack(other.cert, NULL), stack(int1.cert, root1.cert, NULL), NULL, AT_2035, &r);
	assert_int_equal(r.chain_ok, 0);
	reason_is(r.chain_reason, "self-signed certificate in certificate chain (depth 2: CN=Root CA 1)");
	p11pki_verify_result_clear(&r);
}

static X509_CRL *make_crl(const struct ca *issuer, X509 *revoked)
{
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *last = ASN1_TIME_new(), *next = ASN1_TIME_new();
	X509V3_CTX ctx;
	X509_EXTENSION *aki;

	assert_non_null(crl);
	assert_int_equal(ASN1_TIME_set_string_X509(last, "20341201000000Z"), 1);
	assert_int_equal(ASN1_TIME_set_string_X509(next, "20351201000000Z"), 1);
	assert_int_equal(X509_CRL_set_version(crl, 1), 1);
	assert_int_equal(X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer->cert)), 1);
	assert_int_equal(X509_CRL_set1_lastUpdate(crl, last), 1);
	assert_int_equal(X509_CRL_set1_nextUpdate(crl, next), 1);
	if (revoked != NULL) {
		X509_REVOKED *rv = X509_REVOKED_new();
		assert_int_equal(X509_REVOKED_set_serialNumber(rv, X509_get_serialNumber(revoked)), 1);
		assert_int_equal(X509_REVOKED_set_revocationDate(rv, last), 1);
		assert_int_equal(X509_CRL_add0_revoked(crl, rv), 1);
	}
	X509V3_set_ctx(&ctx, issuer->cert, NULL, NULL, crl, 0);
	aki = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid");
	assert_non_null(aki);
	assert_int_equal(X509_CRL_add_ext(crl, aki, -1), 1);
	X509_EXTENSION_free(aki);
	assert_int_equal(X509_CRL_sort(crl), 1);
	assert_true(X509_CRL_sign(crl, issuer->key, EVP_sha256()) > 0);
	ASN1_TIME_free(last);
	ASN1_TIME_free(next);
	return crl;
}

static void test_crl(void **state)
{
	STACK_OF(X509_CRL) *crls = sk_X509_CRL_new_null();
	X509_CRL *int_crl = make_crl(&int1, www), *root_crl = make_crl(&root1, NULL);
	X509 *good = make_leaf("good.example.com", &int1, "20200101000000Z", "20491231000000Z", "DNS:good.example.com");
	struct p11pki_verify_result r;

	assert_true(sk_X509_CRL_push(crls, int_crl) > 0);
	/* without the root's CRL, the intermediate's status is unknown */
	verify(good, "good.example.com", stack(root1.cert, NULL), stack(int1.cert, NULL), crls, AT_2035, &r);
	assert_int_equal(r.chain_ok, 0);
	reason_is(r.chain_reason, "unable to get certificate CRL (depth 1: CN=Issuing CA 1)");
	p11pki_verify_result_clear(&r);

	assert_true(sk_X509_CRL_push(crls, root_crl) > 0);
	verify(good, "good.example.com", stack(root1.cert, NULL), stack(int1.cert, NULL), crls, AT_2035, &r);
	assert_int_equal(r.chain_ok, 1);
	p11pki_verify_result_clear(&r);
	verify(www, "www.example.com", stack(root1.cert, NULL), stack(int1.cert, NULL), crls, AT_2035, &r);
	assert_int_equal(r.date_ok, 1);
	assert_int_equal(r.host_ok, 1);
	assert_int_equal(r.chain_ok, 0);
	reason_is(r.chain_reason, "certificate revoked (depth 0: CN=www.example.com)");
	p11pki_verify_result_clear(&r);
	/* the CRL is past its nextUpdate in 2040 */
	verify(good, NULL, stack(root1.cert, NULL), stack(int1.cert, NULL), crls, 2208988800 /* 2040 */, &r);
	assert_int_equal(r.chain_ok, 0);
	reason_is(r.chain_reason, "CRL has expired (depth 0: CN=good.example.com)");
	p11pki_verify_result_clear(&r);

	sk_X509_CRL_pop_free(crls, X509_CRL_free);
	X509_free(good);
	/* the CRL check section proved the chain passes without CRLs too */
	verify_www(NULL, AT_2035, &r);
	assert_int_equal(r.chain_ok, 1);
	p11pki_verify_result_clear(&r);
}

static void test_cross_any_order(void **state)
{
	static const char want[] = "4 certificates: 'CN=shop.example.com' <- 'CN=e-Cert SSL CA 3 - 17' <- 'CN=Root CA 3' "
				   "<- 'CN=Root CA 1'";
	X509 *orders[4][3] = {
		{ int3.cert, root3.cert, cross3 },
		{ int3.cert, cross3, root3.cert },
		{ cross3, root3.cert, int3.cert },
		{ root3.cert, cross3, int3.cert },
	};
	struct p11pki_verify_result r;
	int i;

	for (i = 0; i < 4; i++) {
		verify(shop, "shop.example.com", stack(root1.cert, NULL),
		       stack(orders[i][0], orders[i][1], orders[i][2], NULL), NULL, AT_2035, &r);
		if (!r.chain_ok)
			print_error("order %d: %s\n", i, r.chain_reason);
		assert_int_equal(r.chain_ok, 1);
		reason_is(r.chain_reason, want);
		assert_int_equal(X509_cmp(sk_X509_value(r.chain, 2), cross3), 0);
		p11pki_verify_result_clear(&r);
	}
	/* no cross-certificate: no path to Root CA 1 */
	verify(shop, "shop.example.com", stack(root1.cert, NULL), stack(int3.cert, root3.cert, NULL), NULL, AT_2035, &r);
	assert_int_equal(r.chain_ok, 0);
	p11pki_verify_result_clear(&r);
	/* Root CA 3 trusted: the short path */
	verify(shop, "shop.example.com", stack(root3.cert, NULL), stack(int3.cert, cross3, NULL), NULL, AT_2035, &r);
	assert_int_equal(r.chain_ok, 1);
	assert_int_equal(sk_X509_num(r.chain), 3);
	p11pki_verify_result_clear(&r);
}

/* ---- the chain a server sends ----------------------------------------- */

static void chain_is(unsigned flags, STACK_OF(X509) *pool, int complete, X509 *first, ...)
{
	STACK_OF(X509) *chain = NULL;
	int got_complete = -1, n = 0;
	va_list ap;
	X509 *x;

	assert_int_equal(p11pki_chain_build(shop, pool, flags, &chain, &got_complete), P11PKI_OK);
	va_start(ap, first);
	for (x = first; x != NULL; x = va_arg(ap, X509 *), n++) {
		assert_true(n < sk_X509_num(chain));
		assert_int_equal(X509_cmp(sk_X509_value(chain, n), x), 0);
	}
	va_end(ap);
	assert_int_equal(sk_X509_num(chain), n);
	assert_int_equal(got_complete, complete);
	sk_X509_pop_free(chain, X509_free);
}

static void test_chain_build(void **state)
{
	STACK_OF(X509) *pool = stack(root1.cert, cross3, int1.cert, root3.cert, int3.cert, www, NULL);
	STACK_OF(X509) *partial = stack(root1.cert, int1.cert, NULL);

	chain_is(0, pool, 1, int3.cert, NULL);
	chain_is(P11PKI_CHAIN_ROOT, pool, 1, int3.cert, root3.cert, NULL);
	chain_is(P11PKI_CHAIN_CROSS, pool, 1, int3.cert, cross3, NULL);
	chain_is(P11PKI_CHAIN_CROSS | P11PKI_CHAIN_ROOT, pool, 1, int3.cert, cross3, root1.cert, NULL);
	chain_is(P11PKI_CHAIN_CROSS, partial, 0, NULL);
	sk_X509_free(pool);
	sk_X509_free(partial);
}

/* ---- reading ---------------------------------------------------------- */

static void pem_of(X509 *a, X509 *b, unsigned char **data, size_t *len)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *p;
	long n;

	assert_int_equal(PEM_write_bio_X509(bio, a), 1);
	BIO_puts(bio, "some text between\n");
	assert_int_equal(PEM_write_bio_X509(bio, b), 1);
	n = BIO_get_mem_data(bio, &p);
	*data = malloc((size_t)n);
	memcpy(*data, p, (size_t)n);
	*len = (size_t)n;
	BIO_free(bio);
}

static void test_certs_read(void **state)
{
	STACK_OF(X509) *sk = (STACK_OF(X509) *)1;
	unsigned char *data = NULL, *der = NULL;
	size_t len = 0;
	int der_len;

	pem_of(www, int1.cert, &data, &len);
	assert_int_equal(p11pki_certs_read(data, len, "full.pem", &sk), P11PKI_OK);
	assert_int_equal(sk_X509_num(sk), 2);
	assert_int_equal(X509_cmp(sk_X509_value(sk, 1), int1.cert), 0);
	sk_X509_pop_free(sk, X509_free);
	/* a damaged second certificate is named */
	{
		static const char begin[] = "-----BEGIN CERTIFICATE-----\n";
		unsigned char *second = memmem(data + 1, len - 1, begin, sizeof(begin) - 1);
		assert_non_null(second);
		second[sizeof(begin) + 10] = '!'; /* not base64 */
	}
	assert_int_equal(p11pki_certs_read(data, len, "full.pem", &sk), P11PKI_E_ARG);
	assert_null(sk);
	assert_string_equal(p11pki_errmsg(), "full.pem: certificate 2 is damaged");
	free(data);

	der_len = i2d_X509(www, &der);
	assert_true(der_len > 0);
	assert_int_equal(p11pki_certs_read(der, (size_t)der_len, "www.der", &sk), P11PKI_OK);
	assert_int_equal(sk_X509_num(sk), 1);
	sk_X509_pop_free(sk, X509_free);
	assert_int_equal(p11pki_certs_read(der, (size_t)der_len - 1, "cut.der", &sk), P11PKI_E_ARG);
	assert_string_equal(p11pki_errmsg(), "cut.der is not a certificate (PEM or DER)");
	OPENSSL_free(der);

	assert_int_equal(p11pki_certs_read((const unsigned char *)"-----BEGIN FOO-----\nAAAA\n-----END FOO-----\n", 42,
					   "foo.pem", &sk),
			 P11PKI_E_ARG);
	assert_string_equal(p11pki_errmsg(), "foo.pem holds no PEM certificate");
}

static void test_crls_read(void **state)
{
	X509_CRL *crl = make_crl(&int1, www);
	STACK_OF(X509_CRL) *sk = NULL;
	unsigned char *der = NULL;
	int der_len = i2d_X509_CRL(crl, &der);

	assert_true(der_len > 0);
	assert_int_equal(p11pki_crls_read(der, (size_t)der_len, "int.crl", &sk), P11PKI_OK);
	assert_int_equal(sk_X509_CRL_num(sk), 1);
	sk_X509_CRL_pop_free(sk, X509_CRL_free);
	assert_int_equal(p11pki_crls_read((const unsigned char *)"junk", 4, "junk.crl", &sk), P11PKI_E_ARG);
	assert_string_equal(p11pki_errmsg(), "junk.crl is not a CRL (PEM or DER)");
	OPENSSL_free(der);
	X509_CRL_free(crl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_now_is_default),
		cmocka_unit_test(test_expired),
		cmocka_unit_test(test_not_yet_valid),
		cmocka_unit_test(test_host_mismatch),
		cmocka_unit_test(test_no_host),
		cmocka_unit_test(test_bad_host),
		cmocka_unit_test(test_wildcard),
		cmocka_unit_test(test_idn),
		cmocka_unit_test(test_cn_only_without_dns),
		cmocka_unit_test(test_untrusted_root),
		cmocka_unit_test(test_crl),
		cmocka_unit_test(test_cross_any_order),
		cmocka_unit_test(test_chain_build),
		cmocka_unit_test(test_certs_read),
		cmocka_unit_test(test_crls_read),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
