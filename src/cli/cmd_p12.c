/* p11pki p12 import | bundle
 *
 * import FILE --token L [--label L] [--password-source SRC]: restores a
 *   PKCS#12 backup: the key lands on the token non-extractable (it was
 *   not generated there, so it shows local=no), its certificate next to
 *   it (same CKA_ID and label), the chain as CA certificates.
 * bundle --key K --cert C [--chain I[,..]] -o OUT.p12 [--password-source
 *   SRC] [--legacy] [--label NAME]: a password-protected PKCS#12 of a
 *   software client key for browsers (AES-256-CBC/PBKDF2, or 3DES/SHA-1
 *   with --legacy for old Windows); the file is made mode 0600. */
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <p11pki/x509.h>

#include "cli/cli.h"

#define MAX_FILE (1u << 20)

/* The CN of a certificate, or NULL. Caller frees with OPENSSL_free. */
static char *common_name(X509 *cert)
{
	const X509_NAME *name = X509_get_subject_name(cert);
	int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
	unsigned char *utf8 = NULL;

	if (i < 0 || ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i))) < 0)
		return NULL;
	return (char *)utf8;
}

/* ---- import ----------------------------------------------------------- */

/* --label, else the certificate's friendlyName, else its CN. */
static char *label_for(struct cli *c, X509 *cert)
{
	const unsigned char *alias;
	char *cn, *label;
	int len = 0;

	if (c->label != NULL)
		return strdup(c->label);
	if (cert != NULL && (alias = X509_alias_get0(cert, &len)) != NULL && len > 0)
		return strndup((const char *)alias, (size_t)len);
	if (cert == NULL || (cn = common_name(cert)) == NULL)
		return strdup("imported");
	label = strdup(cn);
	OPENSSL_free(cn);
	return label;
}

static int read_backup(struct cli *c, const char *path, EVP_PKEY **key, X509 **cert, STACK_OF(X509) **chain)
{
	p11pki_secret *pw = NULL;
	unsigned char *data = NULL;
	char prompt[96];
	size_t len = 0;
	int r;

	snprintf(prompt, sizeof(prompt), "Password for %s: ", path);
	if ((r = cli_read_file(path, MAX_FILE, &data, &len)) != 0 ||
	    (r = cli_read_pin(c->password_source, prompt, &pw)) != 0 ||
	    (r = p11pki_p12_read(data, len, path, pw, key, cert, chain)) != 0)
		goto out;
	if (*key == NULL)
		r = p11pki_fail(P11PKI_E_ARG, "%s holds no private key: nothing to restore onto a token (certificates "
				"alone go in with 'p11pki cert import')", path);
	else if (*cert != NULL && X509_check_private_key(*cert, *key) != 1)
		r = p11pki_fail(P11PKI_E_ARG, "the certificate in %s does not belong to its private key", path);
out:
	ERR_clear_error();
	p11pki_secret_free(pw);
	free(data);
	return r;
}

static int p12_import(struct cli *c)
{
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	STACK_OF(X509) *chain = NULL;
	char *label = NULL, *uri = NULL;
	int r;

	if (c->argc != 1)
		return cli_usage("p12 import needs one PKCS#12 file: 'p11pki p12 import backup.pfx --token LABEL'");
	if ((r = read_backup(c, c->argv[0], &key, &cert, &chain)) != 0)
		goto out;
	if ((label = label_for(c, cert)) == NULL) {
		r = p11pki_fail(P11PKI_E_NOMEM, "out of memory");
		goto out;
	}
	if ((r = cli_open_token(c, NULL, 1)) != 0 || (r = p11pki_key_import(c->t, key, label, &uri)) != 0)
		goto out;
	printf("%s\n", uri);
	free(uri);
	uri = NULL;
	if (cert != NULL) {
		/* pairs by public key, so it takes the new key's id and label */
		if ((r = p11pki_cert_import(c->t, cert, &uri)) != 0)
			goto out;
		printf("%s\n", uri);
	}
	r = cli_store_chain(c, chain);
out:
	free(uri);
	free(label);
	EVP_PKEY_free(key); /* clears the private values */
	X509_free(cert);
	sk_X509_pop_free(chain, X509_free);
	return r != 0 ? cli_error(r) : 0;
}

/* ---- bundle ----------------------------------------------------------- */

struct pass_ask {
	const char *path;
	int failed;
};

/* An encrypted PEM key: ask for its pass phrase at the terminal. */
static int ask_pass(char *buf, int size, int rwflag, void *arg)
{
	struct pass_ask *a = arg;
	p11pki_secret *s = NULL;
	char prompt[128];
	int n;

	snprintf(prompt, sizeof(prompt), "Pass phrase for %s: ", a->path);
	if (cli_read_pin(NULL, prompt, &s) != 0) {
		a->failed = 1;
		return -1;
	}
	n = s->len < (size_t)size ? (int)s->len : size;
	memcpy(buf, s->data, (size_t)n);
	p11pki_secret_free(s);
	return n;
}

