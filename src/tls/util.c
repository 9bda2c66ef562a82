/* Small helpers of the tls layer: messages that name a binding, and
 * failure messages that add context to the one a lower layer recorded. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/asn1.h>

#include "core/text.h"
#include "tls/server.h"

const char *tls_binding_where(const char *file, const struct p11pki_binding *b, char *buf, size_t size)
{
	char name[P11PKI_SHOWN_BUF], path[P11PKI_SHOWN_SIZE(120)];

	p11pki_shown(b->name != NULL ? b->name : "?", name, sizeof(name));
	if (file != NULL && b->line > 0)
		snprintf(buf, size, "%s:%d: binding %s", p11pki_shown(file, path, sizeof(path)), b->line, name);
	else
		snprintf(buf, size, "binding %s", name);
	return buf;
}

int tls_fail_wrapf(int code, const char *fmt, ...)
{
	char prefix[256], detail[512];
	va_list ap;

	/* the detail lives in the buffer p11pki_fail writes: copy it first */
	snprintf(detail, sizeof(detail), "%s", p11pki_errmsg());
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	if (detail[0] == '\0')
		return p11pki_fail(code, "%s: %s", prefix, p11pki_strerror(code));
	return p11pki_fail(code, "%s: %s", prefix, detail);
}

int tls_fail_wrap(int code, const char *prefix)
{
	return tls_fail_wrapf(code, "%s", prefix);
}

void tls_endpoint_text(const struct p11pki_endpoint *ep, char *buf, size_t size)
{
	if (strchr(ep->host, ':') != NULL)
		snprintf(buf, size, "[%s]:%u", ep->host, (unsigned)ep->port);
	else
		snprintf(buf, size, "%s:%u", ep->host, (unsigned)ep->port);
}

/* Same port and the same address however written ("::1", "0:0::1"). */
int tls_endpoint_eq(const struct p11pki_endpoint *a, const struct p11pki_endpoint *b)
{
	unsigned char x[16], y[16];

	if (a->port != b->port)
		return 0;
	if (inet_pton(AF_INET6, a->host, x) == 1 && inet_pton(AF_INET6, b->host, y) == 1)
		return memcmp(x, y, 16) == 0;
	if (inet_pton(AF_INET, a->host, x) == 1 && inet_pton(AF_INET, b->host, y) == 1)
		return memcmp(x, y, 4) == 0;
	return strcasecmp(a->host, b->host) == 0;
}

void tls_time_text(const ASN1_TIME *t, char *buf, size_t size)
{
	struct tm tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1 || strftime(buf, size, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(buf, size, "(unreadable date)");
}
