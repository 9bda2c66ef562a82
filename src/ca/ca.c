/* A CA whose key lives on a token: creating it, issuing certificates
 * under its policy and profiles, revoking, and signing CRLs. Every issued
 * certificate is committed to the store before it is handed out. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <p11pki/ca.h>

#include "ca/store.h"

#define SERIAL_ATTEMPTS 5

struct p11pki_ca {
	char *name;
	p11pki_store *st;
	const CONF *conf;
	X509 *cert;
	EVP_PKEY *key;
	struct p11pki_ca_settings settings;
};

int p11pki_serial_normalize(const char *in, char *out, size_t size)
{
	const char *given = in;
	size_t n = 0;

	for (; *in != '\0'; in++) {
		if (*in == ':' || *in == ' ')
			continue;
		if (!isxdigit((unsigned char)*in))
			return p11pki_fail(P11PKI_E_ARG, "serial '%.64s' is not hexadecimal", given);
		if (n == 0 && *in == '0')
			continue;
		if (n + 1 >= size)
			return p11pki_fail(P11PKI_E_ARG, "serial is longer than %zu hex digits", size - 1);
		out[n++] = (char)toupper((unsigned char)*in);
	}
	if (n == 0)
		out[n++] = '0';
	out[n] = '\0';
	return P11PKI_OK;
}

char *p11pki_cert_serial_hex(X509 *cert)
{
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
	char *hex = bn != NULL ? BN_bn2hex(bn) : NULL;
	char *out = hex != NULL ? strdup(hex) : NULL;

	OPENSSL_free(hex);
	BN_free(bn);
	return out;
}

static char *to_pem(X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *out = NULL;
	long len;

	if (b != NULL && PEM_write_bio_X509(b, x) == 1 && (len = BIO_get_mem_data(b, &data)) > 0 &&
	    (out = malloc((size_t)len + 1)) != NULL) {
		memcpy(out, data, (size_t)len);
		out[len] = '\0';
	}
	BIO_free(b);
	return out;
}

static X509 *from_pem(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	X509 *x = b != NULL ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;

	BIO_free(b);
	return x;
}

static time_t asn1_time(const ASN1_TIME *t)
{
	struct tm tm;

	return ASN1_TIME_to_tm(t, &tm) == 1 ? timegm(&tm) : 0;
}

/* "dns:a, dns:b" for the store's record. */
static char *sans_text(const GENERAL_NAMES *sans)
{
	size_t cap = 1, len = 0;
	char *out = calloc(1, 1), *one, *grown;
	int i;

	for (i = 0; out != NULL && sans != NULL && i < sk_GENERAL_NAME_num(sans); i++) {
		if (p11pki_san_format(sk_GENERAL_NAME_value(sans, i), &one) != 0)
			continue;
		cap = len + strlen(one) + 3;
		if ((grown = realloc(out, cap)) == NULL) {
			free(one);
			free(out);
			return NULL;
		}
		out = grown;
		len += (size_t)snprintf(out + len, cap - len, "%s%s", len ? ", " : "", one);
		free(one);
	}
	return out;
}

/* Records an issued certificate; P11PKI_E_EXISTS means the serial was
 * taken (the caller draws another). */
static int record(p11pki_store *st, const char *ca_name, X509 *x, const char *profile, const char *requester,
		  const GENERAL_NAMES *sans)
{
	struct p11pki_store_cert row;
	int r = P11PKI_E_NOMEM;

	memset(&row, 0, sizeof(row));
	row.ca = (char *)ca_name;
	row.profile = (char *)profile;
	row.requester = (char *)(requester != NULL ? requester : "cli");
	row.serial = p11pki_cert_serial_hex(x);
	row.pem = to_pem(x);
	row.sans = sans_text(sans);
	if (row.serial == NULL || row.pem == NULL || row.sans == NULL ||
	    p11pki_name_format(X509_get_subject_name(x), &row.subject) != 0) {
		p11pki_fail(r, "out of memory recording a certificate");
		goto out;
	}
	row.not_before = asn1_time(X509_get0_notBefore(x));
	row.not_after = asn1_time(X509_get0_notAfter(x));
	row.issued = time(NULL);
	row.reason = -1;
	r = p11pki_store_cert_add(st, &row);
out:
	free(row.serial);
	free(row.pem);
	free(row.sans);
	free(row.subject);
	return r;
}

