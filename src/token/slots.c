/* Slots and tokens: listing (through libp11), finding the one a URI
 * selects, and initialising a new token (C_InitToken directly: libp11
 * 0.4.12 passes the label unpadded). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "token/internal.h"

#define ENUM_ATTEMPTS 8 /* 10 ms doubling: about 2.5 s in all */
#define FIND_ATTEMPTS 4

void p11pki_unpad(char *dst, size_t dst_size, const unsigned char *src, size_t src_len)
{
	size_t n = src_len < dst_size - 1 ? src_len : dst_size - 1;

	memcpy(dst, src, n);
	while (n > 0 && (dst[n - 1] == ' ' || dst[n - 1] == '\0'))
		n--;
	dst[n] = '\0';
}

void p11pki_sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0)
		;
}

/* libp11 enumeration, retried: SoftHSM2 fails some opens under load. */
static int enumerate(p11pki_module *m, PKCS11_SLOT **slots, unsigned *n)
{
	unsigned attempt;

	int lock = p11pki_module_read_begin(m), ok = 0;

	for (attempt = 0; attempt < ENUM_ATTEMPTS && !ok; attempt++) {
		if ((ok = PKCS11_enumerate_slots(m->ctx, slots, n) == 0))
			break;
		p11pki_sleep_ms(10u << (attempt % 4));
		/* SoftHSM2 may hold a half-read token: have it read again */
		if (attempt % 2 == 1 && m->tokens_open == 0) {
			PKCS11_CTX_unload(m->ctx);
			(void)PKCS11_CTX_load(m->ctx, m->path);
		}
	}
	p11pki_module_write_end(lock);
	if (ok)
		return P11PKI_OK;
	return p11pki_fail(P11PKI_E_TOKEN, "listing the slots of module '%s' failed %d times (PKCS11_enumerate_slots)",
			   m->path, ENUM_ATTEMPTS);
}

static int has_mechanism(const CK_MECHANISM_TYPE *list, CK_ULONG n, CK_MECHANISM_TYPE want)
{
	CK_ULONG i;

	for (i = 0; i < n; i++)
		if (list[i] == want)
			return 1;
	return 0;
}

static void read_mechanisms(p11pki_module *m, struct p11pki_token_info *info)
{
	CK_MECHANISM_TYPE *list = NULL;
	CK_ULONG n = 0;

	if (P11_CALL(m, C_GetMechanismList, info->slot_id, NULL, &n) != CKR_OK || n == 0 || n > 4096)
		return;
	if ((list = calloc(n, sizeof(*list))) == NULL)
		return;
	if (P11_CALL(m, C_GetMechanismList, info->slot_id, list, &n) == CKR_OK) {
		info->can_rsa = has_mechanism(list, n, CKM_RSA_PKCS_KEY_PAIR_GEN) &&
				has_mechanism(list, n, CKM_RSA_PKCS);
		info->can_rsa_pss = has_mechanism(list, n, CKM_RSA_PKCS_PSS) ||
				    has_mechanism(list, n, CKM_RSA_X_509);
		info->can_ec = has_mechanism(list, n, CKM_EC_KEY_PAIR_GEN) &&
			       has_mechanism(list, n, CKM_ECDSA);
		info->can_ed25519 = has_mechanism(list, n, CKM_EC_EDWARDS_KEY_PAIR_GEN);
	}
	free(list);
}

static void fill_info(p11pki_module *m, PKCS11_SLOT *slot, struct p11pki_token_info *info)
{
	PKCS11_TOKEN *tok = slot->token;

	info->slot_id = PKCS11_get_slotid_from_slot(slot);
	snprintf(info->slot_description, sizeof(info->slot_description), "%s",
		 slot->description ? slot->description : "");
	if (tok == NULL)
		return;
	info->present = 1;
	info->initialized = tok->initialized;
	info->login_required = tok->loginRequired;
	info->user_pin_set = tok->userPinSet;
	snprintf(info->label, sizeof(info->label), "%s", tok->label ? tok->label : "");
	snprintf(info->manufacturer, sizeof(info->manufacturer), "%s", tok->manufacturer ? tok->manufacturer : "");
	snprintf(info->model, sizeof(info->model), "%s", tok->model ? tok->model : "");
	snprintf(info->serial, sizeof(info->serial), "%s", tok->serialnr ? tok->serialnr : "");
	read_mechanisms(m, info);
}

