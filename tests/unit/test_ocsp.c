/* The online OCSP responder and the published CRL, against a CA whose key
 * is in memory (and, for the delegated signer, a SoftHSM2 token in a temp
 * directory), checked with OpenSSL's own OCSP and CRL code. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "online/base64.h"
#include "online/online.h"

#define VALIDITY 600

static char tmpdir[64];
static p11pki_store *st;
static EVP_PKEY *ca_key;
static X509 *good, *revoked, *unspecified;	/* issued by "test" */
static struct online_service svc;
static char *cas[] = { "test" };

static void check(int r)
{
	if (r != 0)
		print_error("failed: %s\n", p11pki_errmsg());
	assert_int_equal(r, P11PKI_OK);
}

/* ---- a CA in memory ------------------------------------------------------ */

static X509 *self_signed(EVP_PKEY *key, const char *subject)
{
	struct p11pki_cert_template t;
	struct p11pki_profile prof;
	X509_NAME *name = NULL;
	X509 *x = NULL;

	memset(&t, 0, sizeof(t));
	check(p11pki_profile_builtin("root", &prof));
	check(p11pki_name_parse(subject, &name));
	t.subject = name;
	t.public_key = key;
	t.not_before = time(NULL) - 60;
	t.not_after = time(NULL) + 365 * 86400;
	t.profile = &prof;
	check(p11pki_cert_build(&t, key, &x));
	X509_NAME_free(name);
	return x;
}

static char *pem_of(X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *out;
	long len;

	assert_int_equal(PEM_write_bio_X509(b, x), 1);
	len = BIO_get_mem_data(b, &data);
	out = strndup(data, (size_t)len);
	BIO_free(b);
	return out;
}

/* Records a CA "name" with cert in the store and opens it with key. */
static p11pki_ca *open_ca(const char *name, X509 *cert, EVP_PKEY *key)
{
	struct p11pki_store_ca rec;
	p11pki_ca *ca = NULL;

	memset(&rec, 0, sizeof(rec));
	rec.name = (char *)name;
	rec.key_uri = "pkcs11:token=none;object=ca";
	rec.cert_pem = pem_of(cert);
	rec.created = time(NULL);
	check(p11pki_store_ca_add(st, &rec));
	free(rec.cert_pem);
	check(p11pki_ca_open_key(st, NULL, name, key, &ca));
	return ca;
}

static X509 *issue(p11pki_ca *ca, const char *subject)
{
	struct p11pki_issue req;
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509_NAME *name = NULL;
	X509_REQ *csr = NULL;
	X509 *x = NULL;

	assert_non_null(key);
	check(p11pki_name_parse(subject, &name));
	check(p11pki_csr_build(key, name, NULL, &csr));
	memset(&req, 0, sizeof(req));
	req.profile = "client";
	req.csr = csr;
	req.requester = "test";
	check(p11pki_ca_issue(ca, &req, &x));
	X509_REQ_free(csr);
	X509_NAME_free(name);
	EVP_PKEY_free(key);
	return x;
}

static void revoke_cert(X509 *x, int reason)
{
	char *serial = p11pki_cert_serial_hex(x);

	check(p11pki_ca_revoke(st, "test", serial, reason));
	free(serial);
}

static int setup(void **state)
{
	char path[128];
	X509 *ca_cert;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/p11pki-ocsp-XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/ca.db", tmpdir);
	check(p11pki_store_open(path, &st));
	ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	ca_cert = self_signed(ca_key, "CN=Test Root,O=Example");
	memset(&svc, 0, sizeof(svc));
	svc.st = st;
	svc.ocsp_validity_s = VALIDITY;
	svc.n_cas = 1;
	snprintf(svc.cas[0].name, sizeof(svc.cas[0].name), "test");
	svc.cas[0].ca = open_ca("test", ca_cert, ca_key);
	svc.cas[0].cert = p11pki_ca_cert(svc.cas[0].ca);
	X509_free(ca_cert);
	good = issue(svc.cas[0].ca, "CN=good");
	revoked = issue(svc.cas[0].ca, "CN=revoked");
	unspecified = issue(svc.cas[0].ca, "CN=unspecified");
	revoke_cert(revoked, 1);
	revoke_cert(unspecified, 0);
	check(online_ocsp_setup(&svc, &svc.cas[0]));
	return 0;
}

static int remove_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(p);
}

