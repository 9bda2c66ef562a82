/* Name policies (match / supplied / optional) as `openssl ca` applies
 * them, with the policy of use case 4. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/objects.h>

#include <p11pki/x509.h>

#define CA_SUBJECT "/C=HK/ST=Hong Kong/O=Example/OU=Clients/CN=Example Client CA"

/* Use case 4, in openssl.conf order. */
static const char *const uc4_keys[] = {
	"countryName", "stateOrProvinceName", "localityName", "organizationName",
	"organizationalUnitName", "commonName", "emailAddress",
};
static const char *const uc4_values[] = {
	"match", "match", "optional", "match", "match", "supplied", "optional",
};
#define UC4_N (sizeof(uc4_keys) / sizeof(uc4_keys[0]))

static void expect_msg(int got, int code, const char *want)
{
	assert_int_equal(got, code);
	if (strstr(p11pki_errmsg(), want) == NULL)
		print_error("message '%s' lacks '%s'\n", p11pki_errmsg(), want);
	assert_non_null(strstr(p11pki_errmsg(), want));
	assert_null(strchr(p11pki_errmsg(), '\n'));
}

static X509_NAME *name(const char *text)
{
	X509_NAME *n = NULL;

	assert_int_equal(p11pki_name_parse(text, &n), P11PKI_OK);
	return n;
}

static void uc4_policy(struct p11pki_policy *p)
{
	assert_int_equal(p11pki_policy_parse(uc4_keys, uc4_values, UC4_N, p), P11PKI_OK);
	assert_int_equal(p->n, UC4_N);
}

/* Applies the use case 4 policy; on success the result must format as
 * want, else the refusal must be code with a message containing want. */
static void apply(const X509_NAME *ca, const char *request, int code, const char *want)
{
	struct p11pki_policy p;
	X509_NAME *req = name(request), *out = (X509_NAME *)1;
	char *text = NULL;

	uc4_policy(&p);
	if (code != 0) {
		expect_msg(p11pki_policy_apply(&p, ca, req, &out), code, want);
		assert_null(out);
		X509_NAME_free(req);
		return;
	}
	if (p11pki_policy_apply(&p, ca, req, &out) != 0)
		print_error("apply failed: %s\n", p11pki_errmsg());
	assert_non_null(out);
	assert_int_equal(p11pki_name_format(out, &text), P11PKI_OK);
	assert_string_equal(text, want);
	free(text);
	X509_NAME_free(out);
	X509_NAME_free(req);
}

static void test_parse(void **state)
{
	struct p11pki_policy p;
	static const char *const keys[] = { "C", "cn", " O ", "2.5.4.11" };
	static const char *const values[] = { "match", "Supplied", " optional ", "MATCH" };

	uc4_policy(&p);
	assert_int_equal(p.field[0].nid, NID_countryName);
	assert_int_equal(p.field[0].rule, P11PKI_POLICY_MATCH);
	assert_int_equal(p.field[2].nid, NID_localityName);
	assert_int_equal(p.field[2].rule, P11PKI_POLICY_OPTIONAL);
	assert_int_equal(p.field[5].nid, NID_commonName);
	assert_int_equal(p.field[5].rule, P11PKI_POLICY_SUPPLIED);
	assert_int_equal(p.field[6].nid, NID_pkcs9_emailAddress);
	/* short names, any case, blanks around */
	assert_int_equal(p11pki_policy_parse(keys, values, 4, &p), P11PKI_OK);
	assert_int_equal(p.n, 4);
	assert_int_equal(p.field[1].nid, NID_commonName);
	assert_int_equal(p.field[1].rule, P11PKI_POLICY_SUPPLIED);
	assert_int_equal(p.field[2].nid, NID_organizationName);
	assert_int_equal(p.field[2].rule, P11PKI_POLICY_OPTIONAL);
	assert_int_equal(p.field[3].nid, NID_organizationalUnitName);
	assert_int_equal(p11pki_policy_parse(NULL, NULL, 0, &p), P11PKI_OK);
	assert_int_equal(p.n, 0);
}

static void parse_fails(const char *key, const char *value, const char *want)
{
	const char *keys[] = { "countryName", key };
	const char *values[] = { "match", value };
	struct p11pki_policy p;

	memset(&p, 0x5a, sizeof(p));
	expect_msg(p11pki_policy_parse(keys, values, 2, &p), P11PKI_E_ARG, want);
	assert_int_equal(p.n, 0);
}

