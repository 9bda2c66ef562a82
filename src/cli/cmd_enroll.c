/* p11pki enroll | renew: a key on a token and its certificate from an EST
 * server (RFC 7030), each in one command.
 *
 * enroll: GET /cacerts first (the server and --ca-file are proven before
 *   anything is made), then the key is generated on the token, the request
 *   signed there, POST simpleenroll with HTTP Basic, the certificate checked
 *   against the token key, stored next to it with its chain. A failure
 *   after the key was made deletes the key again.
 * renew: the key --object and its newest certificate; only when that
 *   expires within --within: simplereenroll over mutual TLS with the two,
 *   same subject and subjectAltNames. The new certificate is stored before
 *   the old one (with --rekey: the old key pair) is deleted. */
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <p11pki/ca.h>

#include "cli/output.h"
#include "online/est_client.h"

#define EXIT_PENDING 75		/* EX_TEMPFAIL: the CA holds the request, try later */
#define DEFAULT_WITHIN "30d"
#define DEFAULT_TYPE "ec:p256"
#define NEW_ID_LEN 16
#define MAX_CHAIN 16

/* What one enroll or renew run has at hand, and what it must undo. */
struct run {
	struct cli *c;
	const char *cmd;			/* "enroll" or "renew", for messages */
	struct p11pki_est_client est;
	struct p11pki_est_reply reply;
	int not_client_cert;			/* renew: the certificate lacks TLS client usage */
	p11pki_secret *secret;
	STACK_OF(X509) *cacerts;
	/* the key pair this run made, deleted again if the run fails */
	int made_key;
	char label[256];
	unsigned char new_id[64];
	size_t new_id_len;
	char *key_uri;
	/* what is printed at the end, once everything is stored */
	char *cert_uri;
	char *chain_uris[MAX_CHAIN];
	size_t n_chain;
};

static void run_clear(struct run *run)
{
	size_t i;

	p11pki_secret_free(run->secret);
	sk_X509_pop_free(run->cacerts, X509_free);
	free(run->key_uri);
	free(run->cert_uri);
	for (i = 0; i < run->n_chain; i++)
		free(run->chain_uris[i]);
}

/* A selection of one key pair by label and id, pointing into run. */
static void key_selection(const char *label, unsigned char *id, size_t id_len, struct p11pki_uri *sel)
{
	memset(sel, 0, sizeof(*sel));
	sel->object = (char *)label;
	sel->id = id;
	sel->id_len = id_len;
}

static void time_text(time_t t, char *buf, size_t size)
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || strftime(buf, size, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(buf, size, "?");
}

/* ---- failing cleanly ------------------------------------------------------ */

/* What the user can do about an EST answer. */
static const char *hint_for(const struct run *run)
{
	int renew = strcmp(run->cmd, "renew") == 0;

	/* OpenSSL servers check a client certificate for the clientAuth usage */
	if (renew && run->not_client_cert && (run->reply.status == 401 || run->reply.status == 403))
		return "the current certificate has no TLS client usage (extendedKeyUsage clientAuth), which some "
		       "servers require of a client certificate: ask the CA, or enroll again with a profile that has it";
	switch (run->reply.status) {
	case 401:
		return renew ? "the server did not accept the current certificate (or --user and the secret)"
			     : "check --user and the secret";
	case 202:
		return "run the command again later";
	default:
		return NULL;
	}
}

/* Deletes the key pair this run made; says how that went in note. */
static void undo_key(struct run *run, char *note, size_t size)
{
	struct p11pki_uri sel;

	key_selection(run->label, run->new_id, run->new_id_len, &sel);
	if (p11pki_key_delete(run->c->t, &sel, NULL) == 0)
		snprintf(note, size, " (the new key '%s' was removed from token '%s')", run->label,
			 p11pki_token_label(run->c->t));
	else
		snprintf(note, size, " (removing the new key failed: delete it with 'p11pki key delete %s --yes')",
			 run->key_uri != NULL ? run->key_uri : run->label);
	run->made_key = 0;
}

/* One line "p11pki: <cmd>: <what failed>[: <hint>][ (<undo>)]"; returns
 * the exit status (75 while the CA holds the request). */
