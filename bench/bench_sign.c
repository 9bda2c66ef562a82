/* Signing benchmark: signatures per second on a throwaway SoftHSM2 token,
 * three ways, at 1 and 2 threads, for RSA-2048 and P-256:
 *
 *   raw      C_SignInit + C_Sign straight through the module's function
 *            list, one dedicated session per thread: the most p11pki
 *            could get out of this token;
 *   session  the same two calls inside p11pki_token_run: the session pool
 *            alone, without OpenSSL's EVP and key-method layers;
 *   pool     EVP_PKEY_sign on the EVP_PKEY from p11pki_key_load, one key
 *            shared by the threads, each with its own EVP_PKEY_CTX: every
 *            signature goes through p11pki's session pool;
 *   openssl  EVP_PKEY_sign with an in-memory key of the same type.
 *
 * Each cell (key type, threads, method) runs for --seconds, cut into
 * --rounds slices. A round runs one slice of every cell of a key type,
 * back to back in an order shuffled each round, so every ratio
 * (pool/raw, 2 threads/1 thread) is a median of pairs measured seconds
 * apart: a burst of background load spoils a few rounds, not a method.
 * Every method's signature is verified once before timing starts.
 *
 * Targets (reported, never enforced through the exit status): the pool
 * adds at most 5% over raw C_Sign, and RSA-2048 through the pool signs at
 * least 1.6x faster with 2 threads than with 1. Exit status: 0 when every
 * operation succeeded, 1 when one failed, 2 on a usage error, 130 when
 * interrupted (SIGINT/SIGTERM; the token directory is removed). */
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "token/internal.h"

#define MAX_THREADS 2
#define TOKEN_LABEL "p11pki-bench"
#define SO_PIN "bench-so-pin"
#define USER_PIN "bench-user-pin"
#define OVERHEAD_TARGET 5.0 /* % the pool may add over raw C_Sign */
#define SCALING_TARGET 1.6  /* RSA-2048 pool, 2 threads over 1 */

/* Set by SIGINT/SIGTERM: the threads stop, the token directory is removed. */
static volatile sig_atomic_t interrupted;
static char token_dir[4096]; /* the throwaway token's directory */
static void remove_tree(const char *dir);

static void on_signal(int sig)
{
	interrupted = 1;
}

enum method { M_RAW, M_SESSION, M_POOL, M_OPENSSL, N_METHODS };
static const char *const method_names[N_METHODS] = { "raw", "session", "pool", "openssl" };

/* SHA-256 DigestInfo prefix (RFC 8017, 9.2 note 1): CKM_RSA_PKCS signs
 * the DigestInfo, which it pads itself. */
static const unsigned char sha256_prefix[19] = { 0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60,
						 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
						 0x01, 0x05, 0x00, 0x04, 0x20 };

struct keyset {
	const char *type;	   /* "rsa:2048", "ec:p256" */
	const char *label;	   /* CKA_LABEL on the token */
	unsigned char id[8];	   /* CKA_ID on the token */
	int rsa;
	char *uri;		   /* of the token key pair */
	EVP_PKEY *token_key;	   /* p11pki_key_load: signs through the pool */
	EVP_PKEY *token_pub;	   /* p11pki_key_public: verifies */
	EVP_PKEY *soft_key;	   /* EVP_PKEY_Q_keygen: in memory */
	CK_OBJECT_HANDLE priv;	   /* private key handle, for raw */
	unsigned char digest[32];  /* SHA-256 of a fixed message */
	unsigned char raw_in[51];  /* DigestInfo (RSA) or the digest (EC) */
	CK_ULONG raw_in_len;
};

struct bench {
	p11pki_token *t;
	CK_FUNCTION_LIST *f;
	double seconds;
	unsigned rounds;
};

struct worker {
	pthread_t tid;
	const struct bench *b;
	const struct keyset *ks;
	enum method m;
	double seconds;
	pthread_barrier_t *barrier;
	/* per-thread state */
	CK_SESSION_HANDLE session;
	int have_session;
	EVP_PKEY_CTX *ctx;
	/* results */
	unsigned long ops;
	double elapsed, cpu; /* wall and this thread's CPU seconds, timed part */
	int failed;
	char err[512];
};

/* Per cell: each thread's operations and seconds summed over the rounds. */
struct acc {
	unsigned long ops[MAX_THREADS];
	double elapsed[MAX_THREADS], cpu[MAX_THREADS];
};

