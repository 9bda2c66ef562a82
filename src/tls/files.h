/* Private to the tls layer: certificate and CRL files. */
#ifndef P11PKI_TLS_FILES_H
#define P11PKI_TLS_FILES_H

#include <openssl/x509.h>

/* Every certificate of a PEM file, or its one DER certificate. Caller
 * frees with sk_X509_pop_free(*out, X509_free). */
int tls_read_certs(const char *path, STACK_OF(X509) **out);
/* The same for CRLs; free with sk_X509_CRL_pop_free(*out, X509_CRL_free). */
int tls_read_crls(const char *path, STACK_OF(X509_CRL) **out);

#endif
