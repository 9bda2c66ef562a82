/* Request heads for the proxy's http mode: parsing, the rewrite toward a
 * backend, local answers and the health-check status line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>

#include "tls/http.h"

/* A real client certificate from `openssl req -x509 -newkey ec` ... */
#define TEST_PEM                                                                   \
	"-----BEGIN CERTIFICATE-----\n"                                                 \
	"MIIBojCCAUegAwIBAgIUcvI3GxC2FoWzV6Mtql02g1VG2AUwCgYIKoZIzj0EAwIw\n"            \
	"JjEOMAwGA1UEAwwFYWxpY2UxFDASBgNVBAoMC0V4YW1wbGUgT3JnMB4XDTI2MTEy\n"            \
	"MzExNDc1N1oXDTM2MTEyMDExNDc1N1owJjEOMAwGA1UEAwwFYWxpY2UxFDASBgNV\n"            \
	"BAoMC0V4YW1wbGUgT3JnMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEQBdwDKp9\n"            \
	"MYztibeVU44NX3Z/Nq6YbAK3Mptcfun0enfAdHr0DxKx2y7TZDYsT7dNNBZo/g1t\n"            \
	"TYIoRzEnXbKHE6NTMFEwHQYDVR0OBBYEFPYIURKSmzRIg3TEpdX8PCPgo2wvMB8G\n"            \
	"A1UdIwQYMBaAFPYIURKSmzRIg3TEpdX8PCPgo2wvMA8GA1UdEwEB/wQFMAMBAf8w\n"            \
	"CgYIKoZIzj0EAwIDSQAwRgIhANiD2SKOW5prJc+AzkWMyOT+L72qpVWL3jLcmsNE\n"            \
	"wZBzAiEAxKF9BwS4ONGcSLTzONgI8V9kKcre9LKLpFnT+GWH8EQ=\n"                        \
	"-----END CERTIFICATE-----\n"
/* ... its serial and subject from `openssl x509 -serial -subject -nameopt
 * RFC2253`, and the PEM percent-encoded by Python's
 * urllib.parse.quote(pem, safe=''): hard-coded so the test does not
 * trust the encoder it tests. */
#define TEST_SERIAL "72F2371B10B61685B357A32DAA5D36835546D805"
#define TEST_SUBJECT "O=Example Org,CN=alice"
#define TEST_PEM_ENCODED                                                           \
	"-----BEGIN%20CERTIFICATE-----%0AMIIBojCCAUegAwIBAgIUcvI3GxC2FoWzV6Mtql02"     \
	"g1VG2AUwCgYIKoZIzj0EAwIw%0AJjEOMAwGA1UEAwwFYWxpY2UxFDASBgNVBAoMC0V4YW1wb"     \
	"GUgT3JnMB4XDTI2MTEy%0AMzExNDc1N1oXDTM2MTEyMDExNDc1N1owJjEOMAwGA1UEAwwFYW"     \
	"xpY2UxFDASBgNV%0ABAoMC0V4YW1wbGUgT3JnMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgA"     \
	"EQBdwDKp9%0AMYztibeVU44NX3Z%2FNq6YbAK3Mptcfun0enfAdHr0DxKx2y7TZDYsT7dNNB"     \
	"Zo%2Fg1t%0ATYIoRzEnXbKHE6NTMFEwHQYDVR0OBBYEFPYIURKSmzRIg3TEpdX8PCPgo2wvM"     \
	"B8G%0AA1UdIwQYMBaAFPYIURKSmzRIg3TEpdX8PCPgo2wvMA8GA1UdEwEB%2FwQFMAMBAf8w"     \
	"%0ACgYIKoZIzj0EAwIDSQAwRgIhANiD2SKOW5prJc%2BAzkWMyOT%2BL72qpVWL3jLcmsNE%"     \
	"0AwZBzAiEAxKF9BwS4ONGcSLTzONgI8V9kKcre9LKLpFnT%2BGWH8EQ%3D%0A-----END%20"     \
	"CERTIFICATE-----%0A"

static void parse_ok_n(const char *s, size_t len, size_t want_consumed, struct p11pki_http_head *h)
{
	size_t consumed = 99;
	int r = p11pki_http_head_parse(s, len, &consumed, h);

	if (r != P11PKI_OK)
		print_error("parse failed (%d): %s\n", r, p11pki_errmsg());
	assert_int_equal(r, P11PKI_OK);
	assert_int_equal(consumed, want_consumed);
}

/* s is one complete head and nothing else */
static void parse_ok(const char *s, struct p11pki_http_head *h)
{
	parse_ok_n(s, strlen(s), strlen(s), h);
}

