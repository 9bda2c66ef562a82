/* Logging through an application-installed handler; the library itself
 * never writes to stdout or stderr. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include <p11pki/core.h>

static p11pki_log_fn log_handler;
static void *log_handler_arg;

void p11pki_log_set_handler(p11pki_log_fn fn, void *arg)
{
	log_handler = fn;
	log_handler_arg = arg;
}

static pthread_once_t debug_once = PTHREAD_ONCE_INIT;
static int debug_on;

static void read_debug(void)
{
	const char *v = getenv("P11PKI_DEBUG");

	debug_on = v != NULL && *v != '\0' && *v != '0';
}

/* Read once: every token call asks, and getenv walks the environment. */
int p11pki_log_debug_enabled(void)
{
	pthread_once(&debug_once, read_debug);
	return debug_on;
}

void p11pki_log(int level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (log_handler == NULL)
		return;
	if (level == P11PKI_LOG_DEBUG && !p11pki_log_debug_enabled())
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_handler(level, msg, log_handler_arg);
}
