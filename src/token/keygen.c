/* Key pair generation with full attribute templates through the module's
 * own C_GenerateKeyPair (libp11 0.4.12 makes RSA keys only and cannot set
 * CKA_EXTRACTABLE). Private keys are sensitive and non-extractable unless
 * the caller explicitly opts in. */
#include <stdlib.h>
#include <string.h>

#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "token/internal.h"

#define ID_LEN 16

struct keygen_ctx {
	const struct p11pki_keygen *p;
	const unsigned char *id;
	size_t id_len;
	unsigned char *ec_params;
	int ec_params_len;
	int exists; /* set when a key with that label or id is there */
};

static CK_RV exists_fn(p11pki_token *t, CK_SESSION_HANDLE s, struct keygen_ctx *c)
{
	CK_ATTRIBUTE by_label = { CKA_LABEL, (void *)c->p->label, strlen(c->p->label) };
	CK_ATTRIBUTE by_id = { CKA_ID, (void *)c->id, c->id_len };
	CK_OBJECT_HANDLE o;
	CK_ULONG count = 0;
	CK_RV rv;

	/* a renewal's new key shares the label of the key it replaces */
	if (!c->p->reuse_label) {
		if ((rv = p11pki_find(t, s, &by_label, 1, &o, 1, &count)) != CKR_OK || count > 0) {
			c->exists = count > 0 ? 1 : 0;
			return rv;
		}
	}
	if ((rv = p11pki_find(t, s, &by_id, 1, &o, 1, &count)) == CKR_OK && count > 0)
		c->exists = 2;
	return rv;
}

static void remove_id(p11pki_token *t, CK_SESSION_HANDLE s, struct keygen_ctx *c)
{
	CK_ATTRIBUTE by_id = { CKA_ID, (void *)c->id, c->id_len };
	CK_OBJECT_HANDLE found[4];
	CK_ULONG count = 0, i;

	if (p11pki_find(t, s, &by_id, 1, found, 4, &count) != CKR_OK)
		return;
	for (i = 0; i < count; i++)
		(void)P11_CALL(t->m, C_DestroyObject, s, found[i]);
}

/* Reads back what the token stored: the label and id we asked for. */
static int written_whole(p11pki_token *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, const struct keygen_ctx *c)
{
	unsigned char *id = NULL, *label = NULL;
	CK_ULONG id_len = 0, label_len = 0;
	int ok;

	ok = p11pki_attr_get(t, s, o, CKA_ID, &id, &id_len) == CKR_OK &&
	     p11pki_attr_get(t, s, o, CKA_LABEL, &label, &label_len) == CKR_OK && id_len == c->id_len &&
	     memcmp(id, c->id, id_len) == 0 && label_len == strlen(c->p->label) &&
	     memcmp(label, c->p->label, label_len) == 0;
	free(id);
	free(label);
	return ok;
}

