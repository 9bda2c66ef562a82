/* The SQLite CA store against real database files in a temp directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "ca/store.h"

/* Internal, exposed by store_sqlite.c under UNITTEST. */
sqlite3 *p11pki_store_sqlite(p11pki_store *st);

static char tmpdir[64];
static char path[128];

static int setup(void **state)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/p11pki-store-XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/ca.db", tmpdir);
	return 0;
}

static int remove_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(p);
}

static int teardown(void **state)
{
	chmod(tmpdir, 0700);
	return nftw(tmpdir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static void assert_msg_has(const char *want)
{
	if (strstr(p11pki_errmsg(), want) == NULL)
		print_error("message '%s' lacks '%s'\n", p11pki_errmsg(), want);
	assert_non_null(strstr(p11pki_errmsg(), want));
	assert_null(strchr(p11pki_errmsg(), '\n'));
}

static void check(int r)
{
	if (r != 0)
		print_error("failed: %s\n", p11pki_errmsg());
	assert_int_equal(r, P11PKI_OK);
}

static p11pki_store *open_ok(void)
{
	p11pki_store *st = NULL;

	check(p11pki_store_open(path, &st));
	assert_non_null(st);
	return st;
}

static void add_ca(p11pki_store *st, const char *name)
{
	struct p11pki_store_ca ca = { 0 };

	ca.name = (char *)name;
	ca.key_uri = "pkcs11:token=t;object=ca";
	ca.cert_pem = "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n";
	check(p11pki_store_ca_add(st, &ca));
}

static struct p11pki_store_cert cert(const char *ca, const char *serial, time_t not_after, time_t issued)
{
	struct p11pki_store_cert c = { 0 };

	c.ca = (char *)ca;
	c.serial = (char *)serial;
	c.subject = "CN=www.example.com";
	c.sans = "dns:www.example.com, dns:example.com";
	c.profile = "server";
	c.requester = "alice";
	c.pem = "-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----\n";
	c.not_before = issued;
	c.not_after = not_after;
	c.issued = issued;
	c.reason = -1;
	return c;
}

/* Runs SQL on the file with a connection of our own. */
static void raw_exec(const char *sql)
{
	sqlite3 *db = NULL;

	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL), SQLITE_OK);
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
		print_error("%s: %s\n", sql, sqlite3_errmsg(db));
	assert_int_equal(sqlite3_errcode(db), SQLITE_OK);
	sqlite3_close(db);
}

static void raw_text(const char *sql, char *buf, size_t size)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *stmt = NULL;

	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	snprintf(buf, size, "%s", (const char *)sqlite3_column_text(stmt, 0));
	sqlite3_finalize(stmt);
	sqlite3_close(db);
}

/* ---- opening ---- */

static void test_open_create_reopen(void **state)
{
	p11pki_store *st = open_ok();
	struct p11pki_store_ca ca;
	struct stat sb;

	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(p11pki_store_schema_version(st), P11PKI_STORE_SCHEMA_VERSION);
	add_ca(st, "root");
	p11pki_store_close(st);

	st = open_ok();
	assert_int_equal(p11pki_store_schema_version(st), P11PKI_STORE_SCHEMA_VERSION);
	check(p11pki_store_ca_get(st, "root", &ca));
	assert_string_equal(ca.name, "root");
	p11pki_store_ca_clear(&ca);
	p11pki_store_close(st);
	p11pki_store_close(NULL);
}

static void test_schema_recorded(void **state)
{
	char buf[64];

	p11pki_store_close(open_ok());
	raw_text("SELECT value FROM meta WHERE key = 'schema_version'", buf, sizeof(buf));
	assert_int_equal(atoi(buf), P11PKI_STORE_SCHEMA_VERSION);
	raw_text("PRAGMA journal_mode", buf, sizeof(buf));
	assert_string_equal(buf, "wal");
	raw_text("SELECT group_concat(name) FROM (SELECT name FROM sqlite_master WHERE type = 'index'"
		 " AND name LIKE 'certs_%' ORDER BY name)", buf, sizeof(buf));
	assert_string_equal(buf, "certs_ca_not_after,certs_ca_status");
}

static int pragma_int(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *stmt = NULL;
	int v;

	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
	v = sqlite3_column_int(stmt, 0);
	sqlite3_finalize(stmt);
	return v;
}

