/* v2 CRLs signed by a CA key on a token, and the RFC 5280 reason names. */
#include <string.h>
#include <strings.h>

#include <openssl/x509v3.h>

#include <p11pki/ca.h>

static const char *const reason_names[] = {
	"unspecified", "keyCompromise", "cACompromise", "affiliationChanged", "superseded",
	"cessationOfOperation", "certificateHold", NULL /* 7 is unused */, "removeFromCRL",
	"privilegeWithdrawn", "aACompromise",
};
#define N_REASONS (int)(sizeof(reason_names) / sizeof(reason_names[0]))

int p11pki_crl_reason_parse(const char *name)
{
	int i;

	for (i = 0; i < N_REASONS; i++)
		if (reason_names[i] != NULL && strcasecmp(name, reason_names[i]) == 0)
			return i;
	return -1;
}

const char *p11pki_crl_reason_name(int code)
{
	return code >= 0 && code < N_REASONS && reason_names[code] ? reason_names[code] : "unspecified";
}

static int add_entry(X509_CRL *crl, const struct p11pki_revoked *rv)
{
	X509_REVOKED *entry = X509_REVOKED_new();
	ASN1_INTEGER *serial = NULL;
	ASN1_TIME *when = NULL;
	ASN1_ENUMERATED *reason = NULL;
	BIGNUM *bn = NULL;
	int ok = 0;

	if (entry == NULL || BN_hex2bn(&bn, rv->serial_hex) == 0 || (serial = BN_to_ASN1_INTEGER(bn, NULL)) == NULL ||
	    (when = ASN1_TIME_set(NULL, rv->when)) == NULL || !X509_REVOKED_set_serialNumber(entry, serial) ||
	    !X509_REVOKED_set_revocationDate(entry, when))
		goto out;
	/* "unspecified" is expressed by leaving the reason out (RFC 5280) */
	if (rv->reason > 0) {
		if ((reason = ASN1_ENUMERATED_new()) == NULL || !ASN1_ENUMERATED_set(reason, rv->reason) ||
		    X509_REVOKED_add1_ext_i2d(entry, NID_crl_reason, reason, 0, 0) != 1)
			goto out;
	}
	ok = X509_CRL_add0_revoked(crl, entry);
	if (ok)
		entry = NULL;
out:
	X509_REVOKED_free(entry);
	ASN1_INTEGER_free(serial);
	ASN1_TIME_free(when);
	ASN1_ENUMERATED_free(reason);
	BN_free(bn);
	return ok;
}

int p11pki_crl_build(X509 *ca_cert, EVP_PKEY *ca_key, const struct p11pki_revoked *revoked, size_t n,
		     unsigned long long number, unsigned days, X509_CRL **out)
{
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *now = NULL, *next = NULL;
	ASN1_INTEGER *crl_number = NULL;
	X509V3_CTX ctx;
	X509_EXTENSION *aki = NULL;
	time_t t = time(NULL);
	size_t i;
	int r = P11PKI_E_CRYPTO;

	*out = NULL;
	if (crl == NULL || (now = ASN1_TIME_set(NULL, t)) == NULL ||
	    (next = X509_time_adj_ex(NULL, (int)days, 0, &t)) == NULL || (crl_number = ASN1_INTEGER_new()) == NULL ||
	    !ASN1_INTEGER_set_uint64(crl_number, number) || !X509_CRL_set_version(crl, 1) ||
	    !X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca_cert)) || !X509_CRL_set1_lastUpdate(crl, now) ||
	    !X509_CRL_set1_nextUpdate(crl, next)) {
		p11pki_fail(r, "cannot fill in the CRL");
		goto out;
	}
	for (i = 0; i < n; i++)
		if (!add_entry(crl, &revoked[i])) {
			p11pki_fail(r, "cannot add serial %s to the CRL", revoked[i].serial_hex);
			goto out;
		}
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, ca_cert, NULL, NULL, crl, 0);
	if ((aki = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid:always")) == NULL ||
	    !X509_CRL_add_ext(crl, aki, -1) || X509_CRL_add1_ext_i2d(crl, NID_crl_number, crl_number, 0, 0) != 1 ||
	    !X509_CRL_sort(crl)) {
		p11pki_fail(r, "cannot add the CRL extensions");
		goto out;
	}
	p11pki_error_clear();
	if (X509_CRL_sign(crl, ca_key, p11pki_digest_for(ca_key)) <= 0) {
		if (strstr(p11pki_errmsg(), "CKR_") == NULL)
			p11pki_fail(r, "signing the CRL failed");
		goto out;
	}
	*out = crl;
	crl = NULL;
	r = P11PKI_OK;
out:
	X509_CRL_free(crl);
	ASN1_TIME_free(now);
	ASN1_TIME_free(next);
	ASN1_INTEGER_free(crl_number);
	X509_EXTENSION_free(aki);
	return r;
}
