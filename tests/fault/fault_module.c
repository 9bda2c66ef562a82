/* p11fault: a PKCS#11 module for tests. It forwards every call to a real
 * module (SoftHSM2 by default) and, as a control file says, fails chosen
 * calls, adds latency, or simulates a removed token. See README.md. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#define DEFAULT_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define EXPORT __attribute__((visibility("default")))

/* What the removal simulation looks at in a call's first argument. */
enum kind { K_NONE, K_SLOT, K_SESSION };

/* The functions that need more than "intercept, then forward". */
#define SPECIAL_FUNCS(X) \
	X(C_Initialize) X(C_Finalize) X(C_GetInfo) X(C_GetFunctionList) \
	X(C_GetSlotList) X(C_GetSlotInfo) X(C_OpenSession) X(C_CloseSession) \
	X(C_CloseAllSessions)

/* The generated wrappers: X(name, kind, handle, (params), (args), end).
 * `end` runs when a fail rule answered instead of the real module. PKCS#11
 * says an error ends the active operation, so the real module's operation
 * is ended too: a caller that retries must not get CKR_OPERATION_ACTIVE. */
#define NO_END (void)0
#define IO_PARAMS (CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out, \
	CK_ULONG_PTR out_len)
#define IO_ARGS (s, in, in_len, out, out_len)
#define IN_PARAMS (CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len)
#define OUT_PARAMS (CK_SESSION_HANDLE s, CK_BYTE_PTR out, CK_ULONG_PTR out_len)

/* Shapes shared by many functions. */
#define S_ONESHOT(X, n) X(n, K_SESSION, s, IO_PARAMS, IO_ARGS, end_io(c.f->n, s, in, in_len))
#define S_UPDATE_IO(X, n, ending) X(n, K_SESSION, s, IO_PARAMS, IO_ARGS, ending)
#define S_UPDATE(X, n, ending) X(n, K_SESSION, s, IN_PARAMS, (s, in, in_len), ending)
#define S_FINAL(X, n) X(n, K_SESSION, s, OUT_PARAMS, (s, out, out_len), end_final(c.f->n, s))
#define S_INIT(X, n) X(n, K_SESSION, s, (CK_SESSION_HANDLE s, CK_MECHANISM_PTR mech, \
	CK_OBJECT_HANDLE key), (s, mech, key), NO_END)
#define S_SESS(X, n) X(n, K_SESSION, s, (CK_SESSION_HANDLE s), (s), NO_END)
#define S_ATTRS(X, n) X(n, K_SESSION, s, (CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj, \
	CK_ATTRIBUTE_PTR tmpl, CK_ULONG n_attrs), (s, obj, tmpl, n_attrs), NO_END)
#define END_ENCRYPT end_final(c.f->C_EncryptFinal, s)
#define END_DECRYPT end_final(c.f->C_DecryptFinal, s)
#define END_DIGEST end_final(c.f->C_DigestFinal, s)
#define END_SIGN end_final(c.f->C_SignFinal, s)
#define END_VERIFY end_verify(c.f->C_VerifyFinal, s)

