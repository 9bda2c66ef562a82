/* The tokens a server's keys live on: each opened and logged in once, the
 * PIN kept (in secure memory, inside the token) so the session pool can
 * log in again after the token comes back. */
#include <stdlib.h>
#include <string.h>

#include "tls/server.h"

int tls_tokens_init(struct tls_tokens *tk, const char *module, const char *pin_source, int login,
		    unsigned pool)
{
	int r;

	memset(tk, 0, sizeof(*tk));
	tk->login = login;
	tk->pool = pool;
	if (pin_source != NULL && (tk->pin_source = strdup(pin_source)) == NULL)
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
	if ((r = p11pki_module_open(module, &tk->m)) != 0)
		return r;
	return P11PKI_OK;
}

/* The token part of a URI in canonical form: tokens are told apart by it. */
static int selector_text(const struct p11pki_uri *sel, char **out)
{
	struct p11pki_uri part;

	memset(&part, 0, sizeof(part));
	part.token = sel->token;
	part.manufacturer = sel->manufacturer;
	part.serial = sel->serial;
	part.model = sel->model;
	part.has_slot_id = sel->has_slot_id;
	part.slot_id = sel->slot_id;
	return p11pki_uri_format(&part, out);
}

static int read_pin(struct tls_tokens *tk, const struct p11pki_uri *sel, p11pki_token *t, p11pki_secret **pin)
{
	char prompt[96];
	int r;

	*pin = NULL;
	if (sel->pin_source != NULL)
		return p11pki_pin_read(sel->pin_source, pin);
	if (tk->pin != NULL)
		return p11pki_secret_from(tk->pin->data, tk->pin->len, pin);
	if (tk->pin_source != NULL)
		r = p11pki_pin_read(tk->pin_source, pin);
	else {
		snprintf(prompt, sizeof(prompt), "User PIN for token '%s': ", p11pki_token_label(t));
		r = p11pki_pin_prompt(prompt, pin);
	}
	/* kept for tokens a reload adds: the prompt cannot be asked again */
	if (r == 0 && (r = p11pki_secret_from((*pin)->data, (*pin)->len, &tk->pin)) != 0) {
		p11pki_secret_free(*pin);
		*pin = NULL;
	}
	return r;
}

static int field_matches(const char *want, const char *have)
{
	return want == NULL || strcmp(want, have) == 0;
}

/* Whether the token sel selects can sign RSA-PSS. Asked before the token
 * is opened and logged in: listing the slots (libp11) closes every
 * session of the module, which would log the token out again. */
static int rsa_pss_of(struct tls_tokens *tk, const struct p11pki_uri *sel)
{
	struct p11pki_token_info *infos = NULL;
	size_t n = 0, i;
	int pss = 0;

	if (p11pki_module_tokens(tk->m, &infos, &n) != 0)
		return 0;
	for (i = 0; i < n; i++)
		if (infos[i].present && field_matches(sel->token, infos[i].label) &&
		    field_matches(sel->serial, infos[i].serial) && field_matches(sel->model, infos[i].model) &&
		    field_matches(sel->manufacturer, infos[i].manufacturer) &&
		    (!sel->has_slot_id || sel->slot_id == infos[i].slot_id))
			pss = infos[i].can_rsa_pss;
	p11pki_token_info_free(infos, n);
	return pss;
}

int tls_tokens_get(struct tls_tokens *tk, const struct p11pki_uri *sel, p11pki_token **t, int *can_pss)
{
	p11pki_secret *pin = NULL;
	p11pki_token *tok = NULL;
	char *key = NULL;
	size_t i;
	int r, pss;

	*t = NULL;
	if ((r = selector_text(sel, &key)) != 0)
		return r;
	for (i = 0; i < tk->n; i++) {
		if (strcmp(tk->tok[i].sel, key) == 0) {
			*t = tk->tok[i].t;
			if (can_pss != NULL)
				*can_pss = tk->tok[i].can_rsa_pss;
			free(key);
			return P11PKI_OK;
		}
	}
	if (tk->n == TLS_MAX_TOKENS) {
		r = p11pki_fail(P11PKI_E_ARG, "the keys name more than %d tokens", TLS_MAX_TOKENS);
		goto out;
	}
	pss = rsa_pss_of(tk, sel);
	if ((r = p11pki_token_open(tk->m, sel, &tok)) != 0)
		goto out;
	if (tk->login && ((r = read_pin(tk, sel, tok, &pin)) != 0 || (r = p11pki_token_login(tok, pin)) != 0))
		goto out;
	if (tk->pool > 0)
		p11pki_token_set_pool_size(tok, tk->pool);
	p11pki_token_use_session_keys(tok, 1);
	tk->tok[tk->n].sel = key;
	tk->tok[tk->n].t = tok;
	tk->tok[tk->n].can_rsa_pss = pss;
	if (can_pss != NULL)
		*can_pss = tk->tok[tk->n].can_rsa_pss;
	tk->n++;
	*t = tok;
	key = NULL;
	tok = NULL;
out:
	p11pki_secret_free(pin);
	p11pki_token_close(tok);
	free(key);
	return r;
}

void tls_tokens_close(struct tls_tokens *tk)
{
	size_t i;

	for (i = 0; i < tk->n; i++) {
		p11pki_token_close(tk->tok[i].t);
		free(tk->tok[i].sel);
	}
	p11pki_module_close(tk->m);
	p11pki_secret_free(tk->pin);
	free(tk->pin_source);
	memset(tk, 0, sizeof(*tk));
}
