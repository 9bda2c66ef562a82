/* Certificate profiles and CA settings: the built-in profiles, overrides
 * from a config read from memory, refusals naming the key and value, and
 * the small parsers of the CA layer (durations, CRL reasons, serials). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/conf.h>
#include <openssl/x509v3.h>

#include <p11pki/ca.h>

/* A config parsed from text, as cli_config parses the file. */
static CONF *conf_from(const char *text)
{
	CONF *conf = NCONF_new(NULL);
	BIO *bio = BIO_new_mem_buf(text, -1);
	long line = 0;

	assert_non_null(conf);
	assert_non_null(bio);
	assert_int_equal(NCONF_load_bio(conf, bio, &line), 1);
	BIO_free(bio);
	return conf;
}

/* got must be code, with a one-line message holding each of the texts. */
static void expect_msg(int got, int code, const char *want, const char *want2)
{
	assert_int_equal(got, code);
	if (strstr(p11pki_errmsg(), want) == NULL || (want2 != NULL && strstr(p11pki_errmsg(), want2) == NULL))
		print_error("message '%s' lacks '%s' or '%s'\n", p11pki_errmsg(), want, want2 ? want2 : "");
	assert_non_null(strstr(p11pki_errmsg(), want));
	if (want2 != NULL)
		assert_non_null(strstr(p11pki_errmsg(), want2));
	assert_null(strchr(p11pki_errmsg(), '\n'));
}

/* ---- built-in profiles ---------------------------------------------------- */

