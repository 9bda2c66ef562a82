/* OpenSSL config syntax with line numbers (confparse.h). The rules follow
 * OpenSSL 3's conf_def.c so a file means the same here and to NCONF; the
 * differences are refusals of what NCONF lets pass silently (unterminated
 * quotes, text after ']', control bytes) or cannot bound (.include). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <p11pki/core.h>

#include "core/text.h"
#include "tls/confparse.h"

#define NOT_FOUND ((size_t)-1)

struct reader {
	struct p11pki_tlsconf *c;
	size_t cap_sections, cap_entries;
	size_t cur;		/* section that settings go to */
	int line;		/* first physical line of the logical line */
	size_t value_bytes;	/* all values so far, for the total bound */
	unsigned expansions;
};

static int fail_at(const struct reader *rd, const char *fmt, ...) P11PKI_PRINTF(2, 3);

/* "FILE:LINE: " then the message. */
static int fail_at(const struct reader *rd, const char *fmt, ...)
{
	char file[P11PKI_SHOWN_SIZE(200)], msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return p11pki_fail(P11PKI_E_ARG, "%s:%d: %s", p11pki_shown(rd->c->file, file, sizeof(file)), rd->line,
			   msg);
}

/* Characters of section and key names: NCONF's "alphanumeric and
 * punctuation" class. */
static int is_name_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
	       (ch != '\0' && strchr("!%&*+,-./;?@^|~", ch) != NULL);
}

/* Characters of $variable names: NCONF's alphanumeric class. */
static int is_var_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_';
}

static char *skip_ws(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

static char *skip_name(char *s)
{
	while (is_name_char(*s))
		s++;
	return s;
}

size_t p11pki_tlsconf_section_find(const struct p11pki_tlsconf *c, const char *name)
{
	size_t i;

	for (i = 0; i < c->n_sections; i++)
		if (strcmp(c->sections[i].name, name) == 0)
			return i;
	return NOT_FOUND;
}

static int room_for_one_more(const struct reader *rd)
{
	if (rd->c->n_sections + rd->c->n_entries >= P11PKI_TLSCONF_MAX_ENTRIES)
		return fail_at(rd, "more than %d settings and sections", P11PKI_TLSCONF_MAX_ENTRIES);
	return P11PKI_OK;
}

/* Grows an array by doubling; the entry bound keeps sizes small. */
static int grow(void **array, size_t *cap, size_t n, size_t size)
{
	size_t want = *cap == 0 ? 16 : *cap * 2;
	void *p;

	if (n < *cap)
		return P11PKI_OK;
	if ((p = realloc(*array, want * size)) == NULL)
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
	*array = p;
	*cap = want;
	return P11PKI_OK;
}

/* Index of the section called name, added when new (NCONF merges a
 * section opened twice into one). */
static int section_index(struct reader *rd, const char *name, size_t *index)
{
	struct p11pki_tlsconf *c = rd->c;
	struct p11pki_tlsconf_section *s;
	int rc;

	if ((*index = p11pki_tlsconf_section_find(c, name)) != NOT_FOUND)
		return P11PKI_OK;
	if ((rc = room_for_one_more(rd)) != 0)
		return rc;
	if ((rc = grow((void **)&c->sections, &rd->cap_sections, c->n_sections, sizeof(*s))) != 0)
		return rc;
	s = &c->sections[c->n_sections];
	if ((s->name = strdup(name)) == NULL)
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
	s->line = rd->line;
	*index = c->n_sections++;
	return P11PKI_OK;
}

/* Takes value (malloc'd) whatever happens. */
static int add_entry(struct reader *rd, size_t section, const char *key, char *value)
{
	struct p11pki_tlsconf *c = rd->c;
	struct p11pki_tlsconf_entry *e;
	int rc;

	if ((rc = room_for_one_more(rd)) != 0)
		goto out;
	if ((rc = grow((void **)&c->entries, &rd->cap_entries, c->n_entries, sizeof(*e))) != 0)
		goto out;
	e = &c->entries[c->n_entries];
	memset(e, 0, sizeof(*e));
	if ((e->key = strdup(key)) == NULL) {
		rc = p11pki_fail(P11PKI_E_NOMEM, "out of memory");
		goto out;
	}
	e->section = section;
	e->value = value;
	e->line = rd->line;
	value = NULL;
	c->n_entries++;
out:
	free(value);
	return rc;
}

/* ---- one physical line after another --------------------------------- */

/* Tab is the only control byte a line may hold (CR only at its end, where
 * it is cut off): anything else is a binary or mangled file. */
static int check_bytes(struct reader *rd, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return fail_at(rd, "control character 0x%02x (only tab is allowed)", ch);
	}
	if (p11pki_utf8_chars(s, n) == (size_t)-1)
		return fail_at(rd, "not valid UTF-8");
	return P11PKI_OK;
}