static int teardown(void **state)
{
	online_ocsp_free(svc.cas[0].ocsp);
	online_crl_free(svc.cas[0].crl);
	p11pki_ca_close(svc.cas[0].ca);
	p11pki_store_close(st);
	X509_free(good);
	X509_free(revoked);
	X509_free(unspecified);
	EVP_PKEY_free(ca_key);
	return nftw(tmpdir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* ---- requests and answers ------------------------------------------------ */

static OCSP_CERTID *id_of(X509 *leaf, const EVP_MD *md)
{
	OCSP_CERTID *id = OCSP_cert_to_id(md, leaf, svc.cas[0].cert);

	assert_non_null(id);
	return id;
}

/* A request for the n CertIDs (copied), with a nonce when asked. */
static OCSP_REQUEST *request(OCSP_CERTID **ids, size_t n, int nonce)
{
	OCSP_REQUEST *req = OCSP_REQUEST_new();
	size_t i;

	for (i = 0; i < n; i++)
		assert_non_null(OCSP_request_add0_id(req, OCSP_CERTID_dup(ids[i])));
	if (nonce)
		assert_int_equal(OCSP_request_add1_nonce(req, NULL, -1), 1);
	return req;
}

static size_t der_of(OCSP_REQUEST *req, unsigned char **der)
{
	int len;

	*der = NULL;
	len = i2d_OCSP_REQUEST(req, der);
	assert_true(len > 0);
	return (size_t)len;
}

static void answer(const char *method, const char *path, const char *ct, const unsigned char *body, size_t len,
		   time_t now, struct online_response *rs)
{
	struct online_request rq;

	memset(&rq, 0, sizeof(rq));
	memset(rs, 0, sizeof(*rs));
	rq.method = method;
	rq.path = path;
	rq.content_type = ct;
	rq.body = body;
	rq.body_len = len;
	rq.client_ip = "192.0.2.1";
	rq.now = now;
	online_ocsp_answer(&svc, cas, 1, &rq, rs);
}

static void post(OCSP_REQUEST *req, struct online_response *rs)
{
	unsigned char *der;
	size_t len = der_of(req, &der);

	answer("POST", "/ocsp", "application/ocsp-request", der, len, time(NULL), rs);
	OPENSSL_free(der);
}

/* The OCSP response of an answer, which is always HTTP 200. */
static OCSP_RESPONSE *response_of(const struct online_response *rs, int want_status)
{
	const unsigned char *p = rs->body;
	OCSP_RESPONSE *resp;

	assert_int_equal(rs->status, 200);
	assert_string_equal(rs->content_type, "application/ocsp-response");
	resp = d2i_OCSP_RESPONSE(NULL, &p, (long)rs->body_len);
	assert_non_null(resp);
	assert_ptr_equal(p, rs->body + rs->body_len);
	assert_int_equal(OCSP_response_status(resp), want_status);
	return resp;
}

/* The basic response of a successful answer, its signature checked
 * against the CA certificate as the one trust anchor. */
static OCSP_BASICRESP *verified_basic_flags(const struct online_response *rs, X509 *anchor, unsigned long flags)
{
	OCSP_RESPONSE *resp = response_of(rs, OCSP_RESPONSE_STATUS_SUCCESSFUL);
	OCSP_BASICRESP *bs = OCSP_response_get1_basic(resp);
	X509_STORE *trust = X509_STORE_new();
	STACK_OF(X509) *certs = sk_X509_new_null();

	assert_non_null(bs);
	X509_STORE_add_cert(trust, anchor);
	sk_X509_push(certs, anchor);
	if (OCSP_basic_verify(bs, certs, trust, flags) != 1) {
		ERR_print_errors_fp(stderr);
		fail_msg("the OCSP response does not verify");
	}
	sk_X509_free(certs);
	X509_STORE_free(trust);
	OCSP_RESPONSE_free(resp);
	return bs;
}

static OCSP_BASICRESP *verified_basic(const struct online_response *rs, X509 *anchor)
{
	return verified_basic_flags(rs, anchor, 0);
}

static void expect_status(OCSP_BASICRESP *bs, OCSP_CERTID *id, int want, int want_reason)
{
	ASN1_GENERALIZEDTIME *rev = NULL, *this_upd = NULL, *next_upd = NULL;
	int status = -2, reason = -2, days = 0, secs = 0;

	assert_int_equal(OCSP_resp_find_status(bs, id, &status, &reason, &rev, &this_upd, &next_upd), 1);
	assert_int_equal(status, want);
	assert_int_equal(OCSP_check_validity(this_upd, next_upd, 300, -1), 1);
	assert_int_equal(ASN1_TIME_diff(&days, &secs, this_upd, next_upd), 1);
	assert_int_equal(days * 86400 + secs, VALIDITY);
	if (want == V_OCSP_CERTSTATUS_REVOKED) {
		assert_int_equal(reason, want_reason);
		assert_int_equal(ASN1_TIME_diff(&days, &secs, rev, NULL), 1);
		assert_true(days == 0 && secs >= 0); /* revoked in this test run */
	}
}

static int has_header(const struct online_response *rs, const char *line)
{
	return strstr(rs->headers, line) != NULL;
}

/* ---- OCSP ---------------------------------------------------------------- */

static void test_good_revoked_unknown(void **state)
{
	ASN1_INTEGER *serial = ASN1_INTEGER_new();
	OCSP_CERTID *ids[5];
	OCSP_REQUEST *req;
	OCSP_BASICRESP *bs;
	struct online_response rs;
	const ASN1_OCTET_STRING *key_id = NULL;
	const X509_NAME *by_name = NULL;
	size_t i;

	ASN1_INTEGER_set(serial, 0x1234567);
	ids[0] = id_of(good, EVP_sha1());
	ids[1] = id_of(revoked, EVP_sha256());
	ids[2] = id_of(unspecified, EVP_sha384());
	ids[3] = id_of(good, EVP_sha512());
	ids[4] = OCSP_cert_id_new(EVP_sha1(), X509_get_subject_name(svc.cas[0].cert),
				  X509_get0_pubkey_bitstr(svc.cas[0].cert), serial);
	req = request(ids, 5, 1);
	post(req, &rs);
	assert_true(has_header(&rs, "Cache-Control: no-cache\r\n"));
	bs = verified_basic(&rs, svc.cas[0].cert);
	assert_int_equal(OCSP_check_nonce(req, bs), 1);
	expect_status(bs, ids[0], V_OCSP_CERTSTATUS_GOOD, 0);
	expect_status(bs, ids[1], V_OCSP_CERTSTATUS_REVOKED, 1);
	/* unspecified is left out, as on the CRL */
	expect_status(bs, ids[2], V_OCSP_CERTSTATUS_REVOKED, OCSP_REVOKED_STATUS_NOSTATUS);
	expect_status(bs, ids[3], V_OCSP_CERTSTATUS_GOOD, 0);
	expect_status(bs, ids[4], V_OCSP_CERTSTATUS_UNKNOWN, 0);
	/* signed by the CA itself: responderID by key, no certificates */
	assert_int_equal(OCSP_resp_get0_id(bs, &key_id, &by_name), 1);
	assert_non_null(key_id);
	assert_null(by_name);
	assert_true(sk_X509_num(OCSP_resp_get0_certs(bs)) <= 0);
	online_response_clear(&rs);
	OCSP_BASICRESP_free(bs);
	OCSP_REQUEST_free(req);
	for (i = 0; i < 5; i++)
		OCSP_CERTID_free(ids[i]);
	ASN1_INTEGER_free(serial);
}

/* No nonce asked, none given; a revocation shows in the next answer. */
static void test_no_nonce_and_live_revocation(void **state)
{
	X509 *leaf = issue(svc.cas[0].ca, "CN=later");
	OCSP_CERTID *id = id_of(leaf, NULL);
	OCSP_REQUEST *req = request(&id, 1, 0);
	OCSP_BASICRESP *bs;
	struct online_response rs;

	post(req, &rs);
	bs = verified_basic(&rs, svc.cas[0].cert);
	assert_int_equal(OCSP_check_nonce(req, bs), 2); /* in neither */
	expect_status(bs, id, V_OCSP_CERTSTATUS_GOOD, 0);
	OCSP_BASICRESP_free(bs);
	online_response_clear(&rs);

	revoke_cert(leaf, 4);
	post(req, &rs);
	bs = verified_basic(&rs, svc.cas[0].cert);
	expect_status(bs, id, V_OCSP_CERTSTATUS_REVOKED, 4);
	OCSP_BASICRESP_free(bs);
	online_response_clear(&rs);
	OCSP_REQUEST_free(req);
	OCSP_CERTID_free(id);
	X509_free(leaf);
}

/* path = "/ocsp/" + base64 of der, '+', '/' and '=' percent-encoded
 * when escape is set, padding dropped when nopad is. */
static char *get_path(const unsigned char *der, size_t len, int escape, int nopad)
{
	char *b64 = NULL, *path, *o;
	size_t n, i;

	check(online_base64_encode(der, len, 0, &b64, &n));
	path = malloc(6 + 3 * n + 1);
	o = path + sprintf(path, "/ocsp/");
	for (i = 0; i < n; i++) {
		if (nopad && b64[i] == '=')
			break;
		if (escape && (b64[i] == '+' || b64[i] == '/' || b64[i] == '='))
			o += sprintf(o, "%%%02X", (unsigned char)b64[i]);
		else
			*o++ = b64[i];
	}
	*o = '\0';
	free(b64);
	return path;
}

static void test_get(void **state)
{
	OCSP_CERTID *id = id_of(revoked, NULL);
	OCSP_REQUEST *req = request(&id, 1, 1);
	struct online_response rs;
	unsigned char *der;
	size_t len = der_of(req, &der), form;
	char want[80];

	snprintf(want, sizeof(want), "Cache-Control: public, no-transform, must-revalidate, max-age=%d\r\n", VALIDITY);
	for (form = 0; form < 4; form++) {
		char *path = get_path(der, len, form & 1, form & 2);
		OCSP_BASICRESP *bs;

		answer(form == 3 ? "HEAD" : "GET", path, NULL, NULL, 0, time(NULL), &rs);
		bs = verified_basic(&rs, svc.cas[0].cert);
		expect_status(bs, id, V_OCSP_CERTSTATUS_REVOKED, 1);
		assert_int_equal(OCSP_check_nonce(req, bs), 1);
		assert_true(has_header(&rs, want));
		assert_true(has_header(&rs, "Last-Modified: "));
		assert_true(has_header(&rs, "Expires: "));
		assert_true(has_header(&rs, " GMT\r\n"));
		OCSP_BASICRESP_free(bs);
		online_response_clear(&rs);
		free(path);
	}
	OPENSSL_free(der);
	OCSP_REQUEST_free(req);
	OCSP_CERTID_free(id);
}

static void test_unauthorized(void **state)
{
	EVP_PKEY *other_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509 *other = self_signed(other_key, "CN=Test Root,O=Example"); /* same name, other key */
	OCSP_CERTID *ids[2];
	OCSP_REQUEST *req;
	OCSP_RESPONSE *resp;
	struct online_response rs;

	ids[0] = OCSP_cert_to_id(NULL, other, other);
	req = request(ids, 1, 1);
	post(req, &rs);
	resp = response_of(&rs, OCSP_RESPONSE_STATUS_UNAUTHORIZED);
	OCSP_RESPONSE_free(resp);
	online_response_clear(&rs);
	OCSP_REQUEST_free(req);

	/* a hash this responder does not take is not ours either */
	ids[1] = id_of(good, EVP_md5());
	req = request(&ids[1], 1, 0);
	post(req, &rs);
	resp = response_of(&rs, OCSP_RESPONSE_STATUS_UNAUTHORIZED);
	OCSP_RESPONSE_free(resp);
	online_response_clear(&rs);
	OCSP_REQUEST_free(req);

	/* served and foreign in one request: the foreign one is unknown
	 * (RFC 6960 4.2.2.3: a SingleResponse for each). OpenSSL takes a
	 * response about several issuers only from a responder it trusts
	 * explicitly: NOCHECKS skips that check, not the signature. */
	OCSP_CERTID_free(ids[1]);
	ids[1] = id_of(good, NULL);
	req = request(ids, 2, 0);
	post(req, &rs);
	{
		OCSP_BASICRESP *bs = verified_basic_flags(&rs, svc.cas[0].cert, OCSP_NOCHECKS);
		expect_status(bs, ids[1], V_OCSP_CERTSTATUS_GOOD, 0);
		expect_status(bs, ids[0], V_OCSP_CERTSTATUS_UNKNOWN, 0);
		OCSP_BASICRESP_free(bs);
	}
	online_response_clear(&rs);
	OCSP_REQUEST_free(req);
	OCSP_CERTID_free(ids[0]);
	OCSP_CERTID_free(ids[1]);
	X509_free(other);
	EVP_PKEY_free(other_key);
}

static void expect_malformed(const char *method, const char *path, const void *body, size_t len)
{
	struct online_response rs;
	OCSP_RESPONSE *resp;

	answer(method, path, "application/ocsp-request", body, len, time(NULL), &rs);
	resp = response_of(&rs, OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
	assert_true(has_header(&rs, "Cache-Control: no-cache\r\n"));
	OCSP_RESPONSE_free(resp);
	online_response_clear(&rs);
}

static void test_malformed(void **state)
{
	OCSP_CERTID *id = id_of(good, NULL);
	OCSP_REQUEST *req = request(&id, 1, 0), *empty = OCSP_REQUEST_new();
	unsigned char *der, *longer;
	size_t len = der_of(req, &der);

	expect_malformed("POST", "/ocsp", "garbage", 7);
	expect_malformed("POST", "/ocsp", NULL, 0);
	expect_malformed("POST", "/ocsp/", der, len - 1);
	longer = malloc(len + 1);
	memcpy(longer, der, len);
	longer[len] = 0;
	expect_malformed("POST", "/ocsp", longer, len + 1);	/* a byte after the request */
	OPENSSL_free(der);
	len = der_of(empty, &der);
	expect_malformed("POST", "/ocsp", der, len);		/* no CertID */
	expect_malformed("GET", "/ocsp/", NULL, 0);
	expect_malformed("GET", "/ocsp/!!!!", NULL, 0);
	expect_malformed("GET", "/ocsp/MA%zz", NULL, 0);
	expect_malformed("GET", "/ocsp/MA%", NULL, 0);
	expect_malformed("GET", "/ocsp/M", NULL, 0);
	expect_malformed("GET", "/ocsp/MAA=A", NULL, 0);
	expect_malformed("GET", "/ocsp/MAA%3D", NULL, 0);	/* SEQUENCE {} holds no request */
	free(longer);
	OPENSSL_free(der);
	OCSP_REQUEST_free(req);
	OCSP_REQUEST_free(empty);
	OCSP_CERTID_free(id);
}

static void test_oversized_nonce(void **state)
{
	OCSP_CERTID *id = id_of(good, NULL);
	OCSP_REQUEST *req = request(&id, 1, 0);
	unsigned char *der, big[33];
	size_t len;

	memset(big, 7, sizeof(big));
	assert_int_equal(OCSP_request_add1_nonce(req, big, sizeof(big)), 1);
	len = der_of(req, &der);
	expect_malformed("POST", "/ocsp", der, len);
	OPENSSL_free(der);
	OCSP_REQUEST_free(req);
	OCSP_CERTID_free(id);
}

static void expect_http(const char *method, const char *path, const char *ct, int status, const char *header)
{
	struct online_response rs;

	answer(method, path, ct, (const unsigned char *)"x", 1, time(NULL), &rs);
	assert_int_equal(rs.status, status);
	assert_string_equal(rs.content_type, "text/plain");
	if (header != NULL && !has_header(&rs, header))
		fail_msg("headers '%s' lack '%s'", rs.headers, header);
	online_response_clear(&rs);
}

static void test_methods(void **state)
{
	expect_http("PUT", "/ocsp", NULL, 405, "Allow: POST\r\n");
	expect_http("GET", "/ocsp", NULL, 405, "Allow: POST\r\n");
	expect_http("DELETE", "/ocsp/", NULL, 405, "Allow: GET, HEAD, POST\r\n");
	expect_http("POST", "/ocsp/MAA=", NULL, 405, "Allow: GET, HEAD\r\n");
	expect_http("POST", "/ocsp", "text/plain", 415, NULL);
	expect_http("GET", "/ocspx", NULL, 404, NULL);
}

/* The store and the signer are shared by the serve threads. */
static void *hammer(void *arg)
{
	OCSP_CERTID *id = id_of(arg, NULL);
	OCSP_REQUEST *req = request(&id, 1, 1);
	unsigned char *der;
	size_t len = der_of(req, &der);
	intptr_t failures = 0;
	int i;

	for (i = 0; i < 40; i++) {
		struct online_response rs;
		const unsigned char *p;
		OCSP_RESPONSE *resp;

		answer("POST", "/ocsp", NULL, der, len, time(NULL), &rs);
		p = rs.body;
		resp = d2i_OCSP_RESPONSE(NULL, &p, (long)rs.body_len);
		failures += resp == NULL || OCSP_response_status(resp) != OCSP_RESPONSE_STATUS_SUCCESSFUL;
		OCSP_RESPONSE_free(resp);
		online_response_clear(&rs);
	}
	OPENSSL_free(der);
	OCSP_REQUEST_free(req);
	OCSP_CERTID_free(id);
	return (void *)failures;
}

static void test_threads(void **state)
{
	pthread_t t[4];
	void *failures;
	int i;

	for (i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, hammer, i % 2 ? good : revoked), 0);
	for (i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(t[i], &failures), 0);
		assert_int_equal((intptr_t)failures, 0);
	}
}

/* ---- CRL ----------------------------------------------------------------- */

static void crl_get(const char *path, struct online_response *rs)
{
	struct online_request rq;

	memset(&rq, 0, sizeof(rq));
	memset(rs, 0, sizeof(*rs));
	rq.method = "GET";
	rq.path = path;
	rq.client_ip = "192.0.2.1";
	rq.now = time(NULL);
	online_crl_answer(&svc, cas, 1, &rq, rs);
}

static X509_CRL *crl_of(const unsigned char *der, size_t len)
{
	const unsigned char *p = der;
	X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)len);

	assert_non_null(crl);
	assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(svc.cas[0].cert)), 1);
	return crl;
}

