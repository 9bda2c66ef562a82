/* p11pki key gen | list | pub | audit | delete */
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include "cli/cli.h"

int cli_parse_hex_id(const char *hex, unsigned char *id, size_t *len)
{
	size_t n = strlen(hex), i;

	if (n == 0 || n % 2 != 0 || n / 2 > 64)
		return p11pki_fail(P11PKI_E_ARG, "--id '%s' must be 2 to 128 hex digits", hex);
	for (i = 0; i < n / 2; i++) {
		unsigned v;
		if (sscanf(hex + 2 * i, "%2x", &v) != 1 || strchr("0123456789abcdefABCDEF", hex[2 * i]) == NULL ||
		    strchr("0123456789abcdefABCDEF", hex[2 * i + 1]) == NULL)
			return p11pki_fail(P11PKI_E_ARG, "--id '%s' is not hex", hex);
		id[i] = (unsigned char)v;
	}
	*len = n / 2;
	return P11PKI_OK;
}

static int key_gen(struct cli *c)
{
	struct p11pki_keygen p;
	unsigned char id[64];
	char *uri = NULL;
	int r;

	memset(&p, 0, sizeof(p));
	if (c->type == NULL || c->label == NULL)
		return cli_usage("key gen needs --type and --label");
	if ((r = p11pki_keytype_parse(c->type, &p.type)) != 0)
		return cli_error(r);
	if (c->id_hex != NULL) {
		if ((r = cli_parse_hex_id(c->id_hex, id, &p.id_len)) != 0)
			return cli_error(r);
		p.id = id;
	}
	p.label = c->label;
	p.extractable = c->extractable;
	if ((r = cli_open_token(c, c->argc > 0 ? c->argv[0] : NULL, 1)) != 0 ||
	    (r = p11pki_key_generate(c->t, &p, &uri)) != 0)
		return cli_error(r);
	printf("%s\n", uri);
	free(uri);
	return 0;
}

static const char *kind_name(const struct p11pki_key_info *k)
{
	switch (k->kind) {
	case P11PKI_KEY_RSA: return "rsa";
	case P11PKI_KEY_EC: return "ec";
	case P11PKI_KEY_ED25519: return "ed25519";
	default: return "other";
	}
}

static const char *tri(int v)
{
	return v < 0 ? "?" : v ? "yes" : "no";
}

static const char *json_tri(int v)
{
	return v < 0 ? "null" : v ? "true" : "false";
}

static void list_json(const struct p11pki_key_info *keys, size_t n)
{
	size_t i;

	printf("[");
	for (i = 0; i < n; i++) {
		const struct p11pki_key_info *k = &keys[i];
		printf("%s\n  {\"uri\": ", i ? "," : "");
		cli_json_string(stdout, k->uri);
		printf(", \"label\": ");
		cli_json_string(stdout, k->label);
		printf(", \"type\": \"%s\", \"bits\": %u, \"curve\": ", kind_name(k), k->bits);
		if (k->curve != NULL)
			cli_json_string(stdout, k->curve);
		else
			printf("null");
		printf(", \"private\": %s, \"public\": %s, \"sensitive\": %s, \"extractable\": %s,"
		       " \"always_sensitive\": %s, \"never_extractable\": %s, \"local\": %s}",
		       k->has_private ? "true" : "false", k->has_public ? "true" : "false", json_tri(k->sensitive),
		       json_tri(k->extractable), json_tri(k->always_sensitive), json_tri(k->never_extractable),
		       json_tri(k->local));
	}
	printf("\n]\n");
}

static void list_text(const struct p11pki_key_info *keys, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		const struct p11pki_key_info *k = &keys[i];
		if (k->curve != NULL)
			printf("%s\n  type: %s %s\n", k->uri, kind_name(k), k->curve);
		else
			printf("%s\n  type: %s %u\n", k->uri, kind_name(k), k->bits);
		printf("  objects: %s%s%s\n", k->has_private ? "private" : "", k->has_private && k->has_public ? " + " : "",
		       k->has_public ? "public" : "");
		if (k->has_private)
			printf("  sensitive=%s extractable=%s always_sensitive=%s never_extractable=%s local=%s\n",
			       tri(k->sensitive), tri(k->extractable), tri(k->always_sensitive),
			       tri(k->never_extractable), tri(k->local));
	}
}