/* NCONF's rule: a line ending in one backslash (not two) goes on. */
static int continues(const char *buf, size_t n)
{
	return n >= 1 && buf[n - 1] == '\\' && (n == 1 || buf[n - 2] != '\\');
}

/* Copies the logical line starting at *pos into buf (at least
 * P11PKI_TLSCONF_MAX_LINE + 1 bytes), joining continuations; *lineno
 * counts physical lines. */
static int logical_line(struct reader *rd, const char *text, size_t len, size_t *pos, int *lineno, char *buf)
{
	size_t n = 0, start, end, l;
	const char *nl;
	int rc, first = *lineno + 1;

	rd->line = first;
	for (;;) {
		start = *pos;
		nl = memchr(text + start, '\n', len - start);
		end = nl != NULL ? (size_t)(nl - text) : len;
		*pos = nl != NULL ? end + 1 : len;
		(*lineno)++;
		while (end > start && text[end - 1] == '\r')
			end--;
		l = end - start;
		/* a problem of this physical line names it, not the first one */
		rd->line = *lineno;
		if (n + l > P11PKI_TLSCONF_MAX_LINE)
			return fail_at(rd, "line longer than %d bytes", P11PKI_TLSCONF_MAX_LINE);
		if ((rc = check_bytes(rd, text + start, l)) != 0)
			return rc;
		rd->line = first;
		memcpy(buf + n, text + start, l);
		n += l;
		if (!continues(buf, n) || *pos >= len)
			break;
		n--;
	}
	buf[n] = '\0';
	return P11PKI_OK;
}

/* ---- what a line says -------------------------------------------------- */

/* Cuts the line at its comment: '#' outside quotes and not escaped. */
static int strip_comment(const struct reader *rd, char *p)
{
	char q;

	for (; *p != '\0'; p++) {
		if (*p == '#') {
			*p = '\0';
			return P11PKI_OK;
		}
		if (*p == '\\') {
			if (p[1] != '\0')
				p++;
			continue;
		}
		if (*p != '"' && *p != '\'')
			continue;
		for (q = *p++; *p != '\0' && *p != q; p++)
			if (*p == '\\' && p[1] != '\0')
				p++;
		if (*p == '\0')
			return fail_at(rd, "unterminated %c quote", q);
	}
	return P11PKI_OK;
}

static int section_line(struct reader *rd, char *s)
{
	char *name = skip_ws(s), *end = skip_name(name);

	s = skip_ws(end);
	if (end == name)
		return fail_at(rd, "expected a section name after '['");
	if (*s != ']')
		return fail_at(rd, "expected ']' after the section name");
	if (*skip_ws(s + 1) != '\0')
		return fail_at(rd, "unexpected text after ']'");
	*end = '\0';
	if (end - name > P11PKI_TLSCONF_MAX_NAME)
		return fail_at(rd, "section name longer than %d bytes", P11PKI_TLSCONF_MAX_NAME);
	return section_index(rd, name, &rd->cur);
}

/* Value of section::name as NCONF finds it: in that section, then for
 * ENV in the environment, then in "default". Marks what it reads. */
static const char *lookup(struct reader *rd, const char *section, const char *name)
{
	struct p11pki_tlsconf *c = rd->c;
	size_t s = p11pki_tlsconf_section_find(c, section), i;
	const char *v;

	for (i = c->n_entries; s != NOT_FOUND && i-- > 0;)
		if (c->entries[i].section == s && strcmp(c->entries[i].key, name) == 0) {
			c->entries[i].used = 1;
			return c->entries[i].value;
		}
	if (strcmp(section, "ENV") == 0 && (v = secure_getenv(name)) != NULL)
		return v;
	for (i = c->n_entries; i-- > 0;)
		if (c->entries[i].section == 0 && strcmp(c->entries[i].key, name) == 0) {
			c->entries[i].used = 1;
			return c->entries[i].value;
		}
	return NULL;
}

