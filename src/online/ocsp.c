/* The OCSP responder (RFC 6960, GET as profiled by RFC 5019) of the CAs
 * served online. Statuses come from the store, so a revocation is answered
 * at once. Responses are signed on the token, by a delegated responder
 * certificate (id-pkix-ocsp-nocheck) whose key sits next to the CA's, or
 * by the CA key itself. Every failure is answered with an OCSP error
 * status, never with an HTTP error page, because OCSP clients read only
 * the former. */
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "core/text.h"
#include "online/base64.h"
#include "online/online.h"

#define OCSP_VALIDITY_DEFAULT 3600
#define MAX_SINGLE_REQUESTS 64	/* one store look-up each: more is abuse */
#define NONCE_VALUE_MAX 34	/* RFC 8954: 32 octets, in an OCTET STRING */
#define SERIAL_OCTETS_MAX 40	/* RFC 5280 allows 20; leave room, bound the work */
#define RENEW_RETRY_S 300	/* between attempts to renew the signer */
#define REQUESTER "p11pki serve (ocsp)"
#define OCSP_CONTENT_TYPE "application/ocsp-response"

/* The hash algorithms a CertID may use: SHA-1 is what `openssl ocsp`
 * and most clients send. */
static const EVP_MD *(*const certid_hashes[])(void) = { EVP_sha1, EVP_sha256, EVP_sha384, EVP_sha512 };
#define N_HASHES (sizeof(certid_hashes) / sizeof(certid_hashes[0]))

struct online_ocsp {
	struct online_ca *oc;			/* borrowed: svc->cas outlives it */
	OCSP_CERTID *issuer_ids[N_HASHES];	/* the CA's name and key hashes */
	int delegated;
	char label[80];				/* "<ca>-ocsp": the signer key on oc->token */
	pthread_mutex_t lock;			/* guards the signer below */
	EVP_PKEY *key;
	X509 *cert;
	time_t renew_at;			/* delegated: a third of cert's life left */
	time_t expires;				/* delegated: cert's notAfter */
	time_t retry_at;			/* no renewal attempt before this */
};

static time_t asn1_time(const ASN1_TIME *t)
{
	struct tm tm;

	return t != NULL && ASN1_TIME_to_tm(t, &tm) == 1 ? timegm(&tm) : 0;
}

/* ---- the delegated signer ---------------------------------------------- */

/* The key pair k of the token as a signing key and its public half. */
static int load_pair(p11pki_token *t, const struct p11pki_key_info *k, EVP_PKEY **key, EVP_PKEY **pub)
{
	struct p11pki_uri sel;
	int r;

	memset(&sel, 0, sizeof(sel));
	sel.object = k->label;
	sel.id = k->id_len > 0 ? (unsigned char *)k->id : NULL;
	sel.id_len = k->id_len;
	if ((r = p11pki_key_public(t, &sel, pub)) != 0 || (r = p11pki_key_load(t, &sel, key)) != 0) {
		EVP_PKEY_free(*pub);
		*pub = NULL;
	}
	return r;
}

/* The responder key labelled o->label on the CA's token; P11PKI_E_NOTFOUND
 * when there is none yet. */
static int find_key(struct online_ocsp *o, EVP_PKEY **key, EVP_PKEY **pub)
{
	struct p11pki_key_info *keys = NULL;
	struct p11pki_uri filter;
	size_t n = 0, i;
	int r;

	memset(&filter, 0, sizeof(filter));
	filter.object = o->label;
	if ((r = p11pki_key_list(o->oc->token, &filter, &keys, &n)) != 0)
		return r;
	for (i = 0; i < n && !keys[i].has_private; i++)
		;
	if (i == n)
		r = p11pki_fail(P11PKI_E_NOTFOUND, "no key '%s' on token '%s'", o->label,
				p11pki_token_label(o->oc->token));
	else
		r = load_pair(o->oc->token, &keys[i], key, pub);
	p11pki_key_info_free(keys, n);
	return r;
}

/* A new EC P-256 key for the responder; when another process made it at
 * the same moment, that one is used. */
