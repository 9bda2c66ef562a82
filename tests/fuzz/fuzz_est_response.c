/* libFuzzer harness for what the EST client reads from a server: the HTTP
 * answer (status line, fields, Content-Length / chunked / to-the-close
 * framing, 1xx, Retry-After), the server's reason as quoted in messages,
 * and the certs-only PKCS#7 of the body (and of the whole input).
 * Checked: a failure is one line and leaves nothing allocated; "need
 * more" never comes once the peer has closed; an answer complete before
 * the close parses the same after it; quoted text is printable ASCII. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "online/est_client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW 1445400000

static void check_failure(int r, const struct p11pki_est_response *resp)
{
	const char *msg = p11pki_errmsg();

	if (r != P11PKI_E_ARG || resp->body != NULL || resp->body_len != 0 || msg[0] == '\0' ||
	    strchr(msg, '\n') != NULL)
		abort();
}

static void check_printable(const char *s, size_t max)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (i >= max || (unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			abort();
}

static void check_answer(const struct p11pki_est_response *r, size_t size)
{
	char reason[48];

	if (r->status < 200 || r->status > 599 || r->body == NULL || r->body_len > size ||
	    r->body[r->body_len] != '\0' || r->retry_after < -1)
		abort();
	check_printable(r->reason, sizeof(r->reason));
	check_printable(r->content_type, sizeof(r->content_type));
	p11pki_est_client_reason(r, reason, sizeof(reason));
	check_printable(reason, sizeof(reason));
}

static void check_certs(const unsigned char *body, size_t len)
{
	STACK_OF(X509) *certs = NULL;
	int r = p11pki_est_client_decode_certs(body, len, &certs);

	if (r == 0 && sk_X509_num(certs) < 1)
		abort();
	if (r != 0 && (certs != NULL || strchr(p11pki_errmsg(), '\n') != NULL))
		abort();
	sk_X509_pop_free(certs, X509_free);
}

static void check_retry_after(const uint8_t *data, size_t size)
{
	char value[64];
	long s = 0;

	if (size >= sizeof(value))
		size = sizeof(value) - 1;
	memcpy(value, data, size);
	value[size] = '\0';
	if (p11pki_est_client_retry_after(value, NOW, &s) == 0 && (s < 0 || s > 999999999))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct p11pki_est_response open_r, closed_r;
	int r_open, r_closed;

	r_open = p11pki_est_client_parse_response(data, size, 0, NOW, &open_r);
	r_closed = p11pki_est_client_parse_response(data, size, 1, NOW, &closed_r);
	if (r_closed == P11PKI_EST_CLIENT_MORE)
		abort();
	if (r_open == P11PKI_EST_CLIENT_MORE && open_r.body != NULL)
		abort();
	if (r_closed != 0)
		check_failure(r_closed, &closed_r);
	else
		check_answer(&closed_r, size);
	if (r_open != 0 && r_open != P11PKI_EST_CLIENT_MORE)
		check_failure(r_open, &open_r);
	if (r_open == 0) {
		/* framed by its head: the close changes nothing */
		check_answer(&open_r, size);
		if (r_closed != 0 || open_r.status != closed_r.status || open_r.body_len != closed_r.body_len ||
		    memcmp(open_r.body, closed_r.body, open_r.body_len) != 0 ||
		    open_r.retry_after != closed_r.retry_after)
			abort();
	}
	if (r_closed == 0)
		check_certs(closed_r.body, closed_r.body_len);
	p11pki_est_client_response_clear(&open_r);
	p11pki_est_client_response_clear(&closed_r);
	check_certs(data, size);
	check_retry_after(data, size);
	return 0;
}
