/* SQLite backend of the CA store (store.h): one database file in WAL mode,
 * so several processes can issue at once, with synchronous=FULL, so a row
 * survives SIGKILL and power loss once p11pki_store_cert_add returned.
 *
 * Threads: one p11pki_store may be shared by threads; a mutex serialises
 * its calls (one connection runs one transaction at a time). Threads or
 * processes that should issue in parallel open a store each: SQLite's file
 * locks order their transactions and the busy timeout makes them wait. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "ca/store.h"
#include "core/text.h"

#define BUSY_TIMEOUT_MS 30000
#define TXN_ATTEMPTS 4	 /* each after a full busy timeout */
#define SERIAL_MAX 40	 /* hex digits: RFC 5280 allows 20 octets */
#define SHOWN_MAX 160	 /* bytes of a name quoted in a message */

struct p11pki_store {
	sqlite3 *db;
	char *path;
	char *shown_path;	/* path made printable, for messages */
	int version;
	int rc;			/* last SQLite failure: retry when busy */
	char op[2 * SHOWN_MAX + 64]; /* what we are doing, for messages */
	pthread_mutex_t lock;
};

/* Migration i takes a store from schema version i to i + 1, in one
 * transaction. Append only: a released entry never changes. */
static const char *const migrations[] = {
	/* 0 -> 1 */
	"CREATE TABLE meta(key TEXT NOT NULL PRIMARY KEY, value TEXT NOT NULL);"
	"CREATE TABLE cas(name TEXT NOT NULL PRIMARY KEY, parent TEXT,"
	" key_uri TEXT NOT NULL, cert_pem TEXT, chain_pem TEXT, config TEXT,"
	" created INTEGER, crl_number INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE certs(ca TEXT NOT NULL REFERENCES cas(name),"
	" serial TEXT NOT NULL, subject TEXT, sans TEXT, profile TEXT,"
	" requester TEXT, pem TEXT NOT NULL, not_before INTEGER,"
	" not_after INTEGER, issued INTEGER,"
	" status INTEGER NOT NULL DEFAULT 0 CHECK (status IN (0, 1)),"
	" revoked INTEGER, reason INTEGER, PRIMARY KEY(ca, serial));"
	"CREATE INDEX certs_ca_status ON certs(ca, status);"
	"CREATE INDEX certs_ca_not_after ON certs(ca, not_after);",
	/* 1 -> 2: EST enrollment users */
	"CREATE TABLE est_users(name TEXT NOT NULL PRIMARY KEY,"
	" ca TEXT NOT NULL REFERENCES cas(name), profile TEXT NOT NULL,"
	" secret_hash TEXT NOT NULL, created INTEGER,"
	" disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)));",
};

_Static_assert(sizeof(migrations) / sizeof(migrations[0]) == P11PKI_STORE_SCHEMA_VERSION,
	       "one migration per schema version");

#define CERT_COLUMNS                                                                     \
	"ca, serial, subject, sans, profile, requester, pem, not_before, not_after, issued, " \
	"status, revoked, reason"

typedef int (*step_fn)(p11pki_store *st, void *arg);

/* ---- messages ---- */

/* Names the operation for messages; %s arguments must go through
 * p11pki_shown_ascii() first. */
static void P11PKI_PRINTF(2, 3) set_op(p11pki_store *st, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(st->op, sizeof(st->op), fmt, ap);
	va_end(ap);
}

static int db_code(int rc)
{
	return (rc & 0xff) == SQLITE_NOMEM ? P11PKI_E_NOMEM : P11PKI_E_IO;
}

/* "store PATH: OPERATION: sqlite's message" for a failed SQLite call. */
static int db_fail(p11pki_store *st, int rc)
{
	const char *msg = st->db != NULL ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc);

	st->rc = rc;
	return p11pki_fail(db_code(rc), "store %s: %s: %s", st->shown_path, st->op, msg);
}

static int nomem(p11pki_store *st)
{
	return p11pki_fail(P11PKI_E_NOMEM, "store %s: %s: out of memory", st->shown_path, st->op);
}

