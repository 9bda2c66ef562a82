/* EST (RFC 7030) handler against an in-memory CA (software keys, a real
 * store in a temp directory), its parsers, the secret hashes, the EST
 * users of the store and the schema migration that added them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509v3.h>

#include "online/base64.h"
#include "online/est.h"
#include "online/secret_hash.h"

#define WEB_SECRET "s3cret-of-web01"
#define ALICE_SECRET "alice-secret"
#define CERTS_ONLY "application/pkcs7-mime; smime-type=certs-only"

static char tmpdir[64], db_path[128];
static p11pki_store *st;
static EVP_PKEY *root_key, *ca_key, *other_key;
static X509 *root_cert, *other_cert;
static p11pki_ca *ca;
static struct online_service svc;
static const struct online_est_route routes[] = {
	{ "", "issuing", "server" },
	{ "clients", "issuing", "client" },
};

/* ---- fixtures ---- */

static void check(int r)
{
	if (r != 0)
		print_error("failed: %s\n", p11pki_errmsg());
	assert_int_equal(r, P11PKI_OK);
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

/* A CA certificate for key, self-signed or signed by issuer. */
static X509 *ca_cert(EVP_PKEY *key, const char *subject, X509 *issuer, EVP_PKEY *signer)
{
	struct p11pki_cert_template t;
	struct p11pki_profile prof;
	X509_NAME *name = NULL;
	X509 *x = NULL;

	memset(&t, 0, sizeof(t));
	check(p11pki_profile_builtin(issuer != NULL ? "subca" : "root", &prof));
	check(p11pki_name_parse(subject, &name));
	t.subject = name;
	t.public_key = key;
	t.issuer = issuer;
	t.profile = &prof;
	t.not_before = time(NULL) - 60;
	t.not_after = t.not_before + 86400 * 3650;
	check(p11pki_cert_build(&t, signer, &x));
	X509_NAME_free(name);
	p11pki_profile_clear(&prof);
	return x;
}

static void add_user(const char *name, const char *profile, const char *secret, int disabled)
{
	struct p11pki_store_est_user u = { 0 };
	char hash[P11PKI_EST_HASH_SIZE];

	check(p11pki_est_secret_hash(secret, strlen(secret), hash, sizeof(hash)));
	u.name = (char *)name;
	u.ca = "issuing";
	u.profile = (char *)profile;
	u.secret_hash = hash;
	u.disabled = disabled;
	check(p11pki_store_est_user_add(st, &u));
}

/* Root and issuing CA (software keys) in a fresh store, EST users, and
 * the service the handler sees. */
static int setup(void **state)
{
	struct p11pki_store_ca rec = { 0 };
	X509 *issuing;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/p11pki-est-XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	snprintf(db_path, sizeof(db_path), "%s/ca.db", tmpdir);
	check(p11pki_store_open(db_path, &st));
	root_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	other_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	root_cert = ca_cert(root_key, "CN=Test Root", NULL, root_key);
	issuing = ca_cert(ca_key, "CN=Test Issuing", root_cert, root_key);
	other_cert = ca_cert(other_key, "CN=Test Issuing", NULL, other_key); /* same name, other key */
	rec.name = "issuing";
	rec.parent = "root";
	rec.key_uri = "pkcs11:token=none;object=issuing";
	rec.cert_pem = pem_of(issuing);
	rec.chain_pem = pem_of(root_cert);
	check(p11pki_store_ca_add(st, &rec));
	free(rec.cert_pem);
	free(rec.chain_pem);
	X509_free(issuing);
	check(p11pki_ca_open_key(st, NULL, "issuing", ca_key, &ca));

	memset(&svc, 0, sizeof(svc));
	svc.st = st;
	svc.max_body = 16384;
	svc.n_cas = 1;
	snprintf(svc.cas[0].name, sizeof(svc.cas[0].name), "issuing");
	svc.cas[0].ca = ca;
	svc.cas[0].cert = p11pki_ca_cert(ca);
	svc.cas[0].chain = sk_X509_new_null();
	X509_up_ref(root_cert);
	sk_X509_push(svc.cas[0].chain, root_cert);

	add_user("web01", "server", WEB_SECRET, 0);
	add_user("alice", "client", ALICE_SECRET, 0);
	add_user("mallory", "server", "disabled-one", 1);
	return 0;
}

static int remove_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(p);
}

