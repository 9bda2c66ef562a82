/* Private to the tls layer: a reader for OpenSSL's config file syntax,
 * read the way NCONF reads it ([ section ], key = value, # comments,
 * "..." and '...' quotes, backslash escapes and continuations, $var and
 * ${section::var} expansion), that keeps the line of every section and
 * setting so that serve configuration errors can say FILE:LINE. NCONF
 * itself forgets lines once a file has loaded. */
#ifndef P11PKI_TLS_CONFPARSE_H
#define P11PKI_TLS_CONFPARSE_H

#include <stddef.h>

#define P11PKI_TLSCONF_MAX_FILE (1024 * 1024)	/* bytes of a whole file */
#define P11PKI_TLSCONF_MAX_LINE 4096		/* bytes of a line, continuations included */
#define P11PKI_TLSCONF_MAX_ENTRIES 10000		/* settings plus sections */
#define P11PKI_TLSCONF_MAX_NAME 128		/* bytes of a section or key name */
#define P11PKI_TLSCONF_MAX_EXPANSIONS 1000		/* $var expansions in a file */
#define P11PKI_TLSCONF_MAX_VALUES (4 * 1024 * 1024) /* bytes of all values, once expanded */

struct p11pki_tlsconf_section {
	char *name;
	int line;		/* first [ name ] of it; 0 for "default" */
};

struct p11pki_tlsconf_entry {
	size_t section;		/* index into sections */
	char *key;
	char *value;		/* unquoted, unescaped and expanded */
	int line;		/* first physical line of the setting */
	int used;		/* read by a $variable expansion */
};

struct p11pki_tlsconf {
	char *file;		/* the name messages use */
	struct p11pki_tlsconf_section *sections;	/* [0] is "default" */
	size_t n_sections;
	struct p11pki_tlsconf_entry *entries;	/* in file order */
	size_t n_entries;
};

/* Reads text[0..len). Syntax errors are P11PKI_E_ARG with a one-line
 * "FILE:LINE: ..." message; NUL and control bytes other than tab, bytes
 * that are not UTF-8, unterminated quotes, .include and .pragma are
 * refused. Repeated keys are all kept, in file order: the caller decides
 * whether a repeat is an error. Caller frees *out with
 * p11pki_tlsconf_free. */
int p11pki_tlsconf_read(const char *file, const char *text, size_t len, struct p11pki_tlsconf **out);
void p11pki_tlsconf_free(struct p11pki_tlsconf *c);

/* Index of the section called name, or (size_t)-1. */
size_t p11pki_tlsconf_section_find(const struct p11pki_tlsconf *c, const char *name);

#endif
