/* p11pki cert selfsign --key URI --subject S [--san ...] [--days N]
 *                      [--profile server|client] [--store] [-o FILE] */
#include <string.h>
#include <time.h>

#include <p11pki/ca.h>

#include "cli/output.h"

int cmd_cert_selfsign(struct cli *c, int argc, char **argv)
{
	struct p11pki_profile prof;
	struct p11pki_cert_template t;
	X509_NAME *subject = NULL;
	GENERAL_NAMES *sans = NULL;
	EVP_PKEY *key = NULL, *pub = NULL;
	X509 *cert = NULL;
	unsigned days;
	int r;

	memset(&prof, 0, sizeof(prof));
	memset(&t, 0, sizeof(t));
	if ((r = cli_parse(c, argc, argv, "key subject san days profile store output pin-source")) != 0 ||
	    (r = cli_days(c->days, &days)) != 0)
		return r;
	if (c->key == NULL)
		return cli_usage("cert selfsign needs --key, the URI of a key on a token");
	/* IIS's self-signed certificate is "for server authentication" */
	if ((r = p11pki_profile_load(NULL, c->profile ? c->profile : "server", &prof)) != 0) {
		r = cli_error(r);
		goto out;
	}
	prof.max_days = 0; /* a self-signed certificate is the user's own business */
	if ((r = cli_names(c, &subject, &sans)) != 0)
		goto out;
	if (prof.require_san && sk_GENERAL_NAME_num(sans) == 0) {
		r = cli_usage("a server certificate needs a host name in a subjectAltName: add --san dns:NAME");
		goto out;
	}
	t.subject = subject;
	t.sans = sans;
	t.profile = &prof;
	t.not_before = time(NULL);
	t.not_after = t.not_before + (time_t)(days ? days : 365) * 86400;
	if ((r = cli_open_token(c, c->key, 1)) != 0 || (r = p11pki_key_load(c->t, c->uri, &key)) != 0 ||
	    (r = p11pki_key_public(c->t, c->uri, &pub)) != 0)
		goto fail;
	t.public_key = pub;
	if ((r = p11pki_cert_build(&t, key, &cert)) != 0)
		goto fail;
	/* --store: on the token next to the key, same CKA_ID and label */
	if (c->store && (r = p11pki_cert_import(c->t, cert, NULL)) != 0)
		goto fail;
	if ((r = cli_write_cert(c->output, cert)) != 0)
		goto fail;
	goto out;
fail:
	r = cli_error(r);
out:
	p11pki_profile_clear(&prof);
	X509_free(cert);
	EVP_PKEY_free(key);
	EVP_PKEY_free(pub);
	X509_NAME_free(subject);
	GENERAL_NAMES_free(sans);
	return r;
}