static long crl_number(X509_CRL *crl)
{
	ASN1_INTEGER *n = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
	long v = ASN1_INTEGER_get(n);

	ASN1_INTEGER_free(n);
	return v;
}

static int crl_lists(X509_CRL *crl, X509 *x)
{
	X509_REVOKED *entry = NULL;

	return X509_CRL_get0_by_serial(crl, &entry, X509_get0_serialNumber(x)) == 1;
}

/* The CRL the service answers now, with its headers checked. */
static X509_CRL *fetch_crl(void)
{
	struct online_response rs;
	X509_CRL *crl;

	crl_get("/crl/test.crl", &rs);
	assert_int_equal(rs.status, 200);
	assert_string_equal(rs.content_type, "application/pkix-crl");
	assert_true(has_header(&rs, "Cache-Control: public, max-age="));
	assert_true(has_header(&rs, "Expires: "));
	assert_true(has_header(&rs, "Last-Modified: "));
	crl = crl_of(rs.body, rs.body_len);
	online_response_clear(&rs);
	return crl;
}

/* The DER file in crl_dir, which must be what is served. */
static X509_CRL *crl_file(void)
{
	char path[128];
	unsigned char buf[65536];
	struct stat sb;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/test.crl", tmpdir);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0644);
	f = fopen(path, "rb");
	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/test.crl.pem", tmpdir);
	assert_int_equal(stat(path, &sb), 0);
	return crl_of(buf, n);
}

