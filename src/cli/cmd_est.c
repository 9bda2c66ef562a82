/* p11pki est user add | list | delete: the users that may enroll over EST
 * (HTTP Basic) with one CA and profile. A new user's secret is random,
 * printed once and stored only as a hash. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <p11pki/ca.h>

#include "ca/store.h"
#include "cli/cli.h"
#include "online/secret_hash.h"

#define ROUTE_CA_MAX 64	     /* struct online_est_route ca[] */
#define ROUTE_PROFILE_MAX 32 /* and profile[] */

/* The CA exists in the store and the profile in the config, as the EST
 * routes will look them up. Returns 0 or an exit status. */
static int check_target(struct cli *c, p11pki_store *st)
{
	struct p11pki_store_ca rec;
	struct p11pki_profile prof;
	int r;

	if (c->ca == NULL || c->profile == NULL)
		return cli_usage("'est user add' needs --ca NAME and --profile NAME");
	if (strlen(c->ca) >= ROUTE_CA_MAX || strlen(c->profile) >= ROUTE_PROFILE_MAX)
		return cli_usage("--ca takes at most %d characters and --profile at most %d", ROUTE_CA_MAX - 1,
				 ROUTE_PROFILE_MAX - 1);
	memset(&rec, 0, sizeof(rec));
	if ((r = p11pki_store_ca_get(st, c->ca, &rec)) == P11PKI_E_NOTFOUND)
		p11pki_fail(r, "no CA named '%s' in the store: create it with 'p11pki ca init'", c->ca);
	if (r != 0)
		return cli_error(r);
	p11pki_store_ca_clear(&rec);
	if ((r = cli_config(c)) != 0 || (r = p11pki_profile_load(c->conf, c->profile, &prof)) != 0)
		return cli_error(r);
	p11pki_profile_clear(&prof);
	return 0;
}

/* A new secret and its hash; the secret stays in locked memory. */
static int new_secret(p11pki_secret **secret, char *hash, size_t size)
{
	int r;

	if ((r = p11pki_secret_new(P11PKI_EST_SECRET_SIZE, secret)) != 0 ||
	    (r = p11pki_est_secret_new((*secret)->data, (*secret)->cap)) != 0)
		return r;
	(*secret)->len = strlen((*secret)->data);
	return p11pki_est_secret_hash((*secret)->data, (*secret)->len, hash, size);
}

static int user_add(struct cli *c, p11pki_store *st)
{
	struct p11pki_store_est_user u;
	p11pki_secret *secret = NULL;
	char hash[P11PKI_EST_HASH_SIZE];
	const char *name = c->argv[0];
	int r;

	if (!p11pki_est_user_name_ok(name))
		return cli_usage("the EST user name is not valid: use 1 to 63 letters, digits, '.', '_', '@' or '-'");
	if ((r = check_target(c, st)) != 0)
		return r;
	if ((r = new_secret(&secret, hash, sizeof(hash))) != 0)
		goto fail;
	memset(&u, 0, sizeof(u));
	u.name = (char *)name;
	u.ca = (char *)c->ca;
	u.profile = (char *)c->profile;
	u.secret_hash = hash;
	u.created = time(NULL);
	if ((r = p11pki_store_est_user_add(st, &u)) != 0) {
		if (r == P11PKI_E_EXISTS)
			p11pki_fail(r, "an EST user named '%s' exists: delete it first with "
				       "'p11pki est user delete %s --yes'", name, name);
		goto fail;
	}
	printf("EST user '%s' added for CA '%s', profile '%s'\n", name, c->ca, c->profile);
	printf("secret: %s\n", secret->data);
	printf("Give the secret to the client now: it is not stored (only its hash) and is never shown again.\n");
	p11pki_secret_free(secret);
	return 0;
fail:
	p11pki_secret_free(secret);
	return cli_error(r);
}

static void print_time(time_t t, char *buf, size_t size)
{
	struct tm tm;

	strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
}

static void list_json(const struct p11pki_store_est_user *users, size_t n)
{
	char when[32];
	size_t i;

	printf("[");
	for (i = 0; i < n; i++) {
		print_time(users[i].created, when, sizeof(when));
		printf("%s\n  {\"name\": ", i ? "," : "");
		cli_json_string(stdout, users[i].name);
		printf(", \"ca\": ");
		cli_json_string(stdout, users[i].ca);
		printf(", \"profile\": ");
		cli_json_string(stdout, users[i].profile);
		printf(", \"created\": \"%s\", \"disabled\": %s}", when, users[i].disabled ? "true" : "false");
	}
	printf("\n]\n");
}

static void list_text(const struct p11pki_store_est_user *users, size_t n)
{
	char when[32];
	size_t i;

	for (i = 0; i < n; i++) {
		print_time(users[i].created, when, sizeof(when));
		printf("%-20s ca %-12s profile %-8s created %s%s\n", users[i].name, users[i].ca, users[i].profile, when,
		       users[i].disabled ? "  disabled" : "");
	}
}

static int user_list(struct cli *c, p11pki_store *st)
{
	struct p11pki_store_est_user *users = NULL;
	size_t n = 0;
	int r;

	if ((r = p11pki_store_est_user_list(st, &users, &n)) != 0)
		return cli_error(r);
	if (c->json)
		list_json(users, n);
	else
		list_text(users, n);
	p11pki_store_est_user_list_free(users, n);
	return 0;
}

static int user_delete(struct cli *c, p11pki_store *st)
{
	const char *name = c->argv[0];
	int r;

	if (!c->yes)
		return cli_usage("deleting EST user '%s' needs --yes", p11pki_est_user_name_ok(name) ? name : "(name)");
	if ((r = p11pki_store_est_user_delete(st, name)) != 0)
		return cli_error(r);
	printf("deleted EST user '%s'; certificates issued to it stay valid\n", name);
	return 0;
}

static const struct {
	const char *name, *options;
	int args; /* positional: the user name, or none */
	int (*run)(struct cli *c, p11pki_store *st);
} commands[] = {
	{ "add", "ca profile", 1, user_add },
	{ "list", "json", 0, user_list },
	{ "delete", "yes", 1, user_delete },
};

int cmd_est(struct cli *c, int argc, char **argv)
{
	p11pki_store *st = NULL;
	size_t i;
	int r;

	if (strcmp(argv[0], "user") != 0)
		return cli_usage("unknown command 'est %s' (try 'est user add', 'est user list' or 'est user delete')",
				 argv[0]);
	if (argc < 2 || argv[1][0] == '-')
		return cli_usage("'est user' needs a command: add, list or delete");
	c->group = "est user";
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[1], commands[i].name) != 0)
			continue;
		if ((r = cli_parse(c, argc - 1, argv + 1, commands[i].options)) != 0)
			return r;
		if (c->argc < commands[i].args)
			return cli_usage("'est user %s' needs the user's name", commands[i].name);
		if (c->argc > commands[i].args)
			return cli_usage("unexpected argument '%s'", c->argv[commands[i].args]);
		if ((r = cli_open_store(c, &st)) != 0)
			return cli_error(r);
		r = commands[i].run(c, st);
		p11pki_store_close(st);
		return r;
	}
	return cli_usage("unknown command 'est user %s' (try add, list or delete)", argv[1]);
}
