/* Status codes and the thread-local one-sentence error message. */
#include <stdio.h>
#include <string.h>

#include <p11pki/core.h>

static _Thread_local char last_message[512];

const char *p11pki_strerror(int code)
{
	switch (code) {
	case P11PKI_OK: return "success";
	case P11PKI_E_ARG: return "invalid argument";
	case P11PKI_E_NOMEM: return "out of memory";
	case P11PKI_E_TOKEN: return "PKCS#11 call failed";
	case P11PKI_E_NOTFOUND: return "not found";
	case P11PKI_E_PIN: return "PIN problem";
	case P11PKI_E_IO: return "input/output error";
	case P11PKI_E_CRYPTO: return "cryptographic operation failed";
	case P11PKI_E_UNSUPPORTED: return "not supported";
	case P11PKI_E_EXISTS: return "already exists";
	case P11PKI_E_POLICY: return "refused by policy";
	case P11PKI_E_MODULE: return "PKCS#11 module cannot be loaded";
	default: return "unknown error";
	}
}

const char *p11pki_errmsg(void)
{
	return last_message;
}

void p11pki_error_clear(void)
{
	last_message[0] = '\0';
}

int p11pki_fail(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_message, sizeof(last_message), fmt, ap);
	va_end(ap);
	p11pki_log(P11PKI_LOG_DEBUG, "error %d: %s", code, last_message);
	return code;
}
