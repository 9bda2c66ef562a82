/* Certificates on the token: an end-entity certificate lands next to the
 * key whose public key it carries (same CKA_ID and label, so libp11,
 * OpenSSL and pkcs11-tool pair them), CA, intermediate and
 * cross-certificates land under their own ids, and all can be listed. */
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "core/text.h"
#include "token/internal.h"

#define MAX_CERTS 1024
#define CATEGORY_USER 1UL      /* CKA_CERTIFICATE_CATEGORY: token user */
#define CATEGORY_AUTHORITY 2UL /* ... certificate authority */

static int cert_is_ca(X509 *cert)
{
	return (X509_get_extension_flags(cert) & EXFLAG_CA) != 0;
}

/* A certificate's URI: the key's URI plus type=cert, so it selects the
 * certificate and not the key pair that shares its label and id. */
static int cert_uri(const p11pki_token *t, const char *label, const unsigned char *id, size_t id_len, char **out)
{
	struct p11pki_uri *u = NULL;
	int r;

	*out = NULL;
	if ((r = p11pki_uri_new(&u)) != 0)
		return r;
	r = P11PKI_E_NOMEM;
	if ((u->token = strdup(t->label)) == NULL || (label != NULL && (u->object = strdup(label)) == NULL))
		goto out;
	if (id != NULL && id_len > 0) {
		if ((u->id = malloc(id_len)) == NULL)
			goto out;
		memcpy(u->id, id, id_len);
		u->id_len = id_len;
	}
	u->type = P11PKI_OBJ_CERT;
	r = p11pki_uri_format(u, out);
out:
	if (r == P11PKI_E_NOMEM)
		p11pki_fail(r, "out of memory formatting a URI");
	p11pki_uri_free(u);
	return r;
}

/* ---- storing ---------------------------------------------------------- */

struct store_ctx {
	const char *label;
	const unsigned char *id;
	size_t id_len;
	int is_ca;
	unsigned char *der, *subject, *issuer, *serial; /* DER encodings */
	int der_len, subject_len, issuer_len, serial_len;
	int exists;
};

static int encode(X509 *cert, struct store_ctx *c)
{
	c->der_len = i2d_X509(cert, &c->der);
	c->subject_len = i2d_X509_NAME(X509_get_subject_name(cert), &c->subject);
	c->issuer_len = i2d_X509_NAME(X509_get_issuer_name(cert), &c->issuer);
	c->serial_len = i2d_ASN1_INTEGER(X509_get0_serialNumber(cert), &c->serial);
	return c->der_len > 0 && c->subject_len > 0 && c->issuer_len > 0 && c->serial_len > 0;
}

static CK_RV store_fn(p11pki_token *t, CK_SESSION_HANDLE s, void *arg)
{
	struct store_ctx *c = arg;
	CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
	CK_CERTIFICATE_TYPE ctype = CKC_X_509;
	CK_ULONG category = c->is_ca ? CATEGORY_AUTHORITY : CATEGORY_USER;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ATTRIBUTE same[] = { { CKA_CLASS, &cls, sizeof(cls) }, { CKA_VALUE, c->der, (CK_ULONG)c->der_len } };
	CK_ATTRIBUTE tmpl[] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_CERTIFICATE_TYPE, &ctype, sizeof(ctype) },
		{ CKA_TOKEN, &yes, sizeof(yes) },
		{ CKA_PRIVATE, &no, sizeof(no) }, /* readable before login, as certificates are public */
		{ CKA_LABEL, (void *)c->label, strlen(c->label) },
		{ CKA_ID, (void *)c->id, c->id_len },
		{ CKA_SUBJECT, c->subject, (CK_ULONG)c->subject_len },
		{ CKA_ISSUER, c->issuer, (CK_ULONG)c->issuer_len },
		{ CKA_SERIAL_NUMBER, c->serial, (CK_ULONG)c->serial_len },
		{ CKA_VALUE, c->der, (CK_ULONG)c->der_len },
		/* last: a token that lacks it is asked again without it */
		{ CKA_CERTIFICATE_CATEGORY, &category, sizeof(category) },
	};
	CK_ULONG n = sizeof(tmpl) / sizeof(tmpl[0]), count = 0;
	CK_OBJECT_HANDLE o;
	CK_RV rv;

	if ((rv = p11pki_find(t, s, same, 2, &o, 1, &count)) != CKR_OK || count > 0) {
		c->exists = count > 0;
		return rv;
	}
	rv = P11_CALL(t->m, C_CreateObject, s, tmpl, n, &o);
	if (rv == CKR_ATTRIBUTE_TYPE_INVALID)
		rv = P11_CALL(t->m, C_CreateObject, s, tmpl, n - 1, &o);
	return rv;
}

