/* EST (RFC 7030) on p11pki serve: /.well-known/est/[label/]cacerts,
 * simpleenroll, simplereenroll and csrattrs. A label maps to one CA and
 * profile (online_est_route). Enrollment is allowed to a TLS client
 * certificate of that CA or to an EST user of the store (HTTP Basic) made
 * for that CA and profile; re-enrollment only to the certificate being
 * renewed, presented in the TLS handshake, for the same subject and
 * subjectAltNames (RFC 7030 section 4.2.2).
 *
 * Secrets: est_parse_basic copies the secret into a stack buffer that is
 * zeroed once verified; no message or log line holds it. */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pkcs7.h>
#include <openssl/x509v3.h>

#include "core/text.h"
#include "online/base64.h"
#include "online/est.h"
#include "online/secret_hash.h"

#define EST_PREFIX "/.well-known/est/"
#define REQUESTER_MAX 320
#define CERTS_ONLY "application/pkcs7-mime; smime-type=certs-only"

enum est_op { OP_CACERTS, OP_SIMPLEENROLL, OP_SIMPLEREENROLL, OP_CSRATTRS };

static const struct {
	const char *name;
	enum est_op op;
	const char *method;
} ops[] = {
	{ "cacerts", OP_CACERTS, "GET" },
	{ "simpleenroll", OP_SIMPLEENROLL, "POST" },
	{ "simplereenroll", OP_SIMPLEREENROLL, "POST" },
	{ "csrattrs", OP_CSRATTRS, "GET" },
};

/* One request on its way through the handler. */
struct est_ctx {
	struct online_service *svc;
	const struct online_est_route *route;
	struct online_ca *oc;
	const struct online_request *rq;
	struct online_response *rs;
};

/* ---- parsers (est.h) ---- */

static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* Printable ASCII and UTF-8 only: a NUL or a control character in a
 * credential is an attack or a broken client. */
