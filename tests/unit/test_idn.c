/* Host names to their ASCII form, and host name patterns. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <p11pki/x509.h>

/* "www.我的伺服器.com" (use case 2) */
#define IDN_HOST "www.\xe6\x88\x91\xe7\x9a\x84\xe4\xbc\xba\xe6\x9c\x8d\xe5\x99\xa8.com"
/* Its A-label form, from libidn2 2.3.3 and checked against Python's
 * IDNA 2003 codec ("www.我的伺服器.com".encode("idna")), which agrees for
 * this name: hard-coded so the test does not trust the code it tests. */
#define IDN_ASCII "www.xn--3pqw8o2pk43espw.com"

static void converts(const char *host, const char *want)
{
	char *out = NULL;
	int r = p11pki_host_to_ascii(host, &out);

	if (r != 0)
		print_error("'%s' failed: %s\n", host, p11pki_errmsg());
	assert_int_equal(r, P11PKI_OK);
	assert_string_equal(out, want);
	free(out);
}

static void refused(const char *host, const char *want)
{
	char *out = (char *)1;

	assert_int_equal(p11pki_host_to_ascii(host, &out), P11PKI_E_ARG);
	assert_null(out);
	if (strstr(p11pki_errmsg(), want) == NULL)
		print_error("message '%s' lacks '%s'\n", p11pki_errmsg(), want);
	assert_non_null(strstr(p11pki_errmsg(), want));
	assert_null(strchr(p11pki_errmsg(), '\n'));
}

static void test_idn(void **state)
{
	converts(IDN_HOST, IDN_ASCII);
	converts(IDN_ASCII, IDN_ASCII);
	converts("*." IDN_HOST, "*." IDN_ASCII);
	/* IDNA2008 non-transitional: ß is kept, not mapped to "ss" */
	converts("stra\xc3\x9f" "e.de", "xn--strae-oqa.de");
	/* UTS#46 mapping: case folding and the ideographic full stop */
	converts("WWW.Example.COM", "www.example.com");
	converts("www\xe3\x80\x82" "example\xe3\x80\x82" "com", "www.example.com");
	converts("www.example.com.", "www.example.com");
	converts("localhost.localdomain", "localhost.localdomain");
	converts("xn--55qx5d.com", "xn--55qx5d.com");
	converts("a-b.example.com", "a-b.example.com");
}

static void test_wildcards(void **state)
{
	static const char leftmost[] = "a wildcard is allowed only as the whole leftmost label";

	converts("*.example.com", "*.example.com");
	converts("*.myserver.com", "*.myserver.com");
	converts("*.Example.COM.", "*.example.com");
	refused("w*.example.com", leftmost);
	refused("www.*.com", leftmost);
	refused("*", leftmost);
	refused("*.", leftmost);
	refused("*.*.example.com", leftmost);
	refused("*w.example.com", leftmost);
	refused("www.example.*", leftmost);
	refused("*.com", "puts a wildcard over a whole top-level domain");
	refused("*.com", "'*.com'");
	/* a fullwidth asterisk maps to '*' and gets no way around the rule */
	refused("w\xef\xbc\x8a.example.com", leftmost);
}

static void test_refused(void **state)
{
	char label[80], name[300];
	size_t i;

	refused("", "empty host name");
	refused(NULL, "empty host name");
	refused("1.2.3.4", "'1.2.3.4' is an IP address, not a DNS name: write it as ip:1.2.3.4");
	refused("2001:db8::1", "ip:2001:db8::1");
	refused("[::1]", "IP address");
	refused("example.123", "looks like an IP address");
	refused("a..example.com", "empty label");
	refused(".example.com", "empty label");
	refused("a_b.example.com", "'a_b.example.com' contains '_'");
	refused("a b.example.com", "not allowed in a DNS name");
	refused("a/b.example.com", "contains '/'");
	refused("-ab.example.com", "'-ab.example.com'");
	refused("ab--cd.example.com", "'ab--cd.example.com': ");
	/* libidn2's own reason is passed on */
	refused("ab--cd.example.com", "two hyphens");
	refused("xn--abc.com", "xn--abc.com");
	refused("www.exa\xffmple.com", "not valid UTF-8");
	refused("www\x1b[2J.example.com", "'www?[2J.example.com'");
	/* 63-byte labels are fine, 64 are not */
	memset(label, 'a', 64);
	label[63] = '\0';
	snprintf(name, sizeof(name), "%s.com", label);
	converts(name, name);
	label[63] = 'a';
	label[64] = '\0';
	snprintf(name, sizeof(name), "%s.com", label);
	refused(name, "label");
	/* 253 characters are fine, 254 are not */
	for (i = 0; i < 252; i += 2)
		memcpy(name + i, "a.", 2);
	name[252] = 'a';
	name[253] = '\0';
	converts(name, name);
	memcpy(name + 252, "ab", 3);
	refused(name, "at most 253");
	memset(name, 'a', sizeof(name));
	name[sizeof(name) - 1] = '\0';
	refused(name, "too long");
	assert_int_equal(p11pki_host_to_ascii("example.com", NULL), P11PKI_E_ARG);
}

