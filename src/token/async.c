/* Token operations off the event loop. A TLS server runs handshakes in
 * OpenSSL ASYNC jobs (SSL_MODE_ASYNC); when a private-key operation comes
 * up inside such a job, it is queued for one of the signing threads and
 * the job pauses, its wait fd (an eventfd) becoming readable when the
 * result is ready. The event loop meanwhile serves other connections, so
 * a slow token (a network HSM, a USB token) keeps many signatures in
 * flight instead of stalling everything. Outside a job, or when no
 * signing threads run, the operation simply runs on the caller's thread.
 *
 * A token that computes rather than waits (SoftHSM2, or any module doing
 * the maths on the host CPU) gains nothing from the hand-off: the CPU
 * must be spent anyway, and two thread switches per signature cost more
 * than they save. So each token keeps moving averages of the time its
 * signatures spend computing on our CPU and waiting on the device; a
 * token that mostly waits (an HSM across a network, a USB card) is served
 * by the signing threads, one that computes signs on the caller's thread,
 * as nginx does. A token that turns slow is moved on its next signature. */
#include <errno.h>
#include <sched.h>
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
	p11pki_token *t;
	int result;
	char message[256];
	atomic_int done, written;
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

/* Moving averages over about the last 8 samples, in microseconds. */
#define AVG_SHIFT 3
/* Hand signatures to the signing threads when waiting dominates: more
 * than twice the compute time plus this margin (above the scheduling
 * noise of a busy machine preempting a signature computed here). */
#define WAIT_MARGIN_US 500

static int64_t us_of(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void average_in(atomic_uint *avg, int64_t sample)
{
	unsigned old = atomic_load_explicit(avg, memory_order_relaxed);
	int64_t v = sample < 0 ? 0 : sample > 60000000 ? 60000000 : sample;

	/* racy read-modify-write on purpose: a lost sample does not matter */
	atomic_store_explicit(avg, (unsigned)((int64_t)old + ((v - (int64_t)old) >> AVG_SHIFT)), memory_order_relaxed);
}

/* One signature in SAMPLE_EVERY measures its CPU time: the thread CPU
 * clock is a system call, wall time is not, and the averages need no more
 * samples than that to follow a token that turns slow. */
#define SAMPLE_EVERY 8

/* Runs fn, timing it for the token's averages and for the observer (the
 * metrics' latency histogram). Every run feeds the wait average (between
 * samples, with the CPU average standing for its CPU time), so a token
 * that turns slow is seen on its first slow signature. */
static int run_timed(p11pki_token *t, int (*fn)(void *), void *arg)
{
	static _Thread_local unsigned runs;
	int sample = t != NULL && runs++ % SAMPLE_EVERY == 0;
	int64_t wall = us_of(CLOCK_MONOTONIC), cpu = sample ? us_of(CLOCK_THREAD_CPUTIME_ID) : 0;
	int r = fn(arg);

	wall = us_of(CLOCK_MONOTONIC) - wall;
	if (sample) {
		cpu = us_of(CLOCK_THREAD_CPUTIME_ID) - cpu;
		average_in(&t->sign_cpu_us, cpu);
	} else if (t != NULL) {
		cpu = atomic_load_explicit(&t->sign_cpu_us, memory_order_relaxed);
	}
	if (t != NULL)
		average_in(&t->sign_wait_us, wall - cpu);
	if (observer != NULL)
		observer((double)wall / 1e6, r == 0);
	return r;
}

static int token_waits(p11pki_token *t)
{
	unsigned wait = atomic_load_explicit(&t->sign_wait_us, memory_order_relaxed);
	unsigned cpu = atomic_load_explicit(&t->sign_cpu_us, memory_order_relaxed);

	return wait > 2 * cpu + WAIT_MARGIN_US;
}

int p11pki_async_wanted(p11pki_token *t)
{
	return t != NULL && pool.n_threads > 0 && token_waits(t);
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
		op->result = run_timed(op->t, op->fn, op->arg);
		if (op->result != 0)
			snprintf(op->message, sizeof(op->message), "%s", p11pki_errmsg());
		atomic_store_explicit(&op->done, 1, memory_order_release);
		while (write(op->efd, &one, sizeof(one)) < 0 && errno == EINTR)
			;
		/* last touch of op: the waiter may return, and its job close
		 * the fd, only after this */
		atomic_store_explicit(&op->written, 1, memory_order_release);
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

int p11pki_async_run(p11pki_token *t, int (*fn)(void *arg), void *arg)
{
	ASYNC_JOB *job = ASYNC_get_current_job();
	struct async_op op;

	if (job == NULL || pool.n_threads == 0 || (t != NULL && !token_waits(t)))
		return run_timed(t, fn, arg);
	memset(&op, 0, sizeof(op));
	op.fn = fn;
	op.arg = arg;
	op.t = t;
	if ((op.efd = job_fd(job)) < 0)
		return run_timed(t, fn, arg);
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
	/* done is set just before the fd is written: a few instructions */
	while (!atomic_load_explicit(&op.written, memory_order_acquire))
		sched_yield();
	if (op.result != 0)
		p11pki_fail(op.result, "%s", op.message);
	return op.result;
}
