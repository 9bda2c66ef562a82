/* Issuance benchmark: certificates per second through p11pki's CA code
 * path (CSR in, checks, certificate built and signed, row committed to the
 * SQLite store), with the CA key on a throwaway SoftHSM2 token, beside the
 * same path with an in-memory CA key, measured in the same run, and beside
 * one `openssl x509 -req` process per certificate.
 * Target (reported, not enforced): with a P-256 CA key on the token, at
 * least 70% of the in-memory rate.
 * Usage: bench_issue [--seconds N] */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>

#include <p11pki/ca.h>

#include "ca/store.h"

#define TARGET 0.70

static char dir[256];

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "bench_issue: %s: %s\n", what, p11pki_errmsg());
	exit(1);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(path);
}

static void cleanup(void)
{
	if (dir[0] != '\0')
		nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A software P-256 key and a CSR for www.example.com. */
static X509_REQ *make_csr(EVP_PKEY **key_out)
{
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509_NAME *name = NULL;
	GENERAL_NAMES *sans = sk_GENERAL_NAME_new_null();
	GENERAL_NAME *gn = NULL;
	X509_REQ *req = NULL;

	if (key == NULL || p11pki_name_parse("CN=www.example.com,O=Bench", &name) != 0 ||
	    p11pki_san_parse("dns:www.example.com", &gn) != 0 || !sk_GENERAL_NAME_push(sans, gn) ||
	    p11pki_csr_build(key, name, sans, &req) != 0)
		die("making the request");
	X509_NAME_free(name);
	GENERAL_NAMES_free(sans);
	*key_out = key;
	return req;
}

/* Issues for `seconds`; returns certificates per second. */
static double issue_rate(p11pki_ca *ca, X509_REQ *csr, double seconds)
{
	struct p11pki_issue req = { "server", csr, 30, "bench" };
	double start = now(), t;
	unsigned n = 0;
	X509 *cert;

	do {
		if (p11pki_ca_issue(ca, &req, &cert) != 0)
			die("issuing");
		X509_free(cert);
		n++;
	} while ((t = now() - start) < seconds);
	return n / t;
}

/* A self-signed CA certificate for the in-memory key (for openssl). */
static X509 *soft_cert(EVP_PKEY *key, X509_NAME *subject)
{
	static X509 *cert;
	struct p11pki_profile prof;
	struct p11pki_cert_template t;

	memset(&t, 0, sizeof(t));
	if (p11pki_profile_builtin("root", &prof) != 0)
		die("profile");
	t.subject = subject;
	t.public_key = key;
	t.profile = &prof;
	t.not_before = time(NULL);
	t.not_after = t.not_before + 86400 * 365;
	X509_free(cert);
	if (p11pki_cert_build(&t, key, &cert) != 0)
		die("self-signing the in-memory CA");
	return cert;
}

/* One `openssl x509 -req` process per certificate, as a shell loop does. */
static double openssl_rate(EVP_PKEY *ca_key, X509 *ca_cert, X509_REQ *csr, double seconds)
{
	char cmd[1024], path[300];
	double start = now(), t;
	unsigned n = 0;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/ca.key", dir);
	if ((fp = fopen(path, "w")) == NULL || !PEM_write_PrivateKey(fp, ca_key, NULL, NULL, 0, NULL, NULL))
		die("writing ca.key");
	fclose(fp);
	snprintf(path, sizeof(path), "%s/ca.crt", dir);
	if ((fp = fopen(path, "w")) == NULL || !PEM_write_X509(fp, ca_cert))
		die("writing ca.crt");
	fclose(fp);
	snprintf(path, sizeof(path), "%s/req.csr", dir);
	if ((fp = fopen(path, "w")) == NULL || !PEM_write_X509_REQ(fp, csr))
		die("writing req.csr");
	fclose(fp);
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && openssl x509 -req -in req.csr -CA ca.crt -CAkey ca.key -set_serial 0x$(openssl rand -hex 16 | sed 's/^./4/') "
		 "-days 30 -sha256 -out /dev/null 2>/dev/null", dir);
	do {
		if (system(cmd) != 0)
			die("openssl x509 -req");
		n++;
	} while ((t = now() - start) < seconds);
	return n / t;
}

