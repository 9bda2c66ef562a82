/* libFuzzer harness for the CA configuration: the input is an OpenSSL
 * config file, loaded with NCONF and read as the profile "server" and
 * "custom" ([ profile_NAME ]) and as the CA settings of "issuing"
 * ([ ca_issuing ], with its policy section). Whatever loads must hold
 * what the loaders promise: default_days never above max_days, at most
 * the pattern and usage counts the structs hold. */
#include <stdint.h>
#include <stdlib.h>

#include <openssl/conf.h>
#include <openssl/err.h>

#include <p11pki/ca.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_profile(const CONF *conf, const char *name)
{
	struct p11pki_profile p;

	if (p11pki_profile_load(conf, name, &p) != 0)
		return;
	if (p.max_days != 0 && p.default_days > p.max_days)
		abort();
	if (p.n_allowed_dns > P11PKI_PROFILE_MAX_PATTERNS || p.n_eku < 0 || p.n_eku > 4)
		abort();
	if (p.key_rules.rsa_min_bits != 0 && p.key_rules.rsa_min_bits < 2048)
		abort();
	p11pki_profile_clear(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	BIO *bio = BIO_new_mem_buf(data, (int)size);
	CONF *conf = NCONF_new(NULL);
	struct p11pki_ca_settings s;
	long line = 0;

	if (bio != NULL && conf != NULL && size < 65536 && NCONF_load_bio(conf, bio, &line) > 0) {
		check_profile(conf, "server");
		check_profile(conf, "custom");
		if (p11pki_ca_settings_load(conf, "issuing", &s) == 0) {
			if (s.default_days == 0 || s.default_crl_days == 0 || s.policy.n > P11PKI_POLICY_MAX)
				abort();
			p11pki_ca_settings_clear(&s);
		}
	}
	NCONF_free(conf);
	BIO_free(bio);
	ERR_clear_error();
	return 0;
}
