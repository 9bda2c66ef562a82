/* p11pki ca init | sign | revoke | crl | list | cert */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <p11pki/ca.h>

#include "ca/store.h"
#include "cli/output.h"

static int need(const char *value, const char *what)
{
	return value == NULL ? cli_usage("missing %s", what) : 0;
}

/* Opens the token holding CA `name`'s key and logs in. */
static int open_ca(struct cli *c, p11pki_store *st, const char *name, p11pki_ca **ca)
{
	char *uri = NULL;
	int r;

	if ((r = p11pki_ca_key_uri(st, name, &uri)) == 0 && (r = cli_open_token(c, uri, 1)) == 0)
		r = p11pki_ca_open(st, c->conf, name, c->t, ca);
	free(uri);
	return r;
}

/* The parent's key may sit on another token than the new CA's. */
static int open_parent_token(struct cli *c, p11pki_store *st, p11pki_token **pt, p11pki_token **owned)
{
	struct p11pki_uri *u = NULL;
	p11pki_secret *pin = NULL;
	char *uri = NULL;
	int r;

	*pt = *owned = NULL;
	if ((r = p11pki_ca_key_uri(st, c->parent, &uri)) != 0 || (r = p11pki_uri_parse(uri, &u)) != 0)
		goto out;
	if (u->token != NULL && strcmp(u->token, p11pki_token_label(c->t)) == 0) {
		*pt = c->t;
		goto out;
	}
	if ((r = p11pki_token_open(c->m, u, owned)) != 0 ||
	    (r = u->pin_source ? p11pki_pin_read(u->pin_source, &pin)
			       : cli_read_pin(c->pin_source, "User PIN for the parent CA's token: ", &pin)) != 0 ||
	    (r = p11pki_token_login(*owned, pin)) != 0)
		goto out;
	*pt = *owned;
out:
	p11pki_secret_free(pin);
	p11pki_uri_free(u);
	free(uri);
	return r;
}

static int ca_init(struct cli *c, p11pki_store *st)
{
	struct p11pki_ca_create p;
	X509_NAME *subject = NULL;
	p11pki_token *parent_token = NULL, *owned = NULL;
	X509 *cert = NULL;
	int r;

	memset(&p, 0, sizeof(p));
	if ((r = need(c->name, "--name")) != 0 || (r = need(c->token, "--token (the token for the CA key)")) != 0 ||
	    (r = need(c->subject, "--subject")) != 0 || (r = cli_days(c->days, &p.days)) != 0)
		return r;
	if ((r = p11pki_keytype_parse(c->type ? c->type : "ec:p256", &p.type)) != 0 ||
	    (r = p11pki_name_parse(c->subject, &subject)) != 0 || (r = cli_config(c)) != 0 ||
	    (r = cli_open_token(c, NULL, 1)) != 0)
		goto fail;
	if (c->parent != NULL && (r = open_parent_token(c, st, &parent_token, &owned)) != 0)
		goto fail;
	p.name = c->name;
	p.parent = c->parent;
	p.subject = subject;
	if ((r = p11pki_ca_create(st, c->conf, &p, c->t, parent_token, &cert)) != 0 ||
	    (c->output != NULL && (r = cli_write_cert(c->output, cert)) != 0))
		goto fail;
	printf("created CA '%s'%s%s\n", c->name, c->parent ? " under " : " (self-signed root)",
	       c->parent ? c->parent : "");
	goto out;
fail:
	r = cli_error(r);
out:
	p11pki_token_close(owned);
	X509_NAME_free(subject);
	X509_free(cert);
	return r;
}

static int ca_sign(struct cli *c, p11pki_store *st)
{
	struct p11pki_issue req;
	p11pki_ca *ca = NULL;
	unsigned char *data = NULL;
	size_t len;
	X509 *cert = NULL;
	int r;

	memset(&req, 0, sizeof(req));
	if ((r = need(c->ca, "--ca")) != 0 || (r = need(c->csr, "--csr")) != 0 || (r = cli_days(c->days, &req.days)) != 0)
		return r;
	req.profile = c->profile ? c->profile : "server";
	req.requester = c->requester;
	if ((r = cli_read_file(c->csr, 65536, &data, &len)) != 0 || (r = p11pki_csr_read(data, len, &req.csr)) != 0 ||
	    (r = cli_config(c)) != 0 || (r = open_ca(c, st, c->ca, &ca)) != 0 ||
	    (r = p11pki_ca_issue(ca, &req, &cert)) != 0 || (r = cli_write_cert(c->output, cert)) != 0)
		r = cli_error(r);
	X509_free(cert);
	X509_REQ_free(req.csr);
	free(data);
	p11pki_ca_close(ca);
	return r;
}

static int ca_revoke(struct cli *c, p11pki_store *st)
{
	int reason = 0, r;

	if ((r = need(c->ca, "--ca")) != 0 || (r = need(c->serial, "--serial")) != 0)
		return r;
	if (c->reason != NULL && (reason = p11pki_crl_reason_parse(c->reason)) < 0)
		return cli_usage("unknown --reason '%s': use keyCompromise, cACompromise, affiliationChanged, "
				 "superseded, cessationOfOperation, certificateHold, privilegeWithdrawn or unspecified",
				 c->reason);
	if ((r = p11pki_ca_revoke(st, c->ca, c->serial, reason)) != 0)
		return cli_error(r);
	printf("revoked %s (%s); publish a new CRL with 'p11pki ca crl --ca %s'\n", c->serial,
	       p11pki_crl_reason_name(reason), c->ca);
	return 0;
}

