/* p11pki csr --key URI --subject S [--san ...] [-o FILE] */
#include <p11pki/ca.h>

#include "cli/output.h"

int cmd_csr(struct cli *c, int argc, char **argv)
{
	X509_NAME *subject = NULL;
	GENERAL_NAMES *sans = NULL;
	EVP_PKEY *key = NULL;
	X509_REQ *req = NULL;
	int r;

	if ((r = cli_parse(c, argc, argv, "key subject san output pin-source")) != 0)
		return r;
	if (c->key == NULL)
		return cli_usage("csr needs --key, the URI of a key on a token");
	if ((r = cli_names(c, &subject, &sans)) != 0)
		goto out;
	if ((r = cli_open_token(c, c->key, 1)) != 0 || (r = p11pki_key_load(c->t, c->uri, &key)) != 0 ||
	    (r = p11pki_csr_build(key, subject, sans, &req)) != 0 || (r = cli_write_req(c->output, req)) != 0)
		r = cli_error(r);
out:
	X509_REQ_free(req);
	EVP_PKEY_free(key);
	X509_NAME_free(subject);
	GENERAL_NAMES_free(sans);
	return r;
}