int p11pki_cert_store(p11pki_token *t, X509 *cert, const char *label, const unsigned char *id, size_t id_len,
		      int is_ca)
{
	struct store_ctx c;
	char subject[256], what[320];
	int r;

	memset(&c, 0, sizeof(c));
	p11pki_name_text(X509_get_subject_name(cert), subject, sizeof(subject));
	if (label == NULL || *label == '\0')
		return p11pki_fail(P11PKI_E_ARG, "certificate '%s' needs a label", subject);
	if (id == NULL || id_len == 0 || id_len > 64)
		return p11pki_fail(P11PKI_E_ARG, "certificate '%s' needs an id of 1 to 64 bytes", subject);
	c.label = label;
	c.id = id;
	c.id_len = id_len;
	c.is_ca = is_ca;
	if (!encode(cert, &c)) {
		r = p11pki_fail(P11PKI_E_CRYPTO, "certificate '%s' cannot be encoded", subject);
		goto out;
	}
	snprintf(what, sizeof(what), "storing certificate '%s'", subject);
	if ((r = p11pki_token_run(t, what, store_fn, &c)) != 0)
		goto out;
	if (c.exists)
		r = p11pki_fail(P11PKI_E_EXISTS, "certificate '%s' is already on token '%s'", subject, t->label);
	else
		p11pki_log(P11PKI_LOG_DEBUG, "stored certificate '%s' as '%s' on token '%s'", subject, label, t->label);
out:
	OPENSSL_free(c.der);
	OPENSSL_free(c.subject);
	OPENSSL_free(c.issuer);
	OPENSSL_free(c.serial);
	return r;
}

/* ---- deleting ---------------------------------------------------------- */

struct delete_ctx {
	unsigned char *der;
	int der_len;
	unsigned count;
};

static CK_RV delete_fn(p11pki_token *t, CK_SESSION_HANDLE s, void *arg)
{
	struct delete_ctx *c = arg;
	CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
	CK_ATTRIBUTE same[] = { { CKA_CLASS, &cls, sizeof(cls) }, { CKA_VALUE, c->der, (CK_ULONG)c->der_len } };
	CK_OBJECT_HANDLE found[8];
	CK_ULONG count = 0, i;
	CK_RV rv;

	if ((rv = p11pki_find(t, s, same, 2, found, 8, &count)) != CKR_OK)
		return rv;
	for (i = 0; i < count; i++) {
		if ((rv = P11_CALL(t->m, C_DestroyObject, s, found[i])) != CKR_OK)
			return rv;
		c->count++;
	}
	return CKR_OK;
}

