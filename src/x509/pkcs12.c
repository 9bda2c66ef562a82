/* PKCS#12 (.pfx / .p12): opening a backup so its key can be restored onto
 * a token, and making password-protected bundles of software client keys
 * for browsers. New files use AES-256-CBC with PBKDF2 and a SHA-256 MAC;
 * "legacy" ones 3DES with a SHA-1 MAC, which old Windows needs, without
 * RC2 (that would need OpenSSL's legacy provider). */
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pkcs12.h>
#include <openssl/provider.h>

#include <p11pki/x509.h>

#define P12_MAX_INPUT (16u << 20)
#define ITER_MODERN 10000
#define ITER_LEGACY 2048 /* what Windows of that age used */

/* NULL for "no password", as PKCS#12 distinguishes it from "". */
static const char *pass_of(const p11pki_secret *pw)
{
	return pw != NULL ? pw->data : NULL;
}

static int mac_ok(PKCS12 *p12, const p11pki_secret *pw)
{
	if (!PKCS12_mac_present(p12))
		return 1; /* nothing to check: decryption will tell */
	if (pw == NULL || pw->len == 0)
		return PKCS12_verify_mac(p12, NULL, 0) == 1 || PKCS12_verify_mac(p12, "", 0) == 1;
	return PKCS12_verify_mac(p12, pw->data, (int)pw->len) == 1;
}

static const char *openssl_reason(void)
{
	const char *s = ERR_reason_error_string(ERR_peek_error());

	return s != NULL ? s : "unknown reason";
}

/* PKCS12_parse, and once more with the legacy provider loaded when the
 * file uses an algorithm the default provider lacks (RC2-40 of old
 * exports). The provider is unloaded again afterwards. */
static int parse(PKCS12 *p12, const char *name, const char *pass, EVP_PKEY **key, X509 **cert,
		 STACK_OF(X509) **chain)
{
	OSSL_PROVIDER *legacy;
	char reason[160];

	if (PKCS12_parse(p12, pass, key, cert, chain) == 1)
		return P11PKI_OK;
	snprintf(reason, sizeof(reason), "%s", openssl_reason());
	ERR_clear_error();
	if ((legacy = OSSL_PROVIDER_try_load(NULL, "legacy", 1)) == NULL)
		return p11pki_fail(P11PKI_E_CRYPTO, "cannot open %s: %s (OpenSSL's legacy provider, which old files "
				   "need, is not available)", name, reason);
	p11pki_log(P11PKI_LOG_INFO, "%s uses a legacy algorithm: loaded OpenSSL's legacy provider to read it", name);
	if (PKCS12_parse(p12, pass, key, cert, chain) == 1) {
		OSSL_PROVIDER_unload(legacy);
		return P11PKI_OK;
	}
	OSSL_PROVIDER_unload(legacy);
	return p11pki_fail(P11PKI_E_CRYPTO, "cannot open %s: %s", name, reason);
}

int p11pki_p12_read(const unsigned char *data, size_t len, const char *name, const p11pki_secret *password,
		    EVP_PKEY **key, X509 **cert, STACK_OF(X509) **chain)
{
	const unsigned char *p = data;
	PKCS12 *p12 = NULL;
	int r;

	*key = NULL;
	*cert = NULL;
	*chain = NULL;
	ERR_clear_error();
	if (len > P12_MAX_INPUT) {
		r = p11pki_fail(P11PKI_E_ARG, "%s is too large for a PKCS#12 file", name);
		goto out;
	}
	if ((p12 = d2i_PKCS12(NULL, &p, (long)len)) == NULL) {
		r = p11pki_fail(P11PKI_E_ARG, "%s is not a PKCS#12 (.pfx/.p12) file", name);
		goto out;
	}
	if (!mac_ok(p12, password)) {
		r = p11pki_fail(P11PKI_E_PIN, "wrong password for %s (PKCS#12 MAC verification failed)", name);
		goto out;
	}
	r = parse(p12, name, password != NULL && password->len == 0 ? NULL : pass_of(password), key, cert, chain);
out:
	PKCS12_free(p12);
	ERR_clear_error();
	return r;
}

int p11pki_p12_create(EVP_PKEY *key, X509 *cert, STACK_OF(X509) *chain, const char *name,
		      const p11pki_secret *password, int legacy, unsigned char **der, size_t *len)
{
	int nid = legacy ? NID_pbe_WithSHA1And3_Key_TripleDES_CBC : NID_aes_256_cbc;
	int iter = legacy ? ITER_LEGACY : ITER_MODERN;
	const EVP_MD *md = legacy ? EVP_sha1() : EVP_sha256();
	PKCS12 *p12 = NULL;
	int n, r = P11PKI_OK;

	*der = NULL;
	*len = 0;
	ERR_clear_error();
	if (password == NULL || password->len == 0)
		return p11pki_fail(P11PKI_E_ARG, "a PKCS#12 file needs a password: without one, whoever gets the file "
				   "gets the key");
	if (X509_check_private_key(cert, key) != 1) {
		ERR_clear_error();
		return p11pki_fail(P11PKI_E_ARG, "the key does not belong to the certificate (their public keys differ)");
	}
	/* mac_iter -1: no MAC here, set below with the digest we choose (a
	 * non-PBE nid such as AES makes PKCS12_create use PBES2/PBKDF2) */
	if ((p12 = PKCS12_create_ex(password->data, name, key, cert, chain, nid, nid, iter, -1, 0, NULL, NULL)) == NULL ||
	    PKCS12_set_mac(p12, password->data, (int)password->len, NULL, 0, iter, md) != 1) {
		r = p11pki_fail(P11PKI_E_CRYPTO, "cannot make the PKCS#12 file: %s", openssl_reason());
		goto out;
	}
	if ((n = i2d_PKCS12(p12, der)) <= 0) {
		r = p11pki_fail(P11PKI_E_CRYPTO, "cannot encode the PKCS#12 file: %s", openssl_reason());
		goto out;
	}
	*len = (size_t)n;
out:
	PKCS12_free(p12);
	ERR_clear_error();
	return r;
}
