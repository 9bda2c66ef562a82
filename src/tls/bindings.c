/* Bindings at run time: grouped by listen address into views (SNI picks
 * among a view's bindings), each built into a site with its SSL_CTX and
 * backends. A generation is all of that for one configuration; it lives
 * while the server or a connection still uses it. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "online/online.h"
#include "tls/server.h"

static int same_sni(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcasecmp(a, b) == 0);
}

/* The config parser refuses duplicates already; a generation built from
 * any other source is checked the same way. */
static int add_to_view(struct tls_gen *g, size_t i)
{
	const struct p11pki_binding *b = &g->cfg->bindings[i];
	struct tls_view *v = NULL;
	char ep[TLS_ADDR_MAX];
	size_t k;

	for (k = 0; k < g->n_views && v == NULL; k++)
		if (tls_endpoint_eq(g->view[k].ep, &b->listen))
			v = &g->view[k];
	if (v == NULL) {
		v = &g->view[g->n_views++];
		v->ep = &b->listen;
	}
	for (k = 0; k < v->n_sites; k++) {
		const struct p11pki_binding *o = g->site[v->site[k]].b;
		if (same_sni(o->sni, b->sni)) {
			tls_endpoint_text(&b->listen, ep, sizeof(ep));
			return p11pki_fail(P11PKI_E_ARG, "%s: duplicates binding %s: both listen on %s %s%s", g->site[i].where,
					   o->name, ep, b->sni != NULL ? "for SNI host " : "without SNI",
					   b->sni != NULL ? b->sni : "");
		}
	}
	g->site[i].view = (size_t)(v - g->view);
	v->site[v->n_sites++] = i;
	return P11PKI_OK;
}

/* The binding without sni answers unknown names; without one, the first. */
static void pick_defaults(struct tls_gen *g)
{
	size_t k, j;

	for (k = 0; k < g->n_views; k++) {
		struct tls_view *v = &g->view[k];
		v->dflt = v->site[0];
		for (j = 0; j < v->n_sites; j++)
			if (g->site[v->site[j]].b->sni == NULL) {
				v->dflt = v->site[j];
				break;
			}
	}
}

int tls_gen_group(struct tls_gen *g)
{
	size_t i;
	int r;

	for (i = 0; i < g->cfg->n_bindings; i++) {
		g->site[i].b = &g->cfg->bindings[i];
		tls_binding_where(g->cfg->path, g->site[i].b, g->site[i].where, sizeof(g->site[i].where));
	}
	g->n_sites = g->cfg->n_bindings;
	for (i = 0; i < g->n_sites; i++)
		if ((r = add_to_view(g, i)) != 0)
			return r;
	pick_defaults(g);
	return P11PKI_OK;
}

int tls_site_backends(struct tls_site *s, struct tls_metrics *mx)
{
	size_t i;
	int r;

	for (i = 0; i < s->b->n_backends; i++) {
		struct tls_backend *be = &s->backends[i];
		be->ep = &s->b->backends[i];
		tls_endpoint_text(be->ep, be->addr, sizeof(be->addr));
		if ((r = tls_resolve(be->ep, 0, &be->sa, &be->sa_len)) != 0)
			return tls_fail_wrapf(r, "%s: backend", s->where);
		if (mx != NULL && (be->st = tls_metrics_backend(mx, s->b->name, be->addr)) == NULL)
			return tls_fail_wrap(P11PKI_E_NOMEM, s->where);
	}
	s->n_backends = s->b->n_backends;
	return P11PKI_OK;
}

static void gen_free(struct tls_gen *g, int free_cfg)
{
	size_t i;

	if (g == NULL)
		return;
	for (i = 0; i < g->n_sites; i++) {
		tls_site_clear(&g->site[i]);
		online_routes_free(g->site[i].routes);
	}
	online_service_close(g->online);
	if (free_cfg)
		p11pki_serve_config_free(g->cfg);
	free(g);
}

static int online_token(void *ctx, const struct p11pki_uri *sel, p11pki_token **t)
{
	return tls_tokens_get(ctx, sel, t, NULL);
}

static void free_names(char **names, size_t n)
{
	while (n > 0)
		free(names[--n]);
}

/* The CAs the bindings serve online, each opened once for all of them. */
static int gen_online(struct tls_gen *g, struct tls_tokens *tk)
{
	char *names[ONLINE_MAX_CAS], *ocsp[ONLINE_MAX_CAS], *crls[ONLINE_MAX_CAS];
	size_t n = 0, n_ocsp = 0, n_crls = 0, i;
	int r = P11PKI_OK;

	for (i = 0; i < g->n_sites && r == 0; i++)
		if ((r = online_binding_cas(g->site[i].b, names, &n, ocsp, &n_ocsp, crls, &n_crls, ONLINE_MAX_CAS)) != 0)
			r = tls_fail_wrap(r, g->site[i].where);
	if (r == 0 && n > 0)
		r = online_service_open(g->cfg->path, names, n, ocsp, n_ocsp, crls, n_crls, online_token, tk, &g->online);
	for (i = 0; i < g->n_sites && r == 0 && g->online != NULL; i++)
		if ((r = online_routes_build(g->site[i].b, g->online, &g->site[i].routes)) != 0)
			r = tls_fail_wrap(r, g->site[i].where);
	free_names(names, n);
	free_names(ocsp, n_ocsp);
	free_names(crls, n_crls);
	return r;
}

int tls_gen_build(struct p11pki_serve_config *cfg, struct tls_tokens *tk, struct tls_metrics *mx,
		  struct tls_gen **out)
{
	static atomic_uint serial;
	unsigned this_gen = atomic_fetch_add(&serial, 1);
	struct tls_gen *g;
	size_t i;
	int r;

	*out = NULL;
	if ((g = calloc(1, sizeof(*g))) == NULL)
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
	atomic_init(&g->refs, 1);
	g->cfg = cfg;
	if ((r = tls_gen_group(g)) != 0)
		goto out;
	for (i = 0; i < g->n_sites; i++) {
		struct tls_site *s = &g->site[i];
		s->gen_serial = this_gen;
		if ((r = tls_site_build(s, tk)) != 0 || (r = tls_site_backends(s, mx)) != 0)
			goto out;
		if (mx != NULL && (s->stats = tls_metrics_binding(mx, s->b->name)) == NULL) {
			r = tls_fail_wrap(P11PKI_E_NOMEM, s->where);
			goto out;
		}
	}
	if ((r = gen_online(g, tk)) != 0)
		goto out;
	*out = g;
	g = NULL;
out:
	gen_free(g, 0); /* on failure the caller keeps cfg */
	return r;
}

void tls_gen_ref(struct tls_gen *g)
{
	atomic_fetch_add(&g->refs, 1);
}

void tls_gen_unref(struct tls_gen *g)
{
	if (g != NULL && atomic_fetch_sub(&g->refs, 1) == 1)
		gen_free(g, 1);
}
