/* libFuzzer harness for the serve configuration: the input is a config
 * file. A load either fails with one line naming FILE:LINE, or gives a
 * configuration that keeps the promises of tls.h: every binding has a
 * listener, a certificate and a key, TLS 1.2 and/or 1.3 only, vetted
 * cipher settings, client_ca for client certificates, and no two
 * bindings answering the same listener and SNI name. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>

#include <p11pki/tls.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_binding(const struct p11pki_binding *b)
{
	if (b->name == NULL || b->name[0] == '\0' || b->cert == NULL || b->key == NULL || b->listen.host[0] == '\0')
		abort();
	/* a PKCS#11 URI, or file:PATH with a certificate file */
	if (strncasecmp(b->key, "pkcs11:", 7) != 0 &&
	    (strncmp(b->key, "file:", 5) != 0 || b->key[5] == '\0' || strncasecmp(b->cert, "pkcs11:", 7) == 0 ||
	     strncmp(b->cert, "sha1:", 5) == 0 || strncmp(b->cert, "sha256:", 7) == 0))
		abort();
	if ((b->est != NULL || b->n_est_labels > 0 || b->ocsp != NULL || b->crls != NULL) && b->mode != P11PKI_MODE_HTTP)
		abort();
	if (b->est != NULL && strchr(b->est, '/') == NULL)
		abort();
	if ((b->min_tls12 != 0 && b->min_tls12 != 1) || (b->tls13 != 0 && b->tls13 != 1) ||
	    (!b->min_tls12 && !b->tls13))
		abort();
	if (b->ciphers == NULL || b->ciphersuites == NULL)
		abort();
	if (b->client_auth != P11PKI_CLIENT_NONE && b->client_ca == NULL)
		abort();
	if (b->n_backends > P11PKI_MAX_BACKENDS || b->allow_cn.n > P11PKI_MAX_ALLOW ||
	    b->allow_dns.n > P11PKI_MAX_ALLOW || b->allow_email.n > P11PKI_MAX_ALLOW)
		abort();
	if (b->health_http && (b->health_path == NULL || b->health_path[0] != '/'))
		abort();
	if (b->health_fall == 0 || b->health_rise == 0 || b->max_connections == 0 || b->session_timeout_s == 0)
		abort();
}

static void check(const struct p11pki_serve_config *cfg)
{
	size_t i, j;

	if (cfg->n_bindings == 0 || cfg->n_bindings > P11PKI_MAX_BINDINGS)
		abort();
	for (i = 0; i < cfg->n_bindings; i++) {
		const struct p11pki_binding *a = &cfg->bindings[i];

		check_binding(a);
		for (j = 0; j < i; j++) {
			const struct p11pki_binding *b = &cfg->bindings[j];

			if (a->listen.port != b->listen.port || strcasecmp(a->listen.host, b->listen.host) != 0)
				continue;
			if ((a->sni == NULL && b->sni == NULL) ||
			    (a->sni != NULL && b->sni != NULL && strcasecmp(a->sni, b->sni) == 0))
				abort();
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct p11pki_serve_config *cfg = NULL;
	const char *msg;

	if (size > 256 * 1024)
		return 0;
	if (p11pki_serve_config_parse("fuzz.conf", (const char *)data, size, &cfg) == 0) {
		check(cfg);
	} else {
		msg = p11pki_errmsg();
		if (cfg != NULL || strncmp(msg, "fuzz.conf:", 10) != 0 || strchr(msg, '\n') != NULL)
			abort();
	}
	p11pki_serve_config_free(cfg);
	ERR_clear_error();
	return 0;
}