static double clock_s(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double now(void)
{
	return clock_s(CLOCK_MONOTONIC);
}

static void log_handler(int level, const char *msg, void *arg)
{
	if (level <= P11PKI_LOG_WARN)
		fprintf(stderr, "bench_sign: p11pki %s: %s\n", level == P11PKI_LOG_ERROR ? "error" : "warning", msg);
}

static void ossl_error(char *buf, size_t size, const char *what)
{
	unsigned long e = ERR_get_error();
	char detail[256] = "no OpenSSL error queued";

	if (e != 0)
		ERR_error_string_n(e, detail, sizeof(detail));
	snprintf(buf, size, "%s: %s", what, detail);
	ERR_clear_error();
}

/* ---- one signature, by method ------------------------------------------ */

static EVP_PKEY_CTX *sign_ctx(EVP_PKEY *key, int rsa, char *err, size_t errsize)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(key, NULL);

	if (ctx == NULL || EVP_PKEY_sign_init(ctx) <= 0 || EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) <= 0 ||
	    (rsa && EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) <= 0)) {
		ossl_error(err, errsize, "setting up EVP_PKEY_sign");
		EVP_PKEY_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

static int worker_setup(struct worker *w)
{
	CK_RV rv;

	if (w->m == M_RAW) {
		/* the same flags as the pool's sessions */
		rv = w->b->f->C_OpenSession(w->b->t->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
					    &w->session);
		if (rv != CKR_OK) {
			snprintf(w->err, sizeof(w->err), "C_OpenSession: %s", p11pki_ckr_name(rv));
			return 0;
		}
		w->have_session = 1;
		return 1;
	}
	if (w->m == M_SESSION)
		return 1;
	w->ctx = sign_ctx(w->m == M_POOL ? w->ks->token_key : w->ks->soft_key, w->ks->rsa, w->err, sizeof(w->err));
	return w->ctx != NULL;
}

static void worker_teardown(struct worker *w)
{
	if (w->have_session)
		(void)w->b->f->C_CloseSession(w->session);
	w->have_session = 0;
	EVP_PKEY_CTX_free(w->ctx);
	w->ctx = NULL;
}

/* The session method: what p11pki's own sign callback does, minus the
 * key-handle cache. */
struct session_op {
	const struct keyset *ks;
	unsigned char *sig;
	CK_ULONG siglen;
};

static CK_RV session_sign(p11pki_token *t, CK_SESSION_HANDLE s, void *arg)
{
	struct session_op *op = arg;
	CK_MECHANISM mech = { op->ks->rsa ? CKM_RSA_PKCS : CKM_ECDSA, NULL, 0 };
	CK_RV rv;

	if ((rv = P11_CALL(t->m, C_SignInit, s, &mech, op->ks->priv)) != CKR_OK)
		return rv;
	return P11_CALL(t->m, C_Sign, s, (CK_BYTE_PTR)op->ks->raw_in, op->ks->raw_in_len, op->sig, &op->siglen);
}

static int sign_once(struct worker *w, unsigned char *sig, size_t *siglen)
{
	const struct keyset *ks = w->ks;

	if (w->m == M_SESSION) {
		struct session_op op = { ks, sig, (CK_ULONG)*siglen };

		if (p11pki_token_run(w->b->t, "benchmark signing", session_sign, &op) != 0) {
			snprintf(w->err, sizeof(w->err), "%s", p11pki_errmsg());
			return 0;
		}
		*siglen = op.siglen;
		return 1;
	}

	if (w->m == M_RAW) {
		CK_MECHANISM mech = { ks->rsa ? CKM_RSA_PKCS : CKM_ECDSA, NULL, 0 };
		CK_ULONG len = (CK_ULONG)*siglen;
		CK_RV rv;

		if ((rv = w->b->f->C_SignInit(w->session, &mech, ks->priv)) != CKR_OK) {
			snprintf(w->err, sizeof(w->err), "C_SignInit (%s): %s", ks->type, p11pki_ckr_name(rv));
			return 0;
		}
		if ((rv = w->b->f->C_Sign(w->session, (CK_BYTE_PTR)ks->raw_in, ks->raw_in_len, sig, &len)) != CKR_OK) {
			snprintf(w->err, sizeof(w->err), "C_Sign (%s): %s", ks->type, p11pki_ckr_name(rv));
			return 0;
		}
		*siglen = len;
		return 1;
	}
	if (EVP_PKEY_sign(w->ctx, sig, siglen, ks->digest, sizeof(ks->digest)) <= 0) {
		char what[128];

		snprintf(what, sizeof(what), "EVP_PKEY_sign (%s, %s)", ks->type, method_names[w->m]);
		ossl_error(w->err, sizeof(w->err), what);
		if (w->m == M_POOL) { /* the token layer's message says more */
			size_t n = strlen(w->err);

			snprintf(w->err + n, sizeof(w->err) - n, "; p11pki: %s", p11pki_errmsg());
		}
		return 0;
	}
	return 1;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	unsigned char sig[1024];
	size_t siglen;
	double start, deadline, t, cpu0;
	int ready = worker_setup(w);

	/* one untimed signature: opens this thread's pool session, warms caches */
	siglen = sizeof(sig);
	if (ready)
		ready = sign_once(w, sig, &siglen);
	pthread_barrier_wait(w->barrier); /* everyone waits, ready or not */
	if (!ready) {
		w->failed = 1;
		worker_teardown(w);
		return NULL;
	}
	cpu0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
	start = t = now();
	deadline = start + w->seconds;
	while (t < deadline && !interrupted) {
		siglen = sizeof(sig);
		if (!sign_once(w, sig, &siglen)) {
			w->failed = 1;
			break;
		}
		w->ops++;
		t = now();
	}
	w->elapsed = t - start;
	w->cpu = clock_s(CLOCK_THREAD_CPUTIME_ID) - cpu0;
	worker_teardown(w);
	return NULL;
}

/* Runs one slice of a cell with n threads that start together. */
static int run_slice(const struct bench *b, const struct keyset *ks, enum method m, unsigned n, double seconds,
		     struct acc *acc, double *slice_rate)
{
	struct worker w[MAX_THREADS];
	pthread_barrier_t barrier;
	unsigned i, started = 0;
	int ok = 1;

	memset(w, 0, sizeof(w));
	*slice_rate = 0;
	if (pthread_barrier_init(&barrier, NULL, n) != 0) {
		fprintf(stderr, "bench_sign: pthread_barrier_init failed\n");
		return 0;
	}
	for (i = 0; i < n; i++) {
		w[i].b = b;
		w[i].ks = ks;
		w[i].m = m;
		w[i].seconds = seconds;
		w[i].barrier = &barrier;
		if (pthread_create(&w[i].tid, NULL, worker_main, &w[i]) != 0) {
			fprintf(stderr, "bench_sign: pthread_create failed\n");
			/* the started ones wait at the barrier for ever: give up */
			remove_tree(token_dir);
			_exit(1);
		}
		started++;
	}
	for (i = 0; i < started; i++)
		pthread_join(w[i].tid, NULL);
	pthread_barrier_destroy(&barrier);
	for (i = 0; i < n; i++) {
		if (w[i].failed) {
			fprintf(stderr, "bench_sign: %s %s, thread %u of %u: %s\n", ks->type, method_names[m], i + 1, n,
				w[i].err);
			ok = 0;
		}
		acc->ops[i] += w[i].ops;
		acc->elapsed[i] += w[i].elapsed;
		acc->cpu[i] += w[i].cpu;
		if (w[i].elapsed > 0)
			*slice_rate += (double)w[i].ops / w[i].elapsed;
	}
	return ok;
}

/* ---- checking that every method makes a valid signature ---------------- */

/* CKM_ECDSA returns r || s; EVP_PKEY_verify wants DER. */
static int ec_raw_to_der(const unsigned char *raw, size_t len, unsigned char *der, size_t *der_len)
{
	ECDSA_SIG *s = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(raw, (int)(len / 2), NULL), *ss = BN_bin2bn(raw + len / 2, (int)(len / 2), NULL);
	unsigned char *p = der;
	int n = -1;

	if (s != NULL && r != NULL && ss != NULL && ECDSA_SIG_set0(s, r, ss)) {
		r = ss = NULL;
		if (i2d_ECDSA_SIG(s, NULL) <= (int)*der_len)
			n = i2d_ECDSA_SIG(s, &p);
	}
	BN_free(r);
	BN_free(ss);
	ECDSA_SIG_free(s);
	if (n <= 0)
		return 0;
	*der_len = (size_t)n;
	return 1;
}

static int verify(EVP_PKEY *pub, const struct keyset *ks, const unsigned char *sig, size_t siglen)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pub, NULL);
	int ok = ctx != NULL && EVP_PKEY_verify_init(ctx) > 0 &&
		 EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) > 0 &&
		 (!ks->rsa || EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) > 0) &&
		 EVP_PKEY_verify(ctx, sig, siglen, ks->digest, sizeof(ks->digest)) == 1;

	EVP_PKEY_CTX_free(ctx);
	return ok;
}

