/* Certificate and CRL files a serve configuration names (PEM or DER),
 * read whole with a bound. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <p11pki/x509.h>

#include "tls/files.h"

#define FILE_MAX (4u << 20) /* a CRL of a busy CA fits */

static int read_file(const char *path, unsigned char **data, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	unsigned char *buf = NULL;
	size_t n;
	int r = P11PKI_OK;

	*data = NULL;
	*len = 0;
	if (fp == NULL)
		return p11pki_fail(P11PKI_E_IO, "cannot read %s: %s", path, strerror(errno));
	if ((buf = malloc(FILE_MAX + 1)) == NULL) {
		r = p11pki_fail(P11PKI_E_NOMEM, "out of memory reading %s", path);
		goto out;
	}
	n = fread(buf, 1, FILE_MAX + 1, fp);
	if (ferror(fp)) {
		r = p11pki_fail(P11PKI_E_IO, "cannot read %s: %s", path, strerror(errno));
		goto out;
	}
	if (n > FILE_MAX) {
		r = p11pki_fail(P11PKI_E_ARG, "%s is larger than %u bytes", path, FILE_MAX);
		goto out;
	}
	*data = buf;
	*len = n;
	buf = NULL;
out:
	free(buf);
	fclose(fp);
	return r;
}

int tls_read_certs(const char *path, STACK_OF(X509) **out)
{
	unsigned char *data = NULL;
	size_t len = 0;
	int r;

	*out = NULL;
	if ((r = read_file(path, &data, &len)) == 0)
		r = p11pki_certs_read(data, len, path, out);
	free(data);
	return r;
}

int tls_read_crls(const char *path, STACK_OF(X509_CRL) **out)
{
	unsigned char *data = NULL;
	size_t len = 0;
	int r;

	*out = NULL;
	if ((r = read_file(path, &data, &len)) == 0)
		r = p11pki_crls_read(data, len, path, out);
	free(data);
	return r;
}