static void refused_n(const char *s, size_t len, const char *want)
{
	struct p11pki_http_head h;
	size_t consumed = 99;
	int r;

	p11pki_error_clear();
	r = p11pki_http_head_parse(s, len, &consumed, &h);
	if (r != P11PKI_E_ARG)
		print_error("'%.*s' gave %d, not P11PKI_E_ARG\n", (int)(len > 80 ? 80 : len), s, r);
	assert_int_equal(r, P11PKI_E_ARG);
	assert_int_equal(consumed, 0);
	assert_null(h.storage);
	assert_null(h.headers);
	assert_null(h.method);
	if (strstr(p11pki_errmsg(), want) == NULL)
		print_error("message '%s' lacks '%s'\n", p11pki_errmsg(), want);
	assert_non_null(strstr(p11pki_errmsg(), want));
	assert_null(strchr(p11pki_errmsg(), '\n'));
	assert_null(strchr(p11pki_errmsg(), '\r'));
}

static void refused(const char *s, const char *want)
{
	refused_n(s, strlen(s), want);
}

static size_t count_headers(const struct p11pki_http_head *h, const char *name)
{
	size_t i, n = 0;

	for (i = 0; i < h->n_headers; i++)
		n += strcasecmp(h->headers[i].name, name) == 0;
	return n;
}

/* Rewrites s (one head) for ci and parses the result back into out. */
static char *rewrite(const char *s, const struct p11pki_client_info *ci, struct p11pki_http_head *out)
{
	struct p11pki_http_head h;
	char *text = (char *)1;
	size_t len = 99;
	int r;

	parse_ok(s, &h);
	r = p11pki_http_head_rewrite(&h, ci, &text, &len);
	if (r != P11PKI_OK)
		print_error("rewrite failed: %s\n", p11pki_errmsg());
	assert_int_equal(r, P11PKI_OK);
	assert_int_equal(len, strlen(text));
	parse_ok(text, out);
	p11pki_http_head_clear(&h);
	return text;
}

static const struct p11pki_client_info no_cert = { "NONE", NULL, NULL, NULL, "192.0.2.7" };

static void test_simple_get(void **state)
{
	struct p11pki_http_head h;

	parse_ok("GET /index.html?a=1&b=%20 HTTP/1.1\r\n"
		 "Host:   www.example.com:8443  \r\n"
		 "user-agent: curl/8.0\r\n"
		 "Accept:*/*\r\n"
		 "X-Empty:\r\n"
		 "X-Tab:\tv\t1\t\r\n"
		 "\r\n", &h);
	assert_string_equal(h.method, "GET");
	assert_string_equal(h.target, "/index.html?a=1&b=%20");
	assert_int_equal(h.version, 11);
	assert_string_equal(h.host, "www.example.com:8443");
	assert_int_equal(h.n_headers, 5);
	assert_string_equal(h.headers[1].name, "user-agent");
	assert_string_equal(h.headers[1].value, "curl/8.0");
	assert_string_equal(h.headers[2].value, "*/*");
	assert_string_equal(h.headers[3].value, "");
	assert_string_equal(h.headers[4].value, "v\t1");
	assert_int_equal(h.content_length, -1);
	assert_int_equal(h.chunked, 0);
	assert_string_equal(p11pki_http_head_find(&h, "USER-AGENT"), "curl/8.0");
	assert_null(p11pki_http_head_find(&h, "user-agen"));
	assert_int_equal(p11pki_http_is_healthz(&h), 0);
	p11pki_http_head_clear(&h);
	assert_null(h.storage);
	p11pki_http_head_clear(&h);	/* twice is fine */
	p11pki_http_head_clear(NULL);
}

static void test_http10_and_options(void **state)
{
	struct p11pki_http_head h;

	parse_ok("GET / HTTP/1.0\r\n\r\n", &h);
	assert_int_equal(h.version, 10);
	assert_null(h.host);
	assert_int_equal(h.n_headers, 0);
	p11pki_http_head_clear(&h);

	parse_ok("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", &h);
	assert_string_equal(h.target, "*");
	p11pki_http_head_clear(&h);

	/* an empty Host is valid (RFC 9112 section 3.2) */
	parse_ok("GET / HTTP/1.1\r\nHost:\r\n\r\n", &h);
	assert_string_equal(h.host, "");
	p11pki_http_head_clear(&h);

	parse_ok("GET / HTTP/1.1\r\nHost: [2001:db8::1]:443\r\n\r\n", &h);
	assert_string_equal(h.host, "[2001:db8::1]:443");
	p11pki_http_head_clear(&h);
}

static void test_post_body(void **state)
{
	static const char head[] = "POST /api HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n";
	static const char msg[] = "POST /api HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n"
				  "hello world";
	struct p11pki_http_head h;

	parse_ok_n(msg, strlen(msg), strlen(head), &h);
	assert_string_equal(h.method, "POST");
	assert_int_equal(h.content_length, 11);
	assert_int_equal(h.chunked, 0);
	p11pki_http_head_clear(&h);

	/* equal copies, a list of equal values, leading zeros: one length */
	parse_ok("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-length: 005\r\n"
		 "CONTENT-LENGTH: 5, 5\r\n\r\n", &h);
	assert_int_equal(h.content_length, 5);
	p11pki_http_head_clear(&h);

	parse_ok("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 999999999999999999\r\n\r\n", &h);
	assert_int_equal(h.content_length, 999999999999999999LL);
	p11pki_http_head_clear(&h);

	parse_ok("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", &h);
	assert_int_equal(h.content_length, 0);
	p11pki_http_head_clear(&h);
}

