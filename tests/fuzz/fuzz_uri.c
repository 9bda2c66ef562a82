/* libFuzzer harness for the PKCS#11 URI parser and formatter. Whatever
 * parses must format, and the formatted URI must parse back to the same
 * struct and format to the same string: format(parse(format(x))) ==
 * format(x). pin-value must never appear in the output. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <p11pki/token.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* Every field but pin_value, which the formatter never prints. */
static int uri_eq(const struct p11pki_uri *a, const struct p11pki_uri *b)
{
	return str_eq(a->token, b->token) && str_eq(a->manufacturer, b->manufacturer) &&
	       str_eq(a->serial, b->serial) && str_eq(a->model, b->model) &&
	       str_eq(a->object, b->object) && a->id_len == b->id_len &&
	       (a->id_len == 0 || memcmp(a->id, b->id, a->id_len) == 0) &&
	       a->type == b->type && a->has_slot_id == b->has_slot_id &&
	       a->slot_id == b->slot_id && str_eq(a->slot_description, b->slot_description) &&
	       str_eq(a->slot_manufacturer, b->slot_manufacturer) &&
	       str_eq(a->library_manufacturer, b->library_manufacturer) &&
	       str_eq(a->library_description, b->library_description) &&
	       str_eq(a->library_version, b->library_version) &&
	       str_eq(a->pin_source, b->pin_source) && str_eq(a->module_name, b->module_name) &&
	       str_eq(a->module_path, b->module_path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct p11pki_uri *u = NULL, *v = NULL;
	char *text, *a = NULL, *b = NULL;

	if ((text = malloc(size + 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (p11pki_uri_parse(text, &u) != 0) {
		/* A failure always says why. */
		if (u != NULL || p11pki_errmsg()[0] == '\0' || strchr(p11pki_errmsg(), '\n'))
			abort();
		goto out;
	}
	/* Formatting may only fail when escaping outgrows the length bound. */
	if (p11pki_uri_format(u, &a) != 0) {
		if (strstr(p11pki_errmsg(), "longer than") == NULL)
			abort();
		goto out;
	}
	/* Values escape '?' and '&', so these can only be a real attribute. */
	if (strstr(a, "?pin-value=") != NULL || strstr(a, "&pin-value=") != NULL)
		abort();
	if (p11pki_uri_parse(a, &v) != 0 || !uri_eq(u, v))
		abort();
	if (p11pki_uri_format(v, &b) != 0 || strcmp(a, b) != 0)
		abort();
out:
	free(a);
	free(b);
	p11pki_uri_free(u);
	p11pki_uri_free(v);
	free(text);
	return 0;
}
