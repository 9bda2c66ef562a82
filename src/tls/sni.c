/* SNI: the ClientHello callback picks the binding of the host name the
 * client asks for among the bindings of its listener. It runs before
 * OpenSSL chooses the protocol version, so each binding's protocols,
 * suites and client-certificate settings apply. An unknown or absent name
 * gets the listener's default binding. */
#include <string.h>
#include <strings.h>

#include <openssl/ssl.h>
#include <openssl/tls1.h>

#include <p11pki/x509.h>

#include "tls/server.h"

/* The host_name entry of the server_name extension; 0 when there is
 * none, -1 when the extension is malformed. */
static int sni_host(SSL *ssl, char *host, size_t size)
{
	const unsigned char *p;
	size_t len, list, name;

	if (!SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &p, &len))
		return 0;
	if (len < 2 || (list = ((size_t)p[0] << 8) | p[1]) + 2 != len || list < 3)
		return -1;
	p += 2;
	if (p[0] != TLSEXT_NAMETYPE_host_name)
		return 0;
	name = ((size_t)p[1] << 8) | p[2];
	if (name == 0 || name + 3 > list || name >= size || memchr(p + 3, 0, name) != NULL)
		return -1;
	memcpy(host, p + 3, name);
	host[name] = '\0';
	return 1;
}

static struct tls_site *lookup(struct tls_gen *g, const struct tls_view *v, const char *host)
{
	size_t i;

	for (i = 0; i < v->n_sites; i++) {
		struct tls_site *s = &g->site[v->site[i]];
		if (s->b->sni != NULL && strcasecmp(s->b->sni, host) == 0)
			return s;
	}
	for (i = 0; i < v->n_sites; i++) {
		struct tls_site *s = &g->site[v->site[i]];
		if (s->b->sni != NULL && strncmp(s->b->sni, "*.", 2) == 0 && p11pki_host_pattern_match(s->b->sni, host))
			return s;
	}
	return NULL;
}

/* SSL_new copied the default site's settings; SSL_set_SSL_CTX brings the
 * certificate, key, chain and signature algorithms, the rest is copied
 * here. */
static int switch_site(SSL *ssl, const struct tls_site *s)
{
	if (SSL_set_SSL_CTX(ssl, s->ctx) == NULL)
		return 0;
	SSL_set_verify(ssl, SSL_CTX_get_verify_mode(s->ctx), SSL_CTX_get_verify_callback(s->ctx));
	SSL_set_verify_depth(ssl, SSL_CTX_get_verify_depth(s->ctx));
	/* session_tickets is the binding's own (options come from the
	 * listener's default context) */
	if (s->b->session_cache)
		SSL_set_options(ssl, SSL_OP_NO_TICKET);
	else
		SSL_clear_options(ssl, SSL_OP_NO_TICKET);
	return SSL_set_min_proto_version(ssl, s->min_proto) && SSL_set_max_proto_version(ssl, s->max_proto) &&
	       SSL_set_cipher_list(ssl, s->ciphers) && SSL_set_ciphersuites(ssl, s->ciphersuites);
}

int tls_sni_client_hello(SSL *ssl, int *alert, void *arg)
{
	struct tls_conn *c = SSL_get_app_data(ssl);
	struct tls_site *s;
	char host[256];
	int r;

	if (c == NULL || c->magic != TLS_CONN_MAGIC || c->site == NULL)
		return SSL_CLIENT_HELLO_SUCCESS;
	if ((r = sni_host(ssl, host, sizeof(host))) < 0) {
		*alert = SSL_AD_DECODE_ERROR;
		return SSL_CLIENT_HELLO_ERROR;
	}
	if (r == 0 || (s = lookup(c->gen, &c->gen->view[c->site->view], host)) == NULL || s == c->site)
		return SSL_CLIENT_HELLO_SUCCESS;
	if (!switch_site(ssl, s)) {
		*alert = SSL_AD_INTERNAL_ERROR;
		return SSL_CLIENT_HELLO_ERROR;
	}
	c->site = s;
	return SSL_CLIENT_HELLO_SUCCESS;
}