#define FORWARDED_FUNCS(X) \
	X(C_GetTokenInfo, K_SLOT, slot, (CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info), (slot, info), \
		NO_END) \
	X(C_GetMechanismList, K_SLOT, slot, (CK_SLOT_ID slot, CK_MECHANISM_TYPE_PTR list, \
		CK_ULONG_PTR count), (slot, list, count), NO_END) \
	X(C_GetMechanismInfo, K_SLOT, slot, (CK_SLOT_ID slot, CK_MECHANISM_TYPE type, \
		CK_MECHANISM_INFO_PTR info), (slot, type, info), NO_END) \
	X(C_InitToken, K_SLOT, slot, (CK_SLOT_ID slot, CK_UTF8CHAR_PTR pin, CK_ULONG pin_len, \
		CK_UTF8CHAR_PTR label), (slot, pin, pin_len, label), NO_END) \
	X(C_WaitForSlotEvent, K_NONE, 0, (CK_FLAGS flags, CK_SLOT_ID_PTR slot, CK_VOID_PTR rsv), \
		(flags, slot, rsv), NO_END) \
	X(C_InitPIN, K_SESSION, s, (CK_SESSION_HANDLE s, CK_UTF8CHAR_PTR pin, CK_ULONG pin_len), \
		(s, pin, pin_len), NO_END) \
	X(C_SetPIN, K_SESSION, s, (CK_SESSION_HANDLE s, CK_UTF8CHAR_PTR old_pin, CK_ULONG old_len, \
		CK_UTF8CHAR_PTR new_pin, CK_ULONG new_len), (s, old_pin, old_len, new_pin, new_len), \
		NO_END) \
	X(C_GetSessionInfo, K_SESSION, s, (CK_SESSION_HANDLE s, CK_SESSION_INFO_PTR info), \
		(s, info), NO_END) \
	X(C_GetOperationState, K_SESSION, s, OUT_PARAMS, (s, out, out_len), NO_END) \
	X(C_SetOperationState, K_SESSION, s, (CK_SESSION_HANDLE s, CK_BYTE_PTR state, \
		CK_ULONG state_len, CK_OBJECT_HANDLE enc_key, CK_OBJECT_HANDLE auth_key), \
		(s, state, state_len, enc_key, auth_key), NO_END) \
	X(C_Login, K_SESSION, s, (CK_SESSION_HANDLE s, CK_USER_TYPE user, CK_UTF8CHAR_PTR pin, \
		CK_ULONG pin_len), (s, user, pin, pin_len), NO_END) \
	S_SESS(X, C_Logout) \
	X(C_CreateObject, K_SESSION, s, (CK_SESSION_HANDLE s, CK_ATTRIBUTE_PTR tmpl, \
		CK_ULONG n_attrs, CK_OBJECT_HANDLE_PTR obj), (s, tmpl, n_attrs, obj), NO_END) \
	X(C_CopyObject, K_SESSION, s, (CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj, \
		CK_ATTRIBUTE_PTR tmpl, CK_ULONG n_attrs, CK_OBJECT_HANDLE_PTR new_obj), \
		(s, obj, tmpl, n_attrs, new_obj), NO_END) \
	X(C_DestroyObject, K_SESSION, s, (CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj), (s, obj), \
		NO_END) \
	X(C_GetObjectSize, K_SESSION, s, (CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj, \
		CK_ULONG_PTR size), (s, obj, size), NO_END) \
	S_ATTRS(X, C_GetAttributeValue) \
	S_ATTRS(X, C_SetAttributeValue) \
	X(C_FindObjectsInit, K_SESSION, s, (CK_SESSION_HANDLE s, CK_ATTRIBUTE_PTR tmpl, \
		CK_ULONG n_attrs), (s, tmpl, n_attrs), NO_END) \
	X(C_FindObjects, K_SESSION, s, (CK_SESSION_HANDLE s, CK_OBJECT_HANDLE_PTR objs, \
		CK_ULONG max, CK_ULONG_PTR n_objs), (s, objs, max, n_objs), NO_END) \
	X(C_FindObjectsFinal, K_SESSION, s, (CK_SESSION_HANDLE s), (s), \
		(void)c.f->C_FindObjectsFinal(s)) \
	S_INIT(X, C_EncryptInit) S_ONESHOT(X, C_Encrypt) \
	S_UPDATE_IO(X, C_EncryptUpdate, END_ENCRYPT) S_FINAL(X, C_EncryptFinal) \
	S_INIT(X, C_DecryptInit) S_ONESHOT(X, C_Decrypt) \
	S_UPDATE_IO(X, C_DecryptUpdate, END_DECRYPT) S_FINAL(X, C_DecryptFinal) \
	X(C_DigestInit, K_SESSION, s, (CK_SESSION_HANDLE s, CK_MECHANISM_PTR mech), (s, mech), \
		NO_END) \
	S_ONESHOT(X, C_Digest) S_UPDATE(X, C_DigestUpdate, END_DIGEST) \
	X(C_DigestKey, K_SESSION, s, (CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key), (s, key), \
		END_DIGEST) \
	S_FINAL(X, C_DigestFinal) \
	S_INIT(X, C_SignInit) S_ONESHOT(X, C_Sign) S_UPDATE(X, C_SignUpdate, END_SIGN) \
	S_FINAL(X, C_SignFinal) S_INIT(X, C_SignRecoverInit) S_ONESHOT(X, C_SignRecover) \
	S_INIT(X, C_VerifyInit) \
	X(C_Verify, K_SESSION, s, (CK_SESSION_HANDLE s, CK_BYTE_PTR data, CK_ULONG data_len, \
		CK_BYTE_PTR sig, CK_ULONG sig_len), (s, data, data_len, sig, sig_len), \
		(void)c.f->C_Verify(s, data, data_len, sig, sig_len)) \
	S_UPDATE(X, C_VerifyUpdate, END_VERIFY) \
	X(C_VerifyFinal, K_SESSION, s, (CK_SESSION_HANDLE s, CK_BYTE_PTR sig, CK_ULONG sig_len), \
		(s, sig, sig_len), (void)c.f->C_VerifyFinal(s, sig, sig_len)) \
	S_INIT(X, C_VerifyRecoverInit) S_ONESHOT(X, C_VerifyRecover) \
	S_UPDATE_IO(X, C_DigestEncryptUpdate, (END_DIGEST, END_ENCRYPT)) \
	S_UPDATE_IO(X, C_DecryptDigestUpdate, (END_DECRYPT, END_DIGEST)) \
	S_UPDATE_IO(X, C_SignEncryptUpdate, (END_SIGN, END_ENCRYPT)) \
	S_UPDATE_IO(X, C_DecryptVerifyUpdate, (END_DECRYPT, END_VERIFY)) \
	X(C_GenerateKey, K_SESSION, s, (CK_SESSION_HANDLE s, CK_MECHANISM_PTR mech, \
		CK_ATTRIBUTE_PTR tmpl, CK_ULONG n_attrs, CK_OBJECT_HANDLE_PTR key), \
		(s, mech, tmpl, n_attrs, key), NO_END) \
	X(C_GenerateKeyPair, K_SESSION, s, (CK_SESSION_HANDLE s, CK_MECHANISM_PTR mech, \
		CK_ATTRIBUTE_PTR pub_tmpl, CK_ULONG n_pub, CK_ATTRIBUTE_PTR priv_tmpl, \
		CK_ULONG n_priv, CK_OBJECT_HANDLE_PTR pub, CK_OBJECT_HANDLE_PTR priv), \
		(s, mech, pub_tmpl, n_pub, priv_tmpl, n_priv, pub, priv), NO_END) \
	X(C_WrapKey, K_SESSION, s, (CK_SESSION_HANDLE s, CK_MECHANISM_PTR mech, \
		CK_OBJECT_HANDLE wrapping_key, CK_OBJECT_HANDLE key, CK_BYTE_PTR out, \
		CK_ULONG_PTR out_len), (s, mech, wrapping_key, key, out, out_len), NO_END) \
	X(C_UnwrapKey, K_SESSION, s, (CK_SESSION_HANDLE s, CK_MECHANISM_PTR mech, \
		CK_OBJECT_HANDLE unwrapping_key, CK_BYTE_PTR in, CK_ULONG in_len, \
		CK_ATTRIBUTE_PTR tmpl, CK_ULONG n_attrs, CK_OBJECT_HANDLE_PTR key), \
		(s, mech, unwrapping_key, in, in_len, tmpl, n_attrs, key), NO_END) \
	X(C_DeriveKey, K_SESSION, s, (CK_SESSION_HANDLE s, CK_MECHANISM_PTR mech, \
		CK_OBJECT_HANDLE base_key, CK_ATTRIBUTE_PTR tmpl, CK_ULONG n_attrs, \
		CK_OBJECT_HANDLE_PTR key), (s, mech, base_key, tmpl, n_attrs, key), NO_END) \
	X(C_SeedRandom, K_SESSION, s, IN_PARAMS, (s, in, in_len), NO_END) \
	X(C_GenerateRandom, K_SESSION, s, (CK_SESSION_HANDLE s, CK_BYTE_PTR out, CK_ULONG out_len), \
		(s, out, out_len), NO_END) \
	S_SESS(X, C_GetFunctionStatus) S_SESS(X, C_CancelFunction)

