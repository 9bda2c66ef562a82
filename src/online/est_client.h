/* Private to the library: the EST client (RFC 7030) behind `p11pki
 * enroll` and `p11pki renew`. One HTTPS connection per operation
 * (Connection: close): TCP with timeouts, TLS 1.2+ verified against a CA
 * file and the server's host name, optionally a client certificate whose
 * key is on a token, one HTTP/1.1 request, the whole answer read (capped).
 *
 * The parsers below work on memory only (no sockets, no tokens), so they
 * are unit-tested and fuzzed on their own. */
#ifndef P11PKI_ONLINE_EST_CLIENT_H
#define P11PKI_ONLINE_EST_CLIENT_H

#include <stddef.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <p11pki/core.h>

#define P11PKI_EST_CLIENT_ANSWER_MAX (1u << 20)	/* head and body of an answer */
#define P11PKI_EST_CLIENT_HEAD_MAX 16384	/* status line and header fields */
#define P11PKI_EST_CLIENT_TIMEOUT_MS 30000	/* connect, and each read or write */
/* Returned by the response parser while the answer is incomplete. */
#define P11PKI_EST_CLIENT_MORE 1

/* ---- the server's address ------------------------------------------------ */

/* "https://HOST[:PORT][/]": HOST is a DNS name, an IPv4 address or an
 * [IPv6] address in brackets. */
struct p11pki_est_url {
	char host[256];		/* without brackets: for DNS, SNI and the name check */
	char port[6];		/* "443" unless given */
	char authority[272];	/* the Host header: "host", "host:8443", "[::1]:8443" */
	int is_ip;		/* host is an address: no SNI */
};
/* Parses --server. Anything else (http://, a path, user info, a query) is
 * P11PKI_E_ARG saying what to give instead. */
int p11pki_est_client_parse_url(const char *text, struct p11pki_est_url *out);
/* Letters, digits, '-' and '.': host names and EST labels. */
int p11pki_est_host_char(unsigned char c);

/* ---- answers ------------------------------------------------------------- */

struct p11pki_est_response {
	int status;		/* 200..599 (1xx interim answers are skipped) */
	char reason[64];	/* the reason phrase, printable ASCII */
	char content_type[96];	/* media type, lower case, parameters dropped; "" if none */
	long retry_after;	/* Retry-After in seconds from now; -1 when absent or unreadable */
	unsigned char *body;	/* the body (chunked coding removed), NUL-terminated; owned */
	size_t body_len;
};

/* Parses an HTTP/1.x answer in buf[0..len). eof says the peer has closed
 * the connection (a body without Content-Length or chunked coding runs to
 * the close). Returns P11PKI_OK with *out filled (free it with
 * p11pki_est_client_response_clear), P11PKI_EST_CLIENT_MORE while more
 * bytes are needed (never once eof is set), or P11PKI_E_ARG for a
 * malformed, truncated or oversized answer (head over
 * P11PKI_EST_CLIENT_HEAD_MAX, whole answer over
 * P11PKI_EST_CLIENT_ANSWER_MAX). now resolves a Retry-After date. */
int p11pki_est_client_parse_response(const unsigned char *buf, size_t len, int eof, time_t now,
				     struct p11pki_est_response *out);
void p11pki_est_client_response_clear(struct p11pki_est_response *r);

/* Retry-After (RFC 9110 10.2.3): delta-seconds or an IMF-fixdate, as
 * seconds from now (a date in the past is 0). P11PKI_E_ARG otherwise. */
int p11pki_est_client_retry_after(const char *value, time_t now, long *seconds);

/* The server's one-line reason for an error answer, fit to quote: the
 * first line of a text body (control characters and non-ASCII made '?',
 * cut to size), else the reason phrase, else "no reason given". */
void p11pki_est_client_reason(const struct p11pki_est_response *r, char *buf, size_t size);

/* The certificates of an EST certs-only answer (RFC 7030 4.1.3, 4.2.3):
 * base64 (line breaks allowed) of a degenerate PKCS#7 SignedData; a body
 * that is binary DER is accepted too. *out holds at least one
 * certificate; caller frees with sk_X509_pop_free(*out, X509_free). */
int p11pki_est_client_decode_certs(const unsigned char *body, size_t len, STACK_OF(X509) **out);

/* ---- renewal decision ----------------------------------------------------- */

/* 1 when a certificate valid until not_after is due for renewal at now:
 * it expires within `within` seconds (or has expired), else 0. */
P11PKI_API int p11pki_est_client_due(time_t not_after, time_t now, long within);
/* A certificate's notAfter as a time_t. */
P11PKI_API int p11pki_est_client_not_after(X509 *cert, time_t *out);

/* ---- the client ------------------------------------------------------------ */

struct p11pki_est_client {
	const char *server;		/* https://HOST[:PORT] */
	const char *label;		/* NULL: /.well-known/est/<op>; else .../est/<label>/<op> */
	const char *ca_file;		/* PEM trust anchors for the server's certificate */
	const char *user;		/* HTTP Basic user, or NULL for none */
	const p11pki_secret *secret;	/* its secret; required with user */
	EVP_PKEY *key;			/* TLS client key (a token key), or NULL */
	X509 *cert;			/* its certificate; required with key */
	STACK_OF(X509) *chain;		/* intermediates sent with cert, or NULL */
	unsigned timeout_ms;		/* 0: P11PKI_EST_CLIENT_TIMEOUT_MS */
};

/* What the server answered, also on failure: status 0 means there was no
 * HTTP answer (connection or TLS failure). retry_after is -1 unless a 202
 * or 503 carried one. */
struct p11pki_est_reply {
	int status;
	long retry_after;
};

/* GET /cacerts: the CA certificates the server names. A non-200 answer is
 * a failure whose message quotes the status and the server's reason.
 * Caller frees *out with sk_X509_pop_free(*out, X509_free). The caller
 * ignores SIGPIPE (a server that closes early must not kill it). */
P11PKI_API int p11pki_est_client_cacerts(const struct p11pki_est_client *c, STACK_OF(X509) **out,
					 struct p11pki_est_reply *reply);

/* POST /simpleenroll (or /simplereenroll when reenroll is set) with req:
 * the certificates of the answer (the issued one, maybe its issuers).
 * 400/401/403 are P11PKI_E_POLICY, other statuses (202 pending included:
 * reply->status tells, reply->retry_after when given) P11PKI_E_IO; each
 * message reads "server https://HOST:PORT answered STATUS REASON:
 * SERVER'S REASON". Caller frees *out as above. */
P11PKI_API int p11pki_est_client_enroll(const struct p11pki_est_client *c, X509_REQ *req, int reenroll,
					STACK_OF(X509) **out, struct p11pki_est_reply *reply);

#endif
