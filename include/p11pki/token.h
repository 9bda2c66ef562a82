/* p11pki token layer: PKCS#11 URIs, PIN sources, key types, modules,
 * tokens (login + session pool) and keys that stay on the token. */
#ifndef P11PKI_TOKEN_H
#define P11PKI_TOKEN_H

#include <stddef.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <p11pki/core.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- PKCS#11 URIs (RFC 7512) ------------------------------------------ */

enum p11pki_obj_type {
	P11PKI_OBJ_ANY = 0,
	P11PKI_OBJ_PRIVATE,
	P11PKI_OBJ_PUBLIC,
	P11PKI_OBJ_CERT,
	P11PKI_OBJ_SECRET_KEY,
	P11PKI_OBJ_DATA,
};

/* A parsed URI. Every string is NUL-terminated, percent-decoded and owned
 * by the struct (NULL when absent); p11pki_uri_free() releases it all.
 * pin_value is held in secure memory. */
struct p11pki_uri {
	/* path attributes */
	char *token, *manufacturer, *serial, *model;
	char *object;
	unsigned char *id; /* binary, id_len bytes; NULL when absent */
	size_t id_len;
	enum p11pki_obj_type type;
	int has_slot_id;
	unsigned long slot_id;
	char *slot_description, *slot_manufacturer;
	char *library_manufacturer, *library_description, *library_version;
	/* query attributes */
	char *pin_source;
	p11pki_secret *pin_value;
	char *module_name, *module_path;
};

/* Parses "pkcs11:..." into a new struct. On error returns P11PKI_E_ARG
 * with a message naming the offending part. Caller frees *out. */
P11PKI_API int p11pki_uri_parse(const char *text, struct p11pki_uri **out);
/* Allocates an empty URI (all fields unset). */
P11PKI_API int p11pki_uri_new(struct p11pki_uri **out);
/* Formats as a canonical URI (RFC 7512 attribute order, percent-encoding
 * where needed). pin-value is never printed. Caller frees with free(). */
P11PKI_API int p11pki_uri_format(const struct p11pki_uri *uri, char **out);
P11PKI_API void p11pki_uri_free(struct p11pki_uri *uri);

/* ---- PIN sources ------------------------------------------------------ */

enum p11pki_pin_kind { P11PKI_PIN_FILE = 1, P11PKI_PIN_ENV };
/* Splits "file:PATH" or "env:NAME"; *where points into spec. */
P11PKI_API int p11pki_pin_source_parse(const char *spec, enum p11pki_pin_kind *kind,
				       const char **where);
/* Reads a PIN from a source spec into secure memory. Caller frees. */
P11PKI_API int p11pki_pin_read(const char *spec, p11pki_secret **out);
/* Reads a PIN from the terminal without echo. Fails with P11PKI_E_PIN
 * (never blocks) when no terminal is attached. */
P11PKI_API int p11pki_pin_prompt(const char *prompt, p11pki_secret **out);

/* ---- Key types -------------------------------------------------------- */

enum p11pki_key_kind { P11PKI_KEY_RSA = 1, P11PKI_KEY_EC, P11PKI_KEY_ED25519, P11PKI_KEY_OTHER };

struct p11pki_keytype {
	enum p11pki_key_kind kind;
	unsigned bits;	   /* RSA modulus bits, or EC field size */
	int curve_nid;	   /* OpenSSL NID for EC, 0 otherwise */
	const char *name;  /* canonical spelling: "rsa:2048", "ec:p256" */
};

/* Parses "rsa:2048", "rsa:3072", "rsa:4096", "ec:p256", "ec:p384".
 * RSA under 2048 bits is P11PKI_E_POLICY with the reason. */
P11PKI_API int p11pki_keytype_parse(const char *text, struct p11pki_keytype *out);

/* ---- Modules and tokens ----------------------------------------------- */

typedef struct p11pki_module p11pki_module;
typedef struct p11pki_token p11pki_token;

/* The embedded default module (SoftHSM2) with its token directory under
 * $P11PKI_HOME (default ~/.local/share/p11pki). */
P11PKI_API const char *p11pki_default_module_path(void);
/* Fills buf with $P11PKI_HOME or its default. */
P11PKI_API int p11pki_home(char *buf, size_t size);
/* Writes $P11PKI_HOME/softhsm2.conf from the template when missing and
 * exports SOFTHSM2_CONF, unless the environment already sets it. */
P11PKI_API int p11pki_default_token_setup(void);

/* Loads and initialises a module (path NULL: the embedded default). The
 * module is the one owner of C_Initialize/C_Finalize. Caller closes. */
P11PKI_API int p11pki_module_open(const char *path, p11pki_module **out);
P11PKI_API void p11pki_module_close(p11pki_module *m);

