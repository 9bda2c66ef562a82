/* Token operations off the event loop. A TLS server runs handshakes in
 * OpenSSL ASYNC jobs (SSL_MODE_ASYNC); when a private-key operation comes
 * up inside such a job, it is queued for one of the signing threads and
 * the job pauses, its wait fd (an eventfd) becoming readable when the
 * result is ready. The event loop meanwhile serves other connections, so
 * a slow token (a network HSM, a USB token) keeps many signatures in
 * flight instead of stalling everything. Outside a job, or when no
 * signing threads run, the operation simply runs on the caller's thread. */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <openssl/async.h>

#include "token/internal.h"

#define MAX_THREADS 256

struct async_op {
	int (*fn)(void *arg);
	void *arg;
	int efd;
	int result;
	char message[256];
	atomic_int done;
	struct async_op *next;
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct async_op *head, *tail;
	pthread_t threads[MAX_THREADS];
	unsigned n_threads;
	int stopping;
} pool = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, NULL, { 0 }, 0, 0 };

static p11pki_sign_observer observer;
static const char wait_key = 0; /* identifies our fd in a job's wait ctx */

void p11pki_sign_observer_set(p11pki_sign_observer fn)
{
	observer = fn;
}

static double seconds_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs fn, timing it for the observer (the metrics' latency histogram). */
static int run_timed(int (*fn)(void *), void *arg)
{
	double start = observer != NULL ? seconds_now() : 0;
	int r = fn(arg);

	if (observer != NULL)
		observer(seconds_now() - start, r == 0);
	return r;
}

static void *signing_thread(void *unused)
{
	struct async_op *op;
	uint64_t one = 1;

	for (;;) {
		pthread_mutex_lock(&pool.lock);
		while (pool.head == NULL && !pool.stopping)
			pthread_cond_wait(&pool.cond, &pool.lock);
		if (pool.head == NULL) {
			pthread_mutex_unlock(&pool.lock);
			return NULL;
		}
		op = pool.head;
		pool.head = op->next;
		if (pool.head == NULL)
			pool.tail = NULL;
		pthread_mutex_unlock(&pool.lock);
		op->result = run_timed(op->fn, op->arg);
		if (op->result != 0)
			snprintf(op->message, sizeof(op->message), "%s", p11pki_errmsg());
		atomic_store_explicit(&op->done, 1, memory_order_release);
		/* the waiter may already have gone on: the fd stays its job's */
		while (write(op->efd, &one, sizeof(one)) < 0 && errno == EINTR)
			;
	}
}

int p11pki_async_signing_start(unsigned threads)
{
	unsigned i;

	if (threads > MAX_THREADS)
		threads = MAX_THREADS;
	pthread_mutex_lock(&pool.lock);
	pool.stopping = 0;
	for (i = pool.n_threads; i < threads; i++) {
		if (pthread_create(&pool.threads[i], NULL, signing_thread, NULL) != 0)
			break;
		pool.n_threads++;
	}
	pthread_mutex_unlock(&pool.lock);
	if (pool.n_threads < threads)
		return p11pki_fail(P11PKI_E_NOMEM, "only %u of %u signing threads could be started", pool.n_threads,
				   threads);
	return P11PKI_OK;
}

void p11pki_async_signing_stop(void)
{
	unsigned i, n;

	pthread_mutex_lock(&pool.lock);
	pool.stopping = 1;
	n = pool.n_threads;
	pthread_cond_broadcast(&pool.cond);
	pthread_mutex_unlock(&pool.lock);
	for (i = 0; i < n; i++)
		pthread_join(pool.threads[i], NULL);
	pool.n_threads = 0;
}

static void close_wait_fd(ASYNC_WAIT_CTX *ctx, const void *key, OSSL_ASYNC_FD fd, void *custom)
{
	close(fd);
}

/* The eventfd of the current job, made on first use and closed with it. */
static int job_fd(ASYNC_JOB *job)
{
	ASYNC_WAIT_CTX *ctx = ASYNC_get_wait_ctx(job);
	OSSL_ASYNC_FD fd = -1;
	void *custom = NULL;

	if (ctx == NULL)
		return -1;
	if (ASYNC_WAIT_CTX_get_fd(ctx, &wait_key, &fd, &custom) == 1 && fd >= 0)
		return fd;
	if ((fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
		return -1;
	if (ASYNC_WAIT_CTX_set_wait_fd(ctx, &wait_key, fd, NULL, close_wait_fd) != 1) {
		close(fd);
		return -1;
	}
	return fd;
}

static void drain(int fd)
{
	uint64_t v;

	while (read(fd, &v, sizeof(v)) > 0)
		;
}

int p11pki_async_run(int (*fn)(void *arg), void *arg)
{
	ASYNC_JOB *job = ASYNC_get_current_job();
	struct async_op op;

	if (job == NULL || pool.n_threads == 0)
		return run_timed(fn, arg);
	memset(&op, 0, sizeof(op));
	op.fn = fn;
	op.arg = arg;
	if ((op.efd = job_fd(job)) < 0)
		return run_timed(fn, arg);
	drain(op.efd);
	pthread_mutex_lock(&pool.lock);
	if (pool.tail != NULL)
		pool.tail->next = &op;
	else
		pool.head = &op;
	pool.tail = &op;
	pthread_cond_signal(&pool.cond);
	pthread_mutex_unlock(&pool.lock);
	/* op lives on this job's stack, which survives the pauses */
	for (;;) {
		if (atomic_load_explicit(&op.done, memory_order_acquire))
			break;
		if (!ASYNC_pause_job()) {
			/* cannot pause (should not happen): wait here */
			while (!atomic_load_explicit(&op.done, memory_order_acquire))
				p11pki_sleep_ms(1);
			break;
		}
		drain(op.efd);
	}
	if (op.result != 0)
		p11pki_fail(op.result, "%s", op.message);
	return op.result;
}
