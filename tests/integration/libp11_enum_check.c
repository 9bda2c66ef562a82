/* libp11_enum_check MODULE TOKEN_LABEL   (user PIN in $USER_PIN)
 *
 * Lists the private keys of a token with libp11's own
 * PKCS11_enumerate_keys, which p11pki does not rely on (see
 * src/token/evp.c). Prints "PKCS11_enumerate_keys: N keys" and exits 0,
 * or prints "PKCS11_enumerate_keys: failed" and exits 1; 2: no check. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libp11.h>

int main(int argc, char **argv)
{
	const char *pin = getenv("USER_PIN");
	PKCS11_CTX *ctx;
	PKCS11_SLOT *slots = NULL, *slot = NULL;
	PKCS11_KEY *keys = NULL;
	unsigned n_slots = 0, n_keys = 0, i;
	int r;

	if (argc != 3 || pin == NULL) {
		fprintf(stderr, "usage: USER_PIN=... %s MODULE TOKEN_LABEL\n", argv[0]);
		return 2;
	}
	if ((ctx = PKCS11_CTX_new()) == NULL || PKCS11_CTX_load(ctx, argv[1]) != 0 ||
	    PKCS11_enumerate_slots(ctx, &slots, &n_slots) != 0) {
		fprintf(stderr, "libp11_enum_check: cannot load %s\n", argv[1]);
		return 2;
	}
	for (i = 0; i < n_slots; i++)
		if (slots[i].token != NULL && strcmp(slots[i].token->label, argv[2]) == 0)
			slot = &slots[i];
	if (slot == NULL || PKCS11_open_session(slot, 1) != 0 || PKCS11_login(slot, 0, pin) != 0) {
		fprintf(stderr, "libp11_enum_check: cannot log in to token '%s'\n", argv[2]);
		return 2;
	}
	r = PKCS11_enumerate_keys(slot->token, &keys, &n_keys);
	if (r == 0)
		printf("PKCS11_enumerate_keys: %u keys\n", n_keys);
	else
		printf("PKCS11_enumerate_keys: failed\n");
	PKCS11_release_all_slots(ctx, slots, n_slots);
	PKCS11_CTX_unload(ctx);
	PKCS11_CTX_free(ctx);
	return r == 0 ? 0 : 1;
}