static int read_key(const char *path, EVP_PKEY **key)
{
	struct pass_ask ask = { path, 0 };
	unsigned char *data = NULL;
	const unsigned char *p;
	size_t len = 0;
	BIO *b = NULL;
	int r;

	*key = NULL;
	if ((r = cli_read_file(path, MAX_FILE, &data, &len)) != 0)
		return r;
	p = data;
	if (memmem(data, len, "-----BEGIN", 10) != NULL) {
		if ((b = BIO_new_mem_buf(data, (int)len)) != NULL)
			*key = PEM_read_bio_PrivateKey(b, NULL, ask_pass, &ask);
	} else {
		*key = d2i_AutoPrivateKey(NULL, &p, (long)len);
	}
	if (*key == NULL)
		r = ask.failed ? p11pki_fail(P11PKI_E_PIN, "%s is encrypted: its pass phrase is asked at a terminal, and "
					     "there is none", path)
			       : p11pki_fail(P11PKI_E_ARG, "%s is not a private key (PEM or DER), or its pass phrase is "
					     "wrong", path);
	BIO_free(b);
	OPENSSL_clear_free(data, len + 1); /* it held the key in the clear */
	ERR_clear_error();
	return r;
}

struct bundle_in {
	EVP_PKEY *key;
	STACK_OF(X509) *certs; /* [0] the certificate, then its chain */
};

static int read_bundle_inputs(struct cli *c, struct bundle_in *in)
{
	int r;

	if ((r = read_key(c->key, &in->key)) != 0 || (r = cli_read_certs(c->cert, MAX_FILE, &in->certs)) != 0 ||
	    (c->chain != NULL && (r = cli_read_cert_list(c->chain, MAX_FILE, in->certs)) != 0))
		return r;
	if (X509_check_private_key(sk_X509_value(in->certs, 0), in->key) != 1) {
		ERR_clear_error();
		return p11pki_fail(P11PKI_E_ARG, "%s does not belong to %s (their public keys differ)", c->key, c->cert);
	}
	return P11PKI_OK;
}

static int p12_bundle(struct cli *c)
{
	struct bundle_in in = { NULL, NULL };
	STACK_OF(X509) *chain = NULL;
	p11pki_secret *pw = NULL;
	unsigned char *der = NULL;
	char *name = NULL, prompt[96];
	X509 *cert;
	size_t len = 0;
	int r;

	if (c->key == NULL || c->cert == NULL || c->output == NULL)
		return cli_usage("p12 bundle needs --key FILE, --cert FILE and -o OUT.p12");
	if (c->argc != 0)
		return cli_usage("p12 bundle takes no arguments besides its options");
	snprintf(prompt, sizeof(prompt), "Password for %s: ", c->output);
	if ((r = read_bundle_inputs(c, &in)) != 0 || (r = cli_read_pin(c->password_source, prompt, &pw)) != 0)
		goto out;
	cert = sk_X509_value(in.certs, 0);
	if ((chain = sk_X509_dup(in.certs)) == NULL) {
		r = p11pki_fail(P11PKI_E_NOMEM, "out of memory");
		goto out;
	}
	(void)sk_X509_shift(chain); /* a view of the rest: in.certs owns them */
	name = c->label == NULL ? common_name(cert) : NULL;
	if ((r = p11pki_p12_create(in.key, cert, chain, c->label != NULL ? c->label : name, pw, c->legacy, &der, &len)) != 0 ||
	    (r = cli_write_file(c->output, der, len, 0600)) != 0)
		goto out;
	printf("%s: %s\n", c->output, c->legacy ? "pbeWithSHA1And3-KeyTripleDES-CBC, SHA-1 MAC (legacy)"
						 : "AES-256-CBC with PBKDF2, SHA-256 MAC");
out:
	OPENSSL_free(der);
	OPENSSL_free(name);
	sk_X509_free(chain);
	p11pki_secret_free(pw);
	EVP_PKEY_free(in.key);
	sk_X509_pop_free(in.certs, X509_free);
	return r != 0 ? cli_error(r) : 0;
}

int cmd_p12(struct cli *c, int argc, char **argv)
{
	const char *sub = argv[0];
	int r;

	if (strcmp(sub, "import") == 0)
		r = cli_parse(c, argc, argv, "token pin-source password-source label");
	else if (strcmp(sub, "bundle") == 0)
		r = cli_parse(c, argc, argv, "key cert chain= output password-source legacy label");
	else
		return cli_usage("unknown command 'p12 %s' (try import or bundle)", sub);
	if (r != 0)
		return r;
	return strcmp(sub, "import") == 0 ? p12_import(c) : p12_bundle(c);
}