/* The settings durability and integrity rest on. */
static void test_connection_settings(void **state)
{
	p11pki_store *st = open_ok();
	sqlite3 *db = p11pki_store_sqlite(st);

	assert_int_equal(pragma_int(db, "PRAGMA synchronous"), 2); /* FULL */
	assert_int_equal(pragma_int(db, "PRAGMA foreign_keys"), 1);
	assert_int_equal(pragma_int(db, "PRAGMA busy_timeout"), 30000);
	p11pki_store_close(st);
}

static void test_newer_schema_refused(void **state)
{
	p11pki_store *st = (p11pki_store *)1;
	char want[256];

	p11pki_store_close(open_ok());
	raw_exec("UPDATE meta SET value = '99' WHERE key = 'schema_version'");
	assert_int_equal(p11pki_store_open(path, &st), P11PKI_E_UNSUPPORTED);
	assert_null(st);
	snprintf(want, sizeof(want), "store %s has schema version 99, newer than this p11pki understands (%d):"
		 " upgrade p11pki", path, P11PKI_STORE_SCHEMA_VERSION);
	assert_msg_has(want);
}

static void test_bad_schema_version(void **state)
{
	p11pki_store *st = NULL;

	p11pki_store_close(open_ok());
	raw_exec("UPDATE meta SET value = 'one' WHERE key = 'schema_version'");
	assert_int_equal(p11pki_store_open(path, &st), P11PKI_E_ARG);
	assert_null(st);
	assert_msg_has("schema version 'one' is not a positive number");
	raw_exec("DELETE FROM meta");
	assert_int_equal(p11pki_store_open(path, &st), P11PKI_E_ARG);
	assert_msg_has("has no schema version");
}

static void test_not_a_store(void **state)
{
	p11pki_store *st = NULL;
	int fd;

	/* Another application's database is left alone. */
	raw_exec("CREATE TABLE x(y)");
	assert_int_equal(p11pki_store_open(path, &st), P11PKI_E_ARG);
	assert_null(st);
	assert_msg_has("is not a p11pki store");
	assert_int_equal(unlink(path), 0);

	/* Nor is a file that is no database at all. */
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "this is not a database, it is text!", 35), 35);
	close(fd);
	assert_true(p11pki_store_open(path, &st) < 0);
	assert_null(st);
	assert_msg_has(path);
	assert_msg_has("not a database");
}

static void test_missing_directory(void **state)
{
	p11pki_store *st = (p11pki_store *)1;
	char missing[200], want[400];

	snprintf(missing, sizeof(missing), "%s/nope/ca.db", tmpdir);
	assert_int_equal(p11pki_store_open(missing, &st), P11PKI_E_IO);
	assert_null(st);
	snprintf(want, sizeof(want), "store %s: cannot create the file: directory %s/nope does not exist",
		 missing, tmpdir);
	assert_msg_has(want);

	assert_int_equal(p11pki_store_open(NULL, &st), P11PKI_E_ARG);
	assert_int_equal(p11pki_store_open("", &st), P11PKI_E_ARG);
	assert_int_equal(p11pki_store_open(path, NULL), P11PKI_E_ARG);
}

static void test_uncreatable_file(void **state)
{
	p11pki_store *st = NULL;
	char bad[200];

	/* A path through a regular file. */
	p11pki_store_close(open_ok());
	snprintf(bad, sizeof(bad), "%s/x.db", path);
	assert_int_equal(p11pki_store_open(bad, &st), P11PKI_E_IO);
	assert_null(st);
	assert_msg_has("cannot create the file: Not a directory");

	if (geteuid() == 0)
		return; /* root writes anyway */
	assert_int_equal(chmod(tmpdir, 0500), 0);
	snprintf(bad, sizeof(bad), "%s/y.db", tmpdir);
	assert_int_equal(p11pki_store_open(bad, &st), P11PKI_E_IO);
	assert_null(st);
	assert_msg_has("cannot create the file: Permission denied");
}

static mode_t mode_of(const char *p)
{
	struct stat sb;

	assert_int_equal(stat(p, &sb), 0);
	return sb.st_mode & 07777;
}