static int generate_key(struct online_ocsp *o, EVP_PKEY **key, EVP_PKEY **pub)
{
	struct p11pki_keygen kg;
	int r;

	memset(&kg, 0, sizeof(kg));
	kg.label = o->label;
	if ((r = p11pki_keytype_parse("ec:p256", &kg.type)) != 0)
		return r;
	r = p11pki_key_generate(o->oc->token, &kg, NULL);
	if (r != 0 && r != P11PKI_E_EXISTS)
		return r;
	p11pki_log(P11PKI_LOG_INFO, "CA '%s': OCSP responder key '%s' generated on token '%s'", o->oc->name, o->label,
		   p11pki_token_label(o->oc->token));
	return find_key(o, key, pub);
}

/* The CA's subject without its CN, plus CN=<ca> OCSP responder: what a
 * CA policy that matches or requires the CA's O, C... lets through. */
static X509_NAME *responder_subject(const struct online_ca *oc)
{
	const X509_NAME *ca_name = X509_get_subject_name(oc->cert);
	X509_NAME *name = X509_NAME_new();
	char cn[128];
	int i, ok = name != NULL;

	for (i = 0; ok && i < X509_NAME_entry_count(ca_name); i++) {
		const X509_NAME_ENTRY *e = X509_NAME_get_entry(ca_name, i);
		if (OBJ_obj2nid(X509_NAME_ENTRY_get_object(e)) != NID_commonName)
			ok = X509_NAME_add_entry(name, e, -1, 0);
	}
	snprintf(cn, sizeof(cn), "%s OCSP responder", oc->name);
	if (!ok || !X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8, (unsigned char *)cn, -1, -1, 0)) {
		X509_NAME_free(name);
		return NULL;
	}
	return name;
}

/* Issues a responder certificate (profile ocsp) for key from the CA. */
static int issue_cert(struct online_ocsp *o, EVP_PKEY *key, X509 **out)
{
	struct p11pki_issue req;
	X509_NAME *subject = responder_subject(o->oc);
	X509_REQ *csr = NULL;
	int r;

	*out = NULL;
	if (subject == NULL)
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
	memset(&req, 0, sizeof(req));
	req.profile = "ocsp";
	req.requester = REQUESTER;
	if ((r = p11pki_csr_build(key, subject, NULL, &csr)) == 0) {
		req.csr = csr;
		r = p11pki_ca_issue(o->oc->ca, &req, out);
	}
	X509_REQ_free(csr);
	X509_NAME_free(subject);
	if (r == 0)
		p11pki_log(P11PKI_LOG_INFO, "CA '%s': OCSP responder certificate issued for key '%s'", o->oc->name,
			   o->label);
	return r;
}

/* More than a third of [nb, na) is left at now. */
static int fresh_enough(time_t nb, time_t na, time_t now)
{
	return na > nb && now >= nb && now < na - (na - nb) / 3;
}

/* The newest valid responder certificate of the store for pub, issued by
 * the CA's current certificate, with more than a third of its life left;
 * P11PKI_E_NOTFOUND if none. */
static int find_cert(struct online_service *svc, struct online_ocsp *o, EVP_PKEY *pub, time_t now, X509 **out)
{
	struct p11pki_store_cert *certs = NULL;
	size_t n = 0, i;
	int r;

	*out = NULL;
	if ((r = p11pki_store_cert_list(svc->st, o->oc->name, NULL, &certs, &n)) != 0)
		return r;
	for (i = n; i-- > 0 && *out == NULL;) {
		const struct p11pki_store_cert *c = &certs[i];
		BIO *b;
		X509 *x;

		if (c->status != P11PKI_CERT_VALID || c->profile == NULL || strcmp(c->profile, "ocsp") != 0 ||
		    c->pem == NULL || !fresh_enough(c->not_before, c->not_after, now))
			continue;
		b = BIO_new_mem_buf(c->pem, -1);
		x = b != NULL ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
		BIO_free(b);
		if (x != NULL && EVP_PKEY_eq(X509_get0_pubkey(x), pub) == 1 &&
		    X509_check_issued(o->oc->cert, x) == X509_V_OK && X509_verify(x, X509_get0_pubkey(o->oc->cert)) == 1)
			*out = x;
		else
			X509_free(x);
	}
	ERR_clear_error(); /* from certificates that did not fit */
	p11pki_store_cert_list_free(certs, n);
	return *out != NULL ? P11PKI_OK : P11PKI_E_NOTFOUND;
}

/* Makes cert the signer (owned); plans its renewal. Called with the lock
 * held or before the responder is shared. */
static void install_signer(struct online_ocsp *o, X509 *cert)
{
	time_t nb = asn1_time(X509_get0_notBefore(cert));

	X509_free(o->cert);
	o->cert = cert;
	o->expires = asn1_time(X509_get0_notAfter(cert));
	o->renew_at = nb + (o->expires - nb) * 2 / 3;
}