static void test_chunked(void **state)
{
	struct p11pki_http_head h;

	parse_ok("POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", &h);
	assert_int_equal(h.chunked, 1);
	assert_int_equal(h.content_length, -1);
	p11pki_http_head_clear(&h);

	parse_ok("POST /up HTTP/1.1\r\nHost: a\r\ntransfer-encoding:  CHUNKED \r\n\r\n", &h);
	assert_int_equal(h.chunked, 1);
	p11pki_http_head_clear(&h);
}

static void test_pipelined(void **state)
{
	static const char first[] = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n";
	static const char both[] = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
				   "GET /2 HTTP/1.1\r\nHost: b\r\n\r\n"
				   "\x16\x03\x01junk\0junk";
	struct p11pki_http_head h;
	size_t first_len = strlen(first);

	parse_ok_n(both, sizeof(both) - 1, first_len, &h);
	assert_string_equal(h.target, "/1");
	assert_string_equal(h.host, "a");
	p11pki_http_head_clear(&h);
	parse_ok_n(both + first_len, sizeof(both) - 1 - first_len, first_len, &h);
	assert_string_equal(h.target, "/2");
	assert_string_equal(h.host, "b");
	p11pki_http_head_clear(&h);
	refused_n(both + 2 * first_len, sizeof(both) - 1 - 2 * first_len, "control character 0x16");
}

/* The caller feeds what arrived so far: every proper prefix needs more. */
static void test_byte_by_byte(void **state)
{
	static const char msg[] = "\r\n\r\nPOST /form HTTP/1.1\r\nHost: example.com\r\n"
				  "Content-Type: application/x-www-form-urlencoded\r\n"
				  "Content-Length: 7\r\n\r\na=b&c=d";
	size_t head_len = strlen(msg) - 7, k, consumed;
	struct p11pki_http_head h;
	char *buf;

	for (k = 0; k < head_len; k++) {
		/* an exact-size copy, so ASan sees any read past the data */
		buf = malloc(k ? k : 1);
		assert_non_null(buf);
		memcpy(buf, msg, k);
		consumed = 99;
		assert_int_equal(p11pki_http_head_parse(buf, k, &consumed, &h), P11PKI_HTTP_MORE);
		assert_int_equal(consumed, 0);
		assert_null(h.storage);
		free(buf);
	}
	for (; k <= strlen(msg); k++) {
		buf = malloc(k);
		assert_non_null(buf);
		memcpy(buf, msg, k);
		parse_ok_n(buf, k, head_len, &h);
		free(buf);
		assert_string_equal(h.target, "/form");
		assert_int_equal(h.content_length, 7);
		p11pki_http_head_clear(&h);
	}
	assert_int_equal(p11pki_http_head_parse(NULL, 0, &consumed, &h), P11PKI_HTTP_MORE);
}

