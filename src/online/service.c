/* The CA online as p11pki serve runs it: [ online ] settings, the store,
 * and each CA a binding names, opened once with its key on its token. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "online/online.h"

#define OCSP_VALIDITY_DEFAULT 3600

/* The store: [ online ] store, else where `p11pki ca` finds it. */
static int open_store(const CONF *conf, p11pki_store **st)
{
	const char *online = conf != NULL ? NCONF_get_string(conf, "online", "store") : NULL;
	const char *general = conf != NULL ? NCONF_get_string(conf, "p11pki", "store") : NULL;

	ERR_clear_error(); /* a missing key is not an error */
	return p11pki_store_open_default(online, general, st);
}

static int bad_setting(const char *path, const CONF_VALUE *v, const char *what)
{
	return p11pki_fail(P11PKI_E_ARG, "%s: [ online ] %s = %s: %s", path, v->name, v->value, what);
}

static int set_count(const char *path, const CONF_VALUE *v, unsigned long min, unsigned long max, size_t *out)
{
	char *end;
	unsigned long n = strtoul(v->value, &end, 10);

	if (end == v->value || *end != '\0' || v->value[0] == '-' || n < min || n > max)
		return p11pki_fail(P11PKI_E_ARG, "%s: [ online ] %s = %s: expected a number from %lu to %lu", path,
				   v->name, v->value, min, max);
	*out = n;
	return P11PKI_OK;
}

/* [ online ]: store, max_body, crl_dir, ocsp_signer, ocsp_validity,
 * ca_key_NAME. */
static int read_settings(struct online_service *svc, const char *path)
{
	STACK_OF(CONF_VALUE) *sec = svc->conf != NULL ? NCONF_get_section(svc->conf, "online") : NULL;
	CONF_VALUE *v;
	long secs;
	int i;

	svc->max_body = ONLINE_BODY_DEFAULT_MAX;
	svc->ocsp_delegated = 1;
	svc->ocsp_validity_s = OCSP_VALIDITY_DEFAULT;
	ERR_clear_error();
	for (i = 0; sec != NULL && i < sk_CONF_VALUE_num(sec); i++) {
		v = sk_CONF_VALUE_value(sec, i);
		if (strcmp(v->name, "store") == 0)
			continue;
		if (strncmp(v->name, "ca_key_", 7) == 0) {
			if (strncmp(v->value, "file:", 5) != 0 || v->value[5] == '\0')
				return bad_setting(path, v, "expected file:PATH of an unencrypted PEM key");
			continue;
		}
		if (strcmp(v->name, "max_body") == 0) {
			if (set_count(path, v, 1024, 16 * 1024 * 1024, &svc->max_body) != 0)
				return P11PKI_E_ARG;
		} else if (strcmp(v->name, "crl_dir") == 0) {
			free(svc->crl_dir);
			if ((svc->crl_dir = strdup(v->value)) == NULL)
				return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
		} else if (strcmp(v->name, "ocsp_signer") == 0) {
			if (strcmp(v->value, "delegated") != 0 && strcmp(v->value, "ca") != 0)
				return bad_setting(path, v, "expected delegated or ca");
			svc->ocsp_delegated = strcmp(v->value, "delegated") == 0;
		} else if (strcmp(v->name, "ocsp_validity") == 0) {
			if (p11pki_duration_parse(v->value, &secs) != 0 || secs < 60 || secs > 7 * 86400)
				return bad_setting(path, v, "expected a duration from 60s to 7d, as 1h");
			svc->ocsp_validity_s = (unsigned)secs;
		} else {
			return bad_setting(path, v,
					   "unknown key (store, max_body, crl_dir, ocsp_signer, ocsp_validity, ca_key_NAME)");
		}
	}
	return P11PKI_OK;
}

static int read_chain(const char *pem, STACK_OF(X509) **out)
{
	BIO *bio;
	X509 *x;

	if ((*out = sk_X509_new_null()) == NULL)
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
	if (pem == NULL || pem[0] == '\0')
		return P11PKI_OK;
	if ((bio = BIO_new_mem_buf(pem, -1)) == NULL)
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
		if (!sk_X509_push(*out, x)) {
			X509_free(x);
			BIO_free(bio);
			return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
		}
	ERR_clear_error(); /* the end of the PEM data */
	BIO_free(bio);
	return P11PKI_OK;
}

/* [ online ] ca_key_NAME = file:PATH: the CA signs with a key in memory,
 * for comparisons with the token (benchmarks) and migrations. */
static int open_ca_file_key(struct online_service *svc, const char *name, const char *file, p11pki_ca **ca)
{
	EVP_PKEY *key = NULL;
	FILE *fp = fopen(file, "r");
	int r;

	if (fp == NULL)
		return p11pki_fail(P11PKI_E_IO, "[ online ] ca_key_%s: cannot read %s", name, file);
	key = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
	fclose(fp);
	if (key == NULL)
		return p11pki_fail(P11PKI_E_ARG, "[ online ] ca_key_%s: %s is not an unencrypted PEM key", name, file);
	p11pki_log(P11PKI_LOG_WARN, "CA '%s' signs with the key in the file %s, not on a token", name, file);
	r = p11pki_ca_open_key(svc->st, svc->conf, name, key, ca);
	EVP_PKEY_free(key);
	return r;
}

