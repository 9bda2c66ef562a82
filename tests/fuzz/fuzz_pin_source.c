/* libFuzzer harness for PIN source specs. Only env: sources are read:
 * reading files named by fuzz input would make runs depend on the host. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <p11pki/token.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum p11pki_pin_kind kind;
	const char *where;
	p11pki_secret *pin = NULL;
	char *spec;
	int r;

	if ((spec = malloc(size + 1)) == NULL)
		return 0;
	memcpy(spec, data, size);
	spec[size] = '\0';
	r = p11pki_pin_source_parse(spec, &kind, &where);
	if (r != 0) {
		if (where != NULL || kind != 0 || p11pki_errmsg()[0] == '\0')
			abort();
		goto out;
	}
	/* where points into spec, past the prefix, at something non-empty. */
	if (where < spec || where > spec + size || *where == '\0')
		abort();
	if (kind != P11PKI_PIN_FILE && kind != P11PKI_PIN_ENV)
		abort();
	if (kind == P11PKI_PIN_ENV) {
		r = p11pki_pin_read(spec, &pin);
		if (r == 0 && (pin == NULL || pin->len == 0 || pin->len > 256 ||
			       strlen(pin->data) != pin->len))
			abort();
		if (r != 0 && pin != NULL)
			abort();
	}
out:
	p11pki_secret_free(pin);
	free(spec);
	return 0;
}
