/* async_check MODULE TOKEN_LABEL KEY_URI JOBS SIGNING_THREADS
 * (user PIN in $USER_PIN)
 *
 * What a TLS server's event loop does with SSL_MODE_ASYNC, without TLS:
 * ONE thread starts JOBS OpenSSL ASYNC jobs, each signing with a token key
 * (EVP_DigestSign, SHA-256). Each job pauses while a signing thread talks
 * to the token; the thread polls the jobs' wait fds and resumes whichever
 * is ready, so all signatures are in flight at once. Every signature is
 * verified. Prints "JOBS jobs ok in MS ms"; exits 1 on any failure. */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/async.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include <p11pki/token.h>

#define MAX_JOBS 256

struct job {
	ASYNC_JOB *job;
	ASYNC_WAIT_CTX *wait;
	unsigned char msg[32], sig[1024];
	size_t sig_len;
	int done, ok;
};

static EVP_PKEY *key, *pub;

static int sign_job(void *arg)
{
	struct job *j = *(struct job **)arg;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok;

	j->sig_len = sizeof(j->sig);
	ok = ctx != NULL && EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key) == 1 &&
	     EVP_DigestSign(ctx, j->sig, &j->sig_len, j->msg, sizeof(j->msg)) == 1;
	EVP_MD_CTX_free(ctx);
	return ok;
}

static int verify(struct job *j)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok = ctx != NULL && EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, pub) == 1 &&
		 EVP_DigestVerify(ctx, j->sig, j->sig_len, j->msg, sizeof(j->msg)) == 1;

	EVP_MD_CTX_free(ctx);
	return ok;
}

/* Starts or resumes a job; records when it finished. */
static void step(struct job *j)
{
	int ret = 0;
	struct job *arg = j;

	switch (ASYNC_start_job(&j->job, j->wait, &ret, sign_job, &arg, sizeof(arg))) {
	case ASYNC_FINISH:
		j->done = 1;
		j->ok = ret && verify(j);
		break;
	case ASYNC_PAUSE:
		break;
	default:
		j->done = 1;
		j->ok = 0;
	}
}

static int wait_fd(struct job *j)
{
	OSSL_ASYNC_FD fds[4];
	size_t n = 0;

	if (!ASYNC_WAIT_CTX_get_all_fds(j->wait, NULL, &n) || n == 0 || n > 4 ||
	    !ASYNC_WAIT_CTX_get_all_fds(j->wait, fds, &n))
		return -1;
	return fds[0];
}

int main(int argc, char **argv)
{
	static struct job jobs[MAX_JOBS];
	p11pki_module *m = NULL;
	p11pki_token *t = NULL;
	struct p11pki_uri *sel = NULL, *tok = NULL;
	p11pki_secret *pin = NULL;
	const char *pin_text = getenv("USER_PIN");
	struct timespec a, b;
	int n, threads, i, left, failed = 0;

	if (argc != 6 || pin_text == NULL || (n = atoi(argv[4])) < 1 || n > MAX_JOBS || (threads = atoi(argv[5])) < 0)
		return fprintf(stderr, "usage: async_check MODULE TOKEN KEY_URI JOBS THREADS (PIN in $USER_PIN)\n"), 2;
	if (p11pki_uri_new(&tok) != 0 || (tok->token = strdup(argv[2])) == NULL || p11pki_uri_parse(argv[3], &sel) != 0 ||
	    p11pki_secret_from(pin_text, strlen(pin_text), &pin) != 0 || p11pki_module_open(argv[1], &m) != 0 ||
	    p11pki_token_open(m, tok, &t) != 0 || p11pki_token_login(t, pin) != 0 || p11pki_key_load(t, sel, &key) != 0 ||
	    p11pki_key_public(t, sel, &pub) != 0) {
		fprintf(stderr, "async_check: %s\n", p11pki_errmsg());
		return 1;
	}
	p11pki_token_set_pool_size(t, (unsigned)threads + 1);
	if (threads > 0 && p11pki_async_signing_start((unsigned)threads) != 0)
		return fprintf(stderr, "async_check: %s\n", p11pki_errmsg()), 1;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (i = 0; i < n; i++) {
		memset(jobs[i].msg, i, sizeof(jobs[i].msg));
		if ((jobs[i].wait = ASYNC_WAIT_CTX_new()) == NULL)
			return 1;
		step(&jobs[i]);
	}
	for (left = n; left > 0;) {
		struct pollfd pfd[MAX_JOBS];
		int idx[MAX_JOBS], np = 0;

		left = 0;
		for (i = 0; i < n; i++)
			if (!jobs[i].done) {
				pfd[np].fd = wait_fd(&jobs[i]);
				pfd[np].events = POLLIN;
				idx[np++] = i;
				left++;
			}
		if (left == 0)
			break;
		if (poll(pfd, (nfds_t)np, 10000) <= 0)
			return fprintf(stderr, "async_check: no job became ready in 10 s\n"), 1;
		for (i = 0; i < np; i++)
			if (pfd[i].revents & POLLIN)
				step(&jobs[idx[i]]);
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	for (i = 0; i < n; i++) {
		failed += !jobs[i].ok;
		ASYNC_WAIT_CTX_free(jobs[i].wait);
	}
	if (failed)
		return fprintf(stderr, "async_check: %d of %d jobs failed: %s\n", failed, n, p11pki_errmsg()), 1;
	printf("%d jobs ok in %ld ms\n", n, (long)((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000));
	p11pki_async_signing_stop();
	EVP_PKEY_free(key);
	EVP_PKEY_free(pub);
	p11pki_token_close(t);
	p11pki_module_close(m);
	p11pki_uri_free(sel);
	p11pki_uri_free(tok);
	p11pki_secret_free(pin);
	return 0;
}
