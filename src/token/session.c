/* An open token: one login, a pool of sessions shared by threads, and
 * recovery when the token or its sessions go away. */
#include <stdlib.h>
#include <string.h>

#include "token/internal.h"

#define DEFAULT_POOL 8
#define OPEN_ATTEMPTS 5	 /* SoftHSM2 fails some concurrent opens */

int p11pki_token_open(p11pki_module *m, const struct p11pki_uri *sel, p11pki_token **out)
{
	struct p11pki_token_info info;
	p11pki_token *t;
	int r;

	*out = NULL;
	memset(&info, 0, sizeof(info));
	if ((r = p11pki_slot_find(m, sel, &info)) != 0)
		return r;
	if ((t = calloc(1, sizeof(*t))) == NULL ||
	    (t->idle = calloc(DEFAULT_POOL, sizeof(*t->idle))) == NULL) {
		free(t);
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory opening a token");
	}
	t->m = m;
	pthread_mutex_lock(&m->lock);
	m->tokens_open++;
	pthread_mutex_unlock(&m->lock);
	t->slot = info.slot_id;
	t->max_open = DEFAULT_POOL;
	memcpy(t->label, info.label, sizeof(t->label));
	memcpy(t->serial, info.serial, sizeof(t->serial));
	pthread_mutex_init(&t->lock, NULL);
	pthread_mutex_init(&t->open_lock, NULL);
	pthread_mutex_init(&t->copy_lock, NULL);
	pthread_cond_init(&t->idle_cond, NULL);
	*out = t;
	return P11PKI_OK;
}

const char *p11pki_token_label(const p11pki_token *t)
{
	return t->label;
}

void p11pki_token_set_pool_size(p11pki_token *t, unsigned n)
{
	CK_SESSION_HANDLE *idle;

	if (n == 0 || n > 1024)
		return;
	pthread_mutex_lock(&t->lock);
	if ((idle = realloc(t->idle, (n > t->n_idle ? n : t->n_idle) * sizeof(*idle))) != NULL) {
		t->idle = idle;
		t->max_open = n;
	}
	pthread_mutex_unlock(&t->lock);
}

/* Closes every idle session and makes those in use be dropped when they
 * are handed back. Called with t->lock held. */
static void drop_sessions(p11pki_token *t)
{
	unsigned i;

	for (i = 0; i < t->n_idle; i++)
		(void)P11_CALL(t->m, C_CloseSession, t->idle[i]);
	t->n_open -= t->n_idle;
	t->n_idle = 0;
	t->generation++;
	pthread_cond_broadcast(&t->idle_cond);
}

void p11pki_token_close(p11pki_token *t)
{
	if (t == NULL)
		return;
	pthread_mutex_lock(&t->lock);
	drop_sessions(t);
	pthread_mutex_unlock(&t->lock);
	if (t->has_holder)
		(void)P11_CALL(t->m, C_CloseSession, t->holder);
	pthread_cond_destroy(&t->idle_cond);
	pthread_mutex_destroy(&t->lock);
	pthread_mutex_destroy(&t->open_lock);
	pthread_mutex_destroy(&t->copy_lock);
	pthread_mutex_lock(&t->m->lock);
	t->m->tokens_open--;
	pthread_mutex_unlock(&t->m->lock);
	p11pki_secret_free(t->pin);
	free(t->idle);
	free(t);
}

/* After removal the token may come back in another slot: find it again
 * by label and serial. */
static void refind_slot(p11pki_token *t)
{
	struct p11pki_token_info info;
	struct p11pki_uri sel;

	memset(&sel, 0, sizeof(sel));
	memset(&info, 0, sizeof(info));
	sel.token = t->label;
	sel.serial = t->serial;
	if (p11pki_slot_find(t->m, &sel, &info) == 0)
		t->slot = info.slot_id;
}

static CK_RV login(p11pki_token *t, CK_SESSION_HANDLE s)
{
	CK_RV rv;

	if (t->pin == NULL)
		return CKR_OK;
	rv = P11_CALL(t->m, C_Login, s, CKU_USER, (CK_UTF8CHAR_PTR)t->pin->data, t->pin->len);
	return rv == CKR_USER_ALREADY_LOGGED_IN ? CKR_OK : rv;
}

/* Answers that SoftHSM2 gives while another process rewrites the token
 * file; they pass on a second try. */
static int transient(CK_RV rv)
{
	return rv == CKR_GENERAL_ERROR || rv == CKR_DEVICE_ERROR || rv == CKR_USER_PIN_NOT_INITIALIZED ||
	       rv == CKR_TOKEN_NOT_RECOGNIZED;
}

/* Opens one session and logs it in if the token is not logged in yet.
 * Transient failures are retried with a short backoff. Openers queue on
 * open_lock only: threads with a pooled session carry on meanwhile. */