static int delegated_setup(struct online_service *svc, struct online_ocsp *o, time_t now)
{
	EVP_PKEY *key = NULL, *pub = NULL;
	X509 *cert = NULL;
	int r;

	if (o->oc->token == NULL)
		return p11pki_fail(P11PKI_E_ARG, "a delegated OCSP signer needs the CA's token (or ocsp_signer = ca)");
	if ((r = find_key(o, &key, &pub)) == P11PKI_E_NOTFOUND)
		r = generate_key(o, &key, &pub);
	if (r != 0)
		goto out;
	/* an existing key is kept when its certificate ages: replacing it
	 * means deleting the old pair (a label is never given twice) while
	 * responses signed with it may still be on their way */
	if ((r = find_cert(svc, o, pub, now, &cert)) == P11PKI_E_NOTFOUND)
		r = issue_cert(o, key, &cert);
	if (r != 0)
		goto out;
	o->key = key;
	key = NULL;
	install_signer(o, cert);
out:
	EVP_PKEY_free(key);
	EVP_PKEY_free(pub);
	return r;
}

/* Renews an aging delegated certificate, keeping the key. On failure the
 * current certificate serves on until it expires. Lock held. */
static void renew_locked(struct online_ocsp *o, time_t now)
{
	X509 *cert = NULL;

	o->retry_at = now + RENEW_RETRY_S;
	if (issue_cert(o, o->key, &cert) != 0) {
		p11pki_log(P11PKI_LOG_WARN, "CA '%s': renewing the OCSP responder certificate failed: %s", o->oc->name,
			   p11pki_errmsg());
		return;
	}
	install_signer(o, cert);
}

/* The signer's certificate and key for a response at now, as references
 * the caller frees. */
static int current_signer(struct online_ocsp *o, time_t now, X509 **cert, EVP_PKEY **key)
{
	int r = P11PKI_OK;

	pthread_mutex_lock(&o->lock);
	if (o->delegated && now >= o->renew_at && now >= o->retry_at)
		renew_locked(o, now);
	if (o->delegated && now >= o->expires) {
		r = p11pki_fail(P11PKI_E_NOTFOUND, "CA '%s': the OCSP responder certificate has expired", o->oc->name);
	} else {
		/* references, so that a renewal on another thread may swap them */
		X509_up_ref(o->cert);
		EVP_PKEY_up_ref(o->key);
		*cert = o->cert;
		*key = o->key;
	}
	pthread_mutex_unlock(&o->lock);
	return r;
}

/* ---- setup --------------------------------------------------------------- */

static int issuer_ids(struct online_ocsp *o)
{
	size_t i;

	for (i = 0; i < N_HASHES; i++)
		if ((o->issuer_ids[i] = OCSP_cert_to_id(certid_hashes[i](), NULL, o->oc->cert)) == NULL)
			return p11pki_fail(P11PKI_E_CRYPTO, "cannot hash the certificate of CA '%s'", o->oc->name);
	return P11PKI_OK;
}

int online_ocsp_setup(struct online_service *svc, struct online_ca *oc)
{
	struct online_ocsp *o;
	int r;

	if (oc->cert == NULL || oc->ca == NULL)
		return p11pki_fail(P11PKI_E_ARG, "CA '%s' is not open", oc->name);
	if ((o = calloc(1, sizeof(*o))) == NULL)
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
	o->oc = oc;
	o->delegated = svc->ocsp_delegated;
	snprintf(o->label, sizeof(o->label), "%s-ocsp", oc->name);
	if (pthread_mutex_init(&o->lock, NULL) != 0) {
		free(o);
		return p11pki_fail(P11PKI_E_NOMEM, "cannot create a lock");
	}
	if ((r = issuer_ids(o)) != 0)
		goto fail;
	if (o->delegated) {
		r = delegated_setup(svc, o, time(NULL));
	} else if (p11pki_ca_key(oc->ca) == NULL) {
		r = p11pki_fail(P11PKI_E_ARG, "CA '%s' was opened without its key: it cannot sign OCSP responses",
				oc->name);
	} else {
		o->key = p11pki_ca_key(oc->ca);
		EVP_PKEY_up_ref(o->key);
		o->cert = oc->cert;
		X509_up_ref(o->cert);
	}
	if (r != 0)
		goto fail;
	online_ocsp_free(oc->ocsp);
	oc->ocsp = o;
	return P11PKI_OK;
fail:
	online_ocsp_free(o);
	return r;
}