/* Validity of a new certificate: days (or the profile default) within
 * the profile maximum, and not past the issuer's own notAfter. */
static int validity(const struct p11pki_profile *p, unsigned days, X509 *issuer, int refuse_past_issuer,
		    time_t *nb, time_t *na)
{
	time_t issuer_end = issuer != NULL ? asn1_time(X509_get0_notAfter(issuer)) : 0;

	if (days == 0)
		days = p->default_days;
	if (p->max_days != 0 && days > p->max_days)
		return p11pki_fail(P11PKI_E_POLICY, "%u days is more than profile '%s' allows (%u days)", days, p->name,
				   p->max_days);
	*nb = time(NULL);
	*na = *nb + (time_t)days * 86400;
	if (issuer_end != 0 && *na > issuer_end) {
		if (refuse_past_issuer)
			return p11pki_fail(P11PKI_E_POLICY,
					   "%u days would outlive the issuing CA's certificate: the CA expires first", days);
		p11pki_log(P11PKI_LOG_WARN, "validity capped at the issuing CA's notAfter (%u days asked)", days);
		*na = issuer_end;
	}
	return P11PKI_OK;
}

/* Creates, records and returns the CA certificate of a new CA. */
static int create_cert(p11pki_store *st, const CONF *conf, const struct p11pki_ca_create *p, EVP_PKEY *pub,
		       EVP_PKEY *own_key, p11pki_ca *parent, X509 **out)
{
	struct p11pki_profile prof;
	struct p11pki_cert_template t;
	int r, attempt;

	if ((r = p11pki_profile_load(conf, parent != NULL ? "subca" : "root", &prof)) != 0)
		return r;
	memset(&t, 0, sizeof(t));
	t.subject = p->subject;
	t.public_key = pub;
	t.profile = &prof;
	if (parent != NULL) {
		t.issuer = parent->cert;
		t.crl_url = parent->settings.crl_url;
		t.ocsp_url = parent->settings.ocsp_url;
		t.issuers_url = parent->settings.issuers_url;
	}
	if ((r = validity(&prof, p->days, t.issuer, parent && parent->settings.refuse_past_issuer, &t.not_before,
			  &t.not_after)) != 0)
		goto out;
	for (attempt = 0; attempt < SERIAL_ATTEMPTS; attempt++) {
		if ((r = p11pki_cert_build(&t, parent != NULL ? parent->key : own_key, out)) != 0)
			goto out;
		if (parent == NULL)
			break;
		if ((r = record(st, parent->name, *out, "subca", "ca init", NULL)) != P11PKI_E_EXISTS)
			break;
		X509_free(*out);
		*out = NULL;
	}
	if (r != 0) {
		X509_free(*out);
		*out = NULL;
	}
out:
	p11pki_profile_clear(&prof);
	return r;
}

/* The new CA's chain: its parent's certificate and the parent's chain. */
static char *chain_of(p11pki_store *st, const char *parent)
{
	struct p11pki_store_ca rec;
	size_t a, b;
	char *out = NULL;

	memset(&rec, 0, sizeof(rec));
	if (parent == NULL || p11pki_store_ca_get(st, parent, &rec) != 0)
		return NULL;
	a = rec.cert_pem ? strlen(rec.cert_pem) : 0;
	b = rec.chain_pem ? strlen(rec.chain_pem) : 0;
	if ((out = malloc(a + b + 1)) != NULL) {
		memcpy(out, rec.cert_pem ? rec.cert_pem : "", a);
		memcpy(out + a, rec.chain_pem ? rec.chain_pem : "", b);
		out[a + b] = '\0';
	}
	p11pki_store_ca_clear(&rec);
	return out;
}

