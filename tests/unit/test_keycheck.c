/* Key rules, and the checks a CA runs on a request before signing it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <p11pki/x509.h>

/* Generated once: RSA-2048 takes a moment. */
static EVP_PKEY *rsa1024, *rsa2048, *p256, *p384, *p521, *ed25519;

static int make_keys(void **state)
{
	rsa1024 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	rsa2048 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	p521 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521");
	ed25519 = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	return rsa1024 && rsa2048 && p256 && p384 && p521 && ed25519 ? 0 : -1;
}

static int free_keys(void **state)
{
	EVP_PKEY_free(rsa1024);
	EVP_PKEY_free(rsa2048);
	EVP_PKEY_free(p256);
	EVP_PKEY_free(p384);
	EVP_PKEY_free(p521);
	EVP_PKEY_free(ed25519);
	return 0;
}

static void expect_msg(int got, int code, const char *want)
{
	assert_int_equal(got, code);
	if (strstr(p11pki_errmsg(), want) == NULL)
		print_error("message '%s' lacks '%s'\n", p11pki_errmsg(), want);
	assert_non_null(strstr(p11pki_errmsg(), want));
	assert_null(strchr(p11pki_errmsg(), '\n'));
}

static void test_default_rules(void **state)
{
	struct p11pki_key_rules zero = { 0 };

	assert_int_equal(p11pki_key_check(rsa2048, NULL), P11PKI_OK);
	assert_int_equal(p11pki_key_check(rsa2048, &zero), P11PKI_OK);
	assert_int_equal(p11pki_key_check(p256, NULL), P11PKI_OK);
	assert_int_equal(p11pki_key_check(p384, &zero), P11PKI_OK);
	expect_msg(p11pki_key_check(rsa1024, NULL), P11PKI_E_POLICY,
		   "RSA key of 1024 bits is too weak: at least 2048 bits are required");
	assert_string_equal(p11pki_errmsg(),
			    "RSA key of 1024 bits is too weak: at least 2048 bits are required");
	expect_msg(p11pki_key_check(p521, &zero), P11PKI_E_POLICY,
		   "EC key on curve secp521r1 (P-521) is not allowed");
	expect_msg(p11pki_key_check(ed25519, NULL), P11PKI_E_POLICY,
		   "ED25519 keys are not allowed: use RSA of at least 2048 bits, EC P-256 or "
		   "EC P-384");
	expect_msg(p11pki_key_check(NULL, NULL), P11PKI_E_ARG, "no key");
}

static void test_custom_rules(void **state)
{
	struct p11pki_key_rules only_p256 = { .allow_p256 = 1 };
	struct p11pki_key_rules rsa3072 = { .rsa_min_bits = 3072 };
	struct p11pki_key_rules rsa1024_ok = { .rsa_min_bits = 1024, .allow_rsa = 1 };
	struct p11pki_key_rules rsa_p384 = { .allow_rsa = 1, .allow_p384 = 1 };

	assert_int_equal(p11pki_key_check(p256, &only_p256), P11PKI_OK);
	expect_msg(p11pki_key_check(rsa2048, &only_p256), P11PKI_E_POLICY,
		   "RSA keys are not allowed here: use EC P-256");
	expect_msg(p11pki_key_check(p384, &only_p256), P11PKI_E_POLICY,
		   "EC key on curve secp384r1 (P-384) is not allowed: use EC P-256");
	expect_msg(p11pki_key_check(rsa2048, &rsa3072), P11PKI_E_POLICY,
		   "RSA key of 2048 bits is too weak: at least 3072 bits are required");
	assert_int_equal(p11pki_key_check(p256, &rsa3072), P11PKI_OK);
	assert_int_equal(p11pki_key_check(rsa1024, &rsa1024_ok), P11PKI_OK);
	expect_msg(p11pki_key_check(p256, &rsa1024_ok), P11PKI_E_POLICY,
		   "use RSA of at least 1024 bits");
	assert_int_equal(p11pki_key_check(p384, &rsa_p384), P11PKI_OK);
	expect_msg(p11pki_key_check(p256, &rsa_p384), P11PKI_E_POLICY,
		   "prime256v1 (P-256) is not allowed: use RSA of at least 2048 bits or EC "
		   "P-384");
}

static X509_REQ *unsigned_req(EVP_PKEY *key, const char *subject)
{
	X509_REQ *req = X509_REQ_new();
	X509_NAME *name = NULL;

	assert_non_null(req);
	assert_int_equal(p11pki_name_parse(subject, &name), P11PKI_OK);
	assert_int_equal(X509_REQ_set_subject_name(req, name), 1);
	assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
	X509_NAME_free(name);
	return req;
}

