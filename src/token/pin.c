/* PIN sources ("file:PATH", "env:NAME") and the no-echo terminal prompt.
 * A PIN only ever lives in a p11pki_secret or in a stack buffer that is
 * cleansed before returning; it never appears in an error message. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include <p11pki/token.h>

#include "core/text.h"

#define PIN_MAX 256	/* bytes, the most any PIN source may hold */
#define SHOWN_MAX 120	/* most characters of a path or spec in errors */

#ifdef UNITTEST
/* Exposed so the tests can prompt on a pseudo-terminal. */
int p11pki_pin_prompt_fd(int fd, const char *prompt, p11pki_secret **out);
#define TESTABLE
#else
#define TESTABLE static
#endif

static int env_name_ok(const char *s)
{
	size_t i;

	if (!(s[0] == '_' || ((s[0] | 0x20) >= 'a' && (s[0] | 0x20) <= 'z')))
		return 0;
	for (i = 1; s[i] != '\0'; i++) {
		if (!(s[i] == '_' || (s[i] >= '0' && s[i] <= '9') ||
		      ((s[i] | 0x20) >= 'a' && (s[i] | 0x20) <= 'z')))
			return 0;
	}
	return 1;
}

int p11pki_pin_source_parse(const char *spec, enum p11pki_pin_kind *kind, const char **where)
{
	*kind = 0;
	*where = NULL;
	if (spec == NULL)
		return p11pki_fail(P11PKI_E_ARG, "no PIN source given: use file:PATH or env:NAME");
	if (strncmp(spec, "file:", 5) == 0) {
		if (spec[5] == '\0')
			return p11pki_fail(P11PKI_E_ARG,
					   "PIN source 'file:' names no file: use file:PATH");
		*kind = P11PKI_PIN_FILE;
		*where = spec + 5;
		return P11PKI_OK;
	}
	if (strncmp(spec, "env:", 4) == 0) {
		if (!env_name_ok(spec + 4))
			return p11pki_fail(P11PKI_E_ARG,
					   "PIN source 'env:...' names no valid environment variable: "
					   "use env:NAME with NAME made of letters, digits and '_'");
		*kind = P11PKI_PIN_ENV;
		*where = spec + 4;
		return P11PKI_OK;
	}
	/* the text is not repeated: it may be a PIN typed in the wrong place */
	return p11pki_fail(P11PKI_E_ARG, "PIN source is not understood: use file:PATH or env:NAME");
}

/* Reads until EOF or until cap bytes are in; a full buffer means the
 * source is too long, so the caller asks for one byte more than it keeps. */
