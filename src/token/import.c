/* Software private keys (a PKCS#12 backup being restored) onto the token
 * as sensitive, non-extractable key pairs. Once there, the key is as safe
 * as a generated one from then on, but CKA_LOCAL stays false: the token
 * knows, and says, that copies may exist elsewhere. Every buffer that held
 * private key material is cleansed before it is freed. */
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "token/internal.h"

#define ID_LEN 16
#define MAX_PARTS 8 /* RSA: n e d p q dp dq qinv */

/* A big-endian integer or encoding; cleansed when freed. */
struct part {
	unsigned char *p;
	size_t len;
};

struct import_ctx {
	const char *label;
	unsigned char id[ID_LEN];
	CK_KEY_TYPE type;
	struct part part[MAX_PARTS];
	CK_ATTRIBUTE priv[MAX_PARTS], pub[2]; /* the type-specific attributes */
	CK_ULONG n_priv, n_pub;
	int exists;
};

static void parts_clear(struct import_ctx *c)
{
	size_t i;

	for (i = 0; i < MAX_PARTS; i++) {
		OPENSSL_clear_free(c->part[i].p, c->part[i].len);
		c->part[i].p = NULL;
		c->part[i].len = 0;
	}
}

/* Reads a BIGNUM parameter into part i, left-padded to pad bytes when
 * pad is not 0 (EC private values have the field's size). 0 when the key
 * lacks the parameter. */
static int bn_part(EVP_PKEY *key, const char *name, size_t pad, struct part *out)
{
	BIGNUM *bn = NULL;
	int ok = 0;

	if (EVP_PKEY_get_bn_param(key, name, &bn) != 1)
		goto out;
	out->len = pad != 0 ? pad : (size_t)BN_num_bytes(bn);
	if (out->len == 0)
		out->len = 1; /* the integer 0 is one zero byte */
	if ((out->p = OPENSSL_malloc(out->len)) == NULL)
		goto out;
	ok = BN_bn2binpad(bn, out->p, (int)out->len) == (int)out->len;
out:
	BN_clear_free(bn);
	return ok;
}

static void add(CK_ATTRIBUTE *tmpl, CK_ULONG *n, CK_ATTRIBUTE_TYPE type, const struct part *p)
{
	tmpl[(*n)++] = (CK_ATTRIBUTE){ type, p->p, (CK_ULONG)p->len };
}

static int rsa_parts(EVP_PKEY *key, struct import_ctx *c)
{
	static const struct {
		const char *param;
		CK_ATTRIBUTE_TYPE attr;
	} map[MAX_PARTS] = {
		{ OSSL_PKEY_PARAM_RSA_N, CKA_MODULUS },
		{ OSSL_PKEY_PARAM_RSA_E, CKA_PUBLIC_EXPONENT },
		{ OSSL_PKEY_PARAM_RSA_D, CKA_PRIVATE_EXPONENT },
		{ OSSL_PKEY_PARAM_RSA_FACTOR1, CKA_PRIME_1 },
		{ OSSL_PKEY_PARAM_RSA_FACTOR2, CKA_PRIME_2 },
		{ OSSL_PKEY_PARAM_RSA_EXPONENT1, CKA_EXPONENT_1 },
		{ OSSL_PKEY_PARAM_RSA_EXPONENT2, CKA_EXPONENT_2 },
		{ OSSL_PKEY_PARAM_RSA_COEFFICIENT1, CKA_COEFFICIENT },
	};
	struct part extra = { NULL, 0 };
	size_t i;

	if (bn_part(key, OSSL_PKEY_PARAM_RSA_FACTOR3, 0, &extra)) {
		OPENSSL_clear_free(extra.p, extra.len);
		return p11pki_fail(P11PKI_E_UNSUPPORTED, "multi-prime RSA keys cannot be put on a PKCS#11 token");
	}
	for (i = 0; i < MAX_PARTS; i++) {
		if (!bn_part(key, map[i].param, 0, &c->part[i])) {
			if (i >= 3)
				break; /* no CRT values: n, e and d are enough */
			return p11pki_fail(P11PKI_E_CRYPTO, "the RSA key lacks its '%s' value", map[i].param);
		}
		add(c->priv, &c->n_priv, map[i].attr, &c->part[i]);
	}
	add(c->pub, &c->n_pub, CKA_MODULUS, &c->part[0]);
	add(c->pub, &c->n_pub, CKA_PUBLIC_EXPONENT, &c->part[1]);
	if (EVP_PKEY_get_bits(key) < 2048)
		p11pki_log(P11PKI_LOG_WARN, "key '%s' is RSA %d: under 2048 bits it is too weak for new certificates",
			   c->label, EVP_PKEY_get_bits(key));
	c->type = CKK_RSA;
	return P11PKI_OK;
}

