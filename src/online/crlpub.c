/* The published CRL of a CA served online: signed again when the store
 * holds a revocation it lacks or its nextUpdate comes near, served as
 * GET /crl/<ca>.crl, and written to [ online ] crl_dir for a web server
 * or a CDN to pick up. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "core/text.h"
#include "online/online.h"

struct online_crl {
	pthread_mutex_t lock;		/* guards everything below */
	unsigned char *der;		/* the current CRL, NULL before the first */
	size_t der_len;
	char *pem;
	size_t pem_len;
	time_t this_update, next_update;
	size_t n_revoked;		/* revocations in the store when it was signed */
	time_t latest_revocation;	/* the newest of them */
	int unwritten;			/* crl_dir lacks it: try again */
};

static time_t asn1_time(const ASN1_TIME *t)
{
	struct tm tm;

	return t != NULL && ASN1_TIME_to_tm(t, &tm) == 1 ? timegm(&tm) : 0;
}

/* How many revocations of the CA the store holds and the newest one. */
static int revocations(struct online_service *svc, const struct online_ca *oc, size_t *n, time_t *latest)
{
	struct p11pki_store_filter f = { .revoked_only = 1, .include_expired = 1 };
	struct p11pki_store_cert *certs = NULL;
	size_t i;
	int r;

	*latest = 0;
	if ((r = p11pki_store_cert_list(svc->st, oc->name, &f, &certs, n)) != 0)
		return r;
	for (i = 0; i < *n; i++)
		if (certs[i].revoked > *latest)
			*latest = certs[i].revoked;
	p11pki_store_cert_list_free(certs, *n);
	return P11PKI_OK;
}

/* The cached CRL covers what the store holds and a quarter of its period
 * is still ahead. Only more revocations count: a thread that looked at the
 * store before another signed must not sign once more. */
static int is_current(const struct online_crl *c, size_t n, time_t latest, time_t now)
{
	time_t period = c->next_update - c->this_update;

	return c->der != NULL && n <= c->n_revoked && latest <= c->latest_revocation &&
	       now < c->next_update - period / 4;
}

static int write_all(int fd, const unsigned char *p, size_t len)
{
	ssize_t n;

	while (len > 0) {
		if ((n = write(fd, p, len)) < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Writes len bytes to dir/name through a temporary file in dir and a
 * rename, so readers see the old file or the new one, never a part. */
static int write_atomically(const char *dir, const char *name, const void *data, size_t len)
{
	char tmp[4096], path[4096];
	int fd, saved;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path) ||
	    (size_t)snprintf(tmp, sizeof(tmp), "%s/.%s.XXXXXX", dir, name) >= sizeof(tmp))
		return p11pki_fail(P11PKI_E_ARG, "crl_dir %.200s: path too long", dir);
	if ((fd = mkstemp(tmp)) < 0)
		return p11pki_fail(P11PKI_E_IO, "crl_dir: cannot create a file in %.200s: %s", dir, strerror(errno));
	if (write_all(fd, data, len) != 0 || fchmod(fd, 0644) != 0 || fsync(fd) != 0) {
		saved = errno;
		close(fd);
		unlink(tmp);
		return p11pki_fail(P11PKI_E_IO, "crl_dir: cannot write %.200s: %s", path, strerror(saved));
	}
	if (close(fd) != 0 || rename(tmp, path) != 0) {
		saved = errno;
		unlink(tmp);
		return p11pki_fail(P11PKI_E_IO, "crl_dir: cannot write %.200s: %s", path, strerror(saved));
	}
	return P11PKI_OK;
}

/* <ca>.crl (DER) and <ca>.crl.pem in crl_dir. Lock held. */
static int write_files(const char *dir, const struct online_ca *oc, struct online_crl *c)
{
	char name[96];
	int r;

	c->unwritten = 1;
	/* a CA name is a file name here: nothing that leaves the directory */
	if (oc->name[0] == '.' || strchr(oc->name, '/') != NULL)
		return p11pki_fail(P11PKI_E_ARG, "CA name '%s' cannot name a file in crl_dir", oc->name);
	snprintf(name, sizeof(name), "%s.crl", oc->name);
	if ((r = write_atomically(dir, name, c->der, c->der_len)) != 0)
		return r;
	snprintf(name, sizeof(name), "%s.crl.pem", oc->name);
	if ((r = write_atomically(dir, name, c->pem, c->pem_len)) == 0)
		c->unwritten = 0;
	return r;
}

static int crl_pem(X509_CRL *crl, char **out, size_t *len)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data;
	long n;

	*out = NULL;
	if (b != NULL && PEM_write_bio_X509_CRL(b, crl) == 1 && (n = BIO_get_mem_data(b, &data)) > 0 &&
	    (*out = malloc((size_t)n)) != NULL) {
		memcpy(*out, data, (size_t)n);
		*len = (size_t)n;
	}
	BIO_free(b);
	return *out != NULL ? P11PKI_OK : p11pki_fail(P11PKI_E_NOMEM, "cannot encode the CRL as PEM");
}