static void test_crl(void **state)
{
	X509 *leaf = issue(svc.cas[0].ca, "CN=crl");
	X509_CRL *first, *again, *later, *file;

	svc.crl_dir = tmpdir;
	check(online_crl_setup(&svc, &svc.cas[0]));
	first = fetch_crl();
	assert_true(crl_lists(first, revoked));
	assert_true(crl_lists(first, unspecified));
	assert_false(crl_lists(first, good));
	assert_false(crl_lists(first, leaf));
	file = crl_file();
	assert_int_equal(crl_number(file), crl_number(first));
	X509_CRL_free(file);

	/* nothing new: the same CRL, not signed again */
	again = fetch_crl();
	assert_int_equal(crl_number(again), crl_number(first));

	revoke_cert(leaf, 1);
	later = fetch_crl();
	assert_true(crl_lists(later, leaf));
	assert_true(crl_number(later) > crl_number(first));
	file = crl_file();
	assert_true(crl_lists(file, leaf));
	X509_CRL_free(file);
	X509_CRL_free(first);
	X509_CRL_free(again);
	X509_CRL_free(later);
	X509_free(leaf);
	svc.crl_dir = NULL;
}

/* Signed again once less than a quarter of its period is left. */
static void test_crl_near_next_update(void **state)
{
	X509_CRL *before = fetch_crl(), *after;
	time_t next = 0;
	struct tm tm;

	assert_int_equal(ASN1_TIME_to_tm(X509_CRL_get0_nextUpdate(before), &tm), 1);
	next = timegm(&tm);
	check(online_crl_refresh(&svc, &svc.cas[0], next - 3600));
	after = fetch_crl();
	assert_true(crl_number(after) > crl_number(before));
	X509_CRL_free(before);
	X509_CRL_free(after);
}

