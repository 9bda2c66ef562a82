/* PKCS#11 URI parsing and formatting (RFC 7512). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <p11pki/token.h>

/* Parses text, which must succeed. */
static struct p11pki_uri *parse_ok(const char *text)
{
	struct p11pki_uri *u = NULL;
	int r = p11pki_uri_parse(text, &u);

	if (r != 0)
		print_error("parse of '%s' failed: %s\n", text, p11pki_errmsg());
	assert_int_equal(r, P11PKI_OK);
	assert_non_null(u);
	return u;
}

/* Parses text, which must fail with P11PKI_E_ARG and a one-line message
 * containing want. */
static void parse_fails(const char *text, const char *want)
{
	struct p11pki_uri *u = (struct p11pki_uri *)1;
	int r = p11pki_uri_parse(text, &u);

	assert_int_equal(r, P11PKI_E_ARG);
	assert_null(u);
	if (strstr(p11pki_errmsg(), want) == NULL)
		print_error("message '%s' lacks '%s'\n", p11pki_errmsg(), want);
	assert_non_null(strstr(p11pki_errmsg(), want));
	assert_null(strchr(p11pki_errmsg(), '\n'));
}

static char *format_ok(const struct p11pki_uri *u)
{
	char *s = NULL;

	assert_int_equal(p11pki_uri_format(u, &s), P11PKI_OK);
	assert_non_null(s);
	return s;
}

static void assert_str_or_null(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		assert_ptr_equal(a, b);
	else
		assert_string_equal(a, b);
}

/* Every field but pin_value, which the formatter never prints. */
static void assert_uri_equal(const struct p11pki_uri *a, const struct p11pki_uri *b)
{
	assert_str_or_null(a->token, b->token);
	assert_str_or_null(a->manufacturer, b->manufacturer);
	assert_str_or_null(a->serial, b->serial);
	assert_str_or_null(a->model, b->model);
	assert_str_or_null(a->object, b->object);
	assert_int_equal(a->id_len, b->id_len);
	if (a->id_len > 0)
		assert_memory_equal(a->id, b->id, a->id_len);
	assert_int_equal(a->type, b->type);
	assert_int_equal(a->has_slot_id, b->has_slot_id);
	assert_int_equal(a->slot_id, b->slot_id);
	assert_str_or_null(a->slot_description, b->slot_description);
	assert_str_or_null(a->slot_manufacturer, b->slot_manufacturer);
	assert_str_or_null(a->library_manufacturer, b->library_manufacturer);
	assert_str_or_null(a->library_description, b->library_description);
	assert_str_or_null(a->library_version, b->library_version);
	assert_str_or_null(a->pin_source, b->pin_source);
	assert_str_or_null(a->module_name, b->module_name);
	assert_str_or_null(a->module_path, b->module_path);
}

/* parse(format(u)) equals u, and formatting that again is stable. */
static void assert_round_trip(const struct p11pki_uri *u)
{
	struct p11pki_uri *v;
	char *a, *b;

	a = format_ok(u);
	v = parse_ok(a);
	assert_uri_equal(u, v);
	b = format_ok(v);
	assert_string_equal(a, b);
	free(a);
	free(b);
	p11pki_uri_free(v);
}

/* ---- RFC 7512 section 3.3 examples ---- */

static const char *const rfc_examples[] = {
	"pkcs11:",
	"pkcs11:object=my-pubkey;type=public",
	"pkcs11:object=my-key;type=private?pin-source=file:/etc/token",
	"pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;"
	"manufacturer=Snake%20Oil,%20Inc.;model=1.0;object=my-certificate;"
	"type=cert;id=%69%95%3E%5C%F4%BD%EC%91;serial=?pin-source=file:/etc/token_pin",
	"pkcs11:object=my-sign-key;type=private?module-name=mypkcs11",
	"pkcs11:object=my-sign-key;type=private?module-path=/mnt/libmypkcs11.so.1",
	"pkcs11:token=Software%20PKCS%2311%20softtoken;"
	"manufacturer=Snake%20Oil,%20Inc.?pin-value=the-pin",
	"pkcs11:slot-description=Sun%20Metaslot",
	"pkcs11:library-manufacturer=Snake%20Oil,%20Inc.;"
	"library-description=Soft%20Token%20Library;library-version=1.23",
	"pkcs11:token=A%20name%20with%20a%20substring%20%25%3B;object=my-certificate;type=cert",
	"pkcs11:token=Name%20with%20a%20small%20A%20with%20acute:%20%C3%A1;"
	"object=my-certificate;type=cert",
	"pkcs11:token=my-token;object=my-certificate;type=cert;vendor-aaa=value-a"
	"?pin-source=file:/etc/token_pin&vendor-bbb=value-b",
};

