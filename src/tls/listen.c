/* Addresses and listening sockets. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "tls/server.h"

#define BACKLOG 511

void tls_addr_text(const struct sockaddr *sa, socklen_t len, char *buf, size_t size)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		port = ntohs(in->sin_port);
		snprintf(buf, size, "%s:%u", host, port);
	} else if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		port = ntohs(in6->sin6_port);
		snprintf(buf, size, "[%s]:%u", host, port);
	} else {
		snprintf(buf, size, "?");
	}
}

int tls_resolve(const struct p11pki_endpoint *ep, int passive, struct sockaddr_storage *sa, socklen_t *len)
{
	struct addrinfo hints, *res = NULL;
	char port[8], where[TLS_ADDR_MAX];
	const char *host = ep->host;
	int e;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
	if (strcmp(host, "*") == 0 || host[0] == '\0') {
		host = NULL; /* every address */
		hints.ai_family = AF_INET;
	}
	snprintf(port, sizeof(port), "%u", (unsigned)ep->port);
	if ((e = getaddrinfo(host, port, &hints, &res)) != 0 || res == NULL) {
		tls_endpoint_text(ep, where, sizeof(where));
		return p11pki_fail(P11PKI_E_ARG, "cannot resolve %s: %s", where, gai_strerror(e));
	}
	memcpy(sa, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return P11PKI_OK;
}

int tls_listen(const struct p11pki_endpoint *ep, int *fd, char *bound, size_t bound_size)
{
	struct sockaddr_storage sa;
	socklen_t len;
	char where[TLS_ADDR_MAX];
	int s = -1, one = 1, r;

	*fd = -1;
	if ((r = tls_resolve(ep, 1, &sa, &len)) != 0)
		return r;
	tls_endpoint_text(ep, where, sizeof(where));
	if ((s = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
		return p11pki_fail(P11PKI_E_IO, "cannot listen on %s: %s", where, strerror(errno));
	(void)setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(s, (struct sockaddr *)&sa, len) != 0 || listen(s, BACKLOG) != 0) {
		r = p11pki_fail(P11PKI_E_IO, "cannot listen on %s: %s", where, strerror(errno));
		close(s);
		return r;
	}
	len = sizeof(sa);
	if (getsockname(s, (struct sockaddr *)&sa, &len) != 0) {
		r = p11pki_fail(P11PKI_E_IO, "cannot listen on %s: %s", where, strerror(errno));
		close(s);
		return r;
	}
	tls_addr_text((struct sockaddr *)&sa, len, bound, bound_size);
	*fd = s;
	return P11PKI_OK;
}