int p11pki_ca_create(p11pki_store *st, const CONF *conf, const struct p11pki_ca_create *p, p11pki_token *t,
		     p11pki_token *parent_token, X509 **cert_out)
{
	struct p11pki_store_ca rec, existing;
	struct p11pki_keygen kg;
	struct p11pki_uri *sel = NULL;
	p11pki_ca *parent = NULL;
	EVP_PKEY *key = NULL, *pub = NULL;
	X509 *cert = NULL;
	char *key_uri = NULL;
	int r;

	if (cert_out != NULL)
		*cert_out = NULL;
	memset(&rec, 0, sizeof(rec));
	memset(&existing, 0, sizeof(existing));
	if (p11pki_store_ca_get(st, p->name, &existing) == 0) {
		p11pki_store_ca_clear(&existing);
		return p11pki_fail(P11PKI_E_EXISTS, "a CA named '%s' already exists: choose another --name", p->name);
	}
	if (p->parent != NULL && (r = p11pki_ca_open(st, conf, p->parent, parent_token, &parent)) != 0)
		return r;
	memset(&kg, 0, sizeof(kg));
	kg.type = p->type;
	kg.label = p->name;
	if ((r = p11pki_key_generate(t, &kg, &key_uri)) != 0 || (r = p11pki_uri_parse(key_uri, &sel)) != 0 ||
	    (r = p11pki_key_load(t, sel, &key)) != 0 || (r = p11pki_key_public(t, sel, &pub)) != 0)
		goto out;
	if ((r = create_cert(st, conf, p, pub, key, parent, &cert)) != 0)
		goto out;
	if ((r = p11pki_cert_store(t, cert, p->name, sel->id, sel->id_len, 1)) != 0)
		goto out;
	rec.name = (char *)p->name;
	rec.parent = (char *)p->parent;
	rec.key_uri = key_uri;
	rec.cert_pem = to_pem(cert);
	rec.chain_pem = chain_of(st, p->parent);
	rec.created = time(NULL);
	if (rec.cert_pem == NULL) {
		r = p11pki_fail(P11PKI_E_NOMEM, "out of memory");
		goto out;
	}
	if ((r = p11pki_store_ca_add(st, &rec)) != 0)
		goto out;
	if (cert_out != NULL) {
		*cert_out = cert;
		cert = NULL;
	}
out:
	free(rec.cert_pem);
	free(rec.chain_pem);
	free(key_uri);
	p11pki_uri_free(sel);
	EVP_PKEY_free(key);
	EVP_PKEY_free(pub);
	X509_free(cert);
	p11pki_ca_close(parent);
	return r;
}

int p11pki_ca_key_uri(p11pki_store *st, const char *name, char **uri)
{
	struct p11pki_store_ca rec;
	int r;

	*uri = NULL;
	memset(&rec, 0, sizeof(rec));
	if ((r = p11pki_store_ca_get(st, name, &rec)) != 0)
		return r == P11PKI_E_NOTFOUND
			       ? p11pki_fail(r, "no CA named '%s': create it with 'p11pki ca init --name %s'", name, name)
			       : r;
	*uri = rec.key_uri;
	rec.key_uri = NULL;
	p11pki_store_ca_clear(&rec);
	return P11PKI_OK;
}