static int check_signatures(const struct bench *b, const struct keyset *ks)
{
	enum method m;

	for (m = 0; m < N_METHODS; m++) {
		struct worker w;
		unsigned char sig[1024], der[256];
		size_t siglen = sizeof(sig), der_len = sizeof(der);
		int ok;

		memset(&w, 0, sizeof(w));
		w.b = b;
		w.ks = ks;
		w.m = m;
		ok = worker_setup(&w) && sign_once(&w, sig, &siglen);
		worker_teardown(&w);
		if (!ok) {
			fprintf(stderr, "bench_sign: %s %s: %s\n", ks->type, method_names[m], w.err);
			return 0;
		}
		if ((m == M_RAW || m == M_SESSION) && !ks->rsa) {
			if (!ec_raw_to_der(sig, siglen, der, &der_len)) {
				fprintf(stderr, "bench_sign: %s %s: cannot encode r||s (%zu bytes) as DER\n", ks->type,
				method_names[m], siglen);
				return 0;
			}
			memcpy(sig, der, der_len);
			siglen = der_len;
		}
		if (!verify(m == M_OPENSSL ? ks->soft_key : ks->token_pub, ks, sig, siglen)) {
			fprintf(stderr, "bench_sign: %s %s: the signature does not verify\n", ks->type, method_names[m]);
			ERR_print_errors_fp(stderr);
			return 0;
		}
	}
	return 1;
}