void online_ocsp_free(struct online_ocsp *o)
{
	size_t i;

	if (o == NULL)
		return;
	for (i = 0; i < N_HASHES; i++)
		OCSP_CERTID_free(o->issuer_ids[i]);
	EVP_PKEY_free(o->key);
	X509_free(o->cert);
	pthread_mutex_destroy(&o->lock);
	free(o);
}

/* ---- answering ----------------------------------------------------------- */

/* What one request needs besides the service. */
struct answer_ctx {
	struct online_service *svc;
	char *const *cas;
	size_t n_cas;
	const struct online_request *rq;
	struct online_response *rs;
	time_t now;
	int cacheable;		/* GET: RFC 5019 caching headers */
};

/* An OCSPResponse with only an error status (no responseBytes):
 * SEQUENCE { ENUMERATED status }, written out so that it needs nothing
 * that could fail. */
static void respond_ocsp_error(struct online_response *rs, int status)
{
	const unsigned char der[5] = { 0x30, 0x03, 0x0a, 0x01, (unsigned char)status };

	if (online_respond(rs, 200, "OK", OCSP_CONTENT_TYPE, der, sizeof(der)) == 0)
		(void)online_add_header(rs, "Cache-Control", "no-cache");
}

/* The served CA that issued what cid names, or NULL. */
static struct online_ocsp *responder_for(const struct answer_ctx *a, OCSP_CERTID *cid)
{
	struct online_ca *oc;
	size_t i, k;

	for (i = 0; i < a->n_cas; i++) {
		if ((oc = online_find_ca(a->svc, a->cas[i])) == NULL || oc->ocsp == NULL)
			continue;
		for (k = 0; k < N_HASHES; k++)
			if (OCSP_id_issuer_cmp(oc->ocsp->issuer_ids[k], cid) == 0)
				return oc->ocsp;
	}
	return NULL;
}

static int issued_by(const struct online_ocsp *o, OCSP_CERTID *cid)
{
	size_t k;

	for (k = 0; k < N_HASHES; k++)
		if (OCSP_id_issuer_cmp(o->issuer_ids[k], cid) == 0)
			return 1;
	return 0;
}

/* The serial of cid as the store writes it; 0 for one no CA issues. */
static int certid_serial(OCSP_CERTID *cid, char *out, size_t size)
{
	ASN1_INTEGER *serial = NULL;
	BIGNUM *bn = NULL;
	char *hex = NULL;
	int ok;

	OCSP_id_get0_info(NULL, NULL, NULL, &serial, cid);
	ok = serial != NULL && ASN1_STRING_length(serial) <= SERIAL_OCTETS_MAX &&
	     (bn = ASN1_INTEGER_to_BN(serial, NULL)) != NULL && !BN_is_negative(bn) && (hex = BN_bn2hex(bn)) != NULL &&
	     p11pki_serial_normalize(hex, out, size) == 0;
	OPENSSL_free(hex);
	BN_free(bn);
	return ok;
}

/* Adds the status of cid (good, revoked or unknown) to bs. */
static int add_status(const struct answer_ctx *a, struct online_ocsp *o, OCSP_BASICRESP *bs, OCSP_CERTID *cid,
		      ASN1_TIME *this_update, ASN1_TIME *next_update)
{
	struct p11pki_store_cert rec;
	ASN1_TIME *revoked_at = NULL;
	int status = V_OCSP_CERTSTATUS_UNKNOWN, reason = OCSP_REVOKED_STATUS_NOSTATUS, r = P11PKI_OK;
	char serial[2 * SERIAL_OCTETS_MAX + 1];

	memset(&rec, 0, sizeof(rec));
	if (issued_by(o, cid) && certid_serial(cid, serial, sizeof(serial))) {
		r = p11pki_store_cert_get(a->svc->st, o->oc->name, serial, &rec);
		if (r == 0)
			status = rec.status == P11PKI_CERT_REVOKED ? V_OCSP_CERTSTATUS_REVOKED : V_OCSP_CERTSTATUS_GOOD;
		else if (r != P11PKI_E_NOTFOUND)
			return r;
		r = P11PKI_OK;
	}
	if (status == V_OCSP_CERTSTATUS_REVOKED) {
		/* unspecified (0) is left out, as on the CRL (RFC 5280 5.3.1) */
		reason = rec.reason > 0 ? rec.reason : OCSP_REVOKED_STATUS_NOSTATUS;
		if ((revoked_at = ASN1_TIME_set(NULL, rec.revoked)) == NULL)
			r = p11pki_fail(P11PKI_E_NOMEM, "out of memory");
	}
	if (r == 0 && OCSP_basic_add1_status(bs, cid, status, reason, revoked_at, this_update, next_update) == NULL)
		r = p11pki_fail(P11PKI_E_CRYPTO, "cannot add a status to the OCSP response");
	ASN1_TIME_free(revoked_at);
	p11pki_store_cert_clear(&rec);
	return r;
}