static int run_failed(struct run *run, int r)
{
	char msg[512], note[400] = "";
	const char *hint = hint_for(run);
	int status;

	snprintf(msg, sizeof(msg), "%s", p11pki_errmsg());
	if (run->made_key)
		undo_key(run, note, sizeof(note));
	p11pki_fail(r, "%s: %s%s%s%s", run->cmd, msg, hint != NULL ? ": " : "", hint != NULL ? hint : "", note);
	status = cli_error(r);
	return run->reply.status == 202 ? EXIT_PENDING : status;
}

/* ---- the EST side ------------------------------------------------------------ */

/* Copies the current message with "PIN file" said as "file": the secret
 * is read by the PIN-source code but is no PIN. */
static int secret_failed(int r)
{
	char msg[512], *p;

	snprintf(msg, sizeof(msg), "%s", p11pki_errmsg());
	if ((p = strstr(msg, "PIN file")) != NULL)
		memmove(p, p + 4, strlen(p + 4) + 1);
	return p11pki_fail(r, "the EST secret: %s", msg);
}

/* The secret of --user, from --secret-env or --secret-file (never argv). */
static int read_secret(struct cli *c, p11pki_secret **out)
{
	char spec[PATH_MAX + 8];
	const char *where = c->secret_env != NULL ? c->secret_env : c->secret_file;
	int r;

	*out = NULL;
	if (c->user == NULL)
		return P11PKI_OK;
	if (snprintf(spec, sizeof(spec), "%s%s", c->secret_env != NULL ? "env:" : "file:", where) >= (int)sizeof(spec))
		return p11pki_fail(P11PKI_E_ARG, "--secret-file path too long");
	if ((r = p11pki_pin_read(spec, out)) != 0)
		return secret_failed(r);
	return P11PKI_OK;
}

/* Checks the EST options; returns 0 or the usage exit status. */
static int est_usage(struct cli *c, const char *cmd, int need_user)
{
	if (c->server == NULL || c->ca_file == NULL)
		return cli_usage("%s needs --server https://HOST[:PORT] and --ca-file FILE (the CA certificates that "
				 "check the server)", cmd);
	if (c->secret_env != NULL && c->secret_file != NULL)
		return cli_usage("give --secret-env or --secret-file, not both");
	if (c->user == NULL && (c->secret_env != NULL || c->secret_file != NULL))
		return cli_usage("--secret-env and --secret-file go with --user");
	if (need_user && c->user == NULL)
		return cli_usage("%s needs --user NAME with --secret-env NAME or --secret-file PATH: the EST user "
				 "the CA operator made ('p11pki est user add')", cmd);
	if (c->user != NULL && c->secret_env == NULL && c->secret_file == NULL)
		return cli_usage("--user needs its secret: --secret-env NAME or --secret-file PATH (never on the "
				 "command line)");
	return 0;
}

static void est_setup(struct run *run)
{
	struct cli *c = run->c;

	run->est.server = c->server;
	run->est.ca_file = c->ca_file;
	run->est.label = c->est_label;
	run->est.user = c->user;
	run->est.secret = run->secret;
	run->reply.retry_after = -1;
}

/* The certificate among those the server returned that carries pub. */
static int pick_issued(STACK_OF(X509) *certs, EVP_PKEY *pub, X509 **out)
{
	char subject[256];
	int i;

	*out = NULL;
	for (i = 0; i < sk_X509_num(certs) && *out == NULL; i++)
		if (EVP_PKEY_eq(X509_get0_pubkey(sk_X509_value(certs, i)), pub) == 1)
			*out = sk_X509_value(certs, i);
	ERR_clear_error(); /* EVP_PKEY_eq leaves type mismatches behind */
	if (*out != NULL)
		return P11PKI_OK;
	X509_NAME_oneline(X509_get_subject_name(sk_X509_value(certs, 0)), subject, sizeof(subject));
	return p11pki_fail(P11PKI_E_CRYPTO, "the server returned a certificate ('%s') for another key than the "
			   "one on the token", subject);
}

/* ---- storing on the token ------------------------------------------------------ */

/* The issuers of leaf among what /cacerts and the enrollment answer gave,
 * up to the root, stored as CA certificates (one already there is fine). */