static void test_rfc_examples_parse_and_round_trip(void **state)
{
	size_t i;

	for (i = 0; i < sizeof(rfc_examples) / sizeof(rfc_examples[0]); i++) {
		struct p11pki_uri *u = parse_ok(rfc_examples[i]);

		assert_round_trip(u);
		p11pki_uri_free(u);
	}
}

static void test_empty_uri(void **state)
{
	struct p11pki_uri *u = parse_ok("pkcs11:");
	char *s;

	assert_null(u->token);
	assert_null(u->object);
	assert_null(u->id);
	assert_int_equal(u->type, P11PKI_OBJ_ANY);
	assert_int_equal(u->has_slot_id, 0);
	assert_null(u->pin_value);
	s = format_ok(u);
	assert_string_equal(s, "pkcs11:");
	free(s);
	p11pki_uri_free(u);

	/* An empty query is allowed by the grammar too. */
	u = parse_ok("pkcs11:?");
	p11pki_uri_free(u);
}

static void test_object_type(void **state)
{
	struct p11pki_uri *u = parse_ok("pkcs11:object=my-pubkey;type=public");

	assert_string_equal(u->object, "my-pubkey");
	assert_int_equal(u->type, P11PKI_OBJ_PUBLIC);
	p11pki_uri_free(u);
}

static void test_pin_source(void **state)
{
	struct p11pki_uri *u = parse_ok("pkcs11:object=my-key;type=private?pin-source=file:/etc/token");

	assert_string_equal(u->object, "my-key");
	assert_int_equal(u->type, P11PKI_OBJ_PRIVATE);
	assert_string_equal(u->pin_source, "file:/etc/token");
	p11pki_uri_free(u);
}

static void test_full_token_example(void **state)
{
	static const unsigned char id[] = { 0x69, 0x95, 0x3e, 0x5c, 0xf4, 0xbd, 0xec, 0x91 };
	struct p11pki_uri *u = parse_ok(rfc_examples[3]);
	char *s;

	assert_string_equal(u->token, "The Software PKCS#11 Softtoken");
	assert_string_equal(u->manufacturer, "Snake Oil, Inc.");
	assert_string_equal(u->model, "1.0");
	assert_string_equal(u->object, "my-certificate");
	assert_int_equal(u->type, P11PKI_OBJ_CERT);
	assert_int_equal(u->id_len, sizeof(id));
	assert_memory_equal(u->id, id, sizeof(id));
	/* "serial=" is an empty but present serial. */
	assert_non_null(u->serial);
	assert_string_equal(u->serial, "");
	assert_string_equal(u->pin_source, "file:/etc/token_pin");
	s = format_ok(u);
	assert_string_equal(s, "pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;"
			       "manufacturer=Snake%20Oil,%20Inc.;serial=;model=1.0;"
			       "object=my-certificate;type=cert;id=%69%95%3E%5C%F4%BD%EC%91"
			       "?pin-source=file:/etc/token_pin");
	free(s);
	p11pki_uri_free(u);
}

static void test_module_name_and_path(void **state)
{
	struct p11pki_uri *u = parse_ok(rfc_examples[4]);

	assert_string_equal(u->module_name, "mypkcs11");
	assert_null(u->module_path);
	p11pki_uri_free(u);
	u = parse_ok(rfc_examples[5]);
	assert_string_equal(u->module_path, "/mnt/libmypkcs11.so.1");
	assert_null(u->module_name);
	p11pki_uri_free(u);
}

