/* p11pki cert import | list | export | selfsign
 *
 * import FILE [--chain A,B] [--is-ca [--label L]]: FILE (PEM or DER; a
 *   PEM file may hold the whole chain, leaf first) lands next to its key
 *   (same CKA_ID and label); chain certificates land as CA certificates
 *   (label: CN, CKA_ID: subjectKeyIdentifier). --is-ca stores FILE itself
 *   as a CA, intermediate or cross-certificate.
 * list [--token L | URI] [--json]: URI, names, serial, dates, SHA-1 and
 *   SHA-256 thumbprints, CA or not.
 * export URI [--chain] [--cross] [-o FILE]: the certificate as PEM; with
 *   --chain followed by its issuers found on the token, intermediates only
 *   (clients have the root; servers do not send it); with --cross through
 *   a cross-certificate, so clients that only trust the older root reach
 *   it. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <p11pki/x509.h>

#include "cli/output.h"

#define MAX_CERT_FILE (1u << 20)

/* Logs in only when a PIN source is given: certificates are public
 * objects, readable without the PIN. */
static int open_for_reading(struct cli *c, const char *uri_text)
{
	int r;

	if ((r = cli_selection(c, uri_text)) != 0)
		return r;
	return cli_open_token(c, NULL, c->pin_source != NULL || c->uri->pin_source != NULL || c->uri->pin_value != NULL);
}

/* ---- import ----------------------------------------------------------- */

static int cert_import(struct cli *c)
{
	STACK_OF(X509) *certs = NULL, *chain = NULL;
	X509 *cert = NULL;
	char *uri = NULL;
	int r;

	if (c->argc != 1)
		return cli_usage("cert import needs one certificate file: 'p11pki cert import FILE --token LABEL'");
	if (c->label != NULL && !c->is_ca)
		return cli_usage("--label goes with --is-ca: a certificate for a key takes the key's label");
	if ((chain = sk_X509_new_null()) == NULL) {
		r = cli_error(p11pki_fail(P11PKI_E_NOMEM, "out of memory"));
		goto out;
	}
	if ((r = cli_read_certs(c->argv[0], MAX_CERT_FILE, &certs)) != 0 ||
	    (c->chain != NULL && (r = cli_read_cert_list(c->chain, MAX_CERT_FILE, chain)) != 0) ||
	    (r = cli_open_token(c, NULL, 1)) != 0) {
		r = cli_error(r);
		goto out;
	}
	/* the rest of a PEM file is its chain (a fullchain.pem) */
	cert = sk_X509_shift(certs);
	while (sk_X509_num(certs) > 0)
		sk_X509_unshift(chain, sk_X509_pop(certs));
	r = c->is_ca ? p11pki_cert_store_ca(c->t, cert, c->label, &uri) : p11pki_cert_import(c->t, cert, &uri);
	if (r == 0) {
		printf("%s\n", uri);
		r = cli_store_chain(c, chain);
	}
	if (r != 0)
		r = cli_error(r);
out:
	free(uri);
	X509_free(cert);
	sk_X509_pop_free(certs, X509_free);
	sk_X509_pop_free(chain, X509_free);
	return r;
}

/* ---- list ------------------------------------------------------------- */

struct cert_text {
	char *subject, *issuer, *serial;
	char not_before[32], not_after[32];
	char sha1[EVP_MAX_MD_SIZE * 3], sha256[EVP_MAX_MD_SIZE * 3];
};

/* "AB:CD:..." as `openssl x509 -fingerprint` prints it. */
static void thumbprint(X509 *x, const EVP_MD *md, char *buf, size_t size)
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned n = 0, i;
	size_t pos = 0;

	buf[0] = '\0';
	if (X509_digest(x, md, d, &n) != 1)
		return;
	for (i = 0; i < n && pos + 3 < size; i++)
		pos += (size_t)snprintf(buf + pos, size - pos, "%s%02X", i ? ":" : "", d[i]);
}