int p11pki_ca_open(p11pki_store *st, const CONF *conf, const char *name, p11pki_token *t, p11pki_ca **out)
{
	struct p11pki_store_ca rec;
	struct p11pki_uri *sel = NULL;
	p11pki_ca *ca;
	int r;

	*out = NULL;
	memset(&rec, 0, sizeof(rec));
	if ((ca = calloc(1, sizeof(*ca))) == NULL)
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
	ca->st = st;
	ca->conf = conf;
	if ((r = p11pki_store_ca_get(st, name, &rec)) != 0) {
		if (r == P11PKI_E_NOTFOUND)
			p11pki_fail(r, "no CA named '%s': create it with 'p11pki ca init --name %s'", name, name);
		goto fail;
	}
	if ((ca->name = strdup(name)) == NULL || (ca->cert = from_pem(rec.cert_pem)) == NULL) {
		r = p11pki_fail(P11PKI_E_CRYPTO, "the certificate of CA '%s' in the store is unreadable", name);
		goto fail;
	}
	if ((r = p11pki_ca_settings_load(conf, name, &ca->settings)) != 0)
		goto fail;
	if (t != NULL && ((r = p11pki_uri_parse(rec.key_uri, &sel)) != 0 || (r = p11pki_key_load(t, sel, &ca->key)) != 0))
		goto fail;
	p11pki_uri_free(sel);
	p11pki_store_ca_clear(&rec);
	*out = ca;
	return P11PKI_OK;
fail:
	p11pki_uri_free(sel);
	p11pki_store_ca_clear(&rec);
	p11pki_ca_close(ca);
	return r;
}

int p11pki_ca_open_key(p11pki_store *st, const CONF *conf, const char *name, EVP_PKEY *key, p11pki_ca **out)
{
	int r;

	if ((r = p11pki_ca_open(st, conf, name, NULL, out)) != 0)
		return r;
	if (key != NULL && EVP_PKEY_up_ref(key) == 1)
		(*out)->key = key;
	return P11PKI_OK;
}

void p11pki_ca_close(p11pki_ca *ca)
{
	if (ca == NULL)
		return;
	X509_free(ca->cert);
	EVP_PKEY_free(ca->key);
	p11pki_ca_settings_clear(&ca->settings);
	free(ca->name);
	free(ca);
}

X509 *p11pki_ca_cert(const p11pki_ca *ca)
{
	return ca->cert;
}

EVP_PKEY *p11pki_ca_key(const p11pki_ca *ca)
{
	return ca->key;
}

/* The CA's default_days, kept within the profile's maximum. */
static unsigned min_days(unsigned a, unsigned max)
{
	return max != 0 && a > max ? max : a;
}

/* A request for CA:TRUE is refused on end-entity profiles. */
static int asks_for_ca(STACK_OF(X509_EXTENSION) *exts)
{
	BASIC_CONSTRAINTS *bc = X509V3_get_d2i(exts, NID_basic_constraints, NULL, NULL);
	int ca = bc != NULL && bc->ca;

	BASIC_CONSTRAINTS_free(bc);
	return ca;
}

/* Every DNS name must match one of the profile's patterns (if any). */
/* A DNS name in a request must be what p11pki_host_to_ascii makes of it:
 * ASCII, lowercase A-labels, a wildcard only as the whole leftmost label
 * and never over a single label. */
static int dns_name_ok(const char *host, size_t len)
{
	char *ascii = NULL;
	int same;

	if (strlen(host) != len || p11pki_host_to_ascii(host, &ascii) != 0)
		return p11pki_fail(P11PKI_E_POLICY, "the request's subjectAltName dns:%.*s is not a valid host name",
				   (int)(len > 80 ? 80 : len), host);
	same = strcmp(ascii, host) == 0;
	free(ascii);
	if (!same)
		return p11pki_fail(P11PKI_E_POLICY,
				   "the request's subjectAltName dns:%.*s is not in ASCII (A-label) form", (int)(len > 80 ? 80 : len),
				   host);
	return P11PKI_OK;
}

