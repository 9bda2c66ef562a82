/* libFuzzer harness for subject names. Whatever parses must format, and
 * the RFC 4514 text must parse back to an equal name (X509_NAME_cmp).
 * When no RDN is multi-valued the text must also format identically;
 * with multi-valued RDNs it need not, because the formatter prints the
 * values of one RDN in reverse and the parser keeps text order, so only
 * the set (which X509_NAME_cmp compares in DER order) is the same. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <p11pki/x509.h>

#define NAME_IN_MAX 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int multi_valued(const X509_NAME *n)
{
	int i, count = X509_NAME_entry_count(n);

	for (i = 1; i < count; i++)
		if (X509_NAME_ENTRY_set(X509_NAME_get_entry(n, i)) ==
		    X509_NAME_ENTRY_set(X509_NAME_get_entry(n, i - 1)))
			return 1;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	X509_NAME *a = NULL, *b = NULL;
	char *text, *s = NULL, *t = NULL;

	if ((text = malloc(size + 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (p11pki_name_parse(text, &a) != 0) {
		/* a failure always says why, on one line, and leaves nothing */
		if (a != NULL || p11pki_errmsg()[0] == '\0' || strchr(p11pki_errmsg(), '\n'))
			abort();
		goto out;
	}
	if (X509_NAME_entry_count(a) == 0 || p11pki_name_format(a, &s) != 0)
		abort();
	/* escaping may outgrow the input bound; such text is not re-read */
	if (strlen(s) > NAME_IN_MAX)
		goto out;
	if (p11pki_name_parse(s, &b) != 0 || X509_NAME_cmp(a, b) != 0)
		abort();
	if (!multi_valued(a) && (p11pki_name_format(b, &t) != 0 || strcmp(s, t) != 0))
		abort();
out:
	free(s);
	free(t);
	X509_NAME_free(a);
	X509_NAME_free(b);
	free(text);
	return 0;
}