static void test_looks_like_host(void **state)
{
	assert_true(p11pki_looks_like_host("www.example.com"));
	assert_true(p11pki_looks_like_host("*.example.com"));
	assert_true(p11pki_looks_like_host(IDN_HOST));
	assert_true(p11pki_looks_like_host("example.com."));
	assert_false(p11pki_looks_like_host("localhost"));
	assert_false(p11pki_looks_like_host("John Smith"));
	assert_false(p11pki_looks_like_host("J. Smith"));
	assert_false(p11pki_looks_like_host("jsmith@example.com"));
	assert_false(p11pki_looks_like_host("10.0.0.1"));
	assert_false(p11pki_looks_like_host("::ffff:10.0.0.1"));
	assert_false(p11pki_looks_like_host("v1.2"));
	assert_false(p11pki_looks_like_host(""));
	assert_false(p11pki_looks_like_host(NULL));
}

static void test_patterns(void **state)
{
	/* exact, any case, a final dot ignored */
	assert_true(p11pki_host_pattern_match("www.example.com", "www.example.com"));
	assert_true(p11pki_host_pattern_match("WWW.example.com", "www.EXAMPLE.com"));
	assert_true(p11pki_host_pattern_match("www.example.com.", "www.example.com"));
	assert_false(p11pki_host_pattern_match("www.example.com", "example.com"));
	assert_false(p11pki_host_pattern_match("www.example.com", "wwww.example.com"));
	/* one label */
	assert_true(p11pki_host_pattern_match("*.example.com", "a.example.com"));
	assert_true(p11pki_host_pattern_match("*.example.com", "A.Example.com"));
	assert_false(p11pki_host_pattern_match("*.example.com", "example.com"));
	assert_false(p11pki_host_pattern_match("*.example.com", "a.b.example.com"));
	assert_false(p11pki_host_pattern_match("*.example.com", ".example.com"));
	assert_false(p11pki_host_pattern_match("*.example.com", "aexample.com"));
	/* any depth */
	assert_true(p11pki_host_pattern_match(".example.com", "a.example.com"));
	assert_true(p11pki_host_pattern_match(".example.com", "a.b.example.com"));
	assert_false(p11pki_host_pattern_match(".example.com", "example.com"));
	assert_false(p11pki_host_pattern_match(".example.com", "badexample.com"));
	/* a requested wildcard */
	assert_true(p11pki_host_pattern_match("*.example.com", "*.example.com"));
	assert_true(p11pki_host_pattern_match(".example.com", "*.example.com"));
	assert_true(p11pki_host_pattern_match(".example.com", "*.a.example.com"));
	assert_false(p11pki_host_pattern_match("a.example.com", "*.example.com"));
	assert_false(p11pki_host_pattern_match("*.example.com", "*.a.example.com"));
	assert_false(p11pki_host_pattern_match("*.a.example.com", "*.example.com"));
	/* malformed input never matches */
	assert_false(p11pki_host_pattern_match("*.example.com", "a..example.com"));
	assert_false(p11pki_host_pattern_match(".example.com", "a..example.com"));
	assert_false(p11pki_host_pattern_match("w*.example.com", "w*.example.com"));
	assert_false(p11pki_host_pattern_match("*", "*"));
	assert_false(p11pki_host_pattern_match(".", "a"));
	assert_false(p11pki_host_pattern_match("", ""));
	assert_false(p11pki_host_pattern_match(NULL, "a.example.com"));
	assert_false(p11pki_host_pattern_match("a.example.com", NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_idn),
		cmocka_unit_test(test_wildcards),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_looks_like_host),
		cmocka_unit_test(test_patterns),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
