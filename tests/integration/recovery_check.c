/* recovery_check P11FAULT_MODULE TOKEN_LABEL KEY_URI CONTROL_FILE
 * (user PIN in $USER_PIN; P11FAULT_MODULE/P11FAULT_CONFIG set for p11fault)
 *
 * Signs with a token key through libp11pki while the fault module (see
 * tests/fault) fails C_Sign with each code p11pki recovers from, then with
 * codes it must report: checks that recovery reopens the session (and logs
 * in again), retries exactly once, and that failures name the call and the
 * code. C_OpenSession, C_Login and C_Sign are counted on the way to the
 * module; the counts are printed last ("counted C_OpenSession N ...") for
 * the caller to compare with the fault module's P11FAULT_STATS.
 * Prints one "ok:" or "FAIL:" line per check; exits 1 if any failed. */
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "token/internal.h"

static const char *control_path;
static EVP_PKEY *key, *pub;
static int failures;

/* ---- counting the calls that reach the module ---- */

static CK_FUNCTION_LIST real, counting;
static atomic_ulong n_open, n_login, n_sign;

static CK_RV count_open(CK_SLOT_ID slot, CK_FLAGS fl, CK_VOID_PTR app, CK_NOTIFY notify, CK_SESSION_HANDLE_PTR s)
{
	n_open++;
	return real.C_OpenSession(slot, fl, app, notify, s);
}

static CK_RV count_login(CK_SESSION_HANDLE s, CK_USER_TYPE user, CK_UTF8CHAR_PTR pin, CK_ULONG len)
{
	n_login++;
	return real.C_Login(s, user, pin, len);
}

static CK_RV count_sign(CK_SESSION_HANDLE s, CK_BYTE_PTR in, CK_ULONG in_len, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
	n_sign++;
	return real.C_Sign(s, in, in_len, out, out_len);
}

struct counts {
	unsigned long open, login, sign;
};

static struct counts snapshot(void)
{
	return (struct counts){ n_open, n_login, n_sign };
}

/* ---- helpers ---- */

static void check(int cond, const char *fmt, ...) P11PKI_PRINTF(2, 3);
static void check(int cond, const char *fmt, ...)
{
	va_list ap;

	printf("%s: ", cond ? "ok" : "FAIL");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	failures += !cond;
}

/* Replaces the control file in one step (a new inode: the module notices
 * the change, and its shared fail counts start again). */
static void control(const char *rule)
{
	static unsigned version;
	char tmp[4096];
	FILE *fp;

	snprintf(tmp, sizeof(tmp), "%s.tmp", control_path);
	if ((fp = fopen(tmp, "w")) == NULL || fprintf(fp, "%s\n# version %u\n", rule, ++version) < 0 ||
	    fclose(fp) != 0 || rename(tmp, control_path) != 0) {
		perror(control_path);
		exit(2);
	}
}

/* Signs one message and verifies it; on failure *msg gets the message. */
static int sign(char *msg, size_t size)
{
	static const unsigned char data[] = "recovery_check";
	EVP_MD_CTX *sctx = EVP_MD_CTX_new(), *vctx = EVP_MD_CTX_new();
	unsigned char sig[1024];
	size_t sig_len = sizeof(sig);
	int ok;

	msg[0] = '\0';
	ok = EVP_DigestSignInit(sctx, NULL, EVP_sha256(), NULL, key) == 1 &&
	     EVP_DigestSign(sctx, sig, &sig_len, data, sizeof(data)) == 1;
	if (!ok)
		snprintf(msg, size, "%s", p11pki_errmsg());
	else if (EVP_DigestVerifyInit(vctx, NULL, EVP_sha256(), NULL, pub) != 1 ||
		 EVP_DigestVerify(vctx, sig, sig_len, data, sizeof(data)) != 1) {
		snprintf(msg, size, "the signature does not verify");
		ok = 0;
	}
	ERR_clear_error();
	EVP_MD_CTX_free(sctx);
	EVP_MD_CTX_free(vctx);
	return ok;
}

static void log_stderr(int level, const char *m, void *arg)
{
	fprintf(stderr, "recovery_check: p11pki: %s\n", m);
}

/* ---- the checks ---- */

/* C_Sign fails once with code: p11pki reopens, logs in, retries once. */
static void recovers_from(const char *code, int loses_login)
{
	char rule[128], msg[600];
	struct counts a, b;
	int ok;

	snprintf(rule, sizeof(rule), "fail C_Sign %s count=1", code);
	control(rule);
	a = snapshot();
	ok = sign(msg, sizeof(msg));
	b = snapshot();
	check(ok, "'%s': signing recovered%s%s", rule, ok ? "" : ": ", msg);
	check(b.sign - a.sign == 2, "'%s': C_Sign called %lu times (want 2: the failure, one retry)", rule,
	      b.sign - a.sign);
	check(b.open - a.open == 1, "'%s': %lu new C_OpenSession (want 1)", rule, b.open - a.open);
	if (loses_login)
		check(b.login - a.login == 1, "'%s': %lu new C_Login (want 1)", rule, b.login - a.login);
	else
		printf("info: '%s': %lu new C_Login\n", rule, b.login - a.login);
}

