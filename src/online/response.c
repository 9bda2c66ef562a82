/* Building the answers of the online handlers (online.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "online/online.h"

int online_respond(struct online_response *rs, int status, const char *reason, const char *content_type,
		   const void *body, size_t len)
{
	if (len == (size_t)-1)
		len = strlen(body);
	free(rs->body);
	rs->body = NULL;
	rs->body_len = 0;
	rs->status = status;
	rs->reason = reason;
	rs->content_type = content_type;
	if (len > 0 && (rs->body = malloc(len)) == NULL) {
		rs->status = 500;
		rs->reason = "Internal Server Error";
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
	}
	if (len > 0)
		memcpy(rs->body, body, len);
	rs->body_len = len;
	return P11PKI_OK;
}

int online_respond_text(struct online_response *rs, int status, const char *reason, const char *fmt, ...)
{
	char text[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(text, sizeof(text) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		text[0] = '\0';
	/* one line, ending in a newline, whatever the message held */
	text[strcspn(text, "\r\n")] = '\0';
	strcat(text, "\n");
	return online_respond(rs, status, reason, "text/plain", text, (size_t)-1);
}

int online_add_header(struct online_response *rs, const char *name, const char *fmt, ...)
{
	size_t used = strlen(rs->headers);
	char value[ONLINE_HEADERS_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(value, sizeof(value), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(value) || strpbrk(value, "\r\n") != NULL ||
	    used + strlen(name) + 2 + (size_t)n + 2 >= sizeof(rs->headers))
		return p11pki_fail(P11PKI_E_ARG, "response header %s does not fit", name);
	snprintf(rs->headers + used, sizeof(rs->headers) - used, "%s: %s\r\n", name, value);
	return P11PKI_OK;
}

/* An HTTP-date (RFC 9110 section 5.6.7): "Sun, 06 Nov 1994 08:49:37 GMT". */
static void http_date(time_t t, char *buf, size_t size)
{
	static const char days[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL)
		memset(&tm, 0, sizeof(tm));
	snprintf(buf, size, "%.3s, %02d %.3s %04d %02d:%02d:%02d GMT", days[(unsigned)tm.tm_wday % 7],
		 tm.tm_mday % 100, months[(unsigned)tm.tm_mon % 12], (tm.tm_year + 1900) % 10000, tm.tm_hour % 100,
		 tm.tm_min % 100, tm.tm_sec % 100);
}

int online_add_cache_headers(struct online_response *rs, const char *cache_control, time_t modified,
			     time_t expires, time_t now)
{
	char last[40], until[40];

	http_date(modified, last, sizeof(last));
	http_date(expires, until, sizeof(until));
	if (online_add_header(rs, "Cache-Control", "%s, max-age=%lld", cache_control,
			      (long long)(expires > now ? expires - now : 0)) != 0 ||
	    online_add_header(rs, "Last-Modified", "%s", last) != 0 ||
	    online_add_header(rs, "Expires", "%s", until) != 0)
		return P11PKI_E_ARG;
	return P11PKI_OK;
}

void online_response_clear(struct online_response *rs)
{
	free(rs->body);
	memset(rs, 0, sizeof(*rs));
}

struct online_ca *online_find_ca(struct online_service *svc, const char *name)
{
	size_t i;

	for (i = 0; i < svc->n_cas; i++)
		if (strcmp(svc->cas[i].name, name) == 0)
			return &svc->cas[i];
	return NULL;
}