static int is_busy(int rc)
{
	return (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED;
}

/* ---- input checks ---- */

static int is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

/* The form of store.h: uppercase hex without leading zeros. Anything else
 * would let "0A" and "A" pass the primary key as two serials. */
static int serial_canonical(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (!is_hex(s[i]) || i >= SERIAL_MAX)
			return 0;
	return i > 0 && (s[0] != '0' || i == 1);
}

/* Brings a serial to that form, on the way in and for lookups: BN_bn2hex
 * writes whole bytes ("0A1B"), users type lowercase ("0a1b"). */
static int serial_norm(const char *in, char *buf, size_t size)
{
	char tmp[64];
	size_t i = 0, j = 0;

	while (in[i] == '0' && in[i + 1] != '\0')
		i++;
	for (; in[i] != '\0' && j + 1 < size; i++, j++)
		buf[j] = (in[i] >= 'a' && in[i] <= 'f') ? (char)(in[i] - 'a' + 'A') : in[i];
	buf[j] = '\0';
	if (in[i] != '\0' || !serial_canonical(buf))
		return p11pki_fail(P11PKI_E_ARG, "serial '%s' is not a hexadecimal number of at most %d digits",
				   p11pki_shown_ascii(in, tmp, sizeof(tmp)), SERIAL_MAX);
	return P11PKI_OK;
}

static int name_ok(const char *s)
{
	return s != NULL && *s != '\0';
}

static int reason_ok(int reason)
{
	/* RFC 5280 CRLReason: 0..10, 7 is not used. */
	return reason >= -1 && reason <= 10 && reason != 7;
}

/* ---- statements ---- */

static int prepare(p11pki_store *st, const char *sql, sqlite3_stmt **stmt)
{
	int rc = sqlite3_prepare_v2(st->db, sql, -1, stmt, NULL);

	return rc == SQLITE_OK ? P11PKI_OK : db_fail(st, rc);
}

static int exec(p11pki_store *st, const char *sql)
{
	int rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? P11PKI_OK : db_fail(st, rc);
}

/* Binds strings to ?1, ?2, ...; NULL binds SQL NULL. The strings outlive
 * the statement, so SQLite need not copy them. */
static int bind_texts(p11pki_store *st, sqlite3_stmt *stmt, const char *const *v, int n)
{
	int i, rc = SQLITE_OK;

	for (i = 0; i < n && rc == SQLITE_OK; i++)
		rc = v[i] != NULL ? sqlite3_bind_text(stmt, i + 1, v[i], -1, SQLITE_STATIC)
				  : sqlite3_bind_null(stmt, i + 1);
	return rc == SQLITE_OK ? P11PKI_OK : db_fail(st, rc);
}

/* Binds an integer, or NULL when `present` is false. */
static int bind_int(p11pki_store *st, sqlite3_stmt *stmt, int i, int64_t v, int present)
{
	int rc = present ? sqlite3_bind_int64(stmt, i, v) : sqlite3_bind_null(stmt, i);

	return rc == SQLITE_OK ? P11PKI_OK : db_fail(st, rc);
}

/* Runs a statement that returns no rows to completion. */
static int step_done(p11pki_store *st, sqlite3_stmt *stmt)
{
	int rc;

	while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
		;
	return rc == SQLITE_DONE ? P11PKI_OK : db_fail(st, rc);
}

/* One step that must produce a row: 1 row, 0 none, <0 failure. */
static int step_row(p11pki_store *st, sqlite3_stmt *stmt)
{
	int rc = sqlite3_step(stmt);

	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : db_fail(st, rc);
}

/* Copies a text column; SQL NULL stays NULL. */
static int col_str(p11pki_store *st, sqlite3_stmt *stmt, int i, char **out)
{
	const unsigned char *s;

	*out = NULL;
	if (sqlite3_column_type(stmt, i) == SQLITE_NULL)
		return P11PKI_OK;
	s = sqlite3_column_text(stmt, i);
	if (s == NULL || (*out = strdup((const char *)s)) == NULL)
		return nomem(st);
	return P11PKI_OK;
}

static int64_t col_int(sqlite3_stmt *stmt, int i, int64_t if_null)
{
	return sqlite3_column_type(stmt, i) == SQLITE_NULL ? if_null : sqlite3_column_int64(stmt, i);
}

/* ---- transactions ---- */

static void lock(p11pki_store *st)
{
	pthread_mutex_lock(&st->lock);
}

static void unlock(p11pki_store *st)
{
	pthread_mutex_unlock(&st->lock);
}

/* A short random pause so processes that collided do not collide again. */
static void backoff(int attempt)
{
	struct timespec now, pause;
	unsigned int seed;
	long ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	seed = (unsigned int)now.tv_nsec ^ ((unsigned int)getpid() * 2654435761u);
	ms = 5 + rand_r(&seed) % (50L * attempt);
	pause.tv_sec = 0;
	pause.tv_nsec = ms * 1000000L;
	nanosleep(&pause, NULL);
}

/* Calls fn again while SQLite reports busy or locked after its own busy
 * timeout; fn starts by clearing what an earlier attempt left. */
static int with_retry(p11pki_store *st, step_fn fn, void *arg)
{
	char msg[512];
	int attempt, r = P11PKI_OK;

	for (attempt = 0; attempt < TXN_ATTEMPTS; attempt++) {
		if (attempt > 0)
			backoff(attempt);
		st->rc = SQLITE_OK;
		if ((r = fn(st, arg)) == P11PKI_OK || !is_busy(st->rc))
			return r;
	}
	snprintf(msg, sizeof(msg), "%s", p11pki_errmsg());
	return p11pki_fail(r, "%s (gave up after %d attempts)", msg, TXN_ATTEMPTS);
}

struct txn {
	const char *begin;
	step_fn fn;
	void *arg;
};

static void rollback(p11pki_store *st)
{
	/* A failed COMMIT may already have ended the transaction. */
	if (!sqlite3_get_autocommit(st->db))
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
}

static int txn_once(p11pki_store *st, void *arg)
{
	struct txn *t = arg;
	int r;

	if ((r = exec(st, t->begin)) != 0)
		return r;
	if ((r = t->fn(st, t->arg)) == 0)
		r = exec(st, "COMMIT");
	if (r != 0)
		rollback(st);
	return r;
}

/* BEGIN IMMEDIATE takes the write lock up front: a transaction that reads
 * then writes would otherwise fail with SQLITE_BUSY_SNAPSHOT. */
static int write_txn(p11pki_store *st, step_fn fn, void *arg)
{
	struct txn t = { "BEGIN IMMEDIATE", fn, arg };

	return with_retry(st, txn_once, &t);
}

/* Reads run in a transaction too: one snapshot, and the same retries. */
static int read_txn(p11pki_store *st, step_fn fn, void *arg)
{
	struct txn t = { "BEGIN", fn, arg };

	return with_retry(st, txn_once, &t);
}

/* ---- opening and the schema ---- */

static int store_new(const char *path, p11pki_store **out)
{
	p11pki_store *st = calloc(1, sizeof(*st));
	char buf[SHOWN_MAX];

	*out = NULL;
	if (st == NULL)
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory opening store %s",
				   p11pki_shown_ascii(path, buf, sizeof(buf)));
	st->path = strdup(path);
	st->shown_path = strdup(p11pki_shown_ascii(path, buf, sizeof(buf)));
	if (st->path == NULL || st->shown_path == NULL || pthread_mutex_init(&st->lock, NULL) != 0) {
		free(st->path);
		free(st->shown_path);
		free(st);
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory opening store %s", buf);
	}
	*out = st;
	return P11PKI_OK;
}

static int create_failed(p11pki_store *st, int err)
{
	char dir[PATH_MAX], buf[SHOWN_MAX];
	char *slash;

	if (err != ENOENT)
		return p11pki_fail(P11PKI_E_IO, "store %s: cannot create the file: %s", st->shown_path, strerror(err));
	snprintf(dir, sizeof(dir), "%s", st->path);
	slash = strrchr(dir, '/');
	if (slash == NULL)
		snprintf(dir, sizeof(dir), ".");
	else
		slash[slash == dir] = '\0'; /* keep "/" for a file in the root */
	return p11pki_fail(P11PKI_E_IO, "store %s: cannot create the file: directory %s does not exist",
			   st->shown_path, p11pki_shown_ascii(dir, buf, sizeof(buf)));
}

/* We create the file, not SQLite, so it is 0600 whatever the umask (fchmod
 * is not masked); SQLite gives its -wal and -shm files the same mode. It
 * also syncs the directory when it creates the WAL, which makes the new
 * entry durable before the first commit. */
