/* EVP_PKEYs whose private operations run on the token. OpenSSL treats an
 * RSA or EC key with its own method as "foreign" and routes signing to
 * it; our methods call C_Sign through the session pool, so any number of
 * threads sign at once and a token that goes away is recovered from.
 * (libp11's own EVP_PKEY cannot be used: its key enumeration fails on
 * tokens that also hold an Ed25519 key.) */
#define OPENSSL_SUPPRESS_DEPRECATED 1 /* RSA_METHOD / EC_KEY_METHOD */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/rsa.h>

#include "token/internal.h"

struct keyref {
	p11pki_token *t;
	unsigned char id[64];
	size_t id_len;
	char what[96]; /* "signing with key 'LABEL'", for a failure */
	_Atomic CK_OBJECT_HANDLE handle; /* cached; 0 until found */
	atomic_int no_copy;		/* the token refused a session copy */
	_Atomic CK_SESSION_HANDLE copy_holder; /* handle is a copy this session holds; 0: not */
};

static pthread_once_t methods_once = PTHREAD_ONCE_INIT;
static RSA_METHOD *rsa_method;
static EC_KEY_METHOD *ec_method;
static int rsa_index = -1, ec_index = -1;

static void keyref_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	struct keyref *k = ptr;

	/* a reload loads its keys again: their copies end with the old ones */
	if (k != NULL && k->copy_holder != 0)
		p11pki_token_session_destroy(k->t, k->copy_holder, atomic_load(&k->handle));
	free(k);
}

struct sign_op {
	struct keyref *k;
	CK_MECHANISM_TYPE mech;
	const unsigned char *in;
	CK_ULONG in_len;
	unsigned char out[1024];
	CK_ULONG out_len;
};

/* A token that will not copy a key (CKA_COPYABLE false, or no
 * C_CopyObject) is not asked again; other failures are. */
static int copy_refused(CK_RV rv)
{
	return rv == CKR_ACTION_PROHIBITED || rv == CKR_FUNCTION_NOT_SUPPORTED || rv == CKR_TEMPLATE_INCONSISTENT ||
	       rv == CKR_ATTRIBUTE_READ_ONLY || rv == CKR_ATTRIBUTE_VALUE_INVALID;
}

/* Finds the key on the token (in place of `seen`, the handle the caller
 * found missing or invalid; 0 at first) and, for a token that signs
 * through session copies, copies it. Of two threads finding at once, the
 * first installs its handle and the other destroys its copy. */
static CK_RV find_private(p11pki_token *t, CK_SESSION_HANDLE s, struct keyref *k, CK_OBJECT_HANDLE seen,
			  CK_OBJECT_HANDLE *h)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE tmpl[] = { { CKA_CLASS, &cls, sizeof(cls) }, { CKA_ID, k->id, k->id_len } };
	CK_OBJECT_HANDLE copy = CK_INVALID_HANDLE, expected = seen;
	CK_SESSION_HANDLE holder = 0;
	CK_ULONG count;
	CK_RV rv;

	if ((rv = p11pki_find(t, s, tmpl, 2, h, 1, &count)) != CKR_OK)
		return rv;
	if (count == 0)
		return CKR_KEY_HANDLE_INVALID;
	if (atomic_load(&t->session_keys) && !atomic_load(&k->no_copy)) {
		rv = p11pki_token_session_copy(t, *h, &copy, &holder);
		if (rv == CKR_OK && copy != CK_INVALID_HANDLE)
			*h = copy;
		else if (copy_refused(rv))
			atomic_store(&k->no_copy, 1); /* sign with the token object */
	}
	if (!atomic_compare_exchange_strong(&k->handle, &expected, *h)) {
		if (*h == copy)
			p11pki_token_session_destroy(t, holder, copy);
		*h = expected;
		return CKR_OK;
	}
	/* the copy it replaces, if any, ended with its holder session */
	k->copy_holder = *h == copy ? holder : 0;
	return CKR_OK;
}