static void test_pin_value_is_secret_and_never_printed(void **state)
{
	struct p11pki_uri *u = parse_ok(rfc_examples[6]);
	char *s;

	assert_string_equal(u->token, "Software PKCS#11 softtoken");
	assert_string_equal(u->manufacturer, "Snake Oil, Inc.");
	assert_non_null(u->pin_value);
	assert_int_equal(u->pin_value->len, 7);
	assert_string_equal(u->pin_value->data, "the-pin");
	s = format_ok(u);
	assert_null(strstr(s, "pin"));
	assert_string_equal(s, "pkcs11:token=Software%20PKCS%2311%20softtoken;"
			       "manufacturer=Snake%20Oil,%20Inc.");
	free(s);
	p11pki_uri_free(u);
}

static void test_slot_and_library(void **state)
{
	struct p11pki_uri *u = parse_ok(rfc_examples[7]);

	assert_string_equal(u->slot_description, "Sun Metaslot");
	p11pki_uri_free(u);
	u = parse_ok(rfc_examples[8]);
	assert_string_equal(u->library_manufacturer, "Snake Oil, Inc.");
	assert_string_equal(u->library_description, "Soft Token Library");
	assert_string_equal(u->library_version, "1.23");
	p11pki_uri_free(u);
	u = parse_ok("pkcs11:slot-id=4294967296;slot-manufacturer=Acme;library-version=7");
	assert_int_equal(u->has_slot_id, 1);
	assert_int_equal(u->slot_id, 4294967296UL);
	assert_string_equal(u->slot_manufacturer, "Acme");
	assert_string_equal(u->library_version, "7");
	p11pki_uri_free(u);
	u = parse_ok("pkcs11:slot-id=0");
	assert_int_equal(u->has_slot_id, 1);
	assert_int_equal(u->slot_id, 0);
	p11pki_uri_free(u);
}

static void test_escaped_delimiters_and_utf8(void **state)
{
	struct p11pki_uri *u = parse_ok(rfc_examples[9]);

	assert_string_equal(u->token, "A name with a substring %;");
	p11pki_uri_free(u);
	u = parse_ok(rfc_examples[10]);
	assert_string_equal(u->token, "Name with a small A with acute: \xc3\xa1");
	p11pki_uri_free(u);
}

static void test_vendor_attributes_ignored(void **state)
{
	struct p11pki_uri *u = parse_ok(rfc_examples[11]);
	char *s;

	assert_string_equal(u->token, "my-token");
	assert_string_equal(u->pin_source, "file:/etc/token_pin");
	s = format_ok(u);
	assert_null(strstr(s, "vendor"));
	free(s);
	p11pki_uri_free(u);
	u = parse_ok("pkcs11:x-foo=1;object=a;x-foo=2?x-bar=%41&module-name=m");
	assert_string_equal(u->object, "a");
	assert_string_equal(u->module_name, "m");
	p11pki_uri_free(u);
	/* Ignored, but still well formed. */
	parse_fails("pkcs11:x-foo=%G1", "bad percent-escape '%G1' in attribute 'x-foo'");
}

static void test_case_insensitive_scheme_names_and_type(void **state)
{
	struct p11pki_uri *u = parse_ok("PKCS11:Object=a;TYPE=Private");

	assert_string_equal(u->object, "a");
	assert_int_equal(u->type, P11PKI_OBJ_PRIVATE);
	p11pki_uri_free(u);
	u = parse_ok("Pkcs11:type=secret-key");
	assert_int_equal(u->type, P11PKI_OBJ_SECRET_KEY);
	p11pki_uri_free(u);
	u = parse_ok("pkcs11:type=data");
	assert_int_equal(u->type, P11PKI_OBJ_DATA);
	p11pki_uri_free(u);
	/* Values stay case-sensitive. */
	u = parse_ok("pkcs11:token=MyToken;id=%aB");
	assert_string_equal(u->token, "MyToken");
	assert_int_equal(u->id_len, 1);
	assert_int_equal(u->id[0], 0xab);
	p11pki_uri_free(u);
}

static void test_lenient_literals(void **state)
{
	/* Characters the RFC reserves but that cannot be mistaken for
	 * delimiters are accepted as they are. */
	struct p11pki_uri *u = parse_ok("pkcs11:object=a&b/c=d?module-path=/x?y=z");

	assert_string_equal(u->object, "a&b/c=d");
	assert_string_equal(u->module_path, "/x?y=z");
	p11pki_uri_free(u);
}

