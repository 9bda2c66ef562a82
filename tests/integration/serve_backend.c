/* serve_backend MODE NAME PORTFILE [PORT]
 *
 * A backend for the `p11pki serve` tests, on 127.0.0.1 (PORT, or a free
 * port; the port it got is written to PORTFILE once it listens). One
 * thread per connection.
 *   echo  reads one line and answers "NAME: LINE", then closes;
 *   http  reads a request head and its Content-Length body and answers
 *         200 with "backend NAME" and the request as it arrived, so tests
 *         see the headers the proxy sent; GET /slow/N answers N KiB of
 *         'x' in 16 KiB pieces, 20 ms apart; GET /status/N answers N;
 *         with "X-Test-Linger: 1" it also reads whatever else arrives in
 *         the next 300 ms (a chunked body, bytes after the body) and
 *         echoes that too.
 * Every connection is logged on stdout as "NAME accepted". */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define HEAD_MAX 65536
#define BODY_MAX (1 << 20)

static const char *name;
static int http_mode;

static int write_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		if ((w = write(fd, p, n)) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static void echo(int fd)
{
	char line[4096], out[4200];
	size_t n = 0;
	ssize_t r;

	while (n < sizeof(line) - 1 && (r = read(fd, line + n, 1)) == 1 && line[n] != '\n')
		n++;
	line[n] = '\0';
	snprintf(out, sizeof(out), "%s: %s\n", name, line);
	write_all(fd, out, strlen(out));
}

static void slow(int fd, long kib)
{
	char head[256], piece[16384];
	long sent;

	memset(piece, 'x', sizeof(piece));
	snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
		 "Content-Length: %ld\r\nConnection: close\r\n\r\n", kib * 1024);
	if (write_all(fd, head, strlen(head)) != 0)
		return;
	for (sent = 0; sent < kib * 1024; sent += (long)sizeof(piece)) {
		if (write_all(fd, piece, sizeof(piece)) != 0)
			return;
		sleep_ms(20);
	}
}

static void http(int fd)
{
	char *req = malloc(HEAD_MAX + BODY_MAX + 1), *end, *cl, *out;
	size_t n = 0, head_len, body = 0, total;
	ssize_t r;
	int status = 200;
	long kib;

	if (req == NULL)
		return;
	while (n < HEAD_MAX && (r = read(fd, req + n, HEAD_MAX - n)) > 0) {
		n += (size_t)r;
		req[n] = '\0';
		if (strstr(req, "\r\n\r\n") != NULL)
			break;
	}
	if ((end = strstr(req, "\r\n\r\n")) == NULL) {
		free(req);
		return;
	}
	head_len = (size_t)(end + 4 - req);
	if ((cl = strcasestr(req, "\r\nContent-Length:")) != NULL && cl < end)
		body = strtoul(cl + 17, NULL, 10);
	if (body > BODY_MAX)
		body = BODY_MAX;
	while (n < head_len + body && (r = read(fd, req + n, head_len + body - n)) > 0)
		n += (size_t)r;
	if (strcasestr(req, "\r\nX-Test-Linger: 1\r\n") != NULL) {
		struct timeval tv = { 0, 300000 };
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		while (n < HEAD_MAX + BODY_MAX && (r = read(fd, req + n, HEAD_MAX + BODY_MAX - n)) > 0)
			n += (size_t)r;
	}
	req[n] = '\0';
	if (sscanf(req, "GET /slow/%ld ", &kib) == 1) {
		slow(fd, kib);
		free(req);
		return;
	}
	if (sscanf(req, "GET /status/%d ", &status) != 1)
		status = 200;
	total = n + strlen(name) + 64;
	if ((out = malloc(total + 256)) != NULL) {
		int body_len = snprintf(out + 256, total, "backend %s\n%s", name, req);
		int h = snprintf(out, 256, "HTTP/1.1 %d X\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
				 "Connection: close\r\n\r\n", status, body_len);
		write_all(fd, out, (size_t)h);
		write_all(fd, out + 256, (size_t)body_len);
		free(out);
	}
	free(req);
}

static void *serve(void *arg)
{
	int fd = (int)(long)arg;

	if (http_mode)
		http(fd);
	else
		echo(fd);
	shutdown(fd, SHUT_WR);
	close(fd);
	return NULL;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	pthread_t t;
	FILE *fp;
	char tmp[4096];
	int s, fd, one = 1;

	if (argc < 4 || argc > 5 || (strcmp(argv[1], "echo") != 0 && strcmp(argv[1], "http") != 0)) {
		fprintf(stderr, "usage: serve_backend echo|http NAME PORTFILE [PORT]\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	http_mode = strcmp(argv[1], "http") == 0;
	name = argv[2];
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((unsigned short)(argc == 5 ? atoi(argv[4]) : 0));
	if ((s = socket(AF_INET, SOCK_STREAM, 0)) < 0 || setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(s, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(s, 64) != 0 ||
	    getsockname(s, (struct sockaddr *)&sa, &len) != 0) {
		perror("serve_backend");
		return 1;
	}
	/* whole or not at all: tests poll for the file */
	snprintf(tmp, sizeof(tmp), "%s.tmp", argv[3]);
	if ((fp = fopen(tmp, "w")) == NULL || fprintf(fp, "%u\n", ntohs(sa.sin_port)) < 0 || fclose(fp) != 0 ||
	    rename(tmp, argv[3]) != 0) {
		perror(argv[3]);
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (;;) {
		if ((fd = accept(s, NULL, NULL)) < 0) {
			if (errno == EINTR)
				continue;
			perror("accept");
			return 1;
		}
		printf("%s accepted\n", name);
		if (pthread_create(&t, NULL, serve, (void *)(long)fd) != 0) {
			close(fd);
			continue;
		}
		pthread_detach(t);
	}
}
