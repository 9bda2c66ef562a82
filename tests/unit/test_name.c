/* Subject names: slash form and RFC 4514 in, RFC 4514 out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/objects.h>

#include <p11pki/x509.h>

static X509_NAME *parse_ok(const char *text)
{
	X509_NAME *n = NULL;
	int r = p11pki_name_parse(text, &n);

	if (r != 0)
		print_error("parse of '%s' failed: %s\n", text, p11pki_errmsg());
	assert_int_equal(r, P11PKI_OK);
	assert_non_null(n);
	return n;
}

/* Must fail with P11PKI_E_ARG and a one-line message containing want. */
static void parse_fails(const char *text, const char *want)
{
	X509_NAME *n = (X509_NAME *)1;

	assert_int_equal(p11pki_name_parse(text, &n), P11PKI_E_ARG);
	assert_null(n);
	if (strstr(p11pki_errmsg(), want) == NULL)
		print_error("message '%s' lacks '%s'\n", p11pki_errmsg(), want);
	assert_non_null(strstr(p11pki_errmsg(), want));
	assert_null(strchr(p11pki_errmsg(), '\n'));
}

static void same_name(const char *a, const char *b)
{
	X509_NAME *x = parse_ok(a), *y = parse_ok(b);

	assert_int_equal(X509_NAME_cmp(x, y), 0);
	X509_NAME_free(x);
	X509_NAME_free(y);
}

static void formats_as(const char *text, const char *want)
{
	X509_NAME *n = parse_ok(text);
	char *s = NULL;

	assert_int_equal(p11pki_name_format(n, &s), P11PKI_OK);
	assert_string_equal(s, want);
	free(s);
	X509_NAME_free(n);
}

/* The UTF-8 value of entry i, and its NID. */
static void entry_is(const X509_NAME *n, int i, int nid, const char *value)
{
	const X509_NAME_ENTRY *e = X509_NAME_get_entry(n, i);
	unsigned char *text = NULL;
	int len;

	assert_non_null(e);
	assert_int_equal(OBJ_obj2nid(X509_NAME_ENTRY_get_object(e)), nid);
	len = ASN1_STRING_to_UTF8(&text, X509_NAME_ENTRY_get_data(e));
	assert_true(len >= 0);
	assert_int_equal((size_t)len, strlen(value));
	assert_memory_equal(text, value, (size_t)len);
	OPENSSL_free(text);
}

static void single_value(const char *text, int nid, const char *value)
{
	X509_NAME *n = parse_ok(text);

	assert_int_equal(X509_NAME_entry_count(n), 1);
	entry_is(n, 0, nid, value);
	X509_NAME_free(n);
}

static void test_use_case_subject_both_forms(void **state)
{
	static const char slash[] = "/C=US/ST=GuangDong/L=GuangZhou/O=Your Company Name/"
				    "OU=imdst.com/CN=test.imdst.com";
	static const char rfc[] = "CN=test.imdst.com,OU=imdst.com,O=Your Company Name,"
				  "L=GuangZhou,ST=GuangDong,C=US";
	X509_NAME *n = parse_ok(slash);

	/* certificate order: C first, CN last */
	assert_int_equal(X509_NAME_entry_count(n), 6);
	entry_is(n, 0, NID_countryName, "US");
	entry_is(n, 1, NID_stateOrProvinceName, "GuangDong");
	entry_is(n, 2, NID_localityName, "GuangZhou");
	entry_is(n, 3, NID_organizationName, "Your Company Name");
	entry_is(n, 4, NID_organizationalUnitName, "imdst.com");
	entry_is(n, 5, NID_commonName, "test.imdst.com");
	X509_NAME_free(n);
	same_name(slash, rfc);
	formats_as(slash, rfc);
	formats_as(rfc, rfc);
	/* use case 2: a government CA's guide */
	same_name("/C=HK/ST=Hong Kong/L=Hong Kong/O=My Org/OU=IT/CN=www.myserver.com",
		  "CN=www.myserver.com,OU=IT,O=My Org,L=Hong Kong,ST=Hong Kong,C=HK");
	same_name("CN=test.imdst.com,O=Your Company Name,C=US",
		  "/C=US/O=Your Company Name/CN=test.imdst.com");
}

static void test_spaces_trimmed(void **state)
{
	same_name("CN = test.imdst.com , O = Your Company Name , C = US",
		  "CN=test.imdst.com,O=Your Company Name,C=US");
	same_name("  /C=US/ O = Org /CN= x.example.com ", "/C=US/O=Org/CN=x.example.com");
	/* inner spaces stay; escaped ones at the ends too */
	single_value("O=Your  Company", NID_organizationName, "Your  Company");
	single_value("O=\\ padded\\ ", NID_organizationName, " padded ");
	single_value("/O=\\ padded\\ ", NID_organizationName, " padded ");
}

