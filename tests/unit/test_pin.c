/* PIN sources (file:, env:) and the terminal prompt. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <pty.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <p11pki/token.h>

/* Internal, exposed by pin.c under UNITTEST. */
int p11pki_pin_prompt_fd(int fd, const char *prompt, p11pki_secret **out);

static char tmpdir[64];
static char path[64];
static char spec[200];
static int warnings;
static char last_warning[1024];

static void log_capture(int level, const char *msg, void *arg)
{
	if (level != P11PKI_LOG_WARN)
		return;
	warnings++;
	snprintf(last_warning, sizeof(last_warning), "%s", msg);
}

static int setup(void **state)
{
	int fd;

	snprintf(path, sizeof(path), "/tmp/p11pki-pin-XXXXXX");
	if ((fd = mkstemp(path)) < 0)
		return -1;
	close(fd);
	snprintf(spec, sizeof(spec), "file:%s", path);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/p11pki-dir-XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	warnings = 0;
	last_warning[0] = '\0';
	p11pki_log_set_handler(log_capture, NULL);
	return 0;
}

static int teardown(void **state)
{
	unlink(path);
	rmdir(tmpdir);
	p11pki_log_set_handler(NULL, NULL);
	return 0;
}

/* Replaces the temp file's content and mode. */
static void write_file(const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_TRUNC);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
	assert_int_equal(chmod(path, mode), 0);
}

static void assert_msg_has(const char *want)
{
	if (strstr(p11pki_errmsg(), want) == NULL)
		print_error("message '%s' lacks '%s'\n", p11pki_errmsg(), want);
	assert_non_null(strstr(p11pki_errmsg(), want));
	assert_null(strchr(p11pki_errmsg(), '\n'));
}

static void read_ok(const char *s, const char *want)
{
	p11pki_secret *pin = NULL;
	int r = p11pki_pin_read(s, &pin);

	if (r != 0)
		print_error("reading '%s' failed: %s\n", s, p11pki_errmsg());
	assert_int_equal(r, P11PKI_OK);
	assert_non_null(pin);
	assert_int_equal(pin->len, strlen(want));
	assert_string_equal(pin->data, want);
	p11pki_secret_free(pin);
}

static void read_fails(const char *s, int code, const char *want)
{
	p11pki_secret *pin = (p11pki_secret *)1;

	assert_int_equal(p11pki_pin_read(s, &pin), code);
	assert_null(pin);
	assert_msg_has(want);
}

/* ---- p11pki_pin_source_parse ---- */

static void test_source_parse(void **state)
{
	enum p11pki_pin_kind kind;
	const char *where;
	const char *s = "file:/etc/token_pin";

	assert_int_equal(p11pki_pin_source_parse(s, &kind, &where), P11PKI_OK);
	assert_int_equal(kind, P11PKI_PIN_FILE);
	assert_ptr_equal(where, s + 5);
	assert_int_equal(p11pki_pin_source_parse("file:relative", &kind, &where), P11PKI_OK);
	assert_string_equal(where, "relative");
	assert_int_equal(p11pki_pin_source_parse("env:P11_PIN", &kind, &where), P11PKI_OK);
	assert_int_equal(kind, P11PKI_PIN_ENV);
	assert_string_equal(where, "P11_PIN");
	assert_int_equal(p11pki_pin_source_parse("env:_x9", &kind, &where), P11PKI_OK);
	assert_string_equal(where, "_x9");
}

static void source_fails(const char *s, const char *want)
{
	enum p11pki_pin_kind kind = P11PKI_PIN_FILE;
	const char *where = "x";

	assert_int_equal(p11pki_pin_source_parse(s, &kind, &where), P11PKI_E_ARG);
	assert_int_equal(kind, 0);
	assert_null(where);
	assert_msg_has(want);
}

static void test_source_parse_errors(void **state)
{
	/* the text is never echoed: it may be a PIN typed in the wrong place */
	source_fails("1234", "PIN source is not understood: use file:PATH or env:NAME");
	assert_null(strstr(p11pki_errmsg(), "1234"));
	source_fails("", "PIN source is not understood");
	source_fails("FILE:/x", "PIN source is not understood");
	source_fails("|/bin/cat /x", "PIN source is not understood");
	source_fails("file:", "'file:' names no file");
	source_fails("env:", "names no valid environment variable");
	source_fails("env:1PIN", "names no valid environment variable");
	assert_null(strstr(p11pki_errmsg(), "1PIN"));
	source_fails("env:PIN-X", "names no valid environment variable");
	source_fails("env:PIN X", "names no valid environment variable");
	source_fails("env:P=1", "names no valid environment variable");
	source_fails("x\x1b]0;evil\a", "PIN source is not understood");
	assert_null(strstr(p11pki_errmsg(), "evil"));
	source_fails(NULL, "no PIN source given");
}

