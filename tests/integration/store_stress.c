/* Drives the SQLite store from several processes (t_store_concurrent.sh).
 *
 *   store_stress insert DB COUNT [GO_FILE]
 *	opens DB, makes sure CA 'issuing' exists, prints "ready", waits for
 *	GO_FILE to exist (a start line for all processes), then adds COUNT
 *	certificates (0: until killed) with random 128-bit serials, pausing
 *	up to 1 ms between them (as signing would), printing
 *	"committed SERIAL" only once p11pki_store_cert_add has returned 0.
 *
 *   store_stress check [-n COUNT] [-s SLACK] DB OUTPUT...
 *	checks PRAGMA integrity_check, that all serials are distinct, that
 *	every serial an OUTPUT file reports committed is in the store, and
 *	that the store holds at most SLACK (default 0) rows more than were
 *	reported: rows committed by a process killed before it printed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "ca/store.h"

#define CA_NAME "issuing"

static int usage(void)
{
	fprintf(stderr, "usage: store_stress insert DB COUNT [GO_FILE]\n"
			"       store_stress check [-n COUNT] [-s SLACK] DB OUTPUT...\n");
	return 2;
}

static int fail(const char *what)
{
	fprintf(stderr, "store_stress[%d]: %s: %s\n", (int)getpid(), what, p11pki_errmsg());
	return 1;
}

/* 128 random bits as uppercase hex without leading zeros (store.h). */
static int random_serial(char *buf, size_t size)
{
	unsigned char b[16];
	size_t i, len = 0;

	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
		return -1;
	for (i = 0; i < sizeof(b); i++)
		len += (size_t)snprintf(buf + len, size - len, "%02X", b[i]);
	i = strspn(buf, "0");
	if (i == len)
		i = len - 1; /* zero is "0" */
	memmove(buf, buf + i, len - i + 1);
	return 0;
}

static int ensure_ca(p11pki_store *st)
{
	struct p11pki_store_ca ca = { 0 };
	int r;

	ca.name = CA_NAME;
	ca.key_uri = "pkcs11:token=stress;object=issuing";
	ca.cert_pem = "-----BEGIN CERTIFICATE-----\nstress\n-----END CERTIFICATE-----\n";
	r = p11pki_store_ca_add(st, &ca);
	return r == P11PKI_E_EXISTS ? P11PKI_OK : r; /* another process won */
}

/* Up to 1 ms outside any transaction, as signing would take, so the
 * other processes get the lock in between rather than after we finish. */
static void pause_a_little(void)
{
	struct timespec t = { 0, 0 };
	unsigned char b;

	if (getrandom(&b, 1, 0) == 1)
		t.tv_nsec = (long)b * 4000L;
	nanosleep(&t, NULL);
}

static void wait_for(const char *file)
{
	struct timespec ms = { 0, 1000000L };

	while (access(file, F_OK) != 0)
		nanosleep(&ms, NULL);
}

/* Adds one certificate, drawing another serial on the rare collision. */
static int add_one(p11pki_store *st, long i, char *serial, size_t size)
{
	char subject[64];
	struct p11pki_store_cert c = { 0 };
	time_t now = time(NULL);
	int r;

	snprintf(subject, sizeof(subject), "CN=stress-%d-%ld", (int)getpid(), i);
	c.ca = CA_NAME;
	c.subject = subject;
	c.profile = "server";
	c.requester = "store_stress";
	c.pem = "-----BEGIN CERTIFICATE-----\nMIIstress\n-----END CERTIFICATE-----\n";
	c.not_before = now;
	c.not_after = now + 86400;
	c.issued = now;
	c.reason = -1;
	do {
		if (random_serial(serial, size) != 0)
			return P11PKI_E_IO;
		c.serial = serial;
	} while ((r = p11pki_store_cert_add(st, &c)) == P11PKI_E_EXISTS);
	return r;
}

static int cmd_insert(int argc, char **argv)
{
	p11pki_store *st = NULL;
	char serial[64];
	long i, count;
	int rc = 1;

	if (argc < 4 || argc > 5)
		return usage();
	count = strtol(argv[3], NULL, 10);
	if (p11pki_store_open(argv[2], &st) != 0)
		return fail("open");
	if (ensure_ca(st) != 0) {
		rc = fail("add CA");
		goto out;
	}
	printf("ready\n");
	fflush(stdout);
	if (argc == 5)
		wait_for(argv[4]);
	for (i = 0; count == 0 || i < count; i++) {
		if (add_one(st, i, serial, sizeof(serial)) != 0) {
			rc = fail("add certificate");
			goto out;
		}
		/* Printed only now: the row is committed and synced. */
		printf("committed %s\n", serial);
		fflush(stdout);
		pause_a_little();
	}
	rc = 0;
out:
	p11pki_store_close(st);
	return rc;
}

/* ---- check ---- */

struct serials {
	char **v;
	size_t n, cap;
};

static int push(struct serials *s, const char *serial)
{
	char **grown;

	if (s->n == s->cap) {
		s->cap = s->cap != 0 ? 2 * s->cap : 256;
		if ((grown = realloc(s->v, s->cap * sizeof(*grown))) == NULL)
			return -1;
		s->v = grown;
	}
	if ((s->v[s->n] = strdup(serial)) == NULL)
		return -1;
	s->n++;
	return 0;
}