static int ca_crl(struct cli *c, p11pki_store *st)
{
	p11pki_ca *ca = NULL;
	X509_CRL *crl = NULL;
	int r;

	if ((r = need(c->ca, "--ca")) != 0)
		return r;
	if ((r = cli_config(c)) != 0 || (r = open_ca(c, st, c->ca, &ca)) != 0 || (r = p11pki_ca_crl(ca, &crl)) != 0 ||
	    (r = cli_write_crl(c->output, crl)) != 0)
		r = cli_error(r);
	X509_CRL_free(crl);
	p11pki_ca_close(ca);
	return r;
}

static void print_time(const char *label, time_t t)
{
	char buf[32];
	struct tm tm;

	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
	printf("%s%s", label, buf);
}

static void list_json(const struct p11pki_store_cert *certs, size_t n)
{
	size_t i;

	printf("[");
	for (i = 0; i < n; i++) {
		const struct p11pki_store_cert *x = &certs[i];
		printf("%s\n  {\"serial\": ", i ? "," : "");
		cli_json_string(stdout, x->serial);
		printf(", \"subject\": ");
		cli_json_string(stdout, x->subject);
		printf(", \"sans\": ");
		cli_json_string(stdout, x->sans);
		printf(", \"profile\": ");
		cli_json_string(stdout, x->profile);
		printf(", \"requester\": ");
		cli_json_string(stdout, x->requester);
		print_time(", \"not_before\": \"", x->not_before);
		print_time("\", \"not_after\": \"", x->not_after);
		printf("\", \"status\": \"%s\"", x->status == P11PKI_CERT_REVOKED ? "revoked" : "valid");
		if (x->status == P11PKI_CERT_REVOKED) {
			print_time(", \"revoked\": \"", x->revoked);
			printf("\", \"reason\": \"%s\"", p11pki_crl_reason_name(x->reason));
		}
		printf("}");
	}
	printf("\n]\n");
}

static void list_text(const struct p11pki_store_cert *certs, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		const struct p11pki_store_cert *x = &certs[i];
		printf("%s  %-7s %-6s", x->serial, x->status == P11PKI_CERT_REVOKED ? "revoked" : "valid",
		       x->profile ? x->profile : "");
		print_time("  until ", x->not_after);
		printf("  %s%s%s\n", x->subject ? x->subject : "", x->sans && *x->sans ? "  " : "", x->sans ? x->sans : "");
	}
}

static int ca_list(struct cli *c, p11pki_store *st)
{
	struct p11pki_store_filter f;
	struct p11pki_store_cert *certs = NULL;
	size_t n = 0;
	long within;
	int r;

	memset(&f, 0, sizeof(f));
	if ((r = need(c->ca, "--ca")) != 0)
		return r;
	f.revoked_only = c->revoked;
	if (c->expiring != NULL) {
		if ((r = p11pki_duration_parse(c->expiring, &within)) != 0)
			return cli_error(r);
		f.expiring_before = time(NULL) + within;
	}
	if ((r = p11pki_store_cert_list(st, c->ca, &f, &certs, &n)) != 0)
		return cli_error(r);
	if (c->json)
		list_json(certs, n);
	else
		list_text(certs, n);
	p11pki_store_cert_list_free(certs, n);
	return 0;
}

static int ca_cert(struct cli *c, p11pki_store *st)
{
	struct p11pki_store_ca rec;
	size_t a, b;
	char *both;
	int r;

	memset(&rec, 0, sizeof(rec));
	if ((r = need(c->ca, "--ca")) != 0)
		return r;
	if ((r = p11pki_store_ca_get(st, c->ca, &rec)) != 0)
		return cli_error(r == P11PKI_E_NOTFOUND ? p11pki_fail(r, "no CA named '%s'", c->ca) : r);
	a = strlen(rec.cert_pem);
	b = c->want_chain && rec.chain_pem ? strlen(rec.chain_pem) : 0;
	if ((both = malloc(a + b + 1)) == NULL) {
		p11pki_store_ca_clear(&rec);
		return cli_error(p11pki_fail(P11PKI_E_NOMEM, "out of memory"));
	}
	memcpy(both, rec.cert_pem, a);
	memcpy(both + a, b ? rec.chain_pem : "", b);
	r = cli_write_file(c->output, both, a + b, 0644);
	free(both);
	p11pki_store_ca_clear(&rec);
	return r == 0 ? 0 : cli_error(r);
}

static const struct {
	const char *name, *options;
	int (*run)(struct cli *c, p11pki_store *st);
} commands[] = {
	{ "init", "name parent token type subject days output pin-source", ca_init },
	{ "sign", "ca profile csr days output requester pin-source", ca_sign },
	{ "revoke", "ca serial reason", ca_revoke },
	{ "crl", "ca output pin-source", ca_crl },
	{ "list", "ca revoked expiring json", ca_list },
	{ "cert", "ca chain output", ca_cert },
};

int cmd_ca(struct cli *c, int argc, char **argv)
{
	p11pki_store *st = NULL;
	size_t i;
	int r;

	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[0], commands[i].name) != 0)
			continue;
		if ((r = cli_parse(c, argc, argv, commands[i].options)) != 0)
			return r;
		if (c->argc > 0)
			return cli_usage("unexpected argument '%s'", c->argv[0]);
		if ((r = cli_open_store(c, &st)) != 0)
			return cli_error(r);
		r = commands[i].run(c, st);
		p11pki_store_close(st);
		return r;
	}
	return cli_usage("unknown command 'ca %s' (try init, sign, revoke, crl, list or cert)", argv[0]);
}