static void test_parse_errors(void **state)
{
	const char *many_keys[P11PKI_POLICY_MAX + 1], *many_values[P11PKI_POLICY_MAX + 1];
	struct p11pki_policy p;
	size_t i;

	parse_fails("favouriteColour", "optional", "'favouriteColour' is not a subject field");
	parse_fails("rsaEncryption", "optional", "'rsaEncryption' is not a subject field");
	parse_fails("commonName", "mandatory", "field 'commonName' has rule 'mandatory': use "
					       "match, supplied or optional");
	parse_fails("commonName", "", "field 'commonName' has rule ''");
	parse_fails("C", "optional", "field 'C' appears twice");
	parse_fails("commonName", NULL, "entry 2 is incomplete");
	parse_fails("bad\x1b[2J", "optional", "'bad?[2J'");
	for (i = 0; i <= P11PKI_POLICY_MAX; i++) {
		many_keys[i] = "commonName";
		many_values[i] = "optional";
	}
	expect_msg(p11pki_policy_parse(many_keys, many_values, P11PKI_POLICY_MAX + 1, &p),
		   P11PKI_E_ARG, "at most 16");
	expect_msg(p11pki_policy_parse(NULL, NULL, 1, &p), P11PKI_E_ARG, "no keys");
	assert_int_equal(p11pki_policy_parse(uc4_keys, uc4_values, UC4_N, NULL), P11PKI_E_ARG);
}

static void test_pass(void **state)
{
	X509_NAME *ca = name(CA_SUBJECT);

	/* policy order; title is dropped; optional ones copied */
	apply(ca, "/CN=alice/title=Boss/OU=Clients/O=Example/ST=Hong Kong/C=HK/L=Central"
		  "/emailAddress=alice@example.com",
	      0, "emailAddress=alice@example.com,CN=alice,OU=Clients,O=Example,L=Central,"
		 "ST=Hong Kong,C=HK");
	/* optional ones may be absent */
	apply(ca, "/C=HK/ST=Hong Kong/O=Example/OU=Clients/CN=bob", 0,
	      "CN=bob,OU=Clients,O=Example,ST=Hong Kong,C=HK");
	/* several values of a supplied or optional field are all kept */
	apply(ca, "/C=HK/ST=Hong Kong/O=Example/OU=Clients/CN=a/CN=b/L=x/L=y", 0,
	      "CN=b,CN=a,OU=Clients,O=Example,L=y,L=x,ST=Hong Kong,C=HK");
	X509_NAME_free(ca);
}

static void test_match_failures(void **state)
{
	X509_NAME *ca = name(CA_SUBJECT);

	apply(ca, "/C=HK/ST=Hong Kong/O=Evil/OU=Clients/CN=mallory", P11PKI_E_POLICY,
	      "the request's organizationName 'Evil' does not match the CA's 'Example'");
	apply(ca, "/C=US/ST=Hong Kong/O=Example/OU=Clients/CN=mallory", P11PKI_E_POLICY,
	      "the request's countryName 'US' does not match the CA's 'HK'");
	apply(ca, "/C=HK/ST=Kowloon/O=Example/OU=Clients/CN=mallory", P11PKI_E_POLICY,
	      "the request's stateOrProvinceName 'Kowloon' does not match the CA's 'Hong Kong'");
	apply(ca, "/C=HK/ST=Hong Kong/O=Example/OU=Servers/CN=mallory", P11PKI_E_POLICY,
	      "the request's organizationalUnitName 'Servers' does not match the CA's "
	      "'Clients'");
	/* exact text: no case folding */
	apply(ca, "/C=HK/ST=Hong Kong/O=example/OU=Clients/CN=mallory", P11PKI_E_POLICY,
	      "'example' does not match the CA's 'Example'");
	/* every value of a matched field must match */
	apply(ca, "/C=HK/ST=Hong Kong/O=Example/OU=Clients/OU=Admins/CN=mallory", P11PKI_E_POLICY,
	      "organizationalUnitName 'Admins' does not match");
	/* a matched field missing from the request */
	apply(ca, "/C=HK/ST=Hong Kong/OU=Clients/CN=mallory", P11PKI_E_POLICY,
	      "the request has no organizationName, which the policy requires to match the "
	      "CA's");
	X509_NAME_free(ca);
}