static CK_RV open_session(p11pki_token *t, CK_SESSION_HANDLE *s)
{
	unsigned attempt;
	CK_RV rv = CKR_GENERAL_ERROR;
	int lock;

	pthread_mutex_lock(&t->open_lock);
	/* SoftHSM2 rewrites the token file on C_Login (the PIN flags): a
	 * login is a writer, and a reader of another process would find the
	 * file half-written */
	lock = !t->logged_in && t->pin != NULL ? p11pki_module_write_begin(t->m) : p11pki_module_read_begin(t->m);
	for (attempt = 0; attempt < OPEN_ATTEMPTS; attempt++) {
		if (attempt > 0)
			p11pki_sleep_ms(5u << attempt);
		rv = P11_CALL(t->m, C_OpenSession, t->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, s);
		if (rv == CKR_CRYPTOKI_NOT_INITIALIZED) {
			CK_C_INITIALIZE_ARGS args = { .flags = CKF_OS_LOCKING_OK };
			(void)P11_CALL(t->m, C_Initialize, &args);
			continue;
		}
		if (rv == CKR_SLOT_ID_INVALID || rv == CKR_TOKEN_NOT_PRESENT) {
			refind_slot(t);
			continue;
		}
		if (rv != CKR_OK) {
			if (transient(rv))
				continue;
			break;
		}
		if (t->logged_in)
			break;
		rv = login(t, *s);
		if (rv == CKR_OK) {
			t->logged_in = t->pin != NULL;
			break;
		}
		(void)P11_CALL(t->m, C_CloseSession, *s);
		if (!transient(rv))
			break;
	}
	if (attempt == OPEN_ATTEMPTS)
		p11pki_log(P11PKI_LOG_DEBUG, "token '%s': gave up opening a session after %d attempts",
			   t->label, OPEN_ATTEMPTS);
	p11pki_module_write_end(lock);
	pthread_mutex_unlock(&t->open_lock);
	return rv;
}

/* SoftHSM2 keeps a token file it read half-written until it reads it
 * again: when this is the module's only token and nothing is open yet,
 * re-initialise the module and find the token again. */
static int reload_alone(p11pki_token *t)
{
	int ok;

	pthread_mutex_lock(&t->m->lock);
	ok = t->m->tokens_open == 1 && t->n_open == 0;
	if (ok)
		t->m->tokens_open = 0;
	pthread_mutex_unlock(&t->m->lock);
	if (!ok)
		return 0;
	ok = p11pki_module_reinit(t->m) == 0;
	pthread_mutex_lock(&t->m->lock);
	t->m->tokens_open++;
	pthread_mutex_unlock(&t->m->lock);
	if (ok)
		refind_slot(t);
	return ok;
}

int p11pki_token_login(p11pki_token *t, const p11pki_secret *pin)
{
	CK_SESSION_HANDLE s;
	p11pki_secret *copy = NULL;
	CK_RV rv;
	int r;

	if ((r = p11pki_secret_from(pin->data, pin->len, &copy)) != 0)
		return r;
	pthread_mutex_lock(&t->open_lock);
	p11pki_secret_free(t->pin);
	t->pin = copy;
	t->logged_in = 0;
	pthread_mutex_unlock(&t->open_lock);
	rv = open_session(t, &s);
	if (transient(rv) && reload_alone(t))
		rv = open_session(t, &s);
	if (rv != CKR_OK) {
		r = p11pki_ck_fail(rv, p11pki_ck_last_call(), t->label, NULL);
		pthread_mutex_lock(&t->open_lock);
		p11pki_secret_free(t->pin);
		t->pin = NULL;
		pthread_mutex_unlock(&t->open_lock);
		return r;
	}
	pthread_mutex_lock(&t->lock);
	t->n_open++;
	t->idle[t->n_idle++] = s; /* the first pooled session */
	pthread_mutex_unlock(&t->lock);
	return P11PKI_OK;
}

void p11pki_token_use_session_keys(p11pki_token *t, int on)
{
	atomic_store(&t->session_keys, on != 0);
}

/* SoftHSM2 reads a token object's file back at every use, to see whether
 * another process changed it (openat, fcntl, fstat under the object's
 * lock, per signature: 3-5% of a handshake, measured); a session object
 * lives in memory. The copy keeps CKA_SENSITIVE and CKA_EXTRACTABLE false,
 * so it leaves the token no more than the original, and lives as long as
 * the session that made it: the holder, which the pool never hands out.
 * After the sessions were dropped (the token went away) a new holder
 * makes new copies; closing the old one ends its copies, and a signature
 * still using one finds the key again (evp.c). */