static void test_attribute_names(void **state)
{
	same_name("/countryName=US/stateOrProvinceName=CA/localityName=LA/organizationName=O"
		  "/organizationalUnitName=U/commonName=www.example.com",
		  "/C=US/ST=CA/L=LA/O=O/OU=U/CN=www.example.com");
	same_name("cn=www.example.com,o=Org,c=us", "CN=www.example.com,O=Org,C=US");
	same_name("/emailaddress=a@example.com", "/emailAddress=a@example.com");
	single_value("/serialNumber=1234", NID_serialNumber, "1234");
	single_value("/DC=example", NID_domainComponent, "example");
	single_value("/UID=jsmith", NID_userId, "jsmith");
	single_value("/street=1 Main St", NID_streetAddress, "1 Main St");
	single_value("/title=Boss", NID_title, "Boss");
	single_value("/GN=John", NID_givenName, "John");
	single_value("/SN=Smith", NID_surname, "Smith");
	single_value("2.5.4.3=Dotted", NID_commonName, "Dotted");
	assert_int_equal(p11pki_name_attr_nid("cn"), NID_commonName);
	assert_int_equal(p11pki_name_attr_nid("COMMONNAME"), NID_commonName);
	assert_int_equal(p11pki_name_attr_nid("UID"), NID_userId);
	/* OpenSSL's own spelling wins: "uid" is uniqueIdentifier there */
	assert_int_equal(p11pki_name_attr_nid("uid"), NID_uniqueIdentifier);
	assert_int_equal(p11pki_name_attr_nid("sha256"), NID_undef);
	assert_int_equal(p11pki_name_attr_nid("rsaEncryption"), NID_undef);
	assert_int_equal(p11pki_name_attr_nid("1.2.840.113549.1.1.1"), NID_undef);
	assert_int_equal(p11pki_name_attr_nid(""), NID_undef);
	assert_int_equal(p11pki_name_attr_nid(NULL), NID_undef);
}

static void test_rfc4514_escapes(void **state)
{
	single_value("CN=a\\,b", NID_commonName, "a,b");
	single_value("O=x\\+y", NID_organizationName, "x+y");
	single_value("O=back\\\\slash", NID_organizationName, "back\\slash");
	single_value("O=say \\\"hi\\\"", NID_organizationName, "say \"hi\"");
	single_value("O=caf\\C3\\A9", NID_organizationName, "caf\xc3\xa9");
	single_value("O=\\#1", NID_organizationName, "#1");
	single_value("O=#", NID_organizationName, "#");
	single_value("O=a\\;b\\<c\\>d", NID_organizationName, "a;b<c>d");
	single_value("O=a=b", NID_organizationName, "a=b");
	single_value("O=a/b", NID_organizationName, "a/b");
	single_value("O=\xe6\x88\x91\xe7\x9a\x84", NID_organizationName, "\xe6\x88\x91\xe7\x9a\x84");
}

static void test_slash_escapes_and_multivalued(void **state)
{
	X509_NAME *n;

	single_value("/O=a\\/b", NID_organizationName, "a/b");
	single_value("/O=x\\+y", NID_organizationName, "x+y");
	/* like OpenSSL, a backslash takes the next character: no hex pairs */
	single_value("/O=\\41", NID_organizationName, "41");
	single_value("/O=a,b", NID_organizationName, "a,b");
	single_value("/O=\"q\"", NID_organizationName, "\"q\"");
	n = parse_ok("/O=Org/CN=John Smith+UID=jsmith");
	assert_int_equal(X509_NAME_entry_count(n), 3);
	entry_is(n, 1, NID_commonName, "John Smith");
	entry_is(n, 2, NID_userId, "jsmith");
	assert_int_equal(X509_NAME_ENTRY_set(X509_NAME_get_entry(n, 1)),
			 X509_NAME_ENTRY_set(X509_NAME_get_entry(n, 2)));
	assert_int_not_equal(X509_NAME_ENTRY_set(X509_NAME_get_entry(n, 0)),
			     X509_NAME_ENTRY_set(X509_NAME_get_entry(n, 1)));
	X509_NAME_free(n);
	same_name("/O=Org/CN=John Smith+UID=jsmith", "CN=John Smith+UID=jsmith,O=Org");
	/* X509_NAME_cmp orders the values of one RDN (DER SET OF) */
	same_name("/O=Org/CN=John Smith+UID=jsmith", "UID=jsmith+CN=John Smith,O=Org");
	same_name("/C=US/CN=x.example.com/", "/C=US/CN=x.example.com");
	/* repeated attributes are kept, in order */
	n = parse_ok("/OU=a/OU=b");
	entry_is(n, 0, NID_organizationalUnitName, "a");
	entry_is(n, 1, NID_organizationalUnitName, "b");
	X509_NAME_free(n);
}

