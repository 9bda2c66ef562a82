/* subjectAltName entries: text to GENERAL_NAME and back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <p11pki/x509.h>

#define IDN_HOST "www.\xe6\x88\x91\xe7\x9a\x84\xe4\xbc\xba\xe6\x9c\x8d\xe5\x99\xa8.com"
#define IDN_ASCII "www.xn--3pqw8o2pk43espw.com"

static GENERAL_NAME *parse_ok(const char *spec, int type)
{
	GENERAL_NAME *gn = NULL;
	int r = p11pki_san_parse(spec, &gn);

	if (r != 0)
		print_error("'%s' failed: %s\n", spec, p11pki_errmsg());
	assert_int_equal(r, P11PKI_OK);
	assert_non_null(gn);
	assert_int_equal(gn->type, type);
	return gn;
}

/* spec parses to a GENERAL_NAME of type that formats as want. */
static void formats_as(const char *spec, int type, const char *want)
{
	GENERAL_NAME *gn = parse_ok(spec, type), *again;
	char *s = NULL;

	assert_int_equal(p11pki_san_format(gn, &s), P11PKI_OK);
	assert_string_equal(s, want);
	again = parse_ok(s, type);
	assert_int_equal(GENERAL_NAME_cmp(gn, again), 0);
	free(s);
	GENERAL_NAME_free(gn);
	GENERAL_NAME_free(again);
}

static void refused(const char *spec, const char *want)
{
	GENERAL_NAME *gn = (GENERAL_NAME *)1;

	assert_int_equal(p11pki_san_parse(spec, &gn), P11PKI_E_ARG);
	assert_null(gn);
	if (strstr(p11pki_errmsg(), want) == NULL)
		print_error("message '%s' lacks '%s'\n", p11pki_errmsg(), want);
	assert_non_null(strstr(p11pki_errmsg(), want));
	assert_null(strchr(p11pki_errmsg(), '\n'));
}

static void test_dns(void **state)
{
	formats_as("dns:www.example.com", GEN_DNS, "dns:www.example.com");
	formats_as("DNS:WWW.Example.com", GEN_DNS, "dns:www.example.com");
	formats_as("dns:*.myserver.com", GEN_DNS, "dns:*.myserver.com");
	formats_as("dns:" IDN_HOST, GEN_DNS, "dns:" IDN_ASCII);
	formats_as("dns: www.example.com ", GEN_DNS, "dns:www.example.com");
	refused("dns:*.com", "subjectAltName 'dns:*.com': ");
	refused("dns:*.com", "top-level domain");
	refused("dns:w*.example.com", "a wildcard is allowed only as the whole leftmost label");
	refused("dns:10.1.2.3", "write it as ip:10.1.2.3");
	refused("dns:a_b.example.com", "'_'");
	refused("dns:", "has an empty name");
	refused("dns:   ", "has an empty name");
}

static void test_ip(void **state)
{
	GENERAL_NAME *gn;

	formats_as("ip:192.0.2.10", GEN_IPADD, "ip:192.0.2.10");
	formats_as("IP:2001:db8::1", GEN_IPADD, "ip:2001:db8::1");
	formats_as("ip:2001:DB8:0:0:0:0:0:1", GEN_IPADD, "ip:2001:db8::1");
	formats_as("ip:[2001:db8::1]", GEN_IPADD, "ip:2001:db8::1");
	formats_as("ip:::1", GEN_IPADD, "ip:::1");
	formats_as("ip:fe80::1:2:3:4", GEN_IPADD, "ip:fe80::1:2:3:4");
	gn = parse_ok("ip:2001:db8::1", GEN_IPADD);
	assert_int_equal(ASN1_STRING_length(gn->d.iPAddress), 16);
	GENERAL_NAME_free(gn);
	gn = parse_ok("ip:10.0.0.1", GEN_IPADD);
	assert_int_equal(ASN1_STRING_length(gn->d.iPAddress), 4);
	assert_memory_equal(ASN1_STRING_get0_data(gn->d.iPAddress), "\x0a\x00\x00\x01", 4);
	GENERAL_NAME_free(gn);
	refused("ip:www.example.com", "'ip:www.example.com': not an IPv4 or IPv6 address");
	refused("ip:1.2.3", "not an IPv4 or IPv6 address");
	refused("ip:1.2.3.4/24", "not an IPv4 or IPv6 address");
	refused("ip:2001:db8::1::2", "not an IPv4 or IPv6 address");
}