static int store_chain(struct run *run, X509 *leaf, STACK_OF(X509) *answer)
{
	STACK_OF(X509) *pool = sk_X509_new_null(), *chain = NULL;
	char *uri = NULL;
	int i, r = P11PKI_OK, complete = 0;

	if (pool == NULL)
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
	for (i = 0; i < sk_X509_num(run->cacerts) && r == 0; i++)
		if (!sk_X509_push(pool, sk_X509_value(run->cacerts, i)))
			r = p11pki_fail(P11PKI_E_NOMEM, "out of memory");
	for (i = 0; i < sk_X509_num(answer) && r == 0; i++)
		if (sk_X509_value(answer, i) != leaf && !sk_X509_push(pool, sk_X509_value(answer, i)))
			r = p11pki_fail(P11PKI_E_NOMEM, "out of memory");
	if (r == 0)
		r = p11pki_chain_build(leaf, pool, P11PKI_CHAIN_ROOT, &chain, &complete);
	for (i = 0; r == 0 && i < sk_X509_num(chain); i++) {
		r = p11pki_cert_store_ca(run->c->t, sk_X509_value(chain, i), NULL, &uri);
		if (r == P11PKI_E_EXISTS) {
			r = P11PKI_OK;
			continue;
		}
		if (r == 0 && run->n_chain < MAX_CHAIN)
			run->chain_uris[run->n_chain++] = uri;
		else
			free(uri);
		uri = NULL;
	}
	if (r == 0 && !complete)
		fprintf(stderr, "p11pki: %s: warning: the server's CA certificates do not reach a root from the new "
			"certificate: the chain on token '%s' is incomplete\n", run->cmd, p11pki_token_label(run->c->t));
	sk_X509_pop_free(chain, X509_free);
	sk_X509_free(pool);
	return r;
}

/* The certificate next to its key (same label and CKA_ID), then its chain. */
static int store_issued(struct run *run, X509 *cert, STACK_OF(X509) *answer)
{
	int r;

	if ((r = p11pki_cert_import(run->c->t, cert, &run->cert_uri)) != 0)
		return r;
	return store_chain(run, cert, answer);
}

static void print_issued(const struct run *run, X509 *cert)
{
	char *subject = NULL, *serial = p11pki_cert_serial_hex(cert), until[40] = "?";
	time_t t;
	size_t i;

	(void)p11pki_name_format(X509_get_subject_name(cert), &subject);
	if (p11pki_est_client_not_after(cert, &t) == 0)
		time_text(t, until, sizeof(until));
	printf("key: %s\ncertificate: %s\n", run->key_uri != NULL ? run->key_uri : "?",
	       run->cert_uri != NULL ? run->cert_uri : "?");
	for (i = 0; i < run->n_chain; i++)
		printf("chain: %s\n", run->chain_uris[i]);
	printf("subject: %s\nserial: %s\nnot after: %s\n", subject != NULL ? subject : "?",
	       serial != NULL ? serial : "?", until);
	free(subject);
	OPENSSL_free(serial);
}

/* ---- a new key ---------------------------------------------------------------- */

/* Generates a key pair with a fresh CKA_ID (or --id) and the run's label;
 * from here on a failure deletes it. */
static int make_key(struct run *run, const struct p11pki_keytype *type, int reuse_label)
{
	struct p11pki_keygen p;
	int r;

	memset(&p, 0, sizeof(p));
	if (run->c->id_hex != NULL && !reuse_label) {
		if ((r = cli_parse_hex_id(run->c->id_hex, run->new_id, &run->new_id_len)) != 0)
			return r;
	} else {
		if (RAND_bytes(run->new_id, NEW_ID_LEN) != 1)
			return p11pki_fail(P11PKI_E_CRYPTO, "no random bytes for a key id");
		run->new_id_len = NEW_ID_LEN;
	}
	p.type = *type;
	p.label = run->label;
	p.id = run->new_id;
	p.id_len = run->new_id_len;
	p.reuse_label = reuse_label;
	free(run->key_uri);
	run->key_uri = NULL;
	if ((r = p11pki_key_generate(run->c->t, &p, &run->key_uri)) != 0)
		return r;
	run->made_key = 1;
	return P11PKI_OK;
}

