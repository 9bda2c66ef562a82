/* p11pki verify CERT [--host H] [--ca ROOT[,..]] [--untrusted CERT[,..]]
 *                    [--crl CRL[,..]] [--at 2027-01-01[T00:00:00Z]]
 *
 * The three checks a browser makes, one line each, with the reason a
 * check fails; exit 0 only when all pass. CERT may be a PEM file holding
 * the whole chain (leaf first): the rest counts as untrusted. Without
 * --ca the system's trusted CAs are used; without --host the host check
 * is skipped (and said so). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <p11pki/x509.h>

#include "cli/cli.h"

#define MAX_FILE (16u << 20)

static int read_crl_list(const char *list, STACK_OF(X509_CRL) *into)
{
	STACK_OF(X509_CRL) *one = NULL;
	char *copy = strdup(list), *save = NULL, *path;
	unsigned char *data = NULL;
	size_t len;
	int r = P11PKI_OK;

	if (copy == NULL)
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
	for (path = strtok_r(copy, ",", &save); path != NULL && r == 0; path = strtok_r(NULL, ",", &save)) {
		if ((r = cli_read_file(path, MAX_FILE, &data, &len)) != 0 ||
		    (r = p11pki_crls_read(data, len, path, &one)) != 0)
			break;
		while (r == 0 && sk_X509_CRL_num(one) > 0) {
			X509_CRL *crl = sk_X509_CRL_shift(one);
			if (!sk_X509_CRL_push(into, crl)) {
				X509_CRL_free(crl);
				r = p11pki_fail(P11PKI_E_NOMEM, "out of memory");
			}
		}
		sk_X509_CRL_pop_free(one, X509_CRL_free);
		one = NULL;
		free(data);
		data = NULL;
	}
	free(data);
	free(copy);
	return r;
}

static int digits(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return 0;
	return 1;
}

/* "2027-01-01" (midnight UTC) or "2027-01-01T00:00:00Z" (or with a space
 * and without the Z: always UTC). */
static int parse_at(const char *text, time_t *out)
{
	size_t len = strlen(text);
	struct tm tm, back;
	time_t t;

	memset(&tm, 0, sizeof(tm));
	if (len < 10 || !digits(text, 4) || text[4] != '-' || !digits(text + 5, 2) || text[7] != '-' ||
	    !digits(text + 8, 2))
		goto bad;
	if (len > 10 && (len < 19 || len > 20 || (text[10] != 'T' && text[10] != ' ') || !digits(text + 11, 2) ||
			 text[13] != ':' || !digits(text + 14, 2) || text[16] != ':' || !digits(text + 17, 2) ||
			 (len == 20 && text[19] != 'Z')))
		goto bad;
	tm.tm_year = atoi(text) - 1900;
	tm.tm_mon = atoi(text + 5) - 1;
	tm.tm_mday = atoi(text + 8);
	if (len > 10) {
		tm.tm_hour = atoi(text + 11);
		tm.tm_min = atoi(text + 14);
		tm.tm_sec = atoi(text + 17);
	}
	back = tm;
	if ((t = timegm(&tm)) == (time_t)-1 || tm.tm_mday != back.tm_mday || tm.tm_mon != back.tm_mon ||
	    tm.tm_hour != back.tm_hour || tm.tm_min != back.tm_min || tm.tm_sec != back.tm_sec || t <= 0)
		goto bad; /* timegm normalises 2027-02-30 into March */
	*out = t;
	return P11PKI_OK;
bad:
	return p11pki_fail(P11PKI_E_ARG, "--at '%s' is not a date: write 2027-01-01 or 2027-01-01T00:00:00Z (UTC)", text);
}

static void report(const struct p11pki_verify_result *res)
{
	printf("date: %s%s%s\n", res->date_ok ? "ok (" : "FAILED: ", res->date_reason, res->date_ok ? ")" : "");
	if (res->host_ok < 0)
		printf("host: skipped (no --host given)\n");
	else
		printf("host: %s%s%s\n", res->host_ok ? "ok (" : "FAILED: ", res->host_reason, res->host_ok ? ")" : "");
	printf("chain: %s%s%s\n", res->chain_ok ? "ok (" : "FAILED: ", res->chain_reason, res->chain_ok ? ")" : "");
}

struct inputs {
	STACK_OF(X509) *certs, *trusted, *untrusted;
	STACK_OF(X509_CRL) *crls;
};

static int read_inputs(struct cli *c, struct inputs *in)
{
	int r;

	if ((in->untrusted = sk_X509_new_null()) == NULL || (c->ca != NULL && (in->trusted = sk_X509_new_null()) == NULL) ||
	    (c->crl != NULL && (in->crls = sk_X509_CRL_new_null()) == NULL))
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
	if ((r = cli_read_certs(c->argv[0], MAX_FILE, &in->certs)) != 0 ||
	    (c->ca != NULL && (r = cli_read_cert_list(c->ca, MAX_FILE, in->trusted)) != 0) ||
	    (c->untrusted != NULL && (r = cli_read_cert_list(c->untrusted, MAX_FILE, in->untrusted)) != 0) ||
	    (c->crl != NULL && (r = read_crl_list(c->crl, in->crls)) != 0))
		return r;
	/* a fullchain file: what follows the leaf is offered as untrusted */
	while (sk_X509_num(in->certs) > 1) {
		X509 *x = sk_X509_delete(in->certs, 1);
		if (!sk_X509_push(in->untrusted, x)) {
			X509_free(x);
			return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
		}
	}
	return P11PKI_OK;
}

int cmd_verify(struct cli *c, int argc, char **argv)
{
	struct p11pki_verify_opts o;
	struct p11pki_verify_result res;
	struct inputs in;
	int r;

	memset(&o, 0, sizeof(o));
	memset(&res, 0, sizeof(res));
	memset(&in, 0, sizeof(in));
	if ((r = cli_parse(c, argc, argv, "host ca untrusted crl at")) != 0)
		return r;
	if (c->argc != 1)
		return cli_usage("verify needs one certificate file: 'p11pki verify CERT --host H --ca ROOT'");
	if ((c->at != NULL && (r = parse_at(c->at, &o.at)) != 0) || (r = read_inputs(c, &in)) != 0) {
		r = cli_error(r);
		goto out;
	}
	o.host = c->host;
	o.trusted = in.trusted;
	o.untrusted = in.untrusted;
	o.crls = in.crls;
	if ((r = p11pki_verify(sk_X509_value(in.certs, 0), &o, &res)) != 0) {
		r = cli_error(r);
		goto out;
	}
	report(&res);
	r = res.date_ok && res.host_ok != 0 && res.chain_ok ? 0 : 1;
out:
	p11pki_verify_result_clear(&res);
	sk_X509_pop_free(in.certs, X509_free);
	sk_X509_pop_free(in.trusted, X509_free);
	sk_X509_pop_free(in.untrusted, X509_free);
	sk_X509_CRL_pop_free(in.crls, X509_CRL_free);
	return r;
}
