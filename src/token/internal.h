/* Private to the token layer: module and token structures, the one
 * wrapper every C_* call goes through, and the session pool. */
#ifndef P11PKI_TOKEN_INTERNAL_H
#define P11PKI_TOKEN_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <p11-kit/pkcs11.h>
#include <libp11.h>

#include <p11pki/token.h>

#ifdef UNITTEST
#define STATIC_UNLESS_TEST
#else
#define STATIC_UNLESS_TEST static
#endif

struct p11pki_module {
	char *path;
	PKCS11_CTX *ctx;	/* libp11: owns C_Initialize / C_Finalize */
	void *dl;		/* our reference to the same loaded module */
	CK_FUNCTION_LIST *f;	/* for the calls libp11 0.4.12 lacks */
	pthread_mutex_t lock;	/* serialises libp11 slot enumeration */
	unsigned tokens_open;	/* p11pki_token objects using the module */
	char *write_lock;	/* lock file serialising writers, or NULL */
};

/* SoftHSM2's file store loses attributes when several processes write
 * one token at once: p11pki processes take turns through a lock file next
 * to SOFTHSM2_CONF (see tokens/softhsm2.profile). Returns an fd to pass to
 * p11pki_module_write_end, or -1 when the module needs no lock. */
int p11pki_module_write_begin(p11pki_module *m);
void p11pki_module_write_end(int fd);
/* The shared side of the same lock, for reading the token's state
 * (initialisation, slot lists, opening sessions); a no-op while this
 * thread writes. */
int p11pki_module_read_begin(p11pki_module *m);

/* Finalises and initialises the module again so that it re-reads its
 * tokens (SoftHSM2 keeps what it read at C_Initialize, even a token file
 * another process was half-way through writing). Only while no token is
 * open; returns 0 when it reloaded. */
int p11pki_module_reinit(p11pki_module *m);

struct p11pki_token {
	p11pki_module *m;
	CK_SLOT_ID slot;
	char label[33], serial[17];	/* identify it again after removal */
	p11pki_secret *pin;		/* kept to log in again on recovery */
	int logged_in;
	pthread_mutex_t open_lock;	/* guards slot, pin, logged_in: opening */
	pthread_mutex_t lock;		/* guards the pool below */
	pthread_cond_t idle_cond;
	CK_SESSION_HANDLE *idle;	/* sessions ready for use */
	unsigned n_idle, n_open, max_open;
	unsigned generation;		/* bumped when all sessions are dropped */
	pthread_mutex_t copy_lock;	/* guards the holder below */
	CK_SESSION_HANDLE holder;	/* owns the session copies of keys */
	unsigned holder_generation;
	int has_holder;
	atomic_int session_keys;	/* p11pki_token_use_session_keys */
	atomic_uint sign_wait_us;	/* recent signatures (moving averages): time */
	atomic_uint sign_cpu_us;	/* waited on the token, time computed here */
};

/* Every C_* call goes through P11_CALL: it logs the call and its result
 * (P11PKI_DEBUG=1) and remembers the name of the last call that failed on
 * this thread, so errors can say "C_Sign ...: CKR_...". */
#define P11_CALL(mod, fn, ...) p11pki_ck_note(#fn, (mod)->f->fn(__VA_ARGS__))
CK_RV p11pki_ck_note(const char *call, CK_RV rv);
const char *p11pki_ck_last_call(void);
const char *p11pki_ckr_name(CK_RV rv);

/* Records "<call> on token '<label>'<detail>: <CKR name>" and returns the
 * matching status code (P11PKI_E_PIN for PIN errors, else E_TOKEN). */
int p11pki_ck_fail(CK_RV rv, const char *call, const char *token_label,
		   const char *detail_fmt, ...) P11PKI_PRINTF(4, 5);

/* True for the codes after which reopening the session (and logging in
 * again) may succeed. */
int p11pki_ck_recoverable(CK_RV rv);

/* Runs fn on a pooled, logged-in session. A recoverable failure reopens
 * sessions, logs in again and retries once; CKR_GENERAL_ERROR (SoftHSM2's
 * answer to concurrent opens) is retried with backoff. On failure the
 * message names the call, the token, `what` and the CKR code. */
/* Copies token object h into a session object (CKA_TOKEN false) owned by
 * a session of the token's that the pool never hands out or closes. */
CK_RV p11pki_token_session_copy(p11pki_token *t, CK_OBJECT_HANDLE h, CK_OBJECT_HANDLE *copy,
				 CK_SESSION_HANDLE *holder);
/* Destroys a copy, unless its holder session is gone (and the copy with it). */
void p11pki_token_session_destroy(p11pki_token *t, CK_SESSION_HANDLE holder, CK_OBJECT_HANDLE copy);

typedef CK_RV (*p11pki_session_fn)(p11pki_token *t, CK_SESSION_HANDLE s, void *arg);
int p11pki_token_run(p11pki_token *t, const char *what, p11pki_session_fn fn, void *arg);

/* Runs fn(arg) on a signing thread when called inside an OpenSSL ASYNC
 * job and signing threads run (the job pauses meanwhile), else directly.
 * Returns fn's status; a failure's message is carried back. */
int p11pki_async_run(p11pki_token *t, int (*fn)(void *arg), void *arg);

/* Finds up to max objects matching a template. */
CK_RV p11pki_find(p11pki_token *t, CK_SESSION_HANDLE s, CK_ATTRIBUTE *tmpl,
		  CK_ULONG n, CK_OBJECT_HANDLE *found, CK_ULONG max, CK_ULONG *count);
/* Reads one attribute into a new buffer (caller frees). */
CK_RV p11pki_attr_get(p11pki_token *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
		      CK_ATTRIBUTE_TYPE type, unsigned char **val, CK_ULONG *len);
/* Reads a CK_BBOOL attribute: 1, 0, or -1 when the token did not say. */
int p11pki_attr_bool(p11pki_token *t, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
		     CK_ATTRIBUTE_TYPE type);

/* Builds the search template (class, label, id) of a URI selection. */
CK_ULONG p11pki_uri_template(const struct p11pki_uri *sel, CK_OBJECT_CLASS *cls,
			     CK_ATTRIBUTE *tmpl, CK_ULONG max);

/* Finds the one initialised token the selection matches (NULL: any);
 * found->uri is left NULL. */
int p11pki_slot_find(p11pki_module *m, const struct p11pki_uri *sel,
		     struct p11pki_token_info *found);

/* Selects exactly one key pair by the URI's object=/id=; the caller frees
 * one->label and one->uri. */
int p11pki_key_select(p11pki_token *t, const struct p11pki_uri *sel, struct p11pki_key_info *one);

/* Copies a space-padded PKCS#11 field into a NUL-terminated string. */
void p11pki_unpad(char *dst, size_t dst_size, const unsigned char *src, size_t src_len);

/* Sleeps for ms milliseconds (backoff between retries). */
void p11pki_sleep_ms(unsigned ms);

/* The token's URI: token, manufacturer, serial, model; caller frees. */
int p11pki_token_uri(const p11pki_token *t, const char *object,
		     const unsigned char *id, size_t id_len, char **out);

#endif
