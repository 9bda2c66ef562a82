/* p11pki token init | list */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static int token_init(struct cli *c)
{
	p11pki_secret *so_pin = NULL, *pin = NULL;
	unsigned long slot = 0, slot_out = 0;
	char *end;
	int r;

	if (c->label == NULL)
		return cli_usage("token init needs --label");
	if (c->slot != NULL) {
		slot = strtoul(c->slot, &end, 10);
		if (*c->slot == '\0' || *end != '\0')
			return cli_usage("--slot '%s' is not a slot number", c->slot);
	}
	if ((r = cli_read_pin(c->so_pin_source, "New SO PIN: ", &so_pin)) != 0 ||
	    (r = cli_read_pin(c->pin_source, "New user PIN: ", &pin)) != 0 ||
	    (r = cli_open_module(c)) != 0 ||
	    (r = p11pki_token_init(c->m, c->slot != NULL, slot, c->label, so_pin, pin, &slot_out)) != 0)
		goto out;
	printf("initialised token '%s'\n", c->label);
out:
	p11pki_secret_free(so_pin);
	p11pki_secret_free(pin);
	return r == 0 ? 0 : cli_error(r);
}

static const char *yes_no(int v)
{
	return v ? "yes" : "no";
}

static void print_json(const struct p11pki_token_info *ti, size_t n)
{
	size_t i;

	printf("[");
	for (i = 0; i < n; i++) {
		const struct p11pki_token_info *t = &ti[i];
		printf("%s\n  {\"slot\": %lu, \"slot_description\": ", i ? "," : "", t->slot_id);
		cli_json_string(stdout, t->slot_description);
		printf(", \"present\": %s", t->present ? "true" : "false");
		if (t->present) {
			printf(", \"uri\": ");
			cli_json_string(stdout, t->uri);
			printf(", \"label\": ");
			cli_json_string(stdout, t->label);
			printf(", \"manufacturer\": ");
			cli_json_string(stdout, t->manufacturer);
			printf(", \"model\": ");
			cli_json_string(stdout, t->model);
			printf(", \"serial\": ");
			cli_json_string(stdout, t->serial);
			printf(", \"initialized\": %s, \"login_required\": %s, \"user_pin_set\": %s,"
			       " \"rsa\": %s, \"rsa_pss\": %s, \"ec\": %s, \"ed25519\": %s",
			       t->initialized ? "true" : "false", t->login_required ? "true" : "false",
			       t->user_pin_set ? "true" : "false", t->can_rsa ? "true" : "false",
			       t->can_rsa_pss ? "true" : "false", t->can_ec ? "true" : "false",
			       t->can_ed25519 ? "true" : "false");
		}
		printf("}");
	}
	printf("\n]\n");
}

static void print_text(const struct p11pki_token_info *ti, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		const struct p11pki_token_info *t = &ti[i];
		printf("slot %lu: %s\n", t->slot_id, t->slot_description);
		if (!t->present) {
			printf("  (no token)\n");
			continue;
		}
		if (!t->initialized) {
			printf("  uninitialised token (p11pki token init --label NAME)\n  uri: %s\n", t->uri);
			continue;
		}
		printf("  token: %s\n  uri: %s\n  manufacturer: %s\n  model: %s\n  serial: %s\n", t->label, t->uri,
		       t->manufacturer, t->model, t->serial);
		printf("  flags: initialized%s%s\n", t->login_required ? ", login-required" : "",
		       t->user_pin_set ? ", user-pin-set" : "");
		printf("  can: RSA %s, RSA-PSS %s, EC %s, Ed25519 %s\n", yes_no(t->can_rsa), yes_no(t->can_rsa_pss),
		       yes_no(t->can_ec), yes_no(t->can_ed25519));
	}
}

static int token_list(struct cli *c)
{
	struct p11pki_token_info *infos = NULL;
	size_t n = 0;
	int r;

	if ((r = cli_open_module(c)) != 0 || (r = p11pki_module_tokens(c->m, &infos, &n)) != 0)
		return cli_error(r);
	if (c->json)
		print_json(infos, n);
	else
		print_text(infos, n);
	p11pki_token_info_free(infos, n);
	return 0;
}

int cmd_token(struct cli *c, int argc, char **argv)
{
	const char *sub = argv[0];
	int r;

	if (strcmp(sub, "init") == 0)
		r = cli_parse(c, argc, argv, "label slot so-pin-source pin-source");
	else
		r = cli_parse(c, argc, argv, "json");
	if (r != 0)
		return r;
	if (c->argc > 0)
		return cli_usage("unexpected argument '%s'", c->argv[0]);
	if (strcmp(sub, "init") == 0)
		return token_init(c);
	if (strcmp(sub, "list") == 0)
		return token_list(c);
	return cli_usage("unknown command 'token %s' (try init or list)", sub);
}
