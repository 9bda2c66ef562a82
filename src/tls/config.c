/* The serve configuration (tls.h): a [ serve ] section naming binding
 * sections, read with confparse so that every error says FILE:LINE and
 * the setting. Keyword tables drive the parsing (OpenSSH's habit): each
 * setting starts unset, is read once, and defaults fill the rest. What
 * would weaken TLS (old protocols, RC4, NULL, export, MD5, suites without
 * ECDHE or AEAD) is refused here, at start-up, never obeyed. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <p11pki/tls.h>
#include <p11pki/token.h>
#include <p11pki/x509.h>

#include "core/text.h"
#include "tls/confparse.h"

#define DEFAULT_CIPHERS "ECDHE+AESGCM:ECDHE+CHACHA20"
#define NO_SECTION ((size_t)-1)
#define ITEM_MAX 1024		/* bytes of one item of a list value */
#define MSG_MAX 400

/* Binding keys, in the order the documentation lists them. */
enum {
	K_LISTEN, K_SNI, K_CERT, K_KEY, K_CHAIN, K_CLIENT_AUTH, K_CLIENT_CA, K_CRL,
	K_ALLOW_CN, K_ALLOW_OU, K_ALLOW_DNS, K_ALLOW_URI, K_ALLOW_EMAIL, K_MODE, K_BACKENDS,
	K_HEALTH_CHECK, K_HEALTH_INTERVAL, K_HEALTH_FALL, K_HEALTH_RISE, K_PROTOCOLS, K_CIPHERS,
	K_CIPHERSUITES, K_SESSION_TIMEOUT, K_SESSION_TICKETS, K_HANDSHAKE_TIMEOUT, K_IDLE_TIMEOUT, K_MAX_CONNECTIONS,
	K_EST, K_OCSP, K_CRLS, K_COUNT
};

/* [ serve ] keys. */
enum { S_BINDINGS, S_ADMIN, S_WORKERS, S_PID_FILE, S_BOUND_FILE, S_MODULE, S_PIN_SOURCE, S_SIGNING_THREADS, S_COUNT };

struct loader {
	struct p11pki_tlsconf *c;
	struct p11pki_serve_config *cfg;
	SSL_CTX *ssl;				/* vets cipher strings; made on first use */
	size_t serve;				/* section index of [ serve ] */
	size_t section_of[P11PKI_MAX_BINDINGS];	/* section index of each binding */
	int seen[P11PKI_MAX_BINDINGS][K_COUNT];	/* line that set each key, 0: unset */
	int serve_seen[S_COUNT];
};

typedef int (*binding_setter)(struct loader *ld, const struct p11pki_tlsconf_entry *e, struct p11pki_binding *b);
typedef int (*serve_setter)(struct loader *ld, const struct p11pki_tlsconf_entry *e);

/* ---- messages ---------------------------------------------------------- */

static int vbad(const struct loader *ld, int line, const char *section, const char *key, const char *fmt,
		va_list ap) P11PKI_PRINTF(5, 0);
static int bad(const struct loader *ld, int line, const char *section, const char *key, const char *fmt, ...)
	P11PKI_PRINTF(5, 6);
static int bad_entry(const struct loader *ld, const struct p11pki_tlsconf_entry *e, const char *fmt, ...)
	P11PKI_PRINTF(3, 4);

/* "FILE:LINE: section/key: problem", the one shape of every error. */
static int vbad(const struct loader *ld, int line, const char *section, const char *key, const char *fmt,
		va_list ap)
{
	char file[P11PKI_SHOWN_SIZE(200)], sec[P11PKI_SHOWN_BUF], k[P11PKI_SHOWN_BUF], msg[MSG_MAX];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	return p11pki_fail(P11PKI_E_ARG, "%s:%d: %s%s%s: %s", p11pki_shown(ld->c->file, file, sizeof(file)), line,
			   p11pki_shown(section, sec, sizeof(sec)), key != NULL ? "/" : "",
			   key != NULL ? p11pki_shown(key, k, sizeof(k)) : "", msg);
}

static int bad(const struct loader *ld, int line, const char *section, const char *key, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = vbad(ld, line, section, key, fmt, ap);
	va_end(ap);
	return rc;
}

static int bad_entry(const struct loader *ld, const struct p11pki_tlsconf_entry *e, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = vbad(ld, e->line, ld->c->sections[e->section].name, e->key, fmt, ap);
	va_end(ap);
	return rc;
}

/* Puts the message of a lower layer's failure after our prefix. */
static int bad_from_errmsg(const struct loader *ld, const struct p11pki_tlsconf_entry *e)
{
	char msg[MSG_MAX];

	snprintf(msg, sizeof(msg), "%s", p11pki_errmsg());
	return bad_entry(ld, e, "%s", msg);
}

static const char *shown(const char *s, char *buf, size_t size)
{
	return p11pki_shown(s, buf, size);
}

static int nomem(void)
{
	return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
}

static int dup_to(const char *v, char **field)
{
	if ((*field = strdup(v)) == NULL)
		return nomem();
	return P11PKI_OK;
}

/* ---- lists, numbers, durations, addresses ------------------------------ */

/* Copies the next item of v at *p into item: items are separated by
 * commas, and by blanks too when blanks is set (names, addresses) but
 * not otherwise (a CN may hold spaces). Returns 1 for an item, 0 at the
 * end, -1 when it is longer than size - 1 bytes, -2 when it is empty. */
static int next_item(const char **p, int blanks, char *item, size_t size)
{
	const char *s = *p, *end;
	size_t n;

	while (*s == ' ' || *s == '\t' || (blanks && *s == ','))
		s++;
	if (*s == '\0') {
		*p = s;
		return 0;
	}
	for (end = s; *end != '\0' && *end != ',' && !(blanks && (*end == ' ' || *end == '\t')); end++)
		;
	*p = *end == ',' ? end + 1 : end;
	while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	if ((n = (size_t)(end - s)) == 0)
		return -2;
	if (n >= size)
		return -1;
	memcpy(item, s, n);
	item[n] = '\0';
	return 1;
}

/* The message for next_item's -1 and -2. */
static int bad_item(const struct loader *ld, const struct p11pki_tlsconf_entry *e, int r)
{
	if (r == -2)
		return bad_entry(ld, e, "empty item in the list");
	return bad_entry(ld, e, "an item of the list is longer than %d bytes", ITEM_MAX - 1);
}

/* Decimal digits only: no sign, no blanks, no hex. */
static int parse_number(const char *v, unsigned long long *n)
{
	size_t len = strspn(v, "0123456789");

	if (len == 0 || v[len] != '\0' || len > 12)
		return -1;
	*n = strtoull(v, NULL, 10);
	return 0;
}

static int number(const struct loader *ld, const struct p11pki_tlsconf_entry *e, unsigned min, unsigned max,
		  unsigned *out)
{
	char s[P11PKI_SHOWN_BUF];
	unsigned long long n;

	if (parse_number(e->value, &n) != 0 || n < min || n > max)
		return bad_entry(ld, e, "'%s' is not a number from %u to %u", shown(e->value, s, sizeof(s)), min,
				 max);
	*out = (unsigned)n;
	return P11PKI_OK;
}

/* "10s", "500ms", "5m", "1h", or a plain number of seconds. */
static int parse_duration_ms(const char *v, unsigned long long *ms)
{
	char digits[16];
	size_t len = strspn(v, "0123456789");
	const char *unit = v + len;
	unsigned long long n, scale;

	if (len == 0 || len >= 10)
		return -1;
	memcpy(digits, v, len);
	digits[len] = '\0';
	n = strtoull(digits, NULL, 10);
	if (strcmp(unit, "ms") == 0)
		scale = 1;
	else if (*unit == '\0' || strcmp(unit, "s") == 0)
		scale = 1000;
	else if (strcmp(unit, "m") == 0)
		scale = 60000;
	else if (strcmp(unit, "h") == 0)
		scale = 3600000;
	else
		return -1;
	*ms = n * scale;
	return 0;
}

