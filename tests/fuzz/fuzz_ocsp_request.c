/* libFuzzer harness for the OCSP responder: arbitrary bytes as a POST
 * body, as the raw GET path and base64-encoded into a GET path, answered
 * by a fixed CA (its key in memory, a store in a temp directory holding
 * serial 1000 good and 1001 revoked; the seed corpus asks about them).
 * Every answer must be HTTP 200 with a DER OCSPResponse and never
 * internalError or tryLater; a successful one must verify against the CA
 * and hold one status per CertID and the nonce; POST and GET of the same
 * bytes must get the same status. */
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>

#include "online/base64.h"
#include "online/online.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A throw-away test CA (EC P-256), so that seeds can name its hashes. */
static const char ca_key_pem[] =
	"-----BEGIN PRIVATE KEY-----\n"
	"MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgtwoffWc38KnpmzyO\n"
	"2CBIcAFxlnRpiT/gqxCaGL4+6iWhRANCAAROQR6tYiH6/YFXj0vLmgIsbl3YpgjD\n"
	"fEnd4hmhYERK4i/1Kn/SRvHsFNqwudqI16JEXHVWs9WUpcm8FFlGk/tc\n"
	"-----END PRIVATE KEY-----\n";
static const char ca_cert_pem[] =
	"-----BEGIN CERTIFICATE-----\n"
	"MIIBizCCATGgAwIBAgIUDHpRBRviAOnHJ6inLqK5djrmDf0wCgYIKoZIzj0EAwIw\n"
	"EjEQMA4GA1UEAwwHRnV6eiBDQTAgFw0yNjExMjMxNDExMzJaGA8yMTI2MTAzMDE0\n"
	"MTEzMlowEjEQMA4GA1UEAwwHRnV6eiBDQTBZMBMGByqGSM49AgEGCCqGSM49AwEH\n"
	"A0IABE5BHq1iIfr9gVePS8uaAixuXdimCMN8Sd3iGaFgREriL/Uqf9JG8ewU2rC5\n"
	"2ojXokRcdVaz1ZSlybwUWUaT+1yjYzBhMB0GA1UdDgQWBBStxTQ32aPW9Z1AAz3S\n"
	"jwMaj0wGzzAfBgNVHSMEGDAWgBStxTQ32aPW9Z1AAz3SjwMaj0wGzzAPBgNVHRMB\n"
	"Af8EBTADAQH/MA4GA1UdDwEB/wQEAwIBhjAKBggqhkjOPQQDAgNIADBFAiEAgQcI\n"
	"BTD+A92OvVMYkKFpZMeiEo8bpNO8BYUJ1h4rLq8CID1BLCfTvSl9QbdSQl2mEzuK\n"
	"6WmKdBsBN4ZXGuh0+s94\n"
	"-----END CERTIFICATE-----\n";

static char tmpdir[64];
static struct online_service svc;
static X509_STORE *trust;
static STACK_OF(X509) *anchors;
static char *cas[] = { "fuzz" };

static int remove_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(p);
}