/* The statuses of every CertID of req, and its nonce, into bs. */
static int fill_basic(const struct answer_ctx *a, struct online_ocsp *o, OCSP_REQUEST *req, time_t next,
		      OCSP_BASICRESP *bs)
{
	ASN1_TIME *this_update = ASN1_TIME_set(NULL, a->now), *next_update = ASN1_TIME_set(NULL, next);
	int i, n = OCSP_request_onereq_count(req), r = P11PKI_OK;

	if (this_update == NULL || next_update == NULL)
		r = p11pki_fail(P11PKI_E_NOMEM, "out of memory");
	for (i = 0; i < n && r == 0; i++)
		r = add_status(a, o, bs, OCSP_onereq_get0_id(OCSP_request_onereq_get0(req, i)), this_update,
			       next_update);
	if (r == 0 && OCSP_copy_nonce(bs, req) == 0)
		r = p11pki_fail(P11PKI_E_CRYPTO, "cannot copy the request's nonce");
	ASN1_TIME_free(this_update);
	ASN1_TIME_free(next_update);
	return r;
}

/* Signs bs as o's responder: responderID by key hash, the delegated
 * certificate included so that clients can check it. */
static int sign_basic(struct online_ocsp *o, time_t now, OCSP_BASICRESP *bs)
{
	unsigned long flags = OCSP_RESPID_KEY | (o->delegated ? 0 : OCSP_NOCERTS);
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	int r;

	if ((r = current_signer(o, now, &cert, &key)) != 0)
		return r;
	p11pki_error_clear();
	if (OCSP_basic_sign(bs, cert, key, p11pki_digest_for(key), NULL, flags) != 1) {
		/* a token failure has already said what went wrong */
		r = strstr(p11pki_errmsg(), "CKR_") != NULL ? P11PKI_E_TOKEN
							      : p11pki_fail(P11PKI_E_CRYPTO, "signing the OCSP response failed");
	}
	X509_free(cert);
	EVP_PKEY_free(key);
	return r;
}

/* Sends a signed successful response, with RFC 5019 caching for GET. */
static void respond_basic(const struct answer_ctx *a, OCSP_BASICRESP *bs, time_t next)
{
	OCSP_RESPONSE *resp = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, bs);
	unsigned char *der = NULL;
	int len = resp != NULL ? i2d_OCSP_RESPONSE(resp, &der) : -1;

	OCSP_RESPONSE_free(resp);
	if (len <= 0) {
		p11pki_log(P11PKI_LOG_ERROR, "OCSP: cannot encode a response");
		respond_ocsp_error(a->rs, OCSP_RESPONSE_STATUS_INTERNALERROR);
		return;
	}
	if (online_respond(a->rs, 200, "OK", OCSP_CONTENT_TYPE, der, (size_t)len) == 0) {
		if (!a->cacheable)
			(void)online_add_header(a->rs, "Cache-Control", "no-cache");
		else if (online_add_cache_headers(a->rs, "public, no-transform, must-revalidate", a->now, next, a->now) != 0)
			p11pki_log(P11PKI_LOG_WARN, "OCSP: %s", p11pki_errmsg());
	}
	OPENSSL_free(der);
}

/* Answers a request whose CertIDs o's CA issued (at least the first one
 * that names a served CA). */