static int check_names(const struct p11pki_profile *p, const GENERAL_NAMES *sans)
{
	int i;
	size_t k;

	if (p->require_san && (sans == NULL || sk_GENERAL_NAME_num(sans) == 0))
		return p11pki_fail(P11PKI_E_POLICY,
				   "profile '%s' needs a subjectAltName: request one with --san dns:NAME", p->name);
	for (i = 0; sans != NULL && i < sk_GENERAL_NAME_num(sans); i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
		const char *host;
		int r;
		if (gn->type != GEN_DNS)
			continue;
		host = (const char *)ASN1_STRING_get0_data(gn->d.dNSName);
		/* a request may carry any bytes: only well-formed A-labels pass */
		if ((r = dns_name_ok(host, (size_t)ASN1_STRING_length(gn->d.dNSName))) != 0)
			return r;
		if (p->n_allowed_dns == 0)
			continue;
		for (k = 0; k < p->n_allowed_dns; k++)
			if (p11pki_host_pattern_match(p->allowed_dns[k], host))
				break;
		if (k == p->n_allowed_dns)
			return p11pki_fail(P11PKI_E_POLICY, "name '%s' is outside what profile '%s' allows (%s%s)", host,
					   p->name, p->allowed_dns[0], p->n_allowed_dns > 1 ? ", ..." : "");
	}
	return P11PKI_OK;
}

/* A CN that names a host must also be one of the DNS subjectAltNames (CA/B
 * Forum Baseline Requirements), so it passes the same checks they do. */
static int check_cn(const X509_NAME *subject, const GENERAL_NAMES *sans)
{
	int i = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
	const ASN1_STRING *cn;
	unsigned char *text = NULL;
	int len, j, found = 0;

	if (i < 0)
		return P11PKI_OK;
	cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i));
	if ((len = ASN1_STRING_to_UTF8(&text, cn)) < 0)
		return p11pki_fail(P11PKI_E_ARG, "the request's commonName cannot be read");
	if (!p11pki_looks_like_host((char *)text) || sans == NULL || sk_GENERAL_NAME_num(sans) == 0) {
		OPENSSL_free(text);
		return P11PKI_OK; /* a person's name, or no SANs to compare with */
	}
	for (j = 0; j < sk_GENERAL_NAME_num(sans) && !found; j++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, j);
		found = gn->type == GEN_DNS && ASN1_STRING_length(gn->d.dNSName) == len &&
			strncasecmp((const char *)ASN1_STRING_get0_data(gn->d.dNSName), (char *)text, (size_t)len) == 0;
	}
	if (!found)
		p11pki_fail(P11PKI_E_POLICY, "the request's commonName '%.80s' is not one of its DNS subjectAltNames", text);
	OPENSSL_free(text);
	return found ? P11PKI_OK : P11PKI_E_POLICY;
}

/* The CA's certificate allows issuing CA certificates only without a
 * pathlen of 0. */
static int can_issue(const p11pki_ca *ca, const struct p11pki_profile *p)
{
	long pathlen = X509_get_pathlen(ca->cert);

	if (p->is_ca && pathlen == 0)
		return p11pki_fail(P11PKI_E_POLICY, "CA '%s' has pathlen 0: it cannot issue CA certificates", ca->name);
	return P11PKI_OK;
}