static X509_REQ *make_req(EVP_PKEY *key, const EVP_MD *md)
{
	X509_REQ *req = unsigned_req(key, "/C=HK/O=My Org/CN=www.myserver.com");

	assert_true(X509_REQ_sign(req, key, md) > 0);
	return req;
}

static X509_REQ *make_pss_req(EVP_PKEY *key, const EVP_MD *md)
{
	X509_REQ *req = unsigned_req(key, "/CN=pss.example.com");
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;

	assert_int_equal(EVP_DigestSignInit(ctx, &pctx, md, NULL, key), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING), 1);
	assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST), 1);
	assert_true(X509_REQ_sign_ctx(req, ctx) > 0);
	EVP_MD_CTX_free(ctx);
	return req;
}

static void check_req(X509_REQ *req, int code, const char *want)
{
	int r = p11pki_csr_check(req, NULL);

	if (want == NULL) {
		if (r != 0)
			print_error("check failed: %s\n", p11pki_errmsg());
		assert_int_equal(r, P11PKI_OK);
	} else {
		expect_msg(r, code, want);
	}
	X509_REQ_free(req);
}

static void test_csr_accepted(void **state)
{
	check_req(make_req(rsa2048, EVP_sha256()), 0, NULL);
	check_req(make_req(rsa2048, EVP_sha512()), 0, NULL);
	check_req(make_req(p256, EVP_sha256()), 0, NULL);
	check_req(make_req(p384, EVP_sha384()), 0, NULL);
	check_req(make_pss_req(rsa2048, EVP_sha256()), 0, NULL);
}

static void test_csr_weak_digest(void **state)
{
	check_req(make_req(rsa2048, EVP_sha1()), P11PKI_E_POLICY,
		  "the request is signed with sha1WithRSAEncryption: SHA-1 and MD5 are refused, "
		  "use SHA-256");
	check_req(make_req(rsa2048, EVP_md5()), P11PKI_E_POLICY,
		  "the request is signed with md5WithRSAEncryption: SHA-1 and MD5 are refused");
	check_req(make_req(p256, EVP_sha1()), P11PKI_E_POLICY,
		  "the request is signed with ecdsa-with-SHA1: SHA-1 and MD5 are refused");
	/* RSASSA-PSS carries its digest in parameters; SHA-1 is the default */
	check_req(make_pss_req(rsa2048, EVP_sha1()), P11PKI_E_POLICY,
		  "the request is signed with rsassaPss and SHA1: SHA-1 and MD5 are refused");
}

static void test_csr_weak_key(void **state)
{
	check_req(make_req(rsa1024, EVP_sha256()), P11PKI_E_POLICY,
		  "RSA key of 1024 bits is too weak: at least 2048 bits are required");
	check_req(make_req(p521, EVP_sha512()), P11PKI_E_POLICY, "secp521r1 (P-521)");
	check_req(make_req(ed25519, NULL), P11PKI_E_POLICY, "ED25519 keys are not allowed");
}

static void test_csr_tampered(void **state)
{
	static const char why[] = "the request's self-signature does not verify: it was altered "
				  "or signed with another key";
	X509_REQ *req = make_req(rsa2048, EVP_sha256()), *back = NULL;
	X509_NAME *evil = NULL;
	unsigned char *der = NULL, *hit;
	int len;

	/* the subject changed after signing */
	assert_int_equal(p11pki_name_parse("/C=HK/O=Evil/CN=www.myserver.com", &evil), 0);
	assert_int_equal(X509_REQ_set_subject_name(req, evil), 1);
	X509_NAME_free(evil);
	check_req(req, P11PKI_E_ARG, why);
	/* one byte of the encoded subject changed */
	req = make_req(rsa2048, EVP_sha256());
	assert_true((len = i2d_X509_REQ(req, &der)) > 0);
	hit = memmem(der, (size_t)len, "myserver", 8);
	assert_non_null(hit);
	hit[0] = 'n';
	assert_int_equal(p11pki_csr_read(der, (size_t)len, &back), P11PKI_OK);
	check_req(back, P11PKI_E_ARG, why);
	OPENSSL_free(der);
	X509_REQ_free(req);
	/* signed with another key than the one it carries */
	req = unsigned_req(rsa2048, "/CN=www.example.com");
	assert_true(X509_REQ_sign(req, p256, EVP_sha256()) > 0);
	check_req(req, P11PKI_E_ARG, why);
	check_req(NULL, P11PKI_E_ARG, "no certificate request");
}