static int read_upto(int fd, char *buf, size_t cap, size_t *len)
{
	ssize_t n;

	*len = 0;
	while (*len < cap) {
		n = read(fd, buf + *len, cap - *len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		*len += (size_t)n;
	}
	return 0;
}

/* Checks a PIN read from a file and copies it into secure memory. */
static int take_file_pin(const char *name, char *buf, size_t len, p11pki_secret **out)
{
	/* One trailing newline is what editors and `echo` leave behind. */
	if (len > 0 && buf[len - 1] == '\n') {
		len--;
		if (len > 0 && buf[len - 1] == '\r')
			len--;
	}
	if (len == 0)
		return p11pki_fail(P11PKI_E_PIN, "PIN file '%s' is empty", name);
	if (memchr(buf, '\0', len) != NULL)
		return p11pki_fail(P11PKI_E_PIN, "PIN file '%s' contains a NUL byte", name);
	if (memchr(buf, '\n', len) != NULL)
		return p11pki_fail(P11PKI_E_PIN,
				   "PIN file '%s' has more than one line: it must hold only the PIN",
				   name);
	return p11pki_secret_from(buf, len, out);
}

/* Opens without blocking (a FIFO without a writer, a device) and accepts
 * only regular files and pipes, so "file:/dev/tty" cannot hang us. */
static int open_pin_file(const char *path, const char *name, int *fd_out)
{
	struct stat st;
	int fd, fl, r;

	*fd_out = -1;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return p11pki_fail(P11PKI_E_PIN, "cannot open PIN file '%s': %s", name,
				   strerror(errno));
	if (fstat(fd, &st) != 0) {
		r = p11pki_fail(P11PKI_E_PIN, "cannot stat PIN file '%s': %s", name,
				strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode)) {
		r = p11pki_fail(P11PKI_E_PIN, "PIN file '%s' is not a regular file or a pipe",
				name);
		goto out;
	}
	if (S_ISREG(st.st_mode) && (st.st_mode & (S_IRGRP | S_IROTH)) != 0)
		p11pki_log(P11PKI_LOG_WARN,
			   "PIN file '%s' is readable by group or others (mode %03o): "
			   "chmod 600 it", name, (unsigned)(st.st_mode & 0777));
	/* Blocking again, so a pipe's writer gets to finish. */
	if ((fl = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
		r = p11pki_fail(P11PKI_E_PIN, "cannot read PIN file '%s': %s", name,
				strerror(errno));
		goto out;
	}
	*fd_out = fd;
	fd = -1;
	r = P11PKI_OK;
out:
	if (fd >= 0)
		close(fd);
	return r;
}

static int read_pin_file(const char *path, p11pki_secret **out)
{
	char show[P11PKI_SHOWN_SIZE(SHOWN_MAX)];
	char buf[PIN_MAX + 1];
	size_t len = 0;
	int fd = -1, r;

	p11pki_shown_ascii(path, show, sizeof(show));
	if ((r = open_pin_file(path, show, &fd)) != 0)
		goto out;
	if (read_upto(fd, buf, sizeof(buf), &len) != 0) {
		r = p11pki_fail(P11PKI_E_PIN, "cannot read PIN file '%s': %s", show,
				strerror(errno));
		goto out;
	}
	if (len > PIN_MAX) {
		r = p11pki_fail(P11PKI_E_PIN, "PIN file '%s' is longer than %d bytes", show,
				PIN_MAX);
		goto out;
	}
	r = take_file_pin(show, buf, len, out);
out:
	OPENSSL_cleanse(buf, sizeof(buf));
	if (fd >= 0)
		close(fd);
	return r;
}

static int read_pin_env(const char *name, p11pki_secret **out)
{
	const char *v = getenv(name);
	size_t len;

	/* name was checked by p11pki_pin_source_parse: safe to print. */
	if (v == NULL)
		return p11pki_fail(P11PKI_E_PIN, "environment variable '%s' is not set", name);
	len = strnlen(v, PIN_MAX + 1);
	if (len == 0)
		return p11pki_fail(P11PKI_E_PIN, "environment variable '%s' is empty", name);
	if (len > PIN_MAX)
		return p11pki_fail(P11PKI_E_PIN,
				   "environment variable '%s' is longer than %d bytes", name,
				   PIN_MAX);
	return p11pki_secret_from(v, len, out);
}

int p11pki_pin_read(const char *spec, p11pki_secret **out)
{
	enum p11pki_pin_kind kind;
	const char *where;
	int r;

	*out = NULL;
	if ((r = p11pki_pin_source_parse(spec, &kind, &where)) != 0)
		return r;
	if (kind == P11PKI_PIN_FILE)
		return read_pin_file(where, out);
	return read_pin_env(where, out);
}

static int write_all(int fd, const char *s, size_t n)
{
	ssize_t w;

	while (n > 0) {
		w = write(fd, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		s += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Reads one line into buf (without the newline). A longer line is read
 * to its end anyway, so the rest of the PIN is not left in the terminal
 * for the shell to run, and then refused. */
static int read_line(int fd, char *buf, size_t cap, size_t *len)
{
	size_t n = 0, total = 0;
	char c;
	ssize_t got;

	*len = 0;
	for (;;) {
		got = read(fd, &c, 1);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return p11pki_fail(P11PKI_E_PIN, "cannot read the PIN from the terminal: %s",
					   strerror(errno));
		if (got == 0 || c == '\n')
			break;
		if (n < cap)
			buf[n++] = c;
		total++;
	}
	OPENSSL_cleanse(&c, sizeof(c));
	if (total > cap)
		return p11pki_fail(P11PKI_E_PIN, "the PIN entered is longer than %d bytes", PIN_MAX);
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	if (n == 0)
		return p11pki_fail(P11PKI_E_PIN, "no PIN was entered");
	*len = n;
	return P11PKI_OK;
}

/* Prompts on fd, a terminal, with echo off. Job-control and termination
 * signals are held back meanwhile, so the terminal is always restored
 * before they act. */
TESTABLE int p11pki_pin_prompt_fd(int fd, const char *prompt, p11pki_secret **out)
{
	struct termios saved, noecho;
	sigset_t hold, old_mask;
	char buf[PIN_MAX];
	size_t len = 0;
	int restore = 0, masked = 0, r;

	*out = NULL;
	if (tcgetattr(fd, &saved) != 0) {
		r = p11pki_fail(P11PKI_E_PIN, "cannot prompt for the PIN: %s", strerror(errno));
		goto out;
	}
	sigemptyset(&hold);
	sigaddset(&hold, SIGINT);
	sigaddset(&hold, SIGQUIT);
	sigaddset(&hold, SIGTSTP);
	sigaddset(&hold, SIGTERM);
	sigaddset(&hold, SIGHUP);
	masked = pthread_sigmask(SIG_BLOCK, &hold, &old_mask) == 0;
	noecho = saved;
	noecho.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK | ECHONL);
	noecho.c_lflag |= ICANON;
	/* TCSAFLUSH drops type-ahead, which was echoed in the clear. */
	if (tcsetattr(fd, TCSAFLUSH, &noecho) != 0) {
		r = p11pki_fail(P11PKI_E_PIN, "cannot turn off terminal echo: %s", strerror(errno));
		goto out;
	}
	restore = 1;
	prompt = prompt != NULL ? prompt : "PIN: ";
	if (write_all(fd, prompt, strlen(prompt)) != 0) {
		r = p11pki_fail(P11PKI_E_PIN, "cannot write the PIN prompt: %s", strerror(errno));
		goto out;
	}
	r = read_line(fd, buf, sizeof(buf), &len);
	/* The user's Enter was not echoed; end the prompt line ourselves. */
	(void)write_all(fd, "\n", 1);
	if (r == 0)
		r = p11pki_secret_from(buf, len, out);
out:
	if (restore)
		(void)tcsetattr(fd, TCSAFLUSH, &saved);
	if (masked)
		(void)pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
	OPENSSL_cleanse(buf, sizeof(buf));
	return r;
}

int p11pki_pin_prompt(const char *prompt, p11pki_secret **out)
{
	int fd = -1, r;

	*out = NULL;
	/* Prompt only for an interactive user: with stdin redirected (scripts,
	 * ctest, services) fail at once instead of waiting on /dev/tty. */
	if (!isatty(STDIN_FILENO))
		return p11pki_fail(P11PKI_E_PIN,
				   "no PIN source given and no terminal to prompt on: "
				   "use --pin-source file:PATH or env:NAME");
	/* /dev/tty still reaches the user when stdout/stderr are redirected. */
	fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	r = p11pki_pin_prompt_fd(fd >= 0 ? fd : STDIN_FILENO, prompt, out);
	if (fd >= 0)
		close(fd);
	return r;
}