static int duration(const struct loader *ld, const struct p11pki_tlsconf_entry *e, unsigned min_ms,
		    unsigned max_ms, const char *range, unsigned *out_ms)
{
	char s[P11PKI_SHOWN_BUF];
	unsigned long long ms;

	if (parse_duration_ms(e->value, &ms) != 0)
		return bad_entry(ld, e, "'%s' is not a duration: write 10s, 500ms, 5m, 1h or a number of seconds",
				 shown(e->value, s, sizeof(s)));
	if (ms < min_ms || ms > max_ms)
		return bad_entry(ld, e, "'%s' is out of range: from %s", shown(e->value, s, sizeof(s)), range);
	*out_ms = (unsigned)ms;
	return P11PKI_OK;
}

static int reason(char *why, size_t size, const char *fmt, ...) P11PKI_PRINTF(3, 4);

/* Writes why a value is wrong for the caller's message; returns -1. */
static int reason(char *why, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, size, fmt, ap);
	va_end(ap);
	return -1;
}

/* LDH labels of 1 to 63 characters, at most 253 in all. */
static int is_host_name(const char *h)
{
	size_t label = 0, i, n = strlen(h);

	if (n == 0 || n > 253)
		return 0;
	for (i = 0; i <= n; i++) {
		char ch = h[i];

		if (ch == '.' || ch == '\0') {
			if (label == 0 || label > 63 || h[i - 1] == '-')
				return 0;
			label = 0;
		} else if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
			   (ch == '-' && label > 0)) {
			label++;
		} else {
			return 0;
		}
	}
	return 1;
}

static int check_host(const char *host, int bracketed, int listener, char *why, size_t size)
{
	unsigned char addr[16];

	if (bracketed) {
		if (inet_pton(AF_INET6, host, addr) != 1)
			return reason(why, size, "'%s' inside [ ] is not an IPv6 address", host);
	} else if (strcmp(host, "*") == 0) {
		if (!listener)
			return reason(why, size, "'*' (all addresses) is only for listen and admin");
	} else if (host[strspn(host, "0123456789.")] == '\0') {
		if (inet_pton(AF_INET, host, addr) != 1)
			return reason(why, size, "'%s' is not an IPv4 address", host);
	} else if (!is_host_name(host)) {
		return reason(why, size, "'%s' is not an IP address or a host name", host);
	}
	return 0;
}

/* Reads "HOST:PORT", "[IPV6]:PORT" or "*:PORT". Listeners (listen,
 * admin) may use '*' and port 0; backends may not. Writes why on error. */
static int parse_endpoint(const char *v, int listener, struct p11pki_endpoint *ep, char *why, size_t size)
{
	const char *host = v, *port, *sep;
	unsigned long long n;
	size_t hlen;

	memset(ep, 0, sizeof(*ep));
	if (v[0] == '[') {
		if ((sep = strchr(v, ']')) == NULL)
			return reason(why, size, "an IPv6 address needs its closing ']'");
		if (sep[1] != ':')
			return reason(why, size, "expected ':PORT' after ']'");
		host = v + 1;
		port = sep + 2;
	} else {
		if ((sep = strrchr(v, ':')) == NULL)
			return reason(why, size, "expected HOST:PORT");
		if (memchr(v, ':', (size_t)(sep - v)) != NULL)
			return reason(why, size, "write an IPv6 address in brackets, as [::1]:8443");
		port = sep + 1;
	}
	if ((hlen = (size_t)(sep - host)) == 0)
		return reason(why, size, "the host is missing (write * for all addresses)");
	if (hlen >= sizeof(ep->host))
		return reason(why, size, "the host is longer than %zu bytes", sizeof(ep->host) - 1);
	memcpy(ep->host, host, hlen);
	if (check_host(ep->host, v[0] == '[', listener, why, size) != 0)
		return -1;
	if (parse_number(port, &n) != 0 || n > 65535)
		return reason(why, size, "the port must be a number from %d to 65535", listener ? 0 : 1);
	if (n == 0 && !listener)
		return reason(why, size, "port 0 (any free port) is only for listen and admin");
	ep->port = (unsigned short)n;
	return 0;
}

static int endpoint(const struct loader *ld, const struct p11pki_tlsconf_entry *e, const char *v, int listener,
		    struct p11pki_endpoint *ep)
{
	char why[300], s[P11PKI_SHOWN_BUF];

	if (parse_endpoint(v, listener, ep, why, sizeof(why)) != 0)
		return bad_entry(ld, e, "'%s': %s", shown(v, s, sizeof(s)), why);
	return P11PKI_OK;
}

static const char *endpoint_text(const struct p11pki_endpoint *ep, char *buf, size_t size)
{
	snprintf(buf, size, strchr(ep->host, ':') != NULL ? "[%s]:%u" : "%s:%u", ep->host, ep->port);
	return buf;
}

/* Same listener: same port and the same address, however written. */
static int same_endpoint(const struct p11pki_endpoint *a, const struct p11pki_endpoint *b)
{
	unsigned char x[16], y[16];

	if (a->port != b->port)
		return 0;
	if (inet_pton(AF_INET6, a->host, x) == 1 && inet_pton(AF_INET6, b->host, y) == 1)
		return memcmp(x, y, 16) == 0;
	if (inet_pton(AF_INET, a->host, x) == 1 && inet_pton(AF_INET, b->host, y) == 1)
		return memcmp(x, y, 4) == 0;
	return strcasecmp(a->host, b->host) == 0;
}

/* ---- tokens and files -------------------------------------------------- */

static int check_uri(const struct loader *ld, const struct p11pki_tlsconf_entry *e, const char *text,
		     enum p11pki_obj_type want)
{
	struct p11pki_uri *u = NULL;
	int rc = P11PKI_OK;

	if (p11pki_uri_parse(text, &u) != 0)
		return bad_from_errmsg(ld, e);
	if (u->type != P11PKI_OBJ_ANY && u->type != want)
		rc = bad_entry(ld, e, "the URI's type= names no %s", want == P11PKI_OBJ_CERT ? "certificate" : "private key");
	else if (u->object == NULL && u->id == NULL)
		rc = bad_entry(ld, e, "the URI names no object: give object= (the label) or id=");
	p11pki_uri_free(u);
	return rc;
}

static int is_uri(const char *v)
{
	return strncasecmp(v, "pkcs11:", 7) == 0;
}

/* "sha1:" or "sha256:" and the hexadecimal hash, with or without ':' or
 * blanks between bytes (IIS and certutil print them so), into lowercase
 * hex without separators. */
static int thumbprint(const struct loader *ld, const struct p11pki_tlsconf_entry *e, const char *v, size_t bytes,
		      char **out)
{
	const char *hex = strchr(v, ':') + 1, *p;
	char norm[8 + 64 + 1];
	size_t prefix = (size_t)snprintf(norm, sizeof(norm), "%s:", bytes == 20 ? "sha1" : "sha256"), n = prefix;

	if (strstr(v, "\xe2\x80\x8e") != NULL)
		return bad_entry(ld, e, "the thumbprint holds an invisible U+200E mark (copied from the Windows "
				 "certificate dialog): type it again");
	for (p = hex; *p != '\0'; p++) {
		if (*p == ':' || *p == ' ' || *p == '\t')
			continue;
		if (p11pki_hexval((unsigned char)*p) < 0 || n >= prefix + bytes * 2)
			return bad_entry(ld, e, "a %s thumbprint is %zu hexadecimal bytes", bytes == 20 ? "SHA-1" : "SHA-256",
					 bytes);
		norm[n++] = (char)(*p >= 'A' && *p <= 'F' ? *p - 'A' + 'a' : *p);
	}
	if (n != prefix + bytes * 2)
		return bad_entry(ld, e, "a %s thumbprint is %zu hexadecimal bytes", bytes == 20 ? "SHA-1" : "SHA-256",
				 bytes);
	norm[n] = '\0';
	return dup_to(norm, out);
}