/* The public point, uncompressed (PKCS#11 tokens expect 04||X||Y), as
 * the DER OCTET STRING CKA_EC_POINT holds. */
static int ec_point(EVP_PKEY *key, struct part *out)
{
	unsigned char buf[256];
	size_t len = 0;
	EVP_PKEY *dup = NULL;
	ASN1_OCTET_STRING *os = NULL;
	unsigned char *der = NULL;
	int n = -1;

	if (EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, buf, sizeof(buf), &len) != 1)
		goto out;
	if (len > 0 && buf[0] != 0x04) {
		/* a compressed point: ask a copy for the uncompressed form */
		if ((dup = EVP_PKEY_dup(key)) == NULL ||
		    EVP_PKEY_set_utf8_string_param(dup, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, "uncompressed") != 1 ||
		    EVP_PKEY_get_octet_string_param(dup, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, buf, sizeof(buf), &len) != 1)
			goto out;
	}
	if ((os = ASN1_OCTET_STRING_new()) == NULL || ASN1_OCTET_STRING_set(os, buf, (int)len) != 1 ||
	    (n = i2d_ASN1_OCTET_STRING(os, &der)) <= 0)
		goto out;
	out->p = der;
	out->len = (size_t)n;
	der = NULL;
out:
	OPENSSL_free(der);
	ASN1_OCTET_STRING_free(os);
	EVP_PKEY_free(dup);
	return out->p != NULL;
}

static int ec_parts(EVP_PKEY *key, struct import_ctx *c)
{
	char group[64];
	unsigned char *der = NULL;
	int nid, n;

	if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), NULL) != 1)
		return p11pki_fail(P11PKI_E_UNSUPPORTED, "the EC key has no named curve");
	nid = OBJ_sn2nid(group);
	if (nid == NID_undef)
		nid = OBJ_txt2nid(group);
	if (nid != NID_X9_62_prime256v1 && nid != NID_secp384r1 && nid != NID_secp521r1)
		return p11pki_fail(P11PKI_E_UNSUPPORTED, "EC curve '%s' is not supported: use P-256, P-384 or P-521",
				   group);
	if ((n = i2d_ASN1_OBJECT(OBJ_nid2obj(nid), &der)) <= 0)
		return p11pki_fail(P11PKI_E_CRYPTO, "cannot encode curve '%s'", group);
	c->part[0].p = der;
	c->part[0].len = (size_t)n;
	if (!bn_part(key, OSSL_PKEY_PARAM_PRIV_KEY, (size_t)(EVP_PKEY_get_bits(key) + 7) / 8, &c->part[1]))
		return p11pki_fail(P11PKI_E_CRYPTO, "the EC key lacks its private value");
	if (!ec_point(key, &c->part[2]))
		return p11pki_fail(P11PKI_E_CRYPTO, "the EC key lacks its public point");
	add(c->priv, &c->n_priv, CKA_EC_PARAMS, &c->part[0]);
	add(c->priv, &c->n_priv, CKA_VALUE, &c->part[1]);
	add(c->pub, &c->n_pub, CKA_EC_PARAMS, &c->part[0]);
	add(c->pub, &c->n_pub, CKA_EC_POINT, &c->part[2]);
	c->type = CKK_EC;
	return P11PKI_OK;
}

