/* `p11pki bindings show` and `bindings check`: what a configuration binds
 * (as `netsh http show sslcert` lists IIS bindings), and everything serve
 * would refuse at start-up, found without serving. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include <p11pki/x509.h>

#include "tls/serve.h"
#include "tls/server.h"

/* "AB:CD:..." as `openssl x509 -fingerprint` prints it. */
static void fingerprint(X509 *x, const EVP_MD *md, char *buf, size_t size)
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned len = 0, i;
	size_t n = 0;

	buf[0] = '\0';
	if (X509_digest(x, md, d, &len) != 1)
		return;
	for (i = 0; i < len && n + 4 <= size; i++)
		n += (size_t)snprintf(buf + n, size - n, "%s%02X", i ? ":" : "", d[i]);
}

static void describe(struct p11pki_binding_view *v, X509 *leaf, STACK_OF(X509) *chain)
{
	if (p11pki_name_format(X509_get_subject_name(leaf), &v->subject) != 0)
		v->subject = strdup("(unreadable name)");
	if (p11pki_name_format(X509_get_issuer_name(leaf), &v->issuer) != 0)
		v->issuer = strdup("(unreadable name)");
	fingerprint(leaf, EVP_sha1(), v->sha1, sizeof(v->sha1));
	fingerprint(leaf, EVP_sha256(), v->sha256, sizeof(v->sha256));
	tls_time_text(X509_get0_notAfter(leaf), v->not_after, sizeof(v->not_after));
	v->expired = X509_cmp_current_time(X509_get0_notAfter(leaf)) <= 0;
	v->chain_len = sk_X509_num(chain) > 0 ? sk_X509_num(chain) : 0;
}

void p11pki_binding_views_free(struct p11pki_binding_view *views, size_t n)
{
	size_t i;

	for (i = 0; views != NULL && i < n; i++) {
		free(views[i].subject);
		free(views[i].issuer);
	}
	free(views);
}

int p11pki_bindings_show(const struct p11pki_serve_config *cfg, const char *pin_source,
			 struct p11pki_binding_view **views, size_t *n)
{
	struct tls_tokens tk;
	struct p11pki_binding_view *v = NULL;
	const char *pins = pin_source != NULL ? pin_source : cfg->pin_source;
	char where[200];
	size_t i;
	int r;

	*views = NULL;
	*n = 0;
	/* certificates are public objects: log in only when a PIN is at hand */
	if ((r = tls_tokens_init(&tk, cfg->module, pins, pins != NULL, 0)) != 0)
		goto out;
	if ((v = calloc(cfg->n_bindings + 1, sizeof(*v))) == NULL) {
		r = p11pki_fail(P11PKI_E_NOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < cfg->n_bindings; i++) {
		const struct p11pki_binding *b = &cfg->bindings[i];
		X509 *leaf = NULL;
		STACK_OF(X509) *chain = NULL;

		v[i].b = b;
		tls_endpoint_text(&b->listen, v[i].listener, sizeof(v[i].listener));
		tls_binding_where(cfg->path, b, where, sizeof(where));
		if (tls_site_cert(b, where, &tk, &leaf, &chain) == 0)
			describe(&v[i], leaf, chain);
		else
			snprintf(v[i].error, sizeof(v[i].error), "%s", p11pki_errmsg());
		X509_free(leaf);
		sk_X509_pop_free(chain, X509_free);
	}
	*views = v;
	*n = cfg->n_bindings;
	v = NULL;
out:
	p11pki_binding_views_free(v, cfg->n_bindings);
	tls_tokens_close(&tk);
	return r;
}

/* ---- check ------------------------------------------------------------ */

struct checker {
	p11pki_check_report report;
	void *arg;
	unsigned problems[P11PKI_MAX_BINDINGS];
	unsigned total;
};

static void problem(struct checker *ck, const struct tls_gen *g, size_t site)
{
	char msg[512];

	snprintf(msg, sizeof(msg), "%s", p11pki_errmsg());
	ck->total++;
	if (g != NULL && site < g->n_sites) {
		ck->problems[site]++;
		ck->report(g->site[site].b->name, msg, ck->arg);
	} else {
		ck->report(NULL, msg, ck->arg);
	}
}

/* Listening sockets are opened and closed again: port 0 is always free. */
static void check_ports(struct checker *ck, struct tls_gen *g)
{
	char bound[TLS_ADDR_MAX];
	size_t k;
	int fd, r;

	for (k = 0; k < g->n_views; k++) {
		if (g->view[k].ep->port == 0)
			continue;
		if ((r = tls_listen(g->view[k].ep, &fd, bound, sizeof(bound))) != 0) {
			tls_fail_wrap(r, g->site[g->view[k].dflt].where);
			problem(ck, g, g->view[k].dflt);
		} else {
			close(fd);
		}
	}
	if (g->cfg->has_admin && g->cfg->admin.port != 0) {
		if ((r = tls_listen(&g->cfg->admin, &fd, bound, sizeof(bound))) != 0) {
			tls_fail_wrap(r, "admin");
			problem(ck, NULL, 0);
		} else {
			close(fd);
		}
	}
}

int p11pki_bindings_check(const struct p11pki_serve_config *cfg, const char *pin_source,
			  p11pki_check_report report, void *arg)
{
	struct checker ck;
	struct tls_tokens tk;
	struct tls_gen *g;
	size_t i;
	int r, grouped;

	memset(&ck, 0, sizeof(ck));
	memset(&tk, 0, sizeof(tk));
	ck.report = report;
	ck.arg = arg;
	if ((g = calloc(1, sizeof(*g))) == NULL)
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
	g->cfg = (struct p11pki_serve_config *)cfg; /* only read; never freed here */
	if (!(grouped = tls_gen_group(g) == 0))
		problem(&ck, NULL, 0);
	if ((r = tls_tokens_init(&tk, cfg->module, pin_source != NULL ? pin_source : cfg->pin_source, 1, 0)) != 0)
		goto out;
	for (i = 0; i < g->n_sites; i++)
		if (tls_site_build(&g->site[i], &tk) != 0 || tls_site_backends(&g->site[i], NULL) != 0)
			problem(&ck, g, i);
	if (grouped)
		check_ports(&ck, g);
	for (i = 0; i < g->n_sites; i++)
		if (ck.problems[i] == 0)
			report(g->site[i].b->name, NULL, arg);
	r = ck.total > 0 ? P11PKI_E_ARG : P11PKI_OK;
out:
	for (i = 0; i < g->n_sites; i++)
		tls_site_clear(&g->site[i]);
	free(g);
	tls_tokens_close(&tk);
	return r;
}