static void test_host_cn(void **state)
{
	single_value("/CN=www.\xe6\x88\x91\xe7\x9a\x84\xe4\xbc\xba\xe6\x9c\x8d\xe5\x99\xa8.com",
		     NID_commonName, "www.xn--3pqw8o2pk43espw.com");
	single_value("CN=WWW.Example.COM", NID_commonName, "www.example.com");
	single_value("CN=*.myserver.com", NID_commonName, "*.myserver.com");
	/* not host names: kept as typed */
	single_value("CN=John Smith", NID_commonName, "John Smith");
	single_value("CN=J. Smith", NID_commonName, "J. Smith");
	single_value("CN=Example CA", NID_commonName, "Example CA");
	single_value("CN=10.0.0.1", NID_commonName, "10.0.0.1");
	single_value("CN=v1.2", NID_commonName, "v1.2");
	single_value("CN=jsmith@example.com", NID_commonName, "jsmith@example.com");
	/* only CN is converted */
	single_value("O=WWW.Example.COM", NID_organizationName, "WWW.Example.COM");
	parse_fails("CN=*.com", "wildcard over a whole top-level domain");
	parse_fails("CN=w*.example.com", "a wildcard is allowed only as the whole leftmost label");
	parse_fails("CN=a_b.example.com", "'_'");
}

static void test_country(void **state)
{
	single_value("/C=us", NID_countryName, "US");
	parse_fails("/C=USA", "'USA'");
	parse_fails("/C=USA", "two-letter");
	parse_fails("/C=U1", "'U1'");
	parse_fails("/C=U", "two-letter");
	parse_fails("/C=\xc3\xa9\xc3\xa9", "two-letter");
}

static void test_lengths(void **state)
{
	char buf[5000], value[300];

	memset(value, 'a', sizeof(value));
	value[64] = '\0';
	snprintf(buf, sizeof(buf), "/CN=%s", value);
	single_value(buf, NID_commonName, value);
	value[64] = 'a';
	value[65] = '\0';
	snprintf(buf, sizeof(buf), "/CN=%s", value);
	parse_fails(buf, "CN is 65 characters long: at most 64 are allowed");
	snprintf(buf, sizeof(buf), "/O=%s", value);
	parse_fails(buf, "O is 65 characters long: at most 64");
	snprintf(buf, sizeof(buf), "/OU=%s", value);
	parse_fails(buf, "OU is 65 characters long: at most 64");
	memset(value, 'b', sizeof(value));
	value[129] = '\0';
	snprintf(buf, sizeof(buf), "/L=%s", value);
	parse_fails(buf, "L is 129 characters long: at most 128");
	snprintf(buf, sizeof(buf), "/ST=%s", value);
	parse_fails(buf, "ST is 129 characters long: at most 128");
	value[128] = '\0';
	snprintf(buf, sizeof(buf), "/ST=%s", value);
	single_value(buf, NID_stateOrProvinceName, value);
	/* characters, not bytes: 64 three-byte characters are fine */
	memcpy(buf, "/CN=", 4);
	for (int i = 0; i < 64; i++)
		memcpy(buf + 4 + 3 * i, "\xe6\x88\x91", 3);
	buf[4 + 3 * 64] = '\0';
	X509_NAME_free(parse_ok(buf));
	/* RFC 5280's 255 for emailAddress, above OpenSSL's own 128 */
	memset(value, 'e', sizeof(value));
	memcpy(value + 243, "@example.com", 13);
	snprintf(buf, sizeof(buf), "/emailAddress=%s", value);
	single_value(buf, NID_pkcs9_emailAddress, value);
	memset(value, 'e', 244);
	memcpy(value + 244, "@example.com", 13);
	snprintf(buf, sizeof(buf), "/emailAddress=%s", value);
	parse_fails(buf, "emailAddress is 256 characters long: at most 255");
	parse_fails("/emailAddress=\xc3\xa9@example.com", "emailAddress must be ASCII");
	/* the whole input is bounded */
	memset(buf, 'x', 4097);
	memcpy(buf, "/O=", 3);
	buf[4097] = '\0';
	parse_fails(buf, "too long");
}

