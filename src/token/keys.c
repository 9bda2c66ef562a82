/* Key pairs on a token: listing (grouped by CKA_ID), public halves and
 * deletion. Works on tokens that also hold key types p11pki does not
 * sign with (Ed25519), which libp11 0.4.12 cannot enumerate. */
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include "token/internal.h"

#define MAX_OBJECTS 1024

struct list_ctx {
	const struct p11pki_uri *filter;
	struct p11pki_key_info *keys;
	size_t n;
};

static struct p11pki_key_info *pair_for(struct list_ctx *c, const unsigned char *id, size_t id_len,
					const char *label)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		if (c->keys[i].id_len == id_len && memcmp(c->keys[i].id, id, id_len) == 0 &&
		    (id_len > 0 || strcmp(c->keys[i].label ? c->keys[i].label : "", label) == 0))
			return &c->keys[i];
	memset(&c->keys[c->n], 0, sizeof(c->keys[c->n]));
	c->keys[c->n].sensitive = c->keys[c->n].extractable = -1;
	c->keys[c->n].always_sensitive = c->keys[c->n].never_extractable = c->keys[c->n].local = -1;
	return &c->keys[c->n++];
}

static const char *curve_name(const unsigned char *params, CK_ULONG len, unsigned *bits)
{
	const unsigned char *p = params;
	ASN1_OBJECT *oid = d2i_ASN1_OBJECT(NULL, &p, (long)len);
	int nid = oid != NULL ? OBJ_obj2nid(oid) : NID_undef;

	ASN1_OBJECT_free(oid);
	switch (nid) {
	case NID_X9_62_prime256v1: *bits = 256; return "P-256";
	case NID_secp384r1: *bits = 384; return "P-384";
	case NID_secp521r1: *bits = 521; return "P-521";
	case NID_ED25519: *bits = 256; return "Ed25519";
	default: return "unknown";
	}
}

/* Fills type and size from whichever half has them. */
static void read_type(p11pki_token *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, struct p11pki_key_info *k)
{
	CK_KEY_TYPE kt = (CK_KEY_TYPE)-1;
	CK_ATTRIBUTE a = { CKA_KEY_TYPE, &kt, sizeof(kt) };
	unsigned char *v = NULL;
	CK_ULONG len = 0;

	if (P11_CALL(t->m, C_GetAttributeValue, s, o, &a, 1) != CKR_OK)
		return;
	if (kt == CKK_RSA) {
		k->kind = P11PKI_KEY_RSA;
		if (p11pki_attr_get(t, s, o, CKA_MODULUS, &v, &len) == CKR_OK)
			k->bits = (unsigned)len * 8;
	} else if (kt == CKK_EC || kt == CKK_EC_EDWARDS) {
		k->kind = kt == CKK_EC ? P11PKI_KEY_EC : P11PKI_KEY_ED25519;
		if (p11pki_attr_get(t, s, o, CKA_EC_PARAMS, &v, &len) == CKR_OK)
			k->curve = curve_name(v, len, &k->bits);
		if (kt == CKK_EC_EDWARDS && (k->curve == NULL || strcmp(k->curve, "unknown") == 0))
			k->curve = "Ed25519"; /* some tokens name it by a printable string */
	} else if (k->kind == 0) {
		k->kind = P11PKI_KEY_OTHER;
	}
	free(v);
}

static CK_RV add_object(p11pki_token *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, int is_private,
			struct list_ctx *c)
{
	unsigned char *id = NULL, *label = NULL;
	CK_ULONG id_len = 0, label_len = 0;
	struct p11pki_key_info *k;
	CK_RV rv;

