/* http mode, the CA online: a request for one of the binding's EST, OCSP
 * or CRL paths is answered here instead of proxied. Its body (Content-
 * Length only, up to [ online ] max_body) is read in full, the handler
 * (src/online) turns it into a complete answer, and the connection closes
 * once the answer is sent, as for every http-mode request. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/ssl.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include "online/online.h"
#include "tls/http.h"
#include "tls/server.h"

#define ANSWER_HEAD_MAX (ONLINE_HEADERS_MAX + 512)

/* What is kept of the head while the body arrives. */
struct tls_online_req {
	char *method, *path, *query, *content_type, *authorization;
	size_t body_len;
};

static char *dup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

void tls_online_free(struct tls_conn *c)
{
	struct tls_online_req *q = c->online;

	if (q == NULL)
		return;
	free(q->method);
	free(q->path);
	free(q->query);
	free(q->content_type);
	if (q->authorization != NULL)
		OPENSSL_clear_free(q->authorization, strlen(q->authorization)); /* Basic credentials */
	free(q);
	c->online = NULL;
}

static void send_answer(struct tls_conn *c, const struct online_response *rs, int head_only)
{
	char head[ANSWER_HEAD_MAX];
	int n;

	n = snprintf(head, sizeof(head),
		     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%sConnection: close\r\n\r\n",
		     rs->status, rs->reason != NULL ? rs->reason : "OK",
		     rs->content_type != NULL ? rs->content_type : "text/plain", rs->body_len, rs->headers);
	if (n < 0 || (size_t)n >= sizeof(head)) {
		tls_proxy_reply(c, NULL, 0);
		return;
	}
	tls_client_send(c, head, (size_t)n);
	if (!head_only && rs->body_len > 0)
		tls_client_send(c, rs->body, rs->body_len);
	tls_proxy_reply(c, NULL, 0);
}

static void send_text(struct tls_conn *c, int status, const char *reason, const char *text)
{
	struct online_response rs;

	memset(&rs, 0, sizeof(rs));
	online_respond(&rs, status, reason, "text/plain", text, (size_t)-1);
	send_answer(c, &rs, 0);
	online_response_clear(&rs);
}

/* The verified client certificate, or NULL (none, or one that failed
 * and was let through by client_auth = optional). A certificate whose
 * only fault is lacking clientAuth (a server's own certificate, renewing
 * itself) is passed on marked *renewal_only: EST checks it against its
 * CA and the store, and lets it re-enroll only its own subject. */
static X509 *client_cert(struct tls_conn *c, int *renewal_only)
{
	SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
	long v = ssl != NULL ? SSL_get_verify_result(ssl) : X509_V_ERR_UNSPECIFIED;

	*renewal_only = 0;
	if (ssl == NULL)
		return NULL;
	if (v == X509_V_OK && c->auth_reason == TLS_AUTH_OK)
		return SSL_get0_peer_certificate(ssl);
	if (v == X509_V_ERR_INVALID_PURPOSE && c->auth_reason == tls_auth_reason_of(X509_V_ERR_INVALID_PURPOSE)) {
		*renewal_only = 1;
		return SSL_get0_peer_certificate(ssl);
	}
	return NULL;
}

static void handle(struct tls_conn *c, const unsigned char *body)
{
	struct tls_online_req *q = c->online;
	struct online_request rq;
	struct online_response rs;

	memset(&rq, 0, sizeof(rq));
	memset(&rs, 0, sizeof(rs));
	rq.method = q->method;
	rq.path = q->path;
	rq.query = q->query;
	rq.content_type = q->content_type;
	rq.authorization = q->authorization;
	rq.body = body;
	rq.body_len = q->body_len;
	rq.client_cert = client_cert(c, &rq.client_cert_renewal_only);
	rq.client_ip = c->client_ip;
	rq.now = time(NULL);
	if (!online_route(c->gen->online, c->site->routes, &rq, &rs))
		online_respond(&rs, 404, "Not Found", "text/plain", "not found\n", (size_t)-1);
	p11pki_log(P11PKI_LOG_DEBUG, "binding %s: %s %s from %s: %d", c->site->b->name, q->method, q->path,
		   c->client_ip, rs.status);
	send_answer(c, &rs, strcmp(q->method, "HEAD") == 0);
	online_response_clear(&rs);
}

void tls_online_read(struct tls_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	size_t need = c->online->body_len;
	unsigned char *body;

	if (evbuffer_get_length(in) < need)
		return;
	bufferevent_disable(c->bev, EV_READ);
	body = need > 0 ? evbuffer_pullup(in, (ev_ssize_t)need) : NULL;
	handle(c, body);
	tls_online_free(c);
}

int tls_online_begin(struct tls_conn *c, const struct p11pki_http_head *h)
{
	struct online_service *svc = c->gen->online;
	const char *qm = strchr(h->target, '?');
	struct tls_online_req *q;

	if (svc == NULL || c->site->routes == NULL)
		return 0;
	if ((q = calloc(1, sizeof(*q))) == NULL) {
		send_text(c, 500, "Internal Server Error", "out of memory\n");
		return 1;
	}
	c->online = q;
	q->path = qm != NULL ? strndup(h->target, (size_t)(qm - h->target)) : strdup(h->target);
	if (q->path == NULL || !online_route_match(c->site->routes, q->path)) {
		tls_online_free(c);
		return 0;
	}
	if (h->chunked) {
		send_text(c, 411, "Length Required", "send the request with a Content-Length\n");
		return 1;
	}
	if (h->content_length > (long long)svc->max_body) {
		p11pki_log(P11PKI_LOG_INFO, "binding %s: %s sent %lld bytes to %s, more than max_body %zu",
			   c->site->b->name, c->client_ip, h->content_length, q->path, svc->max_body);
		send_text(c, 413, "Content Too Large", "request body too large\n");
		return 1;
	}
	q->body_len = h->content_length > 0 ? (size_t)h->content_length : 0;
	q->method = strdup(h->method);
	q->query = dup_or_null(qm != NULL ? qm + 1 : NULL);
	q->content_type = dup_or_null(p11pki_http_head_find(h, "Content-Type"));
	q->authorization = dup_or_null(p11pki_http_head_find(h, "Authorization"));
	if (q->method == NULL || (qm != NULL && q->query == NULL)) {
		send_text(c, 500, "Internal Server Error", "out of memory\n");
		return 1;
	}
	tls_online_read(c);
	return 1;
}
