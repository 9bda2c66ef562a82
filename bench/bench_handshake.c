/* bench_handshake HOST PORT THREADS SECONDS [tls1.2|tls1.3] [SERVER_PID]
 *
 * A TLS client for handshake benchmarks: THREADS threads each loop over
 * full handshakes (no session resumption) plus one tiny HTTP request per
 * connection (GET /healthz), for SECONDS. With SERVER_PID (a comma list
 * of pids is summed), the server process's own CPU
 * time (user + system, from /proc/PID/stat) is read before and after, so
 * the server's cost per handshake is reported beside the rate: on a small
 * machine the client costs more CPU than the server, and handshakes/s
 * alone would hide the server's cost.
 * Prints: "handshakes N rate R/s server_cpu_us_per_hs C failures F resumed R".
 *
 * For the online benchmarks (EST, OCSP) the environment changes the
 * request: BENCH_REQUEST=FILE sends that file's bytes (a whole HTTP
 * request) instead of GET /healthz, and a connection counts only when the
 * answer starts "HTTP/1.1 200"; BENCH_RESUME=1 resumes TLS sessions (one
 * per thread), so the request, not the handshake, is measured;
 * BENCH_CERT / BENCH_KEY are a client certificate and key (PEM). */
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

static const char *host, *port;
static double seconds;
static int version;
static atomic_long handshakes, failures, resumed;
static SSL_CTX *ctx;
static char *request;		/* BENCH_REQUEST, or NULL: GET /healthz */
static size_t request_len;
static int resume, check_200;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int connect_tcp(void)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
	int fd = -1, on = 1;

	if (getaddrinfo(host, port, &hints, &ai) != 0)
		return -1;
	/* TCP_NODELAY, as curl and browsers set it: the request leaves at once
	 * instead of waiting for the server to acknowledge the Finished */
	if ((fd = socket(ai->ai_family, SOCK_STREAM, 0)) >= 0 &&
	    (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) != 0 ||
	     connect(fd, ai->ai_addr, ai->ai_addrlen) != 0)) {
		close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

/* One connection: handshake (resuming *sess when set), the request, the
 * answer read to the end. */
static int one(SSL_SESSION **sess)
{
	static const char healthz[] = "GET /healthz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n";
	const char *req = request != NULL ? request : healthz;
	size_t req_len = request != NULL ? request_len : sizeof(healthz) - 1, got = 0;
	char buf[4096], head[16];
	SSL *ssl = NULL;
	int fd, ok = 0, n;

	if ((fd = connect_tcp()) < 0)
		return 0;
	if ((ssl = SSL_new(ctx)) == NULL || !SSL_set_fd(ssl, fd) || !SSL_set_tlsext_host_name(ssl, host))
		goto out;
	if (*sess != NULL)
		SSL_set_session(ssl, *sess);
	if (SSL_connect(ssl) != 1)
		goto out;
	if (SSL_write(ssl, req, (int)req_len) <= 0)
		goto out;
	while ((n = SSL_read(ssl, buf, sizeof(buf))) > 0)
		for (int i = 0; i < n && got < sizeof(head); i++)
			head[got++] = buf[i];
	if (check_200 && (got < 12 || memcmp(head, "HTTP/1.1 200", 12) != 0))
		goto out;
	atomic_fetch_add(&handshakes, 1);
	if (SSL_session_reused(ssl))
		atomic_fetch_add(&resumed, 1);
	if (resume) {
		SSL_SESSION_free(*sess);
		*sess = SSL_get1_session(ssl);
		SSL_shutdown(ssl); /* freed without it, the session is not resumable */
	}
	ok = 1;
out:
	SSL_free(ssl);
	close(fd);
	ERR_clear_error();
	return ok;
}

static void *worker(void *arg)
{
	double end = now() + seconds;
	SSL_SESSION *sess = NULL;

	while (now() < end)
		if (!one(&sess))
			atomic_fetch_add(&failures, 1);
	SSL_SESSION_free(sess);
	return NULL;
}

/* BENCH_REQUEST, BENCH_RESUME, BENCH_CERT and BENCH_KEY. */
static int from_environment(void)
{
	const char *file = getenv("BENCH_REQUEST"), *cert = getenv("BENCH_CERT"), *key = getenv("BENCH_KEY");
	FILE *fp;

	resume = getenv("BENCH_RESUME") != NULL && strcmp(getenv("BENCH_RESUME"), "1") == 0;
	if (file != NULL) {
		if ((fp = fopen(file, "rb")) == NULL || (request = malloc(1 << 20)) == NULL)
			return 0;
		request_len = fread(request, 1, 1 << 20, fp);
		fclose(fp);
		check_200 = 1;
	}
	if (cert != NULL && (SSL_CTX_use_certificate_file(ctx, cert, SSL_FILETYPE_PEM) != 1 ||
			     SSL_CTX_use_PrivateKey_file(ctx, key != NULL ? key : cert, SSL_FILETYPE_PEM) != 1))
		return 0;
	if (resume) {
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT);
		SSL_CTX_clear_options(ctx, SSL_OP_NO_TICKET);
	}
	return 1;
}