static void serials_free(struct serials *s)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorts and reports the first serial that occurs twice. */
static int distinct(struct serials *s, const char *what)
{
	size_t i;

	qsort(s->v, s->n, sizeof(*s->v), cmp_str);
	for (i = 1; i < s->n; i++) {
		if (strcmp(s->v[i - 1], s->v[i]) == 0) {
			fprintf(stderr, "store_stress: serial %s appears twice in %s\n", s->v[i], what);
			return -1;
		}
	}
	return 0;
}

/* Collects "committed SERIAL" lines; a last line cut short by SIGKILL
 * (no newline) was never a promise. */
static int read_committed(const char *file, struct serials *s)
{
	char line[256];
	FILE *fp = fopen(file, "r");
	int rc = 0;

	if (fp == NULL) {
		fprintf(stderr, "store_stress: %s: %s\n", file, strerror(errno));
		return -1;
	}
	while (rc == 0 && fgets(line, sizeof(line), fp) != NULL) {
		size_t len = strlen(line);

		if (len == 0 || line[len - 1] != '\n' || strncmp(line, "committed ", 10) != 0)
			continue;
		line[len - 1] = '\0';
		rc = push(s, line + 10);
	}
	fclose(fp);
	return rc;
}

static int integrity_ok(const char *db_path)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *stmt = NULL;
	const unsigned char *res;
	int ok = 0;

	if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &stmt, NULL) != SQLITE_OK) {
		fprintf(stderr, "store_stress: %s: %s\n", db_path, sqlite3_errmsg(db));
		goto out;
	}
	while (sqlite3_step(stmt) == SQLITE_ROW) {
		res = sqlite3_column_text(stmt, 0);
		ok = res != NULL && strcmp((const char *)res, "ok") == 0;
		if (!ok)
			fprintf(stderr, "store_stress: integrity_check: %s\n", res != NULL ? (const char *)res : "?");
	}
out:
	sqlite3_finalize(stmt);
	sqlite3_close(db);
	return ok;
}

static int stored_serials(p11pki_store *st, struct serials *s)
{
	struct p11pki_store_cert *certs = NULL;
	size_t i, n = 0;
	int rc = 0;

	if (p11pki_store_cert_list(st, CA_NAME, NULL, &certs, &n) != 0)
		return fail("list");
	for (i = 0; i < n && rc == 0; i++)
		rc = push(s, certs[i].serial);
	p11pki_store_cert_list_free(certs, n);
	return rc;
}

/* Every committed serial must be in the store. */
static int all_present(p11pki_store *st, const struct serials *committed)
{
	struct p11pki_store_cert c;
	size_t i;

	for (i = 0; i < committed->n; i++) {
		if (p11pki_store_cert_get(st, CA_NAME, committed->v[i], &c) != 0) {
			fprintf(stderr, "store_stress: committed serial %s is lost: %s\n", committed->v[i],
				p11pki_errmsg());
			return -1;
		}
		p11pki_store_cert_clear(&c);
	}
	return 0;
}

struct check_opts {
	long count; /* -1: not checked */
	long slack;
};

static int check_counts(const struct check_opts *o, size_t stored, size_t committed)
{
	size_t extra;

	printf("stored %zu, committed %zu\n", stored, committed);
	if (o->count >= 0 && stored != (size_t)o->count) {
		fprintf(stderr, "store_stress: %zu certificates stored, %ld expected\n", stored, o->count);
		return -1;
	}
	extra = stored - committed;
	if (stored < committed || extra > (size_t)o->slack) {
		fprintf(stderr, "store_stress: %zu stored for %zu committed (slack %ld)\n", stored, committed, o->slack);
		return -1;
	}
	return 0;
}

static int run_check(const struct check_opts *o, const char *db, char **files, int nfiles)
{
	struct serials committed = { 0 }, stored = { 0 };
	p11pki_store *st = NULL;
	size_t n = 0;
	int i, rc = 1;

	if (!integrity_ok(db))
		return 1;
	if (p11pki_store_open(db, &st) != 0)
		return fail("open");
	for (i = 0; i < nfiles; i++)
		if (read_committed(files[i], &committed) != 0)
			goto out;
	if (stored_serials(st, &stored) != 0 || p11pki_store_cert_count(st, CA_NAME, &n) != 0)
		goto out;
	if (n != stored.n) {
		fprintf(stderr, "store_stress: count says %zu, list has %zu\n", n, stored.n);
		goto out;
	}
	if (distinct(&stored, "the store") != 0 || distinct(&committed, "the output") != 0 ||
	    all_present(st, &committed) != 0 || check_counts(o, stored.n, committed.n) != 0)
		goto out;
	rc = 0;
out:
	serials_free(&committed);
	serials_free(&stored);
	p11pki_store_close(st);
	return rc;
}

static int cmd_check(int argc, char **argv)
{
	struct check_opts o = { -1, 0 };
	int opt;

	optind = 2;
	while ((opt = getopt(argc, argv, "n:s:")) != -1) {
		if (opt == 'n')
			o.count = strtol(optarg, NULL, 10);
		else if (opt == 's')
			o.slack = strtol(optarg, NULL, 10);
		else
			return usage();
	}
	if (optind >= argc)
		return usage();
	return run_check(&o, argv[optind], argv + optind + 1, argc - optind - 1);
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "insert") == 0)
		return cmd_insert(argc, argv);
	if (argc >= 2 && strcmp(argv[1], "check") == 0)
		return cmd_check(argc, argv);
	return usage();
}