static const char *file_key_of(const struct online_service *svc, const char *name)
{
	char key[80];
	const char *v;

	snprintf(key, sizeof(key), "ca_key_%s", name);
	v = svc->conf != NULL ? NCONF_get_string(svc->conf, "online", key) : NULL;
	ERR_clear_error();
	return v != NULL ? v + 5 : NULL;
}

static int open_ca(struct online_service *svc, const char *name, online_token_fn token, void *token_ctx)
{
	struct online_ca *oc = &svc->cas[svc->n_cas];
	struct p11pki_store_ca rec;
	struct p11pki_uri *sel = NULL;
	char *uri = NULL;
	int r;

	memset(&rec, 0, sizeof(rec));
	if (svc->n_cas == ONLINE_MAX_CAS)
		return p11pki_fail(P11PKI_E_ARG, "more than %d CAs served online", ONLINE_MAX_CAS);
	snprintf(oc->name, sizeof(oc->name), "%s", name);
	svc->n_cas++; /* so that close frees what was opened */
	if (file_key_of(svc, name) != NULL)
		r = open_ca_file_key(svc, name, file_key_of(svc, name), &oc->ca);
	else if ((r = p11pki_ca_key_uri(svc->st, name, &uri)) == 0 && (r = p11pki_uri_parse(uri, &sel)) == 0 &&
		 (r = token(token_ctx, sel, &oc->token)) == 0)
		r = p11pki_ca_open(svc->st, svc->conf, name, oc->token, &oc->ca);
	if (r != 0 || (r = p11pki_store_ca_get(svc->st, name, &rec)) != 0 || (r = read_chain(rec.chain_pem, &oc->chain)) != 0)
		r = p11pki_fail(r, "CA '%s': %s", name, p11pki_errmsg());
	else
		oc->cert = p11pki_ca_cert(oc->ca);
	p11pki_store_ca_clear(&rec);
	p11pki_uri_free(sel);
	free(uri);
	return r;
}

static int listed(char *const *names, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return 1;
	return 0;
}

int online_service_open(const char *path, char *const *names, size_t n, char *const *ocsp_cas, size_t n_ocsp,
			char *const *crl_cas, size_t n_crl, online_token_fn token, void *token_ctx,
			struct online_service **out)
{
	struct online_service *svc;
	long line = 0;
	size_t i;
	int r;

	*out = NULL;
	if ((svc = calloc(1, sizeof(*svc))) == NULL)
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
	if (path != NULL && ((svc->conf = NCONF_new(NULL)) == NULL || NCONF_load(svc->conf, path, &line) <= 0)) {
		r = p11pki_fail(P11PKI_E_ARG, "%s:%ld: cannot read the file as CA settings", path, line);
		goto fail;
	}
	if ((r = read_settings(svc, path != NULL ? path : "config")) != 0 || (r = open_store(svc->conf, &svc->st)) != 0)
		goto fail;
	for (i = 0; i < n; i++)
		if ((r = open_ca(svc, names[i], token, token_ctx)) != 0)
			goto fail;
	for (i = 0; i < svc->n_cas; i++) {
		struct online_ca *oc = &svc->cas[i];
		if (listed(ocsp_cas, n_ocsp, oc->name) && (r = online_ocsp_setup(svc, oc)) != 0) {
			r = p11pki_fail(r, "OCSP for CA '%s': %s", oc->name, p11pki_errmsg());
			goto fail;
		}
		if (listed(crl_cas, n_crl, oc->name) && (r = online_crl_setup(svc, oc)) != 0) {
			r = p11pki_fail(r, "CRL of CA '%s': %s", oc->name, p11pki_errmsg());
			goto fail;
		}
	}
	*out = svc;
	return P11PKI_OK;
fail:
	online_service_close(svc);
	return r;
}

void online_service_tick(struct online_service *svc, time_t now)
{
	size_t i;

	for (i = 0; svc != NULL && i < svc->n_cas; i++)
		if (svc->cas[i].crl != NULL && online_crl_refresh(svc, &svc->cas[i], now) != 0)
			p11pki_log(P11PKI_LOG_WARN, "CRL of CA '%s': %s", svc->cas[i].name, p11pki_errmsg());
}

void online_service_close(struct online_service *svc)
{
	size_t i;

	if (svc == NULL)
		return;
	for (i = 0; i < svc->n_cas; i++) {
		online_ocsp_free(svc->cas[i].ocsp);
		online_crl_free(svc->cas[i].crl);
		sk_X509_pop_free(svc->cas[i].chain, X509_free);
		p11pki_ca_close(svc->cas[i].ca);
	}
	p11pki_store_close(svc->st);
	NCONF_free(svc->conf);
	free(svc->crl_dir);
	free(svc);
}