/* Copies the run of variable characters at *p into buf (size
 * P11PKI_TLSCONF_MAX_NAME + 1). */
static int var_name(const struct reader *rd, const char **p, char *buf)
{
	const char *s = *p;
	size_t n;

	while (is_var_char(*s))
		s++;
	n = (size_t)(s - *p);
	if (n > P11PKI_TLSCONF_MAX_NAME)
		return fail_at(rd, "variable name longer than %d bytes", P11PKI_TLSCONF_MAX_NAME);
	memcpy(buf, *p, n);
	buf[n] = '\0';
	*p = s;
	return P11PKI_OK;
}

static int put(const struct reader *rd, char *buf, size_t *n, const char *s, size_t len)
{
	if (*n + len > P11PKI_TLSCONF_MAX_LINE)
		return fail_at(rd, "value longer than %d bytes once $variables are expanded",
			       P11PKI_TLSCONF_MAX_LINE);
	memcpy(buf + *n, s, len);
	*n += len;
	return P11PKI_OK;
}

/* Expands the $name, ${name}, $(name), $sec::name or ${sec::name} at *p
 * (on the '$') into buf, as NCONF does. */
static int expand(struct reader *rd, const char *section, const char **p, char *buf, size_t *n)
{
	char sec[P11PKI_TLSCONF_MAX_NAME + 1], name[P11PKI_TLSCONF_MAX_NAME + 1], shown[P11PKI_SHOWN_BUF];
	const char *s = *p + 1, *v;
	char close = *s == '{' ? '}' : *s == '(' ? ')' : '\0';
	int rc;

	if (++rd->expansions > P11PKI_TLSCONF_MAX_EXPANSIONS)
		return fail_at(rd, "more than %d $variable expansions", P11PKI_TLSCONF_MAX_EXPANSIONS);
	if (close != '\0')
		s++;
	if ((rc = var_name(rd, &s, name)) != 0)
		return rc;
	if (s[0] == ':' && s[1] == ':') {
		memcpy(sec, name, sizeof(sec));
		s += 2;
		if ((rc = var_name(rd, &s, name)) != 0)
			return rc;
		section = sec;
	}
	if (close != '\0' && *s++ != close)
		return fail_at(rd, "expected '%c' to end the $variable", close);
	if (name[0] == '\0')
		return fail_at(rd, "'$' names no variable (write \\$ for a dollar sign)");
	if ((v = lookup(rd, section, name)) == NULL)
		return fail_at(rd, "$%s has no value (write \\$ for a dollar sign)",
			       p11pki_shown(name, shown, sizeof(shown)));
	*p = s;
	return put(rd, buf, n, v, strlen(v));
}

/* NCONF's str_copy: quotes, escapes and $variables. *out is malloc'd. */
static int unquote(struct reader *rd, const char *section, const char *from, char **out)
{
	char buf[P11PKI_TLSCONF_MAX_LINE + 1], q, ch;
	size_t n = 0;
	int rc = P11PKI_OK;

	while (rc == 0 && *from != '\0') {
		if (*from == '"' || *from == '\'') {
			for (q = *from++; rc == 0 && *from != '\0' && *from != q; from++) {
				if (*from == '\\' && from[1] != '\0')
					from++;
				rc = put(rd, buf, &n, from, 1);
			}
			if (*from == q)
				from++;
		} else if (*from == '\\') {
			if ((ch = *++from) == '\0')
				break;
			from++;
			ch = ch == 'r' ? '\r' : ch == 'n' ? '\n' : ch == 'b' ? '\b' : ch == 't' ? '\t' : ch;
			rc = put(rd, buf, &n, &ch, 1);
		} else if (*from == '$') {
			rc = expand(rd, section, &from, buf, &n);
		} else {
			rc = put(rd, buf, &n, from++, 1);
		}
	}
	if (rc != 0)
		return rc;
	if (rd->value_bytes + n > P11PKI_TLSCONF_MAX_VALUES)
		return fail_at(rd, "more than %d bytes of values in all", P11PKI_TLSCONF_MAX_VALUES);
	rd->value_bytes += n;
	buf[n] = '\0';
	if ((*out = strdup(buf)) == NULL)
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
	return P11PKI_OK;
}