#define ENUM_SPECIAL(name) FN_##name,
#define ENUM_FORWARDED(name, kind, handle, params, args, end) FN_##name,
enum fn_id { SPECIAL_FUNCS(ENUM_SPECIAL) FORWARDED_FUNCS(ENUM_FORWARDED) FN_COUNT };
_Static_assert(FN_COUNT == 68, "a PKCS#11 2.40 function list has 68 functions");

#define NAME_SPECIAL(name) [FN_##name] = #name,
#define NAME_FORWARDED(name, kind, handle, params, args, end) [FN_##name] = #name,
static const char *const fn_names[FN_COUNT] = {
	SPECIAL_FUNCS(NAME_SPECIAL) FORWARDED_FUNCS(NAME_FORWARDED)
};

#define CKR_NAMES(X) \
	X(CKR_OK) X(CKR_CANCEL) X(CKR_HOST_MEMORY) X(CKR_SLOT_ID_INVALID) X(CKR_GENERAL_ERROR) \
	X(CKR_FUNCTION_FAILED) X(CKR_ARGUMENTS_BAD) X(CKR_NO_EVENT) X(CKR_NEED_TO_CREATE_THREADS) \
	X(CKR_CANT_LOCK) X(CKR_ATTRIBUTE_READ_ONLY) X(CKR_ATTRIBUTE_SENSITIVE) \
	X(CKR_ATTRIBUTE_TYPE_INVALID) X(CKR_ATTRIBUTE_VALUE_INVALID) X(CKR_ACTION_PROHIBITED) \
	X(CKR_DATA_INVALID) X(CKR_DATA_LEN_RANGE) X(CKR_DEVICE_ERROR) X(CKR_DEVICE_MEMORY) \
	X(CKR_DEVICE_REMOVED) X(CKR_ENCRYPTED_DATA_INVALID) X(CKR_ENCRYPTED_DATA_LEN_RANGE) \
	X(CKR_FUNCTION_CANCELED) X(CKR_FUNCTION_NOT_PARALLEL) X(CKR_FUNCTION_NOT_SUPPORTED) \
	X(CKR_KEY_HANDLE_INVALID) X(CKR_KEY_SIZE_RANGE) X(CKR_KEY_TYPE_INCONSISTENT) \
	X(CKR_KEY_NOT_NEEDED) X(CKR_KEY_CHANGED) X(CKR_KEY_NEEDED) X(CKR_KEY_INDIGESTIBLE) \
	X(CKR_KEY_FUNCTION_NOT_PERMITTED) X(CKR_KEY_NOT_WRAPPABLE) X(CKR_KEY_UNEXTRACTABLE) \
	X(CKR_MECHANISM_INVALID) X(CKR_MECHANISM_PARAM_INVALID) X(CKR_OBJECT_HANDLE_INVALID) \
	X(CKR_OPERATION_ACTIVE) X(CKR_OPERATION_NOT_INITIALIZED) X(CKR_PIN_INCORRECT) \
	X(CKR_PIN_INVALID) X(CKR_PIN_LEN_RANGE) X(CKR_PIN_EXPIRED) X(CKR_PIN_LOCKED) \
	X(CKR_SESSION_CLOSED) X(CKR_SESSION_COUNT) X(CKR_SESSION_HANDLE_INVALID) \
	X(CKR_SESSION_PARALLEL_NOT_SUPPORTED) X(CKR_SESSION_READ_ONLY) X(CKR_SESSION_EXISTS) \
	X(CKR_SESSION_READ_ONLY_EXISTS) X(CKR_SESSION_READ_WRITE_SO_EXISTS) \
	X(CKR_SIGNATURE_INVALID) X(CKR_SIGNATURE_LEN_RANGE) X(CKR_TEMPLATE_INCOMPLETE) \
	X(CKR_TEMPLATE_INCONSISTENT) X(CKR_TOKEN_NOT_PRESENT) X(CKR_TOKEN_NOT_RECOGNIZED) \
	X(CKR_TOKEN_WRITE_PROTECTED) X(CKR_UNWRAPPING_KEY_HANDLE_INVALID) \
	X(CKR_UNWRAPPING_KEY_SIZE_RANGE) X(CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT) \
	X(CKR_USER_ALREADY_LOGGED_IN) X(CKR_USER_NOT_LOGGED_IN) X(CKR_USER_PIN_NOT_INITIALIZED) \
	X(CKR_USER_TYPE_INVALID) X(CKR_USER_ANOTHER_ALREADY_LOGGED_IN) X(CKR_USER_TOO_MANY_TYPES) \
	X(CKR_WRAPPED_KEY_INVALID) X(CKR_WRAPPED_KEY_LEN_RANGE) \
	X(CKR_WRAPPING_KEY_HANDLE_INVALID) X(CKR_WRAPPING_KEY_SIZE_RANGE) \
	X(CKR_WRAPPING_KEY_TYPE_INCONSISTENT) X(CKR_RANDOM_SEED_NOT_SUPPORTED) \
	X(CKR_RANDOM_NO_RNG) X(CKR_DOMAIN_PARAMS_INVALID) X(CKR_CURVE_NOT_SUPPORTED) \
	X(CKR_BUFFER_TOO_SMALL) X(CKR_SAVED_STATE_INVALID) X(CKR_INFORMATION_SENSITIVE) \
	X(CKR_STATE_UNSAVEABLE) X(CKR_CRYPTOKI_NOT_INITIALIZED) \
	X(CKR_CRYPTOKI_ALREADY_INITIALIZED) X(CKR_MUTEX_BAD) X(CKR_MUTEX_NOT_LOCKED) \
	X(CKR_NEW_PIN_MODE) X(CKR_NEXT_OTP) X(CKR_EXCEEDED_MAX_ITERATIONS) \
	X(CKR_FIPS_SELF_TEST_FAILED) X(CKR_LIBRARY_LOAD_FAILED) X(CKR_PIN_TOO_WEAK) \
	X(CKR_PUBLIC_KEY_INVALID) X(CKR_FUNCTION_REJECTED)

