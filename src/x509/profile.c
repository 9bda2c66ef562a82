/* Certificate profiles: the built-in server, client, subca and ocsp, and
 * overrides from a [ profile_NAME ] config section. */
#include <stdlib.h>
#include <string.h>

#include <openssl/x509v3.h>

#include <p11pki/ca.h>

int p11pki_profile_builtin(const char *name, struct p11pki_profile *p)
{
	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->pathlen = -1;
	p->key_rules.rsa_min_bits = 2048;
	if (strcmp(name, "server") == 0) {
		p->key_usage = KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT;
		p->eku[p->n_eku++] = NID_server_auth;
		p->require_san = 1;
		p->default_days = 365;
		p->max_days = 398; /* CA/B Forum Baseline Requirements */
	} else if (strcmp(name, "client") == 0) {
		p->key_usage = KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT;
		p->eku[p->n_eku++] = NID_client_auth;
		p->default_days = 365;
		p->max_days = 825;
	} else if (strcmp(name, "subca") == 0) {
		p->is_ca = 1;
		p->pathlen = 0;
		p->key_usage = KU_DIGITAL_SIGNATURE | KU_KEY_CERT_SIGN | KU_CRL_SIGN;
		p->default_days = 1825;
		p->max_days = 3650;
	} else if (strcmp(name, "root") == 0) {
		p->is_ca = 1;
		p->key_usage = KU_DIGITAL_SIGNATURE | KU_KEY_CERT_SIGN | KU_CRL_SIGN;
		p->default_days = 3650;
		p->max_days = 9125;
	} else if (strcmp(name, "ocsp") == 0) {
		p->key_usage = KU_DIGITAL_SIGNATURE;
		p->eku[p->n_eku++] = NID_OCSP_sign;
		p->ocsp_nocheck = 1;
		p->default_days = 30;
		p->max_days = 90;
	} else {
		return P11PKI_E_NOTFOUND;
	}
	return P11PKI_OK;
}

void p11pki_profile_clear(struct p11pki_profile *p)
{
	size_t i;

	for (i = 0; i < p->n_allowed_dns; i++)
		free(p->allowed_dns[i]);
	p->n_allowed_dns = 0;
}

static int parse_days(const char *key, const char *v, unsigned *out)
{
	char *end;
	unsigned long n = strtoul(v, &end, 10);

	if (*v == '\0' || *end != '\0' || n == 0 || n > 36500)
		return p11pki_fail(P11PKI_E_ARG, "%s = %s: expected a number of days from 1 to 36500", key, v);
	*out = (unsigned)n;
	return P11PKI_OK;
}

static int parse_bool(const char *key, const char *v, int *out)
{
	if (strcmp(v, "yes") == 0 || strcmp(v, "true") == 0)
		*out = 1;
	else if (strcmp(v, "no") == 0 || strcmp(v, "false") == 0)
		*out = 0;
	else
		return p11pki_fail(P11PKI_E_ARG, "%s = %s: expected yes or no", key, v);
	return P11PKI_OK;
}

/* Calls fn on each trimmed item of a comma list. */
static int each_item(const char *key, const char *list, int (*fn)(struct p11pki_profile *, const char *, const char *),
		     struct p11pki_profile *p)
{
	char item[256];
	const char *s = list;
	int r;

	while (*s != '\0') {
		size_t len = strcspn(s, ",");
		const char *b = s, *e = s + len;
		while (b < e && (*b == ' ' || *b == '\t'))
			b++;
		while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (e == b || (size_t)(e - b) >= sizeof(item))
			return p11pki_fail(P11PKI_E_ARG, "%s = %s: empty or oversize item", key, list);
		memcpy(item, b, (size_t)(e - b));
		item[e - b] = '\0';
		if ((r = fn(p, key, item)) != 0)
			return r;
		s += len + (s[len] == ',');
	}
	return P11PKI_OK;
}

static int add_pattern(struct p11pki_profile *p, const char *key, const char *item)
{
	if (p->n_allowed_dns == P11PKI_PROFILE_MAX_PATTERNS)
		return p11pki_fail(P11PKI_E_ARG, "%s: at most %d patterns", key, P11PKI_PROFILE_MAX_PATTERNS);
	if ((p->allowed_dns[p->n_allowed_dns] = strdup(item)) == NULL)
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
	p->n_allowed_dns++;
	return P11PKI_OK;
}