/* ---- file: ---- */

static void test_file_plain(void **state)
{
	write_file("1234\n", 5, 0600);
	read_ok(spec, "1234");
	write_file("1234\r\n", 6, 0600);
	read_ok(spec, "1234");
	write_file("1234", 4, 0600);
	read_ok(spec, "1234");
	/* Only one newline is stripped; spaces are part of the PIN. */
	write_file(" 12 34 ", 7, 0600);
	read_ok(spec, " 12 34 ");
	write_file("12\r", 3, 0600);
	read_ok(spec, "12\r");
	assert_int_equal(warnings, 0);
}

static void test_file_empty(void **state)
{
	write_file("", 0, 0600);
	read_fails(spec, P11PKI_E_PIN, "is empty");
	assert_msg_has(path);
	write_file("\n", 1, 0600);
	read_fails(spec, P11PKI_E_PIN, "is empty");
	write_file("\r\n", 2, 0600);
	read_fails(spec, P11PKI_E_PIN, "is empty");
}

static void test_file_size_limit(void **state)
{
	char buf[258];

	memset(buf, 'Q', sizeof(buf));
	write_file(buf, 256, 0600);
	{
		p11pki_secret *pin = NULL;

		assert_int_equal(p11pki_pin_read(spec, &pin), P11PKI_OK);
		assert_int_equal(pin->len, 256);
		p11pki_secret_free(pin);
	}
	/* 255 bytes of PIN and its newline still fit. */
	buf[255] = '\n';
	write_file(buf, 256, 0600);
	{
		p11pki_secret *pin = NULL;

		assert_int_equal(p11pki_pin_read(spec, &pin), P11PKI_OK);
		assert_int_equal(pin->len, 255);
		p11pki_secret_free(pin);
	}
	memset(buf, 'Q', sizeof(buf));
	write_file(buf, 257, 0600);
	read_fails(spec, P11PKI_E_PIN, "is longer than 256 bytes");
	assert_msg_has(path);
	/* Never the content. */
	assert_null(strstr(p11pki_errmsg(), "QQ"));
}

static void test_file_content_never_in_errors(void **state)
{
	write_file("secret\nsecond\n", 14, 0600);
	read_fails(spec, P11PKI_E_PIN, "has more than one line");
	assert_msg_has(path);
	assert_null(strstr(p11pki_errmsg(), "secret"));
	write_file("sec\0ret", 7, 0600);
	read_fails(spec, P11PKI_E_PIN, "contains a NUL byte");
	assert_null(strstr(p11pki_errmsg(), "sec"));
}

static void test_file_missing(void **state)
{
	char s[200];

	snprintf(s, sizeof(s), "file:%s/nonexistent", tmpdir);
	read_fails(s, P11PKI_E_PIN, "cannot open PIN file");
	assert_msg_has("/nonexistent': No such file or directory");
}

static void test_file_not_regular(void **state)
{
	char s[200];

	snprintf(s, sizeof(s), "file:%s", tmpdir);
	read_fails(s, P11PKI_E_PIN, "is not a regular file or a pipe");
	assert_msg_has(tmpdir);
	/* A device: refused rather than read (it might block or never end). */
	read_fails("file:/dev/zero", P11PKI_E_PIN, "'/dev/zero' is not a regular file");
}

static void test_file_unreadable(void **state)
{
	if (geteuid() == 0)
		skip(); /* root reads mode 000 files */
	write_file("1234\n", 5, 0000);
	read_fails(spec, P11PKI_E_PIN, "cannot open PIN file");
	assert_msg_has("Permission denied");
}

static void test_file_permission_warning(void **state)
{
	write_file("1234\n", 5, 0644);
	read_ok(spec, "1234");
	assert_int_equal(warnings, 1);
	assert_non_null(strstr(last_warning, path));
	assert_non_null(strstr(last_warning, "readable by group or others"));
	assert_null(strstr(last_warning, "1234"));
	warnings = 0;
	write_file("1234\n", 5, 0640);
	read_ok(spec, "1234");
	assert_int_equal(warnings, 1);
	warnings = 0;
	write_file("1234\n", 5, 0400);
	read_ok(spec, "1234");
	assert_int_equal(warnings, 0);
}