#define CKR_ENTRY(code) { #code, code },
static const struct { const char *name; CK_RV rv; } ckr_names[] = { CKR_NAMES(CKR_ENTRY) };

enum rule_kind { R_FAIL, R_LATENCY, R_REMOVE };

struct rule {
	enum rule_kind kind;
	enum fn_id fn;
	CK_RV rv;                /* fail */
	unsigned long count;     /* fail: 0 = every call */
	unsigned long after;     /* fail: matching calls to let through first */
	unsigned long ms;        /* latency */
	uint64_t local_seen;     /* fallback when the shared state file is unusable */
};

/* Identity of the control file: any change means "re-read it". */
struct file_id {
	bool exists;
	uint64_t v[7]; /* dev, ino, size, mtime s/ns, ctime s/ns */
};

struct session {
	CK_SESSION_HANDLE h;
	CK_SLOT_ID slot;
	bool dead; /* open when the token was removed: invalid forever */
};

static struct {
	pthread_mutex_t lock;
	bool loaded, load_failed;
	CK_FUNCTION_LIST_PTR real;
	bool real_initialized;
	const char *config_path; /* NULL: no control file */
	struct file_id config_id;
	bool config_read;
	struct rule *rules;
	size_t n_rules;
	bool removed;
	bool state_warned;
	struct session *sessions;
	size_t n_sessions, cap_sessions;
	unsigned long calls[FN_COUNT];
	bool stats_dirty;
} g = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* What one call learns from intercept(). */
struct call {
	enum fn_id fn;
	enum kind kind;
	CK_ULONG handle;          /* slot or session, by kind */
	CK_FUNCTION_LIST_PTR f;   /* the real module */
	bool removed;             /* token simulated absent */
	bool faked;               /* a fail rule answered */
};

/* ---------------------------------------------------------------- parsing */

static int fn_lookup(const char *name)
{
	for (int i = 0; i < FN_COUNT; i++)
		if (strcmp(fn_names[i], name) == 0)
			return i;
	return -1;
}

static bool parse_ulong(const char *s, int base, unsigned long *out)
{
	char *end;

	if (*s == '\0' || *s == '-' || *s == '+')
		return false;
	errno = 0;
	*out = strtoul(s, &end, base);
	return errno == 0 && *end == '\0';
}

static bool parse_ckr(const char *s, CK_RV *rv)
{
	unsigned long v;

	if (strncmp(s, "0x", 2) == 0 || strncmp(s, "0X", 2) == 0) {
		if (!parse_ulong(s + 2, 16, &v))
			return false;
		*rv = v;
		return true;
	}
	for (size_t i = 0; i < sizeof(ckr_names) / sizeof(ckr_names[0]); i++) {
		if (strcmp(ckr_names[i].name, s) == 0) {
			*rv = ckr_names[i].rv;
			return true;
		}
	}
	return false;
}

/* "count=N" / "after=M" options of a fail rule; NULL or a problem. */
static const char *parse_fail_option(const char *opt, struct rule *r)
{
	unsigned long v;

	if (strncmp(opt, "count=", 6) == 0) {
		if (!parse_ulong(opt + 6, 10, &v) || v == 0)
			return "count= needs a number >= 1";
		r->count = v;
	} else if (strncmp(opt, "after=", 6) == 0) {
		if (!parse_ulong(opt + 6, 10, &v))
			return "after= needs a number >= 0";
		r->after = v;
	} else {
		return "unknown option (expected count=N or after=M)";
	}
	return NULL;
}

/* One line's words into a rule. Returns NULL, or a problem to report. */
static const char *parse_rule(char **w, int n, struct rule *r, char *buf, size_t len)
{
	int fn;

	memset(r, 0, sizeof(*r));
	if (strcmp(w[0], "remove") == 0) {
		r->kind = R_REMOVE;
		return n == 1 ? NULL : "'remove' takes no arguments";
	}
	if (strcmp(w[0], "fail") != 0 && strcmp(w[0], "latency") != 0) {
		snprintf(buf, len, "unknown directive '%s' (expected fail, latency or remove)", w[0]);
		return buf;
	}
	if (n < 3)
		return strcmp(w[0], "fail") == 0 ? "usage: fail C_Function CKR_CODE [count=N] [after=M]"
						  : "usage: latency C_Function MILLISECONDS";
	if ((fn = fn_lookup(w[1])) < 0) {
		snprintf(buf, len, "unknown function '%s'", w[1]);
		return buf;
	}
	r->fn = (enum fn_id)fn;
	if (strcmp(w[0], "latency") == 0) {
		r->kind = R_LATENCY;
		if (n != 3)
			return "usage: latency C_Function MILLISECONDS";
		if (!parse_ulong(w[2], 10, &r->ms) || r->ms > 3600000)
			return "latency needs milliseconds (0..3600000)";
		return NULL;
	}
	r->kind = R_FAIL;
	if (!parse_ckr(w[2], &r->rv)) {
		snprintf(buf, len, "unknown return code '%s' (use a CKR_ name or 0xHEX)", w[2]);
		return buf;
	}
	for (int i = 3; i < n; i++) {
		const char *problem = parse_fail_option(w[i], r);
		if (problem != NULL)
			return problem;
	}
	return NULL;
}

