/* Opening modules and tokens for commands, PINs, errors, JSON output. */
#include <errno.h>
#include <limits.h>
#include <sys/stat.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include <openssl/conf.h>
#include <openssl/err.h>

#include <p11pki/x509.h>

#include "ca/store.h"
#include "cli/cli.h"

int cli_error(int r)
{
	const char *msg = p11pki_errmsg();

	fprintf(stderr, "p11pki: %s\n", *msg != '\0' ? msg : p11pki_strerror(r));
	return r == P11PKI_E_ARG ? 2 : 1;
}

int cli_usage(const char *fmt, ...)
{
	va_list ap;

	fputs("p11pki: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (see 'p11pki --help')\n", stderr);
	return 2;
}

int cli_selection(struct cli *c, const char *uri_text)
{
	int r;

	if (uri_text != NULL)
		return p11pki_uri_parse(uri_text, &c->uri);
	if ((r = p11pki_uri_new(&c->uri)) != 0)
		return r;
	if (c->token != NULL && (c->uri->token = strdup(c->token)) == NULL)
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
	return P11PKI_OK;
}

int cli_config(struct cli *c)
{
	char home[PATH_MAX - 16], path[PATH_MAX];
	const char *file = c->config;
	long line = 0;
	int r;

	if (c->conf_loaded)
		return P11PKI_OK;
	c->conf_loaded = 1;
	if (file == NULL) {
		if ((r = p11pki_home(home, sizeof(home))) != 0)
			return r;
		snprintf(path, sizeof(path), "%s/p11pki.conf", home);
		if (access(path, F_OK) != 0)
			return P11PKI_OK; /* no config file: built-in defaults */
		file = path;
	}
	if ((c->conf = NCONF_new(NULL)) == NULL)
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory reading %s", file);
	if (NCONF_load(c->conf, file, &line) <= 0) {
		ERR_clear_error();
		if (line > 0)
			return p11pki_fail(P11PKI_E_ARG, "%s:%ld: syntax error", file, line);
		return p11pki_fail(P11PKI_E_IO, "cannot read config file %s", file);
	}
	return P11PKI_OK;
}

const char *cli_config_value(struct cli *c, const char *key)
{
	const char *v;

	if (cli_config(c) != 0 || c->conf == NULL)
		return NULL;
	v = NCONF_get_string(c->conf, "p11pki", key);
	ERR_clear_error(); /* a missing key is not an error */
	return v;
}

int cli_open_store(struct cli *c, struct p11pki_store **st)
{
	int r;

	if (getenv("P11PKI_STORE") == NULL && (r = cli_config(c)) != 0)
		return r;
	return p11pki_store_open_default(NULL, getenv("P11PKI_STORE") == NULL ? cli_config_value(c, "store") : NULL, st);
}

int cli_open_module(struct cli *c)
{
	const char *path = c->module;
	int r;

	if (c->m != NULL)
		return P11PKI_OK;
	if (path == NULL && c->uri != NULL)
		path = c->uri->module_path;
	if (path == NULL) {
		if ((r = cli_config(c)) != 0)
			return r;
		path = cli_config_value(c, "module");
	}
	return p11pki_module_open(path, &c->m);
}

int cli_read_pin(const char *spec, const char *prompt, p11pki_secret **out)
{
	if (spec != NULL)
		return p11pki_pin_read(spec, out);
	return p11pki_pin_prompt(prompt, out);
}

int cli_open_token(struct cli *c, const char *uri_text, int login)
{
	p11pki_secret *pin = NULL;
	char prompt[96];
	int r;

	if (c->uri == NULL && (r = cli_selection(c, uri_text)) != 0)
		return r;
	if (c->uri->token == NULL && c->uri->serial == NULL && !c->uri->has_slot_id && c->token == NULL)
		return p11pki_fail(P11PKI_E_ARG, "which token? give --token LABEL or token= in the URI");
	if (c->uri->token == NULL && c->token != NULL && (c->uri->token = strdup(c->token)) == NULL)
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
	if ((r = cli_open_module(c)) != 0 || (r = p11pki_token_open(c->m, c->uri, &c->t)) != 0)
		return r;
	if (!login)
		return P11PKI_OK;
	snprintf(prompt, sizeof(prompt), "User PIN for token '%s': ", p11pki_token_label(c->t));
	if (c->uri->pin_source != NULL)
		r = p11pki_pin_read(c->uri->pin_source, &pin);
	else if (c->pin_source != NULL || c->uri->pin_value == NULL)
		r = cli_read_pin(c->pin_source, prompt, &pin);
	else {
		fprintf(stderr, "p11pki: warning: pin-value in a URI is visible to other users; use pin-source\n");
		r = p11pki_secret_from(c->uri->pin_value->data, c->uri->pin_value->len, &pin);
	}
	if (r == 0)
		r = p11pki_token_login(c->t, pin);
	p11pki_secret_free(pin);
	return r;
}