/* Signs a new CRL, caches it (covering at least n revocations up to
 * latest) and writes it to crl_dir. Lock held. */
static int publish_locked(struct online_service *svc, struct online_ca *oc, struct online_crl *c, size_t n,
			  time_t latest)
{
	X509_CRL *crl = NULL;
	unsigned char *der = NULL;
	char *pem = NULL;
	size_t pem_len = 0;
	int der_len, r;

	if ((r = p11pki_ca_crl(oc->ca, &crl)) != 0)
		return r;
	if ((der_len = i2d_X509_CRL(crl, &der)) <= 0)
		r = p11pki_fail(P11PKI_E_NOMEM, "cannot encode the CRL");
	else
		r = crl_pem(crl, &pem, &pem_len);
	if (r != 0)
		goto out;
	OPENSSL_free(c->der);
	free(c->pem);
	c->der = der;
	c->der_len = (size_t)der_len;
	c->pem = pem;
	c->pem_len = pem_len;
	der = NULL;
	pem = NULL;
	c->this_update = asn1_time(X509_CRL_get0_lastUpdate(crl));
	c->next_update = asn1_time(X509_CRL_get0_nextUpdate(crl));
	c->n_revoked = n;
	c->latest_revocation = latest;
	/* served from memory even if the copy on disk cannot be written */
	if (svc->crl_dir != NULL && svc->crl_dir[0] != '\0')
		r = write_files(svc->crl_dir, oc, c);
out:
	OPENSSL_free(der);
	free(pem);
	X509_CRL_free(crl);
	return r;
}

int online_crl_refresh(struct online_service *svc, struct online_ca *oc, time_t now)
{
	struct online_crl *c = oc->crl;
	time_t latest;
	size_t n;
	int r;

	if (c == NULL)
		return p11pki_fail(P11PKI_E_ARG, "CA '%s' publishes no CRL here", oc->name);
	if ((r = revocations(svc, oc, &n, &latest)) != 0)
		return r;
	pthread_mutex_lock(&c->lock);
	if (!is_current(c, n, latest, now))
		r = publish_locked(svc, oc, c, n, latest);
	else if (c->unwritten && svc->crl_dir != NULL && svc->crl_dir[0] != '\0')
		r = write_files(svc->crl_dir, oc, c);
	pthread_mutex_unlock(&c->lock);
	return r;
}

int online_crl_setup(struct online_service *svc, struct online_ca *oc)
{
	struct online_crl *c, *old;
	int r;

	if (oc->ca == NULL || p11pki_ca_key(oc->ca) == NULL)
		return p11pki_fail(P11PKI_E_ARG, "CA '%s' was opened without its key: it cannot sign CRLs", oc->name);
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
	if (pthread_mutex_init(&c->lock, NULL) != 0) {
		free(c);
		return p11pki_fail(P11PKI_E_NOMEM, "cannot create a lock");
	}
	old = oc->crl;
	oc->crl = c;
	/* signed now, so that crl_dir is filled and a bad one refused at start */
	if ((r = online_crl_refresh(svc, oc, time(NULL))) != 0) {
		online_crl_free(c);
		oc->crl = old;
	} else {
		online_crl_free(old);
	}
	return r;
}