static int teardown(void **state)
{
	sk_X509_pop_free(svc.cas[0].chain, X509_free);
	p11pki_ca_close(ca);
	p11pki_store_close(st);
	X509_free(root_cert);
	X509_free(other_cert);
	EVP_PKEY_free(root_key);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(other_key);
	return nftw(tmpdir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* ---- requests ---- */

static X509_REQ *make_csr(EVP_PKEY *key, const char *subject, const char *san)
{
	GENERAL_NAMES *sans = sk_GENERAL_NAME_new_null();
	X509_NAME *name = NULL;
	GENERAL_NAME *gn = NULL;
	X509_REQ *req = NULL;

	check(p11pki_name_parse(subject, &name));
	if (san != NULL) {
		check(p11pki_san_parse(san, &gn));
		sk_GENERAL_NAME_push(sans, gn);
	}
	check(p11pki_csr_build(key, name, sans, &req));
	X509_NAME_free(name);
	GENERAL_NAMES_free(sans);
	return req;
}

static char *b64_of(const unsigned char *der, size_t len)
{
	char *out = NULL;
	size_t n;

	check(online_base64_encode(der, len, 1, &out, &n));
	return out;
}

static char *csr_b64(X509_REQ *req)
{
	unsigned char *der = NULL;
	int len = i2d_X509_REQ(req, &der);
	char *out;

	assert_true(len > 0);
	out = b64_of(der, (size_t)len);
	OPENSSL_free(der);
	return out;
}

static char *basic(const char *user, const char *secret)
{
	char creds[256], *b64, *out;

	snprintf(creds, sizeof(creds), "%s:%s", user, secret);
	b64 = b64_of((const unsigned char *)creds, strlen(creds));
	b64[strcspn(b64, "\n")] = '\0';
	assert_true(asprintf(&out, "Basic %s", b64) > 0);
	free(b64);
	return out;
}

struct call {
	const char *method, *path, *content_type, *authorization;
	const char *body;
	size_t body_len; /* 0: strlen(body) */
	X509 *client_cert;
};

static void answer(const struct call *c, struct online_response *rs)
{
	struct online_request rq;

	memset(&rq, 0, sizeof(rq));
	memset(rs, 0, sizeof(*rs));
	rq.method = c->method;
	rq.path = c->path;
	rq.content_type = c->content_type;
	rq.authorization = c->authorization;
	rq.body = (const unsigned char *)c->body;
	rq.body_len = c->body_len ? c->body_len : c->body ? strlen(c->body) : 0;
	rq.client_cert = c->client_cert;
	rq.client_ip = "192.0.2.1";
	rq.now = time(NULL);
	online_est_answer(&svc, routes, sizeof(routes) / sizeof(routes[0]), &rq, rs);
}

/* POSTs a request to an enroll path and returns the status. */
static int enroll(const char *path, X509_REQ *req, const char *auth, X509 *client_cert, struct online_response *rs)
{
	char *body = csr_b64(req);
	struct call c = { .method = "POST", .path = path, .content_type = "application/pkcs10", .authorization = auth,
			  .body = body, .client_cert = client_cert };

	answer(&c, rs);
	free(body);
	return rs->status;
}

static int has_header(const struct online_response *rs, const char *line)
{
	return strstr(rs->headers, line) != NULL;
}

/* Bodies are not NUL-terminated. */
static int body_has(const struct online_response *rs, const char *text)
{
	return rs->body != NULL && memmem(rs->body, rs->body_len, text, strlen(text)) != NULL;
}

static void assert_one_line(const struct online_response *rs)
{
	assert_non_null(rs->body);
	assert_true(rs->body_len > 1);
	assert_int_equal(rs->body[rs->body_len - 1], '\n');
	assert_null(memchr(rs->body, '\n', rs->body_len - 1));
}

/* The certificates of a base64 certs-only answer; checks its form. */
static STACK_OF(X509) *certs_of(const struct online_response *rs)
{
	STACK_OF(X509) *out = sk_X509_new_null();
	const unsigned char *p;
	unsigned char *der = NULL;
	size_t len = 0;
	PKCS7 *p7;
	int i;

	assert_true(has_header(rs, "Content-Transfer-Encoding: base64\r\n"));
	check(online_base64_decode((const char *)rs->body, rs->body_len, 1, &der, &len));
	p = der;
	assert_non_null(p7 = d2i_PKCS7(NULL, &p, (long)len));
	assert_ptr_equal(p, der + len);
	assert_true(PKCS7_type_is_signed(p7));
	assert_int_equal(sk_PKCS7_SIGNER_INFO_num(p7->d.sign->signer_info), 0);
	assert_int_equal(OBJ_obj2nid(p7->d.sign->contents->type), NID_pkcs7_data);
	assert_null(p7->d.sign->contents->d.ptr); /* eContent absent (RFC 5272) */
	for (i = 0; i < sk_X509_num(p7->d.sign->cert); i++) {
		X509_up_ref(sk_X509_value(p7->d.sign->cert, i));
		sk_X509_push(out, sk_X509_value(p7->d.sign->cert, i));
	}
	PKCS7_free(p7);
	free(der);
	return out;
}

/* The one certificate of a 200 enroll answer, signed by the issuing CA. */
static X509 *issued_cert(const struct online_response *rs)
{
	STACK_OF(X509) *certs;
	X509 *x;

	assert_int_equal(rs->status, 200);
	assert_string_equal(rs->content_type, CERTS_ONLY);
	certs = certs_of(rs);
	assert_int_equal(sk_X509_num(certs), 1);
	x = sk_X509_shift(certs);
	sk_X509_free(certs);
	assert_int_equal(X509_verify(x, ca_key), 1);
	assert_int_equal(X509_check_issued(p11pki_ca_cert(ca), x), X509_V_OK);
	return x;
}

static void assert_requester(X509 *x, const char *want)
{
	struct p11pki_store_cert row;
	char *serial = p11pki_cert_serial_hex(x);

	check(p11pki_store_cert_get(st, "issuing", serial, &row));
	assert_string_equal(row.requester, want);
	p11pki_store_cert_clear(&row);
	free(serial);
}

static size_t issued_count(void)
{
	size_t n = 0;

	check(p11pki_store_cert_count(st, "issuing", &n));
	return n;
}

/* A client certificate of the issuing CA for CN=alice, through EST. */
static X509 *alice_cert(EVP_PKEY *key)
{
	struct online_response rs;
	X509_REQ *req = make_csr(key, "CN=alice", NULL);
	char *auth = basic("alice", ALICE_SECRET);
	X509 *x;

	enroll("/.well-known/est/clients/simpleenroll", req, auth, NULL, &rs);
	x = issued_cert(&rs);
	online_response_clear(&rs);
	X509_REQ_free(req);
	free(auth);
	return x;
}

/* ---- the handler ---- */

static void test_cacerts(void **state)
{
	struct call c = { .method = "GET", .path = "/.well-known/est/cacerts" };
	struct online_response rs;
	STACK_OF(X509) *certs;

	answer(&c, &rs);
	assert_int_equal(rs.status, 200);
	assert_string_equal(rs.content_type, "application/pkcs7-mime");
	certs = certs_of(&rs);
	assert_int_equal(sk_X509_num(certs), 2);
	assert_int_equal(X509_cmp(sk_X509_value(certs, 0), p11pki_ca_cert(ca)), 0);
	assert_int_equal(X509_cmp(sk_X509_value(certs, 1), root_cert), 0);
	sk_X509_pop_free(certs, X509_free);
	online_response_clear(&rs);

	c.path = "/.well-known/est/clients/cacerts"; /* a label: the same CA */
	answer(&c, &rs);
	assert_int_equal(rs.status, 200);
	online_response_clear(&rs);
}

static void test_enroll_basic(void **state)
{
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509_REQ *req = make_csr(key, "CN=www.example.com", "dns:www.example.com");
	char *auth = basic("web01", WEB_SECRET);
	struct online_response rs;
	X509 *x;

	enroll("/.well-known/est/simpleenroll", req, auth, NULL, &rs);
	x = issued_cert(&rs);
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(x), key), 1);
	assert_requester(x, "est:web01");
	X509_free(x);
	online_response_clear(&rs);
	X509_REQ_free(req);
	EVP_PKEY_free(key);
	free(auth);
}