static int info_uri(struct p11pki_token_info *info)
{
	struct p11pki_uri *u = NULL;
	int r;

	if ((r = p11pki_uri_new(&u)) != 0)
		return r;
	if (info->present && info->initialized) {
		u->token = strdup(info->label);
		u->manufacturer = strdup(info->manufacturer);
		u->serial = strdup(info->serial);
		u->model = strdup(info->model);
		if (!u->token || !u->manufacturer || !u->serial || !u->model) {
			p11pki_uri_free(u);
			return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
		}
	} else {
		u->has_slot_id = 1;
		u->slot_id = info->slot_id;
	}
	r = p11pki_uri_format(u, &info->uri);
	p11pki_uri_free(u);
	return r;
}

int p11pki_module_tokens(p11pki_module *m, struct p11pki_token_info **out, size_t *n)
{
	PKCS11_SLOT *slots = NULL;
	struct p11pki_token_info *infos = NULL;
	unsigned count = 0, i;
	int r;

	*out = NULL;
	*n = 0;
	pthread_mutex_lock(&m->lock);
	if ((r = enumerate(m, &slots, &count)) != 0)
		goto out;
	if (count > 0 && (infos = calloc(count, sizeof(*infos))) == NULL) {
		r = p11pki_fail(P11PKI_E_NOMEM, "out of memory listing slots");
		goto out;
	}
	for (i = 0; i < count; i++) {
		fill_info(m, &slots[i], &infos[i]);
		if ((r = info_uri(&infos[i])) != 0)
			goto out;
	}
	*out = infos;
	*n = count;
	infos = NULL;
out:
	if (slots != NULL)
		PKCS11_release_all_slots(m->ctx, slots, count);
	pthread_mutex_unlock(&m->lock);
	p11pki_token_info_free(infos, count);
	return r;
}

void p11pki_token_info_free(struct p11pki_token_info *infos, size_t n)
{
	size_t i;

	if (infos == NULL)
		return;
	for (i = 0; i < n; i++)
		free(infos[i].uri);
	free(infos);
}

static int str_matches(const char *want, const char *have)
{
	return want == NULL || strcmp(want, have) == 0;
}

static int token_matches(const struct p11pki_uri *sel, const struct p11pki_token_info *info)
{
	if (sel != NULL && sel->has_slot_id && sel->slot_id != info->slot_id)
		return 0;
	if (!info->present || !info->initialized)
		return 0;
	if (sel == NULL)
		return 1;
	return str_matches(sel->token, info->label) && str_matches(sel->manufacturer, info->manufacturer) &&
	       str_matches(sel->serial, info->serial) && str_matches(sel->model, info->model) &&
	       str_matches(sel->slot_description, info->slot_description);
}

/* Describes a selection for messages: its token label or its slot. */
static void describe(const struct p11pki_uri *sel, char *buf, size_t size)
{
	if (sel != NULL && sel->token != NULL)
		snprintf(buf, size, "token '%s'", sel->token);
	else if (sel != NULL && sel->serial != NULL)
		snprintf(buf, size, "token with serial '%s'", sel->serial);
	else if (sel != NULL && sel->has_slot_id)
		snprintf(buf, size, "slot %lu", sel->slot_id);
	else
		snprintf(buf, size, "any initialised token");
}

/* While another process rewrites a SoftHSM2 token, the token may show as
 * initialised with an empty label and serial for a moment. */
static int half_written(const struct p11pki_token_info *infos, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (infos[i].present && infos[i].initialized && infos[i].label[0] == '\0' && infos[i].serial[0] == '\0')
			return 1;
	return 0;
}

static int find_once(p11pki_module *m, const struct p11pki_uri *sel, struct p11pki_token_info *found,
		     size_t *matches, int *unsure)
{
	struct p11pki_token_info *infos = NULL;
	size_t n = 0, i;
	int r;

	*matches = 0;
	if ((r = p11pki_module_tokens(m, &infos, &n)) != 0)
		return r;
	for (i = 0; i < n; i++) {
		if (!token_matches(sel, &infos[i]))
			continue;
		if ((*matches)++ == 0) {
			*found = infos[i];
			found->uri = NULL;
		}
	}
	*unsure = half_written(infos, n);
	p11pki_token_info_free(infos, n);
	return P11PKI_OK;
}

