/* libFuzzer harness for the request head parser and the rewrite toward a
 * backend. A failure says why in one line; a head that parses also parses
 * when cut one byte short as "need more"; its rewrite parses back with the
 * same request line and framing, a single Content-Length, exactly our
 * X-Client-* headers (none from the input), one Connection: close and our
 * X-Forwarded-*; and rewriting the rewrite changes nothing. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tls/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct p11pki_client_info ci = {
	"SUCCESS", "CN=fuzz,O=p11pki", "01AB",
	"-----BEGIN CERTIFICATE-----\nMIIB+/=\n-----END CERTIFICATE-----\n", "198.51.100.9"
};

static const struct {
	const char *name, *value;
} ours[] = {
	{ "Connection", "close" },
	{ "X-Forwarded-For", "198.51.100.9" },
	{ "X-Forwarded-Proto", "https" },
	{ "X-Client-Verify", "SUCCESS" },
	{ "X-Client-Subject", "CN=fuzz,O=p11pki" },
	{ "X-Client-Serial", "01AB" },
	{ "X-Client-Cert", "-----BEGIN%20CERTIFICATE-----%0AMIIB%2B%2F%3D%0A"
			   "-----END%20CERTIFICATE-----%0A" },
};
#define N_OURS (sizeof(ours) / sizeof(ours[0]))

static int str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static void check_failure(int r, size_t consumed, const struct p11pki_http_head *h)
{
	if (r != P11PKI_E_ARG || consumed != 0 || h->storage != NULL || h->headers != NULL ||
	    p11pki_errmsg()[0] == '\0' || strchr(p11pki_errmsg(), '\n') != NULL)
		abort();
}

/* Parsing data[0..n) for n < the head's end must ask for more. */
static void check_prefix(const uint8_t *data, size_t n)
{
	struct p11pki_http_head h;
	size_t consumed = 1;
	char *copy = malloc(n ? n : 1);	/* exact size, so ASan sees overreads */

	if (copy == NULL)
		return;
	memcpy(copy, data, n);
	if (p11pki_http_head_parse(copy, n, &consumed, &h) != P11PKI_HTTP_MORE || consumed != 0 ||
	    h.storage != NULL)
		abort();
	free(copy);
}

/* Header names with the reserved prefixes, '_' as '-', any case. */
static int is_x_client(const char *name)
{
	static const char prefix[] = "x-client-";
	size_t i;

	for (i = 0; prefix[i] != '\0'; i++) {
		char c = name[i] == '_' ? '-' : name[i];

		if (c == '\0' || (c | 0x20) != prefix[i])
			return 0;
	}
	return 1;
}

static void check_rewritten(const struct p11pki_http_head *h, const struct p11pki_http_head *g)
{
	size_t i, j, seen[N_OURS] = { 0 }, lengths = 0;

	if (!str_eq(h->method, g->method) || !str_eq(h->target, g->target) ||
	    h->version != g->version || !str_eq(h->host, g->host) ||
	    h->content_length != g->content_length || h->chunked != g->chunked ||
	    p11pki_http_is_healthz(h) != p11pki_http_is_healthz(g))
		abort();
	for (i = 0; i < g->n_headers; i++) {
		lengths += strcasecmp(g->headers[i].name, "content-length") == 0;
		for (j = 0; j < N_OURS; j++)
			if (strcasecmp(g->headers[i].name, ours[j].name) == 0)
				break;
		if (j < N_OURS) {
			if (strcmp(g->headers[i].name, ours[j].name) != 0 ||
			    strcmp(g->headers[i].value, ours[j].value) != 0)
				abort();
			seen[j]++;
		} else if (is_x_client(g->headers[i].name) ||
			   strcasecmp(g->headers[i].name, "keep-alive") == 0 ||
			   strcasecmp(g->headers[i].name, "proxy-connection") == 0) {
			abort();
		}
	}
	for (j = 0; j < N_OURS; j++)
		if (seen[j] != 1)
			abort();
	/* one Content-Length toward the backend, whatever equal copies came */
	if (lengths != (g->content_length >= 0))
		abort();
}

/* Our headers may push a head that was just within a limit over it. */
static void check_reparse_failure(const char *out, size_t len)
{
	size_t lines = 0, i;

	for (i = 0; i < len; i++)
		lines += out[i] == '\n';
	if (strstr(p11pki_errmsg(), "request head larger than") != NULL &&
	    len > P11PKI_HTTP_HEAD_MAX)
		return;
	if (strstr(p11pki_errmsg(), "more than 100 header fields") != NULL &&
	    lines - 2 > P11PKI_HTTP_MAX_HEADERS)
		return;
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct p11pki_http_head h, g;
	char *out = NULL, *again = NULL;
	size_t consumed = 1, len = 0, len2 = 0;
	int r;

	memset(&g, 0, sizeof(g));
	r = p11pki_http_head_parse((const char *)data, size, &consumed, &h);
	if (r == P11PKI_HTTP_MORE) {
		if (consumed != 0 || h.storage != NULL || size >= P11PKI_HTTP_HEAD_MAX)
			abort();
		return 0;
	}
	if (r != P11PKI_OK) {
		check_failure(r, consumed, &h);
		return 0;
	}
	if (consumed < 4 || consumed > size || consumed > P11PKI_HTTP_HEAD_MAX ||
	    memcmp(data + consumed - 4, "\r\n\r\n", 4) != 0)
		abort();
	check_prefix(data, consumed - 1);
	if (p11pki_http_head_rewrite(&h, &ci, &out, &len) != P11PKI_OK || strlen(out) != len)
		abort();
	r = p11pki_http_head_parse(out, len, &consumed, &g);
	if (r != P11PKI_OK) {
		check_reparse_failure(out, len);
		goto out;
	}
	if (consumed != len)
		abort();
	check_rewritten(&h, &g);
	if (p11pki_http_head_rewrite(&g, &ci, &again, &len2) != P11PKI_OK || len2 != len ||
	    memcmp(out, again, len) != 0)
		abort();
out:
	free(out);
	free(again);
	p11pki_http_head_clear(&h);
	p11pki_http_head_clear(&g);
	return 0;
}
