/* libFuzzer harness for key type names: a parsed type's canonical name
 * parses to the same type, and RSA is never weaker than 2048 bits. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <p11pki/token.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct p11pki_keytype a, b;
	char *text;
	int r;

	if ((text = malloc(size + 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	r = p11pki_keytype_parse(text, &a);
	if (r != 0) {
		if ((r != P11PKI_E_ARG && r != P11PKI_E_POLICY) || a.name != NULL)
			abort();
		goto out;
	}
	if (a.name == NULL || p11pki_keytype_parse(a.name, &b) != 0)
		abort();
	if (a.kind != b.kind || a.bits != b.bits || a.curve_nid != b.curve_nid ||
	    strcmp(a.name, b.name) != 0)
		abort();
	if (a.kind == P11PKI_KEY_RSA && (a.bits < 2048 || a.curve_nid != 0))
		abort();
	if (a.kind == P11PKI_KEY_EC && a.curve_nid == 0)
		abort();
out:
	free(text);
	return 0;
}
