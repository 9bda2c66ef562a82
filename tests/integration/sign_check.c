/* sign_check [--pss] MODULE TOKEN_LABEL KEY_URI THREADS SIGS_PER_THREAD
 * (user PIN in $USER_PIN)
 *
 * Loads a token key through libp11pki and signs with it from THREADS
 * threads at once, SIGS_PER_THREAD different messages each, with
 * EVP_DigestSign and SHA-256 (RSA-PSS padding with --pss). Every signature
 * is checked against the public key p11pki_key_public reads from the token.
 * Prints "N threads x M signatures ok"; exits 1 on any failure. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include <p11pki/token.h>

static EVP_PKEY *key, *pub;
static int pss;
static long per_thread;

static void log_stderr(int level, const char *msg, void *arg)
{
	fprintf(stderr, "sign_check: p11pki: %s\n", msg);
}

static int set_padding(EVP_PKEY_CTX *pctx)
{
	return !pss || (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0 &&
			EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) > 0);
}

/* Signs msg with the token key and verifies it with the public key. */
static int sign_verify(const unsigned char *msg, size_t len)
{
	EVP_MD_CTX *sctx = EVP_MD_CTX_new(), *vctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	unsigned char sig[1024];
	size_t sig_len = sizeof(sig);
	int ok;

	ok = sctx != NULL && vctx != NULL && EVP_DigestSignInit(sctx, &pctx, EVP_sha256(), NULL, key) == 1 &&
	     set_padding(pctx) && EVP_DigestSign(sctx, sig, &sig_len, msg, len) == 1;
	if (!ok)
		fprintf(stderr, "sign_check: signing failed: %s\n", p11pki_errmsg());
	else if (EVP_DigestVerifyInit(vctx, &pctx, EVP_sha256(), NULL, pub) != 1 || !set_padding(pctx) ||
		 EVP_DigestVerify(vctx, sig, sig_len, msg, len) != 1) {
		fprintf(stderr, "sign_check: a signature does not verify\n");
		ok = 0;
	}
	if (!ok)
		ERR_print_errors_fp(stderr);
	EVP_MD_CTX_free(sctx);
	EVP_MD_CTX_free(vctx);
	return ok;
}

static void *worker(void *arg)
{
	long i, failures = 0;
	unsigned char msg[64];

	for (i = 0; i < per_thread; i++) {
		/* a different message each time: random, then thread and count */
		if (RAND_bytes(msg, sizeof(msg)) != 1) {
			failures++;
			continue;
		}
		snprintf((char *)msg, 32, "t%ld-%ld", (long)(intptr_t)arg, i);
		if (!sign_verify(msg, sizeof(msg)))
			failures++;
	}
	return (void *)(intptr_t)failures;
}

int main(int argc, char **argv)
{
	p11pki_module *m = NULL;
	p11pki_token *t = NULL;
	struct p11pki_uri *uri = NULL;
	p11pki_secret *pin = NULL;
	const char *env_pin = getenv("USER_PIN");
	pthread_t th[64];
	long threads, i, failures = 0;
	void *res;
	int r;

	if (argc > 1 && strcmp(argv[1], "--pss") == 0) {
		pss = 1;
		argv++;
		argc--;
	}
	if (argc != 6 || env_pin == NULL || (threads = atol(argv[4])) < 1 || threads > 64 ||
	    (per_thread = atol(argv[5])) < 1) {
		fprintf(stderr, "usage: USER_PIN=... %s [--pss] MODULE TOKEN_LABEL KEY_URI THREADS(1-64) SIGS\n",
			argv[0]);
		return 2;
	}
	p11pki_log_set_handler(log_stderr, NULL);
	if ((r = p11pki_uri_parse(argv[3], &uri)) != 0)
		goto fail;
	if (uri->token != NULL && strcmp(uri->token, argv[2]) != 0) {
		fprintf(stderr, "sign_check: the URI names token '%s', not '%s'\n", uri->token, argv[2]);
		return 2;
	}
	if (uri->token == NULL && (uri->token = strdup(argv[2])) == NULL)
		return 2;
	if ((r = p11pki_module_open(argv[1], &m)) != 0 || (r = p11pki_token_open(m, uri, &t)) != 0 ||
	    (r = p11pki_secret_from(env_pin, strlen(env_pin), &pin)) != 0 ||
	    (r = p11pki_token_login(t, pin)) != 0 || (r = p11pki_key_load(t, uri, &key)) != 0 ||
	    (r = p11pki_key_public(t, uri, &pub)) != 0)
		goto fail;

	for (i = 0; i < threads; i++)
		if (pthread_create(&th[i], NULL, worker, (void *)(intptr_t)i) != 0) {
			fprintf(stderr, "sign_check: pthread_create failed\n");
			return 2;
		}
	for (i = 0; i < threads; i++) {
		pthread_join(th[i], &res);
		failures += (long)(intptr_t)res;
	}

	EVP_PKEY_free(key);
	EVP_PKEY_free(pub);
	p11pki_secret_free(pin);
	p11pki_token_close(t);
	p11pki_module_close(m);
	p11pki_uri_free(uri);
	if (failures != 0) {
		printf("%ld of %ld signatures FAILED\n", failures, threads * per_thread);
		return 1;
	}
	printf("%ld threads x %ld signatures ok\n", threads, per_thread);
	return 0;
fail:
	fprintf(stderr, "sign_check: %s\n", p11pki_errmsg());
	p11pki_secret_free(pin);
	p11pki_token_close(t);
	p11pki_module_close(m);
	p11pki_uri_free(uri);
	return 1;
}
