/* Loading a PKCS#11 module. libp11 loads it and owns C_Finalize; we
 * initialise it just before libp11 does (with our mutexes) and take the
 * same module's CK_FUNCTION_LIST for what libp11 0.4.12 cannot do. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "token/internal.h"

static int looks_like_module(const char *path)
{
	void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	int ok = dl != NULL && dlsym(dl, "C_GetFunctionList") != NULL;

	if (dl != NULL)
		dlclose(dl);
	return ok;
}

/* libp11 does not say why a load failed: find out for the message. */
static int explain_load_failure(const char *path)
{
	void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	CK_C_GetFunctionList get_list;
	CK_FUNCTION_LIST *f = NULL;
	CK_C_INITIALIZE_ARGS args = { .flags = CKF_OS_LOCKING_OK };
	const char *conf = getenv("SOFTHSM2_CONF");
	CK_RV rv;
	int r;

	if (dl == NULL)
		return p11pki_fail(P11PKI_E_MODULE, "PKCS#11 module '%s' cannot be loaded: %s", path, dlerror());
	get_list = (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList");
	if (get_list == NULL || get_list(&f) != CKR_OK || f == NULL) {
		r = p11pki_fail(P11PKI_E_MODULE, "'%s' is not a PKCS#11 module (no C_GetFunctionList)", path);
	} else if ((rv = p11pki_ck_note("C_Initialize", f->C_Initialize(&args))) != CKR_OK) {
		r = p11pki_fail(P11PKI_E_MODULE, "C_Initialize of module '%s': %s%s%s%s", path, p11pki_ckr_name(rv),
				conf ? " (check the configuration in SOFTHSM2_CONF=" : "", conf ? conf : "",
				conf ? ")" : "");
	} else {
		(void)f->C_Finalize(NULL);
		r = p11pki_fail(P11PKI_E_MODULE, "PKCS#11 module '%s' cannot be initialised by libp11", path);
	}
	dlclose(dl);
	return r;
}

/* The module's locks, for C_Initialize: adaptive mutexes spin a moment
 * before they sleep. SoftHSM2 holds its locks for a few microseconds per
 * signature (a key object's attributes), and with OS locking two workers
 * signing with one key put each other to sleep (a futex wait and a wake,
 * two context switches) about once in three handshakes. */
static CK_RV create_mutex(CK_VOID_PTR_PTR out)
{
	pthread_mutex_t *mx = malloc(sizeof(*mx));
	pthread_mutexattr_t attr;

	if (mx == NULL)
		return CKR_HOST_MEMORY;
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
	pthread_mutex_init(mx, &attr);
	pthread_mutexattr_destroy(&attr);
	*out = mx;
	return CKR_OK;
}

static CK_RV destroy_mutex(CK_VOID_PTR mx)
{
	pthread_mutex_destroy(mx);
	free(mx);
	return CKR_OK;
}

static CK_RV lock_mutex(CK_VOID_PTR mx)
{
	return pthread_mutex_lock(mx) == 0 ? CKR_OK : CKR_GENERAL_ERROR;
}

static CK_RV unlock_mutex(CK_VOID_PTR mx)
{
	return pthread_mutex_unlock(mx) == 0 ? CKR_OK : CKR_MUTEX_NOT_LOCKED;
}

/* Initialises the module before libp11 does, with our mutexes (libp11
 * passes none and accepts CKR_CRYPTOKI_ALREADY_INITIALIZED). A module
 * that refuses them is left to libp11's plain initialisation. */
static void init_with_mutexes(const char *path)
{
	CK_C_INITIALIZE_ARGS args = { .CreateMutex = create_mutex, .DestroyMutex = destroy_mutex,
				      .LockMutex = lock_mutex, .UnlockMutex = unlock_mutex,
				      .flags = CKF_OS_LOCKING_OK };
	void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	CK_C_GetFunctionList get_list = dl != NULL ? (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList") : NULL;
	CK_FUNCTION_LIST *f = NULL;

	/* the handle stays open: libp11's dlopen gets this instance */
	if (get_list != NULL && get_list(&f) == CKR_OK && f != NULL)
		(void)f->C_Initialize(&args);
}

static void set_write_lock(p11pki_module *m)
{
	const char *conf = getenv("SOFTHSM2_CONF");
	size_t len;

	if (strstr(m->path, "softhsm") == NULL || conf == NULL || *conf == '\0')
		return;
	len = strlen(conf) + sizeof(".p11pki-write-lock");
	if ((m->write_lock = malloc(len)) != NULL)
		snprintf(m->write_lock, len, "%s.p11pki-write-lock", conf);
}

int p11pki_module_open(const char *path, p11pki_module **out)
{
	p11pki_module *m = NULL;
	CK_C_GetFunctionList get_list;
	struct stat st;
	int r, lock, loaded;

	*out = NULL;
	if (path == NULL) {
		if ((r = p11pki_default_token_setup()) != 0)
			return r;
		path = p11pki_default_module_path();
	}
	if (stat(path, &st) != 0)
		return p11pki_fail(P11PKI_E_MODULE, "PKCS#11 module '%s' does not exist: check --module", path);
	if ((m = calloc(1, sizeof(*m))) == NULL || (m->path = strdup(path)) == NULL) {
		r = p11pki_fail(P11PKI_E_NOMEM, "out of memory loading a module");
		goto fail;
	}
	pthread_mutex_init(&m->lock, NULL);
	/* libp11 prints to stderr on a file that is no module: look first */
	if (!looks_like_module(path)) {
		r = explain_load_failure(path);
		goto fail;
	}
	if ((m->ctx = PKCS11_CTX_new()) == NULL) {
		r = p11pki_fail(P11PKI_E_NOMEM, "PKCS11_CTX_new failed");
		goto fail;
	}
	set_write_lock(m);
	lock = p11pki_module_read_begin(m);
	init_with_mutexes(path);
	loaded = PKCS11_CTX_load(m->ctx, path) == 0;
	p11pki_module_write_end(lock);
	if (!loaded) {
		PKCS11_CTX_free(m->ctx);
		m->ctx = NULL;
		r = explain_load_failure(path);
		goto fail;
	}
	/* RTLD_NOLOAD: the same module instance libp11 initialised. */
	m->dl = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
	if (m->dl == NULL)
		m->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	get_list = m->dl != NULL ? (CK_C_GetFunctionList)dlsym(m->dl, "C_GetFunctionList") : NULL;
	if (get_list == NULL || get_list(&m->f) != CKR_OK || m->f == NULL) {
		r = p11pki_fail(P11PKI_E_MODULE, "PKCS#11 module '%s' has no usable C_GetFunctionList", path);
		goto fail;
	}
	*out = m;
	return P11PKI_OK;
fail:
	p11pki_module_close(m);
	return r;
}

static _Thread_local int writing; /* this thread holds the write lock */

static int lock_file(const char *path, int how)
{
	int fd;

	if (path == NULL || writing)
		return -1;
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0)
		return -1; /* best effort: SoftHSM2 itself still works */
	while (flock(fd, how) != 0 && errno == EINTR)
		;
	return fd;
}

int p11pki_module_write_begin(p11pki_module *m)
{
	int fd = lock_file(m->write_lock, LOCK_EX);

	if (fd >= 0)
		writing = 1;
	return fd;
}

int p11pki_module_read_begin(p11pki_module *m)
{
	return lock_file(m->write_lock, LOCK_SH);
}

void p11pki_module_write_end(int fd)
{
	if (fd < 0)
		return;
	writing = 0;
	close(fd); /* releases the lock */
}

int p11pki_module_reinit(p11pki_module *m)
{
	int r = -1;

	pthread_mutex_lock(&m->lock);
	if (m->tokens_open == 0) {
		int lock = p11pki_module_read_begin(m);
		PKCS11_CTX_unload(m->ctx); /* our dlopen keeps the code mapped */
		r = PKCS11_CTX_load(m->ctx, m->path);
		p11pki_module_write_end(lock);
		p11pki_log(P11PKI_LOG_DEBUG, "module '%s' re-initialised: %s", m->path, r == 0 ? "ok" : "failed");
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}

void p11pki_module_close(p11pki_module *m)
{
	if (m == NULL)
		return;
	if (m->ctx != NULL) {
		PKCS11_CTX_unload(m->ctx); /* C_Finalize */
		PKCS11_CTX_free(m->ctx);
	}
	if (m->dl != NULL)
		dlclose(m->dl);
	pthread_mutex_destroy(&m->lock);
	free(m->write_lock);
	free(m->path);
	free(m);
}
