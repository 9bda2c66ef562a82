/* libFuzzer harness for name policies. The input is lines "key=value";
 * a line starting with '/' is a further request subject instead. The
 * policy that parses is applied to a fixed CA subject and to fixed and
 * fuzzed requests; a result holds only policy fields, each `match` value
 * is one of the CA's, and each `supplied` field is present. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <p11pki/x509.h>

#define LINES_MAX (P11PKI_POLICY_MAX + 2) /* enough to reach "too many" */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char ca_text[] = "/C=HK/ST=Hong Kong/O=Example/OU=Clients/OU=Staff/CN=Example CA";
static const char *const fixed_requests[] = {
	"/C=HK/ST=Hong Kong/L=Central/O=Example/OU=Clients/CN=alice/emailAddress=a@example.com",
	"CN=mallory+UID=m,OU=Staff,OU=Clients,O=Evil,C=US",
};

static const struct p11pki_policy *rule_of(const struct p11pki_policy *p, int nid, size_t *at)
{
	for (*at = 0; *at < p->n; (*at)++)
		if (p->field[*at].nid == nid)
			return p;
	return NULL;
}

static int in_name(const X509_NAME *n, const X509_NAME_ENTRY *e)
{
	int i, nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));

	for (i = -1; (i = X509_NAME_get_index_by_NID(n, nid, i)) >= 0;)
		if (ASN1_STRING_cmp(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, i)),
				    X509_NAME_ENTRY_get_data(e)) == 0)
			return 1;
	return 0;
}

static void check_result(const struct p11pki_policy *p, const X509_NAME *ca, const X509_NAME *req,
			 const X509_NAME *out)
{
	int i, nid;
	size_t at;

	if (X509_NAME_entry_count(out) == 0)
		abort();
	for (i = 0; i < X509_NAME_entry_count(out); i++) {
		const X509_NAME_ENTRY *e = X509_NAME_get_entry(out, i);

		nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
		if (rule_of(p, nid, &at) == NULL)
			abort();
		if (p->field[at].rule == P11PKI_POLICY_MATCH ? !in_name(ca, e) : !in_name(req, e))
			abort();
	}
	for (at = 0; at < p->n; at++)
		if (p->field[at].rule != P11PKI_POLICY_OPTIONAL &&
		    X509_NAME_get_index_by_NID(out, p->field[at].nid, -1) < 0)
			abort();
}

static void apply_one(const struct p11pki_policy *p, const X509_NAME *ca, const X509_NAME *req)
{
	X509_NAME *out = NULL;

	if (p11pki_policy_apply(p, ca, req, &out) != 0) {
		if (out != NULL || p11pki_errmsg()[0] == '\0' || strchr(p11pki_errmsg(), '\n'))
			abort();
		return;
	}
	check_result(p, ca, req, out);
	X509_NAME_free(out);
}

/* Splits text in place into key/value lines; returns the count. */
static size_t split(char *text, const char **keys, const char **values, const char **subject)
{
	char *line = text, *next, *eq;
	size_t n = 0;

	while (line != NULL && n < LINES_MAX) {
		if ((next = strchr(line, '\n')) != NULL)
			*next++ = '\0';
		if (line[0] == '/')
			*subject = line;
		else if ((eq = strchr(line, '=')) != NULL) {
			*eq = '\0';
			keys[n] = line;
			values[n++] = eq + 1;
		}
		line = next;
	}
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *keys[LINES_MAX], *values[LINES_MAX], *subject = NULL;
	struct p11pki_policy p;
	X509_NAME *ca = NULL, *req = NULL;
	char *text;
	size_t i, n;

	if ((text = malloc(size + 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	n = split(text, keys, values, &subject);
	if (p11pki_policy_parse(keys, values, n, &p) != 0) {
		if (p.n != 0 || p11pki_errmsg()[0] == '\0' || strchr(p11pki_errmsg(), '\n'))
			abort();
		goto out;
	}
	if (p.n != n || p11pki_name_parse(ca_text, &ca) != 0)
		abort();
	for (i = 0; i < sizeof(fixed_requests) / sizeof(fixed_requests[0]); i++) {
		if (p11pki_name_parse(fixed_requests[i], &req) != 0)
			abort();
		apply_one(&p, ca, req);
		X509_NAME_free(req);
		req = NULL;
	}
	apply_one(&p, ca, ca);
	if (subject != NULL && p11pki_name_parse(subject, &req) == 0)
		apply_one(&p, ca, req);
out:
	X509_NAME_free(req);
	X509_NAME_free(ca);
	free(text);
	return 0;
}
