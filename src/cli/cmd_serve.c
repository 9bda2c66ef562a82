/* p11pki serve | bindings show | bindings check */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <p11pki/tls.h>

#include "cli/cli.h"
#include "tls/serve.h"

/* -c FILE, or $P11PKI_HOME/p11pki.conf; --module overrides the config's. */
static int load_config(struct cli *c, struct p11pki_serve_config **cfg)
{
	char home[PATH_MAX - 16], path[PATH_MAX];
	const char *file = c->config;
	int r;

	*cfg = NULL;
	if (file == NULL) {
		if ((r = p11pki_home(home, sizeof(home))) != 0)
			return r;
		snprintf(path, sizeof(path), "%s/p11pki.conf", home);
		file = path;
	}
	if ((r = p11pki_serve_config_load(file, cfg)) != 0)
		return r;
	if (c->module != NULL) {
		free((*cfg)->module);
		if (((*cfg)->module = strdup(c->module)) == NULL) {
			p11pki_serve_config_free(*cfg);
			*cfg = NULL;
			return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
		}
	}
	return P11PKI_OK;
}

int cmd_serve(struct cli *c, int argc, char **argv)
{
	struct p11pki_serve_config *cfg = NULL;
	int r;

	if ((r = cli_parse(c, argc, argv, "pin-source")) != 0)
		return r;
	if (c->argc > 0)
		return cli_usage("serve takes no arguments: give the configuration with -c FILE");
	if ((r = load_config(c, &cfg)) != 0)
		return cli_error(r);
	/* runs until SIGTERM; takes cfg */
	if ((r = p11pki_serve_run(cfg, c->pin_source)) != 0)
		return cli_error(r);
	return 0;
}

/* ---- bindings show ------------------------------------------------------ */

static const char *auth_name(enum p11pki_client_auth a)
{
	return a == P11PKI_CLIENT_REQUIRE ? "require" : a == P11PKI_CLIENT_OPTIONAL ? "optional" : "none";
}

static void json_string_or_null(const char *name, const char *v)
{
	printf(", \"%s\": ", name);
	if (v != NULL)
		cli_json_string(stdout, v);
	else
		printf("null");
}

/* "est", "est_labels" {label: CA/profile}, "ocsp", "crls". */
static void json_online(const struct p11pki_binding *b)
{
	size_t k;

	json_string_or_null("est", b->est);
	printf(", \"est_labels\": {");
	for (k = 0; k < b->n_est_labels; k++) {
		printf("%s", k ? ", " : "");
		cli_json_string(stdout, b->est_labels[k].label);
		printf(": ");
		cli_json_string(stdout, b->est_labels[k].target);
	}
	printf("}");
	json_string_or_null("ocsp", b->ocsp);
	json_string_or_null("crls", b->crls);
}

static void show_json(const struct p11pki_binding_view *v, size_t n)
{
	size_t i, k;

	printf("[");
	for (i = 0; i < n; i++) {
		const struct p11pki_binding *b = v[i].b;
		char ep[300];

		printf("%s\n  {\"name\": ", i ? "," : "");
		cli_json_string(stdout, b->name);
		printf(", \"listen\": ");
		cli_json_string(stdout, v[i].listener);
		printf(", \"sni\": ");
		if (b->sni != NULL)
			cli_json_string(stdout, b->sni);
		else
			printf("null");
		printf(", \"cert\": ");
		cli_json_string(stdout, b->cert);
		printf(", \"key\": ");
		cli_json_string(stdout, b->key);
		if (v[i].subject != NULL) {
			printf(", \"subject\": ");
			cli_json_string(stdout, v[i].subject);
			printf(", \"issuer\": ");
			cli_json_string(stdout, v[i].issuer);
			printf(", \"sha1\": \"%s\", \"sha256\": \"%s\", \"not_after\": \"%s\", \"expired\": %s, "
			       "\"chain_length\": %d",
			       v[i].sha1, v[i].sha256, v[i].not_after, v[i].expired ? "true" : "false", v[i].chain_len);
		} else {
			printf(", \"error\": ");
			cli_json_string(stdout, v[i].error);
		}
		printf(", \"client_auth\": \"%s\", \"client_ca\": ", auth_name(b->client_auth));
		if (b->client_ca != NULL)
			cli_json_string(stdout, b->client_ca);
		else
			printf("null");
		printf(", \"crl\": ");
		if (b->crl != NULL)
			cli_json_string(stdout, b->crl);
		else
			printf("null");
		printf(", \"mode\": \"%s\", \"backends\": [", b->mode == P11PKI_MODE_HTTP ? "http" : "tcp");
		for (k = 0; k < b->n_backends; k++) {
			snprintf(ep, sizeof(ep), strchr(b->backends[k].host, ':') ? "[%s]:%u" : "%s:%u", b->backends[k].host,
				 (unsigned)b->backends[k].port);
			printf("%s", k ? ", " : "");
			cli_json_string(stdout, ep);
		}
		printf("]");
		json_online(b);
		printf("}");
	}
	printf("\n]\n");
}