static void test_file_mode(void **state)
{
	static const mode_t masks[] = { 0, 022, 0277 };
	char wal[160];
	size_t i;

	snprintf(wal, sizeof(wal), "%s-wal", path);
	for (i = 0; i < sizeof(masks) / sizeof(masks[0]); i++) {
		mode_t old = umask(masks[i]);
		p11pki_store *st = NULL;
		int r = p11pki_store_open(path, &st);

		umask(old);
		check(r);
		add_ca(st, "root"); /* a write, so the WAL exists */
		assert_int_equal(mode_of(path), 0600);
		assert_int_equal(mode_of(wal), 0600);
		p11pki_store_close(st);
		assert_int_equal(unlink(path), 0);
	}
}

/* ---- CAs ---- */

static void test_ca(void **state)
{
	p11pki_store *st = open_ok();
	struct p11pki_store_ca in = { 0 }, out;
	char **names = NULL;
	size_t n = 0;

	in.name = "issuing";
	in.parent = "root";
	in.key_uri = "pkcs11:token=t;object=issuing";
	in.cert_pem = "CERT";
	in.config = "validity = 90d\n";
	in.created = 1700000000;
	check(p11pki_store_ca_add(st, &in));
	check(p11pki_store_ca_get(st, "issuing", &out));
	assert_string_equal(out.name, "issuing");
	assert_string_equal(out.parent, "root");
	assert_string_equal(out.key_uri, in.key_uri);
	assert_string_equal(out.cert_pem, "CERT");
	assert_null(out.chain_pem);
	assert_string_equal(out.config, in.config);
	assert_int_equal(out.created, 1700000000);
	p11pki_store_ca_clear(&out);
	assert_null(out.name);

	assert_int_equal(p11pki_store_ca_add(st, &in), P11PKI_E_EXISTS);
	assert_msg_has("already has a CA named 'issuing'");
	assert_msg_has(path);
	in.key_uri = NULL;
	assert_int_equal(p11pki_store_ca_add(st, &in), P11PKI_E_ARG);

	out.name = (char *)1;
	assert_int_equal(p11pki_store_ca_get(st, "nope", &out), P11PKI_E_NOTFOUND);
	assert_null(out.name);
	assert_msg_has("has no CA named 'nope'");
	assert_int_equal(p11pki_store_ca_get(st, "bad\x1b]0;x\a", &out), P11PKI_E_NOTFOUND);
	assert_msg_has("no CA named 'bad?]0;x?'");

	check(p11pki_store_ca_update_cert(st, "issuing", "NEW", "CHAIN"));
	check(p11pki_store_ca_get(st, "issuing", &out));
	assert_string_equal(out.cert_pem, "NEW");
	assert_string_equal(out.chain_pem, "CHAIN");
	p11pki_store_ca_clear(&out);
	assert_int_equal(p11pki_store_ca_update_cert(st, "nope", "X", NULL), P11PKI_E_NOTFOUND);

	add_ca(st, "root");
	check(p11pki_store_ca_names(st, &names, &n));
	assert_int_equal(n, 2);
	assert_string_equal(names[0], "issuing");
	assert_string_equal(names[1], "root");
	free(names[0]);
	free(names[1]);
	free(names);
	p11pki_store_close(st);
}

static void test_ca_names_empty(void **state)
{
	p11pki_store *st = open_ok();
	char **names = (char **)1;
	size_t n = 7;

	check(p11pki_store_ca_names(st, &names, &n));
	assert_null(names);
	assert_int_equal(n, 0);
	p11pki_store_close(st);
}

/* ---- certificates ---- */

