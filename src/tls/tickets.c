/* Session ticket keys of a TLS context, as OpenSSL makes them by default
 * (random, one set per context, so a reload changes them) but with the
 * ticket cipher fetched once: OpenSSL's own ticket code fetches
 * AES-256-CBC from the provider store for every ticket it seals or opens,
 * and a TLS 1.3 handshake seals two (measured: 1% of the server CPU of a
 * P-256 handshake). The keys live in locked, non-dumpable memory. */
#include <pthread.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "tls/server.h"

#define NAME_LEN 16		/* the key name OpenSSL puts in each ticket */
#define AES_LEN 32		/* AES-256-CBC */
#define HMAC_LEN 32		/* HMAC-SHA256, as OpenSSL's default */

struct ticket_keys {
	EVP_CIPHER *cipher;
	p11pki_secret *secret;	/* name, AES key, HMAC key */
};

static int keys_index = -1;
static pthread_once_t keys_once = PTHREAD_ONCE_INIT;

static void keys_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
	struct ticket_keys *k = ptr;

	if (k == NULL)
		return;
	EVP_CIPHER_free(k->cipher);
	p11pki_secret_free(k->secret);
	free(k);
}

static void keys_index_new(void)
{
	keys_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, keys_free);
}

/* OpenSSL's SSL_CTX_set_tlsext_ticket_key_evp_cb contract: 1 sealed or
 * opened, 0 not our key (a full handshake), -1 failure. The context is
 * the one SNI chose: a client resumes with the host name it first sent. */
static int ticket_key(SSL *ssl, unsigned char *name, unsigned char *iv, EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx,
		      int enc)
{
	const struct ticket_keys *k = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), keys_index);
	const unsigned char *key;
	OSSL_PARAM params[3];

	if (k == NULL)
		return -1;
	key = (const unsigned char *)k->secret->data;
	params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)(key + NAME_LEN + AES_LEN),
						      HMAC_LEN);
	params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
	params[2] = OSSL_PARAM_construct_end();
	if (enc) {
		memcpy(name, key, NAME_LEN);
		if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(k->cipher)) != 1 ||
		    EVP_EncryptInit_ex2(cctx, k->cipher, key + NAME_LEN, iv, NULL) != 1)
			return -1;
	} else {
		if (memcmp(name, key, NAME_LEN) != 0)
			return 0;
		if (EVP_DecryptInit_ex2(cctx, k->cipher, key + NAME_LEN, iv, NULL) != 1)
			return -1;
	}
	return EVP_MAC_CTX_set_params(hctx, params) == 1 ? 1 : -1;
}

int tls_tickets_use(SSL_CTX *ctx)
{
	struct ticket_keys *k = NULL;

	pthread_once(&keys_once, keys_index_new);
	if (keys_index < 0 || (k = calloc(1, sizeof(*k))) == NULL)
		goto fail;
	if ((k->cipher = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL)) == NULL ||
	    p11pki_secret_new(NAME_LEN + AES_LEN + HMAC_LEN + 1, &k->secret) != 0 ||
	    RAND_priv_bytes((unsigned char *)k->secret->data, NAME_LEN + AES_LEN + HMAC_LEN) != 1)
		goto fail;
	k->secret->len = NAME_LEN + AES_LEN + HMAC_LEN;
	if (SSL_CTX_set_ex_data(ctx, keys_index, k) != 1)
		goto fail;
	SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_key);
	return 1;
fail:
	keys_free(NULL, k, NULL, 0, 0, NULL);
	return 0;
}