/* The new key's signing handle and public key. */
static int load_new_key(struct run *run, EVP_PKEY **key, EVP_PKEY **pub)
{
	struct p11pki_uri sel;
	int r;

	key_selection(run->label, run->new_id, run->new_id_len, &sel);
	if ((r = p11pki_key_load(run->c->t, &sel, key)) != 0)
		return r;
	return p11pki_key_public(run->c->t, &sel, pub);
}

/* ---- enroll -------------------------------------------------------------------- */

/* The key's label: --label, else the subject's CN. */
static int enroll_label(struct run *run, const X509_NAME *subject)
{
	int i = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
	unsigned char *cn = NULL;

	if (run->c->label != NULL) {
		snprintf(run->label, sizeof(run->label), "%s", run->c->label);
		return 0;
	}
	if (i < 0 || ASN1_STRING_to_UTF8(&cn, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i))) <= 0 ||
	    strlen((char *)cn) >= sizeof(run->label)) {
		OPENSSL_free(cn);
		return cli_usage("enroll needs --label NAME for the key: the subject has no usable CN");
	}
	snprintf(run->label, sizeof(run->label), "%s", (char *)cn);
	OPENSSL_free(cn);
	return 0;
}

/* Key, request, simpleenroll, check, store: the part that undoes the key. */
static int enroll_key(struct run *run, const struct p11pki_keytype *type, X509_NAME *subject, GENERAL_NAMES *sans,
		      X509 **issued, STACK_OF(X509) **answer)
{
	EVP_PKEY *key = NULL, *pub = NULL;
	X509_REQ *req = NULL;
	int r;

	if ((r = make_key(run, type, 0)) != 0 || (r = load_new_key(run, &key, &pub)) != 0 ||
	    (r = p11pki_csr_build(key, subject, sans, &req)) != 0 ||
	    (r = p11pki_est_client_enroll(&run->est, req, 0, answer, &run->reply)) != 0 ||
	    (r = pick_issued(*answer, pub, issued)) != 0)
		goto out;
	r = store_issued(run, *issued, *answer);
out:
	X509_REQ_free(req);
	EVP_PKEY_free(key);
	EVP_PKEY_free(pub);
	return r;
}

static int enroll(struct run *run)
{
	struct cli *c = run->c;
	struct p11pki_keytype type;
	X509_NAME *subject = NULL;
	GENERAL_NAMES *sans = NULL;
	STACK_OF(X509) *answer = NULL;
	X509 *issued = NULL;
	int r;

	if ((r = est_usage(c, "enroll", 1)) != 0)
		return r;
	if (c->token == NULL)
		return cli_usage("enroll needs --token LABEL: the token the key is made on");
	if ((r = p11pki_keytype_parse(c->type != NULL ? c->type : DEFAULT_TYPE, &type)) != 0)
		return cli_error(r);
	if ((r = cli_names(c, &subject, &sans)) != 0 || (r = enroll_label(run, subject)) != 0)
		goto out;
	if ((r = read_secret(c, &run->secret)) != 0) {
		r = run_failed(run, r);
		goto out;
	}
	est_setup(run);
	if ((r = cli_open_token(c, NULL, 1)) != 0 ||
	    (r = p11pki_est_client_cacerts(&run->est, &run->cacerts, &run->reply)) != 0 ||
	    (r = enroll_key(run, &type, subject, sans, &issued, &answer)) != 0) {
		r = run_failed(run, r);
		goto out;
	}
	run->made_key = 0; /* stored: it stays */
	print_issued(run, issued);
out:
	sk_X509_pop_free(answer, X509_free);
	X509_NAME_free(subject);
	GENERAL_NAMES_free(sans);
	return r;
}

int cmd_enroll(struct cli *c, int argc, char **argv)
{
	struct run run;
	int r;

	memset(&run, 0, sizeof(run));
	run.c = c;
	run.cmd = "enroll";
	signal(SIGPIPE, SIG_IGN); /* a server that closes early is an error, not a kill */
	if ((r = cli_parse(c, argc, argv,
			   "token pin-source type label id subject san server ca-file user secret-env secret-file "
			   "est-label")) != 0)
		return r;
	if (c->argc > 0)
		r = cli_usage("enroll takes no arguments, only options");
	else
		r = enroll(&run);
	run_clear(&run);
	return r;
}

