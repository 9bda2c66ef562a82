/* Building certificates and requests from a profile, signed by a key that
 * may live on a token: serial, validity, and the extensions RFC 5280 and
 * the CA/B Forum Baseline Requirements expect. */
#include <string.h>

#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <p11pki/ca.h>

const EVP_MD *p11pki_digest_for(EVP_PKEY *key)
{
	char group[32];
	size_t len = 0;

	if (EVP_PKEY_get_base_id(key) == EVP_PKEY_EC &&
	    EVP_PKEY_get_utf8_string_param(key, "group", group, sizeof(group), &len) == 1 &&
	    (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0))
		return EVP_sha384();
	return EVP_sha256();
}

/* Positive, 16 bytes long, 126 random bits. */
static int random_serial(X509 *x)
{
	unsigned char b[16];
	BIGNUM *bn = NULL;
	int ok;

	if (RAND_bytes(b, sizeof(b)) != 1)
		return 0;
	b[0] = (unsigned char)((b[0] & 0x7f) | 0x40);
	ok = (bn = BN_bin2bn(b, sizeof(b), NULL)) != NULL &&
	     BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
	BN_free(bn);
	return ok;
}

static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
	int ok = ext != NULL && X509_add_ext(x, ext, -1);

	X509_EXTENSION_free(ext);
	return ok;
}

static int add_key_usage(X509 *x, unsigned long ku)
{
	static const struct { unsigned long bit; const char *name; } names[] = {
		{ KU_DIGITAL_SIGNATURE, "digitalSignature" }, { KU_NON_REPUDIATION, "nonRepudiation" },
		{ KU_KEY_ENCIPHERMENT, "keyEncipherment" }, { KU_DATA_ENCIPHERMENT, "dataEncipherment" },
		{ KU_KEY_AGREEMENT, "keyAgreement" }, { KU_KEY_CERT_SIGN, "keyCertSign" },
		{ KU_CRL_SIGN, "cRLSign" },
	};
	char value[256] = "critical";
	size_t i, len = strlen(value);
	X509V3_CTX ctx;

	if (ku == 0)
		return 1;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (ku & names[i].bit)
			len += (size_t)snprintf(value + len, sizeof(value) - len, ",%s", names[i].name);
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, NULL, x, NULL, NULL, 0);
	return add_ext(x, &ctx, NID_key_usage, value);
}

static int add_eku(X509 *x, const struct p11pki_profile *p)
{
	EXTENDED_KEY_USAGE *eku;
	int i, ok = 1;

	if (p->n_eku == 0)
		return 1;
	if ((eku = sk_ASN1_OBJECT_new_null()) == NULL)
		return 0;
	for (i = 0; i < p->n_eku && ok; i++)
		ok = sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(p->eku[i])) > 0;
	ok = ok && X509_add1_ext_i2d(x, NID_ext_key_usage, eku, 0, X509V3_ADD_DEFAULT) == 1;
	sk_ASN1_OBJECT_free(eku);
	return ok;
}

static int add_urls(X509 *x, X509V3_CTX *ctx, const struct p11pki_cert_template *t)
{
	char value[1100];

	if (t->crl_url != NULL) {
		snprintf(value, sizeof(value), "URI:%s", t->crl_url);
		if (!add_ext(x, ctx, NID_crl_distribution_points, value))
			return 0;
	}
	if (t->ocsp_url != NULL || t->issuers_url != NULL) {
		snprintf(value, sizeof(value), "%s%s%s%s%s", t->ocsp_url ? "OCSP;URI:" : "",
			 t->ocsp_url ? t->ocsp_url : "", t->ocsp_url && t->issuers_url ? "," : "",
			 t->issuers_url ? "caIssuers;URI:" : "", t->issuers_url ? t->issuers_url : "");
		if (!add_ext(x, ctx, NID_info_access, value))
			return 0;
	}
	return 1;
}