static void test_malformed_request_line(void **state)
{
	refused("GET /\r\n\r\n", "HTTP/0.9");
	refused("GET\r\n\r\n", "malformed request line 'GET'");
	refused("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "HTTP/2 connection preface");
	/* refused from the request line alone, without waiting for the rest */
	refused("PRI * HTTP/2.0\r\n", "HTTP/2 connection preface");
	refused("GET / HTTP/2.0\r\nHost: a\r\n\r\n", "HTTP/2.0 is not supported");
	refused("GET / HTTP/1.2\r\nHost: a\r\n\r\n", "unsupported HTTP version 'HTTP/1.2'");
	refused("GET / http/1.1\r\nHost: a\r\n\r\n", "unsupported HTTP version");
	refused("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", "malformed request line 'GET / HTTP/1.1 '");
	refused("GET / HTTP/1.1 x\r\n", "(more than two spaces)");
	refused("GET / a HTTP/1.1\r\n", "(more than two spaces)");
	refused("G(T / HTTP/1.1\r\nHost: a\r\n\r\n", "request method 'G(T' is not a token");
	refused(" GET / HTTP/1.1\r\nHost: a\r\n\r\n", "request method '' is not a token");
	refused("GE\xc3\x89T / HTTP/1.1\r\n\r\n", "request method 'GE??T' is not a token");
	refused("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", "empty target");
	refused("GET http://evil/ HTTP/1.1\r\nHost: a\r\n\r\n", "'http://evil/' must start with '/'");
	refused("GET * HTTP/1.1\r\nHost: a\r\n\r\n", "must start with '/'");
	refused("CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n", "CONNECT is not supported");
	refused("GET /\xff HTTP/1.1\r\nHost: a\r\n\r\n", "request target contains byte 0xff");
	refused("GET /\ta HTTP/1.1\r\n", "request target contains byte 0x09");
}

static void test_malformed_bytes(void **state)
{
	refused("GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n", "bare CR");
	refused("GET / HTTP/1.1\r\rHost: a\r\n\r\n", "bare CR");
	refused("GET / HTTP/1.1\nHost: a\n\n", "bare LF");
	refused("GET / HTTP/1.1\r\nHost: a\r\n\n", "bare LF");
	refused("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", "bare LF");
	refused_n("GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n", 28, "NUL byte");
	refused_n("GET /\0 HTTP/1.1\r\n", 17, "NUL byte");
	refused("GET / HTTP/1.1\r\nHost: a\x01\r\n\r\n", "control character 0x01");
	refused("GET / HTTP/1.1\r\nX: \x7f\r\n\r\n", "control character 0x7f");
	/* refused as soon as it arrives, before the head is complete */
	refused("\x16\x03\x01\x02\x00", "control character 0x16");
}

static void test_malformed_fields(void **state)
{
	refused("GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n  continued\r\n\r\n", "obsolete line folding");
	refused("GET / HTTP/1.1\r\nHost: a\r\n\tcontinued\r\n\r\n", "obsolete line folding");
	refused("GET / HTTP/1.1\r\nHo st: a\r\n\r\n", "header name 'Ho st' is not a token");
	refused("GET / HTTP/1.1\r\nHost : a\r\n\r\n", "whitespace before ':' in header 'Host '");
	refused("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", "whitespace before ':'");
	refused("GET / HTTP/1.1\r\nX-\xc3\xa9: a\r\n\r\n", "is not a token");
	refused("GET / HTTP/1.1\r\nX(y): a\r\n\r\n", "header name 'X(y)' is not a token");
	refused("GET / HTTP/1.1\r\nHost: a\r\nnocolon\r\n\r\n", "header line 'nocolon' has no ':'");
	refused("GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n", "empty header name");
	refused("GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 request without Host header");
	refused("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", "more than one Host header");
	refused("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", "more than one Host header");
	refused("GET / HTTP/1.0\r\nHost: a/b\r\n\r\n", "invalid Host header 'a/b'");
	refused("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", "invalid Host header 'a b'");
	refused("GET / HTTP/1.1\r\nHost: user@a\r\n\r\n", "invalid Host header");
}

static void test_malformed_framing(void **state)
{
	static const char *bad_cl[] = { "abc", "-1", "+5", "5 5", "", "0x10", "5,", ",5", "5;",
					"1e3", "\xd9\xa5" };
	char head[128];
	size_t i;

	for (i = 0; i < sizeof(bad_cl) / sizeof(bad_cl[0]); i++) {
		snprintf(head, sizeof(head), "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: %s\r\n\r\n",
			 bad_cl[i]);
		refused(head, "invalid Content-Length");
	}
	refused("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000000000000000\r\n\r\n",
		"Content-Length '1000000000000000000' is too large");
	refused("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
		"differing Content-Length values 5 and 6");
	refused("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n",
		"differing Content-Length values in '5, 6'");
	/* request smuggling, in both orders and whatever the coding */
	refused("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
		"both Content-Length and Transfer-Encoding");
	refused("POST / HTTP/1.1\r\nHost: a\r\ntransfer-encoding: chunked\r\ncontent-length: 0\r\n\r\n",
		"request smuggling");
	refused("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\nContent-Length: 3\r\n\r\n",
		"request smuggling");
	refused("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
		"unsupported Transfer-Encoding 'gzip' (only chunked)");
	refused("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
		"unsupported Transfer-Encoding");
	refused("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
		"unsupported Transfer-Encoding");
	refused("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
		"Transfer-Encoding: chunked\r\n\r\n", "more than one Transfer-Encoding header");
	refused("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
		"Transfer-Encoding in an HTTP/1.0 request");
}

/* A head of exactly total bytes: request line, Host, padding headers. */
static char *make_head(size_t total)
{
	static const char start[] = "GET / HTTP/1.1\r\nHost: a\r\n";
	char *s = malloc(total + 1);
	size_t pos = strlen(start), left, v, i = 0;

	assert_non_null(s);
	memcpy(s, start, pos);
	while ((left = total - pos - 2) > 0) {
		/* "X-Pad: " + value + CRLF; the last one takes the rest */
		v = left > 4000 + 9 + 12 ? 4000 : left - 9;
		memcpy(s + pos, "X-Pad: ", 7);
		memset(s + pos + 7, 'a' + (char)(i++ % 26), v);
		memcpy(s + pos + 7 + v, "\r\n", 2);
		pos += v + 9;
	}
	memcpy(s + pos, "\r\n", 2);
	s[total] = '\0';
	return s;
}

static void test_size_limits(void **state)
{
	struct p11pki_http_head h;
	size_t consumed;
	char *s;

	s = make_head(P11PKI_HTTP_HEAD_MAX);
	parse_ok(s, &h);
	assert_int_equal(h.n_headers, 6);
	p11pki_http_head_clear(&h);
	/* an incomplete head one byte short of the limit may still end */
	assert_int_equal(p11pki_http_head_parse(s, P11PKI_HTTP_HEAD_MAX - 1, &consumed, &h),
			 P11PKI_HTTP_MORE);
	free(s);

	s = make_head(P11PKI_HTTP_HEAD_MAX + 1);
	refused(s, "request head larger than 16384 bytes");
	/* with 16384 bytes and no end yet, it cannot fit any more */
	refused_n(s, P11PKI_HTTP_HEAD_MAX, "request head larger than 16384 bytes");
	free(s);

	s = make_head(40000);
	refused(s, "request head larger than 16384 bytes");
	free(s);
}

static void test_line_limit(void **state)
{
	struct p11pki_http_head h;
	size_t n = P11PKI_HTTP_LINE_MAX;
	char *s = malloc(n + 64);

	assert_non_null(s);
	/* a header line of exactly 8192 bytes is fine */
	memcpy(s, "GET / HTTP/1.1\r\nHost: a\r\nX: ", 28);
	memset(s + 28, 'v', n - 3);
	memcpy(s + 25 + n, "\r\n\r\n", 5);
	parse_ok(s, &h);
	assert_int_equal(strlen(h.headers[1].value), n - 3);
	p11pki_http_head_clear(&h);
	/* one more byte is refused, even before the line ends */
	memset(s + 28, 'v', n - 2);
	memcpy(s + 26 + n, "\r\n\r\n", 5);
	refused(s, "header line longer than 8192 bytes");
	refused_n(s, 26 + n, "header line longer than 8192 bytes");

	memcpy(s, "GET /", 5);
	memset(s + 5, 'p', n - 5 - 9 + 1);
	memcpy(s + n - 9 + 1, " HTTP/1.1\r\n", 12);
	refused(s, "request line longer than 8192 bytes");
	free(s);
}

static void test_header_count(void **state)
{
	struct p11pki_http_head h;
	char *s = malloc(8192), *p;
	int i;

	assert_non_null(s);
	p = s + snprintf(s, 64, "GET / HTTP/1.1\r\nHost: a\r\n");
	for (i = 1; i < P11PKI_HTTP_MAX_HEADERS; i++)
		p += snprintf(p, 32, "X-H%d: %d\r\n", i, i);
	memcpy(p, "\r\n", 3);
	parse_ok(s, &h);
	assert_int_equal(h.n_headers, 100);
	assert_string_equal(h.headers[99].name, "X-H99");
	p11pki_http_head_clear(&h);
	memcpy(p, "X-H100: 100\r\n\r\n", 16);
	refused(s, "more than 100 header fields");
	free(s);
}

static void test_rewrite_strips_spoofed(void **state)
{
	static const char want[] = "GET /app?x=1 HTTP/1.1\r\n"
				   "Host: app.example.com\r\n"
				   "Accept: */*\r\n"
				   "X-Client: kept\r\n"
				   "X-Clients-Verify: kept\r\n"
				   "Connection: close\r\n"
				   "X-Forwarded-For: 192.0.2.7\r\n"
				   "X-Forwarded-Proto: https\r\n"
				   "X-Client-Verify: NONE\r\n"
				   "\r\n";
	struct p11pki_http_head out;
	char *text;

	text = rewrite("GET /app?x=1 HTTP/1.1\r\n"
		       "Host: app.example.com\r\n"
		       "X-Client-Verify: SUCCESS\r\n"
		       "x-client-cert: -----BEGIN%20CERTIFICATE-----\r\n"
		       "X-CLIENT-SUBJECT: CN=admin\r\n"
		       "X_Client_Serial: 01\r\n"
		       "x-client-verify: SUCCESS\r\n"
		       "Accept: */*\r\n"
		       "X-Forwarded-For: 10.0.0.1\r\n"
		       "x-forwarded-proto: http\r\n"
		       "X-Forwarded-Host: evil\r\n"
		       "X_FORWARDED_FOR: 10.0.0.2\r\n"
		       "Forwarded: for=10.0.0.3\r\n"
		       "X-Real-IP: 10.0.0.4\r\n"
		       "Proxy: http://evil:3128\r\n"
		       "X-Client: kept\r\n"
		       "X-Clients-Verify: kept\r\n"
		       "\r\n", &no_cert, &out);
	assert_string_equal(text, want);
	assert_int_equal(count_headers(&out, "X-Client-Verify"), 1);
	assert_string_equal(p11pki_http_head_find(&out, "x-client-verify"), "NONE");
	assert_null(p11pki_http_head_find(&out, "X-Client-Cert"));
	assert_null(p11pki_http_head_find(&out, "X-Client-Subject"));
	p11pki_http_head_clear(&out);
	free(text);
}

static void test_rewrite_with_cert(void **state)
{
	static const struct p11pki_client_info ci = { "SUCCESS", TEST_SUBJECT, TEST_SERIAL, TEST_PEM,
						      "2001:db8::42" };
	static const char want[] = "POST /api HTTP/1.1\r\n"
				   "Host: a\r\n"
				   "Content-Length: 3\r\n"
				   "Connection: close\r\n"
				   "X-Forwarded-For: 2001:db8::42\r\n"
				   "X-Forwarded-Proto: https\r\n"
				   "X-Client-Verify: SUCCESS\r\n"
				   "X-Client-Subject: " TEST_SUBJECT "\r\n"
				   "X-Client-Serial: " TEST_SERIAL "\r\n"
				   "X-Client-Cert: " TEST_PEM_ENCODED "\r\n"
				   "\r\n";
	static const char *ours[] = { "X-Client-Verify", "X-Client-Subject", "X-Client-Serial",
				      "X-Client-Cert", "X-Forwarded-For", "X-Forwarded-Proto",
				      "Connection" };
	struct p11pki_http_head out;
	char *text;
	size_t i;

	text = rewrite("POST /api HTTP/1.1\r\nHost: a\r\nX-Client-Cert: forged\r\n"
		       "X-Client-Subject: CN=root\r\nContent-Length: 3\r\n\r\n", &ci, &out);
	assert_string_equal(text, want);
	for (i = 0; i < sizeof(ours) / sizeof(ours[0]); i++)
		assert_int_equal(count_headers(&out, ours[i]), 1);
	assert_string_equal(p11pki_http_head_find(&out, "X-Client-Cert"), TEST_PEM_ENCODED);
	assert_int_equal(out.content_length, 3);
	p11pki_http_head_clear(&out);
	free(text);
}

static void test_rewrite_connection(void **state)
{
	static const char want[] = "POST /ws HTTP/1.0\r\n"
				   "Host: a\r\n"
				   "Content-Length: 0\r\n"
				   "X-Other: 2\r\n"
				   "Connection: close\r\n"
				   "X-Forwarded-For: 192.0.2.7\r\n"
				   "X-Forwarded-Proto: https\r\n"
				   "X-Client-Verify: NONE\r\n"
				   "\r\n";
	struct p11pki_http_head out;
	char *text;

	/* Connection may not take Host or the framing away from the backend */
	text = rewrite("POST /ws HTTP/1.0\r\n"
		       "Connection: keep-alive, Upgrade,x-secret , Host, Content-Length\r\n"
		       "Host: a\r\n"
		       "Keep-Alive: timeout=5\r\n"
		       "Proxy-Connection: keep-alive\r\n"
		       "Upgrade: websocket\r\n"
		       "X-Secret: 1\r\n"
		       "Content-Length: 0\r\n"
		       "CONNECTION: Upgrade\r\n"
		       "Close: 1\r\n"
		       "X-Other: 2\r\n"
		       "\r\n", &no_cert, &out);
	assert_string_equal(text, want);
	assert_int_equal(count_headers(&out, "Connection"), 1);
	p11pki_http_head_clear(&out);
	free(text);
}

static void test_rewrite_normalizes_length(void **state)
{
	struct p11pki_http_head out;
	char *text;

	text = rewrite("PUT /f HTTP/1.1\r\nHost: a\r\ncontent-length: 005\r\nX: 1\r\n"
		       "Content-Length: 5, 5\r\n\r\n", &no_cert, &out);
	assert_non_null(strstr(text, "\r\ncontent-length: 5\r\nX: 1\r\nConnection: close\r\n"));
	assert_int_equal(count_headers(&out, "Content-Length"), 1);
	assert_int_equal(out.content_length, 5);
	p11pki_http_head_clear(&out);
	free(text);

	text = rewrite("PUT /f HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
		       &no_cert, &out);
	assert_int_equal(out.chunked, 1);
	assert_int_equal(count_headers(&out, "Transfer-Encoding"), 1);
	p11pki_http_head_clear(&out);
	free(text);
}

/* Whatever a certificate or verify reason holds cannot add a header. */
static void test_rewrite_escapes(void **state)
{
	static const struct p11pki_client_info ci = {
		"FAILED:bad\r\nX-Injected: 1", " CN=a\nX-Injected: 2,O=b ", "0a", "a\r\nb c+/=",
		"fe80::1%eth0"
	};
	struct p11pki_http_head out;
	char *text;

	text = rewrite("GET / HTTP/1.1\r\nHost: a\r\n\r\n", &ci, &out);
	assert_null(p11pki_http_head_find(&out, "X-Injected"));
	assert_string_equal(p11pki_http_head_find(&out, "X-Client-Verify"),
			    "FAILED:bad\\0D\\0AX-Injected: 1");
	assert_string_equal(p11pki_http_head_find(&out, "X-Client-Subject"),
			    "\\20CN=a\\0AX-Injected: 2,O=b\\20");
	assert_string_equal(p11pki_http_head_find(&out, "X-Client-Serial"), "0a");
	assert_string_equal(p11pki_http_head_find(&out, "X-Client-Cert"), "a%0D%0Ab%20c%2B%2F%3D");
	assert_string_equal(p11pki_http_head_find(&out, "X-Forwarded-For"), "fe80::1%eth0");
	p11pki_http_head_clear(&out);
	free(text);
}

static void rewrite_refused(const struct p11pki_client_info *ci, const char *want)
{
	struct p11pki_http_head h;
	char *text = (char *)1;
	size_t len = 99;

	parse_ok("GET / HTTP/1.1\r\nHost: a\r\n\r\n", &h);
	assert_int_equal(p11pki_http_head_rewrite(&h, ci, &text, &len), P11PKI_E_ARG);
	assert_null(text);
	assert_int_equal(len, 0);
	if (strstr(p11pki_errmsg(), want) == NULL)
		print_error("message '%s' lacks '%s'\n", p11pki_errmsg(), want);
	assert_non_null(strstr(p11pki_errmsg(), want));
	p11pki_http_head_clear(&h);
}

static void test_rewrite_bad_info(void **state)
{
	struct p11pki_client_info ci = no_cert;
	char *big = malloc(P11PKI_HTTP_CERT_MAX + 2);

	assert_non_null(big);
	rewrite_refused(NULL, "without verify result");
	ci.verify = NULL;
	rewrite_refused(&ci, "without verify result");
	ci = no_cert;
	ci.client_ip = NULL;
	rewrite_refused(&ci, "without verify result");
	ci = no_cert;
	ci.verify = "MAYBE";
	rewrite_refused(&ci, "must be SUCCESS, NONE or FAILED:reason");
	ci = no_cert;
	ci.serial = "0x12";
	rewrite_refused(&ci, "not hexadecimal");
	ci.serial = "";
	rewrite_refused(&ci, "not hexadecimal");
	ci = no_cert;
	ci.client_ip = "1.2.3.4\r\nX: y";
	rewrite_refused(&ci, "not an IP address");
	ci.client_ip = "";
	rewrite_refused(&ci, "not an IP address");
	ci = no_cert;
	memset(big, 'A', P11PKI_HTTP_CERT_MAX + 1);
	big[P11PKI_HTTP_CERT_MAX + 1] = '\0';
	ci.cert_pem = big;
	rewrite_refused(&ci, "client certificate PEM longer than 65536 bytes");
	free(big);
}

static void test_healthz(void **state)
{
	static const struct {
		const char *head;
		int want;
	} cases[] = {
		{ "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n", 1 },
		{ "GET /healthz?verbose=1 HTTP/1.1\r\nHost: a\r\n\r\n", 1 },
		{ "GET /healthz HTTP/1.0\r\n\r\n", 1 },
		{ "HEAD /healthz HTTP/1.1\r\nHost: a\r\n\r\n", 0 },
		{ "POST /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", 0 },
		{ "get /healthz HTTP/1.1\r\nHost: a\r\n\r\n", 0 },
		{ "GET /healthz/x HTTP/1.1\r\nHost: a\r\n\r\n", 0 },
		{ "GET /healthzz HTTP/1.1\r\nHost: a\r\n\r\n", 0 },
		{ "GET /HEALTHZ HTTP/1.1\r\nHost: a\r\n\r\n", 0 },
		{ "GET /app/healthz HTTP/1.1\r\nHost: a\r\n\r\n", 0 },
	};
	struct p11pki_http_head h;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		parse_ok(cases[i].head, &h);
		assert_int_equal(p11pki_http_is_healthz(&h), cases[i].want);
		p11pki_http_head_clear(&h);
	}
	assert_int_equal(p11pki_http_is_healthz(NULL), 0);
	assert_int_equal(p11pki_http_is_healthz(&h), 0);	/* cleared */
}

