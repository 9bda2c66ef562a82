/* The server's session cache (TLS 1.2 clients without tickets, and TLS 1.3
 * with session_tickets = off), shared by the worker threads: sessions are
 * kept serialized in a fixed array of slots, as nginx keeps them in its
 * shared memory, instead of as live SSL_SESSION objects in OpenSSL's
 * internal cache. A live session is several heap blocks that outlive
 * thousands of handshakes; interleaved with each handshake's short-lived
 * blocks they fragment the heap (measured: 1.6% of the server CPU of a
 * full TLS 1.2 handshake). A slot is written once per full handshake and
 * read on resumption. The oldest slot is reused when all are taken;
 * OpenSSL checks the session's binding (sid_ctx) and age on resumption. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tls/server.h"

#define SLOTS TLS_SESSION_SLOTS	/* as many sessions as nginx's 4 MB of cache */
#define BUCKETS 32768		/* a power of 2 above SLOTS */
#define INLINE_MAX 256		/* a session without a client certificate fits */

struct slot {
	unsigned char id[SSL_MAX_SSL_SESSION_ID_LENGTH];
	unsigned id_len;
	unsigned next;		/* slot + 1 in the same bucket; 0 ends */
	time_t expires;
	size_t len;		/* 0: free */
	unsigned char *big;	/* when len > INLINE_MAX */
	unsigned char data[INLINE_MAX];
};

static struct {
	pthread_mutex_t lock;
	struct slot *slot;
	unsigned bucket[BUCKETS];	/* first slot + 1 */
	unsigned cursor;		/* next slot to fill */
} cache = { .lock = PTHREAD_MUTEX_INITIALIZER };

static unsigned bucket_of(const unsigned char *id, unsigned len)
{
	unsigned h = 2166136261u, i;

	/* session IDs are random: a few bytes spread them well */
	for (i = 0; i < len && i < 8; i++)
		h = (h ^ id[i]) * 16777619u;
	return h & (BUCKETS - 1);
}

/* The slot (+1) holding id, and the link that points at it. */
static unsigned find(const unsigned char *id, unsigned len, unsigned **link)
{
	unsigned *at = &cache.bucket[bucket_of(id, len)];

	while (*at != 0) {
		struct slot *s = &cache.slot[*at - 1];
		if (s->id_len == len && memcmp(s->id, id, len) == 0) {
			*link = at;
			return *at;
		}
		at = &s->next;
	}
	return 0;
}

static void clear_slot(unsigned n)
{
	struct slot *s = &cache.slot[n - 1];
	unsigned *link;

	if (s->len != 0 && find(s->id, s->id_len, &link) == n)
		*link = s->next;
	free(s->big);
	s->big = NULL;
	s->len = 0;
	s->next = 0;
}

static int new_session(SSL *ssl, SSL_SESSION *sess)
{
	unsigned char inline_buf[INLINE_MAX], *buf = inline_buf, *p;
	const unsigned char *id;
	unsigned id_len, n;
	struct slot *s;
	int len;

	/* OpenSSL also reports TLS 1.3 sessions that travel in a ticket: no
	 * need to keep those */
	if (SSL_SESSION_get_protocol_version(sess) == TLS1_3_VERSION && ssl != NULL &&
	    !(SSL_get_options(ssl) & SSL_OP_NO_TICKET))
		return 0;
	id = SSL_SESSION_get_id(sess, &id_len);
	if (id_len == 0 || id_len > SSL_MAX_SSL_SESSION_ID_LENGTH || (len = i2d_SSL_SESSION(sess, NULL)) <= 0)
		return 0;
	if (len > INLINE_MAX && (buf = malloc((size_t)len)) == NULL)
		return 0;
	p = buf;
	if (i2d_SSL_SESSION(sess, &p) != len) {
		if (buf != inline_buf)
			free(buf);
		return 0;
	}
	pthread_mutex_lock(&cache.lock);
	if (cache.slot == NULL && (cache.slot = calloc(SLOTS, sizeof(*cache.slot))) == NULL) {
		pthread_mutex_unlock(&cache.lock);
		if (buf != inline_buf)
			free(buf);
		return 0;
	}
	n = cache.cursor + 1;
	cache.cursor = (cache.cursor + 1) % SLOTS;
	clear_slot(n);
	s = &cache.slot[n - 1];
	memcpy(s->id, id, id_len);
	s->id_len = id_len;
	s->expires = time(NULL) + (time_t)SSL_SESSION_get_timeout(sess);
	s->len = (size_t)len;
	if (buf != inline_buf)
		s->big = buf;
	else
		memcpy(s->data, buf, (size_t)len);
	s->next = cache.bucket[bucket_of(id, id_len)];
	cache.bucket[bucket_of(id, id_len)] = n;
	pthread_mutex_unlock(&cache.lock);
	return 0; /* OpenSSL keeps no reference */
}

static SSL_SESSION *get_session(SSL *ssl, const unsigned char *id, int id_len, int *copy)
{
	unsigned char inline_buf[INLINE_MAX], *buf = NULL;
	const unsigned char *p;
	SSL_SESSION *sess = NULL;
	unsigned *link, n;
	size_t len = 0;

	*copy = 0;
	if (id_len <= 0 || id_len > SSL_MAX_SSL_SESSION_ID_LENGTH)
		return NULL;
	pthread_mutex_lock(&cache.lock);
	if (cache.slot != NULL && (n = find(id, (unsigned)id_len, &link)) != 0) {
		struct slot *s = &cache.slot[n - 1];
		if (s->expires <= time(NULL)) {
			clear_slot(n);
		} else if (s->len <= INLINE_MAX) {
			len = s->len;
			memcpy(inline_buf, s->data, len);
			buf = inline_buf;
		} else if ((buf = malloc(s->len)) != NULL) {
			len = s->len;
			memcpy(buf, s->big, len);
		}
	}
	pthread_mutex_unlock(&cache.lock);
	if (buf == NULL)
		return NULL;
	p = buf;
	sess = d2i_SSL_SESSION(NULL, &p, (long)len);
	if (buf != inline_buf)
		free(buf);
	return sess;
}

static void remove_session(SSL_CTX *ctx, SSL_SESSION *sess)
{
	const unsigned char *id;
	unsigned id_len, *link, n;

	id = SSL_SESSION_get_id(sess, &id_len);
	pthread_mutex_lock(&cache.lock);
	if (cache.slot != NULL && (n = find(id, id_len, &link)) != 0)
		clear_slot(n);
	pthread_mutex_unlock(&cache.lock);
}

void tls_session_cache_use(SSL_CTX *ctx)
{
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_INTERNAL);
	SSL_CTX_sess_set_new_cb(ctx, new_session);
	SSL_CTX_sess_set_get_cb(ctx, get_session);
	SSL_CTX_sess_set_remove_cb(ctx, remove_session);
}

void tls_session_cache_free(void)
{
	unsigned i;

	pthread_mutex_lock(&cache.lock);
	for (i = 0; cache.slot != NULL && i < SLOTS; i++)
		free(cache.slot[i].big);
	free(cache.slot);
	cache.slot = NULL;
	cache.cursor = 0;
	memset(cache.bucket, 0, sizeof(cache.bucket));
	pthread_mutex_unlock(&cache.lock);
}