static void assert_401(const char *auth, X509 *client_cert)
{
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509_REQ *req = make_csr(key, "CN=www.example.com", "dns:www.example.com");
	struct online_response rs;
	size_t before = issued_count();

	assert_int_equal(enroll("/.well-known/est/simpleenroll", req, auth, client_cert, &rs), 401);
	assert_true(has_header(&rs, "WWW-Authenticate: Basic realm=\"p11pki EST\"\r\n"));
	assert_one_line(&rs);
	assert_false(body_has(&rs, WEB_SECRET));
	assert_int_equal(issued_count(), before);
	online_response_clear(&rs);
	X509_REQ_free(req);
	EVP_PKEY_free(key);
}

static void test_enroll_unauthorized(void **state)
{
	char *wrong = basic("web01", "not-the-secret");
	char *unknown = basic("nobody", WEB_SECRET);
	char *disabled = basic("mallory", "disabled-one");
	char *prefix = basic("web01", "s3cret-of-web0");

	assert_401(NULL, NULL);
	assert_401(wrong, NULL);
	assert_401(unknown, NULL);
	assert_401(disabled, NULL);
	assert_401(prefix, NULL);
	assert_401("Bearer abc", NULL);
	assert_401("Basic !!!", NULL);
	assert_401(NULL, other_cert); /* a certificate of another CA is no credential */
	free(wrong);
	free(unknown);
	free(disabled);
	free(prefix);
}