static void test_crl_pem_and_errors(void **state)
{
	struct online_response rs;
	struct online_request rq;
	BIO *b;
	X509_CRL *crl;

	crl_get("/crl/test.pem", &rs);
	assert_int_equal(rs.status, 200);
	b = BIO_new_mem_buf(rs.body, (int)rs.body_len);
	crl = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL);
	assert_non_null(crl);
	assert_true(crl_lists(crl, revoked));
	X509_CRL_free(crl);
	BIO_free(b);
	online_response_clear(&rs);

	crl_get("/crl/other.crl", &rs);
	assert_int_equal(rs.status, 404);
	online_response_clear(&rs);
	crl_get("/crl/.crl", &rs);
	assert_int_equal(rs.status, 404);
	online_response_clear(&rs);
	crl_get("/crl/", &rs);
	assert_int_equal(rs.status, 404);
	online_response_clear(&rs);

	memset(&rq, 0, sizeof(rq));
	memset(&rs, 0, sizeof(rs));
	rq.method = "POST";
	rq.path = "/crl/test.crl";
	online_crl_answer(&svc, cas, 1, &rq, &rs);
	assert_int_equal(rs.status, 405);
	assert_true(has_header(&rs, "Allow: GET, HEAD\r\n"));
	online_response_clear(&rs);
}

