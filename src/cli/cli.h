/* Shared by the p11pki command groups: parsed options, opening the module
 * and token a command names, PINs, and output helpers. */
#ifndef P11PKI_CLI_H
#define P11PKI_CLI_H

#include <stdio.h>
#include <p11pki/core.h>
#include <p11pki/token.h>

#define CLI_MAX_ARGS 8
#define CLI_MAX_SANS 64

struct cli {
	const char *group;	   /* "key", "ca", ... */
	const char *module;	   /* --module */
	const char *config;	   /* -c / --config */
	const char *token;	   /* --token LABEL */
	const char *pin_source;	   /* --pin-source */
	const char *so_pin_source; /* --so-pin-source */
	const char *password_source; /* --password-source (PKCS#12) */
	const char *label;	   /* --label */
	const char *type;	   /* --type */
	const char *id_hex;	   /* --id */
	const char *slot;	   /* --slot */
	const char *output;	   /* -o / --output */
	const char *subject;	   /* --subject */
	const char *days;	   /* --days */
	const char *name;	   /* --name */
	const char *parent;	   /* --parent */
	const char *ca;		   /* --ca (name, or file for verify) */
	const char *profile;	   /* --profile */
	const char *csr;	   /* --csr */
	const char *serial;	   /* --serial */
	const char *reason;	   /* --reason */
	const char *expiring;	   /* --expiring */
	const char *chain;	   /* --chain FILES (import, bundle) */
	const char *host;	   /* --host */
	const char *untrusted;	   /* --untrusted */
	const char *crl;	   /* --crl */
	const char *at;		   /* --at */
	const char *key;	   /* --key */
	const char *cert;	   /* --cert */
	const char *requester;	   /* --requester */
	/* enroll, renew (EST client) */
	const char *server;	   /* --server https://HOST[:PORT] */
	const char *ca_file;	   /* --ca-file: trust anchors for the EST server */
	const char *user;	   /* --user: EST (HTTP Basic) user */
	const char *secret_env;	   /* --secret-env NAME: its secret, from the environment */
	const char *secret_file;   /* --secret-file PATH: or from a file */
	const char *object;	   /* --object LABEL */
	const char *within;	   /* --within 30d */
	const char *est_label;	   /* --est-label */
	int rekey;		   /* --rekey */
	const char *sans[CLI_MAX_SANS];
	int n_sans;
	int json, yes, extractable, store, revoked, want_chain, legacy, cross, is_ca;
	int argc;		   /* positional arguments after the command */
	char *argv[CLI_MAX_ARGS];
	/* loaded on demand; released by cli_close */
	struct conf_st *conf;	   /* the config file, NULL when there is none */
	int conf_loaded;
	/* opened by cli_open_token; released by cli_close */
	p11pki_module *m;
	p11pki_token *t;
	struct p11pki_uri *uri;
};

/* Parses the options a command accepts: `allowed` is a space-separated
 * list of long option names ("token pin-source json"). "chain" is a flag
 * and "chain=" takes a value. Options may come anywhere after the command;
 * positional words land in c->argv. Returns 0 or an exit status. */
int cli_parse(struct cli *c, int argc, char **argv, const char *allowed);

/* Prints "p11pki: <message>" for the last library failure and returns
 * the exit status for it (1, or 2 for bad usage). */
int cli_error(int r);
/* Prints a usage error and returns 2. */
int cli_usage(const char *fmt, ...) P11PKI_PRINTF(1, 2);

/* Parses the URI argument (or builds one from --token LABEL) into c->uri. */
int cli_selection(struct cli *c, const char *uri_text);
/* Loads the module: --module, module-path= in the URI, the config file,
 * then the embedded default. */
int cli_open_module(struct cli *c);
/* Opens the selected token and, when login is set, logs in with the PIN
 * from the URI's pin-source, --pin-source, a prompt, or pin-value. */
int cli_open_token(struct cli *c, const char *uri_text, int login);
/* Loads -c FILE, or $P11PKI_HOME/p11pki.conf when it exists, once. */
int cli_config(struct cli *c);
/* A value from the [ p11pki ] section of the config, or NULL. */
const char *cli_config_value(struct cli *c, const char *key);
/* Opens the CA store: $P11PKI_STORE, `store =` in [ p11pki ], or
 * $P11PKI_HOME/ca.db. */
struct p11pki_store;
int cli_open_store(struct cli *c, struct p11pki_store **st);

/* Reads a PIN from spec, or prompts with the given text. */
int cli_read_pin(const char *spec, const char *prompt, p11pki_secret **out);
void cli_close(struct cli *c);

/* Writes len bytes to path through a temp file and rename (never half a
 * file), or to stdout when path is NULL. mode applies to the new file. */
int cli_write_file(const char *path, const void *data, size_t len, int mode);
/* Reads a whole file (at most max bytes). Caller frees. */
int cli_read_file(const char *path, size_t max, unsigned char **data, size_t *len);

/* Parses --id as hex ("a1b2..."), at most 64 bytes, into id[64]. */
int cli_parse_hex_id(const char *hex, unsigned char *id, size_t *len);

/* JSON: writes s as a quoted, escaped JSON string. */
void cli_json_string(FILE *fp, const char *s);

/* Command groups: argv[0] is the command word ("gen", "list", ...). */
int cmd_token(struct cli *c, int argc, char **argv);
int cmd_key(struct cli *c, int argc, char **argv);
int cmd_csr(struct cli *c, int argc, char **argv);
int cmd_cert(struct cli *c, int argc, char **argv);
int cmd_cert_selfsign(struct cli *c, int argc, char **argv);
int cmd_ca(struct cli *c, int argc, char **argv);
int cmd_verify(struct cli *c, int argc, char **argv);
int cmd_p12(struct cli *c, int argc, char **argv);
int cmd_serve(struct cli *c, int argc, char **argv);
int cmd_bindings(struct cli *c, int argc, char **argv);
int cmd_enroll(struct cli *c, int argc, char **argv);
int cmd_renew(struct cli *c, int argc, char **argv);
int cmd_est(struct cli *c, int argc, char **argv);

/* Reads the certificates of a file of at most max bytes: one DER
 * certificate or every PEM one. Caller frees *out with
 * sk_X509_pop_free(*out, X509_free). */
int cli_read_certs(const char *path, size_t max, STACK_OF(X509) **out);
/* Appends to into the certificates of every file of a comma-separated
 * list ("a.pem,b.pem"), each file at most max bytes. */
int cli_read_cert_list(const char *list, size_t max, STACK_OF(X509) *into);
/* Stores the certificates of chain on c->t as CA certificates, printing
 * the URI of each. One already on the token (the intermediate of an
 * earlier certificate) is a note on stderr, not a failure. */
int cli_store_chain(struct cli *c, STACK_OF(X509) *chain);

#endif