static int add_key_type(struct p11pki_profile *p, const char *key, const char *item)
{
	if (strcmp(item, "rsa") == 0)
		p->key_rules.allow_rsa = 1;
	else if (strcmp(item, "p256") == 0 || strcmp(item, "ec:p256") == 0)
		p->key_rules.allow_p256 = 1;
	else if (strcmp(item, "p384") == 0 || strcmp(item, "ec:p384") == 0)
		p->key_rules.allow_p384 = 1;
	else
		return p11pki_fail(P11PKI_E_ARG, "%s: unknown key type '%s' (use rsa, p256, p384)", key, item);
	return P11PKI_OK;
}

static int add_eku_item(struct p11pki_profile *p, const char *key, const char *item)
{
	int nid = OBJ_txt2nid(item);

	if (nid == NID_undef)
		return p11pki_fail(P11PKI_E_ARG, "%s: unknown extended key usage '%s'", key, item);
	if (p->n_eku == (int)(sizeof(p->eku) / sizeof(p->eku[0])))
		return p11pki_fail(P11PKI_E_ARG, "%s: at most 4 usages", key);
	p->eku[p->n_eku++] = nid;
	return P11PKI_OK;
}

static int apply_setting(struct p11pki_profile *p, const char *section, const CONF_VALUE *v)
{
	char key[160];
	unsigned long bits;
	char *end;

	snprintf(key, sizeof(key), "[ %s ] %s", section, v->name);
	if (strcmp(v->name, "default_days") == 0)
		return parse_days(key, v->value, &p->default_days);
	if (strcmp(v->name, "max_days") == 0)
		return parse_days(key, v->value, &p->max_days);
	if (strcmp(v->name, "require_san") == 0)
		return parse_bool(key, v->value, &p->require_san);
	if (strcmp(v->name, "allowed_dns") == 0) {
		p11pki_profile_clear(p);
		return each_item(key, v->value, add_pattern, p);
	}
	if (strcmp(v->name, "key_types") == 0) {
		p->key_rules.allow_rsa = p->key_rules.allow_p256 = p->key_rules.allow_p384 = 0;
		return each_item(key, v->value, add_key_type, p);
	}
	if (strcmp(v->name, "extended_key_usage") == 0) {
		p->n_eku = 0;
		return each_item(key, v->value, add_eku_item, p);
	}
	if (strcmp(v->name, "rsa_min_bits") == 0) {
		bits = strtoul(v->value, &end, 10);
		if (*end != '\0' || bits < 2048 || bits > 16384)
			return p11pki_fail(P11PKI_E_ARG, "%s = %s: expected 2048 to 16384", key, v->value);
		p->key_rules.rsa_min_bits = (unsigned)bits;
		return P11PKI_OK;
	}
	return p11pki_fail(P11PKI_E_ARG,
			   "%s: unknown setting (known: default_days, max_days, require_san, allowed_dns, key_types, "
			   "rsa_min_bits, extended_key_usage)", key);
}

int p11pki_profile_load(const CONF *conf, const char *name, struct p11pki_profile *p)
{
	STACK_OF(CONF_VALUE) *section = NULL;
	char section_name[64];
	int r, i, builtin;

	builtin = p11pki_profile_builtin(name, p) == 0;
	snprintf(section_name, sizeof(section_name), "profile_%s", name);
	if (conf != NULL)
		section = NCONF_get_section(conf, section_name);
	if (!builtin && section == NULL)
		return p11pki_fail(P11PKI_E_NOTFOUND,
				   "unknown profile '%s': use server, client, subca or ocsp, or define [ %s ]", name,
				   section_name);
	if (!builtin) { /* a new profile starts as an end-entity one */
		memset(p, 0, sizeof(*p));
		snprintf(p->name, sizeof(p->name), "%s", name);
		p->pathlen = -1;
		p->key_usage = KU_DIGITAL_SIGNATURE;
		p->default_days = 365;
		p->max_days = 398;
		p->key_rules.rsa_min_bits = 2048;
	}
	for (i = 0; section != NULL && i < sk_CONF_VALUE_num(section); i++)
		if ((r = apply_setting(p, section_name, sk_CONF_VALUE_value(section, i))) != 0) {
			p11pki_profile_clear(p);
			return r;
		}
	if (p->default_days > p->max_days)
		p->default_days = p->max_days;
	return P11PKI_OK;
}