/* A user made for the client profile may not enroll at the server label. */
static void test_enroll_other_route(void **state)
{
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509_REQ *req = make_csr(key, "CN=alice", NULL);
	char *auth = basic("alice", ALICE_SECRET);
	struct online_response rs;

	assert_int_equal(enroll("/.well-known/est/simpleenroll", req, auth, NULL, &rs), 403);
	assert_one_line(&rs);
	online_response_clear(&rs);
	X509_REQ_free(req);
	EVP_PKEY_free(key);
	free(auth);
}

static int post_body(const char *body, size_t len, const char *content_type, struct online_response *rs)
{
	char *auth = basic("web01", WEB_SECRET);
	struct call c = { .method = "POST", .path = "/.well-known/est/simpleenroll", .content_type = content_type,
			  .authorization = auth, .body = body, .body_len = len };

	answer(&c, rs);
	free(auth);
	return rs->status;
}

static void test_enroll_bad_body(void **state)
{
	static const char *const bodies[] = {
		"not base64 at all!",
		"aGVsbG8=\n",		/* "hello": base64, not DER */
		"MIIB",			/* truncated DER */
		"=AAA",
	};
	struct online_response rs;
	size_t i, before = issued_count();

	for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		assert_int_equal(post_body(bodies[i], 0, "application/pkcs10", &rs), 400);
		assert_one_line(&rs);
		online_response_clear(&rs);
	}
	assert_int_equal(post_body("\0\0\0\0", 4, "application/pkcs10", &rs), 400);
	online_response_clear(&rs);
	assert_int_equal(post_body(NULL, 0, "application/pkcs10", &rs), 400);
	online_response_clear(&rs);
	assert_int_equal(post_body("aGVsbG8=", 0, "text/plain", &rs), 415);
	online_response_clear(&rs);
	assert_int_equal(post_body("aGVsbG8=", 0, NULL, &rs), 415);
	online_response_clear(&rs);
	assert_int_equal(issued_count(), before);
}

/* A CSR whose signature was altered after signing. */
static void test_enroll_bad_signature(void **state)
{
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509_REQ *req = make_csr(key, "CN=www.example.com", "dns:www.example.com");
	unsigned char *der = NULL;
	struct online_response rs;
	int len = i2d_X509_REQ(req, &der);
	char *b64;

	der[len - 3] ^= 0x55; /* inside the signature's last INTEGER */
	b64 = b64_of(der, (size_t)len);
	assert_int_equal(post_body(b64, 0, "application/pkcs10", &rs), 400);
	assert_true(body_has(&rs, "signature"));
	online_response_clear(&rs);
	free(b64);
	OPENSSL_free(der);
	X509_REQ_free(req);
	EVP_PKEY_free(key);
}

static void test_enroll_policy_refused(void **state)
{
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509_REQ *req = make_csr(key, "CN=www.example.com", NULL); /* server needs a SAN */
	char *auth = basic("web01", WEB_SECRET);
	struct online_response rs;
	size_t before = issued_count();

	assert_int_equal(enroll("/.well-known/est/simpleenroll", req, auth, NULL, &rs), 403);
	assert_one_line(&rs);
	assert_true(body_has(&rs, "subjectAltName"));
	assert_int_equal(issued_count(), before);
	online_response_clear(&rs);
	X509_REQ_free(req);
	EVP_PKEY_free(key);
	free(auth);
}

/* A client certificate of the CA enrolls without Basic credentials. */
static void test_enroll_client_cert(void **state)
{
	EVP_PKEY *k1 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	EVP_PKEY *k2 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509 *alice = alice_cert(k1), *x;
	X509_REQ *req = make_csr(k2, "CN=www.example.com", "dns:www.example.com");
	X509_REQ *own = make_csr(k2, "CN=alice", NULL);
	struct online_response rs;

	/* its own identity, at a label of its own profile */
	enroll("/.well-known/est/clients/simpleenroll", own, NULL, alice, &rs);
	x = issued_cert(&rs);
	assert_requester(x, "est-cert:CN=alice@192.0.2.1");
	X509_free(x);
	online_response_clear(&rs);
	/* another identity needs HTTP Basic, whatever certificate is shown */
	enroll("/.well-known/est/simpleenroll", req, NULL, alice, &rs);
	assert_int_equal(rs.status, 401);
	online_response_clear(&rs);
	X509_REQ_free(own);
	X509_REQ_free(req);
	X509_free(alice);
	EVP_PKEY_free(k1);
	EVP_PKEY_free(k2);
}