static int set_cert(struct loader *ld, const struct p11pki_tlsconf_entry *e, struct p11pki_binding *b)
{
	int rc;

	if (strncasecmp(e->value, "sha1:", 5) == 0)
		return thumbprint(ld, e, e->value, 20, &b->cert);
	if (strncasecmp(e->value, "sha256:", 7) == 0)
		return thumbprint(ld, e, e->value, 32, &b->cert);
	if (is_uri(e->value) && (rc = check_uri(ld, e, e->value, P11PKI_OBJ_CERT)) != 0)
		return rc;
	return dup_to(e->value, &b->cert);
}

static int set_key(struct loader *ld, const struct p11pki_tlsconf_entry *e, struct p11pki_binding *b)
{
	int rc;

	/* file:PATH is the explicit exception, for comparisons and migrations */
	if (strncmp(e->value, "file:", 5) == 0 && e->value[5] != '\0')
		return dup_to(e->value, &b->key);
	if (!is_uri(e->value))
		return bad_entry(ld, e, "expected a PKCS#11 URI (pkcs11:...) or file:PATH: server keys stay on the token");
	if ((rc = check_uri(ld, e, e->value, P11PKI_OBJ_PRIVATE)) != 0)
		return rc;
	return dup_to(e->value, &b->key);
}

/* Kept as "item,item": blanks around commas are trimmed here, once. */
static int set_chain(struct loader *ld, const struct p11pki_tlsconf_entry *e, struct p11pki_binding *b)
{
	char item[ITEM_MAX], list[P11PKI_TLSCONF_MAX_LINE + 1];
	const char *p = e->value;
	size_t n = 0;
	int r, rc;

	while ((r = next_item(&p, 0, item, sizeof(item))) == 1) {
		if (is_uri(item) && (rc = check_uri(ld, e, item, P11PKI_OBJ_CERT)) != 0)
			return rc;
		/* the list is never longer than the value it came from */
		n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s", n > 0 ? "," : "", item);
	}
	if (r < 0)
		return bad_item(ld, e, r);
	list[n] = '\0';
	return dup_to(list, &b->chain);
}

static int set_client_ca(struct loader *ld, const struct p11pki_tlsconf_entry *e, struct p11pki_binding *b)
{
	return dup_to(e->value, &b->client_ca);
}

static int set_crl(struct loader *ld, const struct p11pki_tlsconf_entry *e, struct p11pki_binding *b)
{
	return dup_to(e->value, &b->crl);
}

/* ---- names ------------------------------------------------------------- */

static int set_sni(struct loader *ld, const struct p11pki_tlsconf_entry *e, struct p11pki_binding *b)
{
	/* clients send the A-label form: compare against that */
	if (p11pki_host_to_ascii(e->value, &b->sni) != 0)
		return bad_from_errmsg(ld, e);
	return P11PKI_OK;
}

enum allow_kind { ALLOW_TEXT, ALLOW_DNS, ALLOW_URI, ALLOW_EMAIL };