static CK_RV sign_fn(p11pki_token *t, CK_SESSION_HANDLE s, void *arg)
{
	struct sign_op *op = arg;
	CK_MECHANISM mech = { op->mech, NULL, 0 };
	CK_OBJECT_HANDLE h;
	CK_RV rv;

	/* no lock: the workers sign at once with one key */
	h = atomic_load(&op->k->handle);
	if (h == 0 && (rv = find_private(t, s, op->k, 0, &h)) != CKR_OK)
		return rv;
	rv = P11_CALL(t->m, C_SignInit, s, &mech, h);
	if (rv == CKR_KEY_HANDLE_INVALID || rv == CKR_OBJECT_HANDLE_INVALID) {
		/* the object was re-created, the token re-inserted, or the
		 * session holding its copy closed */
		if ((rv = find_private(t, s, op->k, h, &h)) != CKR_OK)
			return rv;
		rv = P11_CALL(t->m, C_SignInit, s, &mech, h);
	}
	if (rv != CKR_OK)
		return rv;
	op->out_len = sizeof(op->out);
	return P11_CALL(t->m, C_Sign, s, (CK_BYTE_PTR)op->in, op->in_len, op->out, &op->out_len);
}

static int sign_now(void *arg)
{
	struct sign_op *op = arg;

	return p11pki_token_run(op->k->t, op->k->what, sign_fn, op);
}

static int token_sign(struct keyref *k, struct sign_op *op)
{
	op->k = k;
	if (p11pki_async_run(k->t, sign_now, op) != 0) {
		ERR_raise_data(ERR_LIB_USER, ERR_R_OPERATION_FAIL, "%s", p11pki_errmsg());
		return 0;
	}
	return 1;
}

/* RSA: PKCS#1 v1.5 arrives as a DigestInfo (CKM_RSA_PKCS pads it); PSS
 * arrives already encoded (CKM_RSA_X_509 is the raw private operation). */
static int rsa_priv_enc(int flen, const unsigned char *from, unsigned char *to, RSA *rsa, int padding)
{
	struct keyref *k = RSA_get_ex_data(rsa, rsa_index);
	struct sign_op op;

	if (k == NULL || (padding != RSA_PKCS1_PADDING && padding != RSA_NO_PADDING))
		return -1;
	op.mech = padding == RSA_PKCS1_PADDING ? CKM_RSA_PKCS : CKM_RSA_X_509;
	op.in = from;
	op.in_len = (CK_ULONG)flen;
	if (!token_sign(k, &op) || op.out_len > (CK_ULONG)RSA_size(rsa))
		return -1;
	memcpy(to, op.out, op.out_len);
	return (int)op.out_len;
}

static int rsa_priv_dec(int flen, const unsigned char *from, unsigned char *to, RSA *rsa, int padding)
{
	ERR_raise_data(ERR_LIB_USER, ERR_R_OPERATION_FAIL, "token keys made by p11pki sign only");
	return -1;
}

static ECDSA_SIG *ec_sign_sig(const unsigned char *dgst, int dlen, const BIGNUM *kinv, const BIGNUM *r,
			      EC_KEY *ec)
{
	struct keyref *k = EC_KEY_get_ex_data(ec, ec_index);
	struct sign_op op;
	ECDSA_SIG *sig = NULL;
	BIGNUM *sr = NULL, *ss = NULL;
	CK_ULONG half;

	if (k == NULL)
		return NULL;
	op.mech = CKM_ECDSA;
	op.in = dgst;
	op.in_len = (CK_ULONG)dlen;
	if (!token_sign(k, &op) || op.out_len == 0 || op.out_len % 2 != 0)
		return NULL;
	half = op.out_len / 2; /* the token returns r || s */
	sr = BN_bin2bn(op.out, (int)half, NULL);
	ss = BN_bin2bn(op.out + half, (int)half, NULL);
	if (sr == NULL || ss == NULL || (sig = ECDSA_SIG_new()) == NULL || !ECDSA_SIG_set0(sig, sr, ss)) {
		BN_free(sr);
		BN_free(ss);
		ECDSA_SIG_free(sig);
		return NULL;
	}
	return sig;
}

