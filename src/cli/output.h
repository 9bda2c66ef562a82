/* Output of X.509 objects and parsing of the name options. */
#ifndef P11PKI_CLI_OUTPUT_H
#define P11PKI_CLI_OUTPUT_H

#include <openssl/x509.h>
#include <p11pki/x509.h>

#include "cli/cli.h"

/* PEM to path (through a temp file and rename) or stdout when NULL. */
int cli_write_cert(const char *path, X509 *cert);
int cli_write_certs(const char *path, STACK_OF(X509) *certs);
int cli_write_req(const char *path, X509_REQ *req);
int cli_write_crl(const char *path, X509_CRL *crl);

/* --subject and every --san into a name and a list; on failure the
 * message is printed and the exit status returned (caller frees). */
int cli_names(struct cli *c, X509_NAME **subject, GENERAL_NAMES **sans);
/* --days; 0 when not given. Returns 0 or an exit status. */
int cli_days(const char *text, unsigned *days);

#endif