/* ---- renew --------------------------------------------------------------------- */

/* What renew replaces: the key pair and its newest certificate. */
struct current {
	struct p11pki_key_info *keys;	/* the one key pair (keys[0]) */
	size_t n_keys;
	struct p11pki_cert_info *certs;	/* every certificate of that key */
	size_t n_certs;
	X509 *cert;			/* the newest of them (borrowed) */
	time_t not_after;
};

static void current_clear(struct current *cur)
{
	p11pki_key_info_free(cur->keys, cur->n_keys);
	p11pki_cert_info_free(cur->certs, cur->n_certs);
}

/* The key pair --object (and --id) names: exactly one. */
static int find_key(struct cli *c, struct current *cur)
{
	struct p11pki_uri sel;
	unsigned char id[64];
	size_t id_len = 0;
	const char *tok = p11pki_token_label(c->t);
	int r;

	if (c->id_hex != NULL && (r = cli_parse_hex_id(c->id_hex, id, &id_len)) != 0)
		return r;
	key_selection(c->object, c->id_hex != NULL ? id : NULL, id_len, &sel);
	if ((r = p11pki_key_list(c->t, &sel, &cur->keys, &cur->n_keys)) != 0)
		return r;
	if (cur->n_keys == 0)
		return p11pki_fail(P11PKI_E_NOTFOUND, "no key '%s' on token '%s': run 'p11pki key list --token %s'",
				   c->object, tok, tok);
	if (cur->n_keys > 1)
		return p11pki_fail(P11PKI_E_ARG, "%zu keys are labelled '%s' on token '%s' (an interrupted --rekey?): "
				   "choose one with --id HEX ('p11pki key list --token %s' shows them)",
				   cur->n_keys, c->object, tok, tok);
	if (cur->keys[0].id_len == 0 || !cur->keys[0].has_private)
		return p11pki_fail(P11PKI_E_UNSUPPORTED, "key '%s' on token '%s' has no private key with a CKA_ID",
				   c->object, tok);
	return P11PKI_OK;
}

/* The key's certificates (same CKA_ID and public key); the newest one is
 * what renew replaces. */
static int find_certs(struct cli *c, struct current *cur)
{
	struct p11pki_key_info *k = &cur->keys[0];
	struct p11pki_uri sel;
	EVP_PKEY *pub = NULL;
	time_t t;
	size_t i;
	int r;

	key_selection(k->label, k->id, k->id_len, &sel);
	if ((r = p11pki_key_public(c->t, &sel, &pub)) != 0)
		return r;
	sel.object = NULL;
	sel.type = P11PKI_OBJ_CERT;
	if ((r = p11pki_cert_list(c->t, &sel, &cur->certs, &cur->n_certs)) != 0)
		goto out;
	for (i = 0; i < cur->n_certs; i++) {
		X509 *x = cur->certs[i].cert;
		if (EVP_PKEY_eq(X509_get0_pubkey(x), pub) != 1 || p11pki_est_client_not_after(x, &t) != 0) {
			/* another key's certificate under the same id: not ours to touch */
			X509_free(x);
			cur->certs[i].cert = NULL;
			continue;
		}
		if (cur->cert == NULL || t > cur->not_after) {
			cur->cert = x;
			cur->not_after = t;
		}
	}
	ERR_clear_error();
	if (cur->cert == NULL)
		r = p11pki_fail(P11PKI_E_NOTFOUND, "key '%s' on token '%s' has no certificate: get one with 'p11pki "
				"enroll' or 'p11pki cert import'", c->object, p11pki_token_label(c->t));
out:
	EVP_PKEY_free(pub);
	return r;
}

static int type_of(const struct p11pki_key_info *k, const char *given, struct p11pki_keytype *type)
{
	char name[32];

	if (given != NULL)
		return p11pki_keytype_parse(given, type);
	if (k->kind == P11PKI_KEY_RSA)
		snprintf(name, sizeof(name), "rsa:%u", k->bits);
	else if (k->kind == P11PKI_KEY_EC && k->curve != NULL && strcmp(k->curve, "P-256") == 0)
		snprintf(name, sizeof(name), "ec:p256");
	else if (k->kind == P11PKI_KEY_EC && k->curve != NULL && strcmp(k->curve, "P-384") == 0)
		snprintf(name, sizeof(name), "ec:p384");
	else
		return p11pki_fail(P11PKI_E_UNSUPPORTED, "key '%s' is of a type --rekey cannot make again: give --type",
				   k->label != NULL ? k->label : "");
	return p11pki_keytype_parse(name, type);
}