static void answer_for(const struct answer_ctx *a, struct online_ocsp *o, OCSP_REQUEST *req)
{
	OCSP_BASICRESP *bs = OCSP_BASICRESP_new();
	time_t next = a->now + (time_t)(a->svc->ocsp_validity_s != 0 ? a->svc->ocsp_validity_s : OCSP_VALIDITY_DEFAULT);
	int r;

	if (bs == NULL)
		r = p11pki_fail(P11PKI_E_NOMEM, "out of memory");
	else if ((r = fill_basic(a, o, req, next, bs)) == 0)
		r = sign_basic(o, a->now, bs);
	if (r == 0) {
		respond_basic(a, bs, next);
	} else {
		p11pki_log(P11PKI_LOG_ERROR, "OCSP for CA '%s' (request from %s): %s", o->oc->name,
			   a->rq->client_ip ? a->rq->client_ip : "?", p11pki_errmsg());
		respond_ocsp_error(a->rs, r == P11PKI_E_NOMEM || r == P11PKI_E_CRYPTO ? OCSP_RESPONSE_STATUS_INTERNALERROR
										     : OCSP_RESPONSE_STATUS_TRYLATER);
	}
	OCSP_BASICRESP_free(bs);
}

/* The request in der, or NULL (with a message) when it is not one this
 * responder takes: not exactly one DER OCSPRequest, no or too many
 * CertIDs, an oversized nonce. */
static OCSP_REQUEST *parse_request(const unsigned char *der, size_t len)
{
	const unsigned char *p = der;
	OCSP_REQUEST *req = NULL;
	X509_EXTENSION *nonce;
	int n, i;

	if (der == NULL || len == 0 || len > LONG_MAX || (req = d2i_OCSP_REQUEST(NULL, &p, (long)len)) == NULL) {
		p11pki_fail(P11PKI_E_ARG, "not a DER OCSP request (%zu bytes)", len);
		return NULL;
	}
	n = OCSP_request_onereq_count(req);
	i = OCSP_REQUEST_get_ext_by_NID(req, NID_id_pkix_OCSP_Nonce, -1);
	nonce = i >= 0 ? OCSP_REQUEST_get_ext(req, i) : NULL;
	if (p != der + len)
		p11pki_fail(P11PKI_E_ARG, "%zu bytes after the OCSP request", len - (size_t)(p - der));
	else if (n < 1 || n > MAX_SINGLE_REQUESTS)
		p11pki_fail(P11PKI_E_ARG, "OCSP request for %d certificates (1 to %d taken)", n, MAX_SINGLE_REQUESTS);
	else if (nonce != NULL && ASN1_STRING_length(X509_EXTENSION_get_data(nonce)) > NONCE_VALUE_MAX)
		p11pki_fail(P11PKI_E_ARG, "OCSP nonce longer than 32 octets (RFC 8954)");
	else
		return req;
	OCSP_REQUEST_free(req);
	return NULL;
}