void cli_close(struct cli *c)
{
	p11pki_token_close(c->t);
	p11pki_module_close(c->m);
	p11pki_uri_free(c->uri);
	NCONF_free(c->conf);
	c->conf = NULL;
	c->t = NULL;
	c->m = NULL;
	c->uri = NULL;
}

void cli_json_string(FILE *fp, const char *s)
{
	const unsigned char *p = (const unsigned char *)(s != NULL ? s : "");

	fputc('"', fp);
	for (; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(fp, "\\%c", *p);
		else if (*p < 0x20)
			fprintf(fp, "\\u%04x", *p);
		else
			fputc(*p, fp);
	}
	fputc('"', fp);
}

int cli_write_file(const char *path, const void *data, size_t len, int mode)
{
	char tmp[PATH_MAX];
	FILE *fp;
	int fd, ok;

	if (path == NULL || strcmp(path, "-") == 0)
		return fwrite(data, 1, len, stdout) == len && fflush(stdout) == 0
			       ? 0 : p11pki_fail(P11PKI_E_IO, "cannot write to standard output");
	if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp))
		return p11pki_fail(P11PKI_E_ARG, "output path too long: %s", path);
	if ((fd = mkstemp(tmp)) < 0)
		return p11pki_fail(P11PKI_E_IO, "cannot write %s: %s", path, strerror(errno));
	if (fchmod(fd, (mode_t)mode) != 0 || (fp = fdopen(fd, "wb")) == NULL) {
		close(fd);
		unlink(tmp);
		return p11pki_fail(P11PKI_E_IO, "cannot write %s: %s", path, strerror(errno));
	}
	ok = fwrite(data, 1, len, fp) == len;
	ok = fclose(fp) == 0 && ok;
	if (!ok || rename(tmp, path) != 0) {
		unlink(tmp);
		return p11pki_fail(P11PKI_E_IO, "cannot write %s: %s", path, strerror(errno));
	}
	return 0;
}

int cli_read_file(const char *path, size_t max, unsigned char **data, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	unsigned char *buf;
	size_t n;

	*data = NULL;
	*len = 0;
	if (fp == NULL)
		return p11pki_fail(P11PKI_E_IO, "cannot read %s: %s", path, strerror(errno));
	if ((buf = malloc(max + 1)) == NULL) {
		fclose(fp);
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory reading %s", path);
	}
	n = fread(buf, 1, max + 1, fp);
	fclose(fp);
	if (n > max) {
		free(buf);
		return p11pki_fail(P11PKI_E_ARG, "%s is larger than %zu bytes", path, max);
	}
	buf[n] = '\0';
	*data = buf;
	*len = n;
	return 0;
}

int cli_read_certs(const char *path, size_t max, STACK_OF(X509) **out)
{
	unsigned char *data = NULL;
	size_t len = 0;
	int r;

	*out = NULL;
	if ((r = cli_read_file(path, max, &data, &len)) == 0)
		r = p11pki_certs_read(data, len, path, out);
	free(data);
	return r;
}

int cli_read_cert_list(const char *list, size_t max, STACK_OF(X509) *into)
{
	STACK_OF(X509) *one = NULL;
	char *copy = strdup(list), *save = NULL, *path;
	int r = P11PKI_OK;

	if (copy == NULL)
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
	for (path = strtok_r(copy, ",", &save); path != NULL && r == 0; path = strtok_r(NULL, ",", &save)) {
		if ((r = cli_read_certs(path, max, &one)) != 0)
			break;
		while (r == 0 && sk_X509_num(one) > 0) {
			X509 *x = sk_X509_shift(one);
			if (!sk_X509_push(into, x)) {
				X509_free(x);
				r = p11pki_fail(P11PKI_E_NOMEM, "out of memory");
			}
		}
		sk_X509_pop_free(one, X509_free);
		one = NULL;
	}
	free(copy);
	return r;
}

int cli_store_chain(struct cli *c, STACK_OF(X509) *chain)
{
	char *uri = NULL;
	int i, r;

	for (i = 0; i < sk_X509_num(chain); i++) {
		r = p11pki_cert_store_ca(c->t, sk_X509_value(chain, i), NULL, &uri);
		if (r == P11PKI_E_EXISTS) {
			fprintf(stderr, "p11pki: note: %s\n", p11pki_errmsg());
			continue;
		}
		if (r != 0)
			return r;
		printf("%s\n", uri);
		free(uri);
		uri = NULL;
	}
	return P11PKI_OK;
}