	if ((rv = p11pki_attr_get(t, s, o, CKA_ID, &id, &id_len)) != CKR_OK && rv != CKR_ATTRIBUTE_TYPE_INVALID)
		goto out;
	if ((rv = p11pki_attr_get(t, s, o, CKA_LABEL, &label, &label_len)) != CKR_OK &&
	    rv != CKR_ATTRIBUTE_TYPE_INVALID)
		goto out;
	if (id_len > sizeof(k->id))
		id_len = sizeof(k->id);
	k = pair_for(c, id, id_len, label ? (char *)label : "");
	memcpy(k->id, id, id_len);
	k->id_len = id_len;
	if (k->label == NULL && label != NULL) {
		k->label = (char *)label;
		label = NULL;
	}
	if (k->kind == 0 || k->kind == P11PKI_KEY_OTHER || k->bits == 0)
		read_type(t, s, o, k);
	if (is_private) {
		k->has_private = 1;
		k->sensitive = p11pki_attr_bool(t, s, o, CKA_SENSITIVE);
		k->extractable = p11pki_attr_bool(t, s, o, CKA_EXTRACTABLE);
		k->always_sensitive = p11pki_attr_bool(t, s, o, CKA_ALWAYS_SENSITIVE);
		k->never_extractable = p11pki_attr_bool(t, s, o, CKA_NEVER_EXTRACTABLE);
		k->local = p11pki_attr_bool(t, s, o, CKA_LOCAL);
	} else {
		k->has_public = 1;
	}
	rv = CKR_OK;
out:
	free(id);
	free(label);
	return rv;
}

static CK_RV list_fn(p11pki_token *t, CK_SESSION_HANDLE s, void *arg)
{
	struct list_ctx *c = arg;
	static const CK_OBJECT_CLASS classes[2] = { CKO_PRIVATE_KEY, CKO_PUBLIC_KEY };
	CK_OBJECT_HANDLE *found = NULL;
	CK_ATTRIBUTE tmpl[3];
	CK_ULONG n, count, i, k;
	CK_RV rv = CKR_OK;

	if ((found = calloc(MAX_OBJECTS, sizeof(*found))) == NULL ||
	    (c->keys = calloc(2 * MAX_OBJECTS, sizeof(*c->keys))) == NULL) {
		free(found);
		return CKR_HOST_MEMORY;
	}
	for (k = 0; k < 2 && rv == CKR_OK; k++) {
		CK_OBJECT_CLASS cls = classes[k];

		n = p11pki_uri_template(c->filter, &cls, tmpl, 3);
		if ((rv = p11pki_find(t, s, tmpl, n, found, MAX_OBJECTS, &count)) != CKR_OK)
			break;
		for (i = 0; i < count && rv == CKR_OK; i++) {
			rv = add_object(t, s, found[i], cls == CKO_PRIVATE_KEY, c);
			if (rv == CKR_OBJECT_HANDLE_INVALID)
				rv = CKR_OK; /* deleted by another process meanwhile */
		}
	}
	free(found);
	if (rv != CKR_OK) {
		p11pki_key_info_free(c->keys, c->n);
		c->keys = NULL;
		c->n = 0;
	}
	return rv;
}

void p11pki_key_info_free(struct p11pki_key_info *keys, size_t n)
{
	size_t i;

	if (keys == NULL)
		return;
	for (i = 0; i < n; i++) {
		free(keys[i].label);
		free(keys[i].uri);
	}
	free(keys);
}

int p11pki_key_list(p11pki_token *t, const struct p11pki_uri *filter, struct p11pki_key_info **out, size_t *n)
{
	struct list_ctx c = { filter, NULL, 0 };
	size_t i;
	int r;

	*out = NULL;
	*n = 0;
	if (filter != NULL && filter->type != P11PKI_OBJ_ANY && filter->type != P11PKI_OBJ_PRIVATE &&
	    filter->type != P11PKI_OBJ_PUBLIC)
		return P11PKI_OK; /* certificates and data are not keys */
	if ((r = p11pki_token_run(t, "listing keys", list_fn, &c)) != 0)
		return r;
	for (i = 0; i < c.n; i++)
		if ((r = p11pki_token_uri(t, c.keys[i].label, c.keys[i].id, c.keys[i].id_len, &c.keys[i].uri)) != 0) {
			p11pki_key_info_free(c.keys, c.n);
			return r;
		}
	*out = c.keys;
	*n = c.n;
	return P11PKI_OK;
}