int p11pki_ca_issue(p11pki_ca *ca, const struct p11pki_issue *req, X509 **out)
{
	struct p11pki_profile prof;
	struct p11pki_cert_template t;
	STACK_OF(X509_EXTENSION) *exts = NULL;
	GENERAL_NAMES *sans = NULL;
	X509_NAME *subject = NULL;
	EVP_PKEY *pub;
	int r, attempt;

	*out = NULL;
	memset(&t, 0, sizeof(t));
	if (ca->key == NULL)
		return p11pki_fail(P11PKI_E_ARG, "CA '%s' was opened without its key", ca->name);
	if ((r = p11pki_profile_load(ca->conf, req->profile, &prof)) != 0)
		return r;
	if ((r = can_issue(ca, &prof)) != 0 || (r = p11pki_csr_check(req->csr, &prof.key_rules)) != 0)
		goto out;
	exts = X509_REQ_get_extensions(req->csr);
	if (!prof.is_ca && asks_for_ca(exts)) {
		r = p11pki_fail(P11PKI_E_POLICY, "the request asks for CA:TRUE, which profile '%s' does not give", prof.name);
		goto out;
	}
	sans = X509V3_get_d2i(exts, NID_subject_alt_name, NULL, NULL);
	if ((r = check_names(&prof, sans)) != 0)
		goto out;
	if (ca->settings.has_policy)
		r = p11pki_policy_apply(&ca->settings.policy, X509_get_subject_name(ca->cert),
					X509_REQ_get_subject_name(req->csr), &subject);
	else if ((subject = X509_NAME_dup(X509_REQ_get_subject_name(req->csr))) == NULL)
		r = p11pki_fail(P11PKI_E_NOMEM, "out of memory");
	if (r != 0 || (r = check_cn(subject, sans)) != 0)
		goto out;
	pub = X509_REQ_get0_pubkey(req->csr);
	t.subject = subject;
	t.public_key = pub;
	t.sans = sans;
	t.issuer = ca->cert;
	t.profile = &prof;
	t.crl_url = ca->settings.crl_url;
	t.ocsp_url = ca->settings.ocsp_url;
	t.issuers_url = ca->settings.issuers_url;
	if ((r = validity(&prof, req->days ? req->days : ca->settings.has_default_days ? min_days(ca->settings.default_days, prof.max_days) : prof.default_days, ca->cert, ca->settings.refuse_past_issuer,
			  &t.not_before, &t.not_after)) != 0)
		goto out;
	for (attempt = 0; attempt < SERIAL_ATTEMPTS; attempt++) {
		if ((r = p11pki_cert_build(&t, ca->key, out)) != 0)
			goto out;
		r = record(ca->st, ca->name, *out, prof.name, req->requester, sans);
		if (r == 0)
			break;
		X509_free(*out);
		*out = NULL;
		if (r != P11PKI_E_EXISTS)
			goto out;
	}
out:
	if (r != 0 && *out != NULL) {
		X509_free(*out);
		*out = NULL;
	}
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	GENERAL_NAMES_free(sans);
	X509_NAME_free(subject);
	p11pki_profile_clear(&prof);
	return r;
}

int p11pki_ca_revoke(p11pki_store *st, const char *ca_name, const char *serial, int reason)
{
	char norm[80];
	int r;

	/* 7 is unused; removeFromCRL (8) belongs to delta CRLs and aACompromise
	 * (10) to attribute certificates: neither goes on this CA's CRLs */
	if (reason < 0 || reason > 9 || reason == 7 || reason == 8)
		return p11pki_fail(P11PKI_E_ARG, "revocation reason %d is not an RFC 5280 reason", reason);
	if ((r = p11pki_serial_normalize(serial, norm, sizeof(norm))) != 0)
		return r;
	return p11pki_store_cert_revoke(st, ca_name, norm, time(NULL), reason);
}

int p11pki_ca_crl(p11pki_ca *ca, X509_CRL **out)
{
	struct p11pki_store_filter f = { .revoked_only = 1, .include_expired = 1 };
	struct p11pki_store_cert *certs = NULL;
	struct p11pki_revoked *entries = NULL;
	unsigned long long number;
	size_t n = 0, i;
	int r;

	*out = NULL;
	if (ca->key == NULL)
		return p11pki_fail(P11PKI_E_ARG, "CA '%s' was opened without its key", ca->name);
	if ((r = p11pki_store_cert_list(ca->st, ca->name, &f, &certs, &n)) != 0)
		return r;
	if (n > 0 && (entries = calloc(n, sizeof(*entries))) == NULL) {
		r = p11pki_fail(P11PKI_E_NOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++) {
		entries[i].serial_hex = certs[i].serial;
		entries[i].when = certs[i].revoked;
		entries[i].reason = certs[i].reason;
	}
	if ((r = p11pki_store_next_crl_number(ca->st, ca->name, &number)) != 0)
		goto out;
	r = p11pki_crl_build(ca->cert, ca->key, entries, n, number, ca->settings.default_crl_days, out);
out:
	free(entries);
	p11pki_store_cert_list_free(certs, n);
	return r;
}