/* ---- the throwaway token ----------------------------------------------- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	if (remove(path) != 0)
		fprintf(stderr, "bench_sign: cannot remove %s: %s\n", path, strerror(errno));
	return 0;
}

static void remove_tree(const char *dir)
{
	if (dir[0] != '\0')
		(void)nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* token_dir: a mkdtemp directory with tokens/ and softhsm2.conf; exports
 * SOFTHSM2_CONF. */
static int make_token_dir(void)
{
	char *dir = token_dir;
	const size_t size = sizeof(token_dir);
	const char *tmp = getenv("TMPDIR");
	char path[sizeof(token_dir) + 32];
	FILE *fp;

	if (tmp == NULL || *tmp == '\0')
		tmp = "/tmp";
	if (snprintf(dir, size, "%s/p11pki-bench.XXXXXX", tmp) >= (int)size || mkdtemp(dir) == NULL) {
		fprintf(stderr, "bench_sign: cannot create a temporary directory in %s: %s\n", tmp, strerror(errno));
		dir[0] = '\0';
		return 0;
	}
	snprintf(path, sizeof(path), "%s/tokens", dir);
	if (mkdir(path, 0700) != 0) {
		fprintf(stderr, "bench_sign: cannot create %s: %s\n", path, strerror(errno));
		return 0;
	}
	snprintf(path, sizeof(path), "%s/softhsm2.conf", dir);
	if ((fp = fopen(path, "w")) == NULL) {
		fprintf(stderr, "bench_sign: cannot write %s: %s\n", path, strerror(errno));
		return 0;
	}
	fprintf(fp, "directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n"
		    "slots.removable = false\n", dir);
	if (fclose(fp) != 0 || setenv("SOFTHSM2_CONF", path, 1) != 0) {
		fprintf(stderr, "bench_sign: cannot write %s: %s\n", path, strerror(errno));
		return 0;
	}
	return 1;
}

static int find_private(const struct bench *b, struct keyset *ks)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE tmpl[] = { { CKA_CLASS, &cls, sizeof(cls) }, { CKA_ID, ks->id, sizeof(ks->id) } };
	CK_SESSION_HANDLE s;
	CK_ULONG count = 0;
	CK_RV rv;

	if ((rv = b->f->C_OpenSession(b->t->slot, CKF_SERIAL_SESSION, NULL, NULL, &s)) != CKR_OK) {
		fprintf(stderr, "bench_sign: C_OpenSession: %s\n", p11pki_ckr_name(rv));
		return 0;
	}
	if ((rv = b->f->C_FindObjectsInit(s, tmpl, 2)) == CKR_OK) {
		rv = b->f->C_FindObjects(s, &ks->priv, 1, &count);
		(void)b->f->C_FindObjectsFinal(s);
	}
	(void)b->f->C_CloseSession(s);
	if (rv != CKR_OK || count != 1) {
		fprintf(stderr, "bench_sign: finding the %s private key by CKA_ID: %s, %lu found\n", ks->type,
			p11pki_ckr_name(rv), (unsigned long)count);
		return 0;
	}
	return 1;
}

