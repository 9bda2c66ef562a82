/* Certificate requests as a CA receives them: read from PEM or DER, then
 * checked before anything is signed (self-signature, digest, key). */
#include <string.h>

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <p11pki/x509.h>

#define CSR_MAX (64 * 1024)
#define PEM_BLOCKS_MAX 32 /* blocks looked at before giving up */

static const char *last_reason(unsigned long err)
{
	const char *r = ERR_reason_error_string(err);

	return r != NULL ? r : "malformed data";
}

/* d2i of a whole buffer: trailing bytes mean it is not one request. */
static int decode_der(const unsigned char *der, long len, X509_REQ **out)
{
	const unsigned char *p = der;
	X509_REQ *req;
	unsigned long err;

	ERR_set_mark();
	req = d2i_X509_REQ(NULL, &p, len);
	err = ERR_peek_last_error();
	ERR_pop_to_mark();
	if (req == NULL)
		return p11pki_fail(P11PKI_E_ARG, "the certificate request cannot be decoded: %s",
				   last_reason(err));
	if (p != der + len) {
		X509_REQ_free(req);
		return p11pki_fail(P11PKI_E_ARG,
				   "the certificate request is followed by %ld unexpected bytes",
				   (long)(der + len - p));
	}
	*out = req;
	return P11PKI_OK;
}

static int is_csr_label(const char *name)
{
	return strcmp(name, PEM_STRING_X509_REQ) == 0 || strcmp(name, PEM_STRING_X509_REQ_OLD) == 0;
}

/* Takes the first CERTIFICATE REQUEST (or NEW CERTIFICATE REQUEST) block;
 * text around it, as in `openssl req -text` output, is skipped. */
static int read_pem(const unsigned char *data, size_t len, X509_REQ **out)
{
	char *name = NULL, *header = NULL, other[64] = "";
	unsigned char *der = NULL;
	long der_len = 0;
	BIO *bio = NULL;
	int rc = P11PKI_E_ARG, i, got = 0;
	unsigned long err = 0;

	if ((bio = BIO_new_mem_buf(data, (int)len)) == NULL)
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
	ERR_set_mark();
	for (i = 0; i < PEM_BLOCKS_MAX && !got; i++) {
		if (PEM_read_bio(bio, &name, &header, &der, &der_len) != 1) {
			err = ERR_peek_last_error();
			break;
		}
		if ((got = is_csr_label(name)) != 0)
			rc = decode_der(der, der_len, out);
		else if (other[0] == '\0')
			snprintf(other, sizeof(other), "%s", name);
		OPENSSL_free(name);
		OPENSSL_free(header);
		OPENSSL_free(der);
		name = header = NULL;
		der = NULL;
	}
	ERR_pop_to_mark();
	BIO_free(bio);
	if (got)
		return rc;
	if (other[0] != '\0')
		return p11pki_fail(P11PKI_E_ARG, "the PEM data holds a %s, not a CERTIFICATE REQUEST",
				   other);
	if (ERR_GET_REASON(err) == PEM_R_NO_START_LINE || err == 0)
		return p11pki_fail(P11PKI_E_ARG, "no CERTIFICATE REQUEST block in the PEM data");
	return p11pki_fail(P11PKI_E_ARG, "the PEM certificate request cannot be read: %s",
			   last_reason(err));
}

int p11pki_csr_read(const unsigned char *data, size_t len, X509_REQ **out)
{
	if (out == NULL)
		return p11pki_fail(P11PKI_E_ARG, "p11pki_csr_read: no output pointer");
	*out = NULL;
	if (data == NULL || len == 0)
		return p11pki_fail(P11PKI_E_ARG, "empty certificate request");
	if (len > CSR_MAX)
		return p11pki_fail(P11PKI_E_ARG,
				   "certificate request of %zu bytes is larger than 64 KiB", len);
	if (memmem(data, len, "-----BEGIN ", 11) != NULL)
		return read_pem(data, len, out);
	return decode_der(data, (long)len, out);
}

/* The digest inside RSASSA-PSS parameters; absent means SHA-1 (RFC 4055). */
static int pss_digest(const X509_ALGOR *alg)
{
	const ASN1_TYPE *param = alg->parameter;
	RSA_PSS_PARAMS *pss;
	int md;

	if (param == NULL)
		return NID_sha1;
	if (param->type != V_ASN1_SEQUENCE)
		return NID_undef;
	pss = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(RSA_PSS_PARAMS), param);
	if (pss == NULL)
		return NID_undef;
	md = pss->hashAlgorithm != NULL ? OBJ_obj2nid(pss->hashAlgorithm->algorithm) : NID_sha1;
	RSA_PSS_PARAMS_free(pss);
	return md;
}

static int weak_digest(int md)
{
	return md == NID_md5 || md == NID_sha1 || md == NID_md2 || md == NID_md4 ||
	       md == NID_md5_sha1 || md == NID_mdc2;
}

static int check_signature_algorithm(const X509_REQ *req)
{
	const X509_ALGOR *alg = NULL;
	const ASN1_OBJECT *obj = NULL;
	char name[80];
	int sig, md = NID_undef, pk = NID_undef;

	X509_REQ_get0_signature(req, NULL, &alg);
	X509_ALGOR_get0(&obj, NULL, NULL, alg);
	if (obj == NULL || OBJ_obj2txt(name, sizeof(name), obj, 0) <= 0)
		return p11pki_fail(P11PKI_E_ARG, "the request has no signature algorithm");
	sig = OBJ_obj2nid(obj);
	if (sig == NID_undef || !OBJ_find_sigid_algs(sig, &md, &pk))
		return p11pki_fail(P11PKI_E_POLICY, "the request is signed with %s, an unknown "
				   "signature algorithm", name);
	if (sig == NID_rsassaPss)
		md = pss_digest(alg);
	if (weak_digest(md))
		return p11pki_fail(P11PKI_E_POLICY,
				   "the request is signed with %s%s%s: SHA-1 and MD5 are refused, "
				   "use SHA-256", name, sig == NID_rsassaPss ? " and " : "",
				   sig == NID_rsassaPss ? OBJ_nid2sn(md) : "");
	return P11PKI_OK;
}

int p11pki_csr_check(X509_REQ *req, const struct p11pki_key_rules *rules)
{
	EVP_PKEY *key;
	int rc, ok;

	if (req == NULL)
		return p11pki_fail(P11PKI_E_ARG, "no certificate request to check");
	/* first, so a digest OpenSSL cannot verify (MD2, MD4) is named */
	if ((rc = check_signature_algorithm(req)) != 0)
		return rc;
	ERR_set_mark();
	key = X509_REQ_get0_pubkey(req);
	ok = key != NULL && X509_REQ_verify(req, key) == 1;
	ERR_pop_to_mark();
	if (key == NULL)
		return p11pki_fail(P11PKI_E_ARG, "the request's public key cannot be decoded");
	if (!ok)
		return p11pki_fail(P11PKI_E_ARG,
				   "the request's self-signature does not verify: it was altered or "
				   "signed with another key");
	return p11pki_key_check(key, rules);
}
