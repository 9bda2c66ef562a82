/* libFuzzer harness for the EST request body (est_decode_pkcs10): base64
 * with line breaks of one DER PKCS#10. A refusal says why in one line and
 * leaves no request; a request that decodes encodes back to DER, and its
 * signature check (what the handler does next) runs without crashing. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "online/est.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	X509_REQ *req = (X509_REQ *)&size; /* must be reset */
	unsigned char *copy, *der = NULL;
	EVP_PKEY *pub;

	/* a copy of exactly size bytes, so ASan sees any overread */
	if ((copy = malloc(size ? size : 1)) == NULL)
		return 0;
	memcpy(copy, data, size);
	if (est_decode_pkcs10(copy, size, &req) != 0) {
		if (req != NULL || p11pki_errmsg()[0] == '\0' || strchr(p11pki_errmsg(), '\n') != NULL)
			abort();
		free(copy);
		return 0;
	}
	if (req == NULL || i2d_X509_REQ(req, &der) <= 0)
		abort();
	if ((pub = X509_REQ_get0_pubkey(req)) != NULL)
		(void)X509_REQ_verify(req, pub);
	ERR_clear_error();
	OPENSSL_free(der);
	X509_REQ_free(req);
	free(copy);
	return 0;
}
