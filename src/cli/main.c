/* p11pki: the command-line front end of libp11pki. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "build_config.h"
#include "cli/cli.h"

static const char usage_text[] =
	"usage: p11pki [global options] <group> <command> [options] [args]\n"
	"\n"
	"Tokens\n"
	"  token init --label L [--slot N] --so-pin-source SRC --pin-source SRC\n"
	"  token list [--json]\n"
	"Keys (private keys never leave the token)\n"
	"  key gen --token L --type T --label NAME [--id HEX] [--extractable]\n"
	"          T is rsa:2048, rsa:3072, rsa:4096, ec:p256 or ec:p384\n"
	"  key list [--token L | URI] [--json]\n"
	"  key pub URI [-o FILE]          SubjectPublicKeyInfo as PEM\n"
	"  key audit URI                  proves the private key cannot be read\n"
	"  key delete URI --yes\n"
	"\n"
	"Global options\n"
	"  --module PATH        PKCS#11 module (default: the embedded SoftHSM2 token\n"
	"                       under $P11PKI_HOME, default ~/.local/share/p11pki)\n"
	"  -c, --config FILE    config file (default $P11PKI_HOME/p11pki.conf)\n"
	"  --pin-source SRC     file:PATH or env:NAME; PINs are never taken from argv\n"
	"  --json               machine-readable output\n"
	"\n"
	"Objects are named by PKCS#11 URIs (RFC 7512), e.g. 'pkcs11:token=web;object=www'.\n";

enum { OPT_MODULE = 256, OPT_TOKEN, OPT_PIN_SOURCE, OPT_SO_PIN_SOURCE, OPT_LABEL, OPT_TYPE, OPT_ID,
       OPT_SLOT, OPT_JSON, OPT_YES, OPT_EXTRACTABLE };

static const struct option options[] = {
	{ "module", required_argument, NULL, OPT_MODULE },
	{ "config", required_argument, NULL, 'c' },
	{ "token", required_argument, NULL, OPT_TOKEN },
	{ "pin-source", required_argument, NULL, OPT_PIN_SOURCE },
	{ "so-pin-source", required_argument, NULL, OPT_SO_PIN_SOURCE },
	{ "label", required_argument, NULL, OPT_LABEL },
	{ "type", required_argument, NULL, OPT_TYPE },
	{ "id", required_argument, NULL, OPT_ID },
	{ "slot", required_argument, NULL, OPT_SLOT },
	{ "output", required_argument, NULL, 'o' },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "yes", no_argument, NULL, OPT_YES },
	{ "extractable", no_argument, NULL, OPT_EXTRACTABLE },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

static void log_to_stderr(int level, const char *msg, void *arg)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };

	fprintf(stderr, "p11pki: %s: %s\n", names[level & 3], msg);
}

/* Options may come anywhere (GNU getopt moves the positional words, the
 * group, the command and its arguments, to the end). There is no option
 * that takes a PIN: PINs never appear in argv. */
static int parse(struct cli *c, int argc, char **argv)
{
	int opt;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, "c:o:hV", options, NULL)) != -1) {
		switch (opt) {
		case OPT_MODULE: c->module = optarg; break;
		case 'c': c->config = optarg; break;
		case OPT_TOKEN: c->token = optarg; break;
		case OPT_PIN_SOURCE: c->pin_source = optarg; break;
		case OPT_SO_PIN_SOURCE: c->so_pin_source = optarg; break;
		case OPT_LABEL: c->label = optarg; break;
		case OPT_TYPE: c->type = optarg; break;
		case OPT_ID: c->id_hex = optarg; break;
		case OPT_SLOT: c->slot = optarg; break;
		case 'o': c->output = optarg; break;
		case OPT_JSON: c->json = 1; break;
		case OPT_YES: c->yes = 1; break;
		case OPT_EXTRACTABLE: c->extractable = 1; break;
		case 'h': fputs(usage_text, stdout); exit(0);
		case 'V': printf("p11pki %s\n", P11PKI_VERSION); exit(0);
		default:
			if (optopt == 'c' || optopt == 'o' || optopt >= OPT_MODULE)
				return cli_usage("option '%s' needs a value", argv[optind - 1]);
			if (optopt != 0)
				return cli_usage("unknown option '-%c'", optopt);
			if (strstr(argv[optind - 1], "pin") != NULL)
				return cli_usage("unknown option '%s': PINs are never given on the command line, use --pin-source file:PATH or env:NAME",
						 argv[optind - 1]);
			return cli_usage("unknown option '%s'", argv[optind - 1]);
		}
	}
	for (; optind < argc; optind++) {
		if (c->argc == CLI_MAX_ARGS)
			return cli_usage("too many arguments");
		c->argv[c->argc++] = argv[optind];
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct cli c;
	int r;

	memset(&c, 0, sizeof(c));
	c.prog = argv[0];
	p11pki_no_core_dumps(); /* PINs live in this process */
	p11pki_log_set_handler(log_to_stderr, NULL);
	if ((r = parse(&c, argc, argv)) != 0)
		return r;
	if (c.argc == 0) {
		fputs(usage_text, stderr);
		return 2;
	}
	if (strcmp(c.argv[0], "help") == 0) {
		fputs(usage_text, stdout);
		return 0;
	}
	if (strcmp(c.argv[0], "version") == 0) {
		printf("p11pki %s\n", P11PKI_VERSION);
		return 0;
	}
	if (c.argc < 2)
		return cli_usage("'%s' needs a command", c.argv[0]);
	if (strcmp(c.argv[0], "token") == 0)
		r = cmd_token(&c, c.argv[1]);
	else if (strcmp(c.argv[0], "key") == 0)
		r = cmd_key(&c, c.argv[1]);
	else
		r = cli_usage("unknown command group '%s'", c.argv[0]);
	cli_close(&c);
	return r;
}