/* Splits a line into at most max words; '#' starts a comment. */
static int split_words(char *line, char **w, int max)
{
	char *save = NULL, *tok;
	int n = 0;

	line[strcspn(line, "#")] = '\0';
	for (tok = strtok_r(line, " \t\r\n", &save); tok != NULL; tok = strtok_r(NULL, " \t\r\n", &save)) {
		if (n == max)
			return max + 1;
		w[n++] = tok;
	}
	return n;
}

static bool add_rule(const struct rule *r)
{
	struct rule *more = realloc(g.rules, (g.n_rules + 1) * sizeof(*more));

	if (more == NULL)
		return false;
	g.rules = more;
	g.rules[g.n_rules++] = *r;
	return true;
}

static void parse_control(FILE *f)
{
	char line[1024], buf[160], *w[8];
	unsigned lineno = 0;
	struct rule r;

	while (fgets(line, sizeof(line), f) != NULL) {
		const char *problem = NULL;
		int n;

		lineno++;
		if (strchr(line, '\n') == NULL && !feof(f)) {
			int c;
			while ((c = fgetc(f)) != EOF && c != '\n')
				;
			problem = "line too long";
		} else if ((n = split_words(line, w, 8)) == 0) {
			continue;
		} else if (n > 8) {
			problem = "too many words";
		} else if ((problem = parse_rule(w, n, &r, buf, sizeof(buf))) == NULL && !add_rule(&r)) {
			problem = "out of memory";
		}
		if (problem != NULL)
			fprintf(stderr, "p11fault: %s:%u: %s\n", g.config_path, lineno, problem);
	}
}

/* ------------------------------------------------------------ control file */

static void id_of(const struct stat *st, struct file_id *id)
{
	id->exists = true;
	id->v[0] = (uint64_t)st->st_dev;
	id->v[1] = (uint64_t)st->st_ino;
	id->v[2] = (uint64_t)st->st_size;
	id->v[3] = (uint64_t)st->st_mtim.tv_sec;
	id->v[4] = (uint64_t)st->st_mtim.tv_nsec;
	id->v[5] = (uint64_t)st->st_ctim.tv_sec;
	id->v[6] = (uint64_t)st->st_ctim.tv_nsec;
}

static bool same_id(const struct file_id *a, const struct file_id *b)
{
	return a->exists == b->exists && memcmp(a->v, b->v, sizeof(a->v)) == 0;
}

static bool has_remove_rule(void)
{
	for (size_t i = 0; i < g.n_rules; i++)
		if (g.rules[i].kind == R_REMOVE)
			return true;
	return false;
}

static void mark_sessions_dead(void)
{
	for (size_t i = 0; i < g.n_sessions; i++)
		g.sessions[i].dead = true;
}

/* A re-inserted token has forgotten its login, so log the real one out.
 * Done with the lock held so that no call slips in before the logout. */
static void logout_slot(CK_SLOT_ID slot)
{
	CK_SESSION_HANDLE h;

	if (g.real->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &h) != CKR_OK)
		return;
	(void)g.real->C_Logout(h);
	(void)g.real->C_CloseSession(h);
}

static void token_returned(void)
{
	CK_SLOT_ID *slots;
	CK_ULONG n = 0;

	if (!g.real_initialized || g.real->C_GetSlotList(CK_TRUE, NULL, &n) != CKR_OK || n == 0)
		return;
	if ((slots = calloc(n, sizeof(*slots))) == NULL)
		return;
	if (g.real->C_GetSlotList(CK_TRUE, slots, &n) == CKR_OK)
		for (CK_ULONG i = 0; i < n; i++)
			logout_slot(slots[i]);
	free(slots);
}

/* Re-reads the control file if it changed; called with the lock held. */
static void reload_control(void)
{
	struct file_id id = { .exists = false };
	struct stat st;
	FILE *f = NULL;
	bool was_removed = g.removed;

	if (g.config_path == NULL)
		return;
	if (stat(g.config_path, &st) == 0)
		id_of(&st, &id);
	if (g.config_read && same_id(&id, &g.config_id))
		return;
	/* fstat the opened file: the identity must describe what we read. */
	if (id.exists && (f = fopen(g.config_path, "re")) != NULL && fstat(fileno(f), &st) == 0)
		id_of(&st, &id);
	else if (id.exists && f == NULL && errno != ENOENT)
		fprintf(stderr, "p11fault: %s: %s\n", g.config_path, strerror(errno));
	g.config_read = true;
	g.config_id = id;
	g.n_rules = 0;
	g.state_warned = false;
	if (f != NULL) {
		parse_control(f);
		fclose(f);
	}
	g.removed = has_remove_rule();
	if (g.removed && !was_removed)
		mark_sessions_dead();
	else if (!g.removed && was_removed)
		token_returned();
}

/* ------------------------------------------------------ shared fail counts */

/* The number of calls a counted rule has seen lives in <control>.state,
 * shared by all processes, so "count=1" fails one call in total, not one
 * per process. The header names the control file version it counts for. */