static void test_reenroll(void **state)
{
	EVP_PKEY *k1 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	EVP_PKEY *k2 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509 *alice = alice_cert(k1), *x;
	X509_REQ *same = make_csr(k2, "CN=alice", NULL);
	X509_REQ *renamed = make_csr(k2, "CN=mallory", NULL);
	X509_REQ *with_san = make_csr(k2, "CN=alice", "email:alice@example.com");
	const char *path = "/.well-known/est/clients/simplereenroll";
	struct online_response rs;
	char *serial;

	/* a new key for the same subject */
	enroll(path, same, NULL, alice, &rs);
	x = issued_cert(&rs);
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(x), k2), 1);
	assert_int_equal(X509_NAME_cmp(X509_get_subject_name(x), X509_get_subject_name(alice)), 0);
	assert_requester(x, "est-cert:CN=alice@192.0.2.1");
	X509_free(x);
	online_response_clear(&rs);

	/* other subject or names, no certificate, another CA's, another label's profile */
	assert_int_equal(enroll(path, renamed, NULL, alice, &rs), 403);
	assert_one_line(&rs);
	online_response_clear(&rs);
	assert_int_equal(enroll(path, with_san, NULL, alice, &rs), 403);
	online_response_clear(&rs);
	assert_int_equal(enroll(path, same, NULL, NULL, &rs), 403);
	online_response_clear(&rs);
	assert_int_equal(enroll(path, same, NULL, other_cert, &rs), 403);
	online_response_clear(&rs);
	assert_int_equal(enroll("/.well-known/est/simplereenroll", same, NULL, alice, &rs), 403);
	online_response_clear(&rs);

	/* nor once revoked */
	serial = p11pki_cert_serial_hex(alice);
	check(p11pki_ca_revoke(st, "issuing", serial, 1));
	assert_int_equal(enroll(path, same, NULL, alice, &rs), 403);
	assert_true(body_has(&rs, "revoked"));
	online_response_clear(&rs);
	free(serial);

	X509_REQ_free(same);
	X509_REQ_free(renamed);
	X509_REQ_free(with_san);
	X509_free(alice);
	EVP_PKEY_free(k1);
	EVP_PKEY_free(k2);
}

static void expect(const char *method, const char *p, int status, const char *header)
{
	struct call c = { .method = method, .path = p };
	struct online_response rs;

	answer(&c, &rs);
	if (rs.status != status)
		print_error("%s %s: %d, want %d\n", method, p, rs.status, status);
	assert_int_equal(rs.status, status);
	if (header != NULL)
		assert_true(has_header(&rs, header));
	online_response_clear(&rs);
}

static void test_paths_and_methods(void **state)
{
	struct online_response rs;
	char *big = malloc(svc.max_body + 2);

	expect("GET", "/.well-known/est/simpleenroll", 405, "Allow: POST\r\n");
	expect("POST", "/.well-known/est/cacerts", 405, "Allow: GET\r\n");
	expect("PUT", "/.well-known/est/clients/simplereenroll", 405, "Allow: POST\r\n");
	expect("GET", "/.well-known/est/nolabel/cacerts", 404, NULL);
	expect("GET", "/.well-known/est/clients/", 404, NULL);
	expect("GET", "/.well-known/est//cacerts", 404, NULL);
	expect("GET", "/.well-known/est/clients/cacerts/x", 404, NULL);
	expect("GET", "/.well-known/est/whatever", 404, NULL);
	expect("GET", "/.well-known/est/", 404, NULL);
	expect("POST", "/.well-known/est/fullcmc", 501, NULL);
	expect("GET", "/.well-known/est/csrattrs", 204, NULL);
	expect("GET", "/.well-known/est/clients/csrattrs", 204, NULL);

	memset(big, 'A', svc.max_body + 1);
	big[svc.max_body + 1] = '\0';
	assert_int_equal(post_body(big, 0, "application/pkcs10", &rs), 413);
	online_response_clear(&rs);
	free(big);
}

/* ---- parsers ---- */

