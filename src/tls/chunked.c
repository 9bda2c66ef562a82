/* Where a chunked request body ends (RFC 9112 section 7.1), so that the
 * http proxy forwards the body and nothing after it: a pipelined second
 * request must not reach a backend without its head rewritten. Only the
 * framing is read; the bytes are forwarded as they came. */
#include "tls/server.h"

#define SIZE_DIGITS_MAX 15	/* 2^60 bytes: no overflow */
#define LINE_MAX_BYTES 8192	/* a chunk extension or trailer line */

enum {
	C_SIZE = 0,	/* hex digits of the chunk size */
	C_EXT,		/* ";ext" up to CR */
	C_SIZE_LF,
	C_DATA,
	C_DATA_CR,
	C_DATA_LF,
	C_TRAILER,	/* at the start of a trailer line (or the final CRLF) */
	C_TRAILER_LINE,
	C_TRAILER_LF,
	C_FINAL_LF,
	C_DONE,
};

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

long long tls_chunked_scan(struct tls_chunked *st, const unsigned char *p, size_t n)
{
	size_t i = 0, take;
	int v;

	while (i < n && st->state != C_DONE) {
		unsigned char c = p[i];

		switch (st->state) {
		case C_SIZE:
			if ((v = hexval(c)) >= 0) {
				if (++st->digits > SIZE_DIGITS_MAX)
					return -1;
				st->left = st->left * 16 + (unsigned long long)v;
			} else if (st->digits > 0 && (c == ';' || c == ' ' || c == '\t')) {
				st->state = C_EXT;
			} else if (st->digits > 0 && c == '\r') {
				st->state = C_SIZE_LF;
			} else {
				return -1;
			}
			i++;
			break;
		case C_EXT:
			if (c == '\r')
				st->state = C_SIZE_LF;
			else if (c == '\n' || ++st->line > LINE_MAX_BYTES)
				return -1;
			i++;
			break;
		case C_SIZE_LF:
			if (c != '\n')
				return -1;
			st->state = st->left > 0 ? C_DATA : C_TRAILER;
			st->line = 0;
			i++;
			break;
		case C_DATA:
			take = n - i < st->left ? n - i : (size_t)st->left;
			st->left -= take;
			i += take;
			if (st->left == 0)
				st->state = C_DATA_CR;
			break;
		case C_DATA_CR:
			if (c != '\r')
				return -1;
			st->state = C_DATA_LF;
			i++;
			break;
		case C_DATA_LF:
			if (c != '\n')
				return -1;
			st->state = C_SIZE;
			st->digits = 0;
			i++;
			break;
		case C_TRAILER:
			st->state = c == '\r' ? C_FINAL_LF : C_TRAILER_LINE;
			st->line = 0;
			if (c == '\n')
				return -1;
			i++;
			break;
		case C_TRAILER_LINE:
			if (c == '\r')
				st->state = C_TRAILER_LF;
			else if (c == '\n' || ++st->line > LINE_MAX_BYTES)
				return -1;
			i++;
			break;
		case C_TRAILER_LF:
			if (c != '\n')
				return -1;
			st->state = C_TRAILER;
			i++;
			break;
		case C_FINAL_LF:
			if (c != '\n')
				return -1;
			st->state = C_DONE;
			i++;
			break;
		default:
			return -1;
		}
	}
	return (long long)i;
}

int tls_chunked_done(const struct tls_chunked *st)
{
	return st->state == C_DONE;
}