int main(int argc, char **argv)
{
	struct p11pki_ca_create cp = { .name = "tok", .days = 365 };
	p11pki_secret *so = NULL, *pin = NULL;
	p11pki_module *m = NULL;
	p11pki_token *t = NULL;
	p11pki_store *st = NULL;
	struct p11pki_uri sel;
	p11pki_ca *tok_ca = NULL, *soft_ca = NULL;
	EVP_PKEY *req_key = NULL, *soft_key;
	X509_REQ *csr;
	X509 *tok_cert = NULL;
	X509_NAME *subject = NULL;
	char path[300];
	double seconds = 3, on_token, in_memory, openssl;

	if (argc == 3 && strcmp(argv[1], "--seconds") == 0)
		seconds = atof(argv[2]);
	snprintf(dir, sizeof(dir), "/tmp/p11pki-bench-issue.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return 1;
	atexit(cleanup);
	snprintf(path, sizeof(path), "%s/softhsm2.conf", dir);
	{
		FILE *fp = fopen(path, "w");
		fprintf(fp, "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n", dir);
		fclose(fp);
	}
	setenv("SOFTHSM2_CONF", path, 1);
	snprintf(path, sizeof(path), "%s/ca.db", dir);
	memset(&sel, 0, sizeof(sel));
	sel.token = "bench";
	if (p11pki_secret_from("so-pin", 6, &so) != 0 || p11pki_secret_from("user-pin", 8, &pin) != 0 ||
	    p11pki_module_open(NULL, &m) != 0 || p11pki_token_init(m, 0, 0, "bench", so, pin, NULL) != 0 ||
	    p11pki_token_open(m, &sel, &t) != 0 || p11pki_token_login(t, pin) != 0 ||
	    p11pki_store_open(path, &st) != 0)
		die("setting up the token and store");
	if (p11pki_keytype_parse("ec:p256", &cp.type) != 0 || p11pki_name_parse("CN=Bench CA", &subject) != 0)
		die("parsing");
	cp.subject = subject;
	if (p11pki_ca_create(st, NULL, &cp, t, NULL, &tok_cert) != 0 || p11pki_ca_open(st, NULL, "tok", t, &tok_ca) != 0)
		die("creating the CA on the token");
	/* the same CA record, with an in-memory key of the same type */
	soft_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (soft_key == NULL || p11pki_ca_open_key(st, NULL, "tok", soft_key, &soft_ca) != 0)
		die("opening the CA with an in-memory key");
	csr = make_csr(&req_key);

	(void)issue_rate(tok_ca, csr, 0.3); /* warm up both */
	(void)issue_rate(soft_ca, csr, 0.3);
	on_token = issue_rate(tok_ca, csr, seconds);
	in_memory = issue_rate(soft_ca, csr, seconds);
	openssl = openssl_rate(soft_key, soft_cert(soft_key, subject), csr, seconds);

	printf("issuance, P-256 CA key, server profile, every row committed (SQLite, synchronous=FULL)\n");
	printf("  %-34s %10.1f certs/s\n", "CA key on SoftHSM2 (p11pki)", on_token);
	printf("  %-34s %10.1f certs/s\n", "CA key in memory (same code path)", in_memory);
	printf("  %-34s %10.1f certs/s\n", "openssl x509 -req, one process each", openssl);
	printf("  token / in-memory: %.2f   (target >= %.2f: %s)\n", on_token / in_memory, TARGET,
	       on_token / in_memory >= TARGET ? "PASS" : "MISS");
	printf("  token / openssl process: %.1fx\n", on_token / openssl);

	X509_REQ_free(csr);
	X509_free(tok_cert);
	X509_NAME_free(subject);
	EVP_PKEY_free(req_key);
	EVP_PKEY_free(soft_key);
	p11pki_ca_close(tok_ca);
	p11pki_ca_close(soft_ca);
	p11pki_store_close(st);
	p11pki_token_close(t);
	p11pki_module_close(m);
	p11pki_secret_free(so);
	p11pki_secret_free(pin);
	return 0;
}