static void test_email(void **state)
{
	formats_as("email:alice@example.com", GEN_EMAIL, "email:alice@example.com");
	formats_as("Email:Alice@Example.COM", GEN_EMAIL, "email:Alice@example.com");
	formats_as("email:bob@" IDN_HOST, GEN_EMAIL, "email:bob@" IDN_ASCII);
	refused("email:alice", "exactly one '@'");
	refused("email:a@b@example.com", "exactly one '@'");
	refused("email:@example.com", "both sides of the '@'");
	refused("email:alice@", "both sides of the '@'");
	refused("email:al ice@example.com", "ASCII without spaces");
	refused("email:\xc3\xa9@example.com", "ASCII without spaces");
	refused("email:alice@*.example.com", "cannot be a wildcard");
	refused("email:alice@a_b.com", "'_'");
}

static void test_uri(void **state)
{
	formats_as("uri:https://www.example.com/path?q=1", GEN_URI,
		   "uri:https://www.example.com/path?q=1");
	formats_as("URI:urn:example:thing", GEN_URI, "uri:urn:example:thing");
	formats_as("uri:spiffe://example.org/ns/web", GEN_URI, "uri:spiffe://example.org/ns/web");
	refused("uri:www.example.com", "a URI must start with a scheme");
	refused("uri://www.example.com", "a URI must start with a scheme");
	refused("uri:1http://x", "a URI must start with a scheme");
	refused("uri:https:", "nothing after its scheme");
	refused("uri:https://a b", "ASCII without spaces");
	refused("uri:https://caf\xc3\xa9.example", "percent-encode");
}

static void test_prefix(void **state)
{
	static const char want[] = "must start with dns:, ip:, email: or uri:";

	refused("www.example.com", "subjectAltName 'www.example.com' must start with dns:, ip:, "
				   "email: or uri:");
	refused("dnsname:www.example.com", want);
	refused("rid:1.2.3", want);
	refused(":x", want);
	refused("dn\x1b[2J:x", "'dn?[2J:x'");
	refused("", "empty subjectAltName");
	refused(NULL, "empty subjectAltName");
}

static void test_format_other(void **state)
{
	GENERAL_NAME *gn = GENERAL_NAME_new();
	ASN1_OCTET_STRING *ip = ASN1_OCTET_STRING_new();
	ASN1_IA5STRING *dns = ASN1_IA5STRING_new();
	char *s = (char *)1;

	/* 8 bytes: an address and mask from name constraints */
	assert_int_equal(ASN1_OCTET_STRING_set(ip, (const unsigned char *)"\x0a\0\0\0\xff\0\0\0", 8),
			 1);
	GENERAL_NAME_set0_value(gn, GEN_IPADD, ip);
	assert_int_equal(p11pki_san_format(gn, &s), P11PKI_E_ARG);
	assert_null(s);
	assert_non_null(strstr(p11pki_errmsg(), "8 bytes"));
	GENERAL_NAME_free(gn);
	/* what a hostile certificate may carry is escaped */
	gn = GENERAL_NAME_new();
	assert_int_equal(ASN1_STRING_set(dns, "a\x1b[2J\x80.com", 10), 1);
	GENERAL_NAME_set0_value(gn, GEN_DNS, dns);
	assert_int_equal(p11pki_san_format(gn, &s), P11PKI_OK);
	assert_string_equal(s, "dns:a\\x1b[2J\\x80.com");
	free(s);
	GENERAL_NAME_free(gn);
	gn = GENERAL_NAME_new();
	GENERAL_NAME_set0_value(gn, GEN_RID, OBJ_txt2obj("1.2.3.4", 1));
	assert_int_equal(p11pki_san_format(gn, &s), P11PKI_E_UNSUPPORTED);
	assert_non_null(strstr(p11pki_errmsg(), "registeredID"));
	GENERAL_NAME_free(gn);
	assert_int_equal(p11pki_san_format(NULL, &s), P11PKI_E_ARG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dns),
		cmocka_unit_test(test_ip),
		cmocka_unit_test(test_email),
		cmocka_unit_test(test_uri),
		cmocka_unit_test(test_prefix),
		cmocka_unit_test(test_format_other),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