static int credential_ok(const unsigned char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

static int basic_refused(unsigned char *raw, size_t raw_len, char *secret, size_t secret_size, const char *why)
{
	if (raw != NULL)
		OPENSSL_cleanse(raw, raw_len);
	free(raw);
	if (secret != NULL && secret_size > 0)
		OPENSSL_cleanse(secret, secret_size);
	return p11pki_fail(P11PKI_E_ARG, "Basic credentials refused: %s", why);
}

int est_parse_basic(const char *authorization, char *user, size_t user_size, char *secret, size_t secret_size)
{
	const unsigned char *colon;
	unsigned char *raw = NULL;
	const char *p, *end;
	size_t raw_len = 0, ulen, slen;

	if (user == NULL || secret == NULL || user_size == 0 || secret_size == 0)
		return p11pki_fail(P11PKI_E_ARG, "est_parse_basic: no room for the credentials");
	user[0] = secret[0] = '\0';
	if (authorization == NULL)
		return basic_refused(NULL, 0, secret, secret_size, "no Authorization header");
	if (strncasecmp(authorization, "Basic", 5) != 0 || !is_blank(authorization[5]))
		return basic_refused(NULL, 0, secret, secret_size, "the Authorization scheme is not Basic");
	for (p = authorization + 6; is_blank(*p); p++)
		;
	for (end = p + strlen(p); end > p && is_blank(end[-1]); end--)
		;
	if (online_base64_decode(p, (size_t)(end - p), 0, &raw, &raw_len) != 0)
		return basic_refused(NULL, 0, secret, secret_size, "the credentials are not base64");
	if ((colon = memchr(raw, ':', raw_len)) == NULL)
		return basic_refused(raw, raw_len, secret, secret_size, "no ':' between user name and secret");
	ulen = (size_t)(colon - raw);
	slen = raw_len - ulen - 1;
	if (ulen == 0 || ulen >= user_size || !credential_ok(raw, ulen))
		return basic_refused(raw, raw_len, secret, secret_size, "the user name is empty, too long or not text");
	if (slen >= secret_size || !credential_ok(colon + 1, slen))
		return basic_refused(raw, raw_len, secret, secret_size, "the secret is too long or not text");
	memcpy(user, raw, ulen);
	user[ulen] = '\0';
	memcpy(secret, colon + 1, slen);
	secret[slen] = '\0';
	OPENSSL_cleanse(raw, raw_len);
	free(raw);
	return P11PKI_OK;
}

int est_decode_pkcs10(const unsigned char *body, size_t len, X509_REQ **out)
{
	unsigned char *der = NULL;
	const unsigned char *p;
	size_t der_len = 0;
	X509_REQ *req;
	char why[200];

	*out = NULL;
	if (body == NULL || len == 0)
		return p11pki_fail(P11PKI_E_ARG, "the request body is empty: send a base64 DER PKCS#10 request");
	if (online_base64_decode((const char *)body, len, 1, &der, &der_len) != 0) {
		snprintf(why, sizeof(why), "%s", p11pki_errmsg());
		return p11pki_fail(P11PKI_E_ARG, "the request body is %s: send a base64 DER PKCS#10 request", why);
	}
	p = der;
	req = der_len > 0 && der_len <= LONG_MAX ? d2i_X509_REQ(NULL, &p, (long)der_len) : NULL;
	if (req == NULL) {
		ERR_clear_error();
		free(der);
		return p11pki_fail(P11PKI_E_ARG, "the request body is base64 but not of a DER PKCS#10 request");
	}
	if (p != der + der_len) {
		X509_REQ_free(req);
		free(der);
		return p11pki_fail(P11PKI_E_ARG, "the request body has %zu bytes after the PKCS#10 request",
				   (size_t)(der + der_len - p));
	}
	free(der);
	*out = req;
	return P11PKI_OK;
}

/* A degenerate SignedData: version 1, no signers, content type data with
 * the content absent (RFC 5272 Simple PKI Response), the certificates. */
int est_certs_only(STACK_OF(X509) *certs, char **out, size_t *out_len)
{
	PKCS7 *p7 = PKCS7_new();
	unsigned char *der = NULL;
	int i, len = -1;

	*out = NULL;
	*out_len = 0;
	if (p7 == NULL || PKCS7_set_type(p7, NID_pkcs7_signed) != 1 || p7->d.sign->contents == NULL)
		goto fail;
	p7->d.sign->contents->type = OBJ_nid2obj(NID_pkcs7_data);
	for (i = 0; i < sk_X509_num(certs); i++)
		if (PKCS7_add_certificate(p7, sk_X509_value(certs, i)) != 1)
			goto fail;
	if ((len = i2d_PKCS7(p7, &der)) <= 0)
		goto fail;
	PKCS7_free(p7);
	i = online_base64_encode(der, (size_t)len, 1, out, out_len);
	OPENSSL_free(der);
	return i;
fail:
	ERR_clear_error();
	PKCS7_free(p7);
	return p11pki_fail(P11PKI_E_CRYPTO, "cannot build the PKCS#7 certs-only answer");
}

/* ---- answers ---- */

static void unauthorized(struct est_ctx *x, const char *why)
{
	online_respond_text(x->rs, 401, "Unauthorized", "%s", why);
	online_add_header(x->rs, "WWW-Authenticate", "Basic realm=\"%s\"", EST_REALM);
}

static void forbidden(struct est_ctx *x, const char *why)
{
	online_respond_text(x->rs, 403, "Forbidden", "%s", why);
}

static void bad_request(struct est_ctx *x, const char *why)
{
	online_respond_text(x->rs, 400, "Bad Request", "%s", why);
}

static void server_error(struct est_ctx *x, const char *what)
{
	p11pki_log(P11PKI_LOG_ERROR, "est: %s for %s: %s", what, x->rq->client_ip ? x->rq->client_ip : "?",
		   p11pki_errmsg());
	online_respond_text(x->rs, 500, "Internal Server Error", "%s; see the server log", what);
}

/* Certificates as the base64 certs-only body EST answers with. */
static void answer_certs(struct est_ctx *x, STACK_OF(X509) *certs, const char *content_type)
{
	char *b64 = NULL;
	size_t len;

	if (est_certs_only(certs, &b64, &len) != 0) {
		server_error(x, "cannot encode the certificates");
		return;
	}
	if (online_respond(x->rs, 200, "OK", content_type, b64, len) == 0)
		online_add_header(x->rs, "Content-Transfer-Encoding", "base64");
	free(b64);
}

/* ---- client certificates ---- */

/* Whether cert is a valid, unrevoked certificate of the route's CA: issued
 * and signed by it, inside its validity, and valid in the store. The row
 * goes to *row when row is not NULL (caller clears it). */
static int client_cert_check(struct est_ctx *x, X509 *cert, struct p11pki_store_cert *row, const char **why)
{
	struct p11pki_store_cert own;
	EVP_PKEY *ca_key = X509_get0_pubkey(x->oc->cert);
	time_t now = x->rq->now != 0 ? x->rq->now : time(NULL);
	char *serial = NULL;
	int r = -1;

	memset(&own, 0, sizeof(own));
	if (row == NULL)
		row = &own;
	if (X509_check_issued(x->oc->cert, cert) != X509_V_OK || ca_key == NULL || X509_verify(cert, ca_key) != 1)
		*why = "the client certificate is not one of this CA's";
	else if (X509_cmp_time(X509_get0_notBefore(cert), &now) != -1 ||
		 X509_cmp_time(X509_get0_notAfter(cert), &now) != 1)
		*why = "the client certificate is not valid now";
	else if ((serial = p11pki_cert_serial_hex(cert)) == NULL ||
		 p11pki_store_cert_get(x->svc->st, x->oc->name, serial, row) != 0)
		*why = "the client certificate is not in the CA's store";
	else if (row->status != P11PKI_CERT_VALID)
		*why = "the client certificate is revoked";
	else
		r = 0;
	ERR_clear_error();
	free(serial);
	p11pki_store_cert_clear(&own);
	return r;
}

/* "est-cert:<subject>@<ip>" */
static void cert_requester(struct est_ctx *x, X509 *cert, char *buf, size_t size)
{
	char subject[256];

	p11pki_name_text(X509_get_subject_name(cert), subject, sizeof(subject));
	snprintf(buf, size, "est-cert:%s@%s", subject, x->rq->client_ip ? x->rq->client_ip : "?");
}

/* ---- HTTP Basic ---- */

/* 0 when the user's secret is right and the user may enroll at this
 * label ("est:<user>" into requester); otherwise answered. */
static int basic_auth(struct est_ctx *x, char *requester, size_t size)
{
	struct p11pki_store_est_user u;
	char user[EST_USER_MAX], secret[EST_SECRET_MAX], shown[P11PKI_SHOWN_BUF], why[200];
	const char *ip = x->rq->client_ip ? x->rq->client_ip : "?";
	int r, ok;

	memset(&u, 0, sizeof(u));
	if (est_parse_basic(x->rq->authorization, user, sizeof(user), secret, sizeof(secret)) != 0) {
		p11pki_log(P11PKI_LOG_INFO, "est: %s: %s", ip, p11pki_errmsg());
		unauthorized(x, "EST needs a user name and secret (HTTP Basic) or a client certificate of this CA");
		return -1;
	}
	p11pki_shown_ascii(user, shown, sizeof(shown));
	r = p11pki_store_est_user_get(x->svc->st, user, &u);
	if (r != 0 && r != P11PKI_E_NOTFOUND) {
		OPENSSL_cleanse(secret, sizeof(secret));
		server_error(x, "cannot read the EST users");
		return -1;
	}
	/* an unknown user costs what a known one does */
	ok = p11pki_est_secret_verify(secret, strlen(secret), r == 0 ? u.secret_hash : NULL);
	OPENSSL_cleanse(secret, sizeof(secret));
	if (ok < 0)
		p11pki_log(P11PKI_LOG_ERROR, "est: user '%s': %s", shown, p11pki_errmsg());
	if (ok != 1 || u.disabled) {
		p11pki_log(P11PKI_LOG_WARN, "est: %s: authentication of user '%s' failed (%s)", ip, shown,
			   r != 0 ? "no such user" : u.disabled ? "disabled" : "wrong secret");
		p11pki_store_est_user_clear(&u);
		unauthorized(x, "wrong EST user name or secret");
		return -1;
	}
	if (strcmp(u.ca, x->route->ca) != 0 || strcmp(u.profile, x->route->profile) != 0) {
		snprintf(why, sizeof(why), "EST user '%s' may enroll with CA '%s', profile '%s', not at this label",
			 shown, u.ca, u.profile);
		p11pki_store_est_user_clear(&u);
		forbidden(x, why);
		return -1;
	}
	p11pki_store_est_user_clear(&u);
	snprintf(requester, size, "est:%s", user);
	return 0;
}

/* ---- requests ---- */

/* "application/pkcs10", any case, parameters allowed. */
static int is_pkcs10(const char *content_type)
{
	static const char want[] = "application/pkcs10";
	const char *p = content_type;

	if (p == NULL)
		return 0;
	while (is_blank(*p))
		p++;
	if (strncasecmp(p, want, sizeof(want) - 1) != 0)
		return 0;
	p += sizeof(want) - 1;
	return *p == '\0' || *p == ';' || is_blank(*p);
}

/* The request of the body, its signature checked; otherwise answered. */
static int read_csr(struct est_ctx *x, X509_REQ **csr)
{
	EVP_PKEY *pub;

	if (!is_pkcs10(x->rq->content_type)) {
		online_respond_text(x->rs, 415, "Unsupported Media Type",
				    "send the request as Content-Type: application/pkcs10 (base64 DER)");
		return -1;
	}
	if (est_decode_pkcs10(x->rq->body, x->rq->body_len, csr) != 0) {
		bad_request(x, p11pki_errmsg());
		return -1;
	}
	if ((pub = X509_REQ_get0_pubkey(*csr)) == NULL || X509_REQ_verify(*csr, pub) != 1) {
		ERR_clear_error();
		X509_REQ_free(*csr);
		*csr = NULL;
		bad_request(x, "the request's signature does not verify with its public key");
		return -1;
	}
	return 0;
}

/* Issues under the route's profile and answers with the certificate. */
static void issue(struct est_ctx *x, X509_REQ *csr, const char *requester)
{
	struct p11pki_issue req = { x->route->profile, csr, 0, requester };
	STACK_OF(X509) *certs = NULL;
	char shown[P11PKI_SHOWN_BUF], *serial;
	X509 *cert = NULL;
	int r;

	/* a policy refusal is 403, a request the CA cannot read 400 */
	r = p11pki_ca_issue(x->oc->ca, &req, &cert);
	if (r == P11PKI_E_POLICY || r == P11PKI_E_ARG) {
		p11pki_log(P11PKI_LOG_INFO, "est: %s refused: %s", p11pki_shown_ascii(requester, shown, sizeof(shown)),
			   p11pki_errmsg());
		if (r == P11PKI_E_POLICY)
			online_respond_text(x->rs, 403, "Forbidden", "refused: %s", p11pki_errmsg());
		else
			online_respond_text(x->rs, 400, "Bad Request", "refused: %s", p11pki_errmsg());
		return;
	}
	if (r != 0) {
		server_error(x, "the CA could not issue the certificate");
		return;
	}
	serial = p11pki_cert_serial_hex(cert);
	p11pki_log(P11PKI_LOG_INFO, "est: CA '%s' issued %s (profile %s) to %s", x->oc->name, serial ? serial : "?",
		   x->route->profile, p11pki_shown_ascii(requester, shown, sizeof(shown)));
	free(serial);
	if ((certs = sk_X509_new_null()) == NULL || !sk_X509_push(certs, cert))
		server_error(x, "out of memory answering with the certificate");
	else
		answer_certs(x, certs, CERTS_ONLY);
	sk_X509_free(certs);
	X509_free(cert);
}

/* Each name of a is one of b's. */
static int names_within(const GENERAL_NAMES *a, const GENERAL_NAMES *b)
{
	int i, j, found;

	for (i = 0; i < sk_GENERAL_NAME_num(a); i++) {
		for (j = 0, found = 0; j < sk_GENERAL_NAME_num(b) && !found; j++)
			found = GENERAL_NAME_cmp(sk_GENERAL_NAME_value(a, i), sk_GENERAL_NAME_value(b, j)) == 0;
		if (!found)
			return 0;
	}
	return 1;
}

/* RFC 7030 4.2.2: the subject and subjectAltNames of a re-enrollment
 * equal those of the certificate being renewed (a new key is allowed). */
static const char *identity_differs(X509_REQ *csr, X509 *cert)
{
	STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(csr);
	GENERAL_NAMES *want = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	GENERAL_NAMES *got = X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL);
	const char *why = NULL;

	if (X509_NAME_cmp(X509_REQ_get_subject_name(csr), X509_get_subject_name(cert)) != 0)
		why = "the request's subject differs from the certificate being renewed";
	else if (sk_GENERAL_NAME_num(want) != sk_GENERAL_NAME_num(got) || !names_within(want, got) ||
		 !names_within(got, want))
		why = "the request's subjectAltNames differ from the certificate being renewed";
	ERR_clear_error();
	GENERAL_NAMES_free(want);
	GENERAL_NAMES_free(got);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	return why;
}