static void test_errors(void **state)
{
	X509_NAME *n = (X509_NAME *)1;

	parse_fails("", "empty name");
	parse_fails("   ", "empty name");
	parse_fails("/", "empty name");
	parse_fails("/C=US/XX=1", "unknown attribute 'XX'");
	parse_fails("CN=x,Bogus=1", "unknown attribute 'Bogus'");
	parse_fails("/rsaEncryption=1", "unknown attribute 'rsaEncryption'");
	parse_fails("/CN=", "CN has an empty value");
	parse_fails("CN=  ,O=x", "CN has an empty value");
	parse_fails("/CN=x/O=", "O has an empty value");
	parse_fails("/=x", "attribute name is missing");
	parse_fails("/C=US//CN=x", "attribute is missing");
	parse_fails("CN=x,", "attribute is missing at the end");
	parse_fails("CN=x,,O=y", "attribute is missing");
	parse_fails("/CN=x/junk", "'junk' is not TYPE=value");
	parse_fails("/CN=x/junk", "'\\/'");
	parse_fails("/O=A+B Inc/CN=x", "'B Inc' is not TYPE=value");
	parse_fails("/O=A+B Inc/CN=x", "'\\+'");
	parse_fails("O=Acme, Inc.,C=US", "'Inc.' is not TYPE=value");
	parse_fails("O=Acme, Inc.,C=US", "'\\,'");
	parse_fails("CN", "'CN' is not TYPE=value");
	parse_fails("CN=#04024869", "hex-encoded");
	parse_fails("O=\"Acme, Inc.\"", "quoted values are not supported");
	parse_fails("O=a\\", "lone '\\'");
	parse_fails("O=a\\00b", "NUL");
	parse_fails("O=a\\FFb", "not valid UTF-8");
	parse_fails("/O=a\xff", "not valid UTF-8");
	parse_fails("/O=a\x1b[2J", "control character");
	parse_fails("O=a\\0Ab", "control character");
	parse_fails("/serialNumber=a_b", "serialNumber");
	parse_fails("/XX\x1b[2J=1", "unknown attribute 'XX?[2J'");
	assert_int_equal(p11pki_name_parse(NULL, &n), P11PKI_E_ARG);
	assert_null(n);
	assert_int_equal(p11pki_name_parse("CN=x", NULL), P11PKI_E_ARG);
}

static void round_trip(const char *text)
{
	X509_NAME *a = parse_ok(text), *b;
	char *s = NULL;

	assert_int_equal(p11pki_name_format(a, &s), P11PKI_OK);
	b = parse_ok(s);
	assert_int_equal(X509_NAME_cmp(a, b), 0);
	free(s);
	X509_NAME_free(a);
	X509_NAME_free(b);
}

static void test_format(void **state)
{
	char *s = (char *)1;
	X509_NAME *empty = X509_NAME_new();

	formats_as("/O=a\\,b/CN=x", "CN=x,O=a\\,b");
	formats_as("/O=caf\xc3\xa9", "O=caf\xc3\xa9");
	formats_as("/O=\\#1", "O=\\#1");
	formats_as("/O=x\\+y", "O=x\\+y");
	formats_as("/O=Org/CN=John Smith+UID=jsmith", "UID=jsmith+CN=John Smith,O=Org");
	round_trip("/O=\\ a\\ /OU=b\\\\c/CN=\"d\";<e>");
	round_trip("/O=Org/CN=John Smith+UID=jsmith+emailAddress=j@example.com");
	round_trip("/C=HK/O=\xe6\x88\x91\xe7\x9a\x84/CN=www.\xe6\x88\x91\xe7\x9a\x84.com");
	round_trip("/DC=com/DC=example/UID=jsmith");
	round_trip("/O=#x/OU=a=b");
	/* OpenSSL prints a one-character "#" without its escape */
	formats_as("/O=#", "O=#");
	round_trip("/O=#/OU=#+CN=#");
	assert_int_equal(p11pki_name_format(empty, &s), P11PKI_OK);
	assert_string_equal(s, "");
	free(s);
	X509_NAME_free(empty);
	s = (char *)1;
	assert_int_equal(p11pki_name_format(NULL, &s), P11PKI_E_ARG);
	assert_null(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_use_case_subject_both_forms),
		cmocka_unit_test(test_spaces_trimmed),
		cmocka_unit_test(test_attribute_names),
		cmocka_unit_test(test_rfc4514_escapes),
		cmocka_unit_test(test_slash_escapes_and_multivalued),
		cmocka_unit_test(test_host_cn),
		cmocka_unit_test(test_country),
		cmocka_unit_test(test_lengths),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