static int key_list(struct cli *c)
{
	struct p11pki_key_info *keys = NULL;
	size_t n = 0;
	int r;

	if ((r = cli_open_token(c, c->argc > 0 ? c->argv[0] : NULL, 1)) != 0 ||
	    (r = p11pki_key_list(c->t, c->uri, &keys, &n)) != 0)
		return cli_error(r);
	if (c->json)
		list_json(keys, n);
	else
		list_text(keys, n);
	p11pki_key_info_free(keys, n);
	return 0;
}

static int write_pub(const char *path, EVP_PKEY *pub)
{
	BIO *mem = BIO_new(BIO_s_mem());
	char *pem;
	long len;
	int r;

	if (mem == NULL || PEM_write_bio_PUBKEY(mem, pub) != 1) {
		BIO_free(mem);
		return p11pki_fail(P11PKI_E_CRYPTO, "cannot encode the public key");
	}
	len = BIO_get_mem_data(mem, &pem);
	r = cli_write_file(path, pem, (size_t)len, 0644);
	BIO_free(mem);
	return r;
}

static int need_uri(struct cli *c, const char *what)
{
	if (c->argc < 1)
		return cli_usage("key %s needs a key URI, e.g. 'pkcs11:token=web;object=www'", what);
	return 0;
}

static int key_pub(struct cli *c)
{
	EVP_PKEY *pub = NULL;
	int r;

	if ((r = need_uri(c, "pub")) != 0)
		return r;
	if ((r = cli_open_token(c, c->argv[0], 1)) != 0 || (r = p11pki_key_public(c->t, c->uri, &pub)) != 0 ||
	    (r = write_pub(c->output, pub)) != 0) {
		EVP_PKEY_free(pub);
		return cli_error(r);
	}
	EVP_PKEY_free(pub);
	return 0;
}

static int key_audit(struct cli *c)
{
	struct p11pki_key_audit a;
	int r, safe;

	if ((r = need_uri(c, "audit")) != 0)
		return r;
	if ((r = cli_open_token(c, c->argv[0], 1)) != 0 || (r = p11pki_key_audit(c->t, c->uri, &a)) != 0)
		return cli_error(r);
	safe = strcmp(a.read_name, "CKR_ATTRIBUTE_SENSITIVE") == 0 && strcmp(a.wrap_name, "CKR_KEY_UNEXTRACTABLE") == 0;
	printf("attributes: sensitive=%s extractable=%s always_sensitive=%s never_extractable=%s local=%s\n",
	       tri(a.sensitive), tri(a.extractable), tri(a.always_sensitive), tri(a.never_extractable), tri(a.local));
	printf("read private value (C_GetAttributeValue): %s\n", a.read_name);
	printf("wrap under a fresh AES key (C_WrapKey): %s\n", a.wrap_name);
	printf("%s\n", safe ? "verdict: the private key cannot leave the token"
			    : "verdict: WARNING: the private key can leave the token");
	return safe ? 0 : 3;
}

static int key_delete(struct cli *c)
{
	unsigned count = 0;
	int r;

	if ((r = need_uri(c, "delete")) != 0)
		return r;
	if (!c->yes)
		return cli_usage("key delete destroys the key for good: add --yes to confirm");
	if ((r = cli_open_token(c, c->argv[0], 1)) != 0 || (r = p11pki_key_delete(c->t, c->uri, &count)) != 0)
		return cli_error(r);
	printf("deleted %u object%s\n", count, count == 1 ? "" : "s");
	return 0;
}

int cmd_key(struct cli *c, int argc, char **argv)
{
	const char *sub = argv[0];
	static const char common[] = "token pin-source json ";
	int r;

	if (strcmp(sub, "gen") == 0)
		r = cli_parse(c, argc, argv, "token pin-source type label id extractable");
	else if (strcmp(sub, "pub") == 0)
		r = cli_parse(c, argc, argv, "token pin-source output");
	else if (strcmp(sub, "delete") == 0)
		r = cli_parse(c, argc, argv, "token pin-source yes");
	else
		r = cli_parse(c, argc, argv, common);
	if (r != 0)
		return r;
	if (strcmp(sub, "gen") == 0)
		return key_gen(c);
	if (strcmp(sub, "list") == 0)
		return key_list(c);
	if (strcmp(sub, "pub") == 0)
		return key_pub(c);
	if (strcmp(sub, "audit") == 0)
		return key_audit(c);
	if (strcmp(sub, "delete") == 0)
		return key_delete(c);
	return cli_usage("unknown command 'key %s' (try gen, list, pub, audit or delete)", sub);
}