/* Selects exactly one key pair; message names the URI's label. */
int p11pki_key_select(p11pki_token *t, const struct p11pki_uri *sel, struct p11pki_key_info *one)
{
	struct p11pki_key_info *keys = NULL;
	size_t n = 0;
	const char *name = sel != NULL && sel->object != NULL ? sel->object : "(no object= given)";
	int r;

	if (sel == NULL || (sel->object == NULL && sel->id == NULL))
		return p11pki_fail(P11PKI_E_ARG, "the key URI needs object= or id= to choose a key");
	if ((r = p11pki_key_list(t, sel, &keys, &n)) != 0)
		return r;
	if (n == 0)
		r = p11pki_fail(P11PKI_E_NOTFOUND, "no key '%s' on token '%s': run 'p11pki key list --token %s'",
				name, t->label, t->label);
	else if (n > 1)
		r = p11pki_fail(P11PKI_E_ARG, "%zu keys match '%s' on token '%s': add id= to the URI", n, name,
				t->label);
	else {
		*one = keys[0];
		keys[0].label = keys[0].uri = NULL;
	}
	p11pki_key_info_free(keys, n);
	return r;
}

struct pub_ctx {
	const struct p11pki_key_info *key;
	unsigned char *a, *b; /* modulus+exponent, or params+point */
	CK_ULONG a_len, b_len;
	int from_private;
};

static CK_RV pub_fn(p11pki_token *t, CK_SESSION_HANDLE s, void *arg)
{
	struct pub_ctx *c = arg;
	CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY;
	CK_ATTRIBUTE tmpl[] = { { CKA_CLASS, &cls, sizeof(cls) }, { CKA_ID, (void *)c->key->id, c->key->id_len } };
	CK_ATTRIBUTE_TYPE a_type = c->key->kind == P11PKI_KEY_RSA ? CKA_MODULUS : CKA_EC_PARAMS;
	CK_ATTRIBUTE_TYPE b_type = c->key->kind == P11PKI_KEY_RSA ? CKA_PUBLIC_EXPONENT : CKA_EC_POINT;
	CK_OBJECT_HANDLE o;
	CK_ULONG count;
	CK_RV rv;

	if ((rv = p11pki_find(t, s, tmpl, 2, &o, 1, &count)) != CKR_OK)
		return rv;
	if (count == 0 && c->key->kind == P11PKI_KEY_RSA) {
		/* no public object: an RSA private key carries n and e too */
		cls = CKO_PRIVATE_KEY;
		if ((rv = p11pki_find(t, s, tmpl, 2, &o, 1, &count)) != CKR_OK)
			return rv;
	}
	if (count == 0)
		return CKR_OBJECT_HANDLE_INVALID;
	if ((rv = p11pki_attr_get(t, s, o, a_type, &c->a, &c->a_len)) != CKR_OK)
		return rv;
	return p11pki_attr_get(t, s, o, b_type, &c->b, &c->b_len);
}

/* CKA_EC_POINT is a DER OCTET STRING on most tokens, raw on a few. */
static int ec_point_octets(const unsigned char *p, CK_ULONG len, const unsigned char **pt, size_t *pt_len)
{
	const unsigned char *q = p;
	ASN1_OCTET_STRING *os = d2i_ASN1_OCTET_STRING(NULL, &q, (long)len);

	if (os != NULL && q == p + len) {
		*pt_len = (size_t)ASN1_STRING_length(os);
		*pt = p + (len - *pt_len);
		ASN1_OCTET_STRING_free(os);
		return 1;
	}
	ASN1_OCTET_STRING_free(os);
	*pt = p;
	*pt_len = len;
	return 1;
}

