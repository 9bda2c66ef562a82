/* Per-command option parsing over one table of every option p11pki has.
 * No option takes a PIN or a password: secrets never appear in argv. */
#include <getopt.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

enum { OPT_FLAG, OPT_VALUE, OPT_SAN };

struct opt {
	const char *name;
	int kind;
	size_t field; /* offset of the const char * or int in struct cli */
};

#define V(n, f) { n, OPT_VALUE, offsetof(struct cli, f) }
#define F(n, f) { n, OPT_FLAG, offsetof(struct cli, f) }
static const struct opt table[] = {
	V("module", module), V("config", config), V("token", token), V("pin-source", pin_source),
	V("so-pin-source", so_pin_source), V("password-source", password_source), V("label", label),
	V("type", type), V("id", id_hex), V("slot", slot), V("output", output), V("subject", subject),
	V("days", days), V("name", name), V("parent", parent), V("ca", ca), V("profile", profile),
	V("csr", csr), V("serial", serial), V("reason", reason), V("expiring", expiring),
	V("chain=", chain), V("host", host), V("untrusted", untrusted), V("crl", crl), V("at", at),
	V("key", key), V("cert", cert), V("requester", requester),
	V("server", server), V("ca-file", ca_file), V("user", user), V("secret-env", secret_env),
	V("secret-file", secret_file), V("object", object), V("within", within), V("est-label", est_label),
	{ "san", OPT_SAN, 0 },
	F("json", json), F("yes", yes), F("extractable", extractable), F("store", store),
	F("revoked", revoked), F("chain", want_chain), F("legacy", legacy), F("cross", cross),
	F("is-ca", is_ca), F("rekey", rekey),
};
#define N_OPTS (sizeof(table) / sizeof(table[0]))

/* "chain=" in the table and in `allowed` means the valued variant. */
static int is_allowed(const char *allowed, const char *name)
{
	size_t len = strlen(name);
	const char *p = allowed;

	while ((p = strstr(p, name)) != NULL) {
		if ((p == allowed || p[-1] == ' ') && (p[len] == ' ' || p[len] == '\0'))
			return 1;
		p += len;
	}
	return 0;
}

static int take(struct cli *c, const struct opt *o, const char *arg)
{
	char *base = (char *)c;

	if (o->kind == OPT_SAN) {
		if (c->n_sans == CLI_MAX_SANS)
			return cli_usage("at most %d --san options", CLI_MAX_SANS);
		c->sans[c->n_sans++] = arg;
	} else if (o->kind == OPT_VALUE) {
		*(const char **)(base + o->field) = arg;
	} else {
		*(int *)(base + o->field) = 1;
	}
	return 0;
}

/* "key gen", or "csr" for a command without sub-command, for messages. */
static const char *command_name(const struct cli *c, char **argv, char *buf, size_t size)
{
	if (strcmp(c->group, argv[0]) == 0)
		snprintf(buf, size, "%s", c->group);
	else
		snprintf(buf, size, "%s %s", c->group, argv[0]);
	return buf;
}

/* getopt_long accepts abbreviations ("--pin" for "--pin-source"), which
 * could turn a PIN typed on the command line into a source spec: every
 * long option must be spelled out in full. */
static int exact_names(struct cli *c, int argc, char **argv, const struct option *longs, size_t n)
{
	char cmd[64];
	int i;
	size_t k, len;

	for (i = 1; i < argc; i++) {
		const char *w = argv[i];
		if (strcmp(w, "--") == 0)
			break;
		if (strncmp(w, "--", 2) != 0)
			continue;
		len = strcspn(w + 2, "=");
		for (k = 0; k < n; k++)
			if (strlen(longs[k].name) == len && strncmp(longs[k].name, w + 2, len) == 0)
				break;
		if (k < n) {
			if (longs[k].has_arg == required_argument && w[2 + len] == '\0')
				i++; /* skip its value */
			continue;
		}
		if (strstr(w, "pin") != NULL || strstr(w, "password") != NULL)
			return cli_usage("'%.*s' is not an option of '%s': PINs and passwords are never given on the "
					 "command line, use --pin-source or --password-source file:PATH or env:NAME",
					 (int)len + 2, w, command_name(c, argv, cmd, sizeof(cmd)));
		if (strstr(w, "secret") != NULL)
			return cli_usage("'%.*s' is not an option of '%s': secrets are never given on the command "
					 "line, use --secret-env NAME or --secret-file PATH",
					 (int)len + 2, w, command_name(c, argv, cmd, sizeof(cmd)));
		return cli_usage("'%.*s' is not an option of '%s'", (int)len + 2, w,
				 command_name(c, argv, cmd, sizeof(cmd)));
	}
	return 0;
}

int cli_parse(struct cli *c, int argc, char **argv, const char *allowed)
{
	struct option longs[N_OPTS + 3];
	const struct opt *map[N_OPTS + 3];
	char full[512], cmd[64];
	size_t n = 0, i;
	int opt, idx, r;

	snprintf(full, sizeof(full), "%s module config", allowed);
	for (i = 0; i < N_OPTS; i++) {
		if (!is_allowed(full, table[i].name))
			continue;
		map[n] = &table[i];
		longs[n].name = strcmp(table[i].name, "chain=") == 0 ? "chain" : table[i].name;
		longs[n].has_arg = table[i].kind == OPT_FLAG ? no_argument : required_argument;
		longs[n].flag = NULL;
		longs[n].val = 0;
		n++;
	}
	memset(&longs[n], 0, sizeof(longs[n]));
	if ((r = exact_names(c, argc, argv, longs, n)) != 0)
		return r;
	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "c:o:", longs, &idx)) != -1) {
		if (opt == 0 && (r = take(c, map[idx], optarg)) != 0)
			return r;
		if (opt == 'c')
			c->config = optarg;
		else if (opt == 'o')
			c->output = optarg;
		else if (opt == '?' || opt == ':') {
			const char *word = argv[optind - 1];
			if (optopt == 'c' || optopt == 'o')
				return cli_usage("option '-%c' needs a value", optopt);
			if (strstr(word, "pin") != NULL || strstr(word, "password") != NULL)
				return cli_usage("'%s' is not an option of '%s': PINs and passwords are never given "
						 "on the command line, use --pin-source or --password-source file:PATH or env:NAME",
						 word, command_name(c, argv, cmd, sizeof(cmd)));
			for (i = 0; i < n; i++)
				if (strncmp(word + 2, longs[i].name, strlen(longs[i].name)) == 0 &&
				    longs[i].has_arg == required_argument)
					return cli_usage("option '%s' needs a value", word);
			return cli_usage("'%s' is not an option of '%s'", word, command_name(c, argv, cmd, sizeof(cmd)));
		}
	}
	for (c->argc = 0; optind < argc; optind++) {
		if (c->argc == CLI_MAX_ARGS)
			return cli_usage("too many arguments");
		c->argv[c->argc++] = argv[optind];
	}
	return 0;
}