int p11pki_cert_delete(p11pki_token *t, X509 *cert, unsigned *count)
{
	struct delete_ctx c;
	char subject[256], what[320];
	int r, lock;

	memset(&c, 0, sizeof(c));
	if (count != NULL)
		*count = 0;
	p11pki_name_text(X509_get_subject_name(cert), subject, sizeof(subject));
	if ((c.der_len = i2d_X509(cert, &c.der)) <= 0) {
		ERR_clear_error();
		return p11pki_fail(P11PKI_E_CRYPTO, "certificate '%s' cannot be encoded", subject);
	}
	snprintf(what, sizeof(what), "deleting certificate '%s'", subject);
	lock = p11pki_module_write_begin(t->m);
	r = p11pki_token_run(t, what, delete_fn, &c);
	p11pki_module_write_end(lock);
	if (r == 0 && c.count == 0)
		r = p11pki_fail(P11PKI_E_NOTFOUND, "certificate '%s' is not on token '%s'", subject, t->label);
	if (count != NULL)
		*count = c.count;
	OPENSSL_free(c.der);
	return r;
}

/* ---- pairing with a key ----------------------------------------------- */

/* 1 when the key pair k holds pub, 0 when not (or when p11pki cannot read
 * it: Ed25519, a private key without its public half), < 0 on a token
 * failure. */
static int key_holds(p11pki_token *t, const struct p11pki_key_info *k, EVP_PKEY *pub)
{
	struct p11pki_uri sel;
	EVP_PKEY *kp = NULL;
	int r;

	if (!k->has_private || (k->kind != P11PKI_KEY_RSA && k->kind != P11PKI_KEY_EC))
		return 0;
	memset(&sel, 0, sizeof(sel));
	sel.object = k->label;
	sel.id = k->id_len > 0 ? (unsigned char *)k->id : NULL;
	sel.id_len = k->id_len;
	if (sel.object == NULL && sel.id == NULL)
		return 0;
	r = p11pki_key_public(t, &sel, &kp);
	if (r == P11PKI_E_TOKEN || r == P11PKI_E_PIN || r == P11PKI_E_NOMEM)
		return r;
	r = r == 0 && EVP_PKEY_eq(kp, pub) == 1;
	EVP_PKEY_free(kp);
	ERR_clear_error(); /* EVP_PKEY_eq leaves type mismatches behind */
	return r;
}

int p11pki_key_find_public(p11pki_token *t, EVP_PKEY *pub, struct p11pki_key_info **out)
{
	struct p11pki_key_info *keys = NULL;
	size_t n = 0, i;
	int r, m = 0;

	*out = NULL;
	if ((r = p11pki_key_list(t, NULL, &keys, &n)) != 0)
		return r;
	for (i = 0; i < n; i++) {
		if ((m = key_holds(t, &keys[i], pub)) != 0)
			break;
	}
	if (m < 0) {
		r = m;
	} else if (m == 0) {
		r = p11pki_fail(P11PKI_E_NOTFOUND, "no key on token '%s' has that public key", t->label);
	} else if ((*out = calloc(1, sizeof(**out))) == NULL) {
		r = p11pki_fail(P11PKI_E_NOMEM, "out of memory");
	} else {
		**out = keys[i];
		keys[i].label = keys[i].uri = NULL;
	}
	p11pki_key_info_free(keys, n);
	return r;
}

/* The CN of a name as UTF-8, or NULL. Caller frees with OPENSSL_free. */
static char *common_name(const X509_NAME *name)
{
	int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
	unsigned char *utf8 = NULL;

	if (i < 0 || ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i))) < 0)
		return NULL;
	return (char *)utf8;
}