/* ---- the delegated signer on a SoftHSM2 token ------------------------------ */

struct hsm {
	p11pki_module *m;
	p11pki_token *t;
};

static int open_token(struct hsm *h)
{
	p11pki_secret *so = NULL, *user = NULL;
	struct p11pki_uri *sel = NULL;
	char path[160], dir[128];
	unsigned long slot;
	FILE *f;
	int r;

	if (access(p11pki_default_module_path(), R_OK) != 0)
		return -1;
	snprintf(dir, sizeof(dir), "%s/tokens", tmpdir);
	snprintf(path, sizeof(path), "%s/softhsm2.conf", tmpdir);
	if (mkdir(dir, 0700) != 0 || (f = fopen(path, "w")) == NULL)
		return -1;
	fprintf(f, "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n", dir);
	fclose(f);
	setenv("SOFTHSM2_CONF", path, 1);
	setenv("P11PKI_HOME", tmpdir, 1);
	check(p11pki_secret_from("12345678", 8, &so));
	check(p11pki_secret_from("1234", 4, &user));
	if ((r = p11pki_module_open(NULL, &h->m)) == 0 &&
	    (r = p11pki_token_init(h->m, 0, 0, "ocsptest", so, user, &slot)) == 0 &&
	    (r = p11pki_uri_parse("pkcs11:token=ocsptest", &sel)) == 0 && (r = p11pki_token_open(h->m, sel, &h->t)) == 0)
		r = p11pki_token_login(h->t, user);
	p11pki_uri_free(sel);
	p11pki_secret_free(so);
	p11pki_secret_free(user);
	check(r);
	return 0;
}