static void builtin_server_client(void **state)
{
	struct p11pki_profile p;

	(void)state;
	assert_int_equal(p11pki_profile_builtin("server", &p), P11PKI_OK);
	assert_string_equal(p.name, "server");
	assert_int_equal(p.is_ca, 0);
	assert_int_equal(p.pathlen, -1);
	assert_int_equal(p.key_usage, KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
	assert_int_equal(p.n_eku, 1);
	assert_int_equal(p.eku[0], NID_server_auth);
	assert_int_equal(p.require_san, 1);
	assert_int_equal(p.ocsp_nocheck, 0);
	assert_int_equal(p.default_days, 365);
	assert_int_equal(p.max_days, 398); /* CA/B Forum */
	assert_int_equal(p.n_allowed_dns, 0);
	assert_int_equal(p.key_rules.rsa_min_bits, 2048);

	assert_int_equal(p11pki_profile_builtin("client", &p), P11PKI_OK);
	assert_int_equal(p.is_ca, 0);
	assert_int_equal(p.key_usage, KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
	assert_int_equal(p.n_eku, 1);
	assert_int_equal(p.eku[0], NID_client_auth);
	assert_int_equal(p.require_san, 0);
	assert_int_equal(p.default_days, 365);
	assert_int_equal(p.max_days, 825);
}

static void builtin_ca_ocsp(void **state)
{
	struct p11pki_profile p;

	(void)state;
	assert_int_equal(p11pki_profile_builtin("subca", &p), P11PKI_OK);
	assert_int_equal(p.is_ca, 1);
	assert_int_equal(p.pathlen, 0);
	assert_int_equal(p.key_usage, KU_DIGITAL_SIGNATURE | KU_KEY_CERT_SIGN | KU_CRL_SIGN);
	assert_int_equal(p.n_eku, 0);
	assert_int_equal(p.default_days, 1825);
	assert_int_equal(p.max_days, 3650);

	assert_int_equal(p11pki_profile_builtin("root", &p), P11PKI_OK);
	assert_int_equal(p.is_ca, 1);
	assert_int_equal(p.pathlen, -1);
	assert_int_equal(p.key_usage, KU_DIGITAL_SIGNATURE | KU_KEY_CERT_SIGN | KU_CRL_SIGN);
	assert_int_equal(p.default_days, 3650);
	assert_int_equal(p.max_days, 9125);

	assert_int_equal(p11pki_profile_builtin("ocsp", &p), P11PKI_OK);
	assert_int_equal(p.is_ca, 0);
	assert_int_equal(p.key_usage, KU_DIGITAL_SIGNATURE);
	assert_int_equal(p.n_eku, 1);
	assert_int_equal(p.eku[0], NID_OCSP_sign);
	assert_int_equal(p.ocsp_nocheck, 1);
	assert_int_equal(p.default_days, 30);
	assert_int_equal(p.max_days, 90);

	assert_int_equal(p11pki_profile_builtin("nope", &p), P11PKI_E_NOTFOUND);
	assert_int_equal(p11pki_profile_builtin("Server", &p), P11PKI_E_NOTFOUND); /* names are exact */
}

/* ---- p11pki_profile_load ------------------------------------------------- */

static void load_without_config_is_builtin(void **state)
{
	struct p11pki_profile a, b;

	(void)state;
	assert_int_equal(p11pki_profile_load(NULL, "server", &a), P11PKI_OK);
	assert_int_equal(p11pki_profile_builtin("server", &b), P11PKI_OK);
	assert_memory_equal(&a, &b, sizeof(a));
	/* a config without [ profile_server ] changes nothing either */
	CONF *conf = conf_from("[ profile_other ]\nmax_days = 10\n");
	assert_int_equal(p11pki_profile_load(conf, "server", &a), P11PKI_OK);
	assert_memory_equal(&a, &b, sizeof(a));
	NCONF_free(conf);
}

static void load_overrides(void **state)
{
	CONF *conf = conf_from("[ profile_server ]\n"
			       "default_days = 90\n"
			       "max_days = 200\n"
			       "allowed_dns = .example.com , *.example.org,www.example.net\n"
			       "key_types = p256, rsa\n"
			       "rsa_min_bits = 3072\n"
			       "require_san = no\n"
			       "extended_key_usage = serverAuth, clientAuth\n");
	struct p11pki_profile p;

	(void)state;
	assert_int_equal(p11pki_profile_load(conf, "server", &p), P11PKI_OK);
	assert_int_equal(p.default_days, 90);
	assert_int_equal(p.max_days, 200);
	assert_int_equal(p.n_allowed_dns, 3);
	assert_string_equal(p.allowed_dns[0], ".example.com"); /* items are trimmed */
	assert_string_equal(p.allowed_dns[1], "*.example.org");
	assert_string_equal(p.allowed_dns[2], "www.example.net");
	assert_int_equal(p.key_rules.allow_p256, 1);
	assert_int_equal(p.key_rules.allow_rsa, 1);
	assert_int_equal(p.key_rules.allow_p384, 0);
	assert_int_equal(p.key_rules.rsa_min_bits, 3072);
	assert_int_equal(p.require_san, 0);
	assert_int_equal(p.n_eku, 2);
	assert_int_equal(p.eku[0], NID_server_auth);
	assert_int_equal(p.eku[1], NID_client_auth);
	/* what the section does not name stays the built-in's */
	assert_int_equal(p.key_usage, KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
	assert_int_equal(p.is_ca, 0);
	p11pki_profile_clear(&p);
	assert_int_equal(p.n_allowed_dns, 0);
	NCONF_free(conf);
}

static void load_custom_profile(void **state)
{
	CONF *conf = conf_from("[ profile_vpn ]\nmax_days = 30\nextended_key_usage = clientAuth\n");
	struct p11pki_profile p;

	(void)state;
	/* a profile of its own starts as an end-entity one */
	assert_int_equal(p11pki_profile_load(conf, "vpn", &p), P11PKI_OK);
	assert_string_equal(p.name, "vpn");
	assert_int_equal(p.is_ca, 0);
	assert_int_equal(p.pathlen, -1);
	assert_int_equal(p.key_usage, KU_DIGITAL_SIGNATURE);
	assert_int_equal(p.max_days, 30);
	assert_true(p.default_days <= p.max_days); /* 365 would exceed max_days */
	assert_int_equal(p.n_eku, 1);
	assert_int_equal(p.eku[0], NID_client_auth);
	assert_int_equal(p.key_rules.rsa_min_bits, 2048);
	p11pki_profile_clear(&p);

	/* neither built in nor configured */
	expect_msg(p11pki_profile_load(conf, "nope", &p), P11PKI_E_NOTFOUND, "unknown profile 'nope'", "[ profile_nope ]");
	expect_msg(p11pki_profile_load(NULL, "nope", &p), P11PKI_E_NOTFOUND, "unknown profile 'nope'", NULL);
	NCONF_free(conf);
}

/* One bad line in [ profile_server ]: refused with a message naming the
 * key (and the value where there is one). */
static void load_refuses(const char *line, const char *want, const char *want2)
{
	char text[1024];
	struct p11pki_profile p;
	CONF *conf;

	snprintf(text, sizeof(text), "[ profile_server ]\nmax_days = 100\n%s\n", line);
	conf = conf_from(text);
	expect_msg(p11pki_profile_load(conf, "server", &p), P11PKI_E_ARG, want, want2);
	assert_int_equal(p.n_allowed_dns, 0); /* cleared on failure */
	NCONF_free(conf);
}

static void load_refusals(void **state)
{
	(void)state;
	load_refuses("colour = blue", "[ profile_server ] colour", "unknown setting");
	load_refuses("default_days = 0", "default_days = 0", NULL);
	load_refuses("max_days = forever", "max_days = forever", NULL);
	load_refuses("max_days = 36501", "max_days = 36501", NULL);
	load_refuses("key_types = rsa, dsa", "key_types", "unknown key type 'dsa'");
	load_refuses("extended_key_usage = serverAuth, fooAuth", "extended_key_usage", "'fooAuth'");
	load_refuses("rsa_min_bits = 1024", "rsa_min_bits = 1024", "2048");
	load_refuses("rsa_min_bits = big", "rsa_min_bits = big", NULL);
	load_refuses("require_san = maybe", "require_san = maybe", "yes or no");
	load_refuses("allowed_dns = a.example.com,,b.example.com", "allowed_dns", "empty");
	load_refuses("allowed_dns = a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q", "allowed_dns", "at most 16");
	load_refuses("extended_key_usage = serverAuth,clientAuth,codeSigning,emailProtection,timeStamping",
		     "extended_key_usage", "at most 4");
}

/* ---- p11pki_ca_settings_load ---------------------------------------------- */

static const char ca_conf[] =
	"[ ca_issuing ]\n"
	"default_days = 200\n"
	"default_crl_days = 3\n"
	"policy = policy_match\n"
	"crl_url = http://pki.example.com/issuing.crl\n"
	"ocsp_url = http://ocsp.example.com/\n"
	"issuers_url = http://pki.example.com/issuing.crt\n"
	"past_issuer = refuse\n"
	"default_md = sha384\n"
	"unique_subject = no\n"
	"[ policy_match ]\n"
	"countryName = match\n"
	"stateOrProvinceName = match\n"
	"localityName = optional\n"
	"organizationName = match\n"
	"organizationalUnitName = match\n"
	"commonName = supplied\n"
	"emailAddress = optional\n";

static void settings_defaults(void **state)
{
	struct p11pki_ca_settings s;
	CONF *conf = conf_from(ca_conf);

	(void)state;
	assert_int_equal(p11pki_ca_settings_load(NULL, "issuing", &s), P11PKI_OK);
	assert_int_equal(s.default_days, 365);
	assert_int_equal(s.default_crl_days, 30);
	assert_int_equal(s.has_policy, 0);
	assert_null(s.crl_url);
	assert_null(s.ocsp_url);
	assert_null(s.issuers_url);
	assert_int_equal(s.refuse_past_issuer, 0);
	p11pki_ca_settings_clear(&s);
	/* another CA's section does not apply */
	assert_int_equal(p11pki_ca_settings_load(conf, "root", &s), P11PKI_OK);
	assert_int_equal(s.default_days, 365);
	assert_int_equal(s.has_policy, 0);
	p11pki_ca_settings_clear(&s);
	NCONF_free(conf);
}

static void settings_all(void **state)
{
	static const int nids[] = { NID_countryName, NID_stateOrProvinceName, NID_localityName, NID_organizationName,
				    NID_organizationalUnitName, NID_commonName, NID_pkcs9_emailAddress };
	static const enum p11pki_policy_rule rules[] = { P11PKI_POLICY_MATCH, P11PKI_POLICY_MATCH, P11PKI_POLICY_OPTIONAL,
							 P11PKI_POLICY_MATCH, P11PKI_POLICY_MATCH, P11PKI_POLICY_SUPPLIED,
							 P11PKI_POLICY_OPTIONAL };
	struct p11pki_ca_settings s;
	CONF *conf = conf_from(ca_conf);
	size_t i;

	(void)state;
	assert_int_equal(p11pki_ca_settings_load(conf, "issuing", &s), P11PKI_OK);
	assert_int_equal(s.default_days, 200);
	assert_int_equal(s.default_crl_days, 3);
	assert_string_equal(s.crl_url, "http://pki.example.com/issuing.crl");
	assert_string_equal(s.ocsp_url, "http://ocsp.example.com/");
	assert_string_equal(s.issuers_url, "http://pki.example.com/issuing.crt");
	assert_int_equal(s.refuse_past_issuer, 1);
	assert_int_equal(s.has_policy, 1);
	assert_int_equal(s.policy.n, 7);
	for (i = 0; i < 7; i++) { /* in the order of the section */
		assert_int_equal(s.policy.field[i].nid, nids[i]);
		assert_int_equal(s.policy.field[i].rule, rules[i]);
	}
	p11pki_ca_settings_clear(&s);
	assert_null(s.crl_url);
	NCONF_free(conf);
}

/* [ ca_x ] with one line (and a policy section): refused naming it. */
static void settings_refuses(const char *line, const char *want, const char *want2)
{
	char text[1024];
	struct p11pki_ca_settings s;
	CONF *conf;

	snprintf(text, sizeof(text), "[ ca_x ]\ncrl_url = http://x/\n%s\n[ pol ]\ncommonName = supplied\n[ badpol ]\n"
		 "commonName = required\n", line);
	conf = conf_from(text);
	expect_msg(p11pki_ca_settings_load(conf, "x", &s), P11PKI_E_ARG, want, want2);
	assert_null(s.crl_url); /* cleared on failure */
	NCONF_free(conf);
}

static void settings_refusals(void **state)
{
	struct p11pki_ca_settings s;
	CONF *conf;

	(void)state;
	/* the use case's openssl.conf says default_md = md5 */
	settings_refuses("default_md = md5", "[ ca_x ] default_md = md5", "only sha256 and sha384");
	settings_refuses("default_md = sha1", "default_md = sha1", NULL);
	settings_refuses("default_days = 0", "[ ca_x ] default_days = 0", NULL);
	settings_refuses("default_crl_days = soon", "default_crl_days = soon", NULL);
	settings_refuses("past_issuer = maybe", "past_issuer = maybe", "cap or refuse");
	settings_refuses("policy = nosuch", "policy = nosuch", "no section [ nosuch ]");
	settings_refuses("policy = badpol", "required", NULL);
	settings_refuses("colour = blue", "[ ca_x ] colour", "unknown setting");
	/* and the accepted openssl.conf values */
	conf = conf_from("[ ca_x ]\ndefault_md = sha256\npolicy = pol\npast_issuer = cap\n[ pol ]\ncommonName = supplied\n");
	assert_int_equal(p11pki_ca_settings_load(conf, "x", &s), P11PKI_OK);
	assert_int_equal(s.refuse_past_issuer, 0);
	assert_int_equal(s.policy.n, 1);
	p11pki_ca_settings_clear(&s);
	NCONF_free(conf);
}

/* ---- durations, CRL reasons, serials ------------------------------------- */

static void durations(void **state)
{
	static const struct { const char *text; long seconds; } good[] = {
		{ "30d", 30L * 86400 }, { "12h", 12L * 3600 }, { "2w", 14L * 86400 }, { "3600s", 3600 },
		{ "5m", 300 }, { "30", 30L * 86400 }, { "0d", 0 }, { "400d", 400L * 86400 },
	};
	static const char *const bad[] = { "", "d", "-1d", "5x", "5dd", "1y", "12 h", "1.5d", "36501d0" };
	long s;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		s = -1;
		assert_int_equal(p11pki_duration_parse(good[i].text, &s), P11PKI_OK);
		assert_int_equal(s, good[i].seconds);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		s = 12345;
		expect_msg(p11pki_duration_parse(bad[i], &s), P11PKI_E_ARG, "must look like 30d", NULL);
		assert_int_equal(s, 12345); /* untouched */
	}
}

static void crl_reasons(void **state)
{
	static const char *const names[] = {
		"unspecified", "keyCompromise", "cACompromise", "affiliationChanged", "superseded",
		"cessationOfOperation", "certificateHold", NULL, "removeFromCRL", "privilegeWithdrawn", "aACompromise",
	};
	int i;

	(void)state;
	for (i = 0; i <= 10; i++) {
		if (names[i] == NULL)
			continue;
		assert_int_equal(p11pki_crl_reason_parse(names[i]), i); /* RFC 5280 codes */
		assert_string_equal(p11pki_crl_reason_name(i), names[i]);
	}
	assert_int_equal(p11pki_crl_reason_parse("KEYCOMPROMISE"), 1); /* case does not matter */
	assert_int_equal(p11pki_crl_reason_parse("bogus"), -1);
	assert_int_equal(p11pki_crl_reason_parse(""), -1);
	assert_int_equal(p11pki_crl_reason_parse("keyCompromise "), -1);
	/* 7 is unused; out of range codes read as unspecified */
	assert_string_equal(p11pki_crl_reason_name(7), "unspecified");
	assert_string_equal(p11pki_crl_reason_name(-1), "unspecified");
	assert_string_equal(p11pki_crl_reason_name(11), "unspecified");
}

static void serials(void **state)
{
	static const struct { const char *in, *out; } good[] = {
		{ "0a:1B:ff", "A1BFF" }, { "00", "0" }, { "", "0" }, { "000102", "102" }, { "a0", "A0" },
		{ "65 10 F6", "6510F6" }, { "6510F6BC18696BB33439D867C8432682", "6510F6BC18696BB33439D867C8432682" },
	};
	char out[41];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(p11pki_serial_normalize(good[i].in, out, sizeof(out)), P11PKI_OK);
		assert_string_equal(out, good[i].out);
	}
	/* Note: the message quotes the rest of the input from the bad
	 * character on ("x1A" for "0x1A"), not the whole serial. */
	expect_msg(p11pki_serial_normalize("0x1A", out, sizeof(out)), P11PKI_E_ARG, "not hexadecimal", NULL);
	expect_msg(p11pki_serial_normalize("12-34", out, sizeof(out)), P11PKI_E_ARG, "not hexadecimal", NULL);
	/* 40 digits (RFC 5280's 20 octets) fit in 41 bytes, 41 do not */
	assert_int_equal(p11pki_serial_normalize("1234567890123456789012345678901234567890", out, sizeof(out)), P11PKI_OK);
	expect_msg(p11pki_serial_normalize("12345678901234567890123456789012345678901", out, sizeof(out)), P11PKI_E_ARG,
		   "longer than 40", NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(builtin_server_client),
		cmocka_unit_test(builtin_ca_ocsp),
		cmocka_unit_test(load_without_config_is_builtin),
		cmocka_unit_test(load_overrides),
		cmocka_unit_test(load_custom_profile),
		cmocka_unit_test(load_refusals),
		cmocka_unit_test(settings_defaults),
		cmocka_unit_test(settings_all),
		cmocka_unit_test(settings_refusals),
		cmocka_unit_test(durations),
		cmocka_unit_test(crl_reasons),
		cmocka_unit_test(serials),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
