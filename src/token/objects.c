/* Finding objects and reading their attributes. */
#include <stdlib.h>
#include <string.h>

#include "token/internal.h"

#define FIND_ATTRS_MAX 16

/* Token objects only, unless the template says otherwise: the session
 * copies of keys (p11pki_token_session_copy) share their label and ID. */
CK_RV p11pki_find(p11pki_token *t, CK_SESSION_HANDLE s, CK_ATTRIBUTE *tmpl, CK_ULONG n,
		  CK_OBJECT_HANDLE *found, CK_ULONG max, CK_ULONG *count)
{
	CK_BBOOL yes = CK_TRUE;
	CK_ATTRIBUTE all[FIND_ATTRS_MAX + 1];
	CK_ULONG i;
	CK_RV rv, rv_final;

	*count = 0;
	for (i = 0; i < n && tmpl[i].type != CKA_TOKEN; i++)
		;
	if (i == n && n <= FIND_ATTRS_MAX) {
		memcpy(all, tmpl, n * sizeof(*tmpl));
		all[n] = (CK_ATTRIBUTE){ CKA_TOKEN, &yes, sizeof(yes) };
		tmpl = all;
		n++;
	}
	if ((rv = P11_CALL(t->m, C_FindObjectsInit, s, tmpl, n)) != CKR_OK)
		return rv;
	rv = P11_CALL(t->m, C_FindObjects, s, found, max, count);
	rv_final = P11_CALL(t->m, C_FindObjectsFinal, s);
	return rv != CKR_OK ? rv : rv_final;
}

CK_RV p11pki_attr_get(p11pki_token *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
		      CK_ATTRIBUTE_TYPE type, unsigned char **val, CK_ULONG *len)
{
	CK_ATTRIBUTE a = { type, NULL, 0 };
	unsigned attempt;
	CK_RV rv = CKR_BUFFER_TOO_SMALL;

	*val = NULL;
	*len = 0;
	/* the value may grow between the two calls (another process writes) */
	for (attempt = 0; attempt < 3 && rv == CKR_BUFFER_TOO_SMALL; attempt++) {
		a.pValue = NULL;
		if ((rv = P11_CALL(t->m, C_GetAttributeValue, s, o, &a, 1)) != CKR_OK)
			return rv;
		if (a.ulValueLen == CK_UNAVAILABLE_INFORMATION || a.ulValueLen > 65536)
			return CKR_ATTRIBUTE_SENSITIVE;
		if ((a.pValue = malloc(a.ulValueLen + 1)) == NULL)
			return CKR_HOST_MEMORY;
		if ((rv = P11_CALL(t->m, C_GetAttributeValue, s, o, &a, 1)) != CKR_OK)
			free(a.pValue);
	}
	if (rv != CKR_OK)
		return rv;
	((unsigned char *)a.pValue)[a.ulValueLen] = 0; /* labels become strings */
	*val = a.pValue;
	*len = a.ulValueLen;
	return CKR_OK;
}

int p11pki_attr_bool(p11pki_token *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type)
{
	CK_BBOOL v = CK_FALSE;
	CK_ATTRIBUTE a = { type, &v, sizeof(v) };

	if (P11_CALL(t->m, C_GetAttributeValue, s, o, &a, 1) != CKR_OK)
		return -1;
	return v ? 1 : 0;
}

static CK_OBJECT_CLASS class_of(enum p11pki_obj_type type)
{
	switch (type) {
	case P11PKI_OBJ_PRIVATE: return CKO_PRIVATE_KEY;
	case P11PKI_OBJ_PUBLIC: return CKO_PUBLIC_KEY;
	case P11PKI_OBJ_CERT: return CKO_CERTIFICATE;
	case P11PKI_OBJ_SECRET_KEY: return CKO_SECRET_KEY;
	case P11PKI_OBJ_DATA: return CKO_DATA;
	default: return (CK_OBJECT_CLASS)-1;
	}
}

CK_ULONG p11pki_uri_template(const struct p11pki_uri *sel, CK_OBJECT_CLASS *cls, CK_ATTRIBUTE *tmpl,
			     CK_ULONG max)
{
	CK_ULONG n = 0;

	if (max < 3)
		return 0;
	if (*cls != (CK_OBJECT_CLASS)-1) {
		tmpl[n++] = (CK_ATTRIBUTE){ CKA_CLASS, cls, sizeof(*cls) };
	} else if (sel != NULL && sel->type != P11PKI_OBJ_ANY) {
		*cls = class_of(sel->type);
		tmpl[n++] = (CK_ATTRIBUTE){ CKA_CLASS, cls, sizeof(*cls) };
	}
	if (sel != NULL && sel->object != NULL)
		tmpl[n++] = (CK_ATTRIBUTE){ CKA_LABEL, sel->object, strlen(sel->object) };
	if (sel != NULL && sel->id != NULL)
		tmpl[n++] = (CK_ATTRIBUTE){ CKA_ID, sel->id, sel->id_len };
	return n;
}

int p11pki_token_uri(const p11pki_token *t, const char *object, const unsigned char *id, size_t id_len,
		     char **out)
{
	struct p11pki_uri *u = NULL;
	int r;

	*out = NULL;
	if ((r = p11pki_uri_new(&u)) != 0)
		return r;
	r = P11PKI_E_NOMEM;
	if ((u->token = strdup(t->label)) == NULL)
		goto out;
	if (object != NULL && (u->object = strdup(object)) == NULL)
		goto out;
	if (id != NULL && id_len > 0) {
		if ((u->id = malloc(id_len)) == NULL)
			goto out;
		memcpy(u->id, id, id_len);
		u->id_len = id_len;
	}
	r = p11pki_uri_format(u, out);
out:
	if (r == P11PKI_E_NOMEM)
		p11pki_fail(r, "out of memory formatting a URI");
	p11pki_uri_free(u);
	return r;
}