static char *to_pem(X509_REQ *req, int new_label, const char *before)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *data, *copy;
	long len;

	BIO_puts(bio, before);
	if (new_label)
		assert_int_equal(PEM_write_bio_X509_REQ_NEW(bio, req), 1);
	else
		assert_int_equal(PEM_write_bio_X509_REQ(bio, req), 1);
	len = BIO_get_mem_data(bio, &data);
	copy = strndup(data, (size_t)len);
	BIO_free(bio);
	return copy;
}

static void reads_same(const unsigned char *data, size_t len, X509_REQ *want)
{
	X509_REQ *got = (X509_REQ *)1;
	unsigned char *a = NULL, *b = NULL;
	int alen, blen;

	if (p11pki_csr_read(data, len, &got) != 0)
		print_error("read failed: %s\n", p11pki_errmsg());
	assert_non_null(got);
	alen = i2d_X509_REQ(got, &a);
	blen = i2d_X509_REQ(want, &b);
	assert_int_equal(alen, blen);
	assert_memory_equal(a, b, (size_t)alen);
	assert_int_equal(p11pki_csr_check(got, NULL), P11PKI_OK);
	OPENSSL_free(a);
	OPENSSL_free(b);
	X509_REQ_free(got);
}

static void read_fails(const void *data, size_t len, const char *want)
{
	X509_REQ *got = (X509_REQ *)1;

	expect_msg(p11pki_csr_read(data, len, &got), P11PKI_E_ARG, want);
	assert_null(got);
}

static void test_csr_read(void **state)
{
	static const char cert[] = "-----BEGIN CERTIFICATE-----\nMAMCAQA=\n-----END CERTIFICATE-----\n";
	X509_REQ *req = make_req(rsa2048, EVP_sha256());
	unsigned char *der = NULL, *big;
	char *pem;
	int len = i2d_X509_REQ(req, &der);

	reads_same(der, (size_t)len, req);
	pem = to_pem(req, 0, "");
	assert_non_null(strstr(pem, "-----BEGIN CERTIFICATE REQUEST-----"));
	reads_same((unsigned char *)pem, strlen(pem), req);
	free(pem);
	pem = to_pem(req, 1, "");
	assert_non_null(strstr(pem, "-----BEGIN NEW CERTIFICATE REQUEST-----"));
	reads_same((unsigned char *)pem, strlen(pem), req);
	free(pem);
	/* as pasted from `openssl req -text` */
	pem = to_pem(req, 0, "Certificate Request:\n    Data:\n        Version: 1 (0x0)\n");
	reads_same((unsigned char *)pem, strlen(pem), req);
	/* PEM broken in the middle */
	memcpy(strstr(pem, "-----BEGIN CERTIFICATE REQUEST-----\n") + 40, "!!!!", 4);
	read_fails(pem, strlen(pem), "cannot");
	free(pem);
	read_fails(cert, strlen(cert), "the PEM data holds a CERTIFICATE, not a CERTIFICATE REQUEST");
	read_fails("-----BEGIN nothing", 18, "no CERTIFICATE REQUEST block");
	/* DER: trailing bytes, truncation, garbage */
	big = malloc(65 * 1024);
	memcpy(big, der, (size_t)len);
	big[len] = 0;
	read_fails(big, (size_t)len + 1, "followed by 1 unexpected bytes");
	read_fails(der, (size_t)len - 1, "cannot be decoded");
	read_fails("hello", 5, "cannot be decoded");
	memset(big, 'A', 65 * 1024);
	read_fails(big, 64 * 1024 + 1, "larger than 64 KiB");
	read_fails(big, 0, "empty certificate request");
	read_fails(NULL, 10, "empty certificate request");
	assert_int_equal(p11pki_csr_read(der, (size_t)len, NULL), P11PKI_E_ARG);
	free(big);
	OPENSSL_free(der);
	X509_REQ_free(req);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_default_rules),
		cmocka_unit_test(test_custom_rules),
		cmocka_unit_test(test_csr_accepted),
		cmocka_unit_test(test_csr_weak_digest),
		cmocka_unit_test(test_csr_weak_key),
		cmocka_unit_test(test_csr_tampered),
		cmocka_unit_test(test_csr_read),
	};

	return cmocka_run_group_tests(tests, make_keys, free_keys);
}