static void test_file_fifo(void **state)
{
	char fifo[128];
	time_t start = time(NULL);

	snprintf(fifo, sizeof(fifo), "%s/fifo", tmpdir);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	snprintf(spec, sizeof(spec), "file:%s", fifo);
	/* No writer: must not block, just find nothing. */
	read_fails(spec, P11PKI_E_PIN, "is empty");
	assert_true(time(NULL) - start < 5);
	unlink(fifo);
	snprintf(spec, sizeof(spec), "file:%s", path);
}

static void test_file_pipe(void **state)
{
	char s[64];
	int p[2];

	/* What `--pin-source file:<(pass show token)` hands us. */
	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], "pipe-pin\n", 9), 9);
	close(p[1]);
	snprintf(s, sizeof(s), "file:/proc/self/fd/%d", p[0]);
	read_ok(s, "pipe-pin");
	close(p[0]);
}

/* ---- env: ---- */

static void test_env(void **state)
{
	char big[300];

	assert_int_equal(setenv("P11PKI_TEST_PIN", "4321", 1), 0);
	read_ok("env:P11PKI_TEST_PIN", "4321");
	/* Taken as is: no newline stripping for the environment. */
	assert_int_equal(setenv("P11PKI_TEST_PIN", " 43 21\n", 1), 0);
	read_ok("env:P11PKI_TEST_PIN", " 43 21\n");
	assert_int_equal(setenv("P11PKI_TEST_PIN", "", 1), 0);
	read_fails("env:P11PKI_TEST_PIN", P11PKI_E_PIN,
		   "environment variable 'P11PKI_TEST_PIN' is empty");
	memset(big, 'Q', 257);
	big[257] = '\0';
	assert_int_equal(setenv("P11PKI_TEST_PIN", big, 1), 0);
	read_fails("env:P11PKI_TEST_PIN", P11PKI_E_PIN, "is longer than 256 bytes");
	assert_null(strstr(p11pki_errmsg(), "QQ"));
	big[256] = '\0';
	assert_int_equal(setenv("P11PKI_TEST_PIN", big, 1), 0);
	{
		p11pki_secret *pin = NULL;

		assert_int_equal(p11pki_pin_read("env:P11PKI_TEST_PIN", &pin), P11PKI_OK);
		assert_int_equal(pin->len, 256);
		p11pki_secret_free(pin);
	}
	assert_int_equal(unsetenv("P11PKI_TEST_PIN"), 0);
	read_fails("env:P11PKI_TEST_PIN", P11PKI_E_PIN,
		   "environment variable 'P11PKI_TEST_PIN' is not set");
}

static void test_read_bad_spec(void **state)
{
	read_fails("1234", P11PKI_E_ARG, "PIN source is not understood");
	read_fails("env:", P11PKI_E_ARG, "names no valid environment variable");
	read_fails(NULL, P11PKI_E_ARG, "no PIN source given");
}

/* ---- prompt ---- */

static void test_prompt_without_tty(void **state)
{
	p11pki_secret *pin = (p11pki_secret *)1;
	time_t start = time(NULL);

	if (isatty(STDIN_FILENO))
		skip(); /* run with stdin redirected, as ctest does */
	assert_int_equal(p11pki_pin_prompt("PIN: ", &pin), P11PKI_E_PIN);
	assert_null(pin);
	assert_msg_has("no PIN source given and no terminal to prompt on: "
		       "use --pin-source file:PATH or env:NAME");
	assert_true(time(NULL) - start < 2);
}

struct prompt_job {
	int fd;
	const char *prompt;
	int rc;
	p11pki_secret *pin;
	char msg[512]; /* the error message is per thread */
};

static void *prompt_thread(void *arg)
{
	struct prompt_job *job = arg;

	job->rc = p11pki_pin_prompt_fd(job->fd, job->prompt, &job->pin);
	snprintf(job->msg, sizeof(job->msg), "%s", p11pki_errmsg());
	return NULL;
}