static void test_supplied_missing(void **state)
{
	X509_NAME *ca = name(CA_SUBJECT);

	apply(ca, "/C=HK/ST=Hong Kong/O=Example/OU=Clients/emailAddress=a@example.com",
	      P11PKI_E_POLICY, "the request has no commonName, which the policy requires");
	X509_NAME_free(ca);
}

static void test_ca_lacks_field(void **state)
{
	X509_NAME *ca = name("/C=HK/ST=Hong Kong/O=Example/CN=Example Client CA");

	/* openssl ca: "the 'policy' is misconfigured" */
	apply(ca, "/C=HK/ST=Hong Kong/O=Example/OU=Clients/CN=bob", P11PKI_E_POLICY,
	      "the policy requires the request's organizationalUnitName to match the CA's, but "
	      "the CA's subject has none");
	apply(NULL, "/C=HK/ST=Hong Kong/O=Example/OU=Clients/CN=bob", P11PKI_E_POLICY,
	      "the CA's subject has none");
	X509_NAME_free(ca);
}

/* A CA subject with PrintableString values matches a request with
 * UTF8String ones; the certificate gets the CA's encoding. */
static void test_string_types(void **state)
{
	X509_NAME *ca = X509_NAME_new(), *req = name("/C=HK/ST=Hong Kong/O=Example/OU=Clients/CN=bob");
	X509_NAME *out = NULL;
	struct p11pki_policy p;
	static const char *const fields[][2] = {
		{ "C", "HK" }, { "ST", "Hong Kong" }, { "O", "Example" }, { "OU", "Clients" },
	};
	size_t i;
	int idx;

	for (i = 0; i < 4; i++)
		assert_int_equal(X509_NAME_add_entry_by_txt(ca, fields[i][0], V_ASN1_PRINTABLESTRING,
							    (const unsigned char *)fields[i][1],
							    -1, -1, 0),
				 1);
	uc4_policy(&p);
	assert_int_equal(p11pki_policy_apply(&p, ca, req, &out), P11PKI_OK);
	idx = X509_NAME_get_index_by_NID(out, NID_organizationName, -1);
	assert_true(idx >= 0);
	assert_int_equal(ASN1_STRING_type(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(out, idx))),
			 V_ASN1_PRINTABLESTRING);
	X509_NAME_free(out);
	X509_NAME_free(req);
	X509_NAME_free(ca);
}

static void test_apply_errors(void **state)
{
	struct p11pki_policy p, bad;
	X509_NAME *ca = name(CA_SUBJECT), *req = name("/title=Boss"), *out = (X509_NAME *)1;

	uc4_policy(&p);
	memset(&bad, 0, sizeof(bad));
	bad.n = 1;
	bad.field[0].nid = NID_commonName;
	bad.field[0].rule = 7;
	expect_msg(p11pki_policy_apply(&bad, ca, req, &out), P11PKI_E_ARG, "invalid rule");
	assert_null(out);
	bad.n = P11PKI_POLICY_MAX + 1;
	expect_msg(p11pki_policy_apply(&bad, ca, req, &out), P11PKI_E_ARG, "at most 16");
	/* only optional fields, none present */
	bad.n = 1;
	bad.field[0].rule = P11PKI_POLICY_OPTIONAL;
	expect_msg(p11pki_policy_apply(&bad, ca, req, &out), P11PKI_E_POLICY,
		   "none of the fields the policy names");
	expect_msg(p11pki_policy_apply(NULL, ca, req, &out), P11PKI_E_ARG, "no policy");
	expect_msg(p11pki_policy_apply(&p, ca, NULL, &out), P11PKI_E_ARG, "no request");
	assert_int_equal(p11pki_policy_apply(&p, ca, req, NULL), P11PKI_E_ARG);
	X509_NAME_free(req);
	X509_NAME_free(ca);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_pass),
		cmocka_unit_test(test_match_failures),
		cmocka_unit_test(test_supplied_missing),
		cmocka_unit_test(test_ca_lacks_field),
		cmocka_unit_test(test_string_types),
		cmocka_unit_test(test_apply_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