/* utime + stime of a process, in seconds. */
static double cpu_of_one(const char *pid)
{
	char path[64], buf[2048], *p;
	unsigned long ut = 0, st = 0;
	FILE *fp;
	int i;

	snprintf(path, sizeof(path), "/proc/%s/stat", pid);
	if ((fp = fopen(path, "r")) == NULL || fgets(buf, sizeof(buf), fp) == NULL) {
		if (fp)
			fclose(fp);
		return -1;
	}
	fclose(fp);
	if ((p = strrchr(buf, ')')) == NULL)
		return -1;
	for (i = 0; i < 12 && p != NULL; i++) /* fields 3..14: skip to utime */
		p = strchr(p + 1, ' ');
	if (p == NULL || sscanf(p, " %lu %lu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Summed over a comma list of pids (nginx's master and workers). */
static double cpu_of(const char *pids)
{
	char one[32];
	double sum = 0, v;
	size_t len;

	while (*pids != '\0') {
		len = strcspn(pids, ",");
		if (len == 0 || len >= sizeof(one))
			return -1;
		memcpy(one, pids, len);
		one[len] = '\0';
		if ((v = cpu_of_one(one)) < 0)
			return -1;
		sum += v;
		pids += len + (pids[len] == ',');
	}
	return sum;
}

int main(int argc, char **argv)
{
	pthread_t th[256];
	int threads, i;
	double t0, t1, c0 = 0, c1 = 0;
	const char *pid = argc > 6 ? argv[6] : NULL;

	if (argc < 5 || (threads = atoi(argv[3])) < 1 || threads > 256 || (seconds = atof(argv[4])) <= 0) {
		fprintf(stderr, "usage: bench_handshake HOST PORT THREADS SECONDS [tls1.2|tls1.3] [SERVER_PID]\n");
		return 2;
	}
	host = argv[1];
	port = argv[2];
	version = argc > 5 && strcmp(argv[5], "tls1.2") == 0 ? TLS1_2_VERSION : TLS1_3_VERSION;
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		return 1;
	SSL_CTX_set_min_proto_version(ctx, version);
	SSL_CTX_set_max_proto_version(ctx, version);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF); /* full handshakes only */
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	if (!from_environment()) {
		fprintf(stderr, "bench_handshake: BENCH_REQUEST, BENCH_CERT or BENCH_KEY cannot be read\n");
		return 1;
	}
	if (pid != NULL)
		c0 = cpu_of(pid);
	t0 = now();
	for (i = 0; i < threads; i++)
		pthread_create(&th[i], NULL, worker, NULL);
	for (i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	t1 = now();
	if (pid != NULL)
		c1 = cpu_of(pid);
	printf("handshakes %ld rate %.1f/s server_cpu_us_per_hs %.1f failures %ld resumed %ld\n", atomic_load(&handshakes),
	       atomic_load(&handshakes) / (t1 - t0),
	       pid != NULL && atomic_load(&handshakes) > 0 ? (c1 - c0) * 1e6 / atomic_load(&handshakes) : 0.0,
	       atomic_load(&failures), atomic_load(&resumed));
	SSL_CTX_free(ctx);
	free(request);
	return 0;
}
