/* Key type names for key generation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/obj_mac.h>

#include <p11pki/token.h>

static void parses_as(const char *text, enum p11pki_key_kind kind, unsigned bits, int nid,
		      const char *name)
{
	struct p11pki_keytype kt;

	memset(&kt, 0x5a, sizeof(kt));
	assert_int_equal(p11pki_keytype_parse(text, &kt), P11PKI_OK);
	assert_int_equal(kt.kind, kind);
	assert_int_equal(kt.bits, bits);
	assert_int_equal(kt.curve_nid, nid);
	assert_string_equal(kt.name, name);
}

static void fails_with(const char *text, int code, const char *want)
{
	struct p11pki_keytype kt;

	memset(&kt, 0x5a, sizeof(kt));
	assert_int_equal(p11pki_keytype_parse(text, &kt), code);
	if (strstr(p11pki_errmsg(), want) == NULL)
		print_error("message '%s' lacks '%s'\n", p11pki_errmsg(), want);
	assert_non_null(strstr(p11pki_errmsg(), want));
	assert_null(strchr(p11pki_errmsg(), '\n'));
	/* Nothing half-filled is left behind. */
	assert_null(kt.name);
	assert_int_equal(kt.bits, 0);
}

static void test_rsa(void **state)
{
	parses_as("rsa:2048", P11PKI_KEY_RSA, 2048, 0, "rsa:2048");
	parses_as("rsa:3072", P11PKI_KEY_RSA, 3072, 0, "rsa:3072");
	parses_as("rsa:4096", P11PKI_KEY_RSA, 4096, 0, "rsa:4096");
	parses_as("RSA:2048", P11PKI_KEY_RSA, 2048, 0, "rsa:2048");
}

static void test_ec(void **state)
{
	parses_as("ec:p256", P11PKI_KEY_EC, 256, NID_X9_62_prime256v1, "ec:p256");
	parses_as("ec:prime256v1", P11PKI_KEY_EC, 256, NID_X9_62_prime256v1, "ec:p256");
	parses_as("ec:secp256r1", P11PKI_KEY_EC, 256, NID_X9_62_prime256v1, "ec:p256");
	parses_as("ec:p384", P11PKI_KEY_EC, 384, NID_secp384r1, "ec:p384");
	parses_as("ec:secp384r1", P11PKI_KEY_EC, 384, NID_secp384r1, "ec:p384");
	parses_as("EC:P384", P11PKI_KEY_EC, 384, NID_secp384r1, "ec:p384");
}

static void test_canonical_name_parses_to_itself(void **state)
{
	static const char *const all[] = {
		"rsa:2048", "rsa:3072", "rsa:4096", "ec:p256", "ec:prime256v1",
		"ec:secp256r1", "ec:p384", "ec:secp384r1",
	};
	struct p11pki_keytype a, b;
	size_t i;

	for (i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		assert_int_equal(p11pki_keytype_parse(all[i], &a), P11PKI_OK);
		assert_int_equal(p11pki_keytype_parse(a.name, &b), P11PKI_OK);
		assert_int_equal(a.kind, b.kind);
		assert_int_equal(a.bits, b.bits);
		assert_int_equal(a.curve_nid, b.curve_nid);
		assert_ptr_equal(a.name, b.name);
	}
}

static void test_weak_rsa_is_policy(void **state)
{
	static const char why[] = "RSA keys under 2048 bits are too weak (NIST SP 800-131A): "
				  "use rsa:2048 or larger";

	fails_with("rsa:1024", P11PKI_E_POLICY, why);
	fails_with("rsa:512", P11PKI_E_POLICY, why);
	fails_with("rsa:2047", P11PKI_E_POLICY, why);
	fails_with("rsa:0", P11PKI_E_POLICY, why);
	fails_with("RSA:1536", P11PKI_E_POLICY, why);
}

static void test_unknown(void **state)
{
	static const char use[] = "use one of rsa:2048, rsa:3072, rsa:4096, ec:p256, ec:p384";

	fails_with("rsa:8192", P11PKI_E_ARG, "unknown key type 'rsa:8192': ");
	fails_with("rsa:8192", P11PKI_E_ARG, use);
	fails_with("rsa:2049", P11PKI_E_ARG, "unknown key type 'rsa:2049'");
	fails_with("rsa:", P11PKI_E_ARG, "unknown key type 'rsa:'");
	fails_with("rsa", P11PKI_E_ARG, "unknown key type 'rsa'");
	fails_with("rsa:abc", P11PKI_E_ARG, "unknown key type 'rsa:abc'");
	fails_with("rsa:-1024", P11PKI_E_ARG, "unknown key type 'rsa:-1024'");
	fails_with("rsa: 1024", P11PKI_E_ARG, "unknown key type 'rsa: 1024'");
	fails_with("rsa:1024x", P11PKI_E_ARG, "unknown key type 'rsa:1024x'");
	fails_with("rsa:99999999999999999999", P11PKI_E_ARG, "unknown key type");
	fails_with("rsa:2048 ", P11PKI_E_ARG, "unknown key type 'rsa:2048 '");
	fails_with("ec:p521", P11PKI_E_ARG, "unknown key type 'ec:p521'");
	fails_with("ec:", P11PKI_E_ARG, "unknown key type 'ec:'");
	fails_with("ed25519", P11PKI_E_ARG, "unknown key type 'ed25519'");
	fails_with("", P11PKI_E_ARG, "unknown key type ''");
	fails_with("ec:p256\x1b[2J", P11PKI_E_ARG, "unknown key type 'ec:p256?[2J'");
	fails_with(NULL, P11PKI_E_ARG, use);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rsa),
		cmocka_unit_test(test_ec),
		cmocka_unit_test(test_canonical_name_parses_to_itself),
		cmocka_unit_test(test_weak_rsa_is_policy),
		cmocka_unit_test(test_unknown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