/* The responder certificates of CA hsm in the store. */
static size_t ocsp_certs(char **last_serial)
{
	struct p11pki_store_cert *certs = NULL;
	size_t n = 0, i, found = 0;

	check(p11pki_store_cert_list(st, "hsm", NULL, &certs, &n));
	for (i = 0; i < n; i++)
		if (strcmp(certs[i].profile, "ocsp") == 0) {
			assert_string_equal(certs[i].requester, "p11pki serve (ocsp)");
			found++;
			if (last_serial != NULL) {
				free(*last_serial);
				*last_serial = strdup(certs[i].serial);
			}
		}
	p11pki_store_cert_list_free(certs, n);
	return found;
}

/* The serial of the signer certificate a response carries. */
static char *signer_serial(OCSP_BASICRESP *bs)
{
	const STACK_OF(X509) *certs = OCSP_resp_get0_certs(bs);

	assert_int_equal(sk_X509_num(certs), 1);
	return p11pki_cert_serial_hex(sk_X509_value(certs, 0));
}

static OCSP_BASICRESP *ask_hsm(X509 *leaf, time_t now)
{
	OCSP_CERTID *id = OCSP_cert_to_id(NULL, leaf, svc.cas[1].cert);
	OCSP_REQUEST *req = request(&id, 1, 1);
	struct online_response rs;
	struct online_request rq;
	OCSP_BASICRESP *bs;
	unsigned char *der;
	char *hsm_cas[] = { "test", "hsm" };
	int status = -1;

	memset(&rq, 0, sizeof(rq));
	rq.method = "POST";
	rq.path = "/ocsp";
	rq.body_len = der_of(req, &der);
	rq.body = der;
	rq.now = now;
	memset(&rs, 0, sizeof(rs));
	online_ocsp_answer(&svc, hsm_cas, 2, &rq, &rs);
	/* the CA is the anchor; the delegated signer comes with the response */
	bs = verified_basic(&rs, svc.cas[1].cert);
	assert_int_equal(OCSP_check_nonce(req, bs), 1);
	assert_int_equal(OCSP_resp_find_status(bs, id, &status, NULL, NULL, NULL, NULL), 1);
	assert_int_equal(status, V_OCSP_CERTSTATUS_GOOD);
	online_response_clear(&rs);
	OPENSSL_free(der);
	OCSP_REQUEST_free(req);
	OCSP_CERTID_free(id);
	return bs;
}