/* ---- malformed input ---- */

static void test_missing_scheme(void **state)
{
	parse_fails("object=my-key", "must start with 'pkcs11:'");
	parse_fails("pkcs11", "must start with 'pkcs11:'");
	parse_fails("", "must start with 'pkcs11:'");
	parse_fails("http://example.com/", "must start with 'pkcs11:'");
	parse_fails(" pkcs11:object=a", "must start with 'pkcs11:'");
	parse_fails(NULL, "no PKCS#11 URI");
}

static void test_bad_escape(void **state)
{
	parse_fails("pkcs11:object=%G1", "bad percent-escape '%G1' in attribute 'object'");
	parse_fails("pkcs11:object=ab%", "bad percent-escape '%' in attribute 'object'");
	parse_fails("pkcs11:object=ab%4", "bad percent-escape '%4' in attribute 'object'");
	parse_fails("pkcs11:id=%4g", "bad percent-escape '%4g' in attribute 'id'");
	parse_fails("pkcs11:token=a?module-path=%zz", "'%zz' in attribute 'module-path'");
}

static void test_bad_escape_in_pin_value_hides_it(void **state)
{
	parse_fails("pkcs11:?pin-value=12%Q4", "bad percent-escape in attribute 'pin-value'");
	assert_null(strstr(p11pki_errmsg(), "%Q4"));
	parse_fails("pkcs11:?pin-value=12%C3%A1%0", "in attribute 'pin-value'");
	assert_null(strstr(p11pki_errmsg(), "%0"));
	parse_fails("pkcs11:?pin-value=a%00b", "'pin-value' contains a NUL byte");
}

static void test_raw_bytes_must_be_escaped(void **state)
{
	parse_fails("pkcs11:token=My Token", "character 0x20 in attribute 'token' must be "
					    "percent-encoded as %20");
	parse_fails("pkcs11:token=\xc3\xa1", "character 0xC3 in attribute 'token'");
	parse_fails("pkcs11:token=a\tb", "character 0x09");
	parse_fails("pkcs11:?pin-value=my pin", "a character in attribute 'pin-value'");
}

static void test_nul_byte_rejected(void **state)
{
	parse_fails("pkcs11:token=a%00b", "attribute 'token' contains a NUL byte");
	parse_fails("pkcs11:slot-id=1%00", "attribute 'slot-id' contains a NUL byte");
	/* id is binary: NUL is a valid byte there. */
	{
		struct p11pki_uri *u = parse_ok("pkcs11:id=%00%01");

		assert_int_equal(u->id_len, 2);
		assert_int_equal(u->id[0], 0);
		assert_int_equal(u->id[1], 1);
		p11pki_uri_free(u);
	}
}

static void test_unknown_attribute(void **state)
{
	parse_fails("pkcs11:tokn=a", "unknown attribute 'tokn' in path; valid ones are token, "
				     "manufacturer, serial, model, object, id, type, slot-id");
	parse_fails("pkcs11:object=a?pin=1234", "unknown attribute 'pin' in query; valid ones "
						"are pin-source, pin-value");
	parse_fails("pkcs11:vendor=a", "unknown attribute 'vendor'");
	parse_fails("pkcs11:x-=a", "unknown attribute 'x-'");
	parse_fails("pkcs11:x-a.b=a", "unknown attribute 'x-a.b'");
	parse_fails("pkcs11:tok\x1b[31men=a", "unknown attribute 'tok?[31men'");
}

static void test_attribute_in_wrong_part(void **state)
{
	parse_fails("pkcs11:pin-source=file:/x", "'pin-source' belongs in the query");
	parse_fails("pkcs11:?token=a", "'token' belongs in the path");
}