static void make_methods(void)
{
	int (*sign)(int, const unsigned char *, int, unsigned char *, unsigned int *, const BIGNUM *,
		    const BIGNUM *, EC_KEY *) = NULL;
	int (*setup)(EC_KEY *, BN_CTX *, BIGNUM **, BIGNUM **) = NULL;

	rsa_index = RSA_get_ex_new_index(0, "p11pki", NULL, NULL, keyref_free);
	ec_index = EC_KEY_get_ex_new_index(0, "p11pki", NULL, NULL, keyref_free);
	if ((rsa_method = RSA_meth_dup(RSA_PKCS1_OpenSSL())) != NULL) {
		RSA_meth_set1_name(rsa_method, "p11pki token RSA");
		RSA_meth_set_priv_enc(rsa_method, rsa_priv_enc);
		RSA_meth_set_priv_dec(rsa_method, rsa_priv_dec);
	}
	if ((ec_method = EC_KEY_METHOD_new(EC_KEY_OpenSSL())) != NULL) {
		EC_KEY_METHOD_get_sign(EC_KEY_OpenSSL(), &sign, &setup, NULL);
		EC_KEY_METHOD_set_sign(ec_method, sign, setup, ec_sign_sig);
	}
}

static int wrap_key(EVP_PKEY *pub, struct keyref *k, EVP_PKEY **out)
{
	EVP_PKEY *pk = EVP_PKEY_new();
	RSA *rsa = NULL;
	EC_KEY *ec = NULL;

	if (pk == NULL)
		return 0;
	if (EVP_PKEY_get_base_id(pub) == EVP_PKEY_RSA) {
		if ((rsa = EVP_PKEY_get1_RSA(pub)) == NULL || !RSA_set_method(rsa, rsa_method) ||
		    !RSA_set_ex_data(rsa, rsa_index, k) || !EVP_PKEY_assign_RSA(pk, rsa))
			goto fail;
	} else {
		if ((ec = EVP_PKEY_get1_EC_KEY(pub)) == NULL || !EC_KEY_set_method(ec, ec_method) ||
		    !EC_KEY_set_ex_data(ec, ec_index, k) || !EVP_PKEY_assign_EC_KEY(pk, ec))
			goto fail;
	}
	*out = pk;
	return 1;
fail:
	/* the key owns k only once ex_data is set; the caller frees it otherwise */
	if (rsa != NULL && RSA_get_ex_data(rsa, rsa_index) == k)
		RSA_set_ex_data(rsa, rsa_index, NULL);
	if (ec != NULL && EC_KEY_get_ex_data(ec, ec_index) == k)
		EC_KEY_set_ex_data(ec, ec_index, NULL);
	RSA_free(rsa);
	EC_KEY_free(ec);
	EVP_PKEY_free(pk);
	return 0;
}

int p11pki_key_load(p11pki_token *t, const struct p11pki_uri *sel, EVP_PKEY **out)
{
	struct p11pki_key_info key;
	struct keyref *k = NULL;
	EVP_PKEY *pub = NULL;
	int r;

	*out = NULL;
	memset(&key, 0, sizeof(key));
	pthread_once(&methods_once, make_methods);
	if (rsa_method == NULL || ec_method == NULL)
		return p11pki_fail(P11PKI_E_CRYPTO, "cannot create the OpenSSL key methods");
	if ((r = p11pki_key_select(t, sel, &key)) != 0)
		return r;
	if (!key.has_private) {
		r = p11pki_fail(P11PKI_E_NOTFOUND, "key '%s' on token '%s' has no private half (is the token logged in?)",
				key.label ? key.label : "", t->label);
		goto out;
	}
	if (key.id_len == 0) {
		r = p11pki_fail(P11PKI_E_UNSUPPORTED, "key '%s' has no CKA_ID: p11pki needs one to find it again",
				key.label ? key.label : "");
		goto out;
	}
	if ((r = p11pki_key_public(t, sel, &pub)) != 0)
		goto out;
	if ((k = calloc(1, sizeof(*k))) == NULL) {
		r = p11pki_fail(P11PKI_E_NOMEM, "out of memory loading a key");
		goto out;
	}
	k->t = t;
	memcpy(k->id, key.id, key.id_len);
	k->id_len = key.id_len;
	snprintf(k->what, sizeof(k->what), "signing with key '%.64s'", key.label ? key.label : "");
	if (!wrap_key(pub, k, out)) {
		free(k);
		r = p11pki_fail(P11PKI_E_CRYPTO, "cannot make an OpenSSL key for '%s'", key.label ? key.label : "");
	}
out:
	EVP_PKEY_free(pub);
	free(key.label);
	free(key.uri);
	return r;
}