static void cleanup(void)
{
	online_ocsp_free(svc.cas[0].ocsp);
	p11pki_ca_close(svc.cas[0].ca);
	p11pki_store_close(svc.st);
	X509_STORE_free(trust);
	sk_X509_free(anchors);
	nftw(tmpdir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static void need(int ok)
{
	if (!ok) {
		fprintf(stderr, "fuzz_ocsp_request setup: %s\n", p11pki_errmsg());
		abort();
	}
}

static void add_cert_row(const char *serial)
{
	struct p11pki_store_cert c;

	memset(&c, 0, sizeof(c));
	c.ca = "fuzz";
	c.serial = (char *)serial;
	c.subject = "CN=leaf";
	c.sans = "";
	c.profile = "client";
	c.requester = "fuzz";
	c.pem = "-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----\n";
	c.not_before = c.issued = time(NULL);
	c.not_after = c.issued + 86400;
	c.reason = -1;
	need(p11pki_store_cert_add(svc.st, &c) == 0);
}

static void init(void)
{
	struct p11pki_store_ca rec;
	char path[128];
	BIO *kb = BIO_new_mem_buf(ca_key_pem, -1), *cb = BIO_new_mem_buf(ca_cert_pem, -1);
	EVP_PKEY *key = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL);
	X509 *cert = PEM_read_bio_X509(cb, NULL, NULL, NULL);

	need(key != NULL && cert != NULL);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/p11pki-fuzz-ocsp-XXXXXX");
	need(mkdtemp(tmpdir) != NULL);
	snprintf(path, sizeof(path), "%s/ca.db", tmpdir);
	need(p11pki_store_open(path, &svc.st) == 0);
	memset(&rec, 0, sizeof(rec));
	rec.name = "fuzz";
	rec.key_uri = "pkcs11:token=none;object=fuzz";
	rec.cert_pem = (char *)ca_cert_pem;
	need(p11pki_store_ca_add(svc.st, &rec) == 0);
	add_cert_row("1000");
	add_cert_row("1001");
	need(p11pki_store_cert_revoke(svc.st, "fuzz", "1001", time(NULL), 1) == 0);
	svc.n_cas = 1;
	svc.ocsp_validity_s = 600;
	snprintf(svc.cas[0].name, sizeof(svc.cas[0].name), "fuzz");
	need(p11pki_ca_open_key(svc.st, NULL, "fuzz", key, &svc.cas[0].ca) == 0);
	svc.cas[0].cert = p11pki_ca_cert(svc.cas[0].ca);
	need(online_ocsp_setup(&svc, &svc.cas[0]) == 0);
	need((trust = X509_STORE_new()) != NULL && X509_STORE_add_cert(trust, cert) == 1);
	need((anchors = sk_X509_new_null()) != NULL && sk_X509_push(anchors, svc.cas[0].cert) > 0);
	EVP_PKEY_free(key);
	X509_free(cert);
	BIO_free(kb);
	BIO_free(cb);
	atexit(cleanup);
}

static void answer(const char *method, const char *path, const unsigned char *body, size_t len,
		   struct online_response *rs)
{
	struct online_request rq;

	memset(&rq, 0, sizeof(rq));
	memset(rs, 0, sizeof(*rs));
	rq.method = method;
	rq.path = path;
	rq.content_type = "application/ocsp-request";
	rq.body = body;
	rq.body_len = len;
	rq.client_ip = "fuzz";
	rq.now = time(NULL);
	online_ocsp_answer(&svc, cas, 1, &rq, rs);
}

/* A successful response is signed by the CA, answers each CertID of req
 * (when known) and echoes its nonce. */
static void check_basic(OCSP_RESPONSE *resp, OCSP_REQUEST *req)
{
	OCSP_BASICRESP *bs = OCSP_response_get1_basic(resp);
	int nonce;

	/* NOCHECKS: a request may mix issuers; the signature is still checked */
	if (bs == NULL || OCSP_basic_verify(bs, anchors, trust, OCSP_NOCHECKS) != 1)
		abort();
	if (req != NULL) {
		nonce = OCSP_check_nonce(req, bs);
		if (OCSP_resp_count(bs) != OCSP_request_onereq_count(req) || (nonce != 1 && nonce != 2))
			abort();
	}
	OCSP_BASICRESP_free(bs);
}

/* The OCSP status of an answer, which must be a well-formed response. */
static int checked_status(const struct online_response *rs, OCSP_REQUEST *req)
{
	const unsigned char *p = rs->body;
	OCSP_RESPONSE *resp;
	int status;

	if (rs->status != 200 || rs->content_type == NULL || strcmp(rs->content_type, "application/ocsp-response") != 0)
		abort();
	resp = d2i_OCSP_RESPONSE(NULL, &p, (long)rs->body_len);
	if (resp == NULL || p != rs->body + rs->body_len)
		abort();
	status = OCSP_response_status(resp);
	if (status == OCSP_RESPONSE_STATUS_INTERNALERROR || status == OCSP_RESPONSE_STATUS_TRYLATER)
		abort();
	if (status == OCSP_RESPONSE_STATUS_SUCCESSFUL)
		check_basic(resp, req);
	OCSP_RESPONSE_free(resp);
	return status;
}

/* "/ocsp/" + base64 of data, with '+', '/' and '=' percent-encoded. */
static char *get_path(const uint8_t *data, size_t size)
{
	char *b64 = NULL, *path, *o;
	size_t n, i;

	if (online_base64_encode(data, size, 0, &b64, &n) != 0 || (path = malloc(7 + 3 * n)) == NULL)
		abort();
	o = path + sprintf(path, "/ocsp/");
	for (i = 0; i < n; i++)
		o += b64[i] == '+' || b64[i] == '/' || b64[i] == '=' ? sprintf(o, "%%%02X", (unsigned char)b64[i])
								       : sprintf(o, "%c", b64[i]);
	free(b64);
	return path;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	const unsigned char *p = data;
	struct online_response rs;
	OCSP_REQUEST *req;
	unsigned char *body;
	char *path;
	int posted;

	if (!ready) {
		init();
		ready = 1;
	}
	/* exactly size bytes, so ASan sees any overread */
	if ((body = malloc(size ? size : 1)) == NULL || (path = malloc(size + 7)) == NULL)
		abort();
	memcpy(body, data, size);
	req = size > 0 ? d2i_OCSP_REQUEST(NULL, &p, (long)size) : NULL;
	if (req != NULL && p != data + size) {
		OCSP_REQUEST_free(req);	/* the responder refuses trailing bytes */
		req = NULL;
	}

	answer("POST", "/ocsp", body, size, &rs);
	posted = checked_status(&rs, req);
	if (posted == OCSP_RESPONSE_STATUS_SUCCESSFUL && req == NULL)
		abort();
	online_response_clear(&rs);

	/* the bytes as the path itself (NULs end it) */
	memcpy(path, "/ocsp/", 6);
	memcpy(path + 6, data, size);
	path[size + 6] = '\0';
	answer("GET", path, NULL, 0, &rs);
	checked_status(&rs, NULL);
	online_response_clear(&rs);
	free(path);

	/* the same DER by GET: the same verdict */
	path = get_path(data, size);
	answer("GET", path, NULL, 0, &rs);
	if (checked_status(&rs, req) != posted)
		abort();
	online_response_clear(&rs);
	free(path);

	OCSP_REQUEST_free(req);
	free(body);
	ERR_clear_error();
	return 0;
}
