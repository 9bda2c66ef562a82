/* tls_burst HOST:PORT SNI CAFILE tls1.2|tls1.3 < request > response
 *
 * A TLS client for the `p11pki serve` tests that sends the request from
 * stdin in 512-byte records, all in one write together with the last
 * bytes of its handshake where the protocol lets it (TLS 1.3: its
 * Finished), so the server finds the request in the same read as the
 * end of the handshake. Prints what the server answers until it closes.
 * Exit 0 when the handshake (with a verified certificate) and the write
 * worked. */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

_Noreturn static void die(const char *what)
{
	fprintf(stderr, "tls_burst: %s\n", what);
	ERR_print_errors_fp(stderr);
	exit(1);
}

static int dial(const char *hostport)
{
	char host[256], *colon;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
	int fd;

	snprintf(host, sizeof(host), "%s", hostport);
	if ((colon = strrchr(host, ':')) == NULL)
		die("want HOST:PORT");
	*colon = '\0';
	if (getaddrinfo(host, colon + 1, &hints, &ai) != 0)
		die("cannot resolve the address");
	if ((fd = socket(ai->ai_family, SOCK_STREAM, 0)) < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0)
		die("cannot connect");
	freeaddrinfo(ai);
	return fd;
}

/* Sends what the SSL wrote into its memory BIO. */
static void flush(int fd, BIO *out)
{
	char *data;
	long n = BIO_get_mem_data(out, &data);

	if (n > 0 && write(fd, data, (size_t)n) != n)
		die("write failed");
	(void)BIO_reset(out);
}

/* Feeds the SSL what the server sent; 0 at the server's close. */
static int feed(int fd, BIO *in)
{
	char buf[16384];
	ssize_t n = read(fd, buf, sizeof(buf));

	if (n > 0 && BIO_write(in, buf, (int)n) != n)
		die("out of memory");
	return n > 0;
}

int main(int argc, char **argv)
{
	static char request[65536];
	char buf[16384];
	size_t len;
	SSL_CTX *ctx;
	SSL *ssl;
	BIO *in, *out;
	int fd, r, version;

	if (argc != 5)
		die("usage: tls_burst HOST:PORT SNI CAFILE tls1.2|tls1.3");
	version = strcmp(argv[4], "tls1.2") == 0 ? TLS1_2_VERSION : TLS1_3_VERSION;
	len = fread(request, 1, sizeof(request), stdin);
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL || !SSL_CTX_set_min_proto_version(ctx, version) ||
	    !SSL_CTX_set_max_proto_version(ctx, version) || SSL_CTX_load_verify_locations(ctx, argv[3], NULL) != 1)
		die("cannot set up TLS");
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if ((ssl = SSL_new(ctx)) == NULL || (in = BIO_new(BIO_s_mem())) == NULL || (out = BIO_new(BIO_s_mem())) == NULL)
		die("out of memory");
	SSL_set_bio(ssl, in, out);
	SSL_set_connect_state(ssl);
	if (!SSL_set_tlsext_host_name(ssl, argv[2]) || !SSL_set1_host(ssl, argv[2]) ||
	    !SSL_set_max_send_fragment(ssl, 512))
		die("cannot set the host name");
	fd = dial(argv[1]);
	/* the handshake's last flight stays in `out` until the request
	 * joins it (TLS 1.2 must send it earlier, to hear the server's
	 * Finished) */
	while ((r = SSL_do_handshake(ssl)) != 1) {
		if (SSL_get_error(ssl, r) != SSL_ERROR_WANT_READ)
			die("handshake failed");
		flush(fd, out);
		if (!feed(fd, in))
			die("the server closed during the handshake");
	}
	if (len > 0 && SSL_write(ssl, request, (int)len) != (int)len)
		die("SSL_write failed");
	flush(fd, out);
	for (;;) {
		if ((r = SSL_read(ssl, buf, sizeof(buf))) > 0) {
			fwrite(buf, 1, (size_t)r, stdout);
			continue;
		}
		if (SSL_get_error(ssl, r) != SSL_ERROR_WANT_READ || !feed(fd, in))
			break;
	}
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
	return 0;
}