/* The CA online routes of a binding, when it has any. */
static void show_online(const struct p11pki_binding *b)
{
	size_t k;

	if (b->est != NULL)
		printf("    EST /.well-known/est/        : %s (CA/profile)\n", b->est);
	for (k = 0; k < b->n_est_labels; k++)
		printf("    EST /.well-known/est/%s/%*s: %s (CA/profile)\n", b->est_labels[k].label,
		       (int)(strlen(b->est_labels[k].label) < 7 ? 7 - strlen(b->est_labels[k].label) : 0), "",
		       b->est_labels[k].target);
	if (b->ocsp != NULL)
		printf("    OCSP /ocsp for CAs           : %s\n", b->ocsp);
	if (b->crls != NULL)
		printf("    CRLs /crl/CA.crl for CAs     : %s\n", b->crls);
}

static void show_text(const struct p11pki_binding_view *v, size_t n)
{
	size_t i, k;

	for (i = 0; i < n; i++) {
		const struct p11pki_binding *b = v[i].b;

		printf("%s    Binding                      : %s\n", i ? "\n" : "", b->name);
		printf("    Listener (IP:port)           : %s\n", v[i].listener);
		printf("    SNI host                     : %s\n", b->sni != NULL ? b->sni : "(any: the listener's default)");
		if (v[i].subject != NULL) {
			printf("    Certificate subject          : %s\n", v[i].subject);
			printf("    Certificate issuer           : %s\n", v[i].issuer);
			printf("    Certificate hash (SHA-1)     : %s\n", v[i].sha1);
			printf("    Certificate hash (SHA-256)   : %s\n", v[i].sha256);
			printf("    Expires                      : %s%s\n", v[i].not_after, v[i].expired ? " (EXPIRED)" : "");
			printf("    Chain certificates sent      : %d\n", v[i].chain_len);
		} else {
			printf("    Certificate                  : cannot be read: %s\n", v[i].error);
		}
		printf("    Certificate from             : %s\n", b->cert != NULL ? b->cert : "(the key's token)");
		if (strncmp(b->key, "file:", 5) == 0)
			printf("    Key (in a file, not a token) : %s\n", b->key + 5);
		else
			printf("    Key (stays on the token)     : %s\n", b->key);
		printf("    Client certificates          : %s", auth_name(b->client_auth));
		if (b->client_ca != NULL)
			printf(" (CA: %s%s%s)", b->client_ca, b->crl != NULL ? ", CRL: " : "", b->crl != NULL ? b->crl : "");
		printf("\n    Mode                         : %s\n", b->mode == P11PKI_MODE_HTTP ? "http" : "tcp");
		printf("    Backends                     : ");
		for (k = 0; k < b->n_backends; k++)
			printf(strchr(b->backends[k].host, ':') ? "%s[%s]:%u" : "%s%s:%u", k ? ", " : "", b->backends[k].host,
			       (unsigned)b->backends[k].port);
		printf("%s\n", b->n_backends == 0 ? "(none)" : "");
		show_online(b);
	}
}

static int bindings_show(struct cli *c, struct p11pki_serve_config *cfg)
{
	struct p11pki_binding_view *v = NULL;
	size_t n = 0, i;
	int r, bad = 0;

	if ((r = p11pki_bindings_show(cfg, c->pin_source, &v, &n)) != 0)
		return cli_error(r);
	if (c->json)
		show_json(v, n);
	else
		show_text(v, n);
	for (i = 0; i < n; i++)
		bad |= v[i].subject == NULL;
	p11pki_binding_views_free(v, n);
	return bad ? 1 : 0;
}

/* ---- bindings check ----------------------------------------------------- */

static void report(const char *binding, const char *msg, void *arg)
{
	if (msg == NULL)
		printf("%s: ok\n", binding);
	else
		fprintf(stderr, "p11pki: %s\n", msg);
}

static int bindings_check(struct cli *c, struct p11pki_serve_config *cfg)
{
	int r = p11pki_bindings_check(cfg, c->pin_source, report, NULL);

	if (r == P11PKI_E_ARG)
		return 1;
	if (r != 0)
		return cli_error(r);
	return 0;
}

int cmd_bindings(struct cli *c, int argc, char **argv)
{
	struct p11pki_serve_config *cfg = NULL;
	int r, show = strcmp(argv[0], "show") == 0;

	if (!show && strcmp(argv[0], "check") != 0)
		return cli_usage("unknown command 'bindings %s'", argv[0]);
	if ((r = cli_parse(c, argc, argv, show ? "pin-source json" : "pin-source")) != 0)
		return r;
	if (c->argc > 0)
		return cli_usage("bindings %s takes no arguments: give the configuration with -c FILE", argv[0]);
	if ((r = load_config(c, &cfg)) != 0)
		return cli_error(r);
	r = show ? bindings_show(c, cfg) : bindings_check(c, cfg);
	p11pki_serve_config_free(cfg);
	return r;
}