static void test_duplicate_attribute(void **state)
{
	parse_fails("pkcs11:token=a;token=b", "attribute 'token' appears twice");
	parse_fails("pkcs11:token=a;TOKEN=a", "attribute 'token' appears twice");
	parse_fails("pkcs11:type=cert;type=cert", "attribute 'type' appears twice");
	parse_fails("pkcs11:slot-id=1;slot-id=1", "attribute 'slot-id' appears twice");
	parse_fails("pkcs11:id=%01;id=%01", "attribute 'id' appears twice");
	parse_fails("pkcs11:?module-name=a&module-name=b", "attribute 'module-name' appears twice");
	parse_fails("pkcs11:?pin-value=1&pin-value=1", "attribute 'pin-value' appears twice");
}

static void test_bad_type(void **state)
{
	parse_fails("pkcs11:type=key", "bad value 'key' for attribute 'type'; valid ones are "
				       "private, public, cert, secret-key, data");
	parse_fails("pkcs11:type=", "attribute 'type' is empty");
	parse_fails("pkcs11:type=%70rivate%20", "bad value 'private ' for attribute 'type'");
}

static void test_bad_slot_id(void **state)
{
	parse_fails("pkcs11:slot-id=abc", "bad value 'abc' for attribute 'slot-id'");
	parse_fails("pkcs11:slot-id=-1", "bad value '-1' for attribute 'slot-id'");
	parse_fails("pkcs11:slot-id=+1", "bad value '+1' for attribute 'slot-id'");
	parse_fails("pkcs11:slot-id=1x", "bad value '1x' for attribute 'slot-id'");
	parse_fails("pkcs11:slot-id=0x10", "bad value '0x10' for attribute 'slot-id'");
	parse_fails("pkcs11:slot-id=", "attribute 'slot-id' is empty");
	parse_fails("pkcs11:slot-id=99999999999999999999999",
		    "bad value '99999999999999999999999' for attribute 'slot-id'");
}

static void test_bad_library_version(void **state)
{
	parse_fails("pkcs11:library-version=", "attribute 'library-version' is empty");
	parse_fails("pkcs11:library-version=1.", "bad value '1.' for attribute 'library-version'");
	parse_fails("pkcs11:library-version=.1", "bad value '.1'");
	parse_fails("pkcs11:library-version=1.2.3", "bad value '1.2.3'");
	parse_fails("pkcs11:library-version=v1", "bad value 'v1'");
}

static void test_empty_values(void **state)
{
	struct p11pki_uri *u = parse_ok("pkcs11:token=;object=");

	assert_string_equal(u->token, "");
	assert_string_equal(u->object, "");
	p11pki_uri_free(u);
	parse_fails("pkcs11:id=", "attribute 'id' is empty");
	parse_fails("pkcs11:?pin-source=", "attribute 'pin-source' is empty");
	parse_fails("pkcs11:?pin-value=", "attribute 'pin-value' is empty");
	parse_fails("pkcs11:?module-name=", "attribute 'module-name' is empty");
	parse_fails("pkcs11:?module-path=", "attribute 'module-path' is empty");
}

static void test_attribute_without_equals(void **state)
{
	parse_fails("pkcs11:token", "attribute 'token' in path has no '='");
	parse_fails("pkcs11:object=a;cert", "attribute 'cert' in path has no '='");
	parse_fails("pkcs11:?module-name", "attribute 'module-name' in query has no '='");
	parse_fails("pkcs11:=abc", "attribute '=abc' in path has no name");
}

static void test_empty_attribute(void **state)
{
	parse_fails("pkcs11:;", "empty attribute in path (stray ';')");
	parse_fails("pkcs11:token=a;", "empty attribute in path");
	parse_fails("pkcs11:token=a;;object=b", "empty attribute in path");
	parse_fails("pkcs11:?module-name=a&", "empty attribute in query (stray '&')");
	parse_fails("pkcs11:?&", "empty attribute in query");
}

static void test_pin_source_and_value_conflict(void **state)
{
	parse_fails("pkcs11:?pin-source=file:/x&pin-value=1", "either 'pin-source' or "
							       "'pin-value', not both");
}

static void test_too_long(void **state)
{
	size_t n = 4097;
	char *s = malloc(n + 1);
	struct p11pki_uri *u;

	assert_non_null(s);
	memset(s, 'a', n);
	memcpy(s, "pkcs11:object=", 14);
	s[n] = '\0';
	parse_fails(s, "longer than 4096 characters");
	/* Exactly at the bound is fine. */
	s[4096] = '\0';
	u = parse_ok(s);
	assert_int_equal(strlen(u->object), 4096 - 14);
	p11pki_uri_free(u);
	free(s);
}

