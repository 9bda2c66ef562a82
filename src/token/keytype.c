/* Key type names ("rsa:2048", "ec:p256", ...) accepted for key generation. */
#include <string.h>
#include <strings.h>

#include <openssl/obj_mac.h>

#include <p11pki/token.h>

#include "core/text.h"

#define RSA_MIN_BITS 2048

struct keytype_def {
	const char *spelling;
	const char *name; /* canonical */
	enum p11pki_key_kind kind;
	unsigned bits;
	int curve_nid;
};

static const struct keytype_def keytypes[] = {
	{ "rsa:2048", "rsa:2048", P11PKI_KEY_RSA, 2048, 0 },
	{ "rsa:3072", "rsa:3072", P11PKI_KEY_RSA, 3072, 0 },
	{ "rsa:4096", "rsa:4096", P11PKI_KEY_RSA, 4096, 0 },
	{ "ec:p256", "ec:p256", P11PKI_KEY_EC, 256, NID_X9_62_prime256v1 },
	{ "ec:prime256v1", "ec:p256", P11PKI_KEY_EC, 256, NID_X9_62_prime256v1 },
	{ "ec:secp256r1", "ec:p256", P11PKI_KEY_EC, 256, NID_X9_62_prime256v1 },
	{ "ec:p384", "ec:p384", P11PKI_KEY_EC, 384, NID_secp384r1 },
	{ "ec:secp384r1", "ec:p384", P11PKI_KEY_EC, 384, NID_secp384r1 },
};
#define N_KEYTYPES (sizeof(keytypes) / sizeof(keytypes[0]))

/* True for "rsa:N" with N a plain decimal under RSA_MIN_BITS, so a weak
 * size gets the policy reason rather than "unknown". */
static int is_weak_rsa(const char *text)
{
	unsigned long bits = 0;
	size_t i;

	if (strncasecmp(text, "rsa:", 4) != 0 || text[4] == '\0')
		return 0;
	for (i = 4; text[i] != '\0'; i++) {
		if (text[i] < '0' || text[i] > '9' || i > 12)
			return 0;
		bits = bits * 10 + (unsigned long)(text[i] - '0');
	}
	return bits < RSA_MIN_BITS;
}

int p11pki_keytype_parse(const char *text, struct p11pki_keytype *out)
{
	char show[P11PKI_SHOWN_BUF];
	size_t i;

	memset(out, 0, sizeof(*out));
	if (text == NULL)
		return p11pki_fail(P11PKI_E_ARG, "no key type given: use one of rsa:2048, "
				   "rsa:3072, rsa:4096, ec:p256, ec:p384");
	for (i = 0; i < N_KEYTYPES; i++) {
		if (strcasecmp(text, keytypes[i].spelling) == 0) {
			out->kind = keytypes[i].kind;
			out->bits = keytypes[i].bits;
			out->curve_nid = keytypes[i].curve_nid;
			out->name = keytypes[i].name;
			return P11PKI_OK;
		}
	}
	if (is_weak_rsa(text))
		return p11pki_fail(P11PKI_E_POLICY,
				   "RSA keys under 2048 bits are too weak (NIST SP 800-131A): "
				   "use rsa:2048 or larger");
	return p11pki_fail(P11PKI_E_ARG,
			   "unknown key type '%s': use one of rsa:2048, rsa:3072, rsa:4096, "
			   "ec:p256, ec:p384", p11pki_shown_ascii(text, show, sizeof(show)));
}
