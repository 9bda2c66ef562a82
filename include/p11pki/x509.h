/* p11pki x509 layer: subject names (OpenSSL slash form and RFC 4514),
 * internationalised host names, subjectAltNames, request intake checks,
 * name policies (match / supplied / optional) and key rules. Memory
 * buffers only: no files, no tokens. */
#ifndef P11PKI_X509_H
#define P11PKI_X509_H

#include <stddef.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <p11pki/core.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Names ------------------------------------------------------------ */

/* Parses "/C=HK/ST=Hong Kong/O=My Org/CN=www.example.com" (slash form,
 * "\/" escapes a slash) or "CN=www.example.com,O=My Org,C=HK" (RFC 4514,
 * most significant RDN last, with its backslash and hex escapes) into a
 * new X509_NAME in the order a certificate carries it (C first). Values
 * are UTF-8; a CN that looks like a host name is converted to its A-label
 * (punycode). Unknown attribute names, empty values and oversize values
 * are P11PKI_E_ARG naming the part. Caller frees with X509_NAME_free. */
P11PKI_API int p11pki_name_parse(const char *text, X509_NAME **out);
/* RFC 4514 text of a name (most significant last, UTF-8). Caller frees. */
P11PKI_API int p11pki_name_format(const X509_NAME *name, char **out);
/* NID of a subject attribute name: an OpenSSL short or long name, case-
 * insensitive for the usual ones (C, ST, L, O, OU, CN, emailAddress,
 * serialNumber, DC, UID, street, title, GN, SN, ...), or a dotted OID of
 * a naming attribute. NID_undef (0) when it is not one. */
P11PKI_API int p11pki_name_attr_nid(const char *attr);

/* ---- Host names ------------------------------------------------------- */

/* Converts a host name to its ASCII form (IDNA2008 with UTS#46 mapping,
 * via libidn2): "www.我的伺服器.com" -> "www.xn--...com". A wildcard is
 * allowed only as the whole leftmost label ("*.example.com"), never alone
 * or on a public suffix-like single label ("*.com" is refused). Caller
 * frees with free(). */
P11PKI_API int p11pki_host_to_ascii(const char *host, char **out);
/* True when text looks like a DNS host name rather than a person's name:
 * at least one dot, no spaces. */
P11PKI_API int p11pki_looks_like_host(const char *text);

/* ---- subjectAltName --------------------------------------------------- */

/* Parses one "dns:NAME", "ip:ADDRESS" (v4 or v6), "email:ADDR" or
 * "uri:URI" into a new GENERAL_NAME; DNS names go through
 * p11pki_host_to_ascii. Caller frees with GENERAL_NAME_free. */
P11PKI_API int p11pki_san_parse(const char *spec, GENERAL_NAME **out);
/* "dns:www.example.com" style text for a GENERAL_NAME. Caller frees. */
P11PKI_API int p11pki_san_format(const GENERAL_NAME *gn, char **out);

/* ---- Key rules -------------------------------------------------------- */

struct p11pki_key_rules {
	unsigned rsa_min_bits;	/* 0: 2048 */
	int allow_rsa, allow_p256, allow_p384; /* all 0: all allowed */
};
/* Refuses keys the rules do not allow (RSA under rsa_min_bits, curves
 * other than P-256/P-384, DSA, ...), with the reason. */
P11PKI_API int p11pki_key_check(EVP_PKEY *key, const struct p11pki_key_rules *rules);

/* ---- Request intake --------------------------------------------------- */

/* Checks a CSR as a CA must before signing it: its self-signature
 * verifies; its signature algorithm is not MD5 or SHA-1; its key passes
 * the rules. Each refusal is one line (P11PKI_E_POLICY or E_ARG). */
P11PKI_API int p11pki_csr_check(X509_REQ *req, const struct p11pki_key_rules *rules);
/* Reads a PEM or DER CSR from memory (at most 64 KiB). Caller frees. */
P11PKI_API int p11pki_csr_read(const unsigned char *data, size_t len, X509_REQ **out);

/* ---- Name policies (as `openssl ca` policies) ------------------------- */

enum p11pki_policy_rule { P11PKI_POLICY_OPTIONAL = 1, P11PKI_POLICY_SUPPLIED, P11PKI_POLICY_MATCH };

#define P11PKI_POLICY_MAX 16
struct p11pki_policy {
	size_t n;
	struct {
		int nid; /* countryName, commonName, ... */
		enum p11pki_policy_rule rule;
	} field[P11PKI_POLICY_MAX];
};

/* Reads "field = match|supplied|optional" lines from a config section.
 * Unknown fields or rules are P11PKI_E_ARG naming the key. */
P11PKI_API int p11pki_policy_parse(const char *const *keys, const char *const *values, size_t n,
				   struct p11pki_policy *out);
/* Applies a policy as `openssl ca` does: the result holds the policy's
 * fields in policy order; `match` fields must equal the CA's, `supplied`
 * ones must be present, `optional` ones are copied when present, and
 * fields the policy does not name are dropped. Refusals name the field. */