#define STATE_MAGIC UINT64_C(0x70313166736d3031) /* arbitrary */
#define STATE_HEADER (8 * sizeof(uint64_t))

static int state_open(void)
{
	char path[PATH_MAX];
	uint64_t want[8], have[8];
	int fd;

	if (snprintf(path, sizeof(path), "%s.state", g.config_path) >= (int)sizeof(path))
		return -1;
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644)) < 0)
		goto fail;
	if (flock(fd, LOCK_EX) != 0)
		goto fail;
	want[0] = STATE_MAGIC;
	memcpy(&want[1], g.config_id.v, sizeof(g.config_id.v));
	if (pread(fd, have, sizeof(have), 0) == (ssize_t)sizeof(have) && memcmp(have, want, sizeof(want)) == 0)
		return fd;
	/* Another control file version (or none yet): start counting again. */
	if (ftruncate(fd, 0) == 0 && pwrite(fd, want, sizeof(want), 0) == (ssize_t)sizeof(want))
		return fd;
fail:
	if (!g.state_warned)
		fprintf(stderr, "p11fault: %s: %s; counting fail rules per process\n", path, strerror(errno));
	g.state_warned = true;
	if (fd >= 0)
		close(fd);
	return -1;
}

/* Returns how many matching calls rule i saw before this one, and counts
 * this one. *fd: -2 not opened yet, -1 unusable, else the locked state. */
static uint64_t rule_seen_bump(size_t i, int *fd)
{
	off_t off = (off_t)(STATE_HEADER + i * sizeof(uint64_t));
	uint64_t seen = 0, next;

	if (*fd == -2)
		*fd = state_open();
	if (*fd < 0)
		return g.rules[i].local_seen++;
	if (pread(*fd, &seen, sizeof(seen), off) != (ssize_t)sizeof(seen))
		seen = 0;
	next = seen + 1;
	if (pwrite(*fd, &next, sizeof(next), off) != (ssize_t)sizeof(next))
		return g.rules[i].local_seen++;
	return seen;
}

/* The first fail rule that fires for fn wins. */
static bool fail_rule_fires(enum fn_id fn, CK_RV *rv)
{
	bool fired = false;
	int fd = -2;

	for (size_t i = 0; i < g.n_rules && !fired; i++) {
		const struct rule *r = &g.rules[i];

		if (r->kind != R_FAIL || r->fn != fn)
			continue;
		if (r->count != 0 || r->after != 0) {
			uint64_t seen = rule_seen_bump(i, &fd);
			if (seen < r->after || (r->count != 0 && seen - r->after >= r->count))
				continue;
		}
		*rv = r->rv;
		fired = true;
	}
	if (fd >= 0)
		close(fd); /* drops the flock */
	return fired;
}

static unsigned long latency_of(enum fn_id fn)
{
	unsigned long ms = 0;

	for (size_t i = 0; i < g.n_rules; i++) /* the last rule wins */
		if (g.rules[i].kind == R_LATENCY && g.rules[i].fn == fn)
			ms = g.rules[i].ms;
	return ms;
}

/* --------------------------------------------------------------- sessions */

static struct session *session_find(CK_SESSION_HANDLE h)
{
	for (size_t i = 0; i < g.n_sessions; i++)
		if (g.sessions[i].h == h)
			return &g.sessions[i];
	return NULL;
}

static void session_track(CK_SESSION_HANDLE h, CK_SLOT_ID slot)
{
	pthread_mutex_lock(&g.lock);
	if (g.n_sessions == g.cap_sessions) {
		size_t cap = g.cap_sessions ? 2 * g.cap_sessions : 16;
		struct session *more = realloc(g.sessions, cap * sizeof(*more));
		if (more == NULL)
			goto out; /* untracked: it just cannot die on removal */
		g.sessions = more;
		g.cap_sessions = cap;
	}
	/* Opened while a removal was being noticed: dead like the others. */
	g.sessions[g.n_sessions++] = (struct session){ h, slot, g.removed };
out:
	pthread_mutex_unlock(&g.lock);
}

/* Forgets one session (all_of_slot false) or every session of a slot. */
static void session_untrack(CK_SESSION_HANDLE h, CK_SLOT_ID slot, bool all_of_slot)
{
	pthread_mutex_lock(&g.lock);
	for (size_t i = 0; i < g.n_sessions;) {
		bool match = all_of_slot ? g.sessions[i].slot == slot : g.sessions[i].h == h;
		if (match)
			g.sessions[i] = g.sessions[--g.n_sessions];
		else
			i++;
	}
	pthread_mutex_unlock(&g.lock);
}

/* ------------------------------------------------------------------ stats */

/* P11FAULT_STATS, with "%p" replaced by the process id. */
static bool stats_path(char *out, size_t len)
{
	const char *env = getenv("P11FAULT_STATS"), *pid_at;
	int n;

	if (env == NULL || *env == '\0')
		return false;
	if ((pid_at = strstr(env, "%p")) == NULL)
		n = snprintf(out, len, "%s", env);
	else
		n = snprintf(out, len, "%.*s%ld%s", (int)(pid_at - env), env, (long)getpid(), pid_at + 2);
	return n > 0 && (size_t)n < len;
}

/* Writes "C_Name count" lines; replaces the file atomically. Lock held. */
static void write_stats(void)
{
	char path[PATH_MAX], tmp[PATH_MAX + 32];
	FILE *f;

	g.stats_dirty = false;
	if (!stats_path(path, sizeof(path)))
		return;
	snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid());
	if ((f = fopen(tmp, "w")) == NULL) {
		fprintf(stderr, "p11fault: %s: %s\n", tmp, strerror(errno));
		return;
	}
	for (int i = 0; i < FN_COUNT; i++)
		fprintf(f, "%s %lu\n", fn_names[i], g.calls[i]);
	if (fclose(f) != 0 || rename(tmp, path) != 0) {
		fprintf(stderr, "p11fault: %s: %s\n", path, strerror(errno));
		unlink(tmp);
	}
}