static void test_parse_basic(void **state)
{
	char user[EST_USER_MAX], secret[EST_SECRET_MAX], small[4];
	static const char *const refused[] = {
		"Basic", "Basic ", "Bearer d2ViMDE6eA==", "Basicd2ViMDE6eA==", "Basic d2ViMDE6eA",
		"Basic d2ViMDE=",		/* "web01": no colon */
		"Basic OnNlY3JldA==",		/* ":secret": no user */
		"Basic d2ViAQE6eA==",		/* control bytes in the user */
		"Basic d2ViMDE6AA==",		/* a NUL in the secret */
		"Basic d2ViMDE6eA== junk",
	};
	size_t i;

	check(est_parse_basic("Basic d2ViMDE6czNjcmV0", user, sizeof(user), secret, sizeof(secret)));
	assert_string_equal(user, "web01");
	assert_string_equal(secret, "s3cret");
	/* scheme in any case, blanks around, a colon inside the secret */
	check(est_parse_basic("bAsIc \t d2ViMDE6YTpi  ", user, sizeof(user), secret, sizeof(secret)));
	assert_string_equal(user, "web01");
	assert_string_equal(secret, "a:b");
	check(est_parse_basic("Basic d2ViMDE6", user, sizeof(user), secret, sizeof(secret)));
	assert_string_equal(secret, "");
	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		memset(secret, 'x', sizeof(secret));
		assert_int_equal(est_parse_basic(refused[i], user, sizeof(user), secret, sizeof(secret)), P11PKI_E_ARG);
		assert_int_equal(secret[0], '\0');
		assert_null(strchr(p11pki_errmsg(), '\n'));
	}
	assert_int_equal(est_parse_basic(NULL, user, sizeof(user), secret, sizeof(secret)), P11PKI_E_ARG);
	/* too long for the buffers */
	assert_int_equal(est_parse_basic("Basic d2ViMDE6czNjcmV0", small, sizeof(small), secret, sizeof(secret)),
			 P11PKI_E_ARG);
	assert_int_equal(est_parse_basic("Basic d2ViMDE6czNjcmV0", user, sizeof(user), small, sizeof(small)),
			 P11PKI_E_ARG);
	assert_null(strstr(p11pki_errmsg(), "s3cret"));
}

static void test_decode_pkcs10(void **state)
{
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509_REQ *req = make_csr(key, "CN=www.example.com", "dns:www.example.com"), *got = NULL;
	unsigned char *der = NULL, *longer;
	int len = i2d_X509_REQ(req, &der);
	char *b64 = b64_of(der, (size_t)len), *crlf, *p;
	size_t i, o = 0;

	check(est_decode_pkcs10((unsigned char *)b64, strlen(b64), &got));
	assert_int_equal(X509_REQ_verify(got, key), 1);
	X509_REQ_free(got);
	/* CRLF line breaks and blanks are fine */
	crlf = malloc(2 * strlen(b64) + 1);
	for (p = b64; *p != '\0'; p++) {
		if (*p == '\n')
			crlf[o++] = '\r';
		crlf[o++] = *p;
	}
	crlf[o] = '\0';
	check(est_decode_pkcs10((unsigned char *)crlf, o, &got));
	X509_REQ_free(got);
	/* a byte after the request, PEM armour, nothing */
	longer = malloc((size_t)len + 1);
	memcpy(longer, der, (size_t)len);
	longer[len] = 0;
	free(b64);
	b64 = b64_of(longer, (size_t)len + 1);
	got = (X509_REQ *)1;
	assert_int_equal(est_decode_pkcs10((unsigned char *)b64, strlen(b64), &got), P11PKI_E_ARG);
	assert_null(got);
	assert_non_null(strstr(p11pki_errmsg(), "1 bytes after"));
	assert_int_equal(est_decode_pkcs10((const unsigned char *)"-----BEGIN CERTIFICATE REQUEST-----", 35, &got),
			 P11PKI_E_ARG);
	assert_int_equal(est_decode_pkcs10((const unsigned char *)"", 0, &got), P11PKI_E_ARG);
	/* every truncation fails cleanly */
	for (i = 0; i + 4 < strlen(crlf); i += 4)
		if (est_decode_pkcs10((unsigned char *)crlf, i, &got) == 0)
			X509_REQ_free(got);
	free(longer);
	free(crlf);
	free(b64);
	OPENSSL_free(der);
	X509_REQ_free(req);
	EVP_PKEY_free(key);
}

static void test_base64(void **state)
{
	static const unsigned char bytes[] = { 0xfb, 0xff, 0x00, 0x41, 0x42 };
	/* strict: the alphabet, padding only at the end, whole groups */
	static const char *const bad[] = { "QUJD=", "QU=D", "Q===", "QUJ", "QQ==QUJD", "QUJD\x01", "QU-_" };
	unsigned char *out = NULL, big[100];
	char *text = NULL, url[16];
	size_t len, i;

	check(online_base64_encode(bytes, sizeof(bytes), 0, &text, &len));
	assert_string_equal(text, "+/8AQUI=");
	assert_int_equal(len, 8);
	check(online_base64_decode(text, len, 0, &out, &len));
	assert_int_equal(len, sizeof(bytes));
	assert_memory_equal(out, bytes, sizeof(bytes));
	free(out);
	free(text);
	check(online_base64url_encode(bytes, sizeof(bytes), url, sizeof(url)));
	assert_string_equal(url, "-_8AQUI");
	assert_int_equal(online_base64url_encode(bytes, sizeof(bytes), url, 7), P11PKI_E_ARG);
	/* 64-character lines, each ending in \n */
	memset(big, 7, sizeof(big));
	check(online_base64_encode(big, sizeof(big), 1, &text, &len));
	assert_int_equal(len, online_base64_encoded_len(sizeof(big), 1));
	assert_int_equal(strcspn(text, "\n"), 64);
	assert_int_equal(text[len - 1], '\n');
	check(online_base64_decode(text, len, 1, &out, &len));
	assert_int_equal(len, sizeof(big));
	free(out);
	assert_int_equal(online_base64_decode(text, strlen(text), 0, &out, &len), P11PKI_E_ARG);
	free(text);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(online_base64_decode(bad[i], strlen(bad[i]), 1, &out, &len), P11PKI_E_ARG);
		assert_null(out);
	}
	check(online_base64_decode("", 0, 1, &out, &len));
	assert_int_equal(len, 0);
	free(out);
}