static int allow_item(const struct loader *ld, const struct p11pki_tlsconf_entry *e, enum allow_kind kind,
		      const char *item, char **out)
{
	char s[P11PKI_SHOWN_BUF];
	const char *at = strchr(item, '@');
	size_t scheme = strspn(item, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-");

	if (kind == ALLOW_DNS)
		return p11pki_host_to_ascii(item, out) != 0 ? bad_from_errmsg(ld, e) : P11PKI_OK;
	if (kind == ALLOW_EMAIL && (at == NULL || at == item || at[1] == '\0' || strchr(at + 1, '@') != NULL ||
				    strpbrk(item, " \t") != NULL))
		return bad_entry(ld, e, "'%s' is not an email address", shown(item, s, sizeof(s)));
	if (kind == ALLOW_URI && (scheme == 0 || item[scheme] != ':' || strpbrk(item, " \t") != NULL))
		return bad_entry(ld, e, "'%s' is not a URI (scheme:...)", shown(item, s, sizeof(s)));
	return dup_to(item, out);
}

static int allow_list(struct loader *ld, const struct p11pki_tlsconf_entry *e, enum allow_kind kind,
		      struct p11pki_allow_list *l)
{
	char item[ITEM_MAX];
	const char *p = e->value;
	int r, rc;

	while ((r = next_item(&p, 0, item, sizeof(item))) == 1) {
		if (l->n == P11PKI_MAX_ALLOW)
			return bad_entry(ld, e, "more than %d names", P11PKI_MAX_ALLOW);
		if ((rc = allow_item(ld, e, kind, item, &l->items[l->n])) != 0)
			return rc;
		l->n++;
	}
	return r < 0 ? bad_item(ld, e, r) : P11PKI_OK;
}

static int set_allow_cn(struct loader *ld, const struct p11pki_tlsconf_entry *e, struct p11pki_binding *b)
{
	return allow_list(ld, e, ALLOW_TEXT, &b->allow_cn);
}

static int set_allow_ou(struct loader *ld, const struct p11pki_tlsconf_entry *e, struct p11pki_binding *b)
{
	return allow_list(ld, e, ALLOW_TEXT, &b->allow_ou);
}

static int set_allow_dns(struct loader *ld, const struct p11pki_tlsconf_entry *e, struct p11pki_binding *b)
{
	return allow_list(ld, e, ALLOW_DNS, &b->allow_dns);
}

static int set_allow_uri(struct loader *ld, const struct p11pki_tlsconf_entry *e, struct p11pki_binding *b)
{
	return allow_list(ld, e, ALLOW_URI, &b->allow_uri);
}

static int set_allow_email(struct loader *ld, const struct p11pki_tlsconf_entry *e, struct p11pki_binding *b)
{
	return allow_list(ld, e, ALLOW_EMAIL, &b->allow_email);
}

/* ---- choices ----------------------------------------------------------- */

static int set_client_auth(struct loader *ld, const struct p11pki_tlsconf_entry *e, struct p11pki_binding *b)
{
	char s[P11PKI_SHOWN_BUF];

	if (strcasecmp(e->value, "none") == 0)
		b->client_auth = P11PKI_CLIENT_NONE;
	else if (strcasecmp(e->value, "optional") == 0)
		b->client_auth = P11PKI_CLIENT_OPTIONAL;
	else if (strcasecmp(e->value, "require") == 0)
		b->client_auth = P11PKI_CLIENT_REQUIRE;
	else
		return bad_entry(ld, e, "'%s': expected none, optional or require", shown(e->value, s, sizeof(s)));
	return P11PKI_OK;
}

static int set_mode(struct loader *ld, const struct p11pki_tlsconf_entry *e, struct p11pki_binding *b)
{
	char s[P11PKI_SHOWN_BUF];

	if (strcasecmp(e->value, "tcp") == 0)
		b->mode = P11PKI_MODE_TCP;
	else if (strcasecmp(e->value, "http") == 0)
		b->mode = P11PKI_MODE_HTTP;
	else
		return bad_entry(ld, e, "'%s': expected tcp or http", shown(e->value, s, sizeof(s)));
	return P11PKI_OK;
}

/* ---- the CA online: est, est_label_*, ocsp, crls ---------------------- */

/* CA, profile and label names: what the store and config sections use. */
static int is_plain_name(const char *v, size_t n)
{
	return n > 0 && n < 64 && strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") >= n;
}

/* "CA/profile" */
static int est_target(struct loader *ld, const struct p11pki_tlsconf_entry *e, char **out)
{
	const char *slash = strchr(e->value, '/');
	char s[P11PKI_SHOWN_BUF];

	if (slash == NULL || !is_plain_name(e->value, (size_t)(slash - e->value)) ||
	    !is_plain_name(slash + 1, strlen(slash + 1)))
		return bad_entry(ld, e, "'%s': expected CA/profile, as issuing/server", shown(e->value, s, sizeof(s)));
	return dup_to(e->value, out);
}

static int set_est(struct loader *ld, const struct p11pki_tlsconf_entry *e, struct p11pki_binding *b)
{
	return est_target(ld, e, &b->est);
}

static int set_est_label(struct loader *ld, const struct p11pki_tlsconf_entry *e, struct p11pki_binding *b)
{
	const char *label = e->key + strlen("est_label_");
	size_t i;
	int rc;

	if (!is_plain_name(label, strlen(label)))
		return bad_entry(ld, e, "est_label_NAME: NAME must be letters, digits, '_', '.' or '-'");
	for (i = 0; i < b->n_est_labels; i++)
		if (strcmp(b->est_labels[i].label, label) == 0)
			return bad_entry(ld, e, "set twice");
	if (b->n_est_labels == P11PKI_MAX_EST_LABELS)
		return bad_entry(ld, e, "more than %d EST labels", P11PKI_MAX_EST_LABELS);
	if ((rc = dup_to(label, &b->est_labels[b->n_est_labels].label)) != 0)
		return rc;
	b->n_est_labels++;
	return est_target(ld, e, &b->est_labels[b->n_est_labels - 1].target);
}

static int ca_names(struct loader *ld, const struct p11pki_tlsconf_entry *e, char **out)
{
	char item[ITEM_MAX], s[P11PKI_SHOWN_BUF];
	const char *p = e->value;
	int r;

	while ((r = next_item(&p, 1, item, sizeof(item))) == 1)
		if (!is_plain_name(item, strlen(item)))
			return bad_entry(ld, e, "'%s' is not a CA name", shown(item, s, sizeof(s)));
	return r < 0 ? bad_item(ld, e, r) : dup_to(e->value, out);
}

static int set_ocsp(struct loader *ld, const struct p11pki_tlsconf_entry *e, struct p11pki_binding *b)
{
	return ca_names(ld, e, &b->ocsp);
}

static int set_crls(struct loader *ld, const struct p11pki_tlsconf_entry *e, struct p11pki_binding *b)
{
	return ca_names(ld, e, &b->crls);
}

/* ---- backends and health checks --------------------------------------- */

static int set_listen(struct loader *ld, const struct p11pki_tlsconf_entry *e, struct p11pki_binding *b)
{
	return endpoint(ld, e, e->value, 1, &b->listen);
}

static int set_backends(struct loader *ld, const struct p11pki_tlsconf_entry *e, struct p11pki_binding *b)
{
	char item[ITEM_MAX], s[P11PKI_SHOWN_BUF];
	const char *p = e->value;
	size_t i;
	int r, rc;

	while ((r = next_item(&p, 1, item, sizeof(item))) == 1) {
		if (b->n_backends == P11PKI_MAX_BACKENDS)
			return bad_entry(ld, e, "more than %d backends", P11PKI_MAX_BACKENDS);
		if ((rc = endpoint(ld, e, item, 0, &b->backends[b->n_backends])) != 0)
			return rc;
		for (i = 0; i < b->n_backends; i++)
			if (same_endpoint(&b->backends[i], &b->backends[b->n_backends]))
				return bad_entry(ld, e, "'%s' is listed twice", shown(item, s, sizeof(s)));
		b->n_backends++;
	}
	return r < 0 ? bad_item(ld, e, r) : P11PKI_OK;
}

static int set_health_check(struct loader *ld, const struct p11pki_tlsconf_entry *e, struct p11pki_binding *b)
{
	char s[P11PKI_SHOWN_BUF];
	const char *path = e->value + 5;

	if (strcasecmp(e->value, "tcp") == 0)
		return P11PKI_OK;
	if (strncasecmp(e->value, "http:", 5) != 0)
		return bad_entry(ld, e, "'%s': expected tcp or http:/PATH", shown(e->value, s, sizeof(s)));
	/* the path goes into a request line: printable ASCII, no blanks */
	if (path[0] != '/' || path[strspn(path, "!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				  "[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~")] != '\0')
		return bad_entry(ld, e, "'%s': the path must start with '/' and hold no blanks or non-ASCII",
				 shown(e->value, s, sizeof(s)));
	if (strlen(path) > ITEM_MAX)
		return bad_entry(ld, e, "the path is longer than %d bytes", ITEM_MAX);
	b->health_http = 1;
	return dup_to(path, &b->health_path);
}

static int set_health_interval(struct loader *ld, const struct p11pki_tlsconf_entry *e, struct p11pki_binding *b)
{
	return duration(ld, e, 100, 3600 * 1000, "100ms to 1h", &b->health_interval_ms);
}

static int set_health_fall(struct loader *ld, const struct p11pki_tlsconf_entry *e, struct p11pki_binding *b)
{
	return number(ld, e, 1, 100, &b->health_fall);
}

static int set_health_rise(struct loader *ld, const struct p11pki_tlsconf_entry *e, struct p11pki_binding *b)
{
	return number(ld, e, 1, 100, &b->health_rise);
}

/* ---- protocols and ciphers --------------------------------------------- */

static int set_protocols(struct loader *ld, const struct p11pki_tlsconf_entry *e, struct p11pki_binding *b)
{
	static const char *const refused[] = {"SSLv2", "SSLv3", "TLSv1", "TLSv1.0", "TLSv1.1"};
	char item[ITEM_MAX], s[P11PKI_SHOWN_BUF];
	const char *p = e->value;
	size_t i;
	int r;

	b->min_tls12 = b->tls13 = 0;
	while ((r = next_item(&p, 1, item, sizeof(item))) == 1) {
		if (strcasecmp(item, "TLSv1.2") == 0) {
			b->min_tls12 = 1;
			continue;
		}
		if (strcasecmp(item, "TLSv1.3") == 0) {
			b->tls13 = 1;
			continue;
		}
		for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
			if (strcasecmp(item, refused[i]) == 0)
				return bad_entry(ld, e, "%s is refused: only TLSv1.2 and TLSv1.3 are allowed", refused[i]);
		return bad_entry(ld, e, "unknown protocol '%s': only TLSv1.2 and TLSv1.3 are allowed",
				 shown(item, s, sizeof(s)));
	}
	if (r < 0)
		return bad_item(ld, e, r);
	if (!b->min_tls12 && !b->tls13)
		return bad_entry(ld, e, "no protocol given: write TLSv1.2, TLSv1.3");
	return P11PKI_OK;
}

static int ssl_ctx(struct loader *ld, SSL_CTX **ctx)
{
	if (ld->ssl == NULL &&
	    ((ld->ssl = SSL_CTX_new(TLS_server_method())) == NULL ||
	     !SSL_CTX_set_min_proto_version(ld->ssl, TLS1_2_VERSION))) {
		ERR_clear_error();
		return p11pki_fail(P11PKI_E_CRYPTO, "cannot create an OpenSSL context to check cipher settings");
	}
	*ctx = ld->ssl;
	return P11PKI_OK;
}

/* The weak family a cipher string word selects, or NULL: OpenSSL 3 may
 * not even know these, but saying so beats "no cipher match". */
static const char *weak_word(const char *w)
{
	static const char *const exact[] = {"aNULL", "eNULL", "SSLv2", "SSLv3", "LOW", "ADH", "AECDH"};
	static const char *const part[] = {"NULL", "RC4", "MD5", "EXP", "RC2", "3DES", "DES"};
	size_t i;

	for (i = 0; i < sizeof(exact) / sizeof(exact[0]); i++)
		if (strcasecmp(w, exact[i]) == 0)
			return exact[i];
	for (i = 0; i < sizeof(part) / sizeof(part[0]); i++)
		if (strcasestr(w, part[i]) != NULL)
			return strcmp(part[i], "EXP") == 0 ? "export" : part[i];
	return NULL;
}

/* Words of a cipher string that add ciphers ("RC4", "ECDHE+RC4", "+MD5")
 * must not name a weak family; "!RC4" and "-MD5" remove and are fine. */
static int vet_cipher_words(const struct loader *ld, const struct p11pki_tlsconf_entry *e)
{
	char copy[P11PKI_TLSCONF_MAX_LINE + 1], *word, *atom, *save1 = NULL, *save2 = NULL,
		s[P11PKI_SHOWN_BUF];
	const char *weak;

	/* OpenSSL's separators in a cipher string */
	snprintf(copy, sizeof(copy), "%s", e->value);
	for (word = strtok_r(copy, ":,; \t", &save1); word != NULL; word = strtok_r(NULL, ":,; \t", &save1)) {
		if (word[0] == '!' || word[0] == '-')
			continue;
		if (strncmp(word, "@SECLEVEL=", 10) == 0 && strtol(word + 10, NULL, 10) < 2)
			return bad_entry(ld, e, "'%s' lowers the security level: 2 or more is required",
					 shown(word, s, sizeof(s)));
		for (atom = strtok_r(word, "+", &save2); atom != NULL; atom = strtok_r(NULL, "+", &save2))
			if ((weak = weak_word(atom)) != NULL)
				return bad_entry(ld, e, "'%s' is refused: it selects %s ciphers; only ECDHE with AEAD "
						 "suites is allowed", shown(atom, s, sizeof(s)), weak);
	}
	return P11PKI_OK;
}

static void append(char *buf, size_t size, size_t *n, const char *what, const char *name)
{
	int w;

	if (*n >= size)
		return;
	w = snprintf(buf + *n, size - *n, "%s%s%s", *n > 0 ? "; " : "", name != NULL ? name : "", what);
	if (w > 0)
		*n += (size_t)w;
}

/* Why a TLS 1.2 cipher is refused, or "" when it is ECDHE with AEAD. */
static void cipher_weakness(const SSL_CIPHER *c, char *why, size_t size)
{
	int kx = SSL_CIPHER_get_kx_nid(c), au = SSL_CIPHER_get_auth_nid(c);
	const char *kxn = OBJ_nid2sn(kx), *aun = OBJ_nid2sn(au);
	size_t n = 0;

	why[0] = '\0';
	/* ECDHE-PSK has forward secrecy: its PSK authentication is refused below */
	if (kx != NID_kx_ecdhe && kx != NID_kx_ecdhe_psk)
		append(why, size, &n, " key exchange has no ECDHE forward secrecy",
		       kxn != NULL && strncmp(kxn, "Kx", 2) == 0 ? kxn + 2 : "its");
	if (au == NID_auth_null)
		append(why, size, &n, "anonymous (no server authentication)", NULL);
	else if (au != NID_auth_rsa && au != NID_auth_ecdsa)
		append(why, size, &n, " authentication is not by certificate",
		       aun != NULL && strncmp(aun, "Auth", 4) == 0 ? aun + 4 : "its");
	if (SSL_CIPHER_get_cipher_nid(c) == NID_undef)
		append(why, size, &n, "no encryption (NULL)", NULL);
	else if (!SSL_CIPHER_is_aead(c))
		append(why, size, &n, "not AEAD (CBC with a separate MAC)", NULL);
	if (SSL_CIPHER_get_digest_nid(c) == NID_md5)
		append(why, size, &n, "MD5", NULL);
}

static int vet_cipher_list(struct loader *ld, const struct p11pki_tlsconf_entry *e, SSL_CTX *ctx)
{
	STACK_OF(SSL_CIPHER) *list = SSL_CTX_get_ciphers(ctx);
	char why[200];
	int i;

	for (i = 0; i < sk_SSL_CIPHER_num(list); i++) {
		const SSL_CIPHER *c = sk_SSL_CIPHER_value(list, i);

		if (SSL_CIPHER_get_kx_nid(c) == NID_kx_any)
			continue; /* TLS 1.3: ciphersuites governs those */
		cipher_weakness(c, why, sizeof(why));
		if (why[0] != '\0')
			return bad_entry(ld, e, "%s is refused: %s", SSL_CIPHER_get_name(c), why);
	}
	return P11PKI_OK;
}

static int set_ciphers(struct loader *ld, const struct p11pki_tlsconf_entry *e, struct p11pki_binding *b)
{
	char s[P11PKI_SHOWN_BUF];
	SSL_CTX *ctx;
	int rc, level;

	if ((rc = vet_cipher_words(ld, e)) != 0 || (rc = ssl_ctx(ld, &ctx)) != 0)
		return rc;
	level = SSL_CTX_get_security_level(ctx);
	if (!SSL_CTX_set_cipher_list(ctx, e->value)) {
		ERR_clear_error();
		return bad_entry(ld, e, "'%s' selects no TLS 1.2 cipher OpenSSL knows", shown(e->value, s, sizeof(s)));
	}
	rc = vet_cipher_list(ld, e, ctx);
	SSL_CTX_set_security_level(ctx, level); /* an @SECLEVEL= must not leak into the next check */
	if (rc != 0)
		return rc;
	return dup_to(e->value, &b->ciphers);
}

static int vet_suite(const struct loader *ld, const struct p11pki_tlsconf_entry *e, const char *name)
{
	static const char *const known[] = {"TLS_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256",
					    "TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_128_CCM_SHA256"};
	char s[P11PKI_SHOWN_BUF];
	size_t i;

	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(name, known[i]) == 0)
			return P11PKI_OK;
	if (strcmp(name, "TLS_AES_128_CCM_8_SHA256") == 0)
		return bad_entry(ld, e, "%s is refused: its 8-byte authentication tag is too short", name);
	return bad_entry(ld, e, "unknown TLS 1.3 suite '%s' (known: TLS_AES_256_GCM_SHA384, "
			 "TLS_AES_128_GCM_SHA256, TLS_CHACHA20_POLY1305_SHA256, TLS_AES_128_CCM_SHA256)",
			 shown(name, s, sizeof(s)));
}

/* OpenSSL splits at ':' only, trims blanks, and skips names it does not
 * know (even all of them, leaving TLS 1.3 without suites): so each name
 * is checked here, split the same way. */
static int set_ciphersuites(struct loader *ld, const struct p11pki_tlsconf_entry *e, struct p11pki_binding *b)
{
	char copy[P11PKI_TLSCONF_MAX_LINE + 1], *name, *next, *end, s[P11PKI_SHOWN_BUF];
	SSL_CTX *ctx;
	int rc;

	snprintf(copy, sizeof(copy), "%s", e->value);
	for (name = copy; name != NULL; name = next) {
		if ((next = strchr(name, ':')) != NULL)
			*next++ = '\0';
		while (*name == ' ' || *name == '\t')
			name++;
		for (end = name + strlen(name); end > name && (end[-1] == ' ' || end[-1] == '\t');)
			*--end = '\0';
		if (*name == '\0')
			return bad_entry(ld, e, "empty suite name in the ':' list");
		if ((rc = vet_suite(ld, e, name)) != 0)
			return rc;
	}
	if ((rc = ssl_ctx(ld, &ctx)) != 0)
		return rc;
	if (!SSL_CTX_set_ciphersuites(ctx, e->value)) {
		ERR_clear_error();
		return bad_entry(ld, e, "OpenSSL refuses '%s'", shown(e->value, s, sizeof(s)));
	}
	return dup_to(e->value, &b->ciphersuites);
}

/* ---- timeouts and limits ----------------------------------------------- */

static int set_session_timeout(struct loader *ld, const struct p11pki_tlsconf_entry *e, struct p11pki_binding *b)
{
	char s[P11PKI_SHOWN_BUF];
	unsigned ms;
	int rc;

	if ((rc = duration(ld, e, 1000, 86400 * 1000, "1s to 24h", &ms)) != 0)
		return rc;
	if (ms % 1000 != 0)
		return bad_entry(ld, e, "'%s' is not a whole number of seconds", shown(e->value, s, sizeof(s)));
	b->session_timeout_s = ms / 1000;
	return P11PKI_OK;
}

static int set_session_tickets(struct loader *ld, const struct p11pki_tlsconf_entry *e, struct p11pki_binding *b)
{
	char s[P11PKI_SHOWN_BUF];

	if (strcasecmp(e->value, "on") == 0 || strcasecmp(e->value, "yes") == 0)
		b->session_cache = 0;
	else if (strcasecmp(e->value, "off") == 0 || strcasecmp(e->value, "no") == 0)
		b->session_cache = 1;
	else
		return bad_entry(ld, e, "'%s': expected on or off", shown(e->value, s, sizeof(s)));
	return P11PKI_OK;
}

static int set_handshake_timeout(struct loader *ld, const struct p11pki_tlsconf_entry *e, struct p11pki_binding *b)
{
	return duration(ld, e, 100, 300 * 1000, "100ms to 5m", &b->handshake_timeout_ms);
}

static int set_idle_timeout(struct loader *ld, const struct p11pki_tlsconf_entry *e, struct p11pki_binding *b)
{
	return duration(ld, e, 1000, 86400 * 1000, "1s to 24h", &b->idle_timeout_ms);
}

static int set_max_connections(struct loader *ld, const struct p11pki_tlsconf_entry *e, struct p11pki_binding *b)
{
	return number(ld, e, 1, 1000000, &b->max_connections);
}

static const struct {
	const char *name;
	binding_setter set;
} binding_keys[K_COUNT] = {
	[K_LISTEN] = {"listen", set_listen},
	[K_SNI] = {"sni", set_sni},
	[K_CERT] = {"cert", set_cert},
	[K_KEY] = {"key", set_key},
	[K_CHAIN] = {"chain", set_chain},
	[K_CLIENT_AUTH] = {"client_auth", set_client_auth},
	[K_CLIENT_CA] = {"client_ca", set_client_ca},
	[K_CRL] = {"crl", set_crl},
	[K_ALLOW_CN] = {"allow_cn", set_allow_cn},
	[K_ALLOW_OU] = {"allow_ou", set_allow_ou},
	[K_ALLOW_DNS] = {"allow_dns", set_allow_dns},
	[K_ALLOW_URI] = {"allow_uri", set_allow_uri},
	[K_ALLOW_EMAIL] = {"allow_email", set_allow_email},
	[K_MODE] = {"mode", set_mode},
	[K_BACKENDS] = {"backends", set_backends},
	[K_HEALTH_CHECK] = {"health_check", set_health_check},
	[K_HEALTH_INTERVAL] = {"health_interval", set_health_interval},
	[K_HEALTH_FALL] = {"health_fall", set_health_fall},
	[K_HEALTH_RISE] = {"health_rise", set_health_rise},
	[K_PROTOCOLS] = {"protocols", set_protocols},
	[K_CIPHERS] = {"ciphers", set_ciphers},
	[K_CIPHERSUITES] = {"ciphersuites", set_ciphersuites},
	[K_SESSION_TIMEOUT] = {"session_timeout", set_session_timeout},
	[K_SESSION_TICKETS] = {"session_tickets", set_session_tickets},
	[K_HANDSHAKE_TIMEOUT] = {"handshake_timeout", set_handshake_timeout},
	[K_IDLE_TIMEOUT] = {"idle_timeout", set_idle_timeout},
	[K_MAX_CONNECTIONS] = {"max_connections", set_max_connections},
	[K_EST] = {"est", set_est},
	[K_OCSP] = {"ocsp", set_ocsp},
	[K_CRLS] = {"crls", set_crls},
};

/* ---- [ serve ] --------------------------------------------------------- */

static int set_admin(struct loader *ld, const struct p11pki_tlsconf_entry *e)
{
	ld->cfg->has_admin = 1;
	return endpoint(ld, e, e->value, 1, &ld->cfg->admin);
}

static int set_workers(struct loader *ld, const struct p11pki_tlsconf_entry *e)
{
	return number(ld, e, 0, 1024, &ld->cfg->workers);
}

static int set_signing_threads(struct loader *ld, const struct p11pki_tlsconf_entry *e)
{
	return number(ld, e, 0, 256, &ld->cfg->signing_threads);
}

static int set_pid_file(struct loader *ld, const struct p11pki_tlsconf_entry *e)
{
	return dup_to(e->value, &ld->cfg->pid_file);
}

static int set_bound_file(struct loader *ld, const struct p11pki_tlsconf_entry *e)
{
	return dup_to(e->value, &ld->cfg->bound_file);
}

static int set_module(struct loader *ld, const struct p11pki_tlsconf_entry *e)
{
	return dup_to(e->value, &ld->cfg->module);
}

static int set_pin_source(struct loader *ld, const struct p11pki_tlsconf_entry *e)
{
	enum p11pki_pin_kind kind;
	const char *where;

	if (p11pki_pin_source_parse(e->value, &kind, &where) != 0)
		return bad_from_errmsg(ld, e);
	return dup_to(e->value, &ld->cfg->pin_source);
}

/* Read before anything else (find_bindings): nothing left to do. */
static int set_bindings(struct loader *ld, const struct p11pki_tlsconf_entry *e)
{
	return P11PKI_OK;
}

static const struct {
	const char *name;
	serve_setter set;
} serve_keys[S_COUNT] = {
	[S_BINDINGS] = {"bindings", set_bindings},
	[S_ADMIN] = {"admin", set_admin},
	[S_WORKERS] = {"workers", set_workers},
	[S_PID_FILE] = {"pid_file", set_pid_file},
	[S_BOUND_FILE] = {"bound_file", set_bound_file},
	[S_MODULE] = {"module", set_module},
	[S_PIN_SOURCE] = {"pin_source", set_pin_source},
	[S_SIGNING_THREADS] = {"signing_threads", set_signing_threads},
};

/* ---- sections ---------------------------------------------------------- */

/* Sections the CA and online features read from the same file. */
static int is_shared_section(const char *name)
{
	return strncmp(name, "ca_", 3) == 0 || strncmp(name, "profile_", 8) == 0 ||
	       strncmp(name, "policy_", 7) == 0 || strncmp(name, "est_", 4) == 0 || strcmp(name, "online") == 0 ||
	       strcmp(name, "p11pki") == 0;
}

static void binding_defaults(struct p11pki_binding *b, int line)
{
	b->line = line;
	b->client_auth = P11PKI_CLIENT_NONE;
	b->mode = P11PKI_MODE_TCP;
	b->health_interval_ms = 2000;
	b->health_fall = 3;
	b->health_rise = 2;
	b->min_tls12 = b->tls13 = 1;
	b->session_timeout_s = 300;
	b->handshake_timeout_ms = 10 * 1000;
	b->idle_timeout_ms = 60 * 1000;
	b->max_connections = 1024;
}

static int add_binding(struct loader *ld, const struct p11pki_tlsconf_entry *e, const char *name)
{
	struct p11pki_serve_config *cfg = ld->cfg;
	char s[P11PKI_SHOWN_BUF];
	size_t i, sec;

	if (name[strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_!%&*+-./;?@^|~")] != '\0')
		return bad_entry(ld, e, "'%s' is not a section name", shown(name, s, sizeof(s)));
	if (strcmp(name, "serve") == 0 || strcmp(name, "default") == 0 || is_shared_section(name))
		return bad_entry(ld, e, "[ %s ] cannot be a binding: the name is reserved", name);
	for (i = 0; i < cfg->n_bindings; i++)
		if (strcmp(cfg->bindings[i].name, name) == 0)
			return bad_entry(ld, e, "%s is listed twice", name);
	if (cfg->n_bindings == P11PKI_MAX_BINDINGS)
		return bad_entry(ld, e, "more than %d bindings", P11PKI_MAX_BINDINGS);
	if ((sec = p11pki_tlsconf_section_find(ld->c, name)) == NO_SECTION)
		return bad_entry(ld, e, "there is no section [ %s ]", name);
	binding_defaults(&cfg->bindings[cfg->n_bindings], ld->c->sections[sec].line);
	ld->section_of[cfg->n_bindings] = sec;
	return dup_to(name, &cfg->bindings[cfg->n_bindings++].name);
}

/* Finds [ serve ] and the binding sections its bindings = lists. */
static int find_bindings(struct loader *ld)
{
	const struct p11pki_tlsconf_entry *e = NULL;
	char item[ITEM_MAX];
	const char *p;
	size_t i;
	int r, rc;

	if ((ld->serve = p11pki_tlsconf_section_find(ld->c, "serve")) == NO_SECTION)
		return bad(ld, 1, "serve", NULL, "there is no [ serve ] section");
	for (i = 0; i < ld->c->n_entries && e == NULL; i++)
		if (ld->c->entries[i].section == ld->serve && strcmp(ld->c->entries[i].key, "bindings") == 0)
			e = &ld->c->entries[i];
	if (e == NULL)
		return bad(ld, ld->c->sections[ld->serve].line, "serve", "bindings",
			   "is required: list the binding sections, as bindings = www, api");
	for (p = e->value; (r = next_item(&p, 1, item, sizeof(item))) == 1;)
		if ((rc = add_binding(ld, e, item)) != 0)
			return rc;
	if (r < 0)
		return bad_item(ld, e, r);
	if (ld->cfg->n_bindings == 0)
		return bad_entry(ld, e, "lists no binding section");
	return P11PKI_OK;
}

static int binding_of(const struct loader *ld, size_t section)
{
	size_t i;

	for (i = 0; i < ld->cfg->n_bindings; i++)
		if (ld->section_of[i] == section)
			return (int)i;
	return -1;
}

static int check_sections(const struct loader *ld)
{
	const struct p11pki_tlsconf_section *s;
	size_t i;

	for (i = 1; i < ld->c->n_sections; i++) {
		s = &ld->c->sections[i];
		if (i != ld->serve && binding_of(ld, i) < 0 && !is_shared_section(s->name))
			return bad(ld, s->line, s->name, NULL,
				   "unknown section: list it in [ serve ] bindings, or name it ca_*, profile_*, "
				   "policy_*, est_*, online or p11pki for the other features");
	}
	return P11PKI_OK;
}

/* Settings before any section are $variables: one that nothing uses is
 * most likely a serve setting put in the wrong place. */
static int check_variables(const struct loader *ld)
{
	const struct p11pki_tlsconf_entry *e;
	size_t i;

	for (i = 0; i < ld->c->n_entries; i++) {
		e = &ld->c->entries[i];
		if (e->section == 0 && !e->used)
			return bad_entry(ld, e, "a setting outside any section only defines a $variable, and no value "
					 "uses it: put settings under [ serve ] or a binding section");
	}
	return P11PKI_OK;
}

/* ---- applying settings ------------------------------------------------- */

static size_t edit_distance(const char *a, const char *b)
{
	size_t row[P11PKI_TLSCONF_MAX_NAME + 2], la = strlen(a), lb = strlen(b), i, j, diag, up;

	if (la > P11PKI_TLSCONF_MAX_NAME || lb > P11PKI_TLSCONF_MAX_NAME)
		return (size_t)-1;
	for (j = 0; j <= lb; j++)
		row[j] = j;
	for (i = 1; i <= la; i++) {
		diag = row[0];
		row[0] = i;
		for (j = 1; j <= lb; j++) {
			up = row[j];
			row[j] = diag + (a[i - 1] != b[j - 1]);
			if (up + 1 < row[j])
				row[j] = up + 1;
			if (row[j - 1] + 1 < row[j])
				row[j] = row[j - 1] + 1;
			diag = up;
		}
	}
	return row[lb];
}

static int unknown_key(const struct loader *ld, const struct p11pki_tlsconf_entry *e, int serve)
{
	const char *best = NULL, *name;
	size_t i, d, best_d = 3, n = serve ? S_COUNT : K_COUNT;

	for (i = 0; i < n; i++) {
		name = serve ? serve_keys[i].name : binding_keys[i].name;
		if ((d = edit_distance(e->key, name)) < best_d) {
			best_d = d;
			best = name;
		}
	}
	if (best != NULL)
		return bad_entry(ld, e, "unknown key: did you mean %s?", best);
	return bad_entry(ld, e, "unknown key (the keys of a %s section are listed in docs/serve-config.md)",
			 serve ? "[ serve ]" : "binding");
}

/* What every value of ours must be before its own checks. */
static int check_value(const struct loader *ld, const struct p11pki_tlsconf_entry *e, int first_line)
{
	const unsigned char *p;

	if (first_line != 0)
		return bad_entry(ld, e, "set twice (first at line %d)", first_line);
	if (e->value[0] == '\0')
		return bad_entry(ld, e, "empty value");
	for (p = (const unsigned char *)e->value; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f)
			return bad_entry(ld, e, "control character 0x%02x in the value", *p);
	if (p11pki_utf8_chars(e->value, strlen(e->value)) == (size_t)-1)
		return bad_entry(ld, e, "the value is not valid UTF-8");
	return P11PKI_OK;
}

static int apply_binding(struct loader *ld, const struct p11pki_tlsconf_entry *e, int bi)
{
	size_t k;
	int rc;

	if (strncmp(e->key, "est_label_", 10) == 0) {
		if ((rc = check_value(ld, e, 0)) != 0)
			return rc;
		return set_est_label(ld, e, &ld->cfg->bindings[bi]);
	}
	for (k = 0; k < K_COUNT && strcmp(e->key, binding_keys[k].name) != 0; k++)
		;
	if (k == K_COUNT)
		return unknown_key(ld, e, 0);
	if ((rc = check_value(ld, e, ld->seen[bi][k])) != 0)
		return rc;
	ld->seen[bi][k] = e->line;
	return binding_keys[k].set(ld, e, &ld->cfg->bindings[bi]);
}

static int apply_serve(struct loader *ld, const struct p11pki_tlsconf_entry *e)
{
	size_t k;
	int rc;

	for (k = 0; k < S_COUNT && strcmp(e->key, serve_keys[k].name) != 0; k++)
		;
	if (k == S_COUNT)
		return unknown_key(ld, e, 1);
	if ((rc = check_value(ld, e, ld->serve_seen[k])) != 0)
		return rc;
	ld->serve_seen[k] = e->line;
	return serve_keys[k].set(ld, e);
}

/* In file order, so the first error is the first one in the file. */
static int apply_entries(struct loader *ld)
{
	const struct p11pki_tlsconf_entry *e;
	size_t i;
	int bi, rc;

	for (i = 0; i < ld->c->n_entries; i++) {
		e = &ld->c->entries[i];
		if (e->section == ld->serve)
			rc = apply_serve(ld, e);
		else if ((bi = binding_of(ld, e->section)) >= 0)
			rc = apply_binding(ld, e, bi);
		else
			rc = P11PKI_OK; /* $variables and the other features' sections */
		if (rc != 0)
			return rc;
	}
	return P11PKI_OK;
}

/* ---- the whole binding ------------------------------------------------- */

static int required(const struct loader *ld, int bi)
{
	const struct p11pki_binding *b = &ld->cfg->bindings[bi];

	if (ld->seen[bi][K_LISTEN] == 0)
		return bad(ld, b->line, b->name, NULL, "listen is required, as listen = 0.0.0.0:443");
	if (ld->seen[bi][K_CERT] == 0)
		return bad(ld, b->line, b->name, NULL,
			   "cert is required: a PKCS#11 URI, a PEM file or a sha1:/sha256: thumbprint");
	if (ld->seen[bi][K_KEY] == 0)
		return bad(ld, b->line, b->name, NULL, "key is required: the PKCS#11 URI of the private key");
	return P11PKI_OK;
}

/* Settings that would be silently ignored are refused instead: a client
 * allow-list without client certificates would restrict nothing. */
static int coherent(const struct loader *ld, int bi)
{
	static const int client_keys[] = {K_CLIENT_CA, K_CRL, K_ALLOW_CN, K_ALLOW_OU, K_ALLOW_DNS, K_ALLOW_URI,
					  K_ALLOW_EMAIL};
	static const int health_keys[] = {K_HEALTH_CHECK, K_HEALTH_INTERVAL, K_HEALTH_FALL, K_HEALTH_RISE};
	const struct p11pki_binding *b = &ld->cfg->bindings[bi];
	const int *seen = ld->seen[bi];
	size_t i;

	if (b->client_auth != P11PKI_CLIENT_NONE && b->client_ca == NULL)
		return bad(ld, seen[K_CLIENT_AUTH], b->name, "client_auth",
			   "%s needs client_ca: the CA certificates client certificates must chain to",
			   b->client_auth == P11PKI_CLIENT_REQUIRE ? "require" : "optional");
	for (i = 0; b->client_auth == P11PKI_CLIENT_NONE && i < sizeof(client_keys) / sizeof(client_keys[0]); i++)
		if (seen[client_keys[i]] != 0)
			return bad(ld, seen[client_keys[i]], b->name, binding_keys[client_keys[i]].name,
				   "has no effect without client certificates: set client_auth = optional or require");
	if (b->key != NULL && strncmp(b->key, "file:", 5) == 0 && b->cert != NULL &&
	    (is_uri(b->cert) || strncmp(b->cert, "sha1:", 5) == 0 || strncmp(b->cert, "sha256:", 7) == 0))
		return bad(ld, seen[K_CERT], b->name, "cert", "a key from a file (key = file:...) needs cert = a PEM file");
	if (b->mode != P11PKI_MODE_HTTP && (b->est != NULL || b->n_est_labels > 0 || b->ocsp != NULL || b->crls != NULL))
		return bad(ld, b->line, b->name, NULL, "est, ocsp and crls answer HTTP: set mode = http");
	for (i = 0; b->n_backends == 0 && i < sizeof(health_keys) / sizeof(health_keys[0]); i++)
		if (seen[health_keys[i]] != 0)
			return bad(ld, seen[health_keys[i]], b->name, binding_keys[health_keys[i]].name,
				   "has no effect without backends");
	return P11PKI_OK;
}

static int finish_bindings(struct loader *ld)
{
	struct p11pki_binding *b;
	size_t i;
	int rc;

	for (i = 0; i < ld->cfg->n_bindings; i++) {
		b = &ld->cfg->bindings[i];
		if ((rc = required(ld, (int)i)) != 0 || (rc = coherent(ld, (int)i)) != 0)
			return rc;
		if (b->ciphers == NULL && (rc = dup_to(DEFAULT_CIPHERS, &b->ciphers)) != 0)
			return rc;
		if (b->ciphersuites == NULL && (rc = dup_to(OSSL_default_ciphersuites(), &b->ciphersuites)) != 0)
			return rc;
	}
	return P11PKI_OK;
}

/* One default binding and distinct sni names per listener. */
static int check_duplicate(const struct loader *ld, size_t i, size_t j)
{
	const struct p11pki_binding *a = &ld->cfg->bindings[i], *b = &ld->cfg->bindings[j];
	char ep[300];

	if (!same_endpoint(&a->listen, &b->listen))
		return P11PKI_OK;
	endpoint_text(&b->listen, ep, sizeof(ep));
	if (a->sni == NULL && b->sni == NULL)
		return bad(ld, ld->seen[j][K_LISTEN], b->name, "listen",
			   "[ %s ] and [ %s ] (line %d) are both the default binding (no sni) of %s", b->name, a->name,
			   a->line, ep);
	if (a->sni != NULL && b->sni != NULL && strcasecmp(a->sni, b->sni) == 0)
		return bad(ld, ld->seen[j][K_SNI], b->name, "sni",
			   "[ %s ] duplicates [ %s ] (line %d): both are sni %s on %s", b->name, a->name, a->line,
			   b->sni, ep);
	return P11PKI_OK;
}

static int check_duplicates(const struct loader *ld)
{
	size_t i, j;
	int rc;

	for (j = 1; j < ld->cfg->n_bindings; j++)
		for (i = 0; i < j; i++)
			if ((rc = check_duplicate(ld, i, j)) != 0)
				return rc;
	return P11PKI_OK;
}

/* ---- the API ----------------------------------------------------------- */

static void allow_free(struct p11pki_allow_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->items[i]);
}

static void binding_free(struct p11pki_binding *b)
{
	free(b->name);
	free(b->sni);
	free(b->cert);
	free(b->key);
	free(b->chain);
	free(b->client_ca);
	free(b->crl);
	free(b->est);
	for (size_t i = 0; i < b->n_est_labels; i++) {
		free(b->est_labels[i].label);
		free(b->est_labels[i].target);
	}
	free(b->ocsp);
	free(b->crls);
	allow_free(&b->allow_cn);
	allow_free(&b->allow_ou);
	allow_free(&b->allow_dns);
	allow_free(&b->allow_uri);
	allow_free(&b->allow_email);
	free(b->health_path);
	free(b->ciphers);
	free(b->ciphersuites);
}

void p11pki_serve_config_free(struct p11pki_serve_config *cfg)
{
	size_t i;

	if (cfg == NULL)
		return;
	for (i = 0; i < cfg->n_bindings; i++)
		binding_free(&cfg->bindings[i]);
	free(cfg->path);
	free(cfg->pid_file);
	free(cfg->bound_file);
	free(cfg->module);
	free(cfg->pin_source);
	free(cfg);
}

int p11pki_serve_config_parse(const char *name, const char *text, size_t len, struct p11pki_serve_config **out)
{
	struct loader *ld;
	int rc;

	if (out != NULL)
		*out = NULL;
	if (out == NULL || name == NULL || (text == NULL && len > 0))
		return p11pki_fail(P11PKI_E_ARG, "p11pki_serve_config_parse: missing argument");
	/* the loader is large (the seen table): keep it off the stack */
	if ((ld = calloc(1, sizeof(*ld))) == NULL)
		return nomem();
	if ((rc = p11pki_tlsconf_read(name, text, len, &ld->c)) != 0)
		goto out;
	if ((ld->cfg = calloc(1, sizeof(*ld->cfg))) == NULL || (ld->cfg->path = strdup(name)) == NULL) {
		rc = nomem();
		goto out;
	}
	if ((rc = find_bindings(ld)) != 0 || (rc = check_sections(ld)) != 0 || (rc = check_variables(ld)) != 0 ||
	    (rc = apply_entries(ld)) != 0 || (rc = finish_bindings(ld)) != 0 || (rc = check_duplicates(ld)) != 0)
		goto out;
	*out = ld->cfg;
	ld->cfg = NULL;
out:
	p11pki_serve_config_free(ld->cfg);
	p11pki_tlsconf_free(ld->c);
	SSL_CTX_free(ld->ssl);
	free(ld);
	return rc;
}

/* Reads at most P11PKI_TLSCONF_MAX_FILE + 1 bytes, so an oversized file
 * is reported by the parser's own bound. */
static int read_file(const char *path, char **text, size_t *len)
{
	char shown_path[P11PKI_SHOWN_SIZE(200)];
	size_t cap = P11PKI_TLSCONF_MAX_FILE + 1;
	struct stat st;
	ssize_t n = 0;
	int fd, rc = P11PKI_OK;

	*text = NULL;
	*len = 0;
	p11pki_shown(path, shown_path, sizeof(shown_path));
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return p11pki_fail(P11PKI_E_IO, "cannot open %s: %s", shown_path, strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		rc = p11pki_fail(P11PKI_E_IO, "%s is not a regular file", shown_path);
		goto out;
	}
	if ((*text = malloc(cap)) == NULL) {
		rc = nomem();
		goto out;
	}
	while (*len < cap && ((n = read(fd, *text + *len, cap - *len)) > 0 || (n < 0 && errno == EINTR)))
		*len += n > 0 ? (size_t)n : 0;
	if (n < 0) {
		rc = p11pki_fail(P11PKI_E_IO, "cannot read %s: %s", shown_path, strerror(errno));
		free(*text);
		*text = NULL;
	}
out:
	close(fd);
	return rc;
}

int p11pki_serve_config_load(const char *path, struct p11pki_serve_config **out)
{
	char *text = NULL;
	size_t len = 0;
	int rc;

	if (out != NULL)
		*out = NULL;
	if (path == NULL || out == NULL)
		return p11pki_fail(P11PKI_E_ARG, "p11pki_serve_config_load: missing argument");
	if ((rc = read_file(path, &text, &len)) != 0)
		goto out;
	rc = p11pki_serve_config_parse(path, text, len, out);
out:
	free(text);
	return rc;
}