static void test_too_many_attributes(void **state)
{
	char buf[1024];
	size_t len = 0;
	int i;

	memcpy(buf, "pkcs11:x-a=1", 12);
	len = 12;
	for (i = 1; i < 64; i++) {
		memcpy(buf + len, ";x-a=1", 6);
		len += 6;
	}
	buf[len] = '\0';
	p11pki_uri_free(parse_ok(buf));
	memcpy(buf + len, "?x-b=2", 7);
	parse_fails(buf, "more than 64 attributes");
}

static void test_error_names_long_input_briefly(void **state)
{
	char buf[600];

	memcpy(buf, "pkcs11:", 7);
	memset(buf + 7, 'q', 500);
	memcpy(buf + 507, "=1", 3);
	parse_fails(buf, "unknown attribute 'qqqq");
	assert_non_null(strstr(p11pki_errmsg(), "...'"));
	assert_true(strlen(p11pki_errmsg()) < 400);
}

/* ---- formatting ---- */

static void test_format_canonical_order(void **state)
{
	struct p11pki_uri *u = parse_ok(
		"pkcs11:id=%01%ff;type=private;object=key;library-version=2.1;"
		"library-description=d;library-manufacturer=lm;slot-id=3;"
		"slot-manufacturer=sm;slot-description=sd;model=m;serial=s;"
		"manufacturer=mf;token=t?module-path=/p.so&module-name=n&pin-source=env:P");
	char *s = format_ok(u);

	assert_string_equal(s, "pkcs11:token=t;manufacturer=mf;serial=s;model=m;"
			       "slot-description=sd;slot-manufacturer=sm;slot-id=3;"
			       "library-manufacturer=lm;library-description=d;"
			       "library-version=2.1;object=key;type=private;id=%01%FF"
			       "?pin-source=env:P&module-name=n&module-path=/p.so");
	free(s);
	p11pki_uri_free(u);
}

static void test_format_encoding(void **state)
{
	struct p11pki_uri *u = NULL;
	char *s;

	assert_int_equal(p11pki_uri_new(&u), P11PKI_OK);
	u->token = strdup("a;b?c%d/e&f g~h:[]@!$'()*+,=");
	u->object = strdup("\xc3\xa1\x01\x7f#\"<>\\^`{|}");
	u->module_path = strdup("/usr/lib/x&y?z.so");
	s = format_ok(u);
	assert_string_equal(s, "pkcs11:token=a%3Bb%3Fc%25d%2Fe%26f%20g~h:[]@!$'()*+,=;"
			       "object=%C3%A1%01%7F%23%22%3C%3E%5C%5E%60%7B%7C%7D"
			       "?module-path=/usr/lib/x%26y%3Fz.so");
	free(s);
	assert_round_trip(u);
	p11pki_uri_free(u);
}

static void test_format_round_trip_every_byte(void **state)
{
	struct p11pki_uri *u = NULL;
	unsigned char id[256];
	char str[256];
	int i;

	for (i = 0; i < 256; i++)
		id[i] = (unsigned char)i;
	for (i = 1; i < 256; i++)
		str[i - 1] = (char)i;
	str[255] = '\0';
	assert_int_equal(p11pki_uri_new(&u), P11PKI_OK);
	u->id = malloc(sizeof(id));
	assert_non_null(u->id);
	memcpy(u->id, id, sizeof(id));
	u->id_len = sizeof(id);
	/* Three fields of every byte, escaped, stay under 4096 characters. */
	u->token = strdup(str);
	u->object = strdup(str);
	u->module_path = strdup(str);
	u->manufacturer = strdup("%;?&/");
	u->serial = strdup("");
	u->slot_description = strdup("#=");
	u->library_version = strdup("0.0");
	u->pin_source = strdup("file:/a b");
	u->module_name = strdup("?&=/");
	u->type = P11PKI_OBJ_SECRET_KEY;
	u->has_slot_id = 1;
	u->slot_id = (unsigned long)-1;
	assert_round_trip(u);
	p11pki_uri_free(u);
}

