/* Secrets in memory that is locked (never swapped), excluded from core
 * dumps, and zeroed before it is released. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include <p11pki/core.h>

int p11pki_secret_new(size_t cap, p11pki_secret **out)
{
	p11pki_secret *s;
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t size;

	*out = NULL;
	if (cap == 0 || cap > 65536)
		return p11pki_fail(P11PKI_E_ARG, "secret size %zu is out of range", cap);
	size = (cap + page - 1) / page * page;
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory for a secret");
	if (posix_memalign((void **)&s->data, page, size) != 0) {
		free(s);
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory for a secret");
	}
	memset(s->data, 0, size);
	/* Best effort: an unprivileged process may lack RLIMIT_MEMLOCK. */
	if (mlock(s->data, size) != 0)
		p11pki_log(P11PKI_LOG_DEBUG, "mlock of secret memory failed");
#ifdef MADV_DONTDUMP
	(void)madvise(s->data, size, MADV_DONTDUMP);
#endif
	s->cap = size;
	*out = s;
	return P11PKI_OK;
}

int p11pki_secret_from(const char *data, size_t len, p11pki_secret **out)
{
	int r;

	if ((r = p11pki_secret_new(len + 1, out)) != 0)
		return r;
	memcpy((*out)->data, data, len);
	(*out)->data[len] = '\0';
	(*out)->len = len;
	return P11PKI_OK;
}

void p11pki_secret_free(p11pki_secret *s)
{
	if (s == NULL)
		return;
	OPENSSL_cleanse(s->data, s->cap);
	(void)munlock(s->data, s->cap);
	free(s->data);
	free(s);
}

void p11pki_no_core_dumps(void)
{
	struct rlimit none = { 0, 0 };

	(void)setrlimit(RLIMIT_CORE, &none);
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}