static void time_text(const ASN1_TIME *t, char *buf, size_t size)
{
	struct tm tm;

	if (ASN1_TIME_to_tm(t, &tm) != 1 || strftime(buf, size, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(buf, size, "?");
}

static void text_free(struct cert_text *t)
{
	free(t->subject);
	free(t->issuer);
	OPENSSL_free(t->serial);
}

static int text_of(X509 *x, struct cert_text *t)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	int r;

	memset(t, 0, sizeof(*t));
	t->serial = bn != NULL ? BN_bn2hex(bn) : NULL;
	BN_free(bn);
	if (t->serial == NULL)
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
	if ((r = p11pki_name_format(X509_get_subject_name(x), &t->subject)) != 0 ||
	    (r = p11pki_name_format(X509_get_issuer_name(x), &t->issuer)) != 0)
		return r;
	time_text(X509_get0_notBefore(x), t->not_before, sizeof(t->not_before));
	time_text(X509_get0_notAfter(x), t->not_after, sizeof(t->not_after));
	thumbprint(x, EVP_sha1(), t->sha1, sizeof(t->sha1));
	thumbprint(x, EVP_sha256(), t->sha256, sizeof(t->sha256));
	return P11PKI_OK;
}

static void print_text(const struct p11pki_cert_info *ci, const struct cert_text *t)
{
	printf("%s\n  subject: %s\n  issuer: %s\n  serial: %s\n  valid: %s until %s\n  sha1: %s\n  sha256: %s\n"
	       "  ca: %s\n",
	       ci->uri, t->subject, t->issuer, t->serial, t->not_before, t->not_after, t->sha1, t->sha256,
	       ci->is_ca ? "yes" : "no");
}

static void print_json(const struct p11pki_cert_info *ci, const struct cert_text *t, int first)
{
	const char *keys[] = { "uri", "label", "subject", "issuer", "serial", "not_before", "not_after", "sha1",
			       "sha256" };
	const char *values[] = { ci->uri, ci->label, t->subject, t->issuer, t->serial, t->not_before,
				 t->not_after, t->sha1, t->sha256 };
	size_t i;

	printf("%s\n  {", first ? "" : ",");
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		printf("%s\"%s\": ", i ? ", " : "", keys[i]);
		cli_json_string(stdout, values[i]);
	}
	printf(", \"ca\": %s}", ci->is_ca ? "true" : "false");
}

static int cert_list(struct cli *c)
{
	struct p11pki_cert_info *certs = NULL;
	struct cert_text t;
	size_t n = 0, i;
	int r = 0;

	if ((r = open_for_reading(c, c->argc > 0 ? c->argv[0] : NULL)) != 0 ||
	    (r = p11pki_cert_list(c->t, c->uri, &certs, &n)) != 0)
		return cli_error(r);
	if (c->json)
		printf("[");
	for (i = 0; i < n && r == 0; i++) {
		if ((r = text_of(certs[i].cert, &t)) == 0) {
			if (c->json)
				print_json(&certs[i], &t, i == 0);
			else
				print_text(&certs[i], &t);
		}
		text_free(&t);
	}
	if (c->json)
		printf("\n]\n");
	p11pki_cert_info_free(certs, n);
	return r != 0 ? cli_error(r) : 0;
}

/* ---- export ----------------------------------------------------------- */

static int select_one(struct cli *c, struct p11pki_cert_info *certs, size_t n)
{
	const char *name = c->uri->object != NULL ? c->uri->object : "(no object= given)";

	if (c->uri->object == NULL && c->uri->id == NULL)
		return p11pki_fail(P11PKI_E_ARG, "the certificate URI needs object= or id=, e.g. 'pkcs11:token=%s;object=www'",
				   p11pki_token_label(c->t));
	if (n == 0)
		return p11pki_fail(P11PKI_E_NOTFOUND, "no certificate '%s' on token '%s': run 'p11pki cert list --token %s'",
				   name, p11pki_token_label(c->t), p11pki_token_label(c->t));
	if (n > 1)
		return p11pki_fail(P11PKI_E_ARG, "%zu certificates match '%s' on token '%s': add id= to the URI", n, name,
				   p11pki_token_label(c->t));
	return P11PKI_OK;
}

