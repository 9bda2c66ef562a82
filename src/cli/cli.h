/* Shared by the p11pki command groups: parsed options, opening the module
 * and token a command names, PINs, and output helpers. */
#ifndef P11PKI_CLI_H
#define P11PKI_CLI_H

#include <stdio.h>
#include <p11pki/core.h>
#include <p11pki/token.h>

#define CLI_MAX_ARGS 8

struct cli {
	const char *prog;
	const char *module;	   /* --module */
	const char *config;	   /* -c / --config */
	const char *token;	   /* --token LABEL */
	const char *pin_source;	   /* --pin-source */
	const char *so_pin_source; /* --so-pin-source */
	const char *label;	   /* --label */
	const char *type;	   /* --type */
	const char *id_hex;	   /* --id */
	const char *slot;	   /* --slot */
	const char *output;	   /* -o / --output */
	int json, yes, extractable;
	int argc;		   /* positional arguments after the command */
	char *argv[CLI_MAX_ARGS];
	/* opened by cli_open_token; released by cli_close */
	p11pki_module *m;
	p11pki_token *t;
	struct p11pki_uri *uri;
};

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
/* Reads a PIN from spec, or prompts with the given text. */
int cli_read_pin(const char *spec, const char *prompt, p11pki_secret **out);
void cli_close(struct cli *c);

/* JSON: writes s as a quoted, escaped JSON string. */
void cli_json_string(FILE *fp, const char *s);

int cmd_token(struct cli *c, const char *sub);
int cmd_key(struct cli *c, const char *sub);

#endif