static int setting_line(struct reader *rd, char *s)
{
	char *key = s, *end = skip_name(s), *value, *v = NULL, *t;
	size_t section = rd->cur;
	int rc;

	if (end == key)
		return fail_at(rd, "expected '[ section ]' or 'key = value'");
	if (end[0] == ':' && end[1] == ':') {
		/* "sec::key = value" sets key in another section */
		*end = '\0';
		if (end - key > P11PKI_TLSCONF_MAX_NAME)
			return fail_at(rd, "section name longer than %d bytes", P11PKI_TLSCONF_MAX_NAME);
		if ((rc = section_index(rd, key, &section)) != 0)
			return rc;
		key = end + 2;
		if ((end = skip_name(key)) == key)
			return fail_at(rd, "expected a key after '::'");
	}
	t = skip_ws(end);
	*end = '\0';
	if (strcmp(key, ".include") == 0 || strcmp(key, ".pragma") == 0)
		return fail_at(rd, "%s is not supported: write the settings in this file", key);
	if (*t != '=')
		return fail_at(rd, "expected '=' after the key");
	if (end - key > P11PKI_TLSCONF_MAX_NAME)
		return fail_at(rd, "key longer than %d bytes", P11PKI_TLSCONF_MAX_NAME);
	value = skip_ws(t + 1);
	for (t = value + strlen(value); t > value && (t[-1] == ' ' || t[-1] == '\t');)
		*--t = '\0';
	if ((rc = unquote(rd, rd->c->sections[section].name, value, &v)) != 0)
		return rc;
	return add_entry(rd, section, key, v);
}

static int parse_line(struct reader *rd, char *buf)
{
	char *s;
	int rc;

	if ((rc = strip_comment(rd, buf)) != 0)
		return rc;
	s = skip_ws(buf);
	if (*s == '\0')
		return P11PKI_OK;
	if (*s == '[')
		return section_line(rd, s + 1);
	return setting_line(rd, s);
}

void p11pki_tlsconf_free(struct p11pki_tlsconf *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->n_sections; i++)
		free(c->sections[i].name);
	for (i = 0; i < c->n_entries; i++) {
		free(c->entries[i].key);
		free(c->entries[i].value);
	}
	free(c->sections);
	free(c->entries);
	free(c->file);
	free(c);
}

int p11pki_tlsconf_read(const char *file, const char *text, size_t len, struct p11pki_tlsconf **out)
{
	struct reader rd;
	char *buf = NULL;
	size_t pos = 0;
	int rc, lineno = 0;

	if (out != NULL)
		*out = NULL;
	if (out == NULL || file == NULL || (text == NULL && len > 0))
		return p11pki_fail(P11PKI_E_ARG, "p11pki_tlsconf_read: missing argument");
	memset(&rd, 0, sizeof(rd));
	if ((rd.c = calloc(1, sizeof(*rd.c))) == NULL || (rd.c->file = strdup(file)) == NULL ||
	    (buf = malloc(P11PKI_TLSCONF_MAX_LINE + 1)) == NULL) {
		rc = p11pki_fail(P11PKI_E_NOMEM, "out of memory");
		goto out;
	}
	if (len > P11PKI_TLSCONF_MAX_FILE) {
		rd.line = 1;
		rc = fail_at(&rd, "the file is larger than %d bytes", P11PKI_TLSCONF_MAX_FILE);
		goto out;
	}
	if ((rc = section_index(&rd, "default", &rd.cur)) != 0)
		goto out;
	/* Windows editors: Notepad may write a BOM, or UTF-16 altogether */
	if (len >= 2 && ((text[0] == '\xff' && text[1] == '\xfe') || (text[0] == '\xfe' && text[1] == '\xff'))) {
		rd.line = 1;
		rc = fail_at(&rd, "the file is UTF-16: save it as UTF-8");
		goto out;
	}
	if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0)
		pos = 3;
	while (pos < len) {
		if ((rc = logical_line(&rd, text, len, &pos, &lineno, buf)) != 0)
			goto out;
		if ((rc = parse_line(&rd, buf)) != 0)
			goto out;
	}
	*out = rd.c;
	rd.c = NULL;
out:
	free(buf);
	p11pki_tlsconf_free(rd.c);
	return rc;
}