P11PKI_API int p11pki_policy_apply(const struct p11pki_policy *policy, const X509_NAME *ca_subject,
				   const X509_NAME *requested, X509_NAME **out);

/* ---- Name patterns (profile allow-lists) ------------------------------ */

/* True when host (ASCII) matches pattern: exact (case-insensitive), or
 * "*.example.com" matching exactly one extra leftmost label, or
 * ".example.com" matching any name under example.com. */
P11PKI_API int p11pki_host_pattern_match(const char *pattern, const char *host);

/* ---- Verification, served chains, PKCS#12 ----------------------------- */

/* Reads certificates from memory: one DER certificate, or every PEM
 * certificate in the buffer (at least one). name is the file name for
 * messages. Caller frees with sk_X509_pop_free(*out, X509_free). */
P11PKI_API int p11pki_certs_read(const unsigned char *data, size_t len, const char *name, STACK_OF(X509) **out);
/* The same for CRLs; free with sk_X509_CRL_pop_free(*out, X509_CRL_free). */
P11PKI_API int p11pki_crls_read(const unsigned char *data, size_t len, const char *name,
				STACK_OF(X509_CRL) **out);

struct p11pki_verify_opts {
	const char *host;		/* UTF-8 or ASCII host, or an IP; NULL: not checked */
	STACK_OF(X509) *trusted;	/* trust anchors; NULL: the system's CAs */
	STACK_OF(X509) *untrusted;	/* intermediates, cross-certificates (may be NULL) */
	STACK_OF(X509_CRL) *crls;	/* given: revocation is checked for every certificate */
	time_t at;			/* the time to check at; 0: now */
};

struct p11pki_verify_result {
	int date_ok, host_ok, chain_ok; /* 1 passed, 0 failed; host_ok -1: no host given */
	/* Why a check failed ("expired on 2025-01-01 00:00:00 UTC"), or on
	 * success what passed ("dns:*.example.com"). */
	char date_reason[160], host_reason[160], chain_reason[256];
	STACK_OF(X509) *chain;		/* when chain_ok: the path, leaf first */
};

/* The three checks a browser makes, each on its own with its reason: the
 * date is inside the validity period; the host matches a DNS
 * subjectAltName (the CN only when there is none; IDN hosts are compared
 * in their A-label form; "*.example.com" covers one label); the
 * certificate chains to a trusted CA (strict X.509 rules, no partial
 * chains, CRLs when given, alternative paths through cross-certificates).
 * Returns 0 when the checks ran, whatever their outcome; a negative code
 * only when they could not run. Free r with p11pki_verify_result_clear. */
P11PKI_API int p11pki_verify(X509 *cert, const struct p11pki_verify_opts *o, struct p11pki_verify_result *r);
P11PKI_API void p11pki_verify_result_clear(struct p11pki_verify_result *r);

/* The chain a server sends: the issuers of leaf found in pool, matched
 * by name, key identifier and signature, up to (not including, unless
 * P11PKI_CHAIN_ROOT) a self-signed root. With P11PKI_CHAIN_CROSS a
 * cross-certificate (the new root signed by an older one) is preferred to
 * the new self-signed root, so older clients reach the older root. *out
 * holds up-referenced certificates, leaf excluded; *complete (may be NULL)
 * is 1 when the chain reached a self-signed root. Caller frees with
 * sk_X509_pop_free(*out, X509_free). */
enum { P11PKI_CHAIN_CROSS = 1, P11PKI_CHAIN_ROOT = 2 };
P11PKI_API int p11pki_chain_build(X509 *leaf, STACK_OF(X509) *pool, unsigned flags, STACK_OF(X509) **out,
				  int *complete);

/* Opens a PKCS#12 (.pfx/.p12) file's contents. A wrong password is
 * P11PKI_E_PIN ("wrong password for NAME (PKCS#12 MAC verification
 * failed)"). Files encrypted with RC2/RC4 load OpenSSL's legacy provider
 * for the duration. Outputs may be NULL on return when the file lacks
 * them (no key, no certificate); caller frees each. */
P11PKI_API int p11pki_p12_read(const unsigned char *data, size_t len, const char *name,
			       const p11pki_secret *password, EVP_PKEY **key, X509 **cert, STACK_OF(X509) **chain);
/* Makes a PKCS#12 of a software key, its certificate and chain (may be
 * NULL) with friendly name `name` (may be NULL): AES-256-CBC with PBKDF2
 * for key and certificates and a SHA-256 MAC, or with legacy set 3DES
 * (pbeWithSHA1And3-KeyTripleDES-CBC) and a SHA-1 MAC for old Windows.
 * Refuses a key that does not match the certificate and an empty
 * password. Caller frees *der with OPENSSL_free. */
P11PKI_API int p11pki_p12_create(EVP_PKEY *key, X509 *cert, STACK_OF(X509) *chain, const char *name,
				 const p11pki_secret *password, int legacy, unsigned char **der, size_t *len);

#ifdef __cplusplus
}
#endif
#endif