static int create_file(p11pki_store *st)
{
	int fd = open(st->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	int err;

	if (fd < 0)
		return errno == EEXIST ? P11PKI_OK : create_failed(st, errno);
	if (fchmod(fd, 0600) != 0) {
		err = errno;
		close(fd);
		unlink(st->path);
		return create_failed(st, err);
	}
	close(fd);
	return P11PKI_OK;
}

static int set_pragmas(p11pki_store *st, void *arg)
{
	sqlite3_stmt *stmt = NULL;
	const unsigned char *mode;
	int r;

	/* journal_mode answers with the mode it got, which stays "delete"
	 * where WAL is impossible (some network file systems). */
	if ((r = prepare(st, "PRAGMA journal_mode=WAL", &stmt)) != 0)
		goto out;
	if ((r = step_row(st, stmt)) < 0)
		goto out;
	mode = r > 0 ? sqlite3_column_text(stmt, 0) : NULL;
	if (mode == NULL || strcmp((const char *)mode, "wal") != 0)
		p11pki_log(P11PKI_LOG_WARN, "store %s: WAL mode unavailable, journal mode is %s",
			   st->shown_path, mode != NULL ? (const char *)mode : "unknown");
	r = exec(st, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON");
out:
	sqlite3_finalize(stmt);
	return r;
}

static int connect_db(p11pki_store *st)
{
	/* No SQLITE_OPEN_CREATE: create_file made the file with its mode.
	 * NOMUTEX: st->lock already serialises every use of the handle. */
	int rc = sqlite3_open_v2(st->path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);

	set_op(st, "open");
	if (rc != SQLITE_OK)
		return db_fail(st, rc);
	sqlite3_extended_result_codes(st->db, 1);
	sqlite3_busy_timeout(st->db, BUSY_TIMEOUT_MS);
	set_op(st, "set up the connection");
	return with_retry(st, set_pragmas, NULL);
}

/* 1 if the database has a meta table, 0 if it is empty, else refused. */
static int has_meta(p11pki_store *st)
{
	sqlite3_stmt *stmt = NULL;
	int r, tables, meta;

	r = prepare(st, "SELECT count(*), count(*) FILTER (WHERE type = 'table' AND name = 'meta')"
			" FROM sqlite_master", &stmt);
	if (r != 0 || (r = step_row(st, stmt)) < 0)
		goto out;
	tables = sqlite3_column_int(stmt, 0);
	meta = sqlite3_column_int(stmt, 1);
	r = meta > 0 ? 1 : 0;
	if (meta == 0 && tables > 0)
		r = p11pki_fail(P11PKI_E_ARG, "store %s is not a p11pki store: it has tables but no schema version",
				st->shown_path);
out:
	sqlite3_finalize(stmt);
	return r;
}

static int parse_version(p11pki_store *st, const unsigned char *s, int *version)
{
	const char *text = s != NULL ? (const char *)s : "";
	char buf[32];
	char *end;
	long v;

	errno = 0;
	v = strtol(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0' || v < 1 || v > INT_MAX)
		return p11pki_fail(P11PKI_E_ARG, "store %s: schema version '%s' is not a positive number",
				   st->shown_path, p11pki_shown_ascii(text, buf, sizeof(buf)));
	*version = (int)v;
	return P11PKI_OK;
}

/* The schema version in the file; 0 for a new, empty one. */
static int read_version(p11pki_store *st, int *version)
{
	sqlite3_stmt *stmt = NULL;
	int r;

	*version = 0;
	if ((r = has_meta(st)) <= 0)
		return r;
	if ((r = prepare(st, "SELECT value FROM meta WHERE key = 'schema_version'", &stmt)) != 0)
		goto out;
	if ((r = step_row(st, stmt)) == 0)
		r = p11pki_fail(P11PKI_E_ARG, "store %s has no schema version in its meta table", st->shown_path);
	else if (r > 0)
		r = parse_version(st, sqlite3_column_text(stmt, 0), version);
out:
	sqlite3_finalize(stmt);
	return r;
}

static int read_version_txn(p11pki_store *st, void *arg)
{
	return read_version(st, arg);
}

static int too_new(p11pki_store *st)
{
	return p11pki_fail(P11PKI_E_UNSUPPORTED,
			   "store %s has schema version %d, newer than this p11pki understands (%d): upgrade p11pki",
			   st->shown_path, st->version, P11PKI_STORE_SCHEMA_VERSION);
}

static int write_version(p11pki_store *st, int version)
{
	sqlite3_stmt *stmt = NULL;
	int r;

	r = prepare(st, "INSERT INTO meta(key, value) VALUES ('schema_version', ?1)"
			" ON CONFLICT(key) DO UPDATE SET value = excluded.value", &stmt);
	if (r == 0 && (r = bind_int(st, stmt, 1, version, 1)) == 0)
		r = step_done(st, stmt);
	sqlite3_finalize(stmt);
	return r;
}

/* One migration. The version is read again under the write lock: another
 * process may have migrated since we looked. */
static int migrate_once(p11pki_store *st, void *arg)
{
	int r, v;

	if ((r = read_version(st, &v)) != 0)
		return r;
	st->version = v;
	if (v > P11PKI_STORE_SCHEMA_VERSION)
		return too_new(st);
	if (v == P11PKI_STORE_SCHEMA_VERSION)
		return P11PKI_OK;
	if ((r = exec(st, migrations[v])) != 0 || (r = write_version(st, v + 1)) != 0)
		return r;
	st->version = v + 1;
	return P11PKI_OK;
}

static int migrate(p11pki_store *st)
{
	int r;

	/* A look without the write lock first: the usual store is current,
	 * and a newer one is refused without blocking anybody. */
	set_op(st, "read the schema version");
	if ((r = read_txn(st, read_version_txn, &st->version)) != 0)
		return r;
	if (st->version > P11PKI_STORE_SCHEMA_VERSION)
		return too_new(st);
	while (st->version < P11PKI_STORE_SCHEMA_VERSION) {
		set_op(st, "migrate the schema from version %d", st->version);
		if ((r = write_txn(st, migrate_once, NULL)) != 0)
			return r;
	}
	return P11PKI_OK;
}

int p11pki_store_open(const char *path, p11pki_store **out)
{
	p11pki_store *st = NULL;
	int r;

	if (out != NULL)
		*out = NULL;
	if (path == NULL || *path == '\0' || out == NULL)
		return p11pki_fail(P11PKI_E_ARG, "opening a store needs a path");
	if ((r = store_new(path, &st)) != 0)
		goto out;
	if ((r = create_file(st)) != 0 || (r = connect_db(st)) != 0 || (r = migrate(st)) != 0)
		goto out;
	*out = st;
	st = NULL;
out:
	p11pki_store_close(st);
	return r;
}

void p11pki_store_close(p11pki_store *st)
{
	if (st == NULL)
		return;
	/* Every statement is finalised where it was prepared, so this closes;
	 * the last connection checkpoints and removes the WAL. */
	sqlite3_close(st->db);
	pthread_mutex_destroy(&st->lock);
	free(st->path);
	free(st->shown_path);
	free(st);
}

int p11pki_store_schema_version(p11pki_store *st)
{
	return st != NULL ? st->version : 0;
}

#ifdef UNITTEST
/* Lets the tests check the connection's settings and shorten its busy
 * timeout; only for a store no other thread uses meanwhile. */
sqlite3 *p11pki_store_sqlite(p11pki_store *st);

sqlite3 *p11pki_store_sqlite(p11pki_store *st)
{
	return st->db;
}
#endif

/* ---- CAs ---- */

static int ca_add_txn(p11pki_store *st, void *arg)
{
	const struct p11pki_store_ca *ca = arg;
	const char *texts[] = { ca->name, ca->parent, ca->key_uri, ca->cert_pem, ca->chain_pem, ca->config };
	sqlite3_stmt *stmt = NULL;
	char name[SHOWN_MAX];
	int r;

	r = prepare(st, "INSERT INTO cas(name, parent, key_uri, cert_pem, chain_pem, config, created)"
			" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)", &stmt);
	if (r != 0 || (r = bind_texts(st, stmt, texts, 6)) != 0)
		goto out;
	if ((r = bind_int(st, stmt, 7, ca->created != 0 ? ca->created : time(NULL), 1)) != 0)
		goto out;
	if ((r = step_done(st, stmt)) != 0 && st->rc == SQLITE_CONSTRAINT_PRIMARYKEY)
		r = p11pki_fail(P11PKI_E_EXISTS, "store %s already has a CA named '%s'", st->shown_path,
				p11pki_shown_ascii(ca->name, name, sizeof(name)));
out:
	sqlite3_finalize(stmt);
	return r;
}

int p11pki_store_ca_add(p11pki_store *st, const struct p11pki_store_ca *ca)
{
	char name[SHOWN_MAX];
	int r;

	if (st == NULL || ca == NULL || !name_ok(ca->name) || !name_ok(ca->key_uri))
		return p11pki_fail(P11PKI_E_ARG, "adding a CA to the store needs its name and key URI");
	lock(st);
	set_op(st, "add CA '%s'", p11pki_shown_ascii(ca->name, name, sizeof(name)));
	/* The cast drops const only to pass through void *; nothing writes. */
	r = write_txn(st, ca_add_txn, (void *)(uintptr_t)ca);
	unlock(st);
	return r;
}

struct ca_get_args {
	const char *name;
	struct p11pki_store_ca *out;
};

static int read_ca(p11pki_store *st, sqlite3_stmt *stmt, struct p11pki_store_ca *ca)
{
	char **strs[] = { &ca->name, &ca->parent, &ca->key_uri, &ca->cert_pem, &ca->chain_pem, &ca->config };
	size_t i;
	int r = P11PKI_OK;

	for (i = 0; i < sizeof(strs) / sizeof(strs[0]) && r == P11PKI_OK; i++)
		r = col_str(st, stmt, (int)i, strs[i]);
	ca->created = (time_t)col_int(stmt, 6, 0);
	if (r != 0)
		p11pki_store_ca_clear(ca);
	return r;
}

static int ca_get_txn(p11pki_store *st, void *arg)
{
	struct ca_get_args *a = arg;
	sqlite3_stmt *stmt = NULL;
	char name[SHOWN_MAX];
	int r;

	p11pki_store_ca_clear(a->out); /* from an earlier attempt */
	r = prepare(st, "SELECT name, parent, key_uri, cert_pem, chain_pem, config, created"
			" FROM cas WHERE name = ?1", &stmt);
	if (r != 0 || (r = bind_texts(st, stmt, &a->name, 1)) != 0 || (r = step_row(st, stmt)) < 0)
		goto out;
	if (r == 0)
		r = p11pki_fail(P11PKI_E_NOTFOUND, "store %s has no CA named '%s'", st->shown_path,
				p11pki_shown_ascii(a->name, name, sizeof(name)));
	else
		r = read_ca(st, stmt, a->out);
out:
	sqlite3_finalize(stmt);
	return r;
}

int p11pki_store_ca_get(p11pki_store *st, const char *name, struct p11pki_store_ca *out)
{
	struct ca_get_args a = { name, out };
	char buf[SHOWN_MAX];
	int r;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (st == NULL || !name_ok(name) || out == NULL)
		return p11pki_fail(P11PKI_E_ARG, "looking up a CA in the store needs its name");
	lock(st);
	set_op(st, "read CA '%s'", p11pki_shown_ascii(name, buf, sizeof(buf)));
	if ((r = read_txn(st, ca_get_txn, &a)) != 0)
		p11pki_store_ca_clear(out);
	unlock(st);
	return r;
}

struct ca_cert_args {
	const char *texts[3]; /* cert_pem, chain_pem, name */
};

static int ca_update_txn(p11pki_store *st, void *arg)
{
	struct ca_cert_args *a = arg;
	sqlite3_stmt *stmt = NULL;
	char name[SHOWN_MAX];
	int r;

	r = prepare(st, "UPDATE cas SET cert_pem = ?1, chain_pem = ?2 WHERE name = ?3", &stmt);
	if (r != 0 || (r = bind_texts(st, stmt, a->texts, 3)) != 0 || (r = step_done(st, stmt)) != 0)
		goto out;
	if (sqlite3_changes(st->db) == 0)
		r = p11pki_fail(P11PKI_E_NOTFOUND, "store %s has no CA named '%s'", st->shown_path,
				p11pki_shown_ascii(a->texts[2], name, sizeof(name)));
out:
	sqlite3_finalize(stmt);
	return r;
}

int p11pki_store_ca_update_cert(p11pki_store *st, const char *name, const char *cert_pem, const char *chain_pem)
{
	struct ca_cert_args a = { { cert_pem, chain_pem, name } };
	char buf[SHOWN_MAX];
	int r;

	if (st == NULL || !name_ok(name))
		return p11pki_fail(P11PKI_E_ARG, "updating a CA's certificate needs the CA's name");
	lock(st);
	set_op(st, "update the certificate of CA '%s'", p11pki_shown_ascii(name, buf, sizeof(buf)));
	r = write_txn(st, ca_update_txn, &a);
	unlock(st);
	return r;
}

struct names_args {
	char ***names;
	size_t *n;
};

static void clear_names(struct names_args *a)
{
	size_t i;

	for (i = 0; i < *a->n; i++)
		free((*a->names)[i]);
	free(*a->names);
	*a->names = NULL;
	*a->n = 0;
}

/* Appends a copy of column 0 to a growing array. */
static int push_name(p11pki_store *st, sqlite3_stmt *stmt, char ***names, size_t *n)
{
	char **grown;

	if ((*n & (*n - 1)) == 0) { /* grow at 0, 1, 2, 4, 8, ... */
		if ((grown = realloc(*names, (*n == 0 ? 1 : 2 * *n) * sizeof(*grown))) == NULL)
			return nomem(st);
		*names = grown;
	}
	if (col_str(st, stmt, 0, &(*names)[*n]) != 0)
		return P11PKI_E_NOMEM;
	(*n)++;
	return P11PKI_OK;
}

static int ca_names_txn(p11pki_store *st, void *arg)
{
	struct names_args *a = arg;
	sqlite3_stmt *stmt = NULL;
	int r;

	clear_names(a); /* from an earlier attempt */
	if ((r = prepare(st, "SELECT name FROM cas ORDER BY name", &stmt)) != 0)
		goto out;
	while ((r = step_row(st, stmt)) > 0)
		if ((r = push_name(st, stmt, a->names, a->n)) != 0)
			break;
out:
	sqlite3_finalize(stmt);
	return r;
}

int p11pki_store_ca_names(p11pki_store *st, char ***names, size_t *n)
{
	struct names_args a = { names, n };
	int r;

	if (names != NULL)
		*names = NULL;
	if (n != NULL)
		*n = 0;
	if (st == NULL || names == NULL || n == NULL)
		return p11pki_fail(P11PKI_E_ARG, "listing the store's CAs needs somewhere to put them");
	lock(st);
	set_op(st, "list CAs");
	if ((r = read_txn(st, ca_names_txn, &a)) != 0)
		clear_names(&a);
	unlock(st);
	return r;
}

void p11pki_store_ca_clear(struct p11pki_store_ca *ca)
{
	if (ca == NULL)
		return;
	free(ca->name);
	free(ca->parent);
	free(ca->key_uri);
	free(ca->cert_pem);
	free(ca->chain_pem);
	free(ca->config);
	memset(ca, 0, sizeof(*ca));
}

/* ---- certificates ---- */

static int bind_cert(p11pki_store *st, sqlite3_stmt *stmt, const struct p11pki_store_cert *c)
{
	const char *texts[] = { c->ca, c->serial, c->subject, c->sans, c->profile, c->requester, c->pem };
	int revoked = c->status == P11PKI_CERT_REVOKED;
	int r;

	/* A valid certificate has no revocation data, whatever the struct
	 * holds (a zeroed struct says reason 0, "unspecified"). */
	if ((r = bind_texts(st, stmt, texts, 7)) != 0 ||
	    (r = bind_int(st, stmt, 8, c->not_before, 1)) != 0 ||
	    (r = bind_int(st, stmt, 9, c->not_after, 1)) != 0 ||
	    (r = bind_int(st, stmt, 10, c->issued != 0 ? c->issued : time(NULL), 1)) != 0 ||
	    (r = bind_int(st, stmt, 11, revoked, 1)) != 0 ||
	    (r = bind_int(st, stmt, 12, c->revoked, revoked && c->revoked != 0)) != 0)
		return r;
	return bind_int(st, stmt, 13, c->reason, revoked && c->reason >= 0);
}

static int cert_add_txn(p11pki_store *st, void *arg)
{
	const struct p11pki_store_cert *c = arg;
	sqlite3_stmt *stmt = NULL;
	char ca[SHOWN_MAX];
	int r;

	r = prepare(st, "INSERT INTO certs(" CERT_COLUMNS ") VALUES"
			" (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)", &stmt);
	if (r != 0 || (r = bind_cert(st, stmt, c)) != 0 || (r = step_done(st, stmt)) == 0)
		goto out;
	p11pki_shown_ascii(c->ca, ca, sizeof(ca));
	if (st->rc == SQLITE_CONSTRAINT_PRIMARYKEY)
		r = p11pki_fail(P11PKI_E_EXISTS, "store %s: CA '%s' already issued a certificate with serial %s",
				st->shown_path, ca, c->serial);
	else if (st->rc == SQLITE_CONSTRAINT_FOREIGNKEY)
		r = p11pki_fail(P11PKI_E_NOTFOUND, "store %s has no CA named '%s'", st->shown_path, ca);
out:
	sqlite3_finalize(stmt);
	return r;
}

static int cert_check(const struct p11pki_store_cert *c)
{
	if (c == NULL || !name_ok(c->ca) || c->serial == NULL || !name_ok(c->pem))
		return p11pki_fail(P11PKI_E_ARG, "storing a certificate needs its CA, serial and PEM");
	if (c->status != P11PKI_CERT_VALID && c->status != P11PKI_CERT_REVOKED)
		return p11pki_fail(P11PKI_E_ARG, "certificate status %d is unknown", (int)c->status);
	if (c->status == P11PKI_CERT_REVOKED && !reason_ok(c->reason))
		return p11pki_fail(P11PKI_E_ARG, "%d is not a CRL reason code", c->reason);
	return P11PKI_OK;
}

int p11pki_store_cert_add(p11pki_store *st, const struct p11pki_store_cert *c)
{
	struct p11pki_store_cert row;
	char ca[SHOWN_MAX], serial[SERIAL_MAX + 1];
	int r;

	if (st == NULL)
		return p11pki_fail(P11PKI_E_ARG, "storing a certificate needs a store");
	if ((r = cert_check(c)) != 0 || (r = serial_norm(c->serial, serial, sizeof(serial))) != 0)
		return r;
	row = *c;
	row.serial = serial;
	lock(st);
	set_op(st, "add certificate %s of CA '%s'", serial, p11pki_shown_ascii(c->ca, ca, sizeof(ca)));
	r = write_txn(st, cert_add_txn, &row);
	unlock(st);
	return r;
}

static int read_cert(p11pki_store *st, sqlite3_stmt *stmt, struct p11pki_store_cert *c)
{
	char **strs[] = { &c->ca, &c->serial, &c->subject, &c->sans, &c->profile, &c->requester, &c->pem };
	size_t i;
	int r = P11PKI_OK;

	memset(c, 0, sizeof(*c));
	for (i = 0; i < sizeof(strs) / sizeof(strs[0]) && r == P11PKI_OK; i++)
		r = col_str(st, stmt, (int)i, strs[i]);
	c->not_before = (time_t)col_int(stmt, 7, 0);
	c->not_after = (time_t)col_int(stmt, 8, 0);
	c->issued = (time_t)col_int(stmt, 9, 0);
	c->status = col_int(stmt, 10, 0) == P11PKI_CERT_REVOKED ? P11PKI_CERT_REVOKED : P11PKI_CERT_VALID;
	c->revoked = (time_t)col_int(stmt, 11, 0);
	c->reason = (int)col_int(stmt, 12, -1);
	if (r != 0)
		p11pki_store_cert_clear(c);
	return r;
}

struct cert_key {
	const char *ca;
	char serial[SERIAL_MAX + 1]; /* normalised */
};

static int not_found(p11pki_store *st, const struct cert_key *k)
{
	char ca[SHOWN_MAX];

	return p11pki_fail(P11PKI_E_NOTFOUND, "store %s: no certificate with serial %s issued by CA '%s'",
			   st->shown_path, k->serial, p11pki_shown_ascii(k->ca, ca, sizeof(ca)));
}

/* Prepares sql with ?1 = CA and ?2 = serial bound. */
static int prepare_key(p11pki_store *st, const char *sql, const struct cert_key *k, sqlite3_stmt **stmt)
{
	const char *texts[] = { k->ca, k->serial };
	int r;

	if ((r = prepare(st, sql, stmt)) != 0)
		return r;
	return bind_texts(st, *stmt, texts, 2);
}

struct cert_get_args {
	struct cert_key key;
	struct p11pki_store_cert *out;
};

static int cert_get_txn(p11pki_store *st, void *arg)
{
	struct cert_get_args *a = arg;
	sqlite3_stmt *stmt = NULL;
	int r;

	p11pki_store_cert_clear(a->out); /* from an earlier attempt */
	r = prepare_key(st, "SELECT " CERT_COLUMNS " FROM certs WHERE ca = ?1 AND serial = ?2", &a->key, &stmt);
	if (r != 0 || (r = step_row(st, stmt)) < 0)
		goto out;
	r = r == 0 ? not_found(st, &a->key) : read_cert(st, stmt, a->out);
out:
	sqlite3_finalize(stmt);
	return r;
}

/* Fills a lookup key; the caller has checked ca and serial for NULL. */
static int key_init(struct cert_key *k, const char *ca, const char *serial)
{
	k->ca = ca;
	return serial_norm(serial, k->serial, sizeof(k->serial));
}

int p11pki_store_cert_get(p11pki_store *st, const char *ca, const char *serial, struct p11pki_store_cert *out)
{
	struct cert_get_args a;
	char buf[SHOWN_MAX];
	int r;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (st == NULL || !name_ok(ca) || serial == NULL || out == NULL)
		return p11pki_fail(P11PKI_E_ARG, "looking up a certificate needs its CA and serial");
	if ((r = key_init(&a.key, ca, serial)) != 0)
		return r;
	a.out = out;
	lock(st);
	set_op(st, "read certificate %s of CA '%s'", a.key.serial, p11pki_shown_ascii(ca, buf, sizeof(buf)));
	if ((r = read_txn(st, cert_get_txn, &a)) != 0)
		p11pki_store_cert_clear(out);
	unlock(st);
	return r;
}

struct revoke_args {
	struct cert_key key;
	time_t when;
	int reason;
};

/* Tells "unknown serial" from "already revoked" once the UPDATE of a
 * valid certificate changed nothing. */
static int revoke_refused(p11pki_store *st, const struct cert_key *k)
{
	sqlite3_stmt *stmt = NULL;
	char ca[SHOWN_MAX];
	int r;

	r = prepare_key(st, "SELECT 1 FROM certs WHERE ca = ?1 AND serial = ?2", k, &stmt);
	if (r != 0 || (r = step_row(st, stmt)) < 0)
		goto out;
	if (r == 0)
		r = not_found(st, k);
	else
		r = p11pki_fail(P11PKI_E_EXISTS, "store %s: certificate %s of CA '%s' is already revoked",
				st->shown_path, k->serial, p11pki_shown_ascii(k->ca, ca, sizeof(ca)));
out:
	sqlite3_finalize(stmt);
	return r;
}

static int revoke_txn(p11pki_store *st, void *arg)
{
	struct revoke_args *a = arg;
	sqlite3_stmt *stmt = NULL;
	int r;

	r = prepare_key(st, "UPDATE certs SET status = 1, revoked = ?3, reason = ?4"
			    " WHERE ca = ?1 AND serial = ?2 AND status = 0", &a->key, &stmt);
	if (r != 0 || (r = bind_int(st, stmt, 3, a->when, 1)) != 0 ||
	    (r = bind_int(st, stmt, 4, a->reason, a->reason >= 0)) != 0 || (r = step_done(st, stmt)) != 0)
		goto out;
	if (sqlite3_changes(st->db) == 0)
		r = revoke_refused(st, &a->key);
out:
	sqlite3_finalize(stmt);
	return r;
}

int p11pki_store_cert_revoke(p11pki_store *st, const char *ca, const char *serial, time_t when, int reason)
{
	struct revoke_args a;
	char buf[SHOWN_MAX];
	int r;

	if (st == NULL || !name_ok(ca) || serial == NULL)
		return p11pki_fail(P11PKI_E_ARG, "revoking a certificate needs its CA and serial");
	if (!reason_ok(reason))
		return p11pki_fail(P11PKI_E_ARG, "%d is not a CRL reason code (RFC 5280)", reason);
	if ((r = key_init(&a.key, ca, serial)) != 0)
		return r;
	a.when = when != 0 ? when : time(NULL);
	a.reason = reason;
	lock(st);
	set_op(st, "revoke certificate %s of CA '%s'", a.key.serial, p11pki_shown_ascii(ca, buf, sizeof(buf)));
	r = write_txn(st, revoke_txn, &a);
	unlock(st);
	return r;
}

struct list_args {
	const char *ca;
	struct p11pki_store_filter f;
	time_t now;
	struct p11pki_store_cert **out;
	size_t *n;
};

static void clear_list(struct list_args *a)
{
	p11pki_store_cert_list_free(*a->out, *a->n);
	*a->out = NULL;
	*a->n = 0;
}

static int push_cert(p11pki_store *st, sqlite3_stmt *stmt, struct p11pki_store_cert **certs, size_t *n)
{
	struct p11pki_store_cert *grown;

	if ((*n & (*n - 1)) == 0) { /* grow at 0, 1, 2, 4, 8, ... */
		if ((grown = realloc(*certs, (*n == 0 ? 1 : 2 * *n) * sizeof(*grown))) == NULL)
			return nomem(st);
		*certs = grown;
	}
	if (read_cert(st, stmt, &(*certs)[*n]) != 0)
		return P11PKI_E_NOMEM;
	(*n)++;
	return P11PKI_OK;
}

/* One fixed statement; the filter only binds values. revoked_only drops
 * revoked certificates already expired (no CRL needs them) unless
 * include_expired; expiring_before keeps valid ones ending before it. */
static int bind_filter(p11pki_store *st, sqlite3_stmt *stmt, const struct list_args *a)
{
	int r;

	if ((r = bind_texts(st, stmt, &a->ca, 1)) != 0 || (r = bind_int(st, stmt, 2, a->f.revoked_only != 0, 1)) != 0 ||
	    (r = bind_int(st, stmt, 3, a->f.include_expired != 0, 1)) != 0 || (r = bind_int(st, stmt, 4, a->now, 1)) != 0)
		return r;
	return bind_int(st, stmt, 5, a->f.expiring_before, 1);
}

static int list_txn(p11pki_store *st, void *arg)
{
	struct list_args *a = arg;
	sqlite3_stmt *stmt = NULL;
	int r;

	clear_list(a); /* from an earlier attempt */
	r = prepare(st, "SELECT " CERT_COLUMNS " FROM certs WHERE ca = ?1"
			" AND (?2 = 0 OR (status = 1 AND (?3 <> 0 OR not_after >= ?4)))"
			" AND (?5 = 0 OR (status = 0 AND not_after < ?5))"
			" ORDER BY issued, rowid", &stmt);
	if (r != 0 || (r = bind_filter(st, stmt, a)) != 0)
		goto out;
	while ((r = step_row(st, stmt)) > 0)
		if ((r = push_cert(st, stmt, a->out, a->n)) != 0)
			break;
out:
	sqlite3_finalize(stmt);
	return r;
}

int p11pki_store_cert_list(p11pki_store *st, const char *ca, const struct p11pki_store_filter *f,
			   struct p11pki_store_cert **out, size_t *n)
{
	struct list_args a = { ca, { 0, 0, 0 }, time(NULL), out, n };
	char buf[SHOWN_MAX];
	int r;

	if (out != NULL)
		*out = NULL;
	if (n != NULL)
		*n = 0;
	if (st == NULL || !name_ok(ca) || out == NULL || n == NULL)
		return p11pki_fail(P11PKI_E_ARG, "listing certificates needs the CA's name");
	if (f != NULL)
		a.f = *f;
	lock(st);
	set_op(st, "list certificates of CA '%s'", p11pki_shown_ascii(ca, buf, sizeof(buf)));
	if ((r = read_txn(st, list_txn, &a)) != 0)
		clear_list(&a);
	unlock(st);
	return r;
}

void p11pki_store_cert_clear(struct p11pki_store_cert *c)
{
	if (c == NULL)
		return;
	free(c->ca);
	free(c->serial);
	free(c->subject);
	free(c->sans);
	free(c->profile);
	free(c->requester);
	free(c->pem);
	memset(c, 0, sizeof(*c));
}

void p11pki_store_cert_list_free(struct p11pki_store_cert *certs, size_t n)
{
	size_t i;

	if (certs == NULL)
		return;
	for (i = 0; i < n; i++)
		p11pki_store_cert_clear(&certs[i]);
	free(certs);
}

struct count_args {
	const char *ca;
	size_t *n;
};

static int count_txn(p11pki_store *st, void *arg)
{
	struct count_args *a = arg;
	sqlite3_stmt *stmt = NULL;
	int r;

	r = prepare(st, "SELECT count(*) FROM certs WHERE ca = ?1", &stmt);
	if (r != 0 || (r = bind_texts(st, stmt, &a->ca, 1)) != 0 || (r = step_row(st, stmt)) < 0)
		goto out;
	*a->n = (size_t)sqlite3_column_int64(stmt, 0);
	r = P11PKI_OK;
out:
	sqlite3_finalize(stmt);
	return r;
}

int p11pki_store_cert_count(p11pki_store *st, const char *ca, size_t *n)
{
	struct count_args a = { ca, n };
	char buf[SHOWN_MAX];
	int r;

	if (n != NULL)
		*n = 0;
	if (st == NULL || !name_ok(ca) || n == NULL)
		return p11pki_fail(P11PKI_E_ARG, "counting certificates needs the CA's name");
	lock(st);
	set_op(st, "count certificates of CA '%s'", p11pki_shown_ascii(ca, buf, sizeof(buf)));
	r = read_txn(st, count_txn, &a);
	unlock(st);
	return r;
}

/* ---- CRL numbers ---- */

struct crl_args {
	const char *ca;
	unsigned long long *out;
};

static int crl_txn(p11pki_store *st, void *arg)
{
	struct crl_args *a = arg;
	sqlite3_stmt *stmt = NULL;
	char ca[SHOWN_MAX];
	int r;

	r = prepare(st, "UPDATE cas SET crl_number = crl_number + 1 WHERE name = ?1 RETURNING crl_number", &stmt);
	if (r != 0 || (r = bind_texts(st, stmt, &a->ca, 1)) != 0 || (r = step_row(st, stmt)) < 0)
		goto out;
	if (r == 0) {
		r = p11pki_fail(P11PKI_E_NOTFOUND, "store %s has no CA named '%s'", st->shown_path,
				p11pki_shown_ascii(a->ca, ca, sizeof(ca)));
		goto out;
	}
	*a->out = (unsigned long long)sqlite3_column_int64(stmt, 0);
	/* COMMIT fails while a statement is still running. */
	r = step_done(st, stmt);
out:
	sqlite3_finalize(stmt);
	return r;
}

int p11pki_store_next_crl_number(p11pki_store *st, const char *ca, unsigned long long *out)
{
	struct crl_args a = { ca, out };
	char buf[SHOWN_MAX];
	int r;

	if (out != NULL)
		*out = 0;
	if (st == NULL || !name_ok(ca) || out == NULL)
		return p11pki_fail(P11PKI_E_ARG, "a CRL number needs the CA's name");
	lock(st);
	set_op(st, "take the next CRL number of CA '%s'", p11pki_shown_ascii(ca, buf, sizeof(buf)));
	r = write_txn(st, crl_txn, &a);
	if (r != 0)
		*out = 0;
	unlock(st);
	return r;
}

/* ---- EST users ---- */

#define EST_USER_COLUMNS "name, ca, profile, secret_hash, created, disabled"

static int est_user_add_txn(p11pki_store *st, void *arg)
{
	const struct p11pki_store_est_user *u = arg;
	const char *texts[] = { u->name, u->ca, u->profile, u->secret_hash };
	sqlite3_stmt *stmt = NULL;
	char buf[SHOWN_MAX];
	int r;

	r = prepare(st, "INSERT INTO est_users(" EST_USER_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6)", &stmt);
	if (r != 0 || (r = bind_texts(st, stmt, texts, 4)) != 0 ||
	    (r = bind_int(st, stmt, 5, u->created != 0 ? u->created : time(NULL), 1)) != 0 ||
	    (r = bind_int(st, stmt, 6, u->disabled != 0, 1)) != 0 || (r = step_done(st, stmt)) == 0)
		goto out;
	if (st->rc == SQLITE_CONSTRAINT_PRIMARYKEY)
		r = p11pki_fail(P11PKI_E_EXISTS, "store %s already has an EST user named '%s'", st->shown_path,
				p11pki_shown_ascii(u->name, buf, sizeof(buf)));
	else if (st->rc == SQLITE_CONSTRAINT_FOREIGNKEY)
		r = p11pki_fail(P11PKI_E_NOTFOUND, "store %s has no CA named '%s'", st->shown_path,
				p11pki_shown_ascii(u->ca, buf, sizeof(buf)));
out:
	sqlite3_finalize(stmt);
	return r;
}

int p11pki_store_est_user_add(p11pki_store *st, const struct p11pki_store_est_user *u)
{
	char buf[SHOWN_MAX];
	int r;

	if (st == NULL || u == NULL || !name_ok(u->name) || !name_ok(u->ca) || !name_ok(u->profile) ||
	    !name_ok(u->secret_hash))
		return p11pki_fail(P11PKI_E_ARG, "adding an EST user needs its name, CA, profile and secret hash");
	lock(st);
	set_op(st, "add EST user '%s'", p11pki_shown_ascii(u->name, buf, sizeof(buf)));
	/* The cast drops const only to pass through void *; nothing writes. */
	r = write_txn(st, est_user_add_txn, (void *)(uintptr_t)u);
	unlock(st);
	return r;
}

static int read_est_user(p11pki_store *st, sqlite3_stmt *stmt, struct p11pki_store_est_user *u)
{
	char **strs[] = { &u->name, &u->ca, &u->profile, &u->secret_hash };
	size_t i;
	int r = P11PKI_OK;

	memset(u, 0, sizeof(*u));
	for (i = 0; i < sizeof(strs) / sizeof(strs[0]) && r == P11PKI_OK; i++)
		r = col_str(st, stmt, (int)i, strs[i]);
	u->created = (time_t)col_int(stmt, 4, 0);
	u->disabled = col_int(stmt, 5, 0) != 0;
	if (r != 0)
		p11pki_store_est_user_clear(u);
	return r;
}

static int est_user_unknown(p11pki_store *st, const char *name)
{
	char buf[SHOWN_MAX];

	return p11pki_fail(P11PKI_E_NOTFOUND, "store %s has no EST user named '%s'", st->shown_path,
			   p11pki_shown_ascii(name, buf, sizeof(buf)));
}

struct est_user_get_args {
	const char *name;
	struct p11pki_store_est_user *out;
};

static int est_user_get_txn(p11pki_store *st, void *arg)
{
	struct est_user_get_args *a = arg;
	sqlite3_stmt *stmt = NULL;
	int r;

	p11pki_store_est_user_clear(a->out); /* from an earlier attempt */
	r = prepare(st, "SELECT " EST_USER_COLUMNS " FROM est_users WHERE name = ?1", &stmt);
	if (r != 0 || (r = bind_texts(st, stmt, &a->name, 1)) != 0 || (r = step_row(st, stmt)) < 0)
		goto out;
	r = r == 0 ? est_user_unknown(st, a->name) : read_est_user(st, stmt, a->out);
out:
	sqlite3_finalize(stmt);
	return r;
}

int p11pki_store_est_user_get(p11pki_store *st, const char *name, struct p11pki_store_est_user *out)
{
	struct est_user_get_args a = { name, out };
	char buf[SHOWN_MAX];
	int r;

	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (st == NULL || !name_ok(name) || out == NULL)
		return p11pki_fail(P11PKI_E_ARG, "looking up an EST user needs its name");
	lock(st);
	set_op(st, "read EST user '%s'", p11pki_shown_ascii(name, buf, sizeof(buf)));
	if ((r = read_txn(st, est_user_get_txn, &a)) != 0)
		p11pki_store_est_user_clear(out);
	unlock(st);
	return r;
}

static int est_user_delete_txn(p11pki_store *st, void *arg)
{
	const char *name = arg;
	sqlite3_stmt *stmt = NULL;
	int r;

	r = prepare(st, "DELETE FROM est_users WHERE name = ?1", &stmt);
	if (r != 0 || (r = bind_texts(st, stmt, &name, 1)) != 0 || (r = step_done(st, stmt)) != 0)
		goto out;
	if (sqlite3_changes(st->db) == 0)
		r = est_user_unknown(st, name);
out:
	sqlite3_finalize(stmt);
	return r;
}

int p11pki_store_est_user_delete(p11pki_store *st, const char *name)
{
	char buf[SHOWN_MAX];
	int r;

	if (st == NULL || !name_ok(name))
		return p11pki_fail(P11PKI_E_ARG, "deleting an EST user needs its name");
	lock(st);
	set_op(st, "delete EST user '%s'", p11pki_shown_ascii(name, buf, sizeof(buf)));
	r = write_txn(st, est_user_delete_txn, (void *)(uintptr_t)name);
	unlock(st);
	return r;
}

struct est_user_list_args {
	struct p11pki_store_est_user **out;
	size_t *n;
};

static void clear_est_users(struct est_user_list_args *a)
{
	p11pki_store_est_user_list_free(*a->out, *a->n);
	*a->out = NULL;
	*a->n = 0;
}

static int push_est_user(p11pki_store *st, sqlite3_stmt *stmt, struct p11pki_store_est_user **users, size_t *n)
{
	struct p11pki_store_est_user *grown;

	if ((*n & (*n - 1)) == 0) { /* grow at 0, 1, 2, 4, 8, ... */
		if ((grown = realloc(*users, (*n == 0 ? 1 : 2 * *n) * sizeof(*grown))) == NULL)
			return nomem(st);
		*users = grown;
	}
	if (read_est_user(st, stmt, &(*users)[*n]) != 0)
		return P11PKI_E_NOMEM;
	(*n)++;
	return P11PKI_OK;
}

static int est_user_list_txn(p11pki_store *st, void *arg)
{
	struct est_user_list_args *a = arg;
	sqlite3_stmt *stmt = NULL;
	int r;

	clear_est_users(a); /* from an earlier attempt */
	if ((r = prepare(st, "SELECT " EST_USER_COLUMNS " FROM est_users ORDER BY name", &stmt)) != 0)
		goto out;
	while ((r = step_row(st, stmt)) > 0)
		if ((r = push_est_user(st, stmt, a->out, a->n)) != 0)
			break;
out:
	sqlite3_finalize(stmt);
	return r;
}

int p11pki_store_est_user_list(p11pki_store *st, struct p11pki_store_est_user **out, size_t *n)
{
	struct est_user_list_args a = { out, n };
	int r;

	if (out != NULL)
		*out = NULL;
	if (n != NULL)
		*n = 0;
	if (st == NULL || out == NULL || n == NULL)
		return p11pki_fail(P11PKI_E_ARG, "listing EST users needs somewhere to put them");
	lock(st);
	set_op(st, "list EST users");
	if ((r = read_txn(st, est_user_list_txn, &a)) != 0)
		clear_est_users(&a);
	unlock(st);
	return r;
}

void p11pki_store_est_user_clear(struct p11pki_store_est_user *u)
{
	if (u == NULL)
		return;
	free(u->name);
	free(u->ca);
	free(u->profile);
	free(u->secret_hash);
	memset(u, 0, sizeof(*u));
}

void p11pki_store_est_user_list_free(struct p11pki_store_est_user *users, size_t n)
{
	size_t i;

	if (users == NULL)
		return;
	for (i = 0; i < n; i++)
		p11pki_store_est_user_clear(&users[i]);
	free(users);
}