static int build_public(const struct p11pki_key_info *key, struct pub_ctx *c, EVP_PKEY **out)
{
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	BIGNUM *n = NULL, *e = NULL;
	const unsigned char *pt;
	size_t pt_len;
	int ok = 0;

	if (bld == NULL)
		goto out;
	if (key->kind == P11PKI_KEY_RSA) {
		n = BN_bin2bn(c->a, (int)c->a_len, NULL);
		e = BN_bin2bn(c->b, (int)c->b_len, NULL);
		ok = n && e && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) &&
		     OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e);
		ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	} else {
		const char *group = key->bits == 384 ? "P-384" : key->bits == 521 ? "P-521" : "P-256";
		ec_point_octets(c->b, c->b_len, &pt, &pt_len);
		ok = OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) &&
		     OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pt, pt_len);
		ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	}
	ok = ok && ctx != NULL && (params = OSSL_PARAM_BLD_to_param(bld)) != NULL &&
	     EVP_PKEY_fromdata_init(ctx) == 1 && EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) == 1;
out:
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	EVP_PKEY_CTX_free(ctx);
	BN_free(n);
	BN_free(e);
	return ok;
}

int p11pki_key_public(p11pki_token *t, const struct p11pki_uri *sel, EVP_PKEY **out)
{
	struct p11pki_key_info key;
	struct pub_ctx c;
	int r;

	*out = NULL;
	memset(&c, 0, sizeof(c));
	memset(&key, 0, sizeof(key));
	if ((r = p11pki_key_select(t, sel, &key)) != 0)
		return r;
	if (key.kind != P11PKI_KEY_RSA && key.kind != P11PKI_KEY_EC) {
		r = p11pki_fail(P11PKI_E_UNSUPPORTED, "key '%s' on token '%s' is %s: p11pki handles RSA and EC keys",
				key.label ? key.label : "", t->label, key.curve ? key.curve : "of an unknown type");
		goto out;
	}
	c.key = &key;
	if ((r = p11pki_token_run(t, "reading the public key", pub_fn, &c)) != 0)
		goto out;
	if (!build_public(&key, &c, out))
		r = p11pki_fail(P11PKI_E_CRYPTO, "the public key '%s' on token '%s' is malformed",
				key.label ? key.label : "", t->label);
out:
	free(c.a);
	free(c.b);
	free(key.label);
	free(key.uri);
	return r;
}

struct delete_ctx {
	const struct p11pki_key_info *key;
	unsigned count;
};

static CK_RV delete_fn(p11pki_token *t, CK_SESSION_HANDLE s, void *arg)
{
	struct delete_ctx *c = arg;
	CK_ATTRIBUTE tmpl[] = { { CKA_ID, (void *)c->key->id, c->key->id_len } };
	CK_OBJECT_HANDLE found[16];
	CK_ULONG count, i;
	CK_RV rv;

	/* id_len 0 would match everything: key_select refuses that case */
	if ((rv = p11pki_find(t, s, tmpl, 1, found, 16, &count)) != CKR_OK)
		return rv;
	for (i = 0; i < count; i++) {
		if ((rv = P11_CALL(t->m, C_DestroyObject, s, found[i])) != CKR_OK)
			return rv;
		c->count++;
	}
	return CKR_OK;
}

int p11pki_key_delete(p11pki_token *t, const struct p11pki_uri *sel, unsigned *count)
{
	struct p11pki_key_info key;
	struct delete_ctx c = { &key, 0 };
	int r;

	memset(&key, 0, sizeof(key));
	if ((r = p11pki_key_select(t, sel, &key)) != 0)
		return r;
	if (key.id_len == 0)
		r = p11pki_fail(P11PKI_E_UNSUPPORTED, "key '%s' has no CKA_ID: delete it with pkcs11-tool",
				key.label ? key.label : "");
	else {
		int lock = p11pki_module_write_begin(t->m);
		r = p11pki_token_run(t, "deleting a key", delete_fn, &c);
		p11pki_module_write_end(lock);
	}
	if (count != NULL)
		*count = c.count;
	free(key.label);
	free(key.uri);
	return r;
}
