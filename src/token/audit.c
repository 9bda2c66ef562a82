/* Asks the token for a private key's secret in the two ways an attacker
 * with the PIN would, and records the answers: the proof that a key
 * cannot leave the token. */
#include <stdlib.h>
#include <string.h>

#include "token/internal.h"

struct audit_ctx {
	const struct p11pki_key_info *key;
	struct p11pki_key_audit *out;
};

static CK_RV try_wrap(p11pki_token *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, CK_RV *wrap_rv)
{
	CK_MECHANISM gen = { CKM_AES_KEY_GEN, NULL, 0 };
	CK_MECHANISM wrap = { CKM_AES_KEY_WRAP_PAD, NULL, 0 };
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ULONG len = 32;
	CK_ATTRIBUTE tmpl[] = {
		{ CKA_TOKEN, &no, sizeof(no) }, /* a session key: gone on close */
		{ CKA_WRAP, &yes, sizeof(yes) },
		{ CKA_VALUE_LEN, &len, sizeof(len) },
	};
	unsigned char out[8192];
	CK_ULONG out_len = sizeof(out);
	CK_OBJECT_HANDLE kek;
	CK_RV rv;

	if ((rv = P11_CALL(t->m, C_GenerateKey, s, &gen, tmpl, 3, &kek)) != CKR_OK)
		return rv;
	*wrap_rv = P11_CALL(t->m, C_WrapKey, s, &wrap, kek, key, out, &out_len);
	memset(out, 0, sizeof(out));
	return P11_CALL(t->m, C_DestroyObject, s, kek);
}

static CK_RV audit_fn(p11pki_token *t, CK_SESSION_HANDLE s, void *arg)
{
	struct audit_ctx *c = arg;
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE tmpl[] = { { CKA_CLASS, &cls, sizeof(cls) }, { CKA_ID, (void *)c->key->id, c->key->id_len } };
	CK_ATTRIBUTE_TYPE secret = c->key->kind == P11PKI_KEY_RSA ? CKA_PRIVATE_EXPONENT : CKA_VALUE;
	unsigned char buf[1024];
	CK_ATTRIBUTE value = { secret, buf, sizeof(buf) };
	CK_OBJECT_HANDLE o;
	CK_ULONG count;
	CK_RV rv, read_rv, wrap_rv = CKR_GENERAL_ERROR;

	if ((rv = p11pki_find(t, s, tmpl, 2, &o, 1, &count)) != CKR_OK)
		return rv;
	if (count == 0)
		return CKR_KEY_HANDLE_INVALID;
	read_rv = P11_CALL(t->m, C_GetAttributeValue, s, o, &value, 1);
	memset(buf, 0, sizeof(buf)); /* in case a token did hand it out */
	if ((rv = try_wrap(t, s, o, &wrap_rv)) != CKR_OK)
		return rv;
	c->out->read_rv = read_rv;
	c->out->wrap_rv = wrap_rv;
	return CKR_OK;
}

int p11pki_key_audit(p11pki_token *t, const struct p11pki_uri *sel, struct p11pki_key_audit *out)
{
	struct p11pki_key_info key;
	struct audit_ctx c = { &key, out };
	int r;

	memset(out, 0, sizeof(*out));
	memset(&key, 0, sizeof(key));
	if ((r = p11pki_key_select(t, sel, &key)) != 0)
		return r;
	if (!key.has_private || key.id_len == 0) {
		r = p11pki_fail(P11PKI_E_NOTFOUND, "key '%s' has no private half with an id to audit",
				key.label ? key.label : "");
		goto out;
	}
	if ((r = p11pki_token_run(t, "auditing a key", audit_fn, &c)) != 0)
		goto out;
	out->read_name = p11pki_ckr_name(out->read_rv);
	out->wrap_name = p11pki_ckr_name(out->wrap_rv);
	out->sensitive = key.sensitive;
	out->extractable = key.extractable;
	out->always_sensitive = key.always_sensitive;
	out->never_extractable = key.never_extractable;
	out->local = key.local;
out:
	free(key.label);
	free(key.uri);
	return r;
}
