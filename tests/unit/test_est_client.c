/* The pure parts of the EST client (src/online/est_client.h): --server
 * addresses, HTTP answers (status line, fields, framing, 1xx, chunked),
 * Retry-After, the server's reason, certs-only PKCS#7 and the renewal
 * decision. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "online/base64.h"
#include "online/est_client.h"

/* `openssl req -x509 -newkey ec ... -subj /CN=est-unit -set_serial 0x1234
 * -days 36500` through `openssl crl2pkcs7 -nocrl -certfile`, base64 with
 * line breaks as EST servers send it. */
#define CERTS_ONLY_B64                                                         \
	"MIIBmQYJKoZIhvcNAQcCoIIBijCCAYYCAQExADALBgkqhkiG9w0BBwGgggFuMIIB\r\n" \
	"ajCCARGgAwIBAgICEjQwCgYIKoZIzj0EAwIwEzERMA8GA1UEAwwIZXN0LXVuaXQw\r\n" \
	"IBcNMjYxMTIzMTQxNDAzWhgPMjEyNjEwMzAxNDE0MDNaMBMxETAPBgNVBAMMCGVz\r\n" \
	"dC11bml0MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE+VLK9fNYxoggzuccbHxL\r\n" \
	"eBZloLK6nBETiHAz0AlU/J9gl1/SP35/mdHkdA38ozAJlPCcz3QW82lxpdPCnhKa\r\n" \
	"DaNTMFEwHQYDVR0OBBYEFBREwrdWE9d00mjt8895QNPZn6gPMB8GA1UdIwQYMBaA\r\n" \
	"FBREwrdWE9d00mjt8895QNPZn6gPMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0E\r\n" \
	"AwIDRwAwRAIgYobXTHr1zo+hF4IzU7iS9fjOdksxYgdvL4E0AsAzsZYCIAMtDYs7\r\n" \
	"KxPmnXcVEYxNsrCzHad0MGP4LwbuSjc9Ut4EMQA=\r\n"
#define CERT_NOT_AFTER 4949043243LL /* 2126-10-30 14:14:03 UTC */
/* the same with no certificates, and a ContentInfo of type data */
#define NO_CERTS_B64 "MCMGCSqGSIb3DQEHAqAWMBQCAQExADALBgkqhkiG9w0BBwExAA=="
#define DATA_B64 "MA8GCSqGSIb3DQEHAaACBAA="

#define NOW 1445400000 /* 2015-10-21 04:00:00 UTC */

static int parse(const char *s, int eof, struct p11pki_est_response *r)
{
	return p11pki_est_client_parse_response((const unsigned char *)s, strlen(s), eof, NOW, r);
}

/* s is a whole answer: it parses, and every shorter prefix asks for more
 * (or fails once the peer has closed). */
static void parse_whole(const char *s, struct p11pki_est_response *r)
{
	struct p11pki_est_response part;
	size_t n, len = strlen(s);
	int rc;

	for (n = 0; n < len; n++) {
		char *copy = malloc(n + 1); /* exact size, so ASan sees overreads */
		assert_non_null(copy);
		memcpy(copy, s, n);
		rc = p11pki_est_client_parse_response((unsigned char *)copy, n, 0, NOW, &part);
		assert_int_equal(rc, P11PKI_EST_CLIENT_MORE);
		assert_null(part.body);
		free(copy);
	}
	rc = parse(s, 0, r);
	if (rc != 0)
		print_error("parse failed (%d): %s\n", rc, p11pki_errmsg());
	assert_int_equal(rc, P11PKI_OK);
}

static void parse_bad(const char *s, const char *why)
{
	struct p11pki_est_response r;

	assert_int_equal(parse(s, 1, &r), P11PKI_E_ARG);
	assert_null(r.body);
	if (strstr(p11pki_errmsg(), why) == NULL)
		print_error("message '%s' lacks '%s'\n", p11pki_errmsg(), why);
	assert_non_null(strstr(p11pki_errmsg(), why));
	assert_null(strchr(p11pki_errmsg(), '\n'));
}

/* ---- --server ---------------------------------------------------------------- */