/* At exit or dlclose: counts for processes that skip C_Finalize, and
 * frees what would otherwise leak when the caller unloads the module. */
__attribute__((destructor)) static void module_unload(void)
{
	pthread_mutex_lock(&g.lock);
	if (g.stats_dirty)
		write_stats();
	free(g.rules);
	free(g.sessions);
	g.rules = NULL;
	g.sessions = NULL;
	g.n_rules = g.n_sessions = g.cap_sessions = 0;
	pthread_mutex_unlock(&g.lock);
}

/* ----------------------------------------------------------- interception */

EXPORT CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list);

/* Loads the real module once; lock held. */
static bool load_real(void)
{
	const char *path = getenv("P11FAULT_MODULE"), *config = getenv("P11FAULT_CONFIG");
	CK_C_GetFunctionList get_list;
	void *dl;

	if (g.loaded || g.load_failed)
		return g.loaded;
	g.load_failed = true; /* until proven otherwise: report once */
	g.config_path = config != NULL && *config != '\0' ? config : NULL;
	if (path == NULL || *path == '\0')
		path = DEFAULT_MODULE;
	if ((dl = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		fprintf(stderr, "p11fault: cannot load %s: %s\n", path, dlerror());
		return false;
	}
	get_list = (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList");
	if (get_list == NULL || get_list == C_GetFunctionList) {
		fprintf(stderr, "p11fault: %s is not a usable PKCS#11 module\n", path);
		return false;
	}
	if (get_list(&g.real) != CKR_OK || g.real == NULL) {
		fprintf(stderr, "p11fault: C_GetFunctionList of %s failed\n", path);
		return false;
	}
	/* Never dlclosed: calls may still be returning from it. */
	g.loaded = true;
	g.load_failed = false;
	return true;
}

/* The removal simulation's answer for a call, if it has one. */
static bool removal_answers(const struct call *c, CK_RV *rv)
{
	const struct session *s;

	if (c->kind == K_SLOT && g.removed) {
		*rv = CKR_TOKEN_NOT_PRESENT;
		return true;
	}
	if (c->kind != K_SESSION)
		return false;
	if (g.removed) {
		*rv = CKR_DEVICE_REMOVED;
		return true;
	}
	if ((s = session_find(c->handle)) != NULL && s->dead) {
		*rv = CKR_SESSION_HANDLE_INVALID;
		return true;
	}
	return false;
}

/* Counts the call and applies the control file. Returns true when the call
 * must not be forwarded: *rv is then its answer. Sleeps without the lock,
 * so that parallel delayed calls overlap. */
static bool intercept(struct call *c, CK_RV *rv)
{
	unsigned long ms = 0;
	bool answered;

	pthread_mutex_lock(&g.lock);
	g.calls[c->fn]++;
	g.stats_dirty = true;
	if (!load_real()) {
		*rv = CKR_GENERAL_ERROR;
		answered = true;
	} else {
		reload_control();
		c->faked = fail_rule_fires(c->fn, rv);
		answered = c->faked || removal_answers(c, rv);
		ms = answered ? 0 : latency_of(c->fn);
		c->f = g.real;
		c->removed = g.removed;
	}
	pthread_mutex_unlock(&g.lock);
	if (ms != 0) {
		struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
	}
	return answered;
}

/* ------------------------------------------- ending faked operations */

typedef CK_RV (*io_fn)(CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG, CK_BYTE_PTR, CK_ULONG_PTR);
typedef CK_RV (*final_fn)(CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG_PTR);

/* SoftHSM2 keeps an operation active after CKR_ARGUMENTS_BAD, so the only
 * way to end one is to complete it: into a scratch buffer, then wiped. */
static void scratch_free(unsigned char *buf, CK_ULONG len)
{
	explicit_bzero(buf, len);
	free(buf);
}

/* Ends a one-shot operation (C_Sign, C_Decrypt...) by making the call. */
static void end_io(io_fn fn, CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len)
{
	CK_ULONG n = 0, size;
	unsigned char *buf;

	if (fn == NULL || fn(s, in, in_len, NULL, &n) != CKR_OK)
		return; /* that error ended it */
	if ((buf = malloc((size = n) + 1)) == NULL)
		return;
	(void)fn(s, in, in_len, buf, &n);
	scratch_free(buf, size);
}

/* Ends a multi-part operation through its C_*Final. */
static void end_final(final_fn fn, CK_SESSION_HANDLE s)
{
	CK_ULONG n = 0, size;
	unsigned char *buf;

	if (fn == NULL || fn(s, NULL, &n) != CKR_OK)
		return;
	if ((buf = malloc((size = n) + 1)) == NULL)
		return;
	(void)fn(s, buf, &n);
	scratch_free(buf, size);
}

/* Ends a multi-part verification: an empty signature fails and ends it. */
static void end_verify(CK_C_VerifyFinal fn, CK_SESSION_HANDLE s)
{
	unsigned char none = 0;

	if (fn != NULL)
		(void)fn(s, &none, 0);
}

#define CALL(name, kind, handle) { FN_##name, kind, (CK_ULONG)(handle), NULL, false, false }

#define DEFINE_WRAPPER(name, kind, handle, params, args, end) \
	static CK_RV fw_##name params \
	{ \
		struct call c = CALL(name, kind, handle); \
		CK_RV rv; \
		if (intercept(&c, &rv)) { \
			if (c.faked && rv != CKR_BUFFER_TOO_SMALL) \
				end; \
			return rv; \
		} \
		return c.f->name != NULL ? c.f->name args : CKR_FUNCTION_NOT_SUPPORTED; \
	}
FORWARDED_FUNCS(DEFINE_WRAPPER)

/* --------------------------------------------------------- special cases */

static CK_RV fw_C_Initialize(CK_VOID_PTR init_args)
{
	struct call c = CALL(C_Initialize, K_NONE, 0);
	CK_RV rv;

	if (intercept(&c, &rv))
		return rv;
	rv = c.f->C_Initialize(init_args);
	if (rv == CKR_OK) {
		pthread_mutex_lock(&g.lock);
		g.real_initialized = true;
		pthread_mutex_unlock(&g.lock);
	}
	return rv;
}

static CK_RV fw_C_Finalize(CK_VOID_PTR reserved)
{
	struct call c = CALL(C_Finalize, K_NONE, 0);
	CK_RV rv;

	if (intercept(&c, &rv))
		return rv;
	rv = c.f->C_Finalize(reserved);
	pthread_mutex_lock(&g.lock);
	if (rv == CKR_OK) {
		g.real_initialized = false;
		g.n_sessions = 0; /* the real module closed them all */
	}
	write_stats();
	pthread_mutex_unlock(&g.lock);
	return rv;
}

static void pad_copy(unsigned char *dst, size_t len, const char *src)
{
	size_t n = strlen(src);

	memset(dst, ' ', len);
	memcpy(dst, src, n < len ? n : len);
}

/* Forwarded, but visibly the fault module (pkcs11-tool --show-info). */
static CK_RV fw_C_GetInfo(CK_INFO_PTR info)
{
	struct call c = CALL(C_GetInfo, K_NONE, 0);
	char desc[64];
	CK_RV rv;

	if (intercept(&c, &rv))
		return rv;
	if ((rv = c.f->C_GetInfo(info)) != CKR_OK)
		return rv;
	snprintf(desc, sizeof(desc), "p11fault>%.*s", (int)sizeof(info->libraryDescription),
		 (const char *)info->libraryDescription);
	pad_copy(info->libraryDescription, sizeof(info->libraryDescription), desc);
	pad_copy(info->manufacturerID, sizeof(info->manufacturerID), "p11fault");
	return CKR_OK;
}

static CK_FUNCTION_LIST fault_list;

static CK_RV fw_C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list)
{
	struct call c = CALL(C_GetFunctionList, K_NONE, 0);
	CK_RV rv;

	if (intercept(&c, &rv))
		return rv;
	if (list == NULL)
		return CKR_ARGUMENTS_BAD;
	*list = &fault_list;
	return CKR_OK;
}

/* The only exported symbol: the rest is reached through fault_list. */
EXPORT CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list)
{
	return fw_C_GetFunctionList(list);
}