int p11pki_cert_import(p11pki_token *t, X509 *cert, char **uri_out)
{
	struct p11pki_key_info *key = NULL;
	EVP_PKEY *pub = X509_get0_pubkey(cert);
	char subject[256], *cn = NULL;
	const char *label;
	int r;

	if (uri_out != NULL)
		*uri_out = NULL;
	p11pki_name_text(X509_get_subject_name(cert), subject, sizeof(subject));
	if (pub == NULL) {
		r = p11pki_fail(P11PKI_E_CRYPTO, "certificate '%s' has a public key p11pki cannot read", subject);
		goto out;
	}
	if ((r = p11pki_key_find_public(t, pub, &key)) == P11PKI_E_NOTFOUND) {
		r = p11pki_fail(P11PKI_E_NOTFOUND,
				"certificate '%s' matches no private key on token '%s': import it with --is-ca if it is a "
				"CA or intermediate certificate", subject, t->label);
		goto out;
	}
	if (r != 0)
		goto out;
	cn = common_name(X509_get_subject_name(cert));
	label = key->label != NULL && *key->label != '\0' ? key->label : cn != NULL ? cn : "certificate";
	if (key->id_len == 0) {
		r = p11pki_fail(P11PKI_E_UNSUPPORTED, "key '%s' on token '%s' has no CKA_ID to pair a certificate with",
				label, t->label);
		goto out;
	}
	if ((r = p11pki_cert_store(t, cert, label, key->id, key->id_len, cert_is_ca(cert))) != 0)
		goto out;
	if (uri_out != NULL)
		r = cert_uri(t, label, key->id, key->id_len, uri_out);
out:
	OPENSSL_free(cn);
	p11pki_key_info_free(key, key != NULL ? 1 : 0);
	return r;
}

/* subjectKeyIdentifier, or the SHA-1 of the public key (RFC 5280 4.2.1.2
 * method 1) when the certificate has none or an oversized one. */
static int ca_id(X509 *cert, unsigned char *id, size_t *len)
{
	const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(cert);
	unsigned int n = 0;

	if (ski != NULL && ASN1_STRING_length(ski) > 0 && ASN1_STRING_length(ski) <= 64) {
		*len = (size_t)ASN1_STRING_length(ski);
		memcpy(id, ASN1_STRING_get0_data(ski), *len);
		return 1;
	}
	if (X509_pubkey_digest(cert, EVP_sha1(), id, &n) != 1)
		return 0;
	*len = n;
	return 1;
}

int p11pki_cert_store_ca(p11pki_token *t, X509 *cert, const char *label, char **uri_out)
{
	unsigned char id[EVP_MAX_MD_SIZE > 64 ? EVP_MAX_MD_SIZE : 64];
	char subject[256], *cn = NULL;
	size_t id_len = 0;
	int r;

	if (uri_out != NULL)
		*uri_out = NULL;
	if (label == NULL || *label == '\0') {
		cn = common_name(X509_get_subject_name(cert));
		if (cn == NULL)
			p11pki_name_text(X509_get_subject_name(cert), subject, sizeof(subject));
		label = cn != NULL ? cn : subject;
	}
	if (!ca_id(cert, id, &id_len)) {
		r = p11pki_fail(P11PKI_E_CRYPTO, "cannot compute an id for certificate '%s'", label);
		goto out;
	}
	if ((r = p11pki_cert_store(t, cert, label, id, id_len, 1)) != 0)
		goto out;
	if (uri_out != NULL)
		r = cert_uri(t, label, id, id_len, uri_out);
out:
	OPENSSL_free(cn);
	return r;
}

/* ---- listing ---------------------------------------------------------- */

struct list_ctx {
	const struct p11pki_uri *filter;
	struct p11pki_cert_info *certs;
	size_t n;
};