/* Signing must fail with a message naming C_Sign and the code. */
static void fails_with(const char *rule, const char *code, const char *code2, unsigned long want_sign_calls)
{
	char msg[600];
	struct counts a, b;
	int ok;

	control(rule);
	a = snapshot();
	ok = sign(msg, sizeof(msg));
	b = snapshot();
	check(!ok, "'%s': signing fails", rule);
	check(strstr(msg, code) != NULL || (code2 != NULL && strstr(msg, code2) != NULL),
	      "'%s': the message names %s%s%s: \"%s\"", rule, code, code2 ? " or " : "", code2 ? code2 : "", msg);
	if (want_sign_calls > 0) {
		check(strstr(msg, "C_Sign") != NULL, "'%s': the message names C_Sign: \"%s\"", rule, msg);
		check(b.sign - a.sign == want_sign_calls, "'%s': C_Sign called %lu times (want %lu)", rule,
		      b.sign - a.sign, want_sign_calls);
	}
}

static void works(const char *rule, const char *why)
{
	char msg[600];
	int ok;

	control(rule);
	ok = sign(msg, sizeof(msg));
	check(ok, "%s: signing works%s%s", why, ok ? "" : ": ", msg);
}

int main(int argc, char **argv)
{
	p11pki_module *m = NULL;
	p11pki_token *t = NULL;
	struct p11pki_uri *uri = NULL;
	p11pki_secret *pin = NULL;
	const char *env_pin = getenv("USER_PIN");
	struct counts a, b;
	char msg[600];
	int r;

	if (argc != 5 || env_pin == NULL) {
		fprintf(stderr, "usage: USER_PIN=... %s P11FAULT_MODULE TOKEN_LABEL KEY_URI CONTROL_FILE\n", argv[0]);
		return 2;
	}
	control_path = argv[4];
	setvbuf(stdout, NULL, _IOLBF, 0);
	p11pki_log_set_handler(log_stderr, NULL);
	control("# no rules yet");
	if ((r = p11pki_uri_parse(argv[3], &uri)) != 0 || (r = p11pki_module_open(argv[1], &m)) != 0)
		goto fail;
	real = counting = *m->f;
	counting.C_OpenSession = count_open;
	counting.C_Login = count_login;
	counting.C_Sign = count_sign;
	m->f = &counting;
	free(uri->token);
	if ((uri->token = strdup(argv[2])) == NULL || (r = p11pki_token_open(m, uri, &t)) != 0 ||
	    (r = p11pki_secret_from(env_pin, strlen(env_pin), &pin)) != 0 || (r = p11pki_token_login(t, pin)) != 0 ||
	    (r = p11pki_key_load(t, uri, &key)) != 0 || (r = p11pki_key_public(t, uri, &pub)) != 0)
		goto fail;

	works("# no rules", "before any fault");
	recovers_from("CKR_SESSION_HANDLE_INVALID", 0);
	recovers_from("CKR_SESSION_CLOSED", 0);
	recovers_from("CKR_DEVICE_ERROR", 0);
	recovers_from("CKR_DEVICE_REMOVED", 1);
	recovers_from("CKR_TOKEN_NOT_PRESENT", 1);
	recovers_from("CKR_USER_NOT_LOGGED_IN", 1);

	/* a persistent failure: one retry, then a clear report */
	fails_with("fail C_Sign CKR_DEVICE_ERROR", "CKR_DEVICE_ERROR", NULL, 2);
	works("# rule removed", "after 'fail C_Sign CKR_DEVICE_ERROR' is removed");

	/* the token goes away, then comes back having forgotten the login */
	fails_with("remove", "CKR_DEVICE_REMOVED", "CKR_TOKEN_NOT_PRESENT", 0);
	a = snapshot();
	works("# token back", "after the 'remove' line is removed");
	b = snapshot();
	check(b.login - a.login >= 1, "the token came back: %lu new C_Login (want at least 1)", b.login - a.login);

	/* not recoverable: reported at once, not retried */
	a = snapshot();
	fails_with("fail C_Sign CKR_FUNCTION_FAILED count=1", "CKR_FUNCTION_FAILED", NULL, 1);
	b = snapshot();
	check(b.open == a.open, "'fail C_Sign CKR_FUNCTION_FAILED count=1': %lu new C_OpenSession (want 0)",
	      b.open - a.open);
	/* the rule's one failure is used up: the next signature must work */
	{
		char m2[600];
		int ok = sign(m2, sizeof(m2));
		check(ok, "after the one CKR_FUNCTION_FAILED: signing works%s%s", ok ? "" : ": ", m2);
	}
	control("# done");

	EVP_PKEY_free(key);
	EVP_PKEY_free(pub);
	p11pki_secret_free(pin);
	p11pki_token_close(t);
	p11pki_module_close(m);
	p11pki_uri_free(uri);
	printf("counted C_OpenSession %lu C_Login %lu C_Sign %lu\n", (unsigned long)n_open, (unsigned long)n_login,
	       (unsigned long)n_sign);
	return failures ? 1 : 0;
fail:
	snprintf(msg, sizeof(msg), "%s", p11pki_errmsg());
	fprintf(stderr, "recovery_check: %s\n", msg);
	EVP_PKEY_free(key);
	EVP_PKEY_free(pub);
	p11pki_secret_free(pin);
	p11pki_token_close(t);
	p11pki_module_close(m);
	p11pki_uri_free(uri);
	return 2;
}