static int prepare_key(const struct bench *b, struct keyset *ks)
{
	static const char message[] = "p11pki signing benchmark";
	struct p11pki_keygen kg;
	struct p11pki_uri *sel = NULL;
	unsigned int dlen = sizeof(ks->digest);
	int ok = 0;

	memset(&kg, 0, sizeof(kg));
	if (p11pki_keytype_parse(ks->type, &kg.type) != 0)
		goto p11_fail;
	kg.label = ks->label;
	kg.id = ks->id;
	kg.id_len = sizeof(ks->id);
	ks->rsa = kg.type.kind == P11PKI_KEY_RSA;
	if (p11pki_key_generate(b->t, &kg, &ks->uri) != 0 || p11pki_uri_parse(ks->uri, &sel) != 0 ||
	    p11pki_key_load(b->t, sel, &ks->token_key) != 0 || p11pki_key_public(b->t, sel, &ks->token_pub) != 0)
		goto p11_fail;
	if (!find_private(b, ks))
		goto out;
	ks->soft_key = ks->rsa ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048)
			       : EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (ks->soft_key == NULL ||
	    !EVP_Digest(message, sizeof(message) - 1, ks->digest, &dlen, EVP_sha256(), NULL)) {
		fprintf(stderr, "bench_sign: making the in-memory %s key or the digest failed\n", ks->type);
		ERR_print_errors_fp(stderr);
		goto out;
	}
	if (ks->rsa) {
		memcpy(ks->raw_in, sha256_prefix, sizeof(sha256_prefix));
		memcpy(ks->raw_in + sizeof(sha256_prefix), ks->digest, sizeof(ks->digest));
		ks->raw_in_len = sizeof(sha256_prefix) + sizeof(ks->digest);
	} else {
		memcpy(ks->raw_in, ks->digest, sizeof(ks->digest));
		ks->raw_in_len = sizeof(ks->digest);
	}
	ok = check_signatures(b, ks);
	goto out;
p11_fail:
	fprintf(stderr, "bench_sign: %s key: %s\n", ks->type, p11pki_errmsg());
out:
	p11pki_uri_free(sel);
	return ok;
}

static void free_key(struct keyset *ks)
{
	EVP_PKEY_free(ks->token_key);
	EVP_PKEY_free(ks->token_pub);
	EVP_PKEY_free(ks->soft_key);
	free(ks->uri);
}

/* ---- measuring and reporting ------------------------------------------- */

#define N_KEYS 2
#define N_COMBOS (MAX_THREADS * N_METHODS)

struct results {
	unsigned rounds;
	struct acc acc[N_KEYS][MAX_THREADS][N_METHODS];
	double *per_round; /* slice rate of every (key, threads, method, round) */
};

static double *slot(const struct results *res, size_t k, unsigned n, enum method m, unsigned r)
{
	return &res->per_round[((k * MAX_THREADS + (n - 1)) * N_METHODS + m) * res->rounds + r];
}

/* Every round runs every (threads, method) combination of a key for one
 * slice, in a shuffled order: rounds are paired samples, taken close
 * together, of everything a ratio compares. */
