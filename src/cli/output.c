/* Writing certificates, requests and CRLs, and turning --subject/--san
 * options into names: shared by csr, cert and ca commands. */
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include "cli/output.h"

/* Writes whatever `emit` puts into a memory BIO to path (or stdout). */
static int write_bio(const char *path, int mode, int (*emit)(BIO *, const void *), const void *obj)
{
	BIO *mem = BIO_new(BIO_s_mem());
	char *data;
	long len;
	int r;

	if (mem == NULL || !emit(mem, obj)) {
		BIO_free(mem);
		return p11pki_fail(P11PKI_E_CRYPTO, "cannot encode the output");
	}
	len = BIO_get_mem_data(mem, &data);
	r = cli_write_file(path, data, (size_t)len, mode);
	BIO_free(mem);
	return r;
}

static int emit_cert(BIO *b, const void *x)
{
	return PEM_write_bio_X509(b, (X509 *)x) == 1;
}

static int emit_certs(BIO *b, const void *sk)
{
	const STACK_OF(X509) *certs = sk;
	int i;

	for (i = 0; i < sk_X509_num(certs); i++)
		if (PEM_write_bio_X509(b, sk_X509_value(certs, i)) != 1)
			return 0;
	return 1;
}

static int emit_req(BIO *b, const void *req)
{
	return PEM_write_bio_X509_REQ(b, (X509_REQ *)req) == 1;
}

static int emit_crl(BIO *b, const void *crl)
{
	return PEM_write_bio_X509_CRL(b, (X509_CRL *)crl) == 1;
}

int cli_write_cert(const char *path, X509 *cert)
{
	return write_bio(path, 0644, emit_cert, cert);
}

int cli_write_certs(const char *path, STACK_OF(X509) *certs)
{
	return write_bio(path, 0644, emit_certs, certs);
}

int cli_write_req(const char *path, X509_REQ *req)
{
	return write_bio(path, 0644, emit_req, req);
}

int cli_write_crl(const char *path, X509_CRL *crl)
{
	return write_bio(path, 0644, emit_crl, crl);
}

int cli_names(struct cli *c, X509_NAME **subject, GENERAL_NAMES **sans)
{
	GENERAL_NAME *gn = NULL;
	int i, r;

	*subject = NULL;
	*sans = NULL;
	if (c->subject == NULL)
		return cli_usage("--subject is required, e.g. --subject 'CN=www.example.com,O=Example'");
	if ((r = p11pki_name_parse(c->subject, subject)) != 0)
		return cli_error(r);
	if ((*sans = sk_GENERAL_NAME_new_null()) == NULL)
		return cli_error(p11pki_fail(P11PKI_E_NOMEM, "out of memory"));
	for (i = 0; i < c->n_sans; i++) {
		if ((r = p11pki_san_parse(c->sans[i], &gn)) != 0)
			return cli_error(r);
		if (!sk_GENERAL_NAME_push(*sans, gn)) {
			GENERAL_NAME_free(gn);
			return cli_error(p11pki_fail(P11PKI_E_NOMEM, "out of memory"));
		}
	}
	return 0;
}

int cli_days(const char *text, unsigned *days)
{
	char *end;
	unsigned long n;

	*days = 0;
	if (text == NULL)
		return 0;
	n = strtoul(text, &end, 10);
	if (*text == '\0' || *end != '\0' || n == 0 || n > 36500)
		return cli_usage("--days '%s' must be a number of days from 1 to 36500", text);
	*days = (unsigned)n;
	return 0;
}