/* The request's key: with --rekey a new pair with the same label. */
static int renew_signer(struct run *run, const struct current *cur, EVP_PKEY *old_key, EVP_PKEY **key, EVP_PKEY **pub)
{
	struct p11pki_keytype type;
	int r;

	if (!run->c->rekey) {
		*key = old_key;
		EVP_PKEY_up_ref(old_key);
		*pub = X509_get_pubkey(cur->cert);
		return *pub != NULL ? P11PKI_OK : p11pki_fail(P11PKI_E_CRYPTO, "the certificate's public key is unreadable");
	}
	if ((r = type_of(&cur->keys[0], run->c->type, &type)) != 0 || (r = make_key(run, &type, 1)) != 0)
		return r;
	return load_new_key(run, key, pub);
}

/* The old certificates of the key, or with --rekey the old key pair. */
static int remove_old(struct run *run, struct current *cur, X509 *issued)
{
	struct p11pki_key_info *k = &cur->keys[0];
	struct p11pki_uri sel;
	size_t i;
	int r = P11PKI_OK;

	if (run->c->rekey) {
		key_selection(k->label, k->id, k->id_len, &sel);
		return p11pki_key_delete(run->c->t, &sel, NULL);
	}
	for (i = 0; i < cur->n_certs && r == 0; i++)
		if (cur->certs[i].cert != NULL && X509_cmp(cur->certs[i].cert, issued) != 0)
			r = p11pki_cert_delete(run->c->t, cur->certs[i].cert, NULL);
	return r;
}

/* The issuers of cert among the token's CA certificates (enroll stored
 * them), sent with it so that a server trusting only the root accepts it. */
static int token_chain(struct cli *c, X509 *cert, STACK_OF(X509) **out)
{
	struct p11pki_cert_info *all = NULL;
	STACK_OF(X509) *pool = sk_X509_new_null();
	size_t n = 0, i;
	int r;

	*out = NULL;
	if (pool == NULL)
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
	if ((r = p11pki_cert_list(c->t, NULL, &all, &n)) != 0)
		goto out;
	for (i = 0; i < n; i++)
		if (all[i].is_ca && !sk_X509_push(pool, all[i].cert)) {
			r = p11pki_fail(P11PKI_E_NOMEM, "out of memory");
			goto out;
		}
	r = p11pki_chain_build(cert, pool, 0, out, NULL);
out:
	sk_X509_free(pool);
	p11pki_cert_info_free(all, n);
	return r;
}

/* Request, simplereenroll, check, store the new; the part that undoes a
 * --rekey key. */
static int reenroll(struct run *run, struct current *cur, X509 **issued, STACK_OF(X509) **answer)
{
	struct p11pki_key_info *k = &cur->keys[0];
	EVP_PKEY *old_key = NULL, *key = NULL, *pub = NULL;
	GENERAL_NAMES *sans = X509_get_ext_d2i(cur->cert, NID_subject_alt_name, NULL, NULL);
	STACK_OF(X509) *chain = NULL;
	struct p11pki_uri sel;
	X509_REQ *req = NULL;
	int r;

	key_selection(k->label, k->id, k->id_len, &sel);
	if ((r = p11pki_key_load(run->c->t, &sel, &old_key)) != 0 ||
	    (r = token_chain(run->c, cur->cert, &chain)) != 0)
		goto out;
	run->est.key = old_key;
	run->est.cert = cur->cert;
	run->est.chain = chain;
	if ((r = p11pki_est_client_cacerts(&run->est, &run->cacerts, &run->reply)) != 0 ||
	    (r = renew_signer(run, cur, old_key, &key, &pub)) != 0 ||
	    (r = p11pki_csr_build(key, X509_get_subject_name(cur->cert), sans, &req)) != 0 ||
	    (r = p11pki_est_client_enroll(&run->est, req, 1, answer, &run->reply)) != 0 ||
	    (r = pick_issued(*answer, pub, issued)) != 0)
		goto out;
	if (!run->c->rekey && k->uri != NULL && (run->key_uri = strdup(k->uri)) == NULL) {
		r = p11pki_fail(P11PKI_E_NOMEM, "out of memory");
		goto out;
	}
	r = store_issued(run, *issued, *answer);
out:
	run->est.key = NULL;
	run->est.cert = NULL;
	run->est.chain = NULL;
	sk_X509_pop_free(chain, X509_free);
	GENERAL_NAMES_free(sans);
	X509_REQ_free(req);
	EVP_PKEY_free(old_key);
	EVP_PKEY_free(key);
	EVP_PKEY_free(pub);
	return r;
}

