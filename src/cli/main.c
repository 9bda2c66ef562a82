/* p11pki: the command-line front end of libp11pki. */
#include <stdlib.h>
#include <string.h>

#include "build_config.h"
#include "cli/cli.h"

#ifdef P11PKI_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

static const char usage_text[] =
	"usage: p11pki <group> <command> [options] [args]\n"
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
	"Requests and certificates\n"
	"  csr --key URI --subject S [--san dns:H|ip:A|email:E|uri:U ...] [-o FILE]\n"
	"  cert selfsign --key URI --subject S --san dns:H [--days N] [--store] [-o FILE]\n"
	"  cert import FILE --token L [--chain A,B] [--is-ca] [--label L]\n"
	"  cert list --token L [--json]\n"
	"  cert export URI [--chain] [--cross] [-o FILE]\n"
	"  verify CERT [--host H] [--ca A,B] [--untrusted A,B] [--crl A,B] [--at DATE]\n"
	"  p12 import FILE --token L [--label L] [--password-source SRC]\n"
	"  p12 bundle --key FILE --cert FILE [--chain FILE] -o FILE [--legacy]\n"
	"A CA whose key lives on a token (store: $P11PKI_HOME/ca.db)\n"
	"  ca init --name N [--parent P] --token L [--type T] --subject S [--days N]\n"
	"  ca sign --ca N [--profile server|client|subca|ocsp] --csr FILE [-o FILE] [--days N]\n"
	"  ca revoke --ca N --serial HEX [--reason keyCompromise|...]\n"
	"  ca crl --ca N [-o FILE]\n"
	"  ca list --ca N [--revoked] [--expiring 30d] [--json]\n"
	"  ca cert --ca N [--chain] [-o FILE]\n"
	"  est user add NAME --ca N --profile P   an EST enrolment user; prints its secret once\n"
	"  est user list [--json]\n"
	"  est user delete NAME --yes\n"
	"  serve -c FILE [--pin-source SRC]   TLS server; SIGHUP reloads, SIGTERM drains\n"
	"  bindings show -c FILE [--json]     listeners, SNI, certificates, thumbprints, keys\n"
	"  bindings check -c FILE             everything serve checks at start-up, then exit\n"
	"Provisioning from an EST server (RFC 7030): key on the token, certificate and chain next to it\n"
	"  enroll --server https://H[:P] --ca-file F --token L [--type T] --subject S [--san ...]\n"
	"         --user U (--secret-env NAME | --secret-file PATH) [--label L] [--id HEX] [--est-label E]\n"
	"  renew --token L --object LABEL [--id HEX] --server https://H[:P] --ca-file F [--within 30d]\n"
	"        [--rekey [--type T]] [--est-label E]   (exit 0 when nothing is due, 75 when pending)\n"
	"\n"
	"Common options\n"
	"  --module PATH        PKCS#11 module (default: the embedded SoftHSM2 token\n"
	"                       under $P11PKI_HOME, default ~/.local/share/p11pki)\n"
	"  -c, --config FILE    config file (default $P11PKI_HOME/p11pki.conf)\n"
	"  --pin-source SRC     file:PATH or env:NAME; PINs are never taken from argv\n"
	"  --json               machine-readable output\n"
	"\n"
	"Subjects: '/C=HK/O=My Org/CN=www.example.com' or 'CN=www.example.com,O=My Org,C=HK'.\n"
	"Objects are named by PKCS#11 URIs (RFC 7512), e.g. 'pkcs11:token=web;object=www'.\n";

static void log_to_stderr(int level, const char *msg, void *arg)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };

	fprintf(stderr, "p11pki: %s: %s\n", names[level & 3], msg);
}

/* The allocator is part of the version: it moves serving cost by percents
 * (CMakeLists.txt) and tests check the build linked the one it meant to. */
static void print_version(void)
{
	printf("p11pki %s\n", P11PKI_VERSION);
#ifdef P11PKI_JEMALLOC
	const char *v = "?";
	size_t n = sizeof(v);

	if (mallctl("version", (void *)&v, &n, NULL, 0) != 0)
		v = "?";
	printf("allocator: jemalloc %s\n", v);
#else
	printf("allocator: libc\n");
#endif
}

static const struct {
	const char *name;
	int (*run)(struct cli *c, int argc, char **argv);
} groups[] = {
	{ "token", cmd_token }, { "key", cmd_key }, { "csr", cmd_csr }, { "cert", cmd_cert },
	{ "ca", cmd_ca }, { "verify", cmd_verify }, { "p12", cmd_p12 }, { "serve", cmd_serve }, { "bindings", cmd_bindings },
	{ "est", cmd_est },
	{ "enroll", cmd_enroll }, { "renew", cmd_renew },
};

int main(int argc, char **argv)
{
	struct cli c;
	size_t i;
	int r = -1;

	memset(&c, 0, sizeof(c));
	p11pki_no_core_dumps(); /* PINs live in this process */
	p11pki_log_set_handler(log_to_stderr, NULL);
	if (argc < 2) {
		fputs(usage_text, stderr);
		return 2;
	}
	if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(usage_text, stdout);
		return 0;
	}
	if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
		print_version();
		return 0;
	}
	c.group = argv[1];
	for (i = 0; i < sizeof(groups) / sizeof(groups[0]); i++) {
		if (strcmp(argv[1], groups[i].name) != 0)
			continue;
		/* csr, verify, serve, enroll and renew are commands of their own: no sub-command */
		if (strcmp(argv[1], "csr") == 0 || strcmp(argv[1], "verify") == 0 || strcmp(argv[1], "serve") == 0 ||
		    strcmp(argv[1], "enroll") == 0 || strcmp(argv[1], "renew") == 0) {
			r = groups[i].run(&c, argc - 1, argv + 1);
			break;
		}
		if (argc < 3 || argv[2][0] == '-')
			return cli_usage("'%s' needs a command", argv[1]);
		r = groups[i].run(&c, argc - 2, argv + 2);
		break;
	}
	if (r == -1)
		r = cli_usage("unknown command group '%s'", argv[1]);
	cli_close(&c);
	return r;
}
