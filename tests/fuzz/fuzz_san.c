/* libFuzzer harness for subjectAltName entries: whatever parses must
 * format, and the text must parse back to an equal GENERAL_NAME and
 * format to the same text. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <p11pki/x509.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	GENERAL_NAME *a = NULL, *b = NULL;
	char *text, *s = NULL, *t = NULL;

	if ((text = malloc(size + 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (p11pki_san_parse(text, &a) != 0) {
		if (a != NULL || p11pki_errmsg()[0] == '\0' || strchr(p11pki_errmsg(), '\n'))
			abort();
		goto out;
	}
	if (p11pki_san_format(a, &s) != 0)
		abort();
	if (p11pki_san_parse(s, &b) != 0 || GENERAL_NAME_cmp(a, b) != 0)
		abort();
	if (p11pki_san_format(b, &t) != 0 || strcmp(s, t) != 0)
		abort();
	/* a DNS name is ASCII and a pattern made of it matches it */
	if (a->type == GEN_DNS && !p11pki_host_pattern_match(s + 4, s + 4))
		abort();
out:
	free(s);
	free(t);
	GENERAL_NAME_free(a);
	GENERAL_NAME_free(b);
	free(text);
	return 0;
}