/* The leaf's issuers among the token's CA certificates. */
static int add_chain(struct cli *c, X509 *leaf, STACK_OF(X509) *out)
{
	struct p11pki_cert_info *all = NULL;
	STACK_OF(X509) *pool = sk_X509_new_null(), *chain = NULL;
	unsigned flags = c->cross ? P11PKI_CHAIN_CROSS : 0;
	size_t n = 0, i;
	int r, complete = 0;

	if (pool == NULL)
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
	if ((r = p11pki_cert_list(c->t, NULL, &all, &n)) != 0)
		goto out;
	for (i = 0; i < n; i++)
		if (all[i].is_ca && !sk_X509_push(pool, all[i].cert)) {
			r = p11pki_fail(P11PKI_E_NOMEM, "out of memory");
			goto out;
		}
	if ((r = p11pki_chain_build(leaf, pool, flags, &chain, &complete)) != 0)
		goto out;
	for (i = 0; r == 0 && i < (size_t)sk_X509_num(chain); i++) {
		X509 *x = sk_X509_value(chain, (int)i);
		if (!sk_X509_push(out, x))
			r = p11pki_fail(P11PKI_E_NOMEM, "out of memory");
		else
			X509_up_ref(x);
	}
	if (r == 0 && !complete) {
		X509 *last = sk_X509_num(out) > 0 ? sk_X509_value(out, sk_X509_num(out) - 1) : leaf;
		char *issuer = NULL;
		(void)p11pki_name_format(X509_get_issuer_name(last), &issuer);
		fprintf(stderr, "p11pki: warning: the chain is incomplete: issuer '%s' is not on token '%s' (add it with "
			"'p11pki cert import FILE --is-ca')\n", issuer != NULL ? issuer : "?", p11pki_token_label(c->t));
		free(issuer);
	}
out:
	sk_X509_pop_free(chain, X509_free);
	sk_X509_free(pool);
	p11pki_cert_info_free(all, n);
	return r;
}

static int cert_export(struct cli *c)
{
	struct p11pki_cert_info *certs = NULL;
	STACK_OF(X509) *out = NULL;
	size_t n = 0;
	int r;

	if (c->argc != 1)
		return cli_usage("cert export needs a certificate URI, e.g. 'pkcs11:token=web;object=www'");
	if ((out = sk_X509_new_null()) == NULL) {
		r = p11pki_fail(P11PKI_E_NOMEM, "out of memory");
		goto out;
	}
	if ((r = open_for_reading(c, c->argv[0])) != 0 || (r = p11pki_cert_list(c->t, c->uri, &certs, &n)) != 0 ||
	    (r = select_one(c, certs, n)) != 0)
		goto out;
	if (!sk_X509_push(out, certs[0].cert)) {
		r = p11pki_fail(P11PKI_E_NOMEM, "out of memory");
		goto out;
	}
	X509_up_ref(certs[0].cert);
	if ((c->want_chain || c->cross) && (r = add_chain(c, certs[0].cert, out)) != 0)
		goto out;
	r = cli_write_certs(c->output, out);
out:
	sk_X509_pop_free(out, X509_free);
	p11pki_cert_info_free(certs, n);
	return r != 0 ? cli_error(r) : 0;
}

int cmd_cert(struct cli *c, int argc, char **argv)
{
	const char *sub = argv[0];
	int r;

	if (strcmp(sub, "selfsign") == 0)
		return cmd_cert_selfsign(c, argc, argv);
	if (strcmp(sub, "import") == 0)
		r = cli_parse(c, argc, argv, "token pin-source chain= is-ca label");
	else if (strcmp(sub, "export") == 0)
		r = cli_parse(c, argc, argv, "token pin-source chain cross output");
	else
		r = cli_parse(c, argc, argv, "token pin-source json");
	if (r != 0)
		return r;
	if (strcmp(sub, "import") == 0)
		return cert_import(c);
	if (strcmp(sub, "list") == 0)
		return cert_list(c);
	if (strcmp(sub, "export") == 0)
		return cert_export(c);
	return cli_usage("unknown command 'cert %s' (try import, list, export or selfsign)", sub);
}