static void print_not_due(struct cli *c, const struct current *cur)
{
	char until[40], *subject = NULL;

	time_text(cur->not_after, until, sizeof(until));
	(void)p11pki_name_format(X509_get_subject_name(cur->cert), &subject);
	printf("renew: certificate '%s' of key '%s' on token '%s' is valid until %s, more than %s away: nothing to do\n",
	       subject != NULL ? subject : "?", c->object, p11pki_token_label(c->t), until,
	       c->within != NULL ? c->within : DEFAULT_WITHIN);
	free(subject);
}

static int renew(struct run *run)
{
	struct cli *c = run->c;
	struct current cur;
	STACK_OF(X509) *answer = NULL;
	X509 *issued = NULL;
	char *old_serial = NULL;
	long within;
	int r;

	memset(&cur, 0, sizeof(cur));
	if ((r = est_usage(c, "renew", 0)) != 0)
		return r;
	if (c->token == NULL || c->object == NULL)
		return cli_usage("renew needs --token LABEL and --object LABEL: the key whose certificate it renews");
	if (c->type != NULL && !c->rekey)
		return cli_usage("--type goes with --rekey: without it the key stays as it is");
	if ((r = p11pki_duration_parse(c->within != NULL ? c->within : DEFAULT_WITHIN, &within)) != 0)
		return cli_error(r);
	if ((r = cli_open_token(c, NULL, 1)) != 0 || (r = find_key(c, &cur)) != 0 || (r = find_certs(c, &cur)) != 0)
		goto fail;
	if (!p11pki_est_client_due(cur.not_after, time(NULL), within)) {
		print_not_due(c, &cur);
		goto out;
	}
	snprintf(run->label, sizeof(run->label), "%s", cur.keys[0].label != NULL ? cur.keys[0].label : c->object);
	run->not_client_cert = X509_check_purpose(cur.cert, X509_PURPOSE_SSL_CLIENT, 0) != 1;
	old_serial = p11pki_cert_serial_hex(cur.cert);
	if ((r = read_secret(c, &run->secret)) != 0)
		goto fail;
	est_setup(run);
	if ((r = reenroll(run, &cur, &issued, &answer)) != 0)
		goto fail;
	run->made_key = 0; /* the new certificate is stored: the new key stays */
	if ((r = remove_old(run, &cur, issued)) != 0) {
		char msg[512];
		snprintf(msg, sizeof(msg), "%s", p11pki_errmsg());
		r = p11pki_fail(r, "the new certificate is stored, but removing the old %s failed: %s",
				c->rekey ? "key pair" : "certificate", msg);
		goto fail;
	}
	print_issued(run, issued);
	printf("replaced: serial %s\n", old_serial != NULL ? old_serial : "?");
	goto out;
fail:
	r = run_failed(run, r);
out:
	OPENSSL_free(old_serial);
	sk_X509_pop_free(answer, X509_free);
	current_clear(&cur);
	return r;
}

int cmd_renew(struct cli *c, int argc, char **argv)
{
	struct run run;
	int r;

	memset(&run, 0, sizeof(run));
	run.c = c;
	run.cmd = "renew";
	signal(SIGPIPE, SIG_IGN); /* a server that closes early is an error, not a kill */
	if ((r = cli_parse(c, argc, argv,
			   "token pin-source object id server ca-file est-label within rekey type user secret-env "
			   "secret-file")) != 0)
		return r;
	if (c->argc > 0)
		r = cli_usage("renew takes no arguments, only options");
	else
		r = renew(&run);
	run_clear(&run);
	return r;
}