/* ---- secret hashes ---- */

static void test_secret_hash(void **state)
{
	char hash[P11PKI_EST_HASH_SIZE], other[P11PKI_EST_HASH_SIZE], secret[P11PKI_EST_SECRET_SIZE], bad[256];
	static const char *const malformed[] = {
		"",
		"sha1$20000$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"pbkdf2-sha256$999$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"pbkdf2-sha256$020000$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"pbkdf2-sha256$99999999$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"pbkdf2-sha256$2e4$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"pbkdf2-sha256$20000$AAAAAAAAAAAAAAAAAAAAAA==",
		"pbkdf2-sha256$20000$AAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", /* 3-byte salt */
		"pbkdf2-sha256$20000$AAAAAAAAAAAAAAAAAAAAAA==$AAAA",		   /* short hash */
		"pbkdf2-sha256$20000$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=$",
		"pbkdf2-sha256$20000$AAAAAAAAAAAAAAAA!AAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
	};
	size_t i;

	check(p11pki_est_secret_new(secret, sizeof(secret)));
	assert_int_equal(strlen(secret), 32);
	assert_int_equal(strspn(secret, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"), 32);
	check(p11pki_est_secret_hash(secret, strlen(secret), hash, sizeof(hash)));
	check(p11pki_est_secret_hash(secret, strlen(secret), other, sizeof(other)));
	assert_string_not_equal(hash, other); /* salted */
	assert_int_equal(strncmp(hash, "pbkdf2-sha256$20000$", 20), 0);
	assert_null(strstr(hash, secret));
	assert_int_equal(p11pki_est_secret_verify(secret, strlen(secret), hash), 1);
	assert_int_equal(p11pki_est_secret_verify(secret, strlen(secret), other), 1);
	assert_int_equal(p11pki_est_secret_verify(secret, strlen(secret) - 1, hash), 0);
	assert_int_equal(p11pki_est_secret_verify("wrong", 5, hash), 0);
	assert_int_equal(p11pki_est_secret_verify(secret, strlen(secret), NULL), 0);
	for (i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
		assert_int_equal(p11pki_est_secret_verify(secret, strlen(secret), malformed[i]), P11PKI_E_ARG);
		assert_null(strstr(p11pki_errmsg(), secret));
	}
	/* one changed character of the hash is a mismatch or malformed, never a match */
	snprintf(bad, sizeof(bad), "%s", hash);
	bad[strlen(bad) - 3] = bad[strlen(bad) - 3] == 'A' ? 'B' : 'A';
	assert_true(p11pki_est_secret_verify(secret, strlen(secret), bad) <= 0);
	assert_int_equal(p11pki_est_secret_hash(secret, strlen(secret), bad, 40), P11PKI_E_ARG);
	assert_int_equal(p11pki_est_secret_hash("", 0, bad, sizeof(bad)), P11PKI_E_ARG);

	assert_true(p11pki_est_user_name_ok("web01"));
	assert_true(p11pki_est_user_name_ok("a.b_c@d-e"));
	assert_false(p11pki_est_user_name_ok(""));
	assert_false(p11pki_est_user_name_ok("a:b"));
	assert_false(p11pki_est_user_name_ok("a b"));
	assert_false(p11pki_est_user_name_ok("\xc3\xa9"));
	assert_false(p11pki_est_user_name_ok("0123456789012345678901234567890123456789012345678901234567890123"));
}

/* ---- the store ---- */

static void test_store_users(void **state)
{
	struct p11pki_store_est_user u = { 0 }, *all = NULL;
	size_t n = 0;

	check(p11pki_store_est_user_get(st, "web01", &u));
	assert_string_equal(u.name, "web01");
	assert_string_equal(u.ca, "issuing");
	assert_string_equal(u.profile, "server");
	assert_int_equal(p11pki_est_secret_verify(WEB_SECRET, strlen(WEB_SECRET), u.secret_hash), 1);
	assert_int_equal(u.disabled, 0);
	assert_true(u.created > 0);
	/* the name is taken; an unknown CA is refused */
	assert_int_equal(p11pki_store_est_user_add(st, &u), P11PKI_E_EXISTS);
	p11pki_store_est_user_clear(&u);
	u.name = "new";
	u.ca = "nosuchca";
	u.profile = "server";
	u.secret_hash = "x";
	assert_int_equal(p11pki_store_est_user_add(st, &u), P11PKI_E_NOTFOUND);
	u.ca = NULL;
	assert_int_equal(p11pki_store_est_user_add(st, &u), P11PKI_E_ARG);

	check(p11pki_store_est_user_list(st, &all, &n));
	assert_int_equal(n, 3);
	assert_string_equal(all[0].name, "alice");
	assert_string_equal(all[1].name, "mallory");
	assert_int_equal(all[1].disabled, 1);
	assert_string_equal(all[2].name, "web01");
	p11pki_store_est_user_list_free(all, n);

	check(p11pki_store_est_user_delete(st, "mallory"));
	assert_int_equal(p11pki_store_est_user_delete(st, "mallory"), P11PKI_E_NOTFOUND);
	assert_int_equal(p11pki_store_est_user_get(st, "mallory", &u), P11PKI_E_NOTFOUND);
	assert_null(u.name);
	assert_non_null(strstr(p11pki_errmsg(), "no EST user named 'mallory'"));
}

/* The schema of version 1, as released, with a CA in it. */
static const char v1_schema[] =
	"CREATE TABLE meta(key TEXT NOT NULL PRIMARY KEY, value TEXT NOT NULL);"
	"CREATE TABLE cas(name TEXT NOT NULL PRIMARY KEY, parent TEXT,"
	" key_uri TEXT NOT NULL, cert_pem TEXT, chain_pem TEXT, config TEXT,"
	" created INTEGER, crl_number INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE certs(ca TEXT NOT NULL REFERENCES cas(name),"
	" serial TEXT NOT NULL, subject TEXT, sans TEXT, profile TEXT,"
	" requester TEXT, pem TEXT NOT NULL, not_before INTEGER,"
	" not_after INTEGER, issued INTEGER,"
	" status INTEGER NOT NULL DEFAULT 0 CHECK (status IN (0, 1)),"
	" revoked INTEGER, reason INTEGER, PRIMARY KEY(ca, serial));"
	"CREATE INDEX certs_ca_status ON certs(ca, status);"
	"CREATE INDEX certs_ca_not_after ON certs(ca, not_after);"
	"INSERT INTO meta VALUES ('schema_version', '1');"
	"INSERT INTO cas(name, key_uri, cert_pem, created) VALUES ('old', 'pkcs11:object=old', 'PEM', 1);";

static void test_migration_from_v1(void **state)
{
	struct p11pki_store_est_user u = { "bob", "old", "client", "h", 0, 0 }, got;
	struct p11pki_store_ca rec;
	p11pki_store *old = NULL;
	char v1[160];
	sqlite3 *db = NULL;

	snprintf(v1, sizeof(v1), "%s/v1.db", tmpdir);
	assert_int_equal(sqlite3_open(v1, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, v1_schema, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);

	check(p11pki_store_open(v1, &old));
	assert_int_equal(p11pki_store_schema_version(old), 2);
	check(p11pki_store_ca_get(old, "old", &rec));
	assert_string_equal(rec.cert_pem, "PEM");
	p11pki_store_ca_clear(&rec);
	check(p11pki_store_est_user_add(old, &u));
	p11pki_store_close(old);

	/* reopened: current, the user kept */
	check(p11pki_store_open(v1, &old));
	assert_int_equal(p11pki_store_schema_version(old), P11PKI_STORE_SCHEMA_VERSION);
	check(p11pki_store_est_user_get(old, "bob", &got));
	assert_string_equal(got.profile, "client");
	p11pki_store_est_user_clear(&got);
	p11pki_store_close(old);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_cacerts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_enroll_basic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_enroll_unauthorized, setup, teardown),
		cmocka_unit_test_setup_teardown(test_enroll_other_route, setup, teardown),
		cmocka_unit_test_setup_teardown(test_enroll_bad_body, setup, teardown),
		cmocka_unit_test_setup_teardown(test_enroll_bad_signature, setup, teardown),
		cmocka_unit_test_setup_teardown(test_enroll_policy_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_enroll_client_cert, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reenroll, setup, teardown),
		cmocka_unit_test_setup_teardown(test_paths_and_methods, setup, teardown),
		cmocka_unit_test(test_parse_basic),
		cmocka_unit_test(test_decode_pkcs10),
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_secret_hash),
		cmocka_unit_test_setup_teardown(test_store_users, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migration_from_v1, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