/* Whether cert (a valid client certificate of this CA) vouches for csr:
 * the same subject and subjectAltNames, at a label of the profile the
 * certificate has. Another identity needs HTTP Basic. */
static int cert_vouches(struct est_ctx *x, X509 *cert, X509_REQ *csr)
{
	struct p11pki_store_cert row;
	const char *why = NULL;
	int ok;

	memset(&row, 0, sizeof(row));
	ok = client_cert_check(x, cert, &row, &why) == 0 && row.profile != NULL &&
	     strcmp(row.profile, x->route->profile) == 0 && identity_differs(csr, cert) == NULL;
	if (why != NULL)
		p11pki_log(P11PKI_LOG_DEBUG, "est: %s: %s", x->rq->client_ip ? x->rq->client_ip : "?", why);
	p11pki_store_cert_clear(&row);
	return ok;
}

/* Authenticated by HTTP Basic (any identity the user's profile allows),
 * or by a client certificate of this CA for its own identity. */
static void simpleenroll(struct est_ctx *x)
{
	char requester[REQUESTER_MAX];
	X509 *cert = x->rq->client_cert;
	X509_REQ *csr = NULL;

	if (x->rq->authorization == NULL && cert == NULL) {
		unauthorized(x, "EST needs a user name and secret (HTTP Basic) or a client certificate of this CA");
		return;
	}
	if (read_csr(x, &csr) != 0)
		return;
	if (cert != NULL && !x->rq->client_cert_renewal_only && cert_vouches(x, cert, csr))
		cert_requester(x, cert, requester, sizeof(requester));
	else if (x->rq->authorization == NULL) {
		unauthorized(x, "a client certificate enrolls only its own subject and subjectAltNames with its own "
				"profile: give a user name and secret (HTTP Basic) for another identity");
		goto out;
	} else if (basic_auth(x, requester, sizeof(requester)) != 0)
		goto out;
	issue(x, csr, requester);
out:
	X509_REQ_free(csr);
}

