/* p11_extract_check MODULE TOKEN_LABEL KEY_LABEL   (user PIN in $USER_PIN)
 *
 * Asks the token for a private key's secret the two ways an attacker with
 * the PIN would, through the raw PKCS#11 function list and not through
 * p11pki (whose own audit is what is being checked): reading the value
 * attribute (CKA_PRIVATE_EXPONENT / CKA_VALUE) must answer
 * CKR_ATTRIBUTE_SENSITIVE, wrapping it under a fresh session AES key
 * (CKM_AES_KEY_WRAP_PAD) must answer CKR_KEY_UNEXTRACTABLE.
 * Prints both codes. Exit 0: the key cannot leave the token; 1: it can;
 * 2: the check itself could not run. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/pkcs11.h>

static CK_FUNCTION_LIST *f;

static const char *ckr_name(CK_RV rv)
{
	static char buf[32];

	switch (rv) {
	case CKR_OK: return "CKR_OK";
	case CKR_ATTRIBUTE_SENSITIVE: return "CKR_ATTRIBUTE_SENSITIVE";
	case CKR_KEY_UNEXTRACTABLE: return "CKR_KEY_UNEXTRACTABLE";
	case CKR_KEY_NOT_WRAPPABLE: return "CKR_KEY_NOT_WRAPPABLE";
	case CKR_MECHANISM_INVALID: return "CKR_MECHANISM_INVALID";
	case CKR_PIN_INCORRECT: return "CKR_PIN_INCORRECT";
	case CKR_BUFFER_TOO_SMALL: return "CKR_BUFFER_TOO_SMALL";
	default:
		snprintf(buf, sizeof(buf), "CKR_0x%08lX", (unsigned long)rv);
		return buf;
	}
}

static void die(const char *what, CK_RV rv)
{
	fprintf(stderr, "p11_extract_check: %s: %s\n", what, ckr_name(rv));
	exit(2);
}

/* The slot whose token has this label (blank-padded to 32 bytes). */
static CK_SLOT_ID find_slot(const char *label)
{
	CK_SLOT_ID slots[64];
	CK_ULONG n = 64, i;
	CK_TOKEN_INFO info;
	char padded[32];
	CK_RV rv;

	memset(padded, ' ', sizeof(padded));
	memcpy(padded, label, strnlen(label, sizeof(padded)));
	if ((rv = f->C_GetSlotList(CK_TRUE, slots, &n)) != CKR_OK)
		die("C_GetSlotList", rv);
	for (i = 0; i < n; i++)
		if (f->C_GetTokenInfo(slots[i], &info) == CKR_OK && memcmp(info.label, padded, 32) == 0)
			return slots[i];
	fprintf(stderr, "p11_extract_check: no token labelled '%s'\n", label);
	exit(2);
}

int main(int argc, char **argv)
{
	CK_C_INITIALIZE_ARGS init = { .flags = CKF_OS_LOCKING_OK };
	CK_C_GetFunctionList get_list;
	CK_SESSION_HANDLE s;
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_KEY_TYPE kt;
	CK_OBJECT_HANDLE key, kek;
	CK_ULONG count = 0, len = 32, out_len;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_MECHANISM gen = { CKM_AES_KEY_GEN, NULL, 0 }, wrap = { CKM_AES_KEY_WRAP_PAD, NULL, 0 };
	unsigned char secret[8192], wrapped[8192];
	const char *pin = getenv("USER_PIN");
	void *dl;
	CK_RV rv, read_rv, wrap_rv;

	if (argc != 4 || pin == NULL) {
		fprintf(stderr, "usage: USER_PIN=... %s MODULE TOKEN_LABEL KEY_LABEL\n", argv[0]);
		return 2;
	}
	if ((dl = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL)) == NULL ||
	    (get_list = (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList")) == NULL) {
		fprintf(stderr, "p11_extract_check: %s: %s\n", argv[1], dlerror());
		return 2;
	}
	if ((rv = get_list(&f)) != CKR_OK)
		die("C_GetFunctionList", rv);
	if ((rv = f->C_Initialize(&init)) != CKR_OK)
		die("C_Initialize", rv);
	if ((rv = f->C_OpenSession(find_slot(argv[2]), CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s)) != CKR_OK)
		die("C_OpenSession", rv);
	if ((rv = f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin))) != CKR_OK)
		die("C_Login", rv);

	CK_ATTRIBUTE find[] = { { CKA_CLASS, &cls, sizeof(cls) }, { CKA_LABEL, argv[3], strlen(argv[3]) } };
	if ((rv = f->C_FindObjectsInit(s, find, 2)) != CKR_OK || (rv = f->C_FindObjects(s, &key, 1, &count)) != CKR_OK)
		die("C_FindObjects", rv);
	(void)f->C_FindObjectsFinal(s);
	if (count != 1) {
		fprintf(stderr, "p11_extract_check: no private key labelled '%s'\n", argv[3]);
		return 2;
	}
	CK_ATTRIBUTE type = { CKA_KEY_TYPE, &kt, sizeof(kt) };
	if ((rv = f->C_GetAttributeValue(s, key, &type, 1)) != CKR_OK)
		die("C_GetAttributeValue(CKA_KEY_TYPE)", rv);

	/* 1. read the secret value itself */
	CK_ATTRIBUTE value = { kt == CKK_RSA ? CKA_PRIVATE_EXPONENT : CKA_VALUE, secret, sizeof(secret) };
	read_rv = f->C_GetAttributeValue(s, key, &value, 1);
	printf("C_GetAttributeValue(%s): %s\n", kt == CKK_RSA ? "CKA_PRIVATE_EXPONENT" : "CKA_VALUE",
	       ckr_name(read_rv));

	/* 2. wrap it under a key we hold: a session AES key made for this */
	CK_ATTRIBUTE kek_tmpl[] = {
		{ CKA_TOKEN, &no, sizeof(no) },
		{ CKA_WRAP, &yes, sizeof(yes) },
		{ CKA_VALUE_LEN, &len, sizeof(len) },
	};
	if ((rv = f->C_GenerateKey(s, &gen, kek_tmpl, 3, &kek)) != CKR_OK)
		die("C_GenerateKey(AES)", rv);
	out_len = sizeof(wrapped);
	wrap_rv = f->C_WrapKey(s, &wrap, kek, key, wrapped, &out_len);
	printf("C_WrapKey(CKM_AES_KEY_WRAP_PAD): %s\n", ckr_name(wrap_rv));

	(void)f->C_DestroyObject(s, kek);
	(void)f->C_Logout(s);
	(void)f->C_CloseSession(s);
	(void)f->C_Finalize(NULL);
	dlclose(dl);
	return read_rv == CKR_ATTRIBUTE_SENSITIVE && wrap_rv == CKR_KEY_UNEXTRACTABLE ? 0 : 1;
}
