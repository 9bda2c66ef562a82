/* CA settings from the [ ca_NAME ] section of the config file, in the
 * spirit of `openssl ca`: default_days, default_crl_days, policy. */
#include <stdlib.h>
#include <string.h>

#include <p11pki/ca.h>

int p11pki_duration_parse(const char *text, long *seconds)
{
	char *end;
	long n = strtol(text, &end, 10);
	long unit;

	if (end == text || n < 0 || n > 36500L * 86400)
		return p11pki_fail(P11PKI_E_ARG, "duration '%s' must look like 30d, 12h, 2w or 3600s", text);
	switch (*end) {
	case 'w': unit = 7 * 86400; break;
	case 'd': case '\0': unit = 86400; break;
	case 'h': unit = 3600; break;
	case 'm': unit = 60; break;
	case 's': unit = 1; break;
	default: return p11pki_fail(P11PKI_E_ARG, "duration '%s' must look like 30d, 12h, 2w or 3600s", text);
	}
	if (*end != '\0' && end[1] != '\0')
		return p11pki_fail(P11PKI_E_ARG, "duration '%s' must look like 30d, 12h, 2w or 3600s", text);
	*seconds = n * unit;
	return P11PKI_OK;
}

static int days_value(const char *section, const char *key, const char *v, unsigned *out)
{
	char *end;
	unsigned long n = strtoul(v, &end, 10);

	if (*v == '\0' || *end != '\0' || n == 0 || n > 36500)
		return p11pki_fail(P11PKI_E_ARG, "[ %s ] %s = %s: expected a number of days from 1 to 36500", section, key,
				   v);
	*out = (unsigned)n;
	return P11PKI_OK;
}

static int dup_value(const char *v, char **out)
{
	free(*out);
	if ((*out = strdup(v)) == NULL)
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
	return P11PKI_OK;
}

/* Reads the policy section named by `policy = NAME`. */
static int load_policy(const CONF *conf, const char *section, const char *name, struct p11pki_policy *out)
{
	STACK_OF(CONF_VALUE) *lines = NCONF_get_section(conf, name);
	const char *keys[P11PKI_POLICY_MAX], *values[P11PKI_POLICY_MAX];
	int i, n;

	if (lines == NULL)
		return p11pki_fail(P11PKI_E_ARG, "[ %s ] policy = %s: there is no section [ %s ]", section, name, name);
	n = sk_CONF_VALUE_num(lines);
	if (n > P11PKI_POLICY_MAX)
		return p11pki_fail(P11PKI_E_ARG, "[ %s ] has more than %d fields", name, P11PKI_POLICY_MAX);
	for (i = 0; i < n; i++) {
		keys[i] = sk_CONF_VALUE_value(lines, i)->name;
		values[i] = sk_CONF_VALUE_value(lines, i)->value;
	}
	return p11pki_policy_parse(keys, values, (size_t)n, out);
}

static int apply(const CONF *conf, const char *section, const CONF_VALUE *v, struct p11pki_ca_settings *s)
{
	if (strcmp(v->name, "default_days") == 0) {
		s->has_default_days = 1;
		return days_value(section, v->name, v->value, &s->default_days);
	}
	if (strcmp(v->name, "default_crl_days") == 0)
		return days_value(section, v->name, v->value, &s->default_crl_days);
	if (strcmp(v->name, "policy") == 0) {
		s->has_policy = 1;
		return load_policy(conf, section, v->value, &s->policy);
	}
	if (strcmp(v->name, "crl_url") == 0)
		return dup_value(v->value, &s->crl_url);
	if (strcmp(v->name, "ocsp_url") == 0)
		return dup_value(v->value, &s->ocsp_url);
	if (strcmp(v->name, "issuers_url") == 0)
		return dup_value(v->value, &s->issuers_url);
	if (strcmp(v->name, "past_issuer") == 0) {
		if (strcmp(v->value, "cap") != 0 && strcmp(v->value, "refuse") != 0)
			return p11pki_fail(P11PKI_E_ARG, "[ %s ] past_issuer = %s: expected cap or refuse", section, v->value);
		s->refuse_past_issuer = strcmp(v->value, "refuse") == 0;
		return P11PKI_OK;
	}
	/* accepted from openssl.conf habits, with a fixed meaning here */
	if (strcmp(v->name, "default_md") == 0) {
		if (strcmp(v->value, "sha256") != 0 && strcmp(v->value, "sha384") != 0 && strcmp(v->value, "default") != 0)
			return p11pki_fail(P11PKI_E_ARG, "[ %s ] default_md = %s: only sha256 and sha384 are allowed (MD5 and SHA-1 are broken)",
					   section, v->value);
		return P11PKI_OK;
	}
	if (strcmp(v->name, "unique_subject") == 0)
		return P11PKI_OK; /* subjects may repeat: renewals are new keys */
	return p11pki_fail(P11PKI_E_ARG,
			   "[ %s ] %s: unknown setting (known: default_days, default_crl_days, policy, crl_url, ocsp_url, "
			   "issuers_url, past_issuer, default_md, unique_subject)", section, v->name);
}

int p11pki_ca_settings_load(const CONF *conf, const char *ca_name, struct p11pki_ca_settings *s)
{
	STACK_OF(CONF_VALUE) *lines;
	char section[96];
	int i, r;

	memset(s, 0, sizeof(*s));
	s->default_days = 365;
	s->default_crl_days = 30;
	snprintf(section, sizeof(section), "ca_%s", ca_name);
	if (conf == NULL || (lines = NCONF_get_section(conf, section)) == NULL)
		return P11PKI_OK;
	for (i = 0; i < sk_CONF_VALUE_num(lines); i++)
		if ((r = apply(conf, section, sk_CONF_VALUE_value(lines, i), s)) != 0) {
			p11pki_ca_settings_clear(s);
			return r;
		}
	return P11PKI_OK;
}

void p11pki_ca_settings_clear(struct p11pki_ca_settings *s)
{
	free(s->crl_url);
	free(s->ocsp_url);
	free(s->issuers_url);
	s->crl_url = s->ocsp_url = s->issuers_url = NULL;
}