static void simplereenroll(struct est_ctx *x)
{
	struct p11pki_store_cert row;
	char requester[REQUESTER_MAX], why[200];
	const char *refusal = NULL;
	X509 *cert = x->rq->client_cert;
	X509_REQ *csr = NULL;

	memset(&row, 0, sizeof(row));
	if (cert == NULL) {
		forbidden(x, "re-enrollment needs the certificate being renewed as the TLS client certificate");
		return;
	}
	if (client_cert_check(x, cert, &row, &refusal) != 0) {
		snprintf(why, sizeof(why), "cannot renew here: %s", refusal);
		forbidden(x, why);
		goto out;
	}
	if (row.profile == NULL || strcmp(row.profile, x->route->profile) != 0) {
		snprintf(why, sizeof(why), "the certificate has profile '%s': renew it at a label serving that profile",
			 row.profile ? row.profile : "?");
		forbidden(x, why);
		goto out;
	}
	if (read_csr(x, &csr) != 0)
		goto out;
	if ((refusal = identity_differs(csr, cert)) != NULL) {
		forbidden(x, refusal);
		goto out;
	}
	cert_requester(x, cert, requester, sizeof(requester));
	issue(x, csr, requester);
out:
	X509_REQ_free(csr);
	p11pki_store_cert_clear(&row);
}