CK_RV p11pki_token_session_copy(p11pki_token *t, CK_OBJECT_HANDLE h, CK_OBJECT_HANDLE *copy,
				 CK_SESSION_HANDLE *holder)
{
	CK_BBOOL no = CK_FALSE;
	CK_ATTRIBUTE tmpl[] = { { CKA_TOKEN, &no, sizeof(no) } };
	CK_SESSION_HANDLE stale = CK_INVALID_HANDLE, s;
	unsigned generation;
	CK_RV rv;

	pthread_mutex_lock(&t->lock);
	generation = t->generation;
	pthread_mutex_unlock(&t->lock);
	pthread_mutex_lock(&t->copy_lock);
	if (t->has_holder && t->holder_generation != generation) {
		stale = t->holder;
		t->has_holder = 0;
	}
	if (!t->has_holder) {
		if ((rv = open_session(t, &s)) != CKR_OK)
			goto out;
		t->holder = s;
		t->holder_generation = generation;
		t->has_holder = 1;
	}
	rv = P11_CALL(t->m, C_CopyObject, t->holder, h, tmpl, 1, copy);
	*holder = t->holder;
out:
	pthread_mutex_unlock(&t->copy_lock);
	if (stale != CK_INVALID_HANDLE)
		(void)P11_CALL(t->m, C_CloseSession, stale);
	return rv;
}

void p11pki_token_session_destroy(p11pki_token *t, CK_SESSION_HANDLE holder, CK_OBJECT_HANDLE copy)
{
	pthread_mutex_lock(&t->copy_lock);
	if (t->has_holder && t->holder == holder)
		(void)P11_CALL(t->m, C_DestroyObject, holder, copy);
	pthread_mutex_unlock(&t->copy_lock);
}

/* Takes an idle session, or opens a new one below the cap (outside the
 * pool lock), or waits for one to come back. */
static CK_RV acquire(p11pki_token *t, CK_SESSION_HANDLE *s, unsigned *generation)
{
	CK_RV rv;

	pthread_mutex_lock(&t->lock);
	while (t->n_idle == 0 && t->n_open >= t->max_open)
		pthread_cond_wait(&t->idle_cond, &t->lock);
	*generation = t->generation;
	if (t->n_idle > 0) {
		*s = t->idle[--t->n_idle];
		pthread_mutex_unlock(&t->lock);
		return CKR_OK;
	}
	t->n_open++; /* reserve the place while opening */
	pthread_mutex_unlock(&t->lock);
	rv = open_session(t, s);
	if (rv != CKR_OK) {
		pthread_mutex_lock(&t->lock);
		if (*generation == t->generation)
			t->n_open--;
		pthread_cond_signal(&t->idle_cond);
		pthread_mutex_unlock(&t->lock);
	}
	return rv;
}

/* Returns a session to the pool, or closes it when it is stale. */
static void release(p11pki_token *t, CK_SESSION_HANDLE s, unsigned generation, int broken)
{
	pthread_mutex_lock(&t->lock);
	if (broken || generation != t->generation || t->n_idle >= t->max_open) {
		(void)P11_CALL(t->m, C_CloseSession, s);
		if (generation == t->generation)
			t->n_open--;
	} else {
		t->idle[t->n_idle++] = s;
	}
	pthread_cond_signal(&t->idle_cond);
	pthread_mutex_unlock(&t->lock);
}

/* A recoverable failure: sessions (and perhaps the login) are gone. */
static void recover(p11pki_token *t, CK_RV rv, unsigned generation)
{
	pthread_mutex_lock(&t->lock);
	if (generation == t->generation) {
		p11pki_log(P11PKI_LOG_WARN, "token '%s': %s, reopening sessions", t->label, p11pki_ckr_name(rv));
		/* sessions in use by other threads were counted under the old
		 * generation; they are closed, not counted, when handed back */
		drop_sessions(t);
		t->n_open = 0;
	}
	pthread_mutex_unlock(&t->lock);
	pthread_mutex_lock(&t->open_lock);
	t->logged_in = 0;
	pthread_mutex_unlock(&t->open_lock);
}

int p11pki_token_run(p11pki_token *t, const char *what, p11pki_session_fn fn, void *arg)
{
	CK_SESSION_HANDLE s;
	unsigned generation, attempt, recoveries = 0;
	CK_RV rv = CKR_OK;

	for (attempt = 0; attempt < OPEN_ATTEMPTS; attempt++) {
		if ((rv = acquire(t, &s, &generation)) != CKR_OK) {
			if (p11pki_ck_recoverable(rv) && recoveries++ == 0)
				continue;
			break;
		}
		rv = fn(t, s, arg);
		if (rv == CKR_OK) {
			release(t, s, generation, 0);
			return P11PKI_OK;
		}
		if (p11pki_ck_recoverable(rv) && recoveries++ == 0) {
			release(t, s, generation, 1);
			recover(t, rv, generation);
			continue;
		}
		release(t, s, generation, 0);
		if (rv != CKR_GENERAL_ERROR)
			break;
		p11pki_sleep_ms(5u << attempt);
	}
	return p11pki_ck_fail(rv, p11pki_ck_last_call(), t->label, "%s%s", what ? ", " : "", what ? what : "");
}
