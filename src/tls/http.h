/* Private to the library: the HTTP/1.x request heads the proxy reads from
 * TLS clients in http mode, their rewrite toward a backend (client
 * certificate headers, X-Forwarded-*, Connection: close), the small
 * answers the server makes itself (healthz, 400, 503), and the status
 * line of a backend's answer to a health check.
 *
 * Only the head is handled: the body (Content-Length bytes or chunked) is
 * copied by the caller as it is, which is why framing is checked so
 * strictly here (RFC 9112 section 6.3; request smuggling). */
#ifndef P11PKI_TLS_HTTP_H
#define P11PKI_TLS_HTTP_H

#include <stddef.h>

#include <p11pki/core.h>

/* Returned by the parsers while the input is a valid but incomplete
 * prefix: read more and call again with the whole buffer. */
#define P11PKI_HTTP_MORE 1

#define P11PKI_HTTP_HEAD_MAX 16384	/* request line + headers + blank line */
#define P11PKI_HTTP_LINE_MAX 8192	/* one line, without its CRLF */
#define P11PKI_HTTP_MAX_HEADERS 100
#define P11PKI_HTTP_OUT_MAX 262144	/* any head or answer we build */

/* Bounds on what the TLS layer passes in struct p11pki_client_info. */
#define P11PKI_HTTP_VERIFY_MAX 512
#define P11PKI_HTTP_SUBJECT_MAX 16384
#define P11PKI_HTTP_SERIAL_MAX 128
#define P11PKI_HTTP_CERT_MAX 65536
#define P11PKI_HTTP_IP_MAX 64

/* One header field: NUL-terminated name as sent (case kept) and value
 * without leading or trailing whitespace. */
struct p11pki_http_header {
	const char *name;
	const char *value;
};

/* A parsed request head. Every pointer points into storage owned by the
 * struct and stays valid until p11pki_http_head_clear(). */
struct p11pki_http_head {
	const char *method;		/* "GET" (a token, case kept) */
	const char *target;		/* "/path?query", or "*" for OPTIONS */
	int version;			/* 10 for HTTP/1.0, 11 for HTTP/1.1 */
	struct p11pki_http_header *headers;
	size_t n_headers;
	long long content_length;	/* -1: no Content-Length */
	int chunked;			/* Transfer-Encoding: chunked */
	const char *host;		/* Host value, NULL if none (HTTP/1.0) */
	char *storage;			/* private: the copy the pointers use */
};

/* Parses the request head at the start of buf[0..len) (buf need not be
 * NUL-terminated; bytes after the head, such as a body or a pipelined
 * request, are left alone).
 *
 * Returns P11PKI_OK with *consumed = bytes of the head through its blank
 * line (empty lines before the request line included) and *out filled;
 * the caller frees it with p11pki_http_head_clear(). Returns
 * P11PKI_HTTP_MORE with *consumed = 0 and *out empty while the head is
 * incomplete, and P11PKI_E_ARG with a message naming the problem when it
 * is malformed (answer 400 and close): bad request line or version
 * (HTTP/0.9 and the HTTP/2 preface included), a method that is not a
 * token, a target that is not origin-form, NUL, bare CR or LF, other
 * control characters, obs-fold, a header name that is not a token, a line
 * longer than P11PKI_HTTP_LINE_MAX, more than P11PKI_HTTP_MAX_HEADERS
 * headers, a head larger than P11PKI_HTTP_HEAD_MAX, several or invalid
 * Host, HTTP/1.1 without Host, an invalid or differing Content-Length,
 * Transfer-Encoding other than "chunked" (or in HTTP/1.0), or both
 * Content-Length and Transfer-Encoding.
 *
 * Each call scans the buffer from its start; a caller feeding the data
 * piece by piece pays O(len) per call, bounded by P11PKI_HTTP_HEAD_MAX. */
int p11pki_http_head_parse(const char *buf, size_t len, size_t *consumed,
			   struct p11pki_http_head *out);

/* Frees what a successful parse allocated and empties h; fine on an empty
 * or already cleared head and on NULL. */
void p11pki_http_head_clear(struct p11pki_http_head *h);

/* Value of the first header named name (ASCII case-insensitive), or NULL.
 * The pointer belongs to h. */
const char *p11pki_http_head_find(const struct p11pki_http_head *h, const char *name);

/* 1 for "GET /healthz" (with or without a query), which the server
 * answers itself, else 0. */
int p11pki_http_is_healthz(const struct p11pki_http_head *h);

/* What the TLS layer knows about the client. Strings are borrowed. */
struct p11pki_client_info {
	const char *verify;	/* "SUCCESS", "NONE" or "FAILED:reason"; required */
	const char *subject;	/* RFC 4514, NULL without a certificate */
	const char *serial;	/* hex digits, NULL without a certificate */
	const char *cert_pem;	/* PEM, NULL without a certificate */
	const char *client_ip;	/* "192.0.2.1", "2001:db8::1"; required */
};

/* Builds the head to send to the backend: the request line as received;
 * the client's headers in order, minus those only the proxy may set
 * (X-Client-*, X-Forwarded-*, Forwarded, X-Real-IP, and Proxy against
 * httpoxy; ASCII case-insensitive, '_' counting as '-' since CGI-style
 * backends fold both into one variable name), minus the hop-by-hop ones
 * (Connection, Keep-Alive, Proxy-Connection, Close, and the fields the
 * Connection header names except Host, Content-Length and
 * Transfer-Encoding), with a single normalized Content-Length; then
 * Connection: close, X-Forwarded-For: client_ip, X-Forwarded-Proto: https,
 * X-Client-Verify, and for each one set: X-Client-Subject (control bytes,
 * and spaces at either end, escaped as RFC 4514 "\XX"),
 * X-Client-Serial, X-Client-Cert (the PEM percent-encoded: every byte but
 * ALPHA DIGIT - . _ ~, so newlines are %0A).
 *
 * On success *out is a NUL-terminated string of *out_len bytes that the
 * caller frees with free(). P11PKI_E_ARG for a client_info field that is
 * missing, too long or malformed (verify not one of the three forms, serial
 * not hex, client_ip not an address); *out is NULL on every failure. */
int p11pki_http_head_rewrite(const struct p11pki_http_head *h,
			     const struct p11pki_client_info *ci, char **out, size_t *out_len);

/* Builds a complete answer "HTTP/1.1 status reason" with Content-Type
 * (omitted when content_type is NULL), Content-Length, Connection: close
 * and body (NULL: empty). status is 100..599; reason and content_type
 * must be printable ASCII; the body is at most 64 KiB. Caller frees *out
 * (NUL-terminated, *out_len bytes) with free(). */
int p11pki_http_simple_response(int status, const char *reason, const char *content_type,
				const char *body, char **out, size_t *out_len);

/* Reads the status line "HTTP/1.x NNN reason" at the start of a backend's
 * answer to a health check. P11PKI_OK with *status (100..599),
 * P11PKI_HTTP_MORE while the line is incomplete (*status 0), or
 * P11PKI_E_ARG when it is not an HTTP/1.x status line; a wrong prefix is
 * refused as soon as it arrives. Which codes mean healthy (2xx, 3xx) is
 * the caller's choice. */
int p11pki_http_status_parse(const char *buf, size_t len, int *status);

#endif