static void cacerts(struct est_ctx *x)
{
	STACK_OF(X509) *certs = sk_X509_new_null();
	int i, ok = certs != NULL && sk_X509_push(certs, x->oc->cert);

	for (i = 0; ok && i < sk_X509_num(x->oc->chain); i++)
		ok = sk_X509_push(certs, sk_X509_value(x->oc->chain, i));
	if (ok)
		answer_certs(x, certs, "application/pkcs7-mime");
	else
		server_error(x, "out of memory listing the CA certificates");
	sk_X509_free(certs); /* borrowed certificates */
}

/* RFC 7030 4.5.2: 204 says no attributes are required; the profile and
 * the CA's policy speak through refusals instead. */
static void csrattrs(struct est_ctx *x)
{
	online_respond(x->rs, 204, "No Content", NULL, NULL, 0);
}

/* ---- dispatch ---- */

/* The route of the label in path and the operation after it; NULL when
 * the path is not /.well-known/est/[label/]op. */
static const struct online_est_route *find_route(const struct online_est_route *routes, size_t n, const char *path,
						 const char **op)
{
	const char *rest = path + strlen(EST_PREFIX), *slash = strchr(rest, '/');
	size_t len = slash != NULL ? (size_t)(slash - rest) : 0, i;

	*op = slash != NULL ? slash + 1 : rest;
	if (slash != NULL && (len == 0 || strchr(slash + 1, '/') != NULL))
		return NULL;
	for (i = 0; i < n; i++)
		if (strlen(routes[i].label) == len && strncmp(routes[i].label, rest, len) == 0)
			return &routes[i];
	return NULL;
}

