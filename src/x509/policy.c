/* Name policies as `openssl ca` has them: each field of the policy is
 * `match` (must equal the CA's), `supplied` (must be present) or
 * `optional`; the issued subject holds only those fields, in policy
 * order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/objects.h>

#include <p11pki/x509.h>

#include "core/text.h"

#define KEY_MAX 64

static const struct {
	const char *name;
	enum p11pki_policy_rule rule;
} rules[] = {
	{ "match", P11PKI_POLICY_MATCH },
	{ "supplied", P11PKI_POLICY_SUPPLIED },
	{ "optional", P11PKI_POLICY_OPTIONAL },
};
#define N_RULES (sizeof(rules) / sizeof(rules[0]))

/* Copies s without surrounding blanks, as config readers may leave them. */
static void trim_copy(const char *s, char *buf, size_t size)
{
	size_t n;

	s += strspn(s, " \t");
	for (n = strlen(s); n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'); n--)
		;
	if (n >= size)
		n = size - 1;
	memcpy(buf, s, n);
	buf[n] = '\0';
}

static int parse_field(const char *key, const char *value, struct p11pki_policy *p)
{
	char k[KEY_MAX + 1], v[KEY_MAX + 1], show[P11PKI_SHOWN_BUF], show2[P11PKI_SHOWN_BUF];
	size_t i;
	int nid;

	trim_copy(key, k, sizeof(k));
	trim_copy(value, v, sizeof(v));
	if ((nid = p11pki_name_attr_nid(k)) == NID_undef)
		return p11pki_fail(P11PKI_E_ARG,
				   "policy: '%s' is not a subject field (use countryName, "
				   "stateOrProvinceName, localityName, organizationName, "
				   "organizationalUnitName, commonName, emailAddress, ...)",
				   p11pki_shown(k, show, sizeof(show)));
	for (i = 0; i < p->n; i++)
		if (p->field[i].nid == nid)
			return p11pki_fail(P11PKI_E_ARG, "policy: field '%s' appears twice",
					   p11pki_shown(k, show, sizeof(show)));
	for (i = 0; i < N_RULES; i++)
		if (strcasecmp(v, rules[i].name) == 0)
			break;
	if (i == N_RULES)
		return p11pki_fail(P11PKI_E_ARG,
				   "policy: field '%s' has rule '%s': use match, supplied or "
				   "optional", p11pki_shown(k, show, sizeof(show)),
				   p11pki_shown(v, show2, sizeof(show2)));
	p->field[p->n].nid = nid;
	p->field[p->n].rule = rules[i].rule;
	p->n++;
	return P11PKI_OK;
}

int p11pki_policy_parse(const char *const *keys, const char *const *values, size_t n,
			struct p11pki_policy *out)
{
	size_t i;
	int rc;

	if (out == NULL)
		return p11pki_fail(P11PKI_E_ARG, "p11pki_policy_parse: no output");
	memset(out, 0, sizeof(*out));
	if (n > 0 && (keys == NULL || values == NULL))
		return p11pki_fail(P11PKI_E_ARG, "p11pki_policy_parse: no keys or values");
	if (n > P11PKI_POLICY_MAX)
		return p11pki_fail(P11PKI_E_ARG, "policy: %zu fields, at most %d are allowed", n,
				   P11PKI_POLICY_MAX);
	for (i = 0; i < n; i++) {
		if (keys[i] == NULL || values[i] == NULL) {
			rc = p11pki_fail(P11PKI_E_ARG, "policy: entry %zu is incomplete", i + 1);
			goto out;
		}
		if ((rc = parse_field(keys[i], values[i], out)) != 0)
			goto out;
	}
	return P11PKI_OK;
out:
	memset(out, 0, sizeof(*out));
	return rc;
}

static const char *field_name(int nid)
{
	const char *ln = OBJ_nid2ln(nid);

	return ln != NULL ? ln : "(unknown field)";
}

/* Finds the CA entry equal to e. Equal means the same text: `openssl ca`
 * also compares the ASN.1 string type, so a PrintableString "US" in the
 * CA and a UTF8String "US" in the request famously "differ"; here they
 * do not. The CA's entry is what goes into the certificate. */
static int find_match(const X509_NAME *ca, int nid, const X509_NAME_ENTRY *e,
		      const X509_NAME_ENTRY **push)
{
	char show[P11PKI_SHOWN_BUF], show2[P11PKI_SHOWN_BUF];
	unsigned char *want = NULL, *have = NULL, *first = NULL;
	const X509_NAME_ENTRY *ce;
	int wlen, hlen, idx = -1, rc;

	if (ca == NULL || X509_NAME_get_index_by_NID(ca, nid, -1) < 0)
		return p11pki_fail(P11PKI_E_POLICY,
				   "the policy requires the request's %s to match the CA's, but the "
				   "CA's subject has none", field_name(nid));
	if ((wlen = ASN1_STRING_to_UTF8(&want, X509_NAME_ENTRY_get_data(e))) < 0) {
		rc = p11pki_fail(P11PKI_E_ARG, "the request's %s cannot be read as text",
				 field_name(nid));
		goto out;
	}
	while ((idx = X509_NAME_get_index_by_NID(ca, nid, idx)) >= 0) {
		ce = X509_NAME_get_entry(ca, idx);
		if ((hlen = ASN1_STRING_to_UTF8(&have, X509_NAME_ENTRY_get_data(ce))) < 0)
			continue;
		if (hlen == wlen && memcmp(have, want, (size_t)wlen) == 0) {
			*push = ce;
			rc = P11PKI_OK;
			goto out;
		}
		if (first == NULL)
			first = have;
		else
			OPENSSL_free(have);
		have = NULL;
	}
	rc = p11pki_fail(P11PKI_E_POLICY, "the request's %s '%s' does not match the CA's '%s'",
			 field_name(nid), p11pki_shown((char *)want, show, sizeof(show)),
			 first != NULL ? p11pki_shown((char *)first, show2, sizeof(show2)) : "?");
out:
	OPENSSL_free(want);
	OPENSSL_free(have);
	OPENSSL_free(first);
	return rc;
}

/* Adds every value the request has for one policy field, as openssl ca
 * does: each one is checked, and each becomes its own RDN. */
static int apply_field(int nid, enum p11pki_policy_rule rule, const X509_NAME *ca,
		       const X509_NAME *req, X509_NAME *name)
{
	const X509_NAME_ENTRY *push;
	int idx = -1, found = 0, rc;

	while ((idx = X509_NAME_get_index_by_NID(req, nid, idx)) >= 0) {
		push = X509_NAME_get_entry(req, idx);
		found = 1;
		if (rule == P11PKI_POLICY_MATCH && (rc = find_match(ca, nid, push, &push)) != 0)
			return rc;
		if (X509_NAME_add_entry(name, push, -1, 0) != 1)
			return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
	}
	if (!found && rule == P11PKI_POLICY_SUPPLIED)
		return p11pki_fail(P11PKI_E_POLICY, "the request has no %s, which the policy "
				   "requires", field_name(nid));
	if (!found && rule == P11PKI_POLICY_MATCH)
		return p11pki_fail(P11PKI_E_POLICY, "the request has no %s, which the policy "
				   "requires to match the CA's", field_name(nid));
	return P11PKI_OK;
}

static int policy_valid(const struct p11pki_policy *p)
{
	size_t i;
	int known;

	if (p->n > P11PKI_POLICY_MAX)
		return p11pki_fail(P11PKI_E_ARG, "policy: %zu fields, at most %d are allowed",
				   p->n, P11PKI_POLICY_MAX);
	for (i = 0; i < p->n; i++) {
		ERR_set_mark();
		known = p->field[i].nid != NID_undef && OBJ_nid2ln(p->field[i].nid) != NULL;
		ERR_pop_to_mark();
		if (!known)
			return p11pki_fail(P11PKI_E_ARG, "policy: field %zu is not a subject "
					   "attribute", i + 1);
		if (p->field[i].rule < P11PKI_POLICY_OPTIONAL ||
		    p->field[i].rule > P11PKI_POLICY_MATCH)
			return p11pki_fail(P11PKI_E_ARG, "policy: field %s has an invalid rule",
					   field_name(p->field[i].nid));
	}
	return P11PKI_OK;
}

int p11pki_policy_apply(const struct p11pki_policy *policy, const X509_NAME *ca_subject,
			const X509_NAME *requested, X509_NAME **out)
{
	X509_NAME *name = NULL;
	size_t i;
	int rc;

	if (out == NULL)
		return p11pki_fail(P11PKI_E_ARG, "p11pki_policy_apply: no output pointer");
	*out = NULL;
	if (policy == NULL || requested == NULL)
		return p11pki_fail(P11PKI_E_ARG, "p11pki_policy_apply: no policy or no request");
	if ((rc = policy_valid(policy)) != 0)
		return rc;
	if ((name = X509_NAME_new()) == NULL)
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
	for (i = 0; i < policy->n; i++)
		if ((rc = apply_field(policy->field[i].nid, policy->field[i].rule, ca_subject,
				      requested, name)) != 0)
			goto out;
	if (X509_NAME_entry_count(name) == 0) {
		rc = p11pki_fail(P11PKI_E_POLICY,
				 "the request's subject has none of the fields the policy names");
		goto out;
	}
	*out = name;
	name = NULL;
out:
	X509_NAME_free(name);
	return rc;
}