static void test_simple_response(void **state)
{
	char *out = (char *)1;
	size_t len = 99;

	assert_int_equal(p11pki_http_simple_response(200, "OK", "text/plain", "ok\n", &out, &len),
			 P11PKI_OK);
	assert_string_equal(out, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
			    "Content-Length: 3\r\nConnection: close\r\n\r\nok\n");
	assert_int_equal(len, strlen(out));
	free(out);

	assert_int_equal(p11pki_http_simple_response(503, "Service Unavailable", NULL, NULL,
						     &out, &len), P11PKI_OK);
	assert_string_equal(out, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
			    "Connection: close\r\n\r\n");
	free(out);

	assert_int_equal(p11pki_http_simple_response(400, "Bad Request", "text/plain",
						     "bad request\n", &out, &len), P11PKI_OK);
	assert_non_null(strstr(out, "\r\nContent-Length: 12\r\n"));
	free(out);

	assert_int_equal(p11pki_http_simple_response(99, "x", NULL, NULL, &out, &len), P11PKI_E_ARG);
	assert_null(out);
	assert_int_equal(p11pki_http_simple_response(600, "x", NULL, NULL, &out, &len), P11PKI_E_ARG);
	assert_int_equal(p11pki_http_simple_response(200, "OK\r\nX: y", NULL, NULL, &out, &len),
			 P11PKI_E_ARG);
	assert_int_equal(p11pki_http_simple_response(200, "OK", "text/html\n", NULL, &out, &len),
			 P11PKI_E_ARG);
	assert_int_equal(p11pki_http_simple_response(200, NULL, NULL, NULL, &out, &len), P11PKI_E_ARG);
	assert_null(out);
	assert_int_equal(len, 0);
}