static CK_RV create_pair(p11pki_token *t, CK_SESSION_HANDLE s, struct import_ctx *c)
{
	CK_OBJECT_CLASS priv_cls = CKO_PRIVATE_KEY, pub_cls = CKO_PUBLIC_KEY;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ATTRIBUTE priv[8 + MAX_PARTS + 4] = {
		{ CKA_CLASS, &priv_cls, sizeof(priv_cls) },
		{ CKA_KEY_TYPE, &c->type, sizeof(c->type) },
		{ CKA_TOKEN, &yes, sizeof(yes) },
		{ CKA_PRIVATE, &yes, sizeof(yes) },
		{ CKA_SENSITIVE, &yes, sizeof(yes) },
		{ CKA_EXTRACTABLE, &no, sizeof(no) },
		{ CKA_SIGN, &yes, sizeof(yes) },
		{ CKA_DECRYPT, &no, sizeof(no) },
		{ CKA_UNWRAP, &no, sizeof(no) },
		{ CKA_DERIVE, &no, sizeof(no) },
		{ CKA_LABEL, (void *)c->label, strlen(c->label) },
		{ CKA_ID, c->id, sizeof(c->id) },
	};
	CK_ATTRIBUTE pub[10 + 2] = {
		{ CKA_CLASS, &pub_cls, sizeof(pub_cls) },
		{ CKA_KEY_TYPE, &c->type, sizeof(c->type) },
		{ CKA_TOKEN, &yes, sizeof(yes) },
		{ CKA_PRIVATE, &no, sizeof(no) },
		{ CKA_VERIFY, &yes, sizeof(yes) },
		{ CKA_ENCRYPT, &no, sizeof(no) },
		{ CKA_WRAP, &no, sizeof(no) },
		{ CKA_LABEL, (void *)c->label, strlen(c->label) },
		{ CKA_ID, c->id, sizeof(c->id) },
	};
	CK_ULONG n_priv = 12, n_pub = 9, i;
	CK_OBJECT_HANDLE hpriv, hpub;
	CK_RV rv;

	for (i = 0; i < c->n_priv; i++)
		priv[n_priv++] = c->priv[i];
	for (i = 0; i < c->n_pub; i++)
		pub[n_pub++] = c->pub[i];
	if ((rv = P11_CALL(t->m, C_CreateObject, s, priv, n_priv, &hpriv)) != CKR_OK)
		return rv;
	if ((rv = P11_CALL(t->m, C_CreateObject, s, pub, n_pub, &hpub)) != CKR_OK)
		(void)P11_CALL(t->m, C_DestroyObject, s, hpriv); /* no half pairs */
	return rv;
}

static CK_RV import_fn(p11pki_token *t, CK_SESSION_HANDLE s, void *arg)
{
	struct import_ctx *c = arg;
	CK_ATTRIBUTE by_label = { CKA_LABEL, (void *)c->label, strlen(c->label) };
	CK_OBJECT_HANDLE o;
	CK_ULONG count = 0;
	CK_RV rv;

	if ((rv = p11pki_find(t, s, &by_label, 1, &o, 1, &count)) != CKR_OK || count > 0) {
		c->exists = count > 0;
		return rv;
	}
	return create_pair(t, s, c);
}

/* Refuses a key that is already on the token, under any label. */
static int not_there(p11pki_token *t, EVP_PKEY *key)
{
	struct p11pki_key_info *k = NULL;
	int r = p11pki_key_find_public(t, key, &k);

	if (r == P11PKI_E_NOTFOUND) {
		p11pki_error_clear();
		return P11PKI_OK;
	}
	if (r == 0)
		r = p11pki_fail(P11PKI_E_EXISTS, "this key is already on token '%s' as '%s' (%s)", t->label,
				k->label != NULL ? k->label : "", k->uri);
	p11pki_key_info_free(k, k != NULL ? 1 : 0);
	return r;
}

int p11pki_key_import(p11pki_token *t, EVP_PKEY *key, const char *label, char **uri_out)
{
	struct import_ctx c;
	char what[128];
	int r;

	if (uri_out != NULL)
		*uri_out = NULL;
	memset(&c, 0, sizeof(c));
	if (label == NULL || *label == '\0')
		return p11pki_fail(P11PKI_E_ARG, "an imported key needs a label: give --label");
	c.label = label;
	if (EVP_PKEY_is_a(key, "RSA"))
		r = rsa_parts(key, &c);
	else if (EVP_PKEY_is_a(key, "EC"))
		r = ec_parts(key, &c);
	else
		r = p11pki_fail(P11PKI_E_UNSUPPORTED, "a %s key cannot be imported: p11pki handles RSA and EC keys",
				EVP_PKEY_get0_type_name(key) != NULL ? EVP_PKEY_get0_type_name(key) : "unknown");
	if (r != 0 || (r = not_there(t, key)) != 0)
		goto out;
	if (RAND_bytes(c.id, sizeof(c.id)) != 1) {
		r = p11pki_fail(P11PKI_E_CRYPTO, "no random bytes for a key id");
		goto out;
	}
	snprintf(what, sizeof(what), "importing key '%s'", label);
	if ((r = p11pki_token_run(t, what, import_fn, &c)) != 0)
		goto out;
	if (c.exists) {
		r = p11pki_fail(P11PKI_E_EXISTS, "an object labelled '%s' already exists on token '%s': choose another --label",
				label, t->label);
		goto out;
	}
	p11pki_log(P11PKI_LOG_INFO, "key '%s' was imported onto token '%s' as non-extractable; it was not generated "
		   "there (CKA_LOCAL is false), so copies may exist outside the token", label, t->label);
	if (uri_out != NULL)
		r = p11pki_token_uri(t, label, c.id, sizeof(c.id), uri_out);
out:
	parts_clear(&c);
	ERR_clear_error();
	return r;
}