/* With the token removed, no slot has a token. */
static CK_RV fw_C_GetSlotList(CK_BBOOL token_present, CK_SLOT_ID_PTR list, CK_ULONG_PTR count)
{
	struct call c = CALL(C_GetSlotList, K_NONE, 0);
	CK_RV rv;

	if (intercept(&c, &rv))
		return rv;
	if (!c.removed || !token_present)
		return c.f->C_GetSlotList(token_present, list, count);
	if (count == NULL)
		return CKR_ARGUMENTS_BAD;
	*count = 0;
	return CKR_OK;
}

/* The slot stays, like a reader whose card was pulled: no CKF_TOKEN_PRESENT. */
static CK_RV fw_C_GetSlotInfo(CK_SLOT_ID slot, CK_SLOT_INFO_PTR info)
{
	struct call c = CALL(C_GetSlotInfo, K_NONE, slot);
	CK_RV rv;

	if (intercept(&c, &rv))
		return rv;
	rv = c.f->C_GetSlotInfo(slot, info);
	if (rv == CKR_OK && c.removed)
		info->flags &= ~(CK_FLAGS)CKF_TOKEN_PRESENT;
	return rv;
}

static CK_RV fw_C_OpenSession(CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR app, CK_NOTIFY notify,
			      CK_SESSION_HANDLE_PTR session)
{
	struct call c = CALL(C_OpenSession, K_SLOT, slot);
	CK_RV rv;

	if (intercept(&c, &rv))
		return rv;
	rv = c.f->C_OpenSession(slot, flags, app, notify, session);
	if (rv == CKR_OK)
		session_track(*session, slot);
	return rv;
}

/* Closing is always forwarded, even during or after a removal: the real
 * module must not leak the session. */
static CK_RV fw_C_CloseSession(CK_SESSION_HANDLE session)
{
	struct call c = CALL(C_CloseSession, K_NONE, session);
	CK_RV rv;

	if (intercept(&c, &rv))
		return rv;
	rv = c.f->C_CloseSession(session);
	if (rv == CKR_OK || rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED)
		session_untrack(session, 0, false);
	return rv;
}

static CK_RV fw_C_CloseAllSessions(CK_SLOT_ID slot)
{
	struct call c = CALL(C_CloseAllSessions, K_NONE, slot);
	CK_RV rv;

	if (intercept(&c, &rv))
		return rv;
	rv = c.f->C_CloseAllSessions(slot);
	if (rv == CKR_OK)
		session_untrack(0, slot, true);
	return rv;
}

#define LIST_ENTRY_SPECIAL(name) .name = fw_##name,
#define LIST_ENTRY_FORWARDED(name, kind, handle, params, args, end) .name = fw_##name,
static CK_FUNCTION_LIST fault_list = {
	.version = { 2, 40 },
	SPECIAL_FUNCS(LIST_ENTRY_SPECIAL)
	FORWARDED_FUNCS(LIST_ENTRY_FORWARDED)
};