static void test_url(void **state)
{
	struct p11pki_est_url u;

	assert_int_equal(p11pki_est_client_parse_url("https://ca.example.com:8443", &u), 0);
	assert_string_equal(u.host, "ca.example.com");
	assert_string_equal(u.port, "8443");
	assert_string_equal(u.authority, "ca.example.com:8443");
	assert_int_equal(u.is_ip, 0);

	assert_int_equal(p11pki_est_client_parse_url("HTTPS://ca.example.com/", &u), 0);
	assert_string_equal(u.port, "443");
	assert_string_equal(u.authority, "ca.example.com"); /* default port not repeated */

	assert_int_equal(p11pki_est_client_parse_url("https://127.0.0.1:18443", &u), 0);
	assert_int_equal(u.is_ip, 1);
	assert_string_equal(u.authority, "127.0.0.1:18443");

	assert_int_equal(p11pki_est_client_parse_url("https://[::1]:8443", &u), 0);
	assert_string_equal(u.host, "::1");
	assert_int_equal(u.is_ip, 1);
	assert_string_equal(u.authority, "[::1]:8443");
}

static void url_bad(const char *text, const char *why)
{
	struct p11pki_est_url u;

	assert_int_equal(p11pki_est_client_parse_url(text, &u), P11PKI_E_ARG);
	if (strstr(p11pki_errmsg(), why) == NULL)
		print_error("message '%s' lacks '%s'\n", p11pki_errmsg(), why);
	assert_non_null(strstr(p11pki_errmsg(), why));
}

static void test_url_bad(void **state)
{
	url_bad("http://ca.example.com", "is not https");
	url_bad("ca.example.com", "does not start with https://");
	url_bad("https://", "names no host");
	url_bad("https://ca.example.com:0", "port");
	url_bad("https://ca.example.com:65536", "port");
	url_bad("https://ca.example.com:12345678", "port");
	url_bad("https://ca.example.com:", "port");
	url_bad("https://ca.example.com/.well-known/est", "has a path");
	url_bad("https://user@ca.example.com", "has user information");
	url_bad("https://web01:s3cr3t@ca.example.com", "has user information");
	assert_null(strstr(p11pki_errmsg(), "s3cr3t")); /* never quoted */
	url_bad("https://ca.example.com?x=1", "has something after");
	url_bad("https://[::1", "IPv6");
	url_bad("https://[not-v6]:443", "IPv6");
	url_bad("", "no EST server given");
	/* what the user typed is quoted without control characters */
	url_bad("https://ca\x1b[31m.example.com", "https://ca?[31m");
}

/* ---- answers ------------------------------------------------------------------- */

static void test_content_length(void **state)
{
	struct p11pki_est_response r;

	parse_whole("HTTP/1.1 200 OK\r\nContent-Type: Application/PKCS7-MIME; smime-type=certs-only\r\n"
		    "Content-Transfer-Encoding: base64\r\nContent-Length: 5\r\n\r\nhello",
		    &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.reason, "OK");
	assert_string_equal(r.content_type, "application/pkcs7-mime");
	assert_int_equal(r.body_len, 5);
	assert_string_equal((char *)r.body, "hello");
	assert_int_equal(r.retry_after, -1);
	p11pki_est_client_response_clear(&r);

	/* bytes after the body are not ours; an empty body is fine */
	assert_int_equal(parse("HTTP/1.0 204 No Content\r\n\r\n", 0, &r), 0);
	assert_int_equal(r.status, 204);
	assert_int_equal(r.body_len, 0);
	p11pki_est_client_response_clear(&r);
	assert_int_equal(parse("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA", 0, &r), 0);
	assert_string_equal((char *)r.body, "ok");
	p11pki_est_client_response_clear(&r);
	/* the same Content-Length twice is one */
	assert_int_equal(parse("HTTP/1.1 200 OK\r\nContent-Length: 2\r\ncontent-length:2\r\n\r\nok", 0, &r), 0);
	p11pki_est_client_response_clear(&r);
}

