/* libFuzzer harness for the status line of a backend's answer to a health
 * check. A status is 100..599 and matches the digits of an "HTTP/1.x"
 * line; "need more" only for a short prefix without a line end; a failure
 * says why in one line; and a complete line gives the same answer however
 * much follows it, while any shorter prefix of it needs more. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tls/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int parse_copy(const uint8_t *data, size_t n, int *status)
{
	char *copy = malloc(n ? n : 1);	/* exact size, so ASan sees overreads */
	int r;

	if (copy == NULL)
		abort();
	memcpy(copy, data, n);
	r = p11pki_http_status_parse(copy, n, status);
	free(copy);
	return r;
}

static void check_ok(const uint8_t *data, size_t size, int status)
{
	const uint8_t *lf = memchr(data, '\n', size);
	size_t eol;
	int again = -1;

	if (status < 100 || status > 599 || size < 13 || memcmp(data, "HTTP/1.", 7) != 0 ||
	    lf == NULL || status != (data[9] - '0') * 100 + (data[10] - '0') * 10 + (data[11] - '0'))
		abort();
	eol = (size_t)(lf - data);
	if (parse_copy(data, eol + 1, &again) != P11PKI_OK || again != status)
		abort();
	if (parse_copy(data, eol, &again) != P11PKI_HTTP_MORE || again != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int status = -1;
	int r = p11pki_http_status_parse((const char *)data, size, &status);

	if (r == P11PKI_OK) {
		check_ok(data, size, status);
		return 0;
	}
	if (status != 0)
		abort();
	if (r == P11PKI_HTTP_MORE) {
		if (size >= P11PKI_HTTP_LINE_MAX + 2 || memchr(data, '\n', size) != NULL ||
		    memcmp(data, "HTTP/1.", size < 7 ? size : 7) != 0)
			abort();
		return 0;
	}
	if (r != P11PKI_E_ARG || p11pki_errmsg()[0] == '\0' || strchr(p11pki_errmsg(), '\n') != NULL)
		abort();
	return 0;
}