struct p11pki_token_info {
	unsigned long slot_id;
	char slot_description[65];
	char label[33], manufacturer[33], model[17], serial[17];
	int present, initialized, login_required, user_pin_set;
	int can_rsa, can_rsa_pss, can_ec, can_ed25519;
	char *uri; /* identifies the token; owned, freed with the array */
};
/* Lists slots and their tokens. Caller frees with p11pki_token_info_free. */
P11PKI_API int p11pki_module_tokens(p11pki_module *m, struct p11pki_token_info **out, size_t *n);
P11PKI_API void p11pki_token_info_free(struct p11pki_token_info *infos, size_t n);

/* Initialises the token in a slot (has_slot 0: the first slot whose token
 * is not initialised) with label, SO PIN and user PIN. */
P11PKI_API int p11pki_token_init(p11pki_module *m, int has_slot, unsigned long slot_id,
				 const char *label, const p11pki_secret *so_pin,
				 const p11pki_secret *user_pin, unsigned long *slot_out);

/* Opens the token the URI selects (token/manufacturer/serial/model/
 * slot-id). Exactly one token must match. Caller closes; the module must
 * outlive the token. */
P11PKI_API int p11pki_token_open(p11pki_module *m, const struct p11pki_uri *sel, p11pki_token **out);
/* Logs in as user; the PIN is copied to secure memory so the session
 * layer can log in again after the token comes back. */
P11PKI_API int p11pki_token_login(p11pki_token *t, const p11pki_secret *pin);
P11PKI_API const char *p11pki_token_label(const p11pki_token *t);
P11PKI_API void p11pki_token_close(p11pki_token *t);
/* Most sessions the pool keeps open (default 8). */
P11PKI_API void p11pki_token_set_pool_size(p11pki_token *t, unsigned n);
/* Keys of this token sign through session copies (CKA_TOKEN false, still
 * sensitive and not extractable) instead of the token objects: for
 * processes that sign many times (serve). Off by default. */
P11PKI_API void p11pki_token_use_session_keys(p11pki_token *t, int on);

/* ---- Keys ------------------------------------------------------------- */

struct p11pki_keygen {
	struct p11pki_keytype type;
	const char *label;	  /* CKA_LABEL of both halves */
	const unsigned char *id;  /* CKA_ID; NULL: 16 random bytes */
	size_t id_len;
	int extractable;	  /* explicit opt-in; logged as a warning */
	int reuse_label;	  /* a key with this label may exist (a renewal's new key):
				     only the id must be new */
};

struct p11pki_key_info {
	char *label;
	unsigned char id[64];
	size_t id_len;
	enum p11pki_key_kind kind;
	unsigned bits;		/* RSA modulus or EC field size */
	const char *curve;	/* "P-256", "P-384", "Ed25519" or NULL */
	int has_private, has_public;
	/* private-key attributes; -1 when the token did not say */
	int sensitive, extractable, always_sensitive, never_extractable, local;
	char *uri;		/* of the key pair (no type=) */
};

/* Generates a key pair on the token; *uri_out (may be NULL) receives the
 * pair's URI, caller frees with free(). */
P11PKI_API int p11pki_key_generate(p11pki_token *t, const struct p11pki_keygen *p, char **uri_out);
/* Lists key pairs (matched by CKA_ID) that the filter selects (NULL: all). */
P11PKI_API int p11pki_key_list(p11pki_token *t, const struct p11pki_uri *filter,
			       struct p11pki_key_info **out, size_t *n);
P11PKI_API void p11pki_key_info_free(struct p11pki_key_info *keys, size_t n);
/* The public key of the single key pair the URI selects. Caller frees. */
P11PKI_API int p11pki_key_public(p11pki_token *t, const struct p11pki_uri *sel, EVP_PKEY **out);
/* An EVP_PKEY whose private operations run on the token through the
 * session pool. Caller frees with EVP_PKEY_free; the token must outlive it. */
P11PKI_API int p11pki_key_load(p11pki_token *t, const struct p11pki_uri *sel, EVP_PKEY **out);
/* Deletes every object (private, public, certificate) of the key pair the
 * URI selects; *count (may be NULL) gets the number of objects removed. */
P11PKI_API int p11pki_key_delete(p11pki_token *t, const struct p11pki_uri *sel, unsigned *count);

/* ---- Certificates on the token --------------------------------------- */

struct p11pki_cert_info {
	char *label;
	unsigned char id[64];
	size_t id_len;
	int is_ca;		/* CKA_CERTIFICATE_CATEGORY authority, or CA:TRUE */
	X509 *cert;		/* owned */
	char *uri;		/* owned */
};
/* Stores a certificate on the token with the given label and CKA_ID. */
P11PKI_API int p11pki_cert_store(p11pki_token *t, X509 *cert, const char *label, const unsigned char *id,
				 size_t id_len, int is_ca);