static void test_format_refuses_what_cannot_parse(void **state)
{
	struct p11pki_uri *u = NULL;
	char *s = (char *)1;

	assert_int_equal(p11pki_uri_new(&u), P11PKI_OK);
	u->type = (enum p11pki_obj_type)42;
	assert_int_equal(p11pki_uri_format(u, &s), P11PKI_E_ARG);
	assert_null(s);
	u->type = P11PKI_OBJ_ANY;
	u->library_version = strdup("one");
	assert_int_equal(p11pki_uri_format(u, &s), P11PKI_E_ARG);
	assert_non_null(strstr(p11pki_errmsg(), "library-version"));
	free(u->library_version);
	u->library_version = NULL;
	u->pin_source = strdup("");
	assert_int_equal(p11pki_uri_format(u, &s), P11PKI_E_ARG);
	assert_non_null(strstr(p11pki_errmsg(), "'pin-source' is empty"));
	free(u->pin_source);
	u->pin_source = NULL;
	/* Escaping would triple it past what the parser accepts. */
	u->object = malloc(2000);
	assert_non_null(u->object);
	memset(u->object, ' ', 1999);
	u->object[1999] = '\0';
	assert_int_equal(p11pki_uri_format(u, &s), P11PKI_E_ARG);
	assert_non_null(strstr(p11pki_errmsg(), "longer than 4096"));
	assert_null(s);
	assert_int_equal(p11pki_uri_format(NULL, &s), P11PKI_E_ARG);
	p11pki_uri_free(u);
}

static void test_format_skips_empty_id(void **state)
{
	struct p11pki_uri *u = NULL;
	char *s;

	assert_int_equal(p11pki_uri_new(&u), P11PKI_OK);
	u->id = malloc(1);
	u->id_len = 0;
	s = format_ok(u);
	assert_string_equal(s, "pkcs11:");
	free(s);
	p11pki_uri_free(u);
}

static void test_free_null(void **state)
{
	p11pki_uri_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc_examples_parse_and_round_trip),
		cmocka_unit_test(test_empty_uri),
		cmocka_unit_test(test_object_type),
		cmocka_unit_test(test_pin_source),
		cmocka_unit_test(test_full_token_example),
		cmocka_unit_test(test_module_name_and_path),
		cmocka_unit_test(test_pin_value_is_secret_and_never_printed),
		cmocka_unit_test(test_slot_and_library),
		cmocka_unit_test(test_escaped_delimiters_and_utf8),
		cmocka_unit_test(test_vendor_attributes_ignored),
		cmocka_unit_test(test_case_insensitive_scheme_names_and_type),
		cmocka_unit_test(test_lenient_literals),
		cmocka_unit_test(test_missing_scheme),
		cmocka_unit_test(test_bad_escape),
		cmocka_unit_test(test_bad_escape_in_pin_value_hides_it),
		cmocka_unit_test(test_raw_bytes_must_be_escaped),
		cmocka_unit_test(test_nul_byte_rejected),
		cmocka_unit_test(test_unknown_attribute),
		cmocka_unit_test(test_attribute_in_wrong_part),
		cmocka_unit_test(test_duplicate_attribute),
		cmocka_unit_test(test_bad_type),
		cmocka_unit_test(test_bad_slot_id),
		cmocka_unit_test(test_bad_library_version),
		cmocka_unit_test(test_empty_values),
		cmocka_unit_test(test_attribute_without_equals),
		cmocka_unit_test(test_empty_attribute),
		cmocka_unit_test(test_pin_source_and_value_conflict),
		cmocka_unit_test(test_too_long),
		cmocka_unit_test(test_too_many_attributes),
		cmocka_unit_test(test_error_names_long_input_briefly),
		cmocka_unit_test(test_format_canonical_order),
		cmocka_unit_test(test_format_encoding),
		cmocka_unit_test(test_format_round_trip_every_byte),
		cmocka_unit_test(test_format_refuses_what_cannot_parse),
		cmocka_unit_test(test_format_skips_empty_id),
		cmocka_unit_test(test_free_null),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