/* Reads from fd what arrives within ms milliseconds of quiet. */
static size_t drain(int fd, char *buf, size_t cap, int ms)
{
	struct pollfd p = { fd, POLLIN, 0 };
	size_t len = 0;
	ssize_t n;

	while (len + 1 < cap && poll(&p, 1, ms) == 1) {
		n = read(fd, buf + len, cap - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	return len;
}

/* Reads from fd until want shows up (or 5 s pass). */
static int wait_for(int fd, const char *want, char *buf, size_t cap)
{
	struct pollfd p = { fd, POLLIN, 0 };
	size_t len = 0;
	ssize_t n;

	buf[0] = '\0';
	while (strstr(buf, want) == NULL && len + 1 < cap && poll(&p, 1, 5000) == 1) {
		n = read(fd, buf + len, cap - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = '\0';
	}
	return strstr(buf, want) != NULL;
}

/* Runs the prompt on a pseudo-terminal, typing input once the prompt is
 * shown, and returns what the terminal displayed afterwards. */
static void run_prompt(struct prompt_job *job, const char *input, char *shown_after,
		       size_t cap)
{
	struct termios t;
	pthread_t th;
	char buf[512];
	int master, slave;

	assert_int_equal(openpty(&master, &slave, NULL, NULL, NULL), 0);
	assert_int_equal(tcgetattr(slave, &t), 0);
	assert_true(t.c_lflag & ECHO);
	job->fd = slave;
	job->pin = NULL;
	assert_int_equal(pthread_create(&th, NULL, prompt_thread, job), 0);
	assert_true(wait_for(master, job->prompt != NULL ? job->prompt : "PIN: ", buf,
			     sizeof(buf)));
	assert_int_equal(write(master, input, strlen(input)), (ssize_t)strlen(input));
	pthread_join(th, NULL);
	drain(master, shown_after, cap, 200);
	/* Echo is back on afterwards. */
	assert_int_equal(tcgetattr(slave, &t), 0);
	assert_true(t.c_lflag & ECHO);
	close(master);
	close(slave);
}

static void test_prompt_on_pty(void **state)
{
	struct prompt_job job = { -1, "Token PIN: ", 0, NULL, "" };
	char after[512];

	run_prompt(&job, "s3cret\n", after, sizeof(after));
	assert_int_equal(job.rc, P11PKI_OK);
	assert_non_null(job.pin);
	assert_string_equal(job.pin->data, "s3cret");
	/* Echo was off: the PIN never reached the screen. */
	assert_null(strstr(after, "s3cret"));
	assert_non_null(strchr(after, '\n'));
	p11pki_secret_free(job.pin);
}

static void test_prompt_on_pty_errors(void **state)
{
	struct prompt_job job = { -1, NULL, 0, NULL, "" };
	char after[512];
	char big[400];

	run_prompt(&job, "\n", after, sizeof(after));
	assert_int_equal(job.rc, P11PKI_E_PIN);
	assert_null(job.pin);
	assert_non_null(strstr(job.msg, "no PIN was entered"));

	memset(big, '7', 300);
	memcpy(big + 300, "\n", 2);
	job.prompt = "PIN: ";
	run_prompt(&job, big, after, sizeof(after));
	assert_int_equal(job.rc, P11PKI_E_PIN);
	assert_null(job.pin);
	assert_non_null(strstr(job.msg, "the PIN entered is longer than 256 bytes"));
	assert_null(strstr(job.msg, "777"));
}

static void test_prompt_fd_not_a_tty(void **state)
{
	p11pki_secret *pin = (p11pki_secret *)1;
	int fd = open("/dev/null", O_RDWR);

	assert_true(fd >= 0);
	assert_int_equal(p11pki_pin_prompt_fd(fd, "PIN: ", &pin), P11PKI_E_PIN);
	assert_null(pin);
	assert_msg_has("cannot prompt for the PIN");
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_source_parse),
		cmocka_unit_test(test_source_parse_errors),
		cmocka_unit_test_setup_teardown(test_file_plain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_empty, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_size_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_content_never_in_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_not_regular, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_unreadable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_permission_warning, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_fifo, setup, teardown),
		cmocka_unit_test(test_file_pipe),
		cmocka_unit_test(test_env),
		cmocka_unit_test(test_read_bad_spec),
		cmocka_unit_test(test_prompt_without_tty),
		cmocka_unit_test(test_prompt_on_pty),
		cmocka_unit_test(test_prompt_on_pty_errors),
		cmocka_unit_test(test_prompt_fd_not_a_tty),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
