/* The serve session cache (src/tls/sesscache.c), through the callbacks it
 * gives an SSL_CTX: a stored session comes back whole (small ones in a
 * slot, big ones, as with a client certificate, on the heap), an expired
 * or removed one does not, and the oldest goes when every slot is taken. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/ssl.h>

#include "tls/server.h"

static SSL_CTX *ctx;
static const SSL_CIPHER *cipher; /* a session without one is not encoded */

static int setup(void **state)
{
	SSL *ssl;

	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL || (ssl = SSL_new(ctx)) == NULL)
		return -1;
	cipher = sk_SSL_CIPHER_value(SSL_get_ciphers(ssl), 0);
	SSL_free(ssl);
	tls_session_cache_use(ctx);
	return cipher == NULL;
}

static int teardown(void **state)
{
	tls_session_cache_free();
	SSL_CTX_free(ctx);
	return 0;
}

/* A TLS 1.2 session whose id and master key are made of `tag`; `pad`
 * bytes of application data make it bigger. */
static SSL_SESSION *session(unsigned tag, size_t pad, long timeout)
{
	unsigned char id[32], key[48], data[2048];
	SSL_SESSION *s = SSL_SESSION_new();

	assert_non_null(s);
	memset(id, 0, sizeof(id));
	memcpy(id, &tag, sizeof(tag));
	memset(key, (int)(tag & 0xff), sizeof(key));
	memset(data, 'x', sizeof(data));
	assert_int_equal(SSL_SESSION_set1_id(s, id, sizeof(id)), 1);
	assert_int_equal(SSL_SESSION_set1_master_key(s, key, sizeof(key)), 1);
	assert_int_equal(SSL_SESSION_set_protocol_version(s, TLS1_2_VERSION), 1);
	assert_int_equal(SSL_SESSION_set_cipher(s, cipher), 1);
	assert_int_equal(SSL_SESSION_set_time(s, (long)time(NULL)), (long)time(NULL));
	assert_int_equal(SSL_SESSION_set_timeout(s, timeout), 1);
	if (pad > 0)
		assert_int_equal(SSL_SESSION_set1_ticket_appdata(s, data, pad), 1);
	return s;
}

static void put(unsigned tag, size_t pad, long timeout)
{
	SSL_SESSION *s = session(tag, pad, timeout);

	/* 0: the cache keeps its own copy, no reference */
	assert_int_equal(SSL_CTX_sess_get_new_cb(ctx)(NULL, s), 0);
	SSL_SESSION_free(s);
}

/* The session stored under tag, or NULL. */
static SSL_SESSION *get(unsigned tag)
{
	unsigned char id[32];
	int copy = 1;
	SSL_SESSION *s;

	memset(id, 0, sizeof(id));
	memcpy(id, &tag, sizeof(tag));
	s = SSL_CTX_sess_get_get_cb(ctx)(NULL, id, sizeof(id), &copy);
	assert_int_equal(copy, 0);
	return s;
}

static void assert_session(SSL_SESSION *s, unsigned tag, size_t pad)
{
	unsigned char key[48];
	void *data = NULL;
	size_t len = 0;

	assert_non_null(s);
	assert_int_equal(SSL_SESSION_get_master_key(s, key, sizeof(key)), sizeof(key));
	assert_int_equal(key[0], tag & 0xff);
	assert_int_equal(SSL_SESSION_get0_ticket_appdata(s, &data, &len), 1);
	assert_int_equal(len, pad);
	SSL_SESSION_free(s);
}

static void test_small_and_big_come_back(void **state)
{
	put(1, 0, 300);
	put(2, 1500, 300); /* bigger than a slot: like one with a client certificate */
	assert_session(get(1), 1, 0);
	assert_session(get(2), 2, 1500);
	assert_session(get(1), 1, 0); /* a lookup does not use it up */
	assert_null(get(3));
}

static void test_expired_and_removed_are_gone(void **state)
{
	SSL_SESSION *s = session(5, 0, 300);

	put(4, 0, 0);
	assert_null(get(4));
	put(5, 0, 300);
	SSL_CTX_sess_get_remove_cb(ctx)(ctx, s);
	assert_null(get(5));
	SSL_SESSION_free(s);
}

static void test_oldest_goes_first(void **state)
{
	unsigned i;

	tls_session_cache_free();
	put(100, 0, 300);
	put(101, 1000, 300);
	for (i = 0; i < TLS_SESSION_SLOTS - 2; i++)
		put(1000 + i, 0, 300);
	/* full: the next one replaces the oldest */
	put(999999, 0, 300);
	assert_null(get(100));
	assert_session(get(101), 101, 1000);
	assert_session(get(999999), 999999 & 0xff, 0);
	put(888888, 0, 300);
	assert_null(get(101));
	assert_session(get(1000), 1000 & 0xff, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_small_and_big_come_back),
		cmocka_unit_test(test_expired_and_removed_are_gone),
		cmocka_unit_test(test_oldest_goes_first),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