static CK_RV keygen_fn(p11pki_token *t, CK_SESSION_HANDLE s, void *arg)
{
	struct keygen_ctx *c = arg;
	const struct p11pki_keygen *p = c->p;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_BBOOL extractable = p->extractable ? CK_TRUE : CK_FALSE;
	CK_ULONG bits = p->type.bits;
	static CK_BYTE f4[] = { 0x01, 0x00, 0x01 };
	int rsa = p->type.kind == P11PKI_KEY_RSA;
	CK_MECHANISM mech = { rsa ? CKM_RSA_PKCS_KEY_PAIR_GEN : CKM_EC_KEY_PAIR_GEN, NULL, 0 };
	CK_ATTRIBUTE pub[] = {
		{ CKA_TOKEN, &yes, sizeof(yes) },
		{ CKA_PRIVATE, &no, sizeof(no) },
		{ CKA_VERIFY, &yes, sizeof(yes) },
		{ CKA_ENCRYPT, &no, sizeof(no) },
		{ CKA_WRAP, &no, sizeof(no) },
		{ CKA_LABEL, (void *)p->label, strlen(p->label) },
		{ CKA_ID, (void *)c->id, c->id_len },
		/* the type-specific pair comes last */
		{ rsa ? CKA_MODULUS_BITS : CKA_EC_PARAMS, rsa ? (void *)&bits : (void *)c->ec_params,
		  rsa ? sizeof(bits) : (CK_ULONG)c->ec_params_len },
		{ CKA_PUBLIC_EXPONENT, f4, sizeof(f4) },
	};
	CK_ATTRIBUTE priv[] = {
		{ CKA_TOKEN, &yes, sizeof(yes) },
		{ CKA_PRIVATE, &yes, sizeof(yes) },
		{ CKA_SENSITIVE, &yes, sizeof(yes) },
		{ CKA_EXTRACTABLE, &extractable, sizeof(extractable) },
		{ CKA_SIGN, &yes, sizeof(yes) },
		{ CKA_DECRYPT, &no, sizeof(no) },
		{ CKA_UNWRAP, &no, sizeof(no) },
		{ CKA_DERIVE, &no, sizeof(no) },
		{ CKA_LABEL, (void *)p->label, strlen(p->label) },
		{ CKA_ID, (void *)c->id, c->id_len },
	};
	CK_OBJECT_HANDLE hpub, hpriv;
	CK_RV rv;

	unsigned attempt;

	for (attempt = 0; attempt < 3; attempt++) {
		if ((rv = exists_fn(t, s, c)) != CKR_OK || c->exists)
			return rv;
		rv = P11_CALL(t->m, C_GenerateKeyPair, s, &mech, pub, rsa ? 9 : 8, priv,
			      sizeof(priv) / sizeof(priv[0]), &hpub, &hpriv);
		if (rv == CKR_OK && (written_whole(t, s, hpriv, c) && written_whole(t, s, hpub, c)))
			return CKR_OK;
		if (rv == CKR_OK) {
			/* SoftHSM2 can lose attributes when processes write at once */
			p11pki_log(P11PKI_LOG_DEBUG, "key '%s' was stored incompletely, making it again", p->label);
			(void)P11_CALL(t->m, C_DestroyObject, s, hpriv);
			(void)P11_CALL(t->m, C_DestroyObject, s, hpub);
			rv = CKR_FUNCTION_FAILED;
		} else if (rv != CKR_FUNCTION_FAILED && rv != CKR_GENERAL_ERROR) {
			return rv;
		}
		/* SoftHSM2 fails some writes while other processes write the
		 * same token: remove any half we made, then try again */
		remove_id(t, s, c);
		p11pki_sleep_ms(20u << attempt);
	}
	return rv;
}

int p11pki_key_generate(p11pki_token *t, const struct p11pki_keygen *p, char **uri_out)
{
	struct keygen_ctx c;
	unsigned char random_id[ID_LEN];
	ASN1_OBJECT *oid = NULL;
	char what[128];
	int r, lock;

	if (uri_out != NULL)
		*uri_out = NULL;
	memset(&c, 0, sizeof(c));
	c.p = p;
	if (p->label == NULL || *p->label == '\0')
		return p11pki_fail(P11PKI_E_ARG, "a key needs a label: give --label");
	if (p->id != NULL) {
		if (p->id_len == 0 || p->id_len > 64)
			return p11pki_fail(P11PKI_E_ARG, "a key id must be 1 to 64 bytes");
		c.id = p->id;
		c.id_len = p->id_len;
	} else {
		if (RAND_bytes(random_id, sizeof(random_id)) != 1)
			return p11pki_fail(P11PKI_E_CRYPTO, "no random bytes for a key id");
		c.id = random_id;
		c.id_len = sizeof(random_id);
	}
	if (p->type.kind == P11PKI_KEY_EC) {
		if ((oid = OBJ_nid2obj(p->type.curve_nid)) == NULL ||
		    (c.ec_params_len = i2d_ASN1_OBJECT(oid, &c.ec_params)) <= 0)
			return p11pki_fail(P11PKI_E_CRYPTO, "cannot encode the curve of %s", p->type.name);
	} else if (p->type.kind != P11PKI_KEY_RSA) {
		return p11pki_fail(P11PKI_E_ARG, "key type %s cannot be generated", p->type.name);
	}
	if (p->extractable)
		p11pki_log(P11PKI_LOG_WARN, "key '%s' on token '%s' is created EXTRACTABLE: it can be wrapped off the token",
			   p->label, t->label);
	snprintf(what, sizeof(what), "generating %s key '%s'", p->type.name, p->label);
	lock = p11pki_module_write_begin(t->m);
	r = p11pki_token_run(t, what, keygen_fn, &c);
	p11pki_module_write_end(lock);
	if (r != 0)
		goto out;
	if (c.exists) {
		r = p11pki_fail(P11PKI_E_EXISTS, "a key with %s '%s' already exists on token '%s': choose another %s or delete it",
				c.exists == 1 ? "label" : "that id", c.exists == 1 ? p->label : "given",
				t->label, c.exists == 1 ? "--label" : "--id");
		goto out;
	}
	if (uri_out != NULL)
		r = p11pki_token_uri(t, p->label, c.id, c.id_len, uri_out);
out:
	OPENSSL_free(c.ec_params);
	return r;
}