static int measure(const struct bench *b, struct keyset *keys, struct results *res)
{
	unsigned order[N_COMBOS], seed = 1; /* fixed: runs are alike */
	size_t k;
	unsigned r, j;

	for (j = 0; j < N_COMBOS; j++)
		order[j] = j;
	for (k = 0; k < N_KEYS; k++)
		for (r = 0; r < b->rounds; r++) {
			/* a new order each round (Fisher-Yates), so no cell always
			 * follows the same one */
			for (j = N_COMBOS - 1; j > 0; j--) {
				unsigned x = (unsigned)rand_r(&seed) % (j + 1), tmp = order[j];

				order[j] = order[x];
				order[x] = tmp;
			}
			for (j = 0; j < N_COMBOS; j++) {
				unsigned c = order[j], n = c / N_METHODS + 1;
				enum method m = (enum method)(c % N_METHODS);

				if (!run_slice(b, &keys[k], m, n, b->seconds / b->rounds, &res->acc[k][n - 1][m],
					       slot(res, k, n, m, r)))
					return 0;
				if (interrupted) {
					fprintf(stderr, "bench_sign: interrupted\n");
					return 0;
				}
			}
		}
	return 1;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Quartiles q[0..2] (q[1] the median) of v[0..n-1]; sorts v. */
static void quartiles(double *v, unsigned n, double q[3])
{
	unsigned j;

	qsort(v, n, sizeof(*v), cmp_double);
	for (j = 0; j < 3; j++) {
		double pos = (j + 1) * 0.25 * (n - 1);
		unsigned lo = (unsigned)pos, hi = lo + 1 < n ? lo + 1 : lo;

		q[j] = v[lo] + (v[hi] - v[lo]) * (pos - lo);
	}
}

/* Quartiles of a per-round quantity: the rate of one cell (den NULL) or
 * the ratio num/den of two cells, round by round. */
static void stat_rounds(const struct results *res, const double *num, const double *den, double q[3])
{
	double *v = calloc(res->rounds, sizeof(*v));
	unsigned r;

	if (v == NULL) {
		q[0] = q[1] = q[2] = 0;
		return;
	}
	for (r = 0; r < res->rounds; r++)
		v[r] = den == NULL ? num[r] : den[r] > 0 ? num[r] / den[r] : 0;
	quartiles(v, res->rounds, q);
	free(v);
}

/* CPU cores the cell's threads got: each thread's CPU time over its wall
 * time, summed. Well under the thread count means something else was
 * running on the machine (or the threads waited for each other). */
static double cores(const struct acc *a, unsigned n)
{
	double c = 0;
	unsigned i;

	for (i = 0; i < n; i++)
		if (a->elapsed[i] > 0)
			c += a->cpu[i] / a->elapsed[i];
	return c;
}

/* CPU microseconds per signature: the threads' CPU time over their
 * signatures, all rounds together. Time other processes take from the
 * threads is not in it (nor the threads' waits for the module's locks), so
 * on a moderately busy machine it shows the cost of the code more steadily
 * than the rates; caches shared with other work still slow it down. */
static double cpu_us(const struct acc *a, unsigned n)
{
	double cpu = 0;
	unsigned long ops = 0;
	unsigned i;

	for (i = 0; i < n; i++) {
		cpu += a->cpu[i];
		ops += a->ops[i];
	}
	return ops > 0 ? cpu / (double)ops * 1e6 : 0;
}

/* The pool's overhead over raw in % from a pool/raw throughput ratio. */
static double overhead_pct(double ratio)
{
	return ratio > 0 ? (1.0 / ratio - 1.0) * 100.0 : 0;
}

/* Prints the table and the target lines; returns the number of misses. */
static int report(const struct keyset *keys, const struct results *res)
{
	double ossl_short = 1, token_short = 1; /* lowest share of the cores a cell's threads got */
	size_t k;
	unsigned n;
	int i, misses = 0;

	printf("\nmedians over %u rounds; [..] is the interquartile range of the per-round figure.\n"
	       "overhead: time added per signature over raw C_Sign; pool = EVP_PKEY_sign on p11pki's key,\n"
	       "session = p11pki_token_run around C_SignInit+C_Sign (the session pool without OpenSSL)\n",
	       res->rounds);
	printf("%-9s %7s %10s %10s %8s %-24s %8s %13s %12s  %s\n", "key", "threads", "raw sig/s", "pool sig/s",
	       "pool/raw", "pool overhead", "session", "openssl sig/s", "pool/openssl", "cores raw/ses/pool/ossl");
	for (k = 0; k < N_KEYS; k++)
		for (n = 1; n <= MAX_THREADS; n++) {
			double raw[3], pool[3], ossl[3], ratio[3], ses[3], vs_ossl[3], c[N_METHODS];
			char ovh[64], ses_ovh[16];

			stat_rounds(res, slot(res, k, n, M_RAW, 0), NULL, raw);
			stat_rounds(res, slot(res, k, n, M_POOL, 0), NULL, pool);
			stat_rounds(res, slot(res, k, n, M_OPENSSL, 0), NULL, ossl);
			stat_rounds(res, slot(res, k, n, M_POOL, 0), slot(res, k, n, M_RAW, 0), ratio);
			stat_rounds(res, slot(res, k, n, M_SESSION, 0), slot(res, k, n, M_RAW, 0), ses);
			stat_rounds(res, slot(res, k, n, M_POOL, 0), slot(res, k, n, M_OPENSSL, 0), vs_ossl);
			for (i = 0; i < N_METHODS; i++) {
				c[i] = cores(&res->acc[k][n - 1][i], n);
				if (i == M_OPENSSL && c[i] / n < ossl_short)
					ossl_short = c[i] / n;
				else if (i != M_OPENSSL && c[i] / n < token_short)
					token_short = c[i] / n;
			}
			/* the overhead falls as the ratio rises: its IQR flips */
			snprintf(ovh, sizeof(ovh), "%+.1f%% [%+.1f, %+.1f]", overhead_pct(ratio[1]),
				 overhead_pct(ratio[2]), overhead_pct(ratio[0]));
			snprintf(ses_ovh, sizeof(ses_ovh), "%+.1f%%", overhead_pct(ses[1]));
			printf("%-9s %7u %10.1f %10.1f %8.3f %-24s %8s %13.1f %12.3f  %.2f/%.2f/%.2f/%.2f\n",
			       keys[k].type, n, raw[1], pool[1], ratio[1], ovh, ses_ovh, ossl[1], vs_ossl[1], c[M_RAW],
			       c[M_SESSION], c[M_POOL], c[M_OPENSSL]);
		}

	printf("\nscaling, 2 threads / 1 thread (median [IQR] of the per-round ratio):\n");
	for (k = 0; k < N_KEYS; k++) {
		printf("%-9s", keys[k].type);
		for (i = 0; i < N_METHODS; i++) {
			double q[3];

			stat_rounds(res, slot(res, k, 2, (enum method)i, 0), slot(res, k, 1, (enum method)i, 0), q);
			printf("  %s %.2fx [%.2f, %.2f]", method_names[i], q[1], q[0], q[2]);
		}
		printf("\n");
	}
	printf("\nCPU time per signature, microseconds (time other processes hold the CPU is left out):\n");
	printf("%-9s %7s %9s %9s %9s %9s %14s %14s\n", "key", "threads", "raw", "session", "pool", "openssl",
	       "pool overhead", "session ovh");
	for (k = 0; k < N_KEYS; k++)
		for (n = 1; n <= MAX_THREADS; n++) {
			double us[N_METHODS];

			for (i = 0; i < N_METHODS; i++)
				us[i] = cpu_us(&res->acc[k][n - 1][i], n);
			printf("%-9s %7u %9.1f %9.1f %9.1f %9.1f %+13.1f%% %+13.1f%%\n", keys[k].type, n, us[M_RAW],
			       us[M_SESSION], us[M_POOL], us[M_OPENSSL],
			       us[M_RAW] > 0 ? (us[M_POOL] / us[M_RAW] - 1) * 100 : 0,
			       us[M_RAW] > 0 ? (us[M_SESSION] / us[M_RAW] - 1) * 100 : 0);
		}

	/* OpenSSL's threads share nothing: short of cores, the machine was busy.
	 * The token's threads short while OpenSSL's were not: they waited for
	 * each other inside the module. */
	if (ossl_short < 0.9)
		printf("note: OpenSSL's threads got only %.0f%% of their cores: the machine was busy, so\n"
		       "      these figures are less certain than usual (run again when it is idle)\n",
		       ossl_short * 100);
	else if (token_short < 0.9)
		printf("note: some token threads ran only %.0f%% of the time while OpenSSL's ran %.0f%%:\n"
		       "      they waited for each other inside the PKCS#11 module\n",
		       token_short * 100, ossl_short * 100);

	printf("\ntargets:\n");
	for (k = 0; k < N_KEYS; k++)
		for (n = 1; n <= MAX_THREADS; n++) {
			double q[3], ovh;
			int pass;

			stat_rounds(res, slot(res, k, n, M_POOL, 0), slot(res, k, n, M_RAW, 0), q);
			ovh = overhead_pct(q[1]);
			pass = ovh <= OVERHEAD_TARGET;
			misses += !pass;
			printf("%s pool overhead vs raw C_Sign, %s, %u thread%s: %+.1f%% (target <= %.0f%%)\n",
			       pass ? "PASS" : "MISS", keys[k].type, n, n > 1 ? "s" : "", ovh, OVERHEAD_TARGET);
		}
	for (k = 0; k < N_KEYS; k++) {
		double q[3];
		int pass;

		if (!keys[k].rsa)
			continue;
		stat_rounds(res, slot(res, k, 2, M_POOL, 0), slot(res, k, 1, M_POOL, 0), q);
		pass = q[1] >= SCALING_TARGET;
		misses += !pass;
		printf("%s %s pool scaling, 2 threads / 1 thread: %.2fx (target >= %.1fx)\n", pass ? "PASS" : "MISS",
		       keys[k].type, q[1], SCALING_TARGET);
	}
	if (misses > 0)
		printf("%d target%s missed (reported only: the exit status does not depend on targets)\n", misses,
		       misses > 1 ? "s" : "");
	return misses;
}

static void usage(FILE *fp)
{
	fprintf(fp, "usage: bench_sign [--seconds N] [--rounds N] [--module PATH]\n"
		    "  --seconds N   seconds per cell (key type, threads, method); default 2\n"
		    "  --rounds N    slices each cell is cut into, interleaved with the other\n"
		    "                cells of the key type; default 10\n"
		    "  --module PATH SoftHSM2 module (default: the build's, or $P11PKI_MODULE)\n");
}

int main(int argc, char **argv)
{
	struct keyset keys[N_KEYS] = {
		{ .type = "rsa:2048", .label = "bench-rsa2048", .id = { 'b', 'e', 'n', 'c', 'h', 'r', 's', 'a' } },
		{ .type = "ec:p256", .label = "bench-p256", .id = { 'b', 'e', 'n', 'c', 'h', 'e', 'c', '1' } },
	};
	static struct results res;
	struct bench b = { .seconds = 2.0, .rounds = 10 };
	const char *module_path = NULL;
	p11pki_module *m = NULL;
	p11pki_secret *so = NULL, *user = NULL;
	struct p11pki_uri *tok_sel = NULL;
	double load[3] = { 0, 0, 0 }, start;
	size_t k;
	int i, status = 1;

	for (i = 1; i < argc; i++) {
		char *end;

		if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
			b.seconds = strtod(argv[++i], &end);
			if (*end != '\0' || !(b.seconds > 0 && b.seconds <= 3600)) {
				fprintf(stderr, "bench_sign: --seconds wants a number of seconds (0 < N <= 3600)\n");
				return 2;
			}
		} else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
			unsigned long v = strtoul(argv[++i], &end, 10);

			if (*end != '\0' || v < 1 || v > 1000) {
				fprintf(stderr, "bench_sign: --rounds wants 1 to 1000\n");
				return 2;
			}
			b.rounds = (unsigned)v;
		} else if (strcmp(argv[i], "--module") == 0 && i + 1 < argc) {
			module_path = argv[++i];
		} else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (module_path == NULL)
		module_path = p11pki_default_module_path();
	res.rounds = b.rounds;
	if ((res.per_round = calloc((size_t)N_KEYS * N_COMBOS * b.rounds, sizeof(double))) == NULL) {
		fprintf(stderr, "bench_sign: out of memory\n");
		return 1;
	}
	p11pki_log_set_handler(log_handler, NULL);

	{
		struct sigaction sa;

		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_signal;
		sigemptyset(&sa.sa_mask);
		(void)sigaction(SIGINT, &sa, NULL);
		(void)sigaction(SIGTERM, &sa, NULL);
	}
	if (!make_token_dir())
		goto out;
	if (p11pki_secret_from(SO_PIN, strlen(SO_PIN), &so) != 0 ||
	    p11pki_secret_from(USER_PIN, strlen(USER_PIN), &user) != 0 ||
	    p11pki_module_open(module_path, &m) != 0 ||
	    p11pki_token_init(m, 0, 0, TOKEN_LABEL, so, user, NULL) != 0 ||
	    p11pki_uri_parse("pkcs11:token=" TOKEN_LABEL, &tok_sel) != 0 ||
	    p11pki_token_open(m, tok_sel, &b.t) != 0 || p11pki_token_login(b.t, user) != 0) {
		fprintf(stderr, "bench_sign: setting up the token: %s\n", p11pki_errmsg());
		goto out;
	}
	b.f = m->f;
	for (k = 0; k < N_KEYS; k++)
		if (!prepare_key(&b, &keys[k]))
			goto out;

	(void)getloadavg(load, 3);
	printf("p11pki signing benchmark: %s, %s\n", module_path, OpenSSL_version(OPENSSL_VERSION));
	printf("%ld CPUs online; %.3g s per cell in %u rounds; load average %.2f at start\n",
	       sysconf(_SC_NPROCESSORS_ONLN), b.seconds, b.rounds, load[0]);
	fflush(stdout);
	start = now();
	if (!measure(&b, keys, &res))
		goto out;
	(void)getloadavg(load, 3);
	printf("measured in %.1f s; load average %.2f at end\n", now() - start, load[0]);
	(void)report(keys, &res);
	status = 0;
out:
	fflush(stdout);
	for (k = 0; k < N_KEYS; k++)
		free_key(&keys[k]);
	p11pki_uri_free(tok_sel);
	p11pki_token_close(b.t);
	p11pki_module_close(m);
	p11pki_secret_free(so);
	p11pki_secret_free(user);
	free(res.per_round);
	remove_tree(token_dir);
	return interrupted ? 130 : status;
}