static void answer_der(const struct answer_ctx *a, const unsigned char *der, size_t len)
{
	struct online_ocsp *o = NULL;
	OCSP_REQUEST *req = parse_request(der, len);
	int i, n;

	if (req == NULL) {
		p11pki_log(P11PKI_LOG_INFO, "OCSP: malformed request from %s: %s", a->rq->client_ip ? a->rq->client_ip : "?",
			   p11pki_errmsg());
		respond_ocsp_error(a->rs, OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
		return;
	}
	/* one response has one signer: the CA of the first CertID served
	 * here; CertIDs of other issuers in the same request are unknown */
	n = OCSP_request_onereq_count(req);
	for (i = 0; i < n && o == NULL; i++)
		o = responder_for(a, OCSP_onereq_get0_id(OCSP_request_onereq_get0(req, i)));
	if (o != NULL) {
		answer_for(a, o, req);
	} else {
		p11pki_log(P11PKI_LOG_INFO, "OCSP: request from %s names no CA served here",
			   a->rq->client_ip ? a->rq->client_ip : "?");
		respond_ocsp_error(a->rs, OCSP_RESPONSE_STATUS_UNAUTHORIZED);
	}
	OCSP_REQUEST_free(req);
}

/* The byte at s[*i], percent-decoded, advancing *i past it; -1 for a
 * broken escape. */
static int next_unescaped(const char *s, size_t *i)
{
	int c = (unsigned char)s[*i], hi, lo;

	if (c == '%') {
		if ((hi = p11pki_hexval((unsigned char)s[*i + 1])) < 0 || (lo = p11pki_hexval((unsigned char)s[*i + 2])) < 0)
			return -1;
		c = hi * 16 + lo;
		*i += 2;
	}
	(*i)++;
	return c;
}

/* The DER of a GET request: the path after /ocsp/, percent-decoded, then
 * base64 (RFC 6960 A.1). Padding may be left out and the base64url
 * spelling is taken too, as some clients send them. Caller frees *der. */
static int get_request_der(const char *encoded, unsigned char **der, size_t *len)
{
	size_t n = strlen(encoded), i = 0, k = 0;
	char *b64 = malloc(n + 4);
	int c, r;

	*der = NULL;
	*len = 0;
	if (b64 == NULL)
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
	while (encoded[i] != '\0') {
		if ((c = next_unescaped(encoded, &i)) < 0) {
			free(b64);
			return p11pki_fail(P11PKI_E_ARG, "bad percent-escape in the OCSP GET path");
		}
		b64[k++] = c == '-' ? '+' : c == '_' ? '/' : (char)c;
	}
	while (k > 0 && b64[k - 1] == '=')
		k--;
	while (k % 4 != 0)
		b64[k++] = '=';
	r = online_base64_decode(b64, k, 0, der, len);
	free(b64);
	return r;
}

static void answer_get(const struct answer_ctx *a, const char *encoded)
{
	unsigned char *der = NULL;
	size_t len = 0;
	int r = get_request_der(encoded, &der, &len);

	if (r == P11PKI_E_ARG) {
		p11pki_log(P11PKI_LOG_INFO, "OCSP: malformed GET from %s: %s", a->rq->client_ip ? a->rq->client_ip : "?",
			   p11pki_errmsg());
		respond_ocsp_error(a->rs, OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
	} else if (r != 0) {
		p11pki_log(P11PKI_LOG_ERROR, "OCSP: %s", p11pki_errmsg());
		respond_ocsp_error(a->rs, OCSP_RESPONSE_STATUS_INTERNALERROR);
	} else {
		answer_der(a, der, len);
	}
	free(der);
}

/* application/ocsp-request, or no Content-Type at all (lenient). */
static int ocsp_content_type(const char *ct)
{
	static const char want[] = "application/ocsp-request";
	size_t n = sizeof(want) - 1;

	return ct == NULL || (strncasecmp(ct, want, n) == 0 && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' '));
}

/* An HTTP refusal (the request is no OCSP request at all), logged. */
static void refuse(const struct online_request *rq, struct online_response *rs, int status, const char *reason,
		   const char *allow, const char *why)
{
	char shown[P11PKI_SHOWN_BUF];

	p11pki_log(P11PKI_LOG_INFO, "OCSP: %s %s from %s: %d %s", rq->method != NULL ? rq->method : "?",
		   p11pki_shown_ascii(rq->path != NULL ? rq->path : "", shown, sizeof(shown)),
		   rq->client_ip != NULL ? rq->client_ip : "?", status, why);
	if (online_respond_text(rs, status, reason, "%s", why) == 0 && allow != NULL)
		(void)online_add_header(rs, "Allow", "%s", allow);
}

void online_ocsp_answer(struct online_service *svc, char *const *cas, size_t n_cas,
			const struct online_request *rq, struct online_response *rs)
{
	struct answer_ctx a = { svc, cas, n_cas, rq, rs, rq->now != 0 ? rq->now : time(NULL), 0 };
	const char *path = rq->path != NULL ? rq->path : "";
	const char *method = rq->method != NULL ? rq->method : "";
	int is_get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
	int bare = strcmp(path, "/ocsp") == 0 || strcmp(path, "/ocsp/") == 0;

	if (strcmp(path, "/ocsp") != 0 && strncmp(path, "/ocsp/", 6) != 0) {
		refuse(rq, rs, 404, "Not Found", NULL, "no OCSP responder here");
	} else if (strcmp(method, "POST") == 0 && bare && !ocsp_content_type(rq->content_type)) {
		refuse(rq, rs, 415, "Unsupported Media Type", NULL, "OCSP requests are application/ocsp-request");
	} else if (strcmp(method, "POST") == 0 && bare) {
		answer_der(&a, rq->body, rq->body_len);
	} else if (is_get && strncmp(path, "/ocsp/", 6) == 0) {
		a.cacheable = 1;
		answer_get(&a, path + 6);
	} else {
		const char *allow = strcmp(path, "/ocsp") == 0 ? "POST" : bare ? "GET, HEAD, POST" : "GET, HEAD";
		refuse(rq, rs, 405, "Method Not Allowed", allow, "method not allowed here");
	}
	ERR_clear_error(); /* nothing of this request stays on the thread */
}