static void status_is(const char *s, int want)
{
	int status = -1, r = p11pki_http_status_parse(s, strlen(s), &status);

	if (r != P11PKI_OK)
		print_error("'%s': %s\n", s, p11pki_errmsg());
	assert_int_equal(r, P11PKI_OK);
	assert_int_equal(status, want);
}

static void status_refused(const char *s, const char *want)
{
	int status = -1;

	assert_int_equal(p11pki_http_status_parse(s, strlen(s), &status), P11PKI_E_ARG);
	assert_int_equal(status, 0);
	if (strstr(p11pki_errmsg(), want) == NULL)
		print_error("message '%s' lacks '%s'\n", p11pki_errmsg(), want);
	assert_non_null(strstr(p11pki_errmsg(), want));
	assert_null(strchr(p11pki_errmsg(), '\n'));
}

static void test_status_parse(void **state)
{
	static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
	size_t k;
	int status;
	char *big;

	status_is(answer, 200);
	status_is("HTTP/1.0 503 Service Unavailable\r\n", 503);
	status_is("HTTP/1.1 204\r\n", 204);
	status_is("HTTP/1.1 302 \r\n", 302);
	status_is("HTTP/1.1 404 Not Found\n", 404);
	status_is("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n", 100);
	/* every prefix of the status line needs more */
	for (k = 0; k < strlen("HTTP/1.1 200 OK\r\n"); k++) {
		status = -1;
		assert_int_equal(p11pki_http_status_parse(answer, k, &status), P11PKI_HTTP_MORE);
		assert_int_equal(status, 0);
	}
	/* a wrong start is refused at once */
	status_refused("SSH-2.0-OpenSSH_9.2\r\n", "does not start with 'HTTP/1.'");
	status_refused("SSH", "does not start with 'HTTP/1.'");
	status_refused("HTTP/2 200\r\n", "does not start with 'HTTP/1.'");
	status_refused("\x15\x03\x03\x00\x02", "does not start with 'HTTP/1.'");
	status_refused("HTTP/1.1 20\r\n", "malformed status line 'HTTP/1.1 20'");
	status_refused("HTTP/1.1 2000 OK\r\n", "malformed status line");
	status_refused("HTTP/1.1  200 OK\r\n", "malformed status line");
	status_refused("HTTP/1.x 200 OK\r\n", "malformed status line");
	status_refused("HTTP/1.1 2x0 OK\r\n", "malformed status line");
	status_refused("HTTP/1.1 099 Low\r\n", "status code 99 is not in 100..599");
	status_refused("HTTP/1.1 600 High\r\n", "status code 600");
	status_refused("HTTP/1.1 200 O\rK\r\n", "control character 0x0d");

	big = malloc(P11PKI_HTTP_LINE_MAX + 3);
	assert_non_null(big);
	memcpy(big, "HTTP/1.1 200 ", 13);
	memset(big + 13, 'x', P11PKI_HTTP_LINE_MAX + 2 - 13);
	big[P11PKI_HTTP_LINE_MAX + 2] = '\0';
	status_refused(big, "status line longer than 8192 bytes");
	free(big);

	assert_int_equal(p11pki_http_status_parse(NULL, 0, &status), P11PKI_HTTP_MORE);
	assert_int_equal(p11pki_http_status_parse("HTTP/1.1 200 OK\r\n", 17, NULL), P11PKI_E_ARG);
}