static int add_extensions(X509 *x, X509 *issuer, const struct p11pki_cert_template *t)
{
	const struct p11pki_profile *p = t->profile;
	X509V3_CTX ctx;
	char bc[64];

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
	if (p->is_ca && p->pathlen >= 0)
		snprintf(bc, sizeof(bc), "critical,CA:TRUE,pathlen:%d", p->pathlen);
	else
		snprintf(bc, sizeof(bc), "%s", p->is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
	/* keyEncipherment means RSA key transport: not for EC keys */
	if (!add_ext(x, &ctx, NID_basic_constraints, bc) ||
	    !add_key_usage(x, EVP_PKEY_get_base_id(t->public_key) == EVP_PKEY_RSA ? p->key_usage
										 : p->key_usage & ~KU_KEY_ENCIPHERMENT) ||
	    !add_eku(x, p) ||
	    !add_ext(x, &ctx, NID_subject_key_identifier, "hash") ||
	    !add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always"))
		return 0;
	if (t->sans != NULL && sk_GENERAL_NAME_num(t->sans) > 0 &&
	    X509_add1_ext_i2d(x, NID_subject_alt_name, (void *)t->sans, 0, X509V3_ADD_DEFAULT) != 1)
		return 0;
	if (p->ocsp_nocheck && !add_ext(x, &ctx, NID_id_pkix_OCSP_noCheck, "ignored"))
		return 0;
	return add_urls(x, &ctx, t);
}

int p11pki_cert_build(const struct p11pki_cert_template *t, EVP_PKEY *signer, X509 **out)
{
	X509 *x = X509_new();
	X509 *issuer;
	time_t nb = t->not_before, na = t->not_after;
	int r = P11PKI_E_CRYPTO;

	*out = NULL;
	if (x == NULL)
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory building a certificate");
	issuer = t->issuer != NULL ? t->issuer : x;
	if (!X509_set_version(x, 2) || !random_serial(x) || !X509_set_subject_name(x, t->subject) ||
	    !X509_set_issuer_name(x, X509_get_subject_name(issuer)) || !X509_set_pubkey(x, t->public_key) ||
	    X509_time_adj_ex(X509_getm_notBefore(x), 0, 0, &nb) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(x), 0, 0, &na) == NULL) {
		p11pki_fail(r, "cannot fill in the certificate fields");
		goto out;
	}
	if (!add_extensions(x, issuer, t)) {
		p11pki_fail(r, "cannot add the extensions of profile '%s'", t->profile->name);
		goto out;
	}
	p11pki_error_clear();
	if (X509_sign(x, signer, p11pki_digest_for(signer)) <= 0) {
		/* a token failure already recorded the call and CKR code */
		if (strstr(p11pki_errmsg(), "CKR_") == NULL)
			p11pki_fail(r, "signing the certificate failed");
		goto out;
	}
	*out = x;
	x = NULL;
	r = P11PKI_OK;
out:
	X509_free(x);
	return r;
}

int p11pki_csr_build(EVP_PKEY *key, const X509_NAME *subject, const GENERAL_NAMES *sans, X509_REQ **out)
{
	X509_REQ *req = X509_REQ_new();
	STACK_OF(X509_EXTENSION) *exts = NULL;
	int r = P11PKI_E_CRYPTO;

	*out = NULL;
	if (req == NULL)
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory building a request");
	if (!X509_REQ_set_version(req, 0) || !X509_REQ_set_subject_name(req, subject) ||
	    !X509_REQ_set_pubkey(req, key)) {
		p11pki_fail(r, "cannot fill in the request");
		goto out;
	}
	if (sans != NULL && sk_GENERAL_NAME_num(sans) > 0) {
		if ((exts = sk_X509_EXTENSION_new_null()) == NULL ||
		    X509V3_add1_i2d(&exts, NID_subject_alt_name, (void *)sans, 0, X509V3_ADD_DEFAULT) != 1 ||
		    !X509_REQ_add_extensions(req, exts)) {
			p11pki_fail(r, "cannot add the subjectAltName to the request");
			goto out;
		}
	}
	p11pki_error_clear();
	if (X509_REQ_sign(req, key, p11pki_digest_for(key)) <= 0) {
		if (strstr(p11pki_errmsg(), "CKR_") == NULL)
			p11pki_fail(r, "signing the request failed");
		goto out;
	}
	*out = req;
	req = NULL;
	r = P11PKI_OK;
out:
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_REQ_free(req);
	return r;
}
