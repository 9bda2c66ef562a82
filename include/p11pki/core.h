/* p11pki core: status codes, the thread-local error message, logging and
 * secure memory for secrets (PINs). Every other layer builds on these. */
#ifndef P11PKI_CORE_H
#define P11PKI_CORE_H

#include <stdarg.h>
#include <stddef.h>

#if defined(__GNUC__)
#define P11PKI_API __attribute__((visibility("default")))
#define P11PKI_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define P11PKI_API
#define P11PKI_PRINTF(f, a)
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes: 0 is success, failures are negative and stable. */
enum {
	P11PKI_OK = 0,
	P11PKI_E_ARG = -1,	   /* bad argument or input from the user */
	P11PKI_E_NOMEM = -2,	   /* out of memory */
	P11PKI_E_TOKEN = -3,	   /* a PKCS#11 call failed */
	P11PKI_E_NOTFOUND = -4,	   /* token, slot or object not found */
	P11PKI_E_PIN = -5,	   /* PIN missing, unreadable or incorrect */
	P11PKI_E_IO = -6,	   /* file or system error */
	P11PKI_E_CRYPTO = -7,	   /* OpenSSL failure */
	P11PKI_E_UNSUPPORTED = -8, /* the token or build cannot do this */
	P11PKI_E_EXISTS = -9,	   /* object already exists */
	P11PKI_E_POLICY = -10,	   /* refused by policy (weak key, ...) */
	P11PKI_E_MODULE = -11,	   /* PKCS#11 module cannot be loaded */
};

/* A short fixed description of a status code ("PKCS#11 call failed"). */
P11PKI_API const char *p11pki_strerror(int code);

/* The one-sentence detail of the last failure on this thread, for
 * example "C_Login on token 'web': CKR_PIN_INCORRECT". Never NULL. */
P11PKI_API const char *p11pki_errmsg(void);

/* Records a failure message for this thread and returns code, so callers
 * write `return p11pki_fail(P11PKI_E_ARG, "...", ...);`. */
P11PKI_API int p11pki_fail(int code, const char *fmt, ...) P11PKI_PRINTF(2, 3);

/* Clears the message (a success leaves the previous one otherwise). */
P11PKI_API void p11pki_error_clear(void);

/* Logging. The library never prints: messages go to the handler the
 * application installs (none by default). Debug messages are produced
 * only when P11PKI_DEBUG is set in the environment. */
enum { P11PKI_LOG_ERROR, P11PKI_LOG_WARN, P11PKI_LOG_INFO, P11PKI_LOG_DEBUG };
typedef void (*p11pki_log_fn)(int level, const char *msg, void *arg);
P11PKI_API void p11pki_log_set_handler(p11pki_log_fn fn, void *arg);
P11PKI_API void p11pki_log(int level, const char *fmt, ...) P11PKI_PRINTF(2, 3);
P11PKI_API int p11pki_log_debug_enabled(void);

/* A secret (PIN) in locked, non-dumpable memory, zeroed when freed.
 * `data` is NUL-terminated; `len` excludes the NUL. */
typedef struct p11pki_secret {
	char *data;
	size_t len;
	size_t cap;
} p11pki_secret;

/* Allocates an empty secret able to hold cap-1 bytes. Caller frees with
 * p11pki_secret_free(). */
P11PKI_API int p11pki_secret_new(size_t cap, p11pki_secret **out);
/* Copies len bytes into a new secret. */
P11PKI_API int p11pki_secret_from(const char *data, size_t len, p11pki_secret **out);
/* Zeroes, unlocks and frees; NULL is fine. */
P11PKI_API void p11pki_secret_free(p11pki_secret *s);

/* Keeps this process from writing core dumps (secrets live in memory). */
P11PKI_API void p11pki_no_core_dumps(void);

#ifdef __cplusplus
}
#endif
#endif