static void test_delegated_on_token(void **state)
{
	struct p11pki_ca_create cp;
	struct p11pki_key_info *keys = NULL;
	struct p11pki_uri filter;
	struct hsm h = { NULL, NULL };
	X509_NAME *subject = NULL;
	OCSP_BASICRESP *bs;
	X509 *leaf;
	char *first = NULL, *latest = NULL, *signer;
	size_t n = 0;

	if (open_token(&h) != 0)
		skip();
	memset(&cp, 0, sizeof(cp));
	check(p11pki_name_parse("CN=HSM CA,O=Example", &subject));
	cp.name = "hsm";
	cp.subject = subject;
	check(p11pki_keytype_parse("ec:p256", &cp.type));
	check(p11pki_ca_create(st, NULL, &cp, h.t, NULL, NULL));
	svc.n_cas = 2;
	snprintf(svc.cas[1].name, sizeof(svc.cas[1].name), "hsm");
	check(p11pki_ca_open(st, NULL, "hsm", h.t, &svc.cas[1].ca));
	svc.cas[1].cert = p11pki_ca_cert(svc.cas[1].ca);
	svc.cas[1].token = h.t;
	svc.ocsp_delegated = 1;

	/* a key "hsm-ocsp" is made on the token and a certificate issued */
	check(online_ocsp_setup(&svc, &svc.cas[1]));
	assert_int_equal(ocsp_certs(&first), 1);
	memset(&filter, 0, sizeof(filter));
	filter.object = "hsm-ocsp";
	check(p11pki_key_list(h.t, &filter, &keys, &n));
	assert_int_equal(n, 1);
	assert_int_equal(keys[0].kind, P11PKI_KEY_EC);
	p11pki_key_info_free(keys, n);

	leaf = issue(svc.cas[1].ca, "CN=on token");
	bs = ask_hsm(leaf, time(NULL));
	signer = signer_serial(bs);
	assert_string_equal(signer, first);
	free(signer);
	OCSP_BASICRESP_free(bs);

	/* a restart finds both again: no new key, no new certificate */
	check(online_ocsp_setup(&svc, &svc.cas[1]));
	assert_int_equal(ocsp_certs(NULL), 1);

	/* two thirds of its life later it is renewed, on the same key */
	bs = ask_hsm(leaf, time(NULL) + 25 * 86400);
	assert_int_equal(ocsp_certs(&latest), 2);
	assert_string_not_equal(latest, first);
	signer = signer_serial(bs);
	assert_string_equal(signer, latest);
	free(signer);
	OCSP_BASICRESP_free(bs);
	check(p11pki_key_list(h.t, &filter, &keys, &n));
	assert_int_equal(n, 1);
	p11pki_key_info_free(keys, n);

	svc.ocsp_delegated = 0;
	svc.n_cas = 1;
	online_ocsp_free(svc.cas[1].ocsp);
	p11pki_ca_close(svc.cas[1].ca);
	memset(&svc.cas[1], 0, sizeof(svc.cas[1]));
	X509_free(leaf);
	X509_NAME_free(subject);
	free(first);
	free(latest);
	p11pki_token_close(h.t);
	p11pki_module_close(h.m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_revoked_unknown),
		cmocka_unit_test(test_no_nonce_and_live_revocation),
		cmocka_unit_test(test_get),
		cmocka_unit_test(test_unauthorized),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_oversized_nonce),
		cmocka_unit_test(test_methods),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_crl),
		cmocka_unit_test(test_crl_near_next_update),
		cmocka_unit_test(test_crl_pem_and_errors),
		cmocka_unit_test(test_delegated_on_token),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