static void test_arguments(void **state)
{
	struct p11pki_http_head h;
	size_t consumed = 99, len = 99;
	char *out = (char *)1;

	assert_int_equal(p11pki_http_head_parse(NULL, 5, &consumed, &h), P11PKI_E_ARG);
	assert_int_equal(consumed, 0);
	assert_int_equal(p11pki_http_head_parse("x", 1, NULL, &h), P11PKI_E_ARG);
	assert_int_equal(p11pki_http_head_parse("x", 1, &consumed, NULL), P11PKI_E_ARG);
	assert_int_equal(p11pki_http_head_rewrite(NULL, &no_cert, &out, &len), P11PKI_E_ARG);
	assert_null(out);
	assert_int_equal(len, 0);
	parse_ok("GET / HTTP/1.1\r\nHost: a\r\n\r\n", &h);
	assert_int_equal(p11pki_http_head_rewrite(&h, &no_cert, NULL, &len), P11PKI_E_ARG);
	p11pki_http_head_clear(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_simple_get),
		cmocka_unit_test(test_http10_and_options),
		cmocka_unit_test(test_post_body),
		cmocka_unit_test(test_chunked),
		cmocka_unit_test(test_pipelined),
		cmocka_unit_test(test_byte_by_byte),
		cmocka_unit_test(test_malformed_request_line),
		cmocka_unit_test(test_malformed_bytes),
		cmocka_unit_test(test_malformed_fields),
		cmocka_unit_test(test_malformed_framing),
		cmocka_unit_test(test_size_limits),
		cmocka_unit_test(test_line_limit),
		cmocka_unit_test(test_header_count),
		cmocka_unit_test(test_rewrite_strips_spoofed),
		cmocka_unit_test(test_rewrite_with_cert),
		cmocka_unit_test(test_rewrite_connection),
		cmocka_unit_test(test_rewrite_normalizes_length),
		cmocka_unit_test(test_rewrite_escapes),
		cmocka_unit_test(test_rewrite_bad_info),
		cmocka_unit_test(test_healthz),
		cmocka_unit_test(test_simple_response),
		cmocka_unit_test(test_status_parse),
		cmocka_unit_test(test_arguments),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