static void test_cert_add_get(void **state)
{
	p11pki_store *st = open_ok();
	struct p11pki_store_cert in = cert("issuing", "1A2B3C", 2000000000, 1700000000), out;

	add_ca(st, "issuing");
	add_ca(st, "other");
	check(p11pki_store_cert_add(st, &in));
	check(p11pki_store_cert_get(st, "issuing", "1A2B3C", &out));
	assert_string_equal(out.ca, "issuing");
	assert_string_equal(out.serial, "1A2B3C");
	assert_string_equal(out.subject, in.subject);
	assert_string_equal(out.sans, in.sans);
	assert_string_equal(out.profile, "server");
	assert_string_equal(out.requester, "alice");
	assert_string_equal(out.pem, in.pem);
	assert_int_equal(out.not_before, 1700000000);
	assert_int_equal(out.not_after, 2000000000);
	assert_int_equal(out.issued, 1700000000);
	assert_int_equal(out.status, P11PKI_CERT_VALID);
	assert_int_equal(out.revoked, 0);
	assert_int_equal(out.reason, -1);
	p11pki_store_cert_clear(&out);

	/* Lookups take lowercase and leading zeros. */
	check(p11pki_store_cert_get(st, "issuing", "001a2b3c", &out));
	assert_string_equal(out.serial, "1A2B3C");
	p11pki_store_cert_clear(&out);

	/* So does add, storing the form of store.h: BN_bn2hex writes whole
	 * bytes ("0A1B"), which must not make a second serial A1B. */
	in.serial = "0a1b";
	check(p11pki_store_cert_add(st, &in));
	check(p11pki_store_cert_get(st, "issuing", "A1B", &out));
	assert_string_equal(out.serial, "A1B");
	p11pki_store_cert_clear(&out);
	in.serial = "A1B";
	assert_int_equal(p11pki_store_cert_add(st, &in), P11PKI_E_EXISTS);
	in.serial = "1A2B3C";

	/* The same serial from the same CA is refused by the database. */
	in.subject = "CN=other";
	assert_int_equal(p11pki_store_cert_add(st, &in), P11PKI_E_EXISTS);
	assert_msg_has("CA 'issuing' already issued a certificate with serial 1A2B3C");
	assert_msg_has(path);
	/* Another CA may use it. */
	in.ca = "other";
	check(p11pki_store_cert_add(st, &in));
	p11pki_store_close(st);
}

static void test_cert_add_errors(void **state)
{
	p11pki_store *st = open_ok();
	struct p11pki_store_cert in = cert("nope", "1", 2000000000, 1700000000), out;
	size_t n = 1;

	add_ca(st, "issuing");
	assert_int_equal(p11pki_store_cert_add(st, &in), P11PKI_E_NOTFOUND);
	assert_msg_has("has no CA named 'nope'");
	in.ca = "issuing";
	in.serial = "-0A"; /* BN_bn2hex of a negative serial */
	assert_int_equal(p11pki_store_cert_add(st, &in), P11PKI_E_ARG);
	assert_msg_has("serial '-0A' is not a hexadecimal number of at most 40 digits");
	in.serial = "";
	assert_int_equal(p11pki_store_cert_add(st, &in), P11PKI_E_ARG);
	in.serial = "1A:2B";
	assert_int_equal(p11pki_store_cert_add(st, &in), P11PKI_E_ARG);
	in.serial = "1234567890123456789012345678901234567890A";
	assert_int_equal(p11pki_store_cert_add(st, &in), P11PKI_E_ARG);
	/* 40 digits after the leading zeros go. */
	in.serial = "0001234567890123456789012345678901234567890";
	check(p11pki_store_cert_add(st, &in));
	in.serial = "1";
	in.pem = NULL;
	assert_int_equal(p11pki_store_cert_add(st, &in), P11PKI_E_ARG);
	assert_int_equal(p11pki_store_cert_add(st, NULL), P11PKI_E_ARG);
	assert_int_equal(p11pki_store_cert_add(NULL, &in), P11PKI_E_ARG);

	out.pem = (char *)1;
	assert_int_equal(p11pki_store_cert_get(st, "issuing", "xyz", &out), P11PKI_E_ARG);
	assert_null(out.pem);
	assert_int_equal(p11pki_store_cert_get(st, "issuing", "1", &out), P11PKI_E_NOTFOUND);
	assert_msg_has("no certificate with serial 1 issued by CA 'issuing'");
	check(p11pki_store_cert_count(st, "issuing", &n));
	assert_int_equal(n, 1);
	p11pki_store_close(st);
}