void online_crl_free(struct online_crl *c)
{
	if (c == NULL)
		return;
	OPENSSL_free(c->der);
	free(c->pem);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* ---- answering ----------------------------------------------------------- */

/* The CA a /crl/ path names, with *pem set for the .pem spellings; NULL
 * when the path names no CA of cas whose CRL is published. */
static struct online_ca *crl_target(struct online_service *svc, char *const *cas, size_t n_cas, const char *path,
				    int *pem)
{
	static const struct { const char *suffix; int pem; } forms[] = {
		{ ".crl.pem", 1 }, { ".pem", 1 }, { ".crl", 0 },
	};
	const char *name = path + strlen("/crl/");
	size_t len = strlen(name), k, i, n;
	struct online_ca *oc;

	if (strncmp(path, "/crl/", 5) != 0)
		return NULL;
	for (k = 0; k < sizeof(forms) / sizeof(forms[0]); k++) {
		n = strlen(forms[k].suffix);
		if (len <= n || strcmp(name + len - n, forms[k].suffix) != 0)
			continue;
		for (i = 0; i < n_cas; i++)
			if (strlen(cas[i]) == len - n && strncmp(cas[i], name, len - n) == 0 &&
			    (oc = online_find_ca(svc, cas[i])) != NULL && oc->crl != NULL) {
				*pem = forms[k].pem;
				return oc;
			}
	}
	return NULL;
}

/* Sends the cached CRL of oc (DER or PEM). */
static void send_crl(struct online_ca *oc, int pem, time_t now, struct online_response *rs)
{
	struct online_crl *c = oc->crl;
	time_t this_update, next_update;
	int r;

	pthread_mutex_lock(&c->lock);
	this_update = c->this_update;
	next_update = c->next_update;
	if (c->der == NULL)
		r = P11PKI_E_NOTFOUND;
	else if (pem)
		r = online_respond(rs, 200, "OK", "application/x-pem-file", c->pem, c->pem_len);
	else
		r = online_respond(rs, 200, "OK", "application/pkix-crl", c->der, c->der_len);
	pthread_mutex_unlock(&c->lock);
	if (r == P11PKI_E_NOTFOUND) {
		if (online_respond_text(rs, 503, "Service Unavailable", "the CRL of CA '%s' is not available yet",
					oc->name) == 0)
			(void)online_add_header(rs, "Retry-After", "60");
	} else if (r == 0) {
		if (online_add_cache_headers(rs, "public", this_update, next_update, now) != 0)
			p11pki_log(P11PKI_LOG_WARN, "CRL: %s", p11pki_errmsg());
	}
}

void online_crl_answer(struct online_service *svc, char *const *cas, size_t n_cas,
		       const struct online_request *rq, struct online_response *rs)
{
	const char *path = rq->path != NULL ? rq->path : "";
	const char *method = rq->method != NULL ? rq->method : "";
	time_t now = rq->now != 0 ? rq->now : time(NULL);
	char shown[P11PKI_SHOWN_BUF];
	struct online_ca *oc;
	int pem = 0;

	p11pki_shown_ascii(path, shown, sizeof(shown));
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		p11pki_log(P11PKI_LOG_INFO, "CRL: %s %s from %s: 405", method, shown, rq->client_ip ? rq->client_ip : "?");
		if (online_respond_text(rs, 405, "Method Not Allowed", "CRLs are fetched with GET") == 0)
			(void)online_add_header(rs, "Allow", "GET, HEAD");
		return;
	}
	if ((oc = crl_target(svc, cas, n_cas, path, &pem)) == NULL) {
		p11pki_log(P11PKI_LOG_INFO, "CRL: %s from %s: no such CRL", shown, rq->client_ip ? rq->client_ip : "?");
		online_respond_text(rs, 404, "Not Found", "no CRL at %s", shown);
		return;
	}
	/* so that a revocation shows in the very next download */
	if (online_crl_refresh(svc, oc, now) != 0)
		p11pki_log(P11PKI_LOG_WARN, "CRL of CA '%s': %s (serving the previous one)", oc->name, p11pki_errmsg());
	send_crl(oc, pem, now, rs);
}