static CK_RV add_cert(p11pki_token *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, struct list_ctx *c)
{
	struct p11pki_cert_info *ci = &c->certs[c->n];
	unsigned char *der = NULL, *id = NULL, *label = NULL;
	const unsigned char *p;
	CK_ULONG der_len, id_len, label_len, category = 0;
	CK_ATTRIBUTE cat = { CKA_CERTIFICATE_CATEGORY, &category, sizeof(category) };
	CK_RV rv;

	if ((rv = p11pki_attr_get(t, s, o, CKA_VALUE, &der, &der_len)) != CKR_OK)
		goto out;
	if ((rv = p11pki_attr_get(t, s, o, CKA_ID, &id, &id_len)) != CKR_OK && rv != CKR_ATTRIBUTE_TYPE_INVALID)
		goto out;
	if ((rv = p11pki_attr_get(t, s, o, CKA_LABEL, &label, &label_len)) != CKR_OK &&
	    rv != CKR_ATTRIBUTE_TYPE_INVALID)
		goto out;
	rv = CKR_OK;
	p = der;
	if ((ci->cert = d2i_X509(NULL, &p, (long)der_len)) == NULL) {
		p11pki_log(P11PKI_LOG_WARN, "token '%s': certificate '%s' is not valid DER, skipped", t->label,
			   label != NULL ? (char *)label : "");
		ERR_clear_error();
		goto out;
	}
	if (P11_CALL(t->m, C_GetAttributeValue, s, o, &cat, 1) != CKR_OK)
		category = 0; /* older tokens: fall back to basicConstraints */
	ci->is_ca = category == CATEGORY_AUTHORITY || cert_is_ca(ci->cert);
	ci->id_len = id_len > sizeof(ci->id) ? sizeof(ci->id) : id_len;
	if (id != NULL)
		memcpy(ci->id, id, ci->id_len);
	ci->label = (char *)label;
	label = NULL;
	c->n++;
out:
	free(der);
	free(id);
	free(label);
	return rv;
}

static CK_RV list_fn(p11pki_token *t, CK_SESSION_HANDLE s, void *arg)
{
	struct list_ctx *c = arg;
	CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
	CK_CERTIFICATE_TYPE ctype = CKC_X_509;
	CK_OBJECT_HANDLE *found = NULL;
	CK_ATTRIBUTE tmpl[4];
	CK_ULONG n, count = 0, i;
	CK_RV rv;

	n = p11pki_uri_template(c->filter, &cls, tmpl, 3);
	tmpl[n++] = (CK_ATTRIBUTE){ CKA_CERTIFICATE_TYPE, &ctype, sizeof(ctype) };
	if ((found = calloc(MAX_CERTS, sizeof(*found))) == NULL ||
	    (c->certs = calloc(MAX_CERTS, sizeof(*c->certs))) == NULL) {
		rv = CKR_HOST_MEMORY;
		goto out;
	}
	if ((rv = p11pki_find(t, s, tmpl, n, found, MAX_CERTS, &count)) != CKR_OK)
		goto out;
	for (i = 0; i < count && rv == CKR_OK; i++)
		rv = add_cert(t, s, found[i], c);
out:
	free(found);
	if (rv != CKR_OK) {
		p11pki_cert_info_free(c->certs, c->n);
		c->certs = NULL;
		c->n = 0;
	}
	return rv;
}

void p11pki_cert_info_free(struct p11pki_cert_info *certs, size_t n)
{
	size_t i;

	if (certs == NULL)
		return;
	for (i = 0; i < n; i++) {
		free(certs[i].label);
		free(certs[i].uri);
		X509_free(certs[i].cert);
	}
	free(certs);
}

int p11pki_cert_list(p11pki_token *t, const struct p11pki_uri *filter, struct p11pki_cert_info **out, size_t *n)
{
	struct list_ctx c = { filter, NULL, 0 };
	size_t i;
	int r;

	*out = NULL;
	*n = 0;
	if (filter != NULL && filter->type != P11PKI_OBJ_ANY && filter->type != P11PKI_OBJ_CERT)
		return P11PKI_OK; /* keys and data are not certificates */
	if ((r = p11pki_token_run(t, "listing certificates", list_fn, &c)) != 0)
		return r;
	for (i = 0; i < c.n; i++) {
		if ((r = cert_uri(t, c.certs[i].label, c.certs[i].id, c.certs[i].id_len, &c.certs[i].uri)) != 0) {
			p11pki_cert_info_free(c.certs, c.n);
			return r;
		}
	}
	*out = c.certs;
	*n = c.n;
	return P11PKI_OK;
}