static void test_revoke(void **state)
{
	p11pki_store *st = open_ok();
	struct p11pki_store_cert in = cert("issuing", "ABCDEF", 2000000000, 1700000000), out;

	add_ca(st, "issuing");
	check(p11pki_store_cert_add(st, &in));
	check(p11pki_store_cert_revoke(st, "issuing", "ABCDEF", 1750000000, 1));
	check(p11pki_store_cert_get(st, "issuing", "ABCDEF", &out));
	assert_int_equal(out.status, P11PKI_CERT_REVOKED);
	assert_int_equal(out.revoked, 1750000000);
	assert_int_equal(out.reason, 1);
	p11pki_store_cert_clear(&out);

	assert_int_equal(p11pki_store_cert_revoke(st, "issuing", "abcdef", 1760000000, 4), P11PKI_E_EXISTS);
	assert_msg_has("certificate ABCDEF of CA 'issuing' is already revoked");
	check(p11pki_store_cert_get(st, "issuing", "ABCDEF", &out));
	assert_int_equal(out.revoked, 1750000000); /* unchanged */
	assert_int_equal(out.reason, 1);
	p11pki_store_cert_clear(&out);

	assert_int_equal(p11pki_store_cert_revoke(st, "issuing", "1234", 0, 0), P11PKI_E_NOTFOUND);
	assert_msg_has("no certificate with serial 1234 issued by CA 'issuing'");
	assert_int_equal(p11pki_store_cert_revoke(st, "other", "ABCDEF", 0, 0), P11PKI_E_NOTFOUND);
	assert_int_equal(p11pki_store_cert_revoke(st, "issuing", "ABCDEF", 0, 7), P11PKI_E_ARG);
	assert_int_equal(p11pki_store_cert_revoke(st, "issuing", "ABCDEF", 0, 11), P11PKI_E_ARG);

	/* No reason (-1) is stored as none; 0 means now. */
	in.serial = "1";
	check(p11pki_store_cert_add(st, &in));
	check(p11pki_store_cert_revoke(st, "issuing", "1", 0, -1));
	check(p11pki_store_cert_get(st, "issuing", "1", &out));
	assert_int_equal(out.reason, -1);
	assert_true(out.revoked > 1700000000);
	p11pki_store_cert_clear(&out);
	p11pki_store_close(st);
}

