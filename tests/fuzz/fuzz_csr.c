/* libFuzzer harness for request intake: arbitrary bytes through
 * p11pki_csr_read and p11pki_csr_check (default and relaxed rules).
 * Every refusal must say why on one line; nothing may crash or leak. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <p11pki/x509.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void said_why(void)
{
	if (p11pki_errmsg()[0] == '\0' || strchr(p11pki_errmsg(), '\n'))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct p11pki_key_rules relaxed = { .rsa_min_bits = 512, .allow_rsa = 1 };
	X509_REQ *req = NULL;
	unsigned char *copy;

	/* a copy of exactly size bytes, so ASan sees any overread */
	if ((copy = malloc(size ? size : 1)) == NULL)
		return 0;
	memcpy(copy, data, size);
	if (p11pki_csr_read(copy, size, &req) != 0) {
		if (req != NULL)
			abort();
		said_why();
		goto out;
	}
	if (p11pki_csr_check(req, NULL) != 0)
		said_why();
	if (p11pki_csr_check(req, &relaxed) != 0)
		said_why();
out:
	X509_REQ_free(req);
	free(copy);
	return 0;
}