static void test_until_close(void **state)
{
	struct p11pki_est_response r;
	const char *s = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nto the end";

	assert_int_equal(parse(s, 0, &r), P11PKI_EST_CLIENT_MORE);
	assert_int_equal(parse(s, 1, &r), 0);
	assert_string_equal((char *)r.body, "to the end");
	p11pki_est_client_response_clear(&r);
	/* a Content-Length body cut by the close is an error */
	parse_bad("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "closed before the answer was complete");
	parse_bad("HTTP/1.1 200 OK\r\n", "closed before the answer was complete");
	parse_bad("", "closed before the answer was complete");
}

static void test_chunked(void **state)
{
	struct p11pki_est_response r;

	parse_whole("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		    "5\r\nhello\r\n6;name=value\r\n world\r\n0\r\nTrailer: x\r\n\r\n",
		    &r);
	assert_int_equal(r.body_len, 11);
	assert_string_equal((char *)r.body, "hello world");
	p11pki_est_client_response_clear(&r);
	parse_bad("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "chunk size is not hexadecimal");
	parse_bad("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
		  "chunk is longer than its size");
	parse_bad("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n123456789\r\n", "chunk size is too large");
	parse_bad("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", "closed before");
	parse_bad("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "transfer coding other than chunked");
	parse_bad("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
		  "both Content-Length and chunked");
}

static void test_interim_and_lf(void **state)
{
	struct p11pki_est_response r;

	parse_whole("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal((char *)r.body, "ok");
	p11pki_est_client_response_clear(&r);
	/* a bare LF ends a line too (lenient in what a client reads) */
	parse_whole("HTTP/1.1 401 Unauthorized\nContent-Type: text/plain\nContent-Length: 16\n\nbad credentials\n", &r);
	assert_int_equal(r.status, 401);
	assert_string_equal(r.content_type, "text/plain");
	p11pki_est_client_response_clear(&r);
	/* no reason phrase at all */
	assert_int_equal(parse("HTTP/1.1 500\r\nContent-Length: 0\r\n\r\n", 0, &r), 0);
	assert_int_equal(r.status, 500);
	assert_string_equal(r.reason, "");
	p11pki_est_client_response_clear(&r);
	parse_bad("HTTP/1.1 101 Switching Protocols\r\n\r\n", "101");
}

static void test_head_bad(void **state)
{
	char *big;
	size_t i;

	parse_bad("HTTP/2 200 OK\r\n\r\n", "status line");
	parse_bad("SSH-2.0-OpenSSH_9.2\r\n\r\n", "status line");
	parse_bad("HTTP/1.1 20 OK\r\n\r\n", "three digits");
	parse_bad("HTTP/1.1 200OK\r\n\r\n", "no space after the status code");
	parse_bad("HTTP/1.1 099 Low\r\n\r\n", "100 to 599");
	parse_bad("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", "two different");
	parse_bad("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "Content-Length is not a number");
	parse_bad("HTTP/1.1 200 OK\r\nContent-Length: 1 2\r\n\r\n", "Content-Length is not a number");
	parse_bad("HTTP/1.1 200 OK\r\nContent-Length: 2000000\r\n\r\n", "larger than");
	parse_bad("HTTP/1.1 200 OK\r\nX: 1\r\n folded\r\n\r\n", "folded");
	parse_bad("HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n", "no name");
	parse_bad("HTTP/1.1 200 OK\r\n: empty name\r\n\r\n", "no name");
	parse_bad("HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", "white space");

	/* more than 100 fields; a head over 16 KiB */
	big = malloc(40000);
	assert_non_null(big);
	strcpy(big, "HTTP/1.1 200 OK\r\n");
	for (i = 0; i < 101; i++)
		strcat(big, "X-A: b\r\n");
	strcat(big, "\r\n");
	parse_bad(big, "more than 100 header fields");
	strcpy(big, "HTTP/1.1 200 OK\r\n");
	for (i = 0; i < 90; i++) {
		size_t n = strlen(big);
		memcpy(big + n, "X-Long: ", 8);
		memset(big + n + 8, 'a', 200);
		memcpy(big + n + 208, "\r\n", 3);
	}
	strcat(big, "\r\n");
	parse_bad(big, "head over");
	free(big);
}

static void test_nul_and_size(void **state)
{
	static const char with_nul[] = "HTTP/1.1 200 OK\r\nX-A: a\0b\r\n\r\n";
	struct p11pki_est_response r;
	unsigned char *huge;
	size_t n = P11PKI_EST_CLIENT_ANSWER_MAX + 1;

	assert_int_equal(p11pki_est_client_parse_response((const unsigned char *)with_nul, sizeof(with_nul) - 1, 1,
							  NOW, &r),
			 P11PKI_E_ARG);
	assert_non_null(strstr(p11pki_errmsg(), "NUL"));
	huge = calloc(1, n);
	assert_non_null(huge);
	memcpy(huge, "HTTP/1.1 200 OK\r\n\r\n", 19);
	assert_int_equal(p11pki_est_client_parse_response(huge, n, 1, NOW, &r), P11PKI_E_ARG);
	assert_non_null(strstr(p11pki_errmsg(), "larger than"));
	free(huge);
}

/* ---- Retry-After and the server's reason ------------------------------------------ */

static void test_retry_after(void **state)
{
	struct p11pki_est_response r;
	long s;

	assert_int_equal(p11pki_est_client_retry_after("120", NOW, &s), 0);
	assert_int_equal(s, 120);
	assert_int_equal(p11pki_est_client_retry_after("0", NOW, &s), 0);
	assert_int_equal(s, 0);
	/* 2015-10-21 07:28:00 UTC is 3 h 28 min after NOW */
	assert_int_equal(p11pki_est_client_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", NOW, &s), 0);
	assert_int_equal(s, 1445412480 - NOW);
	assert_int_equal(p11pki_est_client_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412480 + 60, &s), 0);
	assert_int_equal(s, 0); /* in the past: now */
	assert_int_equal(p11pki_est_client_retry_after("soon", NOW, &s), P11PKI_E_ARG);
	assert_int_equal(p11pki_est_client_retry_after("12s", NOW, &s), P11PKI_E_ARG);
	assert_int_equal(p11pki_est_client_retry_after("9999999999", NOW, &s), P11PKI_E_ARG);
	assert_int_equal(p11pki_est_client_retry_after("Wed, 21 Oct 2015 07:28:00 GMT+1", NOW, &s), P11PKI_E_ARG);

	/* in an answer: a 202 with Retry-After; one that cannot be read is ignored */
	assert_int_equal(parse("HTTP/1.1 202 Accepted\r\nRetry-After: 600\r\nContent-Length: 0\r\n\r\n", 0, &r), 0);
	assert_int_equal(r.status, 202);
	assert_int_equal(r.retry_after, 600);
	p11pki_est_client_response_clear(&r);
	assert_int_equal(parse("HTTP/1.1 202 Accepted\r\nRetry-After: later\r\nContent-Length: 0\r\n\r\n", 0, &r), 0);
	assert_int_equal(r.retry_after, -1);
	p11pki_est_client_response_clear(&r);
}

static void test_reason(void **state)
{
	struct p11pki_est_response r;
	char buf[64], tiny[12];

	assert_int_equal(parse("HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 55\r\n"
			       "\r\n\r\npolicy refused: dns:evil.example.com\r\nsecond line\r\n\r\n",
			       0, &r),
			 0);
	p11pki_est_client_reason(&r, buf, sizeof(buf));
	assert_string_equal(buf, "policy refused: dns:evil.example.com");
	p11pki_est_client_reason(&r, tiny, sizeof(tiny));
	assert_string_equal(tiny, "policy r...");
	p11pki_est_client_response_clear(&r);

	/* terminal escapes from the server are defused */
	assert_int_equal(parse("HTTP/1.1 400 Bad \x1b[2J\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\nbad\x1b]0;x\x07\n",
			       0, &r),
			 0);
	p11pki_est_client_reason(&r, buf, sizeof(buf));
	assert_string_equal(buf, "bad?]0;x?");
	assert_string_equal(r.reason, "Bad ?[2J");
	p11pki_est_client_response_clear(&r);

	/* not text: the reason phrase; nothing: a fixed text */
	assert_int_equal(parse("HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/html\r\nContent-Length: 0\r\n\r\n",
			       0, &r),
			 0);
	p11pki_est_client_reason(&r, buf, sizeof(buf));
	assert_string_equal(buf, "Internal Server Error");
	p11pki_est_client_response_clear(&r);
	assert_int_equal(parse("HTTP/1.1 500\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}", 0, &r), 0);
	p11pki_est_client_reason(&r, buf, sizeof(buf));
	assert_string_equal(buf, "no reason given");
	p11pki_est_client_response_clear(&r);
}

/* ---- certs-only ------------------------------------------------------------------ */

static void certs_bad(const char *body, size_t len, const char *why)
{
	STACK_OF(X509) *certs = (STACK_OF(X509) *)1;

	assert_int_equal(p11pki_est_client_decode_certs((const unsigned char *)body, len, &certs), P11PKI_E_ARG);
	assert_null(certs);
	if (strstr(p11pki_errmsg(), why) == NULL)
		print_error("message '%s' lacks '%s'\n", p11pki_errmsg(), why);
	assert_non_null(strstr(p11pki_errmsg(), why));
}

static void test_certs_only(void **state)
{
	STACK_OF(X509) *certs = NULL;
	unsigned char *der;
	char cn[32];
	size_t der_len = 0;
	time_t t;

	assert_int_equal(p11pki_est_client_decode_certs((const unsigned char *)CERTS_ONLY_B64, strlen(CERTS_ONLY_B64),
							&certs),
			 0);
	assert_int_equal(sk_X509_num(certs), 1);
	X509_NAME_get_text_by_NID(X509_get_subject_name(sk_X509_value(certs, 0)), NID_commonName, cn, sizeof(cn));
	assert_string_equal(cn, "est-unit");
	assert_int_equal(p11pki_est_client_not_after(sk_X509_value(certs, 0), &t), 0);
	assert_true((long long)t == CERT_NOT_AFTER);
	sk_X509_pop_free(certs, X509_free);

	/* binary DER (some servers ignore RFC 8951) */
	assert_int_equal(online_base64_decode(CERTS_ONLY_B64, strlen(CERTS_ONLY_B64), 1, &der, &der_len), 0);
	assert_int_equal(p11pki_est_client_decode_certs(der, der_len, &certs), 0);
	assert_int_equal(sk_X509_num(certs), 1);
	sk_X509_pop_free(certs, X509_free);
	certs_bad((const char *)der, der_len - 10, "not a PKCS#7");
	free(der);

	certs_bad("", 0, "no body");
	certs_bad("not base64!", 11, "not a base64 PKCS#7");
	certs_bad("aGVsbG8gd29ybGQ=", 16, "not a PKCS#7");
	certs_bad(NO_CERTS_B64, strlen(NO_CERTS_B64), "holds no certificates");
	certs_bad(DATA_B64, strlen(DATA_B64), "holds no certificates");
}

/* ---- renewal decision --------------------------------------------------------------- */

static void test_due(void **state)
{
	const long day = 86400;

	assert_int_equal(p11pki_est_client_due(NOW + 31 * day, NOW, 30 * day), 0);
	assert_int_equal(p11pki_est_client_due(NOW + 30 * day + 1, NOW, 30 * day), 0);
	assert_int_equal(p11pki_est_client_due(NOW + 30 * day, NOW, 30 * day), 1);
	assert_int_equal(p11pki_est_client_due(NOW + 29 * day, NOW, 30 * day), 1);
	assert_int_equal(p11pki_est_client_due(NOW - 1, NOW, 30 * day), 1); /* expired */
	assert_int_equal(p11pki_est_client_due(NOW + 1, NOW, 0), 0);
	assert_int_equal(p11pki_est_client_due(NOW, NOW, 0), 1);
	assert_int_equal(p11pki_est_client_due(NOW + 1, NOW, -5), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url),
		cmocka_unit_test(test_url_bad),
		cmocka_unit_test(test_content_length),
		cmocka_unit_test(test_until_close),
		cmocka_unit_test(test_chunked),
		cmocka_unit_test(test_interim_and_lf),
		cmocka_unit_test(test_head_bad),
		cmocka_unit_test(test_nul_and_size),
		cmocka_unit_test(test_retry_after),
		cmocka_unit_test(test_reason),
		cmocka_unit_test(test_certs_only),
		cmocka_unit_test(test_due),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