int p11pki_slot_find(p11pki_module *m, const struct p11pki_uri *sel, struct p11pki_token_info *found)
{
	size_t matches = 0;
	unsigned attempt;
	char what[128];
	int r, unsure = 0;

	for (attempt = 0; attempt < FIND_ATTEMPTS; attempt++) {
		if (attempt > 0) {
			/* a token half-written by another process when the module
			 * read it stays unseen until the module reads it again */
			p11pki_sleep_ms(10u << attempt);
			if (!unsure && p11pki_module_reinit(m) != 0)
				break;
		}
		if ((r = find_once(m, sel, found, &matches, &unsure)) != 0)
			return r;
		if (matches > 0)
			break;
	}
	describe(sel, what, sizeof(what));
	if (matches == 0)
		return p11pki_fail(P11PKI_E_NOTFOUND,
				   "no %s in module '%s': run 'p11pki token list' to see the tokens", what, m->path);
	if (matches > 1)
		return p11pki_fail(P11PKI_E_ARG, "%zu tokens match %s: add serial= to the URI to choose one",
				   matches, what);
	return P11PKI_OK;
}

static CK_RV init_pin(p11pki_module *m, CK_SLOT_ID slot, const p11pki_secret *so_pin,
		      const p11pki_secret *user_pin)
{
	CK_SESSION_HANDLE s;
	CK_RV rv;

	if ((rv = P11_CALL(m, C_OpenSession, slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s)) != CKR_OK)
		return rv;
	rv = P11_CALL(m, C_Login, s, CKU_SO, (CK_UTF8CHAR_PTR)so_pin->data, so_pin->len);
	if (rv == CKR_OK) {
		rv = P11_CALL(m, C_InitPIN, s, (CK_UTF8CHAR_PTR)user_pin->data, user_pin->len);
		(void)P11_CALL(m, C_Logout, s);
	}
	(void)P11_CALL(m, C_CloseSession, s);
	return rv;
}

int p11pki_token_init(p11pki_module *m, int has_slot, unsigned long slot_id, const char *label,
		      const p11pki_secret *so_pin, const p11pki_secret *user_pin, unsigned long *slot_out)
{
	struct p11pki_token_info *infos = NULL;
	unsigned char padded[32];
	size_t n = 0, i, len = strlen(label);
	int r, chosen = -1;
	CK_RV rv;

	if (len == 0 || len > sizeof(padded))
		return p11pki_fail(P11PKI_E_ARG, "token label '%s' must be 1 to 32 bytes", label);
	if ((r = p11pki_module_tokens(m, &infos, &n)) != 0)
		return r;
	for (i = 0; i < n; i++) {
		if (infos[i].present && infos[i].initialized && strcmp(infos[i].label, label) == 0) {
			r = p11pki_fail(P11PKI_E_EXISTS, "a token labelled '%s' already exists (slot %lu): choose another label",
					label, infos[i].slot_id);
			goto out;
		}
		if (chosen < 0 && infos[i].present &&
		    (has_slot ? infos[i].slot_id == slot_id : !infos[i].initialized))
			chosen = (int)i;
	}
	if (chosen < 0) {
		r = has_slot ? p11pki_fail(P11PKI_E_NOTFOUND, "slot %lu has no token", slot_id)
			     : p11pki_fail(P11PKI_E_NOTFOUND, "no slot with an uninitialised token: give --slot");
		goto out;
	}
	memset(padded, ' ', sizeof(padded)); /* PKCS#11 wants 32 blank-padded bytes */
	memcpy(padded, label, len);
	slot_id = infos[chosen].slot_id;
	rv = P11_CALL(m, C_InitToken, slot_id, (CK_UTF8CHAR_PTR)so_pin->data, so_pin->len, padded);
	if (rv == CKR_OK)
		rv = init_pin(m, slot_id, so_pin, user_pin);
	if (rv != CKR_OK) {
		r = p11pki_ck_fail(rv, p11pki_ck_last_call(), label, " (slot %lu)", slot_id);
		goto out;
	}
	if (slot_out != NULL)
		*slot_out = slot_id;
out:
	p11pki_token_info_free(infos, n);
	return r;
}