static size_t body_limit(const struct online_service *svc)
{
	return svc->max_body != 0 ? svc->max_body : ONLINE_BODY_DEFAULT_MAX;
}

void online_est_answer(struct online_service *svc, const struct online_est_route *routes, size_t n_routes,
		       const struct online_request *rq, struct online_response *rs)
{
	struct est_ctx x = { svc, NULL, NULL, rq, rs };
	const char *op = NULL;
	size_t i;

	if (strncmp(rq->path, EST_PREFIX, strlen(EST_PREFIX)) != 0 ||
	    (x.route = find_route(routes, n_routes, rq->path, &op)) == NULL) {
		online_respond_text(rs, 404, "Not Found", "no EST service at this path");
		return;
	}
	for (i = 0; i < sizeof(ops) / sizeof(ops[0]) && strcmp(ops[i].name, op) != 0; i++)
		;
	if (i == sizeof(ops) / sizeof(ops[0])) {
		if (strcmp(op, "fullcmc") == 0 || strcmp(op, "serverkeygen") == 0)
			online_respond_text(rs, 501, "Not Implemented", "EST %s is not offered here", op);
		else
			online_respond_text(rs, 404, "Not Found", "no EST operation at this path");
		return;
	}
	if (strcmp(rq->method, ops[i].method) != 0) {
		online_respond_text(rs, 405, "Method Not Allowed", "EST %s takes %s", ops[i].name, ops[i].method);
		online_add_header(rs, "Allow", "%s", ops[i].method);
		return;
	}
	if (rq->body_len > body_limit(svc)) {
		online_respond_text(rs, 413, "Content Too Large", "the request body is larger than %zu bytes",
				    body_limit(svc));
		return;
	}
	if ((x.oc = online_find_ca(svc, x.route->ca)) == NULL || x.oc->ca == NULL || x.oc->cert == NULL) {
		p11pki_fail(P11PKI_E_ARG, "CA '%s' of EST label '%s' is not open", x.route->ca, x.route->label);
		server_error(&x, "this EST label's CA is not available");
		return;
	}
	switch (ops[i].op) {
	case OP_CACERTS:
		cacerts(&x);
		break;
	case OP_SIMPLEENROLL:
		simpleenroll(&x);
		break;
	case OP_SIMPLEREENROLL:
		simplereenroll(&x);
		break;
	case OP_CSRATTRS:
		csrattrs(&x);
		break;
	}
}