static void assert_serials(struct p11pki_store_cert *certs, size_t n, const char *want)
{
	char buf[256] = "";
	size_t i, len = 0;

	for (i = 0; i < n; i++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%s", i > 0 ? "," : "", certs[i].serial);
	if (strcmp(buf, want) != 0)
		print_error("got %s, want %s\n", buf, want);
	assert_string_equal(buf, want);
	p11pki_store_cert_list_free(certs, n);
}

static void test_list_filters(void **state)
{
	p11pki_store *st = open_ok();
	time_t now = time(NULL), day = 86400;
	struct p11pki_store_cert c;
	struct p11pki_store_filter f = { 0 };
	struct p11pki_store_cert *certs = NULL;
	size_t n = 0;

	add_ca(st, "issuing");
	add_ca(st, "other");
	/* Issued out of serial order, to see the list is oldest first. */
	c = cert("issuing", "5", now + 10 * day, now - 5 * day);
	check(p11pki_store_cert_add(st, &c));
	c = cert("issuing", "1", now + 100 * day, now - 9 * day);
	check(p11pki_store_cert_add(st, &c));
	c = cert("issuing", "2", now - day, now - 8 * day); /* expired */
	check(p11pki_store_cert_add(st, &c));
	c = cert("issuing", "3", now + 20 * day, now - 7 * day);
	check(p11pki_store_cert_add(st, &c));
	c = cert("issuing", "4", now - 2 * day, now - 6 * day); /* expired */
	check(p11pki_store_cert_add(st, &c));
	c = cert("other", "9", now + day, now);
	check(p11pki_store_cert_add(st, &c));
	check(p11pki_store_cert_revoke(st, "issuing", "3", now, 1));
	check(p11pki_store_cert_revoke(st, "issuing", "4", now, 4));

	check(p11pki_store_cert_list(st, "issuing", NULL, &certs, &n));
	assert_serials(certs, n, "1,2,3,4,5");
	check(p11pki_store_cert_list(st, "issuing", &f, &certs, &n));
	assert_serials(certs, n, "1,2,3,4,5");

	f.revoked_only = 1;
	check(p11pki_store_cert_list(st, "issuing", &f, &certs, &n));
	assert_serials(certs, n, "3");
	f.include_expired = 1;
	check(p11pki_store_cert_list(st, "issuing", &f, &certs, &n));
	assert_serials(certs, n, "3,4");

	f.revoked_only = 0;
	f.include_expired = 0;
	f.expiring_before = now + 30 * day; /* valid ones only: not 3 */
	check(p11pki_store_cert_list(st, "issuing", &f, &certs, &n));
	assert_int_equal(n, 2);
	assert_serials(certs, n, "2,5");

	f.expiring_before = 0;
	check(p11pki_store_cert_list(st, "nope", &f, &certs, &n));
	assert_null(certs);
	assert_int_equal(n, 0);

	check(p11pki_store_cert_count(st, "issuing", &n));
	assert_int_equal(n, 5);
	check(p11pki_store_cert_count(st, "other", &n));
	assert_int_equal(n, 1);
	assert_int_equal(p11pki_store_cert_list(st, NULL, &f, &certs, &n), P11PKI_E_ARG);
	p11pki_store_close(st);
}

static void test_crl_numbers(void **state)
{
	p11pki_store *st = open_ok();
	unsigned long long num = 99;

	add_ca(st, "issuing");
	add_ca(st, "other");
	check(p11pki_store_next_crl_number(st, "issuing", &num));
	assert_int_equal(num, 1);
	check(p11pki_store_next_crl_number(st, "issuing", &num));
	assert_int_equal(num, 2);
	check(p11pki_store_next_crl_number(st, "other", &num));
	assert_int_equal(num, 1);
	p11pki_store_close(st);

	/* The counter lives in the file. */
	st = open_ok();
	check(p11pki_store_next_crl_number(st, "issuing", &num));
	assert_int_equal(num, 3);
	assert_int_equal(p11pki_store_next_crl_number(st, "nope", &num), P11PKI_E_NOTFOUND);
	assert_int_equal(num, 0);
	assert_msg_has("has no CA named 'nope'");
	p11pki_store_close(st);
}

/* ---- locks ---- */

static void test_locked(void **state)
{
	p11pki_store *st = open_ok();
	struct p11pki_store_cert c = cert("issuing", "77", 2000000000, 1700000000);
	sqlite3 *other = NULL;
	size_t n = 9;

	add_ca(st, "issuing");
	/* Another writer holds the lock for longer than we wait. */
	assert_int_equal(sqlite3_open_v2(path, &other, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_busy_timeout(p11pki_store_sqlite(st), 20);
	assert_int_equal(p11pki_store_cert_add(st, &c), P11PKI_E_IO);
	assert_msg_has(path);
	assert_msg_has("add certificate 77 of CA 'issuing': database is locked (gave up after");
	/* WAL: readers are not blocked by a writer. */
	check(p11pki_store_cert_count(st, "issuing", &n));
	assert_int_equal(n, 0);

	assert_int_equal(sqlite3_exec(other, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(other);
	check(p11pki_store_cert_add(st, &c));
	p11pki_store_close(st);
}

/* ---- concurrency inside one process ---- */

#define THREADS 4
#define PER_THREAD 40

struct worker {
	p11pki_store *st; /* shared, or NULL to open one */
	int id;
	int failures;
};

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	p11pki_store *st = w->st;
	char serial[32];
	int i;

	if (st == NULL && p11pki_store_open(path, &st) != 0) {
		w->failures++;
		return NULL;
	}
	for (i = 0; i < PER_THREAD; i++) {
		struct p11pki_store_cert c;

		snprintf(serial, sizeof(serial), "%X", (unsigned int)(w->id * 1000 + i + 1));
		c = cert("issuing", serial, 2000000000, 1700000000);
		if (p11pki_store_cert_add(st, &c) != 0) {
			fprintf(stderr, "thread %d: %s\n", w->id, p11pki_errmsg());
			w->failures++;
		}
	}
	if (w->st == NULL)
		p11pki_store_close(st);
	return NULL;
}

static void run_threads(p11pki_store *shared)
{
	pthread_t t[THREADS];
	struct worker w[THREADS];
	int i;

	for (i = 0; i < THREADS; i++) {
		w[i] = (struct worker){ shared, i + (shared != NULL ? 0 : THREADS), 0 };
		assert_int_equal(pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
	}
	for (i = 0; i < THREADS; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].failures, 0);
	}
}

static void test_threads(void **state)
{
	p11pki_store *st = open_ok();
	size_t n = 0;

	add_ca(st, "issuing");
	run_threads(st);   /* one store shared: its mutex serialises */
	run_threads(NULL); /* a store per thread: SQLite's locks */
	check(p11pki_store_cert_count(st, "issuing", &n));
	assert_int_equal(n, 2 * THREADS * PER_THREAD);
	p11pki_store_close(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_create_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_schema_recorded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connection_settings, setup, teardown),
		cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_schema_version, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_a_store, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_directory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_uncreatable_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ca, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ca_names_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cert_add_get, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cert_add_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_revoke, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_filters, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crl_numbers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_locked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
