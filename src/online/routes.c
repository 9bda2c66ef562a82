/* Which online handler answers a path of a binding: EST under
 * /.well-known/est/, OCSP under /ocsp, CRLs under /crl/. */
#include <stdlib.h>
#include <string.h>

#include "online/online.h"

#define EST_PREFIX "/.well-known/est/"

/* Splits a comma/blank list of names into a new array. */
static int split(const char *list, char ***out, size_t *n)
{
	const char *p = list;
	size_t len;

	*out = NULL;
	*n = 0;
	while (p != NULL && *p != '\0') {
		p += strspn(p, ", \t");
		if ((len = strcspn(p, ", \t")) == 0)
			break;
		char **grown = realloc(*out, (*n + 1) * sizeof(**out));
		if (grown == NULL)
			return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
		*out = grown;
		if (((*out)[*n] = strndup(p, len)) == NULL)
			return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
		(*n)++;
		p += len;
	}
	return P11PKI_OK;
}

static void free_names(char **names, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static int add_unique(char **names, size_t *n, size_t max, const char *name)
{
	size_t i;

	for (i = 0; i < *n; i++)
		if (strcmp(names[i], name) == 0)
			return P11PKI_OK;
	if (*n == max)
		return p11pki_fail(P11PKI_E_ARG, "more than %zu CAs served online", max);
	if ((names[*n] = strdup(name)) == NULL)
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
	(*n)++;
	return P11PKI_OK;
}

/* "CA/profile" into its parts (the config checked the form). */
static void est_target(const char *target, const char *label, struct online_est_route *r)
{
	const char *slash = strchr(target, '/');
	size_t ca_len = slash != NULL ? (size_t)(slash - target) : strlen(target);

	snprintf(r->label, sizeof(r->label), "%s", label);
	snprintf(r->ca, sizeof(r->ca), "%.*s", (int)(ca_len < sizeof(r->ca) ? ca_len : sizeof(r->ca) - 1), target);
	snprintf(r->profile, sizeof(r->profile), "%s", slash != NULL ? slash + 1 : "");
}

static int add_list(const char *list, char **names, size_t *n, char **only, size_t *n_only, size_t max)
{
	char **items = NULL;
	size_t k, count = 0;
	int r;

	if ((r = split(list, &items, &count)) == 0)
		for (k = 0; k < count && r == 0; k++)
			if ((r = add_unique(names, n, max, items[k])) == 0)
				r = add_unique(only, n_only, max, items[k]);
	free_names(items, count);
	return r;
}

int online_binding_cas(const struct p11pki_binding *b, char **names, size_t *n, char **ocsp, size_t *n_ocsp,
		       char **crls, size_t *n_crls, size_t max)
{
	struct online_est_route er;
	size_t i;
	int r = P11PKI_OK;

	if (b->est != NULL) {
		est_target(b->est, "", &er);
		r = add_unique(names, n, max, er.ca);
	}
	for (i = 0; i < b->n_est_labels && r == 0; i++) {
		est_target(b->est_labels[i].target, b->est_labels[i].label, &er);
		r = add_unique(names, n, max, er.ca);
	}
	if (r == 0 && b->ocsp != NULL)
		r = add_list(b->ocsp, names, n, ocsp, n_ocsp, max);
	if (r == 0 && b->crls != NULL)
		r = add_list(b->crls, names, n, crls, n_crls, max);
	return r;
}

int online_routes_build(const struct p11pki_binding *b, struct online_service *svc, struct online_routes **out)
{
	struct online_routes *rt;
	size_t i;
	int r;

	*out = NULL;
	if (b->est == NULL && b->n_est_labels == 0 && b->ocsp == NULL && b->crls == NULL)
		return P11PKI_OK;
	if ((rt = calloc(1, sizeof(*rt))) == NULL)
		return p11pki_fail(P11PKI_E_NOMEM, "out of memory");
	if (b->est != NULL)
		est_target(b->est, "", &rt->est[rt->n_est++]);
	for (i = 0; i < b->n_est_labels && rt->n_est < ONLINE_MAX_EST_ROUTES; i++)
		est_target(b->est_labels[i].target, b->est_labels[i].label, &rt->est[rt->n_est++]);
	if ((r = split(b->ocsp, &rt->ocsp, &rt->n_ocsp)) != 0 || (r = split(b->crls, &rt->crls, &rt->n_crls)) != 0)
		goto fail;
	for (i = 0; i < rt->n_est; i++)
		if (online_find_ca(svc, rt->est[i].ca) == NULL) {
			r = p11pki_fail(P11PKI_E_ARG, "est: CA '%s' is not open", rt->est[i].ca);
			goto fail;
		}
	*out = rt;
	return P11PKI_OK;
fail:
	online_routes_free(rt);
	return r;
}

void online_routes_free(struct online_routes *r)
{
	if (r == NULL)
		return;
	free_names(r->ocsp, r->n_ocsp);
	free_names(r->crls, r->n_crls);
	free(r);
}

static int under(const char *path, const char *prefix)
{
	size_t n = strlen(prefix);

	return strncmp(path, prefix, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

int online_route_match(const struct online_routes *r, const char *path)
{
	if (r == NULL)
		return 0;
	return (r->n_est > 0 && strncmp(path, EST_PREFIX, strlen(EST_PREFIX)) == 0) ||
	       (r->n_ocsp > 0 && under(path, "/ocsp")) || (r->n_crls > 0 && under(path, "/crl"));
}

int online_route(struct online_service *svc, const struct online_routes *r, const struct online_request *rq,
		 struct online_response *rs)
{
	if (r == NULL || svc == NULL)
		return 0;
	if (r->n_est > 0 && strncmp(rq->path, EST_PREFIX, strlen(EST_PREFIX)) == 0)
		online_est_answer(svc, r->est, r->n_est, rq, rs);
	else if (r->n_ocsp > 0 && under(rq->path, "/ocsp"))
		online_ocsp_answer(svc, r->ocsp, r->n_ocsp, rq, rs);
	else if (r->n_crls > 0 && under(rq->path, "/crl"))
		online_crl_answer(svc, r->crls, r->n_crls, rq, rs);
	else
		return 0;
	return 1;
}