/* Stores an end-entity certificate next to the private key whose public
 * key it carries (same CKA_ID and label). P11PKI_E_NOTFOUND when no key on
 * the token matches. *uri_out (may be NULL) gets the certificate's URI. */
P11PKI_API int p11pki_cert_import(p11pki_token *t, X509 *cert, char **uri_out);
/* Deletes the certificate objects whose value is cert (DER), leaving keys
 * and other certificates of the same label and id alone; *count (may be
 * NULL) gets the number removed. P11PKI_E_NOTFOUND when there is none. */
P11PKI_API int p11pki_cert_delete(p11pki_token *t, X509 *cert, unsigned *count);
/* Lists the certificates the filter selects (NULL: all). Caller frees. */
P11PKI_API int p11pki_cert_list(p11pki_token *t, const struct p11pki_uri *filter, struct p11pki_cert_info **out,
				size_t *n);
P11PKI_API void p11pki_cert_info_free(struct p11pki_cert_info *certs, size_t n);
/* Stores a CA, intermediate or cross-certificate: label NULL means its CN,
 * CKA_ID is its subjectKeyIdentifier (or the SHA-1 of its public key), so
 * a cross-certificate shares the id of the root it cross-signs. The same
 * certificate twice is P11PKI_E_EXISTS. *uri_out (may be NULL) gets the
 * URI; caller frees with free(). */
P11PKI_API int p11pki_cert_store_ca(p11pki_token *t, X509 *cert, const char *label, char **uri_out);
/* The key pair whose public key equals pub (EVP_PKEY_eq), as a one-element
 * array freed with p11pki_key_info_free(*out, 1). P11PKI_E_NOTFOUND when
 * no RSA or EC key pair on the token holds it. */
P11PKI_API int p11pki_key_find_public(p11pki_token *t, EVP_PKEY *pub, struct p11pki_key_info **out);
/* Puts a software RSA or EC private key (from a PKCS#12 backup) on the
 * token as a sensitive, non-extractable key pair with a random 16-byte
 * CKA_ID. The key was not generated there, so CKA_LOCAL is false and key
 * lists show local=no: copies may exist outside the token. A key already
 * on the token, or a label in use, is P11PKI_E_EXISTS. *uri_out (may be
 * NULL) gets the pair's URI; caller frees with free(). */
P11PKI_API int p11pki_key_import(p11pki_token *t, EVP_PKEY *key, const char *label, char **uri_out);

/* ---- Signing off the event loop --------------------------------------- */

/* Starts `threads` signing threads. From then on, a private-key operation
 * of a p11pki_key_load key that runs inside an OpenSSL ASYNC job (a
 * handshake with SSL_MODE_ASYNC) is done on one of them while the job
 * pauses; the job's wait fd becomes readable when it is done. Size the
 * token's session pool (p11pki_token_set_pool_size) to match. */
P11PKI_API int p11pki_async_signing_start(unsigned threads);
P11PKI_API void p11pki_async_signing_stop(void);
/* 1 when a signature with a key of t, made inside an ASYNC job, would now
 * go to the signing threads: they run and the token mostly waits (its
 * averages say so after its first slow signature). Otherwise it would be
 * made on the caller's thread anyway, and an ASYNC job per handshake step
 * only costs CPU (measured: 3-4% of a full handshake with a SoftHSM2 key),
 * so a server sets SSL_MODE_ASYNC only while this says 1. */
P11PKI_API int p11pki_async_wanted(p11pki_token *t);
/* Called after every token signature with its duration and outcome (for
 * metrics); NULL to stop. Set it before serving. */
typedef void (*p11pki_sign_observer)(double seconds, int ok);
P11PKI_API void p11pki_sign_observer_set(p11pki_sign_observer fn);

/* What a token answers when asked for a private key's secret: the value
 * attribute (CKA_PRIVATE_EXPONENT / CKA_VALUE) and wrapping under a fresh
 * session AES key. CKR_ATTRIBUTE_SENSITIVE and CKR_KEY_UNEXTRACTABLE mean
 * the key cannot leave the token. */
struct p11pki_key_audit {
	unsigned long read_rv;	/* CK_RV of C_GetAttributeValue */
	unsigned long wrap_rv;	/* CK_RV of C_WrapKey */
	const char *read_name, *wrap_name; /* CKR_* names (static) */
	int sensitive, extractable, always_sensitive, never_extractable, local;
};
P11PKI_API int p11pki_key_audit(p11pki_token *t, const struct p11pki_uri *sel, struct p11pki_key_audit *out);

#ifdef __cplusplus
}
#endif
#endif
