/* libFuzzer harness for the HTTP Basic credentials of EST
 * (est_parse_basic). A refusal says why in one line and leaves the secret
 * buffer zeroed; accepted credentials have a non-empty user name without
 * a colon, no control characters, and parse back the same once encoded
 * again; buffers too small refuse rather than cut. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "online/base64.h"
#include "online/est.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int zeroed(const char *buf, size_t size)
{
	size_t i;

	for (i = 0; i < size; i++)
		if (buf[i] != '\0')
			return 0;
	return 1;
}

static int has_control(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

/* Encodes user:secret again and parses it: the same two strings. */
static void round_trip(const char *user, const char *secret)
{
	char creds[EST_USER_MAX + EST_SECRET_MAX + 1], header[512], u2[EST_USER_MAX], s2[EST_SECRET_MAX];
	char *b64 = NULL;
	size_t len;

	len = (size_t)snprintf(creds, sizeof(creds), "%s:%s", user, secret);
	if (online_base64_encode((const unsigned char *)creds, len, 0, &b64, &len) != 0)
		return;
	snprintf(header, sizeof(header), "Basic %s", b64);
	free(b64);
	if (est_parse_basic(header, u2, sizeof(u2), s2, sizeof(s2)) != 0 || strcmp(u2, user) != 0 ||
	    strcmp(s2, secret) != 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char user[EST_USER_MAX], secret[EST_SECRET_MAX], small_user[6], small_secret[6];
	char *text;

	if ((text = malloc(size + 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	memset(secret, 'x', sizeof(secret));
	if (est_parse_basic(text, user, sizeof(user), secret, sizeof(secret)) != 0) {
		if (!zeroed(secret, sizeof(secret)) || p11pki_errmsg()[0] == '\0' || strchr(p11pki_errmsg(), '\n'))
			abort();
	} else {
		if (user[0] == '\0' || strchr(user, ':') != NULL || has_control(user) || has_control(secret))
			abort();
		round_trip(user, secret);
		/* small buffers: refused, or the values fit whole */
		if (est_parse_basic(text, small_user, sizeof(small_user), small_secret, sizeof(small_secret)) == 0 &&
		    (strcmp(small_user, user) != 0 || strcmp(small_secret, secret) != 0))
			abort();
	}
	free(text);
	return 0;
}
